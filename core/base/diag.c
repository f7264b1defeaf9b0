/* core/base/diag.c - an ordered list of error records (all errors of a config file, warnings). */
#include "base/internal.h"

typedef struct sm__diag_entry {
    sm_error err;
    sm_severity sev;
    size_t seq;
} sm__diag_entry;

struct sm_diag {
    sm__diag_entry *v;
    size_t n, cap;
};

sm_diag *sm_diag_new(void) { return calloc(1, sizeof(sm_diag)); }

void sm_diag_free(sm_diag *d)
{
    if (!d) return;
    free(d->v);
    free(d);
}

int sm_diag_add(sm_diag *d, sm_severity sev, const sm_error *err)
{
    if (!d || !err) return 0;
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 16;
        sm__diag_entry *v = realloc(d->v, cap * sizeof *v);
        if (!v) return SM_ENOMEM;
        d->v = v;
        d->cap = cap;
    }
    d->v[d->n].err = *err;
    d->v[d->n].sev = sev;
    d->v[d->n].seq = d->n;
    d->n++;
    return 0;
}

int sm_diag_addf(sm_diag *d, sm_severity sev, int code, const char *file, int line, int column,
                 const char *path, const char *fmt, ...)
{
    sm_error e;
    sm_error_clear(&e);
    va_list ap;
    va_start(ap, fmt);
    sm_error_setv(&e, code, file, line, column, path, fmt, ap);
    va_end(ap);
    sm_diag_add(d, sev, &e);
    return code;
}

size_t sm_diag_count(const sm_diag *d) { return d ? d->n : 0; }

size_t sm_diag_errors(const sm_diag *d)
{
    size_t k = 0;
    for (size_t i = 0; d && i < d->n; i++) k += d->v[i].sev == SM_SEV_ERROR;
    return k;
}

const sm_error *sm_diag_get(const sm_diag *d, size_t i, sm_severity *sev)
{
    if (!d || i >= d->n) return NULL;
    if (sev) *sev = d->v[i].sev;
    return &d->v[i].err;
}

static int sm__diag_cmp(const void *pa, const void *pb)
{
    const sm__diag_entry *a = pa, *b = pb;
    int c = strcmp(a->err.file, b->err.file);
    if (c) return c;
    if (a->err.line != b->err.line) return a->err.line < b->err.line ? -1 : 1;
    if (a->err.column != b->err.column) return a->err.column < b->err.column ? -1 : 1;
    return a->seq < b->seq ? -1 : (a->seq > b->seq);
}

void sm_diag_sort(sm_diag *d)
{
    if (d && d->n > 1) qsort(d->v, d->n, sizeof *d->v, sm__diag_cmp);
}

void sm_diag_clear(sm_diag *d)
{
    if (d) d->n = 0;
}
