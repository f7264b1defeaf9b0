/* backbones/swin/swin.c - the Swin Transformer of SimMIM (plugin "swin").
 *
 * Follows microsoft/SimMIM models/swin_transformer.py (SwinTransformer and
 * SwinTransformerForSimMIM) and ../shared/spec/simmim.md §4.2:
 *   patch_embed (conv p×p stride p, then LayerNorm if patch_norm) -> [SimMIM: mask-token blend,
 *   after the patch norm] -> [+ absolute_pos_embed] -> stages of blocks:
 *     x = x + DropPath(reverse(WindowAttention(partition(roll(LN1(x), -shift)))) rolled back)
 *     x = x + DropPath(MLP(LN2(x)))
 *   with shift = window/2 on odd blocks, the -100 attention mask on shifted blocks, and the
 *   official rule that a stage whose resolution is not larger than the window uses one window
 *   and no shift; PatchMerging (concat x0, x1, x2, x3 = (even,even), (odd,even), (even,odd),
 *   (odd,odd); LayerNorm(4C); Linear 4C -> 2C without bias) between stages -> norm ->
 *   SimMIM: (B, C, H/s, W/s);  classifier: mean over tokens.
 * LayerNorm eps 1e-5 by default. Parameter names are the official state_dict names.
 */
#include <simmim/simmim.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SWIN_MAX_STAGES 8
#define SWIN_MAX_DEPTH 64

typedef struct swin_block {
    sm_tensor *norm1_w, *norm1_b;
    sm_tensor *rpb_table;
    sm_tensor *qkv_w, *qkv_b;
    sm_tensor *proj_w, *proj_b;
    sm_tensor *norm2_w, *norm2_b;
    sm_tensor *fc1_w, *fc1_b, *fc2_w, *fc2_b;
    int shift;
    float drop_path;
    int global_index;
    sm_tensor *attn_mask; /* (nW, N, N) heap tensor for shifted blocks, else NULL */
    char mask_name[64];
    const struct swin *s; /* the model and the block's stage (sm_checkpoint's argument) */
    const struct swin_stage *st;
} swin_block;

typedef struct swin_stage {
    int dim, heads, depth, window; /* effective window (official no-shift rule applied) */
    int64_t H, W;                  /* token resolution of the stage                      */
    int64_t *rp_index;             /* (window², window²)                                 */
    char index_names[SWIN_MAX_DEPTH][64];
    swin_block *blocks;
    sm_tensor *down_red_w, *down_norm_w, *down_norm_b; /* NULL for the last stage */
} swin_stage;

typedef struct swin {
    sm_task task;
    int in_chans, patch, embed_dim, n_stages, window_cfg, num_features;
    double mlp_ratio, eps;
    bool qkv_bias, ape, patch_norm, has_qk_scale;
    double qk_scale;
    int64_t hp, wp;
    char prefix[64];
    sm_tensor *abs_pos, *mask_token;
    sm_tensor *patch_w, *patch_b, *patch_norm_w, *patch_norm_b;
    swin_stage stages[SWIN_MAX_STAGES];
    sm_tensor *norm_w, *norm_b;
    int total_depth;
} swin;

/* ---- configuration ------------------------------------------------------------------------ */

static const sm_key swin_keys[] = {
    {"patch_size", SM_KEY_INT, "4", "[1,1024]", 0, "patch size p (conv kernel and stride)"},
    {"in_chans", SM_KEY_INT, "3", "[1,1024]", 0, "input channels"},
    {"embed_dim", SM_KEY_INT, "96", "[1,65536]", 0,
     "channels C of the first stage (doubled per stage)"},
    {"depth", SM_KEY_INT_LIST, "[2, 2, 6, 2]", "[1,64]", 0, "blocks per stage"},
    {"num_heads", SM_KEY_INT_LIST, "[3, 6, 12, 24]", "[1,4096]", 0, "attention heads per stage"},
    {"window_size", SM_KEY_INT, "7", "[1,64]", 0, "attention window size (tokens per side)"},
    {"mlp_ratio", SM_KEY_FLOAT, "4.0", "(0,64]", 0, "MLP hidden size = int(C * mlp_ratio)"},
    {"qkv_bias", SM_KEY_BOOL, "true", NULL, 0, "bias in the qkv projection"},
    {"qk_scale", SM_KEY_FLOAT, "null", "(0,)", SM_KEY_NULLABLE,
     "attention logit scale; null = head_dim^-0.5"},
    {"drop_rate", SM_KEY_FLOAT, "0.0", "[0,1)", 0,
     "dropout (only 0 is supported, as in all SimMIM recipes)"},
    {"attn_drop_rate", SM_KEY_FLOAT, "0.0", "[0,1)", 0,
     "attention dropout (only 0 is supported, as in all SimMIM recipes)"},
    {"drop_path_rate", SM_KEY_FLOAT, "0.1", "[0,1)", 0,
     "stochastic depth; block k of all stages uses drop_path_rate * k / (total blocks - 1)"},
    {"ape", SM_KEY_BOOL, "false", NULL, 0, "learned absolute position embedding"},
    {"patch_norm", SM_KEY_BOOL, "true", NULL, 0, "LayerNorm after the patch embedding"},
    {"layer_norm_eps", SM_KEY_FLOAT, "1e-5", "(0,)", 0, "LayerNorm epsilon"},
    {NULL, SM_KEY_END, NULL, NULL, 0, NULL},
};

