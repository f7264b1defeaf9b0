/* tests/check_optim.c - the optimizer plugin (adamw, sgd) against the update formulas of
 * torch.optim computed in double, and the schedulers against spec §7.5 / RingMo's build_lr. */
#include "testutil.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "simmim/optim.h"

#include "fixtures/plugins/fx_stubs.h"

static sm_registry *reg;

/* Stand-ins so that a whole job config validates without the dataset and backbone plugins. */
static const sm_dataset_vtbl fake_dataset = {
    .hdr = SM_COMPONENT_INIT(sm_dataset_vtbl, SM_KIND_DATASET, "fake_reader", "test stand-in", NULL,
                             NULL),
    FX_DATASET_SLOTS};
static const sm_key fake_backbone_keys[] = {{"patch_size", SM_KEY_INT, "4", "[1,)", 0, "patch"},
                                            {NULL, SM_KEY_END, NULL, NULL, 0, NULL}};
static const sm_backbone_vtbl fake_backbone = {
    .hdr = SM_COMPONENT_INIT(sm_backbone_vtbl, SM_KIND_BACKBONE, "fake_backbone", "test stand-in",
                             fake_backbone_keys, NULL),
    FX_BACKBONE_SLOTS};

static void setup(void)
{
    reg = sm_registry_new();
    ck_assert_int_eq(sm_registry_add(reg, &fake_dataset.hdr, NULL), 0);
    ck_assert_int_eq(sm_registry_add(reg, &fake_backbone.hdr, NULL), 0);
    sm_diag *d = sm_diag_new();
    sm_plugin_load_path(reg, NULL, 0, NULL, 0, d);
    sm_diag_free(d);
    ck_assert_msg(sm_registry_find(reg, SM_KIND_OPTIMIZER, "adamw") != NULL,
                  "the optim plugin was not found on SIMMIM_PLUGIN_PATH");
}

static void teardown(void) { sm_registry_free(reg); }

static sm_config *section_cfg(const char *yaml) { return sm_test_config(reg, yaml, NULL, false); }

static char *job_yaml(const char *extra)
{
    static char buf[4096];
    snprintf(buf, sizeof buf,
             "pretrain_dataset: {reader: fake_reader}\nbackend: {name: ref}\n"
             "model: {backbone: fake_backbone, mask_patch_size: 32}\n%s",
             extra);
    return buf;
}

/* Two parameter tensors with deterministic values and gradients. */
static sm_params *make_params(void)
{
    sm_params *p = sm_params_new();
    sm_error err;
    sm_error_clear(&err);
    ck_assert_ptr_nonnull(sm_params_add(p, "w", 2, SM_SHAPE(3, 5), &err));
    ck_assert_ptr_nonnull(sm_params_add(p, "b", 1, SM_SHAPE(7), &err));
    ck_assert_int_eq(sm_params_finalize(p, &err), 0);
    return p;
}

static void set_grads(sm_params *p, int step)
{
    float *g = sm_params_grads(p);
    for (int64_t i = 0; i < sm_params_numel(p); i++)
        g[i] = (float)sin(0.7 * (double)i + 1.3 * step) * (i % 3 ? 1.0f : 1e-3f);
}

/* The job of the AdamW tests: beta1 0.8, beta2 0.95, eps 1e-6, with or without bias correction. */
static sm_config *adamw_cfg(int bias_corr)
{
    char extra[256];
    snprintf(extra, sizeof extra,
             "optimizer: {optim_name: AdamW, beta1: 0.8, beta2: 0.95, eps: 1e-6,"
             " bias_correction: %s}\n",
             bias_corr ? "true" : "false");
    return section_cfg(job_yaml(extra));
}

