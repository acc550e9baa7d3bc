/* postgres_internal.h — what the files of the PostgreSQL store share: the
 * store, its connections and their prepared statements. postgres.c is the
 * table of functions and the synchronous side (start-up, checks, pool
 * threads); postgres_conn.c opens connections as crest wants them and keeps
 * each one's statements; postgres_value.c turns crest's values into
 * parameters and results into typed cells (postgres_array.c: arrays as
 * JSON arrays); postgres_error.c classifies failures by SQLSTATE;
 * postgres_pool.c counts the workers' pools for /metrics;
 * postgres_resolve.c looks the host's name up for the loop, without
 * blocking it. A worker's loop (postgres_loop.h): postgres_loop.c its
 * sessions, queue and pool; postgres_lconn.c keeps each connection up;
 * postgres_segment.c sends statements and reads their answers. Internal. */
#ifndef CREST_POSTGRES_INTERNAL_H
#define CREST_POSTGRES_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "postgres_pq.h"

#include "store.h"

/* Type OIDs crest reads and binds (pg_type.dat; stable across versions). */
enum {
    PG_BOOL = 16, PG_INT8 = 20, PG_INT2 = 21, PG_INT4 = 23, PG_TEXT = 25, PG_OID = 26, PG_JSON = 114,
    PG_FLOAT4 = 700, PG_FLOAT8 = 701, PG_BPCHAR = 1042, PG_VARCHAR = 1043, PG_DATE = 1082,
    PG_TIMESTAMP = 1114, PG_TIMESTAMPTZ = 1184, PG_NUMERIC = 1700, PG_UUID = 2950, PG_JSONB = 3802,
    PG_NAME = 19, PG_CHAR = 18, PG_BOOL_ARRAY = 1000, PG_INT8_ARRAY = 1016, PG_FLOAT8_ARRAY = 1022
};

/* One prepared statement of a connection: its text and parameter types
 * (the key), and the name it was prepared under. */
typedef struct pg_stmt {
    uint64_t hash;
    char *key;                    /* the SQL text, then the parameter types' signature (owned) */
    size_t keylen;
    unsigned id;                  /* prepared as "c<id>" */
} pg_stmt;

/* A connection and its statements. */
struct crest__conn {
    PGconn *pg;
    pg_stmt *stmts;               /* open addressing, cap entries (a power of two) */
    unsigned nstmts, cap;
    unsigned next_id;
    struct crest__conn *next;     /* in the store's list of idle pool-thread connections */
};

typedef struct pg_store {
    crest__store base;
    char **keys, **vals;          /* the connection parameters, crest's own settings added (owned,
                                     NULL-terminated, for PQconnectdbParams / PQconnectStartParams) */
    size_t nparams;
    char *resolve_host;           /* the host name the loop resolves before each connect (owned), or NULL
                                     (crest__pg_host_to_resolve) */
    /* Connections of pool threads (write routes, slow work), idle ones. */
    pthread_mutex_t idle_lock;
    crest__conn *idle;
    /* The counts of each worker's pool on its loop (postgres_pool.c). */
    pthread_mutex_t pools_lock;
    struct pg_pool_counts *pools;
} pg_store;

/* ---- postgres_conn.c ---- */

/* The connection parameters of conninfo (a URI or key=value text) with
 * crest's session settings added: UTC, ISO dates, UTF-8, exact floats; and
 * password when not NULL (password_file). 0, or -1 with *msg (malloc'd). */
int crest__pg_params(const char *conninfo, const char *password, char ***keys, char ***vals, char **msg);
void crest__pg_params_free(char **keys, char **vals);
/* The host name a worker's loop must resolve itself before each connect
 * (libpq would look it up blocking): *host (malloc'd) when the parameters
 * (or PGHOST) name a host that is not an address nor a socket folder and no
 * hostaddr (nor PGHOSTADDR) is given; else NULL. -1 with *msg (malloc'd)
 * for several hosts of which one is a name (refused: libpq would look the
 * others up). */
