/* core/train/settings.c - a run's settings, read once from a validated config into a typed
 * struct (sm__settings): the rest of the trainer never looks a key up by name. */
#include "train/train_internal.h"

const char *sm__run_task_name(sm__run_task t)
{
    static const char *const names[] = {"pretrain", "finetune", "eval"};
    return (unsigned)t < SM__ARRAY_LEN(names) ? names[t] : "?";
}

/* task: the config's, else pretrain when there is a pretrain_dataset section, else finetune */
static sm__run_task sm__task_of(const sm_cfg *root)
{
    const char *t = sm_cfg_str(root, "task");
    if (!t) return sm_cfg_get(root, "pretrain_dataset") ? SM__RUN_PRETRAIN : SM__RUN_FINETUNE;
    return !strcmp(t, "pretrain") ? SM__RUN_PRETRAIN
           : !strcmp(t, "eval")   ? SM__RUN_EVAL
                                  : SM__RUN_FINETUNE;
}

int sm__settings_read(const sm_config *cfg, sm__settings *s, sm_error *err)
{
    const sm_cfg *root = sm_config_root(cfg);
    memset(s, 0, sizeof *s);
    s->task = sm__task_of(root);
    s->task_name = sm__run_task_name(s->task);
    s->data_section = s->task == SM__RUN_PRETRAIN ? "pretrain_dataset" : "finetune_dataset";
    s->data = sm_cfg_get(root, s->data_section);
    s->seed = (uint64_t)sm_cfg_int(root, "seed");
    const char *sem = sm_cfg_str(root, "step_semantics");
    s->semantics = sem && !strcmp(sem, "ringmo") ? SM__SEM_RINGMO : SM__SEM_SIMMIM;

    const sm_cfg *tc = sm_cfg_get(root, "train_config");
    s->epochs = sm_cfg_int(tc, "epoch");
    s->batch_size = sm_cfg_int(tc, "batch_size");
    s->per_epoch_size = sm_cfg_int(tc, "per_epoch_size");
    s->initial_epoch = sm_cfg_int(tc, "initial_epoch");
    s->num_classes = sm_cfg_is_null(tc, "num_classes") ? 0 : sm_cfg_int(tc, "num_classes");
    s->accumulation = sm_cfg_int(tc, "accumulation_steps");
    s->recompute = sm_cfg_bool(tc, "recompute");
    const char *am = sm_cfg_str(tc, "accumulation_mode");
    s->accumulation_official = am && !strcmp(am, "official");
    if (sm_cfg_path(tc, "resume_ckpt", s->resume_ckpt, sizeof s->resume_ckpt) >=
        sizeof s->resume_ckpt)
        return sm_error_set(err, SM_ECONFIG, NULL, 0, 0, "train_config.resume_ckpt",
                            "path too long");

    /* RingMo-Framework (build_lr._check_lr_config) and the official SimMIM scale every learning
     * rate of arch simmim by the global batch over 512 (the official code: batch size x world
     * size x accumulation steps). */
    const char *arch = sm_cfg_str(root, "arch");
    double global = (double)s->batch_size * (double)s->accumulation;
    s->lr_batch_factor = (!arch || !strcmp(arch, "simmim")) ? global / 512.0 : 1.0;

    const sm_cfg *tw = sm_cfg_get(root, "train_wrapper");
    s->clip = sm_cfg_bool(tw, "use_clip_grad");
    s->clip_norm = sm_cfg_float(tw, "clip_norm");
    s->use_ema = sm_cfg_bool(tw, "use_ema");
    s->ema_decay = (float)sm_cfg_float(tw, "ema_decay");

    if (s->task != SM__RUN_PRETRAIN) {
        s->label_smoothing = sm_cfg_float(s->data, "label_smoothing");
        s->samples_num = sm_cfg_is_null(s->data, "samples_num") ? 0 : sm_cfg_int(s->data, "samples_num");
        s->eval_interval = sm_cfg_int(s->data, "eval_interval");
        int64_t offset = sm_cfg_int(s->data, "eval_offset");
        /* RingMo: a negative offset means epoch % interval */
        s->eval_offset = offset < 0 ? s->epochs % (s->eval_interval > 0 ? s->eval_interval : 1)
                                    : offset;
    }

    const sm_cfg *ck = sm_cfg_get(root, "callback.ckpt_config");
    s->save_every = sm_cfg_int(ck, "save_ckpt_epochs");
    s->keep_max = sm_cfg_int(ck, "keep_checkpoint_max");
    snprintf(s->prefix, sizeof s->prefix, "%s", sm_cfg_str(ck, "prefix"));

    if (!sm_cfg_path(root, "output_dir", s->out_dir, sizeof s->out_dir))
        snprintf(s->out_dir, sizeof s->out_dir, "output");

    s->backbone = sm_cfg_str(root, "model.backbone");
    s->optim = sm_cfg_get(root, "optimizer");
    s->sched = sm_cfg_get(root, "lr_schedule");
    s->optim_name = sm_cfg_str(s->optim, "optim_name");
    s->lr_type = sm_cfg_str(s->sched, "lr_type");
    s->backend = sm_cfg_get(root, "backend");
    s->backend_name = sm_cfg_str(s->backend, "name");
    s->threads = (int)sm_cfg_int(s->backend, "threads");
    return 0;
}
