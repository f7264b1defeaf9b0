/* fuzz/fuzz_config.c - libFuzzer target: a YAML config through both phases (read + merge, then
 * validation against the core schema with no plugins), the effective YAML emitted back, and
 * the first half of the input used as a --options string. Nothing may crash, leak or hang. */
#include <simmim/simmim.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sm_diag *d = sm_diag_new();
    sm_config *cfg = NULL;
    char opt[128];
    size_t k = size < sizeof opt - 1 ? size : sizeof opt - 1;
    memcpy(opt, data, k);
    opt[k] = '\0';
    const char *opts[1] = {opt};
    bool with_opt = strchr(opt, '=') != NULL;
    if (sm_config_read_string((const char *)data, size, "fuzz.yaml", with_opt ? opts : NULL,
                              with_opt ? 1 : 0, &cfg, d) == 0) {
        sm_config_validate(cfg, NULL, d);
        char *y = NULL;
        size_t n = 0;
        if (sm_config_to_yaml(cfg, &y, &n) == 0) free(y);
        sm_config_free(cfg);
    }
    sm_diag_free(d);
    return 0;
}
