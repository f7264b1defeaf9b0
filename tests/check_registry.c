/* tests/check_registry.c - the registry: built-ins, adding components (header, ABI and key
 * table checks), case-insensitive lookups, "not found" messages that list what exists. */
#include "testutil.h"

#include "fixtures/plugins/fx_stubs.h"

#include <string.h>

static const sm_key opt_keys[] = {
    {"momentum", SM_KEY_FLOAT, "0.9", "[0,1)", 0, "momentum"},
    {"schedule", SM_KEY_MAP, NULL, NULL, 0, "nested keys"},
    {"schedule.steps", SM_KEY_INT_LIST, "[10, 20]", "[1,)", 0, "milestones"},
    {"mode", SM_KEY_STRING, "fast", "fast|slow", 0, "choice"},
    {"legacy", SM_KEY_IGNORED, NULL, NULL, 0, "ignored"},
    {0},
};

static const sm_optimizer_vtbl opt_a_vt = {
    .hdr = SM_COMPONENT_INIT(sm_optimizer_vtbl, SM_KIND_OPTIMIZER, "opt_a", "first optimizer",
                             opt_keys, NULL),
    FX_OPTIMIZER_SLOTS};
static const sm_optimizer_vtbl opt_b_vt = {
    .hdr = SM_COMPONENT_INIT(sm_optimizer_vtbl, SM_KIND_OPTIMIZER, "opt_b", "second optimizer",
                             NULL, NULL),
    FX_OPTIMIZER_SLOTS};
#define opt_a (opt_a_vt.hdr)
#define opt_b (opt_b_vt.hdr)

/* Adds a copy of opt_a's header changed by the caller; returns the status and the message. */
static int add_variant(sm_component c, sm_error *e)
{
    static sm_optimizer_vtbl vt = {FX_OPTIMIZER_SLOTS};
    vt.hdr = c;
    sm_component *slot_p = &vt.hdr;
    sm_registry *reg = sm_registry_new();
    ck_assert_ptr_nonnull(reg);
    sm_error_clear(e);
    int rc = sm_registry_add(reg, slot_p, e);
    if (rc) /* nothing was added */
        for (int k = 0; k < SM_KIND_COUNT; k++)
            ck_assert_uint_eq(sm_registry_count(reg, (sm_kind)k), k == SM_KIND_BACKEND);
    sm_registry_free(reg);
    return rc;
}

START_TEST(test_builtins)
{
    sm_registry *reg = sm_registry_new();
    ck_assert_ptr_nonnull(reg);
    ck_assert_uint_eq(sm_registry_count(reg, SM_KIND_BACKEND), 1);
    const sm_component *ref = sm_registry_find(reg, SM_KIND_BACKEND, "REF");
    ck_assert_ptr_nonnull(ref);
    ck_assert_str_eq(ref->name, "ref");
    ck_assert_str_eq(sm_registry_source(reg, ref), "built-in");
    ck_assert_str_eq(sm_registry_plugin_version(reg, ref), "");
    ck_assert_uint_eq(sm_registry_plugin_count(reg), 0);
    for (int k = SM_KIND_BACKBONE; k < SM_KIND_COUNT; k++)
        ck_assert_uint_eq(sm_registry_count(reg, (sm_kind)k), 0);
    ck_assert_str_eq(sm_kind_name(SM_KIND_SCHEDULER), "scheduler");
    ck_assert_ptr_null(sm_kind_name(SM_KIND_COUNT));
    sm_registry_free(reg);
    sm_registry_free(NULL);
}
END_TEST

