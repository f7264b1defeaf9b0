/* tests/check_transforms.c - resampling, crops, flips, RandAugment, random erasing, Mixup/CutMix
 * and the per-sample pipelines. Expected values are derived by hand from the PIL/torchvision/timm
 * definitions (spec §3, §8); during development the ops were also compared with Pillow 9.4 and
 * matched bit for bit on 8-bit images. */
#include "testutil.h"

#include <math.h>
#include <string.h>

static void make(sm_image *im, int w, int h, int c, float maxv)
{
    sm_image_init(im);
    ck_assert_int_eq(sm_image_reserve(im, w, h, c, maxv, 0, NULL), 0);
}

START_TEST(test_resize_known_values)
{
    sm_image a, b;
    make(&a, 2, 1, 1, 255.0f);
    sm_image_init(&b);
    a.data[0] = 10, a.data[1] = 21;
    /* 2 -> 1 bilinear: support 2, taps at distance 0.5 with equal weight: (10 + 21) / 2 = 15.5
     * rounded half up in fixed point -> 16 */
    ck_assert_int_eq(sm_image_resize(&a, (sm_rect){0, 0, 2, 1}, 1, 1, SM_INTERP_BILINEAR, &b, NULL), 0);
    ck_assert_float_eq(b.data[0], 16.0f);
    /* 1 -> 3 upsampling replicates a single sample */
    ck_assert_int_eq(sm_image_resize(&a, (sm_rect){1, 0, 1, 1}, 3, 2, SM_INTERP_BICUBIC, &b, NULL), 0);
    ck_assert_int_eq(b.width, 3);
    ck_assert_int_eq(b.height, 2);
    for (int i = 0; i < 6; i++) ck_assert_float_eq(b.data[i], 21.0f);
    /* 4 -> 2 bilinear on a ramp 0, 100, 200, 250: output 0 averages taps 0..2 with weights
     * 3/8, 3/8... computed: centre 1.0, support 2, taps 0,1,2 weights 0.75,0.75,0.25 (sum 1.75)
     * -> (0*0.75 + 100*0.75 + 200*0.25) / 1.75 = 71.43 -> 71 */
    sm_image r;
    make(&r, 4, 1, 1, 255.0f);
    float ramp[4] = {0, 100, 200, 250};
    memcpy(r.data, ramp, sizeof ramp);
    ck_assert_int_eq(sm_image_resize(&r, (sm_rect){0, 0, 4, 1}, 2, 1, SM_INTERP_BILINEAR, &b, NULL), 0);
    ck_assert_float_eq(b.data[0], 71.0f);
    /* output 1: centre 3.0, taps 1..3 weights 0.25, 0.75, 0.75 -> (25 + 150 + 187.5)/1.75 = 207.14 */
    ck_assert_float_eq(b.data[1], 207.0f);
    /* a box outside the image is refused */
    sm_error e;
    sm_error_clear(&e);
    ck_assert_int_eq(sm_image_resize(&r, (sm_rect){2, 0, 3, 1}, 2, 1, SM_INTERP_BILINEAR, &b, &e), SM_EINVAL);
    sm_image_deinit(&a);
    sm_image_deinit(&b);
    sm_image_deinit(&r);
}
END_TEST

