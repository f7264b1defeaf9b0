/* plugins/onednn/sm_onednn.c - the `onednn` compute backend: GEMM through oneDNN's matmul
 * primitive (oneDNN 2.x C API, dnnl.h), in fp32 or bf16 (docs/backends.md).
 *
 * One call, C (m×n) := alpha·op(A)·op(B) + beta·C with BLIS-style strides, becomes one matmul
 * primitive (a batch of them: one primitive with a batch dimension):
 *   - strides go into the memory descriptors, so transposes and strided views need no copy;
 *     oneDNN's optimised implementations want every matrix "plain" (one unit stride), and C
 *     row-major: a column-major C is handled by computing Cᵀ = op(B)ᵀ·op(A)ᵀ, an A or B with
 *     no unit stride is copied into a tight per-thread buffer first, and a C with no unit stride
 *     is computed into a tight buffer and added in by hand;
 *   - alpha is the primitive's output scale, beta a sum post-op (beta 0: none, so NaN in C is
 *     ignored);
 *   - bf16: A and B are converted (round to nearest even) into tight per-thread bf16 buffers,
 *     keeping their orientation, and the primitive multiplies bf16 × bf16 into an f32 C.
 * Primitives are created once per (shape, strides, batch strides, alpha, beta, precision,
 * thread count) and cached (a read-write lock guards the table); execution needs a stream and
 * a scratchpad per thread (user scratchpad mode: cached primitives run on any thread, several at
 * once), kept in thread-specific data with the copy buffers. Anything that cannot be set up
 * (out of memory, a primitive oneDNN refuses) falls back to the core's reference GEMM for that
 * call, with one warning in the log: results stay right.
 *
 * Threads: oneDNN's CPU runtime here is OpenMP; it uses omp_get_max_threads() of the calling
 * thread, so each call sets it to this instance's count (1 inside a parallel region, where
 * oneDNN runs sequentially anyway) and restores it. Unlike BLIS, oneDNN's sgemm splits the k
 * loop across threads when m·n is small, so results may differ in the last bits between thread
 * counts (never between runs with the same count). */
#include "sm_config.h"

#include <simmim/simmim.h>

#include <dnnl.h>
#include <omp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Primitives cached at most (beyond: created and destroyed per call). */
#define CACHE_MAX 4096
#define CACHE_BUCKETS 256

/* What makes a primitive: every field of a call that its descriptor depends on. Built with
 * memset first, so that hashing and comparing the bytes is sound. */
typedef struct gemm_key {
    int64_t m, n, k, batch;
    int64_t a[3], b[3], c[3]; /* row, column and batch stride of A, B, C (batch 0: broadcast) */
    uint32_t alpha, beta;     /* bit patterns */
    int32_t bf16, threads, bias, pad;
} gemm_key;

typedef struct prim {
    gemm_key key;
    dnnl_primitive_t p;
    dnnl_memory_desc_t md_a, md_b, md_c, md_s; /* md_s: the scratchpad's (size 0: none) */
    dnnl_memory_desc_t md_bias;                /* (1, n) f32 when key.bias */
    size_t scratch;                            /* its size in bytes */
    struct prim *next; /* bucket chain */
} prim;

/* A growable 64-byte-aligned buffer. */
typedef struct growbuf {
    void *p;
    size_t cap;
} growbuf;

/* Per-thread state: the stream, the copy buffers and the scratchpad. Owned by the backend
 * (list `all`). */
typedef struct tls {
    dnnl_stream_t stream;
    growbuf copy, scratch;
    struct tls *next;
} tls;

typedef struct onednn_be {
    int threads;
    sm_precision precision;
    dnnl_engine_t engine;
    pthread_rwlock_t lock; /* the cache */
    prim *bucket[CACHE_BUCKETS];
    size_t cached, on_ref; /* primitives cached; of them, on oneDNN's reference code */
    pthread_key_t key;     /* -> tls */
    pthread_mutex_t tls_lock;
    tls *all;
    void *ref; /* the core's reference backend, for fallbacks */
    atomic_bool warned;
    atomic_ullong fallbacks; /* calls run on ref */
} onednn_be;

/* A matrix operand: rows × cols, element (i, j) at p[i·rs + j·cs], batch item t at p + t·bs
 * (bs 0: the same matrix for every item). Elements are floats, or bf16 (uint16_t) once
 * converted. */
