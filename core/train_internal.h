/* core/train_internal.h - checkpoints, shared by the trainer's files. */
#ifndef SIMMIM_CORE_TRAIN_INTERNAL_H
#define SIMMIM_CORE_TRAIN_INTERNAL_H

#include "simmim/optim.h"
#include "simmim/train.h"

/* Where a run stands. */
typedef struct sm__ckpt_state {
    int64_t epoch;    /* the epoch in progress (the next one at an epoch boundary)          */
    int64_t batch;    /* the next batch of that epoch                                       */
    int64_t position; /* the loader's epoch-order position after the last batch             */
    int64_t step;     /* optimizer steps done                                               */
} sm__ckpt_state;

/* Writes parameters, optimizer state (ovt may be NULL) and state atomically to path. */
int sm__checkpoint_save(const char *path, sm_model *m, const sm_optimizer_vtbl *ovt, void *oself,
                        const char *optim_name, const sm__ckpt_state *st, const char *config_yaml,
                        sm_error *err);
/* Restores parameters and optimizer state; refuses another task, format or architecture with
 * a message naming the tensor. */
int sm__checkpoint_load(const char *path, sm_model *m, const sm_optimizer_vtbl *ovt, void *oself,
                        sm__ckpt_state *st, sm_error *err);
/* Paths of "<prefix>-<epoch>_<step>.safetensors" files in dir (any prefix when NULL), highest
 * step first (malloc'd array of malloc'd strings). */
size_t sm__checkpoint_list(const char *dir, const char *prefix, char ***paths);

#endif
