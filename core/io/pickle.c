/* core/io/pickle.c - a restricted reader of Python pickles, enough for torch.save (protocol 2)
 * and the other protocols' data opcodes. It is a stack machine over a byte buffer that builds
 * plain values (io_internal.h): it never imports a module and never calls anything. A GLOBAL is
 * only a name; REDUCE/NEWOBJ of a name it does not know gives an inert OBJECT (a yacs CfgNode,
 * an argparse Namespace...); a handful of names have a data meaning (OrderedDict, the torch
 * tensor rebuild functions, _codecs.encode). Names from modules that exist to run code (os,
 * subprocess, builtins' eval...) are refused at once: no checkpoint needs them.
 *
 * Limits: every length is checked against the bytes left; nesting deeper than SM__PK_MAX_DEPTH
 * is refused; memo indices may not run more than MEMO_SLACK past the values memoised so far,
 * and a GET of an unset index is refused; the stack cannot be popped through a MARK. Memory is
 * therefore bounded by a constant times the stream length. Values are owned by the machine and
 * freed together (cycles made through the memo are harmless). */
#include "base/internal.h"
#include "io/io_internal.h"

#include <errno.h>
#include <limits.h>
#include <math.h>

#define MEMO_SLACK 65536u
#define LINE_MAX_LEN 256u

struct sm__pickle {
    char file[256], what[64];
    sm__pv **all; /* every value, for sm__pk_free */
    size_t n_all, cap_all;
    sm__pv **stack;
    size_t sp, cap_stack;
    size_t *marks; /* stack heights at each MARK */
    size_t n_marks, cap_marks;
    sm__pv **memo;
    size_t cap_memo, n_memo; /* n_memo: values memoised (PUT/MEMOIZE) in this run */
    const unsigned char *buf;
    size_t len, at, pos; /* cursor; offset of the current opcode */
    int op;
    bool hit_end; /* the last failure was the end of the buffer */
};

/* ---- errors --------------------------------------------------------------------------------- */

static int pk_failv(sm__pickle *pk, sm_error *err, int code, const char *fmt, va_list ap)
{
    char msg[768];
    vsnprintf(msg, sizeof msg, fmt, ap);
    return sm_error_set(err, code, pk->file, 0, 0, NULL, "%s byte %zu: %s", pk->what, pk->pos, msg);
}

int sm__pk_fail(sm__pickle *pk, sm_error *err, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    pk_failv(pk, err, code, fmt, ap);
    va_end(ap);
    return code;
}

static int oom(sm__pickle *pk, sm_error *err)
{
    return sm__pk_fail(pk, err, SM_ENOMEM, "out of memory");
}

int sm__grow(void *arr, size_t *cap, size_t need, size_t es)
{
    if (need <= *cap) return 0;
    size_t nc = *cap ? *cap : 8;
    while (nc < need) nc *= 2;
    void *p = realloc(*(void **)arr, nc * es);
    if (!p) return -1;
    *(void **)arr = p;
    *cap = nc;
    return 0;
}

/* ---- values --------------------------------------------------------------------------------- */

sm__pickle *sm__pk_new(const char *file, const char *what)
{
    sm__pickle *pk = calloc(1, sizeof *pk);
    if (!pk) return NULL;
    sm__path_copy(pk->file, sizeof pk->file, file ? file : "");
    sm__strlcpy(pk->what, what ? what : "pickle", sizeof pk->what);
    return pk;
}

static void pv_free(sm__pv *v)
{
    switch (v->kind) {
    case SM__PK_STR:
    case SM__PK_BYTES: free(v->u.str.s); break;
    case SM__PK_LIST:
    case SM__PK_TUPLE: free(v->u.seq.v); break;
    case SM__PK_DICT:
        free(v->u.dict.k);
        free(v->u.dict.v);
        break;
    case SM__PK_GLOBAL:
        free(v->u.global.module);
        free(v->u.global.name);
        break;
    case SM__PK_STORAGE:
        free(v->u.storage.key);
        free(v->u.storage.type);
        break;
    default: break;
    }
    free(v);
}

void sm__pk_free(sm__pickle *pk)
{
    if (!pk) return;
    for (size_t i = 0; i < pk->n_all; i++) pv_free(pk->all[i]);
    free(pk->all);
    free(pk->stack);
    free(pk->marks);
    free(pk->memo);
    free(pk);
}

sm__pv *sm__pk_alloc(sm__pickle *pk, sm__pk_kind kind)
{
    if (sm__grow(&pk->all, &pk->cap_all, pk->n_all + 1, sizeof *pk->all)) return NULL;
    sm__pv *v = calloc(1, sizeof *v);
    if (!v) return NULL;
    v->kind = kind;
    pk->all[pk->n_all++] = v;
    return v;
}

/* parent now contains child: depth bookkeeping. */
static int nest(sm__pickle *pk, sm__pv *parent, const sm__pv *child, sm_error *err)
{
    if (child->depth + 1 > parent->depth) parent->depth = child->depth + 1;
    if (parent->depth > SM__PK_MAX_DEPTH)
        return sm__pk_fail(pk, err, SM_EFORMAT, "values nested deeper than %d levels",
                           SM__PK_MAX_DEPTH);
    return 0;
}

static int seq_add(sm__pickle *pk, sm__pv *seq, sm__pv *item, sm_error *err)
{
    if (sm__grow(&seq->u.seq.v, &seq->u.seq.cap, seq->u.seq.n + 1, sizeof *seq->u.seq.v))
        return oom(pk, err);
    seq->u.seq.v[seq->u.seq.n++] = item;
    return nest(pk, seq, item, err);
}

static int dict_add(sm__pickle *pk, sm__pv *d, sm__pv *k, sm__pv *v, sm_error *err)
{
    size_t cap = d->u.dict.cap;
    if (sm__grow(&d->u.dict.k, &cap, d->u.dict.n + 1, sizeof *d->u.dict.k)) return oom(pk, err);
    cap = d->u.dict.cap;
    if (sm__grow(&d->u.dict.v, &cap, d->u.dict.n + 1, sizeof *d->u.dict.v)) return oom(pk, err);
    d->u.dict.cap = cap;
    d->u.dict.k[d->u.dict.n] = k;
    d->u.dict.v[d->u.dict.n++] = v;
    int rc = nest(pk, d, k, err);
    return rc ? rc : nest(pk, d, v, err);
}

