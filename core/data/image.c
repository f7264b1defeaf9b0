/* core/data/image.c - the image buffer, format sniffing, file reading, decode dispatch and
 * channel conversion. */
#include "data/data_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

void sm_image_init(sm_image *im) { memset(im, 0, sizeof *im); }

void sm_image_deinit(sm_image *im)
{
    if (!im) return;
    free(im->data);
    memset(im, 0, sizeof *im);
}

int sm__pixels_check(int64_t w, int64_t h, int64_t max_pixels, const char *name, sm_error *err)
{
    if (max_pixels <= 0) max_pixels = SM_DEFAULT_MAX_PIXELS;
    if (w < 1 || h < 1)
        return sm_error_set(err, SM_EFORMAT, name, 0, 0, NULL, "image has no pixels (%lldx%lld)",
                            (long long)w, (long long)h);
    int64_t px;
    if (__builtin_mul_overflow(w, h, &px) || px > max_pixels)
        return sm_error_set(err, SM_ERANGE, name, 0, 0, NULL,
                            "image of %lldx%lld pixels exceeds max_pixels (%lld); raise "
                            "max_pixels if the file is genuine",
                            (long long)w, (long long)h, (long long)max_pixels);
    return 0;
}

int sm_image_reserve(sm_image *im, int width, int height, int channels, float max_value,
                     int64_t max_pixels, sm_error *err)
{
    int rc = sm__pixels_check(width, height, max_pixels, NULL, err);
    if (rc) return rc;
    if (channels < 1 || channels > SM_MAX_BANDS)
        return sm_error_set(err, SM_ERANGE, NULL, 0, 0, NULL,
                            "%d channels (supported: 1..%d)", channels, SM_MAX_BANDS);
    size_t n = (size_t)width * (size_t)height * (size_t)channels;
    if (n > im->cap) {
        float *d = realloc(im->data, n * sizeof *d);
        if (!d) return sm_error_set(err, SM_ENOMEM, NULL, 0, 0, NULL, "out of memory for a %dx%dx%d image", width, height, channels);
        im->data = d;
        im->cap = n;
    }
    im->width = width;
    im->height = height;
    im->channels = channels;
    im->max_value = max_value;
    return 0;
}

sm_image_format sm_image_sniff(const void *buf, size_t len)
{
    const uint8_t *b = buf;
    if (len >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF) return SM_IMAGE_FORMAT_JPEG;
    if (len >= 8 && memcmp(b, "\x89PNG\r\n\x1a\n", 8) == 0) return SM_IMAGE_FORMAT_PNG;
    if (len >= 4 && (memcmp(b, "II*\0", 4) == 0 || memcmp(b, "MM\0*", 4) == 0 ||
                     memcmp(b, "II+\0", 4) == 0 || memcmp(b, "MM\0+", 4) == 0))
        return SM_IMAGE_FORMAT_TIFF;
    return SM_IMAGE_FORMAT_UNKNOWN;
}

const char *sm_image_format_name(sm_image_format f)
{
    static const char *const names[SM_IMAGE_FORMAT_COUNT] = {"unknown", "jpeg", "png", "tiff",
                                                            "raw"};
    return (unsigned)f < SM_IMAGE_FORMAT_COUNT ? names[f] : "unknown";
}

/* Names formats we recognise but do not decode, for a helpful message. */
static const char *sm__other_format(const uint8_t *b, size_t len)
{
    if (len >= 2 && b[0] == 'B' && b[1] == 'M') return "BMP";
    if (len >= 4 && memcmp(b, "GIF8", 4) == 0) return "GIF";
    if (len >= 12 && memcmp(b, "RIFF", 4) == 0 && memcmp(b + 8, "WEBP", 4) == 0) return "WebP";
    if (len >= 2 && b[0] == 'P' && b[1] >= '1' && b[1] <= '7') return "PNM";
    if (len >= 12 && memcmp(b + 4, "ftyp", 4) == 0) return "HEIF/AVIF";
    if (len >= 4 && memcmp(b, "\xff\x4f\xff\x51", 4) == 0) return "JPEG 2000";
    if (len >= 12 && memcmp(b, "\0\0\0\x0cjP  ", 8) == 0) return "JPEG 2000";
    return NULL;
}

