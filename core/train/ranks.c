/* core/train/ranks.c - what the ranks of a data-parallel run agree on (docs/scaling.md): that
 * every rank set up, that they run the same config (but for the keys each rank may set for
 * itself), that they read the same data, where the run starts (rank 0 decides), a stop request
 * and the bad files at every optimizer step, and that their weights are the same when a
 * checkpoint is written. With one rank every function returns at once.
 *
 * An error every rank learns of here ends the run on every rank together (r->agreed); any other
 * error on one rank leaves the others waiting in a collective, and the caller ends the job
 * (sm_train_result.abort_job). */
#include "train/train_internal.h"

#include <math.h>

/* The agreed error of a rank that failed, seen from one that did not. */
static int sm__others_failed(sm__run *r, const double *v, const char *what, sm_error *err)
{
    int first = -1, count = 0;
    for (int q = 0; q < r->ranks; q++)
        if (v[q] != 0) {
            count++;
            first = first < 0 ? q : first;
        }
    r->agreed = true;
    return sm_error_set(err, (int)v[first], NULL, 0, 0, NULL,
                        "%s on rank %d%s (%s): its message names the cause", what, first,
                        count > 1 ? " and others" : "", sm_status_str((int)v[first]));
}

int sm__ranks_agree(sm__run *r, int rc, const char *what, sm_error *err)
{
    if (r->ranks < 2) return rc;
    double *v = calloc((size_t)r->ranks, sizeof *v);
    if (!v) return rc ? rc : sm_error_set(err, SM_ENOMEM, NULL, 0, 0, NULL, "out of memory");
    v[r->rank] = rc;
    sm_error e;
    int crc = sm_comm_allreduce_f64(r->comm, v, (size_t)r->ranks, SM_COMM_SUM, &e);
    int out = rc;
    if (crc) {
        out = rc ? rc : crc;
        if (!rc) *err = e;
    } else {
        bool any = false;
        for (int q = 0; q < r->ranks; q++) any = any || v[q] != 0;
        if (rc) r->agreed = true;
        if (!rc && any) out = sm__others_failed(r, v, what, err);
    }
    free(v);
    return out;
}

int sm__ranks_bcast_status(sm__run *r, int rc, const char *what, sm_error *err)
{
    if (r->ranks < 2) return rc;
    int64_t v = rc;
    sm_error e;
    if (sm_comm_bcast(r->comm, &v, sizeof v, 0, &e)) {
        if (!rc) *err = e;
        return rc ? rc : e.code;
    }
    r->agreed = v != 0;
    if (r->rank == 0 || !v) return rc;
    return sm_error_set(err, (int)v, NULL, 0, 0, NULL, "%s on rank 0 (%s): its message names the cause",
                        what, sm_status_str((int)v));
}

/* Count, classes and a hash of 64 sample names spread over the dataset. */
static void sm__data_signature(const sm_dataset *ds, uint64_t sig[3])
{
    int64_t n = ds->vt->count(ds->self);
    uint64_t h = 1469598103934665603ull;
    for (int64_t k = 0; k < 64 && n > 0; k++) {
        int64_t i = k * (n - 1) / 63;
        sm_sample smp;
        memset(&smp, 0, sizeof smp);
        const char *name = ds->vt->get(ds->self, i, &smp, NULL) ? "?"
                           : smp.name                           ? smp.name
                           : smp.path                           ? smp.path
                                                                : "";
        for (const char *c = name; *c; c++) h = (h ^ (unsigned char)*c) * 1099511628211ull;
        h = (h ^ (uint64_t)(smp.label + 1)) * 1099511628211ull;
    }
    sig[0] = (uint64_t)n;
    sig[1] = (uint64_t)ds->vt->num_classes(ds->self);
    sig[2] = h;
}

