/* core/io/ckpt.c - foreign checkpoints (include/simmim/io.h, docs/convert.md): recognising the
 * format, the tensor list that the PyTorch and MindSpore readers fill, repeated names, the prefix
 * filter, writing the result as safetensors, and sm_convert_file. */
#include "base/internal.h"
#include "io/io_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

/* The tensors converted may take at most this many times the file size (+ 64 MiB): F16 and BF16
 * double, I8 and U8 grow 8-fold; more can only come from views that expand a small storage. */
#define OUT_FACTOR 8u
#define OUT_SLACK (64u << 20)

static const char *const format_names[] = {
    [SM_CKPT_TORCH] = "PyTorch zip archive (torch.save)",
    [SM_CKPT_TORCH_LEGACY] = "PyTorch legacy stream (torch.save before 1.6)",
    [SM_CKPT_MINDSPORE] = "MindSpore checkpoint (.ckpt)",
};

const char *sm_ckpt_format_name(sm_ckpt_format f)
{
    return (unsigned)f < SM__ARRAY_LEN(format_names) ? format_names[f] : NULL;
}

/* ---- the tensor list ------------------------------------------------------------------------ */

sm_dtype sm__ckpt_out_dtype(sm_dtype src)
{
    switch (src) {
    case SM_DTYPE_F32:
    case SM_DTYPE_F64:
    case SM_DTYPE_F16:
    case SM_DTYPE_BF16: return SM_DTYPE_F32;
    case SM_DTYPE_BOOL: return SM_DTYPE_BOOL;
    default: return SM_DTYPE_I64;
    }
}

sm_ckpt_tensor *sm__ckpt_add(sm_ckpt *c, const char *name, size_t name_len, const char *source,
                             sm_dtype src, int ndim, const int64_t *shape, sm_error *err)
{
    char shown[80];
    snprintf(shown, sizeof shown, "%.*s", (int)SM__MIN(name_len, (size_t)64), name);
    if (name_len == 0 || memchr(name, 0, name_len) ||
        sm__utf8_invalid_at((const unsigned char *)name, name_len) != name_len ||
        (name_len == 12 && !memcmp(name, "__metadata__", 12))) {
        sm_error_set(err, SM_EFORMAT, c->path, 0, 0, NULL,
                     "tensor name '%s' is not usable (empty, not UTF-8, with a NUL byte, or "
                     "'__metadata__')",
                     shown);
        return NULL;
    }
    if (ndim < 0 || ndim > SM_ST_MAX_DIMS) {
        sm_error_set(err, SM_EFORMAT, c->path, 0, 0, shown, "%d dimensions (at most %d)", ndim,
                     SM_ST_MAX_DIMS);
        return NULL;
    }
    sm_dtype out = sm__ckpt_out_dtype(src);
    int64_t numel = 1;
    for (int d = 0; d < ndim; d++)
        if (shape[d] < 0 || __builtin_mul_overflow(numel, shape[d], &numel) ||
            numel > (INT64_MAX >> 4)) {
            sm_error_set(err, SM_EFORMAT, c->path, 0, 0, shown,
                         "shape is negative or too large (dimension %d)", d);
            return NULL;
        }
    uint64_t bytes = (uint64_t)numel * sm_dtype_size(out);
    if (bytes > c->out_cap - c->out_bytes) {
        sm_error_set(err, SM_EFORMAT, c->path, 0, 0, shown,
                     "%lld elements would take the converted tensors past %llu bytes, %u times "
                     "the file size (a view expanding a small storage?)",
                     (long long)numel, (unsigned long long)c->out_cap, OUT_FACTOR);
        return NULL;
    }
    if (sm__grow(&c->t, &c->cap, c->n + 1, sizeof *c->t)) goto oom;
    sm_ckpt_tensor *t = &c->t[c->n];
    memset(t, 0, sizeof *t);
    t->name = malloc(name_len + 1);
    if (t->name) {
        memcpy(t->name, name, name_len);
        t->name[name_len] = 0;
    }
    t->source = sm__strdup(source ? source : t->name);
    t->data = calloc(1, bytes ? (size_t)bytes : 1);
    if (!t->name || !t->source || !t->data) {
        free(t->name);
        free(t->source);
        free(t->data);
        goto oom;
    }
    t->dtype = out;
    t->stored = src;
    t->ndim = ndim;
    for (int d = 0; d < ndim; d++) t->shape[d] = shape[d];
    t->numel = numel;
    c->out_bytes += bytes;
    c->from[src]++;
    c->n++;
    return t;
oom:
    sm_error_set(err, SM_ENOMEM, c->path, 0, 0, shown, "out of memory");
    return NULL;
}

