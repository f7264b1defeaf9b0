/* tests/check_config.c - the configuration system.
 *
 * - Data-driven invalid configs: tests/configs/invalid/<case>/ holds config.yaml (plus any base
 *   files and an optional `options` file, one override per line) and `error`, the exact lines
 *   expected (README.md there). Adding a case is adding a directory.
 * - Valid configs: base_config merge semantics, overrides, defaults, scalar forms, the
 *   ignored-keys warning, to_yaml round trips, and the six shipped configs (validated against
 *   the stand-in components of tests/fixtures/plugins/fx_ringmo.c). */
#include "testutil.h"

#include "config/config_internal.h" /* struct sm_cfg: the `quoted` flag, for tree comparisons */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SM_MIN_SIZE(a, b) ((size_t)(a) < (size_t)(b) ? (size_t)(a) : (size_t)(b))

#ifndef SM_TEST_CONFIGS
#define SM_TEST_CONFIGS "../configs"
#endif

static const char *const shipped[] = {
    "pretrain_simmim_vit_base_p16_aircas_224_200ep.yaml",
    "pretrain_simmim_swin_base_p4_w6_aircas_192_200ep.yaml",
    "pretrain_simmim_swin_base_p4_w6_imagenet1k_192_100ep.yaml",
    "finetune_simmim_vit_base_p16_nwpu20_224_100ep.yaml",
    "finetune_simmim_swin_base_p4_w7_nwpu_224_200ep.yaml",
    "finetune_simmim_swin_base_p4_w7_imagenet1k_224_100ep.yaml",
};

/* A registry holding the stand-ins for the components the RingMo configs name. */
static sm_registry *fx_registry(void)
{
    sm_registry *reg = sm_registry_new();
    ck_assert_ptr_nonnull(reg);
    sm_error e;
    sm_error_clear(&e);
    int rc = sm_plugin_load(reg, sm_test_build("fixtures/plugins/.libs/sm_fx_ringmo.so"), &e);
    ck_assert_msg(rc == 0, "loading the fixture components: %s", e.text);
    return reg;
}

/* The diag as simmimctl prints it, one line each; `strip` is removed from file names and
 * messages (it is the case directory). */
static char *diag_text(const sm_diag *d, const char *strip)
{
    size_t cap = 1 << 16, len = 0;
    char *out = malloc(cap);
    out[0] = '\0';
    for (size_t i = 0; i < sm_diag_count(d); i++) {
        sm_severity sev;
        sm_error e = *sm_diag_get(d, i, &sev);
        if (strip && strncmp(e.file, strip, strlen(strip)) == 0)
            memmove(e.file, e.file + strlen(strip), strlen(e.file + strlen(strip)) + 1);
        char line[SM_ERROR_LINE_MAX];
        sm_error_format(&e, line, sizeof line);
        /* paths inside the message too (include chains, base files) */
        for (char *p; strip && (p = strstr(line, strip)) != NULL;)
            memmove(p, p + strlen(strip), strlen(p + strlen(strip)) + 1);
        len += (size_t)snprintf(out + len, cap - len, "%s%s\n",
                                sev == SM_SEV_WARNING ? "warning: " : "", line);
        ck_assert_uint_lt(len, cap);
    }
    return out;
}

/* Reads and validates; returns the status of the first failing phase. */
static int load(const char *path, const char *const *opts, size_t n_opts,
                const sm_registry *reg, sm_config **cfg, sm_diag *d)
{
    int rc = sm_config_read(path, opts, n_opts, cfg, d);
    if (rc == 0) rc = sm_config_validate(*cfg, reg, d);
    return rc;
}

static int load_string(const char *text, const char *const *opts, size_t n_opts,
                       const sm_registry *reg, sm_config **cfg, sm_diag *d)
{
    int rc = sm_config_read_string(text, strlen(text), "inline.yaml", opts, n_opts, cfg, d);
    if (rc == 0) rc = sm_config_validate(*cfg, reg, d);
    return rc;
}

#define ASSERT_OK(rc, d)                                                                       \
    do {                                                                                       \
        char *t_ = diag_text((d), NULL);                                                       \
        ck_assert_msg((rc) == 0 && sm_diag_errors(d) == 0, "rc %d:\n%s", (rc), t_);            \
        free(t_);                                                                              \
    } while (0)

/* ---- data-driven invalid configs ------------------------------------------------------ */

static char **cases;
static size_t n_cases;

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void scan_cases(void)
{
    DIR *dh = opendir(sm_test_src("configs/invalid"));
    if (!dh) return; /* the loop test then fails: it expects cases */
    struct dirent *de;
    while ((de = readdir(dh)) != NULL) {
        if (de->d_name[0] == '.' || strchr(de->d_name, '.')) continue; /* README.md */
        cases = realloc(cases, (n_cases + 1) * sizeof *cases);
        cases[n_cases++] = strdup(de->d_name);
    }
    closedir(dh);
    qsort(cases, n_cases, sizeof *cases, cmp_str);
}

START_TEST(test_cases_exist) { ck_assert_uint_ge(n_cases, 20); }
END_TEST

/* Reads <dir>/config.yaml as `config` (with <dir>/options) and returns what was reported
 * (NULL unless it failed with SM_ECONFIG, which the caller asserts), `strip` removed. */