typedef struct operand {
    const void *p;
    int64_t rows, cols, rs, cs, bs;
} operand;

static const char *isa_name(dnnl_cpu_isa_t isa)
{
    switch ((int)isa) {
    case dnnl_cpu_isa_sse41: return "SSE4.1";
    case dnnl_cpu_isa_avx: return "AVX";
    case dnnl_cpu_isa_avx2: return "AVX2";
    case dnnl_cpu_isa_avx2_vnni: return "AVX2-VNNI";
    case dnnl_cpu_isa_avx512_mic: return "AVX-512 (Xeon Phi)";
    case dnnl_cpu_isa_avx512_mic_4ops: return "AVX-512 (Xeon Phi, 4ops)";
    case dnnl_cpu_isa_avx512_core: return "AVX-512";
    case dnnl_cpu_isa_avx512_core_vnni: return "AVX-512 VNNI";
    case dnnl_cpu_isa_avx512_core_bf16: return "AVX-512 BF16";
    case dnnl_cpu_isa_avx512_core_amx: return "AMX";
    default: return "no SIMD";
    }
}

/* ---- layouts ------------------------------------------------------------------------------ */

/* A dimension of 1 has an unused stride: give it the value that makes the matrix plain. */
static void fix_strides(operand *x)
{
    if (x->rows == 1) x->rs = x->cs == 1 ? x->cols : 1;
    if (x->cols == 1) x->cs = x->rs == 1 ? x->rows : 1;
}

static bool row_major(const operand *x) { return x->cs == 1 && x->rs >= x->cols; }
static bool col_major(const operand *x) { return x->rs == 1 && x->cs >= x->rows; }

/* The transpose of x (a view: swapped dims and strides). */
static operand transposed(operand x)
{
    return (operand){x.p, x.cols, x.rows, x.cs, x.rs, x.bs};
}

/* d[j] = bf16 of s[j] for j < n, rounded as sm_bf16_from_float. bf16 runs only where the CPU
 * has AVX-512 (onednn_set_precision checks), so this loop is compiled for it: 16 lanes, about
 * 2.7x the SSE2 loop's rate on a Zen 4 (stage-1 Swin GEMMs convert as many floats as they
 * multiply by 128). */
#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("avx512f,avx512bw,avx512vl")))
#endif
static void to_bf16(uint16_t *d, const float *s, int64_t n)
{
#pragma omp simd
    for (int64_t j = 0; j < n; j++) d[j] = sm_bf16_from_float(s[j]);
}

/* Converts the float operand x (items of a batch: x.bs ? batch : 1) into dst, tight, as bf16
 * when bf16 else float; column-major if x is column-major, else row-major. Returns the
 * operand describing dst. Rows of a big copy are spread over `threads`. */
static operand pack(const operand *x, int64_t batch, bool bf16, void *dst, int threads)
{
    bool cm = col_major(x) && !row_major(x);
    int64_t items = x->bs ? batch : 1;
    int64_t outer = cm ? x->cols : x->rows, inner = cm ? x->rows : x->cols;
    int64_t so = cm ? x->cs : x->rs, si = cm ? x->rs : x->cs; /* source strides */
    int64_t lines = items * outer;
    int nt = lines * inner >= (1 << 16) ? threads : 1;
    const float *src = x->p;
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
    for (int64_t l = 0; l < lines; l++) {
        const float *s = src + (l / outer) * x->bs + (l % outer) * so;
        if (bf16) {
            uint16_t *d = (uint16_t *)dst + l * inner;
            if (si == 1)
                to_bf16(d, s, inner);
            else
                for (int64_t j = 0; j < inner; j++) d[j] = sm_bf16_from_float(s[j * si]);
        } else {
            float *d = (float *)dst + l * inner;
            if (si == 1)
                memcpy(d, s, (size_t)inner * sizeof *d);
            else
                for (int64_t j = 0; j < inner; j++) d[j] = s[j * si];
        }
    }
    operand o = {dst, x->rows, x->cols, cm ? 1 : x->cols, cm ? x->rows : 1,
                 x->bs ? x->rows * x->cols : 0};
    return o;
}

/* Memory descriptor of an operand: 2-D for one GEMM, 3-D (batch first) for a batch; a
 * broadcast operand has batch dimension 1 (its stride is then unused, but oneDNN picks its
 * reference code for a zero stride, so it gets the matrix's extent). */
