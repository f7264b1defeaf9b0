/* core/registry/plugin.c - the dlopen plugin loader: file checks, ABI checks, registration, search path.
 *
 * Checks happen in an order that trusts the file as late as possible: permissions and ownership
 * before dlopen (dlopen runs the plugin's constructors), the descriptor's fixed-position version
 * fields before any other field, and registration last, rolled back if it fails. */
#include "base/internal.h"
#include "registry/registry_internal.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef SM_PLUGINDIR
#define SM_PLUGINDIR "/usr/local/lib/simmim/plugins"
#endif

const char *sm_plugin_default_dir(void) { return SM_PLUGINDIR; }

static const char *sm__basename(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* Ownership and permission checks on the resolved file, through one descriptor (no
 * check-then-swap race between the checks). */
static int sm__check_file(const char *real, sm_error *err)
{
    int fd = open(real, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return sm_error_set(err, SM_EPLUGIN, real, 0, 0, NULL, "cannot open plugin: %s",
                            strerror(errno));
    struct stat st;
    int r = fstat(fd, &st);
    close(fd);
    if (r != 0)
        return sm_error_set(err, SM_EPLUGIN, real, 0, 0, NULL, "cannot stat plugin: %s",
                            strerror(errno));
    if (!S_ISREG(st.st_mode))
        return sm_error_set(err, SM_EPLUGIN, real, 0, 0, NULL,
                            "refusing plugin: not a regular file");
    if (st.st_uid != geteuid() && st.st_uid != 0)
        return sm_error_set(err, SM_EPERM, real, 0, 0, NULL,
                            "refusing plugin: owned by uid %u, not by you (uid %u) or root",
                            (unsigned)st.st_uid, (unsigned)geteuid());
    if (st.st_mode & (S_IWGRP | S_IWOTH))
        return sm_error_set(err, SM_EPERM, real, 0, 0, NULL,
                            "refusing plugin: file is %s-writable (mode %04o); "
                            "run chmod go-w on it",
                            (st.st_mode & S_IWOTH) ? "world" : "group",
                            (unsigned)(st.st_mode & 07777));
    return 0;
}

/* In an AddressSanitizer build (--enable-sanitizers) a plugin stays mapped after dlclose:
 * LeakSanitizer can then name the functions of a plugin (or of a library it loaded, BLIS) in a
 * report, and does not walk the thread-local storage of a library that is gone. */
#if defined(__SANITIZE_ADDRESS__)
#define SM__DLOPEN_KEEP RTLD_NODELETE
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SM__DLOPEN_KEEP RTLD_NODELETE
#endif
#endif
#ifndef SM__DLOPEN_KEEP
#define SM__DLOPEN_KEEP 0
#endif

static int sm__load_resolved(sm_registry *reg, const char *real, const char *stem, sm_error *err)
{
    int rc = sm__check_file(real, err);
    if (rc) return rc;

    dlerror();
    void *h = dlopen(real, RTLD_NOW | RTLD_LOCAL | SM__DLOPEN_KEEP);
    if (!h) {
        const char *e = dlerror();
        return sm_error_set(err, SM_EPLUGIN, real, 0, 0, NULL,
                            "cannot load plugin: %s (check its dependencies with ldd)",
                            e ? e : "unknown dlopen error");
    }
    dlerror();
    void *sym = dlsym(h, SM_PLUGIN_ENTRY);
    if (!sym) {
        dlclose(h);
        return sm_error_set(err, SM_EPLUGIN, real, 0, 0, NULL,
                            "not a simmim plugin: no entry symbol '%s'", SM_PLUGIN_ENTRY);
    }
    sm_plugin_describe_fn describe;
    memcpy(&describe, &sym, sizeof describe);
    const sm_plugin_desc *d = describe();
    if (!d) {
        dlclose(h);
        return sm_error_set(err, SM_EPLUGIN, real, 0, 0, NULL,
                            "plugin entry '%s' returned no descriptor", SM_PLUGIN_ENTRY);
    }
    if (d->abi_major != SM_ABI_MAJOR || d->abi_minor > SM_ABI_MINOR) {
        unsigned maj = d->abi_major, min = d->abi_minor;
        dlclose(h);
        return sm_error_set(err, SM_EABI, real, 0, 0, NULL,
                            "plugin built for ABI %u.%u, this simmim provides ABI %d.%d (%s)",
                            maj, min, SM_ABI_MAJOR, SM_ABI_MINOR,
                            maj != SM_ABI_MAJOR ? "major versions differ"
                                                : "plugin needs a newer simmim");
    }
    if (d->struct_size < offsetof(sm_plugin_desc, reserved)) {
        unsigned sz = d->struct_size;
        dlclose(h);
        return sm_error_set(err, SM_EABI, real, 0, 0, NULL,
                            "plugin descriptor is %u bytes, smaller than ABI %d.%d's %zu", sz,
                            SM_ABI_MAJOR, SM_ABI_MINOR, offsetof(sm_plugin_desc, reserved));
    }
    const char *missing = !d->name ? "name"
                          : !d->version ? "version"
                          : !d->register_components ? "register_components"
                                                     : NULL;
    if (missing) {
        dlclose(h);
        return sm_error_set(err, SM_EPLUGIN, real, 0, 0, NULL,
                            "plugin descriptor has no %s", missing);
    }

    if ((rc = sm__registry_begin(reg, real, stem)) != 0) {
        dlclose(h);
        return sm_error_set(err, rc, real, 0, 0, NULL, "out of memory");
    }
    sm_error inner;
    sm_error_clear(&inner);
    rc = d->register_components(reg, &inner);
    if (rc == 0) rc = sm__registry_failed(reg, &inner); /* an add failed and was ignored */
    if (rc != 0) {
        if (rc > 0) rc = SM_EPLUGIN;
        /* format while the plugin's strings are still mapped */
        sm_error_set(err, rc, real, 0, 0, NULL, "plugin '%s' failed to register its components: %s",
                     d->name, inner.code ? inner.text : sm_status_str(rc));
        sm__registry_rollback(reg);
        dlclose(h);
        return rc;
    }
    sm__registry_commit(reg, h, d->name, d->version);
    return 0;
}

int sm_plugin_load(sm_registry *reg, const char *path, sm_error *err)
{
    if (!reg || !path) return sm_error_set(err, SM_EINVAL, path, 0, 0, NULL, "no plugin path");
    char real[PATH_MAX];
    if (!realpath(path, real))
        return sm_error_set(err, SM_EPLUGIN, path, 0, 0, NULL, "cannot open plugin: %s",
                            strerror(errno));
    return sm__load_resolved(reg, real, sm__basename(path), err);
}

static bool sm__is_plugin_name(const char *name)
{
    size_t n = strlen(name);
    return n > 6 && strncmp(name, "sm_", 3) == 0 && strcmp(name + n - 3, ".so") == 0;
}

static int sm__cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Loads dir/name (dir resolved), refusing a symlink that leaves the directory. Every failure
 * goes to diag. */
static int sm__load_in_dir(sm_registry *reg, const char *real_dir, const char *name, sm_diag *diag)
{
    char *path = sm__path_join(real_dir, name);
    char real[PATH_MAX];
    sm_error e;
    sm_error_clear(&e);
    size_t dlen = strcmp(real_dir, "/") == 0 ? 0 : strlen(real_dir);
    int rc;
    if (!path)
        rc = sm_error_set(&e, SM_ENOMEM, real_dir, 0, 0, NULL, "out of memory");
    else if (!realpath(path, real))
        rc = sm_error_set(&e, SM_EPLUGIN, path, 0, 0, NULL, "cannot open plugin: %s",
                          strerror(errno));
    else if (strncmp(real, real_dir, dlen) != 0 || real[dlen] != '/')
        rc = sm_error_set(&e, SM_EPERM, path, 0, 0, NULL,
                          "refusing plugin: it is a symlink to %s, outside its directory", real);
    else
        rc = sm__load_resolved(reg, real, name, &e);
    if (rc) sm_diag_add(diag, SM_SEV_ERROR, &e);
    free(path);
    return rc;
}

int sm_plugin_load_dir(sm_registry *reg, const char *dir, sm_diag *diag)
{
    char real_dir[PATH_MAX];
    if (!realpath(dir, real_dir)) { /* a missing directory is not an error */
        if (errno == ENOENT || errno == ENOTDIR) return 0;
        return sm_diag_addf(diag, SM_SEV_ERROR, SM_EPLUGIN, dir, 0, 0, NULL,
                            "cannot open plugin directory: %s", strerror(errno));
    }
    struct stat st;
    if (stat(real_dir, &st) != 0) return 0;
    if (!S_ISDIR(st.st_mode))
        return sm_diag_addf(diag, SM_SEV_ERROR, SM_EPLUGIN, real_dir, 0, 0, NULL,
                            "plugin directory is not a directory");
    if (st.st_uid != geteuid() && st.st_uid != 0)
        return sm_diag_addf(diag, SM_SEV_ERROR, SM_EPERM, real_dir, 0, 0, NULL,
                            "refusing plugin directory: owned by uid %u, not by you (uid %u) "
                            "or root",
                            (unsigned)st.st_uid, (unsigned)geteuid());
    if (st.st_mode & (S_IWGRP | S_IWOTH))
        return sm_diag_addf(diag, SM_SEV_ERROR, SM_EPERM, real_dir, 0, 0, NULL,
                            "refusing plugin directory: it is %s-writable (mode %04o)",
                            (st.st_mode & S_IWOTH) ? "world" : "group",
                            (unsigned)(st.st_mode & 07777));
    DIR *dh = opendir(real_dir);
    if (!dh)
        return sm_diag_addf(diag, SM_SEV_ERROR, SM_EPLUGIN, real_dir, 0, 0, NULL,
                            "cannot read plugin directory: %s", strerror(errno));
    char **names = NULL;
    size_t n = 0, cap = 0;
    int first = 0;
    struct dirent *de;
    while (!first && (de = readdir(dh)) != NULL) {
        if (!sm__is_plugin_name(de->d_name)) continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            char **v = realloc(names, cap * sizeof *v);
            if (!v) {
                first = SM_ENOMEM;
                break;
            }
            names = v;
        }
        if (!(names[n] = sm__strdup(de->d_name)))
            first = SM_ENOMEM;
        else
            n++;
    }
    closedir(dh);
    if (first) {
        sm_diag_addf(diag, SM_SEV_ERROR, SM_ENOMEM, real_dir, 0, 0, NULL, "out of memory");
        n = 0;
    }
    if (n > 1) qsort(names, n, sizeof *names, sm__cmp_str);
    for (size_t i = 0; i < n; i++) {
        if (sm__registry_has_stem(reg, names[i])) continue; /* shadowed by an earlier dir */
        int rc = sm__load_in_dir(reg, real_dir, names[i], diag);
        if (rc && !first) first = rc;
    }
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
    return first;
}

static int sm__load_list(sm_registry *reg, const char *list, sm_diag *diag, int first)
{
    /* colon-separated */
    const char *p = list;
    while (p && *p) {
        const char *colon = strchr(p, ':');
        size_t len = colon ? (size_t)(colon - p) : strlen(p);
        if (len >= PATH_MAX) {
            int rc = sm_diag_addf(diag, SM_SEV_ERROR, SM_EPLUGIN, NULL, 0, 0, NULL,
                                  "SIMMIM_PLUGIN_PATH: an entry of %zu bytes is longer than "
                                  "PATH_MAX (%d): %.*s",
                                  len, PATH_MAX, (int)len, p);
            if (!first) first = rc;
        } else if (len > 0) {
            char dir[PATH_MAX];
            memcpy(dir, p, len);
            dir[len] = '\0';
            int rc = sm_plugin_load_dir(reg, dir, diag);
            if (rc && !first) first = rc;
        }
        p = colon ? colon + 1 : NULL;
    }
    return first;
}

int sm_plugin_load_path(sm_registry *reg, const char *const *cli_dirs, size_t n_cli,
                        const char *const *cfg_dirs, size_t n_cfg, sm_diag *diag)
{
    int first = 0, rc;
    for (size_t i = 0; i < n_cli; i++)
        if ((rc = sm_plugin_load_dir(reg, cli_dirs[i], diag)) && !first) first = rc;
    for (size_t i = 0; i < n_cfg; i++)
        if ((rc = sm_plugin_load_dir(reg, cfg_dirs[i], diag)) && !first) first = rc;
    first = sm__load_list(reg, getenv("SIMMIM_PLUGIN_PATH"), diag, first);
    if ((rc = sm_plugin_load_dir(reg, SM_PLUGINDIR, diag)) && !first) first = rc;
    return first;
}
