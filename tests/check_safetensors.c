/* tests/check_safetensors.c - safetensors reading, writing, conversions, and a corpus of hostile
 * files (written by the test itself) that must each be refused with their own message. */
#include "testutil.h"

#include <dirent.h>
#include <math.h>
#include <sys/wait.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *tmpdir;

static void setup(void) { tmpdir = sm_test_tmpdir(); }
static void teardown(void)
{
    sm_test_rmtree(tmpdir);
    free(tmpdir);
    tmpdir = NULL;
}

static const char *tpath(const char *name)
{
    static char buf[4][4096];
    static int slot;
    char *b = buf[slot++ % 4];
    snprintf(b, 4096, "%s/%s", tmpdir, name);
    return b;
}

/* Writes len8 (the declared header length) + header + `data` bytes (value 0x11). */
static void write_raw(const char *path, uint64_t len8, const char *header, size_t hlen,
                      size_t data)
{
    size_t total = 8 + hlen + data;
    unsigned char *buf = malloc(total + 1);
    ck_assert_ptr_nonnull(buf);
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)(len8 >> (8 * i));
    memcpy(buf + 8, header, hlen);
    memset(buf + 8 + hlen, 0x11, data);
    ck_assert_int_eq(sm_test_write_file(path, buf, total), 0);
    free(buf);
}

/* A well-formed file from a header string and the data size it needs. */
static void write_st(const char *path, const char *header, size_t data)
{
    write_raw(path, strlen(header), header, strlen(header), data);
}

