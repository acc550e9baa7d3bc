/* postgres_conn.c — PostgreSQL connections as crest wants them: the
 * parameters of the app's conninfo (a URI or key=value text, libpq's own
 * parser) with crest's session settings added (UTC, ISO dates, UTF-8,
 * floats that read back exactly, a 10 s connect_timeout unless it sets
 * one), which host name a worker's loop must look up itself, blocking
 * connections for start-up and pool threads, and each connection's
 * prepared statements, keyed by their text and parameter types. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "postgres_internal.h"

/* What every connection of crest's session runs with: datetimes come back
 * in UTC and ISO form (read into crest's stored form), floats with every
 * digit. Added to any `options` the conninfo gives. */
static const char session_options[] = "-c TimeZone=UTC -c DateStyle=ISO,YMD -c extra_float_digits=3";
/* A blocking connect (start-up, --wait-for-db, pool threads) gives up after
 * this many seconds unless the conninfo says otherwise. */
static const char default_connect_timeout[] = "10";

bool crest__pg_is_conninfo(const char *text)
{
    if (!strncmp(text, "postgresql://", 13) || !strncmp(text, "postgres://", 11))
        return true;
    if (!strchr(text, '=') || crest__pq_load(NULL))
        return false;
    char *e = NULL;
    PQconninfoOption *o = PQconninfoParse(text, &e);
    PQfreemem(e);
    PQconninfoFree(o);
    return o != NULL;
}

bool crest__pg_has_password(const char *text)
{
    if (crest__pq_load(NULL))
        return false; /* (opening it says libpq is missing) */
    char *e = NULL;
    PQconninfoOption *opts = PQconninfoParse(text, &e);
    PQfreemem(e);
    bool has = false;
    for (PQconninfoOption *o = opts; o && o->keyword; o++)
        if (!strcmp(o->keyword, "password") && o->val && *o->val)
            has = true;
    PQconninfoFree(opts);
    return has;
}

void crest__pg_params_free(char **keys, char **vals)
{
    for (size_t i = 0; keys && keys[i]; i++) {
        free(keys[i]);
        free(vals[i]);
    }
    free(keys);
    free(vals);
}

int crest__pg_params(const char *conninfo, const char *password, char ***keys_out, char ***vals_out, char **msg)
{
    char *perr = NULL;
    PQconninfoOption *opts = PQconninfoParse(conninfo, &perr);
    *keys_out = *vals_out = NULL;
    if (!opts) {
        *msg = perr ? strdup(perr) : strdup("out of memory");
        PQfreemem(perr);
        return -1;
    }
    size_t n = 0;
    for (PQconninfoOption *o = opts; o->keyword; o++)
        n++;
    char **keys = calloc(n + 6, sizeof *keys), **vals = calloc(n + 6, sizeof *vals);
    size_t k = 0;
    bool ok = keys && vals, have_app = false, have_timeout = false;
    const char *user_options = NULL;
    for (PQconninfoOption *o = opts; ok && o->keyword; o++) {
        if (!o->val)
            continue;
        if (!strcmp(o->keyword, "options")) {
            user_options = o->val;
            continue;
        }
        have_app |= !strcmp(o->keyword, "application_name");
        have_timeout |= !strcmp(o->keyword, "connect_timeout");
        if (!strcmp(o->keyword, "client_encoding"))
            continue; /* crest reads and writes UTF-8 only */
        if (password && !strcmp(o->keyword, "password"))
            continue; /* given apart: below */
        ok = (keys[k] = strdup(o->keyword)) && (vals[k] = strdup(o->val));
        k++;
    }
    if (ok) {
        size_t len = (user_options ? strlen(user_options) + 1 : 0) + sizeof session_options;
        char *all = malloc(len);
        if (all)
            snprintf(all, len, "%s%s%s", user_options ? user_options : "", user_options ? " " : "", session_options);
        ok = all && (keys[k] = strdup("options"));
        vals[k++] = all;
    }
    if (ok) {
        ok = (keys[k] = strdup("client_encoding")) && (vals[k] = strdup("UTF8"));
        k++;
    }
    if (ok && password) {
        ok = (keys[k] = strdup("password")) && (vals[k] = strdup(password));
        k++;
    }
    if (ok && !have_app) {
        ok = (keys[k] = strdup("application_name")) && (vals[k] = strdup("crest"));
        k++;
    }
    if (ok && !have_timeout) {
        ok = (keys[k] = strdup("connect_timeout")) && (vals[k] = strdup(default_connect_timeout));
        k++;
    }
    PQconninfoFree(opts);
    if (!ok) {
        crest__pg_params_free(keys, vals);
        *msg = strdup("out of memory");
        return -1;
    }
    *keys_out = keys;
    *vals_out = vals;
    return 0;
}

/* The value of key in a NULL-ended parameter list, or NULL. */
static const char *param(char **keys, char **vals, const char *key)
{
    for (size_t i = 0; keys[i]; i++)
        if (!strcmp(keys[i], key))
            return vals[i];
    return NULL;
}

/* Whether libpq connects to host without looking its name up: an IP
 * address, or a Unix socket's folder (or an abstract one, '@'). */
static bool host_is_address(const char *host, size_t n)
{
    char buf[64];
    unsigned char addr[16];
    if (!n || host[0] == '/' || host[0] == '@')
        return true;
    if (n >= sizeof buf)
        return false;
    memcpy(buf, host, n);
    buf[n] = 0;
    return inet_pton(AF_INET, buf, addr) == 1 || inet_pton(AF_INET6, buf, addr) == 1;
}

