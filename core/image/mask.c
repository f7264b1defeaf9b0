/* core/image/mask.c - the SimMIM mask generator (spec §2), equal to the official
 * MaskGenerator: exactly ceil(ratio * (S/P_m)^2) of the P_m x P_m cells are masked, chosen as
 * the first entries of a uniform random permutation, and each cell is repeated P_m/p times in
 * both directions onto the model's patch grid. */
#include "image_internal.h"

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

/* out: (S/p, S/p) */
void sm_mask_generate(const sm_mask_spec *m, sm_rng *r, float *out)
{
    int cells_side = m->input_size / m->mask_patch_size, cells = cells_side * cells_side;
    int scale = m->mask_patch_size / m->model_patch_size, side = cells_side * scale;
    int count = sm_mask_count(m);
    int perm[4096];
    uint8_t cell[4096];
    SM__ASSERT(cells <= 4096);
    for (int i = 0; i < cells; i++) perm[i] = i, cell[i] = 0;
    /* first `count` entries of a Fisher-Yates permutation */
    for (int i = 0; i < count; i++) {
        int j = i + (int)sm_rng_below(r, (uint64_t)(cells - i));
        int t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
        cell[perm[i]] = 1;
    }
    for (int y = 0; y < side; y++)
        for (int x = 0; x < side; x++)
            out[y * side + x] = cell[(y / scale) * cells_side + x / scale];
}
