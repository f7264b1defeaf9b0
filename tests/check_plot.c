/* tests/check_plot.c - `simmimctl plot` end to end on two run directories written here (a
 * pretraining run and a fine-tuning run with evaluations, known values): the PNG's size (its
 * panels), that it is drawn (not blank), each run's colour inside the plot boxes and only the
 * fine-tuning run's in the top-1 panel; SVG and PDF; a run in progress (a line cut short is
 * skipped quietly); a malformed line (warning file:line, the rest drawn); and the failures: a
 * missing run, a file with no record, an unwritable output, usage errors - each with its exit
 * code, and nothing written or left behind (no output, no temporary file, an older output kept). */
#include "testutil.h"

#include <dirent.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "simmim/image.h"

/* run colours (core/cli/plot.c: Tableau 10): run 1 blue, run 2 orange */
static const int blue[3] = {0x4E, 0x79, 0xA7}, orange[3] = {0xF2, 0x8E, 0x2B};
/* layout (core/cli/plot.c): a panel's slot, its box's margins in it, the x label below all */
enum { PANEL = 250, PANEL_TOP = 34, PANEL_BOTTOM = 26, XLABEL = 24 };

static char *root;

/* Runs simmimctl plot ARGS in root, after the shell commands pre; returns the exit code, with
 * stdout and stderr in *out. */
static int run_after(const char *pre, const char *args, char **out)
{
    char cmd[12000], log[4300];
    snprintf(log, sizeof log, "%s/../plot-out-%ld.txt", root, (long)getpid());
    snprintf(cmd, sizeof cmd, "cd '%s' && %s '%s' plot %s >'%s' 2>&1", root, pre,
             getenv("SIMMIMCTL"), args, log);
    int st = system(cmd);
    *out = sm_test_read_file(log, NULL);
    ck_assert_ptr_nonnull(*out);
    unlink(log);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int run(const char *args, char **out) { return run_after("", args, out); }

static void make_dir(const char *rel)
{
    char p[4300];
    snprintf(p, sizeof p, "%s/%s", root, rel);
    ck_assert_int_eq(mkdir(p, 0755), 0);
}

static void write_text(const char *rel, const char *text)
{
    char p[4300];
    snprintf(p, sizeof p, "%s/%s", root, rel);
    ck_assert_int_eq(sm_test_write_file(p, text, strlen(text)), 0);
}

/* A run's metrics.jsonl: `epochs` epochs of `spe` steps, loss falling from loss0, a warm-up
 * and cosine learning rate; with evals, an eval record after each epoch. */
static void write_run(const char *dir, int epochs, int spe, double loss0, double lr0, bool evals)
{
    make_dir(dir);
    char p[4300];
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    int step = 0;
    for (int e = 0; e < epochs; e++) {
        double sum = 0;
        for (int b = 0; b < spe; b++, step++) {
            double t = (double)step / (epochs * spe), loss = loss0 * (1 - 0.5 * t);
            double lr = lr0 * fmin(1, (step + 1) / 4.0) * 0.5 * (1 + cos(M_PI * t));
            sum += loss;
            len += (size_t)snprintf(buf + len, cap - len,
                                    "{\"event\":\"step\",\"epoch\":%d,\"batch\":%d,\"step\":%d,"
                                    "\"loss\":%.6f,\"lr\":%.8g,\"grad_norm\":1.5,\"time\":%d,"
                                    "\"data_time\":0.0}\n",
                                    e, b, step, loss, lr, step);
        }
        len += (size_t)snprintf(buf + len, cap - len,
                                "{\"event\":\"epoch\",\"epoch\":%d,\"loss\":%.6f,\"seconds\":1.0,"
                                "\"steps\":%d}\n",
                                e, sum / spe, step);
        if (evals)
            len += (size_t)snprintf(buf + len, cap - len,
                                    "{\"event\":\"eval\",\"epoch\":%d,\"images\":100,\"top1\":%d,"
                                    "\"top5\":95.0,\"loss\":1.2,\"per_class_top1\":[50,null],"
                                    "\"mean_class_top1\":50}\n",
                                    e, 40 + 15 * e);
    }
    ck_assert(len < cap);
    snprintf(p, sizeof p, "%s/metrics.jsonl", dir);
    write_text(p, buf);
    free(buf);
}

static sm_image load_png(const char *rel)
{
    char p[4300];
    snprintf(p, sizeof p, "%s/%s", root, rel);
    sm_image im;
    sm_image_init(&im);
    sm_error e;
    sm_error_clear(&e);
    ck_assert_msg(sm_image_load(p, NULL, &im, NULL, &e) == 0, "%s", e.text);
    ck_assert_int_eq(im.channels, 3);
    return im;
}

/* Pixels of rows [y0, y1) within 10 of colour rgb in every channel. */
static int count_colour(const sm_image *im, int y0, int y1, const int rgb[3])
{
    int n = 0;
    for (int y = y0; y < y1; y++)
        for (int x = 0; x < im->width; x++) {
            const float *px = im->data + ((size_t)y * im->width + x) * 3;
            n += fabsf(px[0] - rgb[0]) <= 10 && fabsf(px[1] - rgb[1]) <= 10 &&
                 fabsf(px[2] - rgb[2]) <= 10;
        }
    return n;
}

/* Every name in root except the run directories and the files the test expects; fails on a
 * temporary file or any output the test did not ask for. */
static void expect_only(const char *const *names)
{
    DIR *d = opendir(root);
    ck_assert_ptr_nonnull(d);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.') continue;
        bool known = false;
        for (size_t i = 0; names[i] && !known; i++) known = strcmp(de->d_name, names[i]) == 0;
        ck_assert_msg(known, "left behind in the output directory: %s", de->d_name);
    }
    closedir(d);
}

