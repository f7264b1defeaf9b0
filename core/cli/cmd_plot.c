/* core/cli/cmd_plot.c - `simmimctl plot RUN_DIR... -o FILE`: the training curves of one or more
 * runs (their metrics.jsonl, docs/outputs.md) in one picture, PNG, SVG or PDF by the file's
 * extension; plot.c draws it.
 *
 * Every run is read before anything is drawn: a run that cannot be read (no metrics.jsonl, not
 * readable, no record in it) is an error naming the file, and nothing is written (exit 1), so a
 * figure never silently lacks a run that was asked for. A line that is not a JSON object with
 * the fields of its event is skipped with a warning naming file:line, as the trainer skips it
 * when it rewrites the file on resume; a last line without its newline is a record being
 * written by a running trainer and is skipped quietly. The file is written to
 * "<output>.tmp.<pid>", synced and renamed: never half-written. */
#include "cli.h"
#include "plot.h"

#include <cairo-pdf.h>
#include <cairo-svg.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

enum { SM__PLOT_MAX_WARNINGS = 5 };

static const char plot_usage[] =
    "usage: simmimctl plot RUN_DIR... --output FILE [--label NAME]... [--title TEXT]\n"
    "                      [--width N] [--height N]\n\n"
    "Draws the training curves of runs from their metrics.jsonl (a RUN_DIR may also be the\n"
    "metrics file itself), against epochs (fractional within an epoch): the training loss\n"
    "(each step thin and light, each epoch's mean thick), the learning rate, and the eval\n"
    "top-1 when some run has evaluations. Several runs are overlaid in distinct colours, named\n"
    "in a legend. A run still going is drawn as far as it got.\n\n"
    "  -o, --output FILE  the picture: .png, .svg or .pdf (by the extension)\n"
    "  --label NAME       a legend name: the first --label names the first RUN_DIR, and so\n"
    "                     on (default: the run's directory name)\n"
    "  --title TEXT       a title above the legend (default: none)\n"
    "  --width N          width in pixels (points for SVG/PDF), 400 to 8000 (default 900)\n"
    "  --height N         height, 200 to 8000 (default: 250 per panel plus the legend;\n"
    "                     at least 120 per panel)\n\n"
    "A line of metrics.jsonl that cannot be read is skipped with a warning (file:line).\n"
    "Exit status: 0 written; 1 a run without readable metrics (every such file is named;\n"
    "nothing is written) or a write failure; 2 usage error.\n";

typedef enum { SM__FMT_PNG, SM__FMT_SVG, SM__FMT_PDF } sm__plot_format;

/* A step record kept until the steps of every epoch are known (a run's x axis). */
typedef struct sm__step {
    long long epoch, batch;
    double loss, lr;
} sm__step;

