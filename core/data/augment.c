/* core/data/augment.c - tensor-side augmentations: ToTensor+Normalize, timm's RandomErasing
 * and batch Mixup/CutMix with label-smoothed soft targets (spec §8). */
#include "data/data_internal.h"

#include <math.h>

/* im (H, W, C) -> out (C, H, W) */
void sm_image_normalize(const sm_image *im, const float *mean, const float *std, float *out)
{
    int C = im->channels;
    size_t hw = (size_t)im->width * im->height;
    for (int c = 0; c < C; c++) {
        /* ((v / max) - mean) / std computed as v * a + b, in float like torchvision */
        float inv = 1.0f / im->max_value, m = mean[c], s = std[c];
        float *o = out + c * hw;
        const float *p = im->data + c;
        for (size_t i = 0; i < hw; i++) o[i] = (p[i * C] * inv - m) / s;
    }
}

/* chw: (C, H, W) */
void sm_random_erase(float *chw, int C, int H, int W, double prob, sm_erase_mode mode, int count,
                     sm_rng *r)
{
    if (prob <= 0.0 || sm_rng_uniform(r) >= prob) return;
    double area = (double)H * W, la = log(0.3), lb = log(1.0 / 0.3);
    if (count < 1) count = 1;
    for (int n = 0; n < count; n++) {
        for (int attempt = 0; attempt < 10; attempt++) {
            double target = (0.02 + (1.0 / 3.0 - 0.02) * sm_rng_uniform(r)) * area / count;
            double aspect = exp(la + (lb - la) * sm_rng_uniform(r));
            int h = (int)nearbyint(sqrt(target * aspect)), w = (int)nearbyint(sqrt(target / aspect));
            if (!(w < W && h < H)) continue;
            int top = (int)sm_rng_below(r, (uint64_t)(H - h + 1));
            int left = (int)sm_rng_below(r, (uint64_t)(W - w + 1));
            for (int c = 0; c < C; c++) {
                float cv = mode == SM_ERASE_RAND ? (float)sm_rng_normal(r) : 0.0f;
                for (int y = top; y < top + h; y++)
                    for (int x = left; x < left + w; x++)
                        chw[((size_t)c * H + y) * W + x] =
                            mode == SM_ERASE_PIXEL ? (float)sm_rng_normal(r) : cv;
            }
            break;
        }
    }
}

/* Gamma(shape, 1) by Marsaglia and Tsang; shape < 1 boosted with U^(1/shape). */
static double sm__gamma(double shape, sm_rng *r)
{
    double boost = 1.0;
    if (shape < 1.0) {
        double u;
        do u = sm_rng_uniform(r);
        while (u <= 0.0);
        boost = pow(u, 1.0 / shape);
        shape += 1.0;
    }
    double d = shape - 1.0 / 3.0, c = 1.0 / sqrt(9.0 * d);
    for (;;) {
        double x = sm_rng_normal(r), v = 1.0 + c * x;
        if (v <= 0.0) continue;
        v = v * v * v;
        double u = sm_rng_uniform(r);
        if (u < 1.0 - 0.0331 * x * x * x * x) return d * v * boost;
        if (u > 0.0 && log(u) < 0.5 * x * x + d * (1.0 - v + log(v))) return d * v * boost;
    }
}

static double sm__beta(double a, sm_rng *r)
{
    double x = sm__gamma(a, r), y = sm__gamma(a, r);
    return x + y > 0.0 ? x / (x + y) : 0.5;
}

static inline int sm__clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

/* images: (B, C, H, W); labels: (B); targets: (B, K) */
double sm_mixup_apply(float *images, int B, int C, int H, int W, const int *labels, int K,
                      double mixup_alpha, double cutmix_alpha, double mix_prob, double switch_prob,
                      double smoothing, sm_rng *r, float *targets)
{
    double lam = 1.0;
    bool cutmix = false;
    if ((mixup_alpha > 0.0 || cutmix_alpha > 0.0) && sm_rng_uniform(r) < mix_prob) {
        if (mixup_alpha > 0.0 && cutmix_alpha > 0.0) {
            cutmix = sm_rng_uniform(r) < switch_prob;
            lam = sm__beta(cutmix ? cutmix_alpha : mixup_alpha, r);
        } else if (mixup_alpha > 0.0) {
            lam = sm__beta(mixup_alpha, r);
        } else {
            cutmix = true;
            lam = sm__beta(cutmix_alpha, r);
        }
    }
    size_t img = (size_t)C * H * W;
    if (lam != 1.0 && cutmix) {
        double ratio = sqrt(1.0 - lam);
        int ch = (int)(H * ratio), cw = (int)(W * ratio);
        int cy = (int)sm_rng_below(r, (uint64_t)H), cx = (int)sm_rng_below(r, (uint64_t)W);
        int y0 = sm__clampi(cy - ch / 2, 0, H), y1 = sm__clampi(cy + ch / 2, 0, H);
        int x0 = sm__clampi(cx - cw / 2, 0, W), x1 = sm__clampi(cx + cw / 2, 0, W);
        for (int i = 0; i < B / 2; i++) { /* swap the box between i and its mirror B-1-i */
            float *a = images + i * img, *b = images + (size_t)(B - 1 - i) * img;
            for (int c = 0; c < C; c++)
                for (int y = y0; y < y1; y++)
                    for (int x = x0; x < x1; x++) {
                        size_t k = ((size_t)c * H + y) * W + x;
                        float t = a[k];
                        a[k] = b[k];
                        b[k] = t;
                    }
        }
        lam = 1.0 - (double)(y1 - y0) * (x1 - x0) / ((double)H * W);
    } else if (lam != 1.0) {
        float l = (float)lam, m = (float)(1.0 - lam);
        for (int i = 0; i < B / 2; i++) {
            float *a = images + i * img, *b = images + (size_t)(B - 1 - i) * img;
            for (size_t k = 0; k < img; k++) {
                float va = a[k], vb = b[k];
                a[k] = va * l + vb * m;
                b[k] = vb * l + va * m;
            }
        }
    }
    if (targets) {
        double off = smoothing / K, on = 1.0 - smoothing + off;
        for (int i = 0; i < B; i++) {
            float *t = targets + (size_t)i * K;
            int ya = labels[i], yb = labels[B - 1 - i];
            for (int k = 0; k < K; k++)
                t[k] = (float)(lam * (k == ya ? on : off) + (1.0 - lam) * (k == yb ? on : off));
        }
    }
    return lam;
}
