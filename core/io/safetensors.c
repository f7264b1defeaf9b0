/* core/io/safetensors.c - safetensors files (checkpoints, golden files): headers read by our
 * JSON reader (json_read.c, clean on out-of-memory) and written with Jansson. Format: u64 little-endian header length N, N bytes of UTF-8 JSON, then raw
 * little-endian data; see include/simmim/io.h and docs/tensor-format.md.
 *
 * Reading validates the whole header before anything is allocated for tensor data: the only
 * allocation driven by the file is the header itself, capped at SM_ST_MAX_HEADER and at the
 * file size. Tensor data is read on demand with pread (bounds already checked).
 *
 * Writing goes to a temp file in the target's directory, then fsync, rename, fsync(dir), so a
 * crash leaves either the old file or the complete new one. */
#include "base/internal.h"
#include "io/io_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <sys/stat.h>
#include <unistd.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors.c assumes a little-endian host"
#endif

static const struct {
    const char *name;
    size_t size;
} dtypes[SM_DTYPE_COUNT] = {
    [SM_DTYPE_F32] = {"F32", 4}, [SM_DTYPE_F64] = {"F64", 8}, [SM_DTYPE_F16] = {"F16", 2},
    [SM_DTYPE_BF16] = {"BF16", 2}, [SM_DTYPE_I64] = {"I64", 8}, [SM_DTYPE_I32] = {"I32", 4},
    [SM_DTYPE_I16] = {"I16", 2}, [SM_DTYPE_I8] = {"I8", 1}, [SM_DTYPE_U8] = {"U8", 1},
    [SM_DTYPE_BOOL] = {"BOOL", 1},
};
_Static_assert(SM_DTYPE_COUNT == 10, "dtype table out of date");

const char *sm_dtype_name(sm_dtype dt)
{
    return (unsigned)dt < SM_DTYPE_COUNT ? dtypes[dt].name : NULL;
}

size_t sm_dtype_size(sm_dtype dt) { return (unsigned)dt < SM_DTYPE_COUNT ? dtypes[dt].size : 0; }

static int dtype_parse(const char *s, sm_dtype *out)
{
    for (int i = 0; i < SM_DTYPE_COUNT; i++)
        if (strcmp(s, dtypes[i].name) == 0) {
            *out = (sm_dtype)i;
            return 0;
        }
    return -1;
}

/* ---------------------------------------------------------------------------------------- */
/* Reading                                                                                   */

struct sm_st_file {
    char *path;
    int fd;
    uint64_t data_start; /* 8 + N */
    uint64_t data_size;
    size_t count;
    sm_st_info *infos; /* sorted by data offset */
    size_t n_meta;
    char **meta_keys, **meta_values;
};

/* Index of the first byte that is not valid UTF-8 (RFC 3629: no overlongs, no surrogates,
 * nothing above U+10FFFF), or len if all valid. */
size_t sm__utf8_invalid_at(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned c = s[i];
        size_t n;
        unsigned min;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            n = 1, min = 0x80, c &= 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            n = 2, min = 0x800, c &= 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            n = 3, min = 0x10000, c &= 0x07;
        } else {
            return i;
        }
        if (i + n >= len) return i; /* truncated sequence */
        for (size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return i;
            c = (c << 6) | (s[i + k] & 0x3F);
        }
        if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return i;
        i += n + 1;
    }
    return len;
}

static int fmt_err(sm_error *err, const char *path, const char *name, const char *fmt, ...)
    SM_PRINTF(4, 5);
/* Header problems: the message itself names the tensor ("header: tensor 'a.b': ..."), so the
 * error's path field stays empty (no "a.b: header: tensor 'a.b'" repetition). */
static int fmt_err(sm_error *err, const char *path, const char *name, const char *fmt, ...)
{
    va_list ap;
    (void)name;
    va_start(ap, fmt);
    sm_error_setv(err, SM_EFORMAT, path, 0, 0, NULL, fmt, ap);
    va_end(ap);
    return SM_EFORMAT;
}

int sm__read_at(int fd, void *buf, size_t n, uint64_t off)
{
    char *p = buf;
    while (n > 0) {
        ssize_t r = pread(fd, p, n, (off_t)off);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return -errno;
        if (r == 0) return -EIO; /* the file ends first (or shrank since validation) */
        p += r;
        n -= (size_t)r;
        off += (uint64_t)r;
    }
    return 0;
}

