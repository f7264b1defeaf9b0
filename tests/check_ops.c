/* tests/check_ops.c - every op: forward against a naive double-precision reference written
 * here from the PyTorch semantics, and gradients against central finite differences
 * (4-point stencil, accumulated in double) of L = Σ w ⊙ op(x) with a fixed random w, so
 * transposition bugs show. Also strided-view inputs, error messages, and bitwise
 * independence of the thread count. */
#include "testutil.h"

#include <math.h>
#include <string.h>

#define MAXIN 4

typedef struct op_case op_case;
struct op_case {
    const char *name;
    int n_in;
    int ndim[MAXIN];
    int64_t shape[MAXIN][SM_MAX_DIMS];
    unsigned grad;  /* bit i: input i requires grad */
    float lo, hi;   /* random init range */
    /* optional: overwrite inputs after random init (masks, targets) */
    void (*init)(sm_tensor **in);
    sm_tensor *(*run)(sm_ctx *ctx, sm_tensor **in);
    /* naive reference of the output, numel(out) doubles */
    void (*ref)(sm_tensor **in, double *out);
    /* optional: skip FD at element i of input k (kinks) */
    bool (*skip)(sm_tensor **in, int k, int64_t i, double eps);
};

/* ---- naive references ------------------------------------------------------------------ */

#define T(k) (in[k]->data)

static void ref_linear(sm_tensor **in, double *o) /* x (2,3,5), w (4,5), b (4) */
{
    for (int r = 0; r < 6; r++)
        for (int j = 0; j < 4; j++) {
            double s = T(2)[j];
            for (int p = 0; p < 5; p++) s += (double)T(0)[r * 5 + p] * T(1)[j * 5 + p];
            o[r * 4 + j] = s;
        }
}
static sm_tensor *run_linear(sm_ctx *c, sm_tensor **in) { return sm_linear(c, in[0], in[1], in[2]); }

/* x = transposed view (6, 5) of base (5, 6); w (3, 5), no bias */
static sm_tensor *run_linear_view(sm_ctx *c, sm_tensor **in)
{
    sm_tensor *x = sm_view(c, in[0], 2, SM_SHAPE(6, 5), SM_SHAPE(1, 6), 0);
    return sm_linear(c, x, in[1], NULL);
}
static void ref_linear_view(sm_tensor **in, double *o)
{
    for (int i = 0; i < 6; i++)
        for (int j = 0; j < 3; j++) {
            double s = 0;
            for (int p = 0; p < 5; p++) s += (double)T(0)[p * 6 + i] * T(1)[j * 5 + p];
            o[i * 3 + j] = s;
        }
}

/* generic batched matmul reference: A(t, i, p), B(t, p, j) through index functions */
static void mm_ref(const float *a, const float *b, double *o, int batch, int m, int k, int n,
                   bool ta, bool tb, bool b2d)
{
    for (int t = 0; t < batch; t++)
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++) {
                double s = 0;
                for (int p = 0; p < k; p++) {
                    double av = ta ? a[t * k * m + p * m + i] : a[t * m * k + i * k + p];
                    const float *bb = b + (b2d ? 0 : t * k * n);
                    double bv = tb ? bb[j * k + p] : bb[p * n + j];
                    s += av * bv;
                }
                o[(t * m + i) * n + j] = s;
            }
}
static sm_tensor *run_mm_nn(sm_ctx *c, sm_tensor **in) { return sm_matmul(c, in[0], in[1], 0, 0); }
static void ref_mm_nn(sm_tensor **in, double *o) { mm_ref(T(0), T(1), o, 2, 3, 4, 5, 0, 0, 0); }
static sm_tensor *run_mm_tt(sm_ctx *c, sm_tensor **in) { return sm_matmul(c, in[0], in[1], 1, 1); }
static void ref_mm_tt(sm_tensor **in, double *o) { mm_ref(T(0), T(1), o, 2, 3, 4, 5, 1, 1, 0); }
static void ref_mm_shared(sm_tensor **in, double *o) { mm_ref(T(0), T(1), o, 2, 3, 4, 5, 0, 0, 1); }
static void ref_mm_shared_ta(sm_tensor **in, double *o)
{
    mm_ref(T(0), T(1), o, 2, 3, 4, 5, 1, 0, 1);
}
static sm_tensor *run_mm_shared_ta(sm_ctx *c, sm_tensor **in)
{
    return sm_matmul(c, in[0], in[1], 1, 0);
}
/* a: view (2, 3, 4) of base (3, 2, 4) with the first two dims swapped; b (4, 5) shared */
static sm_tensor *run_mm_view(sm_ctx *c, sm_tensor **in)
{
    sm_tensor *a = sm_view(c, in[0], 3, SM_SHAPE(2, 3, 4), SM_SHAPE(4, 8, 1), 0);
    return sm_matmul(c, a, in[1], 0, 0);
}
static void ref_mm_view(sm_tensor **in, double *o)
{
    for (int t = 0; t < 2; t++)
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 5; j++) {
                double s = 0;
                for (int p = 0; p < 4; p++) s += (double)T(0)[i * 8 + t * 4 + p] * T(1)[p * 5 + j];
                o[(t * 3 + i) * 5 + j] = s;
            }
}

/* a (2,3,4) with b broadcast through bstride (strides of b over a's 3 dims) */
static void bin_ref(sm_tensor **in, double *o, const int64_t bs[3], bool mul)
{
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++)
            for (int k = 0; k < 4; k++) {
                double a = T(0)[(i * 3 + j) * 4 + k], b = T(1)[i * bs[0] + j * bs[1] + k * bs[2]];
                o[(i * 3 + j) * 4 + k] = mul ? a * b : a + b;
            }
}
static sm_tensor *run_add(sm_ctx *c, sm_tensor **in) { return sm_add(c, in[0], in[1]); }
static sm_tensor *run_mul(sm_ctx *c, sm_tensor **in) { return sm_mul(c, in[0], in[1]); }
static void ref_add_same(sm_tensor **in, double *o) { bin_ref(in, o, (int64_t[]){12, 4, 1}, 0); }
static void ref_add_suffix(sm_tensor **in, double *o) { bin_ref(in, o, (int64_t[]){0, 0, 1}, 0); }
static void ref_add_general(sm_tensor **in, double *o) { bin_ref(in, o, (int64_t[]){4, 0, 1}, 0); }
static void ref_mul_general(sm_tensor **in, double *o) { bin_ref(in, o, (int64_t[]){0, 1, 0}, 1); }
static void ref_mul_suffix(sm_tensor **in, double *o) { bin_ref(in, o, (int64_t[]){0, 4, 1}, 1); }

static sm_tensor *run_scale(sm_ctx *c, sm_tensor **in) { return sm_scale(c, in[0], -1.5f); }
static void ref_scale(sm_tensor **in, double *o)
{
    for (int i = 0; i < 12; i++) o[i] = -1.5 * T(0)[i];
}

