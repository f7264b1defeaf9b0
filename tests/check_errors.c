/* tests/check_errors.c - sm_error (first error wins, formatting, long paths, key paths and
 * messages shortened visibly), the status tables, the diagnostics list and its sort order, the
 * log callback (long messages whole). */
#include "testutil.h"

#include <string.h>

static const char *fmt(const sm_error *e)
{
    static char buf[SM_ERROR_LINE_MAX];
    sm_error_format(e, buf, sizeof buf);
    return buf;
}

START_TEST(test_first_error_wins)
{
    sm_error e;
    sm_error_clear(&e);
    ck_assert_int_eq(e.code, 0);
    ck_assert_int_eq(sm_error_set(&e, SM_ECONFIG, "a.yaml", 3, 7, "model.depth", "bad %d", 1),
                     SM_ECONFIG);
    ck_assert_int_eq(sm_error_set(&e, SM_EIO, "b.yaml", 9, 9, "x", "second"), SM_EIO);
    ck_assert_int_eq(e.code, SM_ECONFIG);
    ck_assert_str_eq(e.file, "a.yaml");
    ck_assert_int_eq(e.line, 3);
    ck_assert_int_eq(e.column, 7);
    ck_assert_str_eq(e.path, "model.depth");
    ck_assert_str_eq(e.text, "bad 1");
    sm_error_clear(&e);
    ck_assert_int_eq(e.code, 0);
    ck_assert_str_eq(e.file, "");
    sm_error_set(&e, SM_EIO, NULL, -1, -5, NULL, NULL);
    ck_assert_int_eq(e.line, 0);
    ck_assert_int_eq(e.column, 0);
    ck_assert_str_eq(e.text, "input/output error"); /* no format: the status text */
    /* NULL record: only the code comes back */
    ck_assert_int_eq(sm_error_set(NULL, SM_ENOMEM, NULL, 0, 0, NULL, "x"), SM_ENOMEM);
    sm_error_clear(NULL);
}
END_TEST

START_TEST(test_format_variants)
{
    sm_error e;
    sm_error_clear(&e);
    sm_error_set(&e, SM_ECONFIG, "c.yaml", 12, 5, "optimizer.optim_name", "unknown");
    ck_assert_str_eq(fmt(&e), "c.yaml:12:5: optimizer.optim_name: unknown");
    sm_error_clear(&e);
    sm_error_set(&e, SM_ECONFIG, "c.yaml", 12, 0, NULL, "line only");
    ck_assert_str_eq(fmt(&e), "c.yaml:12: line only");
    sm_error_clear(&e);
    sm_error_set(&e, SM_ECONFIG, "--options", 0, 0, "train_config.batch_size", "expected");
    ck_assert_str_eq(fmt(&e), "--options: train_config.batch_size: expected");
    sm_error_clear(&e);
    sm_error_set(&e, SM_EPLUGIN, NULL, 0, 0, NULL, "just text");
    ck_assert_str_eq(fmt(&e), "just text");
    sm_error_clear(&e);
    sm_error_set(&e, SM_EPLUGIN, NULL, 0, 0, "key", "no file");
    ck_assert_str_eq(fmt(&e), "key: no file");
    /* snprintf semantics: the length needed is returned even when the buffer is short */
    sm_error_clear(&e);
    sm_error_set(&e, SM_ECONFIG, "f", 1, 2, "k", "message");
    char small[8];
    size_t need = sm_error_format(&e, small, sizeof small);
    ck_assert_uint_eq(need, strlen("f:1:2: k: message"));
    ck_assert_str_eq(small, "f:1:2: ");
}
END_TEST

START_TEST(test_path_truncated_from_the_left)
{
    char longpath[600];
    memset(longpath, 'd', sizeof longpath);
    memcpy(longpath, "/start/", 7);
    strcpy(longpath + 580, "/tail/end.yaml");
    sm_error e;
    sm_error_clear(&e);
    sm_error_set(&e, SM_EIO, longpath, 1, 1, NULL, "x");
    size_t len = strlen(e.file);
    ck_assert_uint_eq(len, sizeof e.file - 1);
    ck_assert(strncmp(e.file, "...", 3) == 0);
    ck_assert_str_eq(e.file + len - strlen("/tail/end.yaml"), "/tail/end.yaml");
}
END_TEST

