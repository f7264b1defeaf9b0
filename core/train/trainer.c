/* core/train/trainer.c - the model, optimizer and schedule of a run, and one training step
 * (sm_trainer, simmim/train.h).
 *
 * One optimizer step (microsoft/SimMIM main_simmim.py / main_finetune.py, RingMo-Framework):
 *   for each of accumulation_steps micro-batches: forward (SimMIM loss, or classifier +
 *   soft-target / label-smoothed cross-entropy) -> backward of loss / accumulation_steps into
 *   the gradients -> global-norm gradient clipping (train_wrapper) -> per-parameter learning
 *   rates -> optimizer step.
 * Learning rate of parameter p at update u, f = global batch / 512 (arch simmim):
 *   step_semantics simmim: f x schedule(max(u - 1, 0)) with the peak base_lr x layer-decay
 *     scale (timm's per-group schedules; the official scheduler is stepped after each update,
 *     so an update uses the previous step's value);
 *   step_semantics ringmo: f x layer-decay scale x schedule(u).
 * Weight decay 0 for 1-D / bias / skip-listed parameters (and, under ringmo, the mask token).
 * accumulation_mode exact gives the update of one batch accumulation_steps times larger (one
 * clip of the whole gradient, the schedule counted in updates); official reproduces
 * microsoft/SimMIM's accumulation path: each partial sum is clipped after its backward, and
 * the schedule counts micro-batches (update u uses schedule(u x steps - 1)).
 * A step is a pure function of (config, seed, step, batch): drop path is keyed by (seed,
 * update, sample of the global batch), so accumulation and ranks draw what one batch would.
 * Data parallelism (reduce.c): each rank's micro-batch loss is divided by accumulation_steps x
 * ranks and the gradients summed over the ranks, so every rank holds the gradient of the global
 * batch's mean loss and makes the same clipping (global norm) and update; the official
 * accumulation path sums after every micro-batch and divides by the ranks (DDP's average). */
#include "train/train_internal.h"

#include <math.h>

/* Weight decay exclusions: the backbone's official list (1-D, bias, skip list); RingMo's
 * parameter filter also leaves the mask token undecayed. */
static bool sm__no_weight_decay(const sm_trainer *t, const char *name)
{
    if (sm_model_no_weight_decay(t->model, name)) return true;
    if (t->set.semantics != SM__SEM_RINGMO) return false;
    const char *last = strrchr(name, '.');
    return strcmp(last ? last + 1 : name, "mask_token") == 0;
}

/* Warns when the optimizer's own settings contradict the semantics asked for. */
static void sm__check_semantics(const sm_trainer *t)
{
    const sm_cfg *bc = sm_cfg_get(t->set.optim, "bias_correction");
    if (!bc || sm_cfg_kind_of(bc) == SM_CFG_NULL) return;
    bool on = sm_cfg_bool(t->set.optim, "bias_correction");
    if (on == (t->set.semantics == SM__SEM_SIMMIM)) return;
    sm_log(SM_LOG_WARN,
           "step_semantics %s with optimizer.bias_correction %s: %s's AdamW %s bias correction",
           t->set.semantics == SM__SEM_RINGMO ? "ringmo" : "simmim", on ? "true" : "false",
           t->set.semantics == SM__SEM_RINGMO ? "RingMo-Framework" : "PyTorch",
           t->set.semantics == SM__SEM_RINGMO ? "has no" : "has");
}

