/* core/train/resume.c - where a run starts: its own newest checkpoint that loads (a resumed
 * run continues exactly), else train_config.resume_ckpt (a checkpoint of ours to continue, or
 * weights: pretrained ones for fine-tuning, the ones to evaluate), else the initialisation.
 * Rank 0 decides (sm__ranks_resume gives its choice to the others).
 *
 * The number of ranks may change between a checkpoint and the run resuming it, as long as the
 * global batch (batch_size x ranks x accumulation_steps) stays: update u always takes the
 * epoch order's positions [u G, (u + 1) G), so the run goes on with the same samples. */
#include "train/train_internal.h"

#include <errno.h>
#include <sys/stat.h>

int sm__resume_ckpt_exists(const sm__run *r, sm_error *err)
{
    const char *path = r->set.resume_ckpt;
    struct stat sb;
    if (!path[0] || stat(path, &sb) == 0) return 0;
    int e = errno;
    char **paths = NULL;
    size_t n = sm__checkpoint_list(r->set.out_dir, r->set.prefix, &paths);
    sm__checkpoint_list_free(paths, n);
    if (n > 0) return 0; /* the run resumes from its own checkpoints; resume_ckpt is not read */
    sm_diag *d = sm_diag_new();
    int rc = sm_cfg_error(d, sm_cfg_get(sm_config_root(r->cfg), "train_config"), "resume_ckpt",
                          "%s: %s", path, strerror(e));
    const sm_error *first = d ? sm_diag_get(d, 0, NULL) : NULL;
    if (first && err)
        *err = *first;
    else
        sm_error_set(err, rc, path, 0, 0, "train_config.resume_ckpt", "%s", strerror(e));
    sm_diag_free(d);
    return rc;
}

/* The text of key in a config tree ("" when absent or not a scalar). */
static const char *sm__key_text(const sm_config *c, const char *key)
{
    const char *t = sm_cfg_scalar(sm_cfg_get(sm_config_root(c), key));
    return t ? t : "";
}

/* Compares the configuration a checkpoint was written with to this run's. Keys that decide
 * which samples make up which batch (or the model) must not change, or the saved loader
 * position would point at other data: refused. Schedule and optimizer keys may change (a longer
 * run, another learning rate): allowed with a warning. */
static int sm__compare_configs(const sm__run *r, const char *ckpt, const sm_config *old,
                               const sm_config *cur, sm_error *err)
{
    char ds[3][64];
    static const char *const ds_keys[] = {"reader", "repeat", "shuffle"};
    const char *refuse[16] = {"seed", "train_config.image_size", "train_config.per_epoch_size",
                              "model.backbone"};
    size_t nr = 4; /* batch_size and accumulation_steps: sm__check_layout */
    for (size_t i = 0; i < 3; i++) {
        snprintf(ds[i], sizeof ds[i], "%s.%s", r->set.data_section, ds_keys[i]);
        refuse[nr++] = ds[i];
    }
    static const char *const warn[] = {
        "train_config.epoch",     "lr_schedule.lr_type",   "lr_schedule.base_lr",
        "lr_schedule.min_lr",     "lr_schedule.warmup_lr", "lr_schedule.warmup_epochs",
        "optimizer.weight_decay", "optimizer.layer_decay", "train_wrapper.clip_norm",
        "train_wrapper.use_clip_grad", "step_semantics", "train_config.accumulation_mode",
        "train_wrapper.use_ema", "train_wrapper.ema_decay"};
    for (size_t i = 0; i < nr; i++) {
        const char *a = sm__key_text(old, refuse[i]), *b = sm__key_text(cur, refuse[i]);
        if (strcmp(a, b) != 0)
            return sm_error_set(err, SM_ECONFIG, ckpt, 0, 0, refuse[i],
                                "changed from %s to %s since this checkpoint was written: "
                                "resuming would feed other batches; restore the value or use "
                                "another output_dir",
                                a[0] ? a : "(unset)", b[0] ? b : "(unset)");
    }
    for (size_t i = 0; i < SM__ARRAY_LEN(warn); i++) {
        const char *a = sm__key_text(old, warn[i]), *b = sm__key_text(cur, warn[i]);
        if (strcmp(a, b) != 0)
            sm_log(SM_LOG_WARN, "resuming with %s changed from %s to %s", warn[i],
                   a[0] ? a : "(unset)", b[0] ? b : "(unset)");
    }
    return 0;
}

