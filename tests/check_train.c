/* tests/check_train.c - the trainer on images the test writes itself: a SimMIM run writes its
 * outputs and lowers the loss; a run stopped mid-epoch and resumed ends bit-identical to a
 * straight run; a corrupt newest checkpoint is skipped; a locked output directory, an empty
 * dataset and a diverging loss end in clear errors; fine-tuning starts from a pretraining
 * checkpoint; relative position tables are resized as the official code does. */
#include "testutil.h"

#include <fcntl.h>
#include <math.h>
#include <string.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include "simmim/image.h"
#include "simmim/train.h"

static sm_registry *reg;
static char *tmp;

static void setup(void)
{
    reg = sm_registry_new();
    sm_diag *d = sm_diag_new();
    sm_plugin_load_path(reg, NULL, 0, NULL, 0, d);
    sm_diag_free(d);
    ck_assert_msg(sm_registry_find(reg, SM_KIND_DATASET, "aircas") &&
                      sm_registry_find(reg, SM_KIND_BACKBONE, "vit") &&
                      sm_registry_find(reg, SM_KIND_OPTIMIZER, "adamw"),
                  "plugins missing on SIMMIM_PLUGIN_PATH");
    tmp = sm_test_tmpdir();
}

static void teardown(void)
{
    sm_registry_free(reg);
    sm_test_rmtree(tmp);
    free(tmp);
}

/* n random 20x20 RGB PNGs with a smooth pattern, in dir/images, and 2 class folders. */
static void write_images(const char *dir, int n, bool classes)
{
    char path[4200];
    snprintf(path, sizeof path, "mkdir -p '%s/images/a' '%s/images/b'", dir, dir);
    ck_assert_int_eq(system(path), 0);
    uint8_t px[20 * 20 * 3];
    sm_rng r;
    for (int i = 0; i < n; i++) {
        sm_rng_init(&r, 5, (uint64_t)i, 0, 0);
        double f = 0.2 + 0.6 * sm_rng_uniform(&r);
        for (int k = 0; k < 20 * 20 * 3; k++) {
            int y = k / 60, x = (k / 3) % 20, c = k % 3;
            double v = 127.5 * (1 + sin(f * (x + 2 * y) + c + (classes ? (i % 2) * 1.5 : 0)));
            px[k] = (uint8_t)(v * 0.8 + 50.0 * sm_rng_uniform(&r));
        }
        snprintf(path, sizeof path, "%s/images/%s/img%03d.png", dir, i % 2 ? "b" : "a", i);
        ck_assert_int_eq(sm_png_write(path, px, 20, 20, 3, NULL), 0);
    }
}

static sm_config *load(const char *yaml, const char *name)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", tmp, name);
    return sm_test_config(reg, yaml, path, false);
}

#define PRETRAIN_YAML(out, epochs, lr)                                                             \
    "seed: 3\ntask: pretrain\noutput_dir: " out "\n"                                               \
    "model: {backbone: vit, patch_size: 4, embed_dim: 16, depth: 2, num_heads: 2,"                 \
    " drop_path_rate: 0.1, mask_patch_size: 8}\n"                                                  \
    "train_config: {epoch: " #epochs ", batch_size: 4, image_size: 16}\n"                          \
    "pretrain_dataset: {reader: aircas, data_path: images, num_workers: 2}\n"                      \
    "lr_schedule: {lr_type: warmup_cosine_decay_simmim, base_lr: " lr ", min_lr: 1e-5,"            \
    " warmup_lr: 1e-6, warmup_epochs: 1}\n"                                                        \
    "callback: {ckpt_config: {prefix: t, keep_checkpoint_max: 3}}\n"                               \
    "backend: {name: ref}\n"

static char *out_file(const char *out, const char *name)
{
    static char path[8][4400];
    static int slot;
    char *p = path[slot++ % 8];
    snprintf(p, sizeof path[0], "%s/%s/%s", tmp, out, name);
    return p;
}

static int count_lines(const char *path, const char *needle)
{
    char *text = sm_test_read_file(path, NULL);
    int n = 0;
    for (char *p = text; p && (p = strstr(p, needle)); p++) n++;
    free(text);
    return n;
}

START_TEST(test_pretrain_outputs)
{
    write_images(tmp, 24, false);
    sm_config *cfg = load(PRETRAIN_YAML("run1", 3, "2e-2"), "pre.yaml");
    sm_train_result res;
    sm_error err;
    sm_error_clear(&err);
    int rc = sm_train(reg, cfg, NULL, &res, &err);
    ck_assert_msg(rc == 0, "%s", err.text);
    ck_assert_int_eq(res.epochs, 3);
    ck_assert_int_eq(res.steps, 18); /* 24 images / batch 4 = 6 steps per epoch */
    ck_assert(isfinite(res.last_loss));
    ck_assert_msg(strstr(res.checkpoint, "run1/t-3_18.safetensors") != NULL, "%s", res.checkpoint);
    ck_assert_int_eq(count_lines(out_file("run1", "metrics.jsonl"), "\"event\":\"step\""), 18);
    ck_assert_int_eq(count_lines(out_file("run1", "metrics.jsonl"), "\"data_time\":"), 18);
    ck_assert_int_eq(count_lines(out_file("run1", "metrics.jsonl"), "\"event\":\"epoch\""), 3);
    ck_assert_int_eq(count_lines(out_file("run1", "summary.json"), "\"completed\""), 1);
    ck_assert_int_eq(count_lines(out_file("run1", "config.yaml"), "backbone: vit"), 1);
    /* the reconstruction figure of the last checkpoint: a PNG of 4 rows x 4 columns of 16 px
     * images enlarged 8 times, 4 px gaps, a 22 px header row */
    size_t plen = 0;
    char *png = sm_test_read_file(out_file("run1", "recon-3.png"), &plen);
    ck_assert_msg(png && plen > 24 && memcmp(png, "\x89PNG", 4) == 0, "no recon-3.png");
    ck_assert_int_eq(((unsigned char)png[18] << 8) | (unsigned char)png[19], 4 * 128 + 5 * 4);
    ck_assert_int_eq(((unsigned char)png[22] << 8) | (unsigned char)png[23], 22 + 4 * 128 + 5 * 4);
    free(png);
    /* the per-epoch mean loss goes down */
    char *m = sm_test_read_file(out_file("run1", "metrics.jsonl"), NULL);
    double l[3];
    char *p = m;
    for (int e = 0; e < 3; e++) {
        p = strstr(p, "\"event\":\"epoch\"");
        ck_assert_ptr_nonnull(p);
        ck_assert(sscanf(strstr(p, "\"loss\":") + 7, "%lf", &l[e]) == 1);
        p++;
    }
    free(m);
    ck_assert_msg(l[2] < l[0], "loss did not go down: %g %g %g", l[0], l[1], l[2]);
    /* the checkpoint verifies and holds the parameters and the optimizer state */
    sm_st_file *f = NULL;
    ck_assert_int_eq(sm_st_open(res.checkpoint, &f, &err), 0);
    ck_assert_ptr_nonnull(sm_st_find(f, "encoder.blocks.1.mlp.fc2.weight"));
    ck_assert_ptr_nonnull(sm_st_find(f, "optimizer.exp_avg_sq.decoder.0.weight"));
    ck_assert_str_eq(sm_st_meta(f, "step"), "18");
    ck_assert_str_eq(sm_st_meta(f, "format"), "simmim-checkpoint-1");
    sm_st_close(f);
    sm_config_free(cfg);
}
END_TEST

