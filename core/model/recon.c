/* core/model/recon.c - the reconstruction figure of a SimMIM model (what users ask for most after a
 * pretraining run: docs/users.md 2.4). Written by the trainer with each checkpoint and by
 * `simmimctl reconstruct` for any images.
 *
 * A header row names the four columns; then one row per image, four panels:
 *   input | input, masked patches grey | reconstruction | reconstructed masked patches pasted
 *   into the visible input
 * Small images are enlarged by an integer factor (nearest neighbour: each pixel becomes a block,
 * the patch grid stays exact) so that a panel is at least SM__FIG_MIN_PANEL pixels wide.
 * Pixels are de-normalised with the pipeline's mean and std (0..1 scale) and clamped to 0..255;
 * the first three channels are shown (one if the images have fewer than three). The panels are
 * composed here pixel by pixel; only the header's text is drawn with cairo (it needs a font). */
#include "base/internal.h"
#include "simmim/model.h"

#include <cairo.h>
#include <math.h>
#include <string.h>

#include "simmim/image.h"

enum {
    SM__FIG_PAD = 4,         /* white pixels around and between the panels            */
    SM__FIG_HEADER = 22,     /* the header row (column labels) above the first row     */
    SM__FIG_MIN_PANEL = 128, /* small images are enlarged to at least this many pixels */
    SM__FIG_COLS = 4,
    SM__FIG_CHUNK = 4,
    SM__FIG_GREY = 96
};

static const char *const sm__fig_labels[SM__FIG_COLS] = {"input", "masked", "reconstruction",
                                                         "visible + recon"};

/* normalised value -> 0..255 */
static uint8_t sm__fig_u8(float v, float mean, float std)
{
    double x = ((double)v * std + mean) * 255.0;
    return (uint8_t)(x < 0 ? 0 : x > 255 ? 255 : x + 0.5);
}

/* rec (n, C, S, S) = the model's reconstructions, SM__FIG_CHUNK images per forward */
static int sm__fig_forward(sm_model *m, sm_ctx *ctx, const float *images, const float *mask,
                           int n, int C, int S, int g, float *rec, sm_error *err)
{
    size_t img = (size_t)C * S * S;
    bool grad = sm_ctx_grad(ctx), train = sm_ctx_train(ctx);
    int rc = 0;
    for (int i0 = 0; i0 < n && !rc; i0 += SM__FIG_CHUNK) {
        int k = n - i0 < SM__FIG_CHUNK ? n - i0 : SM__FIG_CHUNK;
        sm_ctx_reset(ctx);
        sm_ctx_set_grad(ctx, false);
        sm_ctx_set_train(ctx, false);
        sm_tensor *x = sm_ctx_wrap(ctx, (float *)images + i0 * img, 4, SM_SHAPE(k, C, S, S));
        sm_tensor *mk = sm_ctx_wrap(ctx, (float *)mask + (size_t)i0 * g * g, 3, SM_SHAPE(k, g, g));
        sm_tensor *r = NULL;
        sm_model_simmim(m, ctx, x, mk, &r);
        if (!r || sm_ctx_status(ctx)) {
            rc = sm_ctx_status(ctx) ? sm_ctx_status(ctx) : SM_EINVAL;
            if (err) *err = *sm_ctx_error(ctx);
        } else
            memcpy(rec + i0 * img, r->data, (size_t)k * img * sizeof(float));
    }
    sm_ctx_reset(ctx);
    sm_ctx_set_grad(ctx, grad);
    sm_ctx_set_train(ctx, train);
    return rc;
}

/* Draws the column labels, black on white, centred over each panel, into rows [0, HDR) of px
 * (W x H x oc); P is the panel width. Returns 0 or SM_ENOMEM. */