static dnnl_status_t operand_md(dnnl_memory_desc_t *md, const operand *x, int64_t batch,
                                bool bf16)
{
    dnnl_data_type_t dt = bf16 ? dnnl_bf16 : dnnl_f32;
    if (batch == 1) {
        dnnl_dims_t d = {x->rows, x->cols}, s = {x->rs, x->cs};
        return dnnl_memory_desc_init_by_strides(md, 2, d, dt, s);
    }
    int64_t extent = (x->rows - 1) * x->rs + (x->cols - 1) * x->cs + 1;
    dnnl_dims_t d = {x->bs ? batch : 1, x->rows, x->cols}, s = {x->bs ? x->bs : extent, x->rs, x->cs};
    return dnnl_memory_desc_init_by_strides(md, 3, d, dt, s);
}

/* ---- the primitive cache ------------------------------------------------------------------ */

static size_t key_hash(const gemm_key *k)
{
    const unsigned char *p = (const unsigned char *)k;
    uint64_t h = 1469598103934665603u; /* FNV-1a */
    for (size_t i = 0; i < sizeof *k; i++) h = (h ^ p[i]) * 1099511628211u;
    return (size_t)(h % CACHE_BUCKETS);
}

static prim *cache_find(onednn_be *be, const gemm_key *k)
{
    for (prim *e = be->bucket[key_hash(k)]; e; e = e->next)
        if (memcmp(&e->key, k, sizeof *k) == 0) return e;
    return NULL;
}

static void prim_free(prim *e)
{
    if (!e) return;
    if (e->p) dnnl_primitive_destroy(e->p);
    free(e);
}

/* Creates the primitive for key k on descriptors a, b, c; *impl gets its implementation name.
 * Called with the thread count of the execution set. */
static dnnl_status_t prim_create(onednn_be *be, const gemm_key *k, const dnnl_memory_desc_t *a,
                                 const dnnl_memory_desc_t *b, const dnnl_memory_desc_t *c,
                                 const dnnl_memory_desc_t *bias, float alpha, float beta,
                                 prim **out, bool *reference)
{
    *out = NULL;
    prim *e = calloc(1, sizeof *e);
    if (!e) return dnnl_out_of_memory;
    e->key = *k;
    e->md_a = *a;
    e->md_b = *b;
    e->md_c = *c;
    if (bias) e->md_bias = *bias;
    dnnl_matmul_desc_t d;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_status_t st = dnnl_matmul_desc_init(&d, a, b, bias, c);
    if (st == dnnl_success) st = dnnl_primitive_attr_create(&attr);
    /* our scratchpad, per thread: oneDNN's own ("library" mode) is one buffer shared by all
     * primitives, so two threads executing cached primitives at once would corrupt each
     * other's partial sums (seen on AVX-512, where matmul is brgemm with a scratchpad) */
    if (st == dnnl_success)
        st = dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user);
    if (st == dnnl_success && alpha != 1.0f)
        st = dnnl_primitive_attr_set_output_scales(attr, 1, 0, &alpha);
    if (st == dnnl_success && beta != 0.0f) {
        st = dnnl_post_ops_create(&po);
        if (st == dnnl_success) st = dnnl_post_ops_append_sum(po, beta);
        if (st == dnnl_success) st = dnnl_primitive_attr_set_post_ops(attr, po);
    }
    if (st == dnnl_success) st = dnnl_primitive_desc_create(&pd, &d, attr, be->engine, NULL);
    if (st == dnnl_success) {
        const char *impl = "";
        dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl);
        *reference = strncmp(impl, "ref", 3) == 0;
        const dnnl_memory_desc_t *md_s =
            dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
        if (md_s) e->md_s = *md_s;
        e->scratch = md_s ? dnnl_memory_desc_get_size(md_s) : 0;
        st = dnnl_primitive_create(&e->p, pd);
    }
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (po) dnnl_post_ops_destroy(po);
    if (attr) dnnl_primitive_attr_destroy(attr);
    if (st != dnnl_success) {
        prim_free(e);
        return st;
    }
    *out = e;
    return dnnl_success;
}

/* The cached primitive for k (created on first use); *owned: the caller must free it (the
 * cache is full). */