sm__pv *sm__pk_dict_get(const sm__pv *dict, const char *key)
{
    if (!dict || dict->kind != SM__PK_DICT) return NULL;
    for (size_t i = dict->u.dict.n; i-- > 0;) {
        const sm__pv *k = dict->u.dict.k[i];
        if (k->kind == SM__PK_STR && strlen(key) == k->u.str.n && !strcmp(k->u.str.s, key))
            return dict->u.dict.v[i];
    }
    return NULL;
}

void sm__pk_describe(const sm__pv *v, char *buf, size_t n)
{
    static const char *const names[] = {
        [SM__PK_NONE] = "None",         [SM__PK_BOOL] = "a bool",     [SM__PK_INT] = "an int",
        [SM__PK_BIGINT] = "an int",     [SM__PK_FLOAT] = "a float",   [SM__PK_STR] = "a str",
        [SM__PK_BYTES] = "bytes",       [SM__PK_LIST] = "a list",     [SM__PK_TUPLE] = "a tuple",
        [SM__PK_DICT] = "a dict",       [SM__PK_GLOBAL] = "a global", [SM__PK_OBJECT] = "an object",
        [SM__PK_STORAGE] = "a storage", [SM__PK_TENSOR] = "a tensor",
    };
    if (v->kind == SM__PK_OBJECT && v->u.obj.cls && v->u.obj.cls->kind == SM__PK_GLOBAL)
        snprintf(buf, n, "an object of class %s.%s", v->u.obj.cls->u.global.module,
                 v->u.obj.cls->u.global.name);
    else if (v->kind == SM__PK_GLOBAL)
        snprintf(buf, n, "the name %s.%s", v->u.global.module, v->u.global.name);
    else
        snprintf(buf, n, "%s", names[v->kind]);
}

/* ---- the stream ----------------------------------------------------------------------------- */

static int need(sm__pickle *pk, size_t n, sm_error *err)
{
    if (pk->len - pk->at >= n) return 0;
    pk->hit_end = true;
    return sm__pk_fail(pk, err, SM_EFORMAT,
                       "truncated: opcode 0x%02x needs %zu more bytes, the stream has %zu", pk->op,
                       n, pk->len - pk->at);
}

static uint64_t take_le(sm__pickle *pk, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) v |= (uint64_t)pk->buf[pk->at + i] << (8 * i);
    pk->at += n;
    return v;
}

/* A text argument up to '\n' (protocol 0), NUL-terminated into line. */
static int take_line(sm__pickle *pk, char *line, sm_error *err)
{
    size_t max = SM__MIN(pk->len - pk->at, (size_t)LINE_MAX_LEN);
    const unsigned char *nl = memchr(pk->buf + pk->at, '\n', max);
    if (!nl) {
        if (max < LINE_MAX_LEN) return need(pk, max + 1, err);
        return sm__pk_fail(pk, err, SM_EFORMAT, "text argument longer than %u bytes", LINE_MAX_LEN);
    }
    size_t n = (size_t)(nl - (pk->buf + pk->at));
    if (memchr(pk->buf + pk->at, 0, n))
        return sm__pk_fail(pk, err, SM_EFORMAT, "NUL byte in a text argument");
    memcpy(line, pk->buf + pk->at, n);
    line[n] = 0;
    if (n && line[n - 1] == '\r') line[n - 1] = 0;
    pk->at += n + 1;
    return 0;
}

/* A length-prefixed argument of width w bytes; *n = its length, checked against the stream. */
static int take_len(sm__pickle *pk, size_t w, size_t *n, sm_error *err)
{
    int rc = need(pk, w, err);
    if (rc) return rc;
    uint64_t l = take_le(pk, w);
    if (l > pk->len - pk->at) {
        pk->hit_end = true;
        return sm__pk_fail(pk, err, SM_EFORMAT,
                           "truncated: a %llu-byte argument, the stream has %zu bytes left",
                           (unsigned long long)l, pk->len - pk->at);
    }
    *n = (size_t)l;
    return 0;
}

/* ---- the stack ------------------------------------------------------------------------------ */

static int push(sm__pickle *pk, sm__pv *v, sm_error *err)
{
    if (!v) return oom(pk, err);
    if (sm__grow(&pk->stack, &pk->cap_stack, pk->sp + 1, sizeof *pk->stack)) return oom(pk, err);
    pk->stack[pk->sp++] = v;
    return 0;
}

static size_t fence(const sm__pickle *pk) { return pk->n_marks ? pk->marks[pk->n_marks - 1] : 0; }

static sm__pv *pop(sm__pickle *pk, sm_error *err)
{
    if (pk->sp <= fence(pk)) {
        sm__pk_fail(pk, err, SM_EFORMAT, "opcode 0x%02x: stack underflow", pk->op);
        return NULL;
    }
    return pk->stack[--pk->sp];
}

static sm__pv *top(sm__pickle *pk, sm_error *err)
{
    if (pk->sp <= fence(pk)) {
        sm__pk_fail(pk, err, SM_EFORMAT, "opcode 0x%02x: stack underflow", pk->op);
        return NULL;
    }
    return pk->stack[pk->sp - 1];
}

/* Removes the last MARK; *first = index of the first item above it. */
static int pop_mark(sm__pickle *pk, size_t *first, sm_error *err)
{
    if (!pk->n_marks)
        return sm__pk_fail(pk, err, SM_EFORMAT, "opcode 0x%02x: no MARK on the stack", pk->op);
    *first = pk->marks[--pk->n_marks];
    return 0;
}

static sm__pv *new_str(sm__pickle *pk, sm__pk_kind kind, const void *s, size_t n)
{
    sm__pv *v = sm__pk_alloc(pk, kind);
    if (!v || !(v->u.str.s = malloc(n + 1))) return NULL;
    memcpy(v->u.str.s, s, n);
    v->u.str.s[n] = 0;
    v->u.str.n = n;
    return v;
}

static sm__pv *new_int(sm__pickle *pk, int64_t i)
{
    sm__pv *v = sm__pk_alloc(pk, SM__PK_INT);
    if (v) v->u.i = i;
    return v;
}

/* A tuple (or list) of stack items [first, sp), which are removed. */
static int collect(sm__pickle *pk, sm__pk_kind kind, size_t first, sm_error *err)
{
    sm__pv *t = sm__pk_alloc(pk, kind);
    if (!t) return oom(pk, err);
    for (size_t i = first; i < pk->sp; i++) {
        int rc = seq_add(pk, t, pk->stack[i], err);
        if (rc) return rc;
    }
    pk->sp = first;
    return push(pk, t, err);
}

