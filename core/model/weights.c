/* core/model/weights.c - loading weights into a model from a safetensors file, with the official
 * generic parts of the official fine-tuning remaps (microsoft/SimMIM utils.load_pretrained,
 * spec §9.4-9.5):
 *  - a SimMIM checkpoint feeds a classifier through its "encoder." weights (the decoder and the
 *    mask token are dropped);
 *  - relative_position_index / attn_mask buffers are ignored (the model builds its own);
 *  - what is particular to a backbone (ViT's shared relative position table copied into every
 *    block, tables of another window size resized) is the backbone's adapt_weight, which may
 *    use the official geometric resize below (scipy interp2d cubic = not-a-knot bicubic spline
 *    on a geometric grid). */
#include "base/internal.h"
#include "simmim/model.h"

#include <math.h>

/* ---- geometric resize of a relative position table (spec §9.5) ---------------------------- */

/* Not-a-knot cubic spline through (x[i], y[i]), i < n (n >= 4), evaluated at t[j], j < m. */
static int sm__spline(const double *x, const double *y, int n, const double *t, int m, double *out)
{
    int N = n;
    double *A = calloc((size_t)N * N, sizeof *A), *b = calloc((size_t)N, sizeof *b);
    if (!A || !b) {
        free(A);
        free(b);
        return SM_ENOMEM;
    }
#define Aij(i, j) A[(i)*N + (j)]
    for (int i = 1; i < n - 1; i++) {
        double h0 = x[i] - x[i - 1], h1 = x[i + 1] - x[i];
        Aij(i, i - 1) = h0;
        Aij(i, i) = 2.0 * (h0 + h1);
        Aij(i, i + 1) = h1;
        b[i] = 6.0 * ((y[i + 1] - y[i]) / h1 - (y[i] - y[i - 1]) / h0);
    }
    /* not-a-knot: the third derivative is continuous at x[1] and x[n-2] */
    double h0 = x[1] - x[0], h1 = x[2] - x[1];
    Aij(0, 0) = h1, Aij(0, 1) = -(h0 + h1), Aij(0, 2) = h0;
    double ha = x[n - 2] - x[n - 3], hb = x[n - 1] - x[n - 2];
    Aij(n - 1, n - 3) = hb, Aij(n - 1, n - 2) = -(ha + hb), Aij(n - 1, n - 1) = ha;
    /* Gaussian elimination with partial pivoting (n is at most a few dozen) */
    for (int c = 0; c < N; c++) {
        int p = c;
        for (int r = c + 1; r < N; r++)
            if (fabs(Aij(r, c)) > fabs(Aij(p, c))) p = r;
        if (p != c) {
            for (int k = 0; k < N; k++) {
                double tmp = Aij(c, k);
                Aij(c, k) = Aij(p, k);
                Aij(p, k) = tmp;
            }
            double tmp = b[c];
            b[c] = b[p];
            b[p] = tmp;
        }
        for (int r = c + 1; r < N; r++) {
            double f = Aij(r, c) / Aij(c, c);
            for (int k = c; k < N; k++) Aij(r, k) -= f * Aij(c, k);
            b[r] -= f * b[c];
        }
    }
    for (int r = N - 1; r >= 0; r--) {
        double s = b[r];
        for (int k = r + 1; k < N; k++) s -= Aij(r, k) * b[k];
        b[r] = s / Aij(r, r);
    }
#undef Aij
    for (int j = 0; j < m; j++) {
        int i = 0;
        while (i < n - 2 && t[j] > x[i + 1]) i++;
        double h = x[i + 1] - x[i], a = x[i + 1] - t[j], c = t[j] - x[i];
        out[j] = b[i] * a * a * a / (6 * h) + b[i + 1] * c * c * c / (6 * h) +
                 (y[i] / h - b[i] * h / 6) * a + (y[i + 1] / h - b[i + 1] * h / 6) * c;
    }
    free(A);
    free(b);
    return 0;
}

