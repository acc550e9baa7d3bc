/* arena.c — the request arena: a bump allocator over a list of chunks, with
 * cleanups that run when the request ends (h2o's mem pool, in small). One
 * chunk is kept across requests so a keep-alive connection does not call
 * malloc for small requests. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "core.h"

struct crest__arena_chunk {
    crest__arena_chunk *next;
    size_t cap, used;
    _Alignas(16) char data[];
};

struct crest__arena_cleanup {
    crest__arena_cleanup *next;
    void (*fn)(void *);
    void *p;
};

void crest__arena_init(crest__arena *a, size_t chunk_size, size_t limit)
{
    memset(a, 0, sizeof *a);
    a->chunk_size = chunk_size ? chunk_size : 4096;
    a->limit = limit;
}

static void run_cleanups(crest__arena *a)
{
    while (a->cleanups) {
        crest__arena_cleanup *c = a->cleanups;
        a->cleanups = c->next;
        c->fn(c->p); /* the cleanup record itself lives in the arena */
    }
}

void crest__arena_dispose(crest__arena *a)
{
    run_cleanups(a);
    while (a->head) {
        crest__arena_chunk *c = a->head;
        a->head = c->next;
        free(c);
    }
    a->total = 0;
}

size_t crest__arena_reset(crest__arena *a)
{
    size_t freed = 0;
    run_cleanups(a);
    /* Keep the oldest chunk (the standard-sized first one); free the rest. */
    while (a->head && a->head->next) {
        crest__arena_chunk *c = a->head;
        a->head = c->next;
        a->total -= c->cap;
        freed += c->cap;
        free(c);
    }
    if (a->head) {
        if (a->head->cap > a->chunk_size) { /* an oversized one-off: do not keep it */
            a->total -= a->head->cap;
            freed += a->head->cap;
            free(a->head);
            a->head = NULL;
        } else {
            a->head->used = 0;
        }
    }
    return freed;
}

void *crest__arena_alloc(crest__arena *a, size_t n)
{
    if (n > SIZE_MAX - 15)
        return NULL;
    n = (n + 15) & ~(size_t)15;
    if (n == 0)
        n = 16;
    crest__arena_chunk *c = a->head;
    if (c && c->cap - c->used >= n) {
        void *p = c->data + c->used;
        c->used += n;
        return p;
    }
    /* Also look at the next chunk: a big one-off allocation may sit in front. */
    if (c && c->next && c->next->cap - c->next->used >= n) {
        void *p = c->next->data + c->next->used;
        c->next->used += n;
        return p;
    }
    size_t cap = n > a->chunk_size ? n : a->chunk_size;
    if (cap > SIZE_MAX - sizeof(crest__arena_chunk))
        return NULL;
    if (a->limit && a->total + cap > a->limit)
        return NULL;
    crest__arena_chunk *nc = malloc(sizeof *nc + cap);
    if (!nc)
        return NULL;
    nc->cap = cap;
    nc->used = n;
    a->total += cap;
    if (n > a->chunk_size && a->head) {
        /* Keep the partly used chunk in front so small allocations continue there. */
        nc->next = a->head->next;
        a->head->next = nc;
    } else {
        nc->next = a->head;
        a->head = nc;
    }
    return nc->data;
}

void *crest__arena_calloc(crest__arena *a, size_t count, size_t size)
{
    if (size && count > SIZE_MAX / size)
        return NULL;
    void *p = crest__arena_alloc(a, count * size);
    if (p)
        memset(p, 0, count * size);
    return p;
}

char *crest__arena_strndup(crest__arena *a, const char *s, size_t len)
{
    if (len == SIZE_MAX)
        return NULL;
    char *p = crest__arena_alloc(a, len + 1);
    if (!p)
        return NULL;
    if (len)
        memcpy(p, s, len);
    p[len] = 0;
    return p;
}

char *crest__arena_strdup(crest__arena *a, const char *s)
{
    return crest__arena_strndup(a, s, strlen(s));
}

char *crest__arena_printf(crest__arena *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    char *p = crest__arena_alloc(a, (size_t)n + 1);
    if (!p)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

int crest__arena_defer(crest__arena *a, void (*fn)(void *), void *p)
{
    crest__arena_cleanup *c = crest__arena_alloc(a, sizeof *c);
    if (!c)
        return -1;
    c->fn = fn;
    c->p = p;
    c->next = a->cleanups;
    a->cleanups = c;
    return 0;
}