/* Checks the stage geometry; writes the first problem into msg. Returns 0 if consistent. */
static int swin_geometry(int64_t img_h, int64_t img_w, int patch, int window, int n_stages,
                         char *msg, size_t n)
{
    if (img_h % patch || img_w % patch) {
        snprintf(msg, n, "image size %lldx%lld is not a multiple of patch_size %d",
                 (long long)img_h, (long long)img_w, patch);
        return -1;
    }
    int64_t H = img_h / patch, W = img_w / patch;
    for (int s = 0; s < n_stages; s++) {
        int64_t mn = H < W ? H : W;
        int w = mn <= window ? (int)mn : window;
        if (H % w || W % w) {
            snprintf(msg, n,
                     "stage %d has %lldx%lld tokens, not a multiple of window_size %d "
                     "(image %lld, patch %d)",
                     s, (long long)H, (long long)W, w, (long long)img_h, patch);
            return -1;
        }
        if (s + 1 < n_stages) {
            if (H % 2 || W % 2) {
                snprintf(msg, n, "stage %d has %lldx%lld tokens: patch merging needs even sizes", s,
                         (long long)H, (long long)W);
                return -1;
            }
            H /= 2;
            W /= 2;
        }
    }
    return 0;
}

/* The key to blame for a relation between two settings: the first one the user wrote (a value
 * filled in from the schema's default has no line to point at), else the first. */
static const char *swin_blame(const sm_cfg *a_sec, const char *a, const sm_cfg *b_sec,
                              const char *b, const sm_cfg **sec)
{
    const sm_cfg *n = sm_cfg_get(a_sec, a);
    bool a_default = !n || strcmp(sm_cfg_file(n), "<default>") == 0;
    const sm_cfg *nb = sm_cfg_get(b_sec, b);
    bool b_default = !nb || strcmp(sm_cfg_file(nb), "<default>") == 0;
    *sec = a_default && !b_default ? b_sec : a_sec;
    return a_default && !b_default ? b : a;
}

static int swin_validate(const sm_cfg *m, const sm_cfg *root, sm_diag *diag)
{
    int rc = 0;
    int64_t depth[SWIN_MAX_STAGES + 1], heads[SWIN_MAX_STAGES + 1];
    size_t nd = sm_cfg_int_list(m, "depth", depth, SWIN_MAX_STAGES + 1);
    size_t nh = sm_cfg_int_list(m, "num_heads", heads, SWIN_MAX_STAGES + 1);
    if (nd == 0 || nd > SWIN_MAX_STAGES)
        rc =
            sm_cfg_error(diag, m, "depth", "expected 1 to %d stages, got %zu", SWIN_MAX_STAGES, nd);
    const sm_cfg *sec;
    const char *key;
    if (nd != nh) {
        key = swin_blame(m, "num_heads", m, "depth", &sec);
        rc = sm_cfg_error(diag, sec, key,
                          "num_heads has %zu entries but depth has %zu (one per stage)", nh, nd);
    }
    int64_t C = sm_cfg_int(m, "embed_dim");
    for (size_t s = 0; !rc && s < nd && s < nh; s++) {
        int64_t dim = C << s;
        if (heads[s] <= 0 || dim % heads[s]) {
            key = swin_blame(m, "num_heads", m, "embed_dim", &sec);
            rc = sm_cfg_error(diag, sec, key,
                              "stage %zu has %lld channels, not a multiple of its %lld heads", s,
                              (long long)dim, (long long)heads[s]);
        }
    }
    int64_t img = sm_cfg_int(root, "train_config.image_size");
    char msg[256];
    if (!rc && nd >= 1 && nd <= SWIN_MAX_STAGES &&
        swin_geometry(img, img, (int)sm_cfg_int(m, "patch_size"), (int)sm_cfg_int(m, "window_size"),
                      (int)nd, msg, sizeof msg)) {
        key = swin_blame(m, "window_size", root, "train_config.image_size", &sec);
        if (sec == m && strcmp(key, "window_size") == 0 &&
            strcmp(sm_cfg_file(sm_cfg_get(m, "window_size")), "<default>") == 0)
            key = swin_blame(m, "patch_size", root, "train_config.image_size", &sec);
        rc = sm_cfg_error(diag, sec, key, "%s", msg);
    }
    if (sm_cfg_float(m, "drop_rate") != 0.0)
        rc = sm_cfg_error(diag, m, "drop_rate",
                          "dropout is not implemented (SimMIM recipes use 0); set 0");
    if (sm_cfg_float(m, "attn_drop_rate") != 0.0)
        rc = sm_cfg_error(diag, m, "attn_drop_rate",
                          "attention dropout is not implemented (SimMIM recipes use 0); set 0");
    return rc ? SM_ECONFIG : 0;
}

