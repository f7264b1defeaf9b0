/* tests/check_plugin.c - the dlopen loader against fixture plugins (tests/fixtures/plugins):
 * every refusal names the file and the reason with the exact status; refused plugins leave
 * nothing registered; permission, symlink, search order and shadowing rules. */
#include "testutil.h"

#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Path of a built fixture, and its resolved form (as messages show it). */
static const char *fixture(const char *stem)
{
    static char buf[4][PATH_MAX];
    static int slot;
    char *b = buf[slot++ % 4];
    char rel[256];
    snprintf(rel, sizeof rel, "fixtures/plugins/.libs/%s.so", stem);
    snprintf(b, PATH_MAX, "%s", sm_test_build(rel));
    return b;
}

static const char *real(const char *path)
{
    static char buf[4][PATH_MAX];
    static int slot;
    char *b = buf[slot++ % 4];
    ck_assert_msg(realpath(path, b) != NULL, "realpath %s", path);
    return b;
}

/* Copies fixture `stem` into dir under `name` with `mode`. */
static void copy_fixture(const char *stem, const char *dir, const char *name, mode_t mode)
{
    size_t len;
    char *data = sm_test_read_file(fixture(stem), &len);
    ck_assert_msg(data != NULL, "fixture %s not built", stem);
    char dst[PATH_MAX];
    snprintf(dst, sizeof dst, "%s/%s", dir, name);
    ck_assert_int_eq(sm_test_write_file(dst, data, len), 0);
    ck_assert_int_eq(chmod(dst, mode), 0);
    free(data);
}

static char *subdir(const char *parent, const char *name)
{
    char *p = malloc(PATH_MAX);
    snprintf(p, PATH_MAX, "%s/%s", parent, name);
    ck_assert_int_eq(mkdir(p, 0700), 0);
    return p;
}

/* Loads one fixture into a fresh registry; returns the status, the error in *e. */
static int load_one(const char *stem, sm_error *e, sm_registry **out)
{
    sm_registry *reg = sm_registry_new();
    sm_error_clear(e);
    int rc = sm_plugin_load(reg, fixture(stem), e);
    if (out)
        *out = reg;
    else
        sm_registry_free(reg);
    return rc;
}

#define ASSERT_HAS(text, part)                                                                 \
    ck_assert_msg(strstr((text), (part)) != NULL, "'%s' lacks '%s'", (text), (part))

START_TEST(test_good_plugin)
{
    sm_registry *reg;
    sm_error e;
    ck_assert_int_eq(load_one("sm_fx_good", &e, &reg), 0);
    ck_assert_int_eq(e.code, 0);
    const sm_component *c = sm_registry_find(reg, SM_KIND_OPTIMIZER, "fx_opt");
    ck_assert_ptr_nonnull(c);
    ck_assert_str_eq(sm_registry_source(reg, c), real(fixture("sm_fx_good")));
    ck_assert_str_eq(sm_registry_plugin_version(reg, c), "1.2.3");
    ck_assert_uint_eq(sm_registry_plugin_count(reg), 1);
    ck_assert_str_eq(sm_registry_plugin_path(reg, 0), real(fixture("sm_fx_good")));
    ck_assert_str_eq(c->keys[0].name, "momentum");
    sm_registry_free(reg); /* dlcloses: nothing of the plugin may be used after this */
}
END_TEST

START_TEST(test_abi_major)
{
    sm_registry *reg;
    sm_error e;
    ck_assert_int_eq(load_one("sm_fx_abi_major", &e, &reg), SM_EABI);
    ck_assert_str_eq(e.file, sm_test_err_file(real(fixture("sm_fx_abi_major"))));
    ck_assert_str_eq(e.text, "plugin built for ABI 2.0, this simmim provides ABI 1.2 "
                             "(major versions differ)");
    ck_assert_uint_eq(sm_registry_plugin_count(reg), 0);
    sm_registry_free(reg);
}
END_TEST

START_TEST(test_abi_newer_minor)
{
    sm_error e;
    ck_assert_int_eq(load_one("sm_fx_abi_minor", &e, NULL), SM_EABI);
    ck_assert_str_eq(e.text, "plugin built for ABI 1.3, this simmim provides ABI 1.2 "
                             "(plugin needs a newer simmim)");
}
END_TEST