static void ln_ref(const float *x, const float *w, const float *b, double *o, int rows, int C,
                   int64_t rs, int64_t cs, double eps)
{
    for (int r = 0; r < rows; r++) {
        double m = 0, v = 0;
        for (int j = 0; j < C; j++) m += x[r * rs + j * cs];
        m /= C;
        for (int j = 0; j < C; j++) v += (x[r * rs + j * cs] - m) * (x[r * rs + j * cs] - m);
        v /= C;
        for (int j = 0; j < C; j++)
            o[r * C + j] = (x[r * rs + j * cs] - m) / sqrt(v + eps) * (w ? w[j] : 1.0) +
                           (b ? b[j] : 0.0);
    }
}
static sm_tensor *run_ln(sm_ctx *c, sm_tensor **in) { return sm_layernorm(c, in[0], in[1], in[2], 1e-5f); }
static void ref_ln(sm_tensor **in, double *o) { ln_ref(T(0), T(1), T(2), o, 6, 8, 8, 1, 1e-5); }
/* no affine, on a transposed view (8 rows of 6) of base (6, 8) */
static sm_tensor *run_ln_view(sm_ctx *c, sm_tensor **in)
{
    sm_tensor *x = sm_view(c, in[0], 2, SM_SHAPE(8, 6), SM_SHAPE(1, 8), 0);
    return sm_layernorm(c, x, NULL, NULL, 1e-6f);
}
static void ref_ln_view(sm_tensor **in, double *o) { ln_ref(T(0), NULL, NULL, o, 8, 6, 1, 8, 1e-6); }

static sm_tensor *run_gelu(sm_ctx *c, sm_tensor **in) { return sm_gelu(c, in[0]); }
static void ref_gelu(sm_tensor **in, double *o)
{
    for (int i = 0; i < 21; i++) o[i] = 0.5 * T(0)[i] * (1 + erf(T(0)[i] / sqrt(2.0)));
}

static sm_tensor *run_softmax(sm_ctx *c, sm_tensor **in) { return sm_softmax(c, in[0]); }
/* rows of n: the kernel exponentiates in blocks of 16 lanes plus a padded partial block, so
 * the cases have n = 6 (partial only), 32 (whole blocks only) and 37 (both) */
static void ref_softmax(sm_tensor **in, double *o)
{
    int n = (int)in[0]->shape[in[0]->ndim - 1], rows = (int)(sm_tensor_numel(in[0]) / n);
    for (int r = 0; r < rows; r++) {
        double mx = -INFINITY, s = 0;
        for (int j = 0; j < n; j++) mx = fmax(mx, T(0)[r * n + j]);
        for (int j = 0; j < n; j++) s += exp(T(0)[r * n + j] - mx);
        for (int j = 0; j < n; j++) o[r * n + j] = exp(T(0)[r * n + j] - mx) / s;
    }
}

/* attention reference: qkv element (b, n, c) at q0[b·sb + n·sn + c] */
static void att_ref(const float *q0, int64_t sb, int64_t sn, int B, int N, int H, int D,
                    double scale, const float *bias, const float *mask, int nW, double *o)
{
    int HD = H * D;
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++)
            for (int i = 0; i < N; i++) {
                double s[128], mx = -INFINITY, sum = 0;
                for (int j = 0; j < N; j++) {
                    double d = 0;
                    for (int e = 0; e < D; e++)
                        d += (double)q0[b * sb + i * sn + h * D + e] *
                             q0[b * sb + j * sn + HD + h * D + e];
                    s[j] = scale * d + (bias ? bias[(h * N + i) * N + j] : 0) +
                           (mask ? mask[((b % nW) * N + i) * N + j] : 0);
                    mx = fmax(mx, s[j]);
                }
                for (int j = 0; j < N; j++) sum += (s[j] = exp(s[j] - mx));
                for (int e = 0; e < D; e++) {
                    double v = 0;
                    for (int j = 0; j < N; j++)
                        v += s[j] / sum * q0[b * sb + j * sn + 2 * HD + h * D + e];
                    o[(b * N + i) * HD + h * D + e] = v;
                }
            }
}
static void init_att_mask(sm_tensor **in) /* mask (2, 5, 5): Swin-like -100 blocks */
{
    for (int i = 0; i < 50; i++) T(2)[i] = ((i * 7) % 5 == 0 && i % 5 != i / 5 % 5) ? -100.0f : 0.0f;
}
static sm_tensor *run_att(sm_ctx *c, sm_tensor **in)
{
    return sm_attention(c, in[0], 2, 0.4f, in[1], in[2]);
}
static void ref_att(sm_tensor **in, double *o)
{
    att_ref(T(0), 5 * 18, 18, 4, 5, 2, 3, 0.4f, T(1), T(2), 2, o);
}
/* qkv = tokens 1..5 of base (2, 7, 18): strided batch dim; no bias, no mask */
static sm_tensor *run_att_view(sm_ctx *c, sm_tensor **in)
{
    sm_tensor *qkv = sm_view(c, in[0], 3, SM_SHAPE(2, 5, 18), SM_SHAPE(126, 18, 1), 18);
    return sm_attention(c, qkv, 3, 0.5f, NULL, NULL);
}
static void ref_att_view(sm_tensor **in, double *o)
{
    att_ref(T(0) + 18, 126, 18, 2, 5, 3, 2, 0.5f, NULL, NULL, 1, o);
}

/* A Swin window: N = 36, D = 32. The small-matrix kernel reads v, dO, k and q in place (rows
 * of two 16-float vectors) and packs kᵀ and vᵀ (36 columns, padded to 48). */
static sm_tensor *run_att_window(sm_ctx *c, sm_tensor **in)
{
    return sm_attention(c, in[0], 2, 0.18f, in[1], NULL);
}
static void ref_att_window(sm_tensor **in, double *o)
{
    att_ref(T(0), 36 * 192, 192, 2, 36, 2, 32, 0.18f, T(1), NULL, 1, o);
}

/* The other block shapes of the small kernel: N = 64 with D = 24 (8-lane machines: S in
 * blocks of one row of 8 vectors, P·v of four rows of 3, v read in place; 16-lane machines: 4
 * vectors, v packed to 32 columns) and N = 50 with D = 12 (7 vectors for S, packed v). */
static sm_tensor *run_att_window64(sm_ctx *c, sm_tensor **in)
{
    return sm_attention(c, in[0], 1, 0.2f, in[1], NULL);
}
static void ref_att_window64(sm_tensor **in, double *o)
{
    att_ref(T(0), 64 * 72, 72, 1, 64, 1, 24, 0.2f, T(1), NULL, 1, o);
}
static sm_tensor *run_att_window50(sm_ctx *c, sm_tensor **in)
{
    return sm_attention(c, in[0], 1, 0.3f, in[1], NULL);
}
static void ref_att_window50(sm_tensor **in, double *o)
{
    att_ref(T(0), 50 * 36, 36, 1, 50, 1, 12, 0.3f, T(1), NULL, 1, o);
}

/* N = 70 > 64: the heads go through the backend's GEMMs on contiguous per-head copies of q,
 * k, v and dO (two heads, so that head offsets and strides matter) */
static sm_tensor *run_att_long(sm_ctx *c, sm_tensor **in)
{
    return sm_attention(c, in[0], 2, 0.7f, in[1], NULL);
}
static void ref_att_long(sm_tensor **in, double *o)
{
    att_ref(T(0), 70 * 18, 18, 2, 70, 2, 3, 0.7f, T(1), NULL, 1, o);
}

static const int64_t rp_index[9] = {0, 3, 6, 3, 1, 1, 2, 5, 4};
static sm_tensor *run_relpos(sm_ctx *c, sm_tensor **in) { return sm_relpos_bias(c, in[0], rp_index, 3); }
static void ref_relpos(sm_tensor **in, double *o) /* table (7, 2) -> (2, 3, 3) */
{
    for (int h = 0; h < 2; h++)
        for (int ij = 0; ij < 9; ij++) o[h * 9 + ij] = T(0)[rp_index[ij] * 2 + h];
}