/* ---- buffers: relative position index and shifted-window attention mask --------------------- */

/* index[i][j] = (h_i - h_j + w - 1)·(2w - 1) + (w_i - w_j + w - 1) within a w×w window. */
static int64_t *swin_rp_index(int w)
{
    int64_t N = (int64_t)w * w;
    int64_t *idx = malloc((size_t)(N * N) * sizeof *idx);
    if (!idx) return NULL;
    for (int64_t i = 0; i < N; i++)
        for (int64_t j = 0; j < N; j++)
            idx[i * N + j] = (i / w - j / w + w - 1) * (2 * w - 1) + (i % w - j % w + w - 1);
    return idx;
}

/* attn_mask (nW, N, N): 0 where two tokens of a window come from the same region of the
 * shifted image, -100 elsewhere (spec §4.2). */
static sm_tensor *swin_attn_mask(int64_t H, int64_t W, int w, int shift)
{
    int64_t nW = (H / w) * (W / w), N = (int64_t)w * w;
    int *label = malloc((size_t)(H * W) * sizeof *label);
    sm_tensor *t = sm_tensor_new(3, SM_SHAPE(nW, N, N));
    if (!label || !t) {
        free(label);
        sm_tensor_free(t);
        return NULL;
    }
    int64_t hb[4] = {0, H - w, H - shift, H}, wb[4] = {0, W - w, W - shift, W};
    int cnt = 0;
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 3; b++, cnt++)
            for (int64_t y = hb[a]; y < hb[a + 1]; y++)
                for (int64_t x = wb[b]; x < wb[b + 1]; x++) label[y * W + x] = cnt;
    int64_t nWc = W / w;
    for (int64_t k = 0; k < nW; k++) {
        int64_t r0 = (k / nWc) * w, c0 = (k % nWc) * w;
        for (int64_t i = 0; i < N; i++) {
            int li = label[(r0 + i / w) * W + c0 + i % w];
            for (int64_t j = 0; j < N; j++) {
                int lj = label[(r0 + j / w) * W + c0 + j % w];
                t->data[(k * N + i) * N + j] = li == lj ? 0.0f : -100.0f;
            }
        }
    }
    free(label);
    return t;
}

/* ---- construction ------------------------------------------------------------------------- */

static void swin_destroy(void *self)
{
    swin *s = self;
    if (!s) return;
    for (int k = 0; k < s->n_stages; k++) {
        swin_stage *st = &s->stages[k];
        for (int b = 0; st->blocks && b < st->depth; b++) sm_tensor_free(st->blocks[b].attn_mask);
        free(st->blocks);
        free(st->rp_index);
    }
    free(s);
}

/* Declares one parameter <prefix><name> of the given shape into *field. */
static int swin_param(const swin *s, sm_params *params, sm_tensor **field, const char *name,
                      int ndim, const int64_t *shape, sm_error *err)
{
    char full[256];
    snprintf(full, sizeof full, "%s%s", s->prefix, name);
    *field = sm_params_add(params, full, ndim, shape, err);
    return *field ? 0 : SM_EINVAL;
}
/* P(field, name, dims...): declare, return from the calling function on failure */
#define P(field, name, ...)                                                                    \
    do {                                                                                       \
        const int64_t shp_[] = {__VA_ARGS__};                                                  \
        int rc_ = swin_param(s, params, &(field), name, (int)(sizeof shp_ / sizeof *shp_),     \
                             shp_, err);                                                       \
        if (rc_) return rc_;                                                                   \
    } while (0)