/* ---- memo ----------------------------------------------------------------------------------- */

static int memo_put(sm__pickle *pk, uint64_t idx, sm_error *err)
{
    sm__pv *v = top(pk, err);
    if (!v) return SM_EFORMAT;
    if (idx >= (uint64_t)pk->n_memo + MEMO_SLACK)
        return sm__pk_fail(pk, err, SM_EFORMAT,
                           "memo index %llu is far beyond the %zu values memoised so far",
                           (unsigned long long)idx, pk->n_memo);
    size_t old = pk->cap_memo;
    if (sm__grow(&pk->memo, &pk->cap_memo, (size_t)idx + 1, sizeof *pk->memo)) return oom(pk, err);
    if (pk->cap_memo > old) memset(pk->memo + old, 0, (pk->cap_memo - old) * sizeof *pk->memo);
    if (!pk->memo[idx]) pk->n_memo++;
    pk->memo[idx] = v;
    return 0;
}

static int memo_get(sm__pickle *pk, uint64_t idx, sm_error *err)
{
    if (idx >= pk->cap_memo || !pk->memo[idx])
        return sm__pk_fail(pk, err, SM_EFORMAT, "memo index %llu was never set",
                           (unsigned long long)idx);
    return push(pk, pk->memo[idx], err);
}

/* ---- globals -------------------------------------------------------------------------------- */

static const struct {
    const char *module, *name;
    sm__pk_global what;
    sm_dtype dtype;
} known_globals[] = {
    {"collections", "OrderedDict", SM__G_ORDERED_DICT, SM_DTYPE_COUNT},
    {"torch._utils", "_rebuild_tensor", SM__G_REBUILD_TENSOR, SM_DTYPE_COUNT},
    {"torch._utils", "_rebuild_tensor_v2", SM__G_REBUILD_TENSOR_V2, SM_DTYPE_COUNT},
    {"torch._utils", "_rebuild_tensor_v3", SM__G_REBUILD_TENSOR_V3, SM_DTYPE_COUNT},
    {"torch._utils", "_rebuild_parameter", SM__G_REBUILD_PARAMETER, SM_DTYPE_COUNT},
    {"torch._utils", "_rebuild_parameter_with_state", SM__G_REBUILD_PARAMETER, SM_DTYPE_COUNT},
    {"_codecs", "encode", SM__G_CODECS_ENCODE, SM_DTYPE_COUNT},
    {"torch", "FloatStorage", SM__G_STORAGE_TYPE, SM_DTYPE_F32},
    {"torch", "DoubleStorage", SM__G_STORAGE_TYPE, SM_DTYPE_F64},
    {"torch", "HalfStorage", SM__G_STORAGE_TYPE, SM_DTYPE_F16},
    {"torch", "BFloat16Storage", SM__G_STORAGE_TYPE, SM_DTYPE_BF16},
    {"torch", "LongStorage", SM__G_STORAGE_TYPE, SM_DTYPE_I64},
    {"torch", "IntStorage", SM__G_STORAGE_TYPE, SM_DTYPE_I32},
    {"torch", "ShortStorage", SM__G_STORAGE_TYPE, SM_DTYPE_I16},
    {"torch", "CharStorage", SM__G_STORAGE_TYPE, SM_DTYPE_I8},
    {"torch", "ByteStorage", SM__G_STORAGE_TYPE, SM_DTYPE_U8},
    {"torch", "BoolStorage", SM__G_STORAGE_TYPE, SM_DTYPE_BOOL},
    {"torch", "UntypedStorage", SM__G_STORAGE_TYPE, SM_DTYPE_U8},
    {"torch", "float32", SM__G_DTYPE, SM_DTYPE_F32},
    {"torch", "float64", SM__G_DTYPE, SM_DTYPE_F64},
    {"torch", "float16", SM__G_DTYPE, SM_DTYPE_F16},
    {"torch", "bfloat16", SM__G_DTYPE, SM_DTYPE_BF16},
    {"torch", "int64", SM__G_DTYPE, SM_DTYPE_I64},
    {"torch", "int32", SM__G_DTYPE, SM_DTYPE_I32},
    {"torch", "int16", SM__G_DTYPE, SM_DTYPE_I16},
    {"torch", "int8", SM__G_DTYPE, SM_DTYPE_I8},
    {"torch", "uint8", SM__G_DTYPE, SM_DTYPE_U8},
    {"torch", "bool", SM__G_DTYPE, SM_DTYPE_BOOL},
};

/* Modules whose names have no business in a checkpoint: they exist to run code. */
static const char *const denied_modules[] = {
    "os",
    "posix",
    "nt",
    "subprocess",
    "sys",
    "shutil",
    "socket",
    "importlib",
    "runpy",
    "pty",
    "code",
    "codeop",
    "ctypes",
    "webbrowser",
    "pickle",
    "_pickle",
    "marshal",
    "multiprocessing",
    "commands",
    "popen2",
    "platform",
    "pdb",
    "timeit",
    "asyncio",
    "_posixsubprocess",
    "signal",
    "imp",
    "cProfile",
};

/* builtins that are plain data types; every other builtin (eval, exec, getattr, __import__,
 * open...) is refused. */
static const char *const data_builtins[] = {
    "set",  "frozenset", "bytearray", "slice", "complex", "range", "object", "list",
    "dict", "tuple",     "int",       "float", "str",     "bytes", "bool",
};

static bool module_is(const char *module, const char *base)
{
    size_t n = strlen(base);
    return !strncmp(module, base, n) && (module[n] == 0 || module[n] == '.');
}

