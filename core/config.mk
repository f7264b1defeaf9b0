# core/config.mk: filled in by its area
core_libsimmim_la_SOURCES += core/config.c