/* Stops the run from the log callback after the 4th step line. */
static volatile int stop_flag;
static int steps_logged;
static void stop_after_steps(sm_log_level lvl, const char *msg, void *user)
{
    (void)lvl;
    int limit = *(int *)user;
    if (strstr(msg, " step ") && strstr(msg, " loss ") && ++steps_logged == limit) stop_flag = 1;
}

static void read_param(const char *path, const char *name, float *out, int64_t n)
{
    sm_st_file *f = NULL;
    sm_error err;
    sm_error_clear(&err);
    ck_assert_msg(sm_st_open(path, &f, &err) == 0, "%s", err.text);
    ck_assert_int_eq(sm_st_read_f32(f, name, out, n, &err), 0);
    sm_st_close(f);
}

/* The named tensors (n floats each) are bit-identical in two checkpoints. */
static void assert_same_tensors(const char *a, const char *b, const char *const *names,
                                const int64_t *sizes, int count, const char *why)
{
    static float wa[64 * 64], wb[64 * 64];
    for (int i = 0; i < count; i++) {
        ck_assert(sizes[i] <= 64 * 64);
        read_param(a, names[i], wa, sizes[i]);
        read_param(b, names[i], wb, sizes[i]);
        ck_assert_msg(memcmp(wa, wb, (size_t)sizes[i] * sizeof(float)) == 0, "%s differs %s",
                      names[i], why);
    }
}

START_TEST(test_resume_is_exact)
{
    write_images(tmp, 24, false);
    sm_error err;
    sm_error_clear(&err);
    sm_train_result a, b;
    sm_config *ca = load(PRETRAIN_YAML("straight", 2, "1e-2"), "a.yaml");
    ck_assert_int_eq(sm_train(reg, ca, NULL, &a, &err), 0);
    sm_config *cb = load(PRETRAIN_YAML("resumed", 2, "1e-2"), "b.yaml");
    int limit = 8; /* stop in the middle of epoch 2 */
    steps_logged = 0;
    stop_flag = 0;
    sm_log_set(stop_after_steps, &limit);
    sm_train_opts opts = {.stop = &stop_flag};
    int rc = sm_train(reg, cb, &opts, &b, &err);
    sm_log_set(NULL, NULL);
    ck_assert_int_eq(rc, SM_ECANCELED);
    ck_assert_msg(strstr(b.checkpoint, "t-1_8.safetensors") != NULL, "%s", b.checkpoint);
    ck_assert_int_eq(count_lines(out_file("resumed", "summary.json"), "\"stopped\""), 1);
    /* the same command again resumes from the checkpoint written at the stop */
    sm_error_clear(&err);
    ck_assert_int_eq(sm_train(reg, cb, NULL, &b, &err), 0);
    ck_assert_int_eq(b.steps, a.steps);
    const char *names[] = {"encoder.blocks.1.mlp.fc1.weight", "decoder.0.weight"};
    int64_t sizes[] = {64 * 16, 48 * 16};
    assert_same_tensors(a.checkpoint, b.checkpoint, names, sizes, 2, "after stop + resume");
    sm_config_free(ca);
    sm_config_free(cb);
}
END_TEST

START_TEST(test_corrupt_checkpoint_skipped)
{
    write_images(tmp, 24, false);
    sm_error err;
    sm_error_clear(&err);
    sm_train_result r1, r2;
    sm_config *c1 = load(PRETRAIN_YAML("run", 1, "1e-2"), "c1.yaml");
    ck_assert_int_eq(sm_train(reg, c1, NULL, &r1, &err), 0);
    /* a newer checkpoint that is cut in the middle: resuming must fall back to t-1_6 */
    size_t len;
    char *data = sm_test_read_file(r1.checkpoint, &len);
    ck_assert_int_eq(sm_test_write_file(out_file("run", "t-1_7.safetensors"), data, len / 2), 0);
    free(data);
    /* and a temporary file of a save that was killed: removed by the next run */
    ck_assert_int_eq(sm_test_write_file(out_file("run", "t-1_8.safetensors.tmp.12345.0"), "x", 1), 0);
    sm_config *c2 = load(PRETRAIN_YAML("run", 2, "1e-2"), "c2.yaml");
    ck_assert_int_eq(sm_train(reg, c2, NULL, &r2, &err), 0);
    ck_assert_int_eq(r2.steps, 12);
    ck_assert_int_eq(count_lines(out_file("run", "metrics.jsonl"), "\"event\":\"step\""), 12);
    ck_assert_int_eq(access(out_file("run", "t-1_8.safetensors.tmp.12345.0"), F_OK), -1);
    sm_config_free(c1);
    sm_config_free(c2);
}
END_TEST