/* x (2, 4, 6, 3), window 2, shift 1: roll then partition, straight from the definitions */
static void ref_winpart(sm_tensor **in, double *o)
{
    int B = 2, H = 4, W = 6, C = 3, w = 2, s = 1, nWc = W / w, nW = (H / w) * nWc;
    for (int b = 0; b < B; b++)
        for (int i = 0; i < H; i++)
            for (int j = 0; j < W; j++)
                for (int c = 0; c < C; c++) {
                    /* rolled[b][i][j] = x[b][(i + s) % H][(j + s) % W] */
                    double v = T(0)[((b * H + (i + s) % H) * W + (j + s) % W) * C + c];
                    int win = b * nW + (i / w) * nWc + j / w, t = (i % w) * w + j % w;
                    o[(win * w * w + t) * C + c] = v;
                }
}
static sm_tensor *run_winpart(sm_ctx *c, sm_tensor **in) { return sm_window_partition(c, in[0], 2, 1); }
static sm_tensor *run_winrev(sm_ctx *c, sm_tensor **in) { return sm_window_reverse(c, in[0], 4, 6, 2, 1); }
static void ref_winrev(sm_tensor **in, double *o) /* windows (12, 4, 3) -> (2, 4, 6, 3) */
{
    int H = 4, W = 6, C = 3, w = 2, s = 1, nWc = 3, nW = 6;
    for (int b = 0; b < 2; b++)
        for (int i = 0; i < H; i++)
            for (int j = 0; j < W; j++)
                for (int c = 0; c < C; c++) {
                    /* out = roll(y, +s): out[i][j] = y[(i - s) mod H][(j - s) mod W] */
                    int yi = (i - s + H) % H, yj = (j - s + W) % W;
                    int win = b * nW + (yi / w) * nWc + yj / w, t = (yi % w) * w + yj % w;
                    o[((b * H + i) * W + j) * C + c] = T(0)[(win * w * w + t) * C + c];
                }
}

static sm_tensor *run_merge(sm_ctx *c, sm_tensor **in) { return sm_patch_merge(c, in[0]); }
static void ref_merge(sm_tensor **in, double *o) /* (2, 4, 6, 3) -> (2, 6, 12) */
{
    static const int di[4] = {0, 1, 0, 1}, dj[4] = {0, 0, 1, 1}; /* x0, x1, x2, x3 */
    for (int b = 0; b < 2; b++)
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 3; j++)
                for (int q = 0; q < 4; q++)
                    for (int c = 0; c < 3; c++)
                        o[((b * 6 + i * 3 + j) * 4 + q) * 3 + c] =
                            T(0)[((b * 4 + 2 * i + di[q]) * 6 + 2 * j + dj[q]) * 3 + c];
}

static sm_tensor *run_pembed(sm_ctx *c, sm_tensor **in) { return sm_patch_embed(c, in[0], in[1], in[2], 2); }
static void ref_pembed(sm_tensor **in, double *o) /* img (2,3,4,6), w (5,3,2,2), b (5) */
{
    for (int b = 0; b < 2; b++)
        for (int hi = 0; hi < 2; hi++)
            for (int wj = 0; wj < 3; wj++)
                for (int d = 0; d < 5; d++) {
                    double s = T(2)[d];
                    for (int c = 0; c < 3; c++)
                        for (int ki = 0; ki < 2; ki++)
                            for (int kj = 0; kj < 2; kj++)
                                s += (double)T(1)[((d * 3 + c) * 2 + ki) * 2 + kj] *
                                     T(0)[((b * 3 + c) * 4 + hi * 2 + ki) * 6 + wj * 2 + kj];
                    o[((b * 2 + hi) * 3 + wj) * 5 + d] = s;
                }
}

static sm_tensor *run_conv(sm_ctx *c, sm_tensor **in) { return sm_conv1x1(c, in[0], in[1], in[2]); }
static void ref_conv(sm_tensor **in, double *o) /* x (2,3,2,3), w (4,3,1,1), b (4) */
{
    for (int b = 0; b < 2; b++)
        for (int co = 0; co < 4; co++)
            for (int p = 0; p < 6; p++) {
                double s = T(2)[co];
                for (int ci = 0; ci < 3; ci++) s += (double)T(1)[co * 3 + ci] * T(0)[(b * 3 + ci) * 6 + p];
                o[(b * 4 + co) * 6 + p] = s;
            }
}

static sm_tensor *run_shuffle(sm_ctx *c, sm_tensor **in) { return sm_pixel_shuffle(c, in[0], 2); }
static void ref_shuffle(sm_tensor **in, double *o) /* (2, 8, 2, 3) -> (2, 2, 4, 6) */
{
    for (int b = 0; b < 2; b++)
        for (int c = 0; c < 2; c++)
            for (int h = 0; h < 2; h++)
                for (int w = 0; w < 3; w++)
                    for (int i = 0; i < 2; i++)
                        for (int j = 0; j < 2; j++)
                            o[((b * 2 + c) * 4 + h * 2 + i) * 6 + w * 2 + j] =
                                T(0)[((b * 8 + c * 4 + i * 2 + j) * 2 + h) * 3 + w];
}

static void init_blend(sm_tensor **in)
{
    static const float m[6] = {1, 0, 1, 0, 0, 1};
    memcpy(T(2), m, sizeof m);
}
static sm_tensor *run_blend(sm_ctx *c, sm_tensor **in) { return sm_mask_blend(c, in[0], in[1], in[2]); }
static void ref_blend(sm_tensor **in, double *o) /* x (2,3,4), token (1,1,4), mask (2,3) */
{
    for (int r = 0; r < 6; r++)
        for (int c = 0; c < 4; c++)
            o[r * 4 + c] = T(2)[r] ? T(1)[c] : T(0)[r * 4 + c];
}

static sm_tensor *run_cls(sm_ctx *c, sm_tensor **in) { return sm_cls_concat(c, in[0], in[1]); }
static void ref_cls(sm_tensor **in, double *o) /* cls (1,1,4), x (2,3,4) -> (2,4,4) */
{
    for (int b = 0; b < 2; b++)
        for (int l = 0; l < 4; l++)
            for (int c = 0; c < 4; c++) o[(b * 4 + l) * 4 + c] = l ? T(1)[(b * 3 + l - 1) * 4 + c] : T(0)[c];
}

static sm_tensor *run_concat1(sm_ctx *c, sm_tensor **in) { return sm_concat(c, in, 2, 1); }
static void ref_concat1(sm_tensor **in, double *o) /* (2,3,4) + (2,2,4) -> (2,5,4) */
{
    for (int b = 0; b < 2; b++)
        for (int l = 0; l < 5; l++)
            for (int c = 0; c < 4; c++)
                o[(b * 5 + l) * 4 + c] = l < 3 ? T(0)[(b * 3 + l) * 4 + c] : T(1)[(b * 2 + l - 3) * 4 + c];
}
static sm_tensor *run_concat_last(sm_ctx *c, sm_tensor **in) { return sm_concat(c, in, 3, -1); }
static void ref_concat_last(sm_tensor **in, double *o) /* (2,3) + (2,1) + (2,2) -> (2,6) */
{
    for (int b = 0; b < 2; b++)
        for (int j = 0; j < 6; j++)
            o[b * 6 + j] = j < 3 ? T(0)[b * 3 + j] : j < 4 ? T(1)[b] : T(2)[b * 2 + j - 4];
}

static sm_tensor *run_slice(sm_ctx *c, sm_tensor **in) { return sm_slice(c, in[0], 1, 1, 3); }
static void ref_slice(sm_tensor **in, double *o) /* (3,5,4) -> (3,3,4) */
{
    for (int a = 0; a < 3; a++)
        for (int l = 0; l < 3; l++)
            for (int c = 0; c < 4; c++) o[(a * 3 + l) * 4 + c] = T(0)[(a * 5 + l + 1) * 4 + c];
}

