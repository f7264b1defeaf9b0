/* core/data/jpeg.c - JPEG decoding with libjpeg-turbo: every warning is an error, the pixel
 * count is checked after the header and before any allocation, progressive scans are capped,
 * CMYK/YCCK are converted to RGB (Adobe's inverted CMYK detected). */
#include "data/data_internal.h"

#include <setjmp.h>
#include <stdio.h>

#include <jerror.h>
#include <jpeglib.h>

typedef struct sm__jpeg_err {
    struct jpeg_error_mgr pub;
    jmp_buf jmp;
    char msg[JMSG_LENGTH_MAX];
    int max_scans;
    bool too_many_scans;
} sm__jpeg_err;

static void sm__jpeg_error_exit(j_common_ptr cinfo)
{
    sm__jpeg_err *e = (sm__jpeg_err *)cinfo->err;
    e->pub.format_message(cinfo, e->msg);
    longjmp(e->jmp, 1);
}

/* level < 0: a warning (corrupt or truncated data) -> fatal. Trace messages are dropped. */
static void sm__jpeg_emit(j_common_ptr cinfo, int level)
{
    if (level >= 0) return;
    sm__jpeg_err *e = (sm__jpeg_err *)cinfo->err;
    e->pub.format_message(cinfo, e->msg);
    longjmp(e->jmp, 1);
}

static void sm__jpeg_progress(j_common_ptr cinfo)
{
    sm__jpeg_err *e = (sm__jpeg_err *)cinfo->err;
    j_decompress_ptr d = (j_decompress_ptr)cinfo;
    if (cinfo->is_decompressor && d->input_scan_number > e->max_scans) {
        e->too_many_scans = true;
        snprintf(e->msg, sizeof e->msg, "progressive JPEG has more than %d scans", e->max_scans);
        longjmp(e->jmp, 1);
    }
}

/* Pillow's MULDIV255: round(a*b/255) for 8-bit a, b. */
static inline int sm__muldiv255(int a, int b)
{
    int t = a * b + 128;
    return (t + (t >> 8)) >> 8;
}

int sm__jpeg_decode(const uint8_t *buf, size_t len, const char *name, const sm_decode_opts *o,
                    sm_image *out, sm_image_info *info, sm_error *err)
{
    struct jpeg_decompress_struct cinfo;
    struct jpeg_progress_mgr progress;
    sm__jpeg_err jerr;
    memset(&cinfo, 0, sizeof cinfo);
    memset(&jerr, 0, sizeof jerr);
    cinfo.err = jpeg_std_error(&jerr.pub);
    jerr.pub.error_exit = sm__jpeg_error_exit;
    jerr.pub.emit_message = sm__jpeg_emit;
    jerr.max_scans = o->max_scans;
    JSAMPLE *volatile row = NULL;
    volatile int rc = 0;
    if (setjmp(jerr.jmp)) {
        free(row);
        jpeg_destroy_decompress(&cinfo);
        if (rc) return rc;
        return sm_error_set(err, SM_EFORMAT, name, 0, 0, NULL, "corrupt JPEG: %s", jerr.msg);
    }
    jpeg_create_decompress(&cinfo);
    progress.progress_monitor = sm__jpeg_progress;
    cinfo.progress = &progress;
    jpeg_mem_src(&cinfo, buf, (unsigned long)len);
    jpeg_read_header(&cinfo, TRUE);
    info->format = SM_IMAGE_FORMAT_JPEG;
    info->width = (int)cinfo.image_width;
    info->height = (int)cinfo.image_height;
    info->bits = 8;
    bool cmyk = false;
    switch (cinfo.jpeg_color_space) {
    case JCS_GRAYSCALE:
        info->channels = 1;
        info->color = "gray";
        cinfo.out_color_space = JCS_GRAYSCALE;
        break;
    case JCS_CMYK:
    case JCS_YCCK:
        info->channels = 3;
        info->color = cinfo.jpeg_color_space == JCS_CMYK ? "cmyk" : "ycck";
        cinfo.out_color_space = JCS_CMYK;
        cmyk = true;
        break;
    case JCS_RGB:
    case JCS_YCbCr:
        info->channels = 3;
        info->color = "rgb";
        cinfo.out_color_space = JCS_RGB;
        break;
    default:
        rc = sm_error_set(err, SM_EUNSUPPORTED, name, 0, 0, NULL,
                          "JPEG color space %d with %d components is not supported",
                          (int)cinfo.jpeg_color_space, cinfo.num_components);
        longjmp(jerr.jmp, 1);
    }
    rc = sm__pixels_check(cinfo.image_width, cinfo.image_height, o->max_pixels, name, err);
    if (rc || !out) {
        jpeg_destroy_decompress(&cinfo);
        return rc;
    }
    rc = sm_image_reserve(out, (int)cinfo.image_width, (int)cinfo.image_height, info->channels,
                          255.0f, o->max_pixels, err);
    if (rc) longjmp(jerr.jmp, 1);
    jpeg_start_decompress(&cinfo);
    int nc = cinfo.output_components, w = (int)cinfo.output_width;
    row = malloc((size_t)w * (size_t)nc);
    if (!row) {
        rc = sm_error_set(err, SM_ENOMEM, name, 0, 0, NULL, "out of memory");
        longjmp(jerr.jmp, 1);
    }
    /* Adobe CMYK JPEGs store inverted values (Photoshop); others store plain CMYK. */
    bool inverted = cmyk && cinfo.saw_Adobe_marker;
    float *dst = out->data;
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW rows[1] = {row};
        if (jpeg_read_scanlines(&cinfo, rows, 1) != 1) {
            rc = sm_error_set(err, SM_EFORMAT, name, 0, 0, NULL, "truncated JPEG data");
            longjmp(jerr.jmp, 1);
        }
        if (!cmyk) {
            for (int i = 0; i < w * nc; i++) dst[i] = row[i];
            dst += (size_t)w * nc;
            continue;
        }
        for (int x = 0; x < w; x++, dst += 3) {
            const JSAMPLE *p = row + 4 * x;
            int k = inverted ? p[3] : 255 - p[3];
            for (int c = 0; c < 3; c++) {
                int v = inverted ? p[c] : 255 - p[c]; /* 255 - C in plain terms */
                dst[c] = (float)sm__muldiv255(v, k);
            }
        }
    }
    jpeg_finish_decompress(&cinfo); /* reports trailing corruption as a warning -> error */
    jpeg_destroy_decompress(&cinfo);
    free(row);
    return 0;
}
