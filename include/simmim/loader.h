/* simmim/loader.h - the input pipeline: per-sample transforms and the threaded loader.
 *
 * A pipeline (sm_pipeline) says what happens to one sample: pretraining (spec §3: random
 * resized crop, flip, normalise, mask), fine-tuning (spec §8: crop, flip, RandAugment,
 * normalise, random erasing; Mixup/CutMix per batch) or evaluation (resize to S/crop_pct,
 * centre crop, normalise). It is filled from a dataset section of a validated config.
 *
 * The loader runs N worker threads that decode and transform samples ahead of the consumer into
 * a bounded ring; the consumer receives full batches in order. Every random choice is keyed:
 * the epoch order by (seed, epoch), crop/flip/augment/erase/mask by (seed, epoch, dataset
 * index), Mixup by (seed, epoch, batch index), so a batch is bit-identical whatever the number
 * of workers and after a resume (sm_loader_start with the saved position).
 *
 *     sm_dataset ds;  sm_pipeline p;  sm_loader *l;  const sm_batch *b;
 *     sm_dataset_open(&ds, reg, root, "pretrain_dataset", &dopts, &err);
 *     sm_pipeline_from_config(&p, root, "pretrain_dataset", SM_PIPELINE_PRETRAIN, &err);
 *     sm_loader_opts_from_config(&lo, root, "pretrain_dataset", SM_SPLIT_TRAIN);
 *     sm_loader_new(&ds, &p, &lo, &l, &err);
 *     sm_loader_start(l, epoch, 0, 0, &err);
 *     while (sm_loader_next(l, &b, &err) == 0 && b) train_step(b->images, b->mask);
 *     sm_loader_free(l);  sm_dataset_close(&ds);
 *
 * Bad files (undecodable, truncated, too large, unsupported): with SM_BAD_SKIP the sample is
 * logged, recorded (sm_loader_bad_*) and replaced by the next position of the epoch order, so
 * batches stay full and deterministic; more than max_bad_fraction of the dataset stops the
 * loader with SM_EDATA. With SM_BAD_FAIL the first bad file stops it with its message.
 */
#ifndef SIMMIM_LOADER_H
#define SIMMIM_LOADER_H

#include "simmim/common.h"
#include "simmim/config.h"
#include "simmim/data.h"
#include "simmim/image.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------------------- */
/* An open dataset: a reader and its instance.                                                */

typedef struct sm_dataset {
    const sm_dataset_vtbl *vt; /* borrowed from the registry                                   */
    void *self;                /* the reader's instance                                        */
    sm_split split;
} sm_dataset;

/* Opens the reader named by `<section>.reader` of a validated config root, for opts->split.
 * Errors: SM_ENOTFOUND (unknown reader, listing the registered ones), what the reader's open
 * returned. */
SM_API int sm_dataset_open(sm_dataset *ds, const sm_registry *reg, const sm_cfg *root,
                           const char *section, const sm_dataset_opts *opts, sm_error *err);
/* NULL-safe; leaves ds zeroed. */
SM_API void sm_dataset_close(sm_dataset *ds);

/* ---------------------------------------------------------------------------------------- */
/* Per-sample pipeline                                                                        */

typedef enum sm_pipeline_mode {
    SM_PIPELINE_PRETRAIN = 0,
    SM_PIPELINE_FINETUNE,
    SM_PIPELINE_EVAL
} sm_pipeline_mode;

typedef struct sm_pipeline {
    sm_pipeline_mode mode;
    int image_size;                  /* S: output is (channels, S, S)                        */
    int channels;                    /* model.in_chans                                        */
    int n_bands;                     /* 0 = no band selection                                 */
    int bands[SM_MAX_BANDS];         /* 0-based bands picked from each file, in order         */
    float mean[SM_MAX_BANDS];        /* per channel, in units of full scale (0..1)            */
    float std[SM_MAX_BANDS];
    sm_decode_opts decode;
    sm_interp interp;
    double scale_min, scale_max;     /* RandomResizedCrop area fraction                       */
    double ratio_min, ratio_max;     /* aspect ratio (3/4, 4/3)                               */
    double flip_prob;
    bool use_randaug;
    sm_randaug randaug;
    double erase_prob;               /* RandomErasing (fine-tuning)                           */
    sm_erase_mode erase_mode;
    int erase_count;
    double mixup_alpha, cutmix_alpha, mix_prob, switch_prob, smoothing; /* per batch          */
    int num_classes;                 /* train_config.num_classes (0 = unlabeled)              */
    double crop_pct;                 /* eval: resize to floor(S / crop_pct), centre crop S    */
    bool use_mask;                   /* pretraining: a mask per sample                        */
    sm_mask_spec mask;
} sm_pipeline;