static char *run_case(const char *name, const char *dir, const char *config, const char *strip)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/options", dir);
    char *opt_text = sm_test_read_file(path, NULL);
    const char *opts[16];
    size_t n_opts = 0;
    for (char *line = opt_text ? strtok(opt_text, "\n") : NULL; line && n_opts < 16;
         line = strtok(NULL, "\n"))
        opts[n_opts++] = line;
    sm_registry *reg = fx_registry();
    sm_diag *d = sm_diag_new();
    sm_config *cfg = NULL;
    int rc = load(config, opts, n_opts, reg, &cfg, d);
    sm_diag_sort(d);
    char *got = diag_text(d, strip);
    ck_assert_msg(rc == SM_ECONFIG, "case %s: status %d, expected SM_ECONFIG; output:\n%s", name,
                  rc, got);
    free(opt_text);
    sm_config_free(cfg);
    sm_diag_free(d);
    sm_registry_free(reg);
    return got;
}

static void assert_case(const char *name, const char *dir, const char *config, const char *strip)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s/error", sm_test_src("configs/invalid"), name);
    char *want = sm_test_read_file(path, NULL);
    ck_assert_msg(want != NULL, "case %s: no error file", name);
    char *got = run_case(name, dir, config, strip);
    ck_assert_msg(strcmp(got, want) == 0, "case %s (%s):\n--- expected\n%s--- got\n%s", name,
                  config, want, got);
    free(got);
    free(want);
}

/* Each case read from its directory as "config.yaml", so that the messages do not depend on
 * where the tree is (test_invalid_cases_deep reads them by absolute paths). */
START_TEST(test_invalid_case)
{
    const char *name = cases[_i];
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/%s", sm_test_src("configs/invalid"), name);
    int here = open(".", O_RDONLY | O_DIRECTORY);
    ck_assert_int_ge(here, 0);
    ck_assert_msg(chdir(dir) == 0, "chdir %s: %s", dir, strerror(errno));
    assert_case(name, ".", "config.yaml", NULL);
    ck_assert_int_eq(fchdir(here), 0);
    close(here);
}
END_TEST

/* The same cases copied below a directory whose path is 210 bytes long, read by absolute paths:
 * every file name, include chain and message still comes out whole (a fixed 400-byte buffer
 * used to cut the include cycle in the middle). */
START_TEST(test_invalid_cases_deep)
{
    enum { DEEP = 210 };
    char *tmp = sm_test_tmpdir();
    ck_assert_msg(strlen(tmp) + 2 < DEEP, "TMPDIR is longer than %d bytes", DEEP - 2);
    char deep[256];
    int k = snprintf(deep, sizeof deep, "%s/", tmp);
    memset(deep + k, 'n', (size_t)(DEEP - k));
    deep[DEEP] = '\0';
    ck_assert_int_eq(mkdir(deep, 0700), 0);
    char cmd[2 * PATH_MAX], dir[512], config[600], strip[600];
    snprintf(cmd, sizeof cmd, "cp -R '%s'/* '%s'/", sm_test_src("configs/invalid"), deep);
    ck_assert_int_eq(system(cmd), 0);
    for (size_t i = 0; i < n_cases; i++) {
        snprintf(dir, sizeof dir, "%s/%s", deep, cases[i]);
        snprintf(config, sizeof config, "%s/config.yaml", dir);
        snprintf(strip, sizeof strip, "%s/", dir);
        assert_case(cases[i], dir, config, strip);
    }
    sm_test_rmtree(tmp);
    free(tmp);
}
END_TEST

/* A config at a path of about 4000 bytes (PATH_MAX is 4096) in an include cycle and naming a
 * missing base: sm_error's fixed fields cannot hold such paths, so they are shortened, always
 * visibly ("..." or " ... "), and every link of the cycle stays recognisable. */
