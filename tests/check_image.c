/* tests/check_image.c - decoders on images written here with known pixels, and bad inputs
 * (truncated, zero-byte, random bytes, wrong extension, CMYK, 1x1, header bombs). */
#include "imgutil.h"
#include "testutil.h"

#include <png.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/resource.h>
#include <tiffio.h>
#include <time.h>
#include <zlib.h>

static char *dir;
static sm_image im;

static void setup(void)
{
    dir = sm_test_tmpdir();
    sm_image_init(&im);
}

static void teardown(void)
{
    sm_image_deinit(&im);
    if (!getenv("SM_KEEP")) sm_test_rmtree(dir);
    free(dir);
}

static const char *path_in(const char *name)
{
    static char b[4][4096];
    static int k;
    char *p = b[k++ % 4];
    snprintf(p, 4096, "%s/%s", dir, name);
    return p;
}

static float px(const sm_image *m, int x, int y, int c)
{
    return m->data[((size_t)y * m->width + x) * m->channels + c];
}

static void load_ok(const char *name, sm_image_info *info)
{
    sm_error e;
    sm_error_clear(&e);
    int rc = sm_image_load(path_in(name), NULL, &im, info, &e);
    ck_assert_msg(rc == 0, "%s: %s", name, e.text);
}

static int load_err(const char *name, sm_error *e)
{
    sm_error_clear(e);
    int rc = sm_image_load(path_in(name), NULL, &im, NULL, e);
    ck_assert_msg(rc != 0, "%s decoded but should not", name);
    ck_assert_msg(strstr(e->file, name) != NULL, "error does not name the file: '%s'", e->file);
    return rc;
}

/* A 5x4 RGB pattern with distinct values. */
static void pattern(uint8_t *p, int w, int h, int c)
{
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int k = 0; k < c; k++) p[(y * w + x) * c + k] = (uint8_t)(17 * x + 31 * y + 70 * k);
}

START_TEST(test_sniff)
{
    ck_assert_int_eq(sm_image_sniff("\xff\xd8\xff\xe0", 4), SM_IMAGE_FORMAT_JPEG);
    ck_assert_int_eq(sm_image_sniff("\x89PNG\r\n\x1a\n", 8), SM_IMAGE_FORMAT_PNG);
    ck_assert_int_eq(sm_image_sniff("II*\0", 4), SM_IMAGE_FORMAT_TIFF);
    ck_assert_int_eq(sm_image_sniff("MM\0*", 4), SM_IMAGE_FORMAT_TIFF);
    ck_assert_int_eq(sm_image_sniff("GIF89a", 6), SM_IMAGE_FORMAT_UNKNOWN);
    ck_assert_int_eq(sm_image_sniff("\xff\xd8", 2), SM_IMAGE_FORMAT_UNKNOWN);
    ck_assert_str_eq(sm_image_format_name(SM_IMAGE_FORMAT_TIFF), "tiff");
}
END_TEST

