/* tests/datafx/fx_model_stubs.c - stand-ins for the non-data components a config names (backbone
 * vit, optimizer adamw, schedule warmup_cosine_decay, backend blis), so that `simmimctl data`
 * can validate a whole config in tests/check_cmd_data.c together with the real dataset readers.
 * Loaded only with --no-plugins --plugin-dir, never from the search path. */
#include <simmim/simmim.h>

static const sm_key fx_vit_keys[] = {
    {"patch_size", SM_KEY_INT, "16", "[1,)", 0, "patch size"},
    {"in_chans", SM_KEY_INT, "3", "[1,)", 0, "input channels"},
    {0},
};

static const sm_backbone_vtbl fx_vit = {
    .hdr = SM_COMPONENT_INIT(sm_backbone_vtbl, SM_KIND_BACKBONE, "vit", "stand-in", fx_vit_keys,
                             NULL)};

static int fx_create(const sm_cfg *section, int threads, void **self, sm_error *err)
{
    (void)section;
    (void)threads;
    (void)self;
    return sm_error_set(err, SM_EUNSUPPORTED, NULL, 0, 0, NULL, "stand-in backend");
}

static void fx_destroy(void *self) { (void)self; }

static const sm_backend_vtbl fx_blis = {
    .hdr = SM_COMPONENT_INIT(sm_backend_vtbl, SM_KIND_BACKEND, "blis", "stand-in", NULL, NULL),
    .create = fx_create,
    .destroy = fx_destroy,
};
static const sm_component fx_adamw =
    SM_COMPONENT_INIT(sm_component, SM_KIND_OPTIMIZER, "adamw", "stand-in", NULL, NULL);
static const sm_component fx_cosine = SM_COMPONENT_INIT(
    sm_component, SM_KIND_SCHEDULER, "warmup_cosine_decay", "stand-in", NULL, NULL);

static int fx_register(sm_registry *reg, sm_error *err)
{
    const sm_component *all[] = {&fx_vit.hdr, &fx_blis.hdr, &fx_adamw, &fx_cosine};
    int rc = 0;
    for (size_t i = 0; !rc && i < sizeof all / sizeof all[0]; i++) rc = sm_registry_add(reg, all[i], err);
    return rc;
}

SM_PLUGIN_DEFINE(fx_model_stubs, "0.0.1", "fixture: stand-ins for the model components", "MIT",
                 fx_register)
