/* core/config/config_read.c - phase 1 of loading a config: libyaml events -> sm_cfg tree (with
 * file:line:col everywhere), the reader's defences, RingMo's base_config merges (spec 11.1:
 * bases combined shallowly in list order, then the file merged deeply on top) and
 * `--options key.path=value` overrides. */
#include "config/config_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

/* ---- events -> tree ------------------------------------------------------------------- */

typedef struct sm__frame {
    sm_cfg *node;
    const char *key;    /* pending key of a map (NULL: the next scalar is a key)          */
    int key_line, key_column;
    bool skip;          /* the pending key was a duplicate: drop its value               */
} sm__frame;

typedef struct sm__builder {
    sm__pool *pool;
    sm_diag *diag;      /* where errors go (may be NULL)                                    */
    sm_error first;     /* the first error, for callers without a diag                      */
    const char *file;   /* interned name for nodes and messages                             */
    const unsigned char *buf;
    size_t len;
    bool want_map;      /* a config file: the top level must be a map                      */
    int errors;
    sm__frame stack[SM__CFG_MAX_DEPTH];
    int depth;
    sm_cfg *root;
} sm__builder;

static void sm__berr(sm__builder *b, int line, int column, const char *path, const char *fmt,
                     ...) SM_PRINTF(5, 6);
static void sm__berr(sm__builder *b, int line, int column, const char *path, const char *fmt,
                     ...)
{
    sm_error e;
    sm_error_clear(&e);
    va_list ap;
    va_start(ap, fmt);
    sm_error_setv(&e, SM_ECONFIG, b->file, line, column, path, fmt, ap);
    va_end(ap);
    if (!b->first.code) b->first = e;
    sm_diag_add(b->diag, SM_SEV_ERROR, &e);
    b->errors++;
}

/* Key path of the value about to be attached (parent path + pending key), for a message. */
static void sm__pending_path(const sm__builder *b, const char *key, char *buf, size_t n)
{
    sm__cfg_keypath_fit(b->depth ? b->stack[b->depth - 1].node : NULL, key, buf, n);
}

/* libyaml's message, with its 0-based marks made 1-based, and a hint for tab indentation. */
static void sm__yaml_error(sm__builder *b, const yaml_parser_t *p)
{
    if (p->error == YAML_MEMORY_ERROR) {
        sm__berr(b, 0, 0, NULL, "out of memory while parsing");
        return;
    }
    size_t line, col;
    if (p->error == YAML_READER_ERROR) { /* only a byte offset is known */
        size_t off = SM__MIN(p->problem_offset, b->len);
        line = col = 0;
        for (size_t i = 0; i < off; i++) {
            if (b->buf[i] == '\n') line++, col = 0;
            else col++;
        }
    } else {
        line = p->problem_mark.line;
        col = p->problem_mark.column;
    }
    /* does the offending line start with a tab in its indentation? */
    bool tab = false;
    size_t i = 0;
    for (size_t l = 0; i < b->len && l < line; i++)
        if (b->buf[i] == '\n') l++;
    for (; i < b->len && (b->buf[i] == ' ' || b->buf[i] == '\t'); i++)
        if (b->buf[i] == '\t') tab = true;
    char ctx[160] = "";
    if (tab)
        snprintf(ctx, sizeof ctx, " (tabs are not allowed for indentation; use spaces)");
    else if (p->context && p->error != YAML_READER_ERROR)
        snprintf(ctx, sizeof ctx, " (%s at line %zu, column %zu)", p->context,
                 p->context_mark.line + 1, p->context_mark.column + 1);
    sm__berr(b, (int)line + 1, (int)col + 1, NULL, "%s%s",
             p->problem ? p->problem : "YAML syntax error", ctx);
}

/* Refuses anchors and tags on a node (the tree has no aliases: one value, one place). */
static void sm__check_props(sm__builder *b, const yaml_char_t *anchor, const yaml_char_t *tag,
                            bool implicit, int line, int col, const char *path)
{
    if (anchor)
        sm__berr(b, line, col, path,
                 "anchors (&%s) and aliases are not allowed: write the value out", anchor);
    if (tag && !implicit)
        sm__berr(b, line, col, path, "YAML tags (%s) are not allowed", tag);
}

