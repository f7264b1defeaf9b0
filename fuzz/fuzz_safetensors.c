/* fuzz/fuzz_safetensors.c - libFuzzer target: any bytes as a safetensors file (written to a
 * temporary file: the reader takes a path), opened, every tensor's statistics read. */
#include <simmim/simmim.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char path[64];
    if (!path[0]) snprintf(path, sizeof path, "/tmp/sm-fuzz-st-%ld.safetensors", (long)getpid());
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    fwrite(data, 1, size, f);
    fclose(f);
    sm_st_file *st = NULL;
    sm_error e;
    sm_error_clear(&e);
    if (sm_st_open(path, &st, &e) == 0) {
        for (size_t i = 0; i < sm_st_count(st); i++) {
            sm_st_stats s;
            sm_error_clear(&e);
            sm_st_read_stats(st, sm_st_at(st, i)->name, &s, &e);
        }
        for (size_t i = 0; i < sm_st_meta_count(st); i++) (void)sm_st_meta_value(st, i);
        sm_st_close(st);
    }
    return 0;
}