static int cmp_info(const void *pa, const void *pb)
{
    const sm_st_info *a = pa, *b = pb;
    if (a->begin != b->begin) return a->begin < b->begin ? -1 : 1;
    if (a->end != b->end) return a->end < b->end ? -1 : 1;
    return strcmp(a->name, b->name);
}

/* A non-negative INT node's value, or -1. */
static int64_t nonneg_int(const sm__jnode *v)
{
    return v && v->type == SM__J_INT && v->ival >= 0 ? v->ival : -1;
}

/* The shape array of an entry into info (ndim, shape, numel), checking the byte count. */
static int parse_shape(const char *path, const char *name, const sm__jdoc *d,
                       const sm__jnode *js, sm_st_info *info, sm_error *err)
{
    if (js->type != SM__J_ARR)
        return fmt_err(err, path, name, "header: tensor '%s': shape is not an array", name);
    if (js->count > SM_ST_MAX_DIMS)
        return fmt_err(err, path, name, "header: tensor '%s': %zu dimensions (at most %d)", name,
                       js->count, SM_ST_MAX_DIMS);
    info->ndim = (int)js->count;
    size_t esize = sm_dtype_size(info->dtype), i = 0;
    int64_t numel = 1;
    for (const sm__jnode *d_ = sm__json_first(d, js); d_; d_ = sm__json_next(d, d_), i++) {
        int64_t di = nonneg_int(d_);
        if (di < 0)
            return fmt_err(err, path, name,
                           "header: tensor '%s': shape[%zu] is not a non-negative integer", name,
                           i);
        info->shape[i] = di;
        if (di != 0 && numel > INT64_MAX / (int64_t)esize / di)
            return fmt_err(err, path, name,
                           "header: tensor '%s': shape is too large (element count x %zu bytes "
                           "overflows)",
                           name, esize);
        numel *= di;
    }
    info->numel = numel;
    return 0;
}

/* Validates one tensor entry; fills *info (name is set by the caller). */
static int parse_entry(const char *path, const char *name, const sm__jdoc *d, const sm__jnode *v,
                       sm_st_info *info, sm_error *err)
{
    if (v->type != SM__J_OBJ)
        return fmt_err(err, path, name, "header: tensor '%s': entry is not a JSON object",
                       name);
    for (const sm__jnode *k = sm__json_first(d, v); k; k = sm__json_next(d, sm__json_next(d, k)))
        if (strcmp(k->str, "dtype") && strcmp(k->str, "shape") && strcmp(k->str, "data_offsets"))
            return fmt_err(err, path, name,
                           "header: tensor '%s': unexpected key '%s' (expected dtype, shape, "
                           "data_offsets)",
                           name, k->str);
    const sm__jnode *jd = sm__json_get(d, v, "dtype"), *js = sm__json_get(d, v, "shape"),
                    *jo = sm__json_get(d, v, "data_offsets");
    if (!jd || !js || !jo)
        return fmt_err(err, path, name, "header: tensor '%s': missing key '%s'", name,
                       !jd ? "dtype" : !js ? "shape" : "data_offsets");
    bool str = jd->type == SM__J_STR;
    if (!str || dtype_parse(jd->str, &info->dtype) != 0)
        return fmt_err(err, path, name,
                       "header: tensor '%s': unknown dtype %s%s%s (known: F32, F64, F16, BF16, "
                       "I64, I32, I16, I8, U8, BOOL)",
                       name, str ? "'" : "", str ? jd->str : "(not a string)", str ? "'" : "");
    int rc = parse_shape(path, name, d, js, info, err);
    if (rc) return rc;
    int64_t b = jo->type == SM__J_ARR && jo->count == 2 ? nonneg_int(sm__json_at(d, jo, 0)) : -1;
    int64_t e = jo->type == SM__J_ARR && jo->count == 2 ? nonneg_int(sm__json_at(d, jo, 1)) : -1;
    if (b < 0 || e < 0)
        return fmt_err(err, path, name,
                       "header: tensor '%s': data_offsets is not [begin, end] of non-negative "
                       "integers",
                       name);
    info->begin = (uint64_t)b;
    info->end = (uint64_t)e;
    uint64_t bytes = (uint64_t)info->numel * sm_dtype_size(info->dtype);
    if (info->end < info->begin || info->end - info->begin != bytes)
        return fmt_err(err, path, name,
                       "header: tensor '%s': data_offsets [%llu, %llu] do not match shape x %s "
                       "(%llu bytes)",
                       name, (unsigned long long)info->begin, (unsigned long long)info->end,
                       dtypes[info->dtype].name, (unsigned long long)bytes);
    return 0;
}