/* Attaches a new node where the parser is (map value, list item or top level). Returns false
 * if parsing must stop. */
static bool sm__attach(sm__builder *b, sm_cfg *node, int line, int col)
{
    if (b->depth == 0) {
        if (b->want_map && node->kind != SM_CFG_MAP) {
            if (node->kind == SM_CFG_NULL) { /* empty document: an empty map */
                node->kind = SM_CFG_MAP;
            } else {
                char what[96];
                sm__cfg_describe(node, what, sizeof what);
                sm__berr(b, line, col, NULL,
                         "the top level of a config must be a map of keys, not %s", what);
                return false;
            }
        }
        b->root = node;
        return true;
    }
    sm__frame *f = &b->stack[b->depth - 1];
    if (f->node->kind == SM_CFG_SEQ) {
        sm__cfg_append(f->node, node, NULL);
    } else {
        if (!f->skip) {
            sm__cfg_append(f->node, node, f->key);
            node->key_line = f->key_line;
            node->key_column = f->key_column;
        }
        f->key = NULL;
        f->skip = false;
    }
    return true;
}

/* sm__attach for a freshly allocated node (NULL: out of memory). */
static bool sm__attach_new(sm__builder *b, sm_cfg *node, int line, int col)
{
    if (!node) {
        sm__berr(b, line, col, NULL, "out of memory");
        return false;
    }
    return sm__attach(b, node, line, col);
}

/* A scalar in key position of a map. */
static void sm__take_key(sm__builder *b, sm__frame *f, const char *text, int line, int col)
{
    char path[SM__ERR_PATH_MAX];
    sm__pending_path(b, text, path, sizeof path);
    f->key = sm__pool_strdup(b->pool, text);
    f->key_line = line;
    f->key_column = col;
    f->skip = false;
    if (!f->key) {
        sm__berr(b, line, col, path, "out of memory");
        f->skip = true;
        return;
    }
    if (!*text) {
        sm__berr(b, line, col, path, "empty key");
        f->skip = true;
        return;
    }
    const sm_cfg *first = sm__cfg_child(f->node, text);
    if (first) {
        sm__berr(b, line, col, path, "duplicate key '%s' (first at line %d, column %d)", text,
                 first->key_line, first->key_column);
        f->skip = true;
    }
}

/* Where the builder stands when an event arrives. */
typedef struct {
    sm__frame *top; /* the open map or list, NULL at the document level */
    bool key_slot;  /* a map waiting for its next key */
    int line, col;  /* the event's position, 1-based */
} sm__at;

/* An alias: refused (anchors and aliases are not part of a config); a null takes its place so
 * that later errors keep their paths. Returns true when parsing must stop. */
static bool sm__on_alias(sm__builder *b, const sm__at *a, const yaml_event_t *ev)
{
    char path[SM__ERR_PATH_MAX];
    sm__pending_path(b, a->key_slot ? NULL : a->top ? a->top->key : NULL, path, sizeof path);
    sm__berr(b, a->line, a->col, path,
             "aliases (*%s) and anchors are not allowed: write the value out",
             ev->data.alias.anchor);
    if (a->key_slot) return true;
    sm_cfg *node = sm__cfg_new(b->pool, SM_CFG_NULL, b->file, a->line, a->col);
    return !sm__attach_new(b, node, a->line, a->col);
}

/* A scalar: the next key of a map, or a value (null for a plain null spelling). */
static bool sm__on_scalar(sm__builder *b, const sm__at *a, const yaml_event_t *ev)
{
    char path[SM__ERR_PATH_MAX];
    const char *text = (const char *)ev->data.scalar.value;
    bool plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    sm__pending_path(b, a->key_slot ? text : a->top ? a->top->key : NULL, path, sizeof path);
    sm__check_props(b, ev->data.scalar.anchor, ev->data.scalar.tag,
                    ev->data.scalar.plain_implicit || ev->data.scalar.quoted_implicit, a->line,
                    a->col, path);
    if (a->key_slot) {
        sm__take_key(b, a->top, text, a->line, a->col);
        return false;
    }
    bool null = plain && sm__scalar_is_null_text(text);
    sm_cfg *node = sm__cfg_new(b->pool, null ? SM_CFG_NULL : SM_CFG_SCALAR, b->file, a->line,
                               a->col);
    if (node && !null) {
        node->text = sm__pool_strndup(b->pool, text, ev->data.scalar.length);
        node->quoted = !plain;
        if (!node->text) node = NULL;
    }
    return !sm__attach_new(b, node, a->line, a->col);
}

