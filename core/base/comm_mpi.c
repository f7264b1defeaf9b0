/* core/base/comm_mpi.c - the communicator over MPI (built with configure --with-mpi only).
 *
 * Every collective is started non-blocking and waited for by sm__mpi_wait, which polls with a
 * deadline: MPI's own blocking calls would wait forever for a rank that hangs (a stuck file
 * system read) or whose node vanished without closing its connections. A rank that died is
 * noticed by the launcher itself (mpirun ends the job and names the rank). MPI errors keep MPI's
 * default handler (MPI_ERRORS_ARE_FATAL: the job ends with MPI's message). */
#include "base/comm_internal.h"

#include <limits.h>
#include <mpi.h>
#include <time.h>

struct sm__mpi {
    int rank, size;
    double timeout; /* seconds */
    MPI_Request pending[SM_COMM_MAX_PENDING];
    int npending;
};

enum { SM__MPI_CHUNK = 1 << 30 }; /* elements per call: MPI counts are ints */

static double sm__mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

const char *sm__mpi_version(void)
{
    static char v[MPI_MAX_LIBRARY_VERSION_STRING];
    int len = 0;
    if (!v[0] && MPI_Get_library_version(v, &len) == MPI_SUCCESS) {
        v[strcspn(v, ",\n")] = '\0'; /* "Open MPI v4.1.4, package: ..." -> "Open MPI v4.1.4" */
    }
    return v[0] ? v : "MPI";
}

static int sm__mpi_error(int mrc, const char *what, sm_error *err)
{
    char s[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(mrc, s, &len) != MPI_SUCCESS) snprintf(s, sizeof s, "error %d", mrc);
    return sm_error_set(err, SM_EIO, NULL, 0, 0, NULL, "MPI: %s failed: %s", what, s);
}

int sm__mpi_init(int *argc, char ***argv, sm__mpi **out, sm__mpi_place *pl, sm_error *err)
{
    *out = NULL;
    int provided = 0, mrc = MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
    if (mrc != MPI_SUCCESS) return sm__mpi_error(mrc, "MPI_Init_thread", err);
    sm__mpi *m = calloc(1, sizeof *m);
    if (!m) {
        MPI_Abort(MPI_COMM_WORLD, 1);
        return SM_ENOMEM;
    }
    MPI_Comm_rank(MPI_COMM_WORLD, &m->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &m->size);
    m->timeout = 600;
    MPI_Comm node;
    pl->local_size = 1;
    if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node) ==
        MPI_SUCCESS) {
        MPI_Comm_size(node, &pl->local_size);
        MPI_Comm_free(&node);
    }
    char host[MPI_MAX_PROCESSOR_NAME];
    int len = 0;
    if (MPI_Get_processor_name(host, &len) != MPI_SUCCESS) len = 0;
    host[len] = '\0';
    sm__strlcpy(pl->host, len ? host : "?", sizeof pl->host);
    pl->rank = m->rank;
    pl->size = m->size;
    if (provided < MPI_THREAD_FUNNELED)
        sm_log(SM_LOG_WARN, "the MPI library offers thread level %d, below MPI_THREAD_FUNNELED: "
                            "only the main thread calls MPI, but the loader and OpenMP threads "
                            "exist", provided);
    *out = m;
    return 0;
}

void sm__mpi_finalize(sm__mpi *m)
{
    sm_error e;
    if (m->npending) sm__mpi_wait_all(m, &e);
    MPI_Finalize();
    free(m);
}

void sm__mpi_set_timeout(sm__mpi *m, double seconds) { m->timeout = seconds; }

_Noreturn void sm__mpi_abort(sm__mpi *m, int code)
{
    (void)m;
    MPI_Abort(MPI_COMM_WORLD, code ? code : 1);
    abort(); /* MPI_Abort does not return */
}

/* Waits for n requests, polling (MPI moves data only inside its calls). A gradient reduction or
 * a large transfer (spin) is polled without pause: all ranks are in it and it needs the CPU.
 * Other waits poll for 20 ms, then with short sleeps, so that ranks waiting for a slower one
 * (rank 0 writing a checkpoint) leave the cores to it. Past the timeout the job is ended: the
 * other ranks would otherwise wait forever. */
static void sm__mpi_wait(sm__mpi *m, MPI_Request *req, int n, const char *what, bool spin)
{
    double t0 = sm__mono();
    for (;;) {
        int done = 0;
        MPI_Testall(n, req, &done, MPI_STATUSES_IGNORE);
        if (done) return;
        double waited = sm__mono() - t0;
        if (!spin && waited > 0.02) {
            struct timespec ts = {0, 200000};
            nanosleep(&ts, NULL);
        }
        if (waited > m->timeout) {
            sm_log(SM_LOG_ERROR,
                   "rank %d of %d: waited %.0f s for the other ranks in %s: one of them has "
                   "stopped, hung or lost its node (SIMMIM_COMM_TIMEOUT); ending the job",
                   m->rank, m->size, waited, what);
            sm__mpi_abort(m, 1);
        }
    }
}

