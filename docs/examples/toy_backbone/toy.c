/* toy.c - a minimal simmim backbone plugin, written against the installed headers only.
 *
 * "toy": patch embedding (conv p×p, stride p) -> LayerNorm -> MLP with a residual -> features.
 * It shows every part a backbone needs: config keys, parameter declaration under official-style
 * names, initialisation, a forward pass built from ops (the tape gives the backward pass), the
 * SimMIM feature map and the pooled classifier features.
 *
 * Build:  cc -shared -fPIC -o sm_toy.so toy.c $(pkg-config --cflags --libs simmim)
 * Use:    put sm_toy.so in a plugin directory (plugin_path in the YAML, --plugin-dir, or
 *         SIMMIM_PLUGIN_PATH) and write `model: {backbone: toy, ...}`. */
#include <simmim/simmim.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct toy {
    sm_task task;
    int in_chans, patch, dim;
    int64_t hp, wp;
    sm_tensor *mask_token, *proj_w, *proj_b, *norm_w, *norm_b, *fc1_w, *fc1_b, *fc2_w, *fc2_b;
} toy;

/* The keys of the `model` section this backbone reads (defaults, ranges, one-line docs). */
static const sm_key toy_keys[] = {
    {"patch_size", SM_KEY_INT, "16", "[1,)", 0, "patch size (conv kernel and stride)"},
    {"in_chans", SM_KEY_INT, "3", "[1,)", 0, "input channels"},
    {"embed_dim", SM_KEY_INT, "64", "[1,)", 0, "feature channels"},
    {NULL, SM_KEY_END, NULL, NULL, 0, NULL},
};

static void toy_destroy(void *self) { free(self); }

static int toy_create(const sm_cfg *model, const sm_backbone_opts *opts, sm_params *params,
                      void **self, sm_error *err)
{
    toy *t = calloc(1, sizeof *t);
    if (!t) return sm_error_set(err, SM_ENOMEM, NULL, 0, 0, NULL, "out of memory");
    t->task = opts->task;
    t->in_chans = (int)sm_cfg_int(model, "in_chans");
    t->patch = (int)sm_cfg_int(model, "patch_size");
    t->dim = (int)sm_cfg_int(model, "embed_dim");
    if (opts->img_h % t->patch || opts->img_w % t->patch) {
        free(t);
        return sm_error_set(err, SM_ECONFIG, NULL, 0, 0, "model.patch_size",
                            "toy: the image size must be a multiple of patch_size");
    }
    t->hp = opts->img_h / t->patch;
    t->wp = opts->img_w / t->patch;
    int64_t D = t->dim;
    char name[128];
    int ok = 1;
#define PARAM(field, n, ...)                                                                       \
    do {                                                                                           \
        snprintf(name, sizeof name, "%s%s", opts->prefix, n);                                      \
        const int64_t shape_[] = {__VA_ARGS__};                                                    \
        if (ok && !(t->field = sm_params_add(                                                      \
                        params, name, (int)(sizeof shape_ / sizeof shape_[0]), shape_, err)))      \
            ok = 0;                                                                                \
    } while (0)
    if (t->task == SM_TASK_SIMMIM) PARAM(mask_token, "mask_token", 1, 1, D);
    PARAM(proj_w, "patch_embed.proj.weight", D, t->in_chans, t->patch, t->patch);
    PARAM(proj_b, "patch_embed.proj.bias", D);
    PARAM(norm_w, "norm.weight", D);
    PARAM(norm_b, "norm.bias", D);
    PARAM(fc1_w, "mlp.fc1.weight", 2 * D, D);
    PARAM(fc1_b, "mlp.fc1.bias", 2 * D);
    PARAM(fc2_w, "mlp.fc2.weight", D, 2 * D);
    PARAM(fc2_b, "mlp.fc2.bias", D);
#undef PARAM
    if (!ok) {
        free(t);
        return SM_EINVAL;
    }
    *self = t;
    return 0;
}

static void toy_info(const void *self, sm_backbone_info *out)
{
    const toy *t = self;
    out->in_chans = t->in_chans;
    out->patch_size = t->patch;
    out->encoder_stride = t->patch; /* the feature map is the patch grid */
    out->num_features = t->dim;
    out->num_layers = 2;
}

