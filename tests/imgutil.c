/* tests/imgutil.c - writers for test images with known pixels. */
#include "imgutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jpeglib.h>
#include <png.h>
#include <tiffio.h>

static void sm__jpeg_setup(struct jpeg_compress_struct *c, int w, int h, int channels,
                           int quality)
{
    c->image_width = (JDIMENSION)w;
    c->image_height = (JDIMENSION)h;
    c->input_components = channels;
    c->in_color_space = channels == 1 ? JCS_GRAYSCALE : channels == 4 ? JCS_CMYK : JCS_RGB;
    jpeg_set_defaults(c);
    jpeg_set_quality(c, quality, TRUE);
}

static void sm__jpeg_rows(struct jpeg_compress_struct *c, const uint8_t *px, int w, int channels)
{
    while (c->next_scanline < c->image_height) {
        JSAMPROW row = (JSAMPROW)(px + (size_t)c->next_scanline * w * channels);
        jpeg_write_scanlines(c, &row, 1);
    }
}

int sm_img_write_jpeg(const char *path, const uint8_t *px, int w, int h, int channels,
                      int quality, bool adobe, bool progressive)
{
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr e;
    c.err = jpeg_std_error(&e);
    jpeg_create_compress(&c);
    jpeg_stdio_dest(&c, f);
    sm__jpeg_setup(&c, w, h, channels, quality);
    if (channels == 4) c.write_Adobe_marker = adobe ? TRUE : FALSE;
    if (progressive) jpeg_simple_progression(&c);
    jpeg_start_compress(&c, TRUE);
    sm__jpeg_rows(&c, px, w, channels);
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    return fclose(f) == 0 ? 0 : -1;
}

int sm_img_encode_jpeg(const uint8_t *px, int w, int h, int channels, int quality,
                       uint8_t **out, size_t *len)
{
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr e;
    unsigned char *buf = NULL;
    unsigned long n = 0;
    c.err = jpeg_std_error(&e);
    jpeg_create_compress(&c);
    jpeg_mem_dest(&c, &buf, &n);
    sm__jpeg_setup(&c, w, h, channels, quality);
    jpeg_start_compress(&c, TRUE);
    sm__jpeg_rows(&c, px, w, channels);
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    *out = buf;
    *len = n;
    return 0;
}

static const uint8_t *next_trns;
static int next_n_trns;

void sm_img_png_trns(const uint8_t *alpha, int n)
{
    next_trns = alpha;
    next_n_trns = n;
}

int sm_img_write_png(const char *path, const void *px, int w, int h, int color_type, int bits,
                     const uint8_t *palette, int n_palette)
{
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        fclose(f);
        return -1;
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, bits, color_type, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (color_type == PNG_COLOR_TYPE_PALETTE) {
        png_color pal[256];
        for (int i = 0; i < n_palette; i++) {
            pal[i].red = palette[3 * i];
            pal[i].green = palette[3 * i + 1];
            pal[i].blue = palette[3 * i + 2];
        }
        png_set_PLTE(png, info, pal, n_palette);
        if (next_trns) png_set_tRNS(png, info, next_trns, next_n_trns, NULL);
        next_trns = NULL;
    }
    png_write_info(png, info);
    if (bits == 16) png_set_swap(png); /* native little-endian uint16 in, PNG big-endian out */
    int ch = color_type == PNG_COLOR_TYPE_GRAY || color_type == PNG_COLOR_TYPE_PALETTE ? 1
             : color_type == PNG_COLOR_TYPE_GRAY_ALPHA                               ? 2
             : color_type == PNG_COLOR_TYPE_RGB                                      ? 3
                                                                                     : 4;
    size_t rowbytes = (size_t)w * ch * (bits / 8);
    for (int y = 0; y < h; y++) png_write_row(png, (png_const_bytep)px + y * rowbytes);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return fclose(f) == 0 ? 0 : -1;
}

