/* core/io/io_internal.h - private interfaces of the io layer: element conversion shared with the
 * safetensors reader, the zip archive reader, the restricted pickle machine, and the foreign
 * checkpoint that the PyTorch and MindSpore readers fill (include/simmim/io.h, docs/convert.md). */
#ifndef SIMMIM_IO_INTERNAL_H
#define SIMMIM_IO_INTERNAL_H

#include "simmim/io.h"

#include <stdarg.h>

/* ---- elements and bytes ------------------------------------------------------------------- */

/* One element of a float dtype (F32, F64, F16, BF16) as double, exactly. */
double sm__elem_as_double(sm_dtype dt, const unsigned char *p);
/* One element of an integer dtype (I64, I32, I16, I8, U8, BOOL) as int64. */
int64_t sm__elem_as_i64(sm_dtype dt, const unsigned char *p);
/* Index of the first byte of s[0..len) that is not valid UTF-8, or len. */
size_t sm__utf8_invalid_at(const unsigned char *s, size_t len);
/* Grows the array *arr of elements of es bytes (capacity *cap, doubled from 8) to hold at least
 * need elements: 0, or -1 on ENOMEM (the array is then unchanged). */
int sm__grow(void *arr, size_t *cap, size_t need, size_t es);
/* pread of exactly n bytes at off: 0, or -errno (-EIO when the file ends first). */
int sm__read_at(int fd, void *buf, size_t n, uint64_t off);

/* ---- JSON (core/io/json_read.c): safetensors headers --------------------------------------- */

typedef enum {
    SM__J_OBJ, SM__J_ARR, SM__J_STR, SM__J_INT, SM__J_REAL, SM__J_TRUE, SM__J_FALSE, SM__J_NULL
} sm__jtype;

/* One value. Members of an object or array follow their container in the node array and are
 * chained by `next` (an object's members alternate key, value). */
typedef struct sm__jnode {
    sm__jtype type;
    size_t next;     /* index of the next member of the same container, 0 for none */
    size_t count;    /* OBJ: members (key-value pairs), ARR: elements */
    size_t off;      /* byte offset in the text */
    const char *str; /* STR: NUL-terminated UTF-8 (no NUL inside) */
    size_t len;      /* STR: bytes */
    int64_t ival;    /* INT */
} sm__jnode;

typedef struct sm__jdoc {
    sm__jnode *nodes; /* nodes[0] is the root */
    char *pool;
    size_t n;
} sm__jdoc;

typedef struct sm__jerror {
    int line, column; /* 1-based position of a syntax error */
    const char *text; /* what is wrong (static) */
} sm__jerror;

/* Parses text[0..len) (valid UTF-8) into doc: 0, SM_EFORMAT with je filled (syntax, nesting
 * beyond max_depth, an integer beyond int64, a duplicate key), or SM_ENOMEM. Two allocations
 * plus one per object while checking duplicates; nothing is left allocated on failure. */
int sm__json_parse(const char *text, size_t len, int max_depth, sm__jdoc *doc, sm__jerror *je);
void sm__json_free(sm__jdoc *doc);
/* The first member of a container (an object's first key), or NULL. */
const sm__jnode *sm__json_first(const sm__jdoc *d, const sm__jnode *n);
/* The member after n in its container, or NULL. */
const sm__jnode *sm__json_next(const sm__jdoc *d, const sm__jnode *n);
/* The value of key in an object, or NULL (also when obj is not an object). */
const sm__jnode *sm__json_get(const sm__jdoc *d, const sm__jnode *obj, const char *key);
/* Element i of an array, or NULL. */
const sm__jnode *sm__json_at(const sm__jdoc *d, const sm__jnode *arr, size_t i);

/* ---- zip archives (core/io/zip.c) ----------------------------------------------------------- */

typedef struct sm__zip_entry {
    char *name;     /* NUL-terminated; entries with a NUL inside the name are refused */
    uint64_t local; /* offset of the local header                                        */
    uint64_t csize; /* stored (compressed) size                                          */
    uint64_t usize; /* uncompressed size                                                 */
    uint32_t crc;   /* CRC-32 of the uncompressed data                                   */
    int method;     /* 0 stored, 8 deflate; anything else is refused on read             */
    unsigned flags; /* general purpose flags (bit 0: encrypted)                          */
} sm__zip_entry;

typedef struct sm__zip {
    const char *path; /* for messages (borrowed)                  */
    int fd;           /* borrowed; not closed by sm__zip_close    */
    uint64_t size;    /* file size                                */
    size_t n;
    sm__zip_entry *e;
} sm__zip;