static int sm__trainer_optim(sm_trainer *t, const sm_registry *reg, sm_error *err)
{
    const sm__settings *s = &t->set;
    const sm_component *oc = sm_registry_lookup(reg, SM_KIND_OPTIMIZER, s->optim_name, err);
    const sm_component *sc = oc ? sm_registry_lookup(reg, SM_KIND_SCHEDULER, s->lr_type, err) : NULL;
    if (!oc || !sc) return SM_ENOTFOUND;
    t->ovt = (const sm_optimizer_vtbl *)oc;
    t->svt = (const sm_scheduler_vtbl *)sc;
    sm_params *p = sm_model_params(t->model);
    int rc = t->ovt->create(s->optim, p, &t->opt, err);
    /* the schedule counts updates, or micro-batches on the official accumulation path */
    int64_t updates = t->steps_per_epoch / s->accumulation;
    sm_schedule_opts so = {.steps_per_epoch = s->accumulation_official ? t->steps_per_epoch : updates,
                           .epochs = s->epochs};
    if (updates < 1)
        return sm_error_set(err, SM_ECONFIG, NULL, 0, 0, "train_config.accumulation_steps",
                            "%lld micro-batches per epoch make no optimizer step of %lld",
                            (long long)t->steps_per_epoch, (long long)s->accumulation);
    if (!rc) rc = t->svt->create(s->sched, &so, &t->sched, err);
    if (rc) return rc;
    size_t np = sm_params_count(p);
    t->lr = calloc(np, sizeof *t->lr);
    t->wd = calloc(np, sizeof *t->wd);
    t->lr_scale = calloc(np, sizeof *t->lr_scale);
    if (!t->lr || !t->wd || !t->lr_scale)
        return sm_error_set(err, SM_ENOMEM, NULL, 0, 0, NULL, "out of memory");
    double wd = sm_cfg_float(s->optim, "weight_decay"), decay = sm_cfg_float(s->optim, "layer_decay");
    int L = sm_model_num_layers(t->model);
    size_t no_decay = 0;
    for (size_t i = 0; i < np; i++) {
        const char *name = sm_params_at(p, i)->name;
        bool nd = sm__no_weight_decay(t, name);
        t->wd[i] = nd ? 0.0f : (float)wd;
        no_decay += nd;
        t->lr_scale[i] = decay < 1.0 ? pow(decay, L - 1 - sm_model_layer_id(t->model, name)) : 1.0;
    }
    sm_log(SM_LOG_INFO,
           "optimizer %s (weight decay %g on %zu of %zu tensors, layer decay %g over %d layer "
           "ids), schedule %s over %lld steps (%lld per epoch), learning rates x %g (global "
           "batch %lld = %lld x %d ranks x %lld / 512)",
           oc->name, wd, np - no_decay, np, decay, L, sc->name, (long long)(s->epochs * updates),
           (long long)updates, s->lr_batch_factor, (long long)sm__global_batch(s),
           (long long)s->batch_size, s->ranks, (long long)s->accumulation);
    sm__check_semantics(t);
    return 0;
}

int sm_trainer_new(const sm_registry *reg, const sm_config *cfg, const sm_trainer_opts *o,
                   sm_trainer **out, sm_error *err)
{
    *out = NULL;
    sm_trainer *t = calloc(1, sizeof *t);
    if (!t) return sm_error_set(err, SM_ENOMEM, NULL, 0, 0, NULL, "out of memory");
    int rc = sm__settings_read(cfg, &t->set, err);
    sm__settings_set_ranks(&t->set, sm_comm_size(o ? o->comm : NULL));
    const sm__settings *s = &t->set;
    t->steps_per_epoch = o ? o->steps_per_epoch : 0;
    int classes = o && o->num_classes > 0 ? o->num_classes : (int)s->num_classes;
    t->be = o ? o->backend : NULL;
    t->owns_be = !t->be;
    if (!rc && t->owns_be)
        rc = sm_backend_new(reg, s->backend_name, s->backend, s->threads, &t->be, err);
    if (!rc && !(t->ctx = sm_ctx_new(t->be)))
        rc = sm_error_set(err, SM_ENOMEM, NULL, 0, 0, NULL, "out of memory");
    if (!rc && s->threads > 0) sm_ctx_set_threads(t->ctx, s->threads);
    if (!rc) sm_ctx_set_recompute(t->ctx, s->recompute);
    sm_task task = s->task == SM__RUN_PRETRAIN ? SM_TASK_SIMMIM : SM_TASK_CLASSIFY;
    if (!rc)
        rc = sm_model_new_classes(reg, sm_config_root(cfg), task, classes, &t->model, err);
    if (!rc) rc = sm_model_init(t->model, s->seed, err);
    if (!rc) rc = sm__reduce_plan(t, o ? o->comm : NULL, err);
    if (!rc && t->steps_per_epoch > 0) rc = sm__trainer_optim(t, reg, err);
    if (!rc && s->use_ema &&
        !(t->ema = malloc((size_t)sm_params_numel(sm_model_params(t->model)) * sizeof *t->ema)))
        rc = sm_error_set(err, SM_ENOMEM, NULL, 0, 0, NULL, "out of memory");
    if (rc) {
        sm_trainer_free(t);
        return rc;
    }
    *out = t;
    return 0;
}

