/* tests/ckptdiff.c - compares the F32 tensors of two safetensors files (a helper of
 * tests/check_mpi.sh, not a test): every tensor of A must be in B with the same shape, and
 * every element within |a - b| <= atol + rtol x |a|. Prints the largest difference.
 *
 *     ckptdiff A.safetensors B.safetensors [ATOL [RTOL]]     (defaults 0 0: bit-identical)
 *
 * Exit status: 0 within the tolerance, 1 not, 2 unreadable files or usage. */
#include "simmim/io.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc < 3 || argc > 5) {
        fprintf(stderr, "usage: ckptdiff A B [ATOL [RTOL]]\n");
        return 2;
    }
    double atol = argc > 3 ? atof(argv[3]) : 0, rtol = argc > 4 ? atof(argv[4]) : 0;
    sm_st_file *a = NULL, *b = NULL;
    sm_error err;
    sm_error_clear(&err);
    if (sm_st_open(argv[1], &a, &err) || sm_st_open(argv[2], &b, &err)) {
        char line[SM_ERROR_LINE_MAX];
        sm_error_format(&err, line, sizeof line);
        fprintf(stderr, "ckptdiff: %s\n", line);
        sm_st_close(a);
        return 2;
    }
    int status = 0;
    size_t tensors = 0, over = 0;
    int64_t elems = 0;
    double worst = 0, worst_rel = 0;
    const char *worst_name = "-";
    for (size_t i = 0; i < sm_st_count(a) && status < 2; i++) {
        const sm_st_info *ia = sm_st_at(a, i), *ib = sm_st_find(b, ia->name);
        if (ia->dtype != SM_DTYPE_F32) continue;
        if (!ib || ib->numel != ia->numel) {
            fprintf(stderr, "ckptdiff: %s: absent from B or of another size\n", ia->name);
            status = 1;
            continue;
        }
        float *x = malloc((size_t)(ia->numel ? ia->numel : 1) * sizeof *x);
        float *y = malloc((size_t)(ia->numel ? ia->numel : 1) * sizeof *y);
        if (!x || !y || sm_st_read_f32(a, ia->name, x, ia->numel, &err) ||
            sm_st_read_f32(b, ia->name, y, ia->numel, &err)) {
            fprintf(stderr, "ckptdiff: %s: cannot read\n", ia->name);
            status = 2;
        }
        for (int64_t k = 0; status < 2 && k < ia->numel; k++) {
            double d = fabs((double)x[k] - (double)y[k]);
            if (!(d <= atol + rtol * fabs((double)x[k]))) over++;
            if (d > worst || d != d) {
                worst = d;
                worst_rel = d / (fabs((double)x[k]) + 1e-30);
                worst_name = ia->name;
            }
        }
        elems += ia->numel;
        tensors++;
        free(x);
        free(y);
    }
    printf("ckptdiff: %zu tensors, %lld values: largest difference %.3g (%.3g relative) in %s; "
           "%zu values over %g + %g x |a|\n",
           tensors, (long long)elems, worst, worst_rel, worst_name, over, atol, rtol);
    if (over && status == 0) status = 1;
    sm_st_close(a);
    sm_st_close(b);
    return status;
}