void sm__ckpt_ignore(sm_ckpt *c, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (sm__grow(&c->ignored, &c->cap_ignored, c->n_ignored + 1, sizeof *c->ignored)) return;
    if ((c->ignored[c->n_ignored] = sm__strdup(line))) c->n_ignored++;
}

static void tensor_free(sm_ckpt_tensor *t)
{
    free(t->name);
    free(t->source);
    free(t->data);
}

void sm__ckpt_clear(sm_ckpt *c)
{
    for (size_t i = 0; i < c->n; i++) tensor_free(&c->t[i]);
    free(c->t);
    c->t = NULL;
    c->n = c->cap = 0;
}

/* ---- after reading: repeated names, the prefix -------------------------------------------- */

typedef struct named_index {
    const char *name;
    size_t i;
} named_index;

static int cmp_named(const void *pa, const void *pb)
{
    const named_index *a = pa, *b = pb;
    int r = strcmp(a->name, b->name);
    return r ? r : (a->i < b->i ? -1 : a->i > b->i);
}

/* A name given twice: the last one counts (as in a Python dict). */
static int drop_repeated(sm_ckpt *c, sm_error *err)
{
    if (c->n < 2) return 0;
    named_index *idx = malloc(c->n * sizeof *idx);
    bool *gone = calloc(c->n, sizeof *gone);
    if (!idx || !gone) {
        free(idx);
        free(gone);
        return sm_error_set(err, SM_ENOMEM, c->path, 0, 0, NULL, "out of memory");
    }
    for (size_t i = 0; i < c->n; i++) idx[i] = (named_index){c->t[i].name, i};
    qsort(idx, c->n, sizeof *idx, cmp_named);
    size_t dropped = 0;
    for (size_t i = 0; i + 1 < c->n; i++)
        if (!strcmp(idx[i].name, idx[i + 1].name)) gone[idx[i].i] = true, dropped++;
    size_t k = 0;
    for (size_t i = 0; i < c->n; i++) {
        if (gone[i]) {
            c->from[c->t[i].stored]--;
            tensor_free(&c->t[i]);
        } else {
            c->t[k++] = c->t[i];
        }
    }
    c->n = k;
    if (dropped)
        sm__ckpt_ignore(c, "%zu earlier copies of repeated names (the last one is kept)", dropped);
    free(idx);
    free(gone);
    return 0;
}

static int apply_prefix(sm_ckpt *c, const char *prefix, sm_error *err)
{
    size_t pl = strlen(prefix), k = 0, outside = 0;
    for (size_t i = 0; i < c->n; i++) {
        sm_ckpt_tensor *t = &c->t[i];
        if (strncmp(t->name, prefix, pl) != 0 || !t->name[pl]) {
            c->from[t->stored]--;
            tensor_free(t);
            outside++;
            continue;
        }
        memmove(t->name, t->name + pl, strlen(t->name + pl) + 1);
        c->t[k++] = *t;
    }
    c->n = k;
    if (outside)
        sm__ckpt_ignore(c, "%zu tensors whose names do not start with '%s'", outside, prefix);
    if (!k)
        return sm_error_set(err, SM_EDATA, c->path, 0, 0, NULL, "no tensor name starts with '%s'",
                            prefix);
    return 0;
}

/* ---- opening -------------------------------------------------------------------------------- */

static const unsigned char legacy_magic[10] = {0x6c, 0xfc, 0x9c, 0x46, 0xf9,
                                               0x20, 0x6a, 0xa8, 0x50, 0x19};