static int count_files(const char *dir)
{
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

/* ---- round trip ------------------------------------------------------------------------ */

START_TEST(test_roundtrip)
{
    const char *p = tpath("a.safetensors");
    float w[6] = {1, -2, 3.5f, 1e-30f, -0.0f, 65504};
    double d[2] = {M_PI, -1e300};
    int64_t idx[3] = {0, -5, INT64_MAX};
    float scalar = 0.25f;
    sm_error err = {0};
    sm_st_writer *wr = sm_st_writer_new();
    ck_assert_ptr_nonnull(wr);
    ck_assert_int_eq(sm_st_writer_add(wr, "z.weight", SM_DTYPE_F32, 2, SM_SHAPE(2, 3), w, &err),
                     0);
    ck_assert_int_eq(sm_st_writer_add(wr, "a.f64", SM_DTYPE_F64, 1, SM_SHAPE(2), d, &err), 0);
    ck_assert_int_eq(sm_st_writer_add(wr, "b.index", SM_DTYPE_I64, 1, SM_SHAPE(3), idx, &err), 0);
    ck_assert_int_eq(sm_st_writer_add(wr, "loss", SM_DTYPE_F32, 0, NULL, &scalar, &err), 0);
    ck_assert_int_eq(sm_st_writer_add(wr, "empty", SM_DTYPE_F32, 2, SM_SHAPE(0, 4), NULL, &err),
                     0);
    ck_assert_int_eq(sm_st_writer_add(wr, "loss", SM_DTYPE_F32, 0, NULL, &scalar, &err),
                     SM_EEXIST);
    sm_error_clear(&err);
    ck_assert_int_eq(sm_st_writer_meta(wr, "format", "simmim-test-1", &err), 0);
    ck_assert_int_eq(sm_st_writer_meta(wr, "note", "first", &err), 0);
    ck_assert_int_eq(sm_st_writer_meta(wr, "note", "ünïcode ✓", &err), 0); /* replaces */
    ck_assert_int_eq(sm_st_writer_write(wr, p, &err), 0);
    sm_st_writer_free(wr);
    ck_assert_int_eq(count_files(tmpdir), 1); /* no temp file left */

    /* layout: header padded so data starts 8-byte aligned */
    size_t flen;
    char *raw = sm_test_read_file(p, &flen);
    ck_assert_ptr_nonnull(raw);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = (n << 8) | (unsigned char)raw[i];
    ck_assert_uint_eq((8 + n) % 8, 0);
    ck_assert_uint_eq(flen, 8 + n + sizeof d + sizeof idx + sizeof w + sizeof scalar);
    free(raw);

    sm_st_file *f = NULL;
    ck_assert_int_eq(sm_st_open(p, &f, &err), 0);
    ck_assert_uint_eq(sm_st_count(f), 5);
    /* data order: 8-byte elements first, then by name */
    const char *order[] = {"a.f64", "b.index", "empty", "loss", "z.weight"};
    for (size_t i = 0; i < 5; i++) ck_assert_str_eq(sm_st_at(f, i)->name, order[i]);
    const sm_st_info *t = sm_st_find(f, "z.weight");
    ck_assert_int_eq(t->dtype, SM_DTYPE_F32);
    ck_assert_int_eq(t->ndim, 2);
    ck_assert_int_eq(t->shape[0], 2);
    ck_assert_int_eq(t->shape[1], 3);
    ck_assert_int_eq(t->numel, 6);
    ck_assert_int_eq(sm_st_find(f, "loss")->ndim, 0);
    ck_assert_int_eq(sm_st_find(f, "loss")->numel, 1);
    ck_assert_int_eq(sm_st_find(f, "empty")->numel, 0);
    ck_assert_ptr_null(sm_st_find(f, "nope"));

    float w2[6];
    ck_assert_int_eq(sm_st_read_f32(f, "z.weight", w2, 6, &err), 0);
    ck_assert_mem_eq(w, w2, sizeof w);
    double d2[2];
    ck_assert_int_eq(sm_st_read_f64(f, "a.f64", d2, 2, &err), 0);
    ck_assert_mem_eq(d, d2, sizeof d);
    float d3[2];
    ck_assert_int_eq(sm_st_read_f32(f, "a.f64", d3, 2, &err), 0); /* converted */
    ck_assert_float_eq(d3[0], (float)M_PI);
    int64_t idx2[3];
    ck_assert_int_eq(sm_st_read_i64(f, "b.index", idx2, 3, &err), 0);
    ck_assert_mem_eq(idx, idx2, sizeof idx);
    float s2 = 0;
    ck_assert_int_eq(sm_st_read_f32(f, "loss", &s2, 1, &err), 0);
    ck_assert_float_eq(s2, 0.25f);
    ck_assert_str_eq(sm_st_meta(f, "format"), "simmim-test-1");
    ck_assert_str_eq(sm_st_meta(f, "note"), "ünïcode ✓");
    ck_assert_uint_eq(sm_st_meta_count(f), 2);
    ck_assert_ptr_null(sm_st_meta(f, "absent"));

    /* reading errors */
    ck_assert_int_eq(sm_st_read_f32(f, "nope", w2, 6, &err), SM_ENOTFOUND);
    ck_assert_str_eq(err.path, "nope");
    ck_assert_str_eq(err.text, "no such tensor");
    sm_error_clear(&err);
    ck_assert_int_eq(sm_st_read_f32(f, "z.weight", w2, 5, &err), SM_EINVAL);
    ck_assert_msg(strstr(err.text, "6 elements"), "%s", err.text);
    sm_error_clear(&err);
    ck_assert_int_eq(sm_st_read_i64(f, "z.weight", idx2, 6, &err), SM_EINVAL);
    ck_assert_str_eq(err.text, "dtype F32 cannot be read as I64");
    sm_st_close(f);

    /* overwrite an existing file: replaced atomically */
    wr = sm_st_writer_new();
    ck_assert_int_eq(sm_st_writer_add(wr, "only", SM_DTYPE_F32, 1, SM_SHAPE(1), &scalar, &err),
                     0);
    ck_assert_int_eq(sm_st_writer_write(wr, p, &err), 0);
    sm_st_writer_free(wr);
    ck_assert_int_eq(sm_st_open(p, &f, &err), 0);
    ck_assert_uint_eq(sm_st_count(f), 1);
    ck_assert_uint_eq(sm_st_meta_count(f), 0);
    sm_st_close(f);
    ck_assert_int_eq(count_files(tmpdir), 1);
}
END_TEST

START_TEST(test_half_conversions)
{
    /* F16: 1, -2, smallest subnormal, largest normal, inf, -0 */
    uint16_t h[6] = {0x3C00, 0xC000, 0x0001, 0x7BFF, 0x7C00, 0x8000};
    /* BF16: 1, pi rounded, -inf */
    uint16_t b[3] = {0x3F80, 0x4049, 0xFF80};
    sm_error err = {0};
    sm_st_writer *wr = sm_st_writer_new();
    ck_assert_int_eq(sm_st_writer_add(wr, "h", SM_DTYPE_F16, 1, SM_SHAPE(6), h, &err), 0);
    ck_assert_int_eq(sm_st_writer_add(wr, "b", SM_DTYPE_BF16, 1, SM_SHAPE(3), b, &err), 0);
    uint8_t u[3] = {0, 200, 255};
    int8_t i8[2] = {-128, 7};
    ck_assert_int_eq(sm_st_writer_add(wr, "u", SM_DTYPE_U8, 1, SM_SHAPE(3), u, &err), 0);
    ck_assert_int_eq(sm_st_writer_add(wr, "i", SM_DTYPE_I8, 1, SM_SHAPE(2), i8, &err), 0);
    const char *p = tpath("h.safetensors");
    ck_assert_int_eq(sm_st_writer_write(wr, p, &err), 0);
    sm_st_writer_free(wr);
    sm_st_file *f;
    ck_assert_int_eq(sm_st_open(p, &f, &err), 0);
    float out[6];
    ck_assert_int_eq(sm_st_read_f32(f, "h", out, 6, &err), 0);
    ck_assert_float_eq(out[0], 1.0f);
    ck_assert_float_eq(out[1], -2.0f);
    ck_assert_float_eq(out[2], ldexpf(1.0f, -24));
    ck_assert_float_eq(out[3], 65504.0f);
    ck_assert(isinf(out[4]) && out[4] > 0);
    ck_assert(out[5] == 0.0f && signbit(out[5]));
    ck_assert_int_eq(sm_st_read_f32(f, "b", out, 3, &err), 0);
    ck_assert_float_eq(out[0], 1.0f);
    ck_assert_float_eq(out[1], 3.140625f);
    ck_assert(isinf(out[2]) && out[2] < 0);
    int64_t iv[3];
    ck_assert_int_eq(sm_st_read_i64(f, "u", iv, 3, &err), 0);
    ck_assert(iv[0] == 0 && iv[1] == 200 && iv[2] == 255);
    ck_assert_int_eq(sm_st_read_i64(f, "i", iv, 2, &err), 0);
    ck_assert(iv[0] == -128 && iv[1] == 7);
    sm_st_close(f);
}
END_TEST

START_TEST(test_writer_errors)
{
    sm_error err = {0};
    float x = 1;
    sm_st_writer *wr = sm_st_writer_new();
    ck_assert_int_eq(sm_st_writer_add(wr, "__metadata__", SM_DTYPE_F32, 0, NULL, &x, &err),
                     SM_EINVAL);
    sm_error_clear(&err);
    ck_assert_int_eq(sm_st_writer_add(wr, "neg", SM_DTYPE_F32, 1, SM_SHAPE(-1), &x, &err),
                     SM_EINVAL);
    ck_assert_msg(strstr(err.text, "dimension 0 is -1"), "%s", err.text);
    sm_error_clear(&err);
    ck_assert_int_eq(sm_st_writer_add(wr, "huge", SM_DTYPE_F32, 2,
                                      SM_SHAPE(INT64_C(1) << 40, INT64_C(1) << 40), &x, &err),
                     SM_EINVAL);
    sm_error_clear(&err);
    ck_assert_int_eq(sm_st_writer_add(wr, "x", SM_DTYPE_F32, 0, NULL, &x, &err), 0);
    /* a directory that does not exist: error, nothing created */
    const char *p = tpath("missing/dir/x.safetensors");
    ck_assert_int_eq(sm_st_writer_write(wr, p, &err), SM_EIO);
    ck_assert_msg(strstr(err.text, "temp file"), "%s", err.text);
    sm_st_writer_free(wr);
    ck_assert_int_eq(count_files(tmpdir), 0);

    /* rename onto a directory fails after the data was written: the temp file is removed */
    sm_error_clear(&err);
    ck_assert_int_eq(mkdir(tpath("isdir"), 0755), 0);
    char sub[4096];
    snprintf(sub, sizeof sub, "%s/inner", tpath("isdir"));
    ck_assert_int_eq(mkdir(sub, 0755), 0);
    wr = sm_st_writer_new();
    ck_assert_int_eq(sm_st_writer_add(wr, "x", SM_DTYPE_F32, 0, NULL, &x, &err), 0);
    ck_assert_int_eq(sm_st_writer_write(wr, tpath("isdir"), &err), SM_EIO);
    sm_st_writer_free(wr);
    ck_assert_int_eq(count_files(tmpdir), 1); /* only the directory itself */
}
END_TEST

/* ---- hostile files ---------------------------------------------------------------------- */

typedef struct hostile {
    const char *name;
    const char *header; /* NULL: special raw content built by the case */
    size_t data;        /* data bytes after the header */
    const char *expect; /* substring of the error message */
} hostile;

static const hostile cases[] = {
    {"not_object", "[1, 2, 3]", 0, "header is not a JSON object"},
    {"string_root", "\"abc\"   ", 0, "header is not a JSON object"},
    {"bad_json", "{\"a\": {\"dtype\": ", 0, "header is not valid JSON"},
    {"duplicate",
     "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
     "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
     8, "duplicate"},
    {"unknown_dtype", "{\"a\":{\"dtype\":\"F8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1,
     "unknown dtype 'F8'"},
    {"dtype_not_string", "{\"a\":{\"dtype\":4,\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
     "unknown dtype (not a string)"},
    {"negative_shape", "{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,0]}}", 0,
     "shape[0] is not a non-negative integer"},
    {"float_shape", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2.0],\"data_offsets\":[0,8]}}", 8,
     "shape[0] is not a non-negative integer"},
    {"overflow_shape",
     "{\"a\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904,4611686018427387904],"
     "\"data_offsets\":[0,0]}}",
     0, "overflows"},
    {"overflow_times_size",
     "{\"a\":{\"dtype\":\"F64\",\"shape\":[2305843009213693952],\"data_offsets\":[0,0]}}", 0,
     "overflows"},
    {"integer_too_big",
     "{\"a\":{\"dtype\":\"F32\",\"shape\":[99999999999999999999999],\"data_offsets\":[0,0]}}", 0,
     "header is not valid JSON"},
    {"too_many_dims",
     "{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4,
     "9 dimensions"},
    {"shape_not_array", "{\"a\":{\"dtype\":\"F32\",\"shape\":3,\"data_offsets\":[0,12]}}", 12,
     "shape is not an array"},
    {"offsets_mismatch", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,12]}}", 12,
     "do not match shape"},
    {"offsets_reversed", "{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,0]}}", 8,
     "do not match shape"},
    {"offsets_bad", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4,
     "data_offsets is not [begin, end]"},
    {"offsets_gap",
     "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
     "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
     12, "leave a gap"},
    {"offsets_start_gap", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8,
     "leave a gap"},
    {"offsets_overlap",
     "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
     "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
     8, "overlap the previous tensor"},
    {"trailing_bytes", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 5,
     "trailing bytes"},
    {"data_truncated", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 10,
     "file truncated"},
    {"huge_offsets_truncated",
     "{\"a\":{\"dtype\":\"F32\",\"shape\":[1000000000000],\"data_offsets\":[0,4000000000000]}}",
     16, "file truncated"},
    {"entry_not_object", "{\"a\":[1,2]}", 0, "entry is not a JSON object"},
    {"extra_key",
     "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"extra\":1}}", 4,
     "unexpected key 'extra'"},
    {"missing_key", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, "missing key 'data_offsets'"},
    {"meta_not_string", "{\"__metadata__\":{\"k\":1}}", 0,
     "__metadata__ entry 'k' is not a string"},
    {"meta_not_object", "{\"__metadata__\":[\"k\"]}", 0, "__metadata__ is not an object"},
    {"invalid_utf8", "{\"a\xff\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
     "not valid UTF-8"},
    {"overlong_utf8", "{\"\xc0\xaf\":{}}", 0, "not valid UTF-8"},
    {"nul_escape", "{\"a\\u0000b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
     "header is not valid JSON"},
    {"tiny_header", "{", 0, "too short for a JSON object"},
    /* the JSON reader itself (core/io/json_read.c) */
    {"lone_low_surrogate", "{\"\\udc00\":{}}", 0, "invalid escape in a string"},
    {"lone_high_surrogate", "{\"\\ud800x\":{}}", 0, "invalid escape in a string"},
    {"bad_escape", "{\"\\q\":{}}", 0, "invalid escape in a string"},
    {"control_char", "{\"a\tb\":{}}", 0, "control character in a string"},
    {"trailing_text", "{}  {}", 0, "end of the text expected"},
    {"trailing_comma", "{\"__metadata__\":{\"k\":\"v\",}}", 0, "string key expected"},
    {"missing_colon", "{\"__metadata__\" {}}", 0, "':' expected"},
    {"bad_literal", "{\"__metadata__\":nul}", 0, "invalid token"},
    {"bad_number", "{\"a\":{\"dtype\":\"F32\",\"shape\":[-],\"data_offsets\":[0,4]}}", 4,
     "invalid number"},
    {"deep_nesting",
     "{\"__metadata__\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
     "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}",
     0, "nesting too deep"},
    {"duplicate_meta", "{\"__metadata__\":{\"k\":\"v\",\"k\":\"w\"}}", 0,
     "(line 1, column 26 of the header): duplicate object key"},
    {"duplicate_escaped", "{\"__metadata__\":{\"k\":\"v\",\"\\u006b\":\"w\"}}", 0,
     "duplicate object key"},
};

