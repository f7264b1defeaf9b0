/* core/io/ms_ckpt.c - MindSpore checkpoints (.ckpt), as RingMo-Framework writes them. The file is
 * protocol buffers (mindspore/ccsrc/utils/checkpoint.proto, proto2):
 *
 *   message Checkpoint {
 *     message Value { required string tag = 1;
 *                     oneof value { TensorProto tensor = 2; MapTensorProto maptensor = 3; } }
 *     repeated Value value = 1;
 *   }
 *   message TensorProto { repeated int64 dims = 1; required string tensor_type = 2;
 *                         required bytes tensor_content = 3; }
 *
 * MindSpore writes one serialized Checkpoint per tensor (and per 512 MiB slice of a large
 * tensor), appended to the file: the file is a run of field-1 Values. Consecutive Values with the
 * same tag are slices of one tensor whose contents are concatenated (mindspore load_checkpoint).
 * tensor_type is "Float32", "Float16", "BFloat16", "Int32"...; "str" values (append_info) and
 * map tensors are not tensors and are listed as ignored. Newer MindSpore versions may end the
 * file with "crc_num" and the CRC-32 of what precedes as a 10-byte big-endian number; it is
 * checked when present. Each Value is read into memory on its own (pread), never the whole file. */
#include "base/internal.h"
#include "io/io_internal.h"

#include <zlib.h>

/* A cursor over bytes in memory. */
typedef struct pb {
    const unsigned char *p;
    size_t n, at;
} pb;

/* Varint (at most 10 bytes): 0, or -1 if truncated or too long. */
static int pb_varint(pb *b, uint64_t *v)
{
    *v = 0;
    for (int i = 0; i < 10; i++) {
        if (b->at >= b->n) return -1;
        unsigned char c = b->p[b->at++];
        *v |= (uint64_t)(c & 0x7f) << (7 * i);
        if (!(c & 0x80)) return i == 9 && c > 1 ? -1 : 0;
    }
    return -1;
}

/* Skips a field of wire type wt (the key already read): 0, or -1. */
static int pb_skip(pb *b, unsigned wt)
{
    uint64_t v;
    switch (wt) {
    case 0: return pb_varint(b, &v);
    case 1: return b->n - b->at >= 8 ? (b->at += 8, 0) : -1;
    case 2:
        if (pb_varint(b, &v) || v > b->n - b->at) return -1;
        b->at += (size_t)v;
        return 0;
    case 5: return b->n - b->at >= 4 ? (b->at += 4, 0) : -1;
    default: return -1; /* groups (3, 4) are not used by these messages */
    }
}

/* A length-delimited field's bytes. */
static int pb_bytes(pb *b, const unsigned char **p, size_t *n)
{
    uint64_t v;
    if (pb_varint(b, &v) || v > b->n - b->at) return -1;
    *p = b->p + b->at;
    *n = (size_t)v;
    b->at += (size_t)v;
    return 0;
}

typedef struct value {
    const unsigned char *tag, *type, *content;
    size_t tag_n, type_n, content_n;
    int ndim;
    int64_t dims[SM_ST_MAX_DIMS];
    bool has_tensor, has_map;
} value;

static int msfail(const sm_ckpt *c, uint64_t off, sm_error *err, const char *what)
{
    return sm_error_set(err, SM_EFORMAT, c->path, 0, 0, NULL, "protobuf value at byte %llu: %s",
                        (unsigned long long)off, what);
}