static int make_global(sm__pickle *pk, const char *module, const char *name, sm_error *err)
{
    if (!*module || !*name)
        return sm__pk_fail(pk, err, SM_EFORMAT, "GLOBAL with an empty module or name");
    bool denied = false;
    for (size_t i = 0; i < SM__ARRAY_LEN(denied_modules); i++)
        denied |= module_is(module, denied_modules[i]);
    if (!strcmp(module, "builtins") || !strcmp(module, "__builtin__")) {
        denied = true;
        for (size_t i = 0; i < SM__ARRAY_LEN(data_builtins); i++)
            if (!strcmp(name, data_builtins[i])) denied = false;
    }
    if (denied)
        return sm__pk_fail(pk, err, SM_EFORMAT,
                           "refusing the name %s.%s: a checkpoint has no reason to use it (the "
                           "file may be malicious; nothing was executed)",
                           module, name);
    sm__pv *g = sm__pk_alloc(pk, SM__PK_GLOBAL);
    if (!g || !(g->u.global.module = sm__strdup(module)) || !(g->u.global.name = sm__strdup(name)))
        return oom(pk, err);
    g->u.global.what = SM__G_OTHER;
    g->u.global.dtype = SM_DTYPE_COUNT;
    for (size_t i = 0; i < SM__ARRAY_LEN(known_globals); i++)
        if (!strcmp(module, known_globals[i].module) && !strcmp(name, known_globals[i].name)) {
            g->u.global.what = known_globals[i].what;
            g->u.global.dtype = known_globals[i].dtype;
        }
    /* another torch storage type (complex, quantized...): a storage we cannot read */
    size_t nl = strlen(name);
    if (g->u.global.what == SM__G_OTHER && !strcmp(module, "torch") && nl > 7 &&
        !strcmp(name + nl - 7, "Storage"))
        g->u.global.what = SM__G_STORAGE_TYPE;
    return push(pk, g, err);
}

/* ---- tensors -------------------------------------------------------------------------------- */

/* A non-negative int64 from v, or -1. */
static int64_t as_count(const sm__pv *v)
{
    return v->kind == SM__PK_INT && v->u.i >= 0 ? v->u.i : -1;
}

/* _rebuild_tensor{,_v2,_v3}(storage, offset, size, stride, ...): checks everything a later read
 * relies on: sizes and strides are non-negative integers, their products do not overflow, and
 * the last element addressed lies inside the storage. */
static int make_tensor(sm__pickle *pk, sm__pk_global what, const sm__pv *args, sm_error *err)
{
    size_t want = what == SM__G_REBUILD_TENSOR ? 4 : what == SM__G_REBUILD_TENSOR_V2 ? 6 : 7;
    if (args->u.seq.n < want)
        return sm__pk_fail(pk, err, SM_EFORMAT, "tensor record with %zu arguments (expected %zu)",
                           args->u.seq.n, want);
    sm__pv *const *a = args->u.seq.v;
    if (a[0]->kind != SM__PK_STORAGE)
        return sm__pk_fail(pk, err, SM_EFORMAT, "tensor record without a storage");
    const sm__pk_storage *st = &a[0]->u.storage;
    sm__pv *t = sm__pk_alloc(pk, SM__PK_TENSOR);
    if (!t) return oom(pk, err);
    sm__pk_tensor *tt = &t->u.tensor;
    tt->storage = a[0];
    tt->dtype = st->dtype;
    if (what == SM__G_REBUILD_TENSOR_V3) {
        if (a[6]->kind != SM__PK_GLOBAL || a[6]->u.global.what != SM__G_DTYPE)
            return sm__pk_fail(pk, err, SM_EFORMAT, "tensor record: argument 7 is not a dtype");
        tt->dtype = a[6]->u.global.dtype;
    }
    const sm__pv *size = a[2], *stride = a[3];
    if ((size->kind != SM__PK_TUPLE && size->kind != SM__PK_LIST) ||
        (stride->kind != SM__PK_TUPLE && stride->kind != SM__PK_LIST) ||
        size->u.seq.n != stride->u.seq.n)
        return sm__pk_fail(pk, err, SM_EFORMAT,
                           "tensor record: size and stride are not two "
                           "sequences of the same length");
    if (size->u.seq.n > SM_ST_MAX_DIMS)
        return sm__pk_fail(pk, err, SM_EFORMAT, "tensor with %zu dimensions (at most %d)",
                           size->u.seq.n, SM_ST_MAX_DIMS);
    tt->ndim = (int)size->u.seq.n;
    tt->offset = as_count(a[1]);
    if (tt->offset < 0)
        return sm__pk_fail(pk, err, SM_EFORMAT,
                           "tensor record: the storage offset is not a "
                           "non-negative integer");
    int64_t numel = 1, last = tt->offset;
    for (int d = 0; d < tt->ndim; d++) {
        int64_t n = as_count(size->u.seq.v[d]), s = as_count(stride->u.seq.v[d]);
        if (n < 0 || s < 0)
            return sm__pk_fail(pk, err, SM_EFORMAT,
                               "tensor record: size[%d] or stride[%d] is "
                               "not a non-negative integer",
                               d, d);
        tt->shape[d] = n;
        tt->stride[d] = s;
        if (__builtin_mul_overflow(numel, n, &numel) || numel > (INT64_MAX >> 4))
            return sm__pk_fail(pk, err, SM_EFORMAT, "tensor size overflows (dimension %d is %lld)",
                               d, (long long)n);
    }
    tt->numel = numel;
    if (numel > 0) {
        for (int d = 0; d < tt->ndim; d++) {
            int64_t span;
            if (__builtin_mul_overflow(tt->shape[d] - 1, tt->stride[d], &span) ||
                __builtin_add_overflow(last, span, &last))
                return sm__pk_fail(pk, err, SM_EFORMAT,
                                   "tensor strides overflow (stride[%d] "
                                   "is %lld)",
                                   d, (long long)tt->stride[d]);
        }
        if (last >= st->numel)
            return sm__pk_fail(pk, err, SM_EFORMAT,
                               "storage '%s' is too short for its tensor: the tensor reaches "
                               "element %lld, the storage has %lld",
                               st->key, (long long)last, (long long)st->numel);
    }
    return push(pk, t, err);
}

/* _codecs.encode(text, 'latin1'): the bytes pickled by protocol 2. */
static sm__pv *latin1_bytes(sm__pickle *pk, const sm__pv *args)
{
    if (args->u.seq.n != 2 || args->u.seq.v[0]->kind != SM__PK_STR ||
        args->u.seq.v[1]->kind != SM__PK_STR ||
        (strcmp(args->u.seq.v[1]->u.str.s, "latin1") &&
         strcmp(args->u.seq.v[1]->u.str.s, "latin-1")))
        return NULL;
    const sm__pv *s = args->u.seq.v[0];
    unsigned char *b = malloc(s->u.str.n + 1);
    if (!b) return NULL;
    size_t n = 0;
    for (size_t i = 0; i < s->u.str.n; i++) {
        unsigned c = (unsigned char)s->u.str.s[i];
        if (c >= 0xC2 && c <= 0xC3 && i + 1 < s->u.str.n) /* U+0080..U+00FF in UTF-8 */
            c = ((c & 0x1F) << 6) | ((unsigned char)s->u.str.s[++i] & 0x3F);
        else if (c >= 0x80) {
            free(b);
            return NULL;
        }
        b[n++] = (unsigned char)c;
    }
    sm__pv *v = new_str(pk, SM__PK_BYTES, b, n);
    free(b);
    return v;
}

