/* tests/stdump.c - prints one row of a 2-D float32 tensor of a safetensors file, its values
 * with %.9g (float32 exactly) separated by spaces, for the shell tests that compare features
 * (a helper program of make check, not a test):
 *   stdump FILE TENSOR ROW */
#include <simmim/simmim.h>

#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: stdump FILE TENSOR ROW\n");
        return 2;
    }
    sm_error err;
    sm_error_clear(&err);
    sm_st_file *f = NULL;
    if (sm_st_open(argv[1], &f, &err)) {
        fprintf(stderr, "stdump: %s: %s\n", argv[1], err.text);
        return 1;
    }
    const sm_st_info *t = sm_st_find(f, argv[2]);
    long row = atol(argv[3]);
    float *v = t && t->ndim == 2 ? malloc((size_t)t->numel * sizeof *v) : NULL;
    int rc = !v || row < 0 || row >= t->shape[0] || sm_st_read_f32(f, argv[2], v, t->numel, &err);
    if (rc) {
        fprintf(stderr, "stdump: %s: no row %ld of a 2-D tensor %s\n", argv[1], row, argv[2]);
    } else {
        for (int64_t j = 0; j < t->shape[1]; j++)
            printf("%s%.9g", j ? " " : "", v[row * t->shape[1] + j]);
        printf("\n");
    }
    free(v);
    sm_st_close(f);
    return rc ? 1 : 0;
}
