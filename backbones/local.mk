# backbones/local.mk - backbone plugins: vit, swin.
plugin_LTLIBRARIES += backbones/sm_vit.la backbones/sm_swin.la
backbones_sm_vit_la_SOURCES = backbones/vit/vit.c
backbones_sm_vit_la_LDFLAGS = $(SM_PLUGIN_FLAGS)
backbones_sm_vit_la_LIBADD = $(SM_PLUGIN_LIBS) -lm
backbones_sm_swin_la_SOURCES = backbones/swin/swin.c
backbones_sm_swin_la_LDFLAGS = $(SM_PLUGIN_FLAGS)
backbones_sm_swin_la_LIBADD = $(SM_PLUGIN_LIBS) -lm