START_TEST(test_error_at_4000_byte_path)
{
    char *tmp = sm_test_tmpdir();
    char deep[PATH_MAX];
    size_t k = (size_t)snprintf(deep, sizeof deep, "%s", tmp);
    while (k < 3960) { /* components of 200 bytes */
        deep[k++] = '/';
        size_t n = SM_MIN_SIZE(200, 3960 - k);
        memset(deep + k, 'p', n);
        k += n;
        deep[k] = '\0';
        ck_assert_msg(mkdir(deep, 0700) == 0, "mkdir (%zu bytes): %s", k, strerror(errno));
    }
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/a.yaml", deep);
    ck_assert_int_eq(sm_test_write_file(path, "base_config: [config.yaml]\n", 27), 0);
    snprintf(path, sizeof path, "%s/config.yaml", deep);
    const char *text = "base_config: [a.yaml, missing.yaml]\nmodel: {backbone: vit}\n";
    ck_assert_int_eq(sm_test_write_file(path, text, strlen(text)), 0);
    sm_diag *d = sm_diag_new();
    sm_config *cfg = NULL;
    ck_assert_int_eq(sm_config_read(path, NULL, 0, &cfg, d), SM_ECONFIG);
    ck_assert_uint_eq(sm_diag_count(d), 2);
    int cycle = strncmp(sm_diag_get(d, 0, NULL)->text, "include cycle", 13) == 0 ? 0 : 1;
    /* the cycle, reported at a.yaml's base_config entry */
    const sm_error *e = sm_diag_get(d, (size_t)cycle, NULL);
    char line[SM_ERROR_LINE_MAX];
    sm_error_format(e, line, sizeof line);
    ck_assert_msg(strncmp(e->file, "...", 3) == 0 &&
                      strcmp(e->file + strlen(e->file) - 8, "p/a.yaml") == 0,
                  "%s", line);
    ck_assert_str_eq(e->path, "base_config");
    ck_assert_msg(strncmp(e->text, "include cycle: ...", 18) == 0, "%s", line);
    static const char *const chain[] = {"p/config.yaml", "p/a.yaml", "p/config.yaml"};
    const char *at = e->text + strlen("include cycle: ");
    for (int i = 0; i < 3; i++) {
        const char *end = i < 2 ? strstr(at, " -> ") : at + strlen(at);
        ck_assert_msg(end && strncmp(at, "...", 3) == 0 &&
                          strncmp(end - strlen(chain[i]), chain[i], strlen(chain[i])) == 0,
                      "link %d of %s", i, line);
        at = end + 4;
    }
    /* the missing base: its path in the message is cut in the middle, visibly */
    e = sm_diag_get(d, (size_t)!cycle, NULL);
    sm_error_format(e, line, sizeof line);
    ck_assert_msg(strncmp(e->file, "...", 3) == 0 &&
                      strcmp(e->file + strlen(e->file) - 13, "p/config.yaml") == 0,
                  "%s", line);
    ck_assert_msg(strncmp(e->text, "cannot read '/", 14) == 0 && strstr(e->text, "p ... p") &&
                      strstr(e->text, "p/missing.yaml': No such file or directory"),
                  "%s", line);
    ck_assert_uint_eq(strlen(e->text), sizeof e->text - 1);
    sm_diag_free(d);
    sm_test_rmtree(tmp);
    free(tmp);
}
END_TEST

/* Built at run time rather than stored: a file one byte over the limit. */
START_TEST(test_oversize_file)
{
    char *dir = sm_test_tmpdir();
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/big.yaml", dir);
    size_t limit = 1024 * 1024;
    char *text = malloc(limit + 2);
    const char *head = "model: {backbone: vit}\npretrain_dataset: {data_path: x}\n";
    memset(text, ' ', limit + 1);
    memcpy(text, head, strlen(head));
    text[strlen(head)] = '#';
    text[limit - 1] = '\n'; /* exactly 1 MiB: accepted */
    ck_assert_int_eq(sm_test_write_file(path, text, limit), 0);
    sm_registry *reg = fx_registry();
    sm_diag *d = sm_diag_new();
    sm_config *cfg = NULL;
    ASSERT_OK(load(path, NULL, 0, reg, &cfg, d), d);
    sm_config_free(cfg);
    ck_assert_int_eq(sm_test_write_file(path, text, limit + 1), 0);
    ck_assert_int_eq(sm_config_read(path, NULL, 0, &cfg, d), SM_ECONFIG);
    ck_assert_ptr_null(cfg);
    ck_assert_uint_eq(sm_diag_count(d), 1);
    const sm_error *e = sm_diag_get(d, 0, NULL);
    ck_assert_str_eq(e->file, path);
    ck_assert_str_eq(e->text, "the config is larger than the 1 MiB limit for a config");
    sm_diag_clear(d);
    ck_assert_int_eq(sm_config_read_string(text, limit + 1, "s", NULL, 0, &cfg, d), SM_ECONFIG);
    free(text);
    sm_diag_free(d);
    sm_registry_free(reg);
    sm_test_rmtree(dir);
    free(dir);
}
END_TEST

START_TEST(test_missing_main_file)
{
    sm_diag *d = sm_diag_new();
    sm_config *cfg = (sm_config *)1;
    ck_assert_int_eq(sm_config_read("/nonexistent/x.yaml", NULL, 0, &cfg, d), SM_EIO);
    ck_assert_ptr_null(cfg);
    char *t = diag_text(d, NULL);
    ck_assert_str_eq(t, "/nonexistent/x.yaml: cannot read the config: No such file or directory\n");
    free(t);
    sm_diag_free(d);
}
END_TEST

/* ---- merges and overrides ------------------------------------------------------------- */

static const sm_cfg *must_get(const sm_cfg *root, const char *key)
{
    const sm_cfg *n = sm_cfg_get(root, key);
    ck_assert_msg(n != NULL, "no %s", key);
    return n;
}

static void assert_at(const sm_cfg *root, const char *key, const char *text, const char *file,
                      int line)
{
    const sm_cfg *n = must_get(root, key);
    ck_assert_msg(sm_cfg_scalar(n) && strcmp(sm_cfg_scalar(n), text) == 0, "%s: '%s' != '%s'",
                  key, sm_cfg_scalar(n) ? sm_cfg_scalar(n) : "(not a scalar)", text);
    const char *f = sm_cfg_file(n);
    size_t lf = strlen(f), lw = strlen(file);
    ck_assert_msg(lf >= lw && strcmp(f + lf - lw, file) == 0, "%s: from %s, not %s", key, f,
                  file);
    ck_assert_int_eq(sm_cfg_line(n), line);
}

