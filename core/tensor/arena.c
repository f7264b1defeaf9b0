/* core/tensor/arena.c - the chunked bump allocator behind a context's two arenas.
 *
 * Blocks are 64-byte aligned, sizes rounded to 64 bytes by the caller. An arena is a list of
 * chunks; allocation bumps within the current chunk, else moves to the next chunk with room,
 * else appends a chunk. The first chunk is, where the system allows it, an address range as
 * large as the machine's memory, reserved but not committed (pages come when first touched):
 * the arena is then one stack whose resident memory is its high-water mark, where chunks of
 * growing size left a part of each chunk unused at the first step's peak (evaluation of Swin-B
 * at batch 32: 1704 MiB of chunks for a 903 MiB peak, most of it touched). Where it does not
 * (an address-space limit, strict overcommit, no mmap), chunks come from malloc. Memory comes
 * back in two ways:
 *  - mark / rewind (a stack): everything allocated after a mark is released at once (the
 *    activation arena: a node's backward scratch, a recomputed block);
 *  - a free list of exact-size blocks: a released block is reused by the next request of the
 *    same size, latest first (the gradient arena; and in the activation arena the data of
 *    tensors released during a forward, sm_tensor_release).
 * When a step spilled over its first chunk, the next reset replaces all chunks by one chunk of
 * the step's high-water mark, so from the second step on a step with the same sequence of
 * requests never touches malloc: memory is flat. Every choice depends only on the sequence of
 * requests (never on addresses), so the same step always lays out memory the same way. */
#include "tensor/tensor_internal.h"

#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#define SM__CHUNK_MIN ((size_t)1 << 20)

/* A released block of the free list, stored in the block itself. */
struct sm__free {
    sm__free *next;
    size_t size;
};

/* Bytes of address space to reserve for an arena's first chunk: the machine's memory, or 0
 * when reserving is unwise (an address-space limit it would eat into, strict overcommit where
 * the reservation is charged in full) or impossible. */
static size_t reserve_bytes(void)
{
#if defined(MAP_NORESERVE) && defined(_SC_PHYS_PAGES)
    struct rlimit as;
    if (getrlimit(RLIMIT_AS, &as) != 0 || as.rlim_cur != RLIM_INFINITY) return 0;
    FILE *f = fopen("/proc/sys/vm/overcommit_memory", "r");
    if (f) {
        int mode = fgetc(f);
        fclose(f);
        if (mode == '2') return 0;
    }
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || page <= 0) return 0;
    return (size_t)pages * (size_t)page;
#else
    return 0;
#endif
}

static sm__chunk *chunk_new(size_t size, bool first)
{
    size = (size + 63) & ~(size_t)63;
    sm__chunk *c = calloc(1, sizeof *c);
    if (!c) return NULL;
#ifdef MAP_NORESERVE
    size_t range = first ? reserve_bytes() : 0;
    if (range >= size) {
        void *p = mmap(NULL, range, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p != MAP_FAILED) {
            c->data = p;
            c->size = range;
            c->mapped = true;
            return c;
        }
    }
#else
    (void)first;
#endif
    c->data = aligned_alloc(64, size);
    if (!c->data) {
        free(c);
        return NULL;
    }
    c->size = size;
    return c;
}

static void chunks_free(sm__chunk *c)
{
    while (c) {
        sm__chunk *n = c->next;
#ifdef MAP_NORESERVE
        if (c->mapped)
            munmap(c->data, c->size);
        else
#endif
            free(c->data);
        free(c);
        c = n;
    }
}

/* The bytes an arena holds from the system: its malloc chunks whole, the mapped one as far as
 * it has been touched. */
static size_t chunk_reserved(const sm__chunk *c) { return c->mapped ? c->high : c->size; }

void sm__arena_release(sm__arena *a)
{
    chunks_free(a->chunks);
    memset(a, 0, sizeof *a);
}

void sm__arena_reset(sm__arena *a)
{
    /* the step spilled over its first chunk: one chunk of the step's high-water mark */
    if (a->chunks && a->chunks->next && a->step_peak > a->chunks->size) {
        chunks_free(a->chunks);
        a->chunks = chunk_new(a->step_peak, false);
        a->reserved = a->chunks ? a->chunks->size : 0;
    }
    for (sm__chunk *c = a->chunks; c; c = c->next) c->used = 0;
    a->cur = a->chunks;
    a->used = 0;
    a->step_peak = 0;
    a->free = NULL;
}

void *sm__arena_alloc(sm__arena *a, size_t need)
{
    /* first chunk at or after the current one with room (earlier chunks are full) */
    sm__chunk *c = a->cur;
    while (c && c->size - c->used < need) c = c->next;
    if (!c) {
        size_t last = 0;
        for (sm__chunk *k = a->chunks; k; k = k->next) last = k->size;
        c = chunk_new(SM__MAX(SM__MAX(need, SM__CHUNK_MIN), last), !a->chunks);
        if (!c) return NULL;
        sm__chunk **tail = &a->chunks;
        while (*tail) tail = &(*tail)->next;
        *tail = c;
        a->reserved += chunk_reserved(c);
    }
    a->cur = c;
    void *p = c->data + c->used;
    c->used += need;
    if (c->used > c->high) {
        if (c->mapped) a->reserved += c->used - c->high;
        c->high = c->used;
    }
    a->used += need;
    if (a->used > a->step_peak) a->step_peak = a->used;
    return p;
}

sm__mark sm__arena_mark(const sm__arena *a)
{
    return (sm__mark){a->cur, a->cur ? a->cur->used : 0, a->used};
}

void sm__arena_rewind(sm__arena *a, sm__mark m)
{
    /* free blocks in the released memory go with it (released in an evaluation block) */
    for (sm__free **f = &a->free; *f;)
        if (sm__arena_since(a, m, *f)) *f = (*f)->next;
        else f = &(*f)->next;
    sm__chunk *c = m.chunk ? m.chunk : a->chunks;
    if (!c) return;
    c->used = m.chunk ? m.chunk_used : 0;
    for (sm__chunk *k = c->next; k; k = k->next) k->used = 0;
    a->cur = c;
    a->used = m.used;
}

bool sm__arena_since(const sm__arena *a, sm__mark m, const void *p)
{
    const unsigned char *q = p;
    for (const sm__chunk *c = m.chunk ? m.chunk : a->chunks; c; c = c->next) {
        size_t lo = c == m.chunk ? m.chunk_used : 0;
        if (q >= c->data + lo && q < c->data + c->used) return true;
    }
    return false;
}

void *sm__arena_get(sm__arena *a, size_t need)
{
    for (sm__free **f = &a->free; *f; f = &(*f)->next)
        if ((*f)->size == need) {
            sm__free *b = *f;
            *f = b->next;
            return b;
        }
    return sm__arena_alloc(a, need);
}

void sm__arena_put(sm__arena *a, void *p, size_t need)
{
    sm__free *b = p;
    b->size = need;
    b->next = a->free;
    a->free = b;
}

void sm__arena_pass_free(sm__arena *from, sm__arena *to)
{
    if (!from->free) return;
    sm__free *tail = from->free;
    while (tail->next) tail = tail->next;
    tail->next = to->free;
    to->free = from->free;
    from->free = NULL;
}
