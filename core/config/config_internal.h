/* core/config/config_internal.h - the configuration tree shared by config_*.c (never exported).
 *
 * A config is a tree of sm_cfg nodes allocated from one pool owned by the sm_config, so merges
 * can move nodes between files' trees freely and everything is freed at once. Children are a
 * singly linked list (maps keep their keys in file order, as Python dicts do). */
#ifndef SIMMIM_CORE_CONFIG_INTERNAL_H
#define SIMMIM_CORE_CONFIG_INTERNAL_H

#include "base/internal.h"
#include "simmim/config.h"

/* Limits of the reader (docs/config.md). */
#define SM__CFG_MAX_BYTES (1024 * 1024) /* one file                                    */
#define SM__CFG_MAX_DEPTH 64            /* nested maps/lists                            */
#define SM__CFG_MAX_FILES 256           /* files read through base_config              */
#define SM__KEY_NAME_MAX 120            /* a declared key's full dotted name, bytes     */

/* Pseudo file names of nodes that did not come from a file. */
#define SM__CFG_DEFAULT "<default>"
#define SM__CFG_OPTIONS "--options"

typedef struct sm__pool_chunk sm__pool_chunk;
typedef struct sm__pool {
    sm__pool_chunk *head;
} sm__pool;

struct sm_cfg {
    sm_cfg_kind kind;
    bool quoted;          /* scalar written quoted (or as a block scalar): always a string  */
    bool bad;             /* validation reported an error about this value                  */
    const char *key;      /* key in the parent map; NULL for the root and list items        */
    const char *text;     /* scalar text; NULL for other kinds                             */
    const char *file;     /* interned in the pool                                           */
    int line, column;     /* of the value, 1-based; 0 = not applicable                      */
    int key_line, key_column; /* of the key                                                 */
    sm_cfg *parent;
    sm_cfg *head, *tail;  /* children (map values or list items)                            */
    sm_cfg *next;         /* next sibling                                                   */
    size_t n;             /* number of children                                             */
};

struct sm_config {
    sm__pool pool;
    sm_cfg *root;
    const char *file;     /* the main file as given                                         */
    const char **ignored; /* dotted paths of ignored keys, in file order (pool strings)     */
    size_t n_ignored, cap_ignored;
};

/* ---- pool (config_tree.c) ------------------------------------------------------------- */
void *sm__pool_alloc(sm__pool *p, size_t size); /* zeroed; NULL on ENOMEM */
char *sm__pool_strndup(sm__pool *p, const char *s, size_t len);
char *sm__pool_strdup(sm__pool *p, const char *s);
void sm__pool_free(sm__pool *p);

/* ---- tree (config_tree.c) ------------------------------------------------------------- */
sm_cfg *sm__cfg_new(sm__pool *p, sm_cfg_kind kind, const char *file, int line, int column);
/* Appends child to a map (with key) or list (key NULL). */
void sm__cfg_append(sm_cfg *parent, sm_cfg *child, const char *key);
/* Child of a map by exact key, or NULL. */
sm_cfg *sm__cfg_child(const sm_cfg *map, const char *key);
/* Replaces old (a child of some map) by repl, in old's position and under old's key. */
void sm__cfg_replace(sm_cfg *old, sm_cfg *repl);
/* Unlinks a child from its parent. */
void sm__cfg_remove(sm_cfg *child);
/* Sets a node's location (and that of all its descendants) to file/0/0. */
void sm__cfg_relocate(sm_cfg *node, const char *file);
/* The key path of node, with ".key" appended when key is not NULL, for a message: whole when
 * it fits in buf[n], else shortened in the middle with " ... ". */
void sm__cfg_keypath_fit(const sm_cfg *node, const char *key, char *buf, size_t n);
/* "a scalar 'x'", "null", "a list", "a map": what a value is, for messages. */
size_t sm__cfg_describe(const sm_cfg *node, char *buf, size_t n);

/* ---- scalars (config_tree.c) ---------------------------------------------------------- */
/* Plain scalars that YAML 1.1/PyYAML read as null. */
bool sm__scalar_is_null_text(const char *text);
/* 0 if the scalar text is a value of that type, else -1. Plain text only (callers reject
 * quoted scalars for non-string types). int: decimal, optional sign; float: 5, 0.5, .5, 0.,
 * 2e-4 (no inf/nan/hex); bool: true/false/yes/no/on/off in any case. *overflow is set for an
 * integer that does not fit in int64. */
int sm__parse_int(const char *text, int64_t *out, bool *overflow);
int sm__parse_float(const char *text, double *out);
int sm__parse_bool(const char *text, bool *out);

/* ---- reading (config_read.c) ---------------------------------------------------------- */
sm_config *sm__config_new(void);
/* Parses YAML text of one value (an override, a default) into a node located at file:0:0.
 * Returns 0 or -1 with a reason in why. */
int sm__cfg_parse_value(sm__pool *pool, const char *text, const char *file, sm_cfg **out,
                        char *why, size_t why_n);

/* ---- schema (config_schema.c) --------------------------------------------------------- */
typedef struct sm__section {
    const char *name;     /* top-level key                                                  */
    const sm_key *keys;   /* the core keys of the section                                    */
    int kind;             /* sm_kind of the component it selects, -1 for none               */
    const char *selector; /* key naming the component                                        */
    bool required;        /* must be in the file                                             */
    bool always;          /* filled with defaults when absent                                */
} sm__section;

const sm_key *sm__config_top_keys(void);
const sm__section *sm__config_sections(size_t *n);
const sm__section *sm__config_section(const char *name);
/* Entry of a key table by full name, or NULL. */
const sm_key *sm__key_find(const sm_key *keys, const char *name);
/* Parses an interval "[0,1)", "(0,)": returns 0 or -1. */
int sm__range_parse(const char *range, double *lo, bool *lo_open, bool *has_lo, double *hi,
                    bool *hi_open, bool *has_hi);
/* The alternative of "a|b|c" that equals text ignoring case (its spelling in choices, not
 * NUL-terminated, length in *len), or NULL. */
const char *sm__choice_find(const char *choices, const char *text, size_t *len);
/* "an integer", "a list of numbers", ... */
const char *sm__key_type_desc(sm_key_type t);
/* Checks that a scalar/list/null node fits the key (type, range, choices). On a mismatch
 * writes the message ("expected an integer in [1,), got 0") into why and returns -1; the
 * offending node (the item of a list) goes to *at. MAP/IGNORED keys are not checked here. */
int sm__key_check_value(const sm_key *k, const sm_cfg *node, const sm_cfg **at, char *why,
                        size_t n);
/* Checks a component's key table (names, types, ranges, defaults, no clash with the core keys
 * of the sections of its kind). Returns 0 or -1 with the reason in why. */
int sm__key_table_check(const sm_key *keys, int kind, char *why, size_t n);

#endif
