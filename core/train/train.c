/* core/train/train.c - the training loop: SimMIM pretraining, fine-tuning with evaluation, and
 * evaluation alone (include/simmim/train.h).
 *
 * One optimizer step (microsoft/SimMIM main_simmim.py / main_finetune.py, RingMo-Framework):
 *   batch from the loader -> forward (SimMIM loss, or classifier + soft-target/label-smoothed
 *   cross-entropy) -> backward -> global-norm gradient clipping (train_wrapper) -> per-parameter
 *   learning rate = schedule(step) x batch/512 (RingMo's rule for arch simmim) x layer-decay
 *   scale, weight decay 0 for 1-D / bias / skip-listed parameters -> optimizer step.
 * A step is a pure function of (config, seed, step, data): the loader's randomness is keyed by
 * (seed, epoch, sample) and drop path by (seed, step), so a resumed run continues exactly. */
#include "base/internal.h"
#include "train/train_internal.h"

#include "simmim/loader.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef struct sm__run {
    const sm_registry *reg;
    const sm_cfg *root;
    const sm_train_opts *opts;
    const char *task; /* pretrain | finetune | eval */
    const char *data_section;
    char out_dir[PATH_MAX];
    char prefix[128];
    int lock_fd;
    FILE *metrics;
    char *yaml;
    uint64_t seed;
    sm_backend *be;
    sm_ctx *ctx;
    sm_model *model;
    sm_dataset ds, eval_ds;
    sm_pipeline pipe, eval_pipe;
    sm_loader *loader, *eval_loader;
    const sm_optimizer_vtbl *ovt;
    void *opt;
    const sm_scheduler_vtbl *svt;
    void *sched;
    float *lr, *wd;
    double *lr_scale;
    double lr_factor, clip_norm;
    int64_t epochs, spe, batch_size;
    int64_t eval_offset; /* evaluate after epoch e (1-based) when e % interval == offset */
    double t_start;
    int64_t images_seen;
    /* pretraining: the first images of the latest batch and their masks, for the
     * reconstruction figure written with each checkpoint */
    float *vis_images, *vis_mask;
    int vis_n, vis_c, vis_s, vis_g;
} sm__run;

static double sm__now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* "42s", "7m05s", "3h12m" */
static void sm__duration(double secs, char *buf, size_t n)
{
    long s = secs > 0 && secs < 1e9 ? (long)(secs + 0.5) : 0;
    if (s < 60)
        snprintf(buf, n, "%lds", s);
    else if (s < 3600)
        snprintf(buf, n, "%ldm%02lds", s / 60, s % 60);
    else
        snprintf(buf, n, "%ldh%02ldm", s / 3600, (s % 3600) / 60);
}

/* ---- output directory ---------------------------------------------------------------------- */

/* mkdir -p; *created tells whether the last component was made here. */
static int sm__mkdirs(const char *path, bool *created, sm_error *err)
{
    *created = false;
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return sm_error_set(err, SM_EINVAL, path, 0, 0, "output_dir", "path too long");
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            if (mkdir(buf, 0777) == 0)
                *created = !c;
            else if (errno != EEXIST)
                return sm_error_set(err, SM_EIO, buf, 0, 0, "output_dir",
                                    "cannot create the output directory: %s", strerror(errno));
            *p = c;
            if (!c) break;
        }
    }
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return sm_error_set(err, SM_EIO, path, 0, 0, "output_dir", "not a directory");
    if (access(path, W_OK) != 0)
        return sm_error_set(err, SM_EIO, path, 0, 0, "output_dir",
                            "the output directory is not writable: %s", strerror(errno));
    return 0;
}

/* One run per output directory: an exclusive lock on <dir>/.lock, released at exit. */
static int sm__lock_dir(sm__run *r, sm_error *err)
{
    char path[PATH_MAX + 8];
    snprintf(path, sizeof path, "%s/.lock", r->out_dir);
    r->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (r->lock_fd < 0)
        return sm_error_set(err, SM_EIO, path, 0, 0, NULL, "cannot create the lock file: %s",
                            strerror(errno));
    if (flock(r->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        char pid[32] = "";
        ssize_t n = pread(r->lock_fd, pid, sizeof pid - 1, 0);
        pid[n > 0 ? n : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        close(r->lock_fd);
        r->lock_fd = -1;
        return sm_error_set(err, SM_EIO, r->out_dir, 0, 0, "output_dir",
                            "another run (pid %s) is using this output directory",
                            pid[0] ? pid : "?");
    }
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(r->lock_fd, 0) != 0 || pwrite(r->lock_fd, pid, (size_t)n, 0) != n)
        return sm_error_set(err, SM_EIO, path, 0, 0, NULL, "cannot write the lock file: %s",
                            strerror(errno));
    return 0;
}

/* Removes temporary files that an interrupted run left (a checkpoint or a summary being written
 * when the process was killed: "<name>.tmp.<pid>[.<n>]"). Called with the directory locked, so
 * no other run is writing them. */
static void sm__remove_stale_temps(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *de;
    while ((de = readdir(d))) {
        const char *t = strstr(de->d_name, ".tmp.");
        if (!t || t == de->d_name || !isdigit((unsigned char)t[5])) continue;
        char path[PATH_MAX + 256];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        if (unlink(path) == 0) sm_log(SM_LOG_WARN, "removed %s, left by an interrupted run", path);
    }
    closedir(d);
}

/* Writes text to dir/name through a temporary file and a rename. */
static int sm__write_file(const char *dir, const char *name, const char *text, sm_error *err)
{
    char path[PATH_MAX + 64], tmp[PATH_MAX + 80];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f) return sm_error_set(err, SM_EIO, tmp, 0, 0, NULL, "cannot write: %s", strerror(errno));
    size_t len = strlen(text);
    bool ok = fwrite(text, 1, len, f) == len;
    ok = fflush(f) == 0 && ok;
    ok = fsync(fileno(f)) == 0 && ok;
    int e = errno;
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        e = ok ? errno : e;
        unlink(tmp);
        return sm_error_set(err, SM_EIO, path, 0, 0, NULL, "cannot write: %s", strerror(e));
    }
    return 0;
}

/* Opens metrics.jsonl for appending, first dropping the records of work the run will redo: the
 * steps, epochs and evaluations at or after the state it starts from (all of them for a fresh
 * start), and a last line cut short when a process was killed while writing it. */