static int64_t sm__key_int(const sm_config *c, const char *key, int64_t dflt)
{
    const char *t = sm__key_text(c, key);
    return t[0] ? atoll(t) : dflt;
}

/* The global batch split as batch x ranks x accumulation. */
typedef struct sm__layout {
    int64_t batch, ranks, accumulation;
} sm__layout;

static int64_t sm__layout_global(sm__layout l) { return l.batch * l.ranks * l.accumulation; }

/* Optimizer steps per epoch under a layout (train.c's rule: per_epoch_size micro-batches of each
 * rank at most, whole updates only). */
static int64_t sm__layout_updates(const sm__run *r, sm__layout l)
{
    int64_t len = r->ds.vt->count(r->ds.self) * (r->set.data && sm_cfg_get(r->set.data, "repeat")
                                                     ? SM__MAX(sm_cfg_int(r->set.data, "repeat"), 1)
                                                     : 1);
    int64_t nb = len / (l.batch * l.ranks), cap = r->set.per_epoch_size;
    int64_t spe = cap > 0 && cap < nb ? cap : nb;
    return spe / l.accumulation;
}

/* The checkpoint's split of the global batch against this run's: another global batch, or a
 * split that changes the updates, is refused naming the key. */
static int sm__check_layout(const sm__run *r, const char *ckpt, sm__layout a, sm_error *err)
{
    sm__layout b = {r->set.batch_size, r->ranks, r->set.accumulation};
    if (a.batch == b.batch && a.ranks == b.ranks && a.accumulation == b.accumulation) return 0;
    const char *key = a.batch != b.batch              ? "train_config.batch_size"
                      : a.accumulation != b.accumulation ? "train_config.accumulation_steps"
                                                         : "the number of ranks";
    char was[96], now[96];
    snprintf(was, sizeof was, "%lld (%lld x %lld ranks x %lld)", (long long)sm__layout_global(a),
             (long long)a.batch, (long long)a.ranks, (long long)a.accumulation);
    snprintf(now, sizeof now, "%lld (%lld x %lld ranks x %lld)", (long long)sm__layout_global(b),
             (long long)b.batch, (long long)b.ranks, (long long)b.accumulation);
    if (sm__layout_global(a) != sm__layout_global(b))
        return sm_error_set(err, SM_ECONFIG, ckpt, 0, 0, key,
                            "the global batch (batch_size x ranks x accumulation_steps) changed "
                            "from %s to %s since this checkpoint was written: resuming would feed "
                            "other batches; keep the product, or use another output_dir",
                            was, now);
    if (r->set.accumulation_official && a.accumulation != b.accumulation)
        return sm_error_set(err, SM_ECONFIG, ckpt, 0, 0, key,
                            "changed from %lld to %lld: accumulation_mode official clips each "
                            "partial sum and counts the schedule in micro-batches, so the "
                            "updates would differ; restore it or use another output_dir",
                            (long long)a.accumulation, (long long)b.accumulation);
    bool mix = r->set.task == SM__RUN_FINETUNE &&
               (r->pipe.mixup_alpha > 0 || r->pipe.cutmix_alpha > 0);
    if (mix && a.batch != b.batch)
        return sm_error_set(err, SM_ECONFIG, ckpt, 0, 0, key,
                            "changed from %lld to %lld: Mixup/CutMix mix the images of each "
                            "batch_size batch, so the updates would differ; restore it or use "
                            "another output_dir",
                            (long long)a.batch, (long long)b.batch);
    int64_t ua = sm__layout_updates(r, a), ub = sm__layout_updates(r, b);
    if (ua != ub)
        return sm_error_set(err, SM_ECONFIG, ckpt, 0, 0, "train_config.per_epoch_size",
                            "counts each rank's micro-batches: it made %lld optimizer steps per "
                            "epoch with %s and makes %lld with %s; adjust it or use another "
                            "output_dir",
                            (long long)ua, was, (long long)ub, now);
    sm_log(SM_LOG_INFO, "the checkpoint's global batch %s is now %s: the same samples per update",
           was, now);
    return 0;
}

