# core/config.mk - the configuration system: libyaml -> location-aware tree, RingMo merges and
# overrides (config_read), the core schema (config_schema), validation (config_validate), YAML
# output (config_emit), the tree and its getters (config_tree).
core_libsimmim_la_SOURCES += \
	core/config_internal.h \
	core/config_tree.c \
	core/config_read.c \
	core/config_schema.c \
	core/config_validate.c \
	core/config_emit.c