static dnnl_status_t prim_get(onednn_be *be, const gemm_key *k, const dnnl_memory_desc_t *a,
                              const dnnl_memory_desc_t *b, const dnnl_memory_desc_t *c,
                              const dnnl_memory_desc_t *bias, float alpha, float beta, prim **out,
                              bool *owned)
{
    *owned = false;
    pthread_rwlock_rdlock(&be->lock);
    prim *e = cache_find(be, k);
    pthread_rwlock_unlock(&be->lock);
    if (e) {
        *out = e;
        return dnnl_success;
    }
    bool reference = false;
    dnnl_status_t st = prim_create(be, k, a, b, c, bias, alpha, beta, &e, &reference);
    if (st != dnnl_success) return st;
    pthread_rwlock_wrlock(&be->lock);
    prim *other = cache_find(be, k); /* another thread may have made it meanwhile */
    if (other) {
        prim_free(e);
        e = other;
    } else if (be->cached < CACHE_MAX) {
        size_t h = key_hash(k);
        e->next = be->bucket[h];
        be->bucket[h] = e;
        be->cached++;
        be->on_ref += reference;
    } else {
        *owned = true;
    }
    pthread_rwlock_unlock(&be->lock);
    *out = e;
    return dnnl_success;
}

/* ---- per-thread state --------------------------------------------------------------------- */

static tls *get_tls(onednn_be *be)
{
    tls *t = pthread_getspecific(be->key);
    if (t) return t;
    t = calloc(1, sizeof *t);
    if (!t) return NULL;
    if (dnnl_stream_create(&t->stream, be->engine, dnnl_stream_default_flags) != dnnl_success ||
        pthread_setspecific(be->key, t) != 0) {
        if (t->stream) dnnl_stream_destroy(t->stream);
        free(t);
        return NULL;
    }
    pthread_mutex_lock(&be->tls_lock);
    t->next = be->all;
    be->all = t;
    pthread_mutex_unlock(&be->tls_lock);
    return t;
}

/* b's memory, grown to at least n bytes (64-byte aligned), or NULL. */
static void *growbuf_get(growbuf *b, size_t n)
{
    if (n <= b->cap) return b->p;
    void *p = NULL;
    size_t cap = n + n / 4;
    if (posix_memalign(&p, 64, cap) != 0) return NULL;
    free(b->p);
    b->p = p;
    b->cap = cap;
    return p;
}

/* ---- GEMM --------------------------------------------------------------------------------- */

static size_t bytes_of(const operand *x, int64_t batch, bool bf16)
{
    size_t n = (size_t)((x->bs ? batch : 1) * x->rows * x->cols) * (bf16 ? 2 : 4);
    return (n + 63) / 64 * 64;
}

/* c's rows (m × n, row stride rs) := bias (n floats) */
static void fill_rows(float *c, int64_t m, int64_t n, int64_t rs, const float *bias)
{
    for (int64_t i = 0; i < m; i++) memcpy(c + i * rs, bias, (size_t)n * sizeof(float));
}

/* The reference GEMM, item by item (when oneDNN cannot be used for a call); bias (one item,
 * C row-major, beta 0) is written into C first. */
static void fallback(onednn_be *be, const char *why, float alpha, const operand *a,
                     const operand *b, float beta, const float *bias, float *c, int64_t cr,
                     int64_t cc, int64_t sc, int64_t batch)
{
    if (bias) {
        fill_rows(c, a->rows, b->cols, cr, bias);
        beta = 1.0f;
    }
    atomic_fetch_add(&be->fallbacks, 1);
    if (!atomic_exchange(&be->warned, true))
        sm_log(SM_LOG_WARN, "onednn: %s; running such GEMMs on the reference backend (slow)",
               why);
    const sm_backend_vtbl *ref = sm_backend_ref_vtbl();
    for (int64_t t = 0; t < batch; t++)
        ref->sgemm(be->ref, SM_NO_TRANS, SM_NO_TRANS, a->rows, b->cols, a->cols, alpha,
                   (const float *)a->p + t * a->bs, a->rs, a->cs, (const float *)b->p + t * b->bs,
                   b->rs, b->cs, beta, c + t * sc, cr, cc);
}