int sm__ranks_check_data(sm__run *r, const sm_dataset *ds, const char *split, sm_error *err)
{
    if (r->ranks < 2 || !ds->vt) return 0;
    uint64_t mine[3], root[3];
    sm__data_signature(ds, mine);
    memcpy(root, mine, sizeof root);
    int rc = sm_comm_bcast(r->comm, root, sizeof root, 0, err);
    if (rc) return rc;
    double differ = memcmp(mine, root, sizeof mine) != 0;
    if (differ)
        sm_log(SM_LOG_ERROR,
               "rank %d (%s) sees other %s data in %s than rank 0: %llu samples of %llu classes "
               "here, %llu of %llu there%s; every rank must see the same files at the same path",
               r->rank, sm_comm_host(r->comm), split, r->set.data_section,
               (unsigned long long)mine[0], (unsigned long long)mine[1],
               (unsigned long long)root[0], (unsigned long long)root[1],
               mine[0] == root[0] && mine[1] == root[1] ? " (other file names)" : "");
    if ((rc = sm_comm_allreduce_f64(r->comm, &differ, 1, SM_COMM_SUM, err))) return rc;
    if (differ == 0) return 0;
    r->agreed = true;
    return sm_error_set(err, SM_EDATA, NULL, 0, 0, r->set.data_section,
                        "%.0f rank(s) see other %s data than rank 0 (their messages say what "
                        "differs): mount the data at the same path on every node",
                        differ, split);
}

/* Walks the effective config's YAML (sm_config_to_yaml: two-space indents, lists as "- item"
 * lines at their key's indent) one line at a time, naming each line by its dotted key path. */
typedef struct sm__yaml_walk {
    const char *p;                   /* the next line                            */
    const char *line;                /* the current line without its indent      */
    int len, depth, indent[16];      /* the open keys: their indents ...          */
    char keys[16][64], path[1024];   /* ... and names; path = keys joined by '.'  */
} sm__yaml_walk;

static bool sm__yaml_next(sm__yaml_walk *w)
{
    while (*w->p) {
        const char *s = w->p, *e = strchr(s, '\n');
        if (!e) e = s + strlen(s);
        w->p = *e ? e + 1 : e;
        int ind = (int)strspn(s, " ");
        if (s + ind == e) continue;
        w->line = s + ind;
        w->len = (int)(e - w->line);
        if (*w->line != '-') { /* a key: close the keys at its indent or deeper, open it */
            while (w->depth > 0 && w->indent[w->depth - 1] >= ind) w->depth--;
            if (w->depth < 16) {
                size_t k = strcspn(w->line, ":\n");
                snprintf(w->keys[w->depth], sizeof w->keys[0], "%.*s", (int)k, w->line);
                w->indent[w->depth++] = ind;
            }
        }
        size_t at = 0;
        w->path[0] = '\0';
        for (int d = 0; d < w->depth && at < sizeof w->path; d++)
            at += (size_t)snprintf(w->path + at, sizeof w->path - at, "%s%s", d ? "." : "", w->keys[d]);
        return true;
    }
    return false;
}

/* Keys each rank may set for itself: how it uses its own cores, and what only rank 0 reads. */
static bool sm__rank_local_key(const char *path)
{
    static const char *const whole[] = {"output_dir", "plugin_path", "backend.threads",
                                        "train_config.resume_ckpt"};
    for (size_t i = 0; i < sizeof whole / sizeof *whole; i++)
        if (!strcmp(path, whole[i])) return true;
    const char *last = strrchr(path, '.');
    last = last ? last + 1 : path;
    return !strcmp(last, "num_workers") || !strcmp(last, "prefetch_size");
}

static bool sm__yaml_next_shared(sm__yaml_walk *w)
{
    while (sm__yaml_next(w))
        if (!sm__rank_local_key(w->path)) return true;
    return false;
}

/* Logs the first key where this rank's effective config differs from rank 0's; false if none. */
static bool sm__config_differs(const sm__run *r, const char *mine, const char *root)
{
    sm__yaml_walk a = {.p = mine}, b = {.p = root};
    for (;;) {
        bool ha = sm__yaml_next_shared(&a), hb = sm__yaml_next_shared(&b);
        if (!ha && !hb) return false;
        if (ha && hb && !strcmp(a.path, b.path) && a.len == b.len && !memcmp(a.line, b.line, (size_t)a.len))
            continue;
        sm_log(SM_LOG_ERROR,
               "rank %d (%s) runs another configuration than rank 0: at %s, '%.*s' here and "
               "'%.*s' on rank 0; every rank must run the same config and --options",
               r->rank, sm_comm_host(r->comm), ha ? a.path : b.path, ha ? a.len : 7,
               ha ? a.line : "nothing", hb ? b.len : 7, hb ? b.line : "nothing");
        return true;
    }
}

