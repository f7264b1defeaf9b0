/* backbones/vit/vit.c - the BEiT-style Vision Transformer of SimMIM (plugin "vit").
 *
 * Follows microsoft/SimMIM models/vision_transformer.py (VisionTransformer and
 * VisionTransformerForSimMIM) and ../shared/spec/simmim.md §4.1:
 *   patch_embed (conv p×p, stride p) -> [SimMIM: mask-token blend] -> prepend cls_token ->
 *   [+ pos_embed] -> blocks (pre-norm; attention with q/v biases and no k bias, optional per-block
 *   and/or shared relative position bias with 3 extra cls rows; MLP with exact GELU; optional layer
 *   scale gamma_1/gamma_2; per-sample drop path) ->
 *   SimMIM: norm, drop cls, (B, D, Hp, Wp);  classifier: fc_norm(mean of patch tokens) or
 *   norm(x)[:, 0].
 * LayerNorm eps 1e-6 by default. Parameter names are the official state_dict names.
 */
#include <simmim/simmim.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VIT_MAX_DEPTH 256

typedef struct vit_block {
    sm_tensor *gamma_1, *gamma_2;
    sm_tensor *norm1_w, *norm1_b;
    sm_tensor *q_bias, *v_bias;
    sm_tensor *rpb_table;
    sm_tensor *qkv_w;
    sm_tensor *proj_w, *proj_b;
    sm_tensor *norm2_w, *norm2_b;
    sm_tensor *fc1_w, *fc1_b, *fc2_w, *fc2_b;
    float drop_path;
    char index_name[64]; /* blocks.i.attn.relative_position_index */
    const struct vit *v; /* the model and this block's index (sm_checkpoint's argument) */
    int index;
} vit_block;

typedef struct vit {
    sm_task task;
    int in_chans, patch, dim, depth, heads, hidden;
    int64_t hp, wp, tokens; /* patch grid and number of patch tokens */
    bool qkv_bias, abs_pos, rel_pos, shared_rel_pos, mean_pool, layer_scale;
    double init_values, eps, scale, init_scale;
    char prefix[64];
    sm_tensor *cls_token, *pos_embed, *mask_token;
    sm_tensor *patch_w, *patch_b;
    sm_tensor *shared_rpb;
    vit_block *blocks;
    sm_tensor *norm_w, *norm_b, *fc_norm_w, *fc_norm_b;
    int64_t *rp_index; /* (L+1)² relative position index, shared by every table */
    int64_t rp_rows;   /* (2Hp-1)(2Wp-1) + 3                                       */
    int64_t rp_index_shape[2];
} vit;

/* ---- configuration ------------------------------------------------------------------------ */

static const sm_key vit_keys[] = {
    {"patch_size", SM_KEY_INT, "16", "[1,1024]", 0, "patch size p (conv kernel and stride)"},
    {"in_chans", SM_KEY_INT, "3", "[1,1024]", 0, "input channels"},
    {"embed_dim", SM_KEY_INT, "768", "[1,65536]", 0, "embedding dimension D"},
    {"depth", SM_KEY_INT, "12", "[1,256]", 0, "number of transformer blocks"},
    {"num_heads", SM_KEY_INT, "12", "[1,4096]", 0, "attention heads (D must be a multiple)"},
    {"mlp_ratio", SM_KEY_FLOAT, "4.0", "(0,64]", 0, "MLP hidden size = int(D * mlp_ratio)"},
    {"qkv_bias", SM_KEY_BOOL, "true", NULL, 0, "learn q and v biases (the k bias is always 0)"},
    {"qk_scale", SM_KEY_FLOAT, "null", "(0,)", SM_KEY_NULLABLE,
     "attention logit scale; null = head_dim^-0.5"},
    {"drop_rate", SM_KEY_FLOAT, "0.0", "[0,1)", 0,
     "dropout after embeddings and in the MLP (only 0 is supported, as in all SimMIM recipes)"},
    {"attn_drop_rate", SM_KEY_FLOAT, "0.0", "[0,1)", 0,
     "attention dropout (only 0 is supported, as in all SimMIM recipes)"},
    {"drop_path_rate", SM_KEY_FLOAT, "0.1", "[0,1)", 0,
     "stochastic depth; block i uses drop_path_rate * i / (depth - 1)"},
    {"init_values", SM_KEY_FLOAT, "0.1", "(0,)", SM_KEY_NULLABLE,
     "layer scale gamma init; null = no layer scale"},
    {"use_abs_pos_emb", SM_KEY_BOOL, "false", NULL, 0, "learned absolute position embedding"},
    {"use_rel_pos_bias", SM_KEY_BOOL, "false", NULL, 0, "a relative position bias per block"},
    {"use_shared_rel_pos_bias", SM_KEY_BOOL, "true", NULL, 0,
     "one relative position bias shared by all blocks"},
    {"use_mean_pooling", SM_KEY_BOOL, "false", NULL, 0,
     "classifier: fc_norm(mean of patch tokens) instead of norm(x)[:, 0]"},
    {"layer_norm_eps", SM_KEY_FLOAT, "1e-6", "(0,)", 0, "LayerNorm epsilon"},
    {"init_scale", SM_KEY_FLOAT, "0.001", "(0,)", 0, "classifier head init scale"},
    {NULL, SM_KEY_END, NULL, NULL, 0, NULL},
};

