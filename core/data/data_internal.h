/* core/data/data_internal.h - private helpers shared by the image, decoder and loader files. */
#ifndef SIMMIM_IMAGE_INTERNAL_H
#define SIMMIM_IMAGE_INTERNAL_H

#include "base/internal.h"
#include "simmim/data.h"
#include "simmim/image.h"
#include "simmim/loader.h"

/* One decoder: header only when out == NULL. Each fills info and, for a full decode, out. */
int sm__jpeg_decode(const uint8_t *buf, size_t len, const char *name, const sm_decode_opts *o,
                    sm_image *out, sm_image_info *info, sm_error *err);
int sm__png_decode(const uint8_t *buf, size_t len, const char *name, const sm_decode_opts *o,
                   sm_image *out, sm_image_info *info, sm_error *err);
int sm__tiff_decode(const uint8_t *buf, size_t len, const char *name, const sm_decode_opts *o,
                    sm_image *out, sm_image_info *info, sm_error *err);

/* Checks w, h >= 1 and w*h <= max_pixels (default when <= 0) without overflow. */
int sm__pixels_check(int64_t w, int64_t h, int64_t max_pixels, const char *name,
                     sm_error *err);

/* Rounds to the nearest integer and clamps to [0, hi]. */
static inline float sm__clampf(double v, float hi)
{
    if (!(v > 0.0)) return 0.0f;
    if (v >= hi) return hi;
    return (float)(int64_t)(v + 0.5);
}

/* Random-stream purposes of the pipeline (sm_rng_init's last key). */
enum {
    SM__RNG_ORDER = 0x6f72,
    SM__RNG_CROP,
    SM__RNG_FLIP,
    SM__RNG_AUGMENT,
    SM__RNG_ERASE,
    SM__RNG_MASK,
    SM__RNG_MIXUP
};

#endif
