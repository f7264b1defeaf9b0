/* datasets/common/dscommon.h - helpers shared by the dataset reader plugins (linked into each
 * plugin, never exported): file lists, recursive image walks with a per-extension census,
 * ImageFolder class scans, path joining. */
#ifndef SIMMIM_DSCOMMON_H
#define SIMMIM_DSCOMMON_H

#include <simmim/simmim.h>

/* A growable list of malloc'd strings with an int per entry (a label). */
typedef struct sm__strlist {
    char **s;
    int *label;
    size_t n, cap;
} sm__strlist;

int sm__strlist_add(sm__strlist *l, const char *s, int label);
void sm__strlist_free(sm__strlist *l);
void sm__strlist_sort(sm__strlist *l); /* by string (strcmp), labels follow */

/* Extensions met while walking that are not images we read: counts for error messages. */
typedef struct sm__census {
    char ext[32][12];
    size_t count[32];
    size_t n, images, other;
} sm__census;

/* "12 .txt, 3 .bmp" (or "no files"); ends with "..." when it does not fit. */
void sm__census_format(const sm__census *c, char *buf, size_t n);

/* True for .jpg .jpeg .png .tif .tiff, any case (the format is then decided by the bytes). */
bool sm__ds_is_image(const char *name);

/* Appends every image file below dir (recursively; symlinks followed; hidden entries skipped)
 * to out with `label`, sorted, and counts what else was found. Errors: SM_ENOTFOUND/SM_EIO
 * naming dir. */
int sm__ds_walk(const char *dir, int label, sm__strlist *out, sm__census *census, sm_error *err);

/* sm__ds_walk that fails with SM_EDATA ("<what> has no images ...; found 3 .txt") when nothing
 * was added. */
int sm__ds_walk_images(const char *dir, int label, sm__strlist *out, const char *what,
                       sm_error *err);

/* Immediate sub-directories of root, sorted by strcmp (torchvision ImageFolder order). */
int sm__ds_subdirs(const char *root, sm__strlist *out, sm_error *err);

/* ImageFolder: classes = sorted sub-directories of root (or the given class list when
 * `classes` is non-empty: folders not in it are an error); files = images below each class
 * folder with the class index as label. An empty class folder, no class folders, or no images
 * is an error that says what was found. */
int sm__ds_image_folder(const char *root, sm__strlist *classes, sm__strlist *files,
                        sm_error *err);

/* A labeled (or unlabeled) list of files: the instance behind every reader here. The vtable
 * slots close/count/num_classes/class_name/get are shared (sm__lds_*). */
typedef struct sm__lds {
    sm__strlist classes; /* class names; empty for unlabeled data */
    sm__strlist files;   /* paths; label = class index or -1 */
} sm__lds;

sm__lds *sm__lds_new(void);
void sm__lds_close(void *self);
int64_t sm__lds_count(const void *self);
int sm__lds_num_classes(const void *self);
const char *sm__lds_class_name(const void *self, int k);
int sm__lds_get(const void *self, int64_t i, sm_sample *out, sm_error *err);

/* Ends a reader's open: on error closes d and returns rc, else stores d in *self. */
int sm__lds_finish(sm__lds *d, int rc, void **self);

/* Pre-split ImageFolder trees: the train split is train_path's class folders; the eval split is
 * eval_path's, labelled by train_path's class order when train_path is set. */
int sm__lds_open_presplit(sm__lds *d, const char *train_path, const char *eval_path,
                          sm_split split, sm_error *err);

/* Stratified split: files grouped by label (consecutive runs); within each group a shuffle keyed
 * by (seed, label) picks round(ratio * n) training files (at least 1, and at most n - 1 when
 * n >= 2). Sets is_train[i]. Returns 0 or SM_ENOMEM. */
int sm__ds_split(const sm__strlist *files, double ratio, uint64_t seed, uint8_t *is_train);

/* dir + "/" + rel unless rel is absolute (malloc'd). */
char *sm__ds_join(const char *dir, const char *rel);
/* The path value of a PATH key (malloc'd), or NULL when null/absent. */
char *sm__ds_path(const sm_cfg *section, const char *key);

#endif
