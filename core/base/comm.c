/* core/base/comm.c - the communicator of a data-parallel job (simmim/comm.h): a single process,
 * or MPI through comm_mpi.c when the build has it and a launcher started the process. */
#include "base/comm_internal.h"

#include <unistd.h>

struct sm_comm {
    sm__mpi *mpi; /* NULL: a single process */
    int rank, size, local_size;
    char host[256];
};

/* The environment variables MPI launchers set for their processes (Open MPI's mpirun, PMIx
 * (srun --mpi=pmix, Open MPI 5), PMI-1/2 (MPICH's hydra, srun --mpi=pmi2), MVAPICH). A batch
 * script's own SLURM_* variables do not count: they are set for the script too. */
static const char *sm__launcher_var(void)
{
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE",
                                       "PMI_RANK", "MV2_COMM_WORLD_SIZE"};
    for (size_t i = 0; i < SM__ARRAY_LEN(vars); i++)
        if (getenv(vars[i])) return vars[i];
    return NULL;
}

#ifndef SM_HAVE_MPI
/* The size a launcher announces (0 when it does not say). */
static long sm__launcher_size(void)
{
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MV2_COMM_WORLD_SIZE",
                                       "PMIX_SIZE"};
    for (size_t i = 0; i < SM__ARRAY_LEN(vars); i++) {
        const char *v = getenv(vars[i]);
        if (v && atol(v) > 0) return atol(v);
    }
    return 0;
}
#endif

bool sm_comm_mpi_built(void)
{
#ifdef SM_HAVE_MPI
    return true;
#else
    return false;
#endif
}

const char *sm_comm_mpi_version(void)
{
#ifdef SM_HAVE_MPI
    return sm__mpi_version();
#else
    return "not built in";
#endif
}


int sm_comm_init(int *argc, char ***argv, sm_comm **out, sm_error *err)
{
    *out = NULL;
    sm_comm *c = calloc(1, sizeof *c);
    if (!c) return sm_error_set(err, SM_ENOMEM, NULL, 0, 0, NULL, "out of memory");
    c->size = c->local_size = 1;
    if (gethostname(c->host, sizeof c->host) != 0) sm__strlcpy(c->host, "?", sizeof c->host);
    c->host[sizeof c->host - 1] = '\0';
    const char *var = sm__launcher_var(), *force = getenv("SIMMIM_MPI");
    bool use = var && !(force && strcmp(force, "0") == 0);
#ifdef SM_HAVE_MPI
    if (use) {
        sm__mpi_place pl;
        int rc = sm__mpi_init(argc, argv, &c->mpi, &pl, err);
        if (rc) {
            free(c);
            return rc;
        }
        c->rank = pl.rank;
        c->size = pl.size;
        c->local_size = pl.local_size;
        memcpy(c->host, pl.host, sizeof c->host);
        const char *t = getenv("SIMMIM_COMM_TIMEOUT");
        sm__mpi_set_timeout(c->mpi, t && atof(t) > 0 ? atof(t) : 600.0);
    }
#else
    (void)argc;
    (void)argv;
    if (use && sm__launcher_size() > 1) {
        free(c);
        return sm_error_set(err, SM_EUNSUPPORTED, NULL, 0, 0, NULL,
                            "started by an MPI launcher (%s=%s, %ld processes), but this simmim "
                            "was built without MPI: each process would run the whole job alone. "
                            "Rebuild with ./configure --with-mpi (docs/scaling.md), or set "
                            "SIMMIM_MPI=0 to run them independently",
                            var, getenv(var), sm__launcher_size());
    }
#endif
    *out = c;
    return 0;
}

void sm_comm_finalize(sm_comm *c)
{
    if (!c) return;
#ifdef SM_HAVE_MPI
    if (c->mpi) sm__mpi_finalize(c->mpi);
#endif
    free(c);
}

int sm_comm_rank(const sm_comm *c) { return c ? c->rank : 0; }
int sm_comm_size(const sm_comm *c) { return c ? c->size : 1; }
int sm_comm_local_size(const sm_comm *c) { return c ? c->local_size : 1; }

const char *sm_comm_host(const sm_comm *c)
{
    static char host[256];
    if (c) return c->host;
    if (!host[0] && gethostname(host, sizeof host - 1) != 0) sm__strlcpy(host, "?", sizeof host);
    return host;
}

void sm_comm_set_timeout(sm_comm *c, double seconds)
{
#ifdef SM_HAVE_MPI
    if (c && c->mpi && seconds > 0) sm__mpi_set_timeout(c->mpi, seconds);
#else
    (void)c;
    (void)seconds;
#endif
}

/* The operations below do nothing for a single process: every rank's values are its own. */
#ifdef SM_HAVE_MPI
#define SM__MPI(c, call) ((c) && (c)->mpi ? (call) : 0)
#else
#define SM__MPI(c, call) ((void)(c), 0)
#endif

int sm_comm_allreduce_f32(sm_comm *c, float *buf, size_t n, sm_comm_op op, sm_error *err)
{
    (void)buf, (void)n, (void)op, (void)err;
    return SM__MPI(c, sm__mpi_allreduce(c->mpi, buf, n, sizeof(float), op, err));
}

int sm_comm_allreduce_f64(sm_comm *c, double *buf, size_t n, sm_comm_op op, sm_error *err)
{
    (void)buf, (void)n, (void)op, (void)err;
    return SM__MPI(c, sm__mpi_allreduce(c->mpi, buf, n, sizeof(double), op, err));
}

int sm_comm_bcast(sm_comm *c, void *buf, size_t bytes, int root, sm_error *err)
{
    (void)buf, (void)bytes, (void)root, (void)err;
    return SM__MPI(c, sm__mpi_bcast(c->mpi, buf, bytes, root, err));
}

int sm_comm_barrier(sm_comm *c, sm_error *err)
{
    (void)err;
    return SM__MPI(c, sm__mpi_barrier(c->mpi, err));
}

int sm_comm_isum_f32(sm_comm *c, float *buf, size_t n, sm_error *err)
{
    (void)buf, (void)n, (void)err;
    return SM__MPI(c, sm__mpi_isum_f32(c->mpi, buf, n, err));
}

void sm_comm_progress(sm_comm *c)
{
#ifdef SM_HAVE_MPI
    if (c && c->mpi) sm__mpi_progress(c->mpi);
#else
    (void)c;
#endif
}

int sm_comm_wait_all(sm_comm *c, sm_error *err)
{
    (void)err;
    return SM__MPI(c, sm__mpi_wait_all(c->mpi, err));
}

void sm_comm_abort(sm_comm *c, int code, const char *why)
{
    if (!c || c->size < 2) return;
    sm_log(SM_LOG_ERROR, "rank %d of %d (%s): %s; ending the job", c->rank, c->size, c->host,
           why ? why : "failed");
#ifdef SM_HAVE_MPI
    sm__mpi_abort(c->mpi, code);
#else
    (void)code;
#endif
}
