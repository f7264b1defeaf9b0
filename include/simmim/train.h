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

/* Loads weights into a model from a safetensors checkpoint (ours, or one in the official
 * state_dict naming). For a classifier, a SimMIM checkpoint's "encoder." weights are used:
 * relative position indices, attention masks, the mask token and the decoder are dropped, a
 * shared ViT relative position table is copied into every block that has its own, and tables of
 * another window size are resized by the official geometric interpolation (spec §9.5).
 * Parameters absent from the file keep their values (the classifier head, fc_norm). Every
 * shape mismatch is an error naming the tensor. Writes a one-line summary into note. */
SM_API int sm_model_load_weights(sm_model *m, const char *path, char *note, size_t note_len,
                                 sm_error *err);

/* The reconstruction figure of a SimMIM model as a PNG (written atomically): one row per image,
 * four panels: the input, the input with its masked patches grey, the reconstruction, and the
 * reconstructed masked patches pasted into the visible input. images (n, channels, size, size)
 * are normalised with mean/std (per channel, 0..1 scale; de-normalised for display, first 3
 * channels shown, or 1), mask (n, mask_side, mask_side) holds 1 for a masked patch. The model
 * runs in ctx (reset; gradients and training mode off for the forwards, then restored) on 4
 * images at a time. losses (n values, may be NULL) receives each image's SimMIM loss: the mean
 * |x - x_rec| over its masked pixels and channels, as the official loss on a batch of one.
 * Errors: SM_EINVAL (geometry), the model's, SM_ENOMEM, SM_EIO naming path. */
SM_API int sm_recon_figure(sm_model *m, sm_ctx *ctx, const float *images, const float *mask,
                           int n, int channels, int size, int mask_side, const float *mean,
                           const float *std, const char *path, double *losses, sm_error *err);

#ifdef __cplusplus
}
#endif
#endif /* SIMMIM_TRAIN_H */