/* JSON escapes decode as RFC 8259 says: \uXXXX (with surrogate pairs), \n, \", \/ in names and
 * metadata; numbers with an exponent or a fraction are not integers; whitespace anywhere. */
START_TEST(test_json_escapes)
{
    const char *p = tpath("escapes");
    write_st(p,
             " {\n\t\"__metadata__\" : {\"n\\u00e9e\":\"a\\nb\\\"c\\/\\ud83d\\ude00\"},\r\n"
             "  \"caf\\u00e9\" : {\"shape\":[ 2 ],\"dtype\":\"F32\",\"data_offsets\":[0, 8]} } ",
             8);
    sm_st_file *f = NULL;
    sm_error err = {0};
    ck_assert_msg(sm_st_open(p, &f, &err) == 0, "%s", err.text);
    ck_assert_str_eq(sm_st_meta(f, "n\xc3\xa9" "e"), "a\nb\"c/\xf0\x9f\x98\x80");
    ck_assert_ptr_nonnull(sm_st_find(f, "caf\xc3\xa9"));
    ck_assert_int_eq(sm_st_find(f, "caf\xc3\xa9")->shape[0], 2);
    sm_st_close(f);
}
END_TEST

START_TEST(test_hostile)
{
    const hostile *h = &cases[_i];
    const char *p = tpath(h->name);
    write_st(p, h->header, h->data);
    sm_st_file *f = NULL;
    sm_error err = {0};
    int rc = sm_st_open(p, &f, &err);
    ck_assert_msg(rc == SM_EFORMAT, "%s: expected EFORMAT, got %d (%s)", h->name, rc, err.text);
    ck_assert_ptr_null(f);
    ck_assert_msg(strstr(err.text, h->expect), "%s: message '%s' lacks '%s'", h->name, err.text,
                  h->expect);
    ck_assert_str_eq(err.file, p);
}
END_TEST