static sm_tensor *run_mean1(sm_ctx *c, sm_tensor **in) { return sm_mean(c, in[0], 1); }
static void ref_mean1(sm_tensor **in, double *o) /* (2,3,4) -> (2,4) */
{
    for (int b = 0; b < 2; b++)
        for (int c = 0; c < 4; c++) {
            double s = 0;
            for (int l = 0; l < 3; l++) s += T(0)[(b * 3 + l) * 4 + c];
            o[b * 4 + c] = s / 3;
        }
}
static sm_tensor *run_mean_last(sm_ctx *c, sm_tensor **in) { return sm_mean(c, in[0], -1); }
static void ref_mean_last(sm_tensor **in, double *o)
{
    for (int r = 0; r < 6; r++) {
        double s = 0;
        for (int c = 0; c < 4; c++) s += T(0)[r * 4 + c];
        o[r] = s / 4;
    }
}

/* reshape view, then an op on it (gradient flows through the shared storage) */
static sm_tensor *run_reshape(sm_ctx *c, sm_tensor **in)
{
    sm_tensor *v = sm_reshape(c, in[0], 3, SM_SHAPE(3, -1, 2));
    return sm_scale(c, v, 2.0f);
}
static void ref_reshape(sm_tensor **in, double *o)
{
    for (int i = 0; i < 12; i++) o[i] = 2.0 * T(0)[i];
}

static sm_tensor *run_permute(sm_ctx *c, sm_tensor **in) { return sm_permute(c, in[0], (int[]){2, 0, 1}); }
static void ref_permute(sm_tensor **in, double *o) /* (2,3,4) -> (4,2,3) */
{
    for (int k = 0; k < 4; k++)
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 3; j++) o[(k * 2 + i) * 3 + j] = T(0)[(i * 3 + j) * 4 + k];
}

static sm_tensor *run_droppath(sm_ctx *c, sm_tensor **in)
{
    sm_ctx_set_train(c, true);
    sm_ctx_set_rng(c, 1234, 5);
    return sm_drop_path(c, in[0], 0.5f, 7);
}
static void ref_droppath(sm_tensor **in, double *o) /* (6, 3, 2) */
{
    for (int b = 0; b < 6; b++) {
        double u = (double)(sm_rng_hash(1234, 5, 7, (uint64_t)b) >> 11) * 0x1.0p-53;
        for (int i = 0; i < 6; i++) o[b * 6 + i] = u < 0.5 ? 2.0 * T(0)[b * 6 + i] : 0.0;
    }
}

static void init_l1(sm_tensor **in)
{
    static const float m[8] = {1, 0, 0, 1, 1, 1, 0, 1};
    memcpy(T(2), m, sizeof m);
}
static sm_tensor *run_l1(sm_ctx *c, sm_tensor **in) { return sm_masked_l1(c, in[0], in[1], in[2], 2); }
static void ref_l1(sm_tensor **in, double *o) /* x_rec, x (2,3,4,4), mask (2,2,2), p 2 */
{
    double num = 0, msum = 0;
    for (int b = 0; b < 2; b++)
        for (int h = 0; h < 4; h++)
            for (int w = 0; w < 4; w++) {
                double m = T(2)[(b * 2 + h / 2) * 2 + w / 2];
                msum += m;
                for (int c = 0; c < 3; c++) {
                    int i = ((b * 3 + c) * 4 + h) * 4 + w;
                    num += fabs((double)T(1)[i] - T(0)[i]) * m;
                }
            }
    o[0] = num / (msum + 1e-5) / 3;
}
static bool skip_l1(sm_tensor **in, int k, int64_t i, double eps)
{
    return k == 0 && fabs((double)T(0)[i] - T(1)[i]) < 3 * eps;
}

static const int64_t ce_labels[3] = {0, 4, 2};
static sm_tensor *run_ce(sm_ctx *c, sm_tensor **in) { return sm_cross_entropy(c, in[0], ce_labels, 0.1f); }
static sm_tensor *run_ce0(sm_ctx *c, sm_tensor **in) { return sm_cross_entropy(c, in[0], ce_labels, 0.0f); }
static void ce_ref(sm_tensor **in, double *o, double eps, const float *targets)
{
    double tot = 0;
    for (int b = 0; b < 3; b++) {
        double mx = -INFINITY, s = 0;
        for (int k = 0; k < 5; k++) mx = fmax(mx, T(0)[b * 5 + k]);
        for (int k = 0; k < 5; k++) s += exp(T(0)[b * 5 + k] - mx);
        double lse = mx + log(s);
        for (int k = 0; k < 5; k++) {
            double t = targets ? targets[b * 5 + k]
                               : (k == ce_labels[b] ? 1 - eps : 0) + eps / 5;
            tot -= t * (T(0)[b * 5 + k] - lse);
        }
    }
    o[0] = tot / 3;
}
static void ref_ce(sm_tensor **in, double *o) { ce_ref(in, o, 0.1, NULL); }
static void ref_ce0(sm_tensor **in, double *o)
{
    /* plain NLL of log-softmax, written differently: -mean(log p[label]) */
    double tot = 0;
    for (int b = 0; b < 3; b++) {
        double s = 0;
        for (int k = 0; k < 5; k++) s += exp(T(0)[b * 5 + k]);
        tot -= log(exp(T(0)[b * 5 + ce_labels[b]]) / s);
    }
    o[0] = tot / 3;
}
static void init_soft(sm_tensor **in) /* targets: rows of positive weights summing to 1 */
{
    for (int b = 0; b < 3; b++) {
        double s = 0;
        for (int k = 0; k < 5; k++) s += (T(1)[b * 5 + k] = fabsf(T(1)[b * 5 + k]) + 0.1f);
        for (int k = 0; k < 5; k++) T(1)[b * 5 + k] = (float)(T(1)[b * 5 + k] / s);
    }
}
static sm_tensor *run_soft(sm_ctx *c, sm_tensor **in) { return sm_soft_cross_entropy(c, in[0], in[1]); }
static void ref_soft(sm_tensor **in, double *o) { ce_ref(in, o, 0, T(1)); }

#undef T

