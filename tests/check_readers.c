/* tests/check_readers.c - the reader plugins through their vtables, with dataset sections read
 * from YAML (sm_config_read_string): aircas (RingMo JSON list, text list, folder walk),
 * imagenet (class folders, eval_list), nwpu_resisc45 (pre-split, and the seeded stratified split
 * written to and reused from split_file). */
#include "imgutil.h"
#include "testutil.h"

#include <string.h>
#include <sys/stat.h>

static char *root;
static sm_registry *reg;
static sm_config *cfg;

static void touch(const char *rel) { ck_assert_int_eq(sm_img_touch(root, rel), 0); }

static void setup(void)
{
    root = sm_test_tmpdir();
    reg = sm_registry_new();
    sm_diag *d = sm_diag_new();
    sm_plugin_load_path(reg, NULL, 0, NULL, 0, d);
    sm_diag_free(d);
    cfg = NULL;
}

static void teardown(void)
{
    sm_config_free(cfg);
    sm_registry_free(reg);
    sm_test_rmtree(root);
    free(root);
}

/* Reads YAML (with "@" replaced by the temp root) and returns the section. */
static const sm_cfg *section(const char *yaml_tmpl, const char *name)
{
    char yaml[8192], *o = yaml;
    for (const char *s = yaml_tmpl; *s && o < yaml + sizeof yaml - 4200; s++)
        if (*s == '@') o += sprintf(o, "%s", root);
        else *o++ = *s;
    *o = '\0';
    sm_diag *d = sm_diag_new();
    sm_config_free(cfg);
    cfg = NULL;
    int rc = sm_config_read_string(yaml, strlen(yaml), "test.yaml", NULL, 0, &cfg, d);
    char msg[600] = "";
    if (rc && sm_diag_count(d)) sm_error_format(sm_diag_get(d, 0, NULL), msg, sizeof msg);
    sm_diag_free(d);
    ck_assert_msg(rc == 0, "config: %s", msg);
    const sm_cfg *s = sm_cfg_get(sm_config_root(cfg), name);
    ck_assert_ptr_nonnull(s);
    return s;
}

static const sm_dataset_vtbl *reader(const char *name)
{
    const sm_component *c = sm_registry_find(reg, SM_KIND_DATASET, name);
    ck_assert_msg(c != NULL, "reader %s not loaded (SIMMIM_PLUGIN_PATH)", name);
    return (const sm_dataset_vtbl *)c;
}

static int open_split(const sm_dataset_vtbl *vt, const sm_cfg *s, sm_split split, void **self,
                      sm_error *e)
{
    sm_dataset_opts o = {split, 0, NULL};
    sm_error_clear(e);
    return vt->open(s, &o, self, e);
}

static const char *path_of(const sm_dataset_vtbl *vt, void *self, int64_t i, int *label)
{
    sm_sample s;
    ck_assert_int_eq(vt->get(self, i, &s, NULL), 0);
    if (label) *label = s.label;
    return s.path;
}

