/* simmim/config.h - YAML configuration with RingMo-Framework semantics.
 *
 * A run is described by one YAML file in RingMo-Framework's schema (lower-case sections
 * `model`, `train_config`, `optimizer`, `lr_schedule`, `pretrain_dataset`, `finetune_dataset`,
 * `callback`, `train_wrapper`, `seed`, ...). Loading happens in two phases:
 *
 *   1. sm_config_read(): parse the file and its `base_config` includes with libyaml, merge them
 *      the way RingMo does (bases combined shallowly in list order, then the file merged deeply on
 *      top), then apply command-line overrides (`train_config.batch_size=64`). Every value keeps
 *      the file:line:col it came from. Structural problems (YAML syntax, tab indentation,
 *      duplicate keys, several documents, anchors/aliases, too deep, too large, include cycles)
 *      are reported here.
 *   2. sm_config_validate(): check every key against the schemas: the core's own keys plus the
 *      keys declared by each selected component (`model.backbone` -> a backbone's keys, ...).
 *      Unknown keys are errors with a did-you-mean; types and ranges are checked; defaults are
 *      filled in; cross-field checks run. RingMo/MindSpore-only keys are accepted and listed once
 *      as ignored. ALL errors of the file are reported, in file order.
 *
 * Between the phases the caller loads plugins (the config may name plugin directories), because
 * plugins declare the schemas of their sections.
 *
 * After validation, values are read with the typed getters below; they cannot fail for keys that
 * a schema declares (defaults are in the tree).
 */
#ifndef SIMMIM_CONFIG_H
#define SIMMIM_CONFIG_H

#include "simmim/common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sm_registry sm_registry;

/* The kinds of components (registered by plugins, simmim/registry.h). Config sections choose
 * a component of a kind by name (model.backbone, optimizer.optim_name, ...). */
typedef enum sm_kind {
    SM_KIND_BACKEND = 0,
    SM_KIND_BACKBONE,
    SM_KIND_DATASET,
    SM_KIND_OPTIMIZER,
    SM_KIND_SCHEDULER,
    SM_KIND_COUNT
} sm_kind;

/* "backend", "backbone", "dataset", "optimizer", "scheduler"; NULL if out of range. */
SM_API const char *sm_kind_name(sm_kind kind);

/* ---------------------------------------------------------------------------------------- */
/* Schemas: each component declares its keys once, in a table ended by SM_KEY_END.          */

typedef enum sm_key_type {
    SM_KEY_END = 0,     /* terminates a key table                                            */
    SM_KEY_BOOL,        /* true/false (also True/False/yes/no/on/off, any case)             */
    SM_KEY_INT,         /* decimal integer                                                   */
    SM_KEY_FLOAT,       /* number: 0.5, 1e-8, 2e-4, 5 (ints accepted)                        */
    SM_KEY_STRING,      /* any scalar; `range` may list the allowed values "a|b|c"           */
    SM_KEY_INT_LIST,    /* [2, 2, 6, 2]                                                      */
    SM_KEY_FLOAT_LIST,  /* [0.485, 0.456, 0.406]                                             */
    SM_KEY_STRING_LIST, /* ["image", "mask"]                                                 */
    SM_KEY_MAP,         /* a nested map whose own keys are further dotted entries            */
    SM_KEY_IGNORED      /* RingMo/MindSpore-only: any value (subtree) accepted and reported  */
                        /* once as ignored; never changes behaviour                          */
} sm_key_type;

#define SM_KEY_NULLABLE 0x1u /* null (~, null, empty) is an allowed value                    */
#define SM_KEY_PATH 0x2u     /* a file/dir path, relative to the directory of the file that  */
                             /* set it; sm_cfg_path() resolves it                            */

