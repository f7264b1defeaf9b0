# core/image.mk: image decoding (JPEG/PNG/TIFF), transforms, RandAugment, Mixup/CutMix, random
# erasing, the mask generator, the per-sample pipelines and the threaded loader.
core_libsimmim_la_SOURCES += \
	core/image/image_internal.h \
	core/image/image.c \
	core/image/jpeg.c \
	core/image/png.c \
	core/image/tiff.c \
	core/image/resize.c \
	core/image/randaug.c \
	core/image/augment.c \
	core/image/mask.c \
	core/image/pipeline.c \
	core/image/loader.c

simmiminclude_HEADERS += \
	include/simmim/image.h \
	include/simmim/loader.h
EXTRA_DIST += docs/data.md
