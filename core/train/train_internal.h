/* core/train/train_internal.h - checkpoints, shared by the trainer's files. */
#ifndef SIMMIM_CORE_TRAIN_INTERNAL_H
#define SIMMIM_CORE_TRAIN_INTERNAL_H

#include "base/internal.h"
#include "simmim/backend.h"
#include "simmim/loader.h"
#include "simmim/ops.h"
#include "simmim/version.h"
#include "simmim/data.h"
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

/* core/train/confusion.c: an evaluation's confusion matrix (rows: true class, columns: top-1). */
typedef struct sm__confusion {
    int classes;
    int64_t *m; /* classes x classes counts */
} sm__confusion;

int sm__confusion_init(sm__confusion *c, int classes); /* SM_ENOMEM */
void sm__confusion_deinit(sm__confusion *c);
void sm__confusion_add(sm__confusion *c, int truth, int predicted);
/* Top-1 accuracy of class k in percent, NaN if it had no sample; the mean over the classes
 * that had samples. */
double sm__confusion_class_acc(const sm__confusion *c, int k);
double sm__confusion_mean_acc(const sm__confusion *c);
/* "name 40.0 %, name 55.0 %" for the `count` classes of lowest accuracy (names from the reader
 * when it has them, else indices). */
void sm__confusion_lowest(const sm__confusion *c, int count, const sm_dataset_vtbl *vt,
                          const void *self, char *out, size_t n);
/* The matrix as CSV text with class names in the first row and column (malloc'd; NULL on
 * ENOMEM). */
char *sm__confusion_csv(const sm__confusion *c, const sm_dataset_vtbl *vt, const void *self);

#endif
