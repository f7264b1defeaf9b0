/* core/model/model.c - the SimMIM model and the classifier around a backbone plugin.
 *
 * SimMIM (microsoft/SimMIM models/simmim.py): backbone feature map (B, F, H/s, W/s) ->
 * decoder = Conv2d(F, s²·C, 1) ("decoder.0") -> PixelShuffle(s) -> x_rec (B, C, H, W) ->
 * loss = Σ|x - x_rec|·M / (ΣM + 1e-5) / C with M the patch mask upsampled to pixels.
 * The stride s comes from the backbone (never hard-coded). C is the backbone's in_chans (the
 * official code hard-codes 3 output channels; with 3-channel input, as in every official recipe,
 * this is the same).
 * Classifier: pooled features (B, F) -> head Linear(F, K) ("head") -> logits.
 */
#include "base/internal.h"
#include "simmim/model.h"
#include "simmim/ops.h"

#include <math.h>

struct sm_model {
    sm_task task;
    const sm_backbone_vtbl *bb;
    void *bb_self;
    sm_backbone_info info;
    sm_params *params;
    const char *prefix; /* "encoder." or "" */
    int num_classes;
    sm_tensor *dec_w, *dec_b;   /* SimMIM decoder.0.weight (s²·C, F, 1, 1), .bias */
    sm_tensor *head_w, *head_b; /* classifier head.weight (K, F), .bias            */
};

void sm_model_free(sm_model *m)
{
    if (!m) return;
    if (m->bb && m->bb_self) m->bb->destroy(m->bb_self);
    sm_params_free(m->params);
    free(m);
}

int sm_model_new(const sm_registry *reg, const sm_cfg *root, sm_task task, sm_model **out,
                 sm_error *err)
{
    return sm_model_new_classes(reg, root, task, 0, out, err);
}

/* The backbone's info; intermediate blocks only through the ABI 1.1 slot (a count without it
 * is ignored). */
static void sm__model_info(sm_model *m)
{
    m->bb->info(m->bb_self, &m->info);
    if (!SM_HAS_SLOT(m->bb, sm_backbone_vtbl, forward_features) || !m->bb->forward_features ||
        m->info.num_blocks < 0)
        m->info.num_blocks = 0;
}

int sm_model_new_classes(const sm_registry *reg, const sm_cfg *root, sm_task task, int num_classes,
                         sm_model **out, sm_error *err)
{
    *out = NULL;
    const sm_cfg *msec = sm_cfg_get(root, "model");
    const char *name = msec ? sm_cfg_str(msec, "backbone") : NULL;
    if (!name) return sm_error_set(err, SM_ECONFIG, NULL, 0, 0, "model.backbone", "no backbone");
    const sm_component *c = sm_registry_lookup(reg, SM_KIND_BACKBONE, name, err);
    if (!c) return SM_ENOTFOUND;
    int64_t img = sm_cfg_int(root, "train_config.image_size");
    if (img <= 0)
        return sm_error_set(err, SM_ECONFIG, NULL, 0, 0, "train_config.image_size",
                            "image size must be positive");
    sm_model *m = calloc(1, sizeof *m);
    if (!m || !(m->params = sm_params_new())) {
        free(m);
        return sm_error_set(err, SM_ENOMEM, NULL, 0, 0, NULL, "out of memory");
    }
    m->task = task;
    m->bb = (const sm_backbone_vtbl *)c;
    m->prefix = task == SM_TASK_SIMMIM ? "encoder." : "";
    sm_backbone_opts opts = {.task = task, .img_h = img, .img_w = img, .prefix = m->prefix};
    int rc = m->bb->create(msec, &opts, m->params, &m->bb_self, err);
    if (rc) goto fail;
    sm__model_info(m);
    int64_t F = m->info.num_features;
    if (task == SM_TASK_SIMMIM) {
        int64_t s = m->info.encoder_stride, C = m->info.in_chans;
        if (!(m->dec_w = sm_params_add(m->params, "decoder.0.weight", 4,
                                       SM_SHAPE(s * s * C, F, 1, 1), err)) ||
            !(m->dec_b = sm_params_add(m->params, "decoder.0.bias", 1, SM_SHAPE(s * s * C), err))) {
            rc = SM_EINVAL;
            goto fail;
        }
    } else {
        const sm_cfg *nc = sm_cfg_get(root, "train_config.num_classes");
        if (num_classes <= 0 && (!nc || sm_cfg_kind_of(nc) == SM_CFG_NULL ||
                                 sm_cfg_int(root, "train_config.num_classes") < 1)) {
            rc = sm_error_set(err, SM_ECONFIG, NULL, 0, 0, "train_config.num_classes",
                              "a classifier needs train_config.num_classes >= 1");
            goto fail;
        }
        m->num_classes =
            num_classes > 0 ? num_classes : (int)sm_cfg_int(root, "train_config.num_classes");
        int64_t K = m->num_classes;
        if (!(m->head_w = sm_params_add(m->params, "head.weight", 2, SM_SHAPE(K, F), err)) ||
            !(m->head_b = sm_params_add(m->params, "head.bias", 1, SM_SHAPE(K), err))) {
            rc = SM_EINVAL;
            goto fail;
        }
    }
    if ((rc = sm_params_finalize(m->params, err))) goto fail;
    *out = m;
    return 0;
fail:
    sm_model_free(m);
    return rc;
}