static int sm__metrics_open(sm__run *r, const sm__ckpt_state *st, bool append_only, sm_error *err)
{
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/metrics.jsonl", r->out_dir);
    FILE *in = append_only ? NULL : fopen(path, "r");
    if (in) {
        char tmp[PATH_MAX + 64];
        snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
        FILE *out = fopen(tmp, "w");
        if (!out) {
            fclose(in);
            return sm_error_set(err, SM_EIO, tmp, 0, 0, NULL, "cannot write: %s", strerror(errno));
        }
        char *line = NULL;
        size_t cap = 0;
        ssize_t n;
        size_t dropped = 0;
        while ((n = getline(&line, &cap, in)) > 0) {
            json_t *o = line[n - 1] == '\n' ? json_loads(line, 0, NULL) : NULL;
            const char *ev = o ? json_string_value(json_object_get(o, "event")) : NULL;
            json_int_t step = o ? json_integer_value(json_object_get(o, "step")) : 0;
            json_int_t epoch = o ? json_integer_value(json_object_get(o, "epoch")) : 0;
            bool keep = ev && (!strcmp(ev, "step") ? step < st->step : epoch < st->epoch);
            if (keep)
                fputs(line, out);
            else
                dropped++;
            json_decref(o);
        }
        free(line);
        fclose(in);
        bool ok = fflush(out) == 0 && fsync(fileno(out)) == 0;
        ok = fclose(out) == 0 && ok;
        if (!ok || rename(tmp, path) != 0) {
            unlink(tmp);
            return sm_error_set(err, SM_EIO, path, 0, 0, NULL, "cannot rewrite: %s",
                                strerror(errno));
        }
        if (dropped && st->step)
            sm_log(SM_LOG_INFO, "metrics.jsonl: %zu records after step %lld dropped (redone)",
                   dropped, (long long)st->step);
    }
    if (!(r->metrics = fopen(path, "a")))
        return sm_error_set(err, SM_EIO, path, 0, 0, NULL, "cannot open: %s", strerror(errno));
    return 0;
}

/* Appends one JSON object (stolen) to metrics.jsonl and flushes it. */
static int sm__metric(sm__run *r, json_t *obj, sm_error *err)
{
    if (!obj) return sm_error_set(err, SM_ENOMEM, NULL, 0, 0, NULL, "out of memory");
    int rc = 0;
    if (json_dumpf(obj, r->metrics, JSON_COMPACT) != 0 || fputc('\n', r->metrics) == EOF ||
        fflush(r->metrics) != 0) {
        rc = sm_error_set(err, SM_EIO, r->out_dir, 0, 0, NULL, "cannot append to metrics.jsonl: %s",
                          strerror(errno));
    }
    json_decref(obj);
    return rc;
}

/* A JSON number, or null when not finite (JSON has no NaN). */
static json_t *sm__jnum(double v) { return isfinite(v) ? json_real(v) : json_null(); }

/* ---- setup ---------------------------------------------------------------------------------- */

static int sm__setup_data(sm__run *r, sm_error *err)
{
    bool pre = strcmp(r->task, "pretrain") == 0;
    sm_dataset_opts dopts = {.split = SM_SPLIT_TRAIN, .seed = r->seed, .out_dir = r->out_dir};
    int rc = 0;
    if (strcmp(r->task, "eval") != 0) {
        sm_loader_opts lo;
        if ((rc = sm_dataset_open(&r->ds, r->reg, r->root, r->data_section, &dopts, err)) ||
            (rc = sm_pipeline_from_config(&r->pipe, r->root, r->data_section,
                                          pre ? SM_PIPELINE_PRETRAIN : SM_PIPELINE_FINETUNE, err)))
            return rc;
        sm_loader_opts_from_config(&lo, r->root, r->data_section, SM_SPLIT_TRAIN);
        if ((rc = sm_loader_new(&r->ds, &r->pipe, &lo, &r->loader, err))) return rc;
    }
    if (!pre) {
        sm_loader_opts lo;
        dopts.split = SM_SPLIT_EVAL;
        if ((rc = sm_dataset_open(&r->eval_ds, r->reg, r->root, r->data_section, &dopts, err)) ||
            (rc = sm_pipeline_from_config(&r->eval_pipe, r->root, r->data_section, SM_PIPELINE_EVAL,
                                          err)))
            return rc;
        sm_loader_opts_from_config(&lo, r->root, r->data_section, SM_SPLIT_EVAL);
        if ((rc = sm_loader_new(&r->eval_ds, &r->eval_pipe, &lo, &r->eval_loader, err))) return rc;
    }
    return 0;
}

static int sm__setup_model(sm__run *r, sm_error *err)
{
    bool pre = strcmp(r->task, "pretrain") == 0;
    int classes = 0;
    if (!pre) {
        const sm_dataset *ds = r->loader ? &r->ds : &r->eval_ds;
        int dc = ds->vt->num_classes(ds->self);
        if (sm_cfg_is_null(r->root, "train_config.num_classes"))
            classes = dc;
        else if (sm_cfg_int(r->root, "train_config.num_classes") < dc)
            return sm_error_set(err, SM_ECONFIG, NULL, 0, 0, "train_config.num_classes",
                                "%lld is fewer than the %d classes of the dataset",
                                (long long)sm_cfg_int(r->root, "train_config.num_classes"), dc);
    }
    int rc = sm_model_new_classes(r->reg, r->root, pre ? SM_TASK_SIMMIM : SM_TASK_CLASSIFY, classes,
                                  &r->model, err);
    if (!rc) rc = sm_model_init(r->model, r->seed, err);
    return rc;
}

