/* simmim/common.h - status codes, the error record and diagnostics lists.
 *
 * Every fallible function in libsimmim returns an int status: 0 (SM_OK) on success, a negative
 * SM_E* code on failure, and fills an optional `sm_error *` (may be NULL). The error record is
 * fixed-size (no allocation, so it works when memory has run out) and keeps the FIRST error set
 * into it. What is too long for a field is shortened visibly, never cut silently: a file keeps
 * its tail after "...", a key path or message keeps its head and tail around " ... " (a 4096-byte
 * path in a message still shows where it starts and which file it ends in). It prints in the GNU
 * form that editors can jump to:
 *
 *     configs/vit.yaml:12:5: optimizer.optim_name: unknown optimizer 'adam' (available: adamw, sgd)
 *
 * Where several errors must be reported at once (a config file), they are collected in an
 * sm_diag list.
 *
 * The library never calls exit() and never writes to stdout; messages go through sm_log (log.h).
 */
#ifndef SIMMIM_COMMON_H
#define SIMMIM_COMMON_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Symbols of libsimmim are hidden unless marked SM_API (the library is built with
 * -fvisibility=hidden and an export regex '^sm_[^_]'). */
#define SM_API __attribute__((visibility("default")))
#define SM_PRINTF(fmt_idx, arg_idx) __attribute__((format(printf, fmt_idx, arg_idx)))

/* One X-macro list generates the enum and both string tables, so they cannot drift. */
#define SM_STATUS_MAP(XX)                                                                      \
    XX(OK, 0, "success")                                                                       \
    XX(ENOMEM, -1, "out of memory")                                                            \
    XX(EINVAL, -2, "invalid argument")                                                         \
    XX(ECONFIG, -3, "invalid configuration")                                                   \
    XX(EPLUGIN, -4, "plugin load failed")                                                      \
    XX(EABI, -5, "plugin ABI mismatch")                                                        \
    XX(ESHAPE, -6, "shape mismatch")                                                           \
    XX(EIO, -7, "input/output error")                                                          \
    XX(EFORMAT, -8, "malformed file")                                                          \
    XX(ENOTFOUND, -9, "not found")                                                             \
    XX(EUNSUPPORTED, -10, "unsupported")                                                       \
    XX(EEXIST, -11, "already exists")                                                          \
    XX(EPERM, -12, "permission denied")                                                        \
    XX(EDATA, -13, "bad data")                                                                 \
    XX(ERANGE, -14, "value out of range")                                                      \
    XX(ECANCELED, -15, "canceled")                                                             \
    XX(EINTERNAL, -16, "internal error")                                                       \
    XX(EKIND, -17, "a file of another kind")

typedef enum sm_status {
#define SM__STATUS_ENUM(name, value, text) SM_##name = value,
    SM_STATUS_MAP(SM__STATUS_ENUM)
#undef SM__STATUS_ENUM
} sm_status;

#define SM_STATUS_COUNT 18

/* "out of memory" etc.; "unknown status" for values outside the table. */
SM_API const char *sm_status_str(int status);
/* "ENOMEM" etc. */
SM_API const char *sm_status_name(int status);

/* The error record. line/column are 1-based; 0 means "not applicable". */
typedef struct sm_error {
    int code;        /* an sm_status; 0 = no error recorded                              */
    int line;        /* line in `file`, 0 if none                                         */
    int column;      /* column in `file`, 0 if none                                       */
    char file[256];  /* config, plugin, data or checkpoint file ("" if none); a longer  */
                     /* path keeps its tail, prefixed with "..."                          */
    char path[128];  /* key path, e.g. "optimizer.beta1", or tensor name ("" if none);   */
                     /* a longer one keeps its head and tail around " ... "               */
    char text[1024]; /* the human message; shortened like path when longer                */
} sm_error;

/* A buffer of this many bytes always holds what sm_error_format writes. */
#define SM_ERROR_LINE_MAX (256 + 128 + 1024 + 32)

/* Resets the record to "no error". NULL-safe. */
SM_API void sm_error_clear(sm_error *err);

/* Records an error unless one is already recorded (first error wins). Any of file/path may be
 * NULL. Returns `code`, so callers can write `return sm_error_set(err, SM_EIO, ...)`.
 * NULL-safe: with err == NULL it only returns code. */
SM_API int sm_error_set(sm_error *err, int code, const char *file, int line, int column,
                        const char *path, const char *fmt, ...) SM_PRINTF(7, 8);
SM_API int sm_error_setv(sm_error *err, int code, const char *file, int line, int column,
                         const char *path, const char *fmt, va_list ap);

/* Formats "file:line:col: path: text" leaving out the parts that are empty/0:
 *   file only:          "file: path: text"
 *   no file, no path:   "text"
 * Returns the length that the full string needs (snprintf semantics). */
SM_API size_t sm_error_format(const sm_error *err, char *buf, size_t n);

/* ---------------------------------------------------------------------------------------- */
/* Diagnostics: an ordered list of error records (and warnings), for reporting every error  */
/* of a config file in one run.                                                              */

typedef struct sm_diag sm_diag;

typedef enum sm_severity { SM_SEV_ERROR = 0, SM_SEV_WARNING = 1, SM_SEV_NOTE = 2 } sm_severity;

/* new; NULL on allocation failure. */
SM_API sm_diag *sm_diag_new(void);
/* NULL-safe. */
SM_API void sm_diag_free(sm_diag *d);
/* Appends a copy of *err with the given severity. Returns 0 or SM_ENOMEM. NULL d is a no-op. */
SM_API int sm_diag_add(sm_diag *d, sm_severity sev, const sm_error *err);
/* Appends an entry built like sm_error_set. Returns `code` (so it can be returned). */
SM_API int sm_diag_addf(sm_diag *d, sm_severity sev, int code, const char *file, int line,
                        int column, const char *path, const char *fmt, ...) SM_PRINTF(8, 9);
/* Number of entries / of entries with SM_SEV_ERROR. */
SM_API size_t sm_diag_count(const sm_diag *d);
SM_API size_t sm_diag_errors(const sm_diag *d);
/* Borrowed entry i (0-based), its severity. */
SM_API const sm_error *sm_diag_get(const sm_diag *d, size_t i, sm_severity *sev);
/* Sorts entries by (file, line, column), keeping insertion order for ties. */
SM_API void sm_diag_sort(sm_diag *d);
/* Removes all entries. */
SM_API void sm_diag_clear(sm_diag *d);

#ifdef __cplusplus
}
#endif
#endif /* SIMMIM_COMMON_H */
