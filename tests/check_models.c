/* tests/check_models.c - the ViT and Swin backbones, the SimMIM model and the classifier:
 * official parameter counts (spec §10), a full-size forward and backward step, layer ids and
 * weight-decay rules (spec §7.3-7.4), initialisation, shape errors, and `simmimctl verify` on the
 * golden files (passing, and failing when a reference value is perturbed). */
#include "testutil.h"

#include <math.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static sm_registry *reg;

static void setup(void) { reg = sm_test_registry(); }

static void teardown(void)
{
    sm_registry_free(reg);
    reg = NULL;
}

/* Model section texts for the full-size models (RingMo's base model files, spec §11.2). */
#define VIT_B_PRETRAIN                                                                             \
    "model: {backbone: vit, patch_size: 16, embed_dim: 768, depth: 12, num_heads: 12,\n"           \
    "  init_values: 0.1, use_abs_pos_emb: false, use_rel_pos_bias: false,\n"                       \
    "  use_shared_rel_pos_bias: true, use_mean_pooling: false}\n"
#define VIT_B_FINETUNE                                                                             \
    "model: {backbone: vit, patch_size: 16, embed_dim: 768, depth: 12, num_heads: 12,\n"           \
    "  init_values: 0.1, use_abs_pos_emb: false, use_rel_pos_bias: true,\n"                        \
    "  use_shared_rel_pos_bias: false, use_mean_pooling: true}\n"
#define SWIN_B(w)                                                                                  \
    "model: {backbone: swin, patch_size: 4, embed_dim: 128, depth: [2, 2, 18, 2],\n"               \
    "  num_heads: [4, 8, 16, 32], window_size: " #w ", ape: false, patch_norm: true}\n"

/* Builds a model from YAML (task given), failing the test with the config errors if any. */
static sm_model *build(const char *yaml, sm_task task)
{
    sm_config *cfg = sm_test_config(reg, yaml, NULL, true);
    sm_model *m = NULL;
    sm_error err;
    sm_error_clear(&err);
    int rc = sm_model_new(reg, sm_config_root(cfg), task, &m, &err);
    ck_assert_msg(rc == 0, "sm_model_new: %s", err.text);
    sm_config_free(cfg);
    return m;
}

static const struct count_case {
    const char *what;
    const char *yaml;
    sm_task task;
    int64_t params;
} count_cases[] = {
    {"SimMIM-ViT-B/16 @224", VIT_B_PRETRAIN "train_config: {image_size: 224}\n", SM_TASK_SIMMIM,
     86256720},
    {"ViT-B/16 @224, 1000 classes",
     VIT_B_FINETUNE "train_config: {image_size: 224, num_classes: 1000}\n", SM_TASK_CLASSIFY,
     86530984},
    {"ViT-B/16 @224, 45 classes",
     VIT_B_FINETUNE "train_config: {image_size: 224, num_classes: 45}\n", SM_TASK_CLASSIFY,
     85796589},
    {"ViT-B/16 @224, 46 classes",
     VIT_B_FINETUNE "train_config: {image_size: 224, num_classes: 46}\n", SM_TASK_CLASSIFY,
     85797358},
    {"SimMIM-Swin-B @192 w6", SWIN_B(6) "train_config: {image_size: 192}\n", SM_TASK_SIMMIM,
     89874104},
    {"Swin-B @192 w6, 1000 classes",
     SWIN_B(6) "train_config: {image_size: 192, num_classes: 1000}\n", SM_TASK_CLASSIFY, 87750176},
    {"Swin-B @224 w7, 1000 classes",
     SWIN_B(7) "train_config: {image_size: 224, num_classes: 1000}\n", SM_TASK_CLASSIFY, 87768224},
    {"Swin-B @224 w7, 45 classes", SWIN_B(7) "train_config: {image_size: 224, num_classes: 45}\n",
     SM_TASK_CLASSIFY, 86789349},
    {"Swin-B @224 w7, 46 classes", SWIN_B(7) "train_config: {image_size: 224, num_classes: 46}\n",
     SM_TASK_CLASSIFY, 86790374},
};

START_TEST(test_param_counts)
{
    const struct count_case *c = &count_cases[_i];
    sm_model *m = build(c->yaml, c->task);
    int64_t n = sm_params_numel(sm_model_params(m));
    ck_assert_msg(n == c->params, "%s: %lld parameters, the official model has %lld", c->what,
                  (long long)n, (long long)c->params);
    sm_model_free(m);
}
END_TEST

/* Decoder and encoder parts of the SimMIM counts (spec §10). */
START_TEST(test_simmim_parts)
{
    sm_model *m = build(VIT_B_PRETRAIN "train_config: {image_size: 224}\n", SM_TASK_SIMMIM);
    sm_params *p = sm_model_params(m);
    int64_t dec = sm_tensor_numel(sm_params_find(p, "decoder.0.weight")) +
                  sm_tensor_numel(sm_params_find(p, "decoder.0.bias"));
    ck_assert_int_eq(dec, 590592);
    ck_assert_int_eq(sm_params_numel(p) - dec, 85666128);
    ck_assert_int_eq(sm_model_info(m)->encoder_stride, 16);
    sm_model_free(m);
    m = build(SWIN_B(6) "train_config: {image_size: 192}\n", SM_TASK_SIMMIM);
    p = sm_model_params(m);
    dec = sm_tensor_numel(sm_params_find(p, "decoder.0.weight")) +
          sm_tensor_numel(sm_params_find(p, "decoder.0.bias"));
    ck_assert_int_eq(dec, 3148800);
    ck_assert_int_eq(sm_model_info(m)->encoder_stride, 32);
    ck_assert_int_eq(sm_model_info(m)->num_features, 1024);
    ck_assert_ptr_nonnull(sm_params_find(p, "encoder.layers.2.blocks.17.mlp.fc2.bias"));
    ck_assert_ptr_nonnull(sm_params_find(p, "encoder.layers.0.downsample.reduction.weight"));
    ck_assert_ptr_null(sm_params_find(p, "encoder.layers.3.downsample.reduction.weight"));
    sm_model_free(m);
}
END_TEST