#define S(...) {__VA_ARGS__}
static const op_case cases[] = {
    {"linear", 3, {3, 2, 1}, {S(2, 3, 5), S(4, 5), S(4)}, 7, -1, 1, NULL, run_linear, ref_linear, NULL},
    {"linear_view", 2, {2, 2}, {S(5, 6), S(3, 5)}, 3, -1, 1, NULL, run_linear_view, ref_linear_view, NULL},
    {"matmul_nn", 2, {3, 3}, {S(2, 3, 4), S(2, 4, 5)}, 3, -1, 1, NULL, run_mm_nn, ref_mm_nn, NULL},
    {"matmul_tt", 2, {3, 3}, {S(2, 4, 3), S(2, 5, 4)}, 3, -1, 1, NULL, run_mm_tt, ref_mm_tt, NULL},
    {"matmul_shared", 2, {3, 2}, {S(2, 3, 4), S(4, 5)}, 3, -1, 1, NULL, run_mm_nn, ref_mm_shared, NULL},
    {"matmul_shared_ta", 2, {3, 2}, {S(2, 4, 3), S(4, 5)}, 3, -1, 1, NULL, run_mm_shared_ta, ref_mm_shared_ta, NULL},
    {"matmul_view", 2, {3, 2}, {S(3, 2, 4), S(4, 5)}, 3, -1, 1, NULL, run_mm_view, ref_mm_view, NULL},
    {"add_same", 2, {3, 3}, {S(2, 3, 4), S(2, 3, 4)}, 3, -1, 1, NULL, run_add, ref_add_same, NULL},
    {"add_suffix", 2, {3, 1}, {S(2, 3, 4), S(4)}, 3, -1, 1, NULL, run_add, ref_add_suffix, NULL},
    {"add_general", 2, {3, 3}, {S(2, 3, 4), S(2, 1, 4)}, 3, -1, 1, NULL, run_add, ref_add_general, NULL},
    {"mul_general", 2, {3, 3}, {S(2, 3, 4), S(1, 3, 1)}, 3, -1, 1, NULL, run_mul, ref_mul_general, NULL},
    {"mul_suffix", 2, {3, 2}, {S(2, 3, 4), S(3, 4)}, 3, -1, 1, NULL, run_mul, ref_mul_suffix, NULL},
    {"scale", 1, {2}, {S(3, 4)}, 1, -1, 1, NULL, run_scale, ref_scale, NULL},
    {"layernorm", 3, {3, 1, 1}, {S(2, 3, 8), S(8), S(8)}, 7, -2, 2, NULL, run_ln, ref_ln, NULL},
    {"layernorm_view", 1, {2}, {S(6, 8)}, 1, -2, 2, NULL, run_ln_view, ref_ln_view, NULL},
    {"gelu", 1, {2}, {S(3, 7)}, 1, -4, 4, NULL, run_gelu, ref_gelu, NULL},
    {"softmax", 1, {3}, {S(2, 3, 6)}, 1, -3, 3, NULL, run_softmax, ref_softmax, NULL},
    {"softmax_32", 1, {2}, {S(3, 32)}, 1, -3, 3, NULL, run_softmax, ref_softmax, NULL},
    {"softmax_37", 1, {2}, {S(2, 37)}, 1, -3, 3, NULL, run_softmax, ref_softmax, NULL},
    {"attention", 3, {3, 3, 3}, {S(4, 5, 18), S(2, 5, 5), S(2, 5, 5)}, 3, -1, 1, init_att_mask, run_att, ref_att, NULL},
    {"attention_view", 1, {3}, {S(2, 7, 18)}, 1, -1, 1, NULL, run_att_view, ref_att_view, NULL},
    {"attention_window", 2, {3, 3}, {S(2, 36, 192), S(2, 36, 36)}, 3, -1, 1, NULL, run_att_window, ref_att_window, NULL},
    {"attention_window64", 2, {3, 3}, {S(1, 64, 72), S(1, 64, 64)}, 3, -1, 1, NULL, run_att_window64, ref_att_window64, NULL},
    {"attention_window50", 2, {3, 3}, {S(1, 50, 36), S(1, 50, 50)}, 3, -1, 1, NULL, run_att_window50, ref_att_window50, NULL},
    {"attention_long", 2, {3, 3}, {S(2, 70, 18), S(2, 70, 70)}, 3, -1, 1, NULL, run_att_long, ref_att_long, NULL},
    {"relpos_bias", 1, {2}, {S(7, 2)}, 1, -1, 1, NULL, run_relpos, ref_relpos, NULL},
    {"window_partition", 1, {4}, {S(2, 4, 6, 3)}, 1, -1, 1, NULL, run_winpart, ref_winpart, NULL},
    {"window_reverse", 1, {3}, {S(12, 4, 3)}, 1, -1, 1, NULL, run_winrev, ref_winrev, NULL},
    {"patch_merge", 1, {4}, {S(2, 4, 6, 3)}, 1, -1, 1, NULL, run_merge, ref_merge, NULL},
    {"patch_embed", 3, {4, 4, 1}, {S(2, 3, 4, 6), S(5, 3, 2, 2), S(5)}, 7, -1, 1, NULL, run_pembed, ref_pembed, NULL},
    {"conv1x1", 3, {4, 4, 1}, {S(2, 3, 2, 3), S(4, 3, 1, 1), S(4)}, 7, -1, 1, NULL, run_conv, ref_conv, NULL},
    {"pixel_shuffle", 1, {4}, {S(2, 8, 2, 3)}, 1, -1, 1, NULL, run_shuffle, ref_shuffle, NULL},
    {"mask_blend", 3, {3, 3, 2}, {S(2, 3, 4), S(1, 1, 4), S(2, 3)}, 3, -1, 1, init_blend, run_blend, ref_blend, NULL},
    {"cls_concat", 2, {3, 3}, {S(1, 1, 4), S(2, 3, 4)}, 3, -1, 1, NULL, run_cls, ref_cls, NULL},
    {"concat_dim1", 2, {3, 3}, {S(2, 3, 4), S(2, 2, 4)}, 3, -1, 1, NULL, run_concat1, ref_concat1, NULL},
    {"concat_last", 3, {2, 2, 2}, {S(2, 3), S(2, 1), S(2, 2)}, 5, -1, 1, NULL, run_concat_last, ref_concat_last, NULL},
    {"slice", 1, {3}, {S(3, 5, 4)}, 1, -1, 1, NULL, run_slice, ref_slice, NULL},
    {"mean_dim1", 1, {3}, {S(2, 3, 4)}, 1, -1, 1, NULL, run_mean1, ref_mean1, NULL},
    {"mean_last", 1, {3}, {S(2, 3, 4)}, 1, -1, 1, NULL, run_mean_last, ref_mean_last, NULL},
    {"reshape_view", 1, {2}, {S(4, 3)}, 1, -1, 1, NULL, run_reshape, ref_reshape, NULL},
    {"permute", 1, {3}, {S(2, 3, 4)}, 1, -1, 1, NULL, run_permute, ref_permute, NULL},
    {"drop_path", 1, {3}, {S(6, 3, 2)}, 1, -1, 1, NULL, run_droppath, ref_droppath, NULL},
    {"masked_l1", 3, {4, 4, 3}, {S(2, 3, 4, 4), S(2, 3, 4, 4), S(2, 2, 2)}, 1, -1, 1, init_l1, run_l1, ref_l1, skip_l1},
    {"cross_entropy", 1, {2}, {S(3, 5)}, 1, -3, 3, NULL, run_ce, ref_ce, NULL},
    {"cross_entropy_nosmooth", 1, {2}, {S(3, 5)}, 1, -3, 3, NULL, run_ce0, ref_ce0, NULL},
    {"soft_cross_entropy", 2, {2, 2}, {S(3, 5), S(3, 5)}, 1, -3, 3, init_soft, run_soft, ref_soft, NULL},
};
#define N_CASES ((int)(sizeof cases / sizeof cases[0]))

/* ---- harness ---------------------------------------------------------------------------- */

typedef struct fixture {
    sm_ctx *ctx;
    sm_tensor *in[MAXIN];
    double *w; /* upstream weights, numel(out) */
    int64_t n_out;
} fixture;

/* Builds the inputs and runs the op once (gradients on); returns its output. */
static sm_tensor *fix_init(fixture *f, const op_case *c, uint64_t seed)
{
    memset(f, 0, sizeof *f);
    f->ctx = sm_ctx_new(NULL);
    ck_assert_ptr_nonnull(f->ctx);
    sm_rng rng;
    sm_rng_init(&rng, seed, 0, 0, 0);
    for (int i = 0; i < c->n_in; i++) {
        f->in[i] = sm_tensor_new(c->ndim[i], c->shape[i]);
        ck_assert_ptr_nonnull(f->in[i]);
        sm_init_uniform(f->in[i], c->lo, c->hi, &rng);
        if (c->grad & (1u << i)) f->in[i]->flags |= SM_TENSOR_REQUIRES_GRAD;
    }
    if (c->init) c->init(f->in);
    sm_tensor *out = c->run(f->ctx, f->in);
    ck_assert_msg(out != NULL, "%s: %s", c->name, sm_ctx_error(f->ctx)->text);
    return out;
}

