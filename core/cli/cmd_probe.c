/* core/cli/cmd_probe.c - `simmimctl probe TRAIN EVAL`: a linear probe on features written by
 * `simmimctl extract` (users.md 2.5: the quickest judge of a pretrained backbone on a CPU, since
 * the backbone runs once per image). Features are standardised with the training set's mean
 * and standard deviation (BatchNorm without affine, as MAE's probe, frozen at its statistics),
 * then a softmax classifier is trained with SGD (momentum 0.9, cosine learning rate, fixed
 * seed) and evaluated on EVAL: top-1, top-5 and the mean class accuracy. Optionally also a
 * weighted k-NN classifier on the same features. */
#include "cli.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char probe_usage[] =
    "usage: simmimctl probe TRAIN.safetensors EVAL.safetensors [--epochs N] [--lr X]\n"
    "                      [--batch N] [--wd X] [--seed N] [--backend NAME] [--output FILE]\n\n"
    "Trains a linear classifier on the features of TRAIN and evaluates it on EVAL, both\n"
    "written by `simmimctl extract` (features (N, F), labels (N)). Features are standardised\n"
    "with TRAIN's per-feature mean and standard deviation; the classifier is trained with SGD\n"
    "(momentum 0.9, cosine learning rate, cross-entropy) and evaluated every tenth of the run.\n\n"
    "  --epochs N  passes over TRAIN (default 90)    --lr X    peak learning rate (default 0.1)\n"
    "  --batch N   examples per step (default 256)   --wd X    weight decay (default 0)\n"
    "  --seed N    order of the examples (default 0) --output FILE  the classifier (weight,\n"
    "              bias, mean, std) as safetensors\n"
    "  --knn K     also a weighted k-nearest-neighbour classifier (cosine similarity of the\n"
    "              standardised features, votes weighted by exp(similarity / 0.07), as DINO\n"
    "              reports it; K = 20 is usual); 0 = off (default)\n";

typedef struct probe_set {
    int64_t n;
    int f;
    float *x;
    int64_t *y;
    char block[32]; /* extract's "block" metadata: a block number or "classifier" */
} probe_set;

static void set_free(probe_set *s)
{
    free(s->x);
    free(s->y);
    s->x = NULL;
    s->y = NULL;
}

static int set_load(const char *path, probe_set *s, sm_error *e)
{
    memset(s, 0, sizeof *s);
    sm_st_file *f = NULL;
    int rc = sm_st_open(path, &f, e);
    if (rc) return rc;
    const sm_st_info *fi = sm_st_find(f, "features"), *li = sm_st_find(f, "labels");
    if (!fi || !li || fi->ndim != 2 || li->ndim != 1 || li->shape[0] != fi->shape[0] ||
        fi->shape[1] < 1 || fi->shape[1] > (1 << 20)) {
        sm_st_close(f);
        return sm_error_set(e, SM_EFORMAT, path, 0, 0, NULL,
                            "needs features (N, F) and labels (N) as `simmimctl extract` writes");
    }
    s->n = fi->shape[0];
    s->f = (int)fi->shape[1];
    const char *block = sm_st_meta(f, "block"); /* absent before --block: the classifier's */
    snprintf(s->block, sizeof s->block, "%s", block ? block : "classifier");
    s->x = malloc((size_t)s->n * (size_t)s->f * sizeof *s->x + 1);
    s->y = malloc((size_t)s->n * sizeof *s->y + 1);
    if (!s->x || !s->y) rc = sm_error_set(e, SM_ENOMEM, path, 0, 0, NULL, "out of memory");
    if (!rc) rc = sm_st_read_f32(f, "features", s->x, s->n * s->f, e);
    if (!rc) rc = sm_st_read_i64(f, "labels", s->y, s->n, e);
    sm_st_close(f);
    for (int64_t i = 0; !rc && i < s->n; i++)
        if (s->y[i] < 0 || s->y[i] >= 100000)
            rc = sm_error_set(e, SM_EFORMAT, path, 0, 0, "labels",
                              "row %lld has label %lld: the probe needs labeled data (extract a "
                              "split with classes)",
                              (long long)i, (long long)s->y[i]);
    for (int64_t i = 0; !rc && i < s->n * s->f; i++)
        if (!isfinite(s->x[i]))
            rc = sm_error_set(e, SM_EFORMAT, path, 0, 0, "features", "row %lld is not finite",
                              (long long)(i / s->f));
    if (rc) set_free(s);
    return rc;
}