int crest__pg_host_to_resolve(char **keys, char **vals, char **host_out, char **msg)
{
    *host_out = NULL;
    const char *addr = param(keys, vals, "hostaddr");
    if (!addr || !*addr)
        addr = getenv("PGHOSTADDR");
    if (addr && *addr)
        return 0; /* libpq connects to the address given */
    const char *host = param(keys, vals, "host");
    if (!host || !*host)
        host = getenv("PGHOST");
    if (!host || !*host)
        return 0; /* libpq's default: its Unix socket */
    bool names = false;
    for (const char *h = host; !names;) {
        size_t n = strcspn(h, ",");
        names = !host_is_address(h, n);
        if (!h[n])
            break;
        h += n + 1;
    }
    if (!names)
        return 0;
    if (strchr(host, ',')) {
        *msg = strdup("several hosts (host=a,b) are not supported when one is a name: crest resolves the name of "
                      "one host itself, without blocking (give one host, or the addresses in hostaddr)");
        return -1;
    }
    if (!(*host_out = strdup(host))) {
        *msg = strdup("out of memory");
        return -1;
    }
    return 0;
}

/* libpq's message without its trailing newline (malloc'd). */
static char *pq_message(PGconn *pg)
{
    const char *m = pg ? PQerrorMessage(pg) : "out of memory";
    size_t n = strlen(m);
    while (n && (m[n - 1] == '\n' || m[n - 1] == ' '))
        n--;
    char *out = malloc(n + 1);
    if (out) {
        memcpy(out, m, n);
        out[n] = 0;
    }
    return out;
}

/* Notices and warnings (a ROLLBACK outside a transaction, RAISE NOTICE)
 * are not errors: they are not printed on crest's stderr, which is its log. */
static void quiet(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

void crest__pg_quiet(PGconn *pg)
{
    if (pg)
        PQsetNoticeProcessor(pg, quiet, NULL);
}

crest__conn *crest__pg_connect(pg_store *s, char **msg)
{
    PGconn *pg = PQconnectdbParams((const char *const *)s->keys, (const char *const *)s->vals, 0);
    if (!pg || PQstatus(pg) != CONNECTION_OK) {
        *msg = pq_message(pg);
        PQfinish(pg);
        return NULL;
    }
    crest__conn *c = calloc(1, sizeof *c);
    if (!c) {
        *msg = strdup("out of memory");
        PQfinish(pg);
        return NULL;
    }
    c->pg = pg;
    crest__pg_quiet(pg);
    return c;
}

void crest__pg_conn_free(crest__conn *c)
{
    if (!c)
        return;
    crest__pg_stmts_clear(c);
    free(c->stmts);
    PQfinish(c->pg);
    free(c);
}

/* ---- prepared statements ---- */

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 1099511628211ULL;
    return h;
}

static uint64_t key_hash(const char *sql, size_t len, const Oid *types, unsigned n)
{
    return fnv(fnv(14695981039346656037ULL, sql, len), types, n * sizeof *types);
}

static bool key_is(const pg_stmt *e, const char *sql, size_t len, const Oid *types, unsigned n)
{
    return e->keylen == len + n * sizeof *types && !memcmp(e->key, sql, len) &&
           (!n || !memcmp(e->key + len, types, n * sizeof *types)); /* (no types: NULL, not for memcmp) */
}

unsigned crest__pg_stmt_find(crest__conn *c, const char *sql, size_t len, const Oid *types, unsigned n)
{
    if (!c->cap)
        return 0;
    uint64_t h = key_hash(sql, len, types, n);
    for (unsigned i = (unsigned)h & (c->cap - 1);; i = (i + 1) & (c->cap - 1)) {
        pg_stmt *e = &c->stmts[i];
        if (!e->key)
            return 0;
        if (e->hash == h && key_is(e, sql, len, types, n))
            return e->id;
    }
}

static void put(pg_stmt *tab, unsigned cap, pg_stmt e)
{
    unsigned i = (unsigned)e.hash & (cap - 1);
    while (tab[i].key)
        i = (i + 1) & (cap - 1);
    tab[i] = e;
}

int crest__pg_stmt_add(crest__conn *c, const char *sql, size_t len, const Oid *types, unsigned n, unsigned id)
{
    if ((c->nstmts + 1) * 4 > c->cap * 3) { /* keep it under 3/4 full */
        unsigned cap = c->cap ? c->cap * 2 : 64;
        pg_stmt *tab = calloc(cap, sizeof *tab);
        if (!tab)
            return -1;
        for (unsigned i = 0; i < c->cap; i++)
            if (c->stmts[i].key)
                put(tab, cap, c->stmts[i]);
        free(c->stmts);
        c->stmts = tab;
        c->cap = cap;
    }
    size_t tl = n * sizeof *types;
    char *key = malloc(len + tl + 1);
    if (!key)
        return -1;
    memcpy(key, sql, len);
    if (tl)
        memcpy(key + len, types, tl);
    put(c->stmts, c->cap, (pg_stmt){key_hash(sql, len, types, n), key, len + tl, id});
    c->nstmts++;
    return 0;
}

void crest__pg_stmts_clear(crest__conn *c)
{
    for (unsigned i = 0; i < c->cap; i++) {
        free(c->stmts[i].key);
        c->stmts[i] = (pg_stmt){0};
    }
    c->nstmts = 0;
}