static int sm__decode(const void *buf, size_t len, const char *name, const sm_decode_opts *opts,
                      sm_image *out, sm_image_info *info, sm_error *err)
{
    sm_decode_opts o = {0, 0};
    if (opts) o = *opts;
    if (o.max_pixels <= 0) o.max_pixels = SM_DEFAULT_MAX_PIXELS;
    if (o.max_scans <= 0) o.max_scans = SM_DEFAULT_MAX_SCANS;
    sm_image_info tmp;
    if (!info) info = &tmp;
    memset(info, 0, sizeof *info);
    if (len == 0)
        return sm_error_set(err, SM_EFORMAT, name, 0, 0, NULL,
                            "not a decodable image: empty file (0 bytes)");
    const uint8_t *b = buf;
    switch (sm_image_sniff(b, len)) {
    case SM_IMAGE_FORMAT_JPEG: return sm__jpeg_decode(b, len, name, &o, out, info, err);
    case SM_IMAGE_FORMAT_PNG: return sm__png_decode(b, len, name, &o, out, info, err);
    case SM_IMAGE_FORMAT_TIFF: return sm__tiff_decode(b, len, name, &o, out, info, err);
    default: break;
    }
    const char *other = sm__other_format(b, len);
    if (other)
        return sm_error_set(err, SM_EUNSUPPORTED, name, 0, 0, NULL,
                            "%s images are not supported (decoded: JPEG, PNG, TIFF)", other);
    char hex[3 * 8 + 1] = "";
    for (size_t i = 0; i < len && i < 8; i++) sprintf(hex + 3 * i, "%02x ", b[i]);
    if (hex[0]) hex[strlen(hex) - 1] = '\0';
    return sm_error_set(err, SM_EFORMAT, name, 0, 0, NULL,
                        "not a decodable image: unknown format (%zu bytes starting %s)", len, hex);
}

int sm_image_decode(const void *buf, size_t len, const char *name, const sm_decode_opts *opts,
                    sm_image *out, sm_image_info *info, sm_error *err)
{
    if (!out) return sm_error_set(err, SM_EINVAL, name, 0, 0, NULL, "no output image");
    return sm__decode(buf, len, name, opts, out, info, err);
}

int sm_image_probe(const void *buf, size_t len, const char *name, const sm_decode_opts *opts,
                   sm_image_info *info, sm_error *err)
{
    return sm__decode(buf, len, name, opts, NULL, info, err);
}

int sm_file_read(const char *path, uint8_t **buf, size_t *len, size_t *cap, sm_error *err)
{
    /* O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused below); reads of a
     * regular file ignore the flag */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return sm_error_set(err, SM_EIO, path, 0, 0, NULL, "cannot open: %s", strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        int e = errno;
        close(fd);
        return sm_error_set(err, SM_EIO, path, 0, 0, NULL, "not a regular file%s%s",
                            e ? ": " : "", e ? strerror(e) : "");
    }
    if (st.st_size > ((off_t)1 << 31)) {
        close(fd);
        return sm_error_set(err, SM_ERANGE, path, 0, 0, NULL, "file of %lld bytes is over 2 GiB",
                            (long long)st.st_size);
    }
    size_t want = (size_t)st.st_size;
    if (want + 1 > *cap || !*buf) {
        uint8_t *nb = realloc(*buf, want + 1);
        if (!nb) {
            close(fd);
            return sm_error_set(err, SM_ENOMEM, path, 0, 0, NULL, "out of memory reading %zu bytes", want);
        }
        *buf = nb;
        *cap = want + 1;
    }
    size_t got = 0;
    while (got < want) {
        ssize_t r = read(fd, *buf + got, want - got);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            int e = errno;
            close(fd);
            return sm_error_set(err, SM_EIO, path, 0, 0, NULL, "read failed: %s", strerror(e));
        }
        if (r == 0) break; /* shrank while reading: decode what is there */
        got += (size_t)r;
    }
    close(fd);
    *len = got;
    return 0;
}