/* Image size from the root config: train_config.image_size. */
static int64_t vit_image_size(const sm_cfg *root)
{
    return sm_cfg_int(root, "train_config.image_size");
}

/* The key to blame for a relation between two settings: the first one the user wrote (a value
 * filled in from the schema's default has no line to point at), else the first. */
static const char *vit_blame(const sm_cfg *a_sec, const char *a, const sm_cfg *b_sec, const char *b,
                             const sm_cfg **sec)
{
    const sm_cfg *n = sm_cfg_get(a_sec, a);
    bool a_default = !n || strcmp(sm_cfg_file(n), "<default>") == 0;
    const sm_cfg *nb = sm_cfg_get(b_sec, b);
    bool b_default = !nb || strcmp(sm_cfg_file(nb), "<default>") == 0;
    *sec = a_default && !b_default ? b_sec : a_sec;
    return a_default && !b_default ? b : a;
}

static int vit_validate(const sm_cfg *m, const sm_cfg *root, sm_diag *diag)
{
    int rc = 0;
    int64_t dim = sm_cfg_int(m, "embed_dim"), heads = sm_cfg_int(m, "num_heads");
    int64_t p = sm_cfg_int(m, "patch_size"), img = vit_image_size(root);
    const sm_cfg *sec;
    const char *key;
    if (heads > 0 && dim % heads != 0) {
        key = vit_blame(m, "num_heads", m, "embed_dim", &sec);
        rc = sm_cfg_error(diag, sec, key, "embed_dim %lld is not a multiple of num_heads %lld",
                          (long long)dim, (long long)heads);
    }
    if (img > 0 && p > 0 && img % p != 0) {
        key = vit_blame(m, "patch_size", root, "train_config.image_size", &sec);
        rc = sm_cfg_error(diag, sec, key,
                          "image_size %lld (train_config.image_size) is not a multiple of "
                          "patch_size %lld (model.patch_size)",
                          (long long)img, (long long)p);
    }
    if (sm_cfg_float(m, "drop_rate") != 0.0)
        rc = sm_cfg_error(diag, m, "drop_rate",
                          "dropout is not implemented (SimMIM recipes use 0); set 0");
    if (sm_cfg_float(m, "attn_drop_rate") != 0.0)
        rc = sm_cfg_error(diag, m, "attn_drop_rate",
                          "attention dropout is not implemented (SimMIM recipes use 0); set 0");
    return rc ? SM_ECONFIG : 0;
}

/* ---- construction ------------------------------------------------------------------------- */

static sm_tensor *vit_param(sm_params *params, const vit *v, const char *name, int ndim,
                            const int64_t *shape, sm_error *err)
{
    char full[256];
    snprintf(full, sizeof full, "%s%s", v->prefix, name);
    return sm_params_add(params, full, ndim, shape, err);
}

/* Relative position index with cls rows (spec §4.1): for patch tokens i, j >= 1 at grid coords
 * (h, w): (h_i - h_j + Hp - 1)·(2Wp - 1) + (w_i - w_j + Wp - 1); row 0 -> rows-3, column 0 ->
 * rows-2, [0][0] -> rows-1. */