/* logits z (n x K) = x (n x F) . w^T + b */
static void probe_logits(sm_backend *be, const float *x, int64_t n, int F, const float *w,
                         const float *b, int K, float *z)
{
    for (int64_t i = 0; i < n; i++) memcpy(z + i * K, b, (size_t)K * sizeof *z);
    sm_backend_sgemm(be, SM_NO_TRANS, SM_TRANS, n, K, F, 1.0f, x, F, 1, w, F, 1, 1.0f, z, K, 1);
}

/* top-1 / top-5 / mean class accuracy (percent) of the classifier on s */
static void probe_eval(sm_backend *be, const probe_set *s, const float *w, const float *b, int K,
                       float *z, double *top1, double *top5, double *mean_class)
{
    int64_t c1 = 0, c5 = 0, chunk = 4096;
    int64_t *hit = calloc((size_t)K * 2, sizeof *hit); /* per class: right, total */
    for (int64_t i0 = 0; i0 < s->n; i0 += chunk) {
        int64_t m = s->n - i0 < chunk ? s->n - i0 : chunk;
        probe_logits(be, s->x + i0 * s->f, m, s->f, w, b, K, z);
        for (int64_t i = 0; i < m; i++) {
            const float *zi = z + i * K;
            int y = (int)s->y[i0 + i], rank = 0;
            for (int k = 0; k < K; k++) rank += zi[k] > zi[y] || (zi[k] == zi[y] && k < y);
            c1 += rank < 1;
            c5 += rank < 5;
            if (hit) hit[2 * y] += rank < 1, hit[2 * y + 1]++;
        }
    }
    *top1 = s->n ? 100.0 * (double)c1 / (double)s->n : 0;
    *top5 = s->n ? 100.0 * (double)c5 / (double)s->n : 0;
    double sum = 0;
    int classes = 0;
    for (int k = 0; hit && k < K; k++)
        if (hit[2 * k + 1]) sum += 100.0 * (double)hit[2 * k] / (double)hit[2 * k + 1], classes++;
    *mean_class = classes ? sum / classes : NAN;
    free(hit);
}

/* out (n x F) = the rows of x (n x F) scaled to unit length */
static void unit_rows(const float *x, int64_t n, int F, float *out)
{
    for (int64_t i = 0; i < n; i++) {
        double nn = 0;
        for (int j = 0; j < F; j++) nn += (double)x[i * F + j] * x[i * F + j];
        float inv = (float)(1.0 / sqrt(nn + 1e-12));
        for (int j = 0; j < F; j++) out[i * F + j] = x[i * F + j] * inv;
    }
}

/* Weighted k-NN top-1 (percent): cosine similarity between L2-normalised rows, the K most
 * similar training examples vote for their class with weight exp(similarity / 0.07). */
