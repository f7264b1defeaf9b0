/* core/registry/registry.c - components by kind and name; which plugin file each came from. */
#include "registry/registry_internal.h"

/* The registry checks every kind's vtable (size, required slots) and registers the built-in
 * ref backend, so it sees the component headers of the layers above (docs/architecture.md). */
#include "simmim/backend.h"
#include "simmim/data.h"
#include "simmim/model.h"
#include "simmim/optim.h"

#include <ctype.h>
#include <dlfcn.h>
#include <stddef.h>

typedef struct sm__entry {
    const sm_component *comp;
    int plugin; /* index into plugins, -1 = built-in */
} sm__entry;

typedef struct sm__plugin {
    char *path;    /* resolved path of the file      */
    char *stem;    /* file name, for shadowing        */
    char *name;
    char *version;
    void *handle;  /* dlopen handle (NULL for tests) */
} sm__plugin;

struct sm_registry {
    sm__entry *entries[SM_KIND_COUNT];
    size_t n[SM_KIND_COUNT], cap[SM_KIND_COUNT];
    sm__plugin *plugins;
    size_t n_plugins, cap_plugins;
    int loading; /* plugin index being registered, -1 = built-in */
    int failed;  /* a sm_registry_add failed while loading (first code)                     */
    sm_error fail_err;
};

/* Smallest vtable size a component of each kind must have: its size at ABI 1.0 (slots added
 * by later minor versions are optional and checked with SM_HAS_SLOT). */
static size_t sm__min_struct_size(sm_kind kind)
{
    switch (kind) {
    case SM_KIND_BACKEND: return offsetof(sm_backend_vtbl, set_precision);
    case SM_KIND_BACKBONE: return offsetof(sm_backbone_vtbl, adapt_weight);
    case SM_KIND_DATASET: return sizeof(sm_dataset_vtbl);
    case SM_KIND_OPTIMIZER: return sizeof(sm_optimizer_vtbl);
    case SM_KIND_SCHEDULER: return offsetof(sm_scheduler_vtbl, lr_peak);
    default: return sizeof(sm_component);
    }
}

sm_registry *sm_registry_new(void)
{
    sm_registry *reg = calloc(1, sizeof *reg);
    if (!reg) return NULL;
    reg->loading = -1;
    if (sm_registry_add(reg, &sm_backend_ref_vtbl()->hdr, NULL) != 0) {
        sm_registry_free(reg);
        return NULL;
    }
    return reg;
}

void sm_registry_free(sm_registry *reg)
{
    if (!reg) return;
    for (int k = 0; k < SM_KIND_COUNT; k++) free(reg->entries[k]);
    for (size_t i = 0; i < reg->n_plugins; i++) {
        sm__plugin *p = &reg->plugins[i];
        if (p->handle) dlclose(p->handle);
        free(p->path);
        free(p->stem);
        free(p->name);
        free(p->version);
    }
    free(reg->plugins);
    free(reg);
}

static const char *sm__entry_source(const sm_registry *reg, int plugin)
{
    return plugin < 0 ? "built-in" : reg->plugins[plugin].path;
}

static bool sm__valid_name(const char *name)
{
    if (!name || !*name) return false;
    for (const char *p = name; *p; p++)
        if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '_')) return false;
    return true;
}

static int sm__registry_add(sm_registry *reg, const sm_component *comp, sm_error *err);

/* The first required slot a component's vtable leaves NULL, or NULL if none. */
static const char *sm__missing_slot(const sm_component *c)
{
#define SM__NEED(T, slot)                                                                      \
    if (!((const T *)(const void *)c)->slot) return #slot
    switch (c->kind) {
    case SM_KIND_BACKEND:
        SM__NEED(sm_backend_vtbl, create);
        SM__NEED(sm_backend_vtbl, destroy);
        SM__NEED(sm_backend_vtbl, sgemm);
        break;
    case SM_KIND_BACKBONE:
        SM__NEED(sm_backbone_vtbl, create);
        SM__NEED(sm_backbone_vtbl, destroy);
        SM__NEED(sm_backbone_vtbl, info);
        SM__NEED(sm_backbone_vtbl, init);
        SM__NEED(sm_backbone_vtbl, forward);
        break;
    case SM_KIND_DATASET:
        SM__NEED(sm_dataset_vtbl, open);
        SM__NEED(sm_dataset_vtbl, close);
        SM__NEED(sm_dataset_vtbl, count);
        SM__NEED(sm_dataset_vtbl, num_classes);
        SM__NEED(sm_dataset_vtbl, get);
        break;
    case SM_KIND_OPTIMIZER:
        SM__NEED(sm_optimizer_vtbl, create);
        SM__NEED(sm_optimizer_vtbl, destroy);
        SM__NEED(sm_optimizer_vtbl, step);
        SM__NEED(sm_optimizer_vtbl, state_count);
        SM__NEED(sm_optimizer_vtbl, state_name);
        break;
    case SM_KIND_SCHEDULER:
        SM__NEED(sm_scheduler_vtbl, create);
        SM__NEED(sm_scheduler_vtbl, destroy);
        SM__NEED(sm_scheduler_vtbl, lr);
        break;
    default: break;
    }
#undef SM__NEED
    return NULL;
}

