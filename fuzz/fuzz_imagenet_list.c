/* fuzz/fuzz_imagenet_list.c - libFuzzer target: any bytes as the `eval_list` of the imagenet
 * reader ("relative/path label" lines, Caffe's val.txt), read with the classes taken from a
 * train_path of three class folders, or (first byte odd) with the labels as the classes. */
#include "fuzzutil.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready) {
        static const char *const dirs[] = {"train", "train/n01", "train/n02", "train/n03", "val"};
        for (size_t i = 0; i < sizeof dirs / sizeof *dirs; i++) fz_mkdir(dirs[i]);
        ready = 1;
    }
    fz_write("val.txt", data, size);
    char yaml[512];
    bool classes = size == 0 || !(data[0] & 1);
    snprintf(yaml, sizeof yaml, "{%s%s%s eval_path: '%s/val', eval_list: '%s/val.txt'}",
             classes ? "train_path: '" : "", classes ? fz_dir() : "", classes ? "/train'," : "",
             fz_dir(), fz_dir());
    fz_open("imagenet", yaml, SM_SPLIT_EVAL);
    return 0;
}
