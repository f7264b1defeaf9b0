/* simmim/model.h - backbones (plugins), the SimMIM model and the classifier.
 *
 * A backbone plugin (backbones/vit, backbones/swin, or one written out of tree) is forward code
 * only: it declares its parameters under the official PyTorch state_dict names, initialises
 * them as the official code does, and builds its forward pass from ops (ops.h); the tape gives
 * the backward pass.
 *
 * The core wraps a backbone:
 *  - SimMIM (pretraining): images + patch mask -> backbone feature map (B, F, H/s, W/s) ->
 *    decoder 1x1 conv F -> s²·C -> PixelShuffle(s) -> masked L1 loss. Names: the backbone's
 *    parameters under "encoder.", the decoder as "decoder.0.weight" / "decoder.0.bias".
 *  - classifier (fine-tuning / evaluation): images -> pooled features (B, F) -> head Linear
 *    F -> K ("head.weight", "head.bias") -> logits; the backbone's names have no prefix.
 */
#ifndef SIMMIM_MODEL_H
#define SIMMIM_MODEL_H

#include "simmim/common.h"
#include "simmim/config.h"
#include "simmim/io.h"
#include "simmim/params.h"
#include "simmim/registry.h"
#include "simmim/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum sm_task {
    SM_TASK_SIMMIM = 0,  /* masked image modeling pretraining */
    SM_TASK_CLASSIFY = 1 /* image classification              */
} sm_task;

typedef struct sm_backbone_opts {
    sm_task task;
    int64_t img_h, img_w; /* input image size                                                */
    const char *prefix;   /* parameter name prefix: "encoder." (SimMIM) or "" (classifier)     */
} sm_backbone_opts;

typedef struct sm_backbone_info {
    int in_chans;       /* input channels                                                     */
    int patch_size;     /* model patch size p: the mask grid is (H/p, W/p)                    */
    int encoder_stride; /* stride s of the SimMIM feature map (decoder pixel-shuffle factor)  */
    int num_features;   /* channels F of the feature map and of the pooled features           */
    int num_layers;     /* layer ids for layer-wise LR decay run 0..num_layers-1              */
    /* ABI 1.1: the blocks forward_features can stop after, 1..num_blocks (0 without the slot).
     * The host zeroes the struct before calling info, so a 1.0 plugin leaves it 0. */
    int num_blocks;
} sm_backbone_info;

/* A constant buffer of the official module (relative_position_index, attn_mask), so tools can
 * compare it with a reference file. */
typedef struct sm_buffer {
    const char *name;    /* without the prefix, e.g. "layers.0.blocks.1.attn_mask"              */
    sm_dtype dtype;      /* SM_DTYPE_I64 or SM_DTYPE_F32                                         */
    int ndim;
    int64_t shape[4];
    const void *data;    /* borrowed, valid while the backbone lives                             */
} sm_buffer;

/* A checkpoint being loaded, as a backbone's adapt_weight sees it (sm_weight_source_*). */
typedef struct sm_weight_source sm_weight_source;

/* What adapt_weight did (a mask). */
enum {
    SM_ADAPT_COPIED = 1,  /* filled from a tensor of another name (e.g. a shared table)       */
    SM_ADAPT_RESIZED = 2  /* resized from another shape (e.g. another window size)            */
};