/* The number of JSON field `key` of o, NAN when absent, null or not a number. */
static double sm__num(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

/* An integer field >= 0 of o, -1 when absent or not one. */
static long long sm__count(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    return json_is_integer(v) && json_integer_value(v) >= 0 ? (long long)json_integer_value(v) : -1;
}

/* What a metrics file has given so far. */
typedef struct sm__reader {
    sm__step *steps; /* step records, kept until every epoch's length is known */
    size_t n_steps, cap;
    bool *ended; /* ended[e]: epoch e has its epoch record (e < n_epochs) */
    long long n_epochs;
    size_t records;
} sm__reader;

/* Takes record o (event ev, epoch >= 0) into rd and r. 0, or -1 when out of memory. */
static int sm__reader_add(sm__reader *rd, sm_plot_run *r, const json_t *o, const char *ev,
                          long long epoch)
{
    if (epoch >= rd->n_epochs) { /* ended[] covers every epoch seen */
        bool *ne = realloc(rd->ended, (size_t)(epoch + 1) * sizeof *ne);
        if (!ne) return -1;
        memset(ne + rd->n_epochs, 0, (size_t)(epoch + 1 - rd->n_epochs) * sizeof *ne);
        rd->ended = ne;
        rd->n_epochs = epoch + 1;
    }
    if (!strcmp(ev, "step")) {
        if (rd->n_steps == rd->cap) {
            size_t nc = rd->cap ? 2 * rd->cap : 256;
            sm__step *ns = realloc(rd->steps, nc * sizeof *ns);
            if (!ns) return -1;
            rd->steps = ns;
            rd->cap = nc;
        }
        /* a non-finite step's record has no batch: the one after the previous */
        const sm__step *prev = rd->n_steps ? &rd->steps[rd->n_steps - 1] : NULL;
        long long b = sm__count(o, "batch");
        if (b < 0) b = prev && prev->epoch == epoch ? prev->batch + 1 : 0;
        rd->steps[rd->n_steps++] = (sm__step){epoch, b, sm__num(o, "loss"), sm__num(o, "lr")};
    } else if (!strcmp(ev, "epoch")) {
        rd->ended[epoch] = true;
        if (sm_cli_plot_add(&r->epoch_loss, (double)epoch + 0.5, sm__num(o, "loss"))) return -1;
    } else if (!strcmp(ev, "eval")) {
        if (sm_cli_plot_add(&r->top1, (double)epoch + 1, sm__num(o, "top1"))) return -1;
    } else {
        return 0; /* other events: newer writers' records, not drawn */
    }
    rd->records++;
    return 0;
}

/* Places the steps on the x axis: step (epoch e, batch b) at e + (b + 1) / n_e, n_e the
 * steps of epoch e when it has ended (an epoch record), else the most of any ended epoch or of
 * the steps seen in it (a run in its first epoch fills the first epoch). */
static int sm__reader_place_steps(const sm__reader *rd, sm_plot_run *r)
{
    long long *spe = calloc((size_t)rd->n_epochs + 1, sizeof *spe), most = 0;
    if (!spe) return -1;
    const sm__step *s = rd->steps;
    for (size_t i = 0; i < rd->n_steps; i++)
        if (s[i].batch + 1 > spe[s[i].epoch]) spe[s[i].epoch] = s[i].batch + 1;
    for (long long e = 0; e < rd->n_epochs; e++)
        if (rd->ended[e] && spe[e] > most) most = spe[e];
    int rc = 0;
    for (size_t i = 0; i < rd->n_steps && !rc; i++) {
        long long e = s[i].epoch, d = rd->ended[e] || spe[e] > most ? spe[e] : most;
        double x = (double)e + (double)(s[i].batch + 1) / (double)d;
        rc = sm_cli_plot_add(&r->step_loss, x, s[i].loss) || sm_cli_plot_add(&r->lr, x, s[i].lr);
    }
    free(spe);
    return rc;
}

/* Reads the records of one metrics file into r. Prints warnings for skipped lines; on an error
 * prints it naming the file and returns SM_EXIT_FAILURE. */
static int sm__plot_read(const char *path, sm_plot_run *r)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "simmimctl plot: %s: cannot open: %s\n", path, strerror(errno));
        return SM_EXIT_FAILURE;
    }
    sm__reader rd = {0};
    size_t skipped = 0, len = 0;
    long long lineno = 0;
    char *line = NULL;
    ssize_t got;
    int rc = 0;
    errno = 0;
    while (!rc && (got = getline(&line, &len, f)) > 0) {
        lineno++;
        json_error_t je;
        json_t *o = json_loads(line, 0, &je);
        char bad_json[200];
        snprintf(bad_json, sizeof bad_json, "not JSON (%s)", je.text);
        const char *why = !o ? bad_json : !json_is_object(o) ? "not a JSON object" : NULL;
        const char *ev = why ? NULL : json_string_value(json_object_get(o, "event"));
        long long epoch = why ? -1 : sm__count(o, "epoch");
        if (!why && !ev) why = "no \"event\" string";
        if (!why && epoch < 0 && (!strcmp(ev, "step") || !strcmp(ev, "epoch") || !strcmp(ev, "eval")))
            why = "no \"epoch\" count";
        if (!why && epoch > 10000000) why = "\"epoch\" out of range";
        if (!why)
            rc = sm__reader_add(&rd, r, o, ev, epoch);
        else if ((line[got - 1] == '\n' || !feof(f)) && skipped++ < SM__PLOT_MAX_WARNINGS)
            fprintf(stderr, "simmimctl plot: warning: %s:%lld: %s; line skipped\n", path, lineno,
                    why); /* (a last line cut short is being written: quiet) */
        json_decref(o);
        errno = 0;
    }
    bool read_error = ferror(f);
    int read_errno = errno;
    fclose(f);
    free(line);
    if (!rc && rd.n_steps) rc = sm__reader_place_steps(&rd, r);
    free(rd.steps);
    free(rd.ended);
    if (rc) {
        fprintf(stderr, "simmimctl plot: %s: out of memory\n", path);
        return SM_EXIT_FAILURE;
    }
    if (skipped > SM__PLOT_MAX_WARNINGS)
        fprintf(stderr, "simmimctl plot: warning: %s: %zu more lines skipped\n", path,
                skipped - SM__PLOT_MAX_WARNINGS);
    if (read_error) {
        fprintf(stderr, "simmimctl plot: %s: cannot read: %s\n", path,
                strerror(read_errno ? read_errno : EIO));
        return SM_EXIT_FAILURE;
    }
    if (!rd.records) {
        fprintf(stderr, "simmimctl plot: %s: no step, epoch or eval record to plot%s\n", path,
                skipped ? " (every line was skipped)" : "");
        return SM_EXIT_FAILURE;
    }
    return 0;
}

