/* datasets/idx/idx.c - the MNIST IDX format (gzip or raw, decided by the bytes): pairs of
 * <prefix>-images-idx3-ubyte[.gz] (N x rows x cols unsigned bytes) and
 * <prefix>-labels-idx1-ubyte[.gz] (N labels). Serves 8-bit gray pixels; the pipeline converts
 * them to model.in_chans channels and the image size. The default data_path is Debian's
 * dataset-fashion-mnist package, the embedded demo data (10 classes, 28x28). Two options:
 * `pad` zero-pads every image on each side (28 -> 32 px, as CIFAR-style recipes do), and
 * `train_ratio` < 1 keeps a seeded stratified share of each class of the training file (the
 * 10 % / 20 % label protocols; the evaluation file is always whole). */
#include "../common/dscommon.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

static const sm_key idx_keys[] = {
    {"data_path", SM_KEY_STRING, "/usr/share/datasets/fashion-mnist", NULL, SM_KEY_PATH,
     "folder with the IDX files (Debian: dataset-fashion-mnist)"},
    {"train_prefix", SM_KEY_STRING, "train", NULL, 0, "file prefix of the training split"},
    {"eval_prefix", SM_KEY_STRING, "t10k", NULL, 0, "file prefix of the evaluation split"},
    {"class_names", SM_KEY_STRING_LIST, "null", NULL, SM_KEY_NULLABLE,
     "names of the classes 0, 1, ... (IDX files have none; default: the numbers)"},
    {"pad", SM_KEY_INT, "0", "[0,1024]", 0,
     "zero pixels added on each side of every image (2: 28x28 -> 32x32)"},
    {"train_ratio", SM_KEY_FLOAT, "1.0", "(0,1]", 0,
     "share of each class of the training file used (seeded, stratified); the eval file is whole"},
    {"split_seed", SM_KEY_INT, "0", "[0,)", 0, "seed of the per-class shuffle of train_ratio"},
    {NULL, SM_KEY_END, NULL, NULL, 0, NULL},
};

typedef struct idx_ds {
    int64_t n;
    int rows, cols, classes;
    uint8_t *pixels, *labels;
    char *name; /* "<images file>" for messages */
    char **names;
} idx_ds;

/* Reads a whole (possibly gzipped) file; refuses more than `limit` bytes. */
static int idx_slurp(const char *path, size_t limit, uint8_t **out, size_t *len, sm_error *err)
{
    gzFile g = gzopen(path, "rb");
    if (!g) return sm_error_set(err, errno == ENOENT ? SM_ENOTFOUND : SM_EIO, path, 0, 0, NULL,
                                "cannot open: %s", strerror(errno ? errno : ENOENT));
    size_t cap = 1 << 20, n = 0;
    uint8_t *b = malloc(cap);
    int rc = 0;
    while (b) {
        if (n == cap) {
            if (cap >= limit) {
                rc = sm_error_set(err, SM_ERANGE, path, 0, 0, NULL, "more than %zu bytes", limit);
                break;
            }
            uint8_t *nb = realloc(b, cap * 2);
            if (!nb) {
                rc = sm_error_set(err, SM_ENOMEM, path, 0, 0, NULL, "out of memory");
                break;
            }
            b = nb;
            cap *= 2;
        }
        int r = gzread(g, b + n, (unsigned)(cap - n > (1u << 30) ? (1u << 30) : cap - n));
        if (r < 0) {
            int e;
            rc = sm_error_set(err, SM_EFORMAT, path, 0, 0, NULL, "corrupt gzip data: %s", gzerror(g, &e));
            break;
        }
        if (r == 0) break;
        n += (size_t)r;
    }
    if (!b) rc = sm_error_set(err, SM_ENOMEM, path, 0, 0, NULL, "out of memory");
    gzclose(g);
    if (rc) {
        free(b);
        return rc;
    }
    *out = b;
    *len = n;
    return 0;
}

static uint32_t be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3]; }

/* Finds "<dir>/<prefix>-<kind>" with or without ".gz". */
static char *idx_find(const char *dir, const char *prefix, const char *kind)
{
    size_t n = strlen(prefix) + strlen(kind) + 5;
    char *rel = malloc(n), *p = NULL;
    struct stat st;
    for (int gz = 1; rel && gz >= 0; gz--) {
        snprintf(rel, n, "%s-%s%s", prefix, kind, gz ? ".gz" : "");
        p = sm__ds_join(dir, rel);
        if (!p || gz == 0 || stat(p, &st) == 0) break;
        free(p);
        p = NULL;
    }
    free(rel);
    return p; /* the plain name when neither exists (its open fails with a clear error) */
}