START_TEST(test_add_find_lookup)
{
    sm_registry *reg = sm_registry_new();
    sm_error e;
    sm_error_clear(&e);
    ck_assert_int_eq(sm_registry_add(reg, &opt_a, &e), 0);
    ck_assert_int_eq(sm_registry_add(reg, &opt_b, &e), 0);
    ck_assert_int_eq(e.code, 0);
    ck_assert_uint_eq(sm_registry_count(reg, SM_KIND_OPTIMIZER), 2);
    ck_assert_ptr_eq(sm_registry_get(reg, SM_KIND_OPTIMIZER, 0), &opt_a);
    ck_assert_ptr_eq(sm_registry_get(reg, SM_KIND_OPTIMIZER, 1), &opt_b);
    ck_assert_ptr_null(sm_registry_get(reg, SM_KIND_OPTIMIZER, 2));
    ck_assert_ptr_eq(sm_registry_find(reg, SM_KIND_OPTIMIZER, "Opt_B"), &opt_b);
    ck_assert_ptr_null(sm_registry_find(reg, SM_KIND_SCHEDULER, "opt_a"));
    char names[64];
    ck_assert_uint_eq(sm_registry_names(reg, SM_KIND_OPTIMIZER, names, sizeof names), 12);
    ck_assert_str_eq(names, "opt_a, opt_b");
    sm_registry_names(reg, SM_KIND_DATASET, names, sizeof names);
    ck_assert_str_eq(names, "none");
    ck_assert_ptr_null(sm_registry_lookup(reg, SM_KIND_OPTIMIZER, "adam", &e));
    ck_assert_int_eq(e.code, SM_ENOTFOUND);
    ck_assert_str_eq(e.text, "unknown optimizer 'adam' (available: opt_a, opt_b)");
    sm_error_clear(&e);
    ck_assert_ptr_eq(sm_registry_lookup(reg, SM_KIND_OPTIMIZER, "OPT_A", &e), &opt_a);
    ck_assert_int_eq(e.code, 0);
    /* the same name in another kind is fine; the same kind and name is not */
    ck_assert_int_eq(sm_registry_add(reg, &opt_a, &e), SM_EEXIST);
    ck_assert_str_eq(e.text, "optimizer 'opt_a' is registered twice: by built-in and by built-in");
    ck_assert_uint_eq(sm_registry_count(reg, SM_KIND_OPTIMIZER), 2);
    sm_registry_free(reg);
}
END_TEST

START_TEST(test_bad_headers)
{
    sm_error e;
    sm_component c = opt_a;
    c.name = "Bad-Name";
    ck_assert_int_eq(add_variant(c, &e), SM_EINVAL);
    ck_assert_str_eq(e.text, "optimizer component name 'Bad-Name' is invalid (use [a-z0-9_]+)");
    c = opt_a;
    c.name = NULL;
    ck_assert_int_eq(add_variant(c, &e), SM_EINVAL);
    c = opt_a;
    c.kind = SM_KIND_COUNT;
    ck_assert_int_eq(add_variant(c, &e), SM_EINVAL);
    ck_assert(strstr(e.text, "invalid kind 5") != NULL);
    c = opt_a;
    c.abi_major = SM_ABI_MAJOR + 1;
    ck_assert_int_eq(add_variant(c, &e), SM_EABI);
    ck_assert(strstr(e.text, "ABI major 2") != NULL);
    ck_assert(strstr(e.text, "ABI 1.2") != NULL);
    c = opt_a;
    c.kind = SM_KIND_BACKBONE; /* a bare header is smaller than a backbone vtable */
    ck_assert_int_eq(add_variant(c, &e), SM_EABI);
    ck_assert(strstr(e.text, "vtable, smaller than") != NULL);
    c = opt_a;
    c.description = NULL;
    ck_assert_int_eq(add_variant(c, &e), SM_EINVAL);
    ck_assert_str_eq(e.text, "optimizer 'opt_a' has no description");
    /* a built-in name again */
    sm_registry *reg = sm_registry_new();
    sm_error_clear(&e);
    ck_assert_int_eq(sm_registry_add(reg, &sm_backend_ref_vtbl()->hdr, &e), SM_EEXIST);
    ck_assert_uint_eq(sm_registry_count(reg, SM_KIND_BACKEND), 1);
    ck_assert_int_eq(sm_registry_add(reg, NULL, &e), SM_EINVAL);
    ck_assert_int_eq(e.code, SM_EEXIST); /* the first error is kept */
    sm_registry_free(reg);
}
END_TEST

/* One broken key table per row, with the reason the registry must give. */
static const sm_key bad_default[] = {{"steps", SM_KEY_INT, "abc", NULL, 0, ""}, {0}};
static const sm_key bad_range_default[] = {{"p", SM_KEY_FLOAT, "1.5", "[0,1]", 0, ""}, {0}};
static const sm_key bad_range[] = {{"p", SM_KEY_FLOAT, "0.5", "0..1", 0, ""}, {0}};
static const sm_key bad_choice_default[] = {{"m", SM_KEY_STRING, "x", "a|b", 0, ""}, {0}};
static const sm_key bad_name[] = {{"Beta", SM_KEY_FLOAT, "0.5", NULL, 0, ""}, {0}};
static const sm_key bad_type[] = {{"x", (sm_key_type)42, "1", NULL, 0, ""}, {0}};
static const sm_key twice[] = {{"x", SM_KEY_INT, "1", NULL, 0, ""},
                               {"x", SM_KEY_INT, "2", NULL, 0, ""}, {0}};
static const sm_key orphan[] = {{"a.b", SM_KEY_INT, "1", NULL, 0, ""}, {0}};
static const sm_key bool_range[] = {{"f", SM_KEY_BOOL, "true", "[0,1]", 0, ""}, {0}};
static const sm_key core_clash[] = {{"mask_ratio", SM_KEY_FLOAT, "0.5", NULL, 0, ""}, {0}};
static const sm_key selector_clash[] = {{"optim_name", SM_KEY_STRING, "x", NULL, 0, ""}, {0}};