/* RUN_DIR/metrics.jsonl, or RUN_DIR itself when it is a file; malloc'd (NULL: out of memory). */
static char *sm__metrics_path(const char *run)
{
    struct stat st;
    if (stat(run, &st) == 0 && S_ISREG(st.st_mode)) return strdup(run);
    size_t n = strlen(run) + sizeof "/metrics.jsonl";
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/metrics.jsonl", run);
    return p;
}

/* The legend name of a run: the last component of the directory that holds its metrics file
 * (with "." and ".." resolved). malloc'd. */
static char *sm__run_name(const char *metrics_path)
{
    char *dir = strdup(metrics_path), *real = NULL;
    if (!dir) return NULL;
    char *slash = strrchr(dir, '/');
    if (slash) *slash = '\0';
    else strcpy(dir, ".");
    char *name = NULL;
    if ((real = realpath(dir, NULL)) != NULL) {
        char *base = strrchr(real, '/');
        name = strdup(base && base[1] ? base + 1 : real);
    }
    free(real);
    free(dir);
    return name ? name : strdup("run");
}

/* cairo's writer: appends to f; the first failure's errno is kept (cairo's own calls after it
 * may change errno) */
typedef struct sm__plot_sink {
    FILE *f;
    int err;
} sm__plot_sink;

static cairo_status_t sm__plot_write(void *closure, const unsigned char *data, unsigned int len)
{
    sm__plot_sink *k = closure;
    if (!k->err && fwrite(data, 1, len, k->f) != len) k->err = errno ? errno : EIO;
    return k->err ? CAIRO_STATUS_WRITE_ERROR : CAIRO_STATUS_SUCCESS;
}

/* Draws the figure into path (format fmt) through a temporary file. Prints any error. */
static int sm__plot_save(const char *path, sm__plot_format fmt, const sm_plot_run *runs,
                         size_t n, const char *title, double w, double h)
{
    size_t tl = strlen(path) + 32;
    char *tmp = malloc(tl);
    if (!tmp) {
        fprintf(stderr, "simmimctl plot: out of memory\n");
        return SM_EXIT_FAILURE;
    }
    snprintf(tmp, tl, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        fprintf(stderr, "simmimctl plot: %s: cannot create: %s\n", path, strerror(errno));
        free(tmp);
        return SM_EXIT_FAILURE;
    }
    sm__plot_sink k = {f, 0};
    cairo_surface_t *s =
        fmt == SM__FMT_SVG   ? cairo_svg_surface_create_for_stream(sm__plot_write, &k, w, h)
        : fmt == SM__FMT_PDF ? cairo_pdf_surface_create_for_stream(sm__plot_write, &k, w, h)
                             : cairo_image_surface_create(CAIRO_FORMAT_RGB24, (int)w, (int)h);
    cairo_t *cr = cairo_create(s);
    cairo_status_t st = sm_cli_plot_draw(cr, runs, n, title, w, h);
    cairo_destroy(cr);
    if (st == CAIRO_STATUS_SUCCESS && fmt == SM__FMT_PNG)
        st = cairo_surface_write_to_png_stream(s, sm__plot_write, &k);
    cairo_surface_finish(s); /* SVG and PDF are written out here */
    if (st == CAIRO_STATUS_SUCCESS) st = cairo_surface_status(s);
    cairo_surface_destroy(s);
    int e = k.err;
    errno = 0;
    if (!e && (st == CAIRO_STATUS_WRITE_ERROR || fflush(f) != 0 || ferror(f) ||
               fsync(fileno(f)) != 0))
        e = errno ? errno : EIO;
    if (fclose(f) != 0 && !e) e = errno;
    if (st == CAIRO_STATUS_SUCCESS && !e && rename(tmp, path) != 0) e = errno;
    int rc = SM_EXIT_OK;
    if (e || st != CAIRO_STATUS_SUCCESS) {
        if (e)
            fprintf(stderr, "simmimctl plot: %s: write failed: %s\n", path, strerror(e));
        else
            fprintf(stderr, "simmimctl plot: %s: drawing failed: %s\n", path,
                    cairo_status_to_string(st));
        unlink(tmp);
        rc = SM_EXIT_FAILURE;
    }
    free(tmp);
    return rc;
}

/* .png, .svg or .pdf (any case); -1 otherwise */
static int sm__plot_format_of(const char *path)
{
    static const char *const ext[] = {".png", ".svg", ".pdf"};
    size_t n = strlen(path);
    for (int i = 0; i < 3; i++)
        if (n > 4 && strcasecmp(path + n - 4, ext[i]) == 0) return i;
    return -1;
}

