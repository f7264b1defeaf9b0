/* core/train/train.c - sm_train (simmim/train.h): SimMIM pretraining, fine-tuning with
 * evaluation, and evaluation alone, from a validated config. The pieces live beside this file
 * (train_internal.h lists them); this one sets a run up, runs it and tears it down.
 * Everything that can fail on the user's data or components happens before anything is
 * written; a directory made for the run is removed again if setting up fails.
 * With several ranks (ranks.c) each sets up its own data share and trainer, rank 0 alone takes
 * the output directory and decides where the run starts, and they agree on every failure that
 * can stop them before the first step. */
#include "train/train_internal.h"

#include <math.h>
#include <omp.h>
#include <unistd.h>

/* The training and evaluation data of the task. */
static int sm__setup_data(sm__run *r, sm_error *err)
{
    const sm_cfg *root = sm_config_root(r->cfg);
    const char *sec = r->set.data_section;
    /* a reader's reports (split lists) are written by the writing rank only */
    sm_dataset_opts dopts = {.split = SM_SPLIT_TRAIN, .seed = r->set.seed,
                             .out_dir = r->writer ? r->set.out_dir : NULL};
    sm_loader_opts lo;
    int rc = 0;
    if (r->set.task != SM__RUN_EVAL) {
        sm_pipeline_mode kind =
            r->set.task == SM__RUN_PRETRAIN ? SM_PIPELINE_PRETRAIN : SM_PIPELINE_FINETUNE;
        if ((rc = sm_dataset_open(&r->ds, r->reg, root, sec, &dopts, err)) ||
            (rc = sm_pipeline_from_config(&r->pipe, root, sec, kind, err)))
            return rc;
        sm_loader_opts_from_config(&lo, root, sec, SM_SPLIT_TRAIN);
        lo.shard = r->rank;
        lo.num_shards = r->ranks;
        if ((rc = sm_loader_new(&r->ds, &r->pipe, &lo, &r->loader, err))) return rc;
    }
    if (r->set.task == SM__RUN_PRETRAIN) return 0;
    dopts.split = SM_SPLIT_EVAL;
    if ((rc = sm_dataset_open(&r->eval_ds, r->reg, root, sec, &dopts, err)) ||
        (rc = sm_pipeline_from_config(&r->eval_pipe, root, sec, SM_PIPELINE_EVAL, err)))
        return rc;
    sm_loader_opts_from_config(&lo, root, sec, SM_SPLIT_EVAL);
    lo.shard = r->rank;
    lo.num_shards = r->ranks;
    return sm_loader_new(&r->eval_ds, &r->eval_pipe, &lo, &r->eval_loader, err);
}

/* The trainer: classes from the dataset unless the config says, steps per epoch from the
 * loader (capped by per_epoch_size). */
static int sm__setup_trainer(sm__run *r, sm_error *err)
{
    sm_trainer_opts to = {.backend = r->be, .comm = r->comm};
    if (r->set.task != SM__RUN_PRETRAIN) {
        const sm_dataset *ds = r->loader ? &r->ds : &r->eval_ds;
        int dc = ds->vt->num_classes(ds->self);
        if (r->set.num_classes && r->set.num_classes < dc)
            return sm_error_set(err, SM_ECONFIG, NULL, 0, 0, "train_config.num_classes",
                                "%lld is fewer than the %d classes of the dataset",
                                (long long)r->set.num_classes, dc);
        to.num_classes = r->set.num_classes ? 0 : dc;
    }
    if (r->loader) {
        int64_t nb = sm_loader_num_batches(r->loader), cap = r->set.per_epoch_size;
        int64_t A = r->set.accumulation;
        r->spe = cap > 0 && cap < nb ? cap : nb;
        r->spe -= r->spe % A; /* the micro-batches of a last incomplete update are left out */
        r->updates = r->spe / A;
        if (r->spe < 1)
            return sm_error_set(err, SM_EDATA, NULL, 0, 0, "train_config.batch_size",
                                "the dataset holds %lld samples, fewer than one optimizer step "
                                "of %lld x %lld x %d ranks",
                                (long long)r->ds.vt->count(r->ds.self), (long long)A,
                                (long long)r->set.batch_size, r->ranks);
        to.steps_per_epoch = r->spe;
    }
    int rc = sm_trainer_new(r->reg, r->cfg, &to, &r->tr, err);
    if (!rc && r->set.threads > 0) sm_ctx_set_threads(sm_trainer_ctx(r->tr), r->set.threads);
    return rc;
}

