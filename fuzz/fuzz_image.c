/* fuzz/fuzz_image.c - libFuzzer target: header probe and full decode of any bytes (JPEG, PNG,
 * TIFF, or nothing known), with a 1-megapixel cap as the decoders' own fuzzers use. */
#include <simmim/simmim.h>
#include <simmim/image.h>

#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sm_decode_opts o = {1 << 20, 100};
    sm_image_info info;
    sm_error e;
    sm_error_clear(&e);
    sm_image_probe(data, size, "fuzz", &o, &info, &e);
    sm_image im;
    sm_image_init(&im);
    sm_error_clear(&e);
    if (sm_image_decode(data, size, "fuzz", &o, &im, &info, &e) == 0)
        sm_image_convert(&im, 3, NULL, 0, "fuzz", &e);
    sm_image_deinit(&im);
    return 0;
}
