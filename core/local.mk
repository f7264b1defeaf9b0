# libsimmim: core services shared by everything (errors, logging, rng, registry, plugin loader)
# and the simmimctl front end. Other core areas add their sources in core/*.mk.
lib_LTLIBRARIES += core/libsimmim.la
core_libsimmim_la_SOURCES = \
	core/internal.h \
	core/status.c \
	core/error.c \
	core/diag.c \
	core/log.c \
	core/rng.c \
	core/registry.c \
	core/registry_internal.h \
	core/plugin.c \
	core/version.c
core_libsimmim_la_CFLAGS = $(AM_CFLAGS) $(YAML_CFLAGS) $(JANSSON_CFLAGS) $(JPEG_CFLAGS) \
	$(PNG_CFLAGS) $(TIFF_CFLAGS) $(ZLIB_CFLAGS)
core_libsimmim_la_LIBADD = $(YAML_LIBS) $(JANSSON_LIBS) $(JPEG_LIBS) $(PNG_LIBS) \
	$(TIFF_LIBS) $(ZLIB_LIBS) $(PTHREAD_LIBS) -lm
core_libsimmim_la_LDFLAGS = -no-undefined -version-info $(SM_LT_VERSION) \
	-export-symbols-regex '^sm_[^_]' $(OPENMP_CFLAGS)

simmiminclude_HEADERS += \
	include/simmim/simmim.h \
	include/simmim/common.h \
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

bin_PROGRAMS += core/cli/simmimctl
core_cli_simmimctl_SOURCES = \
	core/cli/cli.h \
	core/cli/simmimctl.c \
	core/cli/cli_util.c \
	core/cli/cmd_config.c \
	core/cli/cmd_plugins.c \
	core/cli/cmd_inspect.c \
	core/cli/cmd_verify.c \
	core/cli/cmd_model.c \
	core/cli/cmd_reconstruct.c \
	core/cli/cmd_extract.c \
	core/cli/cmd_probe.c \
	core/cli/cmd_data.c
core_cli_simmimctl_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS)
core_cli_simmimctl_LDADD = core/libsimmim.la $(JANSSON_LIBS) -lm
