/* datasets/imagenet/imagenet.c - ImageFolder trees: `train_path` and `eval_path` hold one folder
 * per class (class index = position in the sorted folder names, torchvision's order); the eval
 * split may instead be a flat folder described by `eval_list`, lines "relative/path label" with
 * 0-based labels in sorted-wnid order (Caffe/mmpretrain val.txt). */
#include "../common/dscommon.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const sm_key imagenet_keys[] = {
    {"train_path", SM_KEY_STRING, "null", NULL, SM_KEY_PATH | SM_KEY_NULLABLE, "training class folders"},
    {"eval_path", SM_KEY_STRING, "null", NULL, SM_KEY_PATH | SM_KEY_NULLABLE, "validation class folders or flat folder"},
    {"eval_list", SM_KEY_STRING, "null", NULL, SM_KEY_PATH | SM_KEY_NULLABLE,
     "'path label' lines for a flat validation folder (0-based labels, sorted-wnid order)"},
    {NULL, SM_KEY_END, NULL, NULL, 0, NULL},
};

static int imagenet_read_list(sm__lds *d, const char *root, const char *list, sm_error *err)
{
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0;
    int rc = sm_file_read(list, &buf, &len, &cap, err);
    if (rc) return rc;
    buf[len] = '\0';
    int line = 0;
    for (char *s = (char *)buf; rc == 0 && s && *s;) {
        char *nl = strchr(s, '\n');
        if (nl) *nl = '\0';
        line++;
        size_t k = strcspn(s, "\r");
        s[k] = '\0';
        while (k > 0 && (s[k - 1] == ' ' || s[k - 1] == '\t')) s[--k] = '\0'; /* blank: skip */
        if (*s && *s != '#') {
            char *sp = strrchr(s, ' '), *end = NULL;
            long label = sp ? strtol(sp + 1, &end, 10) : -1;
            /* without train_path the classes are the labels themselves: cap them at a number
             * of classes any real dataset stays below */
            size_t limit = d->classes.n ? d->classes.n : (size_t)1 << 20;
            if (!sp || end == sp + 1 || *end || label < 0 || (unsigned long)label >= limit) {
                rc = sm_error_set(err, SM_EFORMAT, list, line, 0, NULL,
                                  "expected 'path label' with a label in [0, %zu)", limit);
                break;
            }
            *sp = '\0';
            char *path = sm__ds_join(root, s);
            rc = path ? sm__strlist_add(&d->files, path, (int)label) : SM_ENOMEM;
            free(path);
        }
        s = nl ? nl + 1 : NULL;
    }
    free(buf);
    if (rc == SM_ENOMEM) sm_error_set(err, rc, list, 0, 0, NULL, "out of memory");
    if (rc == 0 && d->files.n == 0) rc = sm_error_set(err, SM_EDATA, list, 0, 0, NULL, "the list has no entries");
    if (rc == 0 && !d->classes.n) { /* no train_path: classes named by their index */
        int maxl = 0;
        for (size_t i = 0; i < d->files.n; i++) maxl = d->files.label[i] > maxl ? d->files.label[i] : maxl;
        for (int k = 0; rc == 0 && k <= maxl; k++) {
            char name[16];
            snprintf(name, sizeof name, "%d", k);
            rc = sm__strlist_add(&d->classes, name, 0);
        }
    }
    return rc;
}

static int imagenet_open(const sm_cfg *section, const sm_dataset_opts *opts, void **self,
                         sm_error *err)
{
    sm__lds *d = sm__lds_new();
    if (!d) return sm_error_set(err, SM_ENOMEM, NULL, 0, 0, NULL, "out of memory");
    char *train = sm__ds_path(section, "train_path"), *eval = sm__ds_path(section, "eval_path");
    char *list = sm__ds_path(section, "eval_list");
    int rc;
    if (opts->split == SM_SPLIT_EVAL && list) {
        rc = train ? sm__ds_subdirs(train, &d->classes, err) : 0;
        if (rc == 0) rc = imagenet_read_list(d, eval ? eval : "", list, err);
    } else {
        rc = sm__lds_open_presplit(d, train, eval, opts->split, err);
    }
    free(train);
    free(eval);
    free(list);
    return sm__lds_finish(d, rc, self);
}

static const sm_dataset_vtbl imagenet_vtbl = {
    .hdr = SM_COMPONENT_INIT(sm_dataset_vtbl, SM_KIND_DATASET, "imagenet",
                             "ImageFolder train/val class folders, or a val list file",
                             imagenet_keys, NULL),
    .open = imagenet_open,
    .close = sm__lds_close,
    .count = sm__lds_count,
    .num_classes = sm__lds_num_classes,
    .class_name = sm__lds_class_name,
    .get = sm__lds_get,
};

static int imagenet_register(sm_registry *reg, sm_error *err)
{
    return sm_registry_add(reg, &imagenet_vtbl.hdr, err);
}

SM_PLUGIN_DEFINE(imagenet, "0.1.0", "dataset reader: ImageNet-style class folders", "MIT",
                 imagenet_register)
