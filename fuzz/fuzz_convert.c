/* fuzz/fuzz_convert.c - libFuzzer target: the foreign-checkpoint readers (sm_ckpt_open: zip,
 * restricted pickle machine, torch tensors, legacy streams, MindSpore protobuf, RingMo mapping).
 * The first byte chooses how the rest becomes a file:
 *   0: the file itself (any format: zip, legacy stream, .ckpt, garbage);
 *   1: the data.pkl of a zip archive built here around it, with four 64-byte storages
 *      "archive/data/0".."3" (so mutations reach the pickle machine past the CRC check);
 *   2: a legacy stream: the magic, protocol and sys_info pickles, then the rest (the object
 *      pickle, the storage key list, the storages).
 * Every tensor read is walked so ASan sees its bytes. Seeds: fuzz/corpus/convert (written by
 * tools/make_convert_fixtures.py). Nothing may crash, leak or hang. */
#include <simmim/simmim.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint32_t crc32_of(const uint8_t *p, size_t n)
{
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
    }
    return ~c;
}

static void put16(FILE *f, unsigned v) { fputc(v & 0xFF, f), fputc((v >> 8) & 0xFF, f); }
static void put32(FILE *f, uint32_t v) { put16(f, v & 0xFFFF), put16(f, v >> 16); }

/* A stored zip of n entries. */
static void write_zip(FILE *f, const char *const *names, const uint8_t *const *bytes,
                      const size_t *lens, int n)
{
    long off[8];
    for (int i = 0; i < n; i++) {
        off[i] = ftell(f);
        put32(f, 0x04034b50u), put16(f, 20), put16(f, 0), put16(f, 0), put32(f, 0);
        put32(f, crc32_of(bytes[i], lens[i])), put32(f, (uint32_t)lens[i]);
        put32(f, (uint32_t)lens[i]), put16(f, (unsigned)strlen(names[i])), put16(f, 0);
        fputs(names[i], f);
        fwrite(bytes[i], 1, lens[i], f);
    }
    long cd = ftell(f);
    for (int i = 0; i < n; i++) {
        put32(f, 0x02014b50u), put16(f, 20), put16(f, 20), put16(f, 0), put16(f, 0);
        put32(f, 0), put32(f, crc32_of(bytes[i], lens[i])), put32(f, (uint32_t)lens[i]);
        put32(f, (uint32_t)lens[i]), put16(f, (unsigned)strlen(names[i])), put16(f, 0);
        put16(f, 0), put16(f, 0), put16(f, 0), put32(f, 0), put32(f, (uint32_t)off[i]);
        fputs(names[i], f);
    }
    long end = ftell(f);
    put32(f, 0x06054b50u), put16(f, 0), put16(f, 0), put16(f, (unsigned)n), put16(f, (unsigned)n);
    put32(f, (uint32_t)(end - cd)), put32(f, (uint32_t)cd), put16(f, 0);
}

/* magic number, protocol 1001, sys_info {'protocol_version': 1001, 'little_endian': True,
 * 'type_sizes': {}} */
static const uint8_t legacy_head[] =
    "\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.\x80\x02M\xe9\x03."
    "\x80\x02}(X\x10\x00\x00\x00protocol_versionM\xe9\x03X\x0d\x00\x00\x00little_endian\x88"
    "X\x0a\x00\x00\x00type_sizes}u.";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char path[64];
    if (!path[0]) snprintf(path, sizeof path, "/tmp/sm-fuzz-convert-%ld.bin", (long)getpid());
    if (size < 1) return 0;
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    const uint8_t *rest = data + 1;
    size_t n = size - 1;
    if (data[0] % 3 == 1) {
        static uint8_t storage[64];
        for (int i = 0; i < 64; i++) storage[i] = (uint8_t)(i * 37 + 11);
        const char *names[] = {"archive/data.pkl", "archive/data/0", "archive/data/1",
                               "archive/data/2", "archive/data/3"};
        const uint8_t *bytes[] = {rest, storage, storage, storage, storage};
        size_t lens[] = {n, 64, 64, 64, 64};
        write_zip(f, names, bytes, lens, 5);
    } else {
        if (data[0] % 3 == 2) fwrite(legacy_head, 1, sizeof legacy_head - 1, f);
        fwrite(rest, 1, n, f);
    }
    fclose(f);
    sm_ckpt *c = NULL;
    sm_error e;
    sm_error_clear(&e);
    sm_ckpt_opts opts = {.prefix = NULL, .keep_names = (data[0] & 4) != 0};
    if (sm_ckpt_open(path, &opts, &c, &e) == 0) {
        unsigned acc = 0;
        for (size_t i = 0; i < sm_ckpt_count(c); i++) {
            const sm_ckpt_tensor *t = sm_ckpt_at(c, i);
            size_t bytes = (size_t)t->numel * sm_dtype_size(t->dtype);
            for (size_t k = 0; k < bytes; k++) acc += ((const uint8_t *)t->data)[k];
            acc += (unsigned)strlen(t->name) + (unsigned)strlen(t->source);
        }
        for (size_t i = 0; i < sm_ckpt_ignored_count(c); i++)
            acc += (unsigned)strlen(sm_ckpt_ignored(c, i));
        if (acc == 0x7FFFFFFFu) fprintf(stderr, "%u\n", acc); /* keep the loop */
        sm_ckpt_free(c);
    }
    return 0;
}