static int parse_metadata(sm_st_file *f, const sm__jdoc *d, const sm__jnode *meta, sm_error *err)
{
    if (meta->type != SM__J_OBJ)
        return fmt_err(err, f->path, "__metadata__", "header: __metadata__ is not an object");
    size_t n = meta->count;
    f->meta_keys = calloc(n ? n : 1, sizeof *f->meta_keys);
    f->meta_values = calloc(n ? n : 1, sizeof *f->meta_values);
    if (!f->meta_keys || !f->meta_values)
        return sm_error_set(err, SM_ENOMEM, f->path, 0, 0, NULL, "out of memory");
    for (const sm__jnode *k = sm__json_first(d, meta); k; k = sm__json_next(d, sm__json_next(d, k))) {
        const sm__jnode *val = sm__json_next(d, k);
        if (val->type != SM__J_STR)
            return fmt_err(err, f->path, k->str,
                           "header: __metadata__ entry '%s' is not a string", k->str);
        f->meta_keys[f->n_meta] = sm__strdup(k->str);
        f->meta_values[f->n_meta] = sm__strdup(val->str);
        f->n_meta++;
        if (!f->meta_keys[f->n_meta - 1] || !f->meta_values[f->n_meta - 1])
            return sm_error_set(err, SM_ENOMEM, f->path, 0, 0, NULL, "out of memory");
    }
    return 0;
}

/* The tensor entries and the metadata of the root object, in the order of the text. */
static int parse_members(sm_st_file *f, const sm__jdoc *d, sm_error *err)
{
    const sm__jnode *root = &d->nodes[0];
    if (root->type != SM__J_OBJ) return fmt_err(err, f->path, NULL, "header is not a JSON object");
    f->infos = calloc(root->count ? root->count : 1, sizeof *f->infos);
    if (!f->infos) return sm_error_set(err, SM_ENOMEM, f->path, 0, 0, NULL, "out of memory");
    for (const sm__jnode *k = sm__json_first(d, root); k; k = sm__json_next(d, sm__json_next(d, k))) {
        const sm__jnode *val = sm__json_next(d, k);
        int rc;
        if (strcmp(k->str, "__metadata__") == 0) {
            if ((rc = parse_metadata(f, d, val, err))) return rc;
            continue;
        }
        sm_st_info *info = &f->infos[f->count];
        if ((rc = parse_entry(f->path, k->str, d, val, info, err))) return rc;
        if (!(info->name = sm__strdup(k->str)))
            return sm_error_set(err, SM_ENOMEM, f->path, 0, 0, NULL, "out of memory");
        f->count++;
    }
    return 0;
}

static int parse_header(sm_st_file *f, const char *text, size_t len, sm_error *err)
{
    size_t bad = sm__utf8_invalid_at((const unsigned char *)text, len);
    if (bad < len)
        return fmt_err(err, f->path, NULL, "header is not valid UTF-8 (byte %zu of the header)",
                       bad);
    sm__jdoc d;
    sm__jerror je;
    int rc = sm__json_parse(text, len, 64, &d, &je);
    if (rc == SM_ENOMEM) return sm_error_set(err, SM_ENOMEM, f->path, 0, 0, NULL, "out of memory");
    if (rc)
        return fmt_err(err, f->path, NULL,
                       "header is not valid JSON (line %d, column %d of the header): %s",
                       je.line, je.column, je.text);
    rc = parse_members(f, &d, err);
    sm__json_free(&d);
    if (rc) return rc;
    qsort(f->infos, f->count, sizeof *f->infos, cmp_info);
    uint64_t pos = 0;
    for (size_t i = 0; i < f->count; i++) {
        const sm_st_info *t = &f->infos[i];
        if (t->begin != pos) {
            rc = fmt_err(err, f->path, t->name,
                         "header: tensor '%s': data_offsets [%llu, %llu] %s (expected begin "
                         "%llu)",
                         t->name, (unsigned long long)t->begin, (unsigned long long)t->end,
                         t->begin > pos ? "leave a gap" : "overlap the previous tensor",
                         (unsigned long long)pos);
            return rc;
        }
        pos = t->end;
    }
    if (pos != f->data_size)
        return fmt_err(err, f->path, NULL,
                     "tensors cover %llu bytes of data but the file has %llu bytes after the "
                     "header (%s)",
                     (unsigned long long)pos, (unsigned long long)f->data_size,
                     pos < f->data_size ? "trailing bytes" : "file truncated");
    return 0;
}