static double probe_knn(sm_backend *be, const probe_set *tr, const probe_set *ev, int classes,
                        int k)
{
    int F = tr->f;
    int64_t chunk = 256;
    float *a = malloc((size_t)tr->n * F * sizeof *a), *q = malloc((size_t)chunk * F * sizeof *q);
    float *sim = malloc((size_t)chunk * tr->n * sizeof *sim);
    int64_t *best = malloc((size_t)k * sizeof *best);
    double *vote = malloc((size_t)classes * sizeof *vote);
    int64_t right = 0;
    if (!a || !q || !sim || !best || !vote) goto done;
    unit_rows(tr->x, tr->n, F, a);
    for (int64_t i0 = 0; i0 < ev->n; i0 += chunk) {
        int64_t m = ev->n - i0 < chunk ? ev->n - i0 : chunk;
        unit_rows(ev->x + i0 * F, m, F, q);
        /* sim (m x n) = q (m x F) . a^T */
        sm_backend_sgemm(be, SM_NO_TRANS, SM_TRANS, m, tr->n, F, 1.0f, q, F, 1, a, F, 1, 0.0f,
                         sim, tr->n, 1);
        for (int64_t i = 0; i < m; i++) {
            const float *si = sim + i * tr->n;
            int kk = 0; /* best[0..kk) by decreasing similarity (insertion) */
            for (int64_t t = 0; t < tr->n; t++) {
                if (kk == k && si[t] <= si[best[k - 1]]) continue;
                int p = kk < k ? kk++ : k - 1;
                while (p > 0 && si[best[p - 1]] < si[t]) best[p] = best[p - 1], p--;
                best[p] = t;
            }
            for (int c = 0; c < classes; c++) vote[c] = 0;
            for (int r = 0; r < kk; r++) vote[tr->y[best[r]]] += exp(si[best[r]] / 0.07);
            int top = 0;
            for (int c = 1; c < classes; c++) top = vote[c] > vote[top] ? c : top;
            right += top == ev->y[i0 + i];
        }
    }
done:
    free(a), free(q), free(sim), free(best), free(vote);
    return ev->n ? 100.0 * (double)right / (double)ev->n : 0;
}

static int parse_num(const char *s, double lo, double hi, double *out)
{
    char *end;
    double v = s ? strtod(s, &end) : 0;
    if (!s) return 0;
    if (!*s || *end || !(v >= lo && v <= hi)) return -1;
    *out = v;
    return 0;
}

static const char *const probe_values[] = {"--epochs", "--lr",      "--batch",  "--wd",
                                           "--seed",   "--backend", "--output", "--knn"};
static const sm_cli_command probe_cmd = {"probe", probe_usage, probe_values, NULL, 8, NULL, 2, 2};
enum { V_EPOCHS, V_LR, V_BATCH, V_WD, V_SEED, V_BACKEND, V_OUTPUT, V_KNN };

typedef struct probe_args {
    double epochs, lr, batch, wd, seed, knn;
} probe_args;

/* The classifier and its SGD state. */
typedef struct probe_model {
    int F, K;
    int64_t B; /* batch */
    float *w, *b, *vw, *vb; /* (K, F), (K) and their momenta */
    float *z, *g, *xb;      /* logits (max(B, 4096), K), weight gradient (K, F), batch (B, F) */
    float *mean, *sd;       /* standardisation (F) */
    int64_t *perm;
} probe_model;

static void probe_model_free(probe_model *m)
{
    free(m->w), free(m->b), free(m->vw), free(m->vb), free(m->z), free(m->g), free(m->xb);
    free(m->mean), free(m->sd), free(m->perm);
}

static int probe_check_args(const sm_cli_session *s, probe_args *a)
{
    const char *const *v = s->values;
    *a = (probe_args){.epochs = 90, .lr = 0.1, .batch = 256};
    if (!parse_num(v[V_EPOCHS], 1, 100000, &a->epochs) && !parse_num(v[V_LR], 1e-8, 100, &a->lr) &&
        !parse_num(v[V_BATCH], 1, 1 << 20, &a->batch) && !parse_num(v[V_WD], 0, 1, &a->wd) &&
        !parse_num(v[V_SEED], 0, 9e15, &a->seed) && !parse_num(v[V_KNN], 0, 1000, &a->knn))
        return 0;
    fprintf(stderr, "simmimctl probe: --epochs 1..100000, --lr (0, 100], --batch 1..2^20, "
                    "--wd 0..1, --seed >= 0, --knn 0..1000 (see --help)\n");
    return SM_EXIT_USAGE;
}