START_TEST(test_missing_entry_and_descriptor)
{
    sm_error e;
    ck_assert_int_eq(load_one("sm_fx_no_entry", &e, NULL), SM_EPLUGIN);
    ck_assert_str_eq(e.file, sm_test_err_file(real(fixture("sm_fx_no_entry"))));
    ck_assert_str_eq(e.text, "not a simmim plugin: no entry symbol 'simmim_plugin_describe'");
    ck_assert_int_eq(load_one("sm_fx_null_desc", &e, NULL), SM_EPLUGIN);
    ck_assert_str_eq(e.text, "plugin entry 'simmim_plugin_describe' returned no descriptor");
    ck_assert_int_eq(load_one("sm_fx_no_register", &e, NULL), SM_EPLUGIN);
    ck_assert_str_eq(e.text, "plugin descriptor has no register_components");
}
END_TEST

START_TEST(test_unresolved_symbol)
{
    sm_error e;
    ck_assert_int_eq(load_one("sm_fx_unresolved", &e, NULL), SM_EPLUGIN);
    ck_assert_str_eq(e.file, sm_test_err_file(real(fixture("sm_fx_unresolved"))));
    ASSERT_HAS(e.text, "cannot load plugin: ");
    ASSERT_HAS(e.text, "sm_fixture_symbol_that_does_not_exist");
    ASSERT_HAS(e.text, "(check its dependencies with ldd)");
}
END_TEST

START_TEST(test_duplicate_names_both_files)
{
    sm_registry *reg = sm_registry_new();
    sm_error e;
    sm_error_clear(&e);
    ck_assert_int_eq(sm_plugin_load(reg, fixture("sm_fx_dup_a"), &e), 0);
    ck_assert_int_eq(sm_plugin_load(reg, fixture("sm_fx_dup_b"), &e), SM_EEXIST);
    char want[1200];
    snprintf(want, sizeof want,
             "plugin 'fx_dup' failed to register its components: optimizer 'fx_dup' is "
             "registered twice: by %s and by %s",
             real(fixture("sm_fx_dup_a")), real(fixture("sm_fx_dup_b")));
    ck_assert_str_eq(e.text, want);
    ck_assert_str_eq(e.file, sm_test_err_file(real(fixture("sm_fx_dup_b"))));
    const sm_component *c = sm_registry_find(reg, SM_KIND_OPTIMIZER, "fx_dup");
    ck_assert_str_eq(sm_registry_source(reg, c), real(fixture("sm_fx_dup_a")));
    ck_assert_uint_eq(sm_registry_plugin_count(reg), 1);
    sm_registry_free(reg);
}
END_TEST

START_TEST(test_failed_registration_rolled_back)
{
    sm_registry *reg;
    sm_error e;
    ck_assert_int_eq(load_one("sm_fx_fail", &e, &reg), SM_EUNSUPPORTED);
    ck_assert_str_eq(e.text, "plugin 'fx_fail' failed to register its components: fixture "
                             "refuses to finish registering");
    ck_assert_ptr_null(sm_registry_find(reg, SM_KIND_SCHEDULER, "fx_partial"));
    ck_assert_uint_eq(sm_registry_count(reg, SM_KIND_SCHEDULER), 0);
    ck_assert_uint_eq(sm_registry_plugin_count(reg), 0);
    /* the registry still works after a rollback */
    ck_assert_int_eq(sm_plugin_load(reg, fixture("sm_fx_good"), &e), 0);
    ck_assert_uint_eq(sm_registry_plugin_count(reg), 1);
    sm_registry_free(reg);
}
END_TEST

START_TEST(test_ignored_add_failure_refused)
{
    sm_registry *reg;
    sm_error e;
    ck_assert_int_eq(load_one("sm_fx_ignore", &e, &reg), SM_EINVAL);
    ck_assert_str_eq(e.text, "plugin 'fx_ignore' failed to register its components: scheduler "
                             "'fx_bad': bad config key table: key 'steps': default 'many': "
                             "expected an integer, got 'many'");
    ck_assert_ptr_null(sm_registry_find(reg, SM_KIND_SCHEDULER, "fx_ok"));
    sm_registry_free(reg);
}
END_TEST