static void fix_free(fixture *f)
{
    sm_ctx_free(f->ctx);
    for (int i = 0; i < MAXIN; i++) sm_tensor_free(f->in[i]);
    free(f->w);
}

/* Forward with gradients off; returns Σ w·out in double. */
static double loss_of(const op_case *c, fixture *f)
{
    sm_ctx_reset(f->ctx);
    sm_ctx_set_grad(f->ctx, false);
    sm_tensor *out = c->run(f->ctx, f->in);
    ck_assert_msg(out != NULL, "%s: %s", c->name, sm_ctx_error(f->ctx)->text);
    sm_tensor *o = sm_contiguous(f->ctx, out);
    double s = 0;
    for (int64_t i = 0; i < f->n_out; i++) s += f->w[i] * (double)o->data[i];
    sm_ctx_set_grad(f->ctx, true);
    return s;
}

START_TEST(test_forward)
{
    const op_case *c = &cases[_i];
    fixture f;
    sm_tensor *out = fix_init(&f, c, 11);
    int64_t n = sm_tensor_numel(out);
    double *ref = calloc((size_t)n, sizeof *ref);
    float *got = malloc((size_t)n * sizeof *got), *reff = malloc((size_t)n * sizeof *reff);
    c->ref(f.in, ref);
    sm_tensor *o = sm_contiguous(f.ctx, out);
    for (int64_t i = 0; i < n; i++) {
        got[i] = o->data[i];
        reff[i] = (float)ref[i];
    }
    double e = sm_test_rel_err(got, reff, n);
    ck_assert_msg(e <= 2e-6, "%s: forward max|err|/max|ref| = %g", c->name, e);
    free(ref);
    free(got);
    free(reff);
    fix_free(&f);
}
END_TEST

START_TEST(test_gradient)
{
    const op_case *c = &cases[_i];
    fixture f;
    sm_tensor *out = fix_init(&f, c, 23);
    f.n_out = sm_tensor_numel(out);
    f.w = malloc((size_t)f.n_out * sizeof *f.w);
    float *wf = malloc((size_t)f.n_out * sizeof *wf);
    sm_rng rng;
    sm_rng_init(&rng, 99, 0, 0, 0);
    for (int64_t i = 0; i < f.n_out; i++) wf[i] = (float)(f.w[i] = sm_rng_uniform(&rng) * 2 - 1);
    ck_assert_int_eq(sm_backward_from(f.ctx, out, wf), 0);
    /* copy the analytic gradients before the arena is reused */
    float *ana[MAXIN] = {NULL};
    for (int k = 0; k < c->n_in; k++) {
        if (!(c->grad & (1u << k))) {
            ck_assert_ptr_null(f.in[k]->grad); /* constants never get a gradient */
            continue;
        }
        int64_t n = sm_tensor_numel(f.in[k]);
        float *g = sm_tensor_grad(f.ctx, f.in[k]);
        ck_assert_ptr_nonnull(g);
        ana[k] = malloc((size_t)n * sizeof(float));
        memcpy(ana[k], g, (size_t)n * sizeof(float));
    }
    /* fan-out: the op used twice must give twice the gradient (first use overwrites a fresh
     * buffer, the second accumulates) */
    sm_ctx_reset(f.ctx);
    sm_tensor *o1 = c->run(f.ctx, f.in), *o2 = c->run(f.ctx, f.in);
    sm_tensor *twice = sm_add(f.ctx, sm_contiguous(f.ctx, o1), sm_contiguous(f.ctx, o2));
    ck_assert_int_eq(sm_backward_from(f.ctx, twice, wf), 0);
    free(wf);
    for (int k = 0; k < c->n_in; k++) {
        if (!ana[k]) continue;
        const float *g2 = sm_tensor_grad(f.ctx, f.in[k]);
        for (int64_t i = 0; i < sm_tensor_numel(f.in[k]); i++)
            ck_assert_msg(fabs(g2[i] - 2.0 * ana[k][i]) <= 1e-6 * fabs(ana[k][i]) + 1e-7,
                          "%s: input %d element %lld: used twice %.8g, once %.8g", c->name, k,
                          (long long)i, g2[i], ana[k][i]);
    }
    for (int k = 0; k < c->n_in; k++) {
        if (!ana[k]) continue;
        int64_t n = sm_tensor_numel(f.in[k]);
        double gmax = 0;
        for (int64_t i = 0; i < n; i++) gmax = fmax(gmax, fabs(ana[k][i]));
        int64_t step = n > 96 ? n / 96 : 1;
        int checked = 0;
        for (int64_t i = 0; i < n; i += step) {
            float *x = &f.in[k]->data[i], x0 = *x;
            double eps = 1e-2 * fmax(1.0, fabs(x0));
            if (c->skip && c->skip(f.in, k, i, eps)) continue;
            double l[4];
            const double d[4] = {eps, -eps, 2 * eps, -2 * eps};
            for (int s = 0; s < 4; s++) {
                *x = (float)(x0 + d[s]);
                l[s] = loss_of(c, &f);
            }
            *x = x0;
            double num = (8 * (l[0] - l[1]) - (l[2] - l[3])) / (12 * eps);
            double a = ana[k][i];
            ck_assert_msg(fabs(a - num) <= 1e-2 * fabs(num) + 2e-3 * gmax + 1e-5,
                          "%s: input %d element %lld: analytic %.7g vs numeric %.7g (max |g| "
                          "%.3g)",
                          c->name, k, (long long)i, a, num, gmax);
            checked++;
        }
        ck_assert_msg(checked > 0, "%s: no point checked for input %d", c->name, k);
        ck_assert_msg(gmax > 0, "%s: gradient of input %d is all zero", c->name, k);
        free(ana[k]);
    }
    fix_free(&f);
}
END_TEST

/* ---- vectorised math against libm ---------------------------------------------------------- */