static int vit_build_index(vit *v)
{
    int64_t n = v->tokens + 1, wp = v->wp, hp = v->hp;
    v->rp_rows = (2 * hp - 1) * (2 * wp - 1) + 3;
    v->rp_index = malloc((size_t)(n * n) * sizeof *v->rp_index);
    if (!v->rp_index) return SM_ENOMEM;
    for (int64_t i = 1; i < n; i++) {
        int64_t hi = (i - 1) / wp, wi = (i - 1) % wp;
        for (int64_t j = 1; j < n; j++) {
            int64_t hj = (j - 1) / wp, wj = (j - 1) % wp;
            v->rp_index[i * n + j] = (hi - hj + hp - 1) * (2 * wp - 1) + (wi - wj + wp - 1);
        }
    }
    for (int64_t j = 0; j < n; j++) v->rp_index[j] = v->rp_rows - 3;
    for (int64_t i = 0; i < n; i++) v->rp_index[i * n] = v->rp_rows - 2;
    v->rp_index[0] = v->rp_rows - 1;
    v->rp_index_shape[0] = v->rp_index_shape[1] = n;
    return 0;
}

static void vit_destroy(void *self)
{
    vit *v = self;
    if (!v) return;
    free(v->blocks);
    free(v->rp_index);
    free(v);
}

/* The keys of the model section, checked against the image size. */
static int vit_read_config(vit *v, const sm_cfg *m, const sm_backbone_opts *opts, sm_error *err)
{
    v->task = opts->task;
    snprintf(v->prefix, sizeof v->prefix, "%s", opts->prefix ? opts->prefix : "");
    v->in_chans = (int)sm_cfg_int(m, "in_chans");
    v->patch = (int)sm_cfg_int(m, "patch_size");
    v->dim = (int)sm_cfg_int(m, "embed_dim");
    v->depth = (int)sm_cfg_int(m, "depth");
    v->heads = (int)sm_cfg_int(m, "num_heads");
    v->hidden = (int)((double)v->dim * sm_cfg_float(m, "mlp_ratio"));
    v->qkv_bias = sm_cfg_bool(m, "qkv_bias");
    v->abs_pos = sm_cfg_bool(m, "use_abs_pos_emb");
    v->rel_pos = sm_cfg_bool(m, "use_rel_pos_bias");
    v->shared_rel_pos = sm_cfg_bool(m, "use_shared_rel_pos_bias");
    v->mean_pool = sm_cfg_bool(m, "use_mean_pooling");
    v->layer_scale = !sm_cfg_is_null(m, "init_values");
    v->init_values = v->layer_scale ? sm_cfg_float(m, "init_values") : 0.0;
    v->eps = sm_cfg_float(m, "layer_norm_eps");
    v->init_scale = sm_cfg_float(m, "init_scale");
    int head_dim = v->heads > 0 ? v->dim / v->heads : 0;
    v->scale =
        sm_cfg_is_null(m, "qk_scale") ? 1.0 / sqrt((double)head_dim) : sm_cfg_float(m, "qk_scale");
    if (v->patch <= 0 || v->dim <= 0 || v->heads <= 0 || v->dim % v->heads || v->depth <= 0 ||
        v->depth > VIT_MAX_DEPTH || v->hidden <= 0 || opts->img_h % v->patch ||
        opts->img_w % v->patch || opts->img_h <= 0 || opts->img_w <= 0)
        return sm_error_set(err, SM_ECONFIG, NULL, 0, 0, "model",
                            "vit: inconsistent sizes (image %lldx%lld, patch %d, embed_dim %d, "
                            "heads %d, depth %d)",
                            (long long)opts->img_h, (long long)opts->img_w, v->patch, v->dim,
                            v->heads, v->depth);
    v->hp = opts->img_h / v->patch;
    v->wp = opts->img_w / v->patch;
    v->tokens = v->hp * v->wp;
    if (v->tokens > 16384)
        return sm_error_set(err, SM_ECONFIG, NULL, 0, 0, "model.patch_size",
                            "vit: %lld patch tokens (image %lldx%lld, patch_size %d): attention "
                            "over more than 16384 tokens is not supported",
                            (long long)v->tokens, (long long)opts->img_h, (long long)opts->img_w,
                            v->patch);
    return 0;
}