static bool exists(const char *rel)
{
    char p[4300];
    snprintf(p, sizeof p, "%s/%s", root, rel);
    return access(p, F_OK) == 0;
}

static void setup(void)
{
    ck_assert_msg(getenv("SIMMIMCTL") != NULL, "run through make check (SIMMIMCTL)");
    root = sm_test_tmpdir();
    write_run("pre", 3, 8, 0.9, 5e-4, false);
    write_run("ft", 2, 8, 2.3, 1e-3, true);
}

static void teardown(void)
{
    sm_test_rmtree(root);
    free(root);
}

START_TEST(test_plot_png)
{
    char *out;
    int rc = run("pre ft -o both.png", &out);
    ck_assert_msg(rc == 0, "exit %d:\n%s", rc, out);
    ck_assert_msg(strstr(out, "both.png: 2 runs"), "%s", out);
    free(out);
    rc = run("pre --output one.png", &out);
    ck_assert_msg(rc == 0, "exit %d:\n%s", rc, out);
    free(out);
    sm_image both = load_png("both.png"), one = load_png("one.png");
    /* default width; the pretraining run alone has no top-1 panel: one panel less */
    ck_assert_int_eq(both.width, 900);
    ck_assert_int_eq(one.width, 900);
    ck_assert_int_eq(both.height - one.height, PANEL);
    int H = both.height, legend = H - 3 * PANEL - XLABEL; /* title and legend rows above */
    ck_assert_int_gt(legend, 20);
    ck_assert_int_lt(legend, 60);

    /* drawn: a good share of the pixels is not white */
    size_t ink = 0, n = (size_t)both.width * both.height;
    for (size_t i = 0; i < n * 3; i += 3)
        ink += both.data[i] < 250 || both.data[i + 1] < 250 || both.data[i + 2] < 250;
    ck_assert_msg(ink > n / 50, "only %zu of %zu pixels drawn", ink, n);

    /* each run's colour inside the plot boxes of the loss and learning-rate panels */
    int box0 = legend + PANEL_TOP, box1 = legend + 2 * PANEL - PANEL_BOTTOM;
    ck_assert_int_gt(count_colour(&both, box0, box1, blue), 100);
    ck_assert_int_gt(count_colour(&both, box0, box1, orange), 100);
    /* the top-1 panel: the fine-tuning run's evaluations, nothing of the pretraining run */
    int t0 = legend + 2 * PANEL + PANEL_TOP, t1 = legend + 3 * PANEL - PANEL_BOTTOM;
    ck_assert_int_gt(count_colour(&both, t0, t1, orange), 50);
    ck_assert_int_eq(count_colour(&both, t0, t1, blue), 0);
    /* the legend shows both colours above the panels */
    ck_assert_int_gt(count_colour(&both, 0, legend, blue), 10);
    ck_assert_int_gt(count_colour(&both, 0, legend, orange), 10);
    sm_image_deinit(&both);
    sm_image_deinit(&one);

    /* --width, --height, --title, --label */
    rc = run("pre ft -o sized.png --width 640 --height 480 --title 'two runs' --label a --label b",
             &out);
    ck_assert_msg(rc == 0, "exit %d:\n%s", rc, out);
    free(out);
    sm_image s = load_png("sized.png");
    ck_assert_int_eq(s.width, 640);
    ck_assert_int_eq(s.height, 480);
    sm_image_deinit(&s);
    expect_only((const char *[]){"pre", "ft", "both.png", "one.png", "sized.png", NULL});
}
END_TEST