/* Ranks sharing a machine share its cores: backend.threads 0 means this rank's part of them
 * (the cores it may run on, divided by the ranks on the machine; OMP_NUM_THREADS when set). */
static void sm__share_cores(sm__run *r)
{
    int local = sm_comm_local_size(r->comm);
    if (r->set.threads > 0 || local < 2) return;
    const char *env = getenv("OMP_NUM_THREADS");
    int n = env && atoi(env) > 0 ? atoi(env) : omp_get_num_procs() / local;
    r->set.threads = n > 0 ? n : 1;
    omp_set_num_threads(r->set.threads);
    sm_log(SM_LOG_INFO, "%d ranks on this machine (%s): %d thread%s each (backend.threads 0)",
           local, sm_comm_host(r->comm), r->set.threads, r->set.threads == 1 ? "" : "s");
}

static void sm__log_setup(const sm__run *r)
{
    char desc[256];
    sm_backend_describe(sm_trainer_backend(r->tr), desc, sizeof desc);
    sm_log(SM_LOG_INFO, "%s: task %s, output %s, backend %s, subnormals %s",
           sm_config_file(r->cfg), r->set.task_name, r->set.out_dir, desc,
           sm_fpenv_flushing() ? "flushed to zero" : "kept (IEEE)");
    sm_model *m = sm_trainer_model(r->tr);
    const sm_backbone_info *info = sm_model_info(m);
    sm_log(SM_LOG_INFO, "model: %s %s, %lld parameters, patch %d, stride %d",
           sm_model_task(m) == SM_TASK_SIMMIM ? "SimMIM" : "classifier", r->set.backbone,
           (long long)sm_params_numel(sm_model_params(m)), info->patch_size, info->encoder_stride);
    if (r->ranks > 1)
        sm_log(SM_LOG_INFO, "data parallel: %d ranks (%s), global batch %lld = %lld x %d ranks x "
                            "%lld accumulation steps; rank 0 writes %s",
               r->ranks, sm_comm_mpi_version(), (long long)sm__global_batch(&r->set),
               (long long)r->set.batch_size, r->ranks, (long long)r->set.accumulation,
               r->set.out_dir);
    else
        sm_log(SM_LOG_INFO, "one process (MPI %s)",
               sm_comm_mpi_built() ? "built in; mpirun -np N simmimctl run for N ranks"
                                   : "not built in");
}

/* Everything that reads the user's data and components, then the directory is taken (by the
 * writing rank; the others never touch it). */
static int sm__setup(sm__run *r, sm_error *err)
{
    bool created = false;
    int rc = r->writer ? sm__resume_ckpt_exists(r, err) : 0;
    if (!rc && r->writer) rc = sm__rundir_create(r->set.out_dir, &created, err);
    r->created_dir = created;
    char real[PATH_MAX];
    if (!rc && r->writer && realpath(r->set.out_dir, real))
        memcpy(r->set.out_dir, real, strlen(real) + 1);
    sm__share_cores(r);
    if (!rc)
        rc = sm_backend_new(r->reg, r->set.backend_name, r->set.backend, r->set.threads, &r->be,
                            err);
    if (!rc) rc = sm__setup_data(r, err);
    if (!rc) rc = sm__setup_trainer(r, err);
    if (rc && created) rmdir(r->set.out_dir); /* only if still empty */
    if (!rc && r->writer) rc = sm__rundir_lock(r, err);
    if (!rc && r->writer) sm__rundir_remove_stale_temps(r->set.out_dir);
    size_t ylen = 0;
    if (!rc && (rc = sm_config_to_yaml(r->cfg, &r->yaml, &ylen)))
        sm_error_set(err, rc, NULL, 0, 0, NULL, "cannot render the effective config");
    if (!rc && r->writer && r->set.task != SM__RUN_EVAL) rc = sm__rundir_check_owner(r, err);
    if (!rc) sm__log_setup(r);
    rc = sm__ranks_agree(r, rc, "setting up failed", err);
    if (!rc) rc = sm__ranks_check_config(r, err);
    if (!rc && r->loader) rc = sm__ranks_check_data(r, &r->ds, "training", err);
    if (!rc && r->eval_loader) rc = sm__ranks_check_data(r, &r->eval_ds, "evaluation", err);
    return rc;
}

