/* simmim/comm.h - the ranks of a data-parallel job: a small communicator.
 *
 * A job runs as one process (the default: no launcher, or a build without MPI) or as several
 * processes started by an MPI launcher (mpirun, srun), one per rank (docs/scaling.md). The
 * library only ever talks to the other ranks through this interface: sums of blocks of floats
 * or doubles, broadcasts, a barrier, and ending the whole job. With one rank every operation is
 * a no-op that succeeds, so code written against it needs no special case.
 *
 * MPI is used when the library was configured --with-mpi AND the process was started by a
 * launcher (the environment holds OMPI_COMM_WORLD_SIZE, PMIX_RANK, PMI_SIZE or
 * MV2_COMM_WORLD_SIZE); SIMMIM_MPI=0 keeps a launched process single. Only the thread that
 * called sm_comm_init may use the communicator (MPI_THREAD_FUNNELED).
 *
 * Every wait for the other ranks is bounded: a collective that has not completed after
 * SIMMIM_COMM_TIMEOUT seconds (default 600; sm_comm_set_timeout) means another rank is hung or
 * its node lost, and the job is ended with a message naming this rank and the operation.
 *
 *     sm_comm *comm;
 *     if (sm_comm_init(&argc, &argv, &comm, &err)) ...;
 *     printf("rank %d of %d\n", sm_comm_rank(comm), sm_comm_size(comm));
 *     sm_comm_allreduce_f64(comm, v, 3, SM_COMM_SUM, &err);
 *     sm_comm_finalize(comm);
 */
#ifndef SIMMIM_COMM_H
#define SIMMIM_COMM_H

#include "simmim/common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sm_comm sm_comm;

typedef enum sm_comm_op { SM_COMM_SUM = 0, SM_COMM_MAX, SM_COMM_MIN } sm_comm_op;

/* True when the library was built with MPI (configure --with-mpi). */
SM_API bool sm_comm_mpi_built(void);
/* "Open MPI v4.1.4" (the library's own words), or "not built in". */
SM_API const char *sm_comm_mpi_version(void);

/* Joins the job: MPI_Init_thread when launched under MPI (see above), else a single process.
 * argc/argv may be NULL. Errors: SM_EUNSUPPORTED when a launcher started several processes but
 * the library was built without MPI (each would run the whole job alone), SM_EIO when MPI
 * cannot start, SM_ENOMEM. */
SM_API int sm_comm_init(int *argc, char ***argv, sm_comm **out, sm_error *err);
/* Leaves the job (MPI_Finalize) and frees. NULL-safe. */
SM_API void sm_comm_finalize(sm_comm *c);

/* NULL-safe: a NULL communicator is a single process (rank 0 of 1). */
SM_API int sm_comm_rank(const sm_comm *c);
SM_API int sm_comm_size(const sm_comm *c);
/* Ranks of the job on this machine (to share its cores); 1 for a single process. */
SM_API int sm_comm_local_size(const sm_comm *c);
/* The node's name (for messages). */
SM_API const char *sm_comm_host(const sm_comm *c);
/* Seconds a collective may wait for the other ranks before the job is ended (> 0). */
SM_API void sm_comm_set_timeout(sm_comm *c, double seconds);

/* In place, over every rank: buf[i] = op of the ranks' buf[i]. Every rank calls it with the same
 * n, in the same order as the other collectives. Errors: SM_EIO (MPI failed). */
SM_API int sm_comm_allreduce_f32(sm_comm *c, float *buf, size_t n, sm_comm_op op, sm_error *err);
SM_API int sm_comm_allreduce_f64(sm_comm *c, double *buf, size_t n, sm_comm_op op, sm_error *err);
/* root's `bytes` bytes at buf copied to every rank. */
SM_API int sm_comm_bcast(sm_comm *c, void *buf, size_t bytes, int root, sm_error *err);
SM_API int sm_comm_barrier(sm_comm *c, sm_error *err);

/* Non-blocking sum of floats, to overlap communication with computation: started with
 * sm_comm_isum_f32 (buf must stay untouched until it completes), driven by sm_comm_progress
 * (MPI libraries move data only inside their calls) and finished by sm_comm_wait_all. At most
 * SM_COMM_MAX_PENDING may be in flight. */
enum { SM_COMM_MAX_PENDING = 64 };
SM_API int sm_comm_isum_f32(sm_comm *c, float *buf, size_t n, sm_error *err);
SM_API void sm_comm_progress(sm_comm *c);
SM_API int sm_comm_wait_all(sm_comm *c, sm_error *err);

/* Ends the whole job with exit status `code` (MPI_Abort) after logging `why` with this rank's
 * number; with a single process, returns (the caller exits normally). */
SM_API void sm_comm_abort(sm_comm *c, int code, const char *why);

#ifdef __cplusplus
}
#endif
#endif /* SIMMIM_COMM_H */