static int parse_tensor(const sm_ckpt *c, uint64_t off, const unsigned char *p, size_t n, value *v,
                        sm_error *err)
{
    pb b = {p, n, 0};
    while (b.at < b.n) {
        uint64_t key, d;
        if (pb_varint(&b, &key)) return msfail(c, off, err, "damaged tensor");
        unsigned field = (unsigned)(key >> 3), wt = (unsigned)(key & 7);
        if (field == 1 && (wt == 0 || wt == 2)) { /* dims: plain or packed */
            pb pk = b;
            size_t end = b.n;
            if (wt == 2) {
                const unsigned char *q;
                size_t qn;
                if (pb_bytes(&b, &q, &qn)) return msfail(c, off, err, "damaged dims");
                pk = (pb){q, qn, 0};
                end = qn;
            }
            do {
                if (pb_varint(&pk, &d)) return msfail(c, off, err, "damaged dims");
                if (v->ndim == SM_ST_MAX_DIMS)
                    return msfail(c, off, err, "tensor with more than 8 dimensions");
                if (d > (uint64_t)INT64_MAX) return msfail(c, off, err, "negative dimension");
                v->dims[v->ndim++] = (int64_t)d;
            } while (wt == 2 && pk.at < end);
            if (wt == 0) b.at = pk.at;
        } else if (field == 2 && wt == 2) {
            if (pb_bytes(&b, &v->type, &v->type_n)) return msfail(c, off, err, "damaged type");
        } else if (field == 3 && wt == 2) {
            if (pb_bytes(&b, &v->content, &v->content_n))
                return msfail(c, off, err, "damaged tensor content");
        } else if (pb_skip(&b, wt)) {
            return msfail(c, off, err, "damaged tensor field");
        }
    }
    return 0;
}

static int parse_value(const sm_ckpt *c, uint64_t off, const unsigned char *p, size_t n, value *v,
                       sm_error *err)
{
    memset(v, 0, sizeof *v);
    pb b = {p, n, 0};
    while (b.at < b.n) {
        uint64_t key;
        const unsigned char *q;
        size_t qn;
        if (pb_varint(&b, &key)) return msfail(c, off, err, "damaged value");
        unsigned field = (unsigned)(key >> 3), wt = (unsigned)(key & 7);
        if (field == 1 && wt == 2) {
            if (pb_bytes(&b, &v->tag, &v->tag_n)) return msfail(c, off, err, "damaged tag");
        } else if (field == 2 && wt == 2) {
            if (pb_bytes(&b, &q, &qn)) return msfail(c, off, err, "damaged tensor");
            v->has_tensor = true;
            int rc = parse_tensor(c, off, q, qn, v, err);
            if (rc) return rc;
        } else if (field == 3 && wt == 2) {
            if (pb_bytes(&b, &q, &qn)) return msfail(c, off, err, "damaged map tensor");
            v->has_map = true;
        } else if (pb_skip(&b, wt)) {
            return msfail(c, off, err, "damaged field");
        }
    }
    if (!v->tag_n) return msfail(c, off, err, "value without a tag (not a MindSpore checkpoint?)");
    return 0;
}

static const struct {
    const char *name;
    sm_dtype dtype;
} ms_types[] = {
    {"Float32", SM_DTYPE_F32},   {"Float16", SM_DTYPE_F16}, {"Float64", SM_DTYPE_F64},
    {"BFloat16", SM_DTYPE_BF16}, {"Int64", SM_DTYPE_I64},   {"Int32", SM_DTYPE_I32},
    {"Int16", SM_DTYPE_I16},     {"Int8", SM_DTYPE_I8},     {"UInt8", SM_DTYPE_U8},
    {"Bool", SM_DTYPE_BOOL},
};

/* A tensor being assembled from its slices. */
typedef struct pending {
    char *tag;
    char type[32];
    int ndim;
    int64_t dims[SM_ST_MAX_DIMS];
    unsigned char *data;
    size_t n, cap;
    size_t slices;
} pending;