int sm_cmd_plot(int argc, char **argv)
{
    static const char *const keys[] = {"--output", "-o", "--title", "--width", "--height"};
    const char *v[5] = {NULL, NULL, NULL, NULL, NULL};
    if (sm_cli_take_values(&argc, argv, keys, v, 5)) return SM_EXIT_USAGE;
    const char *out = v[1] ? v[1] : v[0], *title = v[2];
    const char **runs_arg = calloc((size_t)argc + 1, sizeof *runs_arg),
               **labels = calloc((size_t)argc + 1, sizeof *labels);
    size_t n_runs = 0, n_labels = 0;
    int rc = SM_EXIT_USAGE;
    if (!runs_arg || !labels) {
        fprintf(stderr, "simmimctl plot: out of memory\n");
        rc = SM_EXIT_FAILURE;
        goto out_args;
    }
    bool only_runs = false; /* after "--" */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (only_runs || a[0] != '-' || !a[1]) {
            runs_arg[n_runs++] = a;
        } else if (!strcmp(a, "--")) {
            only_runs = true;
        } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(plot_usage, stdout);
            rc = SM_EXIT_OK;
            goto out_args;
        } else if (!strcmp(a, "--label") && i + 1 < argc) {
            labels[n_labels++] = argv[++i];
        } else if (!strncmp(a, "--label=", 8)) {
            labels[n_labels++] = a + 8;
        } else {
            fprintf(stderr, "simmimctl plot: %s '%s' (see 'simmimctl plot --help')\n",
                    !strcmp(a, "--label") ? "a value is needed after" : "unknown option", a);
            goto out_args;
        }
    }
    long width = 900, height = 0;
    const char *problem = !n_runs                        ? "no RUN_DIR given"
                          : !out                         ? "--output FILE is required"
                          : sm__plot_format_of(out) < 0  ? "--output must end in .png, .svg or .pdf"
                          : n_labels > n_runs            ? "more --label than runs"
                          : v[3] && sm_cli_parse_long(v[3], 400, 8000, &width) ? "--width takes 400 to 8000"
                          : v[4] && sm_cli_parse_long(v[4], 200, 8000, &height) ? "--height takes 200 to 8000"
                                                                                : NULL;
    if (problem) {
        fprintf(stderr, "simmimctl plot: %s (see 'simmimctl plot --help')\n", problem);
        goto out_args;
    }

    rc = SM_EXIT_FAILURE;
    sm_plot_run *runs = calloc(n_runs, sizeof *runs);
    char **owned = calloc(2 * n_runs, sizeof *owned); /* metrics paths and default names */
    if (!runs || !owned) {
        fprintf(stderr, "simmimctl plot: out of memory\n");
        goto out_runs;
    }
    int failed = 0;
    for (size_t i = 0; i < n_runs; i++) {
        char *path = owned[2 * i] = sm__metrics_path(runs_arg[i]);
        if (!path) {
            fprintf(stderr, "simmimctl plot: out of memory\n");
            goto out_runs;
        }
        failed |= sm__plot_read(path, &runs[i]); /* every bad run is reported */
        if (i < n_labels) runs[i].label = labels[i];
        else if (!(runs[i].label = owned[2 * i + 1] = sm__run_name(path))) {
            fprintf(stderr, "simmimctl plot: out of memory\n");
            goto out_runs;
        }
    }
    if (failed) {
        fprintf(stderr, "simmimctl plot: nothing written (%s)\n", out);
        goto out_runs;
    }
    double h = height ? (double)height
                      : sm_cli_plot_height(runs, n_runs, title, (double)width, SM_PLOT_PANEL);
    double least = sm_cli_plot_height(runs, n_runs, title, (double)width, SM_PLOT_PANEL_MIN);
    if (h < least) {
        fprintf(stderr, "simmimctl plot: --height %ld leaves no room for the panels: at least %.0f "
                        "for these runs (see 'simmimctl plot --help')\n", height, least);
        rc = SM_EXIT_USAGE;
        goto out_runs;
    }
    rc = sm__plot_save(out, (sm__plot_format)sm__plot_format_of(out), runs, n_runs, title,
                       (double)width, h);
    if (!rc) printf("%s: %zu run%s\n", out, n_runs, n_runs == 1 ? "" : "s");

out_runs:
    for (size_t i = 0; runs && i < n_runs; i++) sm_cli_plot_run_free(&runs[i]);
    for (size_t i = 0; owned && i < 2 * n_runs; i++) free(owned[i]);
    free(runs);
    free(owned);
out_args:
    free(runs_arg);
    free(labels);
    return rc;
}
