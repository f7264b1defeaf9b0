/* fuzz/fuzz_aircas_list.c - libFuzzer target: any bytes as the `image_ids` list of the aircas
 * reader (RingMo's JSON list of image paths, or a text list with optional labels; the reader
 * decides by the first non-blank byte), opened and walked. */
#include "fuzzutil.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_write("ids", data, size);
    char yaml[256];
    snprintf(yaml, sizeof yaml, "{data_path: '%s', image_ids: ids}", fz_dir());
    fz_open("aircas", yaml, SM_SPLIT_TRAIN);
    return 0;
}