static int finish(sm_ckpt *c, pending *t, sm_error *err)
{
    if (!t->tag) return 0;
    int rc = 0;
    sm_dtype dt = SM_DTYPE_COUNT;
    for (size_t i = 0; i < SM__ARRAY_LEN(ms_types); i++)
        if (!strcmp(t->type, ms_types[i].name)) dt = ms_types[i].dtype;
    if (dt == SM_DTYPE_COUNT) {
        sm__ckpt_ignore(c, "'%.100s' (MindSpore type '%s', not a tensor we convert)", t->tag,
                        t->type);
    } else {
        uint64_t numel = 1;
        bool big = false;
        for (int d = 0; d < t->ndim; d++)
            big |= __builtin_mul_overflow(numel, (uint64_t)t->dims[d], &numel) ||
                   numel > (UINT64_MAX >> 4);
        size_t es = sm_dtype_size(dt);
        if (big || numel * es != t->n) {
            char shape[160] = "";
            for (int d = 0; d < t->ndim; d++)
                snprintf(shape + strlen(shape), sizeof shape - strlen(shape), "%s%lld",
                         d ? ", " : "", (long long)t->dims[d]);
            rc = sm_error_set(err, SM_EFORMAT, c->path, 0, 0, NULL,
                              "tensor '%.100s': %zu bytes of data for dims [%s] of %s", t->tag,
                              t->n, shape, t->type);
        } else {
            sm_ckpt_tensor *o =
                sm__ckpt_add(c, t->tag, strlen(t->tag), NULL, dt, t->ndim, t->dims, err);
            if (!o) rc = err && err->code ? err->code : SM_ENOMEM;
            for (int64_t i = 0; o && i < o->numel; i++) {
                const unsigned char *p = t->data + (size_t)i * es;
                if (o->dtype == SM_DTYPE_F32)
                    ((float *)o->data)[i] = (float)sm__elem_as_double(dt, p);
                else if (o->dtype == SM_DTYPE_I64)
                    ((int64_t *)o->data)[i] = sm__elem_as_i64(dt, p);
                else
                    ((unsigned char *)o->data)[i] = p[0] != 0;
            }
        }
    }
    free(t->tag);
    free(t->data);
    memset(t, 0, sizeof *t);
    return rc;
}

/* Adds one Value to the tensor being assembled (starting a new one on a new tag). */
static int take_value(sm_ckpt *c, pending *t, const value *v, uint64_t off, sm_error *err)
{
    if (!v->has_tensor) {
        int rc = finish(c, t, err);
        sm__ckpt_ignore(c, "'%.*s' (%s)", (int)SM__MIN(v->tag_n, (size_t)100), v->tag,
                        v->has_map ? "a MindSpore map tensor" : "a value without a tensor");
        return rc;
    }
    if (!v->type || !v->type_n) return msfail(c, off, err, "tensor without a tensor_type");
    if (v->type_n >= sizeof t->type || memchr(v->type, 0, v->type_n))
        return msfail(c, off, err, "tensor type name is too long or has a NUL byte");
    bool same = t->tag && strlen(t->tag) == v->tag_n && !memcmp(t->tag, v->tag, v->tag_n);
    if (same && (t->ndim != v->ndim || memcmp(t->dims, v->dims, sizeof t->dims) ||
                 strncmp(t->type, (const char *)v->type, v->type_n) || t->type[v->type_n]))
        return msfail(c, off, err, "a slice of a tensor with another shape or type");
    if (!same) {
        int rc = finish(c, t, err);
        if (rc) return rc;
        if (!(t->tag = malloc(v->tag_n + 1)))
            return sm_error_set(err, SM_ENOMEM, c->path, 0, 0, NULL, "out of memory");
        memcpy(t->tag, v->tag, v->tag_n);
        t->tag[v->tag_n] = 0;
        memcpy(t->type, v->type, v->type_n);
        t->type[v->type_n] = 0;
        t->ndim = v->ndim;
        memcpy(t->dims, v->dims, sizeof t->dims);
    }
    if (v->content_n > t->cap - t->n) {
        size_t nc = t->n + v->content_n;
        unsigned char *p = realloc(t->data, nc ? nc : 1);
        if (!p) return sm_error_set(err, SM_ENOMEM, c->path, 0, 0, NULL, "out of memory");
        t->data = p;
        t->cap = nc;
    }
    if (v->content_n) memcpy(t->data + t->n, v->content, v->content_n);
    t->n += v->content_n;
    t->slices++;
    return 0;
}