/* C (item t at c + t·sc, element (i, j) at [i·cr + j·cc]) := alpha·A·B + beta·C for each item
 * of the batch; A (m×k) and B (k×n) float operands. bias (n floats added to every row of C, as
 * the primitive's bias argument): only with one item, alpha 1, beta 0 and C row-major (cc 1,
 * n > 1), which onednn_sgemm_bias ensures. */
static void gemm(onednn_be *be, float alpha, operand a, operand b, float beta, const float *bias,
                 float *c, int64_t cr, int64_t cc, int64_t sc, int64_t batch)
{
    bool bf16 = be->precision == SM_PRECISION_BF16;
    operand co = {c, a.rows, b.cols, cr, cc, sc};
    fix_strides(&a);
    fix_strides(&b);
    fix_strides(&co);
    if (!row_major(&co) && col_major(&co)) { /* Cᵀ = Bᵀ·Aᵀ */
        operand t = transposed(a);
        a = transposed(b);
        b = t;
        co = transposed(co);
    }
    bool pack_a = bf16 || (!row_major(&a) && !col_major(&a));
    bool pack_b = bf16 || (!row_major(&b) && !col_major(&b));
    /* a batch whose C items interleave (heads side by side in a row: batch stride below the
     * item's extent) gets oneDNN's slower gemm:jit, not its brgemm (AMX) kernels: in bf16 it
     * is computed tight and copied in */
    bool temp_c = !row_major(&co) || (bf16 && batch > 1 && co.bs < co.rows * co.rs);
    tls *t = get_tls(be);
    size_t na = pack_a ? bytes_of(&a, batch, bf16) : 0, nb = pack_b ? bytes_of(&b, batch, bf16) : 0;
    size_t nc = temp_c ? (size_t)(batch * co.rows * co.cols) * 4 : 0;
    unsigned char *buf = t && na + nb + nc > 0 ? growbuf_get(&t->copy, na + nb + nc) : NULL;
    if (!t || (na + nb + nc > 0 && !buf)) {
        fallback(be, "out of memory for the stream or copy buffers", alpha, &a, &b, beta, bias,
                 (float *)co.p, co.rs, co.cs, co.bs, batch);
        return;
    }
    int nt = omp_in_parallel() ? 1 : be->threads;
    operand pa = pack_a ? pack(&a, batch, bf16, buf, nt) : a;
    operand pb = pack_b ? pack(&b, batch, bf16, buf + na, nt) : b;
    operand pc = co;
    float beta_p = beta;
    if (temp_c) {
        pc = (operand){buf + na + nb, co.rows, co.cols, co.cols, 1, co.rows * co.cols};
        beta_p = 0.0f;
    }

    gemm_key key;
    memset(&key, 0, sizeof key);
    key.m = pa.rows, key.n = pb.cols, key.k = pa.cols, key.batch = batch;
    key.a[0] = pa.rs, key.a[1] = pa.cs, key.a[2] = pa.bs;
    key.b[0] = pb.rs, key.b[1] = pb.cs, key.b[2] = pb.bs;
    key.c[0] = pc.rs, key.c[1] = pc.cs, key.c[2] = pc.bs;
    memcpy(&key.alpha, &alpha, 4);
    memcpy(&key.beta, &beta_p, 4);
    key.bf16 = bf16;
    key.threads = nt;
    key.bias = bias != NULL;

    int saved = omp_get_max_threads();
    omp_set_num_threads(nt);
    dnnl_memory_desc_t mda, mdb, mdc, mdbias;
    dnnl_status_t st = operand_md(&mda, &pa, batch, bf16);
    if (st == dnnl_success) st = operand_md(&mdb, &pb, batch, bf16);
    if (st == dnnl_success) st = operand_md(&mdc, &pc, batch, false);
    if (st == dnnl_success && bias) {
        dnnl_dims_t d = {1, pc.cols}, s = {pc.cols, 1};
        st = dnnl_memory_desc_init_by_strides(&mdbias, 2, d, dnnl_f32, s);
    }
    prim *e = NULL;
    bool owned = false;
    if (st == dnnl_success)
        st = prim_get(be, &key, &mda, &mdb, &mdc, bias ? &mdbias : NULL, alpha, beta_p, &e,
                      &owned);
    dnnl_memory_t mem[5] = {NULL, NULL, NULL, NULL, NULL};
    void *scratch = NULL;
    if (st == dnnl_success && e->scratch > 0 && !(scratch = growbuf_get(&t->scratch, e->scratch)))
        st = dnnl_out_of_memory;
    if (st == dnnl_success) st = dnnl_memory_create(&mem[0], &e->md_a, be->engine, (void *)pa.p);
    if (st == dnnl_success) st = dnnl_memory_create(&mem[1], &e->md_b, be->engine, (void *)pb.p);
    if (st == dnnl_success) st = dnnl_memory_create(&mem[2], &e->md_c, be->engine, (void *)pc.p);
    if (st == dnnl_success && scratch)
        st = dnnl_memory_create(&mem[3], &e->md_s, be->engine, scratch);
    if (st == dnnl_success && bias)
        st = dnnl_memory_create(&mem[4], &e->md_bias, be->engine, (void *)bias);
    if (st == dnnl_success) {
        dnnl_exec_arg_t args[5] = {{DNNL_ARG_SRC, mem[0]}, {DNNL_ARG_WEIGHTS, mem[1]},
                                   {DNNL_ARG_DST, mem[2]}};
        int nargs = 3;
        if (scratch) args[nargs++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, mem[3]};
        if (bias) args[nargs++] = (dnnl_exec_arg_t){DNNL_ARG_BIAS, mem[4]};
        st = dnnl_primitive_execute(e->p, t->stream, nargs, args);
        if (st == dnnl_success) st = dnnl_stream_wait(t->stream);
    }
    for (int i = 0; i < 5; i++)
        if (mem[i]) dnnl_memory_destroy(mem[i]);
    if (owned) prim_free(e);
    omp_set_num_threads(saved);
    /* a failed execution is taken to have written nothing (oneDNN checks arguments and
     * allocates its scratchpad before computing), so the fallback redoes the whole call */
    if (st != dnnl_success) {
        char why[96];
        snprintf(why, sizeof why, "oneDNN refused a %lldx%lldx%lld matmul (status %d)",
                 (long long)key.m, (long long)key.n, (long long)key.k, (int)st);
        fallback(be, why, alpha, &a, &b, beta, bias, (float *)co.p, co.rs, co.cs, co.bs, batch);
        return;
    }
    if (temp_c) { /* C := T + beta·C (beta 0: C's old values, NaN included, are ignored) */
        const float *tc = pc.p;
        float *dst = (float *)co.p;
        int64_t lines = batch * co.rows;
        int ntc = lines * co.cols >= (1 << 16) ? nt : 1;
#pragma omp parallel for schedule(static) num_threads(ntc) if (ntc > 1)
        for (int64_t l = 0; l < lines; l++) {
            float *p = dst + (l / co.rows) * co.bs + (l % co.rows) * co.rs;
            const float *v = tc + l * co.cols;
            if (co.cs == 1 && beta == 0.0f)
                memcpy(p, v, (size_t)co.cols * sizeof *p);
            else
                for (int64_t j = 0; j < co.cols; j++)
                    p[j * co.cs] = beta == 0.0f ? v[j] : v[j] + beta * p[j * co.cs];
        }
    }
}

