/* core/config/config_tree.c - the configuration tree: pool, nodes, scalar typing, public accessors
 * and typed getters. */
#include "config/config_internal.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdalign.h>

/* ---- pool: chunked bump allocator, freed at once -------------------------------------- */

struct sm__pool_chunk {
    sm__pool_chunk *next;
    size_t used, cap;
    alignas(max_align_t) unsigned char data[];
};

#define SM__POOL_CHUNK 16384

void *sm__pool_alloc(sm__pool *p, size_t size)
{
    size = (size + alignof(max_align_t) - 1) & ~(alignof(max_align_t) - 1);
    sm__pool_chunk *c = p->head;
    if (!c || c->cap - c->used < size) {
        size_t cap = size > SM__POOL_CHUNK ? size : SM__POOL_CHUNK;
        c = malloc(sizeof *c + cap);
        if (!c) return NULL;
        c->used = 0;
        c->cap = cap;
        c->next = p->head;
        p->head = c;
    }
    void *r = c->data + c->used;
    c->used += size;
    memset(r, 0, size);
    return r;
}

char *sm__pool_strndup(sm__pool *p, const char *s, size_t len)
{
    char *d = sm__pool_alloc(p, len + 1);
    if (d && len) memcpy(d, s, len);
    return d;
}

char *sm__pool_strdup(sm__pool *p, const char *s)
{
    return s ? sm__pool_strndup(p, s, strlen(s)) : NULL;
}

void sm__pool_free(sm__pool *p)
{
    for (sm__pool_chunk *c = p->head, *next; c; c = next) {
        next = c->next;
        free(c);
    }
    p->head = NULL;
}

/* ---- tree ----------------------------------------------------------------------------- */

sm_cfg *sm__cfg_new(sm__pool *p, sm_cfg_kind kind, const char *file, int line, int column)
{
    sm_cfg *n = sm__pool_alloc(p, sizeof *n);
    if (!n) return NULL;
    n->kind = kind;
    n->file = file;
    n->line = n->key_line = line;
    n->column = n->key_column = column;
    return n;
}

void sm__cfg_append(sm_cfg *parent, sm_cfg *child, const char *key)
{
    child->key = key;
    child->parent = parent;
    child->next = NULL;
    if (parent->tail)
        parent->tail->next = child;
    else
        parent->head = child;
    parent->tail = child;
    parent->n++;
}

sm_cfg *sm__cfg_child(const sm_cfg *map, const char *key)
{
    if (!map || map->kind != SM_CFG_MAP) return NULL;
    for (sm_cfg *c = map->head; c; c = c->next)
        if (strcmp(c->key, key) == 0) return c;
    return NULL;
}

void sm__cfg_replace(sm_cfg *old, sm_cfg *repl)
{
    sm_cfg *parent = old->parent;
    repl->key = old->key;
    repl->key_line = old->key_line;
    repl->key_column = old->key_column;
    repl->parent = parent;
    repl->next = old->next;
    if (parent->head == old) {
        parent->head = repl;
    } else {
        sm_cfg *prev = parent->head;
        while (prev->next != old) prev = prev->next;
        prev->next = repl;
    }
    if (parent->tail == old) parent->tail = repl;
    old->parent = old->next = NULL;
}

void sm__cfg_remove(sm_cfg *child)
{
    sm_cfg *parent = child->parent, *prev = NULL;
    for (sm_cfg *c = parent->head; c != child; c = c->next) prev = c;
    if (prev)
        prev->next = child->next;
    else
        parent->head = child->next;
    if (parent->tail == child) parent->tail = prev;
    parent->n--;
    child->parent = child->next = NULL;
}

void sm__cfg_relocate(sm_cfg *node, const char *file)
{
    node->file = file;
    node->line = node->column = node->key_line = node->key_column = 0;
    for (sm_cfg *c = node->head; c; c = c->next) sm__cfg_relocate(c, file);
}

size_t sm__cfg_describe(const sm_cfg *node, char *buf, size_t n)
{
    int r;
    switch (node ? node->kind : SM_CFG_NULL) {
    case SM_CFG_NULL: r = snprintf(buf, n, "null"); break;
    case SM_CFG_SEQ: r = snprintf(buf, n, "a list"); break;
    case SM_CFG_MAP: r = snprintf(buf, n, "a map"); break;
    default:
        r = snprintf(buf, n, "%s'%.60s%s'", node->quoted ? "the quoted string " : "", node->text,
                     strlen(node->text) > 60 ? "..." : "");
    }
    return r < 0 ? 0 : (size_t)r;
}

/* ---- scalars -------------------------------------------------------------------------- */

bool sm__scalar_is_null_text(const char *t)
{
    return !*t || strcmp(t, "~") == 0 || strcmp(t, "null") == 0 || strcmp(t, "Null") == 0 ||
           strcmp(t, "NULL") == 0;
}

int sm__parse_int(const char *t, int64_t *out, bool *overflow)
{
    const char *p = t;
    if (overflow) *overflow = false;
    if (*p == '+' || *p == '-') p++;
    if (!isdigit((unsigned char)*p)) return -1;
    while (isdigit((unsigned char)*p)) p++;
    if (*p) return -1;
    errno = 0;
    long long v = strtoll(t, NULL, 10);
    if (errno == ERANGE) {
        if (overflow) *overflow = true;
        return -1;
    }
    *out = v;
    return 0;
}