int sm_st_open(const char *path, sm_st_file **out, sm_error *err)
{
    *out = NULL;
    sm_st_file *f = calloc(1, sizeof *f);
    if (!f || !(f->path = sm__strdup(path))) {
        free(f);
        return sm_error_set(err, SM_ENOMEM, path, 0, 0, NULL, "out of memory");
    }
    char *text = NULL;
    int rc;
    f->fd = -1;
    f->fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK); /* a FIFO is refused, not waited on */
    if (f->fd < 0) {
        rc = sm_error_set(err, SM_EIO, path, 0, 0, NULL, "cannot open: %s", strerror(errno));
        goto fail;
    }
    struct stat st;
    if (fstat(f->fd, &st) != 0) {
        rc = sm_error_set(err, SM_EIO, path, 0, 0, NULL, "cannot stat: %s", strerror(errno));
        goto fail;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = sm_error_set(err, SM_EIO, path, 0, 0, NULL, "not a regular file");
        goto fail;
    }
    uint64_t size = (uint64_t)st.st_size;
    if (size < 8) {
        rc = fmt_err(err, path, NULL,
                     "file is %llu bytes, too short for the 8-byte header length",
                     (unsigned long long)size);
        goto fail;
    }
    unsigned char len8[8];
    if ((rc = sm__read_at(f->fd, len8, 8, 0))) {
        rc = sm_error_set(err, SM_EIO, path, 0, 0, NULL, "cannot read: %s", strerror(-rc));
        goto fail;
    }
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = (n << 8) | len8[i];
    if (n > SM_ST_MAX_HEADER) {
        rc = fmt_err(err, path, NULL, "header length %llu exceeds the limit of %u bytes",
                     (unsigned long long)n, SM_ST_MAX_HEADER);
        goto fail;
    }
    if (n > size - 8) {
        rc = fmt_err(err, path, NULL,
                     "header length %llu runs past the end of the file (%llu bytes after the "
                     "length field)",
                     (unsigned long long)n, (unsigned long long)(size - 8));
        goto fail;
    }
    if (n < 2) {
        rc = fmt_err(err, path, NULL, "header length %llu is too short for a JSON object",
                     (unsigned long long)n);
        goto fail;
    }
    f->data_start = 8 + n;
    f->data_size = size - 8 - n;
    if (!(text = malloc((size_t)n))) {
        rc = sm_error_set(err, SM_ENOMEM, path, 0, 0, NULL, "out of memory");
        goto fail;
    }
    if ((rc = sm__read_at(f->fd, text, (size_t)n, 8))) {
        rc = sm_error_set(err, SM_EIO, path, 0, 0, NULL, "cannot read: %s", strerror(-rc));
        goto fail;
    }
    if ((rc = parse_header(f, text, (size_t)n, err))) goto fail;
    free(text);
    *out = f;
    return 0;
fail:
    free(text);
    sm_st_close(f);
    return rc;
}

void sm_st_close(sm_st_file *f)
{
    if (!f) return;
    if (f->fd >= 0) close(f->fd);
    for (size_t i = 0; i < f->count; i++) free((char *)f->infos[i].name);
    free(f->infos);
    for (size_t i = 0; i < f->n_meta; i++) {
        free(f->meta_keys[i]);
        free(f->meta_values[i]);
    }
    free(f->meta_keys);
    free(f->meta_values);
    free(f->path);
    free(f);
}