START_TEST(test_adamw_matches_torch)
{
    for (int bias_corr = 1; bias_corr >= 0; bias_corr--) {
        sm_config *cfg = adamw_cfg(bias_corr);
        const sm_optimizer_vtbl *vt =
            (const sm_optimizer_vtbl *)sm_registry_find(reg, SM_KIND_OPTIMIZER, "AdamW");
        ck_assert_ptr_nonnull(vt);
        sm_params *p = make_params();
        int64_t n = sm_params_numel(p);
        float *w = sm_params_data(p);
        double ref[22], m[22] = {0}, v[22] = {0};
        ck_assert_int_eq(n, 22);
        for (int64_t i = 0; i < n; i++) ref[i] = w[i] = (float)(0.1 * (double)i - 1.0);
        void *self = NULL;
        sm_error err;
        sm_error_clear(&err);
        ck_assert_int_eq(vt->create(sm_cfg_get(sm_config_root(cfg), "optimizer"), p, &self, &err),
                         0);
        const float lr[2] = {0.01f, 0.003f}, wd[2] = {0.05f, 0.0f};
        for (int step = 1; step <= 4; step++) {
            set_grads(p, step);
            vt->step(self, p, lr, wd, step);
            const float *g = sm_params_grads(p);
            for (int64_t i = 0; i < n; i++) {
                int t = i < 15 ? 0 : 1;
                m[i] = 0.8 * m[i] + 0.2 * g[i];
                v[i] = 0.95 * v[i] + 0.05 * (double)g[i] * g[i];
                if (bias_corr) {
                    ref[i] *= 1.0 - (double)lr[t] * wd[t];
                    double mh = m[i] / (1 - pow(0.8, step)), vh = v[i] / (1 - pow(0.95, step));
                    ref[i] -= lr[t] * mh / (sqrt(vh) + 1e-6);
                } else {
                    ref[i] -= lr[t] * (m[i] / (sqrt(v[i]) + 1e-6) + wd[t] * ref[i]);
                }
            }
        }
        for (int64_t i = 0; i < n; i++)
            ck_assert_msg(fabs(w[i] - ref[i]) <= 2e-6 * (1 + fabs(ref[i])),
                          "bias_correction %d, element %lld: %.9g vs %.9g", bias_corr, (long long)i,
                          w[i], ref[i]);
        ck_assert_int_eq(vt->state_count(self), 2);
        ck_assert_str_eq(vt->state_name(self, 1), "exp_avg_sq");
        vt->destroy(self);
        sm_params_free(p);
        sm_config_free(cfg);
    }
}
END_TEST

/* The vectorised, threaded AdamW is bitwise the scalar float loop: a tensor of several chunks
 * and a tail (above the threading threshold), both variants, 3 steps, 1 and 2 threads. */
START_TEST(test_adamw_bitwise_scalar)
{
    for (int bias_corr = 1; bias_corr >= 0; bias_corr--) {
        sm_config *cfg = adamw_cfg(bias_corr);
        const sm_optimizer_vtbl *vt =
            (const sm_optimizer_vtbl *)sm_registry_find(reg, SM_KIND_OPTIMIZER, "adamw");
        ck_assert_ptr_nonnull(vt);
        for (int threads = 1; threads <= 2; threads++) {
            omp_set_num_threads(threads);
            sm_params *p = sm_params_new();
            const int64_t n = 5 * 16384 + 77;
            ck_assert_ptr_nonnull(sm_params_add(p, "w", 1, SM_SHAPE(n), NULL));
            ck_assert_int_eq(sm_params_finalize(p, NULL), 0);
            float *w = sm_params_data(p), *g = sm_params_grads(p);
            float *ref = malloc((size_t)n * sizeof *ref), *m = calloc((size_t)n, sizeof *m);
            float *v = calloc((size_t)n, sizeof *v);
            ck_assert(ref && m && v);
            for (int64_t i = 0; i < n; i++) ref[i] = w[i] = (float)sin(0.37 * (double)i);
            void *self = NULL;
            ck_assert_int_eq(
                vt->create(sm_cfg_get(sm_config_root(cfg), "optimizer"), p, &self, NULL), 0);
            const float lr[1] = {0.01f}, wd[1] = {0.05f};
            for (int step = 1; step <= 3; step++) {
                for (int64_t i = 0; i < n; i++)
                    g[i] = (float)cos(0.11 * (double)i + step) * (i % 5 ? 1.0f : 1e-4f);
                vt->step(self, p, lr, wd, step);
                /* the plugin's arithmetic, one element at a time in float */
                double bc1 = bias_corr ? 1.0 - pow(0.8, step) : 1.0;
                double bc2 = bias_corr ? 1.0 - pow(0.95, step) : 1.0;
                float b1 = 0.8f, b2 = 0.95f, eps = 1e-6f, decay = (float)(1.0 - lr[0] * (double)wd[0]);
                float step_size = (float)(lr[0] / bc1), inv = (float)(1.0 / sqrt(bc2));
                for (int64_t i = 0; i < n; i++) {
                    volatile float mi = b1 * m[i] + (1.0f - b1) * g[i];
                    volatile float vi = b2 * v[i] + (1.0f - b2) * g[i] * g[i];
                    m[i] = mi;
                    v[i] = vi;
                    if (bias_corr) {
                        volatile float den = sqrtf(vi) * inv + eps;
                        ref[i] = ref[i] * decay - step_size * mi / den;
                    } else {
                        volatile float den = sqrtf(vi) + eps;
                        ref[i] = ref[i] - lr[0] * (mi / den + wd[0] * ref[i]);
                    }
                }
            }
            ck_assert_msg(memcmp(w, ref, (size_t)n * sizeof *w) == 0,
                          "bias_correction %d, %d threads: AdamW differs from the scalar loop",
                          bias_corr, threads);
            vt->destroy(self);
            sm_params_free(p);
            free(ref);
            free(m);
            free(v);
        }
        sm_config_free(cfg);
    }
    omp_set_num_threads(omp_get_num_procs());
}
END_TEST