START_TEST(test_runtime_errors)
{
    sm_error err;
    sm_train_result res;
    /* an empty dataset folder: an error that says what was found */
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s/images' && touch '%s/images/notes.txt'", tmp, tmp);
    ck_assert_int_eq(system(cmd), 0);
    sm_config *c = load(PRETRAIN_YAML("empty", 1, "1e-2"), "e.yaml");
    sm_error_clear(&err);
    ck_assert_int_ne(sm_train(reg, c, NULL, &res, &err), 0);
    ck_assert_msg(strstr(err.text, "no images") && strstr(err.text, ".txt"), "%s", err.text);
    sm_config_free(c);

    /* a locked output directory */
    write_images(tmp, 24, false);
    snprintf(cmd, sizeof cmd, "mkdir -p '%s/locked'", tmp);
    ck_assert_int_eq(system(cmd), 0);
    int fd = open(out_file("locked", ".lock"), O_RDWR | O_CREAT, 0644);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(flock(fd, LOCK_EX), 0);
    c = load(PRETRAIN_YAML("locked", 1, "1e-2"), "l.yaml");
    sm_error_clear(&err);
    ck_assert_int_eq(sm_train(reg, c, NULL, &res, &err), SM_EIO);
    ck_assert_msg(strstr(err.text, "another run") != NULL, "%s", err.text);
    close(fd);
    sm_config_free(c);

    /* a learning rate that makes the loss diverge: stopped, no checkpoint of that epoch */
    c = load(PRETRAIN_YAML("diverge", 2, "1e30"), "d.yaml");
    sm_error_clear(&err);
    ck_assert_int_eq(sm_train(reg, c, NULL, &res, &err), SM_EDATA);
    ck_assert_msg(strstr(err.text, "not finite") != NULL, "%s", err.text);
    ck_assert_int_eq(access(out_file("diverge", "t-2_12.safetensors"), F_OK), -1);
    ck_assert_int_eq(count_lines(out_file("diverge", "summary.json"), "\"failed\""), 1);
    sm_config_free(c);
}
END_TEST

/* train_wrapper.use_ema: RingMo's recurrence ema = ema x d + w x (1 - d) after each update,
 * from the weights the training starts with, checked against the parameters step by step;
 * evaluation uses the average; checkpoints keep it and a stop + resume continues it exactly. */
START_TEST(test_ema)
{
    write_images(tmp, 24, true);
    const char *fmt =
        "seed: 3\ntask: finetune\noutput_dir: %s\n"
        "model: {backbone: vit, patch_size: 4, embed_dim: 16, depth: 2, num_heads: 2}\n"
        "train_config: {epoch: 2, batch_size: 4, image_size: 16}\n"
        "finetune_dataset: {reader: imagenet, train_path: images, eval_path: images,"
        " num_workers: 1, mixup: 0, cutmix: 0, auto_augment: null}\n"
        "train_wrapper: {use_ema: %s, ema_decay: 0.75}\n"
        "lr_schedule: {lr_type: warmup_cosine_decay_simmim, base_lr: 5e-2, warmup_epochs: 0}\n"
        "backend: {name: ref}\n";
    char on[1024], off[1024], stopped[1024];
    snprintf(on, sizeof on, fmt, "ema", "true");
    snprintf(stopped, sizeof stopped, fmt, "res", "true");
    snprintf(off, sizeof off, fmt, "off", "false");
    /* the recurrence, through the step API */
    sm_config *c1 = load(on, "e1.yaml");
    sm_trainer_opts o = {.num_classes = 2, .steps_per_epoch = 6};
    sm_trainer *t = NULL;
    sm_error err;
    sm_error_clear(&err);
    ck_assert_int_eq(sm_trainer_new(reg, c1, &o, &t, &err), 0);
    ck_assert_ptr_null(sm_trainer_ema(t));
    sm_params *p = sm_model_params(sm_trainer_model(t));
    int64_t n = sm_params_numel(p);
    float *want = malloc((size_t)n * sizeof *want), x[4 * 3 * 16 * 16];
    int labels[4] = {0, 1, 0, 1};
    memcpy(want, sm_params_data(p), (size_t)n * sizeof *want);
    sm_rng r;
    sm_rng_init(&r, 1, 2, 3, 4);
    for (int s = 0; s < 3; s++) {
        for (size_t i = 0; i < sizeof x / sizeof x[0]; i++) x[i] = (float)sm_rng_normal(&r);
        sm_batch b = {.size = 4, .channels = 3, .height = 16, .width = 16, .images = x,
                      .labels = labels};
        ck_assert_int_eq(sm_trainer_step(t, &b, NULL, &err), 0);
        const float *w = sm_params_data(p);
        for (int64_t i = 0; i < n; i++) want[i] = want[i] * 0.75f + w[i] * (1.0f - 0.75f);
    }
    ck_assert_ptr_nonnull(sm_trainer_ema(t));
    ck_assert_int_eq(memcmp(sm_trainer_ema(t), want, (size_t)n * sizeof *want), 0);
    ck_assert(memcmp(sm_trainer_ema(t), sm_params_data(p), (size_t)n * sizeof *want) != 0);
    sm_trainer_free(t);
    free(want);
    sm_config_free(c1);

    /* runs: EMA on vs off evaluate different weights; stop + resume continues the average */
    sm_train_result ra, rb, rc;
    sm_config *ca = load(on, "ea.yaml"), *cb = load(stopped, "eb.yaml"), *cc = load(off, "ec.yaml");
    ck_assert_int_eq(sm_train(reg, ca, NULL, &ra, &err), 0);
    ck_assert_int_eq(sm_train(reg, cc, NULL, &rc, &err), 0);
    ck_assert_int_eq(count_lines(out_file("ema", "metrics.jsonl"), "\"event\":\"eval\""), 2);
    char *ma = sm_test_read_file(out_file("ema", "metrics.jsonl"), NULL);
    char *mc = sm_test_read_file(out_file("off", "metrics.jsonl"), NULL);
    ck_assert_str_ne(strstr(ma, "\"event\":\"eval\""), strstr(mc, "\"event\":\"eval\""));
    free(ma), free(mc);
    int limit = 3; /* stop in epoch 1 */
    steps_logged = 0;
    stop_flag = 0;
    sm_log_set(stop_after_steps, &limit);
    sm_train_opts opts = {.stop = &stop_flag};
    int st = sm_train(reg, cb, &opts, &rb, &err);
    sm_log_set(NULL, NULL);
    ck_assert_int_eq(st, SM_ECANCELED);
    sm_error_clear(&err);
    ck_assert_int_eq(sm_train(reg, cb, NULL, &rb, &err), 0);
    const char *names[] = {"ema.blocks.1.mlp.fc1.weight", "ema.head.weight", "blocks.0.attn.qkv.weight"};
    int64_t sizes[] = {64 * 16, 2 * 16, 48 * 16};
    assert_same_tensors(ra.checkpoint, rb.checkpoint, names, sizes, 3, "after stop + resume");
    ck_assert(fabs(ra.eval_top1 - rb.eval_top1) < 1e-9 && ra.best_epoch >= 0);
    char *sum = sm_test_read_file(out_file("ema", "summary.json"), NULL);
    ck_assert_msg(strstr(sum, "\"best_eval_top1\"") && strstr(sum, "\"best_eval_epoch\""), "%s", sum);
    free(sum);
    sm_config_free(ca), sm_config_free(cb), sm_config_free(cc);
}
END_TEST

