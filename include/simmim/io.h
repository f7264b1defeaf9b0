/* simmim/io.h - safetensors files: checkpoints, reference (golden) files, exports.
 *
 * Layout: u64 little-endian header length N, N bytes of UTF-8 JSON
 *   {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
 *    "__metadata__": {"key": "string", ...}}
 * then the raw little-endian data, offsets relative to its start.
 *
 * Reading validates the whole header before allocating anything for the data: length capped,
 * UTF-8 JSON object, no duplicate names, known dtype, shape x element size overflow-checked,
 * offsets contiguous from 0 with no gap or overlap, data exactly covering the rest of the file,
 * __metadata__ of strings only. Every refusal says what is wrong and where.
 *
 * Writing is atomic: a temp file in the same directory, fsync, rename over the target, fsync of
 * the directory. Tensors are ordered by element size (largest first) then name, and the header
 * is padded with spaces so the data starts 8-byte aligned.
 */
#ifndef SIMMIM_IO_H
#define SIMMIM_IO_H

#include "simmim/common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum sm_dtype {
    SM_DTYPE_F32 = 0,
    SM_DTYPE_F64,
    SM_DTYPE_F16,
    SM_DTYPE_BF16,
    SM_DTYPE_I64,
    SM_DTYPE_I32,
    SM_DTYPE_I16,
    SM_DTYPE_I8,
    SM_DTYPE_U8,
    SM_DTYPE_BOOL,
    SM_DTYPE_COUNT
} sm_dtype;

/* "F32", ...; NULL if out of range. */
SM_API const char *sm_dtype_name(sm_dtype dt);
/* Bytes per element. */
SM_API size_t sm_dtype_size(sm_dtype dt);

#define SM_ST_MAX_DIMS 8
/* Header length cap (bytes). */
#define SM_ST_MAX_HEADER (100u * 1024u * 1024u)

typedef struct sm_st_info {
    const char *name;
    sm_dtype dtype;
    int ndim;
    int64_t shape[SM_ST_MAX_DIMS];
    int64_t numel;
    uint64_t begin, end; /* byte offsets in the data section */
} sm_st_info;

typedef struct sm_st_file sm_st_file;

/* Opens and validates a file. new; close with sm_st_close. Errors: SM_EIO (cannot open/read,
 * message with strerror), SM_EFORMAT (the message says what and where, e.g.
 * "header: tensor 'a.b': data_offsets [0, 12] do not match shape [4] x F32 (16 bytes)"). */
SM_API int sm_st_open(const char *path, sm_st_file **out, sm_error *err);
SM_API void sm_st_close(sm_st_file *f);
SM_API const char *sm_st_path(const sm_st_file *f);

/* Tensors in data-offset order. Borrowed. */
SM_API size_t sm_st_count(const sm_st_file *f);
SM_API const sm_st_info *sm_st_at(const sm_st_file *f, size_t i);
SM_API const sm_st_info *sm_st_find(const sm_st_file *f, const char *name);

/* Copies a tensor converted to the requested type. `cap` is the capacity of out in elements;
 * it must be >= numel. F32 reads accept F32, F64, F16, BF16; I64 reads accept I64, I32, I16,
 * I8, U8, BOOL; F64 reads accept F64, F32. Errors: SM_ENOTFOUND (the message lists nothing
 * more than the name), SM_EINVAL (type or size), SM_EIO. */
SM_API int sm_st_read_f32(const sm_st_file *f, const char *name, float *out, int64_t cap,
                          sm_error *err);
SM_API int sm_st_read_f64(const sm_st_file *f, const char *name, double *out, int64_t cap,
                          sm_error *err);
SM_API int sm_st_read_i64(const sm_st_file *f, const char *name, int64_t *out, int64_t cap,
                          sm_error *err);

/* Statistics of one tensor, read in bounded chunks (any size, any dtype): min, max and mean of
 * the finite values, their count, and the number of NaN/Inf elements. */
typedef struct sm_st_stats {
    double min, max, mean;
    int64_t count, nonfinite;
} sm_st_stats;
SM_API int sm_st_read_stats(const sm_st_file *f, const char *name, sm_st_stats *out,
                            sm_error *err);

/* __metadata__ entries. Borrowed; NULL if absent. */
SM_API const char *sm_st_meta(const sm_st_file *f, const char *key);
SM_API size_t sm_st_meta_count(const sm_st_file *f);
SM_API const char *sm_st_meta_key(const sm_st_file *f, size_t i);
SM_API const char *sm_st_meta_value(const sm_st_file *f, size_t i);

/* ---- writing ---------------------------------------------------------------------------- */

typedef struct sm_st_writer sm_st_writer;

SM_API sm_st_writer *sm_st_writer_new(void);
SM_API void sm_st_writer_free(sm_st_writer *w);
/* Adds a tensor; data is borrowed until sm_st_writer_write returns. SM_EEXIST on a duplicate
 * name, SM_EINVAL on a bad shape. */
SM_API int sm_st_writer_add(sm_st_writer *w, const char *name, sm_dtype dtype, int ndim,
                            const int64_t *shape, const void *data, sm_error *err);
/* Adds or replaces a metadata string (both copied). */
SM_API int sm_st_writer_meta(sm_st_writer *w, const char *key, const char *value,
                             sm_error *err);
/* Writes atomically to path. On failure the target is untouched and no temp file remains. */
SM_API int sm_st_writer_write(sm_st_writer *w, const char *path, sm_error *err);

#ifdef __cplusplus
}
#endif
#endif /* SIMMIM_IO_H */