typedef struct sm_key {
    const char *name;  /* relative to the section; dotted for nested maps ("ckpt_config.prefix") */
    sm_key_type type;
    const char *def;   /* default as YAML text ("0.6", "[2,2,6,2]", "null", "bicubic");       */
                       /* NULL = the key is required                                          */
    const char *range; /* numbers and list items: interval "[0,1)", "(0,)", "[1,4096]";       */
                       /* strings: allowed values "bilinear|bicubic" (matched ignoring case); */
                       /* NULL = unchecked                                                    */
    unsigned flags;    /* SM_KEY_*                                                            */
    const char *doc;   /* one line, shown by `simmimctl plugins` and in errors                */
} sm_key;

/* ---------------------------------------------------------------------------------------- */
/* The configuration tree.                                                                   */

typedef struct sm_cfg sm_cfg; /* a node; borrowed from the sm_config that owns it           */

typedef enum sm_cfg_kind {
    SM_CFG_NULL = 0,
    SM_CFG_SCALAR,
    SM_CFG_SEQ,
    SM_CFG_MAP
} sm_cfg_kind;

SM_API sm_cfg_kind sm_cfg_kind_of(const sm_cfg *node);
/* Child by dotted path ("train_config.batch_size"); NULL if absent or not reachable. */
SM_API const sm_cfg *sm_cfg_get(const sm_cfg *node, const char *dotted);
/* Entries of a map / items of a sequence; 0 otherwise. */
SM_API size_t sm_cfg_size(const sm_cfg *node);
/* i-th item of a sequence, or i-th value of a map (file order); NULL if out of range. */
SM_API const sm_cfg *sm_cfg_at(const sm_cfg *node, size_t i);
/* i-th key of a map; NULL otherwise. */
SM_API const char *sm_cfg_key_at(const sm_cfg *node, size_t i);
/* The text of a scalar (quotes removed); NULL for other kinds. */
SM_API const char *sm_cfg_scalar(const sm_cfg *node);
/* Where the value came from: the file ("<default>" for filled-in defaults, "--options" for   */
/* command-line overrides), 1-based line and column (0 when not applicable).                  */
SM_API const char *sm_cfg_file(const sm_cfg *node);
SM_API int sm_cfg_line(const sm_cfg *node);
SM_API int sm_cfg_column(const sm_cfg *node);
/* The dotted key path of a node ("model.depth[2]"); snprintf semantics. */
SM_API size_t sm_cfg_keypath(const sm_cfg *node, char *buf, size_t n);

/* Typed getters for validated trees. `key` is a dotted path below `section`. For an absent   */
/* key or a value of another type they return 0 / false / NULL (a programming error: the      */
/* schema guarantees presence and type).                                                       */
SM_API bool sm_cfg_bool(const sm_cfg *section, const char *key);
SM_API int64_t sm_cfg_int(const sm_cfg *section, const char *key);
SM_API double sm_cfg_float(const sm_cfg *section, const char *key);
/* NULL for null values. */
SM_API const char *sm_cfg_str(const sm_cfg *section, const char *key);
SM_API bool sm_cfg_is_null(const sm_cfg *section, const char *key);
/* Copies up to `cap` items into out; returns the list length (may exceed cap). */
SM_API size_t sm_cfg_int_list(const sm_cfg *section, const char *key, int64_t *out, size_t cap);
SM_API size_t sm_cfg_float_list(const sm_cfg *section, const char *key, double *out, size_t cap);
/* For SM_KEY_PATH keys: the value resolved against the directory of the file that set it   */
/* (absolute paths unchanged). Writes into buf; returns the needed length; 0 if null/absent. */
SM_API size_t sm_cfg_path(const sm_cfg *section, const char *key, char *buf, size_t n);

/* For components' validate hooks: appends an error located at `key` of `section` (its
 * file:line:col and key path, e.g. "model.num_heads"), or at the section itself when the key is
 * absent. Returns SM_ECONFIG. */
SM_API int sm_cfg_error(sm_diag *diag, const sm_cfg *section, const char *key, const char *fmt,
                        ...) SM_PRINTF(4, 5);