/* The scalar keys of the model section, and the stage lists checked against the geometry. */
static int swin_read_config(swin *s, const sm_cfg *m, const sm_backbone_opts *opts,
                            int64_t *depth, int64_t *heads, sm_error *err)
{
    s->task = opts->task;
    snprintf(s->prefix, sizeof s->prefix, "%s", opts->prefix ? opts->prefix : "");
    s->in_chans = (int)sm_cfg_int(m, "in_chans");
    s->patch = (int)sm_cfg_int(m, "patch_size");
    s->embed_dim = (int)sm_cfg_int(m, "embed_dim");
    s->window_cfg = (int)sm_cfg_int(m, "window_size");
    s->mlp_ratio = sm_cfg_float(m, "mlp_ratio");
    s->qkv_bias = sm_cfg_bool(m, "qkv_bias");
    s->ape = sm_cfg_bool(m, "ape");
    s->patch_norm = sm_cfg_bool(m, "patch_norm");
    s->eps = sm_cfg_float(m, "layer_norm_eps");
    s->has_qk_scale = !sm_cfg_is_null(m, "qk_scale");
    s->qk_scale = s->has_qk_scale ? sm_cfg_float(m, "qk_scale") : 0.0;
    size_t nd = sm_cfg_int_list(m, "depth", depth, SWIN_MAX_STAGES + 1);
    size_t nh = sm_cfg_int_list(m, "num_heads", heads, SWIN_MAX_STAGES + 1);
    char msg[256] = "";
    if (nd == 0 || nd > SWIN_MAX_STAGES || nd != nh || s->patch <= 0 || s->embed_dim <= 0 ||
        s->window_cfg <= 0 ||
        swin_geometry(opts->img_h, opts->img_w, s->patch, s->window_cfg, (int)nd, msg,
                      sizeof msg))
        return sm_error_set(err, SM_ECONFIG, NULL, 0, 0, "model", "swin: %s",
                            msg[0] ? msg : "inconsistent depth/num_heads/sizes");
    s->n_stages = (int)nd;
    s->hp = opts->img_h / s->patch;
    s->wp = opts->img_w / s->patch;
    for (size_t k = 0; k < nd; k++) s->total_depth += (int)depth[k];
    /* the largest buffers: stage 0's shifted-window mask, (H·W)·w² floats */
    int64_t w0 = s->window_cfg < s->hp ? s->window_cfg : s->hp;
    double gib = (double)s->hp * (double)s->wp * (double)(w0 * w0) * 4.0 / (1024.0 * 1024 * 1024);
    if (gib > 4.0)
        return sm_error_set(err, SM_ECONFIG, NULL, 0, 0, "model.window_size",
                            "swin: the shifted-window attention mask of stage 0 would take "
                            "%.1f GiB (image %lld, patch_size %d, window_size %d): too large",
                            gib, (long long)opts->img_h, s->patch, s->window_cfg);
    return 0;
}

/* Block b of stage k (global index gidx): geometry, shift mask, parameters in state_dict order. */
static int swin_declare_block(swin *s, swin_stage *st, int k, int b, int gidx, double dpr,
                              sm_params *params, sm_error *err)
{
    swin_block *bl = &st->blocks[b];
    int w = st->window;
    int64_t D = st->dim, Hd = (int64_t)((double)D * s->mlp_ratio);
    bl->s = s;
    bl->st = st;
    bl->global_index = gidx;
    bl->drop_path = s->total_depth > 1 ? (float)(dpr * gidx / (s->total_depth - 1)) : 0.0f;
    bool no_shift = (st->H < st->W ? st->H : st->W) <= s->window_cfg; /* one window per stage */
    bl->shift = (no_shift || b % 2 == 0) ? 0 : w / 2;
    snprintf(st->index_names[b], sizeof st->index_names[b],
             "layers.%d.blocks.%d.attn.relative_position_index", k, b);
    if (bl->shift > 0) {
        snprintf(bl->mask_name, sizeof bl->mask_name, "layers.%d.blocks.%d.attn_mask", k, b);
        if (!(bl->attn_mask = swin_attn_mask(st->H, st->W, w, bl->shift)))
            return sm_error_set(err, SM_ENOMEM, NULL, 0, 0, NULL, "out of memory");
    }
    char n[128];
#define B(field, suffix, ...)                                                                  \
    do {                                                                                       \
        snprintf(n, sizeof n, "layers.%d.blocks.%d.%s", k, b, suffix);                         \
        P(field, n, __VA_ARGS__);                                                              \
    } while (0)
    B(bl->norm1_w, "norm1.weight", D);
    B(bl->norm1_b, "norm1.bias", D);
    B(bl->rpb_table, "attn.relative_position_bias_table", (2 * w - 1) * (2 * w - 1), st->heads);
    B(bl->qkv_w, "attn.qkv.weight", 3 * D, D);
    if (s->qkv_bias) B(bl->qkv_b, "attn.qkv.bias", 3 * D);
    B(bl->proj_w, "attn.proj.weight", D, D);
    B(bl->proj_b, "attn.proj.bias", D);
    B(bl->norm2_w, "norm2.weight", D);
    B(bl->norm2_b, "norm2.bias", D);
    B(bl->fc1_w, "mlp.fc1.weight", Hd, D);
    B(bl->fc1_b, "mlp.fc1.bias", Hd);
    B(bl->fc2_w, "mlp.fc2.weight", D, Hd);
    B(bl->fc2_b, "mlp.fc2.bias", D);
#undef B
    return 0;
}