/* op(X) of a stored matrix: rows × cols of op(X), strides swapped when transposed. */
static operand op_of(const float *p, sm_trans t, int64_t rows, int64_t cols, int64_t rs,
                     int64_t cs, int64_t bs)
{
    return t ? (operand){p, rows, cols, cs, rs, bs} : (operand){p, rows, cols, rs, cs, bs};
}

static void onednn_sgemm(void *self, sm_trans ta, sm_trans tb, int64_t m, int64_t n, int64_t k,
                         float alpha, const float *a, int64_t rsa, int64_t csa, const float *b,
                         int64_t rsb, int64_t csb, float beta, float *c, int64_t rsc,
                         int64_t csc)
{
    gemm(self, alpha, op_of(a, ta, m, k, rsa, csa, 0), op_of(b, tb, k, n, rsb, csb, 0), beta,
         NULL, c, rsc, csc, 0, 1);
}

/* The bias as the primitive's bias argument: no pass over C before the GEMM, no sum post-op
 * reading C back. A one-column C (whose layout the general path may transpose) gets its
 * bias written first and a beta-1 GEMM instead. */
static void onednn_sgemm_bias(void *self, sm_trans ta, sm_trans tb, int64_t m, int64_t n,
                              int64_t k, const float *a, int64_t rsa, int64_t csa, const float *b,
                              int64_t rsb, int64_t csb, const float *bias, float *c, int64_t rsc)
{
    operand oa = op_of(a, ta, m, k, rsa, csa, 0), ob = op_of(b, tb, k, n, rsb, csb, 0);
    if (n == 1) {
        fill_rows(c, m, n, rsc, bias);
        gemm(self, 1.0f, oa, ob, 1.0f, NULL, c, rsc, 1, 0, 1);
    } else {
        gemm(self, 1.0f, oa, ob, 0.0f, bias, c, rsc, 1, 0, 1);
    }
}

