/* tests/check_datasets.c - the readers' shared scanning: ImageFolder class order and labels,
 * recursive walks with case-insensitive extensions, what an empty / flat / unsupported tree
 * reports, and the deterministic stratified NWPU split. */
#include "../datasets/common/dscommon.h"
#include "imgutil.h"
#include "testutil.h"

#include <string.h>
#include <sys/stat.h>

static char *root;

static void touch(const char *rel) { ck_assert_int_eq(sm_img_touch(root, rel), 0); }

static void setup(void) { root = sm_test_tmpdir(); }
static void teardown(void)
{
    sm_test_rmtree(root);
    free(root);
}

static char *sub(const char *rel)
{
    char *p = malloc(4200);
    snprintf(p, 4200, "%s/%s", root, rel);
    return p;
}

START_TEST(test_image_folder)
{
    touch("train/zebra/a.JPG");
    touch("train/ant/x/deep.png");
    touch("train/ant/b.jpeg");
    touch("train/ant/notes.txt");
    touch("train/Bee/c.TIF");
    touch("train/Bee/d.tiff");
    touch("train/.hidden/e.jpg");
    touch("train/readme.md");
    char *tr = sub("train");
    sm__strlist classes = {0}, files = {0};
    sm_error e;
    sm_error_clear(&e);
    ck_assert_msg(sm__ds_image_folder(tr, &classes, &files, &e) == 0, "%s", e.text);
    /* sorted by byte value like torchvision: "Bee" < "ant" < "zebra" */
    ck_assert_int_eq(classes.n, 3);
    ck_assert_str_eq(classes.s[0], "Bee");
    ck_assert_str_eq(classes.s[1], "ant");
    ck_assert_str_eq(classes.s[2], "zebra");
    ck_assert_int_eq(files.n, 5);
    const char *want[5] = {"Bee/c.TIF", "Bee/d.tiff", "ant/b.jpeg", "ant/x/deep.png", "zebra/a.JPG"};
    int labels[5] = {0, 0, 1, 1, 2};
    for (int i = 0; i < 5; i++) {
        ck_assert_msg(strstr(files.s[i], want[i]) != NULL, "%d: %s", i, files.s[i]);
        ck_assert_int_eq(files.label[i], labels[i]);
    }
    sm__strlist_free(&classes);
    sm__strlist_free(&files);
    free(tr);
}
END_TEST

START_TEST(test_bad_trees)
{
    sm__strlist classes = {0}, files = {0};
    sm_error e;
    /* an empty class folder (holding only unsupported files) */
    touch("t1/good/a.jpg");
    touch("t1/empty/notes.txt");
    touch("t1/empty/b.bmp");
    touch("t1/empty/c.BMP");
    char *t1 = sub("t1");
    sm_error_clear(&e);
    ck_assert_int_eq(sm__ds_image_folder(t1, &classes, &files, &e), SM_EDATA);
    ck_assert_msg(strstr(e.file, "empty") && strstr(e.text, "no images") &&
                      strstr(e.text, "2 .bmp") && strstr(e.text, "1 .txt"),
                  "%s: %s", e.file, e.text);
    sm__strlist_free(&classes);
    sm__strlist_free(&files);
    /* a flat folder given as ImageFolder */
    touch("flat/a.jpg");
    touch("flat/b.png");
    char *fl = sub("flat");
    sm_error_clear(&e);
    ck_assert_int_eq(sm__ds_image_folder(fl, &classes, &files, &e), SM_EDATA);
    ck_assert_msg(strstr(e.text, "no class folders") && strstr(e.text, "2 images"), "%s", e.text);
    sm__strlist_free(&classes);
    /* a missing folder */
    char *miss = sub("missing");
    sm_error_clear(&e);
    ck_assert_int_eq(sm__ds_image_folder(miss, &classes, &files, &e), SM_ENOTFOUND);
    ck_assert_msg(strstr(e.file, "missing"), "%s", e.file);
    /* eval classes must be among the training classes */
    touch("ev/good/z.jpg");
    touch("ev/other/y.jpg");
    char *ev = sub("ev");
    sm__lds d = {0};
    sm_error_clear(&e);
    ck_assert_int_eq(sm__lds_open_presplit(&d, t1, ev, SM_SPLIT_EVAL, &e), SM_EDATA);
    ck_assert_msg(strstr(e.text, "other"), "%s", e.text);
    sm__strlist_free(&d.classes);
    sm__strlist_free(&d.files);
    /* only unsupported files in a walk: the census says what was there */
    touch("tifless/a.gif");
    touch("tifless/sub/b.webp");
    char *tl = sub("tifless");
    sm__census c = {0};
    sm__strlist out = {0};
    ck_assert_int_eq(sm__ds_walk(tl, -1, &out, &c, NULL), 0);
    ck_assert_int_eq(out.n, 0);
    char what[256];
    sm__census_format(&c, what, sizeof what);
    ck_assert_msg(strstr(what, "1 .gif") && strstr(what, "1 .webp"), "%s", what);
    free(t1);
    free(fl);
    free(miss);
    free(ev);
    free(tl);
}
END_TEST

