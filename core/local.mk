# core/local.mk - libsimmim and simmimctl. The library is built from one fragment per layer,
# lowest first (docs/architecture.md: what each layer may include):
#   base  config  registry  io  tensor  data  model  train  cli
lib_LTLIBRARIES += core/libsimmim.la
core_libsimmim_la_SOURCES =
core_libsimmim_la_CFLAGS = $(AM_CFLAGS) $(YAML_CFLAGS) $(JANSSON_CFLAGS) $(JPEG_CFLAGS) \
	$(PNG_CFLAGS) $(TIFF_CFLAGS) $(ZLIB_CFLAGS) $(CAIRO_CFLAGS) $(MPI_CFLAGS)
core_libsimmim_la_LIBADD = $(YAML_LIBS) $(JANSSON_LIBS) $(JPEG_LIBS) $(PNG_LIBS) \
	$(TIFF_LIBS) $(ZLIB_LIBS) $(CAIRO_LIBS) $(MPI_LIBS) $(PTHREAD_LIBS) -lm
core_libsimmim_la_LDFLAGS = -no-undefined -version-info $(SM_LT_VERSION) \
	-export-symbols-regex '^sm_[^_]' $(OPENMP_CFLAGS)

simmiminclude_HEADERS += \
	include/simmim/simmim.h \
	include/simmim/common.h \
	include/simmim/comm.h \
	include/simmim/log.h \
	include/simmim/config.h \
	include/simmim/registry.h \
	include/simmim/plugin.h \
	include/simmim/rng.h \
	include/simmim/tensor.h \
	include/simmim/ops.h \
	include/simmim/backend.h \
	include/simmim/params.h \
	include/simmim/io.h \
	include/simmim/model.h \
	include/simmim/data.h
EXTRA_DIST += include/simmim/version.h.in

include core/base/base.mk
include core/config/config.mk
include core/registry/registry.mk
include core/io/io.mk
include core/tensor/tensor.mk
include core/data/data.mk
include core/model/model.mk
include core/train/train.mk
include core/cli/cli.mk