/* Each rank's loader position in this run's split, from a checkpoint's (batch0: its
 * batch_size). Every update consumes the same G positions of the epoch order whatever the split,
 * so the epoch goes on at the same place; only the replacements of skipped bad images (taken
 * from each rank's own share) cannot be carried over to another split. */
static int sm__convert_positions(const sm__run *r, sm__ckpt_state *st, int64_t batch0, sm_error *err)
{
    int64_t R = r->ranks, B = r->set.batch_size;
    if (st->ranks == R && batch0 == B) return 0;
    int64_t samples = st->batch * batch0 * st->ranks; /* epoch-order positions used */
    bool shifted = false;
    for (int64_t q = 0; q < st->ranks; q++) shifted = shifted || st->positions[q] != st->batch * batch0;
    int64_t *pos = malloc((size_t)R * sizeof *pos);
    if (!pos) return sm_error_set(err, SM_ENOMEM, NULL, 0, 0, NULL, "out of memory");
    st->batch = samples / (B * R);
    for (int64_t q = 0; q < R; q++) pos[q] = st->batch * B;
    if (shifted || st->batch * B * R != samples)
        sm_log(SM_LOG_WARN, "bad images were skipped earlier in this epoch: with another split of "
                            "the batch the epoch goes on at sample %lld of its order, and the images "
                            "that replaced them may be seen again",
               (long long)(st->batch * B * R));
    free(st->positions);
    st->positions = pos;
    st->ranks = R;
    return 0;
}

/* The checkpoint's config: compared with this run's (its metadata "config"), its split of the
 * global batch checked (strict: refusals), the positions converted to this run's split. */
static int sm__resume_check(const sm__run *r, const char *ckpt, sm__ckpt_state *st, bool strict,
                            sm_error *err)
{
    sm_st_file *f = NULL;
    sm_config *old = NULL, *cur = NULL;
    int rc = sm_st_open(ckpt, &f, err);
    const char *y = rc ? NULL : sm_st_meta(f, "config");
    sm__layout a = {r->set.batch_size, st->ranks, r->set.accumulation};
    if (!rc && y && y[0] && !sm_config_read_string(y, strlen(y), ckpt, NULL, 0, &old, NULL)) {
        a.batch = sm__key_int(old, "train_config.batch_size", a.batch);
        a.accumulation = sm__key_int(old, "train_config.accumulation_steps", 1);
        if (strict && !sm_config_read_string(r->yaml, strlen(r->yaml), "config", NULL, 0, &cur, NULL))
            rc = sm__compare_configs(r, ckpt, old, cur, err);
    }
    if (!rc && strict) rc = sm__check_layout(r, ckpt, a, err);
    if (!rc && a.batch > 0) rc = sm__convert_positions(r, st, a.batch, err);
    sm_config_free(old);
    sm_config_free(cur);
    sm_st_close(f);
    return rc;
}

static void sm__note_checkpoint(sm_train_result *res, const char *path)
{
    if (strlen(path) < sizeof res->checkpoint) memcpy(res->checkpoint, path, strlen(path) + 1);
}

/* Resumes from the newest checkpoint of this run's prefix in the output directory that loads;
 * a file that does not is reported and the previous one tried. Returns 1 if resumed. */
