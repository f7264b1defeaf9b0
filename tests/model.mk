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

# The example backbone, built out of tree against the installed headers and pkg-config.
TESTS += tests/check_oot_backbone.sh
EXTRA_DIST += tests/check_oot_backbone.sh docs/writing-a-backbone.md \
	docs/examples/toy_backbone/toy.c docs/examples/toy_backbone/Makefile \
	docs/examples/toy_backbone/toy.yaml
