/* datasets/aircas/aircas.c - unlabeled pretraining images, read as RingMo reads them: a JSON
 * list of image paths (`image_ids`, a file inside data_path; items relative to data_path, an
 * absolute item stays absolute), or a text file with one path per line (an optional label after
 * a space is ignored), or, with image_ids null, every image below data_path (recursively, sorted;
 * .jpg .jpeg .png .tif .tiff in any case). */
#include "../common/dscommon.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static const sm_key aircas_keys[] = {
    {"data_path", SM_KEY_STRING, NULL, NULL, SM_KEY_PATH, "folder of the pretraining images"},
    {"image_ids", SM_KEY_STRING, "null", NULL, SM_KEY_NULLABLE,
     "JSON list (RingMo) or text list of image paths inside data_path; null = walk data_path"},
    {NULL, SM_KEY_END, NULL, NULL, 0, NULL},
};

static int aircas_read_list(sm__lds *a, const char *root, const char *list, sm_error *err)
{
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0;
    int rc = sm_file_read(list, &buf, &len, &cap, err);
    if (rc) return rc;
    buf[len] = '\0';
    const char *p = (const char *)buf;
    while (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t') p++;
    if (*p == '[' || *p == '{') { /* JSON (an object is refused below: a list is expected) */
        json_error_t je;
        json_t *j = json_loadb((const char *)buf, len, 0, &je);
        if (!j || !json_is_array(j)) {
            rc = sm_error_set(err, SM_EFORMAT, list, j ? 0 : je.line, j ? 0 : je.column, NULL,
                              "image_ids: %s", j ? "expected a JSON list of paths" : je.text);
        } else {
            for (size_t i = 0; rc == 0 && i < json_array_size(j); i++) {
                const char *s = json_string_value(json_array_get(j, i));
                if (!s) {
                    rc = sm_error_set(err, SM_EFORMAT, list, 0, 0, NULL,
                                      "image_ids: item %zu is not a string", i);
                    break;
                }
                char *path = sm__ds_join(root, s);
                rc = path ? sm__strlist_add(&a->files, path, -1) : SM_ENOMEM;
                free(path);
            }
        }
        json_decref(j);
    } else {
        int line = 0;
        for (char *s = (char *)buf; rc == 0 && s && *s;) {
            char *nl = strchr(s, '\n');
            if (nl) *nl = '\0';
            line++;
            size_t k = strcspn(s, "\r");
            s[k] = '\0';
            while (k > 0 && (s[k - 1] == ' ' || s[k - 1] == '\t')) s[--k] = '\0'; /* blank: skip */
            /* "path" or "path label": the label (after the last space) is ignored */
            char *sp = strrchr(s, ' ');
            if (sp && sp[1] && strspn(sp + 1, "-0123456789") == strlen(sp + 1)) *sp = '\0';
            if (*s && *s != '#') {
                char *path = sm__ds_join(root, s);
                rc = path ? sm__strlist_add(&a->files, path, -1) : SM_ENOMEM;
                free(path);
            }
            s = nl ? nl + 1 : NULL;
        }
    }
    free(buf);
    if (rc == SM_ENOMEM) sm_error_set(err, rc, list, 0, 0, NULL, "out of memory");
    if (rc == 0 && a->files.n == 0)
        rc = sm_error_set(err, SM_EDATA, list, 0, 0, NULL, "image_ids lists no images");
    return rc;
}

static int aircas_open(const sm_cfg *section, const sm_dataset_opts *opts, void **self,
                       sm_error *err)
{
    if (opts->split != SM_SPLIT_TRAIN)
        return sm_error_set(err, SM_EUNSUPPORTED, NULL, 0, 0, "reader",
                            "aircas serves unlabeled pretraining images and has no eval split");
    sm__lds *a = sm__lds_new();
    if (!a) return sm_error_set(err, SM_ENOMEM, NULL, 0, 0, NULL, "out of memory");
    char *root = sm__ds_path(section, "data_path");
    const char *ids = sm_cfg_str(section, "image_ids");
    int rc;
    if (!root) {
        rc = sm_error_set(err, SM_ECONFIG, NULL, 0, 0, "data_path", "data_path is not set");
    } else if (ids) {
        char *list = sm__ds_join(root, ids);
        rc = list ? aircas_read_list(a, root, list, err) : SM_ENOMEM;
        free(list);
    } else {
        rc = sm__ds_walk_images(root, -1, &a->files, "the folder tree", err);
    }
    free(root);
    return sm__lds_finish(a, rc, self);
}

static const sm_dataset_vtbl aircas_vtbl = {
    .hdr = SM_COMPONENT_INIT(sm_dataset_vtbl, SM_KIND_DATASET, "aircas",
                             "unlabeled pretraining images: RingMo image_ids list or a folder tree",
                             aircas_keys, NULL),
    .open = aircas_open,
    .close = sm__lds_close,
    .count = sm__lds_count,
    .num_classes = sm__lds_num_classes,
    .class_name = sm__lds_class_name,
    .get = sm__lds_get,
};

static int aircas_register(sm_registry *reg, sm_error *err)
{
    return sm_registry_add(reg, &aircas_vtbl.hdr, err);
}

SM_PLUGIN_DEFINE(aircas, "0.1.0", "dataset reader: unlabeled pretraining images (RingMo aircas)",
                 "MIT", aircas_register)