static void onednn_sgemm_batched(void *self, sm_trans ta, sm_trans tb, int64_t m, int64_t n,
                                 int64_t k, float alpha, const float *a, int64_t rsa, int64_t csa,
                                 int64_t sa, const float *b, int64_t rsb, int64_t csb, int64_t sb,
                                 float beta, float *c, int64_t rsc, int64_t csc, int64_t sc,
                                 int64_t batch)
{
    gemm(self, alpha, op_of(a, ta, m, k, rsa, csa, batch > 1 ? sa : 0),
         op_of(b, tb, k, n, rsb, csb, batch > 1 ? sb : 0), beta, NULL, c, rsc, csc, sc, batch);
}

/* ---- the backend -------------------------------------------------------------------------- */

static void onednn_destroy(void *self)
{
    onednn_be *be = self;
    if (!be) return;
    for (size_t h = 0; h < CACHE_BUCKETS; h++)
        for (prim *e = be->bucket[h], *next; e; e = next) {
            next = e->next;
            prim_free(e);
        }
    for (tls *t = be->all, *next; t; t = next) {
        next = t->next;
        dnnl_stream_destroy(t->stream);
        free(t->copy.p);
        free(t->scratch.p);
        free(t);
    }
    pthread_key_delete(be->key);
    pthread_mutex_destroy(&be->tls_lock);
    pthread_rwlock_destroy(&be->lock);
    if (be->engine) dnnl_engine_destroy(be->engine);
    if (be->ref) sm_backend_ref_vtbl()->destroy(be->ref);
    free(be);
}

static int onednn_create(const sm_cfg *section, int threads, void **self, sm_error *err)
{
    (void)section;
    *self = NULL;
    onednn_be *be = calloc(1, sizeof *be);
    if (!be) return sm_error_set(err, SM_ENOMEM, NULL, 0, 0, NULL, "out of memory");
    be->threads = threads > 0 ? threads : 1;
    be->precision = SM_PRECISION_FP32;
    atomic_init(&be->warned, false);
    atomic_init(&be->fallbacks, 0);
    if (pthread_rwlock_init(&be->lock, NULL) != 0) {
        free(be);
        return sm_error_set(err, SM_ENOMEM, NULL, 0, 0, NULL, "out of memory");
    }
    if (pthread_mutex_init(&be->tls_lock, NULL) != 0) {
        pthread_rwlock_destroy(&be->lock);
        free(be);
        return sm_error_set(err, SM_ENOMEM, NULL, 0, 0, NULL, "out of memory");
    }
    if (pthread_key_create(&be->key, NULL) != 0) {
        pthread_mutex_destroy(&be->tls_lock);
        pthread_rwlock_destroy(&be->lock);
        free(be);
        return sm_error_set(err, SM_ENOMEM, NULL, 0, 0, NULL, "out of thread-specific keys");
    }
    int rc = sm_backend_ref_vtbl()->create(NULL, be->threads, &be->ref, err);
    if (!rc && dnnl_engine_create(&be->engine, dnnl_cpu, 0) != dnnl_success)
        rc = sm_error_set(err, SM_EINTERNAL, NULL, 0, 0, NULL,
                          "backend 'onednn': oneDNN could not create its CPU engine");
    if (rc) {
        onednn_destroy(be);
        return rc;
    }
    *self = be;
    return 0;
}

/* bf16 only where oneDNN has optimised bf16 matmul (AVX-512 and up: native dot products with
 * AVX512_BF16, emulated with AVX-512 F/BW otherwise). Below that oneDNN 2.6 has no bf16 matmul
 * at all, or only its slow reference code: refused either way. */