START_TEST(test_png_modes)
{
    uint8_t rgb[5 * 4 * 4];
    pattern(rgb, 5, 4, 3);
    ck_assert_int_eq(sm_img_write_png(path_in("rgb.png"), rgb, 5, 4, PNG_COLOR_TYPE_RGB, 8, NULL, 0), 0);
    sm_image_info info;
    load_ok("rgb.png", &info);
    ck_assert_int_eq(info.format, SM_IMAGE_FORMAT_PNG);
    ck_assert_int_eq(im.width, 5);
    ck_assert_int_eq(im.height, 4);
    ck_assert_int_eq(im.channels, 3);
    ck_assert(im.max_value == 255.0f);
    for (int i = 0; i < 60; i++) ck_assert_float_eq(im.data[i], rgb[i]);

    /* RGBA: alpha dropped, colour kept */
    uint8_t rgba[5 * 4 * 4];
    pattern(rgba, 5, 4, 4);
    sm_img_write_png(path_in("rgba.png"), rgba, 5, 4, PNG_COLOR_TYPE_RGB_ALPHA, 8, NULL, 0);
    load_ok("rgba.png", &info);
    ck_assert_str_eq(info.color, "rgba");
    ck_assert_int_eq(im.channels, 3);
    ck_assert_float_eq(px(&im, 3, 2, 1), rgba[(2 * 5 + 3) * 4 + 1]);

    /* gray+alpha -> gray; then replicated to 3 channels */
    uint8_t ga[5 * 4 * 2];
    pattern(ga, 5, 4, 2);
    sm_img_write_png(path_in("ga.png"), ga, 5, 4, PNG_COLOR_TYPE_GRAY_ALPHA, 8, NULL, 0);
    load_ok("ga.png", &info);
    ck_assert_int_eq(im.channels, 1);
    ck_assert_float_eq(px(&im, 4, 3, 0), ga[(3 * 5 + 4) * 2]);
    ck_assert_int_eq(sm_image_convert(&im, 3, NULL, 0, "ga.png", NULL), 0);
    ck_assert_int_eq(im.channels, 3);
    for (int c = 0; c < 3; c++) ck_assert_float_eq(px(&im, 4, 3, c), ga[(3 * 5 + 4) * 2]);

    /* palette -> RGB */
    uint8_t pal[3 * 3] = {10, 20, 30, 200, 100, 50, 0, 255, 128}, idx[6] = {0, 1, 2, 2, 1, 0};
    sm_img_write_png(path_in("pal.png"), idx, 3, 2, PNG_COLOR_TYPE_PALETTE, 8, pal, 3);
    load_ok("pal.png", &info);
    ck_assert_str_eq(info.color, "palette");
    ck_assert_int_eq(im.channels, 3);
    for (int i = 0; i < 6; i++)
        for (int c = 0; c < 3; c++) ck_assert_float_eq(im.data[i * 3 + c], pal[idx[i] * 3 + c]);

    /* palette with transparency (tRNS): the alpha is dropped like an alpha channel's */
    const uint8_t alpha[3] = {0, 128, 255};
    sm_img_png_trns(alpha, 3);
    sm_img_write_png(path_in("palt.png"), idx, 3, 2, PNG_COLOR_TYPE_PALETTE, 8, pal, 3);
    load_ok("palt.png", &info);
    ck_assert_int_eq(im.channels, 3);
    for (int i = 0; i < 6; i++)
        for (int c = 0; c < 3; c++) ck_assert_float_eq(im.data[i * 3 + c], pal[idx[i] * 3 + c]);
}
END_TEST

START_TEST(test_png_16bit_scaled)
{
    uint16_t g[4] = {0x1234, 0xFFFF, 0x00FF, 0x8000};
    sm_img_write_png(path_in("g16.png"), g, 2, 2, PNG_COLOR_TYPE_GRAY, 16, NULL, 0);
    sm_image_info info;
    load_ok("g16.png", &info);
    ck_assert_int_eq(info.bits, 16);
    ck_assert(im.max_value == 65535.0f);
    /* 0x1234 = 4660 exactly: scaled by 65535, not truncated to the high byte 0x12 */
    for (int i = 0; i < 4; i++) ck_assert_float_eq(im.data[i], g[i]);
    float out[4], mean[1] = {0}, std[1] = {1};
    sm_image_normalize(&im, mean, std, out);
    ck_assert_float_eq_tol(out[0], 4660.0f / 65535.0f, 1e-7f);
    ck_assert_float_eq_tol(out[2], 255.0f / 65535.0f, 1e-7f);
}
END_TEST