static int sm__setup_optim(sm__run *r, sm_error *err)
{
    const sm_cfg *os = sm_cfg_get(r->root, "optimizer"), *ls = sm_cfg_get(r->root, "lr_schedule");
    const sm_component *oc =
        sm_registry_lookup(r->reg, SM_KIND_OPTIMIZER, sm_cfg_str(os, "optim_name"), err);
    const sm_component *sc =
        oc ? sm_registry_lookup(r->reg, SM_KIND_SCHEDULER, sm_cfg_str(ls, "lr_type"), err) : NULL;
    if (!oc || !sc) return SM_ENOTFOUND;
    r->ovt = (const sm_optimizer_vtbl *)oc;
    r->svt = (const sm_scheduler_vtbl *)sc;
    sm_params *p = sm_model_params(r->model);
    int rc = r->ovt->create(os, p, &r->opt, err);
    sm_schedule_opts so = {.steps_per_epoch = r->spe, .epochs = r->epochs};
    if (!rc) rc = r->svt->create(ls, &so, &r->sched, err);
    if (rc) return rc;
    size_t np = sm_params_count(p);
    r->lr = calloc(np, sizeof *r->lr);
    r->wd = calloc(np, sizeof *r->wd);
    r->lr_scale = calloc(np, sizeof *r->lr_scale);
    if (!r->lr || !r->wd || !r->lr_scale)
        return sm_error_set(err, SM_ENOMEM, NULL, 0, 0, NULL, "out of memory");
    double wd = sm_cfg_float(os, "weight_decay"), decay = sm_cfg_float(os, "layer_decay");
    int L = sm_model_num_layers(r->model);
    size_t no_decay = 0;
    for (size_t i = 0; i < np; i++) {
        const char *name = sm_params_at(p, i)->name;
        bool nd = sm_model_no_weight_decay(r->model, name);
        r->wd[i] = nd ? 0.0f : (float)wd;
        no_decay += nd;
        r->lr_scale[i] = decay < 1.0 ? pow(decay, L - 1 - sm_model_layer_id(r->model, name)) : 1.0;
    }
    /* RingMo-Framework (build_lr._check_lr_config) and the official SimMIM scale every learning
     * rate of arch simmim by the global batch over 512. */
    const char *arch = sm_cfg_str(r->root, "arch");
    r->lr_factor = (!arch || !strcmp(arch, "simmim")) ? (double)r->batch_size / 512.0 : 1.0;
    sm_log(SM_LOG_INFO,
           "optimizer %s (weight decay %g on %zu of %zu tensors, layer decay %g over %d layer "
           "ids), schedule %s over %lld steps (%lld per epoch), learning rates x %g (batch %lld "
           "/ 512)",
           oc->name, wd, np - no_decay, np, decay, L, sc->name, (long long)(r->epochs * r->spe),
           (long long)r->spe, r->lr_factor, (long long)r->batch_size);
    return 0;
}

/* ---- one step ---------------------------------------------------------------------------------
 */

/* Global L2 norm of all gradients, summed in fixed blocks (thread-count independent). */
static double sm__grad_norm(sm_params *p)
{
    const float *g = sm_params_grads(p);
    int64_t n = sm_params_numel(p);
    enum { BLOCK = 1 << 16 };
    int64_t nb = (n + BLOCK - 1) / BLOCK;
    double *part = malloc((size_t)(nb ? nb : 1) * sizeof *part);
    if (!part) return NAN;
#pragma omp parallel for schedule(static)
    for (int64_t b = 0; b < nb; b++) {
        double s = 0;
        int64_t end = (b + 1) * BLOCK < n ? (b + 1) * BLOCK : n;
        for (int64_t i = b * BLOCK; i < end; i++) s += (double)g[i] * g[i];
        part[b] = s;
    }
    double total = 0;
    for (int64_t b = 0; b < nb; b++) total += part[b];
    free(part);
    return sqrt(total);
}

static void sm__scale_grads(sm_params *p, float s)
{
    float *g = sm_params_grads(p);
    int64_t n = sm_params_numel(p);
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) g[i] *= s;
}

/* Forward + backward of one batch; returns the loss (and the number correct for finetuning). */
static int sm__forward_backward(sm__run *r, const sm_batch *b, int64_t step, double *loss_out,
                                sm_error *err)
{
    sm_ctx *ctx = r->ctx;
    sm_ctx_reset(ctx);
    sm_ctx_set_train(ctx, true);
    sm_ctx_set_grad(ctx, true);
    sm_ctx_set_rng(ctx, r->seed, (uint64_t)step);
    sm_tensor *x =
        sm_ctx_wrap(ctx, b->images, 4, SM_SHAPE(b->size, b->channels, b->height, b->width));
    sm_tensor *loss = NULL;
    if (sm_model_task(r->model) == SM_TASK_SIMMIM) {
        sm_tensor *mask =
            sm_ctx_wrap(ctx, b->mask, 3, SM_SHAPE(b->size, b->mask_side, b->mask_side));
        loss = sm_model_simmim(r->model, ctx, x, mask, NULL);
    } else {
        sm_tensor *logits = sm_model_logits(r->model, ctx, x);
        if (b->targets) {
            sm_tensor *t = sm_ctx_wrap(ctx, b->targets, 2, SM_SHAPE(b->size, b->num_classes));
            loss = sm_soft_cross_entropy(ctx, logits, t);
        } else {
            int64_t *labels = sm_ctx_alloc(ctx, (size_t)b->size * sizeof *labels);
            for (int i = 0; labels && i < b->size; i++) labels[i] = b->labels[i];
            const sm_cfg *ds = sm_cfg_get(r->root, r->data_section);
            loss =
                sm_cross_entropy(ctx, logits, labels, (float)sm_cfg_float(ds, "label_smoothing"));
        }
    }
    sm_params_zero_grad(sm_model_params(r->model));
    if (loss) sm_backward(ctx, loss);
    if (sm_ctx_status(ctx)) {
        *err = *sm_ctx_error(ctx);
        return err->code;
    }
    *loss_out = loss->data[0];
    return 0;
}

/* ---- evaluation -------------------------------------------------------------------------------
 */