START_TEST(test_presplit_labels_follow_train)
{
    touch("tr/a/1.jpg");
    touch("tr/b/2.jpg");
    touch("tr/c/3.jpg");
    touch("va/c/4.jpg"); /* eval holds only class c: its label is still 2 */
    char *tr = sub("tr"), *va = sub("va");
    sm__lds d = {0};
    ck_assert_int_eq(sm__lds_open_presplit(&d, tr, va, SM_SPLIT_EVAL, NULL), 0);
    ck_assert_int_eq(sm__lds_num_classes(&d), 3);
    ck_assert_int_eq(sm__lds_count(&d), 1);
    sm_sample s;
    ck_assert_int_eq(sm__lds_get(&d, 0, &s, NULL), 0);
    ck_assert_int_eq(s.label, 2);
    ck_assert_str_eq(sm__lds_class_name(&d, 2), "c");
    ck_assert_int_eq(sm__lds_get(&d, 1, &s, NULL), SM_EINVAL);
    sm__strlist_free(&d.classes);
    sm__strlist_free(&d.files);
    free(tr);
    free(va);
}
END_TEST

START_TEST(test_stratified_split)
{
    /* 3 classes of 70, 70 and 9 files */
    sm__strlist f = {0};
    int sizes[3] = {70, 70, 9};
    for (int k = 0; k < 3; k++)
        for (int i = 0; i < sizes[k]; i++) {
            char n[32];
            snprintf(n, sizeof n, "c%d/%03d.jpg", k, i);
            sm__strlist_add(&f, n, k);
        }
    uint8_t *a = malloc(f.n), *b = malloc(f.n), *c = malloc(f.n);
    ck_assert_int_eq(sm__ds_split(&f, 0.1, 7, a), 0);
    ck_assert_int_eq(sm__ds_split(&f, 0.1, 7, b), 0);
    ck_assert_int_eq(sm__ds_split(&f, 0.1, 8, c), 0);
    ck_assert_mem_eq(a, b, f.n); /* deterministic */
    ck_assert(memcmp(a, c, f.n) != 0); /* the seed matters */
    int per[3] = {0};
    for (size_t i = 0; i < f.n; i++) per[f.label[i]] += a[i];
    ck_assert_int_eq(per[0], 7); /* 10 % of each class: stratified */
    ck_assert_int_eq(per[1], 7);
    ck_assert_int_eq(per[2], 1); /* round(0.9) */
    ck_assert_int_eq(sm__ds_split(&f, 0.2, 7, a), 0);
    per[0] = per[1] = per[2] = 0;
    for (size_t i = 0; i < f.n; i++) per[f.label[i]] += a[i];
    ck_assert_int_eq(per[0], 14);
    ck_assert_int_eq(per[2], 2);
    free(a);
    free(b);
    free(c);
    sm__strlist_free(&f);
}
END_TEST

/* Loads one reader plugin from the build tree ($SIMMIM_PLUGIN_PATH, set by make check). */
static const sm_dataset_vtbl *load_reader(sm_registry *reg, const char *name)
{
    const char *dirs = getenv("SIMMIM_PLUGIN_PATH");
    ck_assert_msg(dirs != NULL, "SIMMIM_PLUGIN_PATH is not set (run through make check)");
    sm_diag *d = sm_diag_new();
    sm_plugin_load_path(reg, NULL, 0, NULL, 0, d);
    sm_diag_free(d);
    const sm_component *c = sm_registry_find(reg, SM_KIND_DATASET, name);
    ck_assert_msg(c != NULL, "reader %s not found in %s", name, dirs);
    return (const sm_dataset_vtbl *)c;
}