START_TEST(test_finetune_from_pretraining)
{
    write_images(tmp, 32, true);
    sm_error err;
    sm_error_clear(&err);
    sm_train_result pre, fin;
    sm_config *cp = load(PRETRAIN_YAML("pre", 1, "1e-2"), "p.yaml");
    ck_assert_int_eq(sm_train(reg, cp, NULL, &pre, &err), 0);
    const char *ft =
        "seed: 3\ntask: finetune\noutput_dir: fin\n"
        "model: {backbone: vit, patch_size: 4, embed_dim: 16, depth: 2, num_heads: 2,"
        " use_shared_rel_pos_bias: false, use_rel_pos_bias: true, use_mean_pooling: true}\n"
        "train_config: {epoch: 2, batch_size: 4, image_size: 16, resume_ckpt: pre}\n"
        "finetune_dataset: {reader: imagenet, train_path: images, eval_path: images,"
        " num_workers: 1, mixup: 0.8, cutmix: 1.0, auto_augment: null}\n"
        "optimizer: {layer_decay: 0.75}\n"
        "lr_schedule: {lr_type: warmup_cosine_decay_simmim, base_lr: 1e-2, warmup_epochs: 0}\n"
        "backend: {name: ref}\n";
    sm_config *cf = load(ft, "f.yaml");
    ck_assert_int_eq(sm_train(reg, cf, NULL, &fin, &err), 0);
    ck_assert(fin.eval_top1 >= 0 && fin.eval_top1 <= 100);
    ck_assert_int_eq(count_lines(out_file("fin", "metrics.jsonl"), "\"event\":\"eval\""), 2);
    /* per-class results of the last evaluation: confusion.csv counts every image once, its
     * diagonal gives top-1, and metrics' per-class and mean class accuracy agree with it */
    char *csv = sm_test_read_file(out_file("fin", "confusion.csv"), NULL);
    ck_assert_ptr_nonnull(csv);
    long long cm[2][2];
    ck_assert_msg(sscanf(csv, "true\\predicted,a,b\na,%lld,%lld\nb,%lld,%lld\n", &cm[0][0],
                         &cm[0][1], &cm[1][0], &cm[1][1]) == 4, "%s", csv);
    free(csv);
    ck_assert_int_eq(cm[0][0] + cm[0][1], 16);
    ck_assert_int_eq(cm[1][0] + cm[1][1], 16);
    ck_assert_msg(fabs(fin.eval_top1 - 100.0 * (double)(cm[0][0] + cm[1][1]) / 32) < 1e-9, "%g",
                  fin.eval_top1);
    char *mj = sm_test_read_file(out_file("fin", "metrics.jsonl"), NULL);
    char *ev = strrchr(mj, '\n');
    while (ev > mj && !strstr(ev, "\"event\":\"eval\"")) /* the last eval line */
        for (ev--; ev > mj && ev[-1] != '\n'; ev--) {}
    double mean, pa, pb;
    ck_assert_msg(sscanf(strstr(ev, "\"mean_class_top1\":") + 18, "%lf", &mean) == 1 &&
                      sscanf(strstr(ev, "\"per_class_top1\":[") + 18, "%lf,%lf", &pa, &pb) == 2,
                  "%s", ev);
    free(mj);
    ck_assert(fabs(pa - 100.0 * (double)cm[0][0] / 16) < 1e-9);
    ck_assert(fabs(pb - 100.0 * (double)cm[1][1] / 16) < 1e-9);
    ck_assert(fabs(mean - (pa + pb) / 2) < 1e-9);
    /* simmimctl extract with the final checkpoint: its features through the checkpoint's head
     * predict exactly what the last evaluation counted */
    const char *ctl = getenv("SIMMIMCTL");
    ck_assert_msg(ctl != NULL, "SIMMIMCTL is not set (run through make check)");
    char cmd[9000], feat_path[4200];
    snprintf(feat_path, sizeof feat_path, "%s/feat.safetensors", tmp);
    snprintf(cmd, sizeof cmd, "'%s' extract '%s/f.yaml' --checkpoint '%s' --output '%s' >/dev/null 2>&1",
             ctl, tmp, fin.checkpoint, feat_path);
    ck_assert_int_eq(system(cmd), 0);
    float feats[32 * 16], hw[2 * 16], hb[2];
    int64_t lab[32], ind[32];
    sm_st_file *ff = NULL;
    ck_assert_int_eq(sm_st_open(feat_path, &ff, &err), 0);
    ck_assert_int_eq(sm_st_find(ff, "features")->shape[0], 32);
    ck_assert_int_eq(sm_st_find(ff, "features")->shape[1], 16);
    ck_assert_int_eq(sm_st_read_f32(ff, "features", feats, 32 * 16, &err), 0);
    ck_assert_int_eq(sm_st_read_i64(ff, "labels", lab, 32, &err), 0);
    ck_assert_int_eq(sm_st_read_i64(ff, "indices", ind, 32, &err), 0);
    ck_assert_str_eq(sm_st_meta(ff, "classes"), "[\"a\",\"b\"]");
    sm_st_close(ff);
    read_param(fin.checkpoint, "head.weight", hw, 2 * 16);
    read_param(fin.checkpoint, "head.bias", hb, 2);
    long long em[2][2] = {{0, 0}, {0, 0}};
    for (int i = 0; i < 32; i++) {
        ck_assert_int_eq(ind[i], i);
        double z[2];
        for (int k = 0; k < 2; k++) {
            z[k] = hb[k];
            for (int j = 0; j < 16; j++) z[k] += (double)hw[k * 16 + j] * feats[i * 16 + j];
        }
        em[lab[i]][z[1] > z[0]]++;
    }
    ck_assert_msg(memcmp(em, cm, sizeof em) == 0, "extract: %lld %lld %lld %lld, eval: %lld %lld %lld %lld",
                  em[0][0], em[0][1], em[1][0], em[1][1], cm[0][0], cm[0][1], cm[1][0], cm[1][1]);
    /* from the pretraining checkpoint (no fc_norm, no head in it): fc_norm starts as the
     * fine-tuning starts it, so the features are not degenerate */
    snprintf(cmd, sizeof cmd, "'%s' extract '%s/f.yaml' --checkpoint '%s' --output '%s' >/dev/null 2>&1",
             ctl, tmp, pre.checkpoint, feat_path);
    ck_assert_int_eq(system(cmd), 0);
    ck_assert_int_eq(sm_st_open(feat_path, &ff, &err), 0);
    ck_assert_int_eq(sm_st_read_f32(ff, "features", feats, 32 * 16, &err), 0);
    sm_st_close(ff);
    double lo = feats[0], hi = feats[0];
    for (int i = 0; i < 32 * 16; i++) lo = fmin(lo, feats[i]), hi = fmax(hi, feats[i]);
    ck_assert_msg(hi - lo > 0.5, "features from the pretraining checkpoint span %g..%g", lo, hi);
    /* the pretrained shared table went into every block's own table */
    float shared[52 * 2], block[52 * 2];
    read_param(pre.checkpoint, "encoder.rel_pos_bias.relative_position_bias_table", shared, 52 * 2);
    sm_st_file *f = NULL;
    char note[512];
    sm_model *m = NULL;
    ck_assert_int_eq(sm_model_new_classes(reg, sm_config_root(cf), SM_TASK_CLASSIFY, 2, &m, &err),
                     0);
    ck_assert_int_eq(sm_model_load_weights(m, pre.checkpoint, note, sizeof note, &err), 0);
    ck_assert_msg(strstr(note, "2 copied from a shared tensor") != NULL, "%s", note);
    memcpy(block,
           sm_params_find(sm_model_params(m), "blocks.1.attn.relative_position_bias_table")->data,
           sizeof block);
    ck_assert(memcmp(shared, block, sizeof block) == 0);
    sm_model_free(m);
    (void)f;
    sm_config_free(cp);
    sm_config_free(cf);
}
END_TEST

