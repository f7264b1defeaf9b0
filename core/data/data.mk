# core/data/data.mk - the data pipeline: image decoding (JPEG/PNG/TIFF), transforms,
# RandAugment, Mixup/CutMix, random erasing, the mask generator, the per-sample pipelines,
# dataset opening and the threaded loader. Private header: core/data/data_internal.h.
core_libsimmim_la_SOURCES += \
	core/data/data_internal.h \
	core/data/image.c \
	core/data/jpeg.c \
	core/data/png.c \
	core/data/tiff.c \
	core/data/resize.c \
	core/data/randaug.c \
	core/data/augment.c \
	core/data/mask.c \
	core/data/pipeline.c \
	core/data/loader.c

simmiminclude_HEADERS += \
	include/simmim/image.h \
	include/simmim/loader.h
EXTRA_DIST += docs/data.md
