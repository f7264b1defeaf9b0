/* core/data/resize.c - PIL-compatible resampling (Image.crop(box).resize(size, filter)),
 * horizontal flip and torchvision's RandomResizedCrop parameters.
 *
 * Resampling is separable. For each output coordinate o of an axis of n_in -> n_out samples:
 * scale = n_in/n_out, fs = max(scale, 1), support = filter_support * fs, centre
 * c = (o + 0.5) * scale, taps i in [int(c - support + 0.5), int(c + support + 0.5)) clipped to
 * the input, weight filter((i - c + 0.5) / fs), weights normalised to sum 1. The horizontal pass
 * runs first (only over the rows the vertical pass needs). 8-bit images use 22-bit fixed-point
 * weights and round each pass to 8 bits, as Pillow does; other depths use doubles and round to
 * integers. */
#include "data/data_internal.h"

#include <math.h>

#define SM__PREC 22 /* fixed-point fraction bits of the 8-bit path */

int sm_interp_parse(const char *s, sm_interp *out)
{
    static const char *const names[SM_INTERP_COUNT] = {"nearest", "bilinear", "bicubic"};
    for (int i = 0; s && i < SM_INTERP_COUNT; i++)
        if (sm__strcasecmp(s, names[i]) == 0) {
            *out = (sm_interp)i;
            return 0;
        }
    return SM_EINVAL;
}

static double sm__filter(sm_interp f, double x)
{
    if (x < 0) x = -x;
    switch (f) {
    case SM_INTERP_BILINEAR: return x < 1.0 ? 1.0 - x : 0.0;
    case SM_INTERP_BICUBIC: /* Keys cubic, a = -0.5 */
        if (x < 1.0) return (1.5 * x - 2.5) * x * x + 1.0;
        if (x < 2.0) return ((-0.5 * x + 2.5) * x - 4.0) * x + 2.0;
        return 0.0;
    default: return x < 0.5 ? 1.0 : 0.0; /* nearest as a box of width 1 */
    }
}

static double sm__support(sm_interp f)
{
    return f == SM_INTERP_BICUBIC ? 2.0 : f == SM_INTERP_BILINEAR ? 1.0 : 0.5;
}

/* Weights of one axis: for output o, taps first[o] .. first[o]+count[o]-1 with weights
 * w[o*k ...] (doubles) and fixed-point copies wi. Returns k (taps per output) or -1. */
typedef struct sm__axis {
    int k;
    int *first, *count;
    double *w;
    int32_t *wi;
} sm__axis;

static void sm__axis_free(sm__axis *a)
{
    free(a->first);
    free(a->count);
    free(a->w);
    free(a->wi);
}

static int sm__axis_init(sm__axis *a, int n_in, int n_out, sm_interp f)
{
    memset(a, 0, sizeof *a);
    double scale = (double)n_in / n_out, fs = scale < 1.0 ? 1.0 : scale;
    double support = sm__support(f) * fs;
    int k = (int)ceil(support) * 2 + 1;
    a->k = k;
    a->first = malloc(sizeof(int) * n_out);
    a->count = malloc(sizeof(int) * n_out);
    a->w = calloc((size_t)n_out * k, sizeof(double));
    a->wi = calloc((size_t)n_out * k, sizeof(int32_t));
    if (!a->first || !a->count || !a->w || !a->wi) {
        sm__axis_free(a);
        return -1;
    }
    for (int o = 0; o < n_out; o++) {
        double c = (o + 0.5) * scale, sum = 0.0;
        int lo = (int)(c - support + 0.5), hi = (int)(c + support + 0.5);
        if (lo < 0) lo = 0;
        if (hi > n_in) hi = n_in;
        int n = hi - lo;
        if (n > k) n = k;
        double *w = a->w + (size_t)o * k;
        for (int i = 0; i < n; i++) sum += w[i] = sm__filter(f, (i + lo - c + 0.5) / fs);
        for (int i = 0; i < n; i++) {
            if (sum != 0.0) w[i] /= sum;
            double v = w[i] * (1 << SM__PREC);
            a->wi[(size_t)o * k + i] = (int32_t)(v < 0 ? v - 0.5 : v + 0.5);
        }
        a->first[o] = lo;
        a->count[o] = n;
    }
    return k;
}

static inline float sm__clip8_fixed(int32_t ss)
{
    if (ss >= (255 << SM__PREC)) return 255.0f;
    if (ss <= 0) return 0.0f;
    return (float)(ss >> SM__PREC);
}

/* One pass along a line: n_out outputs from `src` (element stride sstep between taps),
 * C channels interleaved, into dst (stride dstep between outputs). */
static void sm__pass(const sm__axis *a, int n_out, const float *src, ptrdiff_t sstep, int C,
                     float *dst, ptrdiff_t dstep, bool eight, float maxv)
{
    for (int o = 0; o < n_out; o++) {
        const float *s = src + (ptrdiff_t)a->first[o] * sstep;
        int n = a->count[o];
        float *d = dst + (ptrdiff_t)o * dstep;
        if (eight) {
            const int32_t *w = a->wi + (size_t)o * a->k;
            for (int c = 0; c < C; c++) {
                int32_t ss = 1 << (SM__PREC - 1);
                for (int i = 0; i < n; i++) ss += (int32_t)s[i * sstep + c] * w[i];
                d[c] = sm__clip8_fixed(ss);
            }
        } else {
            const double *w = a->w + (size_t)o * a->k;
            for (int c = 0; c < C; c++) {
                double ss = 0.0;
                for (int i = 0; i < n; i++) ss += s[i * sstep + c] * w[i];
                d[c] = sm__clampf(ss, maxv);
            }
        }
    }
}

