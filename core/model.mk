# core/model.mk - the SimMIM model and classifier around backbone plugins.
core_libsimmim_la_SOURCES += core/model.c