/* An inert object of class cls (a GLOBAL). */
static int make_object(sm__pickle *pk, sm__pv *cls, const sm__pv *args, sm_error *err)
{
    if (cls->kind == SM__PK_GLOBAL && cls->u.global.what == SM__G_ORDERED_DICT)
        return push(pk, sm__pk_alloc(pk, SM__PK_DICT), err);
    sm__pv *o = sm__pk_alloc(pk, SM__PK_OBJECT);
    if (!o) return oom(pk, err);
    o->u.obj.cls = cls;
    int rc = args ? nest(pk, o, args, err) : 0;
    return rc ? rc : push(pk, o, err);
}

static int do_reduce(sm__pickle *pk, sm_error *err)
{
    sm__pv *args = pop(pk, err), *fn = args ? pop(pk, err) : NULL;
    if (!fn) return SM_EFORMAT;
    if (fn->kind != SM__PK_GLOBAL) {
        char what[96];
        sm__pk_describe(fn, what, sizeof what);
        return sm__pk_fail(pk, err, SM_EFORMAT, "REDUCE calls %s, not a name", what);
    }
    if (args->kind != SM__PK_TUPLE)
        return sm__pk_fail(pk, err, SM_EFORMAT, "REDUCE with arguments that are not a tuple");
    switch (fn->u.global.what) {
    case SM__G_ORDERED_DICT: {
        sm__pv *d = sm__pk_alloc(pk, SM__PK_DICT);
        if (!d) return oom(pk, err);
        if (args->u.seq.n == 1 && args->u.seq.v[0]->kind == SM__PK_LIST) {
            const sm__pv *pairs = args->u.seq.v[0];
            for (size_t i = 0; i < pairs->u.seq.n; i++) {
                const sm__pv *p = pairs->u.seq.v[i];
                if ((p->kind != SM__PK_TUPLE && p->kind != SM__PK_LIST) || p->u.seq.n != 2)
                    return sm__pk_fail(pk, err, SM_EFORMAT, "OrderedDict item is not a pair");
                int rc = dict_add(pk, d, p->u.seq.v[0], p->u.seq.v[1], err);
                if (rc) return rc;
            }
        } else if (args->u.seq.n != 0) {
            return sm__pk_fail(pk, err, SM_EFORMAT, "OrderedDict with unexpected arguments");
        }
        return push(pk, d, err);
    }
    case SM__G_REBUILD_TENSOR:
    case SM__G_REBUILD_TENSOR_V2:
    case SM__G_REBUILD_TENSOR_V3: return make_tensor(pk, fn->u.global.what, args, err);
    case SM__G_REBUILD_PARAMETER:
        if (args->u.seq.n < 1 || args->u.seq.v[0]->kind != SM__PK_TENSOR)
            return sm__pk_fail(pk, err, SM_EFORMAT, "parameter record without a tensor");
        return push(pk, args->u.seq.v[0], err);
    case SM__G_CODECS_ENCODE: {
        sm__pv *b = latin1_bytes(pk, args);
        if (b) return push(pk, b, err);
        return make_object(pk, fn, args, err);
    }
    default: return make_object(pk, fn, args, err);
    }
}

/* BUILD, SETITEM(S) and APPEND(S) on an inert object go to its item dict. */
static sm__pv *object_items(sm__pickle *pk, sm__pv *o, sm_error *err)
{
    if (!o->u.obj.items) {
        if (!(o->u.obj.items = sm__pk_alloc(pk, SM__PK_DICT))) {
            oom(pk, err);
            return NULL;
        }
    }
    return o->u.obj.items;
}

static int set_items(sm__pickle *pk, size_t first, sm_error *err)
{
    if ((pk->sp - first) % 2)
        return sm__pk_fail(pk, err, SM_EFORMAT, "SETITEMS with an odd number of items");
    if (first == 0 || first <= (pk->n_marks ? pk->marks[pk->n_marks - 1] : 0))
        return sm__pk_fail(pk, err, SM_EFORMAT, "opcode 0x%02x: stack underflow", pk->op);
    sm__pv *d = pk->stack[first - 1];
    if (d->kind == SM__PK_OBJECT && !(d = object_items(pk, d, err))) return SM_ENOMEM;
    if (d->kind != SM__PK_DICT) {
        char what[96];
        sm__pk_describe(d, what, sizeof what);
        return sm__pk_fail(pk, err, SM_EFORMAT, "setting items of %s", what);
    }
    for (size_t i = first; i < pk->sp; i += 2) {
        int rc = dict_add(pk, d, pk->stack[i], pk->stack[i + 1], err);
        if (rc) return rc;
    }
    sm__pv *target = pk->stack[first - 1];
    if (target != d) {
        int rc = nest(pk, target, d, err);
        if (rc) return rc;
    }
    pk->sp = first;
    return 0;
}

static int append_items(sm__pickle *pk, size_t first, sm_error *err)
{
    if (first == 0 || first <= (pk->n_marks ? pk->marks[pk->n_marks - 1] : 0))
        return sm__pk_fail(pk, err, SM_EFORMAT, "opcode 0x%02x: stack underflow", pk->op);
    sm__pv *l = pk->stack[first - 1];
    if (l->kind == SM__PK_OBJECT) { /* a list subclass: keep the items as keys */
        sm__pv *d = object_items(pk, l, err);
        if (!d) return SM_ENOMEM;
        for (size_t i = first; i < pk->sp; i++) {
            int rc = dict_add(pk, d, pk->stack[i], pk->stack[i], err);
            if (rc) return rc;
        }
        int rc = nest(pk, l, d, err);
        pk->sp = first;
        return rc;
    }
    if (l->kind != SM__PK_LIST) {
        char what[96];
        sm__pk_describe(l, what, sizeof what);
        return sm__pk_fail(pk, err, SM_EFORMAT, "appending to %s", what);
    }
    for (size_t i = first; i < pk->sp; i++) {
        int rc = seq_add(pk, l, pk->stack[i], err);
        if (rc) return rc;
    }
    pk->sp = first;
    return 0;
}