START_TEST(test_writable_file_refused)
{
    char *dir = sm_test_tmpdir();
    copy_fixture("sm_fx_good", dir, "sm_fx_gw.so", 0664);
    copy_fixture("sm_fx_good", dir, "sm_fx_ww.so", 0646);
    sm_registry *reg = sm_registry_new();
    sm_error e;
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/sm_fx_gw.so", dir);
    sm_error_clear(&e);
    ck_assert_int_eq(sm_plugin_load(reg, path, &e), SM_EPERM);
    ck_assert_str_eq(e.file, sm_test_err_file(real(path)));
    ck_assert_str_eq(e.text, "refusing plugin: file is group-writable (mode 0664); run chmod "
                             "go-w on it");
    snprintf(path, sizeof path, "%s/sm_fx_ww.so", dir);
    sm_error_clear(&e);
    ck_assert_int_eq(sm_plugin_load(reg, path, &e), SM_EPERM);
    ASSERT_HAS(e.text, "world-writable (mode 0646)");
    /* through a directory scan: both refused, reported, nothing registered */
    sm_diag *d = sm_diag_new();
    ck_assert_int_eq(sm_plugin_load_dir(reg, dir, d), SM_EPERM);
    ck_assert_uint_eq(sm_diag_errors(d), 2);
    ck_assert_uint_eq(sm_registry_plugin_count(reg), 0);
    ck_assert_ptr_null(sm_registry_find(reg, SM_KIND_OPTIMIZER, "fx_opt"));
    sm_diag_free(d);
    sm_registry_free(reg);
    sm_test_rmtree(dir);
    free(dir);
}
END_TEST

START_TEST(test_writable_directory_refused)
{
    char *dir = sm_test_tmpdir();
    copy_fixture("sm_fx_good", dir, "sm_fx_good.so", 0755);
    ck_assert_int_eq(chmod(dir, 0770), 0);
    sm_registry *reg = sm_registry_new();
    sm_diag *d = sm_diag_new();
    ck_assert_int_eq(sm_plugin_load_dir(reg, dir, d), SM_EPERM);
    ck_assert_uint_eq(sm_diag_count(d), 1);
    const sm_error *e = sm_diag_get(d, 0, NULL);
    ck_assert_str_eq(e->file, sm_test_err_file(real(dir)));
    ck_assert_str_eq(e->text, "refusing plugin directory: it is group-writable (mode 0770)");
    ck_assert_uint_eq(sm_registry_plugin_count(reg), 0);
    sm_diag_free(d);
    sm_registry_free(reg);
    sm_test_rmtree(dir);
    free(dir);
}
END_TEST

START_TEST(test_symlinks)
{
    char *dir = sm_test_tmpdir();
    /* inside: sm_fx_in.so -> lib/good.so (not itself a plugin name) is fine */
    char *lib = subdir(dir, "lib");
    copy_fixture("sm_fx_good", lib, "good.so", 0755);
    char link[PATH_MAX];
    snprintf(link, sizeof link, "%s/sm_fx_in.so", dir);
    ck_assert_int_eq(symlink("lib/good.so", link), 0);
    /* outside: sm_fx_out.so -> the build tree's fixture */
    snprintf(link, sizeof link, "%s/sm_fx_out.so", dir);
    ck_assert_int_eq(symlink(real(fixture("sm_fx_dup_a")), link), 0);
    sm_registry *reg = sm_registry_new();
    sm_diag *d = sm_diag_new();
    ck_assert_int_eq(sm_plugin_load_dir(reg, dir, d), SM_EPERM);
    ck_assert_uint_eq(sm_diag_count(d), 1);
    const sm_error *e = sm_diag_get(d, 0, NULL);
    char want[1200];
    snprintf(want, sizeof want, "refusing plugin: it is a symlink to %s, outside its directory",
             real(fixture("sm_fx_dup_a")));
    ck_assert_str_eq(e->text, want);
    ASSERT_HAS(e->file, "sm_fx_out.so");
    ck_assert_ptr_null(sm_registry_find(reg, SM_KIND_OPTIMIZER, "fx_dup"));
    const sm_component *c = sm_registry_find(reg, SM_KIND_OPTIMIZER, "fx_opt");
    ck_assert_ptr_nonnull(c);
    ASSERT_HAS(sm_registry_source(reg, c), "/lib/good.so");
    sm_diag_free(d);
    sm_registry_free(reg);
    sm_test_rmtree(dir);
    free(dir);
    free(lib);
}
END_TEST

/* --plugin-dir, then the config's dirs, then SIMMIM_PLUGIN_PATH: the first file of a name
 * wins and later files of that name are not even opened. */