/* Reads the central directory (zip64 included) of the open file fd of `size` bytes. Every
 * entry's recorded range must lie inside the file. SM_EFORMAT naming the problem. */
int sm__zip_open(sm__zip *z, const char *path, int fd, uint64_t size, sm_error *err);
void sm__zip_close(sm__zip *z);
const sm__zip_entry *sm__zip_find(const sm__zip *z, const char *name);
/* Reads an entry whole into a new buffer (malloc'd, at least 1 byte), inflating a deflated
 * entry, and checks its size and CRC-32. Refuses entries above max bytes, encrypted entries and
 * compression methods other than stored and deflate. */
int sm__zip_read(const sm__zip *z, const sm__zip_entry *e, uint64_t max, unsigned char **out,
                 sm_error *err);

/* ---- the restricted pickle machine (core/io/pickle.c) --------------------------------------- */

/* Values the machine builds. Nothing is ever imported or called: a GLOBAL is a name, REDUCE
 * and NEWOBJ of a name the machine does not know make an inert OBJECT. The known names are
 * collections.OrderedDict (a DICT), torch._utils._rebuild_tensor{,_v2,_v3} (a TENSOR),
 * torch._utils._rebuild_parameter{,_with_state} (the tensor itself), _codecs.encode (BYTES)
 * and the torch.*Storage types; names of modules that can run code (os, subprocess, builtins'
 * eval...) are refused outright. */
typedef enum sm__pk_kind {
    SM__PK_NONE,
    SM__PK_BOOL,
    SM__PK_INT,
    SM__PK_BIGINT, /* an integer beyond int64: kept as a placeholder */
    SM__PK_FLOAT,
    SM__PK_STR,
    SM__PK_BYTES,
    SM__PK_LIST, /* lists and sets */
    SM__PK_TUPLE,
    SM__PK_DICT,
    SM__PK_GLOBAL,
    SM__PK_OBJECT,
    SM__PK_STORAGE,
    SM__PK_TENSOR
} sm__pk_kind;

typedef struct sm__pv sm__pv;

/* What a GLOBAL names. */
typedef enum sm__pk_global {
    SM__G_OTHER = 0,
    SM__G_ORDERED_DICT,
    SM__G_REBUILD_TENSOR,    /* (storage, offset, size, stride)                             */
    SM__G_REBUILD_TENSOR_V2, /* (storage, offset, size, stride, requires_grad, hooks[, meta]) */
    SM__G_REBUILD_TENSOR_V3, /* v2 with a dtype after hooks                                  */
    SM__G_REBUILD_PARAMETER, /* (tensor, requires_grad, hooks[, state])                      */
    SM__G_CODECS_ENCODE,
    SM__G_STORAGE_TYPE, /* torch.<X>Storage; dtype in the value                             */
    SM__G_DTYPE         /* torch.float32 ...; dtype in the value                            */
} sm__pk_global;

typedef struct sm__pk_storage {
    char *key;           /* archive key (legacy: the root storage's key); owned               */
    char *type;          /* "torch.FloatStorage" ...; owned                                   */
    sm_dtype dtype;      /* SM_DTYPE_COUNT if the type has no dtype we read                   */
    int64_t numel;       /* elements of dtype (bytes for an untyped storage)                  */
    int64_t view_offset; /* legacy storage views: element offset into the root storage        */
} sm__pk_storage;

typedef struct sm__pk_tensor {
    sm__pv *storage; /* SM__PK_STORAGE */
    sm_dtype dtype;  /* the storage's, or the v3 dtype                                       */
    int ndim;
    int64_t offset; /* in elements */
    int64_t shape[SM_ST_MAX_DIMS], stride[SM_ST_MAX_DIMS];
    int64_t numel;
} sm__pk_tensor;

struct sm__pv {
    sm__pk_kind kind;
    int depth; /* nesting depth (0 for scalars), checked against SM__PK_MAX_DEPTH */
    union {
        bool b;
        int64_t i;
        double f;
        struct {
            char *s; /* NUL-terminated copy (bytes may hold NULs: use n) */
            size_t n;
        } str;
        struct {
            sm__pv **v;
            size_t n, cap;
        } seq; /* LIST, TUPLE */
        struct {
            sm__pv **k, **v; /* in insertion order; a repeated key: the last one counts */
            size_t n, cap;
        } dict;
        struct {
            char *module, *name;
            sm__pk_global what;
            sm_dtype dtype;
        } global;
        struct {
            sm__pv *cls;   /* the GLOBAL it was made from                      */
            sm__pv *items; /* a DICT receiving SETITEM(S), APPEND(S) (as keys) */
        } obj;
        sm__pk_storage storage;
        sm__pk_tensor tensor;
    } u;
};

