/* core/base/comm_internal.h - between the communicator (comm.c: the interface and the single
 * process) and its MPI implementation (comm_mpi.c, the only file of the library that includes
 * mpi.h, compiled only with configure --with-mpi, which also defines SM_HAVE_MPI for the
 * library's files). */
#ifndef SIMMIM_CORE_COMM_INTERNAL_H
#define SIMMIM_CORE_COMM_INTERNAL_H

#include "base/internal.h"
#include "simmim/comm.h"

typedef struct sm__mpi sm__mpi;

/* Where this process stands in the job, filled by sm__mpi_init. */
typedef struct sm__mpi_place {
    int rank, size, local_size;
    char host[256];
} sm__mpi_place;

const char *sm__mpi_version(void);
int sm__mpi_init(int *argc, char ***argv, sm__mpi **out, sm__mpi_place *place, sm_error *err);
void sm__mpi_finalize(sm__mpi *m);
void sm__mpi_set_timeout(sm__mpi *m, double seconds);
/* elem 4 (float) or 8 (double) */
int sm__mpi_allreduce(sm__mpi *m, void *buf, size_t n, size_t elem, sm_comm_op op, sm_error *err);
int sm__mpi_bcast(sm__mpi *m, void *buf, size_t bytes, int root, sm_error *err);
int sm__mpi_barrier(sm__mpi *m, sm_error *err);
int sm__mpi_isum_f32(sm__mpi *m, float *buf, size_t n, sm_error *err);
void sm__mpi_progress(sm__mpi *m);
int sm__mpi_wait_all(sm__mpi *m, sm_error *err);
_Noreturn void sm__mpi_abort(sm__mpi *m, int code);

#endif
