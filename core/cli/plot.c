/* core/cli/plot.c - draws the figure of `simmimctl plot` with cairo: an optional title, a
 * legend naming each run in its colour, then stacked panels sharing one x axis (epochs):
 *   training loss   each step's loss drawn thin and light, each epoch's mean thick on top
 *   learning rate   each step's scheduled rate
 *   eval top-1 (%)  each evaluation (only when some run has evaluations)
 * Axes get "nice" ticks (1, 2 or 5 times a power of ten) with light grid lines; a non-finite
 * value (null in metrics.jsonl) leaves a gap in its curve. An epoch's mean loss is drawn at the
 * middle of the epoch, an evaluation at its end. Units are pixels for PNG and points
 * for SVG and PDF; the layout is the same. */
#include "plot.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { SM__P_LOSS, SM__P_LR, SM__P_TOP1, SM__P_COUNT };

/* layout (pixels) */
static const double sm__left = 84;         /* left of the plot boxes: the y tick labels */
static const double sm__right = 28;        /* right of the plot boxes                  */
static const double sm__top = 12;          /* above the title / legend                 */
static const double sm__title_h = 32;      /* the title's line                         */
static const double sm__legend_h = 22;     /* one legend row                           */
static const double sm__panel_top = 34;    /* a panel's title, above its box           */
static const double sm__panel_bottom = 26; /* the x tick labels, below a box           */
static const double sm__xlabel_h = 24;     /* "epoch" under the last panel             */
static const char sm__font[] = "sans-serif";

/* Tableau 10: distinct for most colour-blind readers, and on white and in grey print */
static const unsigned sm__palette[10] = {0x4E79A7, 0xF28E2B, 0xE15759, 0x76B7B2, 0x59A14F,
                                         0xEDC948, 0xB07AA1, 0xFF9DA7, 0x9C755F, 0xBAB0AC};

void sm_cli_plot_colour(size_t i, double rgb[3])
{
    unsigned c = sm__palette[i % 10];
    rgb[0] = (c >> 16 & 255) / 255.0;
    rgb[1] = (c >> 8 & 255) / 255.0;
    rgb[2] = (c & 255) / 255.0;
}

int sm_cli_plot_add(sm_plot_curve *c, double x, double y)
{
    if (c->n == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 64;
        double *nx = realloc(c->x, cap * sizeof *nx);
        if (!nx) return -1;
        c->x = nx;
        double *ny = realloc(c->y, cap * sizeof *ny);
        if (!ny) return -1;
        c->y = ny;
        c->cap = cap;
    }
    c->x[c->n] = x;
    c->y[c->n++] = y;
    return 0;
}

static void sm__curve_free(sm_plot_curve *c)
{
    free(c->x);
    free(c->y);
    memset(c, 0, sizeof *c);
}

void sm_cli_plot_run_free(sm_plot_run *r)
{
    sm__curve_free(&r->step_loss);
    sm__curve_free(&r->epoch_loss);
    sm__curve_free(&r->lr);
    sm__curve_free(&r->top1);
}

/* The curves of run r shown in panel p (up to 2; NULL-padded). */
static void sm__panel_curves(const sm_plot_run *r, int p, const sm_plot_curve *out[2])
{
    out[0] = p == SM__P_LOSS ? &r->step_loss : p == SM__P_LR ? &r->lr : &r->top1;
    out[1] = p == SM__P_LOSS ? &r->epoch_loss : NULL;
}

/* Panel p is drawn when some run has a point (finite or not) for it. */
static bool sm__panel_shown(const sm_plot_run *runs, size_t n, int p)
{
    for (size_t i = 0; i < n; i++) {
        const sm_plot_curve *c[2];
        sm__panel_curves(&runs[i], p, c);
        if (c[0]->n || (c[1] && c[1]->n)) return true;
    }
    return false;
}

/* ---- text ---------------------------------------------------------------------------------- */

static void sm__font_set(cairo_t *cr, double size, bool bold)
{
    cairo_select_font_face(cr, sm__font, CAIRO_FONT_SLANT_NORMAL,
                           bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, size);
}