/* Collects log lines mentioning a resume. */
static char logged[4096];
static void keep_log(sm_log_level lvl, const char *msg, void *user)
{
    (void)lvl, (void)user;
    if (strstr(msg, "resuming") && strlen(logged) + strlen(msg) + 2 < sizeof logged) {
        strcat(logged, msg);
        strcat(logged, "\n");
    }
}

/* An output directory belongs to one run: another task or prefix is refused without touching
 * its files; a resume with a changed batch size is refused; prefixes "t" and "t-b" do not mix;
 * an evaluation writes its own files next to the training run's. */
START_TEST(test_output_dir_ownership)
{
    write_images(tmp, 24, true);
    sm_error err;
    sm_train_result res;
    sm_config *c1 = load(PRETRAIN_YAML("own", 1, "1e-2"), "o1.yaml");
    sm_error_clear(&err);
    ck_assert_int_eq(sm_train(reg, c1, NULL, &res, &err), 0);
    char *summary = sm_test_read_file(out_file("own", "summary.json"), NULL);
    /* a fine-tuning run into the same directory */
    const char *ft = "task: finetune\noutput_dir: own\n"
                     "model: {backbone: vit, patch_size: 4, embed_dim: 16, depth: 2, num_heads: 2}\n"
                     "train_config: {epoch: 1, batch_size: 4, image_size: 16}\n"
                     "finetune_dataset: {reader: imagenet, train_path: images, eval_path: images,"
                     " num_workers: 0, mixup: 0, cutmix: 0, auto_augment: null}\n"
                     "backend: {name: ref}\n";
    sm_config *c2 = load(ft, "o2.yaml");
    sm_error_clear(&err);
    ck_assert_int_eq(sm_train(reg, c2, NULL, &res, &err), SM_EEXIST);
    ck_assert_msg(strstr(err.text, "holds another run (task pretrain"), "%s", err.text);
    char *after = sm_test_read_file(out_file("own", "summary.json"), NULL);
    ck_assert_str_eq(summary, after);
    free(after);
    /* the same run with another batch size: refused, nothing rewritten */
    sm_config *c3 = load(PRETRAIN_YAML("own", 2, "1e-2"), "o3.yaml");
    sm_config_free(c3);
    char yaml[4096];
    snprintf(yaml, sizeof yaml, "%s", PRETRAIN_YAML("own", 2, "1e-2"));
    char *bs = strstr(yaml, "batch_size: 4");
    ck_assert_ptr_nonnull(bs);
    bs[12] = '8';
    c3 = load(yaml, "o3.yaml");
    sm_error_clear(&err);
    ck_assert_int_eq(sm_train(reg, c3, NULL, &res, &err), SM_ECONFIG);
    ck_assert_msg(strstr(err.text, "global batch (batch_size x ranks x accumulation_steps) "
                                   "changed from 4 (4 x 1 ranks x 1) to 8 (8 x 1 ranks x 1)") &&
                      !strcmp(err.path, "train_config.batch_size"),
                  "%s: %s", err.path, err.text);
    after = sm_test_read_file(out_file("own", "summary.json"), NULL);
    ck_assert_str_eq(summary, after);
    free(after);
    ck_assert_int_eq(count_lines(out_file("own", "config.yaml"), "batch_size: 4"), 1);
    free(summary);
    /* a file of prefix "t-b" (with a higher step) is not taken for one of prefix "t" */
    char cmd[9000];
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", out_file("own", "t-1_6.safetensors"),
             out_file("own", "t-b-1_99.safetensors"));
    ck_assert_int_eq(system(cmd), 0);
    sm_config *c4 = load(PRETRAIN_YAML("own", 2, "1e-2"), "o4.yaml");
    logged[0] = '\0';
    sm_log_set(keep_log, NULL);
    sm_error_clear(&err);
    int rc = sm_train(reg, c4, NULL, &res, &err);
    sm_log_set(NULL, NULL);
    ck_assert_msg(rc == 0, "%s", err.text);
    ck_assert_msg(strstr(logged, "t-1_6.safetensors") && !strstr(logged, "t-b-1_99"), "%s", logged);
    ck_assert_int_eq(res.steps, 12);
    sm_config_free(c4);
    sm_config_free(c1);
    sm_config_free(c2);
    sm_config_free(c3);
}
END_TEST

/* Window 2 -> 3 resize of a Swin table: the geometric grid keeps the offsets 0 and ±1 of the
 * source exactly, so those rows/columns carry over unchanged; the rest is interpolated. */