static bool all_finite(const float *v, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(v[i])) return false;
    return true;
}

/* build() with initialised weights, and a blis backend in *be. */
static sm_model *build_init(const char *yaml, sm_task task, uint64_t seed, sm_backend **be)
{
    sm_model *m = build(yaml, task);
    sm_error err;
    sm_error_clear(&err);
    ck_assert_int_eq(sm_model_init(m, seed, &err), 0);
    *be = NULL;
    ck_assert_msg(sm_backend_new(reg, "blis", NULL, 0, be, &err) == 0, "%s", err.text);
    return m;
}

/* A full-size forward and backward step at batch 2 with the blis backend. */
static void full_step(const char *yaml, sm_task task, int64_t img)
{
    sm_backend *be;
    sm_model *m = build_init(yaml, task, 7, &be);
    sm_ctx *ctx = sm_ctx_new(be);
    sm_ctx_set_train(ctx, true);
    sm_ctx_set_rng(ctx, 1, 0);
    const sm_backbone_info *info = sm_model_info(m);
    sm_tensor *x = sm_ctx_tensor(ctx, 4, SM_SHAPE(2, info->in_chans, img, img));
    sm_rng r;
    sm_rng_init(&r, 3, 0, 0, 0);
    for (int64_t i = 0; i < sm_tensor_numel(x); i++) x->data[i] = (float)sm_rng_normal(&r);
    sm_tensor *loss;
    if (task == SM_TASK_SIMMIM) {
        int64_t g = img / info->patch_size;
        sm_tensor *mask = sm_ctx_tensor(ctx, 3, SM_SHAPE(2, g, g));
        for (int64_t i = 0; i < sm_tensor_numel(mask); i++) mask->data[i] = (float)((i / 3) % 2);
        sm_tensor *rec = NULL;
        loss = sm_model_simmim(m, ctx, x, mask, &rec);
        ck_assert_ptr_nonnull(rec);
        ck_assert(sm_tensor_same_shape(rec, x));
    } else {
        static const int64_t labels[2] = {3, 41};
        sm_tensor *logits = sm_model_logits(m, ctx, x);
        ck_assert_ptr_nonnull(logits);
        ck_assert_int_eq(logits->shape[1], sm_model_num_classes(m));
        loss = sm_cross_entropy(ctx, logits, labels, 0.1f);
    }
    ck_assert_msg(loss != NULL, "forward failed: %s", sm_ctx_error(ctx)->text);
    ck_assert_msg(isfinite(loss->data[0]) && loss->data[0] > 0, "loss %g", loss->data[0]);
    sm_params *p = sm_model_params(m);
    sm_params_zero_grad(p);
    ck_assert_int_eq(sm_backward(ctx, loss), 0);
    ck_assert(all_finite(sm_params_grads(p), sm_params_numel(p)));
    /* every parameter gets a gradient (drop path is per sample and may zero a branch of one
     * sample, never of all) */
    for (size_t i = 0; i < sm_params_count(p); i++) {
        sm_tensor *t = sm_params_at(p, i);
        double s = 0;
        for (int64_t k = 0; k < sm_tensor_numel(t); k++) s += fabs(t->grad[k]);
        ck_assert_msg(s > 0, "no gradient reached %s", t->name);
    }
    sm_ctx_free(ctx);
    sm_backend_free(be);
    sm_model_free(m);
}

START_TEST(test_full_vit_b16_224)
{
    full_step(VIT_B_PRETRAIN "train_config: {image_size: 224}\n", SM_TASK_SIMMIM, 224);
}
END_TEST
START_TEST(test_full_swin_b_192_w6)
{
    full_step(SWIN_B(6) "train_config: {image_size: 192}\n", SM_TASK_SIMMIM, 192);
}
END_TEST
START_TEST(test_full_swin_b_224_w7)
{
    full_step(SWIN_B(7) "train_config: {image_size: 224, num_classes: 46}\n", SM_TASK_CLASSIFY,
              224);
}
END_TEST

/* ---- memory plan and recomputation: the same bits with less memory ---------------------- */

/* Reduced models with every feature of the full ones: layer scale, shared relative position
 * bias, drop path (rate 0.3 so that it drops samples), shifted windows and patch merging. */
#define VIT_SMALL                                                                                  \
    "model: {backbone: vit, patch_size: 16, embed_dim: 96, depth: 4, num_heads: 3,\n"              \
    "  init_values: 0.1, use_abs_pos_emb: false, use_rel_pos_bias: false,\n"                       \
    "  use_shared_rel_pos_bias: true, use_mean_pooling: false, drop_path_rate: 0.3}\n"             \
    "train_config: {image_size: 96}\n"
#define SWIN_SMALL                                                                                 \
    "model: {backbone: swin, patch_size: 4, embed_dim: 32, depth: [2, 2, 2, 2],\n"                 \
    "  num_heads: [2, 4, 8, 16], window_size: 3, ape: false, patch_norm: true,\n"                  \
    "  drop_path_rate: 0.3}\n"                                                                     \
    "train_config: {image_size: 96}\n"

enum { MODE_KEEP, MODE_PLAN, MODE_RECOMPUTE, MODE_RECOMPUTE_KEEP, N_MODES };
static const char *const mode_names[N_MODES] = {"keep_grads", "planned", "recompute",
                                                "recompute + keep_grads"};

typedef struct step_result {
    float loss;
    float *rec, *grads; /* malloc'd copies */
    int64_t n_rec, n_grads;
    size_t peak, reserved, tape;
} step_result;

/* Two SimMIM training steps (batch 3, drop path on) in one context in the given mode; returns
 * the second step's loss, reconstruction and parameter gradients, and the arena figures. */