/* The length of the valid UTF-8 sequence at s (1 to 4), 0 if none starts there. */
static int sm__utf8_len(const unsigned char *s)
{
    unsigned c = s[0];
    int n = c < 0x80 ? 1 : c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3
            : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
    for (int k = 1; k < n; k++)
        if ((s[k] & 0xC0) != 0x80) return 0;
    if ((c == 0xE0 && s[1] < 0xA0) || (c == 0xED && s[1] >= 0xA0) || /* overlong, surrogate */
        (c == 0xF0 && s[1] < 0x90) || (c == 0xF4 && s[1] >= 0x90))  /* overlong, > U+10FFFF */
        return 0;
    return n;
}

/* s if it is valid UTF-8 (cairo refuses anything else and stops drawing), else a copy in buf
 * with '?' for each byte that is not (a directory name can be any bytes) */
static const char *sm__utf8(const char *s, char *buf, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (u[i]) {
        int n = sm__utf8_len(u + i);
        if (!n) break;
        i += (size_t)n;
    }
    if (!u[i]) return s;
    size_t o = 0;
    for (i = 0; u[i] && o + 5 < len;) {
        int n = sm__utf8_len(u + i);
        if (!n) {
            buf[o++] = '?';
            i++;
        } else {
            memcpy(buf + o, u + i, (size_t)n);
            o += (size_t)n;
            i += (size_t)n;
        }
    }
    buf[o] = '\0';
    return buf;
}

static double sm__text_width(cairo_t *cr, const char *s)
{
    char buf[512];
    cairo_text_extents_t te;
    cairo_text_extents(cr, sm__utf8(s, buf, sizeof buf), &te);
    return te.x_advance;
}

/* s with its baseline at y; align -1 left of x, 0 centred on x, 1 right of x */
static void sm__text(cairo_t *cr, double x, double y, const char *s, int align)
{
    char buf[512];
    double w = sm__text_width(cr, s);
    cairo_move_to(cr, x - (align + 1) * w / 2, y);
    cairo_show_text(cr, sm__utf8(s, buf, sizeof buf));
    cairo_new_path(cr);
}

/* ---- legend -------------------------------------------------------------------------------- */

enum { SM__SWATCH = 26 };

/* Lays out (and draws if draw) one entry per run, left to right from x0, wrapping before x1;
 * the first row's centre line at y0. Returns the number of rows. */
static int sm__legend(cairo_t *cr, const sm_plot_run *runs, size_t n, double x0, double x1,
                      double y0, bool draw)
{
    sm__font_set(cr, 13, false);
    double x = x0;
    int rows = 1;
    for (size_t i = 0; i < n; i++) {
        double w = SM__SWATCH + 6 + sm__text_width(cr, runs[i].label);
        if (x > x0 && x + w > x1) {
            x = x0;
            rows++;
        }
        if (draw) {
            double y = y0 + (rows - 1) * sm__legend_h, rgb[3];
            sm_cli_plot_colour(i, rgb);
            cairo_set_source_rgb(cr, rgb[0], rgb[1], rgb[2]);
            cairo_set_line_width(cr, 3);
            cairo_set_dash(cr, (double[]){6, 3}, (i / 10) % 2 ? 2 : 0, 0);
            cairo_move_to(cr, x, y);
            cairo_line_to(cr, x + SM__SWATCH, y);
            cairo_stroke(cr);
            cairo_set_dash(cr, NULL, 0, 0);
            cairo_set_source_rgb(cr, 0.13, 0.13, 0.13);
            sm__text(cr, x + SM__SWATCH + 6, y + 4.5, runs[i].label, -1);
        }
        x += w + 22;
    }
    return rows;
}

static double sm__header_h(cairo_t *cr, const sm_plot_run *runs, size_t n, const char *title,
                           double width)
{
    int rows = sm__legend(cr, runs, n, sm__left, width - sm__right, 0, false);
    return sm__top + (title && *title ? sm__title_h : 0) + rows * sm__legend_h + 4;
}