/* The start of a map or a list: a new open frame, within the depth limit. */
static bool sm__on_open(sm__builder *b, const sm__at *a, const yaml_event_t *ev)
{
    char path[SM__ERR_PATH_MAX];
    bool map = ev->type == YAML_MAPPING_START_EVENT;
    sm__pending_path(b, a->top ? a->top->key : NULL, path, sizeof path);
    if (a->key_slot) {
        sm__berr(b, a->line, a->col, path, "a key must be a plain value, not a %s",
                 map ? "map" : "list");
        return true;
    }
    if (map)
        sm__check_props(b, ev->data.mapping_start.anchor, ev->data.mapping_start.tag,
                        ev->data.mapping_start.implicit, a->line, a->col, path);
    else
        sm__check_props(b, ev->data.sequence_start.anchor, ev->data.sequence_start.tag,
                        ev->data.sequence_start.implicit, a->line, a->col, path);
    if (b->depth == SM__CFG_MAX_DEPTH) {
        sm__berr(b, a->line, a->col, NULL, "nesting deeper than %d levels", SM__CFG_MAX_DEPTH);
        return true;
    }
    sm_cfg *node = sm__cfg_new(b->pool, map ? SM_CFG_MAP : SM_CFG_SEQ, b->file, a->line, a->col);
    if (!sm__attach_new(b, node, a->line, a->col)) return true;
    b->stack[b->depth++] = (sm__frame){.node = node};
    return false;
}

/* One parser event into the tree. Returns true when parsing must stop (the stream's end, a
 * second document, or an error that leaves no sensible tree to continue). */
static bool sm__on_event(sm__builder *b, const yaml_event_t *ev, int *docs)
{
    sm__at a = {.top = b->depth ? &b->stack[b->depth - 1] : NULL,
                .line = (int)ev->start_mark.line + 1, .col = (int)ev->start_mark.column + 1};
    a.key_slot = a.top && a.top->node->kind == SM_CFG_MAP && !a.top->key && !a.top->skip;
    switch (ev->type) {
    case YAML_STREAM_END_EVENT: return true;
    case YAML_DOCUMENT_START_EVENT:
        if (++*docs == 1) return false;
        sm__berr(b, a.line, a.col, NULL,
                 "a second YAML document starts here: a config is one document");
        return true;
    case YAML_ALIAS_EVENT: return sm__on_alias(b, &a, ev);
    case YAML_SCALAR_EVENT: return sm__on_scalar(b, &a, ev);
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT: return sm__on_open(b, &a, ev);
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT: b->depth--; return false;
    default: return false;
    }
}

static int sm__build(sm__builder *b)
{
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p)) {
        sm__berr(b, 0, 0, NULL, "out of memory");
        return -1;
    }
    yaml_parser_set_input_string(&p, b->buf, b->len);
    int docs = 0;
    for (bool done = false; !done;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&p, &ev)) {
            sm__yaml_error(b, &p);
            break;
        }
        done = sm__on_event(b, &ev, &docs);
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&p);
    if (!b->errors && !b->root) {
        b->root = sm__cfg_new(b->pool, b->want_map ? SM_CFG_MAP : SM_CFG_NULL, b->file, 1, 1);
        if (!b->root) sm__berr(b, 0, 0, NULL, "out of memory");
    }
    return b->errors ? -1 : 0;
}

