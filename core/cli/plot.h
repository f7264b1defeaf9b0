/* core/cli/plot.h - the figure of `simmimctl plot` (plot.c draws it; cmd_plot.c reads the
 * metrics and writes the file). */
#ifndef SIMMIM_CLI_PLOT_H
#define SIMMIM_CLI_PLOT_H

#include <cairo.h>
#include <stddef.h>

/* A curve: n points (x[i], y[i]), x in epochs; a non-finite y is a gap. */
typedef struct sm_plot_curve {
    double *x, *y;
    size_t n, cap;
} sm_plot_curve;

/* What is drawn of one run. */
typedef struct sm_plot_run {
    const char *label;        /* legend text                                     */
    sm_plot_curve step_loss;  /* each step's loss, at epoch + (batch + 1) / steps  */
    sm_plot_curve epoch_loss; /* each epoch's mean loss, at epoch + 0.5            */
    sm_plot_curve lr;         /* each step's learning rate                         */
    sm_plot_curve top1;       /* each evaluation's top-1 (%), at epoch + 1         */
} sm_plot_run;

/* Appends (x, y); 0 or -1 (out of memory). */
int sm_cli_plot_add(sm_plot_curve *c, double x, double y);
void sm_cli_plot_run_free(sm_plot_run *r);

/* Panel heights: the default, and the least that leaves a readable plot box. */
#define SM_PLOT_PANEL 250.0
#define SM_PLOT_PANEL_MIN 120.0

/* The figure's height for a width with panels of panel_h: the title, the legend's rows and a
 * panel for each of loss, learning rate and top-1 that some run has points for. */
double sm_cli_plot_height(const sm_plot_run *runs, size_t n, const char *title, double width,
                          double panel_h);

/* Draws the figure on cr over (0, 0)-(width, height): the title (may be NULL), the legend, and
 * the panels, the runs overlaid in the colours of sm_cli_plot_colour. Returns cairo's status. */
cairo_status_t sm_cli_plot_draw(cairo_t *cr, const sm_plot_run *runs, size_t n, const char *title,
                                double width, double height);

/* The colour of run i (0..1 RGB): Tableau 10, repeated (dashed lines after the tenth run). */
void sm_cli_plot_colour(size_t i, double rgb[3]);

#endif