/* P(field, name, dims...): declare <prefix><name>, return from the calling function on failure */
#define P(field, name, ...)                                                                    \
    do {                                                                                       \
        const int64_t shp_[] = {__VA_ARGS__};                                                  \
        if (!((field) = vit_param(params, v, name, (int)(sizeof shp_ / sizeof *shp_), shp_,    \
                                  err)))                                                       \
            return SM_EINVAL;                                                                  \
    } while (0)

/* Block i's parameters, in the official state_dict order. */
static int vit_declare_block(vit *v, int i, double dpr, sm_params *params, sm_error *err)
{
    vit_block *b = &v->blocks[i];
    int64_t D = v->dim, Hd = v->hidden;
    char n[128];
    b->drop_path = v->depth > 1 ? (float)(dpr * i / (v->depth - 1)) : 0.0f;
    b->v = v;
    b->index = i;
    snprintf(b->index_name, sizeof b->index_name, "blocks.%d.attn.relative_position_index", i);
#define B(field, suffix, ...)                                                                  \
    do {                                                                                       \
        snprintf(n, sizeof n, "blocks.%d.%s", i, suffix);                                      \
        P(field, n, __VA_ARGS__);                                                              \
    } while (0)
    if (v->layer_scale) {
        B(b->gamma_1, "gamma_1", D);
        B(b->gamma_2, "gamma_2", D);
    }
    B(b->norm1_w, "norm1.weight", D);
    B(b->norm1_b, "norm1.bias", D);
    if (v->qkv_bias) {
        B(b->q_bias, "attn.q_bias", D);
        B(b->v_bias, "attn.v_bias", D);
    }
    if (v->rel_pos) B(b->rpb_table, "attn.relative_position_bias_table", v->rp_rows, v->heads);
    B(b->qkv_w, "attn.qkv.weight", 3 * D, D);
    B(b->proj_w, "attn.proj.weight", D, D);
    B(b->proj_b, "attn.proj.bias", D);
    B(b->norm2_w, "norm2.weight", D);
    B(b->norm2_b, "norm2.bias", D);
    B(b->fc1_w, "mlp.fc1.weight", Hd, D);
    B(b->fc1_b, "mlp.fc1.bias", Hd);
    B(b->fc2_w, "mlp.fc2.weight", D, Hd);
    B(b->fc2_b, "mlp.fc2.bias", D);
#undef B
    return 0;
}

/* Every parameter, in the official state_dict order. */
static int vit_declare(vit *v, double dpr, sm_params *params, sm_error *err)
{
    int64_t D = v->dim, L1 = v->tokens + 1;
    P(v->cls_token, "cls_token", 1, 1, D);
    if (v->abs_pos) P(v->pos_embed, "pos_embed", 1, L1, D);
    if (v->task == SM_TASK_SIMMIM) P(v->mask_token, "mask_token", 1, 1, D);
    P(v->patch_w, "patch_embed.proj.weight", D, v->in_chans, v->patch, v->patch);
    P(v->patch_b, "patch_embed.proj.bias", D);
    if (v->shared_rel_pos)
        P(v->shared_rpb, "rel_pos_bias.relative_position_bias_table", v->rp_rows, v->heads);
    for (int i = 0; i < v->depth; i++) {
        int rc = vit_declare_block(v, i, dpr, params, err);
        if (rc) return rc;
    }
    if (!v->mean_pool) {
        P(v->norm_w, "norm.weight", D);
        P(v->norm_b, "norm.bias", D);
    } else {
        P(v->fc_norm_w, "fc_norm.weight", D);
        P(v->fc_norm_b, "fc_norm.bias", D);
    }
    return 0;
}
#undef P

static int vit_create(const sm_cfg *m, const sm_backbone_opts *opts, sm_params *params, void **self,
                      sm_error *err)
{
    *self = NULL;
    vit *v = calloc(1, sizeof *v);
    if (!v) return sm_error_set(err, SM_ENOMEM, NULL, 0, 0, NULL, "out of memory");
    int rc = vit_read_config(v, m, opts, err);
    if (!rc) {
        v->blocks = calloc((size_t)v->depth, sizeof *v->blocks);
        if (!v->blocks || vit_build_index(v))
            rc = sm_error_set(err, SM_ENOMEM, NULL, 0, 0, NULL, "out of memory");
    }
    if (!rc) rc = vit_declare(v, sm_cfg_float(m, "drop_path_rate"), params, err);
    if (rc) {
        vit_destroy(v);
        return rc;
    }
    *self = v;
    return 0;
}