/* The format from the first bytes, or a refusal naming what the file is. */
static int detect(sm_ckpt *c, const unsigned char *h, size_t n, uint64_t size, sm_error *err)
{
    if (n >= 4 && h[0] == 'P' && h[1] == 'K' &&
        ((h[2] == 3 && h[3] == 4) || (h[2] == 5 && h[3] == 6))) {
        c->format = SM_CKPT_TORCH;
        return 0;
    }
    if (n >= 14 && h[0] == 0x80 && h[2] == 0x8a && h[3] == 10 && !memcmp(h + 4, legacy_magic, 10)) {
        c->format = SM_CKPT_TORCH_LEGACY;
        return 0;
    }
    if (n >= 262 && !memcmp(h + 257, "ustar", 5))
        return sm_error_set(err, SM_EUNSUPPORTED, c->path, 0, 0, NULL,
                            "a tar archive: the legacy tar format of the first PyTorch releases "
                            "is not supported (load and re-save it with a current torch.save)");
    if (n >= 2 && h[0] == 0x80)
        return sm_error_set(err, SM_EUNSUPPORTED, c->path, 0, 0, NULL,
                            "a plain Python pickle, not a torch.save file (its tensors, if any, "
                            "are not in a form this reader knows)");
    if (n >= 9 && h[8] == '{') {
        uint64_t hl = 0;
        for (int i = 7; i >= 0; i--) hl = hl << 8 | h[i];
        if (hl <= size - 8)
            return sm_error_set(err, SM_EUNSUPPORTED, c->path, 0, 0, NULL,
                                "already a safetensors file: use it directly");
    }
    if (n >= 2 && h[0] == 0x0a) {
        c->format = SM_CKPT_MINDSPORE;
        return 0;
    }
    char hex[64] = "";
    for (size_t i = 0; i < SM__MIN(n, (size_t)8); i++)
        snprintf(hex + strlen(hex), sizeof hex - strlen(hex), "%s%02x", i ? " " : "", h[i]);
    return sm_error_set(err, SM_EFORMAT, c->path, 0, 0, NULL,
                        "not a checkpoint format this reader knows (first bytes %s): expected a "
                        "PyTorch torch.save file or a MindSpore .ckpt",
                        n ? hex : "none, the file is empty");
}

