/* fuzz/fuzz_options.c - libFuzzer target: the `--options key.path=value` overrides (what
 * simmimctl passes for --options and --opts): each input line is one override, applied to a
 * small valid config, then validated against the core schema and emitted back as YAML. */
#include <simmim/simmim.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char base[] = "model: {backbone: vit, image_size: 32}\n"
                           "train_config: {epoch: 2, batch_size: 4}\n"
                           "optimizer: {optim_name: adamw, learning_rate: 0.001}\n"
                           "pretrain_dataset: {data_path: data, image_ids: null}\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096) return 0;
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    const char *opts[16];
    size_t n = 0;
    for (char *line = text, *nl; line && n < 16; line = nl ? nl + 1 : NULL) {
        nl = strchr(line, '\n');
        if (nl) *nl = '\0';
        opts[n++] = line; /* empty and '='-less lines too: they must be refused cleanly */
    }
    sm_diag *d = sm_diag_new();
    sm_config *cfg = NULL;
    if (sm_config_read_string(base, sizeof base - 1, "fuzz.yaml", opts, n, &cfg, d) == 0) {
        sm_config_validate(cfg, NULL, d);
        char *y = NULL;
        size_t len = 0;
        if (sm_config_to_yaml(cfg, &y, &len) == 0) free(y);
        sm_config_free(cfg);
    }
    char line[SM_ERROR_LINE_MAX];
    for (size_t i = 0; i < sm_diag_count(d); i++)
        sm_error_format(sm_diag_get(d, i, NULL), line, sizeof line);
    sm_diag_free(d);
    free(text);
    return 0;
}
