/* plugins/blis/sm_blis.c - the `blis` compute backend: GEMM through BLIS's typed expert API
 * (bli_sgemm_ex), strides passed straight through, threads per call through an rntm_t.
 *
 * Kernel selection. BLIS picks its sub-configuration (kernel set) once, at initialisation, from
 * CPUID or from the environment variable BLIS_ARCH_TYPE (an index into this build's list of
 * sub-configurations). BLIS 0.9 does not know AMD family 0x1A (Zen 5) and silently falls back to
 * its reference `generic` kernels there, 5x slower (../shared/docs/performance.md). So, before
 * BLIS is first initialised:
 *   - a user-set BLIS_ARCH_TYPE is respected;
 *   - config `arch` other than "auto" selects that kernel set (refused if this CPU lacks its
 *     instructions or this BLIS lacks it);
 *   - "auto": an Intel CPU with AVX-512 whose 512-bit FMAs run at >= 1.5x the 256-bit rate
 *     (two AVX-512 units: fma_width_gain) -> skx; other CPUs BLIS knows (Intel; AMD families
 *     0x15, 0x17, 0x19) keep BLIS's own choice; otherwise AVX-512 -> skx, AVX2+FMA -> zen3
 *     (AMD) or haswell, else BLIS's choice.
 * The index is found by comparing bli_arch_string(i) for i < BLIS_NUM_ARCHS.
 *
 * Threads: every call uses an rntm_t with this instance's thread count, or one thread when
 * called from inside an OpenMP parallel region (the core's per-head attention loop). BLIS does
 * not split the k loop across threads, so results do not depend on the thread count.
 *
 * Packed or unpacked. BLIS 0.9 sends a GEMM to its "sup" path (small/unpacked: operands read in
 * place, no packing) whenever one dimension is under a threshold (zen3 sgemm: m < 512, n < 200
 * or k < 240), however large the other two are. On Swin's shapes that path runs at 35-65 % of
 * the packed one (392 x 4096 x 1024, stage 4 at batch 8: 55-70 GFLOP/s against 120-165, 2
 * threads, Zen 3; 25088 x 512 x 128, stage 1: 100 against 150-165): its unpacked operands with
 * power-of-two row strides (128 ... 4096 floats) keep colliding in the same cache sets. So a
 * whole-problem call (not one item of a batch or of the per-head attention loop, inside an
 * OpenMP region: those products are small and sup often wins there) with m·n·k >= `packed_from`
 * (default 2^25) takes the packed path; smaller ones keep BLIS's choice. The choice depends on
 * the shape only, never on the thread count, so results stay the same bits at any count. */
#include "sm_config.h"

#include <simmim/simmim.h>

#include <cpuid.h>
#include <immintrin.h>
#include <omp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef HAVE_BLIS_H
#include <blis.h>
#else
#include <blis/blis.h>
#endif

#define PACKED_FROM_DEFAULT "33554432" /* 2^25: backend.packed_from's default (blis_keys) */

typedef struct blis_be {
    int threads;
    int64_t packed_from; /* m·n·k from which whole-problem calls skip BLIS's sup path; 0 never */
} blis_be;

/* ---- kernel selection (process-wide: BLIS initialises once) ----------------------------- */

static pthread_mutex_t sel_lock = PTHREAD_MUTEX_INITIALIZER;
static bool sel_done;
static char sel_request[32]; /* the `arch` value the selection was made for */
static char sel_how[160];    /* why this kernel set */

typedef enum isa { ISA_NONE, ISA_AVX, ISA_AVX2, ISA_AVX512 } isa;

static isa cpu_isa(void)
{
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl"))
        return ISA_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return ISA_AVX2;
    if (__builtin_cpu_supports("avx")) return ISA_AVX;
    return ISA_NONE;
}

/* vendor "AuthenticAMD"/"GenuineIntel" and the display family */
static void cpu_id(char vendor[13], unsigned *family)
{
    unsigned a = 0, b = 0, c = 0, d = 0;
    memset(vendor, 0, 13);
    *family = 0;
    if (!__get_cpuid(0, &a, &b, &c, &d)) return;
    memcpy(vendor, &b, 4);
    memcpy(vendor + 4, &d, 4);
    memcpy(vendor + 8, &c, 4);
    if (!__get_cpuid(1, &a, &b, &c, &d)) return;
    *family = (a >> 8) & 0xF;
    if (*family == 0xF) *family += (a >> 20) & 0xFF;
}