/* The idx reader on Debian's Fashion-MNIST with its defaults (the embedded demo data). */
START_TEST(test_idx_fashion_mnist)
{
    sm_registry *reg = sm_registry_new();
    const sm_dataset_vtbl *vt = load_reader(reg, "idx");
    void *self;
    sm_dataset_opts o = {SM_SPLIT_TRAIN, 0, NULL};
    sm_error e;
    sm_error_clear(&e);
    ck_assert_msg(vt->open(NULL, &o, &self, &e) == 0, "%s: %s", e.file, e.text);
    ck_assert_int_eq(vt->count(self), 60000);
    ck_assert_int_eq(vt->num_classes(self), 10);
    sm_sample s;
    int first[10] = {9, 0, 0, 3, 0, 2, 7, 2, 5, 5}; /* the published first training labels */
    for (int i = 0; i < 10; i++) {
        ck_assert_int_eq(vt->get(self, i, &s, NULL), 0);
        ck_assert_int_eq(s.label, first[i]);
    }
    ck_assert_int_eq(vt->get(self, 0, &s, NULL), 0);
    ck_assert_ptr_nonnull(s.pixels);
    ck_assert_int_eq(s.width, 28);
    ck_assert_int_eq(s.height, 28);
    ck_assert_int_eq(s.channels, 1);
    long sum = 0;
    for (int i = 0; i < 784; i++) sum += s.pixels[i];
    ck_assert_int_eq(sum, 76247); /* pixel sum of the first image, read from the file */
    ck_assert_int_eq(vt->get(self, 60000, &s, NULL), SM_EINVAL);

    /* through the fine-tuning loader: gray replicated to 3 channels, 28 -> 32 */
    sm_dataset ds = {vt, self, SM_SPLIT_TRAIN};
    sm_pipeline p;
    sm_pipeline_defaults(&p, SM_PIPELINE_FINETUNE, 32);
    p.num_classes = 10;
    sm_loader_opts lo = {.batch_size = 8, .num_workers = 2, .prefetch = 8, .shuffle = true,
                         .drop_last = true, .seed = 3, .max_bad_fraction = 0.01};
    sm_loader *l;
    ck_assert_int_eq(sm_loader_new(&ds, &p, &lo, &l, NULL), 0);
    ck_assert_int_eq(sm_loader_num_batches(l), 7500);
    sm_loader_start(l, 0, 0, 0, NULL);
    const sm_batch *b;
    ck_assert_int_eq(sm_loader_next(l, &b, NULL), 0);
    ck_assert_ptr_nonnull(b);
    ck_assert_int_eq(b->channels, 3);
    ck_assert_ptr_nonnull(b->targets);
    sm_loader_free(l);
    vt->close(self);

    o.split = SM_SPLIT_EVAL;
    ck_assert_int_eq(vt->open(NULL, &o, &self, NULL), 0);
    ck_assert_int_eq(vt->count(self), 10000);
    ck_assert_str_eq(vt->class_name(self, 6), "6"); /* IDX files carry numbers only */
    vt->close(self);

    /* class_names gives them names; too few is an error at the key */
    const char *yaml[2] = {"class_names: [t-shirt/top, trouser, pullover, dress, coat, sandal, "
                           "shirt, sneaker, bag, ankle boot]\n",
                           "class_names: [a, b, c]\n"};
    for (int i = 0; i < 2; i++) {
        sm_config *cfg = NULL;
        sm_diag *d = sm_diag_new();
        ck_assert_int_eq(sm_config_read_string(yaml[i], strlen(yaml[i]), "names.yaml", NULL, 0,
                                               &cfg, d), 0);
        sm_error_clear(&e);
        int rc = vt->open(sm_config_root(cfg), &o, &self, &e);
        if (i == 0) {
            ck_assert_msg(rc == 0, "%s", e.text);
            ck_assert_str_eq(vt->class_name(self, 6), "shirt");
            ck_assert_str_eq(vt->class_name(self, 9), "ankle boot");
            vt->close(self);
        } else {
            ck_assert_int_eq(rc, SM_ECONFIG);
            ck_assert_msg(strstr(e.text, "3 names for the 10 classes") && e.line == 1, "%s",
                          e.text);
        }
        sm_config_free(cfg);
        sm_diag_free(d);
    }
    sm_registry_free(reg);
}
END_TEST

/* Opens the idx reader's split with a section read from yaml (NULL: no section). */
static void *idx_open_yaml(const sm_dataset_vtbl *vt, const char *yaml, sm_split split)
{
    sm_config *cfg = NULL;
    sm_diag *d = sm_diag_new();
    if (yaml)
        ck_assert_int_eq(sm_config_read_string(yaml, strlen(yaml), "idx.yaml", NULL, 0, &cfg, d), 0);
    sm_dataset_opts o = {split, 0, NULL};
    void *self = NULL;
    sm_error e;
    sm_error_clear(&e);
    ck_assert_msg(vt->open(cfg ? sm_config_root(cfg) : NULL, &o, &self, &e) == 0, "%s", e.text);
    sm_config_free(cfg);
    sm_diag_free(d);
    return self;
}