START_TEST(test_table_resize)
{
    const char *src_yaml =
        "task: finetune\nmodel: {backbone: swin, patch_size: 2, embed_dim: 8, depth: [2],"
        " num_heads: [2], window_size: 4}\ntrain_config: {image_size: 16,"
        " num_classes: 3}\n";
    const char *dst_yaml =
        "task: finetune\nmodel: {backbone: swin, patch_size: 2, embed_dim: 8, depth: [2],"
        " num_heads: [2], window_size: 8}\ntrain_config: {image_size: 16,"
        " num_classes: 3}\n";
    sm_error err;
    sm_error_clear(&err);
    sm_model *ms = NULL, *md = NULL;
    sm_diag *d = sm_diag_new();
    sm_config *cs = NULL, *cd = NULL;
    ck_assert_int_eq(sm_config_read_string(src_yaml, strlen(src_yaml), "s", NULL, 0, &cs, d), 0);
    ck_assert_int_eq(sm_config_validate_model(cs, reg, d), 0);
    ck_assert_int_eq(sm_config_read_string(dst_yaml, strlen(dst_yaml), "d", NULL, 0, &cd, d), 0);
    ck_assert_int_eq(sm_config_validate_model(cd, reg, d), 0);
    ck_assert_int_eq(sm_model_new(reg, sm_config_root(cs), SM_TASK_CLASSIFY, &ms, &err), 0);
    ck_assert_int_eq(sm_model_new(reg, sm_config_root(cd), SM_TASK_CLASSIFY, &md, &err), 0);
    ck_assert_int_eq(sm_model_init(ms, 1, &err), 0);
    char path[4200];
    snprintf(path, sizeof path, "%s/w4.safetensors", tmp);
    sm_st_writer *w = sm_st_writer_new();
    sm_params *ps = sm_model_params(ms);
    for (size_t i = 0; i < sm_params_count(ps); i++) {
        sm_tensor *t = sm_params_at(ps, i);
        ck_assert_int_eq(
            sm_st_writer_add(w, t->name, SM_DTYPE_F32, t->ndim, t->shape, t->data, &err), 0);
    }
    ck_assert_int_eq(sm_st_writer_write(w, path, &err), 0);
    sm_st_writer_free(w);
    char note[512];
    ck_assert_int_eq(sm_model_load_weights(md, path, note, sizeof note, &err), 0);
    ck_assert_msg(strstr(note, "2 resized") != NULL, "%s", note);
    const char *tn = "layers.0.blocks.0.attn.relative_position_bias_table";
    const float *src = sm_params_find(ps, tn)->data;                  /* 7x7 x 2 heads   */
    const float *dst = sm_params_find(sm_model_params(md), tn)->data; /* 15x15 x 2 heads */
    for (int dy = -1; dy <= 1; dy++)
        for (int dx = -1; dx <= 1; dx++)
            for (int h = 0; h < 2; h++) {
                float a = src[((dy + 3) * 7 + (dx + 3)) * 2 + h];
                float b = dst[((dy + 7) * 15 + (dx + 7)) * 2 + h];
                ck_assert_msg(fabsf(a - b) <= 1e-6f * (1 + fabsf(a)), "(%d,%d,%d): %g vs %g", dy,
                              dx, h, a, b);
            }
    /* the corners (offset ±7) extrapolate a little beyond the source's ±3.x: finite values */
    for (int i = 0; i < 15 * 15 * 2; i++) ck_assert(isfinite(dst[i]));
    sm_model_free(ms);
    sm_model_free(md);
    sm_config_free(cs);
    sm_config_free(cd);
    sm_diag_free(d);
}
END_TEST

/* The reconstruction figure: panel by panel what it promises, per-image losses equal to the
 * model's own loss on a batch of that image alone. */
static uint8_t u8_of(float v, float mean, float std)
{
    double x = ((double)v * std + mean) * 255.0;
    return (uint8_t)(x < 0 ? 0 : x > 255 ? 255 : x + 0.5);
}