static step_result mode_step(sm_model *m, sm_backend *be, int64_t img, int mode)
{
    sm_ctx *ctx = sm_ctx_new(be);
    sm_ctx_set_train(ctx, true);
    sm_ctx_set_keep_grads(ctx, mode == MODE_KEEP || mode == MODE_RECOMPUTE_KEEP);
    sm_ctx_set_recompute(ctx, mode == MODE_RECOMPUTE || mode == MODE_RECOMPUTE_KEEP);
    const sm_backbone_info *info = sm_model_info(m);
    sm_params *p = sm_model_params(m);
    step_result r = {0};
    size_t reserved1 = 0;
    for (int step = 0; step < 2; step++) {
        sm_ctx_reset(ctx);
        sm_ctx_set_rng(ctx, 5, (uint64_t)step);
        int64_t B = 3, g = img / info->patch_size;
        sm_tensor *x = sm_ctx_tensor(ctx, 4, SM_SHAPE(B, info->in_chans, img, img));
        sm_tensor *mask = sm_ctx_tensor(ctx, 3, SM_SHAPE(B, g, g));
        sm_rng rng;
        sm_rng_init(&rng, 3, 0, (uint64_t)step, 0);
        for (int64_t i = 0; i < sm_tensor_numel(x); i++) x->data[i] = (float)sm_rng_normal(&rng);
        for (int64_t i = 0; i < sm_tensor_numel(mask); i++)
            mask->data[i] = sm_rng_uniform(&rng) < 0.6 ? 1.0f : 0.0f;
        sm_tensor *rec = NULL;
        sm_tensor *loss = sm_model_simmim(m, ctx, x, mask, &rec);
        ck_assert_msg(loss != NULL, "%s: %s", mode_names[mode], sm_ctx_error(ctx)->text);
        r.tape = sm_ctx_tape_size(ctx);
        sm_params_zero_grad(p);
        ck_assert_msg(sm_backward(ctx, loss) == 0, "%s: %s", mode_names[mode],
                      sm_ctx_error(ctx)->text);
        if (step == 0) reserved1 = sm_ctx_arena_reserved(ctx);
        r.loss = loss->data[0]; /* the outputs stay readable after backward */
        r.n_rec = sm_tensor_numel(rec);
        free(r.rec);
        r.rec = malloc((size_t)r.n_rec * sizeof(float));
        memcpy(r.rec, rec->data, (size_t)r.n_rec * sizeof(float));
    }
    r.n_grads = sm_params_numel(p);
    r.grads = malloc((size_t)r.n_grads * sizeof(float));
    memcpy(r.grads, sm_params_grads(p), (size_t)r.n_grads * sizeof(float));
    r.peak = sm_ctx_arena_peak(ctx);
    r.reserved = sm_ctx_arena_reserved(ctx);
    /* flat: the second step fit in what the first one reserved */
    ck_assert_msg(r.reserved <= reserved1, "%s: reserved %zu after step 2, %zu after step 1",
                  mode_names[mode], r.reserved, reserved1);
    sm_ctx_free(ctx);
    return r;
}

/* Bitwise equality of two float arrays; names the first difference. */
static void same_bits(const char *what, const char *mode, const float *a, const float *b, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (memcmp(&a[i], &b[i], sizeof(float)) != 0)
            ck_abort_msg("%s, %s: element %lld is %.9g, with every gradient kept %.9g", what, mode,
                         (long long)i, a[i], b[i]);
}

/* Every mode gives the same loss, reconstruction and parameter gradients, bit for bit; the plan
 * needs less memory than keeping every gradient, and recomputation less than the plan. */
static void modes_agree(const char *yaml, int64_t img)
{
    sm_backend *be;
    sm_model *m = build_init(yaml, SM_TASK_SIMMIM, 11, &be);
    step_result r[N_MODES];
    for (int k = 0; k < N_MODES; k++) r[k] = mode_step(m, be, img, k);
    double gsum = 0;
    for (int64_t i = 0; i < r[0].n_grads; i++) gsum += fabs(r[0].grads[i]);
    ck_assert(gsum > 0 && isfinite(gsum));
    for (int k = 1; k < N_MODES; k++) {
        ck_assert_msg(memcmp(&r[k].loss, &r[0].loss, sizeof(float)) == 0, "%s: loss %.9g vs %.9g",
                      mode_names[k], r[k].loss, r[0].loss);
        same_bits("reconstruction", mode_names[k], r[k].rec, r[0].rec, r[0].n_rec);
        same_bits("parameter gradients", mode_names[k], r[k].grads, r[0].grads, r[0].n_grads);
    }
    ck_assert_msg(r[MODE_PLAN].peak < r[MODE_KEEP].peak * 3 / 4,
                  "planned gradients: arena peak %zu, keeping all %zu", r[MODE_PLAN].peak,
                  r[MODE_KEEP].peak);
    /* (3/4 until GELU's outputs were dropped and made again in backward, which the plan does
     * and recomputation, whose blocks hold one block's activations, hardly needs: 0.75 here) */
    ck_assert_msg(r[MODE_RECOMPUTE].peak < r[MODE_PLAN].peak * 4 / 5,
                  "recompute: arena peak %zu, planned %zu", r[MODE_RECOMPUTE].peak,
                  r[MODE_PLAN].peak);
    ck_assert_msg(r[MODE_RECOMPUTE].tape < r[MODE_PLAN].tape / 2,
                  "recompute: %zu tape entries, planned %zu", r[MODE_RECOMPUTE].tape,
                  r[MODE_PLAN].tape);
    for (int k = 0; k < N_MODES; k++) {
        free(r[k].rec);
        free(r[k].grads);
    }
    sm_backend_free(be);
    sm_model_free(m);
}

START_TEST(test_memory_modes_vit) { modes_agree(VIT_SMALL, 96); }
END_TEST
START_TEST(test_memory_modes_swin) { modes_agree(SWIN_SMALL, 96); }
END_TEST