START_TEST(test_plot_vector)
{
    char *out;
    int rc = run("pre ft -o curves.svg", &out);
    ck_assert_msg(rc == 0, "exit %d:\n%s", rc, out);
    free(out);
    char p[4300];
    snprintf(p, sizeof p, "%s/curves.svg", root);
    char *svg = sm_test_read_file(p, NULL);
    ck_assert_msg(svg && strstr(svg, "<svg") && strstr(svg, "<path"), "not an SVG with paths");
    ck_assert_msg(strstr(svg, "</svg>"), "SVG not finished");
    free(svg);
    rc = run("pre ft -o curves.PDF", &out);
    ck_assert_msg(rc == 0, "exit %d:\n%s", rc, out);
    free(out);
    snprintf(p, sizeof p, "%s/curves.PDF", root);
    size_t len = 0;
    char *pdf = sm_test_read_file(p, &len);
    ck_assert_msg(pdf && len > 1000 && memcmp(pdf, "%PDF-", 5) == 0, "not a PDF");
    free(pdf);
}
END_TEST

/* A run in progress: its first epoch unfinished, the last line being written. A malformed line
 * in the middle: skipped with a warning naming file:line, the run still drawn. Nulls: gaps. */
START_TEST(test_plot_partial)
{
    make_dir("going");
    write_text("going/metrics.jsonl",
               "{\"event\":\"step\",\"epoch\":0,\"batch\":0,\"step\":0,\"loss\":0.9,\"lr\":1e-5}\n"
               "{\"event\":\"step\",\"epoch\":0,\"batch\":1,\"step\":1,\"loss\":null,\"lr\":2e-5}\n"
               "{\"event\":\"step\",\"epoch\":0,\"batch\":2,\"step\":2,\"loss\":0.8,\"lr\":3e-5}\n"
               "{\"event\":\"step\",\"epoch\":0,\"ba");
    char *out;
    int rc = run("going -o going.png", &out);
    ck_assert_msg(rc == 0, "exit %d:\n%s", rc, out);
    ck_assert_msg(!strstr(out, "warning"), "a line being written is not worth a warning:\n%s", out);
    free(out);
    sm_image im = load_png("going.png");
    ck_assert_int_eq(count_colour(&im, 40, im.height, blue) > 20, 1);
    sm_image_deinit(&im);

    /* line 3 of pre/metrics.jsonl broken: a warning, exit 0 */
    char p[4300];
    snprintf(p, sizeof p, "%s/pre/metrics.jsonl", root);
    char *m = sm_test_read_file(p, NULL), *l3 = strchr(strchr(m, '\n') + 1, '\n') + 1;
    memcpy(l3, "{oops", 5);
    write_text("pre/metrics.jsonl", m);
    free(m);
    rc = run("pre -o warned.png", &out);
    ck_assert_msg(rc == 0, "exit %d:\n%s", rc, out);
    ck_assert_msg(strstr(out, "warning: pre/metrics.jsonl:3: not JSON"), "%s", out);
    free(out);
    ck_assert(exists("warned.png"));

    /* a directory name that is not UTF-8 (cairo draws only UTF-8): drawn with '?' for the byte */
    write_run("caf\xe9", 1, 4, 1.0, 1e-3, false);
    rc = run("'caf\xe9' -o latin1.png --title 'x\xc0y'", &out);
    ck_assert_msg(rc == 0, "exit %d:\n%s", rc, out);
    free(out);
    ck_assert(exists("latin1.png"));
}
END_TEST

