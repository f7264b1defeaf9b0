/* core/data/png.c - PNG decoding and writing with libpng. Reads through a length-checked
 * memory callback, checks the pixel count before allocating, keeps 16-bit samples (max_value
 * 65535: scaled, never truncated to the high byte), expands palette and low-bit gray, drops
 * alpha. Ancillary chunks (text, colour profiles, gamma...) are skipped; any remaining libpng
 * warning is an error. */
#include "data/data_internal.h"

#include <errno.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct sm__png_ctx {
    const uint8_t *buf;
    size_t len, pos;
    char msg[256];
} sm__png_ctx;

static void sm__png_read(png_structp png, png_bytep dst, size_t n)
{
    sm__png_ctx *c = png_get_io_ptr(png);
    if (n > c->len - c->pos) png_error(png, "truncated PNG data (read past the end of the file)");
    memcpy(dst, c->buf + c->pos, n);
    c->pos += n;
}

static void sm__png_error(png_structp png, png_const_charp msg)
{
    sm__png_ctx *c = png_get_error_ptr(png);
    sm__text_fit(c->msg, sizeof c->msg, msg);
    png_longjmp(png, 1);
}

static void sm__png_warning(png_structp png, png_const_charp msg)
{
    sm__png_error(png, msg);
}

int sm__png_decode(const uint8_t *buf, size_t len, const char *name, const sm_decode_opts *o,
                   sm_image *out, sm_image_info *info, sm_error *err)
{
    sm__png_ctx ctx = {buf, len, 0, ""};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &ctx, sm__png_error,
                                             sm__png_warning);
    if (!png) return sm_error_set(err, SM_ENOMEM, name, 0, 0, NULL, "out of memory");
    png_infop pi = png_create_info_struct(png);
    uint8_t *volatile raw = NULL;
    png_bytep *volatile rows = NULL;
    volatile int rc = 0;
    if (!pi) {
        png_destroy_read_struct(&png, NULL, NULL);
        return sm_error_set(err, SM_ENOMEM, name, 0, 0, NULL, "out of memory");
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &pi, NULL);
        free(raw);
        free(rows);
        if (rc) return rc;
        return sm_error_set(err, SM_EFORMAT, name, 0, 0, NULL, "corrupt PNG: %s", ctx.msg);
    }
    png_set_read_fn(png, &ctx, sm__png_read);
    png_set_keep_unknown_chunks(png, PNG_HANDLE_CHUNK_NEVER, NULL, -1);
    png_set_crc_action(png, PNG_CRC_DEFAULT, PNG_CRC_DEFAULT);
    png_read_info(png, pi);
    png_uint_32 w, h;
    int depth, ctype, interlace;
    png_get_IHDR(png, pi, &w, &h, &depth, &ctype, &interlace, NULL, NULL);
    info->format = SM_IMAGE_FORMAT_PNG;
    info->width = (int)w;
    info->height = (int)h;
    info->bits = depth;
    switch (ctype) {
    case PNG_COLOR_TYPE_GRAY: info->channels = 1; info->color = "gray"; break;
    case PNG_COLOR_TYPE_GRAY_ALPHA: info->channels = 1; info->color = "gray+alpha"; break;
    case PNG_COLOR_TYPE_PALETTE: info->channels = 3; info->color = "palette"; break;
    case PNG_COLOR_TYPE_RGB: info->channels = 3; info->color = "rgb"; break;
    case PNG_COLOR_TYPE_RGB_ALPHA: info->channels = 3; info->color = "rgba"; break;
    default:
        rc = sm_error_set(err, SM_EUNSUPPORTED, name, 0, 0, NULL, "PNG color type %d", ctype);
        png_longjmp(png, 1);
    }
    rc = sm__pixels_check(w, h, o->max_pixels, name, err);
    if (rc || !out) {
        png_destroy_read_struct(&png, &pi, NULL);
        return rc;
    }
    if (ctype == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (ctype == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    /* alpha is dropped: an alpha channel, or a tRNS chunk (which the palette or gray expansion
     * would turn into one) */
    if ((ctype & PNG_COLOR_MASK_ALPHA) || png_get_valid(png, pi, PNG_INFO_tRNS))
        png_set_strip_alpha(png);
    if (interlace != PNG_INTERLACE_NONE) png_set_interlace_handling(png);
    png_read_update_info(png, pi);
    size_t rowbytes = png_get_rowbytes(png, pi);
    int nc = png_get_channels(png, pi), bits = png_get_bit_depth(png, pi);
    if (nc != info->channels || (bits != 8 && bits != 16) ||
        rowbytes != (size_t)w * nc * (bits / 8)) {
        rc = sm_error_set(err, SM_EUNSUPPORTED, name, 0, 0, NULL,
                          "unsupported PNG layout after expansion (%d channels, %d bits)", nc, bits);
        png_longjmp(png, 1);
    }
    rc = sm_image_reserve(out, (int)w, (int)h, nc, bits == 16 ? 65535.0f : 255.0f, o->max_pixels,
                          err);
    if (rc) png_longjmp(png, 1);
    raw = malloc(rowbytes * h);
    rows = malloc(sizeof(png_bytep) * h);
    if (!raw || !rows) {
        rc = sm_error_set(err, SM_ENOMEM, name, 0, 0, NULL, "out of memory");
        png_longjmp(png, 1);
    }
    for (png_uint_32 y = 0; y < h; y++) rows[y] = raw + y * rowbytes;
    png_read_image(png, rows);
    png_read_end(png, NULL);
    size_t n = (size_t)w * h * nc;
    if (bits == 8)
        for (size_t i = 0; i < n; i++) out->data[i] = raw[i];
    else
        for (size_t i = 0; i < n; i++) out->data[i] = (float)((raw[2 * i] << 8) | raw[2 * i + 1]);
    png_destroy_read_struct(&png, &pi, NULL);
    free(raw);
    free(rows);
    return 0;
}

int sm_png_write(const char *path, const uint8_t *pixels, int width, int height, int channels,
                 sm_error *err)
{
    if (channels != 1 && channels != 3)
        return sm_error_set(err, SM_EINVAL, path, 0, 0, NULL, "PNG writer takes 1 or 3 channels, not %d", channels);
    /* written to "<path>.tmp.<pid>" and renamed: a failure (disk full) leaves no partial file */
    size_t tlen = strlen(path) + 32;
    char *tmp = malloc(tlen);
    if (!tmp) return sm_error_set(err, SM_ENOMEM, path, 0, 0, NULL, "out of memory");
    snprintf(tmp, tlen, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        int rc = sm_error_set(err, SM_EIO, path, 0, 0, NULL, "cannot create: %s", strerror(errno));
        free(tmp);
        return rc;
    }
    sm__png_ctx ctx = {NULL, 0, 0, ""};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &ctx, sm__png_error, sm__png_warning);
    png_infop pi = png ? png_create_info_struct(png) : NULL;
    int rc = 0;
    if (!pi) {
        png_destroy_write_struct(&png, NULL);
        rc = sm_error_set(err, SM_ENOMEM, path, 0, 0, NULL, "out of memory");
    } else if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &pi);
        int e = errno; /* a failed fwrite in libpng's writer: say why (disk full) */
        rc = sm_error_set(err, SM_EIO, path, 0, 0, NULL, "PNG write failed: %s%s%s", ctx.msg,
                          ferror(f) ? ": " : "", ferror(f) ? strerror(e) : "");
    } else {
        png_init_io(png, f);
        png_set_IHDR(png, pi, (png_uint_32)width, (png_uint_32)height, 8,
                     channels == 3 ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE,
                     PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
        png_write_info(png, pi);
        for (int y = 0; y < height; y++)
            png_write_row(png, (png_const_bytep)(pixels + (size_t)y * width * channels));
        png_write_end(png, NULL);
        png_destroy_write_struct(&png, &pi);
    }
    int e = 0;
    if (rc == 0 && (fflush(f) != 0 || ferror(f))) e = errno ? errno : EIO;
    if (fclose(f) != 0 && !e) e = errno;
    if (rc == 0 && !e && rename(tmp, path) != 0) e = errno;
    if (rc == 0 && e) rc = sm_error_set(err, SM_EIO, path, 0, 0, NULL, "write failed: %s", strerror(e));
    if (rc != 0) unlink(tmp);
    free(tmp);
    return rc;
}