static int onednn_set_precision(void *self, sm_precision p, sm_error *err)
{
    onednn_be *be = self;
    if (p == SM_PRECISION_FP32) {
        be->precision = p;
        return sm_backend_ref_vtbl()->set_precision(be->ref, p, err);
    }
    dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
    bool avx512 = ((unsigned)isa & (unsigned)dnnl_cpu_isa_avx512_core) ==
                  (unsigned)dnnl_cpu_isa_avx512_core;
    const dnnl_version_t *v = dnnl_version();
    if (!avx512)
        return sm_error_set(err, SM_EUNSUPPORTED, NULL, 0, 0, "backend.precision",
                            "backend 'onednn' cannot run precision %s on this CPU: oneDNN "
                            "%d.%d has bf16 matmul only with AVX-512 (avx512_core, native bf16 "
                            "with avx512_core_bf16), and this CPU offers %s",
                            sm_precision_name(p), v->major, v->minor, isa_name(isa));
    /* the CPU qualifies: make sure oneDNN really has an optimised bf16 matmul for it */
    dnnl_memory_desc_t a, b, c;
    dnnl_dims_t d = {64, 64}, s = {64, 1};
    prim *e = NULL;
    bool reference = false;
    gemm_key key;
    memset(&key, 0, sizeof key);
    int saved = omp_get_max_threads();
    omp_set_num_threads(be->threads);
    dnnl_status_t st = dnnl_memory_desc_init_by_strides(&a, 2, d, dnnl_bf16, s);
    if (st == dnnl_success) st = dnnl_memory_desc_init_by_strides(&b, 2, d, dnnl_bf16, s);
    if (st == dnnl_success) st = dnnl_memory_desc_init_by_strides(&c, 2, d, dnnl_f32, s);
    if (st == dnnl_success)
        st = prim_create(be, &key, &a, &b, &c, NULL, 1.0f, 0.0f, &e, &reference);
    omp_set_num_threads(saved);
    prim_free(e);
    if (st != dnnl_success || reference)
        return sm_error_set(err, SM_EUNSUPPORTED, NULL, 0, 0, "backend.precision",
                            "backend 'onednn' cannot run precision %s on this CPU (%s): oneDNN "
                            "%d.%d %s",
                            sm_precision_name(p), isa_name(isa), v->major, v->minor,
                            st != dnnl_success ? "refused a bf16 matmul"
                                               : "offers only its slow reference bf16 matmul");
    be->precision = p;
    return sm_backend_ref_vtbl()->set_precision(be->ref, p, err);
}

static size_t onednn_describe(void *self, char *buf, size_t n)
{
    onednn_be *be = self;
    const dnnl_version_t *v = dnnl_version();
    pthread_rwlock_rdlock(&be->lock);
    size_t cached = be->cached, on_ref = be->on_ref;
    pthread_rwlock_unlock(&be->lock);
    unsigned long long fb = atomic_load(&be->fallbacks);
    int r = snprintf(buf, n,
                     "oneDNN %d.%d.%d (CPU %s), %s, %d thread%s, %zu matmul primitive%s cached "
                     "(%zu on oneDNN's reference code), %llu fallback call%s",
                     v->major, v->minor, v->patch, isa_name(dnnl_get_effective_cpu_isa()),
                     sm_precision_name(be->precision), be->threads, be->threads == 1 ? "" : "s",
                     cached, cached == 1 ? "" : "s", on_ref, fb, fb == 1 ? "" : "s");
    return r < 0 ? 0 : (size_t)r;
}

static const sm_backend_vtbl onednn_vtbl = {
    .hdr = SM_COMPONENT_INIT(sm_backend_vtbl, SM_KIND_BACKEND, "onednn",
                             "oneDNN matmul primitives (fp32; bf16 on CPUs with AVX-512)", NULL,
                             NULL),
    .create = onednn_create,
    .destroy = onednn_destroy,
    .sgemm = onednn_sgemm,
    .sgemm_batched = onednn_sgemm_batched,
    .describe = onednn_describe,
    .set_precision = onednn_set_precision,
    .sgemm_bias = onednn_sgemm_bias,
};

static int onednn_register(sm_registry *reg, sm_error *err)
{
    return sm_registry_add(reg, &onednn_vtbl.hdr, err);
}

SM_PLUGIN_DEFINE(onednn, "0.1.0", "oneDNN compute backend", "MIT", onednn_register)
