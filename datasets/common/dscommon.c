/* datasets/common/dscommon.c - file walking and ImageFolder scanning for the readers. */
#include "dscommon.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

int sm__strlist_add(sm__strlist *l, const char *s, int label)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        char **ns = realloc(l->s, cap * sizeof *ns);
        if (!ns) return SM_ENOMEM;
        l->s = ns;
        int *nl = realloc(l->label, cap * sizeof *nl);
        if (!nl) return SM_ENOMEM;
        l->label = nl;
        l->cap = cap;
    }
    char *d = strdup(s);
    if (!d) return SM_ENOMEM;
    l->s[l->n] = d;
    l->label[l->n++] = label;
    return 0;
}

void sm__strlist_free(sm__strlist *l)
{
    for (size_t i = 0; i < l->n; i++) free(l->s[i]);
    free(l->s);
    free(l->label);
    memset(l, 0, sizeof *l);
}

typedef struct sm__pair {
    char *s;
    int label;
} sm__pair;

static int sm__pair_cmp(const void *a, const void *b)
{
    return strcmp(((const sm__pair *)a)->s, ((const sm__pair *)b)->s);
}

void sm__strlist_sort(sm__strlist *l)
{
    if (l->n < 2) return;
    sm__pair *p = malloc(l->n * sizeof *p);
    if (!p) return; /* unsorted but complete; callers sort small lists */
    for (size_t i = 0; i < l->n; i++) p[i] = (sm__pair){l->s[i], l->label[i]};
    qsort(p, l->n, sizeof *p, sm__pair_cmp);
    for (size_t i = 0; i < l->n; i++) l->s[i] = p[i].s, l->label[i] = p[i].label;
    free(p);
}

static const char *sm__ext(const char *name)
{
    const char *dot = strrchr(name, '.'), *slash = strrchr(name, '/');
    if (!dot || (slash && dot < slash) || dot == name) return "";
    return dot;
}

bool sm__ds_is_image(const char *name)
{
    static const char *const exts[] = {".jpg", ".jpeg", ".png", ".tif", ".tiff"};
    const char *e = sm__ext(name);
    for (size_t i = 0; i < sizeof exts / sizeof exts[0]; i++)
        if (strcasecmp(e, exts[i]) == 0) return true;
    return false;
}

static void sm__census_add(sm__census *c, const char *name)
{
    const char *e = sm__ext(name);
    if (!*e) e = "(none)";
    c->other++;
    for (size_t i = 0; i < c->n; i++)
        if (strcasecmp(c->ext[i], e) == 0) {
            c->count[i]++;
            return;
        }
    if (c->n < 32) {
        snprintf(c->ext[c->n], sizeof c->ext[0], "%s", e);
        for (char *q = c->ext[c->n]; *q; q++) *q = (char)tolower((unsigned char)*q);
        c->count[c->n++] = 1;
    }
}

void sm__census_format(const sm__census *c, char *buf, size_t n)
{
    if (!c || (!c->other && !c->images)) {
        snprintf(buf, n, "no files");
        return;
    }
    size_t k = 0;
    buf[0] = '\0';
    if (c->images) k += (size_t)snprintf(buf + k, n - k, "%zu images", c->images);
    for (size_t i = 0; i < c->n && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, "%s%zu %s", k ? ", " : "", c->count[i], c->ext[i]);
    if (k >= n && n >= 4) memcpy(buf + n - 4, "...", 4); /* cut: say so (ASCII text) */
}

static int sm__walk(const char *dir, int label, sm__strlist *out, sm__census *c, int depth,
                    sm_error *err)
{
    if (depth > 64) return sm_error_set(err, SM_EDATA, dir, 0, 0, NULL, "folders nested too deep (symlink loop?)");
    DIR *d = opendir(dir);
    if (!d)
        return sm_error_set(err, errno == ENOENT ? SM_ENOTFOUND : SM_EIO, dir, 0, 0, NULL,
                            "cannot read folder: %s", strerror(errno));
    sm__strlist sub = {0};
    struct dirent *de;
    int rc = 0;
    while (rc == 0 && (de = readdir(d))) {
        if (de->d_name[0] == '.') continue;
        char *p = sm__ds_join(dir, de->d_name);
        if (!p) {
            rc = SM_ENOMEM;
            break;
        }
        struct stat st;
        if (stat(p, &st) != 0) {
            if (c) sm__census_add(c, de->d_name); /* dangling link: reported as found */
        } else if (S_ISDIR(st.st_mode)) {
            rc = sm__strlist_add(&sub, p, 0);
        } else if (sm__ds_is_image(de->d_name)) {
            rc = sm__strlist_add(out, p, label);
            if (c) c->images++;
        } else if (c) {
            sm__census_add(c, de->d_name);
        }
        free(p);
    }
    closedir(d);
    for (size_t i = 0; rc == 0 && i < sub.n; i++) rc = sm__walk(sub.s[i], label, out, c, depth + 1, err);
    sm__strlist_free(&sub);
    if (rc == SM_ENOMEM) sm_error_set(err, rc, dir, 0, 0, NULL, "out of memory");
    return rc;
}