START_TEST(test_aircas)
{
    const sm_dataset_vtbl *vt = reader("aircas");
    touch("tiles/b/2.TIF");
    touch("tiles/a/1.png");
    touch("tiles/a/notes.txt");
    char ids[4300];
    snprintf(ids, sizeof ids, "%s/tiles/ids.json", root);
    const char *json = "[\"a/1.png\", \"b/2.TIF\", \"/abs/elsewhere.jpg\"]";
    sm_test_write_file(ids, json, strlen(json));
    void *self;
    sm_error e;
    /* RingMo's JSON list inside data_path */
    const sm_cfg *s = section("pretrain_dataset:\n  data_path: @/tiles\n  image_ids: ids.json\n", "pretrain_dataset");
    ck_assert_msg(open_split(vt, s, SM_SPLIT_TRAIN, &self, &e) == 0, "%s", e.text);
    ck_assert_int_eq(vt->count(self), 3);
    ck_assert_int_eq(vt->num_classes(self), 0);
    int label;
    ck_assert(strstr(path_of(vt, self, 0, &label), "/tiles/a/1.png"));
    ck_assert_int_eq(label, -1);
    ck_assert_str_eq(path_of(vt, self, 2, NULL), "/abs/elsewhere.jpg");
    vt->close(self);
    /* a text list */
    snprintf(ids, sizeof ids, "%s/tiles/ids.txt", root);
    const char *txt = "# tiles\nb/2.TIF 3\n  \t\na/1.png  \r\n\n"; /* blank lines skipped */
    sm_test_write_file(ids, txt, strlen(txt));
    s = section("pretrain_dataset:\n  data_path: @/tiles\n  image_ids: ids.txt\n", "pretrain_dataset");
    ck_assert_msg(open_split(vt, s, SM_SPLIT_TRAIN, &self, &e) == 0, "%s", e.text);
    ck_assert_int_eq(vt->count(self), 2);
    ck_assert(strstr(path_of(vt, self, 0, NULL), "/tiles/b/2.TIF"));
    ck_assert(strstr(path_of(vt, self, 1, NULL), "/tiles/a/1.png") != NULL &&
              path_of(vt, self, 1, NULL)[strlen(path_of(vt, self, 1, NULL)) - 1] == 'g');
    vt->close(self);
    /* a JSON object is not a list of paths (not a file named '{...}') */
    snprintf(ids, sizeof ids, "%s/tiles/obj.json", root);
    sm_test_write_file(ids, "{\"a\": 1}", 8);
    s = section("pretrain_dataset:\n  data_path: @/tiles\n  image_ids: obj.json\n", "pretrain_dataset");
    ck_assert_int_eq(open_split(vt, s, SM_SPLIT_TRAIN, &self, &e), SM_EFORMAT);
    ck_assert_msg(strstr(e.text, "expected a JSON list of paths"), "%s", e.text);
    /* no list: a sorted recursive walk, .TIF included */
    s = section("pretrain_dataset:\n  data_path: @/tiles\n  image_ids: null\n", "pretrain_dataset");
    ck_assert_msg(open_split(vt, s, SM_SPLIT_TRAIN, &self, &e) == 0, "%s", e.text);
    ck_assert_int_eq(vt->count(self), 2);
    ck_assert(strstr(path_of(vt, self, 0, NULL), "/tiles/a/1.png"));
    vt->close(self);
    /* a folder with no images says what it found; no eval split */
    touch("empty/readme.txt");
    s = section("pretrain_dataset:\n  data_path: @/empty\n  image_ids: null\n", "pretrain_dataset");
    ck_assert_int_eq(open_split(vt, s, SM_SPLIT_TRAIN, &self, &e), SM_EDATA);
    ck_assert_msg(strstr(e.text, "1 .txt"), "%s", e.text);
    ck_assert_int_eq(open_split(vt, s, SM_SPLIT_EVAL, &self, &e), SM_EUNSUPPORTED);
    /* a broken JSON list */
    snprintf(ids, sizeof ids, "%s/tiles/bad.json", root);
    sm_test_write_file(ids, "[\"a.png\",", 9);
    s = section("pretrain_dataset:\n  data_path: @/tiles\n  image_ids: bad.json\n", "pretrain_dataset");
    ck_assert_int_eq(open_split(vt, s, SM_SPLIT_TRAIN, &self, &e), SM_EFORMAT);
    ck_assert_msg(strstr(e.file, "bad.json"), "%s", e.file);
}
END_TEST