/* tests/configs/valid/merge: main.yaml <- [base1.yaml (<- base0.yaml), sub/base2.yaml]. */
START_TEST(test_base_merge_semantics)
{
    sm_diag *d = sm_diag_new();
    sm_config *cfg = NULL;
    int rc = sm_config_read(sm_test_src("configs/valid/merge/main.yaml"), NULL, 0, &cfg, d);
    ASSERT_OK(rc, d);
    const sm_cfg *root = sm_config_root(cfg);
    /* key order: base0's, then base1's additions; replaced keys keep their place */
    static const char *const order[] = {"seed",     "train_config", "only_in_base0", "model",
                                        "callback", "plugin_path",  "output_dir"};
    ck_assert_uint_eq(sm_cfg_size(root), 7);
    for (size_t i = 0; i < 7; i++) ck_assert_str_eq(sm_cfg_key_at(root, i), order[i]);
    ck_assert_ptr_null(sm_cfg_get(root, "base_config"));
    /* the file wins over the bases */
    assert_at(root, "seed", "7", "merge/main.yaml", 9);
    /* a base that includes a base: merged deeply over it */
    assert_at(root, "train_config.epoch", "10", "merge/base1.yaml", 10);
    assert_at(root, "train_config.batch_size", "8", "merge/base0.yaml", 4);
    /* bases combine shallowly: base2's model replaces base1's entirely ... */
    ck_assert_ptr_null(sm_cfg_get(root, "model.a"));
    ck_assert_ptr_null(sm_cfg_get(root, "callback.ckpt_config.keep_checkpoint_max"));
    assert_at(root, "model.c", "3", "merge/sub/base2.yaml", 2);
    /* ... and the file merges deeply into the result */
    assert_at(root, "model.d", "4", "merge/main.yaml", 4);
    assert_at(root, "callback.ckpt_config.save_ckpt_epochs", "2", "merge/sub/base2.yaml", 5);
    assert_at(root, "callback.ckpt_config.prefix", "mine", "merge/main.yaml", 7);
    ck_assert_int_eq(sm_cfg_column(must_get(root, "callback.ckpt_config.prefix")), 13);
    /* paths resolve against the file that set them */
    char buf[PATH_MAX];
    sm_cfg_path(root, "output_dir", buf, sizeof buf);
    ck_assert_str_eq(buf + strlen(buf) - strlen("merge/sub/out"), "merge/sub/out");
    char *dirs[4];
    ck_assert_uint_eq(sm_config_plugin_dirs(cfg, dirs, 4), 2);
    ck_assert_str_eq(dirs[0] + strlen(dirs[0]) - strlen("merge/plugins"), "merge/plugins");
    ck_assert_str_eq(dirs[1], "/abs/plugins");
    free(dirs[0]);
    free(dirs[1]);
    char path[64];
    sm_cfg_keypath(must_get(root, "callback.ckpt_config.prefix"), path, sizeof path);
    ck_assert_str_eq(path, "callback.ckpt_config.prefix");
    sm_config_free(cfg);
    sm_diag_free(d);
}
END_TEST

START_TEST(test_overrides)
{
    static const char *const opts[] = {"train_config.batch_size=128", "model.depth=[2, 2, 6, 2]",
                                       "new.sub.key='5'", "seed=~", "lr_schedule.base_lr=2e-4"};
    sm_diag *d = sm_diag_new();
    sm_config *cfg = NULL;
    int rc = sm_config_read(sm_test_src("configs/valid/merge/main.yaml"), opts, 5, &cfg, d);
    ASSERT_OK(rc, d);
    const sm_cfg *root = sm_config_root(cfg);
    const sm_cfg *bs = must_get(root, "train_config.batch_size");
    ck_assert_str_eq(sm_cfg_scalar(bs), "128");
    ck_assert_str_eq(sm_cfg_file(bs), "--options");
    ck_assert_int_eq(sm_cfg_line(bs), 0);
    const sm_cfg *depth = must_get(root, "model.depth");
    ck_assert_int_eq(sm_cfg_kind_of(depth), SM_CFG_SEQ);
    int64_t v[4];
    ck_assert_uint_eq(sm_cfg_int_list(root, "model.depth", v, 4), 4);
    ck_assert_int_eq(v[2], 6);
    const sm_cfg *key = must_get(root, "new.sub.key");
    ck_assert_str_eq(sm_cfg_scalar(key), "5");
    ck_assert(key->quoted);
    ck_assert_int_eq(sm_cfg_kind_of(must_get(root, "new")), SM_CFG_MAP);
    ck_assert(sm_cfg_is_null(root, "seed"));
    ck_assert_double_eq_tol(sm_cfg_float(root, "lr_schedule.base_lr"), 2e-4, 1e-12);
    /* overrides land in place: seed stays the first key */
    ck_assert_str_eq(sm_cfg_key_at(root, 0), "seed");
    sm_config_free(cfg);

    /* malformed overrides: every one reported, nothing returned */
    static const char *const bad[] = {"noequals", "=5", "a..b=1", "model.c.x=1", "x=[1, 2"};
    sm_diag_clear(d);
    ck_assert_int_eq(sm_config_read(sm_test_src("configs/valid/merge/main.yaml"), bad, 5, &cfg, d),
                     SM_ECONFIG);
    ck_assert_ptr_null(cfg);
    char *t = diag_text(d, NULL);
    ck_assert_str_eq(t, "--options: expected key.path=value, got 'noequals'\n"
                        "--options: expected key.path=value, got '=5'\n"
                        "--options: a..b: empty key in the path\n"
                        "--options: model.c.x: cannot set a key inside 'model.c': it is '3', "
                        "not a map\n"
                        "--options: x: cannot parse the value '[1, 2': did not find expected ',' "
                        "or ']' (while parsing a flow sequence at line 1, column 1)\n");
    free(t);
    sm_diag_free(d);
}
END_TEST

