/* core/base/internal.h - private helpers shared by the core's files (sm__ prefix, never exported). */
#ifndef SIMMIM_CORE_INTERNAL_H
#define SIMMIM_CORE_INTERNAL_H

#include "simmim/common.h"
#include "simmim/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Hot loops are compiled for AVX-512, AVX2+FMA and baseline x86-64, picked at load time
 * (the binary must run on any x86-64, so no -march=native). Results may differ between
 * machines by rounding, never between thread counts. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define SM__KERNEL __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define SM__KERNEL
#endif

#define SM__ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define SM__MIN(a, b) ((a) < (b) ? (a) : (b))
#define SM__MAX(a, b) ((a) > (b) ? (a) : (b))
#define SM__UNUSED(x) ((void)(x))

/* Sizes of the fields of sm_error, for the buffers that build them. */
#define SM__ERR_FILE_MAX sizeof(((sm_error *)0)->file)
#define SM__ERR_PATH_MAX sizeof(((sm_error *)0)->path)
#define SM__ERR_TEXT_MAX sizeof(((sm_error *)0)->text)
/* Holds any shape as sm_tensor_shape_str writes it: "(" + 8 dims of 20 digits + ", "s + ")". */
#define SM__SHAPE_STR_MAX 192

/* Copies at most n-1 bytes and always terminates (n > 0). Returns strlen(src). */
size_t sm__strlcpy(char *dst, const char *src, size_t n);
/* Copies a path; if it does not fit, keeps its tail prefixed with "...". */
void sm__path_copy(char *dst, size_t n, const char *path);
/* Copies text that may be too long for dst[n]: whole when it fits, else its head and its tail
 * around " ... " (never cut inside a UTF-8 character). src may equal dst. */
void sm__text_fit(char *dst, size_t n, const char *src);
/* buf[n] holds text that was cut to n-1 bytes (snprintf): ends it with "..." instead. */
void sm__mark_cut(char *buf, size_t n);
/* vsnprintf into dst[n], shortening an over-long result like sm__text_fit (messages are never
 * cut silently). Returns the length of the whole result. */
size_t sm__vformat_fit(char *dst, size_t n, const char *fmt, va_list ap);
size_t sm__format_fit(char *dst, size_t n, const char *fmt, ...) SM_PRINTF(3, 4);
/* malloc'd copy, NULL on ENOMEM or NULL input. */
char *sm__strdup(const char *s);
/* Case-insensitive ASCII comparison. */
int sm__strcasecmp(const char *a, const char *b);
/* Levenshtein distance (ASCII, case-insensitive), capped at cap+1. */
int sm__edit_distance(const char *a, const char *b, int cap);
/* Directory part of a path ("." if none), malloc'd. */
char *sm__dirname(const char *path);
/* dir + "/" + rel, unless rel is absolute; malloc'd. */
char *sm__path_join(const char *dir, const char *rel);

/* Programmer-error assertion (invariants after validation). Aborts with file:line. */
#define SM__ASSERT(cond)                                                                       \
    do {                                                                                       \
        if (!(cond)) sm__abort(__FILE__, __LINE__, #cond);                                     \
    } while (0)
_Noreturn void sm__abort(const char *file, int line, const char *what);

#endif /* SIMMIM_CORE_INTERNAL_H */
