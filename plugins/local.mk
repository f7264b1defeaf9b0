# plugins/local.mk - compute backend plugins. sm_blis.so: GEMM through BLIS (plugins/blis);
# sm_onednn.so: oneDNN matmul primitives (plugins/onednn), when configure found oneDNN 2.x.
plugin_LTLIBRARIES += plugins/sm_blis.la
plugins_sm_blis_la_SOURCES = plugins/blis/sm_blis.c
plugins_sm_blis_la_CFLAGS = $(AM_CFLAGS) $(BLIS_CFLAGS)
plugins_sm_blis_la_LDFLAGS = $(SM_PLUGIN_FLAGS) $(OPENMP_CFLAGS)
plugins_sm_blis_la_LIBADD = $(SM_PLUGIN_LIBS) $(BLIS_LIBS) -lm

if SM_ONEDNN
plugin_LTLIBRARIES += plugins/sm_onednn.la
plugins_sm_onednn_la_SOURCES = plugins/onednn/sm_onednn.c
plugins_sm_onednn_la_LDFLAGS = $(SM_PLUGIN_FLAGS) $(OPENMP_CFLAGS)
plugins_sm_onednn_la_LIBADD = $(SM_PLUGIN_LIBS) $(ONEDNN_LIBS) $(PTHREAD_LIBS)
endif