typedef struct sm_backbone_vtbl {
    sm_component hdr; /* kind SM_KIND_BACKBONE; keys live in the `model` section               */
    /* Required. Reads its keys from the validated `model` section, declares its parameters
     * (opts->prefix + official name) in params. */
    int (*create)(const sm_cfg *model, const sm_backbone_opts *opts, sm_params *params,
                  void **self, sm_error *err);
    /* Required. */
    void (*destroy)(void *self);
    /* Required. */
    void (*info)(const void *self, sm_backbone_info *out);
    /* Required. The official initialisation, after sm_params_finalize, from rng. */
    int (*init)(void *self, sm_rng *rng, sm_error *err);
    /* Required. images (B, in_chans, H, W) constant; mask (B, H/p, W/p) constant floats, 1 =
     * masked, or NULL (no masking; required NULL for classification).
     * SM_TASK_SIMMIM: returns the feature map (B, F, H/s, W/s).
     * SM_TASK_CLASSIFY: returns pooled features (B, F).
     * On failure returns NULL with the error in ctx. */
    sm_tensor *(*forward)(void *self, sm_ctx *ctx, sm_tensor *images, const sm_tensor *mask);
    /* Optional. Layer id (0..num_layers-1) of a parameter, name WITHOUT prefix, for
     * layer-wise LR decay (spec 7.4). NULL: every parameter gets num_layers - 1. */
    int (*layer_id)(const void *self, const char *name);
    /* Optional. True if the parameter is in the official no-weight-decay skip list / keywords
     * (name WITHOUT prefix). The 1-D and ".bias" rules are applied by the core. */
    bool (*no_weight_decay)(const void *self, const char *name);
    /* Optional. Constant buffers, for comparison with reference files. */
    size_t (*buffer_count)(const void *self);
    int (*buffer_get)(const void *self, size_t i, sm_buffer *out);
    /* Optional. Initialises the classifier head Linear (weight (K, F), bias (K)) the way the
     * official model does for this backbone. NULL: weight trunc_normal(std 0.02, bounds +-2),
     * bias 0. */
    void (*init_head)(const void *self, sm_tensor *weight, sm_tensor *bias, sm_rng *rng);
    /* ---- ABI 1.1 (check with SM_HAS_SLOT before use) ---- */
    /* Optional. Adapts a foreign checkpoint to parameter `name` (WITHOUT prefix; t is its
     * tensor) when the file has no tensor of that name and shape: a table shared by all blocks
     * in pretraining but per block here, a relative position table of another window size...
     * src reads the file's tensors by their names without the model's prefix. Returns a mask of
     * SM_ADAPT_* when t was filled, 0 when this parameter has nothing to adapt (the core then
     * keeps the initialisation, or reports the shape mismatch), a negative status on error. */
    int (*adapt_weight)(const void *self, const char *name, sm_tensor *t,
                        const sm_weight_source *src, sm_error *err);
    /* Optional (ABI 1.1; set info's num_blocks with it). Pooled features of an intermediate
     * block, for linear probes at the depth MIM papers probe (SimMIM's ViT-B: block 8 of 12):
     * images (B, in_chans, H, W) constant, no mask; returns (B, F_block): the mean over the
     * patch tokens (no class token) of what block `block` outputs, with no norm after it;
     * block 0 pools the tokens entering the first block (after the embedding), block n the
     * output of the n-th block (1-based, counted through the whole backbone). F_block is the
     * width of the tokens there: num_features for a plain transformer, a stage's width for a
     * hierarchical one. A block outside 0..num_blocks fails ctx with SM_EINVAL naming the
     * range. On failure returns NULL with the error in ctx. */
    sm_tensor *(*forward_features)(void *self, sm_ctx *ctx, sm_tensor *images, int block);
} sm_backbone_vtbl;

/* For backbones' forward: checks images (B, in_chans, hp·patch, wp·patch) and, when given, the
 * mask (B, hp, wp), contiguous, with a mask token to blend in (has_mask_token). On success returns
 * 0 and sets *mask_flat to the mask viewed as (B, hp·wp) for sm_mask_blend (NULL without a mask);
 * otherwise records "<who>: expected ..., got ..." in ctx and returns SM_ESHAPE or SM_EINVAL. */
SM_API int sm_backbone_check_input(sm_ctx *ctx, const char *who, const sm_tensor *images,
                                   const sm_tensor *mask, int in_chans, int patch, int64_t hp,
                                   int64_t wp, bool has_mask_token, sm_tensor **mask_flat);

/* For adapt_weight: the file's tensor `name` (without the model's prefix), NULL if absent. */
SM_API const sm_st_info *sm_weight_source_find(const sm_weight_source *src, const char *name);
/* Reads it as float32 into out (numel values: its whole size). */
SM_API int sm_weight_source_read(const sm_weight_source *src, const char *name, float *out,
                                 int64_t numel, sm_error *err);

/* Resizes a relative position bias table from a window of side_in to side_out as the official
 * fine-tuning does (microsoft/SimMIM utils.load_pretrained: per head, a cubic spline on a
 * geometric grid, scipy's interp2d): in holds ((2·w_in-1)² + extra, heads) values, out
 * ((2·w_out-1)² + extra, heads); the `extra` trailing rows (ViT's class-token rows) are copied.
 * table_in / table_out are the sides of the square part (2·w - 1). Errors: SM_EUNSUPPORTED
 * (a side below 4), SM_ENOMEM. */
