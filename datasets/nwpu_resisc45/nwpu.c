/* datasets/nwpu_resisc45/nwpu.c - NWPU-RESISC45 (45 class folders of 700 images): either
 * pre-split `train_path`/`eval_path` class folders, or one `data_path` tree split per class
 * (stratified) by `train_ratio` (0.1 / 0.2 protocols) with a seeded shuffle. The split is written
 * to `split_file` (or <out_dir>/nwpu_resisc45_split.txt) as "train|eval<TAB>class/file" lines and
 * reused when that file exists, so it can be reported and repeated exactly. */
#include "../common/dscommon.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const sm_key nwpu_keys[] = {
    {"train_path", SM_KEY_STRING, "null", NULL, SM_KEY_PATH | SM_KEY_NULLABLE, "pre-split training class folders"},
    {"eval_path", SM_KEY_STRING, "null", NULL, SM_KEY_PATH | SM_KEY_NULLABLE, "pre-split evaluation class folders"},
    {"data_path", SM_KEY_STRING, "null", NULL, SM_KEY_PATH | SM_KEY_NULLABLE, "one class-folder tree to split by train_ratio"},
    {"train_ratio", SM_KEY_FLOAT, "0.2", "(0,1)", 0, "share of each class used for training (0.1, 0.2 protocols)"},
    {"split_seed", SM_KEY_INT, "0", "[0,)", 0, "seed of the per-class shuffle"},
    {"split_file", SM_KEY_STRING, "null", NULL, SM_KEY_PATH | SM_KEY_NULLABLE, "where the split is written, or read when it exists"},
    {NULL, SM_KEY_END, NULL, NULL, 0, NULL},
};

static int nwpu_validate(const sm_cfg *section, const sm_cfg *root, sm_diag *diag)
{
    (void)root;
    if (sm_cfg_is_null(section, "train_path") && sm_cfg_is_null(section, "data_path"))
        return sm_diag_addf(diag, SM_SEV_ERROR, SM_ECONFIG, sm_cfg_file(section), sm_cfg_line(section),
                            sm_cfg_column(section), "finetune_dataset",
                            "nwpu_resisc45 needs train_path/eval_path (pre-split) or data_path "
                            "(split by train_ratio)");
    return 0;
}

#define NWPU_HEADER "# simmim nwpu_resisc45 split: train_ratio=%.6g split_seed=%lld\n"

/* Relative name "class/.../file" of an absolute path under root. */
static const char *nwpu_rel(const char *root, const char *path)
{
    size_t n = strlen(root);
    if (strncmp(path, root, n) == 0) path += n;
    while (*path == '/') path++;
    return path;
}

static int nwpu_write(const char *file, const char *root, const sm__lds *all, const uint8_t *is_train,
                      double ratio, long long seed, sm_error *err)
{
    size_t n = strlen(file) + 5;
    char *tmp = malloc(n);
    if (!tmp) return sm_error_set(err, SM_ENOMEM, file, 0, 0, NULL, "out of memory");
    snprintf(tmp, n, "%s.tmp", file);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        int e = errno;
        free(tmp);
        return sm_error_set(err, SM_EIO, file, 0, 0, NULL, "cannot write the split: %s",
                            strerror(e));
    }
    fprintf(f, NWPU_HEADER, ratio, seed);
    for (size_t i = 0; i < all->files.n; i++)
        fprintf(f, "%s\t%s\n", is_train[i] ? "train" : "eval", nwpu_rel(root, all->files.s[i]));
    bool bad = ferror(f) != 0; /* a write failed (disk full): fclose alone may not say */
    if ((fclose(f) != 0) | bad || rename(tmp, file) != 0) {
        int e = errno;
        remove(tmp);
        free(tmp);
        return sm_error_set(err, SM_EIO, file, 0, 0, NULL, "cannot write the split: %s",
                            strerror(e));
    }
    free(tmp);
    sm_log(SM_LOG_INFO, "nwpu_resisc45: split written to %s", file);
    return 0;
}