static int toy_init(void *self, sm_rng *rng, sm_error *err)
{
    (void)err;
    toy *t = self;
    if (t->mask_token) sm_init_trunc_normal(t->mask_token, 0.0, 0.02, -2.0, 2.0, rng);
    sm_init_trunc_normal(t->proj_w, 0.0, 0.02, -2.0, 2.0, rng);
    sm_init_const(t->proj_b, 0.0f);
    sm_init_const(t->norm_w, 1.0f);
    sm_init_const(t->norm_b, 0.0f);
    sm_init_trunc_normal(t->fc1_w, 0.0, 0.02, -2.0, 2.0, rng);
    sm_init_const(t->fc1_b, 0.0f);
    sm_init_trunc_normal(t->fc2_w, 0.0, 0.02, -2.0, 2.0, rng);
    sm_init_const(t->fc2_b, 0.0f);
    return 0;
}

/* The residual MLP block, x (B, L, D) -> (B, L, D): a unit sm_checkpoint can recompute in
 * backward (train_config.recompute) instead of keeping its activations; fc2's output, small
 * for its cost, is kept. */
static sm_tensor *toy_block(sm_ctx *ctx, void *arg, sm_tensor *const *in)
{
    const toy *t = arg;
    sm_tensor *h = sm_layernorm(ctx, in[0], t->norm_w, t->norm_b, 1e-6f);
    h = sm_gelu(ctx, sm_linear(ctx, h, t->fc1_w, t->fc1_b));
    h = sm_checkpoint_keep(ctx, sm_linear(ctx, h, t->fc2_w, t->fc2_b));
    return sm_add(ctx, in[0], h);
}

/* images (B, C, H, W), mask (B, H/p, W/p) or NULL
 * -> SimMIM: (B, D, H/p, W/p); classifier: (B, D). */
static sm_tensor *toy_forward(void *self, sm_ctx *ctx, sm_tensor *images, const sm_tensor *mask)
{
    const toy *t = self;
    sm_tensor *m; /* the mask as (B, L), or NULL */
    if (sm_backbone_check_input(ctx, "toy", images, mask, t->in_chans, t->patch, t->hp, t->wp,
                                t->mask_token != NULL, &m))
        return NULL;
    int64_t B = images->shape[0], D = t->dim;
    sm_tensor *x = sm_patch_embed(ctx, images, t->proj_w, t->proj_b, t->patch); /* (B, L, D) */
    if (m) x = sm_mask_blend(ctx, x, t->mask_token, m);
    x = sm_checkpoint(ctx, toy_block, self, 1, &x);
    if (t->task == SM_TASK_CLASSIFY) return sm_mean(ctx, x, 1);
    x = sm_permute(ctx, x, (const int[]){0, 2, 1}); /* (B, D, L) */
    return sm_reshape(ctx, x, 4, SM_SHAPE(B, D, t->hp, t->wp));
}

/* Optional (plugin ABI 1.1): adapting foreign weights. Checkpoints of an earlier version of this
 * toy named the MLP's layers "fc1" / "fc2" (no "mlp." prefix); they still fine-tune: a
 * parameter the checkpoint lacks under its own name is read from the old name. */
static int toy_adapt_weight(const void *self, const char *name, sm_tensor *t,
                            const sm_weight_source *src, sm_error *err)
{
    (void)self;
    if (strncmp(name, "mlp.", 4) != 0) return 0;
    const sm_st_info *in = sm_weight_source_find(src, name + 4);
    if (!in || in->numel != sm_tensor_numel(t)) return 0;
    int rc = sm_weight_source_read(src, name + 4, t->data, in->numel, err);
    return rc ? rc : SM_ADAPT_COPIED;
}

static const sm_backbone_vtbl toy_vtbl = {
    .hdr =
        SM_COMPONENT_INIT(sm_backbone_vtbl, SM_KIND_BACKBONE, "toy",
                          "example backbone: patch embedding + one residual MLP", toy_keys, NULL),
    .create = toy_create,
    .destroy = toy_destroy,
    .info = toy_info,
    .init = toy_init,
    .forward = toy_forward,
    .adapt_weight = toy_adapt_weight,
};

static int toy_register(sm_registry *reg, sm_error *err)
{
    return sm_registry_add(reg, &toy_vtbl.hdr, err);
}

SM_PLUGIN_DEFINE(toy, "1.0.0", "Example out-of-tree backbone", "MIT", toy_register)