/* ---- simmimctl inspect ------------------------------------------------------------------- */

/* Runs `simmimctl inspect ARGS` under a 256 MiB address-space limit (a hostile header must
 * never make it allocate much); returns the exit code, stdout and stderr (malloc'd). */
static int run_inspect(const char *args, char **out, char **errs)
{
    const char *ctl = getenv("SIMMIMCTL") ? getenv("SIMMIMCTL")
                                          : sm_test_build("../core/cli/simmimctl");
    /* AddressSanitizer reserves terabytes of shadow address space, so a sanitizer build runs
     * without the limit (it reports any oversized allocation itself). */
#if defined(__SANITIZE_ADDRESS__)
    const char *limit = "";
#else
    const char *limit = "ulimit -v 262144; ";
#endif
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "%s'%s' inspect %s >'%s/out.txt' 2>'%s/err.txt'", limit, ctl, args,
             tmpdir, tmpdir);
    int st = system(cmd);
    ck_assert_msg(st != -1 && WIFEXITED(st), "inspect did not exit normally (status %d)", st);
    *out = sm_test_read_file(tpath("out.txt"), NULL);
    *errs = sm_test_read_file(tpath("err.txt"), NULL);
    ck_assert(*out && *errs);
    return WEXITSTATUS(st);
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