double sm_cli_plot_height(const sm_plot_run *runs, size_t n, const char *title, double width,
                          double panel_h)
{
    cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, 1, 1);
    cairo_t *cr = cairo_create(s);
    double h = sm__header_h(cr, runs, n, title, width);
    cairo_destroy(cr);
    cairo_surface_destroy(s);
    int panels = 0;
    for (int p = 0; p < SM__P_COUNT; p++) panels += sm__panel_shown(runs, n, p);
    return ceil(h + panels * panel_h + sm__xlabel_h);
}

/* ---- axes ---------------------------------------------------------------------------------- */

/* [lo, hi] in steps of step: the ticks */
typedef struct sm__axis {
    double lo, hi, step;
} sm__axis;

/* The "nice" number nearest v > 0: 1, 2, 5 or 10 times a power of ten. */
static double sm__nice(double v)
{
    double e = floor(log10(v)), f = v / pow(10, e);
    return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * pow(10, e);
}

/* About `ticks` ticks covering [lo, hi], the ends rounded out to ticks. */
static sm__axis sm__axis_make(double lo, double hi, int ticks)
{
    if (!(hi > lo)) { /* one value: a small range around it */
        double d = lo != 0 ? fabs(lo) * 0.1 : 1;
        lo -= d;
        hi += d;
    }
    sm__axis a;
    a.step = sm__nice((hi - lo) / (ticks - 1));
    a.lo = floor(lo / a.step + 1e-9) * a.step;
    a.hi = ceil(hi / a.step - 1e-9) * a.step;
    return a;
}

/* About one tick per `gap` units of an axis `len` long, 3 to `most`. */
static int sm__ticks(double len, double gap, int most)
{
    int t = (int)(len / gap);
    return t < 3 ? 3 : t > most ? most : t;
}

/* The label of tick v: fixed decimals as the step needs, or, for small steps and large values,
 * mantissas with the exponent e of the largest tick ("2.5e-4"). */
static void sm__tick_label(const sm__axis *a, double v, char *buf, size_t len)
{
    if (fabs(v) < a->step * 1e-6) {
        snprintf(buf, len, "0");
        return;
    }
    double big = fmax(fabs(a->lo), fabs(a->hi));
    int sd = (int)floor(log10(a->step) + 1e-9); /* the step's decimal exponent */
    if (a->step < 1e-4 || big >= 1e5) {
        int e = (int)floor(log10(big) + 1e-9), d = e - sd;
        snprintf(buf, len, "%.*fe%d", d < 0 ? 0 : d > 6 ? 6 : d, v / pow(10, e), e);
    } else {
        int d = -sd;
        snprintf(buf, len, "%.*f", d < 0 ? 0 : d, v);
    }
}

/* ---- panels -------------------------------------------------------------------------------- */

typedef struct sm__box {
    double x, y, w, h;  /* the plot box                      */
    sm__axis xa, ya;    /* data ranges mapped onto the box   */
} sm__box;

static double sm__px(const sm__box *b, double x)
{
    return b->x + (x - b->xa.lo) / (b->xa.hi - b->xa.lo) * b->w;
}

static double sm__py(const sm__box *b, double y)
{
    return b->y + b->h - (y - b->ya.lo) / (b->ya.hi - b->ya.lo) * b->h;
}

/* Strokes curve c (width lw, alpha) in the colour of run i; a gap at every non-finite value; an
 * isolated point shows as a dot; markers: a filled circle at each point. */
