/* simmim/registry.h - components registered by kind and name.
 *
 * Every pluggable piece (compute backend, backbone, dataset reader, optimizer, LR scheduler) is
 * a vtable that starts with an sm_component header. Plugins register them from their entry
 * function (plugin.h); the core never names a concrete backbone or dataset, it asks the
 * registry. Lookups ignore case ("AdamW" finds "adamw"); names are registered in lower case.
 *
 * A registry is built once (built-ins, then plugins) and is read-only afterwards, so it can be
 * shared between threads. Components stay valid until sm_registry_free, which also closes the
 * plugin files.
 */
#ifndef SIMMIM_REGISTRY_H
#define SIMMIM_REGISTRY_H

#include "simmim/common.h"
#include "simmim/config.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ABI version of the plugin interface (descriptor, component vtables, the types they use).
 * Major: bumped by any incompatible change (layout or meaning). Minor: bumped when slots are
 * appended at the end of a vtable; hosts check struct_size before using new slots.
 * 1.1: sm_backend_vtbl.set_precision, sm_backbone_vtbl.adapt_weight and .forward_features (with
 * sm_backbone_info.num_blocks), sm_scheduler_vtbl.lr_peak.
 * 1.2: sm_backend_vtbl.sgemm_bias. */
#define SM_ABI_MAJOR 1
#define SM_ABI_MINOR 2

/* True when a component's vtable `vt` of type `type` has `slot`: a component built against an
 * older minor ABI has a shorter vtable (hdr.struct_size), and slots past its end must not be
 * read. */
#define SM_HAS_SLOT(vt, type, slot)                                                              \
    ((vt)->hdr.struct_size >= offsetof(type, slot) + sizeof(((const type *)0)->slot))

/* sm_kind (the component kinds) is declared in simmim/config.h: config sections choose
 * components by kind. */

/* The common header of every component vtable (it is the first member). */
typedef struct sm_component {
    uint32_t abi_major;      /* SM_ABI_MAJOR the component was compiled against              */
    uint32_t struct_size;    /* sizeof the whole vtable as compiled (grows with new slots)   */
    sm_kind kind;
    const char *name;        /* lower case, [a-z0-9_]+, unique per kind                       */
    const char *description; /* one line                                                     */
    const sm_key *keys;      /* config keys of its section, ended by SM_KEY_END; may be NULL */
    /* Optional cross-field checks after the keys of `section` are typed and defaulted; `root`
     * is the whole tree. Append every problem to diag (severity error) and return SM_ECONFIG,
     * or return 0. */
    int (*validate)(const sm_cfg *section, const sm_cfg *root, sm_diag *diag);
    void *reserved[3];
} sm_component;

/* Initialises the header fields of a vtable `vt` of type T (use in static initialisers). */
#define SM_COMPONENT_INIT(T, kind_, name_, desc_, keys_, validate_)                            \
    { .abi_major = SM_ABI_MAJOR, .struct_size = sizeof(T), .kind = (kind_), .name = (name_),  \
      .description = (desc_), .keys = (keys_), .validate = (validate_) }

typedef struct sm_registry sm_registry;

/* new: an empty registry holding the built-in components (the `ref` backend). NULL on ENOMEM. */
SM_API sm_registry *sm_registry_new(void);
/* Frees the registry and dlcloses its plugins. NULL-safe. */
SM_API void sm_registry_free(sm_registry *reg);

/* Adds a component (borrowed: it must outlive the registry, which is true of a plugin's static
 * vtables). Called by plugins from register_components. Errors: SM_EINVAL (bad header: name
 * empty or not [a-z0-9_], kind out of range, struct too small for its kind), SM_EABI
 * (abi_major differs), SM_EEXIST (same kind and name already registered; the message names
 * both files). */
SM_API int sm_registry_add(sm_registry *reg, const sm_component *comp, sm_error *err);

/* Borrowed component, or NULL. Case-insensitive. */
SM_API const sm_component *sm_registry_find(const sm_registry *reg, sm_kind kind,
                                            const char *name);
/* Same, but on failure fills err with SM_ENOTFOUND and "unknown <kind> 'x' (available: a, b)". */
SM_API const sm_component *sm_registry_lookup(const sm_registry *reg, sm_kind kind,
                                              const char *name, sm_error *err);
/* Components of a kind, in registration order. */
SM_API size_t sm_registry_count(const sm_registry *reg, sm_kind kind);
SM_API const sm_component *sm_registry_get(const sm_registry *reg, sm_kind kind, size_t i);
/* Comma-separated names of a kind ("none" when empty), snprintf semantics. */
SM_API size_t sm_registry_names(const sm_registry *reg, sm_kind kind, char *buf, size_t n);

/* Where a component came from: the plugin file path, or "built-in". Plugin name and version
 * ("" for built-ins). Borrowed. */
SM_API const char *sm_registry_source(const sm_registry *reg, const sm_component *comp);
SM_API const char *sm_registry_plugin_version(const sm_registry *reg, const sm_component *comp);

/* Number of plugin files loaded, and the path of the i-th. */
SM_API size_t sm_registry_plugin_count(const sm_registry *reg);
SM_API const char *sm_registry_plugin_path(const sm_registry *reg, size_t i);

#ifdef __cplusplus
}
#endif
#endif /* SIMMIM_REGISTRY_H */