/* FMA lanes per second at one vector width: FMA_REPS rounds over 12 independent accumulators
 * (more than latency × units on any x86 core, so the units, not the chains, set the rate). */
#define FMA_REPS 100000
#define FMA_RATE(NAME, TARGET, VT, SET1, FMA, LANES)                                        \
    __attribute__((target(TARGET))) static double NAME(void)                                  \
    {                                                                                         \
        VT acc[12];                                                                           \
        for (int k = 0; k < 12; k++) acc[k] = SET1((float)k);                                 \
        const VT m = SET1(0.999999f), c = SET1(1e-6f);                                       \
        struct timespec t0, t1;                                                               \
        clock_gettime(CLOCK_MONOTONIC, &t0);                                                  \
        for (int r = 0; r < FMA_REPS; r++) {                                                  \
            _Pragma("GCC unroll 12") for (int k = 0; k < 12; k++) acc[k] = FMA(acc[k], m, c); \
        }                                                                                     \
        clock_gettime(CLOCK_MONOTONIC, &t1);                                                  \
        volatile float sink = 0.0f;                                                           \
        for (int k = 0; k < 12; k++) sink += acc[k][0];                                      \
        double dt = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec); \
        return dt > 0.0 ? 12.0 * (LANES) * FMA_REPS / dt : 0.0;                               \
    }
FMA_RATE(fma_rate_512, "avx512f", __m512, _mm512_set1_ps, _mm512_fmadd_ps, 16)
FMA_RATE(fma_rate_256, "avx2,fma", __m256, _mm256_set1_ps, _mm256_fmadd_ps, 8)

/* 512-bit FMA lanes per second over 256-bit ones, best of five each (the best resists a
 * preemption or another tenant in the middle of one measurement): about 2 with two AVX-512
 * FMA units, about 1 with one (or with 512-bit operations split in two, as on Zen 4). BLIS 0.9
 * tells the two apart on Intel from a table of model numbers and brand strings, and takes the
 * AVX2 `haswell` kernels when it cannot (a virtual machine's CPU named "Intel(R) Xeon(R)
 * Processor", say): half the FMA width on a Xeon with two units. ~5 ms, once per process. */
static double fma_width_gain(void)
{
    double best512 = 0.0, best256 = 0.0;
    for (int i = 0; i < 5; i++) {
        double a = fma_rate_512(), b = fma_rate_256();
        best512 = a > best512 ? a : best512;
        best256 = b > best256 ? b : best256;
    }
    return best256 > 0.0 ? best512 / best256 : 0.0;
}

/* Instructions a kernel set needs (x86 sets only; others cannot run here). */
static int arch_needs(const char *name, isa *need)
{
    static const struct {
        const char *name;
        isa need;
    } known[] = {{"skx", ISA_AVX512}, {"haswell", ISA_AVX2}, {"zen3", ISA_AVX2},
                 {"zen2", ISA_AVX2},  {"zen", ISA_AVX2},     {"sandybridge", ISA_AVX},
                 {"generic", ISA_NONE}};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strcmp(known[i].name, name) == 0) {
            *need = known[i].need;
            return 0;
        }
    return -1;
}

static int arch_index(const char *name)
{
    for (int i = 0; i < BLIS_NUM_ARCHS; i++) {
        const char *s = bli_arch_string((arch_t)i);
        if (s && strcmp(s, name) == 0) return i;
    }
    return -1;
}

