/* tests/testutil.c - helpers shared by the Check programs. */
#include "testutil.h"

#include <errno.h>
#include <math.h>
#include <string.h>
#include <unistd.h>

static const char *sm__join(const char *env, const char *fallback, const char *rel)
{
    static char bufs[8][4096];
    static int slot;
    char *b = bufs[slot++ % 8];
    const char *root = getenv(env);
    snprintf(b, 4096, "%s/%s", root ? root : fallback, rel);
    return b;
}

const char *sm_test_src(const char *rel) { return sm__join("SM_TEST_SRCDIR", ".", rel); }
const char *sm_test_build(const char *rel) { return sm__join("SM_TEST_BUILDDIR", ".", rel); }

const char *sm_test_err_file(const char *path)
{
    static char buf[4][sizeof((sm_error *)0)->file];
    static int slot;
    char *b = buf[slot++ % 4];
    size_t n = sizeof buf[0], len = strlen(path);
    if (len < n)
        memcpy(b, path, len + 1);
    else
        snprintf(b, n, "...%s", path + len - (n - 4));
    return b;
}

char *sm_test_tmpdir(void)
{
    const char *base = getenv("TMPDIR");
    char tmpl[4096];
    snprintf(tmpl, sizeof tmpl, "%s/simmim-test-XXXXXX", base ? base : "/tmp");
    char *d = mkdtemp(tmpl);
    ck_assert_msg(d != NULL, "mkdtemp: %s", strerror(errno));
    return strdup(d);
}

void sm_test_rmtree(const char *path)
{
    if (!path || !*path || strcmp(path, "/") == 0) return;
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", path);
}

int sm_test_write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = fwrite(data, 1, len, f);
    int rc = fclose(f);
    return (w == len && rc == 0) ? 0 : -1;
}

char *sm_test_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap + 1);
    size_t r;
    while (buf && (r = fread(buf + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) {
            char *nb = realloc(buf, 2 * cap + 1);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    fclose(f);
    if (!buf) return NULL;
    buf[n] = '\0';
    if (len) *len = n;
    return buf;
}

void sm_test_close(const char *what, const float *a, const float *b, int64_t n, double atol,
                   double rtol)
{
    int64_t bad = 0;
    double max_abs = 0, max_rel = 0;
    char first[1024] = "";
    size_t used = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        double rel = d / (fabs((double)b[i]) + 1e-30);
        if (d > max_abs) max_abs = d;
        if (rel > max_rel) max_rel = rel;
        if (!(d <= atol + rtol * fabs((double)b[i]))) {
            if (bad < 5 && used < sizeof first)
                used += (size_t)snprintf(first + used, sizeof first - used,
                                         " [%lld] %.9g vs %.9g;", (long long)i, a[i], b[i]);
            bad++;
        }
    }
    ck_assert_msg(bad == 0, "%s: %lld of %lld elements differ (max abs %.3g, max rel %.3g):%s",
                  what, (long long)bad, (long long)n, max_abs, max_rel, first);
}

double sm_test_rel_err(const float *a, const float *b, int64_t n)
{
    double md = 0, mr = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (d > md || isnan(d)) md = isnan(d) ? INFINITY : d;
        if (fabs((double)b[i]) > mr) mr = fabs((double)b[i]);
    }
    return mr > 0 ? md / mr : md;
}

sm_config *sm_test_config(const sm_registry *reg, const char *yaml, const char *path,
                          bool model_only)
{
    sm_diag *d = sm_diag_new();
    sm_config *cfg = NULL;
    int rc;
    if (path) {
        ck_assert_int_eq(sm_test_write_file(path, yaml, strlen(yaml)), 0);
        rc = sm_config_read(path, NULL, 0, &cfg, d);
    } else {
        rc = sm_config_read_string(yaml, strlen(yaml), "test.yaml", NULL, 0, &cfg, d);
    }
    if (!rc) rc = model_only ? sm_config_validate_model(cfg, reg, d) : sm_config_validate(cfg, reg, d);
    if (rc) {
        char line[SM_ERROR_LINE_MAX] = "";
        for (size_t i = 0; i < sm_diag_count(d); i++) {
            sm_severity sev;
            const sm_error *e = sm_diag_get(d, i, &sev);
            if (sev == SM_SEV_ERROR) {
                sm_error_format(e, line, sizeof line);
                break;
            }
        }
        ck_abort_msg("config rejected: %s\n%s", line, yaml);
    }
    sm_diag_free(d);
    return cfg;
}

sm_registry *sm_test_registry(void)
{
    sm_registry *reg = sm_registry_new();
    ck_assert_ptr_nonnull(reg);
    sm_diag *d = sm_diag_new();
    sm_plugin_load_path(reg, NULL, 0, NULL, 0, d);
    sm_diag_free(d);
    ck_assert_msg(sm_registry_find(reg, SM_KIND_BACKBONE, "vit") != NULL,
                  "the vit plugin was not found on SIMMIM_PLUGIN_PATH");
    ck_assert_msg(sm_registry_find(reg, SM_KIND_BACKBONE, "swin") != NULL,
                  "the swin plugin was not found on SIMMIM_PLUGIN_PATH");
    return reg;
}

int sm_test_run(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