/* Layer ids (spec §7.4) and no-weight-decay (spec §7.3). */
START_TEST(test_layer_ids_and_decay)
{
    sm_model *m = build(VIT_B_FINETUNE "train_config: {image_size: 224, num_classes: 45}\n",
                        SM_TASK_CLASSIFY);
    ck_assert_int_eq(sm_model_num_layers(m), 14);
    ck_assert_int_eq(sm_model_layer_id(m, "cls_token"), 0);
    ck_assert_int_eq(sm_model_layer_id(m, "patch_embed.proj.weight"), 0);
    ck_assert_int_eq(sm_model_layer_id(m, "blocks.0.attn.qkv.weight"), 1);
    ck_assert_int_eq(sm_model_layer_id(m, "blocks.11.mlp.fc2.bias"), 12);
    ck_assert_int_eq(sm_model_layer_id(m, "fc_norm.weight"), 13);
    ck_assert_int_eq(sm_model_layer_id(m, "head.weight"), 13);
    ck_assert(sm_model_no_weight_decay(m, "cls_token"));
    ck_assert(sm_model_no_weight_decay(m, "blocks.3.gamma_1"));
    ck_assert(sm_model_no_weight_decay(m, "blocks.3.attn.q_bias"));
    ck_assert(!sm_model_no_weight_decay(m, "blocks.3.attn.relative_position_bias_table"));
    ck_assert(!sm_model_no_weight_decay(m, "blocks.3.attn.qkv.weight"));
    ck_assert(!sm_model_no_weight_decay(m, "head.weight"));
    ck_assert(sm_model_no_weight_decay(m, "head.bias"));
    sm_model_free(m);

    m = build(VIT_B_PRETRAIN "train_config: {image_size: 224}\n", SM_TASK_SIMMIM);
    ck_assert_int_eq(sm_model_layer_id(m, "encoder.mask_token"), 0);
    ck_assert_int_eq(sm_model_layer_id(m, "encoder.rel_pos_bias.relative_position_bias_table"), 13);
    ck_assert_int_eq(sm_model_layer_id(m, "decoder.0.weight"), 13);
    /* the official ViT decays its mask token and relative position tables */
    ck_assert(!sm_model_no_weight_decay(m, "encoder.mask_token"));
    ck_assert(!sm_model_no_weight_decay(m, "encoder.rel_pos_bias.relative_position_bias_table"));
    ck_assert(sm_model_no_weight_decay(m, "encoder.cls_token"));
    ck_assert(!sm_model_no_weight_decay(m, "decoder.0.weight"));
    ck_assert(sm_model_no_weight_decay(m, "decoder.0.bias"));
    sm_model_free(m);

    m = build(SWIN_B(7) "train_config: {image_size: 224, num_classes: 1000}\n", SM_TASK_CLASSIFY);
    ck_assert_int_eq(sm_model_num_layers(m), 26);
    ck_assert_int_eq(sm_model_layer_id(m, "patch_embed.proj.weight"), 0);
    ck_assert_int_eq(sm_model_layer_id(m, "layers.0.blocks.0.norm1.weight"), 1);
    ck_assert_int_eq(sm_model_layer_id(m, "layers.0.downsample.reduction.weight"), 2);
    ck_assert_int_eq(sm_model_layer_id(m, "layers.2.blocks.17.mlp.fc1.weight"), 22);
    ck_assert_int_eq(sm_model_layer_id(m, "layers.2.downsample.norm.weight"), 22);
    ck_assert_int_eq(sm_model_layer_id(m, "layers.3.blocks.1.attn.qkv.weight"), 24);
    ck_assert_int_eq(sm_model_layer_id(m, "norm.weight"), 25);
    ck_assert_int_eq(sm_model_layer_id(m, "head.weight"), 25);
    ck_assert(sm_model_no_weight_decay(m, "layers.1.blocks.0.attn.relative_position_bias_table"));
    ck_assert(!sm_model_no_weight_decay(m, "layers.1.blocks.0.attn.qkv.weight"));
    sm_model_free(m);

    m = build(SWIN_B(6) "train_config: {image_size: 192}\n", SM_TASK_SIMMIM);
    ck_assert(sm_model_no_weight_decay(m, "encoder.mask_token"));
    ck_assert_int_eq(sm_model_layer_id(m, "encoder.mask_token"), 0);
    sm_model_free(m);
}
END_TEST

static double max_abs(const sm_tensor *t)
{
    double m = 0;
    for (int64_t i = 0; i < sm_tensor_numel(t); i++) m = fmax(m, fabs(t->data[i]));
    return m;
}

static double stddev(const sm_tensor *t)
{
    double s = 0, s2 = 0;
    int64_t n = sm_tensor_numel(t);
    for (int64_t i = 0; i < n; i++) {
        s += t->data[i];
        s2 += (double)t->data[i] * t->data[i];
    }
    return sqrt(s2 / n - (s / n) * (s / n));
}