int sm__cfg_parse_value(sm__pool *pool, const char *text, const char *file, sm_cfg **out,
                        char *why, size_t why_n)
{
    sm__builder b = {.pool = pool, .file = file, .buf = (const unsigned char *)text,
                     .len = strlen(text)};
    sm_error_clear(&b.first);
    *out = NULL;
    if (sm__build(&b) != 0) {
        sm__text_fit(why, why_n, b.first.text);
        return -1;
    }
    sm__cfg_relocate(b.root, file);
    *out = b.root;
    return 0;
}

/* ---- files and base_config ------------------------------------------------------------ */

typedef struct sm__chain {
    const char *real; /* realpath, or NULL for a string config                             */
    const char *name; /* as written/joined, for messages                                    */
    const struct sm__chain *up;
} sm__chain;

typedef struct sm__reader {
    sm_config *cfg;
    sm_diag *diag;
    int errors;
    int io_error; /* the main file could not be read                                       */
    size_t n_files;
} sm__reader;

static void sm__rerr(sm__reader *r, const char *file, int line, int col, const char *path,
                     const char *fmt, ...) SM_PRINTF(6, 7);
static void sm__rerr(sm__reader *r, const char *file, int line, int col, const char *path,
                     const char *fmt, ...)
{
    sm_error e;
    sm_error_clear(&e);
    va_list ap;
    va_start(ap, fmt);
    sm_error_setv(&e, SM_ECONFIG, file, line, col, path, fmt, ap);
    va_end(ap);
    sm_diag_add(r->diag, SM_SEV_ERROR, &e);
    r->errors++;
}

/* Reports an error about an include entry `from`, or about the main file if from == NULL. */
#define SM__FROM_ERR(r, from, path, ...)                                                       \
    sm__rerr((r), (from) ? (from)->file : (path), (from) ? (from)->line : 0,                   \
             (from) ? (from)->column : 0, (from) ? "base_config" : NULL, __VA_ARGS__)

/* Reads a whole file of at most SM__CFG_MAX_BYTES. Returns a malloc'd buffer or NULL (error
 * reported). */
static unsigned char *sm__slurp(sm__reader *r, const char *path, const sm_cfg *from, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        int e = errno;
        if (fd >= 0) close(fd);
        if (from)
            SM__FROM_ERR(r, from, path, "cannot read '%s': %s", path, strerror(e));
        else
            SM__FROM_ERR(r, from, path, "cannot read the config: %s", strerror(e));
        if (!from) r->io_error = 1;
        return NULL;
    }
    const char *bad = S_ISDIR(st.st_mode) ? "is a directory"
                      : !S_ISREG(st.st_mode) ? "is not a regular file" : NULL;
    if (!bad && st.st_size > SM__CFG_MAX_BYTES) bad = "is larger than the 1 MiB limit for a config";
    if (bad) {
        close(fd);
        if (from)
            SM__FROM_ERR(r, from, path, "'%s' %s", path, bad);
        else
            SM__FROM_ERR(r, from, path, "the config %s", bad);
        return NULL;
    }
    unsigned char *buf = malloc((size_t)st.st_size + 1);
    size_t n = 0;
    ssize_t k = 0;
    while (buf && n <= (size_t)st.st_size &&
           (k = read(fd, buf + n, (size_t)st.st_size + 1 - n)) > 0)
        n += (size_t)k;
    int e = errno;
    close(fd);
    if (!buf || k < 0 || n > (size_t)st.st_size) { /* error, or the file grew */
        free(buf);
        SM__FROM_ERR(r, from, path, "cannot read '%s': %s", path,
                     !buf ? "out of memory" : k < 0 ? strerror(e) : "file changed while reading");
        return NULL;
    }
    *len = n;
    return buf;
}

static int sm__load_text(sm__reader *r, const char *file, const char *dir,
                         const unsigned char *buf, size_t len, const sm__chain *chain,
                         sm_cfg **out);

/* "include cycle: a.yaml -> b.yaml -> a.yaml", the chain named from the outermost file. When
 * the whole chain is too long for an error message (deep paths), each name keeps its tail
 * (".../cfg/a.yaml"), so that every link stays visible. */
