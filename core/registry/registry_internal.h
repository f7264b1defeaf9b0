/* core/registry/registry_internal.h - the registry's interface to the plugin loader. */
#ifndef SIMMIM_CORE_REGISTRY_INTERNAL_H
#define SIMMIM_CORE_REGISTRY_INTERNAL_H

#include "config/config_internal.h"
#include "simmim/registry.h"
#include "simmim/plugin.h"

/* True if a plugin file with this file name was already loaded (shadowing). */
bool sm__registry_has_stem(const sm_registry *reg, const char *stem);
/* Starts loading a plugin: components added until commit/rollback belong to it. */
int sm__registry_begin(sm_registry *reg, const char *path, const char *stem);
/* The first sm_registry_add failure since begin (0 if none), copied into err. */
int sm__registry_failed(const sm_registry *reg, sm_error *err);
/* Keeps what was added; the registry owns the dlopen handle from now on. */
void sm__registry_commit(sm_registry *reg, void *handle, const char *name, const char *version);
/* Removes everything added since begin. */
void sm__registry_rollback(sm_registry *reg);
/* sm_registry_names, whole, malloc'd (NULL on ENOMEM). */
char *sm__registry_names_dup(const sm_registry *reg, sm_kind kind);

#endif
