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
 */
#ifndef SIMMIM_TRAIN_H
#define SIMMIM_TRAIN_H

#include "simmim/common.h"
#include "simmim/config.h"
#include "simmim/model.h"
#include "simmim/registry.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sm_train_opts {
    /* Optional. When *stop becomes nonzero (a signal handler may set it), the run stops after
     * the current step, writes a checkpoint and returns SM_ECANCELED. */
    const volatile int *stop;
} sm_train_opts;

typedef struct sm_train_result {
    int64_t epochs;   /* epochs completed                                  */
    int64_t steps;    /* optimizer steps completed (global)               */
    double last_loss; /* mean training loss of the last epoch             */
    double eval_top1; /* last evaluation (fine-tuning / eval), else -1     */
    double eval_top5;
    char checkpoint[4096]; /* the last checkpoint written ("" if none)        */
} sm_train_result;

/* Runs the job. Errors name the file, key or image: SM_ECONFIG, SM_EIO (output directory,
 * checkpoints), SM_EDATA (bad images past the policy, a non-finite loss), SM_ECANCELED (stopped
 * through opts->stop; a checkpoint was written), and what the components return. */
SM_API int sm_train(const sm_registry *reg, const sm_config *cfg, const sm_train_opts *opts,
                    sm_train_result *result, sm_error *err);

/* sm_model_load_weights and sm_recon_figure are declared in simmim/model.h. */

#ifdef __cplusplus
}
#endif
#endif /* SIMMIM_TRAIN_H */