int sm_ckpt_open(const char *path, const sm_ckpt_opts *opts, sm_ckpt **out, sm_error *err)
{
    *out = NULL;
    sm_ckpt *c = calloc(1, sizeof *c);
    if (!c || !(c->path = sm__strdup(path))) {
        free(c);
        return sm_error_set(err, SM_ENOMEM, path, 0, 0, NULL, "out of memory");
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    int rc = 0;
    if (fd < 0 || fstat(fd, &sb) != 0)
        rc = sm_error_set(err, SM_EIO, path, 0, 0, NULL, "cannot open: %s", strerror(errno));
    else if (!S_ISREG(sb.st_mode))
        rc = sm_error_set(err, SM_EIO, path, 0, 0, NULL, "not a regular file");
    unsigned char head[512];
    size_t hn = 0;
    if (!rc) {
        uint64_t size = (uint64_t)sb.st_size;
        hn = (size_t)SM__MIN(size, (uint64_t)sizeof head);
        int r = sm__read_at(fd, head, hn, 0);
        if (r) rc = sm_error_set(err, SM_EIO, path, 0, 0, NULL, "cannot read: %s", strerror(-r));
        c->out_cap = size * OUT_FACTOR + OUT_SLACK;
        if (!rc) rc = detect(c, head, hn, size, err);
        if (!rc && c->format == SM_CKPT_TORCH)
            rc = sm__torch_zip_read(c, fd, size, err);
        else if (!rc && c->format == SM_CKPT_TORCH_LEGACY)
            rc = sm__torch_legacy_read(c, fd, size, err);
        else if (!rc)
            rc = sm__ms_read(c, fd, size, err);
    }
    if (fd >= 0) close(fd);
    if (!rc && c->format == SM_CKPT_MINDSPORE && !(opts && opts->keep_names) &&
        sm__ringmo_detect(c))
        rc = sm__ringmo_map(c, err);
    if (!rc) rc = drop_repeated(c, err);
    if (!rc && opts && opts->prefix && *opts->prefix) rc = apply_prefix(c, opts->prefix, err);
    if (!rc && c->n == 0)
        rc = sm_error_set(err, SM_EDATA, path, 0, 0, NULL, "no tensors in %s",
                          c->where[0] ? c->where : "the file");
    if (rc) {
        sm_ckpt_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

void sm_ckpt_free(sm_ckpt *c)
{
    if (!c) return;
    sm__ckpt_clear(c);
    for (size_t i = 0; i < c->n_ignored; i++) free(c->ignored[i]);
    free(c->ignored);
    free(c->path);
    free(c);
}

sm_ckpt_format sm_ckpt_format_of(const sm_ckpt *c) { return c->format; }
const char *sm_ckpt_where(const sm_ckpt *c) { return c->where; }
size_t sm_ckpt_count(const sm_ckpt *c) { return c->n; }
const sm_ckpt_tensor *sm_ckpt_at(const sm_ckpt *c, size_t i) { return i < c->n ? &c->t[i] : NULL; }
size_t sm_ckpt_ignored_count(const sm_ckpt *c) { return c->n_ignored; }
const char *sm_ckpt_ignored(const sm_ckpt *c, size_t i)
{
    return i < c->n_ignored ? c->ignored[i] : NULL;
}
const sm_ckpt_mapping *sm_ckpt_mapping_of(const sm_ckpt *c) { return &c->map; }
size_t sm_ckpt_stored_count(const sm_ckpt *c, sm_dtype dt)
{
    return (unsigned)dt < SM_DTYPE_COUNT ? c->from[dt] : 0;
}

const sm_ckpt_tensor *sm_ckpt_find(const sm_ckpt *c, const char *name)
{
    for (size_t i = 0; i < c->n; i++)
        if (!strcmp(c->t[i].name, name)) return &c->t[i];
    return NULL;
}

/* ---- writing -------------------------------------------------------------------------------- */

int sm_ckpt_write(const sm_ckpt *c, const char *path, sm_error *err)
{
    sm_st_writer *w = sm_st_writer_new();
    if (!w) return sm_error_set(err, SM_ENOMEM, path, 0, 0, NULL, "out of memory");
    int rc = 0;
    for (size_t i = 0; i < c->n && !rc; i++) {
        const sm_ckpt_tensor *t = &c->t[i];
        rc = sm_st_writer_add(w, t->name, t->dtype, t->ndim, t->shape, t->data, err);
    }
    const char *base = strrchr(c->path, '/');
    if (!rc) rc = sm_st_writer_meta(w, "format", "simmim-converted-1", err);
    if (!rc) rc = sm_st_writer_meta(w, "source", base ? base + 1 : c->path, err);
    if (!rc) rc = sm_st_writer_meta(w, "source_format", sm_ckpt_format_name(c->format), err);
    if (!rc && c->where[0]) rc = sm_st_writer_meta(w, "source_tensors", c->where, err);
    if (!rc && c->map.applied)
        rc = sm_st_writer_meta(w, "name_mapping", "RingMo-Framework -> official PyTorch", err);
    if (!rc) rc = sm_st_writer_write(w, path, err);
    sm_st_writer_free(w);
    return rc;
}

int sm_convert_file(const char *in, const char *out, const sm_ckpt_opts *opts,
                    sm_convert_report *report, sm_error *err)
{
    if (report) memset(report, 0, sizeof *report);
    sm_ckpt *c = NULL;
    int rc = sm_ckpt_open(in, opts, &c, err);
    if (!rc) rc = sm_ckpt_write(c, out, err);
    if (!rc && report) {
        report->format = c->format;
        sm__strlcpy(report->where, c->where, sizeof report->where);
        report->tensors = c->n;
        for (size_t i = 0; i < c->n; i++) {
            if (c->t[i].dtype == SM_DTYPE_F32)
                report->float_elements += c->t[i].numel;
            else
                report->other_elements += c->t[i].numel;
        }
        memcpy(report->stored, c->from, sizeof report->stored);
        report->mapping = c->map;
        report->ignored = c->n_ignored;
        size_t len = 0, cap = sizeof report->ignored_text;
        for (size_t i = 0; i < c->n_ignored; i++) {
            size_t need = strlen(c->ignored[i]) + (i ? 2 : 0);
            if (len + need + 4 >= cap) {
                snprintf(report->ignored_text + len, cap - len, "%s...", i ? "; " : "");
                break;
            }
            len += (size_t)snprintf(report->ignored_text + len, cap - len, "%s%s", i ? "; " : "",
                                    c->ignored[i]);
        }
    }
    sm_ckpt_free(c);
    return rc;
}