static const struct {
    const sm_key *keys;
    sm_kind kind;
    const char *why;
} bad_tables[] = {
    {bad_default, SM_KIND_OPTIMIZER, "key 'steps': default 'abc': expected an integer, got 'abc'"},
    {bad_range_default, SM_KIND_OPTIMIZER,
     "key 'p': default '1.5': expected a number in [0,1], got 1.5"},
    {bad_range, SM_KIND_OPTIMIZER, "key 'p': range '0..1' is not an interval like [0,1)"},
    {bad_choice_default, SM_KIND_OPTIMIZER, "key 'm': default 'x': expected 'a' or 'b', got 'x'"},
    {bad_name, SM_KIND_OPTIMIZER, "key name 'Beta' is invalid (use [a-z0-9_], dots for nesting)"},
    {bad_type, SM_KIND_OPTIMIZER, "key 'x' has an invalid type 42"},
    {twice, SM_KIND_OPTIMIZER, "key 'x' is declared twice"},
    {orphan, SM_KIND_OPTIMIZER, "key 'a.b' needs a map entry 'a' declared before it"},
    {bool_range, SM_KIND_OPTIMIZER, "key 'f': a bool key takes no range"},
    {core_clash, SM_KIND_OPTIMIZER, NULL}, /* mask_ratio is a model key: fine for an optimizer */
    {selector_clash, SM_KIND_OPTIMIZER,
     "key 'optim_name' is already a core key of section 'optimizer'"},
};

START_TEST(test_bad_key_tables)
{
    sm_component c = opt_a;
    c.keys = bad_tables[_i].keys;
    c.kind = bad_tables[_i].kind;
    sm_error e;
    int rc = add_variant(c, &e);
    if (!bad_tables[_i].why) {
        ck_assert_int_eq(rc, 0);
        return;
    }
    ck_assert_int_eq(rc, SM_EINVAL);
    char want[400];
    snprintf(want, sizeof want, "optimizer 'opt_a': bad config key table: %s", bad_tables[_i].why);
    ck_assert_str_eq(e.text, want);
}
END_TEST

/* A component key may not shadow a core key of its sections: for a dataset, both dataset
 * sections count; for a backbone, `model`. */
START_TEST(test_core_key_clash_by_kind)
{
    static sm_backbone_vtbl bb;
    static sm_dataset_vtbl ds;
    static const sm_key clash_model[] = {{"mask_ratio", SM_KEY_FLOAT, "0.5", NULL, 0, ""}, {0}};
    static const sm_key clash_data[] = {{"hflip", SM_KEY_FLOAT, "0.5", NULL, 0, ""}, {0}};
    bb.hdr = (sm_component)SM_COMPONENT_INIT(sm_backbone_vtbl, SM_KIND_BACKBONE, "bb", "b",
                                             clash_model, NULL);
    ds.hdr = (sm_component)SM_COMPONENT_INIT(sm_dataset_vtbl, SM_KIND_DATASET, "ds", "d",
                                             clash_data, NULL);
    sm_registry *reg = sm_registry_new();
    sm_error e;
    sm_error_clear(&e);
    ck_assert_int_eq(sm_registry_add(reg, &bb.hdr, &e), SM_EINVAL);
    ck_assert_str_eq(e.text, "backbone 'bb': bad config key table: key 'mask_ratio' is already a "
                             "core key of section 'model'");
    sm_error_clear(&e);
    ck_assert_int_eq(sm_registry_add(reg, &ds.hdr, &e), SM_EINVAL);
    ck_assert_str_eq(e.text, "dataset 'ds': bad config key table: key 'hflip' is already a core "
                             "key of section 'finetune_dataset'");
    ck_assert_uint_eq(sm_registry_count(reg, SM_KIND_BACKBONE), 0);
    ck_assert_uint_eq(sm_registry_count(reg, SM_KIND_DATASET), 0);
    sm_registry_free(reg);
}
END_TEST

static Suite *registry_suite(void)
{
    Suite *s = suite_create("registry");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_builtins);
    tcase_add_test(tc, test_add_find_lookup);
    suite_add_tcase(s, tc);
    TCase *te = tcase_create("errors");
    tcase_add_test(te, test_bad_headers);
    tcase_add_loop_test(te, test_bad_key_tables, 0,
                        (int)(sizeof bad_tables / sizeof bad_tables[0]));
    tcase_add_test(te, test_core_key_clash_by_kind);
    suite_add_tcase(s, te);
    return s;
}

int main(void) { return sm_test_run(registry_suite()); }
