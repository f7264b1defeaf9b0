/* core/data/randaug.c - timm's RandAugment (rand_augment_transform) on sm_image.
 *
 * Each image gets num_ops ops drawn uniformly with replacement from the op set; each is
 * applied with probability prob at magnitude N(m, mstd) clipped to [0, mmax]; level l = m/10.
 * The ops reproduce Pillow's arithmetic for 8-bit images (ImageOps LUTs, ImageEnhance blends
 * with truncation, the SMOOTH filter, affine transforms with Pillow's bicubic (a = -1) or
 * bilinear sampler and a fill colour). For 16-bit images thresholds and bit counts are scaled
 * to the sample depth (e.g. solarize at 128/256 of full scale, posterize keeps the same number
 * of top bits). Gray/multi-band images use the band mean as "L" for Color and Contrast. */
#include "data/data_internal.h"

#include <math.h>

enum {
    SM__RA_AUTOCONTRAST, SM__RA_EQUALIZE, SM__RA_INVERT, SM__RA_ROTATE, SM__RA_POSTERIZE,
    SM__RA_SOLARIZE, SM__RA_SOLARIZE_ADD, SM__RA_COLOR, SM__RA_CONTRAST, SM__RA_BRIGHTNESS,
    SM__RA_SHARPNESS, SM__RA_SHEAR_X, SM__RA_SHEAR_Y, SM__RA_TRANSLATE_X, SM__RA_TRANSLATE_Y,
    SM__RA_COUNT
};

int sm_randaug_parse(const char *spec, sm_randaug *out, sm_error *err)
{
    sm_randaug ra = {2, 10.0, 0.0, 10.0, 0.5, false};
    if (!spec || strncmp(spec, "rand", 4) != 0 || (spec[4] && spec[4] != '-'))
        return sm_error_set(err, SM_EINVAL, NULL, 0, 0, NULL,
                            "auto_augment '%s': only RandAugment ('rand-m9-mstd0.5-inc1') is "
                            "supported", spec ? spec : "(null)");
    const char *p = spec + 4;
    while (*p == '-') {
        p++;
        char key[8] = "";
        int k = 0;
        while (*p >= 'a' && *p <= 'z' && k < 7) key[k++] = *p++;
        key[k] = '\0';
        char *end;
        double v = strtod(p, &end);
        if (end == p || (*end && *end != '-'))
            return sm_error_set(err, SM_EINVAL, NULL, 0, 0, NULL,
                                "auto_augment '%s': section '%s' needs a number", spec, key);
        p = end;
        if (strcmp(key, "m") == 0) ra.magnitude = v;
        else if (strcmp(key, "n") == 0 && v >= 0 && v <= 16) ra.num_ops = (int)v;
        else if (strcmp(key, "mstd") == 0 && v >= 0) ra.magnitude_std = v;
        else if (strcmp(key, "mmax") == 0 && v > 0) ra.magnitude_max = v;
        else if (strcmp(key, "inc") == 0) ra.increasing = v != 0;
        else if (strcmp(key, "p") == 0 && v >= 0 && v <= 1) ra.prob = v;
        else
            return sm_error_set(err, SM_EINVAL, NULL, 0, 0, NULL,
                                "auto_augment '%s': unknown or out-of-range section '%s' "
                                "(known: m, n, mstd, mmax, inc, p)", spec, key);
    }
    if (*p)
        return sm_error_set(err, SM_EINVAL, NULL, 0, 0, NULL, "auto_augment '%s': trailing '%s'",
                            spec, p);
    *out = ra;
    return 0;
}

/* ---- point ops through a lookup table per channel ------------------------------------------ */

typedef struct sm__ra_ctx {
    sm_image *im, *tmp;
    int levels; /* max_value + 1: 256 or 65536 */
    float maxv;
    int32_t *lut;  /* levels entries */
    int64_t *hist; /* levels entries */
} sm__ra_ctx;

/* A sample as a table index: values are integers in [0, max_value] by construction; clamp anyway
 * so that no value can index outside the tables. */
static inline int sm__level(const sm__ra_ctx *x, float v)
{
    int i = (int)v;
    return i < 0 ? 0 : i >= x->levels ? x->levels - 1 : i;
}

static void sm__apply_lut(sm__ra_ctx *x, int c)
{
    sm_image *im = x->im;
    size_t n = (size_t)im->width * im->height;
    for (size_t i = 0; i < n; i++) {
        float *v = &im->data[i * im->channels + c];
        *v = (float)x->lut[sm__level(x, *v)];
    }
}

static void sm__histogram(sm__ra_ctx *x, int c)
{
    sm_image *im = x->im;
    memset(x->hist, 0, sizeof(int64_t) * x->levels);
    size_t n = (size_t)im->width * im->height;
    for (size_t i = 0; i < n; i++) x->hist[sm__level(x, im->data[i * im->channels + c])]++;
}