static void vit_info(const void *self, sm_backbone_info *out)
{
    const vit *v = self;
    out->in_chans = v->in_chans;
    out->patch_size = v->patch;
    out->encoder_stride = v->patch;
    out->num_features = v->dim;
    out->num_layers = v->depth + 2;
    out->num_blocks = v->depth;
}

/* ---- initialisation (spec §4.1) ------------------------------------------------------------ */

static void vit_trunc(const vit *v, sm_tensor *t, double std, sm_rng *rng)
{
    /* VisionTransformerForSimMIM truncates at ±std; the plain VisionTransformer at ±2. */
    double bound = v->task == SM_TASK_SIMMIM ? std : 2.0;
    sm_init_trunc_normal(t, 0.0, std, -bound, bound, rng);
}

static int vit_init(void *self, sm_rng *rng, sm_error *err)
{
    (void)err;
    vit *v = self;
    vit_trunc(v, v->cls_token, 0.02, rng);
    if (v->pos_embed) vit_trunc(v, v->pos_embed, 0.02, rng);
    if (v->mask_token) vit_trunc(v, v->mask_token, 0.02, rng);
    vit_trunc(v, v->patch_w, 0.02, rng);
    sm_init_const(v->patch_b, 0.0f);
    if (v->shared_rpb) sm_init_const(v->shared_rpb, 0.0f);
    for (int i = 0; i < v->depth; i++) {
        vit_block *b = &v->blocks[i];
        if (b->gamma_1) {
            sm_init_const(b->gamma_1, (float)v->init_values);
            sm_init_const(b->gamma_2, (float)v->init_values);
        }
        sm_init_const(b->norm1_w, 1.0f);
        sm_init_const(b->norm1_b, 0.0f);
        if (b->q_bias) {
            sm_init_const(b->q_bias, 0.0f);
            sm_init_const(b->v_bias, 0.0f);
        }
        if (b->rpb_table) sm_init_const(b->rpb_table, 0.0f);
        vit_trunc(v, b->qkv_w, 0.02, rng);
        vit_trunc(v, b->proj_w, 0.02, rng);
        sm_init_const(b->proj_b, 0.0f);
        sm_init_const(b->norm2_w, 1.0f);
        sm_init_const(b->norm2_b, 0.0f);
        vit_trunc(v, b->fc1_w, 0.02, rng);
        sm_init_const(b->fc1_b, 0.0f);
        vit_trunc(v, b->fc2_w, 0.02, rng);
        sm_init_const(b->fc2_b, 0.0f);
        /* fix_init_weight: rescale the residual branches' output projections */
        float s = (float)(1.0 / sqrt(2.0 * (i + 1)));
        int64_t n1 = sm_tensor_numel(b->proj_w), n2 = sm_tensor_numel(b->fc2_w);
        for (int64_t k = 0; k < n1; k++) b->proj_w->data[k] *= s;
        for (int64_t k = 0; k < n2; k++) b->fc2_w->data[k] *= s;
    }
    sm_tensor *nw = v->norm_w ? v->norm_w : v->fc_norm_w,
              *nb = v->norm_b ? v->norm_b : v->fc_norm_b;
    sm_init_const(nw, 1.0f);
    sm_init_const(nb, 0.0f);
    return 0;
}

static void vit_init_head(const void *self, sm_tensor *w, sm_tensor *b, sm_rng *rng)
{
    const vit *v = self;
    vit_trunc(v, w, 0.02, rng);
    sm_init_const(b, 0.0f);
    int64_t n = sm_tensor_numel(w);
    for (int64_t k = 0; k < n; k++) w->data[k] *= (float)v->init_scale;
}

/* ---- forward --------------------------------------------------------------------------------- */

/* One pre-norm block (an sm_block_fn; arg: the vit_block): in = {x (B, N, D), the shared
 * relative position bias (H, N, N) or NULL, zeros (D) or NULL} -> (B, N, D). */