static int sm__evaluate(sm__run *r, int64_t epoch, double *top1, double *top5, sm_error *err)
{
    int rc = sm_loader_start(r->eval_loader, 0, 0, 0, err);
    sm__confusion conf;
    if (!rc && sm__confusion_init(&conf, sm_model_num_classes(r->model)))
        rc = sm_error_set(err, SM_ENOMEM, NULL, 0, 0, NULL, "out of memory");
    if (rc) return rc;
    int64_t n = 0, c1 = 0, c5 = 0;
    double loss_sum = 0;
    const sm_batch *b;
    double t0 = sm__now();
    while (!rc && (rc = sm_loader_next(r->eval_loader, &b, err)) == 0 && b) {
        sm_ctx_reset(r->ctx);
        sm_ctx_set_train(r->ctx, false);
        sm_ctx_set_grad(r->ctx, false);
        sm_tensor *x =
            sm_ctx_wrap(r->ctx, b->images, 4, SM_SHAPE(b->size, b->channels, b->height, b->width));
        sm_tensor *logits = sm_model_logits(r->model, r->ctx, x);
        if (!logits) {
            *err = *sm_ctx_error(r->ctx);
            rc = err->code;
            break;
        }
        int K = (int)logits->shape[1];
        for (int i = 0; i < b->size; i++) {
            const float *z = logits->data + (int64_t)i * K;
            int y = b->labels[i];
            if (y < 0 || y >= K) continue; /* padding */
            int rank = 0, top = 0;
            double mx = z[0];
            for (int k = 1; k < K; k++) {
                mx = fmax(mx, z[k]);
                top = z[k] > z[top] ? k : top;
            }
            sm__confusion_add(&conf, y, top);
            double se = 0;
            for (int k = 0; k < K; k++) {
                se += exp((double)z[k] - mx);
                rank += z[k] > z[y] || (z[k] == z[y] && k < y);
            }
            loss_sum += log(se) + mx - z[y];
            c1 += rank < 1;
            c5 += rank < 5;
            n++;
        }
        if (r->opts && r->opts->stop && *r->opts->stop) {
            rc = sm_error_set(err, SM_ECANCELED, NULL, 0, 0, NULL, "stopped during evaluation");
            break;
        }
    }
    sm_ctx_set_grad(r->ctx, true);
    if (rc) {
        sm__confusion_deinit(&conf);
        return rc;
    }
    *top1 = n ? 100.0 * (double)c1 / (double)n : 0;
    *top5 = n ? 100.0 * (double)c5 / (double)n : 0;
    double loss = n ? loss_sum / (double)n : NAN, mean_acc = sm__confusion_mean_acc(&conf);
    char when[48] = "", lowest[512]; /* epochs count from 1 in the log, from 0 in metrics.jsonl */
    if (strcmp(r->task, "eval") != 0)
        snprintf(when, sizeof when, " after epoch %lld", (long long)epoch + 1);
    sm__confusion_lowest(&conf, 3, r->eval_ds.vt, r->eval_ds.self, lowest, sizeof lowest);
    sm_log(SM_LOG_INFO,
           "eval%s: %lld images, top-1 %.2f %%, top-5 %.2f %%, mean class accuracy %.2f %%, "
           "loss %.4f (%.1f s); lowest classes: %s",
           when, (long long)n, *top1, *top5, mean_acc, loss, sm__now() - t0, lowest);
    json_t *per_class = json_array();
    for (int k = 0; k < conf.classes && per_class; k++)
        json_array_append_new(per_class, sm__jnum(sm__confusion_class_acc(&conf, k)));
    rc = sm__metric(r,
                    json_pack("{s:s, s:I, s:I, s:o, s:o, s:o, s:o, s:o*}", "event", "eval",
                              "epoch", (json_int_t)epoch, "images", (json_int_t)n, "top1",
                              sm__jnum(*top1), "top5", sm__jnum(*top5), "loss", sm__jnum(loss),
                              "mean_class_top1", sm__jnum(mean_acc), "per_class_top1",
                              per_class),
                    err);
    char *csv = rc ? NULL : sm__confusion_csv(&conf, r->eval_ds.vt, r->eval_ds.self);
    if (!rc && !csv) rc = sm_error_set(err, SM_ENOMEM, NULL, 0, 0, NULL, "out of memory");
    if (!rc)
        rc = sm__write_file(r->out_dir, strcmp(r->task, "eval") ? "confusion.csv"
                                                                : "eval-confusion.csv",
                            csv, err);
    free(csv);
    sm__confusion_deinit(&conf);
    return rc;
}

/* ---- reconstruction figure (pretraining) ---------------------------------------------------- */

enum { SM__VIS_MAX = 4 };

static void sm__keep_for_figure(sm__run *r, const sm_batch *b)
{
    int n = b->size < SM__VIS_MAX ? b->size : SM__VIS_MAX;
    size_t img = (size_t)b->channels * b->height * b->width;
    size_t msk = (size_t)b->mask_side * b->mask_side;
    if (!r->vis_images || !r->vis_mask) {
        free(r->vis_images);
        free(r->vis_mask);
        r->vis_images = malloc((size_t)SM__VIS_MAX * img * sizeof(float));
        r->vis_mask = malloc((size_t)SM__VIS_MAX * msk * sizeof(float));
        if (!r->vis_images || !r->vis_mask) {
            free(r->vis_images);
            free(r->vis_mask);
            r->vis_images = r->vis_mask = NULL;
            r->vis_n = 0;
            return;
        }
    }
    memcpy(r->vis_images, b->images, (size_t)n * img * sizeof(float));
    memcpy(r->vis_mask, b->mask, (size_t)n * msk * sizeof(float));
    r->vis_n = n;
    r->vis_c = b->channels;
    r->vis_s = b->height;
    r->vis_g = b->mask_side;
}

/* recon-<epoch>.png from the kept images (sm_recon_figure). Failures are only logged: a figure
 * never stops a run. */
static void sm__write_figure(sm__run *r, int64_t epoch)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/recon-%lld.png", r->out_dir, (long long)epoch);
    sm_error e;
    sm_error_clear(&e);
    if (sm_recon_figure(r->model, r->ctx, r->vis_images, r->vis_mask, r->vis_n, r->vis_c,
                        r->vis_s, r->vis_g, r->pipe.mean, r->pipe.std, path, NULL, &e) == 0)
        sm_log(SM_LOG_INFO,
               "reconstructions: %s (input, masked input, reconstruction, masked patches "
               "reconstructed)",
               path);
    else {
        char msg[SM_ERROR_LINE_MAX];
        sm_error_format(&e, msg, sizeof msg);
        sm_log(SM_LOG_WARN, "cannot write the reconstruction figure: %s", msg);
    }
}

/* ---- checkpoints ------------------------------------------------------------------------------
 */

static int sm__save(sm__run *r, const sm__ckpt_state *st, int64_t epochs_done, sm_train_result *res,
                    sm_error *err)
{
    char path[PATH_MAX + 256];
    snprintf(path, sizeof path, "%s/%s-%lld_%lld.safetensors", r->out_dir, r->prefix,
             (long long)epochs_done, (long long)st->step);
    int rc = sm__checkpoint_save(path, r->model, r->ovt, r->opt,
                                 sm_cfg_str(r->root, "optimizer.optim_name"), st, r->yaml, err);
    if (rc) return rc;
    if (strlen(path) < sizeof res->checkpoint) memcpy(res->checkpoint, path, strlen(path) + 1);
    if (r->vis_n > 0) sm__write_figure(r, epochs_done);
    sm_log(SM_LOG_INFO, "checkpoint %s", path);
    /* keep the newest keep_checkpoint_max */
    char **paths = NULL;
    size_t n = sm__checkpoint_list(r->out_dir, r->prefix, &paths);
    int64_t keep = sm_cfg_int(r->root, "callback.ckpt_config.keep_checkpoint_max");
    for (size_t i = 0; i < n; i++) {
        if ((int64_t)i >= keep && strcmp(paths[i], path) != 0) unlink(paths[i]);
        free(paths[i]);
    }
    free(paths);
    return 0;
}

