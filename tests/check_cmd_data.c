/* tests/check_cmd_data.c - `simmimctl data` end to end: a small ImageFolder tree with a
 * truncated JPEG, header scan and --deep, --bad-report, --preview (a PNG that decodes to the
 * grid size), the usable / not usable exit codes, and config errors (exit 2). Plugins come from
 * the build tree through $SIMMIM_PLUGIN_PATH (set by make check). */
#include "imgutil.h"
#include "testutil.h"

#include <png.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

static char *root;

static void img(const char *rel, int w, int h, bool truncate)
{
    char p[4200];
    snprintf(p, sizeof p, "%s/%s", root, rel);
    sm_img_mkdirs(root, p);
    uint8_t *px = malloc((size_t)w * h * 3);
    for (int i = 0; i < w * h * 3; i++) px[i] = (uint8_t)(i * 13);
    ck_assert_int_eq(sm_img_write_jpeg(p, px, w, h, 3, 90, false, false), 0);
    free(px);
    if (truncate) {
        size_t len;
        char *b = sm_test_read_file(p, &len);
        sm_test_write_file(p, b, len / 2);
        free(b);
    }
}

/* Runs simmimctl data; returns the exit code, with stdout and stderr in out. */
static int run(const char *args, char **out)
{
    char cmd[12000], log[4300];
    snprintf(log, sizeof log, "%s/out.txt", root);
    snprintf(cmd, sizeof cmd, "'%s' data %s >'%s' 2>&1", getenv("SIMMIMCTL"), args, log);
    int st = system(cmd);
    size_t len;
    *out = sm_test_read_file(log, &len);
    ck_assert_ptr_nonnull(*out);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void write_config(const char *name, const char *extra)
{
    char p[4300], y[8192];
    snprintf(p, sizeof p, "%s/%s", root, name);
    snprintf(y, sizeof y,
             "model:\n  backbone: vit\n  patch_size: 16\n"
             "train_config:\n  image_size: 64\n  batch_size: 4\n"
             "finetune_dataset:\n  reader: imagenet\n  train_path: %s/train\n"
             "  eval_path: %s/val\n  num_workers: 2\n%s",
             root, root, extra);
    ck_assert_int_eq(sm_test_write_file(p, y, strlen(y)), 0);
}

START_TEST(test_cmd_data)
{
    ck_assert_msg(getenv("SIMMIMCTL") != NULL, "run through make check (SIMMIMCTL)");
    root = sm_test_tmpdir();
    for (int i = 0; i < 6; i++) {
        char rel[64];
        snprintf(rel, sizeof rel, "train/cat/c%d.jpg", i);
        img(rel, 48, 40, false);
        snprintf(rel, sizeof rel, "train/dog/d%d.jpg", i);
        img(rel, 64, 64, false);
    }
    img("val/cat/v0.jpg", 48, 40, false);
    img("val/dog/v1.jpg", 48, 40, false);
    img("train/dog/broken.jpg", 300, 300, true);
    char *out, args[4500];

    /* headers only: 13 train samples, the truncated one passes the header scan */
    write_config("ok.yaml", "  max_bad_fraction: 0.2\n");
    snprintf(args, sizeof args, "'%s/ok.yaml'", root);
    int rc = run(args, &out);
    ck_assert_msg(rc == 0, "exit %d:\n%s", rc, out);
    ck_assert_msg(strstr(out, "finetune_dataset (imagenet, train): 13 samples, 2 classes"), "%s", out);
    ck_assert_msg(strstr(out, "cat 6, dog 7"), "%s", out);
    ck_assert_msg(strstr(out, "jpeg/rgb/8bit 13"), "%s", out);
    ck_assert_msg(strstr(out, "64x64 6") && strstr(out, "48x40 6") && strstr(out, "300x300 1"), "%s", out);
    ck_assert_msg(strstr(out, "(imagenet, eval): 2 samples"), "%s", out);
    ck_assert_msg(strstr(out, "data: usable"), "%s", out);
    free(out);

    /* --deep finds the truncated file; 1 of 13 is within 0.2; the report names it */
    snprintf(args, sizeof args, "'%s/ok.yaml' --deep --bad-report '%s/bad.txt' --preview '%s/grid.png'",
             root, root, root);
    rc = run(args, &out);
    ck_assert_msg(rc == 0, "exit %d:\n%s", rc, out);
    ck_assert_msg(strstr(out, "broken.jpg") && strstr(out, "Premature end"), "%s", out);
    ck_assert_msg(strstr(out, "bad files: 1"), "%s", out);
    char p[4300];
    snprintf(p, sizeof p, "%s/bad.txt", root);
    size_t len;
    char *rep = sm_test_read_file(p, &len);
    ck_assert_msg(rep && strstr(rep, "broken.jpg\t"), "%s", rep ? rep : "(none)");
    free(rep);
    /* the preview: 13 samples in a 4-column grid of 64-pixel tiles with 2-pixel gaps */
    snprintf(p, sizeof p, "%s/grid.png", root);
    sm_image im;
    sm_image_init(&im);
    sm_error e;
    sm_error_clear(&e);
    ck_assert_msg(sm_image_load(p, NULL, &im, NULL, &e) == 0, "%s\n%s", e.text, out);
    ck_assert_int_eq(im.width, 4 * 66);
    ck_assert_int_eq(im.height, 4 * 66);
    sm_image_deinit(&im);
    free(out);

    /* the same bad file with on_bad_image: fail is not usable (exit 1) */
    write_config("fail.yaml", "  on_bad_image: fail\n");
    snprintf(args, sizeof args, "'%s/fail.yaml' --deep", root);
    rc = run(args, &out);
    ck_assert_msg(rc == 1 && strstr(out, "NOT usable"), "exit %d:\n%s", rc, out);
    free(out);

    /* a missing train folder: exit 1, the folder named */
    write_config("missing.yaml", "");
    char mv[9000];
    snprintf(mv, sizeof mv, "mv '%s/train' '%s/gone'", root, root);
    ck_assert_int_eq(system(mv), 0);
    snprintf(args, sizeof args, "'%s/missing.yaml'", root);
    rc = run(args, &out);
    ck_assert_msg(rc == 1 && strstr(out, "/train"), "exit %d:\n%s", rc, out);
    free(out);

    /* config errors (an unknown key) and usage errors: exit 2 */
    write_config("bad.yaml", "  crop_mni: 0.5\n");
    snprintf(args, sizeof args, "'%s/bad.yaml'", root);
    rc = run(args, &out);
    ck_assert_msg(rc == 2 && strstr(out, "crop_mni"), "exit %d:\n%s", rc, out);
    free(out);
    rc = run("--frobnicate", &out);
    ck_assert_int_eq(rc, 2);
    free(out);
    sm_test_rmtree(root);
    free(root);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("cmd_data");
    TCase *tc = tcase_create("cmd_data");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_cmd_data);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return sm_test_run(suite()); }