static int do_build(sm__pickle *pk, sm_error *err)
{
    sm__pv *state = pop(pk, err), *o = state ? top(pk, err) : NULL;
    if (!o) return SM_EFORMAT;
    switch (o->kind) {
    case SM__PK_OBJECT:
    case SM__PK_DICT: /* an OrderedDict's attributes (a state_dict's _metadata) */
    case SM__PK_TENSOR:
    case SM__PK_LIST: return nest(pk, o, state, err);
    default: {
        char what[96];
        sm__pk_describe(o, what, sizeof what);
        return sm__pk_fail(pk, err, SM_EFORMAT, "BUILD on %s", what);
    }
    }
}

/* ---- numbers in text (protocol 0) ----------------------------------------------------------- */

static int text_int(sm__pickle *pk, bool is_long, sm_error *err)
{
    char line[LINE_MAX_LEN + 1];
    int rc = take_line(pk, line, err);
    if (rc) return rc;
    if (!is_long && (!strcmp(line, "01") || !strcmp(line, "00"))) {
        sm__pv *b = sm__pk_alloc(pk, SM__PK_BOOL);
        if (b) b->u.b = line[1] == '1';
        return push(pk, b, err);
    }
    size_t n = strlen(line);
    if (is_long && n && line[n - 1] == 'L') line[--n] = 0;
    size_t i = line[0] == '-' || line[0] == '+';
    if (i == n) return sm__pk_fail(pk, err, SM_EFORMAT, "integer opcode without digits");
    for (size_t k = i; k < n; k++)
        if (line[k] < '0' || line[k] > '9')
            return sm__pk_fail(pk, err, SM_EFORMAT, "integer opcode with '%s'", line);
    errno = 0;
    long long v = strtoll(line, NULL, 10);
    if (errno == ERANGE) return push(pk, sm__pk_alloc(pk, SM__PK_BIGINT), err);
    return push(pk, new_int(pk, v), err);
}

static int text_float(sm__pickle *pk, sm_error *err)
{
    char line[LINE_MAX_LEN + 1], *end;
    int rc = take_line(pk, line, err);
    if (rc) return rc;
    double d = strtod(line, &end);
    if (end == line || *end)
        return sm__pk_fail(pk, err, SM_EFORMAT, "FLOAT opcode with '%s'", line);
    sm__pv *v = sm__pk_alloc(pk, SM__PK_FLOAT);
    if (v) v->u.f = d;
    return push(pk, v, err);
}

static int text_index(sm__pickle *pk, uint64_t *idx, sm_error *err)
{
    char line[LINE_MAX_LEN + 1];
    int rc = take_line(pk, line, err);
    if (rc) return rc;
    if (!line[0] || strspn(line, "0123456789") != strlen(line) || strlen(line) > 18)
        return sm__pk_fail(pk, err, SM_EFORMAT, "memo index '%s' is not a number", line);
    *idx = strtoull(line, NULL, 10);
    return 0;
}

/* LONG1 / LONG4 payload: little-endian two's complement. */
static int binary_long(sm__pickle *pk, size_t n, sm_error *err)
{
    if (n > 8) {
        pk->at += n;
        return push(pk, sm__pk_alloc(pk, SM__PK_BIGINT), err);
    }
    uint64_t u = take_le(pk, n);
    if (n && n < 8 && (u >> (8 * n - 1)) & 1) u |= ~UINT64_C(0) << (8 * n);
    int64_t v;
    memcpy(&v, &u, sizeof v);
    return push(pk, new_int(pk, v), err);
}

/* ---- the machine ---------------------------------------------------------------------------- */

/* The opcode families; each returns 1 at STOP, 0 to go on, < 0 on error. */
enum { SM__PK_NOT_MINE = 2 };

/* Framing and the stack: PROTO, FRAME, STOP, MARK, POP, POP_MARK, DUP. SM__PK_NOT_MINE for another opcode. */
static int op_frame(sm__pickle *pk, sm_error *err)
{
    int rc = 0;
    size_t first = 0;
    sm__pv *v;
    switch (pk->op) {
    case 0x80: /* PROTO */
        if ((rc = need(pk, 1, err))) return rc;
        if (pk->buf[pk->at] > 5)
            return sm__pk_fail(pk, err, SM_EUNSUPPORTED, "pickle protocol %d (at most 5)",
                               pk->buf[pk->at]);
        pk->at++;
        return 0;
    case 0x95: /* FRAME */
        if ((rc = need(pk, 8, err))) return rc;
        pk->at += 8;
        return 0;
    case '.': return 1; /* STOP */
    case '(':           /* MARK */
        if (pk->n_marks >= SM__PK_MAX_DEPTH)
            return sm__pk_fail(pk, err, SM_EFORMAT, "values nested deeper than %d levels",
                               SM__PK_MAX_DEPTH);
        if (sm__grow(&pk->marks, &pk->cap_marks, pk->n_marks + 1, sizeof *pk->marks))
            return oom(pk, err);
        pk->marks[pk->n_marks++] = pk->sp;
        return 0;
    case '0': return pop(pk, err) ? 0 : SM_EFORMAT; /* POP */
    case '1':                                       /* POP_MARK */
        if ((rc = pop_mark(pk, &first, err))) return rc;
        pk->sp = first;
        return 0;
    case '2': return (v = top(pk, err)) ? push(pk, v, err) : SM_EFORMAT; /* DUP */
    default: return SM__PK_NOT_MINE;
    }
}