/* Source coordinates of the official geometric resize from src to dst points per side. */
static void sm__geo_coords(int src, int dst, double *x)
{
    double left = 1.01, right = 1.5, q = 1.0;
    while (right - left > 1e-6) { /* the official loop; its last midpoint is used */
        q = (left + right) / 2.0;
        double gp = (1.0 - pow(q, src / 2)) / (1.0 - q);
        if (gp > dst / 2)
            right = q;
        else
            left = q;
    }
    int half = src / 2;
    double cur = 1.0;
    for (int i = 0; i < half; i++) {
        x[half + 1 + i] = cur;
        x[half - 1 - i] = -cur;
        cur += pow(q, i + 1);
    }
    x[half] = 0.0;
}

/* table (src², heads) -> out (dst², heads), one square side per head. */
static int sm__resize_table(const float *table, int src, int dst, int heads, float *out)
{
    double *x = malloc((size_t)src * sizeof *x), *t = malloc((size_t)dst * sizeof *t);
    double *z = malloc((size_t)src * src * sizeof *z),
           *row = malloc((size_t)src * dst * sizeof *row);
    double *col = malloc((size_t)src * sizeof *col), *res = malloc((size_t)dst * sizeof *res);
    int rc = (!x || !t || !z || !row || !col || !res) ? SM_ENOMEM : 0;
    if (!rc) {
        sm__geo_coords(src, dst, x);
        for (int j = 0; j < dst; j++) t[j] = (double)(j - dst / 2);
    }
    for (int h = 0; h < heads && !rc; h++) {
        for (int i = 0; i < src * src; i++) z[i] = table[(int64_t)i * heads + h];
        /* along each row (x = Δw), then along each column (y = Δh) */
        for (int r = 0; r < src && !rc; r++)
            rc = sm__spline(x, z + r * src, src, t, dst, row + r * dst);
        for (int c = 0; c < dst && !rc; c++) {
            for (int r = 0; r < src; r++) col[r] = row[r * dst + c];
            rc = sm__spline(x, col, src, t, dst, res);
            for (int r = 0; r < dst && !rc; r++)
                out[((int64_t)r * dst + c) * heads + h] = (float)res[r];
        }
    }
    free(x);
    free(t);
    free(z);
    free(row);
    free(col);
    free(res);
    return rc;
}

int sm_relpos_table_resize(const float *in, int table_in, int table_out, int heads, int extra,
                           float *out, sm_error *err)
{
    if (table_in < 4 || table_out < 1 || heads < 1 || extra < 0)
        return sm_error_set(err, SM_EUNSUPPORTED, NULL, 0, 0, NULL,
                            "cannot resize a %dx%d relative position table to %dx%d", table_in,
                            table_in, table_out, table_out);
    int rc = sm__resize_table(in, table_in, table_out, heads, out);
    if (rc) return sm_error_set(err, rc, NULL, 0, 0, NULL, "out of memory");
    memcpy(out + (int64_t)table_out * table_out * heads, in + (int64_t)table_in * table_in * heads,
           (size_t)extra * (size_t)heads * sizeof *out);
    return 0;
}

/* ---- loading --------------------------------------------------------------------------------- */

struct sm_weight_source {
    const sm_st_file *f;
    const char *prefix; /* "encoder." when a SimMIM checkpoint feeds a classifier, else "" */
};

const sm_st_info *sm_weight_source_find(const sm_weight_source *src, const char *name)
{
    char full[512];
    if (snprintf(full, sizeof full, "%s%s", src->prefix, name) >= (int)sizeof full) return NULL;
    return sm_st_find(src->f, full);
}

int sm_weight_source_read(const sm_weight_source *src, const char *name, float *out,
                          int64_t numel, sm_error *err)
{
    const sm_st_info *in = sm_weight_source_find(src, name);
    if (!in)
        return sm_error_set(err, SM_ENOTFOUND, sm_st_path(src->f), 0, 0, name,
                            "not in the checkpoint");
    return sm_st_read_f32(src->f, in->name, out, numel, err);
}

static bool sm__same_shape(const sm_tensor *t, const sm_st_info *in)
{
    bool same = in->ndim == t->ndim;
    for (int d = 0; same && d < t->ndim; d++) same = in->shape[d] == t->shape[d];
    return same;
}