START_TEST(test_plot_errors)
{
    write_text("both.png", "older figure"); /* an output that failures must leave alone */
    const char *const kept[] = {"pre", "ft", "bad", "empty", "both.png", NULL};
    char *out;
    /* a missing run: exit 1, its file named, nothing written although the others are fine */
    int rc = run("pre nosuch ft -o both.png", &out);
    ck_assert_msg(rc == 1, "exit %d:\n%s", rc, out);
    ck_assert_msg(strstr(out, "nosuch/metrics.jsonl: cannot open: No such file"), "%s", out);
    ck_assert_msg(strstr(out, "nothing written"), "%s", out);
    free(out);
    /* a file of malformed lines and an empty one: each named, warnings with file:line */
    make_dir("bad");
    make_dir("empty");
    write_text("bad/metrics.jsonl", "not json\n[1, 2]\n{\"event\": \"step\"}\n");
    write_text("empty/metrics.jsonl", "");
    rc = run("pre bad empty -o both.png", &out);
    ck_assert_msg(rc == 1, "exit %d:\n%s", rc, out);
    ck_assert_msg(strstr(out, "bad/metrics.jsonl:1: not JSON"), "%s", out);
    ck_assert_msg(strstr(out, "bad/metrics.jsonl:2: not a JSON object"), "%s", out);
    ck_assert_msg(strstr(out, "bad/metrics.jsonl:3: no \"epoch\""), "%s", out);
    ck_assert_msg(strstr(out, "bad/metrics.jsonl: no step, epoch or eval record"), "%s", out);
    ck_assert_msg(strstr(out, "empty/metrics.jsonl: no step, epoch or eval record"), "%s", out);
    free(out);
    /* a directory where the file should be: a read error, named */
    make_dir("empty/sub");
    make_dir("empty/sub/metrics.jsonl");
    rc = run("empty/sub -o both.png", &out);
    ck_assert_msg(rc == 1 && strstr(out, "empty/sub/metrics.jsonl: cannot read"), "exit %d:\n%s", rc, out);
    free(out);
    /* an output that cannot be created: exit 1, named */
    rc = run("pre -o no/such/dir/x.png", &out);
    ck_assert_msg(rc == 1 && strstr(out, "no/such/dir/x.png: cannot create"), "exit %d:\n%s", rc, out);
    free(out);
    /* a write that fails (a file size limit: EFBIG, as a full disk gives ENOSPC): exit 1, the
     * older figure kept, the temporary file removed */
    rc = run_after("trap '' XFSZ; ulimit -f 8;", "pre ft -o both.png", &out);
    ck_assert_msg(rc == 1 && strstr(out, "both.png: write failed: File too large"), "exit %d:\n%s",
                  rc, out);
    free(out);
    /* usage errors: exit 2 */
    static const char *const usage[] = {"pre -o x.jpg", "pre", "-o x.png", "pre -o x.png --frob",
                                        "pre -o x.png --label a --label b", "pre -o x.png --label",
                                        "pre -o x.png --width 10",
                                        "pre ft -o x.png --height 300" /* 3 panels: >= 422 */};
    for (size_t i = 0; i < sizeof usage / sizeof usage[0]; i++) {
        rc = run(usage[i], &out);
        ck_assert_msg(rc == 2, "'%s': exit %d:\n%s", usage[i], rc, out);
        free(out);
    }
    rc = run("--help", &out);
    ck_assert_msg(rc == 0 && strstr(out, "usage: simmimctl plot"), "exit %d:\n%s", rc, out);
    free(out);
    /* the older output untouched, nothing else written, no temporary file */
    char p[4300];
    snprintf(p, sizeof p, "%s/both.png", root);
    char *old = sm_test_read_file(p, NULL);
    ck_assert_str_eq(old, "older figure");
    free(old);
    expect_only(kept);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("plot");
    TCase *tc = tcase_create("plot");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_plot_png);
    tcase_add_test(tc, test_plot_vector);
    tcase_add_test(tc, test_plot_partial);
    tcase_add_test(tc, test_plot_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return sm_test_run(suite()); }