static int sm__fig_header(uint8_t *px, int W, int oc, int P)
{
    /* (W, HDR) xRGB surface: the header alone */
    cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, W, SM__FIG_HEADER);
    cairo_t *cr = cairo_create(s);
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    cairo_set_source_rgb(cr, 0, 0, 0);
    cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    for (int col = 0; col < SM__FIG_COLS; col++) {
        double size = 13.0; /* shrunk for a label wider than its panel */
        cairo_text_extents_t te;
        cairo_set_font_size(cr, size);
        cairo_text_extents(cr, sm__fig_labels[col], &te);
        if (te.x_advance > P - 4) {
            size *= (P - 4) / te.x_advance;
            cairo_set_font_size(cr, size);
            cairo_text_extents(cr, sm__fig_labels[col], &te);
        }
        cairo_font_extents_t fe;
        cairo_font_extents(cr, &fe);
        double cx = SM__FIG_PAD + col * (P + SM__FIG_PAD) + P / 2.0;
        cairo_move_to(cr, floor(cx - te.x_advance / 2),
                      floor((SM__FIG_HEADER + fe.ascent - fe.descent) / 2 + 2));
        cairo_show_text(cr, sm__fig_labels[col]);
    }
    cairo_surface_flush(s);
    int rc = cairo_status(cr) || cairo_surface_status(s) ? SM_ENOMEM : 0;
    if (!rc) {
        const unsigned char *data = cairo_image_surface_get_data(s);
        int stride = cairo_image_surface_get_stride(s);
        for (int y = 0; y < SM__FIG_HEADER; y++)
            for (int x = 0; x < W; x++) {
                uint32_t v;
                memcpy(&v, data + (size_t)y * stride + (size_t)x * 4, 4);
                uint8_t rgb[3] = {(uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
                for (int c = 0; c < oc; c++) px[((size_t)y * W + x) * oc + c] = rgb[oc == 3 ? c : 1];
            }
    }
    cairo_destroy(cr);
    cairo_surface_destroy(s);
    return rc;
}

int sm_recon_figure(sm_model *m, sm_ctx *ctx, const float *images, const float *mask, int n,
                    int channels, int size, int mask_side, const float *mean, const float *std,
                    const char *path, double *losses, sm_error *err)
{
    int C = channels, S = size, g = mask_side;
    if (n <= 0 || C <= 0 || S <= 0 || g <= 0 || S % g != 0)
        return sm_error_set(err, SM_EINVAL, path, 0, 0, NULL,
                            "reconstruction figure: invalid geometry (%d images of %d x %d x %d, "
                            "mask %d x %d)",
                            n, C, S, S, g, g);
    /* k: enlargement; P = k S: the panel side */
    int k = S >= SM__FIG_MIN_PANEL ? 1 : (SM__FIG_MIN_PANEL + S - 1) / S, P = k * S;
    int oc = C >= 3 ? 3 : 1, W = SM__FIG_COLS * P + (SM__FIG_COLS + 1) * SM__FIG_PAD,
        H = SM__FIG_HEADER + n * P + (n + 1) * SM__FIG_PAD, p = S / g;
    size_t img = (size_t)C * S * S;
    float *rec = malloc((size_t)n * img * sizeof(float));
    uint8_t *px = malloc((size_t)W * H * oc);
    int rc = !rec || !px ? sm_error_set(err, SM_ENOMEM, path, 0, 0, NULL, "out of memory") : 0;
    if (!rc) rc = sm__fig_forward(m, ctx, images, mask, n, C, S, g, rec, err);
    if (rc) {
        free(rec);
        free(px);
        return rc;
    }
    memset(px, 255, (size_t)W * H * oc);
    if (sm__fig_header(px, W, oc, P)) {
        free(rec);
        free(px);
        return sm_error_set(err, SM_ENOMEM, path, 0, 0, NULL, "out of memory (drawing the header)");
    }
    for (int i = 0; i < n; i++) {
        const float *x = images + i * img, *r = rec + i * img;
        const float *mi = mask + (size_t)i * g * g;
        double abs_sum = 0.0, masked_px = 0.0;
        for (int y = 0; y < S; y++)
            for (int xx = 0; xx < S; xx++) {
                bool masked = mi[(y / p) * g + xx / p] > 0.5f;
                masked_px += masked;
                for (int c = 0; c < C; c++) {
                    size_t off = ((size_t)c * S + y) * S + xx;
                    if (masked) abs_sum += fabs((double)x[off] - r[off]);
                    if (c >= oc) continue;
                    uint8_t in = sm__fig_u8(x[off], mean[c], std[c]);
                    uint8_t out = sm__fig_u8(r[off], mean[c], std[c]);
                    uint8_t v[SM__FIG_COLS] = {in, masked ? SM__FIG_GREY : in, out,
                                               masked ? out : in};
                    /* source pixel (y, xx) -> a k x k block of each panel */
                    size_t row0 = (size_t)SM__FIG_HEADER + SM__FIG_PAD + (size_t)i * (P + SM__FIG_PAD) +
                                  (size_t)y * k;
                    for (int col = 0; col < SM__FIG_COLS; col++) {
                        size_t x0 = (size_t)SM__FIG_PAD + (size_t)col * (P + SM__FIG_PAD) + (size_t)xx * k;
                        for (int dy = 0; dy < k; dy++)
                            for (int dx = 0; dx < k; dx++)
                                px[((row0 + dy) * W + x0 + dx) * oc + c] = v[col];
                    }
                }
            }
        /* the official loss restricted to image i: masked |x - x_rec| / (masked pixels) / C */
        if (losses) losses[i] = abs_sum / (masked_px + 1e-5) / C;
    }
    rc = sm_png_write(path, px, W, H, oc, err);
    free(rec);
    free(px);
    return rc;
}