static void idx_close(void *self)
{
    idx_ds *d = self;
    if (!d) return;
    free(d->pixels);
    free(d->labels);
    free(d->name);
    for (int k = 0; d->names && k < d->classes; k++) free(d->names[k]);
    free(d->names);
    free(d);
}

/* Zero-pads every (rows, cols) image to (rows + 2 pad, cols + 2 pad). */
static int idx_pad(idx_ds *d, int pad, sm_error *err)
{
    int R = d->rows + 2 * pad, C = d->cols + 2 * pad;
    uint8_t *p = calloc((size_t)d->n * (size_t)R * (size_t)C, 1);
    if (!p) return sm_error_set(err, SM_ENOMEM, d->name, 0, 0, NULL, "out of memory padding to %dx%d", R, C);
    for (int64_t i = 0; i < d->n; i++)
        for (int y = 0; y < d->rows; y++)
            memcpy(p + ((size_t)i * R + (size_t)(y + pad)) * C + pad,
                   d->pixels + ((size_t)i * d->rows + (size_t)y) * d->cols, (size_t)d->cols);
    free(d->pixels);
    d->pixels = p;
    d->rows = R;
    d->cols = C;
    return 0;
}

/* Keeps round(ratio x n_k) images of each class k (sm__ds_split's stratified seeded shuffle
 * over the class's images in file order), in file order; the rest is dropped. */
static int idx_subset(idx_ds *d, double ratio, uint64_t seed, sm_error *err)
{
    size_t n = (size_t)d->n, px = (size_t)d->rows * (size_t)d->cols;
    int64_t *order = malloc(n * sizeof *order);
    sm__strlist byclass = {NULL, malloc(n * sizeof(int)), n, n};
    uint8_t *keep = calloc(n, 1), *chosen = calloc(n, 1);
    int rc = 0;
    if (!order || !byclass.label || !keep || !chosen)
        rc = sm_error_set(err, SM_ENOMEM, d->name, 0, 0, NULL, "out of memory");
    /* the images grouped by class (file order within a class), as sm__ds_split wants them */
    size_t m = 0;
    for (int k = 0; rc == 0 && k < d->classes; k++)
        for (size_t i = 0; i < n; i++)
            if (d->labels[i] == k) {
                order[m] = (int64_t)i;
                byclass.label[m++] = k;
            }
    if (rc == 0 && sm__ds_split(&byclass, ratio, seed, chosen))
        rc = sm_error_set(err, SM_ENOMEM, d->name, 0, 0, NULL, "out of memory");
    if (rc == 0) {
        for (size_t j = 0; j < n; j++) keep[order[j]] = chosen[j];
        size_t w = 0;
        for (size_t i = 0; i < n; i++)
            if (keep[i]) {
                memmove(d->pixels + w * px, d->pixels + i * px, px);
                d->labels[w++] = d->labels[i];
            }
        d->n = (int64_t)w;
    }
    free(order);
    free(byclass.label);
    free(keep);
    free(chosen);
    return rc;
}