static sm_tensor *vit_block_forward(sm_ctx *ctx, void *arg, sm_tensor *const *in)
{
    const vit_block *b = arg;
    const vit *v = b->v;
    int i = b->index;
    sm_tensor *x = in[0], *shared_bias = in[1], *zeros = in[2];
    /* attention branch */
    sm_tensor *h = sm_layernorm(ctx, x, b->norm1_w, b->norm1_b, (float)v->eps);
    sm_tensor *qkv_b = NULL;
    if (b->q_bias) {
        sm_tensor *parts[3] = {b->q_bias, zeros, b->v_bias};
        qkv_b = sm_concat(ctx, parts, 3, 0); /* (q_bias, 0, v_bias): no k bias */
    }
    sm_tensor *qkv = sm_linear(ctx, h, b->qkv_w, qkv_b);
    sm_tensor *bias = NULL;
    if (b->rpb_table) bias = sm_relpos_bias(ctx, b->rpb_table, v->rp_index, v->tokens + 1);
    if (shared_bias) bias = bias ? sm_add(ctx, bias, shared_bias) : shared_bias;
    sm_tensor *a = sm_attention(ctx, qkv, v->heads, (float)v->scale, bias, NULL);
    /* kept for a recomputation (sm_checkpoint): proj and fc2, the two products that map back
     * to width D (5 of the block's 12·D² multiply-adds per token for 2 (B, N, D) tensors); qkv,
     * fc1, attention and the elementwise ops are recomputed */
    sm_tensor *t[6]; /* the branch's tensors, released after its residual add (swin.c) */
    t[0] = h;
    t[1] = qkv;
    t[2] = sm_checkpoint_keep(ctx, sm_linear(ctx, a, b->proj_w, b->proj_b));
    t[3] = a;
    t[4] = b->gamma_1 ? sm_mul(ctx, t[2], b->gamma_1) : t[2];
    t[5] = sm_drop_path(ctx, t[4], b->drop_path, (uint64_t)i * 2);
    x = sm_add(ctx, x, t[5]);
    for (int k = 0; k < 6; k++) sm_tensor_release(ctx, t[k]);
    /* MLP branch */
    t[0] = sm_layernorm(ctx, x, b->norm2_w, b->norm2_b, (float)v->eps);
    t[1] = sm_linear(ctx, t[0], b->fc1_w, b->fc1_b);
    t[2] = sm_gelu(ctx, t[1]);
    t[3] = sm_checkpoint_keep(ctx, sm_linear(ctx, t[2], b->fc2_w, b->fc2_b));
    t[4] = b->gamma_2 ? sm_mul(ctx, t[3], b->gamma_2) : t[3];
    t[5] = sm_drop_path(ctx, t[4], b->drop_path, (uint64_t)i * 2 + 1);
    sm_tensor *y = sm_add(ctx, x, t[5]);
    for (int k = 0; k < 6; k++) sm_tensor_release(ctx, t[k]);
    return y;
}

static sm_tensor *vit_forward(void *self, sm_ctx *ctx, sm_tensor *images, const sm_tensor *mask)
{
    const vit *v = self;
    if (sm_ctx_status(ctx) || !images) return NULL;
    sm_tensor *m2;
    if (sm_backbone_check_input(ctx, "vit", images, mask, v->in_chans, v->patch, v->hp, v->wp,
                                v->mask_token != NULL, &m2))
        return NULL;
    int64_t B = images->shape[0], L = v->tokens, D = v->dim;
    sm_tensor *x = sm_patch_embed(ctx, images, v->patch_w, v->patch_b, v->patch); /* (B, L, D) */
    if (m2) x = sm_mask_blend(ctx, x, v->mask_token, m2);
    x = sm_cls_concat(ctx, v->cls_token, x); /* (B, L+1, D) */
    if (v->pos_embed) x = sm_add(ctx, x, v->pos_embed);
    sm_tensor *shared = NULL;
    if (v->shared_rpb) shared = sm_relpos_bias(ctx, v->shared_rpb, v->rp_index, L + 1);
    sm_tensor *zeros = v->qkv_bias ? sm_ctx_zeros(ctx, 1, SM_SHAPE(D)) : NULL;
    for (int i = 0; i < v->depth; i++)
        x = sm_checkpoint(ctx, vit_block_forward, &v->blocks[i], 3,
                          (sm_tensor *[]){x, shared, zeros});

    if (v->task == SM_TASK_SIMMIM) {
        if (v->norm_w) x = sm_layernorm(ctx, x, v->norm_w, v->norm_b, (float)v->eps);
        x = sm_slice(ctx, x, 1, 1, L);                  /* drop cls: (B, L, D)  */
        x = sm_permute(ctx, x, (const int[]){0, 2, 1}); /* (B, D, L)            */
        return sm_reshape(ctx, x, 4, SM_SHAPE(B, D, v->hp, v->wp));
    }
    if (v->mean_pool) {
        x = sm_slice(ctx, x, 1, 1, L);
        x = sm_mean(ctx, x, 1); /* (B, D) */
        return sm_layernorm(ctx, x, v->fc_norm_w, v->fc_norm_b, (float)v->eps);
    }
    x = sm_layernorm(ctx, x, v->norm_w, v->norm_b, (float)v->eps);
    x = sm_slice(ctx, x, 1, 0, 1); /* cls token: (B, 1, D) */
    return sm_reshape(ctx, x, 2, SM_SHAPE(B, D));
}