START_TEST(test_jpeg_gray_rgb_progressive)
{
    uint8_t g[16 * 16], rgb[16 * 16 * 3];
    memset(g, 77, sizeof g);
    for (int i = 0; i < 16 * 16; i++) rgb[3 * i] = 200, rgb[3 * i + 1] = 40, rgb[3 * i + 2] = 90;
    sm_img_write_jpeg(path_in("g.jpg"), g, 16, 16, 1, 100, false, false);
    sm_img_write_jpeg(path_in("c.jpg"), rgb, 16, 16, 3, 100, false, true);
    sm_image_info info;
    load_ok("g.jpg", &info);
    ck_assert_int_eq(im.channels, 1);
    ck_assert_str_eq(info.color, "gray");
    for (int i = 0; i < 256; i++) ck_assert_float_eq(im.data[i], 77.0f);
    load_ok("c.jpg", &info);
    ck_assert_int_eq(im.channels, 3);
    /* flat colour at quality 100: within the YCbCr round trip */
    ck_assert_float_eq_tol(px(&im, 7, 9, 0), 200.0f, 2.0f);
    ck_assert_float_eq_tol(px(&im, 7, 9, 1), 40.0f, 2.0f);
    ck_assert_float_eq_tol(px(&im, 7, 9, 2), 90.0f, 2.0f);
    /* too many progressive scans are refused */
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0;
    ck_assert_int_eq(sm_file_read(path_in("c.jpg"), &buf, &len, &cap, NULL), 0);
    sm_decode_opts o = {0, 2};
    sm_error e;
    sm_error_clear(&e);
    ck_assert_int_eq(sm_image_decode(buf, len, "c.jpg", &o, &im, NULL, &e), SM_EFORMAT);
    ck_assert_msg(strstr(e.text, "scans") != NULL, "%s", e.text);
    free(buf);
}
END_TEST

START_TEST(test_jpeg_cmyk)
{
    /* C=0 M=255 Y=255 K=0 is red; values stored plainly and with Adobe inversion */
    uint8_t plain[8 * 8 * 4], inv[8 * 8 * 4];
    for (int i = 0; i < 64; i++) {
        uint8_t v[4] = {0, 255, 255, 51}; /* K = 20 %: red at 204 */
        for (int k = 0; k < 4; k++) plain[4 * i + k] = v[k], inv[4 * i + k] = (uint8_t)(255 - v[k]);
    }
    sm_img_write_jpeg(path_in("plain.jpg"), plain, 8, 8, 4, 100, false, false);
    sm_img_write_jpeg(path_in("adobe.jpg"), inv, 8, 8, 4, 100, true, false);
    const char *names[2] = {"plain.jpg", "adobe.jpg"};
    for (int f = 0; f < 2; f++) {
        sm_image_info info;
        load_ok(names[f], &info);
        ck_assert_str_eq(info.color, "cmyk");
        ck_assert_int_eq(im.channels, 3);
        ck_assert_float_eq_tol(px(&im, 3, 3, 0), 204.0f, 3.0f);
        ck_assert_float_eq_tol(px(&im, 3, 3, 1), 0.0f, 3.0f);
        ck_assert_float_eq_tol(px(&im, 3, 3, 2), 0.0f, 3.0f);
    }
}
END_TEST