/* Both feature files, of the same width, not empty. */
static int probe_load(sm_cli_session *s, probe_set *tr, probe_set *ev)
{
    const char *a = s->o.positional[0], *b = s->o.positional[1];
    if (set_load(a, tr, &s->err) || set_load(b, ev, &s->err))
        return sm_cli_session_fail(s, SM_EXIT_FAILURE);
    if (tr->f == ev->f && tr->n > 0 && ev->n > 0 && !strcmp(tr->block, ev->block)) return 0;
    if (tr->f == ev->f && tr->n > 0 && ev->n > 0)
        fprintf(stderr, "simmimctl: %s and %s: features of different blocks (%s and %s)\n", a, b,
                tr->block, ev->block);
    else
        fprintf(stderr, "simmimctl: %s and %s: %s\n", a, b,
                tr->f != ev->f ? "features of different widths" : "an empty set");
    return SM_EXIT_FAILURE;
}

/* The backend: --backend, else blis when loaded, else ref. */
static int probe_backend(sm_cli_session *s)
{
    const char *name = s->values[V_BACKEND];
    if (!(s->reg = sm_cli_registry(&s->o, NULL))) return SM_EXIT_FAILURE;
    if (!name) name = sm_registry_find(s->reg, SM_KIND_BACKEND, "blis") ? "blis" : "ref";
    if (sm_backend_new(s->reg, name, NULL, 0, &s->be, &s->err))
        return sm_cli_session_fail(s, SM_EXIT_FAILURE);
    return 0;
}

static int probe_model_alloc(probe_model *m, const probe_set *tr, const probe_set *ev, double batch)
{
    int F = tr->f, K = 1;
    for (int64_t i = 0; i < tr->n; i++) K = tr->y[i] + 1 > K ? (int)tr->y[i] + 1 : K;
    for (int64_t i = 0; i < ev->n; i++) K = ev->y[i] + 1 > K ? (int)ev->y[i] + 1 : K;
    int64_t B = (int64_t)batch < tr->n ? (int64_t)batch : tr->n, chunk = 4096;
    m->F = F, m->K = K, m->B = B;
    m->mean = calloc((size_t)F, sizeof *m->mean);
    m->sd = calloc((size_t)F, sizeof *m->sd);
    m->w = calloc((size_t)K * F, sizeof *m->w);
    m->vw = calloc((size_t)K * F, sizeof *m->vw);
    m->b = calloc((size_t)K, sizeof *m->b);
    m->vb = calloc((size_t)K, sizeof *m->vb);
    m->z = malloc((size_t)(B > chunk ? B : chunk) * K * sizeof *m->z);
    m->g = malloc((size_t)K * F * sizeof *m->g);
    m->xb = malloc((size_t)B * F * sizeof *m->xb);
    m->perm = malloc((size_t)tr->n * sizeof *m->perm);
    if (m->mean && m->sd && m->w && m->vw && m->b && m->vb && m->z && m->g && m->xb && m->perm)
        return 0;
    fprintf(stderr, "simmimctl: out of memory\n");
    return SM_EXIT_FAILURE;
}

/* Standardises both sets with the training set's per-feature mean and deviation. */
static void probe_standardise(probe_model *m, probe_set *tr, probe_set *ev)
{
    int F = m->F;
    for (int j = 0; j < F; j++) {
        double s1 = 0, s2 = 0;
        for (int64_t i = 0; i < tr->n; i++) s1 += tr->x[i * F + j];
        double mu = s1 / (double)tr->n;
        for (int64_t i = 0; i < tr->n; i++) s2 += (tr->x[i * F + j] - mu) * (tr->x[i * F + j] - mu);
        m->mean[j] = (float)mu;
        m->sd[j] = (float)sqrt(s2 / (double)tr->n + 1e-6);
    }
    probe_set *sets[2] = {tr, ev};
    for (int s = 0; s < 2; s++)
        for (int64_t i = 0; i < sets[s]->n; i++)
            for (int j = 0; j < F; j++)
                sets[s]->x[i * F + j] = (sets[s]->x[i * F + j] - m->mean[j]) / m->sd[j];
}

