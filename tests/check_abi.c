/* tests/check_abi.c - the plugin ABI's layout, pinned (GStreamer's libs/abi test): the size of
 * every descriptor and vtable a plugin compiles against, and the offset of every member, on
 * x86-64 Linux (LP64). A change to any of them breaks plugins built against an older header:
 * if it is meant, bump SM_ABI_MAJOR (incompatible) or append the slot and bump SM_ABI_MINOR
 * (include/simmim/registry.h, docs/plugin-abi.md), then update the pinned numbers below and
 * SM__PINNED_ABI together. */
#include "testutil.h"

#include <string.h>

#include <stddef.h>

/* The ABI these numbers describe. */
#define SM__PINNED_MAJOR 1
#define SM__PINNED_MINOR 2

typedef struct abi_row {
    const char *type, *member; /* member NULL: the size of the type */
    size_t actual, pinned;
} abi_row;

#define SZ(T, n) {#T, NULL, sizeof(T), n}
#define OF(T, m, n) {#T, #m, offsetof(T, m), n}

static const abi_row rows[] = {
    SZ(sm_component, 72),
    OF(sm_component, abi_major, 0),
    OF(sm_component, struct_size, 4),
    OF(sm_component, kind, 8),
    OF(sm_component, name, 16),
    OF(sm_component, description, 24),
    OF(sm_component, keys, 32),
    OF(sm_component, validate, 40),
    OF(sm_component, reserved, 48),
    SZ(sm_plugin_desc, 80),
    OF(sm_plugin_desc, abi_major, 0),
    OF(sm_plugin_desc, abi_minor, 2),
    OF(sm_plugin_desc, struct_size, 4),
    OF(sm_plugin_desc, name, 8),
    OF(sm_plugin_desc, version, 16),
    OF(sm_plugin_desc, description, 24),
    OF(sm_plugin_desc, license, 32),
    OF(sm_plugin_desc, register_components, 40),
    OF(sm_plugin_desc, reserved, 48),
    SZ(sm_key, 48),
    OF(sm_key, name, 0),
    OF(sm_key, type, 8),
    OF(sm_key, def, 16),
    OF(sm_key, range, 24),
    OF(sm_key, flags, 32),
    OF(sm_key, doc, 40),
    SZ(sm_error, 1420),
    OF(sm_error, code, 0),
    OF(sm_error, line, 4),
    OF(sm_error, column, 8),
    OF(sm_error, file, 12),
    OF(sm_error, path, 268),
    OF(sm_error, text, 396),
    SZ(sm_tensor, 152),
    OF(sm_tensor, ndim, 0),
    OF(sm_tensor, flags, 4),
    OF(sm_tensor, shape, 8),
    OF(sm_tensor, stride, 56),
    OF(sm_tensor, data, 104),
    OF(sm_tensor, grad, 112),
    OF(sm_tensor, base, 120),
    OF(sm_tensor, offset, 128),
    OF(sm_tensor, name, 136),
    OF(sm_tensor, node, 144),
    SZ(sm_backbone_opts, 32),
    OF(sm_backbone_opts, task, 0),
    OF(sm_backbone_opts, img_h, 8),
    OF(sm_backbone_opts, img_w, 16),
    OF(sm_backbone_opts, prefix, 24),
    SZ(sm_backbone_info, 24),
    OF(sm_backbone_info, in_chans, 0),
    OF(sm_backbone_info, patch_size, 4),
    OF(sm_backbone_info, encoder_stride, 8),
    OF(sm_backbone_info, num_features, 12),
    OF(sm_backbone_info, num_layers, 16),
    OF(sm_backbone_info, num_blocks, 20),
    SZ(sm_buffer, 56),
    OF(sm_buffer, name, 0),
    OF(sm_buffer, dtype, 8),
    OF(sm_buffer, ndim, 12),
    OF(sm_buffer, shape, 16),
    OF(sm_buffer, data, 48),
    SZ(sm_backbone_vtbl, 168),
    OF(sm_backbone_vtbl, hdr, 0),
    OF(sm_backbone_vtbl, create, 72),
    OF(sm_backbone_vtbl, destroy, 80),
    OF(sm_backbone_vtbl, info, 88),
    OF(sm_backbone_vtbl, init, 96),
    OF(sm_backbone_vtbl, forward, 104),
    OF(sm_backbone_vtbl, layer_id, 112),
    OF(sm_backbone_vtbl, no_weight_decay, 120),
    OF(sm_backbone_vtbl, buffer_count, 128),
    OF(sm_backbone_vtbl, buffer_get, 136),
    OF(sm_backbone_vtbl, init_head, 144),
    OF(sm_backbone_vtbl, adapt_weight, 152),
    OF(sm_backbone_vtbl, forward_features, 160),
    SZ(sm_backend_vtbl, 128),
    OF(sm_backend_vtbl, hdr, 0),
    OF(sm_backend_vtbl, create, 72),
    OF(sm_backend_vtbl, destroy, 80),
    OF(sm_backend_vtbl, sgemm, 88),
    OF(sm_backend_vtbl, sgemm_batched, 96),
    OF(sm_backend_vtbl, describe, 104),
    OF(sm_backend_vtbl, set_precision, 112),
    OF(sm_backend_vtbl, sgemm_bias, 120),
    SZ(sm_dataset_vtbl, 120),
    OF(sm_dataset_vtbl, hdr, 0),
    OF(sm_dataset_vtbl, open, 72),
    OF(sm_dataset_vtbl, close, 80),
    OF(sm_dataset_vtbl, count, 88),
    OF(sm_dataset_vtbl, num_classes, 96),
    OF(sm_dataset_vtbl, class_name, 104),
    OF(sm_dataset_vtbl, get, 112),
    SZ(sm_dataset_opts, 24),
    OF(sm_dataset_opts, split, 0),
    OF(sm_dataset_opts, seed, 8),
    OF(sm_dataset_opts, out_dir, 16),
    SZ(sm_sample, 40),
    OF(sm_sample, path, 0),
    OF(sm_sample, pixels, 8),
    OF(sm_sample, width, 16),
    OF(sm_sample, height, 20),
    OF(sm_sample, channels, 24),
    OF(sm_sample, label, 28),
    OF(sm_sample, name, 32),
    SZ(sm_optimizer_vtbl, 112),
    OF(sm_optimizer_vtbl, hdr, 0),
    OF(sm_optimizer_vtbl, create, 72),
    OF(sm_optimizer_vtbl, destroy, 80),
    OF(sm_optimizer_vtbl, step, 88),
    OF(sm_optimizer_vtbl, state_count, 96),
    OF(sm_optimizer_vtbl, state_name, 104),
    SZ(sm_scheduler_vtbl, 104),
    OF(sm_scheduler_vtbl, hdr, 0),
    OF(sm_scheduler_vtbl, create, 72),
    OF(sm_scheduler_vtbl, destroy, 80),
    OF(sm_scheduler_vtbl, lr, 88),
    OF(sm_scheduler_vtbl, lr_peak, 96),
    SZ(sm_schedule_opts, 16),
    OF(sm_schedule_opts, steps_per_epoch, 0),
    OF(sm_schedule_opts, epochs, 8),
    SZ(sm_rng, 48),
    OF(sm_rng, s, 0),
    OF(sm_rng, spare, 32),
    OF(sm_rng, has_spare, 40),
    SZ(sm_st_info, 104),
    OF(sm_st_info, name, 0),
    OF(sm_st_info, dtype, 8),
    OF(sm_st_info, ndim, 12),
    OF(sm_st_info, shape, 16),
    OF(sm_st_info, numel, 80),
    OF(sm_st_info, begin, 88),
    OF(sm_st_info, end, 96),
};

