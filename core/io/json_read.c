/* core/io/json_read.c - a small JSON reader for safetensors headers (RFC 8259, UTF-8 already
 * checked by the caller). Jansson's reader aborts when an allocation fails in its lexer
 * (akheron/jansson#362), so the tensor files, which every run opens, are read here instead.
 *
 * Two passes over the same code: the first checks the syntax and counts nodes and string bytes
 * without allocating; then exactly two allocations (nodes, strings) and the second pass builds
 * the tree, which cannot fail. Duplicate keys are refused, as JSON_REJECT_DUPLICATES did. */
#include "base/internal.h"
#include "io/io_internal.h"

#include <stdlib.h>
#include <string.h>

#define NONE ((size_t)-1)

typedef struct {
    const char *s;
    size_t len, pos;
    sm__jnode *nodes; /* NULL in the counting pass */
    size_t n;         /* nodes made so far */
    char *pool;       /* NULL in the counting pass */
    size_t plen;      /* string bytes (with their NULs) so far */
    int depth, max_depth;
    const char *why; /* the first syntax error */
    size_t at;       /* and its byte offset */
} jp;

static size_t fail(jp *p, const char *why)
{
    if (!p->why) p->why = why, p->at = p->pos;
    return NONE;
}

static void ws(jp *p)
{
    while (p->pos < p->len && strchr(" \t\r\n", p->s[p->pos]) && p->s[p->pos]) p->pos++;
}

static size_t node_new(jp *p, sm__jtype type)
{
    size_t i = p->n++;
    if (p->nodes) p->nodes[i] = (sm__jnode){.type = type, .next = 0, .off = p->pos};
    return i;
}

static int hex4(const char *s, unsigned *out)
{
    unsigned v = 0;
    for (int k = 0; k < 4; k++) {
        char c = s[k];
        int d = c >= '0' && c <= '9' ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0) return -1;
        v = v << 4 | (unsigned)d;
    }
    *out = v;
    return 0;
}

/* Appends code point c as UTF-8 (or counts its bytes). */
static void put_cp(jp *p, unsigned c)
{
    char b[4];
    size_t n = c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
    if (n == 1) b[0] = (char)c;
    if (n == 2) b[0] = (char)(0xC0 | c >> 6), b[1] = (char)(0x80 | (c & 0x3F));
    if (n == 3)
        b[0] = (char)(0xE0 | c >> 12), b[1] = (char)(0x80 | (c >> 6 & 0x3F)),
        b[2] = (char)(0x80 | (c & 0x3F));
    if (n == 4)
        b[0] = (char)(0xF0 | c >> 18), b[1] = (char)(0x80 | (c >> 12 & 0x3F)),
        b[2] = (char)(0x80 | (c >> 6 & 0x3F)), b[3] = (char)(0x80 | (c & 0x3F));
    if (p->pool) memcpy(p->pool + p->plen, b, n);
    p->plen += n;
}

/* One escape after the backslash at p->pos - 1; returns the code point or -1. */
static long escape(jp *p)
{
    if (p->pos >= p->len) return -1;
    const char *esc = "\"\\/bfnrt", *val = "\"\\/\b\f\n\r\t";
    char c = p->s[p->pos++];
    const char *k = c ? strchr(esc, c) : NULL;
    if (k) return (unsigned char)val[k - esc];
    unsigned u, lo;
    if (c != 'u' || p->pos + 4 > p->len || hex4(p->s + p->pos, &u)) return -1;
    p->pos += 4;
    if (u >= 0xDC00 && u <= 0xDFFF) return -1; /* a lone low surrogate */
    if (u >= 0xD800 && u <= 0xDBFF) {
        if (p->pos + 6 > p->len || p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u' ||
            hex4(p->s + p->pos + 2, &lo) || lo < 0xDC00 || lo > 0xDFFF)
            return -1;
        p->pos += 6;
        u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
    }
    return u == 0 ? -1 : (long)u; /* \u0000 would cut the string */
}

/* "..." -> a STR node (the quote at p->pos). */
static size_t string(jp *p)
{
    size_t me = node_new(p, SM__J_STR), start = p->plen;
    p->pos++;
    while (p->pos < p->len && p->s[p->pos] != '"') {
        unsigned char c = (unsigned char)p->s[p->pos];
        if (c < 0x20) return fail(p, "control character in a string");
        if (c != '\\') {
            if (p->pool) p->pool[p->plen] = (char)c;
            p->plen++, p->pos++;
            continue;
        }
        p->pos++;
        long cp = escape(p);
        if (cp < 0) return fail(p, "invalid escape in a string");
        put_cp(p, (unsigned)cp);
    }
    if (p->pos >= p->len) return fail(p, "unterminated string");
    p->pos++;
    if (p->pool) {
        p->pool[p->plen] = '\0';
        p->nodes[me].str = p->pool + start;
        p->nodes[me].len = p->plen - start;
    }
    p->plen++;
    return me;
}