int sm_registry_add(sm_registry *reg, const sm_component *comp, sm_error *err)
{
    sm_error local;
    sm_error_clear(&local);
    int rc = sm__registry_add(reg, comp, &local);
    if (rc) {
        /* remembered, so a plugin that ignores the failure is still refused */
        if (reg && reg->loading >= 0 && !reg->failed) {
            reg->failed = rc;
            reg->fail_err = local;
        }
        if (err && !err->code) *err = local;
    }
    return rc;
}

static int sm__registry_add(sm_registry *reg, const sm_component *comp, sm_error *err)
{
    const char *file = reg && reg->loading >= 0 ? reg->plugins[reg->loading].path : NULL;
    if (!reg || !comp) return sm_error_set(err, SM_EINVAL, file, 0, 0, NULL, "NULL component");
    if ((unsigned)comp->kind >= SM_KIND_COUNT)
        return sm_error_set(err, SM_EINVAL, file, 0, 0, NULL,
                            "component '%s' has an invalid kind %d",
                            comp->name ? comp->name : "?", (int)comp->kind);
    if (!sm__valid_name(comp->name))
        return sm_error_set(err, SM_EINVAL, file, 0, 0, NULL,
                            "%s component name '%s' is invalid (use [a-z0-9_]+)",
                            sm_kind_name(comp->kind), comp->name ? comp->name : "");
    if (comp->abi_major != SM_ABI_MAJOR)
        return sm_error_set(err, SM_EABI, file, 0, 0, NULL,
                            "%s '%s' was built for plugin ABI major %u, this simmim has ABI %d.%d",
                            sm_kind_name(comp->kind), comp->name, comp->abi_major, SM_ABI_MAJOR,
                            SM_ABI_MINOR);
    if (comp->struct_size < sm__min_struct_size(comp->kind))
        return sm_error_set(err, SM_EABI, file, 0, 0, NULL,
                            "%s '%s' has a %u-byte vtable, smaller than the %zu bytes of ABI %d.0",
                            sm_kind_name(comp->kind), comp->name, comp->struct_size,
                            sm__min_struct_size(comp->kind), SM_ABI_MAJOR);
    if (!comp->description)
        return sm_error_set(err, SM_EINVAL, file, 0, 0, NULL, "%s '%s' has no description",
                            sm_kind_name(comp->kind), comp->name);
    char why[SM__ERR_TEXT_MAX];
    if (sm__key_table_check(comp->keys, comp->kind, why, sizeof why) != 0)
        return sm_error_set(err, SM_EINVAL, file, 0, 0, NULL, "%s '%s': bad config key table: %s",
                            sm_kind_name(comp->kind), comp->name, why);
    const char *slot = sm__missing_slot(comp);
    if (slot)
        return sm_error_set(err, SM_EINVAL, file, 0, 0, NULL,
                            "%s '%s' leaves the required vtable slot '%s' empty",
                            sm_kind_name(comp->kind), comp->name, slot);
    for (size_t i = 0; i < reg->n[comp->kind]; i++) {
        const sm__entry *e = &reg->entries[comp->kind][i];
        if (sm__strcasecmp(e->comp->name, comp->name) == 0)
            return sm_error_set(err, SM_EEXIST, file, 0, 0, NULL,
                                "%s '%s' is registered twice: by %s and by %s",
                                sm_kind_name(comp->kind), comp->name,
                                sm__entry_source(reg, e->plugin), file ? file : "built-in");
    }
    sm_kind k = comp->kind;
    if (reg->n[k] == reg->cap[k]) {
        size_t cap = reg->cap[k] ? reg->cap[k] * 2 : 8;
        sm__entry *v = realloc(reg->entries[k], cap * sizeof *v);
        if (!v) return sm_error_set(err, SM_ENOMEM, file, 0, 0, NULL, "out of memory");
        reg->entries[k] = v;
        reg->cap[k] = cap;
    }
    reg->entries[k][reg->n[k]++] = (sm__entry){comp, reg->loading};
    return 0;
}

const sm_component *sm_registry_find(const sm_registry *reg, sm_kind kind, const char *name)
{
    if (!reg || !name || (unsigned)kind >= SM_KIND_COUNT) return NULL;
    for (size_t i = 0; i < reg->n[kind]; i++)
        if (sm__strcasecmp(reg->entries[kind][i].comp->name, name) == 0)
            return reg->entries[kind][i].comp;
    return NULL;
}

size_t sm_registry_names(const sm_registry *reg, sm_kind kind, char *buf, size_t n)
{
    size_t len = 0, count = reg && (unsigned)kind < SM_KIND_COUNT ? reg->n[kind] : 0;
    if (n) buf[0] = '\0';
    if (count == 0) return sm__strlcpy(buf, "none", n);
    for (size_t i = 0; i < count; i++) {
        int r = snprintf(len < n ? buf + len : NULL, len < n ? n - len : 0, "%s%s",
                         i ? ", " : "", reg->entries[kind][i].comp->name);
        if (r > 0) len += (size_t)r;
    }
    return len;
}

