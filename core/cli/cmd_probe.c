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

int sm_cmd_probe(int argc, char **argv)
{
    static const char *const keys[] = {"--epochs", "--lr", "--batch", "--wd", "--seed",
                                       "--backend", "--output", "--knn"};
    const char *v[8] = {NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL};
    if (sm_cli_take_values(&argc, argv, keys, v, 8)) return SM_EXIT_USAGE;
    double epochs = 90, lr = 0.1, batch = 256, wd = 0, seed = 0, knn = 0;
    sm_cli_opts o;
    int rc = sm_cli_parse(argc, argv, &o, probe_usage);
    if (rc == SM_CLI_HELP) return SM_EXIT_OK;
    if (rc) return rc;
    int exit_code = SM_EXIT_USAGE;
    if (sm_cli_check_args(&o, "probe", NULL, 2, 2)) goto out_opts;
    if (parse_num(v[0], 1, 100000, &epochs) || parse_num(v[1], 1e-8, 100, &lr) ||
        parse_num(v[2], 1, 1 << 20, &batch) || parse_num(v[3], 0, 1, &wd) ||
        parse_num(v[4], 0, 9e15, &seed) || parse_num(v[7], 0, 1000, &knn)) {
        fprintf(stderr, "simmimctl probe: --epochs 1..100000, --lr (0, 100], --batch 1..2^20, "
                        "--wd 0..1, --seed >= 0, --knn 0..1000 (see --help)\n");
        goto out_opts;
    }
    exit_code = SM_EXIT_FAILURE;
    probe_set tr = {0}, ev = {0};
    sm_registry *reg = NULL;
    sm_backend *be = NULL;
    float *w = NULL, *b = NULL, *vw = NULL, *vb = NULL, *z = NULL, *g = NULL, *xb = NULL;
    float *mean = NULL, *sd = NULL;
    int64_t *perm = NULL;
    sm_error e;
    sm_error_clear(&e);
    if (set_load(o.positional[0], &tr, &e) || set_load(o.positional[1], &ev, &e)) {
        sm_cli_print_error(&e);
        goto out;
    }
    if (tr.f != ev.f || tr.n == 0 || ev.n == 0) {
        fprintf(stderr, "simmimctl: %s and %s: %s\n", o.positional[0], o.positional[1],
                tr.f != ev.f ? "features of different widths" : "an empty set");
        goto out;
    }
    int F = tr.f, K = 1;
    for (int64_t i = 0; i < tr.n; i++) K = tr.y[i] + 1 > K ? (int)tr.y[i] + 1 : K;
    for (int64_t i = 0; i < ev.n; i++) K = ev.y[i] + 1 > K ? (int)ev.y[i] + 1 : K;
    if (!(reg = sm_cli_registry(&o, NULL)) ||
        sm_backend_new(reg, v[5] ? v[5] : sm_registry_find(reg, SM_KIND_BACKEND, "blis") ? "blis" : "ref",
                       NULL, 0, &be, &e)) {
        if (e.code) sm_cli_print_error(&e);
        goto out;
    }
    /* standardise with the training set's statistics */
    mean = calloc((size_t)F, sizeof *mean);
    sd = calloc((size_t)F, sizeof *sd);
    int64_t B = (int64_t)batch < tr.n ? (int64_t)batch : tr.n, chunk = 4096;
    w = calloc((size_t)K * F, sizeof *w);
    vw = calloc((size_t)K * F, sizeof *vw);
    b = calloc((size_t)K, sizeof *b);
    vb = calloc((size_t)K, sizeof *vb);
    z = malloc((size_t)(B > chunk ? B : chunk) * K * sizeof *z);
    g = malloc((size_t)K * F * sizeof *g);
    xb = malloc((size_t)B * F * sizeof *xb);
    perm = malloc((size_t)tr.n * sizeof *perm);
    if (!mean || !sd || !w || !vw || !b || !vb || !z || !g || !xb || !perm) {
        fprintf(stderr, "simmimctl: out of memory\n");
        goto out;
    }
    for (int j = 0; j < F; j++) {
        double s1 = 0, s2 = 0;
        for (int64_t i = 0; i < tr.n; i++) s1 += tr.x[i * F + j];
        double m = s1 / (double)tr.n;
        for (int64_t i = 0; i < tr.n; i++) s2 += (tr.x[i * F + j] - m) * (tr.x[i * F + j] - m);
        mean[j] = (float)m;
        sd[j] = (float)sqrt(s2 / (double)tr.n + 1e-6);
    }
    probe_set *sets[2] = {&tr, &ev};
    for (int s = 0; s < 2; s++)
        for (int64_t i = 0; i < sets[s]->n; i++)
            for (int j = 0; j < F; j++)
                sets[s]->x[i * F + j] = (sets[s]->x[i * F + j] - mean[j]) / sd[j];
    fprintf(stderr, "probe: %lld training and %lld evaluation examples, %d features, %d classes, "
                    "%g epochs of %lld steps, lr %g, batch %lld\n",
            (long long)tr.n, (long long)ev.n, F, K, epochs, (long long)((tr.n + B - 1) / B), lr,
            (long long)B);
    for (int64_t i = 0; i < tr.n; i++) perm[i] = i;
    int64_t steps_per_epoch = (tr.n + B - 1) / B, total = (int64_t)epochs * steps_per_epoch, step = 0;
    int64_t every = (int64_t)epochs / 10 > 0 ? (int64_t)epochs / 10 : 1;
    double top1 = 0, top5 = 0, mca = 0;
    for (int64_t ep = 0; ep < (int64_t)epochs; ep++) {
        sm_rng r;
        sm_rng_init(&r, (uint64_t)seed, (uint64_t)ep, 0, 0);
        for (int64_t i = tr.n - 1; i > 0; i--) { /* Fisher-Yates, keyed by (seed, epoch) */
            int64_t j = (int64_t)(sm_rng_u64(&r) % (uint64_t)(i + 1)), t = perm[i];
            perm[i] = perm[j], perm[j] = t;
        }
        double loss = 0;
        for (int64_t s0 = 0; s0 < tr.n; s0 += B, step++) {
            int64_t m = tr.n - s0 < B ? tr.n - s0 : B;
            for (int64_t i = 0; i < m; i++)
                memcpy(xb + i * F, tr.x + perm[s0 + i] * F, (size_t)F * sizeof *xb);
            probe_logits(be, xb, m, F, w, b, K, z);
            /* z := softmax(z) - onehot(y), over m: the gradient of the mean cross-entropy */
            for (int64_t i = 0; i < m; i++) {
                float *zi = z + i * K, mx = zi[0];
                for (int k = 1; k < K; k++) mx = zi[k] > mx ? zi[k] : mx;
                double se = 0;
                for (int k = 0; k < K; k++) se += exp((double)zi[k] - mx);
                int y = (int)tr.y[perm[s0 + i]];
                loss += log(se) + mx - zi[y];
                for (int k = 0; k < K; k++)
                    zi[k] = (float)((exp((double)zi[k] - mx) / se - (k == y)) / (double)m);
            }
            /* g (K x F) = z^T (K x m) . xb (m x F) */
            sm_backend_sgemm(be, SM_TRANS, SM_NO_TRANS, K, F, m, 1.0f, z, K, 1, xb, F, 1, 0.0f,
                             g, F, 1);
            double lr_t = 0.5 * lr * (1.0 + cos(M_PI * (double)step / (double)total));
            for (int64_t k = 0; k < (int64_t)K * F; k++) {
                vw[k] = 0.9f * vw[k] + g[k] + (float)wd * w[k];
                w[k] -= (float)lr_t * vw[k];
            }
            for (int k = 0; k < K; k++) {
                double gb = 0;
                for (int64_t i = 0; i < m; i++) gb += z[i * K + k];
                vb[k] = 0.9f * vb[k] + (float)gb;
                b[k] -= (float)lr_t * vb[k];
            }
        }
        if ((ep + 1) % every == 0 || ep + 1 == (int64_t)epochs) {
            probe_eval(be, &ev, w, b, K, z, &top1, &top5, &mca);
            fprintf(stderr, "probe: epoch %lld/%lld train loss %.4f, eval top-1 %.2f %%, top-5 "
                            "%.2f %%, mean class accuracy %.2f %%\n",
                    (long long)ep + 1, (long long)epochs, loss / (double)tr.n, top1, top5, mca);
        }
    }
    double ttop1, ttop5, tmca;
    probe_eval(be, &tr, w, b, K, z, &ttop1, &ttop5, &tmca);
    printf("probe: eval top-1 %.2f %%, top-5 %.2f %%, mean class accuracy %.2f %% on %lld "
           "examples (train top-1 %.2f %%; %d features, %d classes)\n",
           top1, top5, mca, (long long)ev.n, ttop1, F, K);
    if (knn >= 1) {
        int kk = (int)knn < tr.n ? (int)knn : (int)tr.n;
        printf("probe: %d-NN (cosine, weighted) eval top-1 %.2f %%\n", kk,
               probe_knn(be, &tr, &ev, K, kk));
    }
    if (v[6]) {
        sm_st_writer *wr = sm_st_writer_new();
        if (!wr || sm_st_writer_add(wr, "weight", SM_DTYPE_F32, 2, SM_SHAPE(K, F), w, &e) ||
            sm_st_writer_add(wr, "bias", SM_DTYPE_F32, 1, SM_SHAPE(K), b, &e) ||
            sm_st_writer_add(wr, "mean", SM_DTYPE_F32, 1, SM_SHAPE(F), mean, &e) ||
            sm_st_writer_add(wr, "std", SM_DTYPE_F32, 1, SM_SHAPE(F), sd, &e) ||
            sm_st_writer_meta(wr, "format", "simmim-probe-1", &e) ||
            sm_st_writer_write(wr, v[6], &e)) {
            if (!e.code) sm_error_set(&e, SM_ENOMEM, NULL, 0, 0, NULL, "out of memory");
            sm_cli_print_error(&e);
            sm_st_writer_free(wr);
            goto out;
        }
        sm_st_writer_free(wr);
    }
    exit_code = SM_EXIT_OK;
out:
    set_free(&tr);
    set_free(&ev);
    free(w), free(b), free(vw), free(vb), free(z), free(g), free(xb), free(perm);
    free(mean), free(sd);
    sm_backend_free(be);
    sm_registry_free(reg);
out_opts:
    sm_cli_opts_free(&o);
    return exit_code;
}