/* Stage k at token resolution H x W: its blocks, then its patch merging (not after the last). */
static int swin_declare_stage(swin *s, int k, int64_t H, int64_t W, int64_t depth, int64_t heads,
                              int *gidx, double dpr, sm_params *params, sm_error *err)
{
    swin_stage *st = &s->stages[k];
    st->dim = (int)((int64_t)s->embed_dim << k);
    st->heads = (int)heads;
    st->depth = (int)depth;
    st->H = H;
    st->W = W;
    int64_t mn = H < W ? H : W;
    st->window = mn <= s->window_cfg ? (int)mn : s->window_cfg; /* official no-shift rule */
    st->rp_index = swin_rp_index(st->window);
    st->blocks = calloc((size_t)st->depth, sizeof *st->blocks);
    if (!st->rp_index || !st->blocks)
        return sm_error_set(err, SM_ENOMEM, NULL, 0, 0, NULL, "out of memory");
    for (int b = 0; b < st->depth; b++, (*gidx)++) {
        int rc = swin_declare_block(s, st, k, b, *gidx, dpr, params, err);
        if (rc) return rc;
    }
    if (k + 1 < s->n_stages) {
        int64_t D = st->dim;
        char n[128];
        snprintf(n, sizeof n, "layers.%d.downsample.reduction.weight", k);
        P(st->down_red_w, n, 2 * D, 4 * D);
        snprintf(n, sizeof n, "layers.%d.downsample.norm.weight", k);
        P(st->down_norm_w, n, 4 * D);
        snprintf(n, sizeof n, "layers.%d.downsample.norm.bias", k);
        P(st->down_norm_b, n, 4 * D);
    }
    return 0;
}

/* Every parameter, in the official state_dict order (a module's own parameters first). */
static int swin_declare(swin *s, const int64_t *depth, const int64_t *heads, double dpr,
                        sm_params *params, sm_error *err)
{
    int64_t C = s->embed_dim, H = s->hp, W = s->wp;
    if (s->ape) P(s->abs_pos, "absolute_pos_embed", 1, H * W, C);
    if (s->task == SM_TASK_SIMMIM) P(s->mask_token, "mask_token", 1, 1, C);
    P(s->patch_w, "patch_embed.proj.weight", C, s->in_chans, s->patch, s->patch);
    P(s->patch_b, "patch_embed.proj.bias", C);
    if (s->patch_norm) {
        P(s->patch_norm_w, "patch_embed.norm.weight", C);
        P(s->patch_norm_b, "patch_embed.norm.bias", C);
    }
    int gidx = 0;
    for (int k = 0; k < s->n_stages; k++, H /= 2, W /= 2) {
        int rc = swin_declare_stage(s, k, H, W, depth[k], heads[k], &gidx, dpr, params, err);
        if (rc) return rc;
    }
    s->num_features = (int)(C << (s->n_stages - 1));
    P(s->norm_w, "norm.weight", s->num_features);
    P(s->norm_b, "norm.bias", s->num_features);
    return 0;
}
#undef P

static int swin_create(const sm_cfg *m, const sm_backbone_opts *opts, sm_params *params,
                       void **self, sm_error *err)
{
    *self = NULL;
    swin *s = calloc(1, sizeof *s);
    if (!s) return sm_error_set(err, SM_ENOMEM, NULL, 0, 0, NULL, "out of memory");
    int64_t depth[SWIN_MAX_STAGES + 1], heads[SWIN_MAX_STAGES + 1];
    int rc = swin_read_config(s, m, opts, depth, heads, err);
    if (!rc) rc = swin_declare(s, depth, heads, sm_cfg_float(m, "drop_path_rate"), params, err);
    if (rc) {
        swin_destroy(s);
        return rc;
    }
    *self = s;
    return 0;
}

static void swin_info(const void *self, sm_backbone_info *out)
{
    const swin *s = self;
    out->in_chans = s->in_chans;
    out->patch_size = s->patch;
    out->encoder_stride = s->patch << (s->n_stages - 1);
    out->num_features = s->num_features;
    out->num_layers = s->total_depth + 2;
    out->num_blocks = s->total_depth;
}

/* ---- initialisation (spec §4.2) ------------------------------------------------------------ */

static void swin_linear_init(sm_tensor *w, sm_tensor *b, sm_rng *rng)
{
    sm_init_trunc_normal(w, 0.0, 0.02, -2.0, 2.0, rng);
    if (b) sm_init_const(b, 0.0f);
}

static void swin_ln_init(sm_tensor *w, sm_tensor *b)
{
    sm_init_const(w, 1.0f);
    sm_init_const(b, 0.0f);
}

