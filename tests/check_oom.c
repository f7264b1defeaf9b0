/* tests/check_oom.c - out of memory at every allocation (jansson's test_chaos idea): the config
 * loader (read with base_config includes and overrides, validate against the plugins, render
 * YAML) and the safetensors reader (open, find, read) are run again and again; run k makes the
 * k-th allocation fail. Every run must end cleanly: an error status with a message (or success
 * when the failed allocation had a fallback), no crash, and nothing left allocated after the
 * objects are freed. The runs stop when one completes without reaching the failing allocation.
 *
 * malloc, calloc, realloc and free are replaced for this program (glibc supports replacing
 * them; libyaml, jansson and libc's own strdup then allocate through these). */
#include "testutil.h"

#include <stdint.h>
#include <string.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);

/* ---- counting allocator ---------------------------------------------------------------------- */

/* exported (the build hides symbols by default), so the libraries' calls reach them */
#define SM_REPLACE __attribute__((visibility("default")))

enum { LIVE_SLOTS = 1 << 18 };
static void *live[LIVE_SLOTS]; /* open addressing; NULL empty, TOMB deleted */
#define TOMB ((void *)1)
/* volatile: the compiler knows what malloc does and would move these around its calls */
static volatile bool armed;
static volatile long n_allocs, fail_at, n_live;
static volatile bool injected;

static size_t slot_of(void *p) { return (size_t)(((uintptr_t)p >> 4) * 0x9E3779B97F4A7C15ull >> 46); }

static void live_add(void *p)
{
    for (size_t i = slot_of(p);; i = (i + 1) & (LIVE_SLOTS - 1))
        if (live[i] == NULL || live[i] == TOMB) {
            live[i] = p;
            n_live++;
            return;
        }
}

/* Forgets p if it was allocated while armed. */
static void live_remove(void *p)
{
    for (size_t i = slot_of(p); live[i] != NULL; i = (i + 1) & (LIVE_SLOTS - 1))
        if (live[i] == p) {
            live[i] = TOMB;
            n_live--;
            return;
        }
}

/* Counts an allocation; false when this one must fail. */
static bool allow(void)
{
    if (!armed) return true;
    if (++n_allocs == fail_at) {
        injected = true;
        return false;
    }
    return true;
}

SM_REPLACE void *malloc(size_t n)
{
    if (!allow()) return NULL;
    void *p = __libc_malloc(n);
    if (p && armed) live_add(p);
    return p;
}

SM_REPLACE void *calloc(size_t n, size_t s)
{
    if (!allow()) return NULL;
    void *p = __libc_calloc(n, s);
    if (p && armed) live_add(p);
    return p;
}

SM_REPLACE void *realloc(void *old, size_t n)
{
    if (n && !allow()) return NULL;
    void *p = __libc_realloc(old, n);
    if (armed && (p || !n)) {
        if (old) live_remove(old);
        if (p) live_add(p);
    }
    return p;
}

SM_REPLACE void free(void *p)
{
    if (p && armed) live_remove(p);
    __libc_free(p);
}

static void arm(long k)
{
    memset(live, 0, sizeof live);
    n_allocs = 0;
    n_live = 0;
    fail_at = k;
    injected = false;
    armed = true;
}

/* ---- the operations --------------------------------------------------------------------------- */

static sm_registry *reg; /* loaded before any run: plugins are not what is tested here */

/* Config: read (a RingMo config with its base files and two overrides), validate, render. */
static int op_config(char *msg, size_t n)
{
    static const char *const opts[] = {"train_config.batch_size=32", "model.depth=6"};
    sm_diag *d = sm_diag_new();
    sm_config *cfg = NULL;
    char *yaml = NULL;
    size_t len = 0;
    int rc = d ? 0 : SM_ENOMEM;
    if (!rc)
        rc = sm_config_read(sm_test_src("../configs/pretrain_simmim_vit_base_p16_aircas_224_200ep.yaml"),
                            opts, 2, &cfg, d);
    if (!rc) rc = sm_config_validate(cfg, reg, d);
    if (!rc) rc = sm_config_to_yaml(cfg, &yaml, &len);
    snprintf(msg, n, "%s", d ? "" : "out of memory for the diagnostics list");
    const sm_error *e = d && sm_diag_count(d) ? sm_diag_get(d, 0, NULL) : NULL;
    if (rc && e) snprintf(msg, n, "%s", e->text);
    free(yaml);
    sm_config_free(cfg);
    sm_diag_free(d);
    return rc;
}

/* Safetensors: open (header parsed and validated), find and read every tensor as float32. */
static int op_safetensors(char *msg, size_t n)
{
    sm_error err;
    sm_error_clear(&err);
    sm_st_file *f = NULL;
    int rc = sm_st_open(sm_test_src("golden/simmim_vit_shared_rpb.safetensors"), &f, &err);
    for (size_t i = 0; !rc && i < sm_st_count(f); i++) {
        const sm_st_info *in = sm_st_at(f, i);
        if (in->dtype != SM_DTYPE_F32 || sm_st_find(f, in->name) != in) continue;
        float *buf = malloc((size_t)in->numel * sizeof *buf + 1);
        rc = buf ? sm_st_read_f32(f, in->name, buf, in->numel, &err)
                 : sm_error_set(&err, SM_ENOMEM, NULL, 0, 0, NULL, "out of memory");
        free(buf);
    }
    sm_st_close(f);
    snprintf(msg, n, "%s", rc ? err.text : "");
    return rc;
}

/* Runs op with the k-th allocation failing, for k = 1, 2, ... until a run allocates fewer. */
static void chaos(const char *what, int (*op)(char *, size_t))
{
    char msg[1200];
    long k, rounds = 0;
    for (k = 1;; k++) {
        arm(k);
        int rc = op(msg, sizeof msg);
        armed = false;
        ck_assert_msg(n_live == 0, "%s: allocation %ld failed: %ld block(s) leaked", what, k, n_live);
        if (!injected) {
            ck_assert_msg(rc == 0, "%s: failed without an injected failure: %s", what, msg);
            break;
        }
        /* a failed allocation either ends in an error with a message, or is survived */
        ck_assert_msg(rc == 0 || msg[0], "%s: allocation %ld failed: status %d without a message",
                      what, k, rc);
        rounds++;
    }
    ck_assert_msg(rounds > 50, "%s: only %ld allocations: not testing much", what, rounds);
    fprintf(stderr, "%s: each of %ld allocations failed in turn, cleanly\n", what, rounds);
}

START_TEST(test_config_oom) { chaos("config", op_config); }
END_TEST

START_TEST(test_safetensors_oom) { chaos("safetensors", op_safetensors); }
END_TEST

/* The counting allocator must notice a leak, or the tests above prove nothing. */
START_TEST(test_leak_is_noticed)
{
    arm(-1);
    void *volatile p = malloc(16); /* volatile: the compiler may not drop the pair */
    armed = false;
    ck_assert_int_eq(n_live, 1);
    free(p);
}
END_TEST

static void setup(void) { reg = sm_test_registry(); }
static void teardown(void) { sm_registry_free(reg); }

static Suite *oom_suite(void)
{
    Suite *s = suite_create("oom");
    TCase *tc = tcase_create("chaos");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_leak_is_noticed);
    tcase_add_test(tc, test_config_oom);
    tcase_add_test(tc, test_safetensors_oom);
    tcase_add_unchecked_fixture(tc, setup, teardown);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return sm_test_run(oom_suite()); }