START_TEST(test_resize_properties)
{
    sm_image a, b;
    make(&a, 37, 29, 3, 255.0f);
    sm_image_init(&b);
    for (size_t i = 0; i < 37 * 29 * 3; i++) a.data[i] = (float)((i * 37) % 256);
    /* same size = identity, for both filters */
    for (int f = SM_INTERP_BILINEAR; f <= SM_INTERP_BICUBIC; f++) {
        ck_assert_int_eq(sm_image_resize(&a, (sm_rect){0, 0, 37, 29}, 37, 29, f, &b, NULL), 0);
        for (size_t i = 0; i < 37 * 29 * 3; i++) ck_assert_float_eq(b.data[i], a.data[i]);
    }
    /* a constant image stays constant at any scale; values stay integers in range */
    for (size_t i = 0; i < 37 * 29 * 3; i++) a.data[i] = 123.0f;
    ck_assert_int_eq(sm_image_resize(&a, (sm_rect){3, 2, 20, 25}, 224, 224, SM_INTERP_BICUBIC, &b, NULL), 0);
    for (size_t i = 0; i < 224 * 224 * 3; i++) ck_assert_float_eq(b.data[i], 123.0f);
    /* 16-bit: same geometry, double precision, values clipped to 65535 */
    sm_image c;
    make(&c, 8, 8, 1, 65535.0f);
    for (int i = 0; i < 64; i++) c.data[i] = (i % 2) ? 65535.0f : 0.0f;
    ck_assert_int_eq(sm_image_resize(&c, (sm_rect){0, 0, 8, 8}, 21, 5, SM_INTERP_BICUBIC, &b, NULL), 0);
    for (int i = 0; i < 21 * 5; i++) {
        ck_assert(b.data[i] >= 0.0f && b.data[i] <= 65535.0f);
        ck_assert_float_eq(b.data[i], floorf(b.data[i]));
    }
    sm_image_deinit(&a);
    sm_image_deinit(&b);
    sm_image_deinit(&c);
}
END_TEST

START_TEST(test_flip)
{
    sm_image a;
    make(&a, 3, 2, 2, 255.0f);
    for (int i = 0; i < 12; i++) a.data[i] = (float)i;
    sm_image_flip(&a);
    float want[12] = {4, 5, 2, 3, 0, 1, 10, 11, 8, 9, 6, 7};
    for (int i = 0; i < 12; i++) ck_assert_float_eq(a.data[i], want[i]);
    sm_image_deinit(&a);
}
END_TEST

START_TEST(test_random_resized_crop)
{
    sm_rng r;
    for (int k = 0; k < 2000; k++) {
        sm_rng_init(&r, 7, 0, (uint64_t)k, 1);
        int W = 50 + k % 300, H = 40 + (k * 7) % 250;
        sm_rect c = sm_random_resized_crop(W, H, 0.08, 1.0, 3.0 / 4.0, 4.0 / 3.0, &r);
        ck_assert(c.w >= 1 && c.h >= 1 && c.x >= 0 && c.y >= 0);
        ck_assert(c.x + c.w <= W && c.y + c.h <= H);
    }
    /* a very wide image always falls back to the centred crop of ratio 4/3 */
    sm_rng_init(&r, 1, 2, 3, 4);
    sm_rect c = sm_random_resized_crop(1000, 10, 0.67, 1.0, 3.0 / 4.0, 4.0 / 3.0, &r);
    ck_assert_int_eq(c.h, 10);
    ck_assert_int_eq(c.w, 13);
    ck_assert_int_eq(c.x, (1000 - 13) / 2);
    ck_assert_int_eq(c.y, 0);
    /* area within the scale range on a square image when the first try succeeds */
    double amin = 1e9, amax = 0;
    for (int k = 0; k < 3000; k++) {
        sm_rng_init(&r, 3, 0, (uint64_t)k, 1);
        sm_rect q = sm_random_resized_crop(200, 200, 0.67, 1.0, 3.0 / 4.0, 4.0 / 3.0, &r);
        double a = (double)q.w * q.h / 40000.0;
        amin = fmin(amin, a);
        amax = fmax(amax, a);
    }
    ck_assert_msg(amin > 0.64 && amax <= 1.0, "area range %g..%g", amin, amax);
}
END_TEST