void sm_trainer_free(sm_trainer *t)
{
    if (!t) return;
    if (t->sched) t->svt->destroy(t->sched);
    if (t->opt) t->ovt->destroy(t->opt);
    sm_model_free(t->model);
    sm_ctx_free(t->ctx);
    if (t->owns_be) sm_backend_free(t->be);
    free(t->lr);
    free(t->wd);
    free(t->lr_scale);
    free(t->ema);
    sm__reduce_free(t);
    free(t);
}

const float *sm_trainer_ema(const sm_trainer *t) { return t->ema_ready ? t->ema : NULL; }

/* RingMo-Framework's EMACell after each update: ema = ema x decay + w x (1 - decay), float32;
 * it starts as a copy of the weights the training starts from. */
static void sm__ema_init(sm_trainer *t)
{
    sm_params *p = sm_model_params(t->model);
    memcpy(t->ema, sm_params_data(p), (size_t)sm_params_numel(p) * sizeof *t->ema);
    t->ema_ready = true;
}

static void sm__ema_update(sm_trainer *t)
{
    sm_params *p = sm_model_params(t->model);
    const float *w = sm_params_data(p);
    int64_t n = sm_params_numel(p);
    float d = t->set.ema_decay, e = 1.0f - d;
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++) t->ema[i] = t->ema[i] * d + w[i] * e;
}

void sm__trainer_swap_ema(sm_trainer *t)
{
    if (!t->ema_ready) return;
    float *w = sm_params_data(sm_model_params(t->model));
    int64_t n = sm_params_numel(sm_model_params(t->model));
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++) {
        float v = w[i];
        w[i] = t->ema[i];
        t->ema[i] = v;
    }
}

sm_model *sm_trainer_model(sm_trainer *t) { return t->model; }
sm_ctx *sm_trainer_ctx(sm_trainer *t) { return t->ctx; }
sm_backend *sm_trainer_backend(sm_trainer *t) { return t->be; }
int64_t sm_trainer_steps(const sm_trainer *t) { return t->steps; }

void sm_trainer_set_steps(sm_trainer *t, int64_t steps) { t->steps = steps; }

int sm_trainer_param_hparams(const sm_trainer *t, size_t i, sm_param_hparams *out)
{
    if (!t->lr || i >= sm_params_count(sm_model_params(t->model))) return SM_EINVAL;
    *out = (sm_param_hparams){t->lr[i], t->wd[i], t->lr_scale[i]};
    return 0;
}

/* Σ g² over one block: eight running sums (element i into sum i % 8) combined in a fixed
 * order. The ISA clones do the same operations in the same order (one chain of dependent
 * double adds ran at a quarter of memory speed; the baseline clone, 2 doubles a vector, at
 * 7 GB/s), so the value depends neither on the thread count nor on the vector width; CPUs
 * without FMA round the products apart. */
