/* simmim/optim.h - optimizers and learning-rate schedulers (plugins).
 *
 * An optimizer updates every parameter of an sm_params store from its gradient, with a learning
 * rate and a weight decay PER PARAMETER TENSOR (the trainer computes them from the schedule,
 * layer-wise decay and the no-weight-decay rules), so parameter groups need no special support.
 * Its state (e.g. AdamW's moments) lives in the store's extra blocks (sm_params_state), laid out
 * like the parameters, so a checkpoint writes it by name.
 *
 * A scheduler is a pure function: the learning rate at a global update step. Keys live in the
 * `lr_schedule` section (base_lr, min_lr, warmup_lr, warmup_epochs are the core's; a scheduler
 * adds its own).
 */
#ifndef SIMMIM_OPTIM_H
#define SIMMIM_OPTIM_H

#include "simmim/common.h"
#include "simmim/config.h"
#include "simmim/params.h"
#include "simmim/registry.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sm_optimizer_vtbl {
    sm_component hdr; /* kind SM_KIND_OPTIMIZER; keys live in the `optimizer` section        */
    /* Required. section: the validated `optimizer` section. Allocates its state in params
     * (finalized). */
    int (*create)(const sm_cfg *section, sm_params *params, void **self, sm_error *err);
    /* Required. */
    void (*destroy)(void *self);
    /* Required. One update of every parameter i from its gradient with learning rate lr[i]
     * and decoupled weight decay wd[i]; `step` counts updates from 1 (bias correction). */
    void (*step)(void *self, sm_params *params, const float *lr, const float *wd, int64_t step);
    /* Required. Number of state blocks and their names ("exp_avg" ...), for checkpoints. */
    int (*state_count)(const void *self);
    const char *(*state_name)(const void *self, int slot);
} sm_optimizer_vtbl;

typedef struct sm_schedule_opts {
    int64_t steps_per_epoch; /* optimizer updates per epoch (>= 1)                            */
    int64_t epochs;          /* length of the run in epochs (>= 1)                            */
} sm_schedule_opts;

typedef struct sm_scheduler_vtbl {
    sm_component hdr; /* kind SM_KIND_SCHEDULER; keys live in the `lr_schedule` section       */
    /* Required. section: the validated `lr_schedule` section (base_lr, min_lr, warmup_lr,
     * warmup_epochs and the scheduler's own keys). */
    int (*create)(const sm_cfg *section, const sm_schedule_opts *opts, void **self, sm_error *err);
    /* Required. */
    void (*destroy)(void *self);
    /* Required. Learning rate of global update `step` (0-based); steps past the end of the
     * schedule get its last value. */
    double (*lr)(const void *self, int64_t step);
    /* ---- ABI 1.1 (check with SM_HAS_SLOT before use) ---- */
    /* Optional. The schedule of a parameter group whose peak learning rate is base_lr x
     * peak_scale, warmup_lr and min_lr unchanged (timm's schedulers under the official
     * layer-wise decay). NULL: the trainer scales the whole schedule. */
    double (*lr_peak)(const void *self, int64_t step, double peak_scale);
} sm_scheduler_vtbl;

#ifdef __cplusplus
}
#endif
#endif /* SIMMIM_OPTIM_H */