static void sm__curve(cairo_t *cr, const sm__box *b, const sm_plot_curve *c, size_t i, double lw,
                      double alpha, bool markers)
{
    double rgb[3];
    sm_cli_plot_colour(i, rgb);
    cairo_set_source_rgba(cr, rgb[0], rgb[1], rgb[2], alpha);
    cairo_set_line_width(cr, lw);
    cairo_set_line_cap(cr, CAIRO_LINE_CAP_ROUND);
    cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
    cairo_set_dash(cr, (double[]){6, 3}, (i / 10) % 2 ? 2 : 0, 0);
    bool open = false;
    for (size_t k = 0; k < c->n; k++) {
        if (!isfinite(c->y[k]) || !isfinite(c->x[k])) {
            open = false;
            continue;
        }
        double x = sm__px(b, c->x[k]), y = sm__py(b, c->y[k]);
        if (!open) cairo_move_to(cr, x, y);
        cairo_line_to(cr, x, y); /* a zero-length first segment: the dot of a lone point */
        open = true;
    }
    cairo_stroke(cr);
    cairo_set_dash(cr, NULL, 0, 0);
    if (!markers) return;
    for (size_t k = 0; k < c->n; k++) {
        if (!isfinite(c->y[k]) || !isfinite(c->x[k])) continue;
        cairo_new_sub_path(cr);
        cairo_arc(cr, sm__px(b, c->x[k]), sm__py(b, c->y[k]), lw + 1.2, 0, 2 * M_PI);
    }
    cairo_fill(cr);
}

/* Grid lines, frame and tick labels of box b. */
static void sm__axes(cairo_t *cr, const sm__box *b)
{
    char s[64];
    cairo_set_line_width(cr, 1);
    sm__font_set(cr, 11, false);
    for (int k = 0;; k++) { /* y ticks */
        double v = b->ya.lo + k * b->ya.step;
        if (v > b->ya.hi + b->ya.step * 1e-6) break;
        double y = floor(sm__py(b, v)) + 0.5;
        cairo_set_source_rgb(cr, 0.9, 0.9, 0.9);
        cairo_move_to(cr, b->x, y);
        cairo_line_to(cr, b->x + b->w, y);
        cairo_stroke(cr);
        sm__tick_label(&b->ya, v, s, sizeof s);
        cairo_set_source_rgb(cr, 0.25, 0.25, 0.25);
        sm__text(cr, b->x - 7, y + 4, s, 1);
    }
    for (int k = 0;; k++) { /* x ticks */
        double v = b->xa.lo + k * b->xa.step;
        if (v > b->xa.hi + b->xa.step * 1e-6) break;
        double x = floor(sm__px(b, v)) + 0.5;
        cairo_set_source_rgb(cr, 0.9, 0.9, 0.9);
        cairo_move_to(cr, x, b->y);
        cairo_line_to(cr, x, b->y + b->h);
        cairo_stroke(cr);
        sm__tick_label(&b->xa, v, s, sizeof s);
        cairo_set_source_rgb(cr, 0.25, 0.25, 0.25);
        sm__text(cr, x, b->y + b->h + 16, s, 0);
    }
    cairo_set_source_rgb(cr, 0.45, 0.45, 0.45);
    cairo_rectangle(cr, floor(b->x) + 0.5, floor(b->y) + 0.5, floor(b->w), floor(b->h));
    cairo_stroke(cr);
}