static void sm__cycle_error(sm__reader *r, const sm_cfg *from, const sm__chain *chain,
                            const char *path)
{
    const sm__chain *order[SM__CFG_MAX_FILES + 1];
    size_t n = 0, total = strlen(path) + 1;
    for (const sm__chain *d = chain; d && n < SM__CFG_MAX_FILES; d = d->up) {
        order[n++] = d;
        total += strlen(d->name) + 4;
    }
    static const char head[] = "include cycle: ";
    size_t room = SM__ERR_TEXT_MAX - sizeof head; /* for the names and arrows */
    size_t each = total <= room ? total : room / (n + 1) > 16 ? room / (n + 1) - 4 : total;
    char *msg = malloc(total), *at = msg;
    if (!msg) {
        SM__FROM_ERR(r, from, path, "%sback to %s", head, path);
        return;
    }
    for (size_t i = n + 1; i-- > 0;) {
        sm__path_copy(at, each, i ? order[i - 1]->name : path);
        at += strlen(at);
        if (i) memcpy(at, " -> ", 5), at += 4;
    }
    SM__FROM_ERR(r, from, path, "%s%s", head, msg);
    free(msg);
}

/* Reads one file (and its bases, recursively) into *out. `from` is the include entry that
 * named it (NULL for the main file). */
static int sm__load_file(sm__reader *r, const char *path, const sm_cfg *from,
                         const sm__chain *chain, sm_cfg **out)
{
    *out = NULL;
    char real[PATH_MAX];
    if (!realpath(path, real)) {
        int e = errno;
        if (from)
            SM__FROM_ERR(r, from, path, "cannot read '%s': %s", path, strerror(e));
        else
            SM__FROM_ERR(r, from, path, "cannot read the config: %s", strerror(e));
        if (!from) r->io_error = 1;
        return -1;
    }
    for (const sm__chain *c = chain; c; c = c->up) {
        if (!c->real || strcmp(c->real, real) != 0) continue;
        sm__cycle_error(r, from, chain, path);
        return -1;
    }
    if (++r->n_files > SM__CFG_MAX_FILES) {
        SM__FROM_ERR(r, from, path, "more than %d files included through base_config",
                     SM__CFG_MAX_FILES);
        return -1;
    }
    size_t len = 0;
    unsigned char *buf = sm__slurp(r, path, from, &len);
    if (!buf) return -1;
    const char *file = sm__pool_strdup(&r->cfg->pool, path);
    char *dir = sm__dirname(path);
    sm__chain self = {.real = real, .name = file, .up = chain};
    int rc = -1;
    if (file && dir)
        rc = sm__load_text(r, file, dir, buf, len, &self, out);
    else
        SM__FROM_ERR(r, from, path, "out of memory");
    free(dir);
    free(buf);
    return rc;
}

/* Later keys replace earlier ones (Python dict.update). */
static void sm__merge_shallow(sm_cfg *dst, sm_cfg *src)
{
    for (sm_cfg *c = src->head, *next; c; c = next) {
        next = c->next;
        sm_cfg *d = sm__cfg_child(dst, c->key);
        if (d)
            sm__cfg_replace(d, c);
        else
            sm__cfg_append(dst, c, c->key);
    }
    src->head = src->tail = NULL;
    src->n = 0;
}

/* Maps merge key by key, recursively; anything else is replaced by src's value. */
static void sm__merge_deep(sm_cfg *dst, sm_cfg *src)
{
    for (sm_cfg *c = src->head, *next; c; c = next) {
        next = c->next;
        sm_cfg *d = sm__cfg_child(dst, c->key);
        if (d && d->kind == SM_CFG_MAP && c->kind == SM_CFG_MAP)
            sm__merge_deep(d, c);
        else if (d)
            sm__cfg_replace(d, c);
        else
            sm__cfg_append(dst, c, c->key);
    }
    src->head = src->tail = NULL;
    src->n = 0;
}