/* ---- intermediate features (plugin ABI 1.1) ------------------------------------------------- */

/* forward_features: images (B, C, H, W) -> (B, D), the mean of the patch tokens (the class
 * token left out) as block `block` outputs them, with no norm after it (0: as they enter the
 * first block). This is the linear probe of the SimMIM authors (microsoft/SimMIM#14: block 8
 * of ViT-B, average pooling of the patch tokens, no [CLS]; the repository has no probe code)
 * and BEiT's (unilm beit/run_linear_eval.py reads the raw block outputs). */
static sm_tensor *vit_forward_features(void *self, sm_ctx *ctx, sm_tensor *images, int block)
{
    const vit *v = self;
    sm_tensor *none;
    if (sm_ctx_status(ctx) || !images) return NULL;
    if (block < 0 || block > v->depth) {
        sm_ctx_fail(ctx, SM_EINVAL, "vit: block %d is not in 0..%d", block, v->depth);
        return NULL;
    }
    if (sm_backbone_check_input(ctx, "vit", images, NULL, v->in_chans, v->patch, v->hp, v->wp,
                                false, &none))
        return NULL;
    int64_t L = v->tokens;
    sm_tensor *x = sm_patch_embed(ctx, images, v->patch_w, v->patch_b, v->patch); /* (B, L, D) */
    x = sm_cls_concat(ctx, v->cls_token, x);                                      /* (B, L+1, D) */
    if (v->pos_embed) x = sm_add(ctx, x, v->pos_embed);
    sm_tensor *shared = v->shared_rpb ? sm_relpos_bias(ctx, v->shared_rpb, v->rp_index, L + 1) : NULL;
    sm_tensor *zeros = v->qkv_bias ? sm_ctx_zeros(ctx, 1, SM_SHAPE(v->dim)) : NULL;
    for (int i = 0; i < block; i++)
        x = vit_block_forward(ctx, &v->blocks[i], (sm_tensor *[]){x, shared, zeros});
    x = sm_slice(ctx, x, 1, 1, L); /* the patch tokens: (B, L, D) */
    return sm_mean(ctx, x, 1);     /* (B, D) */
}

/* ---- layer decay, weight decay, buffers ------------------------------------------------------ */

static int vit_layer_id(const void *self, const char *name)
{
    const vit *v = self;
    int last = v->depth + 1;
    if (!strcmp(name, "cls_token") || !strcmp(name, "mask_token") || !strcmp(name, "pos_embed") ||
        !strncmp(name, "patch_embed", 11))
        return 0;
    if (!strncmp(name, "blocks.", 7)) return atoi(name + 7) + 1;
    return last; /* rel_pos_bias.*, norm, fc_norm, head */
}

static bool vit_no_weight_decay(const void *self, const char *name)
{
    (void)self;
    return !strcmp(name, "pos_embed") || !strcmp(name, "cls_token");
}

static size_t vit_buffer_count(const void *self)
{
    const vit *v = self;
    return (v->shared_rpb ? 1 : 0) + (v->rel_pos ? (size_t)v->depth : 0);
}