/* The job itself, once the run knows where it starts. */
static int sm__run_job(sm__run *r, sm__ckpt_state *st, bool resumed, sm_train_result *res,
                       sm_error *err)
{
    if (resumed && st->epoch >= r->set.epochs) { /* nothing left to do */
        res->epochs = st->epoch;
        res->steps = st->step;
        sm_log(SM_LOG_INFO, "the run is already complete (%lld epochs, %lld steps)",
               (long long)st->epoch, (long long)st->step);
        return 0;
    }
    if (r->set.task == SM__RUN_EVAL) return sm__evaluate(r, 0, &res->eval_top1, &res->eval_top5, err);
    return sm__train_loop(r, st, res, err);
}

static void sm__report_bad_images(const sm__run *r)
{
    size_t nb = r->loader ? sm_loader_bad_count(r->loader) : 0;
    if (!nb || !r->writer) return;
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/bad_images.txt", r->set.out_dir);
    sm_loader_write_bad_report(r->loader, path, NULL);
    sm_log(SM_LOG_WARN, "%zu bad image%s skipped; the list is in %s", nb,
           nb == 1 ? " was" : "s were", path);
}

static void sm__run_free(sm__run *r)
{
    sm_loader_free(r->loader);
    sm_loader_free(r->eval_loader);
    sm_dataset_close(&r->ds);
    sm_dataset_close(&r->eval_ds);
    sm_trainer_free(r->tr);
    sm_backend_free(r->be);
    free(r->vis_images);
    free(r->vis_mask);
    free(r->yaml);
    free(r->positions);
    if (r->metrics) fclose(r->metrics);
    if (r->lock_fd >= 0) close(r->lock_fd);
}

int sm_train(const sm_registry *reg, const sm_config *cfg, const sm_train_opts *opts,
             sm_train_result *result, sm_error *err)
{
    sm_comm *comm = opts ? opts->comm : NULL;
    sm__run r = {.cfg = cfg, .reg = reg, .opts = opts, .lock_fd = -1, .t_start = sm__now(),
                 .best_top1 = -1, .best_epoch = -1, .last_mean_class = -1, .comm = comm,
                 .rank = sm_comm_rank(comm), .ranks = sm_comm_size(comm)};
    r.writer = r.rank == 0;
    sm_train_result res = {.eval_top1 = -1, .eval_top5 = -1, .last_loss = NAN, .best_top1 = -1,
                           .best_epoch = -1, .eval_mean_class = -1};
    int rc = sm__settings_read(cfg, &r.set, err);
    sm__settings_set_ranks(&r.set, r.ranks);
    if (!rc && !(r.positions = calloc((size_t)r.ranks, sizeof *r.positions)))
        rc = sm_error_set(err, SM_ENOMEM, NULL, 0, 0, NULL, "out of memory");
    if (!rc || r.ranks > 1) rc = rc ? sm__ranks_agree(&r, rc, "setting up failed", err)
                                    : sm__setup(&r, err);
    sm__ckpt_state st = {.epoch = r.set.initial_epoch};
    bool resumed = false, started = false;
    bool eval_only = r.set.task == SM__RUN_EVAL;
    if (!rc && r.writer) {
        rc = sm__resume(&r, &st, &res, &resumed, err);
        /* only now, with the run known to be this directory's, are its files written */
        if (!rc)
            rc = sm__write_file(r.set.out_dir, eval_only ? "eval-config.yaml" : "config.yaml",
                                r.yaml, err);
        started = rc == 0; /* from here on the directory's files are this run's */
        if (!rc) rc = sm__metrics_open(&r, &st, eval_only, err);
    }
    if (!rc || (r.ranks > 1 && !r.agreed)) rc = sm__ranks_resume(&r, &st, &resumed, rc, err);
    if (!rc) rc = sm__run_job(&r, &st, resumed, &res, err);
    res.best_top1 = r.best_top1;
    res.best_epoch = r.best_epoch;
    res.eval_mean_class = r.last_mean_class;
    if (r.best_epoch >= 0 && r.set.task == SM__RUN_FINETUNE)
        sm_log(SM_LOG_INFO, "best evaluation: top-1 %.2f %% after epoch %lld", r.best_top1,
               (long long)r.best_epoch + 1);
    sm__report_bad_images(&r);
    if (started) sm__write_summary(&r, &res, rc, err);
    res.abort_job = r.ranks > 1 && rc != 0 && !r.agreed;
    free(st.positions);
    if (result) *result = res;
    sm__run_free(&r);
    if (rc && !started && r.created_dir) { /* refused before its first file: leave nothing */
        char lock[PATH_MAX + 8];
        snprintf(lock, sizeof lock, "%s/.lock", r.set.out_dir);
        unlink(lock);
        rmdir(r.set.out_dir);
    }
    return rc;
}
