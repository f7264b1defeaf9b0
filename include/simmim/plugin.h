/* simmim/plugin.h - the plugin ABI and loader.
 *
 * A plugin is a shared object that exports exactly one symbol, `simmim_plugin_describe`,
 * returning a constant descriptor. The descriptor's first fields (ABI major/minor and the struct
 * size) are fixed forever, so any host can read them before trusting anything else. A host
 * accepts a plugin only if its ABI major equals the host's and its minor is not newer; then it
 * calls register_components, which adds the plugin's components to the registry
 * (sm_registry_add). If registration fails, everything the plugin added is removed again.
 *
 * Writing a plugin:
 *
 *     #include <simmim/simmim.h>
 *     static const sm_backbone_vtbl my_backbone = { .hdr = SM_COMPONENT_INIT(...), ... };
 *     static int my_register(sm_registry *reg, sm_error *err) {
 *         return sm_registry_add(reg, &my_backbone.hdr, err);
 *     }
 *     SM_PLUGIN_DEFINE(mybackbone, "1.0.0", "My backbone", "MIT", my_register)
 *
 * and build it with `-module -avoid-version -export-symbols-regex '^simmim_plugin_'`, file name
 * sm_<name>.so. See docs/writing-a-backbone.md.
 *
 * Search order for plugin directories (a plugin file name found earlier shadows the same file
 * name later, like PATH): directories given on the command line, `plugin_path` in the config,
 * the colon-separated SIMMIM_PLUGIN_PATH environment variable, then the installed plugin
 * directory. Two different files registering the same (kind, name) is an error.
 */
#ifndef SIMMIM_PLUGIN_H
#define SIMMIM_PLUGIN_H

#include "simmim/common.h"
#include "simmim/registry.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SM_PLUGIN_ENTRY "simmim_plugin_describe"

typedef struct sm_plugin_desc {
    uint16_t abi_major;      /* fixed position: SM_ABI_MAJOR as compiled                     */
    uint16_t abi_minor;      /* fixed position: SM_ABI_MINOR as compiled                     */
    uint32_t struct_size;    /* fixed position: sizeof(sm_plugin_desc) as compiled           */
    const char *name;        /* short name, e.g. "vit"                                        */
    const char *version;     /* the plugin's own version, e.g. "0.1.0"                        */
    const char *description; /* one line                                                     */
    const char *license;     /* e.g. "MIT"                                                    */
    /* Required. Adds components with sm_registry_add; returns 0 or a negative status. */
    int (*register_components)(sm_registry *reg, sm_error *err);
    void *reserved[4];       /* room to grow without an ABI break                            */
} sm_plugin_desc;

typedef const sm_plugin_desc *(*sm_plugin_describe_fn)(void);

#define SM_PLUGIN_EXPORT __attribute__((visibility("default")))

/* Defines the descriptor and the exported entry point. */
#define SM_PLUGIN_DEFINE(name_, version_, description_, license_, register_fn_)                \
    static const sm_plugin_desc sm__plugin_desc = {                                            \
        .abi_major = SM_ABI_MAJOR,                                                             \
        .abi_minor = SM_ABI_MINOR,                                                             \
        .struct_size = (uint32_t)sizeof(sm_plugin_desc),                                       \
        .name = #name_,                                                                        \
        .version = (version_),                                                                 \
        .description = (description_),                                                         \
        .license = (license_),                                                                 \
        .register_components = (register_fn_),                                                \
    };                                                                                         \
    SM_PLUGIN_EXPORT const sm_plugin_desc *simmim_plugin_describe(void);                       \
    SM_PLUGIN_EXPORT const sm_plugin_desc *simmim_plugin_describe(void)                        \
    {                                                                                          \
        return &sm__plugin_desc;                                                               \
    }

/* Loads one plugin file. Before dlopen: the file must be a regular file (after resolving
 * symlinks), owned by the current user or root, and not group- or world-writable. dlopen uses
 * RTLD_NOW | RTLD_LOCAL (unresolved symbols fail here). Then: entry symbol present, descriptor
 * non-NULL, abi_major equal, abi_minor not newer, struct_size large enough, required fields set.
 * Only then is register_components called. Every refusal names the file and the reason (with
 * both versions for ABI refusals). Errors: SM_EPLUGIN, SM_EABI, SM_EPERM, SM_EEXIST, or what
 * register_components returned. */
SM_API int sm_plugin_load(sm_registry *reg, const char *path, sm_error *err);

/* Loads every "sm_*.so" file of a directory in name order, skipping file names already loaded
 * (shadowing). Each refused file adds an error to diag; loading continues with the next file.
 * A missing directory is not an error. Returns 0 if every file loaded, else the first error. */
SM_API int sm_plugin_load_dir(sm_registry *reg, const char *dir, sm_diag *diag);

/* Loads the standard search path: cli_dirs, then cfg_dirs, then $SIMMIM_PLUGIN_PATH, then the
 * installed directory (sm_plugin_default_dir). Returns as sm_plugin_load_dir. */
SM_API int sm_plugin_load_path(sm_registry *reg, const char *const *cli_dirs, size_t n_cli,
                               const char *const *cfg_dirs, size_t n_cfg, sm_diag *diag);

/* The installed plugin directory ($(pkglibdir)/plugins as configured). */
SM_API const char *sm_plugin_default_dir(void);

#ifdef __cplusplus
}
#endif
#endif /* SIMMIM_PLUGIN_H */