/* One SGD step on rows perm[s0 .. s0+rows) of tr; returns the summed loss of those rows. */
static double probe_step(sm_backend *be, probe_model *m, const probe_set *tr, int64_t s0,
                         int64_t rows, double lr_t, double wd)
{
    int F = m->F, K = m->K;
    double loss = 0;
    for (int64_t i = 0; i < rows; i++)
        memcpy(m->xb + i * F, tr->x + m->perm[s0 + i] * F, (size_t)F * sizeof *m->xb);
    probe_logits(be, m->xb, rows, F, m->w, m->b, K, m->z);
    /* z := softmax(z) - onehot(y), over rows: the gradient of the mean cross-entropy */
    for (int64_t i = 0; i < rows; i++) {
        float *zi = m->z + i * K, mx = zi[0];
        for (int k = 1; k < K; k++) mx = zi[k] > mx ? zi[k] : mx;
        double se = 0;
        for (int k = 0; k < K; k++) se += exp((double)zi[k] - mx);
        int y = (int)tr->y[m->perm[s0 + i]];
        loss += log(se) + mx - zi[y];
        for (int k = 0; k < K; k++)
            zi[k] = (float)((exp((double)zi[k] - mx) / se - (k == y)) / (double)rows);
    }
    /* g (K x F) = z^T (K x rows) . xb (rows x F) */
    sm_backend_sgemm(be, SM_TRANS, SM_NO_TRANS, K, F, rows, 1.0f, m->z, K, 1, m->xb, F, 1, 0.0f,
                     m->g, F, 1);
    for (int64_t k = 0; k < (int64_t)K * F; k++) {
        m->vw[k] = 0.9f * m->vw[k] + m->g[k] + (float)wd * m->w[k];
        m->w[k] -= (float)lr_t * m->vw[k];
    }
    for (int k = 0; k < K; k++) {
        double gb = 0;
        for (int64_t i = 0; i < rows; i++) gb += m->z[i * K + k];
        m->vb[k] = 0.9f * m->vb[k] + (float)gb;
        m->b[k] -= (float)lr_t * m->vb[k];
    }
    return loss;
}

/* Trains the classifier; evaluates every tenth of the run. */
static void probe_train(sm_backend *be, probe_model *m, const probe_set *tr, const probe_set *ev,
                        const probe_args *a, double *top1, double *top5, double *mca)
{
    int64_t B = m->B, epochs = (int64_t)a->epochs;
    for (int64_t i = 0; i < tr->n; i++) m->perm[i] = i;
    int64_t total = epochs * ((tr->n + B - 1) / B), step = 0;
    int64_t every = epochs / 10 > 0 ? epochs / 10 : 1;
    for (int64_t ep = 0; ep < epochs; ep++) {
        sm_rng r;
        sm_rng_init(&r, (uint64_t)a->seed, (uint64_t)ep, 0, 0);
        for (int64_t i = tr->n - 1; i > 0; i--) { /* Fisher-Yates, keyed by (seed, epoch) */
            int64_t j = (int64_t)(sm_rng_u64(&r) % (uint64_t)(i + 1)), t = m->perm[i];
            m->perm[i] = m->perm[j], m->perm[j] = t;
        }
        double loss = 0;
        for (int64_t s0 = 0; s0 < tr->n; s0 += B, step++) {
            double lr_t = 0.5 * a->lr * (1.0 + cos(M_PI * (double)step / (double)total));
            loss += probe_step(be, m, tr, s0, tr->n - s0 < B ? tr->n - s0 : B, lr_t, a->wd);
        }
        if ((ep + 1) % every == 0 || ep + 1 == epochs) {
            probe_eval(be, ev, m->w, m->b, m->K, m->z, top1, top5, mca);
            fprintf(stderr, "probe: epoch %lld/%lld train loss %.4f, eval top-1 %.2f %%, top-5 "
                            "%.2f %%, mean class accuracy %.2f %%\n",
                    (long long)ep + 1, (long long)epochs, loss / (double)tr->n, *top1, *top5, *mca);
        }
    }
}

