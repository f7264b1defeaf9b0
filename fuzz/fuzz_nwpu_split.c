/* fuzz/fuzz_nwpu_split.c - libFuzzer target: any bytes as the `split_file` of the nwpu_resisc45
 * reader (a header naming train_ratio and split_seed, then "train|eval<TAB>class/file" lines),
 * read against a data_path of two class folders, for both splits. The reader only reads an
 * existing split file, so nothing is ever written over the input. */
#include "fuzzutil.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready) {
        static const char *const dirs[] = {"nwpu", "nwpu/airport", "nwpu/beach"};
        for (size_t i = 0; i < sizeof dirs / sizeof *dirs; i++) fz_mkdir(dirs[i]);
        static const char *const files[] = {"nwpu/airport/airport_001.jpg",
                                            "nwpu/airport/airport_002.jpg",
                                            "nwpu/beach/beach_001.jpg"};
        for (size_t i = 0; i < sizeof files / sizeof *files; i++) fz_write(files[i], "x", 1);
        ready = 1;
    }
    fz_write("split.txt", data, size);
    char yaml[512];
    snprintf(yaml, sizeof yaml,
             "{data_path: '%s/nwpu', split_file: '%s/split.txt', train_ratio: 0.2, "
             "split_seed: 0}",
             fz_dir(), fz_dir());
    fz_open("nwpu_resisc45", yaml, SM_SPLIT_TRAIN);
    fz_open("nwpu_resisc45", yaml, SM_SPLIT_EVAL);
    return 0;
}
