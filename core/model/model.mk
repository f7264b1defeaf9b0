# core/model/model.mk - the SimMIM model and classifier around backbone plugins, loading
# foreign weights (weights.c) and the reconstruction figure (recon.c).
core_libsimmim_la_SOURCES += \
	core/model/model.c \
	core/model/weights.c \
	core/model/recon.c