static int idx_open(const sm_cfg *section, const sm_dataset_opts *opts, void **self, sm_error *err)
{
    char *dir = sm__ds_path(section, "data_path");
    const char *prefix = sm_cfg_str(section, opts->split == SM_SPLIT_TRAIN ? "train_prefix" : "eval_prefix");
    if (!dir) dir = strdup("/usr/share/datasets/fashion-mnist");
    if (!prefix) prefix = opts->split == SM_SPLIT_TRAIN ? "train" : "t10k";
    char *ip = idx_find(dir, prefix, "images-idx3-ubyte"), *lp = idx_find(dir, prefix, "labels-idx1-ubyte");
    free(dir);
    idx_ds *d = calloc(1, sizeof *d);
    uint8_t *img = NULL, *lab = NULL;
    size_t ilen = 0, llen = 0;
    int rc = (!d || !ip || !lp) ? sm_error_set(err, SM_ENOMEM, NULL, 0, 0, NULL, "out of memory") : 0;
    if (rc == 0) rc = idx_slurp(ip, (size_t)4 << 30, &img, &ilen, err);
    if (rc == 0) rc = idx_slurp(lp, (size_t)1 << 31, &lab, &llen, err);
    if (rc == 0 && (ilen < 16 || be32(img) != 0x00000803))
        rc = sm_error_set(err, SM_EFORMAT, ip, 0, 0, NULL,
                          "not an IDX image file (magic 0x00000803 for 3-D unsigned bytes)");
    if (rc == 0 && (llen < 8 || be32(lab) != 0x00000801))
        rc = sm_error_set(err, SM_EFORMAT, lp, 0, 0, NULL,
                          "not an IDX label file (magic 0x00000801 for 1-D unsigned bytes)");
    if (rc == 0) {
        uint64_t n = be32(img + 4), rows = be32(img + 8), cols = be32(img + 12);
        if (rows < 1 || cols < 1 || rows > 65535 || cols > 65535 || n < 1 ||
            ilen - 16 != n * rows * cols)
            rc = sm_error_set(err, SM_EFORMAT, ip, 0, 0, NULL,
                              "header says %llu images of %llux%llu but the file holds %zu bytes "
                              "of pixels (truncated?)", (unsigned long long)n,
                              (unsigned long long)rows, (unsigned long long)cols, ilen - 16);
        else if (be32(lab + 4) != n || llen - 8 != n)
            rc = sm_error_set(err, SM_EFORMAT, lp, 0, 0, NULL, "%u labels (%zu bytes) for %llu images",
                              be32(lab + 4), llen - 8, (unsigned long long)n);
        else {
            d->n = (int64_t)n;
            d->rows = (int)rows;
            d->cols = (int)cols;
        }
    }
    if (rc == 0) {
        memmove(img, img + 16, ilen - 16);
        memmove(lab, lab + 8, llen - 8);
        d->pixels = img;
        d->labels = lab;
        img = lab = NULL;
        for (int64_t i = 0; i < d->n; i++)
            if (d->labels[i] + 1 > d->classes) d->classes = d->labels[i] + 1;
        d->name = ip;
        ip = NULL;
        const sm_cfg *cn = sm_cfg_get(section, "class_names");
        size_t given = cn && sm_cfg_kind_of(cn) == SM_CFG_SEQ ? sm_cfg_size(cn) : 0;
        if (given && given < (size_t)d->classes)
            rc = sm_error_set(err, SM_ECONFIG, sm_cfg_file(cn), sm_cfg_line(cn), sm_cfg_column(cn),
                              "class_names", "%zu names for the %d classes of %s", given,
                              d->classes, d->name);
        d->names = calloc((size_t)d->classes, sizeof(char *));
        for (int k = 0; !rc && d->names && k < d->classes; k++) {
            const char *nm = given ? sm_cfg_scalar(sm_cfg_at(cn, (size_t)k)) : NULL;
            d->names[k] = nm ? strdup(nm) : malloc(12);
            if (d->names[k] && !nm) snprintf(d->names[k], 12, "%d", k);
        }
    }
    /* absent keys (an unvalidated section) take the defaults: no padding, the whole file */
    if (rc == 0 && sm_cfg_get(section, "pad") && sm_cfg_int(section, "pad") > 0)
        rc = idx_pad(d, (int)sm_cfg_int(section, "pad"), err);
    double ratio = sm_cfg_get(section, "train_ratio") ? sm_cfg_float(section, "train_ratio") : 1.0;
    uint64_t seed = sm_cfg_get(section, "split_seed") ? (uint64_t)sm_cfg_int(section, "split_seed") : 0;
    if (rc == 0 && opts->split == SM_SPLIT_TRAIN && ratio > 0 && ratio < 1)
        rc = idx_subset(d, ratio, seed, err);
    free(img);
    free(lab);
    free(ip);
    free(lp);
    if (rc) {
        idx_close(d);
        return rc;
    }
    *self = d;
    return 0;
}

static int64_t idx_count(const void *self) { return ((const idx_ds *)self)->n; }
static int idx_num_classes(const void *self) { return ((const idx_ds *)self)->classes; }

static const char *idx_class_name(const void *self, int k)
{
    const idx_ds *d = self;
    return d->names && k >= 0 && k < d->classes ? d->names[k] : NULL;
}

static int idx_get(const void *self, int64_t i, sm_sample *out, sm_error *err)
{
    const idx_ds *d = self;
    if (i < 0 || i >= d->n)
        return sm_error_set(err, SM_EINVAL, NULL, 0, 0, NULL, "sample %lld out of range", (long long)i);
    memset(out, 0, sizeof *out);
    out->pixels = d->pixels + (size_t)i * d->rows * d->cols;
    out->width = d->cols;
    out->height = d->rows;
    out->channels = 1;
    out->label = d->labels[i];
    out->name = d->name;
    return 0;
}

static const sm_dataset_vtbl idx_vtbl = {
    .hdr = SM_COMPONENT_INIT(sm_dataset_vtbl, SM_KIND_DATASET, "idx",
                             "MNIST/IDX files (Fashion-MNIST from dataset-fashion-mnist)", idx_keys, NULL),
    .open = idx_open,
    .close = idx_close,
    .count = idx_count,
    .num_classes = idx_num_classes,
    .class_name = idx_class_name,
    .get = idx_get,
};

static int idx_register(sm_registry *reg, sm_error *err)
{
    return sm_registry_add(reg, &idx_vtbl.hdr, err);
}

SM_PLUGIN_DEFINE(idx, "0.1.0", "dataset reader: MNIST/IDX (gzip or raw)", "MIT", idx_register)
