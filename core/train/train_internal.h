/* core/train/train_internal.h - shared by the trainer's files:
 *   settings.c    the run's settings, read and checked once from the config
 *   trainer.c     the model, optimizer and schedule, and one training step (public sm_trainer)
 *   reduce.c      data parallelism in the step: gradients summed over the ranks during backward
 *   rundir.c      the output directory: creation, lock, ownership, atomic text files
 *   metrics.c     metrics.jsonl, the progress line, summary.json
 *   resume.c      resuming from the run's own checkpoints, or starting from resume_ckpt
 *   evaluate.c    evaluation: top-1/top-5, per-class accuracy, confusion matrix
 *   loop.c        the epochs: steps, logging, stop requests, checkpoints
 *   ranks.c       what the ranks of a data-parallel run agree on
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
    int ranks;               /* data-parallel ranks (sm__settings_set_ranks; 1 when read)     */
    bool arch_simmim;        /* arch simmim: learning rates scale with the global batch       */
    bool accumulation_official; /* microsoft/SimMIM's accumulation path                      */
    int64_t num_classes; /* 0: as many as the dataset has                                     */
    double lr_batch_factor; /* learning rates x global batch/512 (arch simmim), else 1; the
                               global batch is batch_size x ranks x accumulation             */
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
/* Reads a validated config's run settings (for one rank). Errors: SM_ECONFIG (a value that
 * validation cannot judge alone, e.g. a path too long). */
int sm__settings_read(const sm_config *cfg, sm__settings *s, sm_error *err);
/* The number of ranks, and with it the global batch and the learning-rate factor. */
void sm__settings_set_ranks(sm__settings *s, int ranks);
/* batch_size x ranks x accumulation_steps */
int64_t sm__global_batch(const sm__settings *s);

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
    /* data parallelism (reduce.c) */
    sm_comm *comm;     /* NULL: one process                                                  */
    int rank;
    bool overlap;      /* buckets start while backward runs                                  */
    size_t nbuckets, next_bucket;         /* next_bucket: buckets below it are still to start */
    int64_t *bucket_end, *param_end;      /* float offsets in the parameter block            */
    size_t *bucket_first, *param_first;   /* first readers (sm_ctx_watch_reads)               */
    int64_t bucket_floats;                /* the bucket size aimed at                         */
    int64_t buckets_sent, buckets_early;  /* summed: all, and those started inside backward   */
    int reduce_rc;
    sm_error reduce_err;
    double backward_seconds, reduce_wait; /* summed: backward, and waiting for the sums after */
};

/* ---- reduce.c: gradients summed over the ranks ------------------------------------------------ */

/* The buckets of the gradient block (nothing with one rank). */
int sm__reduce_plan(sm_trainer *t, sm_comm *comm, sm_error *err);
void sm__reduce_free(sm_trainer *t);
/* Before the forward of a micro-batch whose gradients are summed: notes the first reader of
 * each parameter (sm_ctx_watch_reads), which tells backward when a bucket is final. */
void sm__reduce_watch(sm_trainer *t, sm_ctx *ctx);
/* Backward of loss (NULL: this rank's forward failed; it still takes part in the sums), the
 * gradient block summed over the ranks, bucket by bucket while backward runs. */
int sm__reduce_backward(sm_trainer *t, sm_ctx *ctx, sm_tensor *loss, sm_error *err);
/* v[0..n) summed over the ranks. */
int sm__reduce_sum(sm_trainer *t, double *v, size_t n, sm_error *err);
/* Rank root's parameters, optimizer state, EMA weights and step count on every rank. */
int sm__trainer_bcast(sm_trainer *t, int root, sm_error *err);
/* A hash of the parameters' bits (are the ranks' weights the same?). */
uint64_t sm__trainer_hash(const sm_trainer *t);

/* ---- checkpoint.c ----------------------------------------------------------------------------- */