START_TEST(test_imagenet)
{
    const sm_dataset_vtbl *vt = reader("imagenet");
    touch("in/train/n02/x.JPEG");
    touch("in/train/n01/y.JPEG");
    touch("in/train/n01/z.jpeg");
    touch("in/val/ILSVRC_1.JPEG");
    touch("in/val/ILSVRC_2.JPEG");
    char list[4300];
    snprintf(list, sizeof list, "%s/in/val.txt", root);
    const char *vl = "ILSVRC_1.JPEG 1 \r\n \t\nILSVRC_2.JPEG 0\n"; /* trailing and blank lines */
    sm_test_write_file(list, vl, strlen(vl));
    const char *y = "finetune_dataset:\n  train_path: @/in/train\n  eval_path: @/in/val\n"
                    "  eval_list: @/in/val.txt\n";
    const sm_cfg *s = section(y, "finetune_dataset");
    void *self;
    sm_error e;
    ck_assert_msg(open_split(vt, s, SM_SPLIT_TRAIN, &self, &e) == 0, "%s", e.text);
    ck_assert_int_eq(vt->count(self), 3);
    ck_assert_int_eq(vt->num_classes(self), 2);
    ck_assert_str_eq(vt->class_name(self, 0), "n01");
    int label;
    ck_assert(strstr(path_of(vt, self, 2, &label), "n02/x.JPEG"));
    ck_assert_int_eq(label, 1);
    vt->close(self);
    ck_assert_msg(open_split(vt, s, SM_SPLIT_EVAL, &self, &e) == 0, "%s", e.text);
    ck_assert_int_eq(vt->count(self), 2);
    ck_assert(strstr(path_of(vt, self, 0, &label), "/in/val/ILSVRC_1.JPEG"));
    ck_assert_int_eq(label, 1);
    vt->close(self);
    /* a label beyond the training classes names the line */
    sm_test_write_file(list, "ILSVRC_1.JPEG 1\nILSVRC_2.JPEG 7\n", 31);
    ck_assert_int_eq(open_split(vt, s, SM_SPLIT_EVAL, &self, &e), SM_EFORMAT);
    ck_assert_int_eq(e.line, 2);
    /* an empty class folder */
    mkdir(strcat(strcpy(list, root), "/in/train/n03"), 0755);
    ck_assert_int_eq(open_split(vt, s, SM_SPLIT_TRAIN, &self, &e), SM_EDATA);
    ck_assert_msg(strstr(e.file, "n03") && strstr(e.text, "no images"), "%s: %s", e.file, e.text);
}
END_TEST

START_TEST(test_nwpu_split_file)
{
    const sm_dataset_vtbl *vt = reader("nwpu_resisc45");
    for (int k = 0; k < 3; k++)
        for (int i = 1; i <= 20; i++) {
            char rel[64];
            snprintf(rel, sizeof rel, "nwpu/class%d/class%d_%03d.jpg", k, k, i);
            touch(rel);
        }
    const char *y = "finetune_dataset:\n  data_path: @/nwpu\n  train_ratio: 0.1\n  split_seed: 4\n"
                    "  split_file: @/split.txt\n";
    const sm_cfg *s = section(y, "finetune_dataset");
    void *tr, *ev;
    sm_error e;
    ck_assert_msg(open_split(vt, s, SM_SPLIT_TRAIN, &tr, &e) == 0, "%s", e.text);
    ck_assert_int_eq(vt->count(tr), 6); /* 10 % of 20, per class */
    ck_assert_int_eq(vt->num_classes(tr), 3);
    int per[3] = {0};
    for (int64_t i = 0; i < vt->count(tr); i++) {
        int label;
        path_of(vt, tr, i, &label);
        per[label]++;
    }
    ck_assert(per[0] == 2 && per[1] == 2 && per[2] == 2);
    /* the split was written; eval is the complement, read back from the file */
    char sp[4300];
    snprintf(sp, sizeof sp, "%s/split.txt", root);
    size_t len;
    char *txt = sm_test_read_file(sp, &len);
    ck_assert_ptr_nonnull(txt);
    ck_assert(strstr(txt, "train_ratio=0.1 split_seed=4"));
    ck_assert_msg(open_split(vt, s, SM_SPLIT_EVAL, &ev, &e) == 0, "%s", e.text);
    ck_assert_int_eq(vt->count(ev), 54);
    for (int64_t i = 0; i < vt->count(ev); i++)
        for (int64_t j = 0; j < vt->count(tr); j++)
            ck_assert_str_ne(path_of(vt, ev, i, NULL), path_of(vt, tr, j, NULL));
    vt->close(ev);
    /* reopening reproduces the same training files (from the file) */
    void *tr2;
    ck_assert_int_eq(open_split(vt, s, SM_SPLIT_TRAIN, &tr2, NULL), 0);
    ck_assert_int_eq(vt->count(tr2), 6);
    for (int64_t i = 0; i < 6; i++) ck_assert_str_eq(path_of(vt, tr, i, NULL), path_of(vt, tr2, i, NULL));
    vt->close(tr2);
    vt->close(tr);
    free(txt);
    /* another seed with the same split_file is refused */
    s = section("finetune_dataset:\n  data_path: @/nwpu\n  train_ratio: 0.1\n  split_seed: 5\n"
                "  split_file: @/split.txt\n", "finetune_dataset");
    ck_assert_int_eq(open_split(vt, s, SM_SPLIT_TRAIN, &tr, &e), SM_ECONFIG);
    ck_assert_msg(strstr(e.text, "other settings"), "%s", e.text);
    /* pre-split folders */
    touch("pre/train/a/1.jpg");
    touch("pre/train/b/2.jpg");
    touch("pre/val/b/3.jpg");
    s = section("finetune_dataset:\n  train_path: @/pre/train\n  eval_path: @/pre/val\n", "finetune_dataset");
    ck_assert_int_eq(open_split(vt, s, SM_SPLIT_EVAL, &ev, &e), 0);
    int label;
    path_of(vt, ev, 0, &label);
    ck_assert_int_eq(label, 1);
    vt->close(ev);
}
END_TEST