int sm__parse_float(const char *t, double *out)
{
    /* [-+]? (digits [. digits*] | . digits) ([eE] [-+]? digits)? */
    const char *p = t;
    if (*p == '+' || *p == '-') p++;
    size_t int_digits = 0, frac_digits = 0;
    while (isdigit((unsigned char)*p)) p++, int_digits++;
    if (*p == '.') {
        p++;
        while (isdigit((unsigned char)*p)) p++, frac_digits++;
    }
    if (int_digits + frac_digits == 0) return -1;
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-') p++;
        if (!isdigit((unsigned char)*p)) return -1;
        while (isdigit((unsigned char)*p)) p++;
    }
    if (*p) return -1;
    double v = strtod(t, NULL);
    if (!isfinite(v)) return -1;
    *out = v;
    return 0;
}

int sm__parse_bool(const char *t, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on"}, *const no[] = {"false", "no", "off"};
    for (size_t i = 0; i < 3; i++) {
        if (sm__strcasecmp(t, yes[i]) == 0) return *out = true, 0;
        if (sm__strcasecmp(t, no[i]) == 0) return *out = false, 0;
    }
    return -1;
}

/* ---- public accessors ----------------------------------------------------------------- */

sm_cfg_kind sm_cfg_kind_of(const sm_cfg *node) { return node ? node->kind : SM_CFG_NULL; }

const sm_cfg *sm_cfg_get(const sm_cfg *node, const char *dotted)
{
    if (!node || !dotted) return NULL;
    const char *p = dotted;
    while (node && *p) {
        const char *dot = strchr(p, '.');
        size_t len = dot ? (size_t)(dot - p) : strlen(p);
        const sm_cfg *found = NULL;
        if (node->kind == SM_CFG_MAP)
            for (const sm_cfg *c = node->head; c && !found; c = c->next)
                if (strlen(c->key) == len && memcmp(c->key, p, len) == 0) found = c;
        node = found;
        p += len + (dot ? 1 : 0);
        if (dot && !*p) return NULL; /* trailing dot */
    }
    return node;
}

size_t sm_cfg_size(const sm_cfg *node)
{
    return node && (node->kind == SM_CFG_MAP || node->kind == SM_CFG_SEQ) ? node->n : 0;
}

const sm_cfg *sm_cfg_at(const sm_cfg *node, size_t i)
{
    if (!node || (node->kind != SM_CFG_MAP && node->kind != SM_CFG_SEQ)) return NULL;
    const sm_cfg *c = node->head;
    while (c && i--) c = c->next;
    return c;
}

const char *sm_cfg_key_at(const sm_cfg *node, size_t i)
{
    if (!node || node->kind != SM_CFG_MAP) return NULL;
    const sm_cfg *c = sm_cfg_at(node, i);
    return c ? c->key : NULL;
}

const char *sm_cfg_scalar(const sm_cfg *node)
{
    return node && node->kind == SM_CFG_SCALAR ? node->text : NULL;
}

const char *sm_cfg_file(const sm_cfg *node) { return node && node->file ? node->file : ""; }
int sm_cfg_line(const sm_cfg *node) { return node ? node->line : 0; }
int sm_cfg_column(const sm_cfg *node) { return node ? node->column : 0; }

size_t sm_cfg_keypath(const sm_cfg *node, char *buf, size_t n)
{
    if (n) buf[0] = '\0';
    if (!node || !node->parent) return 0;
    size_t len = sm_cfg_keypath(node->parent, buf, n);
    int r;
    char *at = len < n ? buf + len : NULL;
    size_t room = len < n ? n - len : 0;
    if (node->key) {
        r = snprintf(at, room, "%s%s", len ? "." : "", node->key);
    } else {
        size_t i = 0;
        for (const sm_cfg *c = node->parent->head; c && c != node; c = c->next) i++;
        r = snprintf(at, room, "[%zu]", i);
    }
    return len + (r > 0 ? (size_t)r : 0);
}

void sm__cfg_keypath_fit(const sm_cfg *node, const char *key, char *buf, size_t n)
{
    if (n == 0) return;
    size_t len = sm_cfg_keypath(node, NULL, 0);
    size_t need = len + (key ? strlen(key) + 1 : 0) + 1;
    char small[256], *full = need <= sizeof small ? small : malloc(need);
    if (!full) { /* out of memory: the head, its end marked */
        sm_cfg_keypath(node, buf, n);
        if (len >= n) sm__mark_cut(buf, n);
        return;
    }
    sm_cfg_keypath(node, full, need);
    if (key) snprintf(full + len, need - len, "%s%s", len ? "." : "", key);
    sm__text_fit(buf, n, full);
    if (full != small) free(full);
}

/* ---- conversions ---------------------------------------------------------------------- */

