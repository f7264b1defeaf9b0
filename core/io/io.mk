# core/io/io.mk - tensor files: the safetensors reader and atomic writer; the readers of foreign
# checkpoints (torch.save zip and legacy streams through a restricted pickle reader, MindSpore
# .ckpt) and the RingMo-Framework name mapping, for `simmimctl convert`.
core_libsimmim_la_SOURCES += \
	core/io/io_internal.h \
	core/io/safetensors.c \
	core/io/json_read.c \
	core/io/zip.c \
	core/io/pickle.c \
	core/io/torch_ckpt.c \
	core/io/ms_ckpt.c \
	core/io/ringmo_names.c \
	core/io/ckpt.c
EXTRA_DIST += docs/tensor-format.md docs/convert.md
