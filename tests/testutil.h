/* tests/testutil.h - helpers shared by the Check programs. */
#ifndef SIMMIM_TESTUTIL_H
#define SIMMIM_TESTUTIL_H

#undef NDEBUG
#include <check.h>
#include <stdio.h>
#include <stdlib.h>

#include "simmim/simmim.h"

/* $SM_TEST_SRCDIR/rel (the tests/ source directory), into a static buffer per call slot. */
const char *sm_test_src(const char *rel);
/* $SM_TEST_BUILDDIR/rel. */
const char *sm_test_build(const char *rel);
/* A fresh empty temporary directory (removed by sm_test_rmtree). Returns a malloc'd path. */
char *sm_test_tmpdir(void);
/* rm -rf path. */
void sm_test_rmtree(const char *path);
/* What an sm_error's file field holds for `path`: the path itself, or "..." and its tail when it
 * is longer than the field (a build tree at a deep path). Static buffer per call slot. */
const char *sm_test_err_file(const char *path);
/* Writes len bytes to path; returns 0 or -1. */
int sm_test_write_file(const char *path, const void *data, size_t len);
/* Reads a whole file (malloc'd, NUL-terminated); NULL on error. */
char *sm_test_read_file(const char *path, size_t *len);

/* Fails the current test (with the first mismatches and the max differences) unless
 * |a[i] - b[i]| <= atol + rtol·|b[i]| for all i. */
void sm_test_close(const char *what, const float *a, const float *b, int64_t n, double atol,
                   double rtol);
/* max|a - b| / max|b| (the golden metric). */
double sm_test_rel_err(const float *a, const float *b, int64_t n);

/* Reads YAML (written to `path` first when path is not NULL, so base_config and relative paths
 * work) and validates it against reg (only the model part when model_only). Fails the current
 * test with the first error. */
sm_config *sm_test_config(const sm_registry *reg, const char *yaml, const char *path,
                          bool model_only);

/* A registry with the built-ins and the plugins on SIMMIM_PLUGIN_PATH; fails the current test
 * unless the vit and swin backbones are among them. Free with sm_registry_free. */
sm_registry *sm_test_registry(void);

/* Runs a suite and returns EXIT_SUCCESS / EXIT_FAILURE (Check's summary on stdout). */
int sm_test_run(Suite *s);

#endif
