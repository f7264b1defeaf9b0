/* simmim/train.h - running a job: SimMIM pretraining, fine-tuning, evaluation.
 *
 * sm_train() runs what a validated config describes, in `output_dir`:
 *   config.yaml      the effective configuration (written before the first step)
 *   metrics.jsonl    one JSON object per optimizer step and per evaluation
 *   <prefix>-<epoch>_<step>.safetensors   checkpoints: parameters under their official names,
 *                    optimizer state ("optimizer.<state>.<name>"), and in __metadata__ the
 *                    config, epoch, step and loader position; written atomically
 *   recon-<epoch>.png  pretraining: with each checkpoint, a few inputs, their masked versions
 *                    and the reconstructions
 *   summary.json     the outcome (also written when the run stops early)
 *   bad_images.txt   files skipped by on_bad_image: skip, with the reason
 * Progress is reported through sm_log; nothing is written to stdout.
 *
 * Pretraining (task pretrain) trains the SimMIM model on `pretrain_dataset`. Fine-tuning (task
 * finetune) trains the classifier on `finetune_dataset` and evaluates it every eval_interval
 * epochs; `train_config.resume_ckpt` names the pretrained checkpoint whose encoder it starts
 * from (RingMo's convention). Evaluation (task eval) only evaluates resume_ckpt.
 * A pretraining run whose output_dir holds checkpoints of the same configuration resumes from
 * the newest one that verifies.
 *
 * Data parallelism (opts->comm with several ranks, docs/scaling.md): every rank runs sm_train
 * with the same config; each takes its share of every global batch (batch_size x ranks x
 * accumulation_steps), the gradients are summed over the ranks, and every rank makes the same
 * update. Rank 0 alone writes the output directory (and needs it); the others only read data.
 */
#ifndef SIMMIM_TRAIN_H
#define SIMMIM_TRAIN_H

#include "simmim/common.h"
#include "simmim/backend.h"
#include "simmim/comm.h"
#include "simmim/config.h"
#include "simmim/loader.h"
#include "simmim/model.h"
#include "simmim/registry.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sm_train_opts {
    /* Optional. When *stop becomes nonzero (a signal handler may set it), the run stops after
     * the current step, writes a checkpoint and returns SM_ECANCELED. */
    const volatile int *stop;
    /* Optional: the ranks of a data-parallel job (NULL: this process alone). The ranks agree
     * on a stop request at every optimizer step: when any rank's *stop is set, all of them
     * stop after the same step. */
    sm_comm *comm;
} sm_train_opts;

typedef struct sm_train_result {
    int64_t epochs;   /* epochs completed                                  */
    int64_t steps;    /* optimizer steps completed (global)               */
    double last_loss; /* mean training loss of the last epoch             */
    double eval_top1; /* last evaluation (fine-tuning / eval), else -1     */
    double eval_top5;
    char checkpoint[4096]; /* the last checkpoint written ("" if none)        */
    double best_top1;      /* the best evaluation of the run (resumed ones included), else -1 */
    int64_t best_epoch;    /* its epoch (0-based, as in metrics.jsonl), else -1               */
    double eval_mean_class; /* the last evaluation's mean of the per-class top-1 accuracies
                               (AA, percent), else -1                                       */
    bool abort_job;        /* several ranks: the error happened on this rank alone and the    */
                           /* others wait for it in a collective; end the job with            */
                           /* sm_comm_abort. Errors every rank knows of (a bad config, a stop,*/
                           /* a non-finite loss, too many bad images) leave it false.         */
} sm_train_result;

/* Runs the job. Errors name the file, key or image: SM_ECONFIG, SM_EIO (output directory,
 * checkpoints), SM_EDATA (bad images past the policy, a non-finite loss), SM_ECANCELED (stopped
 * through opts->stop; a checkpoint was written), and what the components return. */
SM_API int sm_train(const sm_registry *reg, const sm_config *cfg, const sm_train_opts *opts,
                    sm_train_result *result, sm_error *err);

/* ---- one training step at a time: embedding, step-by-step checks ------------------------ */

