/* core/train/train_internal.h - shared by the trainer's files:
 *   settings.c    the run's settings, read and checked once from the config
 *   trainer.c     the model, optimizer and schedule, and one training step (public sm_trainer)
 *   rundir.c      the output directory: creation, lock, ownership, atomic text files
 *   metrics.c     metrics.jsonl, the progress line, summary.json
 *   resume.c      resuming from the run's own checkpoints, or starting from resume_ckpt
 *   evaluate.c    evaluation: top-1/top-5, per-class accuracy, confusion matrix
 *   loop.c        the epochs: steps, logging, stop requests, checkpoints
 *   train.c       sm_train: set-up, the job, tear-down
 *   checkpoint.c  training checkpoints; confusion.c the confusion matrix */
#ifndef SIMMIM_CORE_TRAIN_INTERNAL_H
#define SIMMIM_CORE_TRAIN_INTERNAL_H

#include "base/internal.h"
#include "simmim/backend.h"
#include "simmim/data.h"
#include "simmim/loader.h"
#include "simmim/ops.h"
#include "simmim/optim.h"
#include "simmim/train.h"
#include "simmim/version.h"

#include <jansson.h>
#include <limits.h>
#include <stdio.h>

/* ---- settings.c ----------------------------------------------------------------------------- */

typedef enum sm__run_task { SM__RUN_PRETRAIN = 0, SM__RUN_FINETUNE, SM__RUN_EVAL } sm__run_task;

/* Whose training-step details a run reproduces (step_semantics). */
typedef enum sm__semantics {
    SM__SEM_SIMMIM = 0, /* microsoft/SimMIM: update u uses the schedule at u - 1, layer decay
                           scales the peak, official weight-decay exclusions                */
    SM__SEM_RINGMO      /* RingMo-Framework: update u uses the schedule at u, layer decay
                           scales the whole schedule, no decay on the mask token            */
} sm__semantics;

/* Everything a run reads from its config, typed, read once (sm__settings_read). Strings and
 * sections are borrowed from the config, which outlives the run. */
typedef struct sm__settings {
    sm__run_task task;
    const char *task_name;    /* "pretrain", "finetune", "eval"                              */
    const char *data_section; /* "pretrain_dataset" or "finetune_dataset"                    */
    const sm_cfg *data;       /* that section                                                */
    sm__semantics semantics;
    uint64_t seed;
    int64_t epochs, batch_size, per_epoch_size, initial_epoch;
    int64_t accumulation;    /* micro-batches per optimizer step                             */
    bool accumulation_official; /* microsoft/SimMIM's accumulation path                      */
    int64_t num_classes; /* 0: as many as the dataset has                                     */
    double lr_batch_factor; /* learning rates x global batch/512 (arch simmim), else 1       */
    bool clip;
    double clip_norm;
    bool recompute;       /* train_config.recompute: blocks recomputed in backward            */
    bool use_ema;
    float ema_decay;      /* float32, as RingMo's EMACell holds it                          */
    int64_t samples_num;  /* RingMo's accuracy denominator; 0: the images evaluated         */
    double label_smoothing;
    int64_t eval_interval, eval_offset; /* evaluate after epoch e (1-based) when
                                           e % interval == offset                             */
    int64_t save_every, keep_max;
    char prefix[128];
    char out_dir[PATH_MAX];
    char resume_ckpt[PATH_MAX]; /* "" when null                                               */
    const char *backbone, *optim_name, *lr_type;
    const sm_cfg *optim, *sched, *backend; /* their sections                                 */
    const char *backend_name;
    int threads; /* 0: all cores                                                              */
} sm__settings;

const char *sm__run_task_name(sm__run_task t);
/* Reads a validated config's run settings. Errors: SM_ECONFIG (a value that validation cannot
 * judge alone, e.g. a path too long). */
int sm__settings_read(const sm_config *cfg, sm__settings *s, sm_error *err);

/* ---- trainer.c (struct sm_trainer, public in simmim/train.h) --------------------------------- */

struct sm_trainer {
    sm__settings set;
    sm_backend *be;
    bool owns_be;
    sm_ctx *ctx;
    sm_model *model;
    const sm_optimizer_vtbl *ovt; /* NULL for evaluation only                                */
    void *opt;
    const sm_scheduler_vtbl *svt;
    void *sched;
    float *lr, *wd;    /* per parameter: the learning rate of the last step, weight decay   */
    double *lr_scale;  /* per parameter: layer-wise decay                                    */
    int64_t steps;     /* optimizer steps done                                               */
    int64_t steps_per_epoch; /* micro-batches per epoch, as given                            */
    int64_t micro;     /* micro-batches of the optimizer step in progress                    */
    float *ema;        /* train_wrapper.use_ema: the moving average of the parameters (all of
                          them, in the parameter block's layout), NULL otherwise            */
    bool ema_ready;    /* ema holds values (set from the weights at the first update, or
                          from a checkpoint)                                                  */
    double loss_sum;   /* their summed loss                                                  */
};

