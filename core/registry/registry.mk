# core/registry/registry.mk - components by (kind, name), the dlopen plugin loader, and the
# validation of a config against the registered components' key schemas (validate.c).
core_libsimmim_la_SOURCES += \
	core/registry/registry_internal.h \
	core/registry/registry.c \
	core/registry/plugin.c \
	core/registry/validate.c