int crest__pg_host_to_resolve(char **keys, char **vals, char **host, char **msg);
/* Notices of the server are not written to crest's log. */
void crest__pg_quiet(PGconn *pg);
/* A blocking connection; NULL with *msg (malloc'd) on failure. */
crest__conn *crest__pg_connect(pg_store *s, char **msg);
void crest__pg_conn_free(crest__conn *c);
/* The name c prepared sql under with these parameter types, or 0 when it
 * has not (then *slot is where crest__pg_stmt_add keeps it). */
unsigned crest__pg_stmt_find(crest__conn *c, const char *sql, size_t len, const Oid *types, unsigned n);
/* Records that sql was prepared under name id on c; 0 or -1 (no memory:
 * nothing recorded, the statement then runs unnamed next time too). */
int crest__pg_stmt_add(crest__conn *c, const char *sql, size_t len, const Oid *types, unsigned n, unsigned id);
/* Forgets every statement of c (after a reconnect, or DEALLOCATE ALL). */
void crest__pg_stmts_clear(crest__conn *c);

/* ---- postgres_value.c ---- */

/* The parameters of a statement, as libpq takes them (text format). */
typedef struct pg_params {
    unsigned n;
    Oid *types;
    const char **values;
    int *lengths;
} pg_params;

/* Turns q's binds into text parameters with their types (arena), a list
 * into an array ({"a","b"}); 0 or -1. */
int crest__pg_params_of(crest__arena *a, const crest__query *q, pg_params *out);
/* A cell of type oid (not an array's) from the server's text s (n bytes,
 * NUL-ended), its text borrowed from s, or from buf (a timestamp in
 * crest's stored form). */
void crest__pg_cell_view(crest__cell *c, unsigned oid, const char *s, size_t n, char buf[32]);

/* postgres_array.c: the element type of the built-in array type oid, 0
 * when oid is none; and an array's text s (n bytes) as a JSON array of
 * elem-typed values into the arena a (*out, *outn). 0; 1 when s is not an
 * array's text (nothing written); -1 out of memory. */
unsigned crest__pg_array_elem(unsigned oid);
/* Records oid as an array type of elements elem (a type the database made:
 * learnt from pg_type when a statement is described), for every later
 * result in the process; a few hundred at most, the rest not kept. */
void crest__pg_array_learn(unsigned oid, unsigned elem);
int crest__pg_array_json(crest__arena *a, unsigned elem, const char *s, size_t n, const char **out, size_t *outn);

/* Reads res (tuples or a command) into rows in the arena a: each column
 * typed by its OID (bool, integers, floats, numeric, text, date,
 * timestamptz as crest's stored UTC form, json/jsonb, uuid; an array as
 * a JSON array of those); at most max_rows rows (0: all); names unless
 * nonames. 0, or a failure in err (NOMEM, TOO_LARGE past max_bytes when
 * not 0). */
int crest__pg_rows(PGresult *res, crest__arena *a, size_t max_rows, bool nonames, size_t max_bytes,
                   crest__rows **out, crest__dberr *err);

/* ---- sessions ---- */

typedef struct pg_lconn pg_lconn;       /* a connection on a worker's loop (postgres_loop.h) */
typedef struct pg_call pg_call;         /* a statement of a session on the loop, until it completes */

/* The request's transaction on its loop connection: none, crest's
 * read-only one, crest's around a write, or the C handler's own (its
 * BEGIN through crest_query, until its COMMIT or ROLLBACK). */
enum { PG_TXN_NONE, PG_TXN_RO, PG_TXN_RW, PG_TXN_USER };

struct crest__sess {
    pg_store *s;
    crest__sess_config cfg;
    bool timed_out;
    atomic_bool cancelled;
    /* Off the loop (pool threads, no loop): a blocking connection. */
    crest__conn *conn;            /* taken from the idle list at first use */
    PGcancel *cancel;             /* of conn */
    bool in_txn;                  /* a transaction the request began (txn) */
    bool in_unit;                 /* in the write unit (write_begin): one transaction */
    /* On the loop: postgres_loop.c (postgres_loop.h). */
    crest__store_worker *w;       /* NULL: off the loop */
    pg_lconn *lc;                 /* held from the first statement to sess_end */
    int txn;                      /* PG_TXN_*: the request's transaction on lc */
    pg_call *waiting;             /* the statement waiting for a connection, or NULL */
    crest__sess *wnext, *wprev;   /* in the worker's queue while waiting */
    uint64_t wait_since;          /* when it began to wait (µs) */
    unsigned inflight;            /* statements sent whose completion has not run */
};

