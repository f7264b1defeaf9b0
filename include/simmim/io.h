/* simmim/io.h - safetensors files: checkpoints, reference (golden) files, exports; and the
 * readers of foreign checkpoints (PyTorch, MindSpore) that convert them to safetensors.
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

/* ---- foreign checkpoints: PyTorch torch.save and MindSpore .ckpt (docs/convert.md) ---------- */

/* What is read:
 *  - torch.save zip archives (PyTorch >= 1.6): "<root>/data.pkl" and "<root>/data/<key>" storages
 *    (stored or deflated); the pickle is run by a restricted reader that never imports or calls
 *    anything. The state dict is the top-level dict's 'model' (microsoft/SimMIM's layout; also
 *    'state_dict', 'model_state_dict', 'module'), or the top-level dict itself;
 *  - legacy torch.save streams (_use_new_zipfile_serialization=False, PyTorch < 1.6);
 *  - MindSpore .ckpt protobuf files (RingMo-Framework), whose names are mapped to the official
 *    PyTorch ones (see sm_ckpt_mapping) unless keep_names is set.
 * Tensors of any stride, storage offset and shared storage are copied out contiguously; floats
 * (F32, F64, F16, BF16) become F32, integers (I64, I32, I16, I8, U8) I64, BOOL stays BOOL.
 * Everything else in the file (optimizer state, schedulers, configs, counters) is listed as
 * ignored. A file that is malformed, truncated, hostile or of an unknown format is refused
 * (SM_EFORMAT / SM_EUNSUPPORTED, the message names the file, the part and the problem). */
typedef enum sm_ckpt_format {
    SM_CKPT_TORCH = 0,    /* torch.save zip archive                     */
    SM_CKPT_TORCH_LEGACY, /* torch.save legacy (pre-1.6) pickle stream  */
    SM_CKPT_MINDSPORE     /* MindSpore .ckpt (protobuf)                 */
} sm_ckpt_format;

/* "PyTorch zip archive (torch.save)" ...; NULL if out of range. */
SM_API const char *sm_ckpt_format_name(sm_ckpt_format f);

typedef struct sm_ckpt_tensor {
    char *name;      /* the name written (official PyTorch name)                          */
    char *source;    /* the name in the file (for a merged q/k/v: the q part's)           */
    sm_dtype dtype;  /* SM_DTYPE_F32, SM_DTYPE_I64 or SM_DTYPE_BOOL                         */
    sm_dtype stored; /* the dtype in the file                                              */
    int ndim;
    int64_t shape[SM_ST_MAX_DIMS];
    int64_t numel;
    void *data;      /* numel contiguous elements of dtype (at least 1 byte allocated)     */
} sm_ckpt_tensor;

/* What the RingMo-Framework name mapping did (MindSpore files only). */
typedef struct sm_ckpt_mapping {
    bool applied;      /* the names looked like RingMo's and were mapped                   */
    size_t renamed;    /* tensors whose name changed                                       */
    size_t merged;     /* qkv tensors made from separate q, k, v tensors                   */
    size_t transposed; /* [in, out] Linear weights transposed to PyTorch's [out, in]       */
    size_t permuted;   /* decoder tensors reordered from DepthToSpace to PixelShuffle order */
    size_t dropped;    /* ViT k biases dropped (the official ViT has none; softmax ignores them) */
} sm_ckpt_mapping;

typedef struct sm_ckpt_opts {
    const char *prefix; /* keep only tensors whose (mapped) name starts with prefix, and
                           remove it, e.g. "module." or "encoder."; NULL or "": keep all    */
    bool keep_names;    /* MindSpore: keep the names of the file (no RingMo mapping)        */
} sm_ckpt_opts;

typedef struct sm_ckpt sm_ckpt;

/* Reads a checkpoint whole (opts may be NULL). new; free with sm_ckpt_free. Errors: SM_EIO,
 * SM_EFORMAT, SM_EUNSUPPORTED (a format recognised but not read, e.g. TorchScript), SM_ENOMEM,
 * SM_EDATA (no tensors, or none left after the prefix). */
SM_API int sm_ckpt_open(const char *path, const sm_ckpt_opts *opts, sm_ckpt **out,
                        sm_error *err);
SM_API void sm_ckpt_free(sm_ckpt *c);
SM_API sm_ckpt_format sm_ckpt_format_of(const sm_ckpt *c);
/* Where the tensors came from: "['model']", "the top level", "protobuf values". Borrowed. */
SM_API const char *sm_ckpt_where(const sm_ckpt *c);
/* Tensors in file order (repeated names: the last one counts). Borrowed. */
SM_API size_t sm_ckpt_count(const sm_ckpt *c);
SM_API const sm_ckpt_tensor *sm_ckpt_at(const sm_ckpt *c, size_t i);
SM_API const sm_ckpt_tensor *sm_ckpt_find(const sm_ckpt *c, const char *name);
/* Number of tensors read that were stored with dtype dt. */
SM_API size_t sm_ckpt_stored_count(const sm_ckpt *c, sm_dtype dt);
/* What was left out, one description each ("'optimizer' (a dict)", "adam_m.* (MindSpore
 * optimizer state, 40 tensors)"). Borrowed. */
SM_API size_t sm_ckpt_ignored_count(const sm_ckpt *c);
SM_API const char *sm_ckpt_ignored(const sm_ckpt *c, size_t i);
SM_API const sm_ckpt_mapping *sm_ckpt_mapping_of(const sm_ckpt *c);
/* Writes the tensors to a safetensors file, atomically (nothing is left behind on failure), with
 * __metadata__ format "simmim-converted-1", source (the file name), source_format. */
SM_API int sm_ckpt_write(const sm_ckpt *c, const char *path, sm_error *err);

/* A conversion's summary. */
typedef struct sm_convert_report {
    sm_ckpt_format format;
    char where[96];                   /* sm_ckpt_where                                      */
    size_t tensors;                   /* tensors written                                    */
    int64_t float_elements;           /* elements of the F32 tensors written                */
    int64_t other_elements;           /* elements of the I64 and BOOL tensors written       */
    size_t stored[SM_DTYPE_COUNT];    /* tensors written, by dtype in the file              */
    sm_ckpt_mapping mapping;
    size_t ignored;                   /* entries left out                                   */
    char ignored_text[1024];          /* their descriptions, "; "-separated, cut with "..." */
} sm_convert_report;

/* sm_ckpt_open + sm_ckpt_write: converts `in` to the safetensors file `out` (report and opts
 * may be NULL). On failure nothing is written. */
SM_API int sm_convert_file(const char *in, const char *out, const sm_ckpt_opts *opts,
                           sm_convert_report *report, sm_error *err);

#ifdef __cplusplus
}
#endif
#endif /* SIMMIM_IO_H */