/* Scalars: None, booleans, integers, floats, strings, bytes. SM__PK_NOT_MINE for another opcode. */
static int op_scalar(sm__pickle *pk, sm_error *err)
{
    int rc = 0;
    size_t n = 0;
    sm__pv *v;
    switch (pk->op) {
    case 'N': return push(pk, sm__pk_alloc(pk, SM__PK_NONE), err);
    case 0x88:
    case 0x89: /* NEWTRUE, NEWFALSE */
        if ((v = sm__pk_alloc(pk, SM__PK_BOOL))) v->u.b = pk->op == 0x88;
        return push(pk, v, err);
    case 'I': return text_int(pk, false, err);
    case 'L': return text_int(pk, true, err);
    case 'F': return text_float(pk, err);
    case 'K': /* BININT1 */
        if ((rc = need(pk, 1, err))) return rc;
        return push(pk, new_int(pk, (int64_t)take_le(pk, 1)), err);
    case 'M': /* BININT2 */
        if ((rc = need(pk, 2, err))) return rc;
        return push(pk, new_int(pk, (int64_t)take_le(pk, 2)), err);
    case 'J': /* BININT */
        if ((rc = need(pk, 4, err))) return rc;
        return push(pk, new_int(pk, (int32_t)(uint32_t)take_le(pk, 4)), err);
    case 0x8a: /* LONG1 */
        if ((rc = take_len(pk, 1, &n, err))) return rc;
        return binary_long(pk, n, err);
    case 0x8b: /* LONG4 */
        if ((rc = take_len(pk, 4, &n, err))) return rc;
        return binary_long(pk, n, err);
    case 'G': { /* BINFLOAT, big-endian */
        if ((rc = need(pk, 8, err))) return rc;
        uint64_t u = 0;
        for (int i = 0; i < 8; i++) u = (u << 8) | pk->buf[pk->at + (size_t)i];
        pk->at += 8;
        if ((v = sm__pk_alloc(pk, SM__PK_FLOAT))) memcpy(&v->u.f, &u, 8);
        return push(pk, v, err);
    }
    case 'X':   /* BINUNICODE */
    case 0x8c:  /* SHORT_BINUNICODE */
    case 0x8d:  /* BINUNICODE8 */
    case 'T':   /* BINSTRING (Python 2 str) */
    case 'U': { /* SHORT_BINSTRING */
        size_t wdt = pk->op == 0x8c || pk->op == 'U' ? 1 : pk->op == 0x8d ? 8 : 4;
        if ((rc = take_len(pk, wdt, &n, err))) return rc;
        if ((pk->op == 'X' || pk->op == 0x8c || pk->op == 0x8d) &&
            sm__utf8_invalid_at(pk->buf + pk->at, n) != n)
            return sm__pk_fail(pk, err, SM_EFORMAT, "string is not valid UTF-8");
        v = new_str(pk, SM__PK_STR, pk->buf + pk->at, n);
        pk->at += n;
        return push(pk, v, err);
    }
    case 'B':    /* BINBYTES */
    case 'C':    /* SHORT_BINBYTES */
    case 0x8e:   /* BINBYTES8 */
    case 0x96: { /* BYTEARRAY8 */
        size_t wdt = pk->op == 'C' ? 1 : pk->op == 'B' ? 4 : 8;
        if ((rc = take_len(pk, wdt, &n, err))) return rc;
        v = new_str(pk, SM__PK_BYTES, pk->buf + pk->at, n);
        pk->at += n;
        return push(pk, v, err);
    }
    default: return SM__PK_NOT_MINE;
    }
}

/* Lists, tuples, dicts and what fills them. SM__PK_NOT_MINE for another opcode. */
static int op_container(sm__pickle *pk, sm_error *err)
{
    int rc = 0;
    size_t n = 0, first = 0;
    sm__pv *v;
    switch (pk->op) {
    case ']':
    case 0x8f: return push(pk, sm__pk_alloc(pk, SM__PK_LIST), err); /* EMPTY_LIST, EMPTY_SET */
    case ')': return push(pk, sm__pk_alloc(pk, SM__PK_TUPLE), err); /* EMPTY_TUPLE */
    case '}': return push(pk, sm__pk_alloc(pk, SM__PK_DICT), err);  /* EMPTY_DICT */
    case 'a':                                                       /* APPEND */
        first = pk->sp;
        if (first <= fence(pk) + 1)
            return sm__pk_fail(pk, err, SM_EFORMAT, "opcode 0x%02x: stack underflow", pk->op);
        return append_items(pk, first - 1, err);
    case 'e':  /* APPENDS */
    case 0x90: /* ADDITEMS */
        if ((rc = pop_mark(pk, &first, err))) return rc;
        return append_items(pk, first, err);
    case 'l':  /* LIST */
    case 't':  /* TUPLE */
    case 0x91: /* FROZENSET */
        if ((rc = pop_mark(pk, &first, err))) return rc;
        return collect(pk, pk->op == 't' ? SM__PK_TUPLE : SM__PK_LIST, first, err);
    case 0x85:
    case 0x86:
    case 0x87: /* TUPLE1..3 */
        n = (size_t)(pk->op - 0x84);
        if (pk->sp < fence(pk) + n)
            return sm__pk_fail(pk, err, SM_EFORMAT, "opcode 0x%02x: stack underflow", pk->op);
        return collect(pk, SM__PK_TUPLE, pk->sp - n, err);
    case 'd': /* DICT */
        if ((rc = pop_mark(pk, &first, err))) return rc;
        if ((pk->sp - first) % 2)
            return sm__pk_fail(pk, err, SM_EFORMAT, "DICT with an odd number of items");
        if (!(v = sm__pk_alloc(pk, SM__PK_DICT))) return oom(pk, err);
        for (size_t i = first; i < pk->sp; i += 2)
            if ((rc = dict_add(pk, v, pk->stack[i], pk->stack[i + 1], err))) return rc;
        pk->sp = first;
        return push(pk, v, err);
    case 's': /* SETITEM */
        if (pk->sp < fence(pk) + 3)
            return sm__pk_fail(pk, err, SM_EFORMAT, "opcode 0x%02x: stack underflow", pk->op);
        return set_items(pk, pk->sp - 2, err);
    case 'u': /* SETITEMS */
        if ((rc = pop_mark(pk, &first, err))) return rc;
        return set_items(pk, first, err);
    default: return SM__PK_NOT_MINE;
    }
}

/* The memo: GET, PUT and their binary forms, MEMOIZE. SM__PK_NOT_MINE for another opcode. */
static int op_memo(sm__pickle *pk, sm_error *err)
{
    int rc = 0;
    uint64_t idx;
    switch (pk->op) {
    case 'g': /* GET */
        if ((rc = text_index(pk, &idx, err))) return rc;
        return memo_get(pk, idx, err);
    case 'h': /* BINGET */
        if ((rc = need(pk, 1, err))) return rc;
        return memo_get(pk, take_le(pk, 1), err);
    case 'j': /* LONG_BINGET */
        if ((rc = need(pk, 4, err))) return rc;
        return memo_get(pk, take_le(pk, 4), err);
    case 'p': /* PUT */
        if ((rc = text_index(pk, &idx, err))) return rc;
        return memo_put(pk, idx, err);
    case 'q': /* BINPUT */
        if ((rc = need(pk, 1, err))) return rc;
        return memo_put(pk, take_le(pk, 1), err);
    case 'r': /* LONG_BINPUT */
        if ((rc = need(pk, 4, err))) return rc;
        return memo_put(pk, take_le(pk, 4), err);
    case 0x94: return memo_put(pk, pk->n_memo, err); /* MEMOIZE */
    default: return SM__PK_NOT_MINE;
    }
}