int sm__ds_walk(const char *dir, int label, sm__strlist *out, sm__census *census, sm_error *err)
{
    size_t first = out->n;
    int rc = sm__walk(dir, label, out, census, 0, err);
    if (rc) return rc;
    /* sort the part just added */
    sm__strlist tail = {out->s + first, out->label + first, out->n - first, out->n - first};
    sm__strlist_sort(&tail);
    return 0;
}

int sm__ds_walk_images(const char *dir, int label, sm__strlist *out, const char *what,
                       sm_error *err)
{
    sm__census c = {0};
    size_t before = out->n;
    int rc = sm__ds_walk(dir, label, out, &c, err);
    if (rc == 0 && out->n == before) {
        char found[512];
        sm__census_format(&c, found, sizeof found);
        rc = sm_error_set(err, SM_EDATA, dir, 0, 0, NULL,
                          "%s has no images (.jpg .jpeg .png .tif .tiff); found %s", what, found);
    }
    return rc;
}

int sm__lds_finish(sm__lds *d, int rc, void **self)
{
    if (rc) {
        sm__lds_close(d);
        return rc;
    }
    *self = d;
    return 0;
}

int sm__ds_subdirs(const char *root, sm__strlist *out, sm_error *err)
{
    DIR *d = opendir(root);
    if (!d)
        return sm_error_set(err, errno == ENOENT ? SM_ENOTFOUND : SM_EIO, root, 0, 0, NULL,
                            "cannot read folder: %s", strerror(errno));
    struct dirent *de;
    int rc = 0;
    while (rc == 0 && (de = readdir(d))) {
        if (de->d_name[0] == '.') continue;
        char *p = sm__ds_join(root, de->d_name);
        struct stat st;
        if (p && stat(p, &st) == 0 && S_ISDIR(st.st_mode)) rc = sm__strlist_add(out, de->d_name, 0);
        if (!p) rc = SM_ENOMEM;
        free(p);
    }
    closedir(d);
    if (rc) return sm_error_set(err, rc, root, 0, 0, NULL, "out of memory");
    sm__strlist_sort(out);
    return 0;
}

int sm__ds_image_folder(const char *root, sm__strlist *classes, sm__strlist *files, sm_error *err)
{
    sm__strlist found = {0};
    int rc = sm__ds_subdirs(root, &found, err);
    if (rc) return rc;
    if (found.n == 0) {
        sm__census c = {0};
        sm__strlist flat = {0};
        sm__walk(root, 0, &flat, &c, 0, NULL);
        char what[512];
        sm__census_format(&c, what, sizeof what);
        sm__strlist_free(&flat);
        return sm_error_set(err, SM_EDATA, root, 0, 0, NULL,
                            "no class folders (ImageFolder layout root/<class>/<image>); found %s",
                            what);
    }
    bool given = classes->n > 0;
    if (!given)
        for (size_t i = 0; i < found.n && rc == 0; i++) rc = sm__strlist_add(classes, found.s[i], 0);
    for (size_t i = 0; rc == 0 && i < found.n; i++) {
        int label = -1;
        for (size_t k = 0; k < classes->n; k++)
            if (strcmp(classes->s[k], found.s[i]) == 0) label = (int)k;
        if (label < 0) {
            rc = sm_error_set(err, SM_EDATA, root, 0, 0, NULL,
                              "class folder '%s' is not among the %zu training classes",
                              found.s[i], classes->n);
            break;
        }
        char *dir = sm__ds_join(root, found.s[i]);
        rc = dir ? sm__ds_walk_images(dir, label, files, "class folder", err) : SM_ENOMEM;
        free(dir);
    }
    sm__strlist_free(&found);
    return rc;
}

