/* sqlite_cache.c — each connection's prepared statements, keyed by their
 * SQL text. The text depends only on the shape of a query (values are
 * bound), so a few hundred entries cover an API; the least recently used of
 * a small probe window is replaced when it is full. Statements run once
 * (start-up checks) are not kept. */
#include <stdlib.h>
#include <string.h>

#include "sqlite_internal.h"

#define CACHE_SLOTS 256
#define CACHE_PROBE 8

typedef struct centry {
    uint64_t hash;
    char *sql;
    size_t len;
    sqlite3_stmt *st;
    uint64_t used;
} centry;

struct sq_cache {
    centry e[CACHE_SLOTS];
    uint64_t tick;
};

static uint64_t fnv1a(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ULL;
    }
    return h;
}

sqlite3_stmt *crest__sq_cache_get(crest__conn *conn, const char *sql, size_t len, bool nocache, int *rc)
{
    sqlite3_stmt *st = NULL;
    if (nocache) {
        *rc = sqlite3_prepare_v2(conn->db, sql, (int)len, &st, NULL);
        return st;
    }
    sq_cache *c = conn->cache;
    if (!c) {
        c = calloc(1, sizeof *c);
        if (!c) {
            *rc = SQLITE_NOMEM;
            return NULL;
        }
        conn->cache = c;
    }
    uint64_t h = fnv1a(sql, len);
    unsigned base = (unsigned)(h % CACHE_SLOTS), victim = base;
    for (unsigned k = 0; k < CACHE_PROBE; k++) {
        centry *e = &c->e[(base + k) % CACHE_SLOTS];
        if (e->st && e->hash == h && e->len == len && !memcmp(e->sql, sql, len)) {
            e->used = ++c->tick;
            *rc = SQLITE_OK;
            return e->st;
        }
        if (!e->st) {
            victim = (base + k) % CACHE_SLOTS;
            break;
        }
        if (e->used < c->e[victim].used)
            victim = (base + k) % CACHE_SLOTS;
    }
    *rc = sqlite3_prepare_v3(conn->db, sql, (int)len, SQLITE_PREPARE_PERSISTENT, &st, NULL);
    if (*rc != SQLITE_OK)
        return NULL;
    char *copy = malloc(len + 1);
    if (!copy) {
        sqlite3_finalize(st);
        *rc = SQLITE_NOMEM;
        return NULL;
    }
    memcpy(copy, sql, len);
    copy[len] = 0;
    centry *e = &c->e[victim];
    if (e->st) {
        sqlite3_finalize(e->st);
        free(e->sql);
    }
    e->hash = h;
    e->sql = copy;
    e->len = len;
    e->st = st;
    e->used = ++c->tick;
    return st;
}

void crest__sq_bind(sqlite3_stmt *st, int i, const crest__val *v)
{
    switch (v->k) {
    case CREST__V_NULL:
        sqlite3_bind_null(st, i);
        break;
    case CREST__V_BOOL:
    case CREST__V_INT:
        sqlite3_bind_int64(st, i, v->i);
        break;
    case CREST__V_FLOAT:
        sqlite3_bind_double(st, i, v->f);
        break;
    case CREST__V_TEXT:
    case CREST__V_DATE:
    case CREST__V_DATETIME:
    case CREST__V_JSON:
    case CREST__V_UUID:
        sqlite3_bind_text(st, i, v->s ? v->s : "", (int)v->n, SQLITE_STATIC);
        break;
    }
}

void crest__sq_cache_done(crest__conn *c, sqlite3_stmt *st, bool nocache)
{
    (void)c;
    if (!st)
        return;
    if (nocache) {
        sqlite3_finalize(st);
        return;
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

void crest__sq_cache_free(crest__conn *conn)
{
    sq_cache *c = conn->cache;
    if (!c)
        return;
    for (unsigned i = 0; i < CACHE_SLOTS; i++) {
        sqlite3_finalize(c->e[i].st);
        free(c->e[i].sql);
    }
    free(c);
    conn->cache = NULL;
}
