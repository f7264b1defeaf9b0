/* core/train/trainer.c - the model, optimizer and schedule of a run, and one training step
 * (sm_trainer, simmim/train.h).
 *
 * One optimizer step (microsoft/SimMIM main_simmim.py / main_finetune.py, RingMo-Framework):
 *   forward (SimMIM loss, or classifier + soft-target / label-smoothed cross-entropy) ->
 *   backward -> global-norm gradient clipping (train_wrapper) -> per-parameter learning rate =
 *   schedule(step) x batch/512 (arch simmim) x layer-decay scale, weight decay 0 for 1-D / bias /
 *   skip-listed parameters -> optimizer step.
 * A step is a pure function of (config, seed, step, batch): drop path is keyed by (seed, step). */
#include "train/train_internal.h"

#include <math.h>

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
    sm_schedule_opts so = {.steps_per_epoch = t->steps_per_epoch, .epochs = s->epochs};
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
        bool nd = sm_model_no_weight_decay(t->model, name);
        t->wd[i] = nd ? 0.0f : (float)wd;
        no_decay += nd;
        t->lr_scale[i] = decay < 1.0 ? pow(decay, L - 1 - sm_model_layer_id(t->model, name)) : 1.0;
    }
    sm_log(SM_LOG_INFO,
           "optimizer %s (weight decay %g on %zu of %zu tensors, layer decay %g over %d layer "
           "ids), schedule %s over %lld steps (%lld per epoch), learning rates x %g (batch %lld "
           "/ 512)",
           oc->name, wd, np - no_decay, np, decay, L, sc->name,
           (long long)(s->epochs * t->steps_per_epoch), (long long)t->steps_per_epoch,
           s->lr_batch_factor, (long long)s->batch_size);
    return 0;
}

int sm_trainer_new(const sm_registry *reg, const sm_config *cfg, const sm_trainer_opts *o,
                   sm_trainer **out, sm_error *err)
{
    *out = NULL;
    sm_trainer *t = calloc(1, sizeof *t);
    if (!t) return sm_error_set(err, SM_ENOMEM, NULL, 0, 0, NULL, "out of memory");
    int rc = sm__settings_read(cfg, &t->set, err);
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
    sm_task task = s->task == SM__RUN_PRETRAIN ? SM_TASK_SIMMIM : SM_TASK_CLASSIFY;
    if (!rc)
        rc = sm_model_new_classes(reg, sm_config_root(cfg), task, classes, &t->model, err);
    if (!rc) rc = sm_model_init(t->model, s->seed, err);
    if (!rc && t->steps_per_epoch > 0) rc = sm__trainer_optim(t, reg, err);
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
    free(t);
}

sm_model *sm_trainer_model(sm_trainer *t) { return t->model; }
sm_ctx *sm_trainer_ctx(sm_trainer *t) { return t->ctx; }
sm_backend *sm_trainer_backend(sm_trainer *t) { return t->be; }
int64_t sm_trainer_steps(const sm_trainer *t) { return t->steps; }

void sm_trainer_set_steps(sm_trainer *t, int64_t steps) { t->steps = steps; }

int sm_trainer_param_hparams(const sm_trainer *t, size_t i, double *lr, double *wd)
{
    if (!t->lr || i >= sm_params_count(sm_model_params(t->model))) return SM_EINVAL;
    if (lr) *lr = t->lr[i];
    if (wd) *wd = t->wd[i];
    return 0;
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

/* Forward + backward of one batch into the parameters' gradients. */
static int sm__forward_backward(sm_trainer *t, const sm_batch *b, double *loss_out, sm_error *err)
{
    sm_ctx *ctx = t->ctx;
    sm_ctx_reset(ctx);
    sm_ctx_set_train(ctx, true);
    sm_ctx_set_grad(ctx, true);
    sm_ctx_set_rng(ctx, t->set.seed, (uint64_t)t->steps);
    sm_tensor *loss = sm__loss(t, b);
    sm_params_zero_grad(sm_model_params(t->model));
    if (loss) sm_backward(ctx, loss);
    if (sm_ctx_status(ctx)) {
        *err = *sm_ctx_error(ctx);
        return err->code;
    }
    *loss_out = loss->data[0];
    return 0;
}

/* Clipping, the learning rates of this step, the optimizer update. */
static void sm__update(sm_trainer *t, double gnorm, sm_step_info *info)
{
    sm_params *p = sm_model_params(t->model);
    if (t->set.clip && gnorm > t->set.clip_norm)
        sm__scale_grads(p, (float)(t->set.clip_norm / (gnorm + 1e-6)));
    double lr = t->svt->lr(t->sched, t->steps) * t->set.lr_batch_factor;
    size_t np = sm_params_count(p);
    for (size_t i = 0; i < np; i++) t->lr[i] = (float)(lr * t->lr_scale[i]);
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
    info->grad_norm = sm__grad_norm(sm_model_params(t->model));
    if (!isfinite(info->loss) || !isfinite(info->grad_norm))
        return sm_error_set(err, SM_EDATA, NULL, 0, 0, NULL,
                            "the %s is not finite at optimizer step %lld: no update made",
                            isfinite(info->loss) ? "gradient norm" : "loss",
                            (long long)t->steps + 1);
    sm__update(t, info->grad_norm, info);
    info->stepped = true;
    return 0;
}
