# plugins/local.mk - compute backend plugins. sm_blis.so: GEMM through BLIS (plugins/blis).
plugin_LTLIBRARIES += plugins/sm_blis.la
plugins_sm_blis_la_SOURCES = plugins/blis/sm_blis.c
plugins_sm_blis_la_CFLAGS = $(AM_CFLAGS) $(BLIS_CFLAGS)
plugins_sm_blis_la_LDFLAGS = $(SM_PLUGIN_FLAGS) $(OPENMP_CFLAGS)
plugins_sm_blis_la_LIBADD = $(SM_PLUGIN_LIBS) $(BLIS_LIBS) -lm