sm_task sm_model_task(const sm_model *m) { return m->task; }
sm_params *sm_model_params(sm_model *m) { return m->params; }
const sm_backbone_info *sm_model_info(const sm_model *m) { return &m->info; }
int sm_model_num_classes(const sm_model *m) { return m->num_classes; }

const sm_backbone_vtbl *sm_model_backbone(const sm_model *m, void **self)
{
    if (self) *self = m->bb_self;
    return m->bb;
}

int sm_model_init(sm_model *m, uint64_t seed, sm_error *err)
{
    sm_rng rng;
    sm_rng_init(&rng, seed, 0x696e6974 /* "init" */, 0, 0);
    int rc = m->bb->init(m->bb_self, &rng, err);
    if (rc) return rc;
    if (m->dec_w) {
        /* PyTorch's default Conv2d init: weight and bias ~ U(±1/sqrt(fan_in)), fan_in = F. */
        double bound = 1.0 / sqrt((double)m->info.num_features);
        sm_init_uniform(m->dec_w, -bound, bound, &rng);
        sm_init_uniform(m->dec_b, -bound, bound, &rng);
    }
    if (m->head_w) {
        if (m->bb->init_head) {
            m->bb->init_head(m->bb_self, m->head_w, m->head_b, &rng);
        } else {
            sm_init_trunc_normal(m->head_w, 0.0, 0.02, -2.0, 2.0, &rng);
            sm_init_const(m->head_b, 0.0f);
        }
    }
    return 0;
}

sm_tensor *sm_model_simmim(sm_model *m, sm_ctx *ctx, sm_tensor *images, const sm_tensor *mask,
                           sm_tensor **x_rec)
{
    if (x_rec) *x_rec = NULL;
    if (m->task != SM_TASK_SIMMIM) {
        sm_ctx_fail(ctx, SM_EINVAL, "model: SimMIM forward on a classifier");
        return NULL;
    }
    if (!mask) {
        sm_ctx_fail(ctx, SM_EINVAL, "model: SimMIM needs a mask");
        return NULL;
    }
    sm_tensor *z = m->bb->forward(m->bb_self, ctx, images, mask);      /* (B, F, H/s, W/s) */
    sm_tensor *d = sm_conv1x1(ctx, z, m->dec_w, m->dec_b);             /* (B, s²·C, H/s, W/s) */
    sm_tensor *rec = sm_pixel_shuffle(ctx, d, m->info.encoder_stride); /* (B, C, H, W) */
    if (x_rec) *x_rec = rec;
    return sm_masked_l1(ctx, rec, images, mask, m->info.patch_size);
}

sm_tensor *sm_model_logits(sm_model *m, sm_ctx *ctx, sm_tensor *images)
{
    if (m->task != SM_TASK_CLASSIFY) {
        sm_ctx_fail(ctx, SM_EINVAL, "model: classifier forward on a SimMIM model");
        return NULL;
    }
    sm_tensor *f = m->bb->forward(m->bb_self, ctx, images, NULL); /* (B, F) */
    return sm_linear(ctx, f, m->head_w, m->head_b);               /* (B, K) */
}