START_TEST(test_abi_version)
{
    /* the pinned layout is that of this ABI: a layout change goes with a version change */
    ck_assert_int_eq(SM_ABI_MAJOR, SM__PINNED_MAJOR);
    ck_assert_int_eq(SM_ABI_MINOR, SM__PINNED_MINOR);
}
END_TEST

START_TEST(test_abi_layout)
{
#if !defined(__x86_64__) || !defined(__LP64__)
    return; /* the numbers are those of x86-64 Linux */
#endif
    int bad = 0;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        if (rows[i].actual == rows[i].pinned) continue;
        fprintf(stderr, "ABI changed: %s%s%s is %s %zu, pinned %zu\n", rows[i].type,
                rows[i].member ? "." : "", rows[i].member ? rows[i].member : "",
                rows[i].member ? "at offset" : "of size", rows[i].actual, rows[i].pinned);
        bad++;
    }
    ck_assert_msg(bad == 0, "%d ABI layout changes (see above and the comment at the top)", bad);
}
END_TEST

/* ABI 1.1 appended adapt_weight and forward_features to the backbone vtable (and set_precision
 * to the backend's): the 1.0 part is unchanged, so a 1.0 plugin's shorter vtable still loads,
 * and SM_HAS_SLOT tells the slots are absent. */
START_TEST(test_abi_minor_slots)
{
    sm_backbone_vtbl vt;
    memset(&vt, 0, sizeof vt);
    vt.hdr.struct_size = (uint32_t)offsetof(sm_backbone_vtbl, adapt_weight);
    ck_assert(!SM_HAS_SLOT(&vt, sm_backbone_vtbl, adapt_weight));
    ck_assert(!SM_HAS_SLOT(&vt, sm_backbone_vtbl, forward_features));
    ck_assert(SM_HAS_SLOT(&vt, sm_backbone_vtbl, init_head));
    vt.hdr.struct_size = (uint32_t)offsetof(sm_backbone_vtbl, forward_features);
    ck_assert(SM_HAS_SLOT(&vt, sm_backbone_vtbl, adapt_weight));
    ck_assert(!SM_HAS_SLOT(&vt, sm_backbone_vtbl, forward_features));
    vt.hdr.struct_size = sizeof vt;
    ck_assert(SM_HAS_SLOT(&vt, sm_backbone_vtbl, forward_features));
}
END_TEST

static Suite *abi_suite(void)
{
    Suite *s = suite_create("abi");
    TCase *tc = tcase_create("layout");
    tcase_add_test(tc, test_abi_version);
    tcase_add_test(tc, test_abi_layout);
    tcase_add_test(tc, test_abi_minor_slots);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return sm_test_run(abi_suite()); }