START_TEST(test_inspect_hostile)
{
    const hostile *h = &cases[_i];
    const char *p = tpath(h->name);
    write_st(p, h->header, h->data);
    char args[4200], *out, *errs;
    snprintf(args, sizeof args, "'%s'", p);
    int rc = run_inspect(args, &out, &errs);
    ck_assert_msg(rc == 1, "%s: exit %d (stderr: %s)", h->name, rc, errs);
    ck_assert_msg(out[0] == '\0', "%s: printed to stdout: %s", h->name, out);
    ck_assert_msg(count_lines(errs) == 1 && strstr(errs, p) && strstr(errs, h->expect),
                  "%s: stderr should be one line naming the file and '%s': %s", h->name,
                  h->expect, errs);
    free(out);
    free(errs);
}
END_TEST

START_TEST(test_inspect_valid)
{
    const char *p = tpath("ok.safetensors");
    float w[4] = {-1.5f, 2.0f, 0.5f, NAN};
    int64_t idx[3] = {3, 9, 0};
    char longval[400];
    memset(longval, 'x', sizeof longval - 1);
    longval[sizeof longval - 1] = '\0';
    sm_error err = {0};
    sm_st_writer *wr = sm_st_writer_new();
    ck_assert_int_eq(sm_st_writer_add(wr, "layer.weight", SM_DTYPE_F32, 2, SM_SHAPE(2, 2), w, &err), 0);
    ck_assert_int_eq(sm_st_writer_add(wr, "layer.index", SM_DTYPE_I64, 1, SM_SHAPE(3), idx, &err), 0);
    ck_assert_int_eq(sm_st_writer_meta(wr, "format", "simmim-test-1", &err), 0);
    ck_assert_int_eq(sm_st_writer_meta(wr, "long", longval, &err), 0);
    ck_assert_int_eq(sm_st_writer_write(wr, p, &err), 0);
    sm_st_writer_free(wr);
    char args[4200], *out, *errs;
    snprintf(args, sizeof args, "'%s'", p);
    ck_assert_int_eq(run_inspect(args, &out, &errs), 0);
    ck_assert_msg(strstr(out, "2 tensors, 40 B of data"), "%s", out);
    ck_assert_msg(strstr(out, "layer.weight  F32   [2, 2]") && strstr(out, "-1.5") &&
                      strstr(out, "(1 NaN/Inf)"),
                  "%s", out);
    ck_assert_msg(strstr(out, "layer.index   I64   [3]") && strstr(out, "  4\n"), "%s", out);
    ck_assert_msg(strstr(out, "format: simmim-test-1") && strstr(out, "... (399 bytes)"), "%s",
                  out);
    ck_assert_str_eq(errs, "");
    free(out);
    free(errs);
    /* usage errors exit 2 */
    ck_assert_int_eq(run_inspect("", &out, &errs), 2);
    ck_assert_msg(strstr(errs, "missing FILE"), "%s", errs);
    free(out);
    free(errs);
    ck_assert_int_eq(run_inspect("--bogus x", &out, &errs), 2);
    free(out);
    free(errs);
    /* a missing file is a runtime failure with the reason */
    snprintf(args, sizeof args, "'%s/none.safetensors'", tmpdir);
    ck_assert_int_eq(run_inspect(args, &out, &errs), 1);
    ck_assert_msg(strstr(errs, "none.safetensors: cannot open: No such file"), "%s", errs);
    free(out);
    free(errs);
}
END_TEST