/* Decides and exports BLIS_ARCH_TYPE (if needed), then initialises BLIS. */
static int select_kernels(const char *arch, sm_error *err)
{
    const char *env = getenv("BLIS_ARCH_TYPE");
    char vendor[13];
    unsigned family;
    cpu_id(vendor, &family);
    isa have = cpu_isa();
    const char *want = NULL;
    if (env && *env) {
        snprintf(sel_how, sizeof sel_how, "from BLIS_ARCH_TYPE=%s", env);
    } else if (strcmp(arch, "auto") != 0) {
        isa need;
        if (arch_needs(arch, &need) != 0 || arch_index(arch) < 0)
            return sm_error_set(err, SM_ECONFIG, NULL, 0, 0, "backend.arch",
                                "unknown BLIS kernel set '%s' (available: auto, skx, haswell, "
                                "zen3, zen2, zen, sandybridge, generic)",
                                arch);
        if (need > have)
            return sm_error_set(err, SM_ECONFIG, NULL, 0, 0, "backend.arch",
                                "BLIS kernel set '%s' needs %s, which this CPU does not have",
                                arch, need == ISA_AVX512 ? "AVX-512" : need == ISA_AVX2 ? "AVX2 and FMA" : "AVX");
        want = arch;
        snprintf(sel_how, sizeof sel_how, "config arch: %s", arch);
    } else {
        bool amd = strcmp(vendor, "AuthenticAMD") == 0, intel = strcmp(vendor, "GenuineIntel") == 0;
        bool known = intel || (amd && (family == 0x15 || family == 0x17 || family == 0x19));
        double gain = intel && have == ISA_AVX512 ? fma_width_gain() : 0.0;
        if (gain >= 1.5) { /* two AVX-512 FMA units: skx, whatever BLIS's tables say */
            want = "skx";
            snprintf(sel_how, sizeof sel_how,
                     "selected by simmim: 512-bit FMAs run at %.1fx the 256-bit rate on this CPU "
                     "(two AVX-512 units)",
                     gain);
        } else if (known && gain > 0.0) {
            snprintf(sel_how, sizeof sel_how,
                     "BLIS's own choice for this CPU (512-bit FMAs at %.1fx the 256-bit rate: one "
                     "AVX-512 unit)",
                     gain);
        } else if (known) {
            snprintf(sel_how, sizeof sel_how, "BLIS's own choice for this CPU");
        } else {
            want = have == ISA_AVX512 ? "skx" : have == ISA_AVX2 ? (amd ? "zen3" : "haswell") : NULL;
            if (want)
                snprintf(sel_how, sizeof sel_how,
                         "selected by simmim: BLIS 0.9 does not know this CPU (%s family 0x%x)",
                         vendor[0] ? vendor : "unknown vendor", family);
            else
                snprintf(sel_how, sizeof sel_how, "BLIS's own choice (no AVX2 on this CPU)");
        }
        if (want && arch_index(want) < 0) {
            want = NULL;
            snprintf(sel_how, sizeof sel_how, "BLIS's own choice (this BLIS lacks the best set)");
        }
    }
    if (want) {
        char idx[16];
        snprintf(idx, sizeof idx, "%d", arch_index(want));
        setenv("BLIS_ARCH_TYPE", idx, 1);
    }
    bli_init();
    if (want && strcmp(bli_arch_string(bli_arch_query_id()), want) != 0)
        snprintf(sel_how, sizeof sel_how,
                 "BLIS was initialised before the backend: kernel set %s could not be selected",
                 want);
    return 0;
}

static int ensure_selected(const char *arch, sm_error *err)
{
    int rc = 0;
    pthread_mutex_lock(&sel_lock);
    if (!sel_done) {
        rc = select_kernels(arch, err);
        if (rc == 0) {
            sel_done = true;
            snprintf(sel_request, sizeof sel_request, "%s", arch);
        }
    } else if (strcmp(arch, sel_request) != 0) {
        rc = sm_error_set(err, SM_ECONFIG, NULL, 0, 0, "backend.arch",
                          "BLIS kernels were already selected in this process (arch %s); "
                          "arch %s cannot be used as well",
                          sel_request, arch);
    }
    pthread_mutex_unlock(&sel_lock);
    return rc;
}

/* ---- the backend -------------------------------------------------------------------------- */

static int blis_create(const sm_cfg *section, int threads, void **self, sm_error *err)
{
    const char *arch = section ? sm_cfg_str(section, "arch") : NULL;
    int rc = ensure_selected(arch && *arch ? arch : "auto", err);
    if (rc) return rc;
    blis_be *be = malloc(sizeof *be);
    if (!be) return sm_error_set(err, SM_ENOMEM, NULL, 0, 0, NULL, "out of memory");
    be->threads = threads > 0 ? threads : 1;
    be->packed_from = section && sm_cfg_get(section, "packed_from")
                          ? sm_cfg_int(section, "packed_from")
                          : strtoll(PACKED_FROM_DEFAULT, NULL, 10); /* unvalidated section */
    *self = be;
    return 0;
}

static void blis_destroy(void *self) { free(self); }

/* BLIS rejects some stride combinations of degenerate dims (a dimension of 1 has an unused
 * stride); give such strides a valid value. */
static void fix_strides(int64_t rows, int64_t cols, int64_t *rs, int64_t *cs)
{
    if (rows == 1 && cols == 1) {
        *rs = *cs = 1;
    } else if (rows == 1) {
        *rs = cols * *cs;
    } else if (cols == 1) {
        *cs = rows * *rs;
    }
}