START_TEST(test_recon_figure)
{
    sm_config *cfg = load(PRETRAIN_YAML("fig", 1, "1e-3"), "fig.yaml");
    sm_model *m = NULL;
    sm_error err;
    sm_error_clear(&err);
    ck_assert_msg(sm_model_new(reg, sm_config_root(cfg), SM_TASK_SIMMIM, &m, &err) == 0, "%s",
                  err.text);
    ck_assert_int_eq(sm_model_init(m, 7, &err), 0);
    sm_ctx *ctx = sm_ctx_new(NULL);
    enum { N = 5, C = 3, S = 16, G = 4, PP = S / G };
    static float x[N * C * S * S], mk[N * G * G];
    sm_rng r;
    sm_rng_init(&r, 11, 0, 0, 0);
    for (int i = 0; i < N * C * S * S; i++) x[i] = (float)(3.0 * sm_rng_uniform(&r) - 1.5);
    for (int i = 0; i < N * G * G; i++) mk[i] = sm_rng_uniform(&r) < 0.5 ? 1.0f : 0.0f;
    const float mean[3] = {0.485f, 0.456f, 0.406f}, std[3] = {0.229f, 0.224f, 0.225f};
    char path[4200];
    snprintf(path, sizeof path, "%s/fig.png", tmp);
    double loss[N];
    ck_assert_msg(sm_recon_figure(m, ctx, x, mk, N, C, S, G, mean, std, path, loss, &err) == 0,
                  "%s", err.text);
    ck_assert(sm_ctx_grad(ctx)); /* modes restored */
    sm_image im;
    sm_image_init(&im);
    ck_assert_msg(sm_image_load(path, NULL, &im, NULL, &err) == 0, "%s", err.text);
    /* geometry (model.h): panels of K S pixels (each source pixel a K x K block), 4 white
     * pixels around and between them, a 22-pixel header row with the column labels */
    enum { K = 8, P = K * S, PAD = 4, HDR = 22 };
    int W = 4 * P + 5 * PAD;
    ck_assert_int_eq(im.width, W);
    ck_assert_int_eq(im.height, HDR + N * P + (N + 1) * PAD);
    ck_assert_int_eq(im.channels, 3);
    /* the header: dark (text) pixels above each column, white elsewhere around it */
    for (int col = 0; col < 4; col++) {
        int dark = 0;
        for (int y = 0; y < HDR; y++)
            for (int xx = PAD + col * (P + PAD); xx < (col + 1) * (P + PAD); xx++)
                dark += im.data[((size_t)y * W + xx) * 3] < 100;
        ck_assert_msg(dark >= 10, "header column %d: %d dark pixels (no label?)", col, dark);
    }
    for (int y = HDR; y < im.height; y++) /* the gaps around the panels stay white */
        for (int xx = 0; xx < W; xx++) {
            int ry = (y - HDR) % (P + PAD), rx = xx % (P + PAD);
            if (ry < PAD || rx < PAD)
                ck_assert_msg(im.data[((size_t)y * W + xx) * 3] == 255, "gap pixel (%d, %d)", xx, y);
        }
    for (int i = 0; i < N; i++) {
        /* the same image alone: its loss and reconstruction */
        sm_ctx_reset(ctx);
        sm_ctx_set_grad(ctx, false);
        sm_ctx_set_train(ctx, false);
        sm_tensor *xr = NULL;
        sm_tensor *l = sm_model_simmim(m, ctx, sm_ctx_wrap(ctx, x + i * C * S * S, 4, SM_SHAPE(1, C, S, S)),
                                       sm_ctx_wrap(ctx, mk + i * G * G, 3, SM_SHAPE(1, G, G)), &xr);
        ck_assert_msg(l && xr, "%s", sm_ctx_error(ctx)->text);
        ck_assert_msg(fabs(loss[i] - l->data[0]) <= 1e-5 * fabs(l->data[0]), "image %d: loss %g, model %g",
                      i, loss[i], l->data[0]);
        /* every figure pixel of row i: the block of source pixel (y / K, xx / K) */
        for (int y = 0; y < P; y++)
            for (int xx = 0; xx < P; xx++)
                for (int c = 0; c < C; c++) {
                    int sy = y / K, sx = xx / K;
                    bool masked = mk[i * G * G + (sy / PP) * G + sx / PP] > 0.5f;
                    float v[4];
                    for (int col = 0; col < 4; col++)
                        v[col] = im.data[((size_t)(HDR + PAD + i * (P + PAD) + y) * W + PAD +
                                          col * (P + PAD) + xx) * 3 + c];
                    int off = ((i * C + c) * S + sy) * S + sx;
                    ck_assert_int_eq((int)v[0], u8_of(x[off], mean[c], std[c]));
                    ck_assert_int_eq((int)v[1], masked ? 96 : (int)v[0]);
                    ck_assert_int_le(abs((int)v[2] - u8_of(xr->data[off - i * C * S * S], mean[c], std[c])), 1);
                    ck_assert_int_eq((int)v[3], masked ? (int)v[2] : (int)v[0]);
                }
    }
    sm_ctx_set_grad(ctx, true);
    /* bad geometry and an unwritable path are errors, not crashes */
    ck_assert_int_eq(sm_recon_figure(m, ctx, x, mk, N, C, S, 3, mean, std, path, NULL, &err), SM_EINVAL);
    snprintf(path, sizeof path, "%s/no/such/dir/fig.png", tmp);
    sm_error_clear(&err);
    ck_assert_int_eq(sm_recon_figure(m, ctx, x, mk, 1, C, S, G, mean, std, path, NULL, &err), SM_EIO);
    char line[SM_ERROR_LINE_MAX];
    sm_error_format(&err, line, sizeof line);
    ck_assert_msg(strstr(line, "no/such/dir/fig.png: cannot create") != NULL, "%s", line);
    sm_image_deinit(&im);
    sm_ctx_free(ctx);
    sm_model_free(m);
    sm_config_free(cfg);
}
END_TEST

/* The thread count of the kernels and the number of loader workers do not change a single bit
 * of the result (docs/reproducibility.md). */
static char *with_threads(const char *yaml, int threads, int workers)
{
    static char buf[2][4096];
    static int slot;
    char *o = buf[slot++ % 2];
    /* batch 8 of 32 px: the MLP's 512 x 64 activations are big enough to be split */
    const char *t = strstr(yaml, "batch_size: 4, image_size: 16"),
               *w = strstr(yaml, "num_workers: 2"), *b = strstr(yaml, "backend: {name: ref}");
    ck_assert(t && w && b && t < w && w < b);
    snprintf(o, sizeof buf[0],
             "%.*sbatch_size: 8, image_size: 32%.*snum_workers: %d%.*sbackend: {name: ref, "
             "threads: %d}%s",
             (int)(t - yaml), yaml, (int)(w - (t + 29)), t + 29, workers, (int)(b - (w + 14)),
             w + 14, threads, b + strlen("backend: {name: ref}"));
    return o;
}

START_TEST(test_threads_do_not_change_results)
{
    write_images(tmp, 24, false);
    sm_error err;
    sm_error_clear(&err);
    sm_train_result a, b;
    sm_config *ca = load(with_threads(PRETRAIN_YAML("thr1", 1, "1e-2"), 1, 0), "t1.yaml");
    sm_config *cb = load(with_threads(PRETRAIN_YAML("thr3", 1, "1e-2"), 3, 3), "t3.yaml");
    ck_assert_msg(sm_train(reg, ca, NULL, &a, &err) == 0, "%s", err.text);
    ck_assert_msg(sm_train(reg, cb, NULL, &b, &err) == 0, "%s", err.text);
    ck_assert_int_eq(count_lines(out_file("thr3", "config.yaml"), "threads: 3"), 1);
    ck_assert_int_eq(count_lines(out_file("thr3", "config.yaml"), "image_size: 32"), 1);
    const char *names[] = {"encoder.blocks.1.mlp.fc1.weight", "decoder.0.weight",
                           "optimizer.exp_avg_sq.encoder.patch_embed.proj.weight"};
    int64_t sizes[] = {64 * 16, 48 * 16, 16 * 3 * 4 * 4};
    assert_same_tensors(a.checkpoint, b.checkpoint, names, sizes, 3,
                        "between 1 thread / 0 workers and 3 threads / 3 workers");
    sm_config_free(ca);
    sm_config_free(cb);
}
END_TEST

/* simmimctl probe on features with a known answer: well-separated classes are learned (100 %
 * on new examples), labels unrelated to the features are not (near chance), and unusable
 * inputs are refused. */
static void write_features(const char *path, int n, int f, int classes, bool random_labels,
                           uint64_t seed, bool unlabeled)
{
    float *x = malloc((size_t)n * f * sizeof *x);
    int64_t *y = malloc((size_t)n * sizeof *y);
    sm_rng r;
    sm_rng_init(&r, seed, 0, 0, 0);
    for (int i = 0; i < n; i++) {
        int c = i % classes;
        for (int j = 0; j < f; j++) /* centre: +-3 on feature c, noise 0.5 */
            x[i * f + j] = (float)((j == c ? 3.0 : 0.0) + sm_rng_normal(&r) * 0.5 + 10.0);
        y[i] = unlabeled ? -1 : random_labels ? (int64_t)(sm_rng_u64(&r) % (uint64_t)classes) : c;
    }
    sm_st_writer *w = sm_st_writer_new();
    ck_assert_int_eq(sm_st_writer_add(w, "features", SM_DTYPE_F32, 2, SM_SHAPE(n, f), x, NULL), 0);
    ck_assert_int_eq(sm_st_writer_add(w, "labels", SM_DTYPE_I64, 1, SM_SHAPE(n), y, NULL), 0);
    ck_assert_int_eq(sm_st_writer_write(w, path, NULL), 0);
    sm_st_writer_free(w);
    free(x);
    free(y);
}