int sm_image_load(const char *path, const sm_decode_opts *opts, sm_image *out,
                  sm_image_info *info, sm_error *err)
{
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0;
    int rc = sm_file_read(path, &buf, &len, &cap, err);
    if (rc == 0) rc = sm_image_decode(buf, len, path, opts, out, info, err);
    free(buf);
    return rc;
}

int sm_image_from_u8(sm_image *out, const uint8_t *pixels, int width, int height, int channels,
                     int64_t max_pixels, sm_error *err)
{
    int rc = sm_image_reserve(out, width, height, channels, 255.0f, max_pixels, err);
    if (rc) return rc;
    size_t n = (size_t)width * height * channels;
    for (size_t i = 0; i < n; i++) out->data[i] = pixels[i];
    return 0;
}

int sm_image_convert(sm_image *im, int channels, const int *bands, int n_bands, const char *name,
                     sm_error *err)
{
    int c0 = im->channels;
    size_t npx = (size_t)im->width * im->height;
    if (channels < 1 || channels > SM_MAX_BANDS)
        return sm_error_set(err, SM_EINVAL, name, 0, 0, NULL, "cannot convert to %d channels", channels);
    if (n_bands > 0) {
        if (n_bands != channels)
            return sm_error_set(err, SM_EINVAL, name, 0, 0, NULL,
                                "bands lists %d bands but model.in_chans is %d", n_bands, channels);
        for (int k = 0; k < n_bands; k++)
            if (bands[k] < 0 || bands[k] >= c0)
                return sm_error_set(err, SM_EUNSUPPORTED, name, 0, 0, NULL,
                                    "bands[%d] = %d but the image has %d band%s (0-based)", k,
                                    bands[k], c0, c0 == 1 ? "" : "s");
        bool same = n_bands == c0;
        for (int k = 0; same && k < n_bands; k++) same = bands[k] == k;
        if (same) return 0;
        /* the pixel count was checked against max_pixels when decoding: no second limit here */
        if (channels > c0) { /* grow first, then fill from the back so nothing is overwritten */
            int rc = sm_image_reserve(im, im->width, im->height, channels, im->max_value, (int64_t)1 << 40, err);
            if (rc) return rc;
            for (size_t i = npx; i-- > 0;) {
                float px[SM_MAX_BANDS];
                memcpy(px, im->data + i * c0, (size_t)c0 * sizeof *px);
                for (int k = 0; k < channels; k++) im->data[i * channels + k] = px[bands[k]];
            }
        } else {
            for (size_t i = 0; i < npx; i++) {
                float px[SM_MAX_BANDS];
                memcpy(px, im->data + i * c0, (size_t)c0 * sizeof *px);
                for (int k = 0; k < channels; k++) im->data[i * channels + k] = px[bands[k]];
            }
            im->channels = channels;
        }
        return 0;
    }
    if (c0 == channels) return 0;
    if (c0 == 1) { /* gray -> replicate */
        int rc = sm_image_reserve(im, im->width, im->height, channels, im->max_value, (int64_t)1 << 40, err);
        if (rc) return rc;
        for (size_t i = npx; i-- > 0;) {
            float v = im->data[i];
            for (int k = 0; k < channels; k++) im->data[i * channels + k] = v;
        }
        return 0;
    }
    if (c0 == 3 && channels == 1) { /* Pillow's "L": (R*19595 + G*38470 + B*7471 + 0x8000) >> 16 */
        for (size_t i = 0; i < npx; i++) {
            const float *p = im->data + 3 * i;
            int64_t l = ((int64_t)p[0] * 19595 + (int64_t)p[1] * 38470 + (int64_t)p[2] * 7471 +
                         0x8000) >> 16;
            im->data[i] = (float)l;
        }
        im->channels = 1;
        return 0;
    }
    return sm_error_set(err, SM_EUNSUPPORTED, name, 0, 0, NULL,
                        "image has %d bands but model.in_chans is %d: set `bands` in the dataset "
                        "section to choose %d of them",
                        c0, channels, channels);
}