/* A trailing "crc_num" + 10-byte big-endian CRC-32 of the rest: checked, and *end excludes it. */
static int check_crc(sm_ckpt *c, int fd, uint64_t size, uint64_t *end, sm_error *err)
{
    *end = size;
    unsigned char tail[17];
    if (size < 17 || sm__read_at(fd, tail, 17, size - 17) || memcmp(tail, "crc_num", 7)) return 0;
    uint64_t want = 0;
    for (int i = 7; i < 17; i++) want = want << 8 | tail[i];
    *end = size - 17;
    unsigned char *buf = malloc(1u << 20);
    if (!buf) return sm_error_set(err, SM_ENOMEM, c->path, 0, 0, NULL, "out of memory");
    uLong crc = crc32(0L, Z_NULL, 0);
    int rc = 0;
    for (uint64_t off = 0; off < *end && !rc; off += 1u << 20) {
        size_t n = (size_t)SM__MIN(*end - off, (uint64_t)(1u << 20));
        if ((rc = sm__read_at(fd, buf, n, off)))
            rc = sm_error_set(err, SM_EIO, c->path, 0, 0, NULL, "cannot read: %s", strerror(-rc));
        else
            crc = crc32(crc, buf, (uInt)n);
    }
    free(buf);
    if (!rc && crc != want)
        rc = sm_error_set(err, SM_EFORMAT, c->path, 0, 0, NULL,
                          "CRC-32 mismatch (the file says %llu, the data gives %lu): the file is "
                          "damaged",
                          (unsigned long long)want, (unsigned long)crc);
    return rc;
}

int sm__ms_read(sm_ckpt *c, int fd, uint64_t size, sm_error *err)
{
    uint64_t end;
    int rc = check_crc(c, fd, size, &end, err);
    if (rc) return rc;
    snprintf(c->where, sizeof c->where, "the protobuf values");
    pending t = {0};
    unsigned char *buf = NULL;
    for (uint64_t off = 0; off < end && !rc;) {
        unsigned char head[20];
        size_t hn = (size_t)SM__MIN(end - off, (uint64_t)sizeof head);
        if ((rc = sm__read_at(fd, head, hn, off))) {
            rc = sm_error_set(err, SM_EIO, c->path, 0, 0, NULL, "cannot read: %s", strerror(-rc));
            break;
        }
        pb b = {head, hn, 0};
        uint64_t key, len;
        if (pb_varint(&b, &key) || key != ((1u << 3) | 2) || pb_varint(&b, &len)) {
            rc = msfail(c, off, err,
                        "not a Checkpoint value (damaged or not a MindSpore "
                        "checkpoint)");
            break;
        }
        if (len > end - off - b.at) {
            rc = msfail(c, off, err, "runs past the end of the file (truncated?)");
            break;
        }
        free(buf);
        if (!(buf = malloc(len ? (size_t)len : 1))) {
            rc = sm_error_set(err, SM_ENOMEM, c->path, 0, 0, NULL, "out of memory");
            break;
        }
        if ((rc = sm__read_at(fd, buf, (size_t)len, off + b.at))) {
            rc = sm_error_set(err, SM_EIO, c->path, 0, 0, NULL, "cannot read: %s", strerror(-rc));
            break;
        }
        value v;
        if (!(rc = parse_value(c, off, buf, (size_t)len, &v, err)))
            rc = take_value(c, &t, &v, off, err);
        off += b.at + len;
    }
    free(buf);
    if (!rc) rc = finish(c, &t, err);
    free(t.tag);
    free(t.data);
    return rc;
}