static int sm__load_text(sm__reader *r, const char *file, const char *dir,
                         const unsigned char *buf, size_t len, const sm__chain *chain,
                         sm_cfg **out)
{
    sm__builder b = {.pool = &r->cfg->pool, .diag = r->diag, .file = file, .buf = buf,
                     .len = len, .want_map = true};
    sm_error_clear(&b.first);
    if (sm__build(&b) != 0) {
        r->errors += b.errors;
        return -1;
    }
    sm_cfg *tree = b.root;
    sm_cfg *base = sm__cfg_child(tree, "base_config");
    if (!base) {
        *out = tree;
        return 0;
    }
    sm__cfg_remove(base);
    sm_cfg *combined = sm__cfg_new(&r->cfg->pool, SM_CFG_MAP, file, tree->line, tree->column);
    if (!combined) {
        sm__rerr(r, file, 0, 0, NULL, "out of memory");
        return -1;
    }
    bool list = base->kind == SM_CFG_SEQ; /* a list, or one path */
    sm_cfg *items = list ? base->head : base;
    if (!list && base->kind != SM_CFG_SCALAR) {
        char what[96];
        sm__cfg_describe(base, what, sizeof what);
        sm__rerr(r, file, base->line, base->column, "base_config",
                 "expected a list of file paths, got %s", what);
        return -1;
    }
    int rc = 0;
    for (sm_cfg *it = items; it; it = list ? it->next : NULL) {
        if (it->kind != SM_CFG_SCALAR || !it->text[0]) {
            char what[96];
            sm__cfg_describe(it, what, sizeof what);
            sm__rerr(r, file, it->line, it->column, "base_config",
                     "expected a file path, got %s", what);
            rc = -1;
            continue;
        }
        char *path = sm__path_join(dir, it->text);
        sm_cfg *sub = NULL;
        if (!path) sm__rerr(r, file, it->line, it->column, "base_config", "out of memory");
        if (!path || sm__load_file(r, path, it, chain, &sub) != 0)
            rc = -1;
        else
            sm__merge_shallow(combined, sub);
        free(path);
    }
    sm__merge_deep(combined, tree);
    *out = combined;
    return rc;
}

/* ---- overrides ------------------------------------------------------------------------ */

static void sm__apply_override(sm__reader *r, sm_cfg *root, const char *opt)
{
    sm__pool *pool = &r->cfg->pool;
    const char *eq = strchr(opt, '=');
    if (!eq || eq == opt) {
        sm__rerr(r, SM__CFG_OPTIONS, 0, 0, NULL, "expected key.path=value, got '%s'", opt);
        return;
    }
    char *key = sm__pool_strndup(pool, opt, (size_t)(eq - opt));
    if (!key) return;
    if (key[0] == '.' || key[strlen(key) - 1] == '.' || strstr(key, "..")) {
        sm__rerr(r, SM__CFG_OPTIONS, 0, 0, key, "empty key in the path");
        return;
    }
    sm_cfg *value = NULL;
    char why[SM__ERR_TEXT_MAX];
    if (sm__cfg_parse_value(pool, eq + 1, SM__CFG_OPTIONS, &value, why, sizeof why) != 0) {
        sm__rerr(r, SM__CFG_OPTIONS, 0, 0, key, "cannot parse the value '%s': %s", eq + 1, why);
        return;
    }
    sm_cfg *cur = root;
    for (char *part = key, *dot;; part = dot + 1) {
        dot = strchr(part, '.');
        if (dot) *dot = '\0';
        const char *name = sm__pool_strdup(pool, part);
        if (dot) *dot = '.';
        if (!name) return;
        sm_cfg *c = sm__cfg_child(cur, name);
        if (!dot) {
            if (c)
                sm__cfg_replace(c, value);
            else
                sm__cfg_append(cur, value, name);
            return;
        }
        if (!c) {
            c = sm__cfg_new(pool, SM_CFG_MAP, SM__CFG_OPTIONS, 0, 0);
            if (!c) return;
            sm__cfg_append(cur, c, name);
        } else if (c->kind != SM_CFG_MAP) {
            char what[96], at[SM__ERR_TEXT_MAX / 2];
            sm__cfg_describe(c, what, sizeof what);
            sm__cfg_keypath_fit(c, NULL, at, sizeof at);
            sm__rerr(r, SM__CFG_OPTIONS, 0, 0, key,
                     "cannot set a key inside '%s': it is %s, not a map", at, what);
            return;
        }
        cur = c;
    }
}