static int sm__convert_error(const sm_cfg *node, sm_error *err, const char *what)
{
    char path[SM__ERR_PATH_MAX], got[96];
    sm__cfg_keypath_fit(node, NULL, path, sizeof path);
    sm__cfg_describe(node, got, sizeof got);
    return sm_error_set(err, SM_ECONFIG, node ? node->file : NULL, node ? node->line : 0,
                        node ? node->column : 0, path, "expected %s, got %s", what, got);
}

int sm_cfg_to_bool(const sm_cfg *node, bool *out, sm_error *err)
{
    if (node && node->kind == SM_CFG_SCALAR && !node->quoted &&
        sm__parse_bool(node->text, out) == 0)
        return 0;
    return sm__convert_error(node, err, "a boolean");
}

int sm_cfg_to_int(const sm_cfg *node, int64_t *out, sm_error *err)
{
    if (node && node->kind == SM_CFG_SCALAR && !node->quoted &&
        sm__parse_int(node->text, out, NULL) == 0)
        return 0;
    return sm__convert_error(node, err, "an integer");
}

int sm_cfg_to_float(const sm_cfg *node, double *out, sm_error *err)
{
    if (node && node->kind == SM_CFG_SCALAR && !node->quoted &&
        sm__parse_float(node->text, out) == 0)
        return 0;
    return sm__convert_error(node, err, "a number");
}

/* ---- typed getters (validated trees) -------------------------------------------------- */

bool sm_cfg_bool(const sm_cfg *section, const char *key)
{
    bool v = false;
    return sm_cfg_to_bool(sm_cfg_get(section, key), &v, NULL) == 0 && v;
}

int64_t sm_cfg_int(const sm_cfg *section, const char *key)
{
    int64_t v = 0;
    return sm_cfg_to_int(sm_cfg_get(section, key), &v, NULL) == 0 ? v : 0;
}

double sm_cfg_float(const sm_cfg *section, const char *key)
{
    double v = 0;
    return sm_cfg_to_float(sm_cfg_get(section, key), &v, NULL) == 0 ? v : 0;
}

const char *sm_cfg_str(const sm_cfg *section, const char *key)
{
    return sm_cfg_scalar(sm_cfg_get(section, key));
}

bool sm_cfg_is_null(const sm_cfg *section, const char *key)
{
    const sm_cfg *n = sm_cfg_get(section, key);
    return !n || n->kind == SM_CFG_NULL;
}

/* Items of a list as int64 or double (0 for an item that is not one). */
static size_t sm__list_get(const sm_cfg *section, const char *key, int64_t *ints, double *floats,
                           size_t cap)
{
    const sm_cfg *l = sm_cfg_get(section, key);
    if (!l || l->kind != SM_CFG_SEQ) return 0;
    size_t i = 0;
    for (const sm_cfg *c = l->head; c; c = c->next, i++) {
        int64_t iv = 0;
        double fv = 0;
        if (ints && sm_cfg_to_int(c, &iv, NULL) != 0) iv = 0;
        if (floats && sm_cfg_to_float(c, &fv, NULL) != 0) fv = 0;
        if (i < cap && ints) ints[i] = iv;
        if (i < cap && floats) floats[i] = fv;
    }
    return i;
}

size_t sm_cfg_int_list(const sm_cfg *section, const char *key, int64_t *out, size_t cap)
{
    return sm__list_get(section, key, out, NULL, cap);
}

size_t sm_cfg_float_list(const sm_cfg *section, const char *key, double *out, size_t cap)
{
    return sm__list_get(section, key, NULL, out, cap);
}

size_t sm_cfg_path(const sm_cfg *section, const char *key, char *buf, size_t n)
{
    const sm_cfg *node = sm_cfg_get(section, key);
    if (n) buf[0] = '\0';
    if (!node || node->kind != SM_CFG_SCALAR) return 0;
    const char *f = node->file;
    /* defaults and overrides are relative to the current directory */
    if (!f || node->text[0] == '/' || strcmp(f, SM__CFG_DEFAULT) == 0 ||
        strcmp(f, SM__CFG_OPTIONS) == 0)
        return sm__strlcpy(buf, node->text, n);
    char *dir = sm__dirname(f);
    char *joined = dir ? sm__path_join(dir, node->text) : NULL;
    size_t len = joined ? sm__strlcpy(buf, joined, n) : 0;
    free(dir);
    free(joined);
    return len;
}

int sm_cfg_error(sm_diag *diag, const sm_cfg *section, const char *key, const char *fmt, ...)
{
    const sm_cfg *node = key ? sm_cfg_get(section, key) : NULL;
    const sm_cfg *at = node ? node : section;
    char path[SM__ERR_PATH_MAX] = "";
    if (at) sm__cfg_keypath_fit(at, !node ? key : NULL, path, sizeof path);
    sm_error e;
    sm_error_clear(&e);
    va_list ap;
    va_start(ap, fmt);
    sm_error_setv(&e, SM_ECONFIG, at ? sm_cfg_file(at) : NULL, at ? sm_cfg_line(at) : 0,
                  at ? sm_cfg_column(at) : 0, path, fmt, ap);
    va_end(ap);
    sm_diag_add(diag, SM_SEV_ERROR, &e);
    return SM_ECONFIG;
}