/* Defaults of the official recipes for a mode and image size (3 channels, ImageNet mean/std,
 * bilinear for pretraining, bicubic otherwise, ViT-B/16 mask 32/16/0.6). */
SM_API void sm_pipeline_defaults(sm_pipeline *p, sm_pipeline_mode mode, int image_size);
/* Fills p from a validated config: the dataset `section` plus train_config.image_size,
 * train_config.num_classes and model.{in_chans, patch_size, mask_patch_size, mask_ratio}, then
 * sm_pipeline_check. Errors: SM_ECONFIG naming the key. */
SM_API int sm_pipeline_from_config(sm_pipeline *p, const sm_cfg *root, const char *section,
                                   sm_pipeline_mode mode, sm_error *err);
/* Consistency: sizes, band list vs channels, std > 0, mask geometry. Errors: SM_ECONFIG. */
SM_API int sm_pipeline_check(const sm_pipeline *p, sm_error *err);
/* Transforms one decoded image (consumed: modified in place) into out (channels, S, S) and,
 * when p->use_mask, mask (S/p, S/p). Randomness is keyed by (seed, epoch, index). tmp is
 * scratch. Errors: those of sm_image_convert (wrong band count), SM_ENOMEM. */
SM_API int sm_pipeline_apply(const sm_pipeline *p, sm_image *im, const char *name,
                             uint64_t seed, int64_t epoch, int64_t index, float *out,
                             float *mask, sm_image *tmp, sm_error *err);

/* ---------------------------------------------------------------------------------------- */
/* Loader                                                                                     */

typedef enum sm_bad_policy { SM_BAD_SKIP = 0, SM_BAD_FAIL } sm_bad_policy;

typedef struct sm_loader_opts {
    int batch_size;
    int num_workers;         /* worker threads; 0 = decode in the consumer's thread            */
    int prefetch;            /* samples held ready ahead (at least batch_size + num_workers)   */
    bool shuffle;            /* epoch order = permutations keyed by (seed, epoch, pass)         */
    int repeat;              /* passes over the data per epoch (<= 1: one)                     */
    bool drop_last;          /* training: only full batches                                   */
    int shard, num_shards;   /* data-parallel ranks: this loader's share (0 of 1: everything); */
                             /* see sm_loader_new                                             */
    uint64_t seed;
    sm_bad_policy on_bad;
    double max_bad_fraction; /* of the dataset's samples                                      */
} sm_loader_opts;

/* Loader options from a validated config: train_config.batch_size, seed and the section's
 * num_workers, prefetch_size, shuffle (train split only), repeat, on_bad_image,
 * max_bad_fraction; drop_last for the train split. */
SM_API void sm_loader_opts_from_config(sm_loader_opts *o, const sm_cfg *root,
                                       const char *section, sm_split split);

/* One batch, owned by the loader and valid until the next sm_loader_next/start/free. */
typedef struct sm_batch {
    int64_t epoch, index;     /* batch index within the epoch                                 */
    int size;                 /* B (smaller only for the last batch without drop_last)        */
    int channels, height, width;
    float *images;            /* (B, C, H, W), normalised                                     */
    float *mask;              /* (B, S/p, S/p), 1 = masked; NULL unless the pipeline masks    */
    int mask_side;            /* S/p                                                          */
    int *labels;              /* (B); -1 for unlabeled data                                   */
    float *targets;           /* (B, num_classes) soft targets when Mixup/CutMix is on; else NULL */
    int num_classes;
    int64_t *indices;         /* (B) dataset index of each sample                             */
} sm_batch;

