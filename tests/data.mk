# tests/data.mk: decoders, transforms, mask generator, loader and dataset readers. Test images
# are written by the tests themselves (tests/imgutil.c) with known pixels.
check_LTLIBRARIES += tests/libimgutil.la
tests_libimgutil_la_SOURCES = tests/imgutil.c tests/imgutil.h
tests_libimgutil_la_CFLAGS = $(AM_CFLAGS) $(JPEG_CFLAGS) $(PNG_CFLAGS) $(TIFF_CFLAGS)
tests_libimgutil_la_LIBADD = $(JPEG_LIBS) $(PNG_LIBS) $(TIFF_LIBS)

SM_DATA_TEST_CFLAGS = $(TEST_CFLAGS) $(JPEG_CFLAGS) $(PNG_CFLAGS) $(TIFF_CFLAGS) $(ZLIB_CFLAGS)
SM_DATA_TEST_LIBS = tests/libimgutil.la $(TEST_LIBS) $(JPEG_LIBS) $(PNG_LIBS) $(TIFF_LIBS) \
	$(ZLIB_LIBS) $(PTHREAD_LIBS)

check_PROGRAMS += tests/check_image
TESTS += tests/check_image
tests_check_image_SOURCES = tests/check_image.c
tests_check_image_CFLAGS = $(SM_DATA_TEST_CFLAGS)
tests_check_image_LDADD = $(SM_DATA_TEST_LIBS)

check_PROGRAMS += tests/check_transforms tests/check_mask
TESTS += tests/check_transforms tests/check_mask
tests_check_transforms_SOURCES = tests/check_transforms.c
tests_check_transforms_CFLAGS = $(SM_DATA_TEST_CFLAGS)
tests_check_transforms_LDADD = $(SM_DATA_TEST_LIBS)
tests_check_mask_SOURCES = tests/check_mask.c
tests_check_mask_CFLAGS = $(SM_DATA_TEST_CFLAGS)
tests_check_mask_LDADD = $(SM_DATA_TEST_LIBS)

check_PROGRAMS += tests/check_loader
TESTS += tests/check_loader
tests_check_loader_SOURCES = tests/check_loader.c
tests_check_loader_CFLAGS = $(SM_DATA_TEST_CFLAGS)
tests_check_loader_LDADD = $(SM_DATA_TEST_LIBS)

check_PROGRAMS += tests/check_datasets
TESTS += tests/check_datasets
tests_check_datasets_SOURCES = tests/check_datasets.c
tests_check_datasets_CFLAGS = $(SM_DATA_TEST_CFLAGS)
tests_check_datasets_LDADD = datasets/libdscommon.la $(SM_DATA_TEST_LIBS)

check_PROGRAMS += tests/check_readers
TESTS += tests/check_readers
tests_check_readers_SOURCES = tests/check_readers.c
tests_check_readers_CFLAGS = $(SM_DATA_TEST_CFLAGS)
tests_check_readers_LDADD = $(SM_DATA_TEST_LIBS)

# `simmimctl data` end to end, with the plugins of the build tree ($SIMMIM_PLUGIN_PATH).
check_PROGRAMS += tests/check_cmd_data
TESTS += tests/check_cmd_data
tests_check_cmd_data_SOURCES = tests/check_cmd_data.c
tests_check_cmd_data_CFLAGS = $(SM_DATA_TEST_CFLAGS)
tests_check_cmd_data_LDADD = $(SM_DATA_TEST_LIBS)