sm_tensor *sm_model_features(sm_model *m, sm_ctx *ctx, sm_tensor *images, int block)
{
    if (sm_ctx_status(ctx)) return NULL;
    if (block < 0) {
        if (m->task == SM_TASK_CLASSIFY) return m->bb->forward(m->bb_self, ctx, images, NULL);
        sm_ctx_fail(ctx, SM_EINVAL, "model: the classifier's pooled features of a SimMIM model");
        return NULL;
    }
    sm_error e;
    sm_error_clear(&e);
    if (sm_model_check_block(m, block, &e)) {
        sm_ctx_fail(ctx, e.code, "%s", e.text);
        return NULL;
    }
    return m->bb->forward_features(m->bb_self, ctx, images, block); /* (B, F_block) */
}

int sm_model_check_block(const sm_model *m, int block, sm_error *err)
{
    const char *name = m->bb->hdr.name;
    if (m->info.num_blocks == 0)
        return sm_error_set(err, SM_EUNSUPPORTED, NULL, 0, 0, NULL,
                            "backbone '%s' cannot give the features of an intermediate block (it "
                            "has no forward_features, plugin ABI 1.1)",
                            name);
    if (block < 0 || block > m->info.num_blocks)
        return sm_error_set(err, SM_EINVAL, NULL, 0, 0, NULL,
                            "block %d: backbone '%s' has blocks 0..%d", block, name,
                            m->info.num_blocks);
    return 0;
}

/* Strips the backbone prefix; NULL if the name is not the backbone's. */
static const char *sm__backbone_name(const sm_model *m, const char *name)
{
    size_t n = strlen(m->prefix);
    if (strncmp(name, m->prefix, n) != 0) return NULL;
    if (!strncmp(name, "decoder.", 8) || !strncmp(name, "head.", 5)) return NULL;
    return name + n;
}

int sm_model_num_layers(const sm_model *m) { return m->info.num_layers; }

int sm_model_layer_id(const sm_model *m, const char *name)
{
    const char *bn = sm__backbone_name(m, name);
    if (!bn || !m->bb->layer_id) return m->info.num_layers - 1;
    return m->bb->layer_id(m->bb_self, bn);
}

bool sm_model_no_weight_decay(const sm_model *m, const char *name)
{
    sm_tensor *t = sm_params_find(m->params, name);
    if (t && t->ndim == 1) return true;
    size_t n = strlen(name);
    if (n >= 5 && strcmp(name + n - 5, ".bias") == 0) return true;
    const char *bn = sm__backbone_name(m, name);
    return bn && m->bb->no_weight_decay && m->bb->no_weight_decay(m->bb_self, bn);
}

int sm_backbone_check_input(sm_ctx *ctx, const char *who, const sm_tensor *images,
                            const sm_tensor *mask, int in_chans, int patch, int64_t hp, int64_t wp,
                            bool has_mask_token, sm_tensor **mask_flat)
{
    *mask_flat = NULL;
    if (sm_ctx_status(ctx)) return sm_ctx_status(ctx);
    char s[SM__SHAPE_STR_MAX];
    if (!images || images->ndim != 4 || images->shape[1] != in_chans ||
        images->shape[2] != hp * patch || images->shape[3] != wp * patch) {
        if (images) sm_tensor_shape_str(images, s, sizeof s);
        return sm_ctx_fail(ctx, SM_ESHAPE, "%s: expected images (B, %d, %lld, %lld), got %s", who,
                           in_chans, (long long)(hp * patch), (long long)(wp * patch),
                           images ? s : "none");
    }
    if (!mask) return 0;
    int64_t B = images->shape[0];
    if (!has_mask_token)
        return sm_ctx_fail(ctx, SM_EINVAL, "%s: a mask was given to a model without mask_token",
                           who);
    if (mask->ndim != 3 || mask->shape[0] != B || mask->shape[1] != hp || mask->shape[2] != wp ||
        !sm_tensor_is_contiguous(mask)) {
        sm_tensor_shape_str(mask, s, sizeof s);
        return sm_ctx_fail(ctx, SM_ESHAPE,
                           "%s: expected a contiguous mask (%lld, %lld, %lld), got %s", who,
                           (long long)B, (long long)hp, (long long)wp, s);
    }
    *mask_flat = sm_ctx_wrap(ctx, mask->data, 2, SM_SHAPE(B, hp * wp));
    return *mask_flat ? 0 : sm_ctx_status(ctx);
}
