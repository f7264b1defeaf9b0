/* simmim/image.h - images, decoders, transforms and the mask generator.
 *
 * An sm_image holds integer-valued samples as float32, row-major HWC, with a `max_value` that
 * says what full scale is (255 for 8-bit files, 65535 for 16-bit ones), so 8-bit RGB, 16-bit
 * and multi-band imagery share one path. The struct is caller-owned (_init/_deinit); its pixel
 * buffer is owned by the struct and reused by later calls that write into it.
 *
 *     sm_image im;
 *     sm_image_init(&im);
 *     if (sm_image_load("tile.tif", NULL, &im, NULL, &err) == 0) ...
 *     sm_image_deinit(&im);
 *
 * Decoders choose the format from the bytes (JPEG via libjpeg-turbo, PNG via libpng, TIFF via
 * libtiff), never from the file name. They check the pixel count against max_pixels (with
 * overflow-checked arithmetic) before allocating anything, turn decoder warnings (truncated
 * data, corrupt segments) into errors, and name the file and the reason in every error.
 * Natural channels after decoding: gray 1; gray+alpha 1 (alpha dropped); palette 3; RGB 3;
 * RGBA 3 (alpha dropped, not composited); CMYK/YCCK JPEG 3 (converted, Adobe inversion
 * handled); TIFF: all samples (bands) except an RGB image's alpha. EXIF orientation is ignored
 * (as torchvision does).
 *
 * Transforms follow PIL/torchvision/timm (spec §3, §8). For 8-bit images the resampling and
 * the RandAugment ops reproduce Pillow's integer arithmetic; 16-bit images use the same
 * formulas in double precision with values rounded to integers. Randomness comes from sm_rng.
 */
#ifndef SIMMIM_IMAGE_H
#define SIMMIM_IMAGE_H

#include "simmim/common.h"
#include "simmim/rng.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SM_MAX_BANDS 16                /* most bands an image or a pipeline may carry        */
#define SM_DEFAULT_MAX_PIXELS 89478485 /* Pillow's MAX_IMAGE_PIXELS                          */
#define SM_DEFAULT_MAX_SCANS 1000      /* progressive JPEG scans allowed                     */

typedef struct sm_image {
    int width, height, channels;
    float max_value; /* full scale of a sample: 255 (8-bit) or 65535 (16-bit)                   */
    float *data;     /* width*height*channels floats, HWC; owned                                */
    size_t cap;      /* floats allocated                                                        */
} sm_image;

/* Zeroes the struct (no allocation). */
SM_API void sm_image_init(sm_image *im);
/* Frees the pixels; the struct can be reused after sm_image_init. NULL-safe. */
SM_API void sm_image_deinit(sm_image *im);
/* Sets the shape and makes room for it (reusing the buffer when big enough). Contents are
 * undefined. Errors: SM_ERANGE (a dimension < 1, channels > SM_MAX_BANDS, or more than
 * max_pixels pixels; max_pixels <= 0 means SM_DEFAULT_MAX_PIXELS), SM_ENOMEM. */
SM_API int sm_image_reserve(sm_image *im, int width, int height, int channels, float max_value,
                            int64_t max_pixels, sm_error *err);

/* ---------------------------------------------------------------------------------------- */
/* Decoding                                                                                  */

typedef enum sm_image_format {
    SM_IMAGE_FORMAT_UNKNOWN = 0,
    SM_IMAGE_FORMAT_JPEG,
    SM_IMAGE_FORMAT_PNG,
    SM_IMAGE_FORMAT_TIFF,
    SM_IMAGE_FORMAT_RAW, /* pixels handed over by a dataset reader                            */
    SM_IMAGE_FORMAT_COUNT
} sm_image_format;

typedef struct sm_decode_opts {
    int64_t max_pixels; /* width*height limit checked before allocation; <= 0: default        */
    int max_scans;      /* progressive JPEG scan limit; <= 0: SM_DEFAULT_MAX_SCANS            */
} sm_decode_opts;

/* What a file holds, from its header. */
typedef struct sm_image_info {
    sm_image_format format;
    int width, height;
    int channels;      /* natural channels after decoding (see the top of this file)          */
    int bits;          /* bits per sample in the file: 1..16                                  */
    const char *color; /* "gray", "gray+alpha", "rgb", "rgba", "palette", "cmyk", "ycck",     */
                       /* "multiband" (static string)                                          */
} sm_image_info;