/* A string of n bytes: `head`, then x's, then `tail`. */
static char *long_string(size_t n, const char *head, const char *tail)
{
    char *s = malloc(n + 1);
    memset(s, 'x', n);
    memcpy(s, head, strlen(head));
    memcpy(s + n - strlen(tail), tail, strlen(tail));
    s[n] = '\0';
    return s;
}

/* Over-long key paths and messages keep their head and tail around a visible " ... ". */
START_TEST(test_long_text_shortened_visibly)
{
    char *key = long_string(300, "train_config.", ".beta1");
    char *path = long_string(4000, "/deep/", "/config.yaml");
    sm_error e;
    sm_error_clear(&e);
    sm_error_set(&e, SM_ECONFIG, path, 3, 4, key, "cannot read '%s': %s", path, "no such file");
    ck_assert_uint_eq(strlen(e.path), sizeof e.path - 1);
    ck_assert(strncmp(e.path, "train_config.", 13) == 0);
    ck_assert_ptr_nonnull(strstr(e.path, "x ... x"));
    ck_assert_str_eq(e.path + strlen(e.path) - 6, ".beta1");
    ck_assert_uint_eq(strlen(e.text), sizeof e.text - 1);
    ck_assert(strncmp(e.text, "cannot read '/deep/", 19) == 0);
    ck_assert_ptr_nonnull(strstr(e.text, "x ... x"));
    ck_assert_str_eq(e.text + strlen(e.text) - 27, "/config.yaml': no such file");
    ck_assert(strncmp(e.file, "...", 3) == 0);
    ck_assert_str_eq(e.file + strlen(e.file) - 12, "/config.yaml");
    /* what fits stays whole; a cut never splits a UTF-8 character */
    sm_error_clear(&e);
    sm_error_set(&e, SM_ECONFIG, NULL, 0, 0, "a.b", "%s", "short");
    ck_assert_str_eq(fmt(&e), "a.b: short");
    char *utf = malloc(3001);
    for (int i = 0; i < 1000; i++) memcpy(utf + 3 * i, "\xe2\x82\xac", 3); /* the euro sign */
    utf[3000] = '\0';
    sm_error_clear(&e);
    sm_error_set(&e, SM_ECONFIG, NULL, 0, 0, utf, "%s", utf);
    for (const char *t = e.text; *t; t++) {
        if (*t == ' ' || *t == '.') continue;
        ck_assert_msg(strncmp(t, "\xe2\x82\xac", 3) == 0, "split character at %td", t - e.text);
        t += 2;
    }
    ck_assert_ptr_nonnull(strstr(e.text, " ... "));
    ck_assert_ptr_nonnull(strstr(e.path, " ... "));
    free(utf);
    free(key);
    free(path);
}
END_TEST

static char *long_logged;
static void capture_long(sm_log_level level, const char *msg, void *user)
{
    (void)level;
    (void)user;
    free(long_logged);
    long_logged = strdup(msg);
}

/* The log has no fixed limit: a message naming a 4000-byte path arrives whole. */
START_TEST(test_long_log_message_whole)
{
    char *path = long_string(4000, "/deep/", "/end.jpg");
    sm_log_set(capture_long, NULL);
    sm_log(SM_LOG_WARN, "skipping bad image: %s: %s", path, "truncated");
    sm_log_set(NULL, NULL);
    ck_assert_ptr_nonnull(long_logged);
    ck_assert_uint_eq(strlen(long_logged), strlen("skipping bad image: ") + 4000 + 11);
    ck_assert(strncmp(long_logged + 20, path, 4000) == 0);
    free(long_logged);
    long_logged = NULL;
    free(path);
}
END_TEST

START_TEST(test_status_tables)
{
    ck_assert_str_eq(sm_status_str(SM_OK), "success");
    ck_assert_str_eq(sm_status_str(SM_ENOMEM), "out of memory");
    ck_assert_str_eq(sm_status_str(SM_EABI), "plugin ABI mismatch");
    ck_assert_str_eq(sm_status_name(SM_ECONFIG), "ECONFIG");
    ck_assert_str_eq(sm_status_name(SM_EINTERNAL), "EINTERNAL");
    ck_assert_str_eq(sm_status_str(-999), "unknown status");
    ck_assert_str_eq(sm_status_name(42), "EUNKNOWN");
    /* every code from 0 down to -(COUNT-1) has a distinct name and text */
    for (int a = 0; a > -SM_STATUS_COUNT; a--) {
        ck_assert_str_ne(sm_status_str(a), "unknown status");
        for (int b = a - 1; b > -SM_STATUS_COUNT; b--) {
            ck_assert_str_ne(sm_status_name(a), sm_status_name(b));
            ck_assert_str_ne(sm_status_str(a), sm_status_str(b));
        }
    }
    ck_assert_str_eq(sm_status_str(-SM_STATUS_COUNT), "unknown status");
}
END_TEST