/* Pipeline and loader settings from a RingMo-style config. */
/* A data_path of 4000 bytes that does not exist: the error names it by its tail after "..."
 * and says which section of which file asked. */
START_TEST(test_long_missing_data_path)
{
    char *yaml = malloc(4200), *p = yaml;
    p += sprintf(p, "pretrain_dataset:\n  reader: aircas\n  data_path: /nonexistent/");
    for (int i = 0; i < 20; i++) p += sprintf(p, "%0199d/", i);
    sprintf(p, "end\n");
    ck_assert_uint_gt(strlen(yaml), 4000);
    sm_diag *d = sm_diag_new();
    sm_config_free(cfg);
    cfg = NULL;
    ck_assert_int_eq(sm_config_read_string(yaml, strlen(yaml), "long.yaml", NULL, 0, &cfg, d), 0);
    sm_diag_free(d);
    sm_dataset ds;
    sm_dataset_opts o = {.split = SM_SPLIT_TRAIN};
    sm_error e;
    sm_error_clear(&e);
    ck_assert_int_ne(sm_dataset_open(&ds, reg, sm_config_root(cfg), "pretrain_dataset", &o, &e), 0);
    ck_assert_str_eq(e.text, "cannot read folder: No such file or directory (pretrain_dataset, "
                             "long.yaml:2)");
    size_t n = strlen(e.file);
    ck_assert_msg(strncmp(e.file, "...", 3) == 0 && strcmp(e.file + n - 8, "0019/end") == 0, "%s",
                  e.file);
    free(yaml);
}
END_TEST