START_TEST(test_randaug_parse)
{
    sm_randaug ra;
    ck_assert_int_eq(sm_randaug_parse("rand-m9-mstd0.5-inc1", &ra, NULL), 0);
    ck_assert_int_eq(ra.num_ops, 2);
    ck_assert(ra.magnitude == 9.0 && ra.magnitude_std == 0.5 && ra.increasing && ra.prob == 0.5);
    ck_assert_int_eq(sm_randaug_parse("rand-n3-m5", &ra, NULL), 0);
    ck_assert_int_eq(ra.num_ops, 3);
    ck_assert(!ra.increasing);
    sm_error e;
    sm_error_clear(&e);
    ck_assert_int_eq(sm_randaug_parse("rand-m9-w0", &ra, &e), SM_EINVAL);
    ck_assert_msg(strstr(e.text, "'w'"), "%s", e.text);
    ck_assert_int_eq(sm_randaug_parse("augmix-m5", &ra, NULL), SM_EINVAL);
    ck_assert_int_eq(sm_randaug_parse("rand-mx", &ra, NULL), SM_EINVAL);
}
END_TEST

START_TEST(test_randaug_apply)
{
    sm_randaug ra;
    sm_randaug_parse("rand-m9-mstd0.5-inc1", &ra, NULL);
    sm_image a, b, t;
    make(&a, 24, 20, 3, 255.0f);
    make(&b, 24, 20, 3, 255.0f);
    sm_image_init(&t);
    float fill[3] = {124, 116, 104};
    int changed = 0;
    for (int k = 0; k < 60; k++) {
        for (int i = 0; i < 24 * 20 * 3; i++) a.data[i] = b.data[i] = (float)((i * 13 + k) % 256);
        sm_rng r1, r2;
        sm_rng_init(&r1, 11, 0, (uint64_t)k, 3);
        sm_rng_init(&r2, 11, 0, (uint64_t)k, 3);
        ck_assert_int_eq(sm_randaug_apply(&ra, &a, fill, SM_INTERP_BICUBIC, &r1, &t, NULL), 0);
        ck_assert_int_eq(sm_randaug_apply(&ra, &b, fill, SM_INTERP_BICUBIC, &r2, &t, NULL), 0);
        bool diff = false;
        for (int i = 0; i < 24 * 20 * 3; i++) {
            ck_assert_float_eq(a.data[i], b.data[i]); /* same key, same result */
            ck_assert(a.data[i] >= 0 && a.data[i] <= 255 && a.data[i] == floorf(a.data[i]));
            diff |= a.data[i] != (float)((i * 13 + k) % 256);
        }
        changed += diff;
    }
    /* 2 ops at p 0.5: an image is left untouched with probability 1/4 (plus no-op draws) */
    ck_assert_msg(changed > 25 && changed < 60, "%d of 60 images changed", changed);
    sm_image_deinit(&a);
    sm_image_deinit(&b);
    sm_image_deinit(&t);
}
END_TEST

START_TEST(test_normalize)
{
    sm_image a;
    make(&a, 2, 1, 3, 255.0f);
    float v[6] = {0, 255, 51, 102, 153, 204};
    memcpy(a.data, v, sizeof v);
    float mean[3] = {0.485f, 0.456f, 0.406f}, std[3] = {0.229f, 0.224f, 0.225f}, out[6];
    sm_image_normalize(&a, mean, std, out);
    /* CHW: out[c*2 + x] */
    ck_assert_float_eq_tol(out[0], (0.0f - 0.485f) / 0.229f, 1e-6f);
    ck_assert_float_eq_tol(out[1], (0.4f - 0.485f) / 0.229f, 1e-6f);
    ck_assert_float_eq_tol(out[2], (1.0f - 0.456f) / 0.224f, 1e-6f);
    ck_assert_float_eq_tol(out[5], (0.8f - 0.406f) / 0.225f, 1e-6f);
    sm_image_deinit(&a);
}
END_TEST

