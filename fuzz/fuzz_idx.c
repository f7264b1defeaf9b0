/* fuzz/fuzz_idx.c - libFuzzer target: the IDX (MNIST) reader. The input holds both files: its
 * first two bytes (little-endian) give the length of the label file that follows, the rest is
 * the image file. Bit 0x8000 of that length stores the image file as "...-ubyte.gz" instead,
 * so the gzip path reads the same bytes (raw bytes then fail as gzip, a valid gzip stream found
 * by the fuzzer goes through). Both splits share the files. */
#include "fuzzutil.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready) {
        fz_mkdir("idx");
        ready = 1;
    }
    if (size < 2) return 0;
    size_t head = (size_t)data[0] | (size_t)data[1] << 8, nl = head & 0x7fff;
    bool gz = head & 0x8000;
    data += 2;
    size -= 2;
    if (nl > size) nl = size;
    char p[128];
    unlink(fz_path(gz ? "idx/fz-images-idx3-ubyte" : "idx/fz-images-idx3-ubyte.gz", p, sizeof p));
    fz_write("idx/fz-labels-idx1-ubyte", data, nl);
    fz_write(gz ? "idx/fz-images-idx3-ubyte.gz" : "idx/fz-images-idx3-ubyte", data + nl, size - nl);
    char yaml[256];
    snprintf(yaml, sizeof yaml,
             "{data_path: '%s/idx', train_prefix: fz, eval_prefix: fz, class_names: [a, b, c]}",
             fz_dir());
    fz_open("idx", yaml, SM_SPLIT_TRAIN);
    return 0;
}