/* A trainer: the backend, the model (initialised from the config's seed), its optimizer and
 * learning-rate schedule, as a config describes them (the same objects sm_train uses). It
 * reads no data and writes no file: the caller feeds batches. */
typedef struct sm_trainer sm_trainer;

typedef struct sm_trainer_opts {
    int num_classes;         /* classifier classes; 0: train_config.num_classes              */
    int64_t steps_per_epoch; /* batches (micro-batches) per epoch, for the schedule; 0: no   */
                             /* optimizer (a trainer for evaluation only)                     */
    sm_backend *backend;     /* borrowed, must outlive the trainer; NULL: the trainer opens  */
                             /* the config's backend section                                 */
    sm_comm *comm;           /* data-parallel ranks (NULL: one process): each feeds its own   */
                             /* micro-batches, sm_trainer_step sums the gradients over them   */
                             /* and every rank makes the same update                          */
} sm_trainer_opts;

/* What one sm_trainer_step did. */
typedef struct sm_step_info {
    double loss;      /* the batch's loss; when it completes an update, the mean loss of
                         that update's micro-batches (over all ranks)                        */
    double grad_norm; /* global gradient norm before clipping (of what is accumulated so
                         far; NaN on a micro-batch that neither updates nor clips)         */
    double lr;        /* schedule x global-batch scaling, before layer-wise decay           */
    bool stepped;     /* the parameters were updated (the last micro-batch of an update)    */
} sm_step_info;

SM_API int sm_trainer_new(const sm_registry *reg, const sm_config *cfg,
                          const sm_trainer_opts *opts, sm_trainer **out, sm_error *err);
SM_API void sm_trainer_free(sm_trainer *t);
/* Borrowed; valid while the trainer lives. */
SM_API sm_model *sm_trainer_model(sm_trainer *t);
SM_API sm_ctx *sm_trainer_ctx(sm_trainer *t);
SM_API sm_backend *sm_trainer_backend(sm_trainer *t);
/* Optimizer steps done (the schedule's position); set when continuing a run. */
SM_API int64_t sm_trainer_steps(const sm_trainer *t);
SM_API void sm_trainer_set_steps(sm_trainer *t, int64_t steps);
/* Trains on one batch: forward, loss, backward into the gradients; on the last micro-batch of
 * an update (train_config.accumulation_steps), clipping, learning rates, optimizer update.
 * With several ranks every rank calls it with its own micro-batch (of batch_size images) and
 * the gradients are summed over the ranks in buckets while backward runs (a collective: every
 * rank makes the same calls).
 * Errors: SM_EDATA when the loss or the gradient norm is not finite (nothing updated; info
 * holds them), the model's errors, SM_EINVAL for a trainer without optimizer. */
SM_API int sm_trainer_step(sm_trainer *t, const sm_batch *batch, sm_step_info *info,
                           sm_error *err);
/* train_wrapper.use_ema: the exponential moving average of the parameters (RingMo-Framework's
 * EMACell: after each update ema = ema x ema_decay + w x (1 - ema_decay), starting from the
 * weights of the first update), laid out as sm_params_data; NULL when off or before the first
 * update. Evaluation uses these weights when use_ema is on; checkpoints keep them. */
SM_API const float *sm_trainer_ema(const sm_trainer *t);

/* What the optimizer does with parameter i (in sm_model_params order). */
typedef struct sm_param_hparams {
    double lr;           /* its learning rate in the last update (0 before the first)      */
    double weight_decay; /* 0 when excluded from decay                                       */
    double lr_scale;     /* layer-wise decay: layer_decay^(layers - 1 - layer id)           */
} sm_param_hparams;

/* SM_EINVAL for a bad index or a trainer without optimizer. */
SM_API int sm_trainer_param_hparams(const sm_trainer *t, size_t i, sm_param_hparams *out);

/* sm_model_load_weights and sm_recon_figure are declared in simmim/model.h. */

#ifdef __cplusplus
}
#endif
#endif /* SIMMIM_TRAIN_H */