/* ---- postgres_loop.c ---- */

/* Whether the session runs on a worker's loop. */
static inline bool crest__pg_on_loop(const crest__sess *ss) { return ss->w != NULL; }
int crest__pg_loop_query(crest__sess *ss, const crest__query *q, crest__query_cb cb, void *ud);
void crest__pg_loop_end(crest__sess *ss);
void crest__pg_loop_cancel(crest__sess *ss);
/* The worker's loop of a session's config, or NULL (the session blocks). */
crest__store_worker *crest__pg_loop_worker(crest__store_worker *w);

int crest__pg_worker_init(crest__store *s, void *loop, crest__store_worker **out, crest_error *err);
void crest__pg_worker_dispose(crest__store_worker *w);
/* The table's listen (store.h): postgres_listen.c. */
int crest__pg_listen(crest__store_worker *w, const char *channel, crest__listen_cb cb, void *ud);

/* ---- postgres_pool.c ---- */

typedef _Atomic uint64_t pg_counter;

/* A worker's pool, counted by its loop's thread alone (relaxed atomics)
 * and read by whoever renders /metrics (crest__pool_stats says what each
 * one is). Part of the worker; joins the store's list while it serves. */
typedef struct pg_pool_counts {
    pg_counter idle, in_use, connecting, down;  /* gauges: connections by state */
    pg_counter queued;                          /* gauge: sessions waiting for a connection */
    pg_counter wait_bucket[CREST__DURATION_NBOUNDS + 1], wait_sum_us;
    pg_counter reconnects, connect_failures, queue_full, acquire_timeouts;
    struct pg_pool_counts *next;                /* in the store's list (pools_lock) */
} pg_pool_counts;

/* Adds by (negative: takes away) to c; its one writer only. */
void crest__pg_count(pg_counter *c, int64_t by);
/* Counts an acquisition that waited us µs (0: a connection was idle). */
void crest__pg_count_wait(pg_pool_counts *pc, uint64_t us);
/* pc joins / leaves the store's list (the counts stay the caller's). */
void crest__pg_pool_join(pg_store *s, pg_pool_counts *pc);
void crest__pg_pool_leave(pg_store *s, pg_pool_counts *pc);
/* The table's pool_stats: the sum over the workers serving now. */
void crest__pg_pool_stats(crest__store *s, crest__pool_stats *out);

/* ---- postgres_resolve.c ---- */

typedef struct pg_resolve pg_resolve;   /* a host name being looked up */

/* A lookup's end, on the loop: hosts ("h,h,...": the name once per address)
 * and addrs ("a1,a2,...", at most 8), borrowed for the call; or both NULL
 * and why (borrowed for the call) when the name does not resolve. */
typedef void (*crest__pg_resolved_cb)(void *ud, const char *hosts, const char *addrs, const char *why);
/* Looks host up on loop (uv_loop_t) without blocking it; done runs once,
 * later, on the loop. NULL when it cannot start (done never runs). */
pg_resolve *crest__pg_resolve(void *loop, const char *host, crest__pg_resolved_cb done, void *ud);
/* done will not run; the lookup's memory goes when it ends (the loop must
 * run until then). NULL: nothing. */
void crest__pg_resolve_abandon(pg_resolve *r);
/* s's parameters with host and hostaddr replaced by hosts and addrs, for
 * PQconnectStartParams: the arrays are malloc'd (free both), the strings
 * borrowed from s and the caller. 0 or -1 (no memory). */
int crest__pg_params_at(const pg_store *s, const char *hosts, const char *addrs, const char ***keys,
                        const char ***vals);

/* ---- postgres_error.c ---- */

/* The failure of res (NULL: the connection's, from c) as a kind, with its
 * columns, constraint and messages (arena a). delete: a foreign key
 * failure is REFERENCED. */
void crest__pg_error(PGconn *c, const PGresult *res, unsigned qflags, crest__arena *a, crest__dberr *out);

#endif
