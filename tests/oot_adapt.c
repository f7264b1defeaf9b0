/* tests/oot_adapt.c - built by check_oot_backbone.sh against the INSTALLED library: loads the
 * out-of-tree toy backbone, writes a checkpoint that names the MLP's weights by the toy's old
 * names ("fc1.weight", ...), and checks that fine-tuning loads them through the backbone's
 * adapt_weight slot (plugin ABI 1.1) with their values, and that the core reports them.
 * usage: oot_adapt PLUGIN_DIR CONFIG CHECKPOINT_TO_WRITE */
#include <simmim/simmim.h>

#include <stdio.h>
#include <string.h>

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "FAIL: " __VA_ARGS__);                                                 \
            fputc('\n', stderr);                                                                   \
            return 1;                                                                              \
        }                                                                                          \
    } while (0)

int main(int argc, char **argv)
{
    CHECK(argc == 4, "usage: oot_adapt PLUGIN_DIR CONFIG CHECKPOINT");
    sm_error err;
    sm_error_clear(&err);
    sm_registry *reg = sm_registry_new();
    sm_diag *d = sm_diag_new();
    sm_config *cfg = NULL;
    CHECK(reg && d && sm_plugin_load_dir(reg, argv[1], d) == 0, "cannot load %s", argv[1]);
    CHECK(sm_config_read(argv[2], NULL, 0, &cfg, d) == 0 && sm_config_validate_model(cfg, reg, d) == 0,
          "bad config %s", argv[2]);
    sm_model *m = NULL;
    CHECK(sm_model_new_classes(reg, sm_config_root(cfg), SM_TASK_CLASSIFY, 3, &m, &err) == 0,
          "model: %s", err.text);
    sm_params *p = sm_model_params(m);
    /* the checkpoint: every parameter under its name, except the MLP's under the old names */
    sm_st_writer *w = sm_st_writer_new();
    for (size_t i = 0; i < sm_params_count(p); i++) {
        sm_tensor *t = sm_params_at(p, i);
        for (int64_t k = 0; k < sm_tensor_numel(t); k++) t->data[k] = (float)(i + 1) + 0.001f * k;
        const char *name = strncmp(t->name, "mlp.", 4) == 0 ? t->name + 4 : t->name;
        CHECK(sm_st_writer_add(w, name, SM_DTYPE_F32, t->ndim, t->shape, t->data, &err) == 0,
              "writer: %s", err.text);
    }
    CHECK(sm_st_writer_write(w, argv[3], &err) == 0, "write: %s", err.text);
    sm_st_writer_free(w);
    /* forget the values, then load */
    for (size_t i = 0; i < sm_params_count(p); i++)
        memset(sm_params_at(p, i)->data, 0, (size_t)sm_tensor_numel(sm_params_at(p, i)) * 4);
    char note[1024];
    CHECK(sm_model_load_weights(m, argv[3], note, sizeof note, &err) == 0, "load: %s", err.text);
    printf("%s\n", note);
    CHECK(strstr(note, "4 copied from a shared tensor") != NULL, "the toy adapted no weights: %s",
          note);
    for (size_t i = 0; i < sm_params_count(p); i++) {
        sm_tensor *t = sm_params_at(p, i);
        for (int64_t k = 0; k < sm_tensor_numel(t); k++)
            CHECK(t->data[k] == (float)(i + 1) + 0.001f * k, "%s[%lld] = %g after loading",
                  t->name, (long long)k, t->data[k]);
    }
    sm_model_free(m);
    sm_config_free(cfg);
    sm_diag_free(d);
    sm_registry_free(reg);
    printf("PASS: the toy's adapt_weight filled its MLP from the old names\n");
    return 0;
}
