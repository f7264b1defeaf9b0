/* core/data/mask.c - the SimMIM mask generator (spec §2), equal to the official
 * MaskGenerator: exactly ceil(ratio * (S/P_m)^2) of the P_m x P_m cells are masked, chosen as
 * the first entries of a uniform random permutation, and each cell is repeated P_m/p times in
 * both directions onto the model's patch grid. */
#include "data/data_internal.h"

#include <math.h>

int sm_mask_check(const sm_mask_spec *m, sm_error *err)
{
    if (m->input_size < 1 || m->mask_patch_size < 1 || m->model_patch_size < 1 ||
        m->input_size % m->mask_patch_size != 0 || m->mask_patch_size % m->model_patch_size != 0)
        return sm_error_set(err, SM_EINVAL, NULL, 0, 0, NULL,
                            "mask geometry: image_size %d must be a multiple of mask_patch_size "
                            "%d, itself a multiple of patch_size %d",
                            m->input_size, m->mask_patch_size, m->model_patch_size);
    if (!(m->ratio > 0.0 && m->ratio < 1.0))
        return sm_error_set(err, SM_EINVAL, NULL, 0, 0, NULL, "mask_ratio %g is not in (0, 1)",
                            m->ratio);
    return 0;
}

int sm_mask_count(const sm_mask_spec *m)
{
    int side = m->input_size / m->mask_patch_size;
    return (int)ceil((double)(side * side) * m->ratio);
}

int sm_mask_side(const sm_mask_spec *m) { return m->input_size / m->model_patch_size; }

/* out: (S/p, S/p). No scratch memory, whatever the number of cells: the chosen cells are
 * marked in out's first entries (Floyd's algorithm draws a uniform random subset of exactly
 * `count` cells), then spread onto the patch grid from the last entry backwards, which never
 * overwrites a mark still to be read (a cell's index is at most its first patch's index). */
void sm_mask_generate(const sm_mask_spec *m, sm_rng *r, float *out)
{
    int64_t cells_side = m->input_size / m->mask_patch_size, cells = cells_side * cells_side;
    int64_t scale = m->mask_patch_size / m->model_patch_size, side = cells_side * scale;
    int64_t count = sm_mask_count(m);
    for (int64_t i = 0; i < cells; i++) out[i] = 0.0f;
    for (int64_t j = cells - count; j < cells; j++) {
        int64_t t = (int64_t)sm_rng_below(r, (uint64_t)j + 1);
        if (out[t] != 0.0f)
            out[j] = 1.0f;
        else
            out[t] = 1.0f;
    }
    for (int64_t k = side * side - 1; k >= 0; k--) {
        int64_t y = k / side, x = k % side;
        out[k] = out[(y / scale) * cells_side + x / scale];
    }
}