int sm__ranks_check_config(sm__run *r, sm_error *err)
{
    if (r->ranks < 2) return 0;
    uint64_t len = strlen(r->yaml);
    int rc = sm_comm_bcast(r->comm, &len, sizeof len, 0, err);
    if (rc) return rc;
    char *root = r->rank == 0 ? r->yaml : malloc(len + 1);
    rc = root ? 0 : sm_error_set(err, SM_ENOMEM, NULL, 0, 0, NULL, "out of memory");
    if ((rc = sm__ranks_agree(r, rc, "comparing the configs failed", err))) {
        if (root != r->yaml) free(root);
        return rc;
    }
    rc = sm_comm_bcast(r->comm, root, len, 0, err);
    double differ = 0;
    if (!rc) {
        root[len] = '\0';
        differ = sm__config_differs(r, r->yaml, root);
    }
    if (root != r->yaml) free(root);
    if (rc || (rc = sm_comm_allreduce_f64(r->comm, &differ, 1, SM_COMM_SUM, err))) return rc;
    if (differ == 0) return 0;
    r->agreed = true;
    return sm_error_set(err, SM_ECONFIG, NULL, 0, 0, NULL,
                        "%.0f rank(s) run another configuration than rank 0 (their messages name "
                        "the first key that differs): start every rank with the same config file "
                        "and --options", differ);
}

/* Sends this rank's bad files [*shared, count) to the others (rank q's turn when v[q] > 0) and
 * records theirs, as "index\0name\0reason\0" records. */
static int sm__share_bad(sm__run *r, sm_loader *l, size_t *shared, const double *v, sm_error *err)
{
    int rc = 0;
    size_t mine_end = sm_loader_bad_count(l);
    for (int q = 0; q < r->ranks && !rc; q++) {
        if (v[q] == 0) continue;
        char *blob = NULL;
        uint64_t len = 0;
        if (q == r->rank) {
            for (size_t i = *shared; i < mine_end; i++)
                len += 24 + strlen(sm_loader_bad_name(l, i)) + strlen(sm_loader_bad_reason(l, i)) + 3;
            if (!(blob = malloc(len ? len : 1))) return sm_error_set(err, SM_ENOMEM, NULL, 0, 0, NULL, "out of memory");
            size_t at = 0;
            for (size_t i = *shared; i < mine_end; i++)
                at += (size_t)sprintf(blob + at, "%lld%c%s%c%s%c", (long long)sm_loader_bad_index(l, i), 0,
                                      sm_loader_bad_name(l, i), 0, sm_loader_bad_reason(l, i), 0);
            len = at;
        }
        if ((rc = sm_comm_bcast(r->comm, &len, sizeof len, q, err))) break;
        if (q != r->rank && !(blob = malloc(len ? len : 1)))
            return sm_error_set(err, SM_ENOMEM, NULL, 0, 0, NULL, "out of memory");
        rc = sm_comm_bcast(r->comm, blob, (size_t)len, q, err);
        for (size_t at = 0; !rc && q != r->rank && at < len;) {
            const char *idx = blob + at, *name = idx + strlen(idx) + 1;
            const char *why = name + strlen(name) + 1;
            at = (size_t)(why + strlen(why) + 1 - blob);
            rc = sm_loader_add_bad(l, atoll(idx), name, why, err);
        }
        free(blob);
    }
    *shared = sm_loader_bad_count(l);
    return rc;
}

/* The exchange after each update (and after an evaluation, stop = false): v[q] = the bad files
 * rank q found since the last exchange, v[ranks] = stop requests. */
