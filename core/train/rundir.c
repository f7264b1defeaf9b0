/* core/train/rundir.c - a run's output directory: created on demand, locked for one run at a
 * time, owned by one run (task and checkpoint prefix), and its text files written atomically. */
#include "train/train_internal.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* mkdir -p; *created tells whether the last component was made here. */
int sm__rundir_create(const char *path, bool *created, sm_error *err)
{
    *created = false;
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return sm_error_set(err, SM_EINVAL, path, 0, 0, "output_dir", "path too long");
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            if (mkdir(buf, 0777) == 0)
                *created = !c;
            else if (errno != EEXIST)
                return sm_error_set(err, SM_EIO, buf, 0, 0, "output_dir",
                                    "cannot create the output directory: %s", strerror(errno));
            *p = c;
            if (!c) break;
        }
    }
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return sm_error_set(err, SM_EIO, path, 0, 0, "output_dir", "not a directory");
    if (access(path, W_OK) != 0)
        return sm_error_set(err, SM_EIO, path, 0, 0, "output_dir",
                            "the output directory is not writable: %s", strerror(errno));
    return 0;
}

/* One run per output directory: an exclusive lock on <dir>/.lock, released at exit. */
int sm__rundir_lock(sm__run *r, sm_error *err)
{
    char path[PATH_MAX + 8];
    snprintf(path, sizeof path, "%s/.lock", r->set.out_dir);
    r->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (r->lock_fd < 0)
        return sm_error_set(err, SM_EIO, path, 0, 0, NULL, "cannot create the lock file: %s",
                            strerror(errno));
    if (flock(r->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        char pid[32] = "";
        ssize_t n = pread(r->lock_fd, pid, sizeof pid - 1, 0);
        pid[n > 0 ? n : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        close(r->lock_fd);
        r->lock_fd = -1;
        return sm_error_set(err, SM_EIO, r->set.out_dir, 0, 0, "output_dir",
                            "another run (pid %s) is using this output directory",
                            pid[0] ? pid : "?");
    }
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(r->lock_fd, 0) != 0 || pwrite(r->lock_fd, pid, (size_t)n, 0) != n)
        return sm_error_set(err, SM_EIO, path, 0, 0, NULL, "cannot write the lock file: %s",
                            strerror(errno));
    return 0;
}

/* Removes temporary files that an interrupted run left (a checkpoint or a summary being written
 * when the process was killed: "<name>.tmp.<pid>[.<n>]"). Called with the directory locked, so
 * no other run is writing them. */
void sm__rundir_remove_stale_temps(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *de;
    while ((de = readdir(d))) {
        const char *t = strstr(de->d_name, ".tmp.");
        if (!t || t == de->d_name || !isdigit((unsigned char)t[5])) continue;
        char *path = sm__path_join(dir, de->d_name);
        if (path && unlink(path) == 0)
            sm_log(SM_LOG_WARN, "removed %s, left by an interrupted run", path);
        free(path);
    }
    closedir(d);
}

int sm__write_file(const char *dir, const char *name, const char *text, sm_error *err)
{
    char path[PATH_MAX + 64], tmp[PATH_MAX + 80];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f) return sm_error_set(err, SM_EIO, tmp, 0, 0, NULL, "cannot write: %s", strerror(errno));
    size_t len = strlen(text);
    bool ok = fwrite(text, 1, len, f) == len;
    ok = fflush(f) == 0 && ok;
    ok = fsync(fileno(f)) == 0 && ok;
    int e = errno;
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        e = ok ? errno : e;
        unlink(tmp);
        return sm_error_set(err, SM_EIO, path, 0, 0, NULL, "cannot write: %s", strerror(e));
    }
    return 0;
}

/* An output directory belongs to one run: if it holds the config.yaml of a run with another
 * task or checkpoint prefix, this run would overwrite that run's files (and prune its
 * checkpoints), so it is refused. */
int sm__rundir_check_owner(const sm__run *r, sm_error *err)
{
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/config.yaml", r->set.out_dir);
    if (access(path, F_OK) != 0) return 0;
    sm_config *old = NULL;
    sm_diag *d = sm_diag_new();
    int rc = sm_config_read(path, NULL, 0, &old, d);
    sm_diag_free(d);
    if (rc)
        return sm_error_set(err, SM_EEXIST, path, 0, 0, "output_dir",
                            "the output directory holds a config.yaml that cannot be read: "
                            "use another output_dir");
    const sm_cfg *root = sm_config_root(old);
    const char *task = sm_cfg_scalar(sm_cfg_get(root, "task"));
    const char *prefix = sm_cfg_scalar(sm_cfg_get(root, "callback.ckpt_config.prefix"));
    if ((task && strcmp(task, r->set.task_name) != 0) ||
        (prefix && strcmp(prefix, r->set.prefix) != 0))
        rc = sm_error_set(err, SM_EEXIST, r->set.out_dir, 0, 0, "output_dir",
                          "the output directory holds another run (task %s, checkpoint prefix "
                          "'%s'); this %s run (prefix '%s') would overwrite it: use another "
                          "output_dir",
                          task ? task : "?", prefix ? prefix : "?", r->set.task_name,
                          r->set.prefix);
    sm_config_free(old);
    return rc;
}