START_TEST(test_random_erase)
{
    int C = 3, H = 32, W = 40;
    float *x = malloc(sizeof(float) * C * H * W);
    int erased_imgs = 0;
    for (int k = 0; k < 400; k++) {
        for (int i = 0; i < C * H * W; i++) x[i] = 1000.0f;
        sm_rng r;
        sm_rng_init(&r, 2, 0, (uint64_t)k, 4);
        sm_random_erase(x, C, H, W, 0.25, SM_ERASE_PIXEL, 1, &r);
        int n = 0;
        for (int i = 0; i < C * H * W; i++) n += x[i] != 1000.0f;
        if (n) {
            erased_imgs++;
            /* one box: same count per channel, area within [0.02, 1/3] of the image (rounding) */
            ck_assert_int_eq(n % C, 0);
            double frac = (double)(n / C) / (H * W);
            ck_assert_msg(frac > 0.012 && frac < 0.36, "erased fraction %g", frac);
        }
    }
    ck_assert_msg(erased_imgs > 60 && erased_imgs < 140, "%d of 400 erased (p 0.25)", erased_imgs);
    free(x);
}
END_TEST

START_TEST(test_mixup_cutmix)
{
    int B = 4, C = 1, H = 8, W = 8, K = 5;
    float *x = malloc(sizeof(float) * B * C * H * W), t[4 * 5];
    int labels[4] = {0, 1, 2, 3};
    bool saw_mix = false, saw_cut = false;
    for (int k = 0; k < 200 && !(saw_mix && saw_cut); k++) {
        for (int b = 0; b < B; b++)
            for (int i = 0; i < H * W; i++) x[b * H * W + i] = (float)b;
        sm_rng r;
        sm_rng_init(&r, 9, 0, (uint64_t)k, 6);
        double lam = sm_mixup_apply(x, B, C, H, W, labels, K, 0.8, 1.0, 1.0, 0.5, 0.1, &r, t);
        ck_assert(lam >= 0.0 && lam <= 1.0);
        /* targets: rows sum to 1; label smoothing off = 0.1/5 */
        for (int b = 0; b < B; b++) {
            double s = 0;
            for (int j = 0; j < K; j++) s += t[b * K + j];
            ck_assert_float_eq_tol(s, 1.0, 1e-5);
            ck_assert_float_eq_tol(t[b * K + 4], 0.02f, 1e-6f); /* class 4 is nobody's */
            double on = 1.0 - 0.1 + 0.02;
            ck_assert_float_eq_tol(t[b * K + labels[b]], lam * on + (1 - lam) * 0.02, 1e-5);
            ck_assert_float_eq_tol(t[b * K + labels[B - 1 - b]], (1 - lam) * on + lam * 0.02, 1e-5);
        }
        /* pixels of sample 0 are either its own (0), its partner's (3) or the mixture */
        int own = 0, partner = 0, mixed = 0;
        for (int i = 0; i < H * W; i++) {
            float v = x[i];
            own += v == 0.0f;
            partner += v == 3.0f;
            mixed += v != 0.0f && v != 3.0f;
        }
        if (mixed) {
            saw_mix = true;
            ck_assert_int_eq(mixed, H * W);
            ck_assert_float_eq_tol(x[0], (float)(3.0 * (1 - lam)), 1e-5f);
        } else if (partner) {
            saw_cut = true;
            /* the corrected lambda is the kept area */
            ck_assert_float_eq_tol(lam, (double)own / (H * W), 1e-9);
        }
    }
    ck_assert(saw_mix && saw_cut);
    free(x);
}
END_TEST