const char *sm_st_path(const sm_st_file *f) { return f->path; }
size_t sm_st_count(const sm_st_file *f) { return f->count; }
const sm_st_info *sm_st_at(const sm_st_file *f, size_t i)
{
    return i < f->count ? &f->infos[i] : NULL;
}

const sm_st_info *sm_st_find(const sm_st_file *f, const char *name)
{
    for (size_t i = 0; i < f->count; i++)
        if (strcmp(f->infos[i].name, name) == 0) return &f->infos[i];
    return NULL;
}

const char *sm_st_meta(const sm_st_file *f, const char *key)
{
    for (size_t i = 0; i < f->n_meta; i++)
        if (strcmp(f->meta_keys[i], key) == 0) return f->meta_values[i];
    return NULL;
}
size_t sm_st_meta_count(const sm_st_file *f) { return f->n_meta; }
const char *sm_st_meta_key(const sm_st_file *f, size_t i)
{
    return i < f->n_meta ? f->meta_keys[i] : NULL;
}
const char *sm_st_meta_value(const sm_st_file *f, size_t i)
{
    return i < f->n_meta ? f->meta_values[i] : NULL;
}

/* IEEE half -> float (exact, including subnormals, inf, nan). */
static float half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1Fu, man = h & 0x3FFu;
    uint32_t bits;
    if (exp == 0x1F) {
        bits = sign | 0x7F800000u | (man << 13);
    } else if (exp != 0) {
        bits = sign | ((exp + 112u) << 23) | (man << 13);
    } else if (man == 0) {
        bits = sign;
    } else { /* subnormal: normalise */
        int e = -1;
        do {
            man <<= 1;
            e++;
        } while (!(man & 0x400u));
        bits = sign | ((uint32_t)(112 - e) << 23) | ((man & 0x3FFu) << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

double sm__elem_as_double(sm_dtype dt, const unsigned char *p)
{
    switch (dt) {
    case SM_DTYPE_F32: {
        float v;
        memcpy(&v, p, 4);
        return v;
    }
    case SM_DTYPE_F64: {
        double v;
        memcpy(&v, p, 8);
        return v;
    }
    case SM_DTYPE_F16: {
        uint16_t v;
        memcpy(&v, p, 2);
        return half_to_float(v);
    }
    case SM_DTYPE_BF16: {
        uint16_t v;
        memcpy(&v, p, 2);
        uint32_t bits = (uint32_t)v << 16;
        float fv;
        memcpy(&fv, &bits, 4);
        return fv;
    }
    default: SM__ASSERT(0 && "not a float dtype");
    }
}

int64_t sm__elem_as_i64(sm_dtype dt, const unsigned char *p)
{
    switch (dt) {
    case SM_DTYPE_I64: {
        int64_t v;
        memcpy(&v, p, 8);
        return v;
    }
    case SM_DTYPE_I32: {
        int32_t v;
        memcpy(&v, p, 4);
        return v;
    }
    case SM_DTYPE_I16: {
        int16_t v;
        memcpy(&v, p, 2);
        return v;
    }
    case SM_DTYPE_I8: return (int8_t)p[0];
    case SM_DTYPE_U8: return p[0];
    case SM_DTYPE_BOOL: return p[0] != 0;
    default: SM__ASSERT(0 && "not an integer dtype");
    }
}

/* Calls fn on the tensor's raw bytes in chunks of whole elements (first element index, count):
 * memory stays bounded whatever the tensor size. */
typedef void (*chunk_fn)(const sm_st_info *t, const unsigned char *buf, int64_t first,
                         int64_t count, void *arg);

static int read_chunks(const sm_st_file *f, const sm_st_info *t, chunk_fn fn, void *arg,
                       sm_error *err)
{
    enum { CHUNK = 1 << 16 };
    unsigned char buf[CHUNK];
    size_t es = dtypes[t->dtype].size;
    int64_t per = (int64_t)(CHUNK / es);
    uint64_t off = f->data_start + t->begin;
    for (int64_t i = 0; i < t->numel; i += per) {
        int64_t k = SM__MIN(per, t->numel - i);
        int rc = sm__read_at(f->fd, buf, (size_t)k * es, off + (uint64_t)i * es);
        if (rc)
            return sm_error_set(err, SM_EIO, f->path, 0, 0, t->name, "cannot read: %s",
                                strerror(-rc));
        fn(t, buf, i, k, arg);
    }
    return 0;
}

enum want { WANT_F32, WANT_F64, WANT_I64 };

static bool accepts(enum want w, sm_dtype dt)
{
    bool is_float = dt == SM_DTYPE_F32 || dt == SM_DTYPE_F64 || dt == SM_DTYPE_F16 ||
                    dt == SM_DTYPE_BF16;
    return w == WANT_I64 ? !is_float : is_float;
}

typedef struct conv_arg {
    enum want w;
    void *out;
} conv_arg;

static void conv_chunk(const sm_st_info *t, const unsigned char *buf, int64_t first,
                       int64_t count, void *arg)
{
    const conv_arg *c = arg;
    size_t es = dtypes[t->dtype].size;
    for (int64_t j = 0; j < count; j++) {
        const unsigned char *p = buf + (size_t)j * es;
        if (c->w == WANT_F32)
            ((float *)c->out)[first + j] = (float)sm__elem_as_double(t->dtype, p);
        else if (c->w == WANT_F64)
            ((double *)c->out)[first + j] = sm__elem_as_double(t->dtype, p);
        else
            ((int64_t *)c->out)[first + j] = sm__elem_as_i64(t->dtype, p);
    }
}

/* Reads a tensor converted to the requested type. */
static int read_conv(const sm_st_file *f, const char *name, void *out, int64_t cap, enum want w,
                     sm_error *err)
{
    static const char *want_name[] = {"F32", "F64", "I64"};
    const sm_st_info *t = sm_st_find(f, name);
    if (!t)
        return sm_error_set(err, SM_ENOTFOUND, f->path, 0, 0, name, "no such tensor");
    if (!accepts(w, t->dtype))
        return sm_error_set(err, SM_EINVAL, f->path, 0, 0, name,
                            "dtype %s cannot be read as %s", dtypes[t->dtype].name,
                            want_name[w]);
    if (cap < t->numel)
        return sm_error_set(err, SM_EINVAL, f->path, 0, 0, name,
                            "has %lld elements, the buffer only %lld", (long long)t->numel,
                            (long long)cap);
    /* same type: straight into the output */
    if ((w == WANT_F32 && t->dtype == SM_DTYPE_F32) ||
        (w == WANT_F64 && t->dtype == SM_DTYPE_F64) ||
        (w == WANT_I64 && t->dtype == SM_DTYPE_I64)) {
        int rc = sm__read_at(f->fd, out, (size_t)(t->end - t->begin), f->data_start + t->begin);
        if (rc)
            return sm_error_set(err, SM_EIO, f->path, 0, 0, name, "cannot read: %s",
                                strerror(-rc));
        return 0;
    }
    conv_arg c = {w, out};
    return read_chunks(f, t, conv_chunk, &c, err);
}

typedef struct stats_arg {
    sm_st_stats *s;
    double sum;
} stats_arg;

static void stats_chunk(const sm_st_info *t, const unsigned char *buf, int64_t first,
                        int64_t count, void *arg)
{
    stats_arg *a = arg;
    size_t es = dtypes[t->dtype].size;
    bool is_float = accepts(WANT_F64, t->dtype);
    (void)first;
    for (int64_t j = 0; j < count; j++) {
        const unsigned char *p = buf + (size_t)j * es;
        double v =
            is_float ? sm__elem_as_double(t->dtype, p) : (double)sm__elem_as_i64(t->dtype, p);
        if (!isfinite(v)) {
            a->s->nonfinite++;
            continue;
        }
        if (a->s->count == 0 || v < a->s->min) a->s->min = v;
        if (a->s->count == 0 || v > a->s->max) a->s->max = v;
        a->s->count++;
        a->sum += v;
    }
}

int sm_st_read_stats(const sm_st_file *f, const char *name, sm_st_stats *out, sm_error *err)
{
    memset(out, 0, sizeof *out);
    const sm_st_info *t = sm_st_find(f, name);
    if (!t)
        return sm_error_set(err, SM_ENOTFOUND, f->path, 0, 0, name, "no such tensor");
    stats_arg a = {out, 0.0};
    int rc = read_chunks(f, t, stats_chunk, &a, err);
    out->mean = out->count ? a.sum / (double)out->count : 0.0;
    return rc;
}

int sm_st_read_f32(const sm_st_file *f, const char *name, float *out, int64_t cap, sm_error *err)
{
    return read_conv(f, name, out, cap, WANT_F32, err);
}
int sm_st_read_f64(const sm_st_file *f, const char *name, double *out, int64_t cap,
                   sm_error *err)
{
    return read_conv(f, name, out, cap, WANT_F64, err);
}
int sm_st_read_i64(const sm_st_file *f, const char *name, int64_t *out, int64_t cap,
                   sm_error *err)
{
    return read_conv(f, name, out, cap, WANT_I64, err);
}

/* ---------------------------------------------------------------------------------------- */
/* Writing                                                                                   */

typedef struct wentry {
    char *name;
    sm_dtype dtype;
    int ndim;
    int64_t shape[SM_ST_MAX_DIMS];
    uint64_t bytes;
    const void *data;
} wentry;

struct sm_st_writer {
    wentry *e;
    size_t n, cap;
    json_t *meta;
};

sm_st_writer *sm_st_writer_new(void)
{
    sm_st_writer *w = calloc(1, sizeof *w);
    if (w && !(w->meta = json_object())) {
        free(w);
        return NULL;
    }
    return w;
}

void sm_st_writer_free(sm_st_writer *w)
{
    if (!w) return;
    for (size_t i = 0; i < w->n; i++) free(w->e[i].name);
    free(w->e);
    json_decref(w->meta);
    free(w);
}

int sm_st_writer_add(sm_st_writer *w, const char *name, sm_dtype dtype, int ndim,
                     const int64_t *shape, const void *data, sm_error *err)
{
    if (!name || !*name || strcmp(name, "__metadata__") == 0)
        return sm_error_set(err, SM_EINVAL, NULL, 0, 0, name, "invalid tensor name '%s'",
                            name ? name : "(null)");
    if ((unsigned)dtype >= SM_DTYPE_COUNT)
        return sm_error_set(err, SM_EINVAL, NULL, 0, 0, name, "tensor '%s': invalid dtype %d",
                            name, (int)dtype);
    if (ndim < 0 || ndim > SM_ST_MAX_DIMS)
        return sm_error_set(err, SM_EINVAL, NULL, 0, 0, name,
                            "tensor '%s': %d dimensions (0 to %d allowed)", name, ndim,
                            SM_ST_MAX_DIMS);
    size_t es = dtypes[dtype].size;
    int64_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0 || (shape[i] && numel > INT64_MAX / (int64_t)es / shape[i]))
            return sm_error_set(err, SM_EINVAL, NULL, 0, 0, name,
                                "tensor '%s': invalid shape (dimension %d is %lld)", name, i,
                                (long long)shape[i]);
        numel *= shape[i];
    }
    if (numel > 0 && !data)
        return sm_error_set(err, SM_EINVAL, NULL, 0, 0, name, "tensor '%s': data is NULL",
                            name);
    for (size_t i = 0; i < w->n; i++)
        if (strcmp(w->e[i].name, name) == 0)
            return sm_error_set(err, SM_EEXIST, NULL, 0, 0, name,
                                "tensor '%s' was already added", name);
    if (w->n == w->cap) {
        size_t nc = w->cap ? 2 * w->cap : 16;
        wentry *ne = realloc(w->e, nc * sizeof *ne);
        if (!ne) return sm_error_set(err, SM_ENOMEM, NULL, 0, 0, NULL, "out of memory");
        w->e = ne;
        w->cap = nc;
    }
    wentry *e = &w->e[w->n];
    memset(e, 0, sizeof *e);
    if (!(e->name = sm__strdup(name)))
        return sm_error_set(err, SM_ENOMEM, NULL, 0, 0, NULL, "out of memory");
    e->dtype = dtype;
    e->ndim = ndim;
    for (int i = 0; i < ndim; i++) e->shape[i] = shape[i];
    e->bytes = (uint64_t)numel * es;
    e->data = data;
    w->n++;
    return 0;
}