static int swin_init(void *self, sm_rng *rng, sm_error *err)
{
    (void)err;
    swin *s = self;
    if (s->abs_pos) sm_init_trunc_normal(s->abs_pos, 0.0, 0.02, -2.0, 2.0, rng);
    if (s->mask_token) sm_init_trunc_normal(s->mask_token, 0.0, 0.02, -2.0, 2.0, rng);
    /* the patch-embedding conv keeps PyTorch's default init: U(±1/sqrt(fan_in)) */
    double bound = 1.0 / sqrt((double)s->in_chans * s->patch * s->patch);
    sm_init_uniform(s->patch_w, -bound, bound, rng);
    sm_init_uniform(s->patch_b, -bound, bound, rng);
    if (s->patch_norm) swin_ln_init(s->patch_norm_w, s->patch_norm_b);
    for (int k = 0; k < s->n_stages; k++) {
        swin_stage *st = &s->stages[k];
        for (int b = 0; b < st->depth; b++) {
            swin_block *bl = &st->blocks[b];
            swin_ln_init(bl->norm1_w, bl->norm1_b);
            sm_init_trunc_normal(bl->rpb_table, 0.0, 0.02, -2.0, 2.0, rng);
            swin_linear_init(bl->qkv_w, bl->qkv_b, rng);
            swin_linear_init(bl->proj_w, bl->proj_b, rng);
            swin_ln_init(bl->norm2_w, bl->norm2_b);
            swin_linear_init(bl->fc1_w, bl->fc1_b, rng);
            swin_linear_init(bl->fc2_w, bl->fc2_b, rng);
        }
        if (st->down_red_w) {
            swin_linear_init(st->down_red_w, NULL, rng);
            swin_ln_init(st->down_norm_w, st->down_norm_b);
        }
    }
    swin_ln_init(s->norm_w, s->norm_b);
    return 0;
}

/* ---- forward --------------------------------------------------------------------------------- */

/* One block (an sm_block_fn; arg: the swin_block): in = {x (B, H·W, C)} -> (B, H·W, C). */
static sm_tensor *swin_block_forward(sm_ctx *ctx, void *arg, sm_tensor *const *in)
{
    const swin_block *bl = arg;
    const swin *s = bl->s;
    const swin_stage *st = bl->st;
    sm_tensor *x = in[0];
    if (!x) return NULL;
    int64_t B = x->shape[0], H = st->H, W = st->W, C = st->dim;
    int w = st->window;
    float scale = s->has_qk_scale ? (float)s->qk_scale : (float)(1.0 / sqrt((double)C / st->heads));
    /* every tensor is released once no op is given it again: the tape keeps those a backward
     * reads, the others (the first norm's output, proj's, the reversed windows, the drop-path
     * outputs, fc2's) go to the next tensor of their size (sm_tensor_release) */
    sm_tensor *n1 = sm_layernorm(ctx, x, bl->norm1_w, bl->norm1_b, (float)s->eps);
    sm_tensor *win = sm_window_partition(ctx, sm_reshape(ctx, n1, 4, SM_SHAPE(B, H, W, C)), w,
                                         bl->shift); /* (B·nW, w², C) */
    sm_tensor_release(ctx, n1);
    sm_tensor *qkv = sm_linear(ctx, win, bl->qkv_w, bl->qkv_b);
    sm_tensor *bias = sm_relpos_bias(ctx, bl->rpb_table, st->rp_index, (int64_t)w * w);
    sm_tensor *a = sm_attention(ctx, qkv, st->heads, scale, bias, bl->attn_mask);
    /* kept for a recomputation (sm_checkpoint): proj and fc2, see vit.c */
    sm_tensor *p = sm_checkpoint_keep(ctx, sm_linear(ctx, a, bl->proj_w, bl->proj_b));
    sm_tensor *r = sm_window_reverse(ctx, p, H, W, w, bl->shift); /* (B, H, W, C) */
    sm_tensor_release(ctx, p);
    sm_tensor *d = sm_drop_path(ctx, sm_reshape(ctx, r, 3, SM_SHAPE(B, H * W, C)), bl->drop_path,
                                (uint64_t)bl->global_index * 2);
    x = sm_add(ctx, x, d);
    sm_tensor *drop[] = {win, qkv, bias, a, r, d};
    for (size_t i = 0; i < sizeof drop / sizeof *drop; i++) sm_tensor_release(ctx, drop[i]);
    sm_tensor *n2 = sm_layernorm(ctx, x, bl->norm2_w, bl->norm2_b, (float)s->eps);
    sm_tensor *f1 = sm_linear(ctx, n2, bl->fc1_w, bl->fc1_b);
    sm_tensor *g = sm_gelu(ctx, f1);
    sm_tensor *f2 = sm_checkpoint_keep(ctx, sm_linear(ctx, g, bl->fc2_w, bl->fc2_b));
    d = sm_drop_path(ctx, f2, bl->drop_path, (uint64_t)bl->global_index * 2 + 1);
    sm_tensor *y = sm_add(ctx, x, d);
    sm_tensor *drop2[] = {n2, f1, g, f2, d};
    for (size_t i = 0; i < sizeof drop2 / sizeof *drop2; i++) sm_tensor_release(ctx, drop2[i]);
    return y;
}