/* C (m×n) := alpha·op(A)·op(B) + beta·C, BLIS-style strides. */
static void blis_sgemm(void *self, sm_trans ta, sm_trans tb, int64_t m, int64_t n, int64_t k,
                       float alpha, const float *a, int64_t rsa, int64_t csa, const float *b,
                       int64_t rsb, int64_t csb, float beta, float *c, int64_t rsc, int64_t csc)
{
    const blis_be *be = self;
    /* logical strides of op(A) (m×k) and op(B) (k×n): transposes are swapped strides */
    int64_t ar = ta ? csa : rsa, ac = ta ? rsa : csa, br = tb ? csb : rsb, bc = tb ? rsb : csb;
    fix_strides(m, k, &ar, &ac);
    fix_strides(k, n, &br, &bc);
    fix_strides(m, n, &rsc, &csc);
    rntm_t rntm = BLIS_RNTM_INITIALIZER;
    bli_rntm_set_num_threads(omp_in_parallel() ? 1 : be->threads, &rntm);
    /* omp_get_level, not omp_in_parallel: a per-item call of a batch is one at any thread
     * count (a team of one is not "in parallel"), so the path, and the bits, do not depend on it */
    if (omp_get_level() == 0 && be->packed_from > 0 &&
        (double)m * (double)n * (double)k >= (double)be->packed_from)
        bli_rntm_disable_l3_sup(&rntm);
    bli_sgemm_ex(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, m, n, k, &alpha, (float *)a, ar, ac,
                 (float *)b, br, bc, &beta, c, rsc, csc, NULL, &rntm);
}

static size_t blis_describe(void *self, char *buf, size_t n)
{
    const blis_be *be = self;
    char packed[64] = "sup path as BLIS chooses";
    if (be->packed_from > 0)
        snprintf(packed, sizeof packed, "packed path from m*n*k %lld", (long long)be->packed_from);
    int r = snprintf(buf, n, "BLIS %s, kernels %s (%s), %d thread%s, %s",
                     bli_info_get_version_str(), bli_arch_string(bli_arch_query_id()), sel_how,
                     be->threads, be->threads == 1 ? "" : "s", packed);
    return r < 0 ? 0 : (size_t)r;
}

/* BLIS 0.9 has no bf16 GEMM (no bf16 datatype in its typed API). Rounding the inputs to bf16
 * and running sgemm would give bf16 numbers at fp32 speed plus a copy: refused instead, so that
 * bf16 always means bf16 arithmetic. */
static int blis_set_precision(void *self, sm_precision p, sm_error *err)
{
    (void)self;
    if (p == SM_PRECISION_FP32) return 0;
    return sm_error_set(err, SM_EUNSUPPORTED, NULL, 0, 0, "backend.precision",
                        "backend 'blis' cannot run precision %s: BLIS %s has no bf16 GEMM "
                        "(use backend.name onednn on a CPU with AVX-512, or ref to check "
                        "numerics)",
                        sm_precision_name(p), bli_info_get_version_str());
}

static const sm_key blis_keys[] = {
    {"arch", SM_KEY_STRING, "auto", "auto|skx|haswell|zen3|zen2|zen|sandybridge|generic", 0,
     "BLIS kernel set; auto keeps BLIS's choice where BLIS knows the CPU and otherwise picks the "
     "widest SIMD (skx, then zen3/haswell)"},
    {"packed_from", SM_KEY_INT, PACKED_FROM_DEFAULT, "[0,)", 0,
     "m*n*k from which a whole-problem GEMM always takes BLIS's packed path instead of its "
     "small/unpacked one (2-3x faster on Swin's skinny shapes); 0: BLIS's own choice everywhere"},
    {NULL, SM_KEY_END, NULL, NULL, 0, NULL},
};

static const sm_backend_vtbl blis_vtbl = {
    .hdr = SM_COMPONENT_INIT(sm_backend_vtbl, SM_KIND_BACKEND, "blis",
                             "BLIS GEMM (fastest kernel set for this CPU, threads per call)",
                             blis_keys, NULL),
    .create = blis_create,
    .destroy = blis_destroy,
    .sgemm = blis_sgemm,
    .describe = blis_describe,
    .set_precision = blis_set_precision,
};

static int blis_register(sm_registry *reg, sm_error *err)
{
    return sm_registry_add(reg, &blis_vtbl.hdr, err);
}

SM_PLUGIN_DEFINE(blis, "0.1.0", "BLIS compute backend", "MIT", blis_register)