/* --output: the classifier with its standardisation. */
static int probe_save(sm_cli_session *s, const probe_model *m, const char *path)
{
    int F = m->F, K = m->K;
    sm_st_writer *wr = sm_st_writer_new();
    int rc = !wr || sm_st_writer_add(wr, "weight", SM_DTYPE_F32, 2, SM_SHAPE(K, F), m->w, &s->err) ||
             sm_st_writer_add(wr, "bias", SM_DTYPE_F32, 1, SM_SHAPE(K), m->b, &s->err) ||
             sm_st_writer_add(wr, "mean", SM_DTYPE_F32, 1, SM_SHAPE(F), m->mean, &s->err) ||
             sm_st_writer_add(wr, "std", SM_DTYPE_F32, 1, SM_SHAPE(F), m->sd, &s->err) ||
             sm_st_writer_meta(wr, "format", "simmim-probe-1", &s->err) ||
             sm_st_writer_write(wr, path, &s->err);
    sm_st_writer_free(wr);
    return rc ? sm_cli_session_fail(s, SM_EXIT_FAILURE) : 0;
}

int sm_cmd_probe(int argc, char **argv)
{
    sm_cli_session s;
    probe_args a;
    probe_set tr = {0}, ev = {0};
    probe_model m = {0};
    int rc = sm_cli_session_begin(&s, &argc, argv, &probe_cmd);
    if (!rc) rc = probe_check_args(&s, &a);
    if (!rc) rc = probe_load(&s, &tr, &ev);
    if (!rc) rc = probe_backend(&s);
    if (!rc) rc = probe_model_alloc(&m, &tr, &ev, a.batch);
    if (!rc) {
        probe_standardise(&m, &tr, &ev);
        fprintf(stderr, "probe: %lld training and %lld evaluation examples, %d features, %d "
                        "classes, %g epochs of %lld steps, lr %g, batch %lld\n",
                (long long)tr.n, (long long)ev.n, m.F, m.K, a.epochs,
                (long long)((tr.n + m.B - 1) / m.B), a.lr, (long long)m.B);
        double top1 = 0, top5 = 0, mca = 0, ttop1, ttop5, tmca;
        probe_train(s.be, &m, &tr, &ev, &a, &top1, &top5, &mca);
        probe_eval(s.be, &tr, m.w, m.b, m.K, m.z, &ttop1, &ttop5, &tmca);
        printf("probe: eval top-1 %.2f %%, top-5 %.2f %%, mean class accuracy %.2f %% on %lld "
               "examples (train top-1 %.2f %%; %d features %s%s, %d classes)\n",
               top1, top5, mca, (long long)ev.n, ttop1, m.F,
               strcmp(tr.block, "classifier") ? "after block " : "of the ", tr.block, m.K);
        if (a.knn >= 1) {
            int kk = (int)a.knn < tr.n ? (int)a.knn : (int)tr.n;
            printf("probe: %d-NN (cosine, weighted) eval top-1 %.2f %%\n", kk,
                   probe_knn(s.be, &tr, &ev, m.K, kk));
        }
        if (s.values[V_OUTPUT]) rc = probe_save(&s, &m, s.values[V_OUTPUT]);
    }
    set_free(&tr);
    set_free(&ev);
    probe_model_free(&m);
    return sm_cli_session_end(&s, rc);
}