START_TEST(test_sgd_matches_torch)
{
    sm_config *cfg =
        section_cfg(job_yaml("optimizer: {optim_name: sgd, momentum: 0.9, nesterov: true}\n"));
    const sm_optimizer_vtbl *vt =
        (const sm_optimizer_vtbl *)sm_registry_find(reg, SM_KIND_OPTIMIZER, "sgd");
    sm_params *p = make_params();
    float *w = sm_params_data(p);
    double ref[22], buf[22] = {0};
    for (int i = 0; i < 22; i++) ref[i] = w[i] = (float)(0.05 * i);
    void *self = NULL;
    ck_assert_int_eq(vt->create(sm_cfg_get(sm_config_root(cfg), "optimizer"), p, &self, NULL), 0);
    const float lr[2] = {0.1f, 0.2f}, wd[2] = {0.01f, 0.0f};
    for (int step = 1; step <= 3; step++) {
        set_grads(p, step);
        vt->step(self, p, lr, wd, step);
        const float *g = sm_params_grads(p);
        for (int i = 0; i < 22; i++) {
            int t = i < 15 ? 0 : 1;
            buf[i] = step == 1 ? g[i] : 0.9 * buf[i] + g[i];
            double d = g[i] + 0.9 * buf[i];
            ref[i] = ref[i] * (1.0 - (double)lr[t] * wd[t]) - lr[t] * d;
        }
    }
    for (int i = 0; i < 22; i++)
        ck_assert_msg(fabs(w[i] - ref[i]) < 1e-5, "%d: %g vs %g", i, w[i], ref[i]);
    vt->destroy(self);
    sm_params_free(p);
    sm_config_free(cfg);
}
END_TEST

/* lr at a few steps for a 10-epoch run of 4 steps per epoch (T = 40, Tw = 8). */
static double lr_at(const char *lr_yaml, int64_t step)
{
    char extra[512];
    snprintf(extra, sizeof extra, "train_config: {epoch: 10}\nlr_schedule: %s\n", lr_yaml);
    sm_config *cfg = section_cfg(job_yaml(extra));
    const sm_cfg *sec = sm_cfg_get(sm_config_root(cfg), "lr_schedule");
    const sm_scheduler_vtbl *vt = (const sm_scheduler_vtbl *)sm_registry_find(
        reg, SM_KIND_SCHEDULER, sm_cfg_str(sec, "lr_type"));
    ck_assert_ptr_nonnull(vt);
    sm_schedule_opts o = {.steps_per_epoch = 4, .epochs = 10};
    void *self = NULL;
    ck_assert_int_eq(vt->create(sec, &o, &self, NULL), 0);
    double lr = vt->lr(self, step);
    vt->destroy(self);
    sm_config_free(cfg);
    return lr;
}