/* Classes and objects (GLOBAL, REDUCE, BUILD, NEWOBJ, OBJ; never executed), persistent ids, and the opcodes we refuse. SM__PK_NOT_MINE for another opcode. */
static int op_object(sm__pickle *pk, sm__pk_persid_fn persid, void *arg, sm_error *err)
{
    int rc = 0;
    size_t first = 0;
    sm__pv *v, *w;
    switch (pk->op) {
    case 'c':                                        /* GLOBAL */
    case 'i': {                                      /* INST */
        char module[LINE_MAX_LEN + 1], name[LINE_MAX_LEN + 1];
        if ((rc = take_line(pk, module, err)) || (rc = take_line(pk, name, err))) return rc;
        if ((rc = make_global(pk, module, name, err)) || pk->op == 'c') return rc;
        v = pk->stack[--pk->sp];
        if ((rc = pop_mark(pk, &first, err))) return rc;
        if ((rc = collect(pk, SM__PK_TUPLE, first, err))) return rc;
        w = pk->stack[--pk->sp];
        return make_object(pk, v, w, err);
    }
    case 0x93: /* STACK_GLOBAL */
        if (!(w = pop(pk, err)) || !(v = pop(pk, err))) return SM_EFORMAT;
        if (v->kind != SM__PK_STR || w->kind != SM__PK_STR || strlen(v->u.str.s) != v->u.str.n ||
            strlen(w->u.str.s) != w->u.str.n)
            return sm__pk_fail(pk, err, SM_EFORMAT, "STACK_GLOBAL without two strings");
        return make_global(pk, v->u.str.s, w->u.str.s, err);
    case 'R': return do_reduce(pk, err);
    case 'b': return do_build(pk, err);
    case 0x81: /* NEWOBJ */
    case 0x92: /* NEWOBJ_EX */
        if (pk->op == 0x92 && !pop(pk, err)) return SM_EFORMAT;
        if (!(w = pop(pk, err)) || !(v = pop(pk, err))) return SM_EFORMAT;
        if (v->kind != SM__PK_GLOBAL)
            return sm__pk_fail(pk, err, SM_EFORMAT, "NEWOBJ of something that is not a class");
        return make_object(pk, v, w, err);
    case 'o': /* OBJ */
        if ((rc = pop_mark(pk, &first, err))) return rc;
        if (pk->sp == first || pk->stack[first]->kind != SM__PK_GLOBAL)
            return sm__pk_fail(pk, err, SM_EFORMAT, "OBJ without a class");
        v = pk->stack[first];
        if ((rc = collect(pk, SM__PK_TUPLE, first + 1, err))) return rc;
        w = pk->stack[--pk->sp];
        pk->sp--; /* the class */
        return make_object(pk, v, w, err);
    case 'Q': /* BINPERSID */
        if (!(v = pop(pk, err))) return SM_EFORMAT;
        if (!persid)
            return sm__pk_fail(pk, err, SM_EFORMAT, "persistent id in a pickle that has none");
        if (!(w = persid(pk, v, arg, err))) return err && err->code ? err->code : SM_EFORMAT;
        return push(pk, w, err);
    case 0x98: return top(pk, err) ? 0 : SM_EFORMAT; /* READONLY_BUFFER */
    case 'P':
        return sm__pk_fail(pk, err, SM_EUNSUPPORTED,
                           "text persistent ids (PERSID) are not used "
                           "by torch.save");
    case 'S':
    case 'V':
        return sm__pk_fail(pk, err, SM_EUNSUPPORTED,
                           "protocol-0 quoted strings (opcode '%c') are not supported", pk->op);
    case 0x82:
    case 0x83:
    case 0x84:
        return sm__pk_fail(pk, err, SM_EUNSUPPORTED,
                           "extension-registry opcodes (EXT1/2/4) are not supported");
    case 0x97:
        return sm__pk_fail(pk, err, SM_EUNSUPPORTED, "out-of-band buffers are not supported");
    default: return SM__PK_NOT_MINE;
    }
}

/* One opcode (pk->op, already consumed). 1 at STOP, 0 to go on, < 0 on error. */
static int step(sm__pickle *pk, sm__pk_persid_fn persid, void *arg, sm_error *err)
{
    int rc;
    if ((rc = op_frame(pk, err)) != SM__PK_NOT_MINE) return rc;
    if ((rc = op_scalar(pk, err)) != SM__PK_NOT_MINE) return rc;
    if ((rc = op_container(pk, err)) != SM__PK_NOT_MINE) return rc;
    if ((rc = op_memo(pk, err)) != SM__PK_NOT_MINE) return rc;
    if ((rc = op_object(pk, persid, arg, err)) != SM__PK_NOT_MINE) return rc;
    return sm__pk_fail(pk, err, SM_EFORMAT, "unknown opcode 0x%02x", pk->op);
}

int sm__pk_run(sm__pickle *pk, const unsigned char *buf, size_t len, sm__pk_persid_fn persid,
               void *arg, sm__pv **root, size_t *used, sm_error *err)
{
    pk->buf = buf;
    pk->len = len;
    pk->at = pk->pos = 0;
    pk->sp = pk->n_marks = pk->n_memo = 0;
    pk->hit_end = false;
    if (pk->memo) memset(pk->memo, 0, pk->cap_memo * sizeof *pk->memo);
    for (;;) {
        pk->pos = pk->at;
        if (pk->at >= len) {
            pk->hit_end = true;
            return sm__pk_fail(pk, err, SM_EFORMAT, "truncated: the stream ends before STOP");
        }
        pk->op = buf[pk->at++];
        int rc = step(pk, persid, arg, err);
        if (rc < 0) return rc;
        if (rc == 1) break;
    }
    if (pk->sp != 1 || pk->n_marks)
        return sm__pk_fail(pk, err, SM_EFORMAT,
                           "STOP with %zu values and %zu marks on the stack "
                           "(expected one value)",
                           pk->sp, pk->n_marks);
    *root = pk->stack[0];
    if (used) *used = pk->at;
    return 0;
}

bool sm__pk_hit_end(const sm__pickle *pk) { return pk->hit_end; }