START_TEST(test_gelu_softmax_accuracy)
{
    /* GELU and softmax use our own vectorisable exp/erf: check them densely against libm */
    sm_ctx *ctx = sm_ctx_new(NULL);
    const int64_t n = 20001;
    sm_tensor *x = sm_ctx_tensor(ctx, 1, SM_SHAPE(n));
    for (int64_t i = 0; i < n; i++) x->data[i] = -10.0f + 20.0f * (float)i / (float)(n - 1);
    sm_tensor *y = sm_gelu(ctx, x);
    double worst = 0, worst_pos = 0;
    for (int64_t i = 0; i < n; i++) {
        /* erf is good to 3.5e-7 absolute (sm__erff), so y = x·(1 + erf)/2 to 1.75e-7·|x| plus
         * the rounding of the result; x >= 0: to 3e-7 relative */
        double v = x->data[i], r = 0.5 * v * (1 + erf(v / sqrt(2.0)));
        worst = fmax(worst, fabs(y->data[i] - r) / (1.75e-7 * fabs(v) + 1.2e-7 * fmax(1.0, fabs(r))));
        if (v >= 0) worst_pos = fmax(worst_pos, fabs(y->data[i] - r) / fmax(1.0, fabs(r)));
    }
    ck_assert_msg(worst <= 1.0, "gelu: worst error %g of its bound", worst);
    ck_assert_msg(worst_pos < 3e-7, "gelu: worst error %g for x >= 0", worst_pos);
    /* its backward (dy = 1 over the same points, with and without an accumulating gradient):
     * the slope Φ(x) + x·φ(x) in double */
    for (int acc = 0; acc < 2; acc++) {
        sm_ctx_reset(ctx);
        sm_tensor *xg = sm_ctx_tensor(ctx, 1, SM_SHAPE(n));
        for (int64_t i = 0; i < n; i++) xg->data[i] = -10.0f + 20.0f * (float)i / (float)(n - 1);
        xg->flags |= SM_TENSOR_REQUIRES_GRAD;
        sm_tensor *g = sm_gelu(ctx, xg);
        /* n·mean(gelu(x)) (+ n·mean(x)): x's gradient is the slope (+ 1 accumulated) */
        sm_tensor *tot = sm_scale(ctx, sm_mean(ctx, g, 0), (float)n);
        if (acc) tot = sm_add(ctx, tot, sm_scale(ctx, sm_mean(ctx, xg, 0), (float)n));
        ck_assert_int_eq(sm_backward(ctx, tot), 0);
        worst = 0;
        for (int64_t i = 0; i < n; i++) {
            double v = xg->data[i];
            double r = 0.5 * (1 + erf(v / sqrt(2.0))) + v * exp(-0.5 * v * v) / sqrt(2 * M_PI);
            worst = fmax(worst, fabs(xg->grad[i] - acc - r));
        }
        ck_assert_msg(worst < 4e-7, "gelu backward (acc %d): worst error %g", acc, worst);
    }
    /* softmax over rows spanning exp's whole range */
    sm_tensor *s = sm_ctx_tensor(ctx, 2, SM_SHAPE(200, 100));
    for (int64_t i = 0; i < 20000; i++) s->data[i] = (float)((i * 37 % 1000) / 10.0 - 50.0);
    sm_tensor *p = sm_softmax(ctx, s);
    worst = 0;
    for (int r = 0; r < 200; r++) {
        double mx = -INFINITY, sum = 0;
        for (int j = 0; j < 100; j++) mx = fmax(mx, s->data[r * 100 + j]);
        for (int j = 0; j < 100; j++) sum += exp(s->data[r * 100 + j] - mx);
        for (int j = 0; j < 100; j++) {
            double ref = exp(s->data[r * 100 + j] - mx) / sum;
            worst = fmax(worst, fabs(p->data[r * 100 + j] - ref));
        }
    }
    ck_assert_msg(worst < 1e-6, "softmax: worst abs error %g", worst);
    sm_ctx_free(ctx);
}
END_TEST

/* ---- errors ----------------------------------------------------------------------------- */

/* matmul on batch dims that do not collapse to one stride (a size-1 dim in the middle must not
 * hide that) reads the right elements. */
START_TEST(test_matmul_strided_batch)
{
    sm_ctx *ctx = sm_ctx_new(NULL);
    sm_tensor *base = sm_ctx_tensor(ctx, 1, SM_SHAPE(24));
    for (int i = 0; i < 24; i++) base->data[i] = (float)i;
    sm_tensor *v = sm_view(ctx, base, 5, SM_SHAPE(2, 1, 3, 2, 2), SM_SHAPE(4, 1, 8, 2, 1), 0);
    ck_assert_ptr_nonnull(v);
    sm_tensor *eye = sm_ctx_zeros(ctx, 2, SM_SHAPE(2, 2));
    eye->data[0] = eye->data[3] = 1.0f;
    sm_tensor *c = sm_matmul(ctx, v, eye, false, false);
    sm_tensor *ref = sm_contiguous(ctx, v);
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(sm_ctx_status(ctx), 0);
    for (int i = 0; i < 24; i++) ck_assert_float_eq(c->data[i], ref->data[i]);
    sm_ctx_free(ctx);
}
END_TEST

START_TEST(test_shape_errors)
{
    sm_ctx *ctx = sm_ctx_new(NULL);
    sm_tensor *x = sm_ctx_zeros(ctx, 3, SM_SHAPE(2, 3, 5));
    sm_tensor *w = sm_ctx_zeros(ctx, 2, SM_SHAPE(4, 6));
    ck_assert_ptr_null(sm_linear(ctx, x, w, NULL));
    ck_assert_int_eq(sm_ctx_status(ctx), SM_ESHAPE);
    ck_assert_str_eq(sm_ctx_error(ctx)->text,
                     "linear: x (..., in) needs w (out, in) (got x (2, 3, 5), w (4, 6))");
    /* sticky: later ops return NULL and the first error stays */
    ck_assert_ptr_null(sm_gelu(ctx, x));
    ck_assert_str_eq(sm_ctx_error(ctx)->text,
                     "linear: x (..., in) needs w (out, in) (got x (2, 3, 5), w (4, 6))");
    sm_ctx_reset(ctx);
    ck_assert_int_eq(sm_ctx_status(ctx), 0);
    /* NULL inputs propagate without a new error */
    ck_assert_ptr_null(sm_gelu(ctx, NULL));
    ck_assert_ptr_null(sm_add(ctx, NULL, NULL));
    ck_assert_int_eq(sm_ctx_status(ctx), 0);

    x = sm_ctx_zeros(ctx, 4, SM_SHAPE(2, 6, 6, 4));
    ck_assert_ptr_null(sm_window_partition(ctx, x, 4, 0));
    ck_assert_msg(strstr(sm_ctx_error(ctx)->text, "window_partition: H = 6 and W = 6 must be "
                                                  "multiples of window = 4"),
                  "%s", sm_ctx_error(ctx)->text);
    sm_ctx_reset(ctx);
    x = sm_ctx_zeros(ctx, 3, SM_SHAPE(2, 5, 18));
    ck_assert_ptr_null(sm_attention(ctx, x, 4, 1.0f, NULL, NULL));
    ck_assert_msg(strstr(sm_ctx_error(ctx)->text, "attention: qkv must be (B, N, 3·heads·D) "
                                                  "with heads = 4 (got qkv (2, 5, 18))"),
                  "%s", sm_ctx_error(ctx)->text);
    sm_ctx_reset(ctx);
    sm_tensor *a = sm_ctx_zeros(ctx, 2, SM_SHAPE(3, 4)), *b = sm_ctx_zeros(ctx, 1, SM_SHAPE(3));
    ck_assert_ptr_null(sm_add(ctx, a, b));
    ck_assert_str_eq(sm_ctx_error(ctx)->text,
                     "add: b does not broadcast onto a (got a (3, 4), b (3))");
    sm_ctx_reset(ctx);
    a = sm_ctx_zeros(ctx, 2, SM_SHAPE(3, 4));
    ck_assert_ptr_null(sm_reshape(ctx, a, 2, SM_SHAPE(5, -1)));
    ck_assert_int_eq(sm_ctx_status(ctx), SM_ESHAPE);
    sm_ctx_reset(ctx);
    a = sm_ctx_zeros(ctx, 2, SM_SHAPE(3, 4));
    ck_assert_ptr_null(sm_cross_entropy(ctx, a, (const int64_t[]){0, 4, 1}, 0.0f));
    ck_assert_int_eq(sm_ctx_status(ctx), SM_EINVAL);
    ck_assert_msg(strstr(sm_ctx_error(ctx)->text, "label 4 of sample 1 is outside [0, 4)"), "%s",
                  sm_ctx_error(ctx)->text);
    sm_ctx_reset(ctx);
    a = sm_ctx_zeros(ctx, 2, SM_SHAPE(9, 2));
    ck_assert_ptr_null(sm_relpos_bias(ctx, a, (const int64_t[]){0, 9, 1, 2}, 2));
    ck_assert_msg(strstr(sm_ctx_error(ctx)->text, "index[1] = 9 is outside [0, 9)"), "%s",
                  sm_ctx_error(ctx)->text);
    sm_ctx_reset(ctx);
    a = sm_ctx_zeros(ctx, 2, SM_SHAPE(3, 4));
    ck_assert_ptr_null(sm_view(ctx, a, 2, SM_SHAPE(4, 3), SM_SHAPE(1, 4), 1)); /* past the end */
    ck_assert_msg(strstr(sm_ctx_error(ctx)->text, "outside the storage"), "%s",
                  sm_ctx_error(ctx)->text);
    sm_ctx_reset(ctx);
    a = sm_ctx_zeros(ctx, 2, SM_SHAPE(3, 4));
    ck_assert_ptr_null(sm_view(ctx, a, 2, SM_SHAPE(2, 3), SM_SHAPE(1, 1), 0)); /* overlap */
    ck_assert_msg(strstr(sm_ctx_error(ctx)->text, "twice"), "%s", sm_ctx_error(ctx)->text);
    sm_ctx_free(ctx);
}
END_TEST