static sm_tensor *swin_forward(void *self, sm_ctx *ctx, sm_tensor *images, const sm_tensor *mask)
{
    const swin *s = self;
    if (sm_ctx_status(ctx) || !images) return NULL;
    sm_tensor *m2;
    if (sm_backbone_check_input(ctx, "swin", images, mask, s->in_chans, s->patch, s->hp, s->wp,
                                s->mask_token != NULL, &m2))
        return NULL;
    int64_t B = images->shape[0];
    sm_tensor *x = sm_patch_embed(ctx, images, s->patch_w, s->patch_b, s->patch); /* (B, L, C) */
    if (s->patch_norm) x = sm_layernorm(ctx, x, s->patch_norm_w, s->patch_norm_b, (float)s->eps);
    if (m2) x = sm_mask_blend(ctx, x, s->mask_token, m2); /* after the patch norm (official) */
    if (s->abs_pos) x = sm_add(ctx, x, s->abs_pos);
    for (int k = 0; k < s->n_stages; k++) {
        const swin_stage *st = &s->stages[k];
        for (int b = 0; b < st->depth; b++)
            x = sm_checkpoint(ctx, swin_block_forward, &st->blocks[b], 1, &x);
        if (st->down_red_w) {
            x = sm_reshape(ctx, x, 4, SM_SHAPE(B, st->H, st->W, st->dim));
            x = sm_patch_merge(ctx, x); /* (B, H/2·W/2, 4C) */
            x = sm_layernorm(ctx, x, st->down_norm_w, st->down_norm_b, (float)s->eps);
            x = sm_linear(ctx, x, st->down_red_w, NULL);
        }
    }
    x = sm_layernorm(ctx, x, s->norm_w, s->norm_b, (float)s->eps); /* (B, Ll, F) */
    const swin_stage *last = &s->stages[s->n_stages - 1];
    if (s->task == SM_TASK_SIMMIM) {
        x = sm_permute(ctx, x, (const int[]){0, 2, 1});
        return sm_reshape(ctx, x, 4, SM_SHAPE(B, s->num_features, last->H, last->W));
    }
    return sm_mean(ctx, x, 1); /* avgpool over tokens: (B, F) */
}

/* ---- intermediate features (plugin ABI 1.1) ------------------------------------------------- */

/* forward_features: images (B, C, H, W) -> (B, C_k), the mean over the tokens of what block
 * `block` outputs, with no norm after it. Blocks are counted through the stages, 1-based (Swin-B
 * [2, 2, 18, 2]: 1-2 in stage 0, 3-4 in stage 1, 5-22 in stage 2, 23-24 in stage 3); the last
 * block of a stage is taken before the patch merging that follows it, so the width C_k is that
 * of the block's stage, embed_dim·2^k. Block 0: the embedded patches (after the patch norm and
 * the absolute position embedding), width embed_dim. */
static sm_tensor *swin_forward_features(void *self, sm_ctx *ctx, sm_tensor *images, int block)
{
    const swin *s = self;
    sm_tensor *none;
    if (sm_ctx_status(ctx) || !images) return NULL;
    if (block < 0 || block > s->total_depth) {
        sm_ctx_fail(ctx, SM_EINVAL, "swin: block %d is not in 0..%d", block, s->total_depth);
        return NULL;
    }
    if (sm_backbone_check_input(ctx, "swin", images, NULL, s->in_chans, s->patch, s->hp, s->wp,
                                false, &none))
        return NULL;
    int64_t B = images->shape[0];
    sm_tensor *x = sm_patch_embed(ctx, images, s->patch_w, s->patch_b, s->patch); /* (B, L, C) */
    if (s->patch_norm) x = sm_layernorm(ctx, x, s->patch_norm_w, s->patch_norm_b, (float)s->eps);
    if (s->abs_pos) x = sm_add(ctx, x, s->abs_pos);
    int done = 0;
    for (int k = 0; k < s->n_stages && done < block; k++) {
        const swin_stage *st = &s->stages[k];
        for (int b = 0; b < st->depth && done < block; b++, done++)
            x = swin_block_forward(ctx, &st->blocks[b], &x); /* (B, H_k·W_k, C_k) */
        if (done < block && st->down_red_w) {
            x = sm_reshape(ctx, x, 4, SM_SHAPE(B, st->H, st->W, st->dim));
            x = sm_patch_merge(ctx, x); /* (B, H/2·W/2, 4C) */
            x = sm_layernorm(ctx, x, st->down_norm_w, st->down_norm_b, (float)s->eps);
            x = sm_linear(ctx, x, st->down_red_w, NULL); /* (B, H/2·W/2, 2C) */
        }
    }
    return sm_mean(ctx, x, 1); /* (B, C_k) */
}

/* ---- layer decay, weight decay, buffers ------------------------------------------------------ */

static int swin_layer_id(const void *self, const char *name)
{
    const swin *s = self;
    int last = s->total_depth + 1;
    if (!strcmp(name, "mask_token") || !strncmp(name, "patch_embed", 11)) return 0;
    if (!strncmp(name, "layers.", 7)) {
        char *end;
        long l = strtol(name + 7, &end, 10);
        if (l < 0 || l >= s->n_stages || *end != '.') return last;
        int before = 0;
        for (long k = 0; k < l; k++) before += s->stages[k].depth;
        if (!strncmp(end, ".blocks.", 8)) return before + atoi(end + 8) + 1;
        if (!strncmp(end, ".downsample", 11)) return before + s->stages[l].depth;
    }
    return last;
}