/* ---- validation of valid configs ------------------------------------------------------ */

static const char minimal[] = "model: {backbone: vit}\npretrain_dataset: {data_path: /data}\n";

START_TEST(test_defaults_filled)
{
    sm_registry *reg = fx_registry();
    sm_diag *d = sm_diag_new();
    sm_config *cfg = NULL;
    ASSERT_OK(load_string(minimal, NULL, 0, reg, &cfg, d), d);
    ck_assert_uint_eq(sm_diag_count(d), 0); /* no ignored keys: no warning */
    const sm_cfg *root = sm_config_root(cfg);
    ck_assert_str_eq(sm_cfg_str(root, "task"), "pretrain");
    ck_assert_int_eq(sm_cfg_int(root, "seed"), 2022);
    ck_assert_int_eq(sm_cfg_int(root, "train_config.batch_size"), 64);
    ck_assert_str_eq(sm_cfg_file(must_get(root, "train_config.batch_size")), "<default>");
    ck_assert_int_eq(sm_cfg_int(root, "model.patch_size"), 16); /* the backbone's default */
    ck_assert_double_eq_tol(sm_cfg_float(root, "model.mask_ratio"), 0.6, 1e-12);
    ck_assert_double_eq_tol(sm_cfg_float(root, "optimizer.beta1"), 0.9, 1e-12);
    ck_assert_double_eq_tol(sm_cfg_float(root, "optimizer.eps"), 1e-8, 1e-20);
    ck_assert_str_eq(sm_cfg_str(root, "lr_schedule.lr_type"), "warmup_cosine_decay");
    ck_assert_str_eq(sm_cfg_str(root, "callback.ckpt_config.prefix"), "ring-mo");
    ck_assert_int_eq(sm_cfg_int(root, "callback.ckpt_config.keep_checkpoint_max"), 1);
    ck_assert_str_eq(sm_cfg_str(root, "pretrain_dataset.reader"), "aircas");
    ck_assert(sm_cfg_bool(root, "pretrain_dataset.shuffle"));
    ck_assert(sm_cfg_is_null(root, "pretrain_dataset.image_ids"));
    ck_assert(sm_cfg_is_null(root, "train_config.num_classes"));
    ck_assert_str_eq(sm_cfg_str(root, "backend.name"), "blis");
    ck_assert_int_eq(sm_cfg_kind_of(must_get(root, "plugin_path")), SM_CFG_SEQ);
    ck_assert_ptr_null(sm_cfg_get(root, "finetune_dataset"));
    /* the core schema is visible */
    ck_assert_str_eq(sm_config_core_keys("model")[0].name, "backbone");
    ck_assert_str_eq(sm_config_core_section(1), "model");
    ck_assert_ptr_null(sm_config_core_keys("nope"));
    sm_config_free(cfg);
    sm_diag_free(d);
    sm_registry_free(reg);
}
END_TEST

START_TEST(test_scalar_forms)
{
    static const char text[] =
        "model: {backbone: vit, use_abs_pos_emb: True, use_mean_pooling: FALSE, drop_rate: 0.}\n"
        "pretrain_dataset: {data_path: x, shuffle: off, prop: .5, image_ids: ~}\n"
        "train_wrapper: {use_ema: yes, use_clip_grad: On, clip_norm: 5}\n"
        "train_config: {resume_ckpt: Null, num_classes: NULL, epoch: +3}\n"
        "optimizer: {weight_decay: 1e-8, eps: 2E-4, layer_decay: 1}\n"
        "lr_schedule: {min_lr: 0., warmup_epochs: 2.5, base_lr: 1.5e+1}\n"
        "callback: {ckpt_config: {prefix: 0.00015}}\n"
        "loss_type: CE\n"
        "task:\n";
    sm_registry *reg = fx_registry();
    sm_diag *d = sm_diag_new();
    sm_config *cfg = NULL;
    ASSERT_OK(load_string(text, NULL, 0, reg, &cfg, d), d);
    const sm_cfg *root = sm_config_root(cfg);
    ck_assert(sm_cfg_bool(root, "model.use_abs_pos_emb"));
    ck_assert(!sm_cfg_bool(root, "model.use_mean_pooling"));
    ck_assert(!sm_cfg_bool(root, "pretrain_dataset.shuffle"));
    ck_assert(sm_cfg_bool(root, "train_wrapper.use_ema"));
    ck_assert(sm_cfg_bool(root, "train_wrapper.use_clip_grad"));
    ck_assert_double_eq(sm_cfg_float(root, "train_wrapper.clip_norm"), 5.0);
    ck_assert_double_eq(sm_cfg_float(root, "pretrain_dataset.prop"), 0.5);
    ck_assert_double_eq(sm_cfg_float(root, "model.drop_rate"), 0.0);
    ck_assert(sm_cfg_is_null(root, "pretrain_dataset.image_ids"));
    ck_assert(sm_cfg_is_null(root, "train_config.resume_ckpt"));
    ck_assert(sm_cfg_is_null(root, "train_config.num_classes"));
    ck_assert_int_eq(sm_cfg_int(root, "train_config.epoch"), 3);
    ck_assert_double_eq_tol(sm_cfg_float(root, "optimizer.eps"), 2e-4, 1e-15);
    ck_assert_double_eq(sm_cfg_float(root, "lr_schedule.base_lr"), 15.0);
    ck_assert_str_eq(sm_cfg_str(root, "callback.ckpt_config.prefix"), "0.00015");
    ck_assert_str_eq(sm_cfg_str(root, "loss_type"), "ce"); /* choices take the schema's case */
    ck_assert_str_eq(sm_cfg_str(root, "task"), "pretrain"); /* empty: null: resolved */
    /* conversions name the node */
    sm_error e;
    sm_error_clear(&e);
    int64_t i;
    ck_assert_int_eq(sm_cfg_to_int(must_get(root, "loss_type"), &i, &e), SM_ECONFIG);
    ck_assert_str_eq(e.path, "loss_type");
    ck_assert_int_eq(e.line, 8);
    ck_assert_str_eq(e.text, "expected an integer, got 'ce'");
    sm_config_free(cfg);
    sm_diag_free(d);
    sm_registry_free(reg);
}
END_TEST