static int sm__shape_mismatch(const sm_tensor *t, const sm_st_info *in, const char *path,
                              sm_error *err)
{
    char want[SM__SHAPE_STR_MAX], got[SM__SHAPE_STR_MAX] = "(";
    sm_tensor_shape_str(t, want, sizeof want);
    for (int d = 0; d < in->ndim; d++)
        snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", d ? ", " : "",
                 (long long)in->shape[d]);
    strncat(got, ")", sizeof got - strlen(got) - 1);
    return sm_error_set(err, SM_EDATA, path, 0, 0, in->name,
                        "shape %s does not fit the model's %s for %s", got, want, t->name);
}

/* What loading did, for the note. */
typedef struct sm__load_counts {
    size_t loaded, copied, resized, kept;
    char first_kept[128];
} sm__load_counts;

/* One parameter: the file's tensor of the same name and shape, else what the backbone adapts,
 * else its initialisation is kept. */
static int sm__load_param(sm_model *m, sm_tensor *t, const sm_weight_source *src,
                          sm__load_counts *n, sm_error *err)
{
    const char *pfx = sm_model_task(m) == SM_TASK_SIMMIM ? "encoder." : "";
    size_t lp = strlen(pfx);
    const sm_st_info *in = sm_weight_source_find(src, t->name);
    if (in && sm__same_shape(t, in)) {
        n->loaded++;
        return sm_st_read_f32(src->f, in->name, t->data, sm_tensor_numel(t), err);
    }
    void *bself = NULL;
    const sm_backbone_vtbl *bvt = sm_model_backbone(m, &bself);
    int got = 0;
    bool backbone_param = strncmp(t->name, pfx, lp) == 0 && strncmp(t->name, "decoder.", 8) != 0 &&
                          strncmp(t->name, "head.", 5) != 0;
    if (backbone_param && SM_HAS_SLOT(bvt, sm_backbone_vtbl, adapt_weight) && bvt->adapt_weight) {
        sm_weight_source bsrc = {src->f, ""};
        char full[512];
        snprintf(full, sizeof full, "%s%s", src->prefix, pfx); /* the backbone's names */
        bsrc.prefix = full;
        got = bvt->adapt_weight(bself, t->name + lp, t, &bsrc, err);
        if (got < 0) return got;
    }
    if (got > 0) {
        n->loaded++;
        n->copied += (got & SM_ADAPT_COPIED) != 0;
        n->resized += (got & SM_ADAPT_RESIZED) != 0;
        return 0;
    }
    if (in) return sm__shape_mismatch(t, in, sm_st_path(src->f), err);
    if (!n->kept++) sm__text_fit(n->first_kept, sizeof n->first_kept, t->name);
    return 0;
}

int sm_model_load_weights(sm_model *m, const char *path, char *note, size_t note_len, sm_error *err)
{
    sm_st_file *f = NULL;
    int rc = sm_st_open(path, &f, err);
    if (rc) return rc;
    sm_params *p = sm_model_params(m);
    bool classify = sm_model_task(m) == SM_TASK_CLASSIFY;
    /* a SimMIM checkpoint feeding a classifier: use the "encoder." weights only */
    bool strip = false;
    for (size_t i = 0; classify && i < sm_st_count(f) && !strip; i++)
        strip = strncmp(sm_st_at(f, i)->name, "encoder.", 8) == 0;
    sm_weight_source src = {f, strip ? "encoder." : ""};
    sm__load_counts n = {0};
    for (size_t i = 0; i < sm_params_count(p) && !rc; i++)
        rc = sm__load_param(m, sm_params_at(p, i), &src, &n, err);
    if (!rc && n.loaded == 0)
        rc = sm_error_set(err, SM_EDATA, path, 0, 0, NULL,
                          "no tensor of the file matches the model's parameters "
                          "(is it a checkpoint of another backbone?)");
    if (!rc && note)
        sm__format_fit(note, note_len,
                       "%s: %zu tensors loaded (%zu copied from a shared tensor, %zu resized), "
                       "%zu kept their initialisation%s%s%s",
                       path, n.loaded, n.copied, n.resized, n.kept, n.kept ? " (" : "",
                       n.first_kept, n.kept > 1 ? ", ...)" : n.kept ? ")" : "");
    sm_st_close(f);
    return rc;
}