static void sm__autocontrast(sm__ra_ctx *x)
{
    for (int c = 0; c < x->im->channels; c++) {
        sm__histogram(x, c);
        int lo = 0, hi = x->levels - 1;
        while (lo < x->levels && !x->hist[lo]) lo++;
        while (hi >= 0 && !x->hist[hi]) hi--;
        if (hi <= lo) continue;
        double scale = (double)x->maxv / (hi - lo), offset = -lo * scale;
        for (int i = 0; i < x->levels; i++) {
            int v = (int)(i * scale + offset);
            x->lut[i] = v < 0 ? 0 : v > (int)x->maxv ? (int)x->maxv : v;
        }
        sm__apply_lut(x, c);
    }
}

static void sm__equalize(sm__ra_ctx *x)
{
    for (int c = 0; c < x->im->channels; c++) {
        sm__histogram(x, c);
        int64_t total = 0, last = 0, nonzero = 0;
        for (int i = 0; i < x->levels; i++)
            if (x->hist[i]) total += x->hist[i], last = x->hist[i], nonzero++;
        if (nonzero <= 1) continue;
        int64_t step = (total - last) / x->levels;
        if (!step) continue;
        int64_t n = step / 2;
        for (int i = 0; i < x->levels; i++) {
            int64_t v = n / step;
            x->lut[i] = v > (int64_t)x->maxv ? (int32_t)x->maxv : (int32_t)v;
            n += x->hist[i];
        }
        sm__apply_lut(x, c);
    }
}

/* kind: invert, posterize (arg = bits kept), solarize (arg = threshold), solarize-add
 * (arg = addend, threshold half scale). Thresholds arrive in 8-bit units and are scaled. */
static void sm__point(sm__ra_ctx *x, int kind, int arg)
{
    int depth = x->levels == 256 ? 8 : 16, scale = x->levels / 256, M = (int)x->maxv;
    for (int i = 0; i < x->levels; i++) {
        int v = i;
        switch (kind) {
        case SM__RA_INVERT: v = M - i; break;
        case SM__RA_POSTERIZE:
            if (arg < 8) v = i & ~((1 << (depth - arg)) - 1) & M;
            break;
        case SM__RA_SOLARIZE: v = i < arg * scale ? i : M - i; break;
        case SM__RA_SOLARIZE_ADD:
            v = i < 128 * scale ? (i + arg * scale > M ? M : i + arg * scale) : i;
            break;
        default: break;
        }
        x->lut[i] = v;
    }
    for (int c = 0; c < x->im->channels; c++) sm__apply_lut(x, c);
}

/* ---- ImageEnhance: blend(degenerate, image, f) ------------------------------------------- */

/* out = deg + f * (img - deg), truncated like Pillow's ImagingBlend, clipped outside [0, 1]. */
static inline float sm__blend(float deg, float img, float f, float maxv)
{
    float t = deg + f * (img - deg);
    if (f >= 0.0f && f <= 1.0f) return (float)(int)t;
    if (t <= 0.0f) return 0.0f;
    if (t >= maxv) return maxv;
    return (float)(int)t;
}

/* Pillow "L" of pixel p (3 channels), or the rounded band mean otherwise. */
static inline float sm__luma(const float *p, int C)
{
    if (C == 3)
        return (float)(((int64_t)p[0] * 19595 + (int64_t)p[1] * 38470 + (int64_t)p[2] * 7471 +
                        0x8000) >> 16);
    if (C == 1) return p[0];
    double s = 0;
    for (int c = 0; c < C; c++) s += p[c];
    return (float)(int64_t)(s / C + 0.5);
}