START_TEST(test_ignored_keys_warned_once)
{
    static const char text[] =
        "use_parallel: True\n"
        "context: {mode: 0, device_target: Ascend}\n"
        "model: {backbone: vit, patch_type: conv}\n"
        "train_config: {sink_mode: True, has_trained_steps: 0}\n"
        "pretrain_dataset: {data_path: x, numa_enable: True}\n"
        "callback: {ckpt_config: {integrated_save: True}, summary_config: {collect_freq: 10}}\n"
        "profile: False\n";
    sm_registry *reg = fx_registry();
    sm_diag *d = sm_diag_new();
    sm_config *cfg = NULL;
    ASSERT_OK(load_string(text, NULL, 0, reg, &cfg, d), d);
    ck_assert_uint_eq(sm_diag_count(d), 1);
    sm_severity sev;
    const sm_error *w = sm_diag_get(d, 0, &sev);
    ck_assert_int_eq(sev, SM_SEV_WARNING);
    ck_assert_str_eq(w->file, "inline.yaml");
    ck_assert_str_eq(w->text, "ignored RingMo/MindSpore-only keys: use_parallel, context, "
                              "model.patch_type, train_config.{sink_mode, has_trained_steps}, "
                              "pretrain_dataset.numa_enable, callback.ckpt_config.integrated_save, "
                              "callback.summary_config, profile");
    static const char *const want[] = {"use_parallel", "context", "model.patch_type",
                                       "train_config.sink_mode", "train_config.has_trained_steps",
                                       "pretrain_dataset.numa_enable",
                                       "callback.ckpt_config.integrated_save",
                                       "callback.summary_config", "profile"};
    ck_assert_uint_eq(sm_config_ignored_count(cfg), 9);
    for (size_t i = 0; i < 9; i++) ck_assert_str_eq(sm_config_ignored_at(cfg, i), want[i]);
    ck_assert_ptr_null(sm_config_ignored_at(cfg, 9));
    /* ignored subtrees stay in the effective config */
    ck_assert_str_eq(sm_cfg_str(sm_config_root(cfg), "context.device_target"), "Ascend");
    sm_config_free(cfg);
    sm_diag_free(d);
    sm_registry_free(reg);
}
END_TEST

/* ---- to_yaml round trip --------------------------------------------------------------- */

static void assert_same_tree(const sm_cfg *a, const sm_cfg *b, const char *where)
{
    char path[128];
    sm_cfg_keypath(a, path, sizeof path);
    ck_assert_msg(a->kind == b->kind, "%s: %s: kind %d vs %d", where, path, a->kind, b->kind);
    ck_assert_msg(a->n == b->n, "%s: %s: %zu vs %zu children", where, path, a->n, b->n);
    if (a->kind == SM_CFG_SCALAR) {
        ck_assert_msg(strcmp(a->text, b->text) == 0, "%s: %s: '%s' vs '%s'", where, path,
                      a->text, b->text);
        ck_assert_msg(a->quoted == b->quoted, "%s: %s: quoting differs", where, path);
    }
    for (const sm_cfg *x = a->head, *y = b->head; x; x = x->next, y = y->next) {
        if (a->kind == SM_CFG_MAP)
            ck_assert_msg(strcmp(x->key, y->key) == 0, "%s: %s: key '%s' vs '%s'", where, path,
                          x->key, y->key);
        assert_same_tree(x, y, where);
    }
}

static void round_trip(const sm_config *cfg, const sm_registry *reg, const char *where)
{
    char *yaml = NULL;
    size_t len = 0;
    ck_assert_int_eq(sm_config_to_yaml(cfg, &yaml, &len), 0);
    ck_assert_uint_eq(strlen(yaml), len);
    sm_diag *d = sm_diag_new();
    sm_config *back = NULL;
    int rc = sm_config_read_string(yaml, len, "emitted.yaml", NULL, 0, &back, d);
    ASSERT_OK(rc, d);
    assert_same_tree(sm_config_root(cfg), sm_config_root(back), where);
    /* the emitted config is valid and emits identically */
    ASSERT_OK(sm_config_validate(back, reg, d), d);
    char *again = NULL;
    ck_assert_int_eq(sm_config_to_yaml(back, &again, NULL), 0);
    ck_assert_str_eq(again, yaml);
    free(again);
    free(yaml);
    sm_config_free(back);
    sm_diag_free(d);
}