/* The format from the first bytes (JPEG FF D8 FF, PNG signature, TIFF/BigTIFF II/MM). */
SM_API sm_image_format sm_image_sniff(const void *buf, size_t len);
/* "jpeg", "png", "tiff", "raw", "unknown". */
SM_API const char *sm_image_format_name(sm_image_format f);

/* Decodes an encoded image. `name` (the file) is used in messages. opts may be NULL. On
 * success `out` holds the natural channels; info (may be NULL) describes the file. Errors:
 * SM_EFORMAT (not a decodable image, corrupt or truncated data; the text says which and quotes
 * the decoder), SM_EUNSUPPORTED (a format or mode we do not decode), SM_ERANGE (too many
 * pixels), SM_ENOMEM. On error `out` keeps its buffer but its contents are undefined. */
SM_API int sm_image_decode(const void *buf, size_t len, const char *name,
                           const sm_decode_opts *opts, sm_image *out, sm_image_info *info,
                           sm_error *err);
/* Reads only the header: format, size, channels, depth. Same errors as sm_image_decode except
 * that data errors past the header go unnoticed (see `simmimctl data --deep`). */
SM_API int sm_image_probe(const void *buf, size_t len, const char *name,
                          const sm_decode_opts *opts, sm_image_info *info, sm_error *err);
/* Reads a whole file into *buf (grown with realloc; *cap is its size). Errors: SM_EIO (with
 * strerror), SM_ERANGE (file over 2 GiB). */
SM_API int sm_file_read(const char *path, uint8_t **buf, size_t *len, size_t *cap,
                        sm_error *err);
/* sm_file_read + sm_image_decode. */
SM_API int sm_image_load(const char *path, const sm_decode_opts *opts, sm_image *out,
                         sm_image_info *info, sm_error *err);
/* Copies 8-bit HWC pixels (a reader's raw samples) into `out` (max_value 255). */
SM_API int sm_image_from_u8(sm_image *out, const uint8_t *pixels, int width, int height,
                            int channels, int64_t max_pixels, sm_error *err);

/* Converts `im` (in place) to `channels` channels. With n_bands > 0, picks those bands
 * (0-based, in order; n_bands must equal channels). Otherwise: equal counts are kept; gray is
 * replicated to any count; RGB becomes gray with Pillow's "L" weights (299/587/114); any other
 * mismatch is an SM_EUNSUPPORTED error that says to set `bands`. `name` is used in messages. */
SM_API int sm_image_convert(sm_image *im, int channels, const int *bands, int n_bands,
                            const char *name, sm_error *err);

/* Writes 8-bit RGB or gray pixels (HWC, channels 1 or 3) as a PNG file. Errors: SM_EIO. */
SM_API int sm_png_write(const char *path, const uint8_t *pixels, int width, int height,
                        int channels, sm_error *err);

/* ---------------------------------------------------------------------------------------- */
/* Geometric transforms                                                                       */

typedef enum sm_interp {
    SM_INTERP_NEAREST = 0,
    SM_INTERP_BILINEAR,
    SM_INTERP_BICUBIC,
    SM_INTERP_COUNT
} sm_interp;

/* Parses "nearest", "bilinear", "bicubic" (any case). Errors: SM_EINVAL. */
SM_API int sm_interp_parse(const char *s, sm_interp *out);

/* A pixel rectangle: columns [x, x+w), rows [y, y+h). */
typedef struct sm_rect {
    int x, y, w, h;
} sm_rect;

/* Resizes the region `box` of src to out_w x out_h into dst, as PIL's Image.crop(box).resize()
 * does: separable filters whose support grows with the downscaling factor (antialiasing),
 * horizontal pass first, 8-bit images in Pillow's 22-bit fixed point. The box must lie inside
 * src. dst must not alias src. Errors: SM_EINVAL (box), SM_ENOMEM. */
SM_API int sm_image_resize(const sm_image *src, sm_rect box, int out_w, int out_h,
                           sm_interp interp, sm_image *dst, sm_error *err);
/* Mirrors left-right in place. */
SM_API void sm_image_flip(sm_image *im);
/* torchvision RandomResizedCrop.get_params: up to 10 tries of area fraction U(scale_min,
 * scale_max) and log-uniform aspect ratio, then the centred fallback. */