/* ---- thread-count independence ------------------------------------------------------------ */

/* A transformer-ish block on shapes large enough for every kernel to run multi-threaded:
 * layernorm, linear (+bias grads), attention with bias and mask, residual adds, GELU, window
 * partition/reverse, patch merge, mean, cross-entropy. Returns the loss; grads in params. */
static float run_block(int threads, sm_params *p, float *out_x_grad, int64_t nx)
{
    sm_ctx *ctx = sm_ctx_new(NULL);
    sm_ctx_set_threads(ctx, threads);
    sm_params_zero_grad(p);
    sm_rng rng;
    sm_rng_init(&rng, 5, 0, 0, 0);
    const int64_t B = 4, H = 12, W = 12, C = 48, heads = 2, win = 6, N = win * win;
    sm_tensor *x = sm_ctx_tensor(ctx, 4, SM_SHAPE(B, H, W, C));
    sm_init_uniform(x, -1, 1, &rng);
    x->flags |= SM_TENSOR_REQUIRES_GRAD;
    sm_tensor *mask = sm_ctx_zeros(ctx, 3, SM_SHAPE(4, N, N));
    for (int64_t i = 0; i < 4 * N * N; i += 7) mask->data[i] = -100.0f;
    static int64_t index[36 * 36];
    for (int64_t i = 0; i < N * N; i++) index[i] = (i * 13) % 121;
    sm_tensor *h = sm_layernorm(ctx, x, sm_params_find(p, "n1.weight"),
                                sm_params_find(p, "n1.bias"), 1e-5f);
    sm_tensor *wins = sm_window_partition(ctx, h, (int)win, 3);
    sm_tensor *qkv = sm_linear(ctx, wins, sm_params_find(p, "qkv.weight"),
                               sm_params_find(p, "qkv.bias"));
    sm_tensor *bias = sm_relpos_bias(ctx, sm_params_find(p, "table"), index, N);
    sm_tensor *att = sm_attention(ctx, qkv, (int)heads, 0.25f, bias, mask);
    att = sm_linear(ctx, att, sm_params_find(p, "proj.weight"), sm_params_find(p, "proj.bias"));
    sm_tensor *y = sm_add(ctx, x, sm_window_reverse(ctx, att, H, W, (int)win, 3));
    sm_tensor *m = sm_gelu(ctx, sm_linear(ctx, sm_layernorm(ctx, y, NULL, NULL, 1e-5f),
                                          sm_params_find(p, "fc1.weight"), NULL));
    y = sm_add(ctx, y, sm_linear(ctx, m, sm_params_find(p, "fc2.weight"), NULL));
    sm_tensor *merged = sm_patch_merge(ctx, y);
    sm_tensor *pooled = sm_mean(ctx, merged, 1);
    sm_tensor *logits = sm_linear(ctx, pooled, sm_params_find(p, "head.weight"), NULL);
    sm_tensor *loss = sm_cross_entropy(ctx, logits, (const int64_t[]){1, 0, 3, 2}, 0.1f);
    ck_assert_msg(loss != NULL, "%s", sm_ctx_error(ctx)->text);
    ck_assert_int_eq(sm_backward(ctx, loss), 0);
    float l = loss->data[0];
    memcpy(out_x_grad, sm_tensor_grad(ctx, x), (size_t)nx * sizeof(float));
    sm_ctx_free(ctx);
    return l;
}

START_TEST(test_thread_independence)
{
    sm_params *p = sm_params_new();
    const int64_t C = 48;
    struct {
        const char *name;
        int nd;
        int64_t s0, s1;
    } decl[] = {{"n1.weight", 1, C, 0},         {"n1.bias", 1, C, 0},
                {"qkv.weight", 2, 3 * C, C},    {"qkv.bias", 1, 3 * C, 0},
                {"table", 2, 121, 2},           {"proj.weight", 2, C, C},
                {"proj.bias", 1, C, 0},         {"fc1.weight", 2, 4 * C, C},
                {"fc2.weight", 2, C, 4 * C},    {"head.weight", 2, 5, 4 * C}};
    for (size_t i = 0; i < sizeof decl / sizeof decl[0]; i++)
        ck_assert_ptr_nonnull(sm_params_add(p, decl[i].name, decl[i].nd,
                                            SM_SHAPE(decl[i].s0, decl[i].s1), NULL));
    ck_assert_int_eq(sm_params_finalize(p, NULL), 0);
    sm_rng rng;
    sm_rng_init(&rng, 17, 0, 0, 0);
    for (size_t i = 0; i < sm_params_count(p); i++)
        sm_init_trunc_normal(sm_params_at(p, i), 0.0, 0.2, -0.4, 0.4, &rng);
    sm_init_const(sm_params_find(p, "n1.weight"), 1.0f);
    int64_t np = sm_params_numel(p), nx = 4 * 12 * 12 * C;
    float *g1 = malloc((size_t)np * sizeof(float)), *x1 = malloc((size_t)nx * sizeof(float));
    float *x2 = malloc((size_t)nx * sizeof(float));
    float l1 = run_block(1, p, x1, nx);
    memcpy(g1, sm_params_grads(p), (size_t)np * sizeof(float));
    for (int t = 2; t <= 3; t++) {
        float l = run_block(t, p, x2, nx);
        ck_assert_msg(memcmp(&l, &l1, sizeof l) == 0, "loss differs with %d threads", t);
        ck_assert_msg(memcmp(g1, sm_params_grads(p), (size_t)np * sizeof(float)) == 0,
                      "parameter gradients differ with %d threads", t);
        ck_assert_msg(memcmp(x1, x2, (size_t)nx * sizeof(float)) == 0,
                      "input gradient differs with %d threads", t);
    }
    /* every parameter received a gradient */
    for (size_t i = 0; i < sm_params_count(p); i++) {
        sm_tensor *t = sm_params_at(p, i);
        double s = 0;
        for (int64_t j = 0; j < sm_tensor_numel(t); j++) s += fabs(t->grad[j]);
        ck_assert_msg(s > 0, "%s got no gradient", t->name);
    }
    free(g1);
    free(x1);
    free(x2);
    sm_params_free(p);
}
END_TEST

static Suite *ops_suite(void)
{
    Suite *s = suite_create("ops");
    TCase *tc = tcase_create("core");
    tcase_add_loop_test(tc, test_forward, 0, N_CASES);
    tcase_add_loop_test(tc, test_gradient, 0, N_CASES);
    tcase_add_test(tc, test_gelu_softmax_accuracy);
    suite_add_tcase(s, tc);
    tc = tcase_create("errors");
    tcase_add_test(tc, test_matmul_strided_batch);
    tcase_add_test(tc, test_shape_errors);
    suite_add_tcase(s, tc);
    tc = tcase_create("limits");
    tcase_add_test(tc, test_thread_independence);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return sm_test_run(ops_suite()); }