START_TEST(test_to_yaml_round_trip)
{
    static const char tricky[] =
        "model: {backbone: vit, depth: 12}\n"
        "pretrain_dataset: {data_path: \"with: colon # and hash\", image_ids: 'true'}\n"
        "callback: {ckpt_config: {prefix: \"multi\\nline \\u00e9\"}}\n"
        "context: {strategy_ckpt_save_file: './x', empty: [], nested: [[1, 2], {a: ~}]}\n";
    sm_registry *reg = fx_registry();
    sm_diag *d = sm_diag_new();
    sm_config *cfg = NULL;
    ASSERT_OK(load_string(minimal, NULL, 0, reg, &cfg, d), d);
    round_trip(cfg, reg, "minimal");
    sm_config_free(cfg);
    /* strings that need quoting; quoted scalars stay strings */
    ASSERT_OK(load_string(tricky, NULL, 0, reg, &cfg, d), d);
    round_trip(cfg, reg, "tricky");
    ck_assert_str_eq(sm_cfg_str(sm_config_root(cfg), "pretrain_dataset.image_ids"), "true");
    sm_config_free(cfg);
    sm_diag_free(d);
    sm_registry_free(reg);
}
END_TEST

/* ---- the shipped configs -------------------------------------------------------------- */

static void shipped_path(size_t i, char *buf, size_t n)
{
    snprintf(buf, n, "%s/%s", SM_TEST_CONFIGS, shipped[i]);
}

START_TEST(test_shipped_config_valid)
{
    char path[PATH_MAX];
    shipped_path((size_t)_i, path, sizeof path);
    sm_registry *reg = fx_registry();
    sm_diag *d = sm_diag_new();
    sm_config *cfg = NULL;
    ASSERT_OK(load(path, NULL, 0, reg, &cfg, d), d);
    ck_assert_uint_eq(sm_diag_count(d), 1); /* the ignored-keys warning */
    const sm_cfg *root = sm_config_root(cfg);
    bool pre = strncmp(shipped[_i], "pretrain", 8) == 0;
    ck_assert_str_eq(sm_cfg_str(root, "task"), pre ? "pretrain" : "finetune");
    ck_assert_int_eq(sm_cfg_int(root, "seed"), 2022); /* __base__ comes last */
    ck_assert_str_eq(sm_cfg_str(root, "arch"), "simmim");
    ck_assert_str_eq(sm_cfg_str(root, "optimizer.optim_name"), "AdamW");
    ck_assert_str_eq(sm_cfg_str(root, "lr_schedule.lr_type"), "warmup_cosine_decay_simmim");
    ck_assert_double_eq_tol(sm_cfg_float(root, "optimizer.eps"), 1e-8, 1e-20);
    ck_assert_double_eq(sm_cfg_float(root, "train_wrapper.clip_norm"), 5.0);
    ck_assert_int_eq(sm_cfg_int(root, "callback.ckpt_config.keep_checkpoint_max"), 1);
    ck_assert_str_eq(sm_cfg_str(root, "aicc_config.obs_path"),
                     "Input your obs path if code is running on modelarts else invalid.");
    if (pre) {
        ck_assert_str_eq(sm_cfg_str(root, "pretrain_dataset.data_type"), "custom");
        ck_assert_str_eq(sm_cfg_str(root, "pretrain_dataset.image_ids"), "train_ids.json");
        ck_assert_int_eq(sm_cfg_int(root, "train_config.batch_size"), 128);
    } else {
        ck_assert_str_eq(sm_cfg_str(root, "loss_type"), "soft_ce");
        /* RingMo's "BICUBIC", in the schema's spelling */
        ck_assert_str_eq(sm_cfg_str(root, "finetune_dataset.interpolation"), "bicubic");
        ck_assert_int_eq(sm_cfg_int(root, "finetune_dataset.eval_offset"), -1);
        bool nwpu = strstr(shipped[_i], "nwpu") != NULL;
        ck_assert_int_eq(sm_cfg_int(root, "train_config.num_classes"), nwpu ? 46 : 1000);
        ck_assert_int_eq(sm_cfg_int(root, "finetune_dataset.samples_num"), nwpu ? 25200 : 50000);
        ck_assert_str_eq(sm_cfg_str(root, "finetune_dataset.reader"),
                         nwpu ? "nwpu_resisc45" : "imagenet");
    }
    round_trip(cfg, reg, shipped[_i]);
    sm_config_free(cfg);
    sm_diag_free(d);
    sm_registry_free(reg);
}
END_TEST

