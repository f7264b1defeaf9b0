/* tests/check_mask.c - the mask generator equals the official MaskGenerator (spec §2): exactly
 * ceil(ratio * cells) masked cells, each a full P_m/p x P_m/p block on the patch grid. */
#include "testutil.h"

#include <string.h>

static void check_structure(const sm_mask_spec *m, const float *mask)
{
    int side = sm_mask_side(m), scale = m->mask_patch_size / m->model_patch_size;
    int cells_side = side / scale, masked = 0, bad = 0;
    for (int cy = 0; cy < cells_side; cy++)
        for (int cx = 0; cx < cells_side; cx++) {
            float v = mask[(cy * scale) * side + cx * scale];
            bad += v != 0.0f && v != 1.0f;
            for (int y = 0; y < scale; y++) /* the whole block has the cell's value */
                for (int x = 0; x < scale; x++)
                    bad += mask[(cy * scale + y) * side + cx * scale + x] != v;
            masked += v == 1.0f;
        }
    ck_assert_int_eq(bad, 0);
    ck_assert_int_eq(masked, sm_mask_count(m));
}

START_TEST(test_counts)
{
    sm_mask_spec vit224 = {224, 32, 16, 0.6}, swin192 = {192, 32, 4, 0.6}, swin224 = {224, 32, 4, 0.6};
    ck_assert_int_eq(sm_mask_count(&vit224), 30);  /* ceil(49 * 0.6) = ceil(29.4) */
    ck_assert_int_eq(sm_mask_count(&swin192), 22); /* ceil(36 * 0.6) = ceil(21.6) */
    ck_assert_int_eq(sm_mask_side(&vit224), 14);
    ck_assert_int_eq(sm_mask_side(&swin192), 48);
    ck_assert_int_eq(sm_mask_side(&swin224), 56);
    sm_mask_spec half = {192, 32, 16, 0.5};
    ck_assert_int_eq(sm_mask_count(&half), 18); /* exact products are not rounded up */
}
END_TEST

START_TEST(test_structure_and_uniformity)
{
    sm_mask_spec specs[3] = {{224, 32, 16, 0.6}, {192, 32, 4, 0.6}, {96, 32, 8, 0.3}};
    for (int s = 0; s < 3; s++) {
        int side = sm_mask_side(&specs[s]);
        float *m = malloc(sizeof(float) * side * side);
        int cells = (specs[s].input_size / 32) * (specs[s].input_size / 32);
        int hits[64] = {0};
        int trials = 2000;
        for (int k = 0; k < trials; k++) {
            sm_rng r;
            sm_rng_init(&r, 0, 0, (uint64_t)k, 5);
            sm_mask_generate(&specs[s], &r, m);
            check_structure(&specs[s], m);
            int scale = 32 / specs[s].model_patch_size;
            for (int c = 0; c < cells; c++) {
                int cs = specs[s].input_size / 32;
                hits[c] += m[(c / cs) * scale * side + (c % cs) * scale] == 1.0f;
            }
        }
        /* every cell is masked with probability count/cells (binomial, 2000 trials) */
        double p = (double)sm_mask_count(&specs[s]) / cells;
        for (int c = 0; c < cells; c++)
            ck_assert_msg(hits[c] > trials * p - 150 && hits[c] < trials * p + 150,
                          "cell %d masked %d times, expected about %.0f", c, hits[c], trials * p);
        free(m);
    }
}
END_TEST

START_TEST(test_keyed)
{
    sm_mask_spec m = {224, 32, 16, 0.6};
    float a[196], b[196];
    sm_rng r;
    sm_rng_init(&r, 1, 2, 3, 5);
    sm_mask_generate(&m, &r, a);
    sm_rng_init(&r, 1, 2, 3, 5);
    sm_mask_generate(&m, &r, b);
    ck_assert_mem_eq(a, b, sizeof a);
    sm_rng_init(&r, 1, 2, 4, 5);
    sm_mask_generate(&m, &r, b);
    ck_assert(memcmp(a, b, sizeof a) != 0);
}
END_TEST

START_TEST(test_check)
{
    sm_error e;
    sm_error_clear(&e);
    sm_mask_spec bad = {200, 32, 16, 0.6};
    ck_assert_int_eq(sm_mask_check(&bad, &e), SM_EINVAL);
    ck_assert_msg(strstr(e.text, "200") && strstr(e.text, "32"), "%s", e.text);
    sm_mask_spec bad2 = {192, 32, 12, 0.6};
    ck_assert_int_eq(sm_mask_check(&bad2, NULL), SM_EINVAL);
    sm_mask_spec bad3 = {192, 32, 4, 1.5};
    ck_assert_int_eq(sm_mask_check(&bad3, NULL), SM_EINVAL);
    sm_mask_spec ok = {192, 32, 4, 0.6};
    ck_assert_int_eq(sm_mask_check(&ok, NULL), 0);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("mask");
    TCase *tc = tcase_create("mask");
    tcase_add_test(tc, test_counts);
    tcase_add_test(tc, test_structure_and_uniformity);
    tcase_add_test(tc, test_keyed);
    tcase_add_test(tc, test_check);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return sm_test_run(suite()); }