/* An output directory belongs to one run: if it holds the config.yaml of a run with another
 * task or checkpoint prefix, this run would overwrite that run's files (and prune its
 * checkpoints), so it is refused. */
static int sm__check_owner(sm__run *r, sm_error *err)
{
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/config.yaml", r->out_dir);
    if (access(path, F_OK) != 0) return 0;
    sm_config *old = NULL;
    sm_diag *d = sm_diag_new();
    int rc = sm_config_read(path, NULL, 0, &old, d);
    sm_diag_free(d);
    if (rc)
        return sm_error_set(err, SM_EEXIST, path, 0, 0, "output_dir",
                            "the output directory holds a config.yaml that cannot be read: "
                            "use another output_dir");
    const char *task = sm_cfg_scalar(sm_cfg_get(sm_config_root(old), "task"));
    const char *prefix = sm_cfg_scalar(sm_cfg_get(sm_config_root(old), "callback.ckpt_config.prefix"));
    if ((task && strcmp(task, r->task) != 0) || (prefix && strcmp(prefix, r->prefix) != 0))
        rc = sm_error_set(err, SM_EEXIST, r->out_dir, 0, 0, "output_dir",
                          "the output directory holds another run (task %s, checkpoint prefix "
                          "'%s'); this %s run (prefix '%s') would overwrite it: use another "
                          "output_dir",
                          task ? task : "?", prefix ? prefix : "?", r->task, r->prefix);
    sm_config_free(old);
    return rc;
}

/* A train_config.resume_ckpt that does not exist is reported at once, located in the config,
 * unless the run will resume from its own checkpoints (then resume_ckpt is not read). */
static int sm__check_resume_ckpt(sm__run *r, sm_error *err)
{
    char path[PATH_MAX];
    struct stat sb;
    if (!sm_cfg_path(r->root, "train_config.resume_ckpt", path, sizeof path) ||
        stat(path, &sb) == 0)
        return 0;
    int e = errno;
    char **paths = NULL;
    size_t n = sm__checkpoint_list(r->out_dir, r->prefix, &paths);
    for (size_t i = 0; i < n; i++) free(paths[i]);
    free(paths);
    if (n > 0) return 0;
    sm_diag *d = sm_diag_new();
    int rc = sm_cfg_error(d, sm_cfg_get(r->root, "train_config"), "resume_ckpt", "%s: %s", path,
                          strerror(e));
    const sm_error *first = d ? sm_diag_get(d, 0, NULL) : NULL;
    if (first && err)
        *err = *first;
    else
        sm_error_set(err, rc, path, 0, 0, "train_config.resume_ckpt", "%s", strerror(e));
    sm_diag_free(d);
    return rc;
}

/* The text of key in a config tree ("" when absent or not a scalar). */
static const char *sm__key_text(const sm_cfg *root, const char *key)
{
    const char *t = sm_cfg_scalar(sm_cfg_get(root, key));
    return t ? t : "";
}

/* Compares the configuration a checkpoint was written with to this run's. Keys that decide
 * which samples make up which batch (or the model) must not change, or the saved loader
 * position would point at other data: refused. Schedule and optimizer keys may change (a longer
 * run, another learning rate): allowed with a warning. */
static int sm__resume_check(sm__run *r, const char *ckpt, sm_error *err)
{
    sm_st_file *f = NULL;
    sm_config *old = NULL, *cur = NULL;
    int rc = sm_st_open(ckpt, &f, err);
    const char *y = rc ? NULL : sm_st_meta(f, "config");
    if (!rc && y && y[0] &&
        !sm_config_read_string(y, strlen(y), ckpt, NULL, 0, &old, NULL) &&
        !sm_config_read_string(r->yaml, strlen(r->yaml), "config", NULL, 0, &cur, NULL)) {
        char ds[3][64];
        static const char *const ds_keys[] = {"reader", "repeat", "shuffle"};
        const char *refuse[16] = {"seed", "train_config.batch_size", "train_config.image_size",
                                  "train_config.per_epoch_size", "model.backbone"};
        size_t nr = 5;
        for (size_t i = 0; i < 3; i++) {
            snprintf(ds[i], sizeof ds[i], "%s.%s", r->data_section, ds_keys[i]);
            refuse[nr++] = ds[i];
        }
        static const char *const warn[] = {
            "train_config.epoch",       "lr_schedule.lr_type",      "lr_schedule.base_lr",
            "lr_schedule.min_lr",       "lr_schedule.warmup_lr",    "lr_schedule.warmup_epochs",
            "optimizer.weight_decay",   "optimizer.layer_decay",    "train_wrapper.clip_norm",
            "train_wrapper.use_clip_grad"};
        for (size_t i = 0; i < nr && !rc; i++) {
            const char *a = sm__key_text(sm_config_root(old), refuse[i]);
            const char *b = sm__key_text(sm_config_root(cur), refuse[i]);
            if (strcmp(a, b) != 0)
                rc = sm_error_set(err, SM_ECONFIG, ckpt, 0, 0, refuse[i],
                                  "changed from %s to %s since this checkpoint was written: "
                                  "resuming would feed other batches; restore the value or use "
                                  "another output_dir",
                                  a[0] ? a : "(unset)", b[0] ? b : "(unset)");
        }
        for (size_t i = 0; i < sizeof warn / sizeof warn[0] && !rc; i++) {
            const char *a = sm__key_text(sm_config_root(old), warn[i]);
            const char *b = sm__key_text(sm_config_root(cur), warn[i]);
            if (strcmp(a, b) != 0)
                sm_log(SM_LOG_WARN, "resuming with %s changed from %s to %s", warn[i],
                       a[0] ? a : "(unset)", b[0] ? b : "(unset)");
        }
    }
    sm_config_free(old);
    sm_config_free(cur);
    sm_st_close(f);
    return rc;
}

/* Resumes from the newest checkpoint of this run's prefix in the output directory that loads;
 * a file that does not is reported and the previous one tried. Returns 1 if resumed. */