typedef struct sm_loader sm_loader;

/* Creates a loader over an open dataset (borrowed: must outlive the loader) and starts the
 * workers. With num_shards S > 1 it delivers share `shard` of every epoch: the epoch order is
 * cut into chunks of batch_size positions and chunk c goes to shard c % S, so batch k of shard
 * r is chunk k x S + r, and the S shards' batch k together are the epoch order's positions
 * [k S B, (k + 1) S B), those a single loader with batch S x B gives as its batch k. With
 * drop_last every shard has floor(samples x repeat / (S B)) batches (the rest of the epoch
 * order is not used); without, the chunks are shared out as they come and the last may be
 * short. A bad sample is replaced from the shard's own stream (its next position), and
 * Mixup/CutMix are keyed by the chunk. With S > 1 the loader does not apply max_bad_fraction
 * itself: the caller shares the bad files among the shards (sm_loader_add_bad) and calls
 * sm_loader_check_bad. Checks the pipeline and options (even batch for Mixup, labels vs num_classes is
 * checked per sample; pipeline num_classes 0 takes the dataset's). Errors: SM_EINVAL/SM_ECONFIG (options), SM_EDATA (empty dataset),
 * SM_ENOMEM. */
SM_API int sm_loader_new(const sm_dataset *ds, const sm_pipeline *p, const sm_loader_opts *o,
                         sm_loader **out, sm_error *err);
/* Begins (or resumes) an epoch at batch `batch`, whose first sample is at `position` of the
 * epoch order (0 for a fresh epoch; sm_loader_position() saved with a checkpoint to resume).
 * Discards work in flight. */
SM_API int sm_loader_start(sm_loader *l, int64_t epoch, int64_t batch, int64_t position,
                           sm_error *err);
/* The next batch, or *out = NULL at the end of the epoch. Errors: SM_EDATA (a bad file under
 * on_bad_image: fail, or too many bad files), SM_ENOMEM, SM_ECANCELED (stopped). After an error
 * the loader only accepts sm_loader_start/stop/free. */
SM_API int sm_loader_next(sm_loader *l, const sm_batch **out, sm_error *err);
/* Batches in an epoch: floor(repeat*N/B) with drop_last, else ceil(repeat*N/B). */
SM_API int64_t sm_loader_num_batches(const sm_loader *l);
/* The epoch-order position after the last batch returned (for checkpoints). */
SM_API int64_t sm_loader_position(const sm_loader *l);
/* Stops and joins the workers (also mid-epoch). Idempotent; next() then fails SM_ECANCELED. */
SM_API void sm_loader_stop(sm_loader *l);
/* Stops and frees. NULL-safe. */
SM_API void sm_loader_free(sm_loader *l);

/* Bad files met so far (each dataset index once): count, name and reason (borrowed). */
SM_API size_t sm_loader_bad_count(const sm_loader *l);
SM_API const char *sm_loader_bad_name(const sm_loader *l, size_t i);
SM_API const char *sm_loader_bad_reason(const sm_loader *l, size_t i);
/* Its dataset index (-1 when i is out of range). */
SM_API int64_t sm_loader_bad_index(const sm_loader *l, size_t i);
/* Records a bad file another shard met: the sample is skipped without being read, and counted
 * and reported as the loader's own (nothing when already known). Errors: SM_EINVAL (index out
 * of range), SM_ENOMEM. */
SM_API int sm_loader_add_bad(sm_loader *l, int64_t index, const char *name, const char *reason,
                             sm_error *err);
/* SM_EDATA (key max_bad_fraction) when more than max_bad_fraction of the samples are known bad;
 * what sm_loader_next checks itself with one shard. */
SM_API int sm_loader_check_bad(const sm_loader *l, sm_error *err);
/* Writes "name<TAB>reason" lines. Errors: SM_EIO. */
SM_API int sm_loader_write_bad_report(const sm_loader *l, const char *path, sm_error *err);

#ifdef __cplusplus
}
#endif
#endif /* SIMMIM_LOADER_H */