static void sm__enhance(sm__ra_ctx *x, int kind, float f)
{
    sm_image *im = x->im;
    int C = im->channels, W = im->width, H = im->height;
    size_t n = (size_t)W * H;
    if (kind == SM__RA_COLOR) {
        for (size_t i = 0; i < n; i++) {
            float *p = im->data + i * C, l = sm__luma(p, C);
            for (int c = 0; c < C; c++) p[c] = sm__blend(l, p[c], f, x->maxv);
        }
    } else if (kind == SM__RA_CONTRAST || kind == SM__RA_BRIGHTNESS) {
        float deg = 0.0f;
        if (kind == SM__RA_CONTRAST) {
            double s = 0;
            for (size_t i = 0; i < n; i++) s += sm__luma(im->data + i * C, C);
            deg = (float)(int64_t)(s / (double)n + 0.5);
        }
        for (size_t i = 0; i < n * C; i++) im->data[i] = sm__blend(deg, im->data[i], f, x->maxv);
    } else { /* sharpness: degenerate = SMOOTH filter (1 1 1 / 1 5 1 / 1 1 1) / 13, borders kept */
        if (W < 3 || H < 3) return;
        memcpy(x->tmp->data, im->data, sizeof(float) * n * C);
        const float k1 = 1.0f / 13.0f, k5 = 5.0f / 13.0f;
        for (int y = 1; y < H - 1; y++)
            for (int xx = 1; xx < W - 1; xx++)
                for (int c = 0; c < C; c++) {
                    const float *r0 = x->tmp->data + ((size_t)(y - 1) * W + xx) * C + c;
                    const float *r1 = r0 + (size_t)W * C, *r2 = r1 + (size_t)W * C;
                    float ss = 0.5f;
                    ss += r2[-C] * k1 + r2[0] * k1 + r2[C] * k1;
                    ss += r1[-C] * k1 + r1[0] * k5 + r1[C] * k1;
                    ss += r0[-C] * k1 + r0[0] * k1 + r0[C] * k1;
                    float deg = ss <= 0.0f ? 0.0f : ss >= x->maxv ? x->maxv : (float)(int)ss;
                    float *p = im->data + ((size_t)y * W + xx) * C + c;
                    *p = sm__blend(deg, *p, f, x->maxv);
                }
    }
}

/* ---- affine transforms (Image.transform(AFFINE) with fill colour) ------------------------ */

static inline int sm__clip_idx(int v, int n) { return v < 0 ? 0 : v < n ? v : n - 1; }

static inline double sm__cubic(double v1, double v2, double v3, double v4, double d)
{
    double p1 = v2, p2 = -v1 + v3, p3 = 2 * (v1 - v2) + v3 - v4, p4 = -v1 + v2 - v3 + v4;
    return p1 + d * (p2 + d * (p3 + d * p4));
}

/* Output (x, y) samples input at (a0 (x+.5) + a1 (y+.5) + a2, a3 (x+.5) + a4 (y+.5) + a5). */
static void sm__affine(sm__ra_ctx *x, const double a[6], const float *fill, sm_interp interp)
{
    sm_image *src = x->tmp, *dst = x->im;
    int C = dst->channels, W = dst->width, H = dst->height;
    memcpy(src->data, dst->data, sizeof(float) * (size_t)W * H * C);
    float M = x->maxv;
    for (int oy = 0; oy < H; oy++)
        for (int ox = 0; ox < W; ox++) {
            float *out = dst->data + ((size_t)oy * W + ox) * C;
            double xin = a[0] * (ox + 0.5) + a[1] * (oy + 0.5) + a[2];
            double yin = a[3] * (ox + 0.5) + a[4] * (oy + 0.5) + a[5];
            if (xin < 0.0 || xin >= W || yin < 0.0 || yin >= H) {
                for (int c = 0; c < C; c++) out[c] = fill[c];
                continue;
            }
            xin -= 0.5;
            yin -= 0.5;
            int xi = (int)floor(xin), yi = (int)floor(yin);
            double dx = xin - xi, dy = yin - yi;
            if (interp != SM_INTERP_BICUBIC) { /* bilinear */
                int x0 = sm__clip_idx(xi, W), x1 = sm__clip_idx(xi + 1, W);
                const float *r0 = src->data + (size_t)sm__clip_idx(yi, H) * W * C;
                const float *r1 = yi + 1 >= 0 && yi + 1 < H ? src->data + (size_t)(yi + 1) * W * C : NULL;
                for (int c = 0; c < C; c++) {
                    double v1 = r0[x0 * C + c] + (r0[x1 * C + c] - r0[x0 * C + c]) * dx;
                    double v2 = r1 ? r1[x0 * C + c] + (r1[x1 * C + c] - r1[x0 * C + c]) * dx : v1;
                    out[c] = (float)(int)(v1 + (v2 - v1) * dy);
                }
                continue;
            }
            xi--;
            yi--;
            int xs[4];
            for (int k = 0; k < 4; k++) xs[k] = sm__clip_idx(xi + k, W) * C;
            for (int c = 0; c < C; c++) {
                double v[4];
                for (int k = 0; k < 4; k++) {
                    int yy = yi + k;
                    if (k == 0) yy = sm__clip_idx(yy, H);
                    else if (yy < 0 || yy >= H) {
                        v[k] = v[k - 1];
                        continue;
                    }
                    const float *r = src->data + (size_t)yy * W * C + c;
                    v[k] = sm__cubic(r[xs[0]], r[xs[1]], r[xs[2]], r[xs[3]], dx);
                }
                double o = sm__cubic(v[0], v[1], v[2], v[3], dy);
                out[c] = o <= 0.0 ? 0.0f : o >= M ? M : (float)(int)o;
            }
        }
}