/* ---- public --------------------------------------------------------------------------- */

sm_config *sm__config_new(void) { return calloc(1, sizeof(sm_config)); }

static int sm__read(const char *path, const char *text, size_t len, const char *name,
                    const char *const *options, size_t n_options, sm_config **out, sm_diag *diag)
{
    *out = NULL;
    sm_config *cfg = sm__config_new();
    const char *file = cfg ? sm__pool_strdup(&cfg->pool, path ? path : name) : NULL;
    if (!file) {
        sm_config_free(cfg);
        return sm_diag_addf(diag, SM_SEV_ERROR, SM_ENOMEM, path ? path : name, 0, 0, NULL,
                            "out of memory");
    }
    cfg->file = file;
    sm__reader r = {.cfg = cfg, .diag = diag};
    sm_cfg *root = NULL;
    if (path) {
        sm__load_file(&r, file, NULL, NULL, &root);
    } else {
        sm__chain self = {.name = file};
        r.n_files = 1;
        sm__load_text(&r, file, ".", (const unsigned char *)text, len, &self, &root);
    }
    for (size_t i = 0; root && i < n_options; i++) sm__apply_override(&r, root, options[i]);
    if (r.errors || !root) {
        sm_config_free(cfg);
        return r.io_error ? SM_EIO : SM_ECONFIG;
    }
    cfg->root = root;
    *out = cfg;
    return 0;
}

int sm_config_read(const char *path, const char *const *options, size_t n_options,
                   sm_config **out, sm_diag *diag)
{
    if (!path) {
        *out = NULL;
        return sm_diag_addf(diag, SM_SEV_ERROR, SM_EINVAL, NULL, 0, 0, NULL, "no config file");
    }
    return sm__read(path, NULL, 0, NULL, options, n_options, out, diag);
}

int sm_config_read_string(const char *text, size_t len, const char *name,
                          const char *const *options, size_t n_options, sm_config **out,
                          sm_diag *diag)
{
    if (len > SM__CFG_MAX_BYTES) {
        *out = NULL;
        return sm_diag_addf(diag, SM_SEV_ERROR, SM_ECONFIG, name, 0, 0, NULL,
                            "the config is larger than the 1 MiB limit for a config");
    }
    return sm__read(NULL, text ? text : "", text ? len : 0, name ? name : "<string>", options,
                    n_options, out, diag);
}

void sm_config_free(sm_config *cfg)
{
    if (!cfg) return;
    free(cfg->ignored);
    sm__pool_free(&cfg->pool);
    free(cfg);
}

const sm_cfg *sm_config_root(const sm_config *cfg) { return cfg ? cfg->root : NULL; }
const char *sm_config_file(const sm_config *cfg) { return cfg ? cfg->file : ""; }

size_t sm_config_plugin_dirs(const sm_config *cfg, char **dirs, size_t cap)
{
    const sm_cfg *pp = cfg ? sm_cfg_get(cfg->root, "plugin_path") : NULL;
    if (!pp) return 0;
    const sm_cfg *first = pp->kind == SM_CFG_SEQ ? pp->head : pp;
    size_t n = 0;
    for (const sm_cfg *it = first; it; it = pp->kind == SM_CFG_SEQ ? it->next : NULL) {
        if (it->kind != SM_CFG_SCALAR) continue;
        if (n < cap) {
            dirs[n] = NULL;
            if (it->text[0] == '/' || !it->file || strcmp(it->file, SM__CFG_OPTIONS) == 0) {
                dirs[n] = sm__strdup(it->text);
            } else {
                char *dir = sm__dirname(it->file);
                dirs[n] = dir ? sm__path_join(dir, it->text) : NULL;
                free(dir);
            }
            if (!dirs[n]) continue; /* out of memory: skip the entry */
        }
        n++;
    }
    return n;
}

size_t sm_config_ignored_count(const sm_config *cfg) { return cfg ? cfg->n_ignored : 0; }

const char *sm_config_ignored_at(const sm_config *cfg, size_t i)
{
    return cfg && i < cfg->n_ignored ? cfg->ignored[i] : NULL;
}