/* Where a run stands. */
typedef struct sm__ckpt_state {
    int64_t epoch;    /* the epoch in progress (the next one at an epoch boundary)          */
    int64_t batch;    /* the next batch (micro-batch of each rank) of that epoch            */
    int64_t position; /* this rank's loader position (in its stream) after the last batch  */
    int64_t step;     /* optimizer steps done                                               */
    int64_t ranks;    /* the ranks of the run that wrote it (1: one process)                */
    int64_t *positions; /* (ranks) every rank's position; malloc'd by sm__checkpoint_load, else
                           borrowed from the run                                            */
} sm__ckpt_state;

/* Writes parameters, optimizer state, the EMA weights ("ema.<name>") and state atomically to
 * path (st->positions: st->ranks entries). */
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
    /* data parallelism (ranks.c) */
    sm_comm *comm;
    int rank, ranks;
    bool writer;      /* rank 0: the only one that writes the output directory              */
    bool created_dir; /* this run created the output directory (removed if refused, empty)  */
    bool stop_agreed; /* several ranks: a stop request agreed on at the last exchange       */
    bool agreed;      /* the error being returned is known to every rank                    */
    size_t bad_shared, eval_bad_shared; /* bad files already shared with the other ranks    */
    int64_t *positions; /* (ranks) the loader positions of every rank, for checkpoints     */
    int64_t spe;     /* batches (micro-batches) per epoch: a multiple of accumulation_steps     */
    int64_t updates; /* optimizer steps per epoch (spe / accumulation_steps)                    */
    double t_start;
    int64_t images_seen;
    double best_top1;   /* the best evaluation so far (kept records of a resumed run count)  */
    int64_t best_epoch;
    double last_mean_class; /* the mean class accuracy of the last evaluation, else -1       */
    /* pretraining: the first images of the latest batch and their masks, for the
     * reconstruction figure written with each checkpoint */
    float *vis_images, *vis_mask;
    int vis_n, vis_c, vis_s, vis_g;
} sm__run;

double sm__now(void);
/* True once the caller asked the run to stop (sm_train_opts.stop); with several ranks, once
 * they agreed to (sm__ranks_step). */
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

/* ranks.c: with one rank each returns at once (sm__ranks_agree returns rc) */
/* Every rank's status after a phase that may fail on some: rc, or an agreed error naming the
 * first rank that failed (`what`: "setting up failed"). */
int sm__ranks_agree(sm__run *r, int rc, const char *what, sm_error *err);
/* Rank 0's status on every rank. */
int sm__ranks_bcast_status(sm__run *r, int rc, const char *what, sm_error *err);
/* The same effective config on every rank, but for the keys a rank may set for itself (threads,
 * loader workers, what only rank 0 reads); else an agreed SM_ECONFIG, each differing rank
 * naming the first key. */
int sm__ranks_check_config(sm__run *r, sm_error *err);
/* The same dataset on every rank (count, classes, names). */
int sm__ranks_check_data(sm__run *r, const sm_dataset *ds, const char *split, sm_error *err);
/* After each update: stop requests (r->stop_agreed) and the bad files found, shared; too many
 * bad files is an agreed SM_EDATA. */
int sm__ranks_step(sm__run *r, sm_error *err);
/* The evaluation loader's bad files, shared. */
int sm__ranks_after_eval(sm__run *r, sm_error *err);
/* r->positions = every rank's loader position. */
int sm__ranks_positions(sm__run *r, int64_t position, sm_error *err);
/* Checks that the ranks' weights are equal; if not, warns and gives every rank rank 0's. */
int sm__ranks_same_weights(sm__run *r, sm_error *err);
/* After rank 0 chose where the run starts (rc: its status): the others learn it (the step, each
 * rank's loader position into st->position, what was loaded). st->positions is consumed. */
int sm__ranks_resume(sm__run *r, sm__ckpt_state *st, bool *resumed, int rc, sm_error *err);

/* evaluate.c */
int sm__evaluate(sm__run *r, int64_t epoch, double *top1, double *top5, sm_error *err);

/* loop.c */
int sm__train_loop(sm__run *r, sm__ckpt_state *st, sm_train_result *res, sm_error *err);

#endif