/* ---- checkpoint.c ----------------------------------------------------------------------------- */

/* Where a run stands. */
typedef struct sm__ckpt_state {
    int64_t epoch;    /* the epoch in progress (the next one at an epoch boundary)          */
    int64_t batch;    /* the next batch of that epoch                                       */
    int64_t position; /* the loader's epoch-order position after the last batch             */
    int64_t step;     /* optimizer steps done                                               */
} sm__ckpt_state;

/* Writes parameters, optimizer state, the EMA weights ("ema.<name>") and state atomically to
 * path. */
int sm__checkpoint_save(const char *path, const sm_trainer *t, const sm__ckpt_state *st,
                        const char *config_yaml, sm_error *err);
/* Restores parameters and optimizer state; refuses another task or architecture with a message
 * naming the tensor (SM_EDATA). A file that is not a simmim training checkpoint at all (another
 * format, e.g. bare weights) gives SM_EKIND; an unreadable one SM_EFORMAT / SM_EIO. */
int sm__checkpoint_load(const char *path, sm_trainer *t, sm__ckpt_state *st, sm_error *err);
/* Paths of "<prefix>-<epoch>_<step>.safetensors" files in dir (any prefix when NULL), highest
 * step first (malloc'd array of malloc'd strings). */
size_t sm__checkpoint_list(const char *dir, const char *prefix, char ***paths);
void sm__checkpoint_list_free(char **paths, size_t n);

/* ---- confusion.c: an evaluation's confusion matrix (rows: true class, columns: top-1) -------- */

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

/* ---- the run ---------------------------------------------------------------------------------- */

typedef struct sm__run {
    const sm_config *cfg;
    const sm_registry *reg;
    const sm_train_opts *opts;
    sm__settings set;
    sm_backend *be;
    int lock_fd;
    FILE *metrics;
    char *yaml; /* the effective config                                                       */
    sm_trainer *tr;
    sm_dataset ds, eval_ds;
    sm_pipeline pipe, eval_pipe;
    sm_loader *loader, *eval_loader;
    int64_t spe;     /* batches (micro-batches) per epoch: a multiple of accumulation_steps     */
    int64_t updates; /* optimizer steps per epoch (spe / accumulation_steps)                    */
    double t_start;
    int64_t images_seen;
    double best_top1;   /* the best evaluation so far (kept records of a resumed run count)  */
    int64_t best_epoch;
    /* pretraining: the first images of the latest batch and their masks, for the
     * reconstruction figure written with each checkpoint */
    float *vis_images, *vis_mask;
    int vis_n, vis_c, vis_s, vis_g;
} sm__run;

double sm__now(void);
/* True once the caller asked the run to stop (sm_train_opts.stop). */
bool sm__stop_requested(const sm__run *r);

/* rundir.c */
int sm__rundir_create(const char *path, bool *created, sm_error *err);
int sm__rundir_lock(sm__run *r, sm_error *err);
void sm__rundir_remove_stale_temps(const char *dir);
int sm__rundir_check_owner(const sm__run *r, sm_error *err);
/* Writes text to dir/name through a temporary file, fsync and a rename. */
int sm__write_file(const char *dir, const char *name, const char *text, sm_error *err);

/* metrics.c */
int sm__metrics_open(sm__run *r, const sm__ckpt_state *st, bool append_only, sm_error *err);
/* Appends one JSON object (stolen) and flushes. */
int sm__metric(sm__run *r, json_t *obj, sm_error *err);
/* A JSON number, or null when not finite (JSON has no NaN). */
json_t *sm__jnum(double v);
void sm__duration(double secs, char *buf, size_t n);
/* Keeps the best evaluation (top-1 and its epoch). */
void sm__note_eval(sm__run *r, int64_t epoch, double top1);
int sm__write_summary(sm__run *r, const sm_train_result *res, int status, const sm_error *e);

/* resume.c */
/* A train_config.resume_ckpt that does not exist, located in the config (unless the run will
 * resume from its own checkpoints). */
int sm__resume_ckpt_exists(const sm__run *r, sm_error *err);
/* Resumes from the run's newest loadable checkpoint, or else starts from resume_ckpt (ours to
 * continue, or weights); *resumed tells whether the run continues one of its own. */
int sm__resume(sm__run *r, sm__ckpt_state *st, sm_train_result *res, bool *resumed,
               sm_error *err);

/* trainer.c: the EMA weights swapped with the parameters (evaluation with use_ema); calling it
 * twice restores them. */
void sm__trainer_swap_ema(sm_trainer *t);

/* evaluate.c */
int sm__evaluate(sm__run *r, int64_t epoch, double *top1, double *top5, sm_error *err);

/* loop.c */
int sm__train_loop(sm__run *r, sm__ckpt_state *st, sm_train_result *res, sm_error *err);

#endif