/* Initialisation (spec §4.1, §4.2). */
START_TEST(test_init)
{
    sm_error err;
    sm_error_clear(&err);
    const char *tiny_vit =
        "model: {backbone: vit, patch_size: 4, embed_dim: 64, depth: 4, num_heads: 2,"
        " init_values: 0.1, use_shared_rel_pos_bias: true}\n"
        "train_config: {image_size: 32, num_classes: 10}\n";
    sm_model *m = build(tiny_vit, SM_TASK_SIMMIM);
    ck_assert_int_eq(sm_model_init(m, 1, &err), 0);
    sm_params *p = sm_model_params(m);
    /* SimMIM's ViT truncates every normal at ±std */
    ck_assert(max_abs(sm_params_find(p, "encoder.blocks.0.attn.qkv.weight")) <= 0.02 + 1e-7);
    ck_assert(max_abs(sm_params_find(p, "encoder.mask_token")) <= 0.02 + 1e-7);
    ck_assert(max_abs(sm_params_find(p, "encoder.rel_pos_bias.relative_position_bias_table")) == 0);
    ck_assert(max_abs(sm_params_find(p, "encoder.blocks.2.attn.q_bias")) == 0);
    sm_tensor *g = sm_params_find(p, "encoder.blocks.1.gamma_2");
    for (int64_t i = 0; i < sm_tensor_numel(g); i++) ck_assert_float_eq(g->data[i], 0.1f);
    /* fix_init_weight: block 3's proj is divided by sqrt(8) */
    double s0 = stddev(sm_params_find(p, "encoder.blocks.0.attn.qkv.weight"));
    double s3 = stddev(sm_params_find(p, "encoder.blocks.3.attn.proj.weight"));
    ck_assert_msg(fabs(s3 * sqrt(8.0) / s0 - 1.0) < 0.1, "proj std %g vs qkv std %g", s3, s0);
    ck_assert(max_abs(sm_params_find(p, "encoder.blocks.3.attn.proj.weight")) <=
              0.02 / sqrt(8.0) + 1e-7);
    sm_model_free(m);

    m = build(tiny_vit, SM_TASK_CLASSIFY);
    ck_assert_int_eq(sm_model_init(m, 1, &err), 0);
    p = sm_model_params(m);
    /* the plain ViT truncates at ±2 (so values beyond 0.02 occur), head scaled by 0.001 */
    ck_assert(max_abs(sm_params_find(p, "blocks.0.mlp.fc1.weight")) > 0.03);
    ck_assert(max_abs(sm_params_find(p, "head.weight")) < 0.02 * 0.001 * 6);
    ck_assert(max_abs(sm_params_find(p, "head.weight")) > 0);
    sm_model_free(m);

    const char *tiny_swin =
        "model: {backbone: swin, patch_size: 2, embed_dim: 16, depth: [2, 2], num_heads: [2, 4],"
        " window_size: 4}\ntrain_config: {image_size: 32}\n";
    m = build(tiny_swin, SM_TASK_SIMMIM);
    ck_assert_int_eq(sm_model_init(m, 1, &err), 0);
    p = sm_model_params(m);
    /* the patch conv keeps PyTorch's default U(±1/sqrt(fan_in)), fan_in = 3·2·2 */
    double bound = 1.0 / sqrt(12.0);
    sm_tensor *pw = sm_params_find(p, "encoder.patch_embed.proj.weight");
    ck_assert(max_abs(pw) <= bound && max_abs(pw) > 0.8 * bound);
    ck_assert(stddev(sm_params_find(
                  p, "encoder.layers.0.blocks.0.attn.relative_position_bias_table")) > 0.01);
    /* decoder: U(±1/sqrt(F)), F = 32 */
    ck_assert(max_abs(sm_params_find(p, "decoder.0.weight")) <= 1.0 / sqrt(32.0));
    sm_model_free(m);
}
END_TEST

/* Wrong input shapes end in a sticky error with a message, not a crash. */
START_TEST(test_shape_errors)
{
    sm_model *m = build("model: {backbone: swin, patch_size: 2, embed_dim: 16, depth: [2, 2],"
                        " num_heads: [2, 4], window_size: 4}\ntrain_config: {image_size: 32}\n",
                        SM_TASK_SIMMIM);
    sm_ctx *ctx = sm_ctx_new(NULL);
    sm_tensor *x = sm_ctx_zeros(ctx, 4, SM_SHAPE(2, 3, 16, 16));
    sm_tensor *mask = sm_ctx_zeros(ctx, 3, SM_SHAPE(2, 8, 8));
    ck_assert_ptr_null(sm_model_simmim(m, ctx, x, mask, NULL));
    ck_assert_int_eq(sm_ctx_status(ctx), SM_ESHAPE);
    ck_assert_msg(strstr(sm_ctx_error(ctx)->text, "expected images (B, 3, 32, 32)") != NULL, "%s",
                  sm_ctx_error(ctx)->text);
    sm_ctx_reset(ctx);
    x = sm_ctx_zeros(ctx, 4, SM_SHAPE(2, 3, 32, 32));
    ck_assert_ptr_null(sm_model_simmim(m, ctx, x, mask, NULL));
    ck_assert_msg(strstr(sm_ctx_error(ctx)->text, "mask") != NULL, "%s", sm_ctx_error(ctx)->text);
    sm_ctx_free(ctx);
    sm_model_free(m);
}
END_TEST