static int sm__auto_resume(sm__run *r, sm__ckpt_state *st, sm_train_result *res, sm_error *err)
{
    char **paths = NULL;
    size_t n = sm__checkpoint_list(r->out_dir, r->prefix, &paths);
    int resumed = 0;
    for (size_t i = 0; i < n; i++) {
        if (!resumed) {
            sm_error e;
            sm_error_clear(&e);
            if (sm__checkpoint_load(paths[i], r->model, r->ovt, r->opt, st, &e) == 0) {
                sm_log(SM_LOG_INFO, "resuming from %s (epoch %lld, step %lld)", paths[i],
                       (long long)st->epoch, (long long)st->step);
                if (strlen(paths[i]) < sizeof res->checkpoint)
                    memcpy(res->checkpoint, paths[i], strlen(paths[i]) + 1);
                resumed = sm__resume_check(r, paths[i], err) ? -1 : 1;
            } else if (e.code != SM_EFORMAT) {
                /* a sound checkpoint this run cannot continue (another task, architecture or
                 * optimizer; or a read that failed after the checks): refuse, rather than
                 * start over and let the cleanup delete that run's checkpoints */
                *err = e;
                char extra[] = "; use another output_dir for a different run";
                if (strlen(err->text) + sizeof extra < sizeof err->text)
                    strcat(err->text, extra);
                resumed = -1;
            } else {
                char line[SM_ERROR_LINE_MAX];
                sm_error_format(&e, line, sizeof line);
                sm_log(SM_LOG_WARN, "cannot resume from it: %s; trying an older checkpoint", line);
            }
        }
        free(paths[i]);
    }
    free(paths);
    return resumed < 0 ? err->code : resumed;
}

/* ---- the run ----------------------------------------------------------------------------------
 */

static void sm__run_free(sm__run *r)
{
    sm_loader_free(r->loader);
    sm_loader_free(r->eval_loader);
    sm_dataset_close(&r->ds);
    sm_dataset_close(&r->eval_ds);
    if (r->sched) r->svt->destroy(r->sched);
    if (r->opt) r->ovt->destroy(r->opt);
    sm_model_free(r->model);
    sm_ctx_free(r->ctx);
    sm_backend_free(r->be);
    free(r->lr);
    free(r->wd);
    free(r->lr_scale);
    free(r->vis_images);
    free(r->vis_mask);
    free(r->yaml);
    if (r->metrics) fclose(r->metrics);
    if (r->lock_fd >= 0) close(r->lock_fd);
}

static int sm__write_summary(sm__run *r, const sm_train_result *res, int status, const sm_error *e)
{
    char line[SM_ERROR_LINE_MAX] = "";
    if (status) sm_error_format(e, line, sizeof line);
    double secs = sm__now() - r->t_start;
    json_t *o = json_pack("{s:s, s:s, s:I, s:I, s:o, s:o, s:o, s:s, s:f, s:o, s:I}", "task",
                          r->task, "status",
                          status == 0              ? "completed"
                          : status == SM_ECANCELED ? "stopped"
                                                   : "failed",
                          "epochs", (json_int_t)res->epochs, "steps", (json_int_t)res->steps,
                          "last_loss", sm__jnum(res->last_loss), "eval_top1",
                          res->eval_top1 >= 0 ? sm__jnum(res->eval_top1) : json_null(), "eval_top5",
                          res->eval_top5 >= 0 ? sm__jnum(res->eval_top5) : json_null(),
                          "checkpoint", res->checkpoint, "seconds", secs, "images_per_second",
                          sm__jnum(secs > 0 ? (double)r->images_seen / secs : 0.0), "bad_images",
                          (json_int_t)(r->loader ? sm_loader_bad_count(r->loader) : 0));
    if (o && status) json_object_set_new(o, "error", json_string(line));
    char *text = o ? json_dumps(o, JSON_INDENT(2)) : NULL;
    json_decref(o);
    if (!text) return SM_ENOMEM;
    size_t len = strlen(text);
    char *with_nl = malloc(len + 2);
    int rc = SM_ENOMEM;
    if (with_nl) {
        memcpy(with_nl, text, len);
        memcpy(with_nl + len, "\n", 2);
        rc = sm__write_file(r->out_dir, strcmp(r->task, "eval") ? "summary.json" : "eval-summary.json",
                            with_nl, NULL);
    }
    free(with_nl);
    free(text);
    return rc;
}