static bool digit(const jp *p) { return p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9'; }

/* A number: INT when it has no fraction or exponent and fits int64, else REAL. */
static size_t number(jp *p)
{
    size_t me = node_new(p, SM__J_INT), start = p->pos;
    bool neg = p->s[p->pos] == '-', real = false;
    if (neg) p->pos++;
    if (!digit(p)) return fail(p, "invalid number");
    if (p->s[p->pos] == '0') p->pos++;
    else
        while (digit(p)) p->pos++;
    size_t int_end = p->pos;
    if (p->pos < p->len && p->s[p->pos] == '.') {
        p->pos++, real = true;
        if (!digit(p)) return fail(p, "invalid number");
        while (digit(p)) p->pos++;
    }
    if (p->pos < p->len && (p->s[p->pos] == 'e' || p->s[p->pos] == 'E')) {
        p->pos++, real = true;
        if (p->pos < p->len && (p->s[p->pos] == '+' || p->s[p->pos] == '-')) p->pos++;
        if (!digit(p)) return fail(p, "invalid number");
        while (digit(p)) p->pos++;
    }
    uint64_t v = 0, lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (size_t i = start + neg; !real && i < int_end; i++) {
        unsigned d = (unsigned)(p->s[i] - '0');
        if (v > (lim - d) / 10) return fail(p, "integer out of range");
        v = v * 10 + d;
    }
    if (p->nodes) {
        p->nodes[me].type = real ? SM__J_REAL : SM__J_INT;
        p->nodes[me].ival = neg ? (int64_t)(0 - v) : (int64_t)v;
    }
    return me;
}

static size_t value(jp *p);

/* { "key": value, ... } or [ value, ... ] (the bracket at p->pos): members chained by next,
 * keys and values alternating in an object. */
static size_t container(jp *p, bool obj)
{
    size_t me = node_new(p, obj ? SM__J_OBJ : SM__J_ARR), prev = NONE, count = 0;
    char close = obj ? '}' : ']';
    if (++p->depth > p->max_depth) return fail(p, "nesting too deep");
    p->pos++;
    ws(p);
    if (p->pos < p->len && p->s[p->pos] == close) {
        p->pos++;
    } else {
        for (;;) {
            ws(p);
            size_t k = NONE;
            if (obj) {
                if (p->pos >= p->len || p->s[p->pos] != '"') return fail(p, "string key expected");
                if ((k = string(p)) == NONE) return NONE;
                ws(p);
                if (p->pos >= p->len || p->s[p->pos] != ':') return fail(p, "':' expected");
                p->pos++;
            }
            size_t v = value(p);
            if (v == NONE) return NONE;
            if (p->nodes && prev != NONE) p->nodes[prev].next = k != NONE ? k : v;
            if (p->nodes && k != NONE) p->nodes[k].next = v;
            prev = v, count++;
            ws(p);
            if (p->pos < p->len && p->s[p->pos] == ',') {
                p->pos++;
                continue;
            }
            if (p->pos < p->len && p->s[p->pos] == close) {
                p->pos++;
                break;
            }
            return fail(p, obj ? "',' or '}' expected" : "',' or ']' expected");
        }
    }
    p->depth--;
    if (p->nodes) p->nodes[me].count = count;
    return me;
}

static size_t literal(jp *p, const char *word, sm__jtype type)
{
    size_t n = strlen(word);
    if (p->len - p->pos < n || memcmp(p->s + p->pos, word, n) != 0)
        return fail(p, "invalid token");
    size_t me = node_new(p, type);
    p->pos += n;
    return me;
}

static size_t value(jp *p)
{
    ws(p);
    if (p->pos >= p->len) return fail(p, "unexpected end of the text");
    switch (p->s[p->pos]) {
    case '{': return container(p, true);
    case '[': return container(p, false);
    case '"': return string(p);
    case 't': return literal(p, "true", SM__J_TRUE);
    case 'f': return literal(p, "false", SM__J_FALSE);
    case 'n': return literal(p, "null", SM__J_NULL);
    default:
        if (p->s[p->pos] == '-' || (p->s[p->pos] >= '0' && p->s[p->pos] <= '9')) return number(p);
        return fail(p, "invalid token");
    }
}

static size_t document(jp *p)
{
    size_t root = value(p);
    ws(p);
    if (root != NONE && p->pos < p->len) return fail(p, "end of the text expected");
    return root;
}

static int key_cmp(const void *a, const void *b)
{
    const sm__jnode *x = *(const sm__jnode *const *)a, *y = *(const sm__jnode *const *)b;
    int c = memcmp(x->str, y->str, x->len < y->len ? x->len : y->len);
    return c ? c : x->len < y->len ? -1 : x->len > y->len;
}

/* The first duplicated key of an object: its node, NULL if none, or `oom` when the sort buffer
 * cannot be allocated. */
static const sm__jnode *dup_key(const sm__jdoc *d, const sm__jnode *obj, const sm__jnode *oom)
{
    const sm__jnode **keys = malloc((obj->count ? obj->count : 1) * sizeof *keys);
    if (!keys) return oom;
    size_t n = 0;
    for (const sm__jnode *k = sm__json_first(d, obj); k; k = sm__json_next(d, sm__json_next(d, k)))
        keys[n++] = k;
    qsort(keys, n, sizeof *keys, key_cmp);
    const sm__jnode *dup = NULL;
    for (size_t i = 1; i < n && !dup; i++)
        if (key_cmp(&keys[i - 1], &keys[i]) == 0) dup = keys[i]->off > keys[i - 1]->off ? keys[i] : keys[i - 1];
    free(keys);
    return dup;
}

static void where(const char *s, size_t at, int *line, int *col)
{
    *line = 1, *col = 1;
    for (size_t i = 0; i < at; i++) {
        if (s[i] == '\n') (*line)++, *col = 1;
        else (*col)++;
    }
}

int sm__json_parse(const char *text, size_t len, int max_depth, sm__jdoc *doc, sm__jerror *je)
{
    memset(doc, 0, sizeof *doc);
    memset(je, 0, sizeof *je);
    jp p = {.s = text, .len = len, .max_depth = max_depth};
    if (document(&p) == NONE) {
        where(text, p.at, &je->line, &je->column);
        je->text = p.why;
        return SM_EFORMAT;
    }
    doc->nodes = malloc(p.n * sizeof *doc->nodes);
    doc->pool = malloc(p.plen ? p.plen : 1);
    if (!doc->nodes || !doc->pool) {
        sm__json_free(doc);
        return SM_ENOMEM;
    }
    doc->n = p.n;
    p = (jp){.s = text, .len = len, .max_depth = max_depth, .nodes = doc->nodes, .pool = doc->pool};
    document(&p); /* the same text again: it cannot fail now */
    static const sm__jnode oom;
    for (size_t i = 0; i < doc->n; i++) {
        if (doc->nodes[i].type != SM__J_OBJ || doc->nodes[i].count < 2) continue;
        const sm__jnode *dup = dup_key(doc, &doc->nodes[i], &oom);
        if (dup == &oom) {
            sm__json_free(doc);
            return SM_ENOMEM;
        }
        if (dup) {
            where(text, dup->off, &je->line, &je->column);
            je->text = "duplicate object key";
            sm__json_free(doc);
            return SM_EFORMAT;
        }
    }
    return 0;
}

void sm__json_free(sm__jdoc *doc)
{
    free(doc->nodes);
    free(doc->pool);
    memset(doc, 0, sizeof *doc);
}

const sm__jnode *sm__json_first(const sm__jdoc *d, const sm__jnode *n)
{
    (void)d;
    return (n->type == SM__J_OBJ || n->type == SM__J_ARR) && n->count ? n + 1 : NULL;
}

const sm__jnode *sm__json_next(const sm__jdoc *d, const sm__jnode *n)
{
    return n->next ? &d->nodes[n->next] : NULL;
}

const sm__jnode *sm__json_get(const sm__jdoc *d, const sm__jnode *obj, const char *key)
{
    if (obj->type != SM__J_OBJ) return NULL;
    for (const sm__jnode *k = sm__json_first(d, obj); k; k = sm__json_next(d, sm__json_next(d, k)))
        if (strlen(key) == k->len && memcmp(k->str, key, k->len) == 0) return sm__json_next(d, k);
    return NULL;
}

const sm__jnode *sm__json_at(const sm__jdoc *d, const sm__jnode *arr, size_t i)
{
    const sm__jnode *v = arr->type == SM__J_ARR ? sm__json_first(d, arr) : NULL;
    while (v && i--) v = sm__json_next(d, v);
    return v;
}