SM_API sm_rect sm_random_resized_crop(int width, int height, double scale_min, double scale_max,
                                      double ratio_min, double ratio_max, sm_rng *r);

/* ---------------------------------------------------------------------------------------- */
/* RandAugment (timm's rand_augment_transform)                                                 */

typedef struct sm_randaug {
    int num_ops;           /* n: ops per image (2)                                              */
    double magnitude;      /* m (9)                                                             */
    double magnitude_std;  /* mstd (0.5)                                                        */
    double magnitude_max;  /* mmax (10)                                                         */
    double prob;           /* p: probability of each chosen op (0.5)                            */
    bool increasing;       /* inc1: the "increasing" op set                                     */
} sm_randaug;

/* Parses a timm string such as "rand-m9-mstd0.5-inc1" (sections m, n, mstd, mmax, inc, p).
 * Errors: SM_EINVAL naming the bad section. */
SM_API int sm_randaug_parse(const char *spec, sm_randaug *out, sm_error *err);
/* Applies RandAugment to im (any channel count). fill: per-channel fill value (in sample units)
 * for the geometric ops. tmp is scratch. Errors: SM_ENOMEM. */
SM_API int sm_randaug_apply(const sm_randaug *ra, sm_image *im, const float *fill,
                            sm_interp interp, sm_rng *r, sm_image *tmp, sm_error *err);

/* ---------------------------------------------------------------------------------------- */
/* Tensor-side transforms                                                                     */

/* out (C, H, W) = (im / max_value - mean[c]) / std[c]  (ToTensor + Normalize). */
SM_API void sm_image_normalize(const sm_image *im, const float *mean, const float *std,
                               float *out);

typedef enum sm_erase_mode { SM_ERASE_PIXEL = 0, SM_ERASE_RAND, SM_ERASE_CONST } sm_erase_mode;
/* timm RandomErasing on one normalised (C, H, W) image: with probability prob, `count` boxes
 * of area U(0.02, 1/3) and log-uniform aspect in [0.3, 1/0.3], 10 tries each; values N(0,1) per
 * element (pixel), per channel (rand) or 0 (const). */
SM_API void sm_random_erase(float *chw, int channels, int height, int width, double prob,
                            sm_erase_mode mode, int count, sm_rng *r);

/* timm Mixup/CutMix in batch mode on images (B, C, H, W) with hard labels (B) -> soft targets
 * (B, num_classes), label-smoothed (off = smoothing/K, on = 1 - smoothing + off). With
 * probability mix_prob the batch is mixed: CutMix with probability switch_prob (when both are
 * enabled), lambda ~ Beta(alpha, alpha), partner = the batch reversed. alpha <= 0 disables that
 * kind. B must be even. Returns the lambda used (1 when not mixed). */
SM_API double sm_mixup_apply(float *images, int batch, int channels, int height, int width,
                             const int *labels, int num_classes, double mixup_alpha,
                             double cutmix_alpha, double mix_prob, double switch_prob,
                             double smoothing, sm_rng *r, float *targets);

/* ---------------------------------------------------------------------------------------- */
/* Mask generator (spec §2; the official MaskGenerator)                                        */

typedef struct sm_mask_spec {
    int input_size;       /* S                                                                 */
    int mask_patch_size;  /* P_m (32)                                                          */
    int model_patch_size; /* p (ViT 16, Swin 4)                                                */
    double ratio;         /* mask ratio (0.6)                                                  */
} sm_mask_spec;

/* Checks S % P_m == 0, P_m % p == 0, 0 < ratio < 1. Errors: SM_EINVAL naming the values. */
SM_API int sm_mask_check(const sm_mask_spec *m, sm_error *err);
/* ceil((S/P_m)^2 * ratio): the number of masked mask-patches. */
SM_API int sm_mask_count(const sm_mask_spec *m);
/* S / p: the side of the mask grid. */
SM_API int sm_mask_side(const sm_mask_spec *m);
/* out (S/p, S/p), row-major: 1 = masked. Exactly sm_mask_count cells of P_m/p x P_m/p. */
SM_API void sm_mask_generate(const sm_mask_spec *m, sm_rng *r, float *out);

#ifdef __cplusplus
}
#endif
#endif /* SIMMIM_IMAGE_H */