static int sm__auto_resume(sm__run *r, sm__ckpt_state *st, sm_train_result *res, sm_error *err)
{
    char **paths = NULL;
    size_t n = sm__checkpoint_list(r->set.out_dir, r->set.prefix, &paths);
    int resumed = 0;
    for (size_t i = 0; i < n && !resumed; i++) {
        sm_error e;
        sm_error_clear(&e);
        int rc = sm__checkpoint_load(paths[i], r->tr, st, &e);
        if (rc == 0) {
            sm_log(SM_LOG_INFO, "resuming from %s (epoch %lld, step %lld)", paths[i],
                   (long long)st->epoch, (long long)st->step);
            sm__note_checkpoint(res, paths[i]);
            resumed = sm__resume_check(r, paths[i], st, true, err) ? -1 : 1;
        } else if (rc != SM_EFORMAT && rc != SM_EKIND) {
            /* a sound checkpoint this run cannot continue (another task, architecture or
             * optimizer; or a read that failed after the checks): refuse, rather than start
             * over and let the cleanup delete that run's checkpoints */
            *err = e;
            char extra[] = "; use another output_dir for a different run";
            if (strlen(err->text) + sizeof extra < sizeof err->text) strcat(err->text, extra);
            resumed = -1;
        } else {
            char line[SM_ERROR_LINE_MAX];
            sm_error_format(&e, line, sizeof line);
            sm_log(SM_LOG_WARN, "cannot resume from it: %s; trying an older checkpoint", line);
        }
    }
    sm__checkpoint_list_free(paths, n);
    return resumed < 0 ? err->code : resumed;
}

/* resume_ckpt naming a run's directory means its newest checkpoint. */
static int sm__resolve_resume_ckpt(char *path, size_t n, sm_error *err)
{
    struct stat sb;
    if (stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode)) return 0;
    char **paths = NULL;
    size_t count = sm__checkpoint_list(path, NULL, &paths);
    int rc = 0;
    if (count == 0)
        rc = sm_error_set(err, SM_ENOTFOUND, path, 0, 0, "train_config.resume_ckpt",
                          "no checkpoint (<prefix>-<epoch>_<step>.safetensors) in this "
                          "directory");
    else
        snprintf(path, n, "%s", paths[0]);
    sm__checkpoint_list_free(paths, count);
    return rc;
}

/* Starts from resume_ckpt: pretraining continues a checkpoint of ours or starts from other
 * weights; fine-tuning and evaluation load weights (with the fine-tuning remaps). */
static int sm__start_from(sm__run *r, const char *path, sm__ckpt_state *st, sm_error *err)
{
    char note[SM_ERROR_LINE_MAX];
    sm_model *m = sm_trainer_model(r->tr);
    if (r->set.task != SM__RUN_PRETRAIN) {
        int rc = sm_model_load_weights(m, path, note, sizeof note, err);
        if (!rc) sm_log(SM_LOG_INFO, "pretrained weights: %s", note);
        return rc;
    }
    sm_error e;
    sm_error_clear(&e);
    int rc = sm__checkpoint_load(path, r->tr, st, &e);
    if (rc == SM_EKIND) { /* not a training checkpoint of ours: its weights only */
        rc = sm_model_load_weights(m, path, note, sizeof note, err);
        if (!rc) sm_log(SM_LOG_INFO, "initial weights: %s", note);
    } else if (rc) {
        *err = e;
    } else {
        sm_log(SM_LOG_INFO, "resuming from %s (epoch %lld, step %lld)", path,
               (long long)st->epoch, (long long)st->step);
        rc = sm__resume_check(r, path, st, false, err);
    }
    return rc;
}

int sm__resume(sm__run *r, sm__ckpt_state *st, sm_train_result *res, bool *resumed,
               sm_error *err)
{
    *resumed = false;
    if (r->loader) {
        int got = sm__auto_resume(r, st, res, err);
        if (got < 0) return got;
        *resumed = got == 1;
    }
    if (*resumed) return 0;
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s", r->set.resume_ckpt);
    if (path[0]) {
        int rc = sm__resolve_resume_ckpt(path, sizeof path, err);
        return rc ? rc : sm__start_from(r, path, st, err);
    }
    if (r->set.task == SM__RUN_EVAL)
        return sm_error_set(err, SM_ECONFIG, NULL, 0, 0, "train_config.resume_ckpt",
                            "task eval needs the checkpoint to evaluate");
    if (r->set.task == SM__RUN_FINETUNE)
        sm_log(SM_LOG_WARN, "no pretrained weights (train_config.resume_ckpt is null): the "
                            "classifier is trained from its random initialisation");
    return 0;
}