int sm_st_writer_meta(sm_st_writer *w, const char *key, const char *value, sm_error *err)
{
    json_t *s = json_string(value);
    if (!key || !s || json_object_set_new(w->meta, key, s) != 0)
        return sm_error_set(err, SM_EINVAL, NULL, 0, 0, key,
                            "invalid metadata entry (key and value must be UTF-8 strings)");
    return 0;
}

static int cmp_wentry(const void *pa, const void *pb)
{
    const wentry *a = pa, *b = pb;
    size_t sa = dtypes[a->dtype].size, sb = dtypes[b->dtype].size;
    if (sa != sb) return sa > sb ? -1 : 1;
    return strcmp(a->name, b->name);
}

static int write_full(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n > 0) {
        ssize_t r = write(fd, p, n > (1u << 30) ? (1u << 30) : n);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return -errno;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

/* The header JSON, padded with spaces so that 8 + length is a multiple of 8. malloc'd. */
static char *build_header(sm_st_writer *w, size_t *len)
{
    json_t *root = json_object();
    if (!root) return NULL;
    int bad = 0;
    if (json_object_size(w->meta) > 0) bad |= json_object_set(root, "__metadata__", w->meta);
    uint64_t pos = 0;
    for (size_t i = 0; i < w->n && !bad; i++) {
        const wentry *e = &w->e[i];
        json_t *shape = json_array();
        for (int d = 0; d < e->ndim && shape; d++)
            bad |= json_array_append_new(shape, json_integer((json_int_t)e->shape[d]));
        json_t *ent = json_pack("{s:s, s:o, s:[I, I]}", "dtype", dtypes[e->dtype].name,
                                "shape", shape, "data_offsets", (json_int_t)pos,
                                (json_int_t)(pos + e->bytes));
        if (!ent || json_object_set_new(root, e->name, ent) != 0) bad = 1;
        pos += e->bytes;
    }
    char *s = bad ? NULL : json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(root);
    if (!s) return NULL;
    size_t n = strlen(s), padded = (n + 7) & ~(size_t)7;
    char *out = realloc(s, padded + 1);
    if (!out) {
        free(s);
        return NULL;
    }
    memset(out + n, ' ', padded - n);
    out[padded] = '\0';
    *len = padded;
    return out;
}

int sm_st_writer_write(sm_st_writer *w, const char *path, sm_error *err)
{
    qsort(w->e, w->n, sizeof *w->e, cmp_wentry);
    size_t hlen;
    char *header = build_header(w, &hlen);
    if (!header)
        return sm_error_set(err, SM_ENOMEM, path, 0, 0, NULL,
                            "cannot build the header (out of memory or invalid UTF-8 in a "
                            "name)");
    char *dir = sm__dirname(path);
    size_t tlen = strlen(path) + 64;
    char *tmp = malloc(tlen);
    int fd = -1, rc = 0;
    if (!dir || !tmp) {
        rc = sm_error_set(err, SM_ENOMEM, path, 0, 0, NULL, "out of memory");
        goto out;
    }
    /* unique temp name next to the target; O_EXCL never reuses an existing file */
    static unsigned long counter;
    for (int attempt = 0; attempt < 100 && fd < 0; attempt++) {
        snprintf(tmp, tlen, "%s.tmp.%ld.%lu", path, (long)getpid(),
                 __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED));
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd < 0 && errno != EEXIST) break;
    }
    if (fd < 0) {
        rc = sm_error_set(err, SM_EIO, path, 0, 0, NULL, "cannot create a temp file in %s: %s",
                          dir, strerror(errno));
        goto out;
    }
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
    int e = write_full(fd, len8, 8);
    if (!e) e = write_full(fd, header, hlen);
    for (size_t i = 0; i < w->n && !e; i++)
        if (w->e[i].bytes) e = write_full(fd, w->e[i].data, (size_t)w->e[i].bytes);
    if (!e && fsync(fd) != 0) e = -errno;
    if (close(fd) != 0 && !e) e = -errno;
    fd = -1;
    if (!e && rename(tmp, path) != 0) e = -errno;
    if (e) {
        unlink(tmp);
        rc = sm_error_set(err, SM_EIO, path, 0, 0, NULL, "cannot write: %s", strerror(-e));
        goto out;
    }
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        if (fsync(dfd) != 0)
            sm_log(SM_LOG_WARN, "%s: fsync of the directory failed: %s", dir, strerror(errno));
        close(dfd);
    }
out:
    free(header);
    free(dir);
    free(tmp);
    return rc;
}