START_TEST(test_pipeline_from_config)
{
    const char *y = "seed: 7\n"
                    "model:\n  backbone: swin\n  patch_size: 4\n  in_chans: 4\n  mask_ratio: 0.5\n"
                    "  mask_patch_size: 32\n"
                    "train_config:\n  image_size: 192\n  batch_size: 16\n  num_classes: 46\n"
                    "pretrain_dataset:\n  interpolation: BICUBIC\n  crop_min: 0.5\n  prop: 0.25\n"
                    "  bands: [3, 2, 1, 7]\n  norm_mean: [0.1, 0.2, 0.3, 0.4]\n"
                    "  norm_std: [0.5, 0.5, 0.5, 0.25]\n  num_workers: 3\n  prefetch_size: 12\n"
                    "  on_bad_image: fail\n  max_bad_fraction: 0.05\n  repeat: 2\n"
                    "finetune_dataset:\n  auto_augment: null\n  mixup: 0.0\n  re_mode: const\n"
                    "  norm_mean: [0.1, 0.2]\n";
    section(y, "pretrain_dataset");
    const sm_cfg *rootc = sm_config_root(cfg);
    sm_pipeline p;
    sm_error e;
    sm_error_clear(&e);
    ck_assert_msg(sm_pipeline_from_config(&p, rootc, "pretrain_dataset", SM_PIPELINE_PRETRAIN, &e) == 0,
                  "%s", e.text);
    ck_assert_int_eq(p.image_size, 192);
    ck_assert_int_eq(p.channels, 4);
    ck_assert_int_eq(p.interp, SM_INTERP_BICUBIC);
    ck_assert(p.scale_min == 0.5 && p.flip_prob == 0.25);
    ck_assert_int_eq(p.n_bands, 4);
    ck_assert_int_eq(p.bands[3], 7);
    ck_assert_float_eq(p.mean[2], 0.3f);
    ck_assert_float_eq(p.std[3], 0.25f);
    ck_assert(p.use_mask);
    ck_assert_int_eq(p.mask.model_patch_size, 4);
    ck_assert(p.mask.ratio == 0.5);
    ck_assert_int_eq(p.num_classes, 46);
    sm_loader_opts o;
    sm_loader_opts_from_config(&o, rootc, "pretrain_dataset", SM_SPLIT_TRAIN);
    ck_assert_int_eq(o.batch_size, 16);
    ck_assert_int_eq(o.num_workers, 3);
    ck_assert_int_eq(o.prefetch, 12);
    ck_assert_int_eq(o.repeat, 2);
    ck_assert_int_eq((int)o.seed, 7);
    ck_assert_int_eq(o.on_bad, SM_BAD_FAIL);
    ck_assert(o.max_bad_fraction == 0.05 && o.shuffle && o.drop_last);
    sm_loader_opts_from_config(&o, rootc, "finetune_dataset", SM_SPLIT_EVAL);
    ck_assert(!o.shuffle && !o.drop_last);
    /* 2 means for 4 channels: the error names the key and its line */
    sm_error_clear(&e);
    ck_assert_int_eq(sm_pipeline_from_config(&p, rootc, "finetune_dataset", SM_PIPELINE_FINETUNE, &e),
                     SM_ECONFIG);
    ck_assert_msg(strstr(e.path, "norm_mean") && e.line == 28, "%s:%d: %s", e.path, e.line, e.text);
    /* without norm_mean: RandAugment off (null), mixup 0, const erasing */
    y = "model:\n  in_chans: 3\nfinetune_dataset:\n  auto_augment: null\n  mixup: 0.0\n"
        "  re_mode: const\n  interpolation: bilinear\n";
    section(y, "finetune_dataset");
    ck_assert_int_eq(sm_pipeline_from_config(&p, sm_config_root(cfg), "finetune_dataset", SM_PIPELINE_FINETUNE, NULL), 0);
    ck_assert(!p.use_randaug);
    ck_assert(p.mixup_alpha == 0.0 && p.cutmix_alpha == 1.0);
    ck_assert_int_eq(p.erase_mode, SM_ERASE_CONST);
    ck_assert_int_eq(p.interp, SM_INTERP_BILINEAR);
    ck_assert_float_eq(p.mean[0], 0.485f);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("readers");
    TCase *tc = tcase_create("readers");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_aircas);
    tcase_add_test(tc, test_imagenet);
    tcase_add_test(tc, test_nwpu_split_file);
    tcase_add_test(tc, test_pipeline_from_config);
    tcase_add_test(tc, test_long_missing_data_path);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    sm_log_set_level(SM_LOG_WARN);
    return sm_test_run(suite());
}