/* Scalar conversions with errors naming the node's location (usable before validation). */
SM_API int sm_cfg_to_bool(const sm_cfg *node, bool *out, sm_error *err);
SM_API int sm_cfg_to_int(const sm_cfg *node, int64_t *out, sm_error *err);
SM_API int sm_cfg_to_float(const sm_cfg *node, double *out, sm_error *err);

/* ---------------------------------------------------------------------------------------- */
/* Loading.                                                                                   */

typedef struct sm_config sm_config;

/* Phase 1. path: the main YAML file. options: `n_options` strings "dotted.key=value" where
 * value is YAML (a scalar or a flow sequence "[2,2,6,2]"), applied after merging.
 * On success *out owns the merged tree. On failure returns SM_ECONFIG (or SM_EIO, SM_ENOMEM)
 * with every problem found appended to diag, and *out = NULL. */
SM_API int sm_config_read(const char *path, const char *const *options, size_t n_options,
                          sm_config **out, sm_diag *diag);
/* Same from a string; `name` is used as the file name in messages and base_config paths are
 * resolved against the current directory. */
SM_API int sm_config_read_string(const char *text, size_t len, const char *name,
                                 const char *const *options, size_t n_options, sm_config **out,
                                 sm_diag *diag);

/* Phase 2. Validates against the core schema and the schemas of the components selected in
 * the tree, looked up in `reg` (may be NULL: component sections are then reported as naming
 * unknown components). Fills defaults. Returns 0, or SM_ECONFIG with all errors in diag
 * (warnings, such as the list of ignored RingMo-only keys, are added as SM_SEV_WARNING). */
SM_API int sm_config_validate(sm_config *cfg, const sm_registry *reg, sm_diag *diag);

/* Validates what building a model needs and nothing more: the top-level keys, `model` (the
 * core keys plus the selected backbone's keys and its validate hook), `train_config` and
 * `backend` if present. Dataset sections are not required and the task cross-checks are
 * skipped. For tools that build models without a job (`simmimctl verify`, tests). */
SM_API int sm_config_validate_model(sm_config *cfg, const sm_registry *reg, sm_diag *diag);

SM_API void sm_config_free(sm_config *cfg);
/* The root map (borrowed). */
SM_API const sm_cfg *sm_config_root(const sm_config *cfg);
/* The main file as given to sm_config_read. */
SM_API const char *sm_config_file(const sm_config *cfg);

/* Plugin directories named in the tree (`plugin_path`, a string list), resolved against the
 * file that set them. Call between read and validate. Returns the count; fills up to cap
 * malloc'd strings into dirs (caller frees each). */
SM_API size_t sm_config_plugin_dirs(const sm_config *cfg, char **dirs, size_t cap);

/* After validation: keys that were accepted as RingMo/MindSpore-only and ignored, as dotted
 * paths in file order ("context", "train_config.sink_mode"). Borrowed. */
SM_API size_t sm_config_ignored_count(const sm_config *cfg);
SM_API const char *sm_config_ignored_at(const sm_config *cfg, size_t i);

/* The effective (merged, defaults filled) configuration as YAML text, malloc'd; caller frees.
 * Returns 0 or SM_ENOMEM. */
SM_API int sm_config_to_yaml(const sm_config *cfg, char **out, size_t *len);

/* The core's own key tables for one section ("" = top level), for `simmimctl plugins` and
 * docs. NULL for unknown sections. */
SM_API const sm_key *sm_config_core_keys(const char *section);
/* The i-th section name of the core schema: "" (the top level) first, then "model",
 * "train_config", ...; NULL past the end. */
SM_API const char *sm_config_core_section(size_t i);
/* "bool", "int", "float", "string", "int-list", "float-list", "string-list", "map",
 * "ignored"; "?" for other values. */
SM_API const char *sm_key_type_name(sm_key_type type);

#ifdef __cplusplus
}
#endif
#endif /* SIMMIM_CONFIG_H */