START_TEST(test_diag_sort_and_counts)
{
    sm_diag *d = sm_diag_new();
    ck_assert_ptr_nonnull(d);
    sm_diag_addf(d, SM_SEV_ERROR, SM_ECONFIG, "b.yaml", 2, 1, "k", "b2");
    sm_diag_addf(d, SM_SEV_ERROR, SM_ECONFIG, "a.yaml", 10, 3, "k", "a10");
    sm_diag_addf(d, SM_SEV_WARNING, 0, "a.yaml", 0, 0, NULL, "warn");
    sm_diag_addf(d, SM_SEV_ERROR, SM_ECONFIG, "a.yaml", 2, 9, "k", "a2c9");
    sm_diag_addf(d, SM_SEV_ERROR, SM_ECONFIG, "a.yaml", 2, 4, "k", "a2c4-first");
    sm_diag_addf(d, SM_SEV_ERROR, SM_ECONFIG, "a.yaml", 2, 4, "k", "a2c4-second");
    ck_assert_uint_eq(sm_diag_count(d), 6);
    ck_assert_uint_eq(sm_diag_errors(d), 5);
    sm_diag_sort(d);
    static const char *const want[] = {"warn", "a2c4-first", "a2c4-second", "a2c9", "a10", "b2"};
    for (size_t i = 0; i < 6; i++) {
        sm_severity sev;
        const sm_error *e = sm_diag_get(d, i, &sev);
        ck_assert_str_eq(e->text, want[i]);
        ck_assert_int_eq(sev, i == 0 ? SM_SEV_WARNING : SM_SEV_ERROR);
    }
    ck_assert_ptr_null(sm_diag_get(d, 6, NULL));
    sm_error e;
    sm_error_clear(&e);
    sm_error_set(&e, SM_EIO, "z", 1, 1, NULL, "copied");
    ck_assert_int_eq(sm_diag_add(d, SM_SEV_NOTE, &e), 0);
    ck_assert_str_eq(sm_diag_get(d, 6, NULL)->text, "copied");
    sm_diag_clear(d);
    ck_assert_uint_eq(sm_diag_count(d), 0);
    sm_diag_free(d);
    sm_diag_free(NULL);
    ck_assert_uint_eq(sm_diag_count(NULL), 0);
}
END_TEST

static char logged[256];
static sm_log_level logged_level;
static void capture(sm_log_level level, const char *msg, void *user)
{
    *(int *)user += 1;
    logged_level = level;
    snprintf(logged, sizeof logged, "%s", msg);
}

START_TEST(test_log_callback_and_level)
{
    int calls = 0;
    sm_log_set(capture, &calls);
    sm_log_set_level(SM_LOG_WARN);
    sm_log(SM_LOG_INFO, "dropped");
    ck_assert_int_eq(calls, 0);
    sm_log(SM_LOG_ERROR, "kept %d\n\n", 7);
    ck_assert_int_eq(calls, 1);
    ck_assert_str_eq(logged, "kept 7"); /* trailing newlines removed */
    ck_assert_int_eq(logged_level, SM_LOG_ERROR);
    ck_assert_int_eq(sm_log_get_level(), SM_LOG_WARN);
    ck_assert_str_eq(sm_log_level_name(SM_LOG_WARN), "warning");
    sm_log_set(NULL, NULL);
    sm_log_set_level(SM_LOG_INFO);
}
END_TEST

static Suite *errors_suite(void)
{
    Suite *s = suite_create("errors");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_first_error_wins);
    tcase_add_test(tc, test_format_variants);
    tcase_add_test(tc, test_path_truncated_from_the_left);
    tcase_add_test(tc, test_long_text_shortened_visibly);
    tcase_add_test(tc, test_long_log_message_whole);
    tcase_add_test(tc, test_status_tables);
    tcase_add_test(tc, test_diag_sort_and_counts);
    tcase_add_test(tc, test_log_callback_and_level);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return sm_test_run(errors_suite()); }