START_TEST(test_tiff_modes)
{
    /* 16-bit, 5 bands, separate planes, tiled, LZW; then band selection */
    int w = 20, h = 18, nb = 5;
    uint16_t *ms = malloc(sizeof(uint16_t) * w * h * nb);
    for (int i = 0; i < w * h; i++)
        for (int b = 0; b < nb; b++) ms[i * nb + b] = (uint16_t)(1000 * b + 3 * i + 7);
    ck_assert_int_eq(sm_img_write_tiff(path_in("ms.tif"), ms, w, h, nb, 16, PHOTOMETRIC_MINISBLACK,
                                       true, true, true, false), 0);
    sm_image_info info;
    load_ok("ms.tif", &info);
    ck_assert_int_eq(info.format, SM_IMAGE_FORMAT_TIFF);
    ck_assert_str_eq(info.color, "multiband");
    ck_assert_int_eq(im.channels, 5);
    ck_assert(im.max_value == 65535.0f);
    for (int i = 0; i < w * h * nb; i++) ck_assert_float_eq(im.data[i], ms[i]);
    int bands[3] = {4, 0, 2};
    ck_assert_int_eq(sm_image_convert(&im, 3, bands, 3, "ms.tif", NULL), 0);
    ck_assert_int_eq(im.channels, 3);
    ck_assert_float_eq(px(&im, 2, 1, 0), ms[(1 * w + 2) * nb + 4]);
    ck_assert_float_eq(px(&im, 2, 1, 1), ms[(1 * w + 2) * nb + 0]);
    ck_assert_float_eq(px(&im, 2, 1, 2), ms[(1 * w + 2) * nb + 2]);
    /* without a band selection 5 bands cannot feed 3 channels: the message says what to do */
    load_ok("ms.tif", NULL);
    sm_error e;
    sm_error_clear(&e);
    ck_assert_int_eq(sm_image_convert(&im, 3, NULL, 0, "ms.tif", &e), SM_EUNSUPPORTED);
    ck_assert_msg(strstr(e.text, "bands") != NULL, "%s", e.text);
    int badb[3] = {0, 1, 9};
    load_ok("ms.tif", NULL);
    sm_error_clear(&e);
    ck_assert_int_eq(sm_image_convert(&im, 3, badb, 3, "ms.tif", &e), SM_EUNSUPPORTED);
    free(ms);

    /* 8-bit RGB + alpha, contiguous strips: alpha dropped */
    uint8_t rgba[7 * 5 * 4];
    pattern(rgba, 7, 5, 4);
    sm_img_write_tiff(path_in("rgba.tiff"), rgba, 7, 5, 4, 8, PHOTOMETRIC_RGB, false, false, false, true);
    load_ok("rgba.tiff", &info);
    ck_assert_int_eq(im.channels, 3);
    ck_assert_float_eq(px(&im, 6, 4, 2), rgba[(4 * 7 + 6) * 4 + 2]);
    /* MinIsWhite gray is inverted */
    uint8_t g[4] = {0, 10, 200, 255};
    sm_img_write_tiff(path_in("w.tif"), g, 2, 2, 1, 8, PHOTOMETRIC_MINISWHITE, false, false, false, false);
    load_ok("w.tif", NULL);
    for (int i = 0; i < 4; i++) ck_assert_float_eq(im.data[i], 255 - g[i]);
}
END_TEST

START_TEST(test_one_pixel_images)
{
    uint8_t p[4] = {9, 99, 199, 255};
    sm_img_write_png(path_in("1.png"), p, 1, 1, PNG_COLOR_TYPE_RGB, 8, NULL, 0);
    sm_img_write_jpeg(path_in("1.jpg"), p, 1, 1, 1, 95, false, false);
    sm_img_write_tiff(path_in("1.tif"), p, 1, 1, 3, 8, PHOTOMETRIC_RGB, false, false, false, false);
    const char *names[3] = {"1.png", "1.jpg", "1.tif"};
    for (int i = 0; i < 3; i++) {
        load_ok(names[i], NULL);
        ck_assert_int_eq(im.width, 1);
        ck_assert_int_eq(im.height, 1);
    }
    /* and a 1x1 image goes through the whole pretraining pipeline */
    sm_pipeline pl;
    sm_pipeline_defaults(&pl, SM_PIPELINE_PRETRAIN, 64);
    float *out = malloc(sizeof(float) * 3 * 64 * 64), mask[16];
    sm_image tmp;
    sm_image_init(&tmp);
    load_ok("1.png", NULL);
    ck_assert_int_eq(sm_pipeline_apply(&pl, &im, "1.png", 1, 0, 0, out, mask, &tmp, NULL), 0);
    ck_assert_float_eq_tol(out[0], (9 / 255.0f - 0.485f) / 0.229f, 1e-5f);
    ck_assert_float_eq_tol(out[64 * 64 * 2 + 100], (199 / 255.0f - 0.406f) / 0.225f, 1e-5f);
    sm_image_deinit(&tmp);
    free(out);
}
END_TEST

START_TEST(test_wrong_extension)
{
    uint8_t rgb[3 * 3 * 3];
    pattern(rgb, 3, 3, 3);
    sm_img_write_png(path_in("really_png.JPEG"), rgb, 3, 3, PNG_COLOR_TYPE_RGB, 8, NULL, 0);
    sm_image_info info;
    load_ok("really_png.JPEG", &info);
    ck_assert_int_eq(info.format, SM_IMAGE_FORMAT_PNG);
    ck_assert_float_eq(im.data[5], rgb[5]);
}
END_TEST