static int sm__exchange(sm__run *r, sm_loader *l, size_t *shared, bool stop, sm_error *err)
{
    if (r->ranks < 2) return 0;
    double *v = calloc((size_t)r->ranks + 1, sizeof *v);
    if (!v) return sm_error_set(err, SM_ENOMEM, NULL, 0, 0, NULL, "out of memory");
    v[r->rank] = (double)(sm_loader_bad_count(l) - *shared);
    v[r->ranks] = stop;
    int rc = sm_comm_allreduce_f64(r->comm, v, (size_t)r->ranks + 1, SM_COMM_SUM, err);
    bool any_bad = false;
    for (int q = 0; q < r->ranks; q++) any_bad = any_bad || v[q] > 0;
    if (!rc && v[r->ranks] > 0 && !r->stop_agreed) {
        r->stop_agreed = true;
        if (!stop) sm_log(SM_LOG_INFO, "another rank was asked to stop: stopping with it");
    }
    if (!rc && any_bad) rc = sm__share_bad(r, l, shared, v, err);
    free(v);
    if (!rc && any_bad && (rc = sm_loader_check_bad(l, err))) r->agreed = true;
    return rc;
}

int sm__ranks_step(sm__run *r, sm_error *err)
{
    bool stop = r->opts && r->opts->stop && *r->opts->stop;
    return sm__exchange(r, r->loader, &r->bad_shared, stop, err);
}

int sm__ranks_after_eval(sm__run *r, sm_error *err)
{
    return sm__exchange(r, r->eval_loader, &r->eval_bad_shared, false, err);
}

int sm__ranks_positions(sm__run *r, int64_t position, sm_error *err)
{
    if (r->ranks < 2) {
        r->positions[0] = position;
        return 0;
    }
    double *v = calloc((size_t)r->ranks, sizeof *v);
    if (!v) return sm_error_set(err, SM_ENOMEM, NULL, 0, 0, NULL, "out of memory");
    v[r->rank] = (double)position; /* exact below 2^53 */
    int rc = sm_comm_allreduce_f64(r->comm, v, (size_t)r->ranks, SM_COMM_SUM, err);
    for (int q = 0; q < r->ranks && !rc; q++) r->positions[q] = (int64_t)v[q];
    free(v);
    return rc;
}

int sm__ranks_same_weights(sm__run *r, sm_error *err)
{
    if (r->ranks < 2) return 0;
    uint64_t h = sm__trainer_hash(r->tr);
    double v[4] = {(double)(h >> 32), (double)(h & 0xffffffffu), -(double)(h >> 32),
                   -(double)(h & 0xffffffffu)};
    int rc = sm_comm_allreduce_f64(r->comm, v, 4, SM_COMM_MAX, err);
    if (rc || (v[0] == -v[2] && v[1] == -v[3])) return rc;
    sm_log(SM_LOG_WARN, "the ranks' weights differ at step %lld (the MPI library's sums were not "
                        "the same on every rank?): continuing from rank 0's",
           (long long)sm_trainer_steps(r->tr));
    return sm__trainer_bcast(r->tr, 0, err);
}

int sm__ranks_resume(sm__run *r, sm__ckpt_state *st, bool *resumed, int rc, sm_error *err)
{
    /* rank 0's start on every rank: its status, where it stands, each rank's loader position */
    for (int q = 0; q < r->ranks; q++)
        r->positions[q] = st->positions && q < st->ranks ? st->positions[q] : 0;
    free(st->positions);
    st->positions = NULL;
    st->ranks = r->ranks;
    if (r->ranks > 1) {
        rc = sm__ranks_bcast_status(r, rc, "starting the run failed", err);
        bool loaded = *resumed || r->set.resume_ckpt[0];
        int64_t head[5] = {*resumed, loaded, st->epoch, st->batch, st->step};
        if (!rc) rc = sm_comm_bcast(r->comm, head, sizeof head, 0, err);
        if (!rc)
            rc = sm_comm_bcast(r->comm, r->positions, (size_t)r->ranks * sizeof *r->positions, 0,
                               err);
        if (!rc) {
            *resumed = head[0] != 0;
            st->epoch = head[2];
            st->batch = head[3];
            st->step = head[4];
            /* what rank 0 loaded; a fresh start only checks (the initialisation is the same) */
            rc = head[1] ? sm__trainer_bcast(r->tr, 0, err) : sm__ranks_same_weights(r, err);
        }
    }
    st->position = r->positions[r->rank];
    return rc;
}