/* Truncations of a valid file at every offset class: inside the length, inside the JSON,
 * inside the data. */
START_TEST(test_truncated)
{
    const char *hdr = "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}";
    size_t hl = strlen(hdr), total = 8 + hl + 16;
    char full[512];
    const char *p = tpath("full");
    write_st(p, hdr, 16);
    size_t flen;
    char *raw = sm_test_read_file(p, &flen);
    ck_assert_uint_eq(flen, total);
    memcpy(full, raw, total);
    free(raw);
    for (size_t cut = 0; cut < total; cut++) {
        const char *q = tpath("cut");
        ck_assert_int_eq(sm_test_write_file(q, full, cut), 0);
        sm_st_file *f = NULL;
        sm_error err = {0};
        int rc = sm_st_open(q, &f, &err);
        ck_assert_msg(rc == SM_EFORMAT, "cut at %zu: rc %d", cut, rc);
        const char *expect = cut < 8            ? "too short for the 8-byte header length"
                             : cut < 8 + hl     ? "runs past the end of the file"
                                                : "file truncated";
        ck_assert_msg(strstr(err.text, expect), "cut at %zu: '%s'", cut, err.text);
        if (cut == 5 || cut == 8 + hl / 2 || cut == total - 3) { /* and through the CLI */
            char args[4200], *out, *errs;
            snprintf(args, sizeof args, "'%s'", q);
            ck_assert_int_eq(run_inspect(args, &out, &errs), 1);
            ck_assert_msg(strstr(errs, expect), "inspect, cut at %zu: %s", cut, errs);
            free(out);
            free(errs);
        }
    }
}
END_TEST