/* Configs the backbones must refuse (validate hooks), with the key named. */
START_TEST(test_config_errors)
{
    static const struct {
        const char *yaml, *expect;
    } cases[] = {
        {"model: {backbone: swin, depth: [2, 2, 6], num_heads: [3, 6]}\ntrain_config: {image_size: "
         "224}\n",
         "model.num_heads: num_heads has 2 entries but depth has 3"},
        {"model: {backbone: swin, window_size: 7}\ntrain_config: {image_size: 256}\n",
         "model.window_size: stage 0 has 64x64 tokens, not a multiple of window_size 7"},
        {"model: {backbone: vit, embed_dim: 100, num_heads: 12}\ntrain_config: {image_size: 224}\n",
         "model.num_heads: embed_dim 100 is not a multiple of num_heads 12"},
        {"model: {backbone: vit, drop_rate: 0.1}\ntrain_config: {image_size: 224}\n",
         "model.drop_rate: dropout is not implemented"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sm_diag *d = sm_diag_new();
        sm_config *cfg = NULL;
        int rc =
            sm_config_read_string(cases[i].yaml, strlen(cases[i].yaml), "t.yaml", NULL, 0, &cfg, d);
        ck_assert_int_eq(rc, 0);
        rc = sm_config_validate_model(cfg, reg, d);
        ck_assert_int_eq(rc, SM_ECONFIG);
        bool found = false;
        char line[1024];
        for (size_t k = 0; k < sm_diag_count(d) && !found; k++) {
            sm_error_format(sm_diag_get(d, k, NULL), line, sizeof line);
            found = strstr(line, cases[i].expect) != NULL;
        }
        ck_assert_msg(found, "case %zu: expected '%s', last line '%s'", i, cases[i].expect, line);
        sm_config_free(cfg);
        sm_diag_free(d);
    }
}
END_TEST

/* ---- simmimctl verify ------------------------------------------------------------------------ */

static int run_cmd(const char *cmd, char **out)
{
    char *tmp = sm_test_tmpdir();
    char path[4200], full[8800];
    snprintf(path, sizeof path, "%s/out.txt", tmp);
    snprintf(full, sizeof full, "%s > '%s' 2>&1", cmd, path);
    int st = system(full);
    *out = sm_test_read_file(path, NULL);
    sm_test_rmtree(tmp);
    free(tmp);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The public golden set and the extra cases in tests/reference (README there). */
static const char *golden_files[] = {
    "golden/simmim_swin.safetensors",
    "golden/simmim_vit_shared_rpb.safetensors",
    "golden/simmim_vit_abs_rpb.safetensors",
    "golden/cls_swin.safetensors",
    "golden/cls_vit_meanpool.safetensors",
    "golden/cls_vit_clstoken.safetensors",
    "reference/x_simmim_swin_w3.safetensors",
    "reference/x_simmim_swin_3stage_ape.safetensors",
    "reference/x_simmim_swin_bigwindow.safetensors",
    "reference/x_simmim_vit_both_rpb.safetensors",
    "reference/x_simmim_vit_plain.safetensors",
    "reference/x_cls_vit_meanpool_nobias.safetensors",
    "reference/x_cls_swin_3stage.safetensors",
};
#define N_GOLDEN ((int)(sizeof golden_files / sizeof golden_files[0]))

/* verify runs: fp32 on every backend (the strict tier), and bf16 on ref, the oracle, and on
 * onednn where this CPU runs it (the bf16 tier, docs/backends.md) */
static const struct {
    const char *backend, *precision;
} verify_runs[] = {
    {"blis", "fp32"}, {"ref", "fp32"}, {"onednn", "fp32"}, {"ref", "bf16"}, {"onednn", "bf16"},
};

START_TEST(test_verify_golden)
{
    const char *backend = verify_runs[_i].backend, *precision = verify_runs[_i].precision;
    bool bf16 = strcmp(precision, "bf16") == 0;
    if (strcmp(backend, "onednn") == 0) {
        if (access(sm_test_build("../plugins/.libs/sm_onednn.so"), R_OK) != 0) return;
        __builtin_cpu_init();
        if (bf16 && !(__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                     __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq")))
            return; /* refused there (tested in check_backend) */
    }
    const char *ctl = getenv("SIMMIMCTL");
    ck_assert_ptr_nonnull(ctl);
    char cmd[8192];
    int k;
    k = snprintf(cmd, sizeof cmd, "'%s' verify --backend %s --precision %s", ctl, backend,
                 precision);
    for (size_t i = 0; i < sizeof golden_files / sizeof golden_files[0]; i++)
        k += snprintf(cmd + k, sizeof cmd - (size_t)k, " '%s'", sm_test_src(golden_files[i]));
    char *out = NULL;
    int rc = run_cmd(cmd, &out);
    ck_assert_ptr_nonnull(out);
    ck_assert_msg(rc == 0, "verify exited %d:\n%s", rc, out);
    int good = 0;
    if (bf16) {
        for (const char *p = out; (p = strstr(p, "PASS at the bf16 tier")); p++) good++;
    } else {
        for (const char *p = out; (p = strstr(p, "PASS at the required tier")); p++) {
            const char *eol = strchr(p, '\n'), *r = strstr(p, "strict tier (1e-05, 1e-04) reached");
            if (r && (!eol || r < eol)) good++;
        }
    }
    ck_assert_msg(good == N_GOLDEN, "%s %s: %d of %d files reach the %s tier:\n%s", backend,
                  precision, good, N_GOLDEN, bf16 ? "bf16" : "strict", out);
    ck_assert_msg(strstr(out, "FAIL") == NULL, "%s", out);
    free(out);
}
END_TEST

/* A reference whose gradient was perturbed by 1 % must fail the check; a truncated file must be
 * refused cleanly. */
START_TEST(test_verify_detects_errors)
{
    const char *ctl = getenv("SIMMIMCTL");
    char *tmp = sm_test_tmpdir();
    sm_st_file *f = NULL;
    sm_error err;
    sm_error_clear(&err);
    ck_assert_int_eq(sm_st_open(sm_test_src("golden/simmim_vit_shared_rpb.safetensors"), &f, &err),
                     0);
    sm_st_writer *w = sm_st_writer_new();
    void **bufs = calloc(sm_st_count(f), sizeof *bufs);
    const char *victim = "grad.encoder.blocks.1.attn.qkv.weight";
    for (size_t i = 0; i < sm_st_count(f); i++) {
        const sm_st_info *in = sm_st_at(f, i);
        size_t bytes = (size_t)in->numel * 8;
        bufs[i] = malloc(bytes ? bytes : 8);
        if (in->dtype == SM_DTYPE_I64) {
            ck_assert_int_eq(sm_st_read_i64(f, in->name, bufs[i], in->numel, &err), 0);
        } else if (in->dtype == SM_DTYPE_F64) {
            ck_assert_int_eq(sm_st_read_f64(f, in->name, bufs[i], in->numel, &err), 0);
        } else {
            float *v = bufs[i];
            ck_assert_int_eq(sm_st_read_f32(f, in->name, v, in->numel, &err), 0);
            if (!strcmp(in->name, victim))
                for (int64_t k = 0; k < in->numel; k++) v[k] *= 1.01f;
        }
        ck_assert_int_eq(
            sm_st_writer_add(w, in->name, in->dtype, in->ndim, in->shape, bufs[i], &err), 0);
    }
    for (size_t i = 0; i < sm_st_meta_count(f); i++)
        sm_st_writer_meta(w, sm_st_meta_key(f, i), sm_st_meta_value(f, i), &err);
    char bad[4200], cmd[9000];
    snprintf(bad, sizeof bad, "%s/perturbed.safetensors", tmp);
    ck_assert_int_eq(sm_st_writer_write(w, bad, &err), 0);
    sm_st_writer_free(w);
    for (size_t i = 0; i < sm_st_count(f); i++) free(bufs[i]);
    free(bufs);
    sm_st_close(f);

    char *out = NULL;
    snprintf(cmd, sizeof cmd, "'%s' verify '%s'", ctl, bad);
    int rc = run_cmd(cmd, &out);
    ck_assert_msg(rc == 1, "verify exited %d on a perturbed reference:\n%s", rc, out);
    ck_assert_msg(strstr(out, victim) && strstr(out, "FAIL"), "%s", out);
    free(out);

    /* truncated copy */
    size_t len;
    char *data = sm_test_read_file(sm_test_src("golden/simmim_vit_shared_rpb.safetensors"), &len);
    snprintf(bad, sizeof bad, "%s/truncated.safetensors", tmp);
    ck_assert_int_eq(sm_test_write_file(bad, data, len / 2), 0);
    free(data);
    snprintf(cmd, sizeof cmd, "'%s' verify '%s'", ctl, bad);
    rc = run_cmd(cmd, &out);
    ck_assert_msg(rc == 1, "verify exited %d on a truncated file:\n%s", rc, out);
    ck_assert_msg(strstr(out, "truncated.safetensors") && strstr(out, "could not be checked"), "%s",
                  out);
    free(out);

    snprintf(cmd, sizeof cmd, "'%s' verify", ctl);
    rc = run_cmd(cmd, &out);
    ck_assert_int_eq(rc, 2);
    free(out);

    /* a precision that does not exist; one the backend cannot run */
    const char *golden = sm_test_src("golden/simmim_vit_shared_rpb.safetensors");
    snprintf(cmd, sizeof cmd, "'%s' verify --precision fp16 '%s'", ctl, golden);
    rc = run_cmd(cmd, &out);
    ck_assert_msg(rc == 2 && strstr(out, "--precision must be fp32 or bf16, not 'fp16'"), "%d: %s",
                  rc, out);
    free(out);
    snprintf(cmd, sizeof cmd, "'%s' verify --backend blis --precision bf16 '%s'", ctl, golden);
    rc = run_cmd(cmd, &out);
    ck_assert_msg(rc != 0 && strstr(out, "backend.precision: backend 'blis' cannot run precision "
                                         "bf16"),
                  "%d: %s", rc, out);
    free(out);
    sm_test_rmtree(tmp);
    free(tmp);
}
END_TEST

/* ---- intermediate features (forward_features, plugin ABI 1.1) -------------------------------- */

/* Random images (B, 3, size, size) in ctx. */
static sm_tensor *random_images(sm_ctx *ctx, int64_t B, int64_t size, uint64_t seed)
{
    sm_tensor *x = sm_ctx_zeros(ctx, 4, SM_SHAPE(B, 3, size, size));
    sm_rng r;
    sm_rng_init(&r, seed, 0, 0, 0);
    for (int64_t i = 0; i < sm_tensor_numel(x); i++) x->data[i] = (float)sm_rng_normal(&r);
    return x;
}

/* Adds N(0, 0.3²) to every parameter: blocks then change the features visibly (after the
 * official init, layer scale 0.1 and small projections barely move the mean of the tokens),
 * and the norms are not the identity. */
static void perturb(sm_model *m, uint64_t seed)
{
    sm_params *p = sm_model_params(m);
    sm_rng r;
    sm_rng_init(&r, seed, 0, 0, 0);
    for (size_t i = 0; i < sm_params_count(p); i++) {
        sm_tensor *t = sm_params_at(p, i);
        for (int64_t k = 0; k < sm_tensor_numel(t); k++) t->data[k] += (float)(0.3 * sm_rng_normal(&r));
    }
}

/* Largest |a - b| over n values. */
static double max_diff(const float *a, const float *b, int64_t n)
{
    double d = 0;
    for (int64_t i = 0; i < n; i++) d = fmax(d, fabs((double)a[i] - b[i]));
    return d;
}

/* The features after every block 0..n of a classifier: widths[i] columns each, all distinct
 * (every block changes them); copies kept in feats (n + 1 rows of B x 64 floats). */
static void features_all_blocks(sm_model *m, sm_ctx *ctx, sm_tensor *x, const int *widths,
                                float feats[][2 * 64])
{
    int n = sm_model_info(m)->num_blocks;
    for (int b = 0; b <= n; b++) {
        sm_tensor *f = sm_model_features(m, ctx, x, b);
        ck_assert_msg(f != NULL, "block %d: %s", b, sm_ctx_error(ctx)->text);
        ck_assert_int_eq(f->ndim, 2);
        ck_assert_int_eq(f->shape[0], 2);
        ck_assert_int_eq(f->shape[1], widths[b]);
        memcpy(feats[b], f->data, (size_t)(2 * widths[b]) * sizeof(float));
        for (int a = 0; a < b; a++)
            if (widths[a] == widths[b])
                ck_assert_msg(max_diff(feats[a], feats[b], 2 * widths[b]) > 1e-3,
                              "blocks %d and %d give the same features", a, b);
    }
}

/* A block outside 0..n is refused, naming the range. */
static void assert_block_refused(sm_model *m, sm_ctx *ctx, sm_tensor *x, int block,
                                 const char *range)
{
    sm_error err;
    sm_error_clear(&err);
    ck_assert_int_eq(sm_model_check_block(m, block, &err), SM_EINVAL);
    ck_assert_msg(strstr(err.text, range) != NULL, "%s", err.text);
    sm_ctx_reset(ctx);
    ck_assert_ptr_null(sm_model_features(m, ctx, x, block));
    ck_assert_int_eq(sm_ctx_status(ctx), SM_EINVAL);
    ck_assert_msg(strstr(sm_ctx_error(ctx)->text, range) != NULL, "%s", sm_ctx_error(ctx)->text);
    sm_ctx_reset(ctx);
}

/* ViT: the mean of the patch tokens after block n, through fc_norm, is exactly the classifier's
 * pooled features (mean pooling); every block gives other features; a wrong block is refused. */
START_TEST(test_features_vit)
{
    sm_model *m = build("model: {backbone: vit, patch_size: 4, embed_dim: 16, depth: 3,"
                        " num_heads: 2, use_mean_pooling: true, use_rel_pos_bias: true,"
                        " use_shared_rel_pos_bias: false, mask_patch_size: 8}\n"
                        "train_config: {image_size: 16, num_classes: 3}\n",
                        SM_TASK_CLASSIFY);
    ck_assert_int_eq(sm_model_info(m)->num_blocks, 3);
    sm_error err;
    ck_assert_int_eq(sm_model_init(m, 7, &err), 0);
    perturb(m, 9);
    sm_params *p = sm_model_params(m);
    sm_tensor *nw = sm_params_find(p, "fc_norm.weight"), *nb = sm_params_find(p, "fc_norm.bias");
    sm_ctx *ctx = sm_ctx_new(NULL);
    sm_ctx_set_grad(ctx, false);
    sm_ctx_set_train(ctx, false);
    sm_tensor *x = random_images(ctx, 2, 16, 1);
    float feats[4][2 * 64];
    features_all_blocks(m, ctx, x, (const int[]){16, 16, 16, 16}, feats);
    sm_tensor *pooled = sm_model_features(m, ctx, x, -1); /* the classifier's: (2, 16) */
    sm_tensor *last = sm_model_features(m, ctx, x, 3);
    sm_tensor *normed = sm_layernorm(ctx, last, nw, nb, 1e-6f);
    ck_assert_ptr_nonnull(pooled);
    ck_assert_ptr_nonnull(normed);
    ck_assert_msg(memcmp(pooled->data, normed->data, 2 * 16 * sizeof(float)) == 0,
                  "fc_norm(block 3) differs from the pooled features by %g",
                  max_diff(pooled->data, normed->data, 32));
    assert_block_refused(m, ctx, x, 4, "block 4: backbone 'vit' has blocks 0..3");
    sm_ctx_free(ctx);
    sm_model_free(m);
}
END_TEST

/* Swin: blocks count through the stages, 1-based; the width is the block's stage's (before the
 * patch merging that follows a stage's last block). */
START_TEST(test_features_swin)
{
    sm_model *m = build("model: {backbone: swin, patch_size: 2, embed_dim: 8, depth: [2, 1],"
                        " num_heads: [2, 4], window_size: 4, mask_patch_size: 8}\n"
                        "train_config: {image_size: 16, num_classes: 3}\n",
                        SM_TASK_CLASSIFY);
    ck_assert_int_eq(sm_model_info(m)->num_blocks, 3);
    sm_error err;
    ck_assert_int_eq(sm_model_init(m, 7, &err), 0);
    perturb(m, 10);
    sm_ctx *ctx = sm_ctx_new(NULL);
    sm_ctx_set_grad(ctx, false);
    sm_ctx_set_train(ctx, false);
    sm_tensor *x = random_images(ctx, 2, 16, 2);
    float feats[4][2 * 64];
    features_all_blocks(m, ctx, x, (const int[]){8, 8, 8, 16}, feats);
    assert_block_refused(m, ctx, x, 4, "block 4: backbone 'swin' has blocks 0..3");
    sm_ctx_free(ctx);
    sm_model_free(m);
}
END_TEST

/* A backbone built before forward_features (its vtable ends at adapt_weight) loads, works, and
 * has no blocks: asking for one is refused with a message saying why. */
static sm_backbone_vtbl old_vit;

START_TEST(test_features_without_slot)
{
    old_vit = *(const sm_backbone_vtbl *)sm_registry_find(reg, SM_KIND_BACKBONE, "vit");
    old_vit.hdr.name = "old_vit";
    old_vit.hdr.struct_size = (uint32_t)offsetof(sm_backbone_vtbl, forward_features);
    sm_error err;
    sm_error_clear(&err);
    ck_assert_int_eq(sm_registry_add(reg, &old_vit.hdr, &err), 0);
    sm_model *m = build("model: {backbone: old_vit, patch_size: 4, embed_dim: 16, depth: 2,"
                        " num_heads: 2, mask_patch_size: 8}\ntrain_config: {image_size: 16, num_classes: 3}\n",
                        SM_TASK_CLASSIFY);
    ck_assert_int_eq(sm_model_info(m)->num_blocks, 0);
    ck_assert_int_eq(sm_model_init(m, 7, &err), 0);
    ck_assert_int_eq(sm_model_check_block(m, 1, &err), SM_EUNSUPPORTED);
    ck_assert_msg(strstr(err.text, "backbone 'old_vit' cannot give the features of an "
                                   "intermediate block") != NULL,
                  "%s", err.text);
    sm_ctx *ctx = sm_ctx_new(NULL);
    sm_tensor *x = random_images(ctx, 2, 16, 3);
    ck_assert_ptr_nonnull(sm_model_features(m, ctx, x, -1)); /* the classifier's pooling works */
    ck_assert_ptr_null(sm_model_features(m, ctx, x, 0));
    ck_assert_int_eq(sm_ctx_status(ctx), SM_EUNSUPPORTED);
    sm_ctx_free(ctx);
    sm_model_free(m);
}
END_TEST

static Suite *models_suite(void)
{
    Suite *s = suite_create("models");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, test_param_counts, 0,
                        (int)(sizeof count_cases / sizeof count_cases[0]));
    tcase_add_test(tc, test_simmim_parts);
    tcase_add_test(tc, test_layer_ids_and_decay);
    tcase_add_test(tc, test_init);
    tcase_add_test(tc, test_shape_errors);
    tcase_add_test(tc, test_config_errors);
    tcase_add_test(tc, test_features_vit);
    tcase_add_test(tc, test_features_swin);
    tcase_add_test(tc, test_features_without_slot);
    suite_add_tcase(s, tc);
    TCase *full = tcase_create("full_size");
    tcase_add_checked_fixture(full, setup, teardown);
    tcase_set_timeout(full, 600);
    tcase_add_test(full, test_full_vit_b16_224);
    tcase_add_test(full, test_full_swin_b_192_w6);
    tcase_add_test(full, test_full_swin_b_224_w7);
    suite_add_tcase(s, full);
    TCase *mem = tcase_create("memory");
    tcase_add_checked_fixture(mem, setup, teardown);
    tcase_set_timeout(mem, 600);
    tcase_add_test(mem, test_memory_modes_vit);
    tcase_add_test(mem, test_memory_modes_swin);
    suite_add_tcase(s, mem);
    TCase *ver = tcase_create("verify");
    tcase_set_timeout(ver, 600);
    tcase_add_loop_test(ver, test_verify_golden, 0,
                        (int)(sizeof verify_runs / sizeof verify_runs[0]));
    tcase_add_test(ver, test_verify_detects_errors);
    suite_add_tcase(s, ver);
    return s;
}

int main(void) { return sm_test_run(models_suite()); }