/* The official exclusions: absolute_pos_embed and the mask token, and the relative position
 * tables by keyword. In pretraining the official SimMIM wrapper prefixes its keywords with
 * "encoder." ("encoder.relative_position_bias_table" matches no parameter name), so there the
 * tables ARE decayed; only fine-tuning exempts them. */
static bool swin_no_weight_decay(const void *self, const char *name)
{
    const swin *s = self;
    return !strcmp(name, "absolute_pos_embed") || !strcmp(name, "mask_token") ||
           (s->task == SM_TASK_CLASSIFY && strstr(name, "relative_position_bias_table") != NULL);
}

static size_t swin_buffer_count(const void *self)
{
    const swin *s = self;
    size_t n = 0;
    for (int k = 0; k < s->n_stages; k++)
        for (int b = 0; b < s->stages[k].depth; b++) n += s->stages[k].blocks[b].attn_mask ? 2 : 1;
    return n;
}

static int swin_buffer_get(const void *self, size_t i, sm_buffer *out)
{
    const swin *s = self;
    memset(out, 0, sizeof *out);
    for (int k = 0; k < s->n_stages; k++) {
        const swin_stage *st = &s->stages[k];
        int64_t N = (int64_t)st->window * st->window;
        for (int b = 0; b < st->depth; b++) {
            const swin_block *bl = &st->blocks[b];
            if (bl->attn_mask) {
                if (i == 0) {
                    out->name = bl->mask_name;
                    out->dtype = SM_DTYPE_F32;
                    out->ndim = 3;
                    memcpy(out->shape, bl->attn_mask->shape, 3 * sizeof(int64_t));
                    out->data = bl->attn_mask->data;
                    return 0;
                }
                i--;
            }
            if (i == 0) {
                out->name = st->index_names[b];
                out->dtype = SM_DTYPE_I64;
                out->ndim = 2;
                out->shape[0] = out->shape[1] = N;
                out->data = st->rp_index;
                return 0;
            }
            i--;
        }
    }
    return SM_ENOTFOUND;
}

/* ---- foreign weights (fine-tuning from a SimMIM checkpoint) ------------------------------------ */

/* Side of a square table of `rows` rows, or 0. */
static int swin_table_side(int64_t rows)
{
    int64_t s = (int64_t)llround(sqrt((double)(rows > 0 ? rows : 0)));
    return s > 0 && s * s == rows ? (int)s : 0;
}

/* The official remap (utils.load_pretrained): a relative position table of another window size
 * (SimMIM pretrains Swin-B with window 6 and fine-tunes with 7) is resized per head. */
static int swin_adapt_weight(const void *self, const char *name, sm_tensor *t,
                             const sm_weight_source *src, sm_error *err)
{
    (void)self;
    const sm_st_info *in = strstr(name, "relative_position_bias_table")
                               ? sm_weight_source_find(src, name)
                               : NULL;
    if (!in || in->ndim != 2 || t->ndim != 2 || in->shape[1] != t->shape[1]) return 0;
    int si = swin_table_side(in->shape[0]), so = swin_table_side(t->shape[0]);
    if (!si || !so) return 0;
    float *buf = malloc((size_t)in->numel * sizeof *buf);
    if (!buf) return sm_error_set(err, SM_ENOMEM, NULL, 0, 0, NULL, "out of memory");
    int rc = sm_weight_source_read(src, name, buf, in->numel, err);
    if (!rc) rc = sm_relpos_table_resize(buf, si, so, (int)t->shape[1], 0, t->data, err);
    free(buf);
    return rc ? rc : SM_ADAPT_RESIZED;
}

static const sm_backbone_vtbl swin_vtbl = {
    .hdr = SM_COMPONENT_INIT(sm_backbone_vtbl, SM_KIND_BACKBONE, "swin",
                             "Swin Transformer of SimMIM (Swin-T defaults; set Swin-B in YAML)",
                             swin_keys, swin_validate),
    .create = swin_create,
    .destroy = swin_destroy,
    .info = swin_info,
    .init = swin_init,
    .forward = swin_forward,
    .layer_id = swin_layer_id,
    .no_weight_decay = swin_no_weight_decay,
    .buffer_count = swin_buffer_count,
    .buffer_get = swin_buffer_get,
    .adapt_weight = swin_adapt_weight,
    .forward_features = swin_forward_features,
};

static int swin_register(sm_registry *reg, sm_error *err)
{
    return sm_registry_add(reg, &swin_vtbl.hdr, err);
}

SM_PLUGIN_DEFINE(swin, "0.1.0", "Swin backbone for SimMIM (microsoft/SimMIM swin_transformer.py)",
                 "MIT", swin_register)