START_TEST(test_pipeline_deterministic)
{
    sm_pipeline p;
    sm_pipeline_defaults(&p, SM_PIPELINE_FINETUNE, 32);
    sm_image a, b, t;
    make(&a, 50, 40, 3, 255.0f);
    make(&b, 50, 40, 3, 255.0f);
    sm_image_init(&t);
    float *o1 = malloc(sizeof(float) * 3 * 32 * 32), *o2 = malloc(sizeof(float) * 3 * 32 * 32);
    for (int i = 0; i < 50 * 40 * 3; i++) a.data[i] = b.data[i] = (float)(i % 251);
    ck_assert_int_eq(sm_pipeline_apply(&p, &a, "x", 5, 2, 17, o1, NULL, &t, NULL), 0);
    ck_assert_int_eq(sm_pipeline_apply(&p, &b, "x", 5, 2, 17, o2, NULL, &t, NULL), 0);
    ck_assert_mem_eq(o1, o2, sizeof(float) * 3 * 32 * 32);
    for (int i = 0; i < 50 * 40 * 3; i++) b.data[i] = (float)(i % 251);
    sm_image_reserve(&b, 50, 40, 3, 255.0f, 0, NULL);
    ck_assert_int_eq(sm_pipeline_apply(&p, &b, "x", 5, 3, 17, o2, NULL, &t, NULL), 0); /* other epoch */
    ck_assert(memcmp(o1, o2, sizeof(float) * 3 * 32 * 32) != 0);

    /* eval: resize shorter side to floor(32/0.875) = 36, centre crop 32, no randomness */
    sm_pipeline_defaults(&p, SM_PIPELINE_EVAL, 32);
    sm_image_deinit(&a);
    make(&a, 72, 36, 1, 255.0f);
    for (int y = 0; y < 36; y++)
        for (int x = 0; x < 72; x++) a.data[y * 72 + x] = (float)(x < 36 ? 0 : 255);
    p.channels = 1;
    p.mean[0] = 0.0f, p.std[0] = 1.0f;
    ck_assert_int_eq(sm_pipeline_apply(&p, &a, "x", 1, 0, 0, o1, NULL, &t, NULL), 0);
    /* 72x36 is already at the size: the crop is columns 20..51, rows 2..33 -> edge at column 16 */
    ck_assert_float_eq(o1[0 * 32 + 0], 0.0f);
    ck_assert_float_eq(o1[5 * 32 + 15], 0.0f);
    ck_assert_float_eq(o1[5 * 32 + 16], 1.0f);
    ck_assert_float_eq(o1[31 * 32 + 31], 1.0f);
    free(o1);
    free(o2);
    sm_image_deinit(&a);
    sm_image_deinit(&b);
    sm_image_deinit(&t);
}
END_TEST

START_TEST(test_pipeline_check)
{
    sm_pipeline p;
    sm_pipeline_defaults(&p, SM_PIPELINE_PRETRAIN, 224);
    ck_assert_int_eq(sm_pipeline_check(&p, NULL), 0);
    p.std[1] = 0.0f; /* a band with std 0 would make NaN */
    sm_error e;
    sm_error_clear(&e);
    ck_assert_int_eq(sm_pipeline_check(&p, &e), SM_ECONFIG);
    ck_assert_msg(strstr(e.text, "std"), "%s", e.text);
    sm_pipeline_defaults(&p, SM_PIPELINE_PRETRAIN, 200); /* 200 % 32 != 0 */
    ck_assert_int_eq(sm_pipeline_check(&p, NULL), SM_EINVAL);
    sm_pipeline_defaults(&p, SM_PIPELINE_PRETRAIN, 224);
    p.n_bands = 2;
    ck_assert_int_eq(sm_pipeline_check(&p, NULL), SM_ECONFIG);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("transforms");
    TCase *tc = tcase_create("transforms");
    tcase_add_test(tc, test_resize_known_values);
    tcase_add_test(tc, test_resize_properties);
    tcase_add_test(tc, test_flip);
    tcase_add_test(tc, test_random_resized_crop);
    tcase_add_test(tc, test_randaug_parse);
    tcase_add_test(tc, test_randaug_apply);
    tcase_add_test(tc, test_normalize);
    tcase_add_test(tc, test_random_erase);
    tcase_add_test(tc, test_mixup_cutmix);
    tcase_add_test(tc, test_pipeline_deterministic);
    tcase_add_test(tc, test_pipeline_check);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return sm_test_run(suite()); }