static void truncate_copy(const char *from, const char *to, double frac)
{
    size_t len;
    char *b = sm_test_read_file(path_in(from), &len);
    ck_assert_ptr_nonnull(b);
    sm_test_write_file(path_in(to), b, (size_t)(len * frac));
    free(b);
}

START_TEST(test_bad_files)
{
    sm_error e;
    uint8_t *img = malloc(256 * 256 * 3);
    for (int i = 0; i < 256 * 256 * 3; i++) img[i] = (uint8_t)((i * 7919) >> 5);
    sm_img_write_jpeg(path_in("full.jpg"), img, 256, 256, 3, 90, false, false);
    sm_img_write_png(path_in("full.png"), img, 256, 256, PNG_COLOR_TYPE_RGB, 8, NULL, 0);
    sm_img_write_tiff(path_in("full.tif"), img, 256, 256, 3, 8, PHOTOMETRIC_RGB, false, false, true, false);
    free(img);

    /* truncated at 50 %: never a grey-filled "success" */
    truncate_copy("full.jpg", "half.jpg", 0.5);
    ck_assert_int_eq(load_err("half.jpg", &e), SM_EFORMAT);
    ck_assert_msg(strstr(e.text, "Premature end") || strstr(e.text, "premature end"), "%s", e.text);
    truncate_copy("full.png", "half.png", 0.5);
    ck_assert_int_eq(load_err("half.png", &e), SM_EFORMAT);
    ck_assert_msg(strstr(e.text, "truncated"), "%s", e.text);
    truncate_copy("full.tif", "half.tif", 0.5);
    ck_assert_int_eq(load_err("half.tif", &e), SM_EFORMAT);

    /* zero bytes, SOI only, random bytes named .jpg */
    sm_test_write_file(path_in("zero.jpg"), "", 0);
    ck_assert_int_eq(load_err("zero.jpg", &e), SM_EFORMAT);
    ck_assert_msg(strstr(e.text, "not a decodable image"), "%s", e.text);
    sm_test_write_file(path_in("soi.jpg"), "\xff\xd8\xff", 3);
    ck_assert_int_eq(load_err("soi.jpg", &e), SM_EFORMAT);
    uint8_t rnd[4096];
    sm_rng r;
    sm_rng_init(&r, 5, 0, 0, 0);
    for (size_t i = 0; i < sizeof rnd; i++) rnd[i] = (uint8_t)sm_rng_u32(&r);
    rnd[0] = 0x42; /* not a magic of ours */
    sm_test_write_file(path_in("random.jpg"), rnd, sizeof rnd);
    ck_assert_int_eq(load_err("random.jpg", &e), SM_EFORMAT);
    ck_assert_msg(strstr(e.text, "not a decodable image"), "%s", e.text);
    /* random bytes behind a JPEG / PNG / TIFF magic */
    memcpy(rnd, "\xff\xd8\xff\xe0", 4);
    sm_test_write_file(path_in("rndjpeg.jpg"), rnd, sizeof rnd);
    load_err("rndjpeg.jpg", &e);
    memcpy(rnd, "\x89PNG\r\n\x1a\n", 8);
    sm_test_write_file(path_in("rndpng.png"), rnd, sizeof rnd);
    load_err("rndpng.png", &e);
    memcpy(rnd, "II*\0", 4);
    sm_test_write_file(path_in("rndtiff.tif"), rnd, sizeof rnd);
    load_err("rndtiff.tif", &e);
    /* a 2 x 10 TIFF whose TileWidth (63232) asks for a 2.6 GB tile buffer (found by fuzz_image):
     * refused before the allocation */
    static const char huge_tile[] = "\x49\x49\x2a\x00\x08\x00\x00\x00\x0a\x00\x00\x01\x03\x00\x01\x00\x00\x00\x02\x00\x00\x00\x01\x01\x03\x00\x01\x00\x00\x00\x0a\x00\x00\x00\x02\x01\x03\x00\x01\x00\x00\x00\x08\x00\x00\x00\x03\x01\x03\x00\x01\x00\x00\x00\x01\x00\x00\x00\x16\x01\x03\x00\x01\x00\x00\x00\x01\xa4\x00\x00\x11\x01\x04\x00\x01\x00\x00\x00\x86\x00\x00\x00\x42\x01\x03\x00\x01\x00\x00\x00\x00\xf7\x00\x00\x16\x01\x03\x00\x01\x00\x00\x00\x02\x00\x00\x00\x17\x01\x04\x00\x01\x00\x00\x00\x04\x00\x00\x00\x1c\x01\x03\x00\x01\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x40\x80\xff";
    sm_test_write_file(path_in("hugetile.tif"), huge_tile, sizeof huge_tile - 1);
    load_err("hugetile.tif", &e);
    ck_assert_msg(strstr(e.text, "larger than the image"), "%s", e.text);
    /* a GIF is named as such */
    sm_test_write_file(path_in("anim.gif"), "GIF89a\1\0\1\0\0\0\0;", 14);
    ck_assert_int_eq(load_err("anim.gif", &e), SM_EUNSUPPORTED);
    ck_assert_msg(strstr(e.text, "GIF"), "%s", e.text);
    /* a missing file */
    ck_assert_int_eq(load_err("missing.png", &e), SM_EIO);
}
END_TEST

