# core/config/config.mk - the configuration system: libyaml -> location-aware tree, RingMo
# merges and overrides (config_read), the core schema (config_schema), YAML output
# (config_emit), the tree and its getters (config_tree). Validation against the registered
# components is one layer up (core/registry/validate.c).
core_libsimmim_la_SOURCES += \
	core/config/config_internal.h \
	core/config/config_tree.c \
	core/config/config_read.c \
	core/config/config_schema.c \
	core/config/config_emit.c
