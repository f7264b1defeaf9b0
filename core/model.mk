# core/model.mk - the SimMIM model and classifier around backbone plugins.
core_libsimmim_la_SOURCES += core/model.c
core_libsimmim_la_SOURCES += core/weights.c core/checkpoint.c core/train.c core/train_internal.h \
	core/recon.c core/confusion.c
simmiminclude_HEADERS += include/simmim/train.h