/* eval top-1 of the linear probe; *knn gets the 5-NN top-1 */
static double probe_top1(const char *train, const char *eval, int *status, double *knn)
{
    char cmd[9000], out[4200];
    snprintf(out, sizeof out, "%s/probe.out", tmp);
    snprintf(cmd, sizeof cmd, "'%s' probe '%s' '%s' --epochs 30 --knn 5 --backend ref >'%s' 2>&1",
             getenv("SIMMIMCTL"), train, eval, out);
    int rc = system(cmd);
    *status = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
    char *text = sm_test_read_file(out, NULL);
    const char *p = text ? strstr(text, "probe: eval top-1 ") : NULL;
    double top1 = -1;
    if (p) sscanf(p + 18, "%lf", &top1);
    p = text ? strstr(text, "5-NN (cosine, weighted) eval top-1 ") : NULL;
    *knn = -1;
    if (p) sscanf(p + 35, "%lf", knn);
    if (*status != 0) fprintf(stderr, "%s", text ? text : "");
    free(text);
    return top1;
}

START_TEST(test_probe)
{
    ck_assert_msg(getenv("SIMMIMCTL") != NULL, "SIMMIMCTL is not set (run through make check)");
    char tr[4200], ev[4200], rtr[4200], rev[4200], narrow[4200], unl[4200];
    snprintf(tr, sizeof tr, "%s/tr.safetensors", tmp);
    snprintf(ev, sizeof ev, "%s/ev.safetensors", tmp);
    snprintf(rtr, sizeof rtr, "%s/rtr.safetensors", tmp);
    snprintf(rev, sizeof rev, "%s/rev.safetensors", tmp);
    snprintf(narrow, sizeof narrow, "%s/narrow.safetensors", tmp);
    snprintf(unl, sizeof unl, "%s/unl.safetensors", tmp);
    write_features(tr, 300, 6, 3, false, 1, false);
    write_features(ev, 150, 6, 3, false, 2, false);
    write_features(rtr, 300, 6, 3, true, 3, false);
    write_features(rev, 300, 6, 3, true, 4, false);
    write_features(narrow, 30, 5, 3, false, 5, false);
    write_features(unl, 30, 6, 3, false, 6, true);
    int st;
    double kn;
    double a = probe_top1(tr, ev, &st, &kn);
    ck_assert_int_eq(st, 0);
    ck_assert_msg(a == 100.0 && kn == 100.0, "separable classes: eval top-1 %g, 5-NN %g", a, kn);
    a = probe_top1(rtr, rev, &st, &kn);
    ck_assert_int_eq(st, 0);
    ck_assert_msg(a >= 0 && a < 50.0 && kn >= 0 && kn < 50.0,
                  "random labels: eval top-1 %g, 5-NN %g (chance 33 %%)", a, kn);
    probe_top1(tr, narrow, &st, &kn);
    ck_assert_int_eq(st, 1);
    probe_top1(unl, ev, &st, &kn);
    ck_assert_int_eq(st, 1);
    char *text = sm_test_read_file(out_file(".", "probe.out"), NULL);
    ck_assert_msg(text && strstr(text, "needs labeled data"), "%s", text ? text : "");
    free(text);
}
END_TEST

/* A stop that arrives on the last step of an epoch ends that epoch normally (its checkpoint,
 * the same "stop requested" line as mid-epoch), then the run resumes with the next epoch. */
static char stop_lines[8][256];
static int n_stop_lines;
static void stop_at_epoch_end(sm_log_level lvl, const char *msg, void *user)
{
    stop_after_steps(lvl, msg, user);
    if (strstr(msg, "stop requested") && n_stop_lines < 8)
        snprintf(stop_lines[n_stop_lines++], sizeof stop_lines[0], "%s", msg);
}

START_TEST(test_stop_at_epoch_end)
{
    write_images(tmp, 24, false);
    sm_error err;
    sm_error_clear(&err);
    sm_train_result r;
    sm_config *c = load(PRETRAIN_YAML("edge", 2, "1e-2"), "e.yaml");
    int limit = 6; /* the last of epoch 1's 6 steps */
    steps_logged = 0;
    stop_flag = 0;
    n_stop_lines = 0;
    sm_log_set(stop_at_epoch_end, &limit);
    sm_train_opts opts = {.stop = &stop_flag};
    int rc = sm_train(reg, c, &opts, &r, &err);
    sm_log_set(NULL, NULL);
    ck_assert_int_eq(rc, SM_ECANCELED);
    ck_assert_msg(strstr(err.text, "stopped after epoch 1") != NULL, "%s", err.text);
    ck_assert_msg(strstr(r.checkpoint, "t-1_6.safetensors") != NULL, "%s", r.checkpoint);
    ck_assert_int_eq(n_stop_lines, 1);
    ck_assert_msg(strstr(stop_lines[0], "at the end of epoch 1") != NULL, "%s", stop_lines[0]);
    sm_error_clear(&err);
    ck_assert_int_eq(sm_train(reg, c, NULL, &r, &err), 0);
    ck_assert_int_eq(r.steps, 12);
    sm_config_free(c);
}
END_TEST

static Suite *train_suite(void)
{
    Suite *s = suite_create("train");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_pretrain_outputs);
    tcase_add_test(tc, test_resume_is_exact);
    tcase_add_test(tc, test_ema);
    tcase_add_test(tc, test_corrupt_checkpoint_skipped);
    tcase_add_test(tc, test_runtime_errors);
    tcase_add_test(tc, test_finetune_from_pretraining);
    tcase_add_test(tc, test_output_dir_ownership);
    tcase_add_test(tc, test_table_resize);
    tcase_add_test(tc, test_recon_figure);
    tcase_add_test(tc, test_threads_do_not_change_results);
    tcase_add_test(tc, test_probe);
    tcase_add_test(tc, test_stop_at_epoch_end);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return sm_test_run(train_suite()); }