START_TEST(test_search_order_and_shadowing)
{
    char *root = sm_test_tmpdir();
    char *a = subdir(root, "a"), *b = subdir(root, "b"), *c = subdir(root, "c");
    copy_fixture("sm_fx_good", a, "sm_fx_good.so", 0755);
    copy_fixture("sm_fx_good", b, "sm_fx_good.so", 0755);
    copy_fixture("sm_fx_good", c, "sm_fx_good.so", 0755);
    copy_fixture("sm_fx_abi_major", c, "sm_fx_zz.so", 0755); /* loaded: a different name */
    setenv("SIMMIM_PLUGIN_PATH", c, 1);
    struct {
        const char *cli, *cfg, *want;
    } cases[] = {{a, b, a}, {NULL, b, b}, {NULL, NULL, c}};
    for (size_t i = 0; i < 3; i++) {
        sm_registry *reg = sm_registry_new();
        sm_diag *d = sm_diag_new();
        const char *cli[1] = {cases[i].cli}, *cfg[1] = {cases[i].cfg};
        int rc = sm_plugin_load_path(reg, cli, cases[i].cli ? 1 : 0, cfg, cases[i].cfg ? 1 : 0, d);
        ck_assert_int_ne(rc, 0); /* c/sm_fx_zz.so, reported and skipped */
        char want[PATH_MAX];
        snprintf(want, sizeof want, "%s/sm_fx_good.so", real(cases[i].want));
        const sm_component *comp = sm_registry_find(reg, SM_KIND_OPTIMIZER, "fx_opt");
        ck_assert_ptr_nonnull(comp);
        ck_assert_str_eq(sm_registry_source(reg, comp), want);
        size_t good = 0;
        for (size_t p = 0; p < sm_registry_plugin_count(reg); p++)
            good += strstr(sm_registry_plugin_path(reg, p), "/sm_fx_good.so") != NULL;
        ck_assert_uint_eq(good, 1);
        /* (the installed directory is searched too: only count what is ours) */
        size_t ours = 0;
        for (size_t k = 0; k < sm_diag_count(d); k++) {
            const sm_error *e = sm_diag_get(d, k, NULL);
            if (strncmp(e->file, real(root), strlen(real(root))) != 0) continue;
            ours++;
            ck_assert_int_eq(e->code, SM_EABI);
            ASSERT_HAS(e->file, "/c/sm_fx_zz.so");
        }
        ck_assert_uint_eq(ours, 1);
        sm_diag_free(d);
        sm_registry_free(reg);
    }
    unsetenv("SIMMIM_PLUGIN_PATH");
    /* within a directory files load in name order: a registers first, b is the duplicate */
    char *dup = subdir(root, "dup");
    copy_fixture("sm_fx_dup_b", dup, "sm_fx_dup_b.so", 0755);
    copy_fixture("sm_fx_dup_a", dup, "sm_fx_dup_a.so", 0755);
    sm_registry *reg = sm_registry_new();
    sm_diag *d = sm_diag_new();
    ck_assert_int_eq(sm_plugin_load_dir(reg, dup, d), SM_EEXIST);
    ck_assert_uint_eq(sm_diag_count(d), 1);
    ASSERT_HAS(sm_diag_get(d, 0, NULL)->file, "/dup/sm_fx_dup_b.so");
    ASSERT_HAS(sm_diag_get(d, 0, NULL)->text, "/dup/sm_fx_dup_a.so and by ");
    /* a missing directory is not an error */
    ck_assert_int_eq(sm_plugin_load_dir(reg, "/nonexistent/simmim/plugins", d), 0);
    ck_assert_uint_eq(sm_diag_count(d), 1);
    sm_diag_free(d);
    sm_registry_free(reg);
    sm_test_rmtree(root);
    free(root);
    free(a);
    free(b);
    free(c);
    free(dup);
}
END_TEST

START_TEST(test_missing_file)
{
    sm_registry *reg = sm_registry_new();
    sm_error e;
    sm_error_clear(&e);
    ck_assert_int_eq(sm_plugin_load(reg, "/nonexistent/sm_x.so", &e), SM_EPLUGIN);
    ck_assert_str_eq(e.file, "/nonexistent/sm_x.so");
    ck_assert_str_eq(e.text, "cannot open plugin: No such file or directory");
    ck_assert_str_ne(sm_plugin_default_dir(), "");
    sm_registry_free(reg);
}
END_TEST

static Suite *plugin_suite(void)
{
    Suite *s = suite_create("plugin");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_good_plugin);
    tcase_add_test(tc, test_search_order_and_shadowing);
    suite_add_tcase(s, tc);
    TCase *te = tcase_create("errors");
    tcase_add_test(te, test_abi_major);
    tcase_add_test(te, test_abi_newer_minor);
    tcase_add_test(te, test_missing_entry_and_descriptor);
    tcase_add_test(te, test_unresolved_symbol);
    tcase_add_test(te, test_duplicate_names_both_files);
    tcase_add_test(te, test_failed_registration_rolled_back);
    tcase_add_test(te, test_ignored_add_failure_refused);
    tcase_add_test(te, test_writable_file_refused);
    tcase_add_test(te, test_writable_directory_refused);
    tcase_add_test(te, test_symlinks);
    tcase_add_test(te, test_missing_file);
    suite_add_tcase(s, te);
    return s;
}

int main(void) { return sm_test_run(plugin_suite()); }