static int sm__train_loop(sm__run *r, sm__ckpt_state *st, sm_train_result *res, sm_error *err)
{
    sm_params *p = sm_model_params(r->model);
    size_t np = sm_params_count(p);
    int64_t save_every = sm_cfg_int(r->root, "callback.ckpt_config.save_ckpt_epochs");
    bool clip = sm_cfg_bool(r->root, "train_wrapper.use_clip_grad");
    int64_t eval_every = !strcmp(r->task, "finetune")
                             ? sm_cfg_int(sm_cfg_get(r->root, r->data_section), "eval_interval")
                             : 0;
    int64_t log_every = r->spe <= 20 ? 1 : (r->spe + 19) / 20;
    int rc = 0;
    for (int64_t epoch = st->epoch; epoch < r->epochs && !rc; epoch++) {
        int64_t first = epoch == st->epoch ? st->batch : 0;
        rc = sm_loader_start(r->loader, epoch, first, epoch == st->epoch ? st->position : 0, err);
        double loss_sum = 0, t_epoch = sm__now(), t_log = t_epoch, wait_log = 0;
        int64_t done = 0, img_log = 0;
        for (int64_t bi = first; bi < r->spe && !rc; bi++) {
            const sm_batch *b = NULL;
            double t_wait = sm__now(); /* time waiting for the loader: an I/O or decode stall */
            if ((rc = sm_loader_next(r->loader, &b, err))) break;
            if (!b) break; /* the loader's epoch ended (fewer batches than per_epoch_size) */
            t_wait = sm__now() - t_wait;
            wait_log += t_wait;
            double loss = 0;
            if ((rc = sm__forward_backward(r, b, st->step, &loss, err))) break;
            if (b->mask) sm__keep_for_figure(r, b);
            double gnorm = sm__grad_norm(p);
            if (!isfinite(loss) || !isfinite(gnorm)) {
                sm__metric(r,
                           json_pack("{s:s, s:I, s:I, s:o, s:o}", "event", "step", "epoch",
                                     (json_int_t)epoch, "step", (json_int_t)st->step, "loss",
                                     sm__jnum(loss), "grad_norm", sm__jnum(gnorm)),
                           NULL);
                rc = sm_error_set(err, SM_EDATA, NULL, 0, 0, NULL,
                                  "the %s is not finite at epoch %lld, step %lld/%lld: "
                                  "stopping (no checkpoint written; the previous one is kept)",
                                  isfinite(loss) ? "gradient norm" : "loss", (long long)epoch + 1,
                                  (long long)bi + 1, (long long)r->spe);
                break;
            }
            double clip_norm = r->clip_norm;
            if (clip && gnorm > clip_norm) sm__scale_grads(p, (float)(clip_norm / (gnorm + 1e-6)));
            double lr = r->svt->lr(r->sched, st->step) * r->lr_factor;
            for (size_t i = 0; i < np; i++) r->lr[i] = (float)(lr * r->lr_scale[i]);
            r->ovt->step(r->opt, p, r->lr, r->wd, st->step + 1);
            st->step++;
            st->batch = bi + 1;
            st->position = sm_loader_position(r->loader);
            loss_sum += loss;
            done++;
            img_log += b->size;
            r->images_seen += b->size;
            double now = sm__now();
            rc = sm__metric(r,
                            json_pack("{s:s, s:I, s:I, s:I, s:f, s:f, s:f, s:f, s:f}", "event",
                                      "step", "epoch", (json_int_t)epoch, "batch", (json_int_t)bi,
                                      "step", (json_int_t)(st->step - 1), "loss", loss, "lr", lr,
                                      "grad_norm", gnorm, "time", now - r->t_start, "data_time",
                                      t_wait),
                            err);
            if ((bi + 1) % log_every == 0 || bi + 1 == r->spe) {
                double ips = (double)img_log / (now - t_log);
                double eta = (double)((r->epochs - epoch) * r->spe - (bi + 1)) * (now - t_epoch) /
                             (double)done;
                char eta_s[32];
                sm__duration(eta, eta_s, sizeof eta_s);
                sm_log(SM_LOG_INFO,
                       "epoch %lld/%lld step %lld/%lld loss %.5f lr %.3e grad %.3f %.1f img/s "
                       "data %.0f%% eta %s",
                       (long long)epoch + 1, (long long)r->epochs, (long long)bi + 1,
                       (long long)r->spe, loss, lr, gnorm, ips, 100.0 * wait_log / (now - t_log),
                       eta_s);
                t_log = now;
                img_log = 0;
                wait_log = 0;
            }
            if (!rc && r->opts && r->opts->stop && *r->opts->stop && bi + 1 < r->spe) {
                st->epoch = epoch;
                sm_log(SM_LOG_WARN, "stop requested: saving a checkpoint at epoch %lld, step %lld",
                       (long long)epoch + 1, (long long)bi + 1);
                rc = sm__save(r, st, epoch, res, err);
                if (!rc)
                    rc = sm_error_set(err, SM_ECANCELED, NULL, 0, 0, NULL,
                                      "stopped at epoch %lld, step %lld; resume with the same "
                                      "command",
                                      (long long)epoch + 1, (long long)bi + 1);
            }
        }
        if (rc) break;
        res->last_loss = done ? loss_sum / (double)done : NAN;
        res->epochs = epoch + 1;
        res->steps = st->step;
        double secs = sm__now() - t_epoch;
        sm_log(SM_LOG_INFO, "epoch %lld/%lld done: mean loss %.5f, %.1f s", (long long)epoch + 1,
               (long long)r->epochs, res->last_loss, secs);
        rc = sm__metric(r,
                        json_pack("{s:s, s:I, s:o, s:f, s:I}", "event", "epoch", "epoch",
                                  (json_int_t)epoch, "loss", sm__jnum(res->last_loss), "seconds",
                                  secs, "steps", (json_int_t)st->step),
                        err);
        st->epoch = epoch + 1;
        st->batch = 0;
        st->position = 0;
        /* a stop asked for on the last step of an epoch ends the epoch normally first */
        bool stop = r->opts && r->opts->stop && *r->opts->stop && epoch + 1 < r->epochs;
        if (stop)
            sm_log(SM_LOG_WARN, "stop requested: saving a checkpoint at the end of epoch %lld",
                   (long long)epoch + 1);
        if (!rc && eval_every > 0 && (epoch + 1) % eval_every == r->eval_offset % eval_every)
            rc = sm__evaluate(r, epoch, &res->eval_top1, &res->eval_top5, err);
        if (!rc && ((epoch + 1) % save_every == 0 || epoch + 1 == r->epochs || stop))
            rc = sm__save(r, st, epoch + 1, res, err);
        if (!rc && stop)
            rc = sm_error_set(err, SM_ECANCELED, NULL, 0, 0, NULL,
                              "stopped after epoch %lld; resume with the same command",
                              (long long)epoch + 1);
    }
    return rc;
}

