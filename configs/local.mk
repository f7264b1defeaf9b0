# configs/local.mk - the RingMo-Framework SimMIM configs (spec section 11) and their base files,
# installed under $(configsdir) = $(pkgdatadir)/configs with the same layout (base_config paths
# are relative to the including file).
dist_configs_DATA += \
	configs/pretrain_simmim_vit_base_p16_aircas_224_200ep.yaml \
	configs/pretrain_simmim_swin_base_p4_w6_aircas_192_200ep.yaml \
	configs/pretrain_simmim_swin_base_p4_w6_imagenet1k_192_100ep.yaml \
	configs/finetune_simmim_vit_base_p16_nwpu20_224_100ep.yaml \
	configs/finetune_simmim_swin_base_p4_w7_nwpu_224_200ep.yaml \
	configs/finetune_simmim_swin_base_p4_w7_imagenet1k_224_100ep.yaml \
	configs/demo_pretrain_vit_fashion_mnist.yaml \
	configs/demo_finetune_vit_fashion_mnist.yaml \
	configs/demo_finetune_vit_fashion_mnist_random.yaml

configs_basedir = $(configsdir)/base
dist_configs_base_DATA = configs/base/__base__.yaml
configs_contextdir = $(configsdir)/base/context
dist_configs_context_DATA = configs/base/context/default_mode.yaml
configs_datasetsdir = $(configsdir)/base/datasets
dist_configs_datasets_DATA = \
	configs/base/datasets/pretrain_dataset.yaml \
	configs/base/datasets/finetune_dataset.yaml
configs_modelsdir = $(configsdir)/base/models
dist_configs_models_DATA = \
	configs/base/models/simmim_vit_base_p16.yaml \
	configs/base/models/simmim_swin_base_p4_w6.yaml \
	configs/base/models/vit_base_p16.yaml \
	configs/base/models/swin_base_p4_w7.yaml
configs_schedulesdir = $(configsdir)/base/schedules
dist_configs_schedules_DATA = configs/base/schedules/default_schedule.yaml
configs_runnerdir = $(configsdir)/base/runner
dist_configs_runner_DATA = configs/base/runner/runner.yaml
configs_modelartsdir = $(configsdir)/base/modelarts
dist_configs_modelarts_DATA = configs/base/modelarts/aicc.yaml
# the scaled protocol of docs/protocol.md (bench/protocol, bench/seeds; not run by make check)
configs_protocoldir = $(configsdir)/protocol
dist_configs_protocol_DATA = configs/protocol/pretrain.yaml configs/protocol/finetune.yaml
# the curves of the demo's three runs, shown in README.md
EXTRA_DIST += docs/img/demo-curves.png