char *sm__registry_names_dup(const sm_registry *reg, sm_kind kind)
{
    size_t n = sm_registry_names(reg, kind, NULL, 0) + 1;
    char *names = malloc(n);
    if (names) sm_registry_names(reg, kind, names, n);
    return names;
}

const sm_component *sm_registry_lookup(const sm_registry *reg, sm_kind kind, const char *name,
                                       sm_error *err)
{
    const sm_component *c = sm_registry_find(reg, kind, name);
    if (c) return c;
    char *names = sm__registry_names_dup(reg, kind);
    sm_error_set(err, SM_ENOTFOUND, NULL, 0, 0, NULL, "unknown %s '%s' (available: %s)",
                 sm_kind_name(kind) ? sm_kind_name(kind) : "component", name ? name : "",
                 names ? names : "?");
    free(names);
    return NULL;
}

size_t sm_registry_count(const sm_registry *reg, sm_kind kind)
{
    return reg && (unsigned)kind < SM_KIND_COUNT ? reg->n[kind] : 0;
}

const sm_component *sm_registry_get(const sm_registry *reg, sm_kind kind, size_t i)
{
    if (!reg || (unsigned)kind >= SM_KIND_COUNT || i >= reg->n[kind]) return NULL;
    return reg->entries[kind][i].comp;
}

static const sm__entry *sm__find_entry(const sm_registry *reg, const sm_component *comp)
{
    if (!reg || !comp || (unsigned)comp->kind >= SM_KIND_COUNT) return NULL;
    for (size_t i = 0; i < reg->n[comp->kind]; i++)
        if (reg->entries[comp->kind][i].comp == comp) return &reg->entries[comp->kind][i];
    return NULL;
}

const char *sm_registry_source(const sm_registry *reg, const sm_component *comp)
{
    const sm__entry *e = sm__find_entry(reg, comp);
    return e ? sm__entry_source(reg, e->plugin) : "";
}

const char *sm_registry_plugin_version(const sm_registry *reg, const sm_component *comp)
{
    const sm__entry *e = sm__find_entry(reg, comp);
    return e && e->plugin >= 0 ? reg->plugins[e->plugin].version : "";
}

size_t sm_registry_plugin_count(const sm_registry *reg) { return reg ? reg->n_plugins : 0; }

const char *sm_registry_plugin_path(const sm_registry *reg, size_t i)
{
    return reg && i < reg->n_plugins ? reg->plugins[i].path : NULL;
}

/* ---- used by the plugin loader ------------------------------------------------------------ */

bool sm__registry_has_stem(const sm_registry *reg, const char *stem)
{
    for (size_t i = 0; i < reg->n_plugins; i++)
        if (strcmp(reg->plugins[i].stem, stem) == 0) return true;
    return false;
}

int sm__registry_begin(sm_registry *reg, const char *path, const char *stem)
{
    if (reg->n_plugins == reg->cap_plugins) {
        size_t cap = reg->cap_plugins ? reg->cap_plugins * 2 : 8;
        sm__plugin *v = realloc(reg->plugins, cap * sizeof *v);
        if (!v) return SM_ENOMEM;
        reg->plugins = v;
        reg->cap_plugins = cap;
    }
    sm__plugin *p = &reg->plugins[reg->n_plugins];
    memset(p, 0, sizeof *p);
    p->path = sm__strdup(path);
    p->stem = sm__strdup(stem);
    if (!p->path || !p->stem) {
        free(p->path);
        free(p->stem);
        return SM_ENOMEM;
    }
    reg->loading = (int)reg->n_plugins++;
    reg->failed = 0;
    sm_error_clear(&reg->fail_err);
    return 0;
}

int sm__registry_failed(const sm_registry *reg, sm_error *err)
{
    if (reg->failed && err) *err = reg->fail_err;
    return reg->failed;
}

void sm__registry_commit(sm_registry *reg, void *handle, const char *name, const char *version)
{
    sm__plugin *p = &reg->plugins[reg->loading];
    p->handle = handle;
    p->name = sm__strdup(name);
    p->version = sm__strdup(version);
    reg->loading = -1;
}

void sm__registry_rollback(sm_registry *reg)
{
    int idx = reg->loading;
    if (idx < 0) return;
    for (int k = 0; k < SM_KIND_COUNT; k++) {
        size_t w = 0;
        for (size_t i = 0; i < reg->n[k]; i++)
            if (reg->entries[k][i].plugin != idx) reg->entries[k][w++] = reg->entries[k][i];
        reg->n[k] = w;
    }
    sm__plugin *p = &reg->plugins[idx];
    free(p->path);
    free(p->stem);
    reg->n_plugins--; /* idx is always the last one */
    reg->loading = -1;
}