char *sm__ds_join(const char *dir, const char *rel)
{
    if (!rel) return NULL;
    if (rel[0] == '/' || !dir || !dir[0]) return strdup(rel);
    size_t a = strlen(dir), b = strlen(rel);
    char *p = malloc(a + b + 2);
    if (!p) return NULL;
    memcpy(p, dir, a);
    size_t k = a;
    if (a && dir[a - 1] != '/') p[k++] = '/';
    memcpy(p + k, rel, b + 1);
    return p;
}

char *sm__ds_path(const sm_cfg *section, const char *key)
{
    if (sm_cfg_is_null(section, key)) return NULL;
    size_t n = sm_cfg_path(section, key, NULL, 0);
    if (n == 0) {
        const char *s = sm_cfg_str(section, key); /* not declared as a path: use as is */
        return s ? strdup(s) : NULL;
    }
    char *b = malloc(n + 1);
    if (b) sm_cfg_path(section, key, b, n + 1);
    return b;
}

sm__lds *sm__lds_new(void) { return calloc(1, sizeof(sm__lds)); }

void sm__lds_close(void *self)
{
    sm__lds *d = self;
    if (!d) return;
    sm__strlist_free(&d->classes);
    sm__strlist_free(&d->files);
    free(d);
}

int64_t sm__lds_count(const void *self) { return (int64_t)((const sm__lds *)self)->files.n; }
int sm__lds_num_classes(const void *self) { return (int)((const sm__lds *)self)->classes.n; }

const char *sm__lds_class_name(const void *self, int k)
{
    const sm__lds *d = self;
    return k >= 0 && (size_t)k < d->classes.n ? d->classes.s[k] : NULL;
}

int sm__lds_get(const void *self, int64_t i, sm_sample *out, sm_error *err)
{
    const sm__lds *d = self;
    if (i < 0 || (size_t)i >= d->files.n)
        return sm_error_set(err, SM_EINVAL, NULL, 0, 0, NULL, "sample %lld out of range", (long long)i);
    memset(out, 0, sizeof *out);
    out->path = out->name = d->files.s[i];
    out->label = d->files.label[i];
    return 0;
}

int sm__lds_open_presplit(sm__lds *d, const char *train_path, const char *eval_path,
                          sm_split split, sm_error *err)
{
    const char *root = split == SM_SPLIT_TRAIN ? train_path : eval_path;
    if (!root)
        return sm_error_set(err, SM_ECONFIG, NULL, 0, 0,
                            split == SM_SPLIT_TRAIN ? "train_path" : "eval_path", "is not set");
    if (split == SM_SPLIT_EVAL && train_path) {
        int rc = sm__ds_subdirs(train_path, &d->classes, err);
        if (rc) return rc;
    }
    return sm__ds_image_folder(root, &d->classes, &d->files, err);
}

int sm__ds_split(const sm__strlist *files, double ratio, uint64_t seed, uint8_t *is_train)
{
    size_t *idx = malloc(sizeof(size_t) * (files->n ? files->n : 1));
    if (!idx) return SM_ENOMEM;
    memset(is_train, 0, files->n);
    for (size_t start = 0; start < files->n;) {
        int k = files->label[start];
        size_t end = start;
        while (end < files->n && files->label[end] == k) end++;
        size_t n = end - start;
        for (size_t i = 0; i < n; i++) idx[i] = start + i;
        sm_rng r;
        sm_rng_init(&r, seed, (uint64_t)k, 0, 0x73706c6974ULL);
        for (size_t i = n - 1; i > 0; i--) { /* Fisher-Yates */
            size_t j = (size_t)sm_rng_below(&r, i + 1), t = idx[i];
            idx[i] = idx[j];
            idx[j] = t;
        }
        size_t ntrain = (size_t)nearbyint(ratio * (double)n);
        if (ntrain < 1) ntrain = 1;
        if (n >= 2 && ntrain > n - 1) ntrain = n - 1;
        for (size_t i = 0; i < ntrain; i++) is_train[idx[i]] = 1;
        start = end;
    }
    free(idx);
    return 0;
}