START_TEST(test_huge_length)
{
    const char *p = tpath("huge");
    write_raw(p, UINT64_MAX, "{}", 2, 0);
    sm_st_file *f = NULL;
    sm_error err = {0};
    ck_assert_int_eq(sm_st_open(p, &f, &err), SM_EFORMAT);
    ck_assert_msg(strstr(err.text, "exceeds the limit"), "%s", err.text);
    char args[4200], *out, *errs;
    snprintf(args, sizeof args, "'%s'", p);
    ck_assert_int_eq(run_inspect(args, &out, &errs), 1);
    ck_assert_msg(strstr(errs, "header length 18446744073709551615 exceeds the limit"), "%s",
                  errs);
    free(out);
    free(errs);
    sm_error_clear(&err);
    write_raw(p, (uint64_t)SM_ST_MAX_HEADER + 1, "{}", 2, 0);
    ck_assert_int_eq(sm_st_open(p, &f, &err), SM_EFORMAT);
    ck_assert_msg(strstr(err.text, "exceeds the limit"), "%s", err.text);
    sm_error_clear(&err);
    write_raw(p, 4096, "{}", 2, 0); /* under the cap but past the end */
    ck_assert_int_eq(sm_st_open(p, &f, &err), SM_EFORMAT);
    ck_assert_msg(strstr(err.text, "runs past the end"), "%s", err.text);
    sm_error_clear(&err);
    ck_assert_int_eq(sm_st_open(tpath("does-not-exist"), &f, &err), SM_EIO);
    ck_assert_msg(strstr(err.text, "cannot open"), "%s", err.text);
    sm_error_clear(&err);
    ck_assert_int_eq(sm_st_open(tmpdir, &f, &err), SM_EIO);
    ck_assert_msg(strstr(err.text, "not a regular file"), "%s", err.text);
    /* a FIFO is refused at once, not waited on for a writer */
    sm_error_clear(&err);
    ck_assert_int_eq(mkfifo(tpath("fifo.safetensors"), 0600), 0);
    ck_assert_int_eq(sm_st_open(tpath("fifo.safetensors"), &f, &err), SM_EIO);
    ck_assert_msg(strstr(err.text, "not a regular file"), "%s", err.text);
}
END_TEST

/* The empty header {} and an empty file body are valid: zero tensors. */
START_TEST(test_empty_valid)
{
    const char *p = tpath("empty");
    write_st(p, "{}      ", 0);
    sm_st_file *f = NULL;
    sm_error err = {0};
    ck_assert_int_eq(sm_st_open(p, &f, &err), 0);
    ck_assert_uint_eq(sm_st_count(f), 0);
    sm_st_close(f);
}
END_TEST

static Suite *safetensors_suite(void)
{
    Suite *s = suite_create("safetensors");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_roundtrip);
    tcase_add_test(tc, test_half_conversions);
    tcase_add_test(tc, test_empty_valid);
    suite_add_tcase(s, tc);
    tc = tcase_create("errors");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_writer_errors);
    tcase_add_loop_test(tc, test_hostile, 0, (int)(sizeof cases / sizeof cases[0]));
    tcase_add_test(tc, test_truncated);
    tcase_add_test(tc, test_json_escapes);
    tcase_add_test(tc, test_huge_length);
    suite_add_tcase(s, tc);
    tc = tcase_create("inspect");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, test_inspect_hostile, 0, (int)(sizeof cases / sizeof cases[0]));
    tcase_add_test(tc, test_inspect_valid);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return sm_test_run(safetensors_suite()); }