/* pad: zeros around the unchanged pixels; train_ratio: a seeded stratified subset of the
 * training file, kept in file order, the evaluation file whole. */
START_TEST(test_idx_pad_and_subset)
{
    sm_registry *reg = sm_registry_new();
    const sm_dataset_vtbl *vt = load_reader(reg, "idx");
    void *full = idx_open_yaml(vt, NULL, SM_SPLIT_TRAIN);
    void *pad = idx_open_yaml(vt, "pad: 2\n", SM_SPLIT_TRAIN);
    ck_assert_int_eq(vt->count(pad), 60000);
    sm_sample a, b;
    for (int64_t i = 0; i < 60000; i += 9973) {
        ck_assert_int_eq(vt->get(full, i, &a, NULL), 0);
        ck_assert_int_eq(vt->get(pad, i, &b, NULL), 0);
        ck_assert_int_eq(b.width, 32);
        ck_assert_int_eq(b.height, 32);
        ck_assert_int_eq(b.label, a.label);
        for (int y = 0; y < 32; y++)
            for (int x = 0; x < 32; x++) {
                bool inside = y >= 2 && y < 30 && x >= 2 && x < 30;
                int want = inside ? a.pixels[(y - 2) * 28 + (x - 2)] : 0;
                ck_assert_msg(b.pixels[y * 32 + x] == want, "image %lld (%d,%d)", (long long)i, y, x);
            }
    }
    vt->close(pad);

    void *sub0 = idx_open_yaml(vt, "train_ratio: 0.2\nsplit_seed: 0\n", SM_SPLIT_TRAIN);
    void *sub0b = idx_open_yaml(vt, "train_ratio: 0.2\nsplit_seed: 0\n", SM_SPLIT_TRAIN);
    void *sub1 = idx_open_yaml(vt, "train_ratio: 0.2\nsplit_seed: 1\n", SM_SPLIT_TRAIN);
    ck_assert_int_eq(vt->count(sub0), 12000);
    ck_assert_int_eq(vt->num_classes(sub0), 10);
    int per_class[10] = {0};
    int64_t j = 0, first[3] = {-1, -1, -1}, differ = 0;
    for (int64_t k = 0; k < 12000; k++) {
        ck_assert_int_eq(vt->get(sub0, k, &b, NULL), 0);
        per_class[b.label]++;
        /* the k-th kept image is a later image of the file than the (k-1)-th, unchanged */
        for (;; j++) {
            ck_assert_int_lt(j, 60000);
            ck_assert_int_eq(vt->get(full, j, &a, NULL), 0);
            if (a.label == b.label && memcmp(a.pixels, b.pixels, 784) == 0) break;
        }
        if (k < 3) first[k] = j;
        j++;
        ck_assert_int_eq(vt->get(sub0b, k, &a, NULL), 0); /* same seed, same subset */
        ck_assert_int_eq(memcmp(a.pixels, b.pixels, 784), 0);
        ck_assert_int_eq(vt->get(sub1, k, &a, NULL), 0);
        differ += memcmp(a.pixels, b.pixels, 784) != 0;
    }
    for (int c = 0; c < 10; c++) ck_assert_int_eq(per_class[c], 1200);
    ck_assert_int_gt(differ, 10000); /* another seed, another subset */
    /* the file positions of the first kept images (bench/seeds computes the same in Python) */
    ck_assert_msg(first[0] == 7 && first[1] == 17 && first[2] == 23,
                  "%lld %lld %lld", (long long)first[0], (long long)first[1], (long long)first[2]);
    vt->close(sub0);
    vt->close(sub0b);
    vt->close(sub1);
    void *ev = idx_open_yaml(vt, "train_ratio: 0.2\npad: 2\n", SM_SPLIT_EVAL);
    ck_assert_int_eq(vt->count(ev), 10000);
    ck_assert_int_eq(vt->get(ev, 0, &b, NULL), 0);
    ck_assert_int_eq(b.width, 32);
    vt->close(ev);
    vt->close(full);
    sm_registry_free(reg);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("datasets");
    TCase *tc = tcase_create("scan");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_image_folder);
    tcase_add_test(tc, test_bad_trees);
    tcase_add_test(tc, test_presplit_labels_follow_train);
    tcase_add_test(tc, test_stratified_split);
    suite_add_tcase(s, tc);
    TCase *tr = tcase_create("readers");
    tcase_set_timeout(tr, 120);
    tcase_add_test(tr, test_idx_fashion_mnist);
    tcase_add_test(tr, test_idx_pad_and_subset);
    suite_add_tcase(s, tr);
    return s;
}

int main(void) { return sm_test_run(suite()); }
