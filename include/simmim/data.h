/* simmim/data.h - dataset readers (plugins).
 *
 * A dataset reader only enumerates samples: a file to decode (or raw pixels it has decoded
 * itself) and an optional label. Decoding (by the file's bytes, not its extension),
 * augmentation, masking and batching are core services (image.h, loader.h), so a new reader is
 * a page of code.
 *
 * Readers are chosen by name with the `reader` key of a dataset section (`pretrain_dataset`,
 * `finetune_dataset`); their own keys live in that section too.
 */
#ifndef SIMMIM_DATA_H
#define SIMMIM_DATA_H

#include "simmim/common.h"
#include "simmim/config.h"
#include "simmim/registry.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum sm_split {
    SM_SPLIT_TRAIN = 0, /* the training samples                 */
    SM_SPLIT_EVAL = 1   /* the validation / test samples        */
} sm_split;

typedef struct sm_dataset_opts {
    sm_split split;
    uint64_t seed;       /* the run's seed (for deterministic splits)                   */
    const char *out_dir; /* where a reader may write reports (e.g. its split lists);    */
                         /* NULL = write nothing                                         */
} sm_dataset_opts;

/* One sample. Exactly one of `path` and `pixels` is set. */
typedef struct sm_sample {
    const char *path;      /* a file to decode (borrowed; valid while the dataset is open)  */
    const uint8_t *pixels; /* or: 8-bit pixels, row-major HWC (borrowed, same lifetime)     */
    int width, height;     /* for pixels                                                    */
    int channels;          /* for pixels                                                    */
    int label;             /* class index, or -1 for unlabeled data                         */
    const char *name;      /* how to refer to the sample in messages (path or "file#index") */
} sm_sample;

typedef struct sm_dataset_vtbl {
    sm_component hdr; /* kind SM_KIND_DATASET; keys live in the dataset section             */
    /* Required. Enumerates the samples of `split` from the validated section. Errors name
     * the file or folder and say what was found (an empty folder, only unsupported files). */
    int (*open)(const sm_cfg *section, const sm_dataset_opts *opts, void **self,
                sm_error *err);
    /* Required. */
    void (*close)(void *self);
    /* Required. Number of samples. */
    int64_t (*count)(const void *self);
    /* Required. Number of classes; 0 for unlabeled data. */
    int (*num_classes)(const void *self);
    /* Optional. Name of class k (borrowed). */
    const char *(*class_name)(const void *self, int k);
    /* Required. Sample i in [0, count). Must be thread-safe and cheap (no decoding of files). */
    int (*get)(const void *self, int64_t i, sm_sample *out, sm_error *err);
} sm_dataset_vtbl;

#ifdef __cplusplus
}
#endif
#endif /* SIMMIM_DATA_H */