SM_API int sm_relpos_table_resize(const float *in, int table_in, int table_out, int heads,
                                  int extra, float *out, sm_error *err);

/* ---- the model -------------------------------------------------------------------------- */

typedef struct sm_model sm_model;

/* Builds a model from a validated config: backbone `model.backbone` with the `model` section,
 * image size `train_config.image_size`, classes `train_config.num_classes` (classifier).
 * Parameters are declared and finalised (zeroed); call sm_model_init for the official init.
 * new; free with sm_model_free. */
SM_API int sm_model_new(const sm_registry *reg, const sm_cfg *root, sm_task task,
                        sm_model **out, sm_error *err);
/* Same, with the number of classes given (num_classes > 0 overrides train_config.num_classes,
 * e.g. when the config leaves it null and the dataset says how many there are). */
SM_API int sm_model_new_classes(const sm_registry *reg, const sm_cfg *root, sm_task task,
                                int num_classes, sm_model **out, sm_error *err);
SM_API void sm_model_free(sm_model *m);
SM_API sm_task sm_model_task(const sm_model *m);
SM_API sm_params *sm_model_params(sm_model *m);
SM_API const sm_backbone_info *sm_model_info(const sm_model *m);
SM_API int sm_model_num_classes(const sm_model *m);
/* The backbone component and instance (borrowed), for buffer access etc. */
SM_API const sm_backbone_vtbl *sm_model_backbone(const sm_model *m, void **self);

/* Official initialisation of every parameter, deterministic in seed. */
SM_API int sm_model_init(sm_model *m, uint64_t seed, sm_error *err);

/* SimMIM step: images (B, C, H, W) constant, mask (B, H/p, W/p) constant floats.
 * Returns the loss (scalar); *x_rec (if not NULL) receives the reconstruction (B, C, H, W). */
SM_API sm_tensor *sm_model_simmim(sm_model *m, sm_ctx *ctx, sm_tensor *images,
                                  const sm_tensor *mask, sm_tensor **x_rec);
/* Classifier forward: images (B, C, H, W) -> logits (B, K). */
SM_API sm_tensor *sm_model_logits(sm_model *m, sm_ctx *ctx, sm_tensor *images);
/* Pooled backbone features of images (B, C, H, W). block < 0: as the classifier pools them
 * (B, num_features), the input of the head (a classifier only); 0..num_blocks (info): the
 * backbone's forward_features, the mean of the patch tokens after that block, unnormalised.
 * Errors (in ctx): SM_EUNSUPPORTED when the backbone cannot stop at a block (num_blocks 0),
 * SM_EINVAL for a block out of range (the message names the range) or a SimMIM model with
 * block < 0. */
SM_API sm_tensor *sm_model_features(sm_model *m, sm_ctx *ctx, sm_tensor *images, int block);
/* Whether sm_model_features can stop after `block` (>= 0): 0, else SM_EUNSUPPORTED (the
 * backbone has no forward_features) or SM_EINVAL ("block 13: backbone 'vit' has blocks
 * 0..12"), the message naming the backbone. */
SM_API int sm_model_check_block(const sm_model *m, int block, sm_error *err);

/* Layer id / no-weight-decay of a full parameter name (with prefix), spec 7.3-7.4:
 * no decay if 1-D, name ends in ".bias", or the backbone's skip list says so. */
SM_API int sm_model_layer_id(const sm_model *m, const char *name);
SM_API int sm_model_num_layers(const sm_model *m);
SM_API bool sm_model_no_weight_decay(const sm_model *m, const char *name);

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
 * reconstructed masked patches pasted into the visible input. Geometry: a header row of 22
 * pixels naming the columns ("input", "masked", "reconstruction", "visible + recon"), then the
 * rows; panels of P = k size pixels, k = ceil(128 / size) for images under 128 pixels (each
 * pixel becomes a k x k block), else k = 1; 4 white pixels around and between the panels:
 * width 4 P + 20, height 22 + n P + 4 (n + 1). images (n, channels, size, size)
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
#endif /* SIMMIM_MODEL_H */