SM__KERNEL static double sumsq_block(const float *g, int64_t n)
{
    double s[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++) s[l] += (double)g[i + l] * g[i + l];
    for (int l = 0; i < n; i++, l++) s[l] += (double)g[i] * g[i];
    return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

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
    for (int64_t b = 0; b < nb; b++)
        part[b] = sumsq_block(g + b * BLOCK, SM__MIN(BLOCK, n - b * BLOCK));
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

/* The loss of a batch, recorded on the tape. */
static sm_tensor *sm__loss(sm_trainer *t, const sm_batch *b)
{
    sm_ctx *ctx = t->ctx;
    sm_tensor *x =
        sm_ctx_wrap(ctx, b->images, 4, SM_SHAPE(b->size, b->channels, b->height, b->width));
    if (sm_model_task(t->model) == SM_TASK_SIMMIM) {
        sm_tensor *mask = sm_ctx_wrap(ctx, b->mask, 3, SM_SHAPE(b->size, b->mask_side, b->mask_side));
        return sm_model_simmim(t->model, ctx, x, mask, NULL);
    }
    sm_tensor *logits = sm_model_logits(t->model, ctx, x);
    if (b->targets) {
        sm_tensor *soft = sm_ctx_wrap(ctx, b->targets, 2, SM_SHAPE(b->size, b->num_classes));
        return sm_soft_cross_entropy(ctx, logits, soft);
    }
    int64_t *labels = sm_ctx_alloc(ctx, (size_t)b->size * sizeof *labels);
    for (int i = 0; labels && i < b->size; i++) labels[i] = b->labels[i];
    return sm_cross_entropy(ctx, logits, labels, (float)t->set.label_smoothing);
}

/* Forward + backward of one micro-batch, added to the gradients (the first one of an update
 * starts from zero); the loss is divided by the number of micro-batches per update and of
 * ranks (official path: by the ranks after the sum). With several ranks the gradients are
 * summed over them after the last micro-batch (official path: after each). */
static int sm__forward_backward(sm_trainer *t, const sm_batch *b, double *loss_out, sm_error *err)
{
    sm_ctx *ctx = t->ctx;
    int64_t A = t->set.accumulation, R = t->set.ranks;
    bool official = t->set.accumulation_official;
    bool reduce = R > 1 && (official || t->micro + 1 == A);
    sm_ctx_reset(ctx);
    sm_ctx_set_train(ctx, true);
    sm_ctx_set_grad(ctx, true);
    sm_ctx_set_rng(ctx, t->set.seed, (uint64_t)t->steps);
    sm_ctx_set_rng_sample(ctx, (uint64_t)((t->micro * R + t->rank) * t->set.batch_size));
    if (reduce) sm__reduce_watch(t, ctx); /* which bucket is final when, in backward */
    sm_tensor *loss = sm__loss(t, b), *scaled = loss;
    int64_t div = official ? A : A * R;
    if (loss && div > 1) scaled = sm_scale(ctx, loss, 1.0f / (float)div);
    if (t->micro == 0) sm_params_zero_grad(sm_model_params(t->model));
    int rc = 0;
    if (reduce)
        rc = sm__reduce_backward(t, ctx, sm_ctx_status(ctx) ? NULL : scaled, err);
    else if (scaled)
        sm_backward(ctx, scaled);
    if (!rc && sm_ctx_status(ctx)) {
        *err = *sm_ctx_error(ctx);
        rc = err->code;
    }
    if (rc) return rc;
    if (reduce && official) sm__scale_grads(sm_model_params(t->model), 1.0f / (float)R);
    *loss_out = loss->data[0];
    return 0;
}

/* Global-norm clipping as torch.nn.utils.clip_grad_norm_: the gradients are multiplied by
 * clip_norm / (norm + 1e-6) when that is below 1. */
static void sm__clip(sm_trainer *t, double gnorm)
{
    double coef = t->set.clip_norm / (gnorm + 1e-6);
    if (t->set.clip && coef < 1.0) sm__scale_grads(sm_model_params(t->model), (float)coef);
}

/* The schedule's index for update u (see the top of this file). */
static int64_t sm__sched_index(const sm_trainer *t, int64_t u)
{
    if (t->set.semantics == SM__SEM_RINGMO) return u;
    int64_t A = t->set.accumulation_official ? t->set.accumulation : 1;
    return u > 0 ? u * A - 1 : 0;
}

/* The learning rates of this update, then the optimizer update. */
static void sm__update(sm_trainer *t, sm_step_info *info)
{
    sm_params *p = sm_model_params(t->model);
    int64_t k = sm__sched_index(t, t->steps);
    double f = t->set.lr_batch_factor, lr = t->svt->lr(t->sched, k) * f;
    bool peak = t->set.semantics == SM__SEM_SIMMIM &&
                SM_HAS_SLOT(t->svt, sm_scheduler_vtbl, lr_peak) && t->svt->lr_peak;
    size_t np = sm_params_count(p);
    for (size_t i = 0; i < np; i++)
        t->lr[i] = (float)(peak && t->lr_scale[i] != 1.0
                               ? t->svt->lr_peak(t->sched, k, t->lr_scale[i]) * f
                               : lr * t->lr_scale[i]);
    t->ovt->step(t->opt, p, t->lr, t->wd, t->steps + 1);
    t->steps++;
    info->lr = lr;
}

int sm_trainer_step(sm_trainer *t, const sm_batch *b, sm_step_info *info, sm_error *err)
{
    sm_step_info dummy;
    if (!info) info = &dummy;
    *info = (sm_step_info){.loss = NAN, .grad_norm = NAN, .lr = NAN};
    if (!t->opt)
        return sm_error_set(err, SM_EINVAL, NULL, 0, 0, NULL,
                            "this trainer was made for evaluation only (no steps per epoch)");
    int rc = sm__forward_backward(t, b, &info->loss, err);
    if (rc) return rc;
    sm_params *p = sm_model_params(t->model);
    double t0 = sm_ctx_profiling(t->ctx) ? sm_profile_now() : 0.0; /* the optimizer's share */
    bool last = t->micro + 1 == t->set.accumulation;
    t->loss_sum = (t->micro ? t->loss_sum : 0.0) + info->loss;
    t->micro = last ? 0 : t->micro + 1;
    if (t->set.accumulation_official || last) { /* the norm of what is accumulated so far */
        info->grad_norm = sm__grad_norm(p);
        if (t->set.accumulation_official && isfinite(info->grad_norm)) sm__clip(t, info->grad_norm);
    }
    if (!last) {
        if (t0 > 0.0) sm_ctx_profile_add(t->ctx, SM_PROFILE_OPTIMIZER, sm_profile_now() - t0);
        return 0;
    }
    if (t->set.ranks > 1) { /* the mean over the ranks */
        double v = t->loss_sum;
        if ((rc = sm__reduce_sum(t, &v, 1, err))) return rc;
        t->loss_sum = v / (double)t->set.ranks;
    }
    info->loss = t->loss_sum / (double)t->set.accumulation; /* the update's batch */
    if (!isfinite(info->loss) || !isfinite(info->grad_norm))
        return sm_error_set(err, SM_EDATA, NULL, 0, 0, NULL,
                            "the %s is not finite at optimizer step %lld: no update made",
                            isfinite(info->loss) ? "gradient norm" : "loss",
                            (long long)t->steps + 1);
    if (!t->set.accumulation_official) sm__clip(t, info->grad_norm);
    if (t->ema && !t->ema_ready) sm__ema_init(t); /* the average starts from these weights */
    sm__update(t, info);
    if (t->ema) sm__ema_update(t);
    info->stepped = true;
    if (t0 > 0.0) sm_ctx_profile_add(t->ctx, SM_PROFILE_OPTIMIZER, sm_profile_now() - t0);
    return 0;
}