static double sm__round15(double v) { return nearbyint(v * 1e15) / 1e15; }

static void sm__rotate(sm__ra_ctx *x, double deg, const float *fill, sm_interp interp)
{
    deg = fmod(deg, 360.0);
    if (deg < 0) deg += 360.0;
    if (deg == 0.0) return;
    double th = -deg * M_PI / 180.0, cx = x->im->width / 2.0, cy = x->im->height / 2.0;
    double a[6] = {sm__round15(cos(th)), sm__round15(sin(th)), 0.0, sm__round15(-sin(th)),
                   sm__round15(cos(th)), 0.0};
    a[2] = a[0] * -cx + a[1] * -cy + 0.0 + cx;
    a[5] = a[3] * -cx + a[4] * -cy + 0.0 + cy;
    sm__affine(x, a, fill, interp);
}

/* ---- RandAugment --------------------------------------------------------------------------- */

static double sm__signed(double v, sm_rng *r) { return sm_rng_uniform(r) > 0.5 ? -v : v; }

static void sm__apply_op(sm__ra_ctx *x, int op, bool inc, double m, const float *fill,
                         sm_interp interp, sm_rng *r)
{
    double l = m / 10.0;
    int W = x->im->width, H = x->im->height;
    switch (op) {
    case SM__RA_AUTOCONTRAST: sm__autocontrast(x); break;
    case SM__RA_EQUALIZE: sm__equalize(x); break;
    case SM__RA_INVERT: sm__point(x, SM__RA_INVERT, 0); break;
    case SM__RA_ROTATE: sm__rotate(x, sm__signed(30.0 * l, r), fill, interp); break;
    case SM__RA_POSTERIZE: sm__point(x, op, inc ? 4 - (int)(4.0 * l) : (int)(4.0 * l)); break;
    case SM__RA_SOLARIZE: sm__point(x, op, inc ? 256 - (int)(256.0 * l) : (int)(256.0 * l)); break;
    case SM__RA_SOLARIZE_ADD: sm__point(x, op, (int)(110.0 * l)); break;
    case SM__RA_COLOR:
    case SM__RA_CONTRAST:
    case SM__RA_BRIGHTNESS:
    case SM__RA_SHARPNESS: {
        double f = inc ? 1.0 + sm__signed(0.9 * l, r) : 1.8 * l + 0.1;
        sm__enhance(x, op, (float)f);
        break;
    }
    case SM__RA_SHEAR_X:
    case SM__RA_SHEAR_Y: {
        double s = sm__signed(0.3 * l, r);
        double a[6] = {1, op == SM__RA_SHEAR_X ? s : 0, 0, op == SM__RA_SHEAR_Y ? s : 0, 1, 0};
        sm__affine(x, a, fill, interp);
        break;
    }
    default: { /* translate by a fraction of the size */
        double t = sm__signed(0.45 * l, r);
        double a[6] = {1, 0, op == SM__RA_TRANSLATE_X ? t * W : 0, 0, 1,
                       op == SM__RA_TRANSLATE_Y ? t * H : 0};
        sm__affine(x, a, fill, interp);
        break;
    }
    }
}

int sm_randaug_apply(const sm_randaug *ra, sm_image *im, const float *fill, sm_interp interp,
                     sm_rng *r, sm_image *tmp, sm_error *err)
{
    sm__ra_ctx x = {im, tmp, (int)im->max_value + 1, im->max_value, NULL, NULL};
    if (x.levels != 256 && x.levels != 65536)
        return sm_error_set(err, SM_EINVAL, NULL, 0, 0, NULL, "RandAugment needs 8- or 16-bit samples");
    int rc = sm_image_reserve(tmp, im->width, im->height, im->channels, im->max_value, (int64_t)1 << 40, err);
    if (rc) return rc;
    x.lut = malloc(sizeof(int32_t) * x.levels);
    x.hist = malloc(sizeof(int64_t) * x.levels);
    if (!x.lut || !x.hist) {
        free(x.lut);
        free(x.hist);
        return sm_error_set(err, SM_ENOMEM, NULL, 0, 0, NULL, "out of memory");
    }
    for (int k = 0; k < ra->num_ops; k++) {
        int op = (int)sm_rng_below(r, SM__RA_COUNT);
        if (ra->prob < 1.0 && sm_rng_uniform(r) > ra->prob) continue;
        double m = ra->magnitude;
        if (ra->magnitude_std > 0) m += ra->magnitude_std * sm_rng_normal(r);
        m = m < 0 ? 0 : m > ra->magnitude_max ? ra->magnitude_max : m;
        sm__apply_op(&x, op, ra->increasing, m, fill, interp, r);
    }
    free(x.lut);
    free(x.hist);
    return 0;
}