START_TEST(test_schedules)
{
    const char *simmim = "{lr_type: warmup_cosine_decay_simmim, base_lr: 1e-3, min_lr: 1e-5,"
                         " warmup_lr: 1e-6, warmup_epochs: 2}";
    /* warmup: linear from warmup_lr over Tw = 8 steps */
    ck_assert_double_eq_tol(lr_at(simmim, 0), 1e-6, 1e-15);
    ck_assert_double_eq_tol(lr_at(simmim, 4), 1e-6 + 4 * (1e-3 - 1e-6) / 8, 1e-15);
    /* then the cosine measured over the whole run: at t = 8 it is already below base */
    double c8 = 1e-5 + 0.5 * (1e-3 - 1e-5) * (1 + cos(M_PI * 8 / 40));
    ck_assert_double_eq_tol(lr_at(simmim, 8), c8, 1e-15);
    ck_assert_double_eq_tol(lr_at(simmim, 39),
                            1e-5 + 0.5 * (1e-3 - 1e-5) * (1 + cos(M_PI * 39 / 40)), 1e-15);
    ck_assert_double_eq_tol(lr_at(simmim, 1000), lr_at(simmim, 39), 1e-18);

    const char *v1 = "{lr_type: warmup_cosine_decay, base_lr: 1e-3, min_lr: 0, warmup_lr: 0,"
                     " warmup_epochs: 2}";
    ck_assert_double_eq_tol(lr_at(v1, 4), 1e-3 * 4 / 8, 1e-15);
    ck_assert_double_eq_tol(lr_at(v1, 8), 1e-3, 1e-15); /* the cosine starts after warmup */
    ck_assert_double_eq_tol(lr_at(v1, 24), 0.5e-3, 1e-15);

    const char *ms = "{lr_type: warmup_multistep_decay, base_lr: 1e-3, warmup_lr: 0,"
                     " warmup_epochs: 1, multi_epochs: [5, 8], factor: 10}";
    ck_assert_double_eq_tol(lr_at(ms, 2), 1e-3 * 2 / 4, 1e-15);
    ck_assert_double_eq_tol(lr_at(ms, 19), 1e-3, 1e-15);
    ck_assert_double_eq_tol(lr_at(ms, 20), 1e-4, 1e-15);
    ck_assert_double_eq_tol(lr_at(ms, 32), 1e-5, 1e-15);
}
END_TEST

/* RingMo's own example (lr_schedule.py __main__): base 0.001, 100 steps, warmup 20 from 2.5e-7,
 * min 2.5e-7: step 10 = 2.5e-7 + 10 * (0.001 - 2.5e-7) / 20, step 50 the cosine at 50/100. */
START_TEST(test_ringmo_example)
{
    char extra[512];
    snprintf(extra, sizeof extra,
             "train_config: {epoch: 100}\nlr_schedule: {lr_type: warmup_cosine_decay_simmim,"
             " base_lr: 0.001, min_lr: 2.5e-7, warmup_lr: 2.5e-7, warmup_epochs: 20}\n");
    sm_config *cfg = section_cfg(job_yaml(extra));
    const sm_cfg *sec = sm_cfg_get(sm_config_root(cfg), "lr_schedule");
    const sm_scheduler_vtbl *vt = (const sm_scheduler_vtbl *)sm_registry_find(
        reg, SM_KIND_SCHEDULER, "warmup_cosine_decay_simmim");
    sm_schedule_opts o = {.steps_per_epoch = 1, .epochs = 100};
    void *self = NULL;
    ck_assert_int_eq(vt->create(sec, &o, &self, NULL), 0);
    ck_assert_double_eq_tol(vt->lr(self, 10), 2.5e-7 + 10 * (0.001 - 2.5e-7) / 20, 1e-15);
    ck_assert_double_eq_tol(vt->lr(self, 50), 2.5e-7 + 0.5 * (0.001 - 2.5e-7), 1e-15);
    vt->destroy(self);
    sm_config_free(cfg);
}
END_TEST

static Suite *optim_suite(void)
{
    Suite *s = suite_create("optim");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_adamw_matches_torch);
    tcase_add_test(tc, test_adamw_bitwise_scalar);
    tcase_add_test(tc, test_sgd_matches_torch);
    tcase_add_test(tc, test_schedules);
    tcase_add_test(tc, test_ringmo_example);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return sm_test_run(optim_suite()); }