/* Values per config (spec 11.3), checked against the merged tree. */
START_TEST(test_shipped_config_values)
{
    static const struct {
        const char *key;
        const char *want[6];
    } rows[] = {
        {"model.backbone", {"vit", "swin", "swin", "vit", "swin", "swin"}},
        {"train_config.epoch", {"200", "200", "100", "200", "200", "100"}},
        {"train_config.batch_size", {"128", "128", "128", "32", "32", "128"}},
        {"train_config.image_size", {"224", "192", "192", "224", "224", "224"}},
        {"lr_schedule.base_lr", {"0.0001", "0.0002", "0.0002", "0.00125", "0.00125", "0.00125"}},
        {"lr_schedule.min_lr", {"5e-7", "0.00001", "0.00001", "2.5e-7", "2.5e-7", "2.5e-7"}},
        {"lr_schedule.warmup_lr", {"5e-7", "0.000001", "0.000001", "2.5e-7", "2.5e-7", "2.5e-7"}},
        {"lr_schedule.warmup_epochs", {"20", "10", "10", "20", "20", "20"}},
        {"optimizer.layer_decay", {"1.0", "1.0", "1.0", "0.65", "0.65", "0.9"}},
        {"model.window_size", {NULL, "6", "6", NULL, "7", "7"}},
        {"model.drop_path_rate", {"0.1", "0.", "0.", "0.1", "0.1", "0.1"}},
        {"model.use_shared_rel_pos_bias", {"True", NULL, NULL, "False", NULL, NULL}},
        {"model.use_mean_pooling", {"False", NULL, NULL, "True", NULL, NULL}},
        {"callback.ckpt_config.prefix",
         {"pretrain-simmim-vit-base-p16", "pretrain-simmim-swin-base-p4-w6-192",
          "pretrain-simmim-swin-base-p4-w6-192", "finetune-simmim-vit-base-p16",
          "finetune-simmim-swin-base-p4-w7-224", "finetune-simmim-swin-base-p4-w7-224"}},
    };
    sm_registry *reg = fx_registry();
    for (size_t i = 0; i < 6; i++) {
        char path[PATH_MAX];
        shipped_path(i, path, sizeof path);
        sm_diag *d = sm_diag_new();
        sm_config *cfg = NULL;
        ASSERT_OK(load(path, NULL, 0, reg, &cfg, d), d);
        for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
            const char *got = sm_cfg_str(sm_config_root(cfg), rows[r].key);
            const char *want = rows[r].want[i];
            if (!want) continue; /* the component's default */
            double g, w; /* numbers compare by value: 0.0000005 is 5e-7 */
            bool same = got && (strcmp(got, want) == 0 ||
                                (sscanf(got, "%lf", &g) == 1 && sscanf(want, "%lf", &w) == 1 &&
                                 g == w));
            ck_assert_msg(same, "%s: %s = %s, want %s", shipped[i], rows[r].key,
                          got ? got : "(none)", want);
        }
        sm_config_free(cfg);
        sm_diag_free(d);
    }
    sm_registry_free(reg);
}
END_TEST

/* Without components, each shipped config fails only by naming the components it needs. */
START_TEST(test_shipped_configs_name_missing_plugins)
{
    sm_registry *reg = sm_registry_new(); /* built-ins only */
    for (size_t i = 0; i < 6; i++) {
        char path[PATH_MAX];
        shipped_path(i, path, sizeof path);
        sm_diag *d = sm_diag_new();
        sm_config *cfg = NULL;
        ck_assert_int_eq(load(path, NULL, 0, reg, &cfg, d), SM_ECONFIG);
        ck_assert_uint_eq(sm_diag_errors(d), 5);
        static const char *const kinds[] = {"unknown backbone '", "unknown optimizer 'AdamW'",
                                            "unknown scheduler 'warmup_cosine_decay_simmim'",
                                            "unknown dataset '", "unknown backend 'blis'"};
        for (size_t k = 0; k < 5; k++) {
            bool found = false;
            for (size_t j = 0; j < sm_diag_count(d); j++) {
                sm_severity sev;
                const sm_error *e = sm_diag_get(d, j, &sev);
                if (sev == SM_SEV_ERROR && strstr(e->text, kinds[k])) found = true;
            }
            char *t = diag_text(d, NULL);
            ck_assert_msg(found, "%s: no '%s' in\n%s", shipped[i], kinds[k], t);
            free(t);
        }
        sm_config_free(cfg);
        sm_diag_free(d);
    }
    sm_registry_free(reg);
}
END_TEST

static Suite *config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_base_merge_semantics);
    tcase_add_test(tc, test_overrides);
    tcase_add_test(tc, test_defaults_filled);
    tcase_add_test(tc, test_scalar_forms);
    tcase_add_test(tc, test_ignored_keys_warned_once);
    tcase_add_test(tc, test_to_yaml_round_trip);
    tcase_add_loop_test(tc, test_shipped_config_valid, 0, 6);
    tcase_add_test(tc, test_shipped_config_values);
    tcase_add_test(tc, test_shipped_configs_name_missing_plugins);
    suite_add_tcase(s, tc);
    TCase *te = tcase_create("errors");
    tcase_add_test(te, test_cases_exist);
    tcase_add_loop_test(te, test_invalid_case, 0, (int)n_cases);
    tcase_add_test(te, test_invalid_cases_deep);
    tcase_add_test(te, test_error_at_4000_byte_path);
    tcase_add_test(te, test_missing_main_file);
    suite_add_tcase(s, te);
    TCase *tl = tcase_create("limits");
    tcase_add_test(tl, test_oversize_file);
    suite_add_tcase(s, tl);
    return s;
}

int main(void)
{
    scan_cases();
    int rc = sm_test_run(config_suite());
    for (size_t i = 0; i < n_cases; i++) free(cases[i]);
    free(cases);
    return rc;
}