int sm_img_write_tiff(const char *path, const void *px, int w, int h, int spp, int bits,
                      int photometric, bool separate, bool tiled, bool lzw, bool extra_alpha)
{
    TIFF *t = TIFFOpen(path, "w");
    if (!t) return -1;
    TIFFSetField(t, TIFFTAG_IMAGEWIDTH, (uint32_t)w);
    TIFFSetField(t, TIFFTAG_IMAGELENGTH, (uint32_t)h);
    TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, (uint16_t)spp);
    TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, (uint16_t)bits);
    TIFFSetField(t, TIFFTAG_SAMPLEFORMAT, SAMPLEFORMAT_UINT);
    TIFFSetField(t, TIFFTAG_PHOTOMETRIC, (uint16_t)photometric);
    TIFFSetField(t, TIFFTAG_PLANARCONFIG, separate ? PLANARCONFIG_SEPARATE : PLANARCONFIG_CONTIG);
    TIFFSetField(t, TIFFTAG_COMPRESSION, lzw ? COMPRESSION_LZW : COMPRESSION_NONE);
    if (extra_alpha) {
        uint16_t ex[1] = {EXTRASAMPLE_UNASSALPHA};
        TIFFSetField(t, TIFFTAG_EXTRASAMPLES, (uint16_t)1, ex);
    }
    int bps = bits / 8, planes = separate ? spp : 1, per = separate ? 1 : spp;
    const uint8_t *src = px;
    size_t stride = (size_t)spp * bps;
    uint8_t *tmp = malloc((size_t)w * h * stride + 16 * 16 * stride);
    if (!tmp) {
        TIFFClose(t);
        return -1;
    }
    int rc = 0;
    if (tiled) {
        TIFFSetField(t, TIFFTAG_TILEWIDTH, 16u);
        TIFFSetField(t, TIFFTAG_TILELENGTH, 16u);
        for (int p = 0; p < planes; p++)
            for (int ty = 0; ty < h; ty += 16)
                for (int tx = 0; tx < w; tx += 16) {
                    memset(tmp, 0, 16 * 16 * stride);
                    for (int y = 0; y < 16 && ty + y < h; y++)
                        for (int x = 0; x < 16 && tx + x < w; x++)
                            for (int s = 0; s < per; s++)
                                memcpy(tmp + ((size_t)(y * 16 + x) * per + s) * bps,
                                       src + ((size_t)(ty + y) * w + tx + x) * stride +
                                           (size_t)(separate ? p : s) * bps,
                                       bps);
                    if (TIFFWriteTile(t, tmp, (uint32_t)tx, (uint32_t)ty, 0, (uint16_t)p) < 0) rc = -1;
                }
    } else {
        TIFFSetField(t, TIFFTAG_ROWSPERSTRIP, 2u);
        for (int p = 0; p < planes; p++)
            for (int y = 0; y < h; y++) {
                for (int x = 0; x < w; x++)
                    for (int s = 0; s < per; s++)
                        memcpy(tmp + ((size_t)x * per + s) * bps,
                               src + ((size_t)y * w + x) * stride + (size_t)(separate ? p : s) * bps, bps);
                if (TIFFWriteScanline(t, tmp, (uint32_t)y, (uint16_t)p) < 0) rc = -1;
            }
    }
    free(tmp);
    TIFFClose(t);
    return rc;
}

void sm_img_mkdirs(const char *root, const char *path)
{
    char p[4200];
    snprintf(p, sizeof p, "%s", path);
    size_t skip = strlen(root) < strlen(p) ? strlen(root) + 1 : 0;
    for (char *s = p + skip; (s = strchr(s, '/')); s++) {
        *s = '\0';
        mkdir(p, 0755);
        *s = '/';
    }
}

int sm_img_touch(const char *root, const char *rel)
{
    char p[4200];
    snprintf(p, sizeof p, "%s/%s", root, rel);
    sm_img_mkdirs(root, p);
    FILE *f = fopen(p, "wb");
    if (!f) return -1;
    fputc('x', f);
    return fclose(f) == 0 ? 0 : -1;
}