static int vit_buffer_get(const void *self, size_t i, sm_buffer *out)
{
    const vit *v = self;
    memset(out, 0, sizeof *out);
    out->dtype = SM_DTYPE_I64;
    out->ndim = 2;
    out->shape[0] = out->shape[1] = v->tokens + 1;
    out->data = v->rp_index;
    if (v->shared_rpb) {
        if (i == 0) {
            out->name = "rel_pos_bias.relative_position_index";
            return 0;
        }
        i--;
    }
    if (!v->rel_pos || i >= (size_t)v->depth) return SM_ENOTFOUND;
    out->name = v->blocks[i].index_name;
    return 0;
}

/* ---- foreign weights (fine-tuning from a SimMIM checkpoint) ------------------------------------ */

/* Side of a square table of rows - 3 (cls) rows, or 0. */
static int vit_table_side(int64_t rows)
{
    int64_t n = rows - 3, s = (int64_t)llround(sqrt((double)(n > 0 ? n : 0)));
    return s > 0 && s * s == n ? (int)s : 0;
}

/* Fills the relative position table t (rows, heads) from the file's table `from`: the same
 * shape is copied, another square window resized as the official code does (the 3 cls rows
 * kept). Returns `how` (| SM_ADAPT_RESIZED), 0 when the file's table cannot fill t. */
static int vit_table_from(const sm_weight_source *src, const char *from, sm_tensor *t, int how,
                          sm_error *err)
{
    const sm_st_info *in = sm_weight_source_find(src, from);
    if (!in || in->ndim != 2 || t->ndim != 2 || in->shape[1] != t->shape[1]) return 0;
    if (in->shape[0] == t->shape[0]) {
        int rc = sm_weight_source_read(src, from, t->data, sm_tensor_numel(t), err);
        return rc ? rc : how;
    }
    int si = vit_table_side(in->shape[0]), so = vit_table_side(t->shape[0]);
    if (!si || !so) return 0;
    float *buf = malloc((size_t)in->numel * sizeof *buf);
    if (!buf) return sm_error_set(err, SM_ENOMEM, NULL, 0, 0, NULL, "out of memory");
    int rc = sm_weight_source_read(src, from, buf, in->numel, err);
    if (!rc) rc = sm_relpos_table_resize(buf, si, so, (int)t->shape[1], 3, t->data, err);
    free(buf);
    return rc ? rc : how | SM_ADAPT_RESIZED;
}

/* The official remaps (utils.load_pretrained): a table of another window size is resized, and
 * a per-block table absent from the file starts from the shared pretraining table. */
static int vit_adapt_weight(const void *self, const char *name, sm_tensor *t,
                            const sm_weight_source *src, sm_error *err)
{
    (void)self;
    if (!strstr(name, "relative_position_bias_table")) return 0;
    int got = vit_table_from(src, name, t, 0, err);
    if (got == 0 && !strncmp(name, "blocks.", 7) && !sm_weight_source_find(src, name))
        got = vit_table_from(src, "rel_pos_bias.relative_position_bias_table", t,
                             SM_ADAPT_COPIED, err);
    return got;
}

static const sm_backbone_vtbl vit_vtbl = {
    .hdr = SM_COMPONENT_INIT(sm_backbone_vtbl, SM_KIND_BACKBONE, "vit",
                             "BEiT-style Vision Transformer of SimMIM (ViT-B/16 by default)",
                             vit_keys, vit_validate),
    .create = vit_create,
    .destroy = vit_destroy,
    .info = vit_info,
    .init = vit_init,
    .forward = vit_forward,
    .layer_id = vit_layer_id,
    .no_weight_decay = vit_no_weight_decay,
    .buffer_count = vit_buffer_count,
    .buffer_get = vit_buffer_get,
    .init_head = vit_init_head,
    .adapt_weight = vit_adapt_weight,
    .forward_features = vit_forward_features,
};

static int vit_register(sm_registry *reg, sm_error *err)
{
    return sm_registry_add(reg, &vit_vtbl.hdr, err);
}

SM_PLUGIN_DEFINE(vit, "0.1.0", "ViT backbone for SimMIM (microsoft/SimMIM vision_transformer.py)",
                 "MIT", vit_register)