int sm_train(const sm_registry *reg, const sm_config *cfg, const sm_train_opts *opts,
             sm_train_result *result, sm_error *err)
{
    sm__run r = {.reg = reg, .root = sm_config_root(cfg), .opts = opts, .lock_fd = -1};
    sm_train_result res = {.eval_top1 = -1, .eval_top5 = -1, .last_loss = NAN};
    r.t_start = sm__now();
    r.task = sm_cfg_str(r.root, "task");
    if (!r.task) r.task = sm_cfg_get(r.root, "pretrain_dataset") ? "pretrain" : "finetune";
    r.data_section = !strcmp(r.task, "pretrain") ? "pretrain_dataset" : "finetune_dataset";
    r.seed = (uint64_t)sm_cfg_int(r.root, "seed");
    r.epochs = sm_cfg_int(r.root, "train_config.epoch");
    r.batch_size = sm_cfg_int(r.root, "train_config.batch_size");
    r.clip_norm = sm_cfg_float(r.root, "train_wrapper.clip_norm");
    if (strcmp(r.task, "pretrain") != 0) { /* RingMo: a negative offset means epoch % interval */
        const sm_cfg *fs = sm_cfg_get(r.root, "finetune_dataset");
        int64_t interval = sm_cfg_int(fs, "eval_interval"), offset = sm_cfg_int(fs, "eval_offset");
        r.eval_offset = offset < 0 ? r.epochs % (interval > 0 ? interval : 1) : offset;
    }
    snprintf(r.prefix, sizeof r.prefix, "%s", sm_cfg_str(r.root, "callback.ckpt_config.prefix"));
    if (!sm_cfg_path(r.root, "output_dir", r.out_dir, sizeof r.out_dir))
        snprintf(r.out_dir, sizeof r.out_dir, "output");
    /* Everything that can fail on the user's data or components happens before anything is
     * written; a directory made for the run is removed again if setting up fails. */
    int rc = sm__check_resume_ckpt(&r, err);
    bool created = false;
    if (!rc) rc = sm__mkdirs(r.out_dir, &created, err);
    char real[PATH_MAX];
    if (!rc && realpath(r.out_dir, real)) memcpy(r.out_dir, real, strlen(real) + 1);
    const sm_cfg *bsec = sm_cfg_get(r.root, "backend");
    if (!rc)
        rc = sm_backend_new(reg, sm_cfg_str(bsec, "name"), bsec, (int)sm_cfg_int(bsec, "threads"),
                            &r.be, err);
    if (!rc && !(r.ctx = sm_ctx_new(r.be)))
        rc = sm_error_set(err, SM_ENOMEM, NULL, 0, 0, NULL, "out of memory");
    if (!rc && sm_cfg_int(bsec, "threads") > 0)
        sm_ctx_set_threads(r.ctx, (int)sm_cfg_int(bsec, "threads"));
    if (!rc) {
        char desc[256];
        sm_backend_describe(r.be, desc, sizeof desc);
        sm_log(SM_LOG_INFO, "%s: task %s, output %s, backend %s", sm_config_file(cfg), r.task,
               r.out_dir, desc);
    }
    if (!rc) rc = sm__setup_data(&r, err);
    if (!rc) rc = sm__setup_model(&r, err);
    if (!rc && r.loader) {
        int64_t nb = sm_loader_num_batches(r.loader),
                cap = sm_cfg_int(r.root, "train_config.per_epoch_size");
        r.spe = cap > 0 && cap < nb ? cap : nb;
        if (r.spe < 1)
            rc = sm_error_set(err, SM_EDATA, NULL, 0, 0, "train_config.batch_size",
                              "the dataset holds %lld samples, fewer than one batch of %lld",
                              (long long)r.ds.vt->count(r.ds.self), (long long)r.batch_size);
    }
    if (!rc && r.loader) rc = sm__setup_optim(&r, err);
    if (rc && created) rmdir(r.out_dir); /* only if still empty */
    if (!rc) rc = sm__lock_dir(&r, err);
    if (!rc) sm__remove_stale_temps(r.out_dir);
    size_t ylen = 0;
    if (!rc && (rc = sm_config_to_yaml(cfg, &r.yaml, &ylen)))
        sm_error_set(err, rc, NULL, 0, 0, NULL, "cannot render the effective config");
    bool eval_only = !strcmp(r.task, "eval");
    if (!rc && !eval_only) rc = sm__check_owner(&r, err);
    if (!rc) {
        const sm_backbone_info *info = sm_model_info(r.model);
        sm_log(SM_LOG_INFO, "model: %s %s, %lld parameters, patch %d, stride %d",
               sm_model_task(r.model) == SM_TASK_SIMMIM ? "SimMIM" : "classifier",
               sm_cfg_str(r.root, "model.backbone"),
               (long long)sm_params_numel(sm_model_params(r.model)), info->patch_size,
               info->encoder_stride);
    }
    sm__ckpt_state st = {.epoch = sm_cfg_int(r.root, "train_config.initial_epoch")};
    int resumed = 0;
    if (!rc && r.loader) {
        resumed = sm__auto_resume(&r, &st, &res, err);
        if (resumed < 0) rc = resumed;
    }
    char rpath[PATH_MAX] = "";
    if (!rc && !resumed && sm_cfg_path(r.root, "train_config.resume_ckpt", rpath, sizeof rpath)) {
        struct stat sb;
        if (stat(rpath, &sb) == 0 && S_ISDIR(sb.st_mode)) { /* a run's directory: its newest */
            char **paths = NULL;
            size_t n = sm__checkpoint_list(rpath, NULL, &paths);
            if (n == 0)
                rc = sm_error_set(err, SM_ENOTFOUND, rpath, 0, 0, "train_config.resume_ckpt",
                                  "no checkpoint (<prefix>-<epoch>_<step>.safetensors) in this "
                                  "directory");
            else
                snprintf(rpath, sizeof rpath, "%s", paths[0]);
            for (size_t i = 0; i < n; i++) free(paths[i]);
            free(paths);
        }
    }
    if (!rc && !resumed && rpath[0]) {
        if (!strcmp(r.task, "pretrain")) {
            sm_error e;
            sm_error_clear(&e);
            rc = sm__checkpoint_load(rpath, r.model, r.ovt, r.opt, &st, &e);
            if (rc == SM_EFORMAT && !strstr(e.text, "truncated")) { /* not ours: weights only */
                char note[SM_ERROR_LINE_MAX];
                rc = sm_model_load_weights(r.model, rpath, note, sizeof note, err);
                if (!rc) sm_log(SM_LOG_INFO, "initial weights: %s", note);
            } else if (rc) {
                *err = e;
            } else {
                sm_log(SM_LOG_INFO, "resuming from %s (epoch %lld, step %lld)", rpath,
                       (long long)st.epoch, (long long)st.step);
            }
        } else {
            char note[SM_ERROR_LINE_MAX];
            rc = sm_model_load_weights(r.model, rpath, note, sizeof note, err);
            if (!rc) sm_log(SM_LOG_INFO, "pretrained weights: %s", note);
        }
    } else if (!rc && !resumed && !strcmp(r.task, "eval")) {
        rc = sm_error_set(err, SM_ECONFIG, NULL, 0, 0, "train_config.resume_ckpt",
                          "task eval needs the checkpoint to evaluate");
    } else if (!rc && !resumed && !strcmp(r.task, "finetune")) {
        sm_log(SM_LOG_WARN, "no pretrained weights (train_config.resume_ckpt is null): the "
                            "classifier is trained from its random initialisation");
    }
    /* only now, with the run known to be this directory's, are its files written */
    if (!rc) rc = sm__write_file(r.out_dir, eval_only ? "eval-config.yaml" : "config.yaml", r.yaml, err);
    bool started = rc == 0; /* from here on the directory's files are this run's */
    if (!rc) rc = sm__metrics_open(&r, &st, eval_only, err);
    if (!rc && resumed && st.epoch >= r.epochs) { /* nothing left to do */
        res.epochs = st.epoch;
        res.steps = st.step;
        sm_log(SM_LOG_INFO, "the run is already complete (%lld epochs, %lld steps)",
               (long long)st.epoch, (long long)st.step);
    } else if (!rc && !strcmp(r.task, "eval"))
        rc = sm__evaluate(&r, 0, &res.eval_top1, &res.eval_top5, err);
    else if (!rc)
        rc = sm__train_loop(&r, &st, &res, err);
    if (r.loader && sm_loader_bad_count(r.loader)) {
        char path[PATH_MAX + 32];
        snprintf(path, sizeof path, "%s/bad_images.txt", r.out_dir);
        sm_loader_write_bad_report(r.loader, path, NULL);
        size_t nb = sm_loader_bad_count(r.loader);
        sm_log(SM_LOG_WARN, "%zu bad image%s skipped; the list is in %s", nb,
               nb == 1 ? " was" : "s were", path);
    }
    if (started) sm__write_summary(&r, &res, rc, err);
    if (result) *result = res;
    sm__run_free(&r);
    return rc;
}
