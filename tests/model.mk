# tests/model.mk - models: parameter counts, full-size steps, layer ids, init, and
# `simmimctl verify` on the golden files (copies of ../shared/golden in tests/golden).
check_PROGRAMS += tests/check_models
TESTS += tests/check_models
tests_check_models_SOURCES = tests/check_models.c
tests_check_models_CFLAGS = $(TEST_CFLAGS)
tests_check_models_LDADD = $(TEST_LIBS)
EXTRA_DIST += tests/golden/README.md \
	tests/golden/simmim_swin.safetensors \
	tests/golden/simmim_vit_shared_rpb.safetensors \
	tests/golden/simmim_vit_abs_rpb.safetensors \
	tests/golden/cls_swin.safetensors \
	tests/golden/cls_vit_meanpool.safetensors \
	tests/golden/cls_vit_clstoken.safetensors

# The example backbone and the embedding example (examples/classify.c), built out of tree
# against the installed headers and pkg-config.
TESTS += tests/check_oot_backbone.sh
EXTRA_DIST += tests/check_oot_backbone.sh tests/oot_adapt.c docs/writing-a-backbone.md \
	examples/classify.c docs/embedding.md \
	docs/examples/toy_backbone/toy.c docs/examples/toy_backbone/Makefile \
	docs/examples/toy_backbone/toy.yaml
EXTRA_DIST += tests/reference/README.md \
	tests/reference/x_simmim_swin_w3.safetensors \
	tests/reference/x_simmim_swin_3stage_ape.safetensors \
	tests/reference/x_simmim_swin_bigwindow.safetensors \
	tests/reference/x_simmim_vit_both_rpb.safetensors \
	tests/reference/x_simmim_vit_plain.safetensors \
	tests/reference/x_cls_vit_meanpool_nobias.safetensors \
	tests/reference/x_cls_swin_3stage.safetensors

check_PROGRAMS += tests/check_optim
TESTS += tests/check_optim
tests_check_optim_SOURCES = tests/check_optim.c
tests_check_optim_CFLAGS = $(TEST_CFLAGS)
tests_check_optim_LDADD = $(TEST_LIBS)


check_PROGRAMS += tests/check_train
TESTS += tests/check_train
tests_check_train_SOURCES = tests/check_train.c
tests_check_train_CFLAGS = $(TEST_CFLAGS)
tests_check_train_LDADD = $(TEST_LIBS)

TESTS += tests/check_run.sh
EXTRA_DIST += tests/check_run.sh
# simmimctl eval, extract --block and probe on a tiny fine-tuned ViT
TESTS += tests/check_eval.sh
EXTRA_DIST += tests/check_eval.sh tests/run/tiny_finetune.yaml

TESTS += tests/check_shipped_configs.sh
EXTRA_DIST += tests/check_shipped_configs.sh

TESTS += tests/check_diskfull.sh
EXTRA_DIST += tests/check_diskfull.sh tests/run/tiny.yaml docs/outputs.md docs/reproducibility.md \
	docs/evaluate.md

# tests/stdump prints a row of a tensor of a safetensors file, for the scripts that compare
# features (a helper, not a test)
check_PROGRAMS += tests/stdump
tests_stdump_SOURCES = tests/stdump.c
tests_stdump_CFLAGS = $(AM_CFLAGS)
tests_stdump_LDADD = core/libsimmim.la

# tests/mkimages writes the small JPEG datasets of check_ringmo_run.sh (a helper, not a test)
check_PROGRAMS += tests/mkimages
tests_mkimages_SOURCES = tests/mkimages.c
tests_mkimages_CFLAGS = $(AM_CFLAGS)
tests_mkimages_LDADD = tests/libimgutil.la
TESTS += tests/check_ringmo_run.sh
EXTRA_DIST += tests/check_ringmo_run.sh

# Training golden files (tools/golden_train/README.md): the official code's training steps
# replayed through sm_trainer (check_golden_train links jansson to read the files' metadata).
check_PROGRAMS += tests/check_golden_train
TESTS += tests/check_golden_train
tests_check_golden_train_SOURCES = tests/check_golden_train.c
tests_check_golden_train_CFLAGS = $(TEST_CFLAGS) $(JANSSON_CFLAGS)
tests_check_golden_train_LDADD = $(TEST_LIBS) $(JANSSON_LIBS)
GOLDEN_TRAIN_CASES = vit_pretrain swin_pretrain vit_finetune swin_finetune vit_pretrain_accum2 \
	ringmo_vit_pretrain
EXTRA_DIST += tests/golden_train/README.md \
	$(GOLDEN_TRAIN_CASES:%=tests/golden_train/%.safetensors) \
	$(GOLDEN_TRAIN_CASES:%=tests/golden_train/%.yaml) \
	tools/golden_train/README.md tools/golden_train/gen_golden_train.py \
	tools/golden_train/replay.py tools/golden_train/ringmo_ref.py tools/golden_train/st.py \
	tools/golden_train/stubs/termcolor/__init__.py tools/golden_train/stubs/yacs/__init__.py \
	tools/golden_train/stubs/yacs/config.py tools/golden_train/stubs/timm/__init__.py \
	tools/golden_train/stubs/timm/data/__init__.py tools/golden_train/stubs/timm/loss/__init__.py \
	tools/golden_train/stubs/timm/models/__init__.py \
	tools/golden_train/stubs/timm/models/layers/__init__.py \
	tools/golden_train/stubs/timm/scheduler/__init__.py \
	tools/golden_train/stubs/timm/scheduler/cosine_lr.py \
	tools/golden_train/stubs/timm/scheduler/scheduler.py \
	tools/golden_train/stubs/timm/scheduler/step_lr.py \
	tools/golden_train/stubs/timm/utils/__init__.py

# `simmimctl convert`: PyTorch and MindSpore checkpoints to safetensors; the fixtures come from
# tools/make_convert_fixtures.py (python3-torch), rerun by hand when they must change.
check_PROGRAMS += tests/check_convert
TESTS += tests/check_convert
tests_check_convert_SOURCES = tests/check_convert.c
tests_check_convert_CFLAGS = $(TEST_CFLAGS)
tests_check_convert_LDADD = $(TEST_LIBS)
EXTRA_DIST += tools/make_convert_fixtures.py tests/fixtures/convert