static MPI_Op sm__mpi_op(sm_comm_op op)
{
    return op == SM_COMM_MAX ? MPI_MAX : op == SM_COMM_MIN ? MPI_MIN : MPI_SUM;
}

/* Starts the reduction of n elements in chunks of at most SM__MPI_CHUNK, appending the requests
 * to req (room for enough of them checked by the caller). */
static int sm__mpi_start_reduce(void *buf, size_t n, size_t elem, MPI_Op op, MPI_Request *req,
                                int *nreq, sm_error *err)
{
    MPI_Datatype t = elem == sizeof(double) ? MPI_DOUBLE : MPI_FLOAT;
    for (size_t at = 0; at < n; at += SM__MPI_CHUNK) {
        int count = (int)(n - at < SM__MPI_CHUNK ? n - at : SM__MPI_CHUNK);
        int mrc = MPI_Iallreduce(MPI_IN_PLACE, (char *)buf + at * elem, count, t, op,
                                 MPI_COMM_WORLD, &req[(*nreq)++]);
        if (mrc != MPI_SUCCESS) return sm__mpi_error(mrc, "MPI_Iallreduce", err);
    }
    return 0;
}

static int sm__mpi_chunks(size_t n) { return (int)((n + SM__MPI_CHUNK - 1) / SM__MPI_CHUNK); }

int sm__mpi_allreduce(sm__mpi *m, void *buf, size_t n, size_t elem, sm_comm_op op, sm_error *err)
{
    MPI_Request req[16];
    int nreq = 0;
    if (sm__mpi_chunks(n) > (int)SM__ARRAY_LEN(req))
        return sm_error_set(err, SM_EINVAL, NULL, 0, 0, NULL, "all-reduce of %zu values: too many", n);
    int rc = sm__mpi_start_reduce(buf, n, elem, sm__mpi_op(op), req, &nreq, err);
    if (nreq) sm__mpi_wait(m, req, nreq, "an all-reduce", n * elem > (1 << 20));
    return rc;
}

int sm__mpi_bcast(sm__mpi *m, void *buf, size_t bytes, int root, sm_error *err)
{
    MPI_Request req[64];
    int nreq = 0, rc = 0;
    if (sm__mpi_chunks(bytes) > (int)SM__ARRAY_LEN(req))
        return sm_error_set(err, SM_EINVAL, NULL, 0, 0, NULL, "broadcast of %zu bytes: too large",
                            bytes);
    for (size_t at = 0; at < bytes && !rc; at += SM__MPI_CHUNK) {
        int count = (int)(bytes - at < SM__MPI_CHUNK ? bytes - at : SM__MPI_CHUNK);
        int mrc = MPI_Ibcast((char *)buf + at, count, MPI_BYTE, root, MPI_COMM_WORLD, &req[nreq++]);
        if (mrc != MPI_SUCCESS) rc = sm__mpi_error(mrc, "MPI_Ibcast", err);
    }
    if (nreq) sm__mpi_wait(m, req, nreq, "a broadcast", bytes > (1 << 20));
    return rc;
}

int sm__mpi_barrier(sm__mpi *m, sm_error *err)
{
    MPI_Request req;
    int mrc = MPI_Ibarrier(MPI_COMM_WORLD, &req);
    if (mrc != MPI_SUCCESS) return sm__mpi_error(mrc, "MPI_Ibarrier", err);
    sm__mpi_wait(m, &req, 1, "a barrier", false);
    return 0;
}

int sm__mpi_isum_f32(sm__mpi *m, float *buf, size_t n, sm_error *err)
{
    if (m->npending + sm__mpi_chunks(n) > SM_COMM_MAX_PENDING)
        return sm_error_set(err, SM_EINVAL, NULL, 0, 0, NULL,
                            "more than %d reductions in flight", SM_COMM_MAX_PENDING);
    return sm__mpi_start_reduce(buf, n, sizeof(float), MPI_SUM, m->pending, &m->npending, err);
}

void sm__mpi_progress(sm__mpi *m)
{
    int done = 0;
    if (m->npending) MPI_Testall(m->npending, m->pending, &done, MPI_STATUSES_IGNORE);
}

int sm__mpi_wait_all(sm__mpi *m, sm_error *err)
{
    (void)err;
    if (m->npending) sm__mpi_wait(m, m->pending, m->npending, "the gradient all-reduce", true);
    m->npending = 0;
    return 0;
}
