/* tests/imgutil.h - writers for test images with known pixels (libjpeg, libpng, libtiff), shared
 * by the data tests and bench/bench_data.c. All return 0 or -1. */
#ifndef SIMMIM_TEST_IMGUTIL_H
#define SIMMIM_TEST_IMGUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* channels 1 (gray), 3 (RGB) or 4 (CMYK, stored as given; adobe adds the Adobe marker, whose
 * readers treat the stored values as inverted). progressive: a progressive JPEG. */
int sm_img_write_jpeg(const char *path, const uint8_t *px, int w, int h, int channels,
                      int quality, bool adobe, bool progressive);
/* Encodes to memory (malloc'd *out). */
int sm_img_encode_jpeg(const uint8_t *px, int w, int h, int channels, int quality,
                       uint8_t **out, size_t *len);
/* color_type: PNG_COLOR_TYPE_* value; bits 8 or 16 (16-bit samples as native uint16 in px16).
 * For palette images px holds indices and palette holds n_palette RGB triples. */
/* The next palette PNG written gets a tRNS chunk with these n alpha values (borrowed). */
void sm_img_png_trns(const uint8_t *alpha, int n);
int sm_img_write_png(const char *path, const void *px, int w, int h, int color_type, int bits,
                     const uint8_t *palette, int n_palette);
/* TIFF: spp samples per pixel, bits 8 or 16 (px16 native), photometric PHOTOMETRIC_*,
 * separate planes or contiguous, tiled (16x16 tiles) or strips, LZW when lzw. extra_alpha marks
 * the last sample as unassociated alpha. */
int sm_img_write_tiff(const char *path, const void *px, int w, int h, int spp, int bits,
                      int photometric, bool separate, bool tiled, bool lzw, bool extra_alpha);

/* Writes a 1-byte file root/rel, creating the folders of rel. */
int sm_img_touch(const char *root, const char *rel);
/* Creates the folders of path below root (the part of path after root). */
void sm_img_mkdirs(const char *root, const char *path);

#endif