int sm_image_resize(const sm_image *src, sm_rect box, int out_w, int out_h, sm_interp interp,
                    sm_image *dst, sm_error *err)
{
    if (box.w < 1 || box.h < 1 || box.x < 0 || box.y < 0 || box.x + box.w > src->width ||
        box.y + box.h > src->height || out_w < 1 || out_h < 1 || dst == src)
        return sm_error_set(err, SM_EINVAL, NULL, 0, 0, NULL,
                            "bad resize: box (%d,%d %dx%d) of a %dx%d image to %dx%d", box.x,
                            box.y, box.w, box.h, src->width, src->height, out_w, out_h);
    int C = src->channels;
    bool eight = src->max_value == 255.0f;
    int rc = sm_image_reserve(dst, out_w, out_h, C, src->max_value, (int64_t)1 << 40, err);
    if (rc) return rc;
    sm__axis ax, ay;
    if (sm__axis_init(&ax, box.w, out_w, interp) < 0)
        return sm_error_set(err, SM_ENOMEM, NULL, 0, 0, NULL, "out of memory");
    if (sm__axis_init(&ay, box.h, out_h, interp) < 0) {
        sm__axis_free(&ax);
        return sm_error_set(err, SM_ENOMEM, NULL, 0, 0, NULL, "out of memory");
    }
    ptrdiff_t srow = (ptrdiff_t)src->width * C;
    const float *base = src->data + (ptrdiff_t)box.y * srow + (ptrdiff_t)box.x * C;
    bool need_h = out_w != box.w, need_v = out_h != box.h;
    /* rows the vertical pass reads */
    int y_first = ay.first[0];
    int y_last = ay.first[out_h - 1] + ay.count[out_h - 1];
    if (!need_v) {
        y_first = 0;
        y_last = box.h;
    }
    float *tmp = NULL;
    const float *vsrc = base;
    ptrdiff_t vrow = srow;
    if (need_h) {
        int rows = y_last - y_first;
        tmp = malloc(sizeof(float) * (size_t)rows * out_w * C);
        if (!tmp) {
            sm__axis_free(&ax);
            sm__axis_free(&ay);
            return sm_error_set(err, SM_ENOMEM, NULL, 0, 0, NULL, "out of memory");
        }
        for (int y = 0; y < rows; y++)
            sm__pass(&ax, out_w, base + (ptrdiff_t)(y + y_first) * srow, C, C,
                     tmp + (size_t)y * out_w * C, C, eight, src->max_value);
        vsrc = tmp - (ptrdiff_t)y_first * out_w * C; /* so row y of the box is at vsrc + y*vrow */
        vrow = (ptrdiff_t)out_w * C;
    }
    if (need_v) {
        for (int x = 0; x < out_w; x++)
            sm__pass(&ay, out_h, vsrc + (ptrdiff_t)x * C, vrow, C, dst->data + (size_t)x * C,
                     (ptrdiff_t)out_w * C, eight, src->max_value);
    } else {
        for (int y = 0; y < out_h; y++)
            memcpy(dst->data + (size_t)y * out_w * C, vsrc + (ptrdiff_t)y * vrow,
                   sizeof(float) * (size_t)out_w * C);
    }
    free(tmp);
    sm__axis_free(&ax);
    sm__axis_free(&ay);
    return 0;
}

void sm_image_flip(sm_image *im)
{
    int C = im->channels, W = im->width;
    for (int y = 0; y < im->height; y++) {
        float *row = im->data + (size_t)y * W * C;
        for (int x = 0; x < W / 2; x++)
            for (int c = 0; c < C; c++) {
                float t = row[x * C + c];
                row[x * C + c] = row[(W - 1 - x) * C + c];
                row[(W - 1 - x) * C + c] = t;
            }
    }
}

sm_rect sm_random_resized_crop(int W, int H, double scale_min, double scale_max,
                               double ratio_min, double ratio_max, sm_rng *r)
{
    double area = (double)W * H, lr0 = log(ratio_min), lr1 = log(ratio_max);
    for (int attempt = 0; attempt < 10; attempt++) {
        double target = area * (scale_min + (scale_max - scale_min) * sm_rng_uniform(r));
        double aspect = exp(lr0 + (lr1 - lr0) * sm_rng_uniform(r));
        int w = (int)nearbyint(sqrt(target * aspect)), h = (int)nearbyint(sqrt(target / aspect));
        if (w > 0 && w <= W && h > 0 && h <= H) {
            int y = (int)sm_rng_below(r, (uint64_t)(H - h + 1));
            int x = (int)sm_rng_below(r, (uint64_t)(W - w + 1));
            return (sm_rect){x, y, w, h};
        }
    }
    double in_ratio = (double)W / H;
    int w = W, h = H;
    if (in_ratio < ratio_min) {
        w = W;
        h = (int)nearbyint(w / ratio_min);
    } else if (in_ratio > ratio_max) {
        h = H;
        w = (int)nearbyint(h * ratio_max);
    }
    if (h > H) h = H;
    if (w > W) w = W;
    return (sm_rect){(W - w) / 2, (H - h) / 2, w, h};
}