/* Reads an existing split file into d (entries of `split`), labels from the class list. */
static int nwpu_read(const char *file, const char *root, double ratio, long long seed,
                     sm_split split, sm__lds *d, sm_error *err)
{
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0;
    int rc = sm_file_read(file, &buf, &len, &cap, err);
    if (rc) return rc;
    buf[len] = '\0';
    char want[128];
    snprintf(want, sizeof want, NWPU_HEADER, ratio, seed);
    if (strncmp((char *)buf, want, strlen(want)) != 0) {
        char *nl = strchr((char *)buf, '\n');
        if (nl) *nl = '\0';
        want[strlen(want) - 1] = '\0';
        rc = sm_error_set(err, SM_ECONFIG, file, 1, 1, "split_file",
                          "the split file was made with other settings ('%.80s', config wants "
                          "'%s'): delete it or set another split_file", (char *)buf, want);
        free(buf);
        return rc;
    }
    int line = 1;
    char *s = strchr((char *)buf, '\n');
    s = s ? s + 1 : NULL;
    for (; rc == 0 && s && *s;) {
        char *nl = strchr(s, '\n');
        if (nl) *nl = '\0';
        line++;
        char *tab = strchr(s, '\t');
        if (!tab || (strncmp(s, "train\t", 6) && strncmp(s, "eval\t", 5))) {
            rc = sm_error_set(err, SM_EFORMAT, file, line, 1, NULL, "expected 'train|eval<TAB>class/file'");
            break;
        }
        bool train = s[0] == 't';
        char *rel = tab + 1, *slash = strchr(rel, '/');
        int label = -1;
        if (slash)
            for (size_t k = 0; k < d->classes.n; k++)
                if (strlen(d->classes.s[k]) == (size_t)(slash - rel) &&
                    strncmp(d->classes.s[k], rel, (size_t)(slash - rel)) == 0)
                    label = (int)k;
        if (label < 0) {
            rc = sm_error_set(err, SM_EDATA, file, line, 1, NULL, "'%s' is not in a class folder of %s", rel, root);
            break;
        }
        if (train == (split == SM_SPLIT_TRAIN)) {
            char *path = sm__ds_join(root, rel);
            rc = path ? sm__strlist_add(&d->files, path, label) : SM_ENOMEM;
            free(path);
        }
        s = nl ? nl + 1 : NULL;
    }
    free(buf);
    if (rc == 0 && d->files.n == 0)
        rc = sm_error_set(err, SM_EDATA, file, 0, 0, NULL, "the split file has no %s entries",
                          split == SM_SPLIT_TRAIN ? "train" : "eval");
    return rc;
}

static int nwpu_split(const sm_cfg *section, const sm_dataset_opts *opts, const char *root,
                      sm__lds *d, sm_error *err)
{
    double ratio = sm_cfg_float(section, "train_ratio");
    long long seed = (long long)sm_cfg_int(section, "split_seed");
    if (!(ratio > 0 && ratio < 1)) ratio = 0.2; /* unset in an unvalidated section */
    char *file = sm__ds_path(section, "split_file");
    if (!file && opts->out_dir) file = sm__ds_join(opts->out_dir, "nwpu_resisc45_split.txt");
    sm__lds all = {0};
    int rc = sm__ds_image_folder(root, &all.classes, &all.files, err);
    struct stat st;
    if (rc == 0 && file && stat(file, &st) == 0) {
        for (size_t k = 0; rc == 0 && k < all.classes.n; k++) rc = sm__strlist_add(&d->classes, all.classes.s[k], 0);
        if (rc == 0) rc = nwpu_read(file, root, ratio, seed, opts->split, d, err);
        sm__strlist_free(&all.classes);
        sm__strlist_free(&all.files);
        free(file);
        return rc;
    }
    uint8_t *is_train = rc == 0 ? calloc(all.files.n ? all.files.n : 1, 1) : NULL;
    if (rc == 0 && (!is_train || sm__ds_split(&all.files, ratio, (uint64_t)seed, is_train)))
        rc = sm_error_set(err, SM_ENOMEM, NULL, 0, 0, NULL, "out of memory");
    if (rc == 0 && file) rc = nwpu_write(file, root, &all, is_train, ratio, seed, err);
    for (size_t i = 0; rc == 0 && i < all.files.n; i++)
        if ((is_train[i] != 0) == (opts->split == SM_SPLIT_TRAIN))
            rc = sm__strlist_add(&d->files, all.files.s[i], all.files.label[i]);
    if (rc == 0) {
        d->classes = all.classes;
        memset(&all.classes, 0, sizeof all.classes);
    }
    free(is_train);
    free(file);
    sm__strlist_free(&all.classes);
    sm__strlist_free(&all.files);
    return rc;
}

static int nwpu_open(const sm_cfg *section, const sm_dataset_opts *opts, void **self, sm_error *err)
{
    sm__lds *d = sm__lds_new();
    if (!d) return sm_error_set(err, SM_ENOMEM, NULL, 0, 0, NULL, "out of memory");
    char *train = sm__ds_path(section, "train_path"), *eval = sm__ds_path(section, "eval_path");
    char *root = sm__ds_path(section, "data_path");
    int rc;
    if (train || eval) rc = sm__lds_open_presplit(d, train, eval, opts->split, err);
    else if (root) rc = nwpu_split(section, opts, root, d, err);
    else rc = sm_error_set(err, SM_ECONFIG, NULL, 0, 0, "data_path",
                           "nwpu_resisc45 needs train_path/eval_path or data_path");
    free(train);
    free(eval);
    free(root);
    return sm__lds_finish(d, rc, self);
}

static const sm_dataset_vtbl nwpu_vtbl = {
    .hdr = SM_COMPONENT_INIT(sm_dataset_vtbl, SM_KIND_DATASET, "nwpu_resisc45",
                             "NWPU-RESISC45: pre-split folders or a seeded per-class split",
                             nwpu_keys, nwpu_validate),
    .open = nwpu_open,
    .close = sm__lds_close,
    .count = sm__lds_count,
    .num_classes = sm__lds_num_classes,
    .class_name = sm__lds_class_name,
    .get = sm__lds_get,
};

static int nwpu_register(sm_registry *reg, sm_error *err)
{
    return sm_registry_add(reg, &nwpu_vtbl.hdr, err);
}

SM_PLUGIN_DEFINE(nwpu_resisc45, "0.1.0", "dataset reader: NWPU-RESISC45 with 10/20 % splits",
                 "MIT", nwpu_register)
