# datasets/local.mk: dataset reader plugins (kind "dataset"), one sm_<name>.so each, sharing the
# private helpers of datasets/common (linked in, never exported).
noinst_LTLIBRARIES += datasets/libdscommon.la
datasets_libdscommon_la_SOURCES = datasets/common/dscommon.c datasets/common/dscommon.h
datasets_libdscommon_la_CFLAGS = $(AM_CFLAGS)
datasets_libdscommon_la_LIBADD = -lm

plugin_LTLIBRARIES += datasets/sm_aircas.la datasets/sm_nwpu_resisc45.la datasets/sm_imagenet.la \
	datasets/sm_idx.la

datasets_sm_aircas_la_SOURCES = datasets/aircas/aircas.c
datasets_sm_aircas_la_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS)
datasets_sm_aircas_la_LDFLAGS = $(SM_PLUGIN_FLAGS)
datasets_sm_aircas_la_LIBADD = datasets/libdscommon.la $(SM_PLUGIN_LIBS) $(JANSSON_LIBS)

datasets_sm_nwpu_resisc45_la_SOURCES = datasets/nwpu_resisc45/nwpu.c
datasets_sm_nwpu_resisc45_la_LDFLAGS = $(SM_PLUGIN_FLAGS)
datasets_sm_nwpu_resisc45_la_LIBADD = datasets/libdscommon.la $(SM_PLUGIN_LIBS)

datasets_sm_imagenet_la_SOURCES = datasets/imagenet/imagenet.c
datasets_sm_imagenet_la_LDFLAGS = $(SM_PLUGIN_FLAGS)
datasets_sm_imagenet_la_LIBADD = datasets/libdscommon.la $(SM_PLUGIN_LIBS)

datasets_sm_idx_la_SOURCES = datasets/idx/idx.c
datasets_sm_idx_la_CFLAGS = $(AM_CFLAGS) $(ZLIB_CFLAGS)
datasets_sm_idx_la_LDFLAGS = $(SM_PLUGIN_FLAGS)
datasets_sm_idx_la_LIBADD = datasets/libdscommon.la $(SM_PLUGIN_LIBS) $(ZLIB_LIBS)