static long rss_kb(void)
{
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return u.ru_maxrss;
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

START_TEST(test_header_bombs)
{
    /* JPEG whose SOF claims 65500 x 65500 */
    uint8_t small[16 * 16 * 3];
    memset(small, 128, sizeof small);
    uint8_t *jpg;
    size_t jlen;
    sm_img_encode_jpeg(small, 16, 16, 3, 80, &jpg, &jlen);
    for (size_t i = 0; i + 9 < jlen; i++)
        if (jpg[i] == 0xFF && (jpg[i + 1] == 0xC0 || jpg[i + 1] == 0xC2)) {
            jpg[i + 5] = 0xFF, jpg[i + 6] = 0xDC, jpg[i + 7] = 0xFF, jpg[i + 8] = 0xDC;
            break;
        }
    sm_test_write_file(path_in("bomb.jpg"), jpg, jlen);
    free(jpg);
    /* PNG whose IHDR claims 1,000,000 x 1,000,000 (CRC fixed) */
    uint8_t png[8 + 25 + 12 + 12];
    memcpy(png, "\x89PNG\r\n\x1a\n", 8);
    put32(png + 8, 13);
    memcpy(png + 12, "IHDR", 4);
    put32(png + 16, 1000000);
    put32(png + 20, 1000000);
    png[24] = 8, png[25] = 2, png[26] = 0, png[27] = 0, png[28] = 0;
    put32(png + 29, (uint32_t)crc32(0, png + 12, 17));
    put32(png + 33, 0); /* an empty IDAT: libpng stops reading the header here */
    memcpy(png + 37, "IDAT", 4);
    put32(png + 41, (uint32_t)crc32(0, png + 37, 4));
    put32(png + 45, 0);
    memcpy(png + 49, "IEND", 4);
    put32(png + 53, (uint32_t)crc32(0, png + 49, 4));
    sm_test_write_file(path_in("bomb.png"), png, sizeof png);
    /* TIFF header claiming 100000 x 100000 */
    uint8_t one[3] = {1, 2, 3};
    sm_img_write_tiff(path_in("one.tif"), one, 1, 1, 3, 8, PHOTOMETRIC_RGB, false, false, false, false);
    /* ... patched to claim 100000 x 100000 (classic little-endian TIFF, width/length as LONG) */
    size_t tlen;
    uint8_t *tif = (uint8_t *)sm_test_read_file(path_in("one.tif"), &tlen);
    ck_assert_ptr_nonnull(tif);
    ck_assert(tif[0] == 'I');
    uint32_t ifd = tif[4] | tif[5] << 8 | tif[6] << 16 | (uint32_t)tif[7] << 24;
    int nent = tif[ifd] | tif[ifd + 1] << 8;
    for (int k = 0; k < nent; k++) {
        uint8_t *en = tif + ifd + 2 + 12 * k;
        int tag = en[0] | en[1] << 8;
        if (tag == 256 || tag == 257) {
            en[2] = 4, en[3] = 0;                     /* LONG */
            en[8] = 0xA0, en[9] = 0x86, en[10] = 0x01, en[11] = 0; /* 100000 */
        }
    }
    sm_test_write_file(path_in("bomb.tif"), tif, tlen);
    free(tif);

    const char *names[3] = {"bomb.jpg", "bomb.png", "bomb.tif"};
    for (int i = 0; i < 3; i++) {
        long before = rss_kb();
        clock_t c0 = clock();
        sm_error e;
        ck_assert_int_eq(load_err(names[i], &e), SM_ERANGE);
        ck_assert_msg(strstr(e.text, "max_pixels"), "%s: %s", names[i], e.text);
        double secs = (double)(clock() - c0) / CLOCKS_PER_SEC;
        long grew = rss_kb() - before;
        /* no allocation from the header: memory stays flat (and it returns at once) */
        ck_assert_msg(grew < 10 * 1024, "%s: RSS grew by %ld kB", names[i], grew);
        ck_assert_msg(secs < 5.0, "%s: took %.2f s", names[i], secs);
    }
    /* a genuine large image passes when the cap is raised knowingly */
    sm_decode_opts o = {4, 0};
    sm_error e;
    sm_error_clear(&e);
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0;
    sm_file_read(path_in("one.tif"), &buf, &len, &cap, NULL);
    ck_assert_int_eq(sm_image_decode(buf, len, "one.tif", &o, &im, NULL, &e), 0);
    free(buf);
}
END_TEST

START_TEST(test_probe_header_only)
{
    uint8_t *rgb = malloc(96 * 80 * 3);
    for (int i = 0; i < 96 * 80 * 3; i++) rgb[i] = (uint8_t)((i * 7919) >> 3);
    sm_img_write_jpeg(path_in("p.jpg"), rgb, 96, 80, 3, 90, false, false);
    free(rgb);
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0;
    ck_assert_int_eq(sm_file_read(path_in("p.jpg"), &buf, &len, &cap, NULL), 0);
    sm_image_info info;
    ck_assert_int_eq(sm_image_probe(buf, len / 2, "p.jpg", NULL, &info, NULL), 0);
    ck_assert_int_eq(info.width, 96);
    ck_assert_int_eq(info.height, 80);
    ck_assert_int_eq(info.channels, 3);
    free(buf);
}
END_TEST

/* A FIFO named like an image (in a data folder) is an error at once, never a blocked read. */
START_TEST(test_fifo_refused)
{
    ck_assert_int_eq(mkfifo(path_in("fifo.jpg"), 0600), 0);
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0;
    sm_error e;
    sm_error_clear(&e);
    ck_assert_int_eq(sm_file_read(path_in("fifo.jpg"), &buf, &len, &cap, &e), SM_EIO);
    ck_assert_msg(strstr(e.text, "not a regular file") != NULL, "%s", e.text);
    free(buf);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("image");
    TCase *tc = tcase_create("decode");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_sniff);
    tcase_add_test(tc, test_png_modes);
    tcase_add_test(tc, test_png_16bit_scaled);
    tcase_add_test(tc, test_jpeg_gray_rgb_progressive);
    tcase_add_test(tc, test_jpeg_cmyk);
    tcase_add_test(tc, test_tiff_modes);
    tcase_add_test(tc, test_one_pixel_images);
    tcase_add_test(tc, test_wrong_extension);
    tcase_add_test(tc, test_bad_files);
    tcase_add_test(tc, test_header_bombs);
    tcase_add_test(tc, test_probe_header_only);
    tcase_add_test(tc, test_fifo_refused);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return sm_test_run(suite()); }