/* Panel p in the slot (x, y, w, h): title, axes, every run's curves. */
static void sm__panel(cairo_t *cr, int p, const sm_plot_run *runs, size_t n, double x, double y,
                      double w, double h, sm__axis xa)
{
    static const char *const titles[SM__P_COUNT] = {"training loss", "learning rate",
                                                    "eval top-1 (%)"};
    cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
    sm__font_set(cr, 14, true);
    sm__text(cr, x, y + 22, titles[p], -1);
    if (p == SM__P_LOSS) { /* the key of the two curves, when it fits beside the title */
        static const char key[] = "thin: each step, thick: epoch mean";
        double tw = sm__text_width(cr, titles[p]);
        sm__font_set(cr, 11.5, false);
        cairo_set_source_rgb(cr, 0.4, 0.4, 0.4);
        if (tw + 12 + sm__text_width(cr, key) <= w) sm__text(cr, x + tw + 12, y + 22, key, -1);
    }
    sm__box b = {x, y + sm__panel_top, w, h - sm__panel_top - sm__panel_bottom, xa, {0, 1, 1}};
    double lo = INFINITY, hi = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        const sm_plot_curve *c[2];
        sm__panel_curves(&runs[i], p, c);
        for (int j = 0; j < 2 && c[j]; j++)
            for (size_t k = 0; k < c[j]->n; k++)
                if (isfinite(c[j]->y[k])) {
                    lo = fmin(lo, c[j]->y[k]);
                    hi = fmax(hi, c[j]->y[k]);
                }
    }
    if (!(lo <= hi)) { /* points, but every one null */
        b.ya = sm__axis_make(0, 1, 5);
        sm__axes(cr, &b);
        cairo_set_source_rgb(cr, 0.4, 0.4, 0.4);
        sm__font_set(cr, 13, false);
        sm__text(cr, b.x + b.w / 2, b.y + b.h / 2, "no finite values (null in metrics.jsonl)", 0);
        return;
    }
    /* 4 % of the range around the values (none lies on the frame), not below 0 if none is,
     * nor above 100 % */
    double m = (hi - lo) * 0.04;
    b.ya = sm__axis_make(lo >= 0 ? fmax(lo - m, 0) : lo - m, hi + m, sm__ticks(b.h, 36, 6));
    if (lo >= 0) b.ya.lo = fmax(b.ya.lo, 0);
    if (p == SM__P_TOP1) b.ya.hi = fmin(b.ya.hi, 100);
    sm__axes(cr, &b);
    cairo_save(cr);
    cairo_rectangle(cr, b.x, b.y, b.w, b.h);
    cairo_clip(cr);
    /* light curves first, so that no run's per-step cloud hides another run's mean */
    for (size_t i = 0; i < n; i++) {
        const sm_plot_curve *c[2];
        sm__panel_curves(&runs[i], p, c);
        if (p == SM__P_LOSS) /* the steps lightly, unless there is no epoch mean yet */
            sm__curve(cr, &b, c[0], i, 1.2, runs[i].epoch_loss.n ? 0.35 : 0.9, false);
    }
    for (size_t i = 0; i < n; i++) {
        const sm_plot_curve *c[2];
        sm__panel_curves(&runs[i], p, c);
        const sm_plot_curve *main = p == SM__P_LOSS ? c[1] : c[0];
        sm__curve(cr, &b, main, i, p == SM__P_LR ? 1.8 : 2.2, 1, p != SM__P_LR && main->n <= 40);
    }
    cairo_restore(cr);
}

cairo_status_t sm_cli_plot_draw(cairo_t *cr, const sm_plot_run *runs, size_t n, const char *title,
                                double width, double height)
{
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    double y = sm__top;
    if (title && *title) {
        cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
        sm__font_set(cr, 17, true);
        sm__text(cr, sm__left, y + 20, title, -1);
        y += sm__title_h;
    }
    int rows = sm__legend(cr, runs, n, sm__left, width - sm__right, y + sm__legend_h / 2, true);
    y += rows * sm__legend_h + 4;

    /* one x axis for every panel: 0 to the last point of any run */
    double xmax = 0;
    for (size_t i = 0; i < n; i++)
        for (int p = 0; p < SM__P_COUNT; p++) {
            const sm_plot_curve *c[2];
            sm__panel_curves(&runs[i], p, c);
            for (int j = 0; j < 2 && c[j]; j++)
                for (size_t k = 0; k < c[j]->n; k++)
                    if (isfinite(c[j]->x[k])) xmax = fmax(xmax, c[j]->x[k]);
        }
    sm__axis xa = sm__axis_make(0, xmax > 0 ? xmax : 1,
                                sm__ticks(width - sm__left - sm__right, 90, 8));
    xa.lo = 0;

    int shown[SM__P_COUNT], np = 0;
    for (int p = 0; p < SM__P_COUNT; p++)
        if (sm__panel_shown(runs, n, p)) shown[np++] = p;
    double ph = np ? (height - y - sm__xlabel_h) / np : 0;
    for (int k = 0; k < np; k++)
        sm__panel(cr, shown[k], runs, n, sm__left, y + k * ph, width - sm__left - sm__right, ph, xa);
    cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
    sm__font_set(cr, 12.5, false);
    sm__text(cr, sm__left + (width - sm__left - sm__right) / 2, height - 10, "epoch", 0);
    return cairo_status(cr);
}