/* Nesting deeper than this is refused. */
#define SM__PK_MAX_DEPTH 100

typedef struct sm__pickle sm__pickle;

/* BINPERSID hook: turns the persistent id (any value) into a value, usually a STORAGE made with
 * sm__pk_alloc. Returns NULL with err set to refuse. */
typedef sm__pv *(*sm__pk_persid_fn)(sm__pickle *pk, const sm__pv *pid, void *arg, sm_error *err);

/* A machine; `file` and `what` (e.g. the path and "data.pkl") name the stream in messages.
 * Values live until sm__pk_free. NULL on ENOMEM. */
sm__pickle *sm__pk_new(const char *file, const char *what);
void sm__pk_free(sm__pickle *pk);
/* Runs one pickle from buf[0..len) up to its STOP (stack, marks and memo start empty). On
 * success *root is the result and *used the bytes consumed. A stream that ends before STOP is
 * SM_EFORMAT with "truncated" in the message. */
int sm__pk_run(sm__pickle *pk, const unsigned char *buf, size_t len, sm__pk_persid_fn persid,
               void *arg, sm__pv **root, size_t *used, sm_error *err);
/* True if the last sm__pk_run failed because the buffer ended (more bytes might help). */
bool sm__pk_hit_end(const sm__pickle *pk);
/* A new value owned by the machine (zeroed), for the hook. NULL on ENOMEM. */
sm__pv *sm__pk_alloc(sm__pickle *pk, sm__pk_kind kind);
/* Records an error located at the current opcode: "<file>: <what> byte N: <message>". */
int sm__pk_fail(sm__pickle *pk, sm_error *err, int code, const char *fmt, ...) SM_PRINTF(4, 5);
/* dict[key] for a string key (the last occurrence), or NULL. */
sm__pv *sm__pk_dict_get(const sm__pv *dict, const char *key);
/* "collections.OrderedDict", "a str", ... for messages. */
void sm__pk_describe(const sm__pv *v, char *buf, size_t n);

/* ---- foreign checkpoints (core/io/ckpt.c, torch_ckpt.c, ms_ckpt.c, ringmo_names.c) ---------- */

struct sm_ckpt {
    char *path;
    sm_ckpt_format format;
    char where[96]; /* where the tensors came from: "['model']", "the top level" ...     */
    sm_ckpt_tensor *t;
    size_t n, cap;
    char **ignored; /* what was left out, one line each */
    size_t n_ignored, cap_ignored;
    size_t from[SM_DTYPE_COUNT]; /* tensors read, by stored dtype                      */
    sm_ckpt_mapping map;         /* RingMo renaming (MindSpore files)                      */
    uint64_t out_bytes, out_cap; /* converted bytes so far, and the allowed total          */
};

/* Appends a tensor named `name` (copied; source = NULL means the same) whose data the caller
 * fills: F32 for float source dtypes, I64 for integers, BOOL for BOOL. Checks the name
 * (non-empty, UTF-8, no NUL, not "__metadata__"), the shape (<= 8 dims, no overflow) and the
 * converted-size budget (out_cap). Returns the entry or NULL with err set. */
sm_ckpt_tensor *sm__ckpt_add(sm_ckpt *c, const char *name, size_t name_len, const char *source,
                             sm_dtype src, int ndim, const int64_t *shape, sm_error *err);
/* Adds a line to the ignored list (ENOMEM is ignored: the list is informative). */
void sm__ckpt_ignore(sm_ckpt *c, const char *fmt, ...) SM_PRINTF(2, 3);
/* The dtype a tensor of this stored dtype is converted to. */
sm_dtype sm__ckpt_out_dtype(sm_dtype src);
/* Frees the tensors and the list (not c). */
void sm__ckpt_clear(sm_ckpt *c);

/* Readers: fill c from the open file fd of `size` bytes. */
int sm__torch_zip_read(sm_ckpt *c, int fd, uint64_t size, sm_error *err);
int sm__torch_legacy_read(sm_ckpt *c, int fd, uint64_t size, sm_error *err);
int sm__ms_read(sm_ckpt *c, int fd, uint64_t size, sm_error *err);
/* True if the names look like RingMo-Framework's (MindSpore attribute paths). */
bool sm__ringmo_detect(const sm_ckpt *c);
/* Renames RingMo-Framework names to the official PyTorch ones in place: gamma/beta, q/k/v
 * merged into qkv, [in, out] Linear weights transposed, the decoder's DepthToSpace channel
 * order turned into PixelShuffle's; optimizer state and counters are moved to the ignored
 * list. */
int sm__ringmo_map(sm_ckpt *c, sm_error *err);

#endif /* SIMMIM_IO_INTERNAL_H */
