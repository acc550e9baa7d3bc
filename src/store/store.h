/* store.h — the store: one seam between crest and every database. A store is
 * a table of functions (curl's `struct Curl_ssl`, redis's ae backends) with
 * SQLite (sqlite.c) as its first implementation; PostgreSQL comes next.
 * Above this line nothing knows which database it talks to: statements come
 * from the query stage as text plus typed values, rows come back as typed
 * cells, failures as store-neutral kinds (the HTTP mapping of those lives
 * in src/req/dberror.c). Internal: not installed.
 *
 * Two ways in:
 * - synchronous, on a connection (crest__store_connect): start-up work
 *   (schema sync, checking SQL), and anything already off the event loop;
 * - per request, through its session (crest__sess): the store picks the
 *   connection (the worker's, a pool thread's, the writer's), applies the
 *   request's deadline, and completes each query through a callback —
 *   at once when it can (SQLite's fast path), later on the worker's loop
 *   when not (a slow SQLite read moved to the thread pool; a network store). */
#ifndef CREST_STORE_H
#define CREST_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crest/json.h"

#include "../core/core.h"
#include "../core/value.h"

typedef struct crest__store crest__store;          /* one opened database (per app) */
typedef struct crest__store_worker crest__store_worker; /* a worker thread's connections */
typedef struct crest__conn crest__conn;            /* one connection */
typedef struct crest__sess crest__sess;            /* a request's use of the store */
typedef struct crest_rows crest__rows;             /* a result (public name: crest_rows) */

/* ---- failures: store-neutral kinds (docs/internals/store.md) ---- */

typedef enum crest__dberr_kind {
    CREST__DBERR_UNIQUE,       /* a unique key: 409 naming its columns */
    CREST__DBERR_FOREIGN_KEY,  /* a row names a missing one: 422 */
    CREST__DBERR_REFERENCED,   /* a delete of a row others refer to: 409 */
    CREST__DBERR_NOT_NULL,
    CREST__DBERR_CHECK,
    CREST__DBERR_CONSTRAINT,   /* another rule of the table (a trigger's plain RAISE) */
    CREST__DBERR_DEADLINE,     /* the request's deadline interrupted it */
    CREST__DBERR_BUSY,         /* locked by another connection: try again */
    CREST__DBERR_UNAVAILABLE,  /* the database cannot be opened or written at all */
    CREST__DBERR_STORAGE,      /* disk full, file-size limit, failing device */
    CREST__DBERR_NOMEM,
    CREST__DBERR_TOO_LARGE,    /* the result is larger than the response may be */
    CREST__DBERR_RAISED,       /* SQL raised an answer of its own: status + detail */
    CREST__DBERR_OTHER,        /* a bug or a broken database: logged, 500 */
    CREST__DBERR_CONFLICT,     /* the transaction lost to a concurrent one (PostgreSQL's serialization
                                  failure 40001, deadlock 40P01): rolled back, safe to run again (the
                                  store, or the write unit's caller, runs it again up to
                                  CREST__CONFLICT_RETRIES times; then 503 with Retry-After) */
    CREST__DBERR_COUNT
} crest__dberr_kind;

typedef struct crest__dberr {
    crest__dberr_kind kind;
    int native;                /* the store's own code (SQLite's extended code), for the log */
    char state[6];             /* PostgreSQL: the SQLSTATE, for the log ("" for other stores) */
    const char *columns;       /* UNIQUE: the key's column names; NOT_NULL: the column; each NUL-ended,
                                  then "" (arena); or NULL */
    const char *table;         /* FOREIGN_KEY: the table the row named is missing from, when the database
                                  says (PostgreSQL; arena), or NULL */
    const char *constraint;    /* CHECK (and what else the database names): the constraint, as the
                                  database names it (SQLite: its name, or its expression; arena), or NULL */
    int status;                /* RAISED: the HTTP status */
    const char *detail;        /* RAISED: the message for the client; else the database's own, for
                                  logs and start-up messages only (arena; may be NULL) */
    const char *message;       /* the database's own message whatever the kind (a RAISED one
                                  whole), for logs and start-up messages only (arena; may be NULL) */
} crest__dberr;

/* How many times a transaction that failed as CONFLICT runs again before
 * its failure is the answer. */
#define CREST__CONFLICT_RETRIES 3
/* dberr.c: how long (ms) a transaction that lost waits before it runs again
 * the again-th time (1..): a few ms, growing, with jitter. Run again at
 * once, the loser of a deadlock takes its first row back before the winner
 * gets it, and they deadlock again (measured: more than half the time). */
unsigned crest__conflict_pause_ms(unsigned again);

/* ---- results ---- */

/* One cell: kind NULL, BOOL, INT (i), FLOAT (f) or a text kind (s, n: in
 * the result's arena, NUL-terminated). */
typedef struct crest__cell {
    union {
        int64_t i;
        double f;
        const char *s;
    } v;
    uint32_t n;
    uint8_t k;                 /* crest__vkind */
} crest__cell;

/* A whole result, read into the arena of whoever ran it (the request's). */
struct crest_rows {
    unsigned ncols;
    const char **names;        /* column names */
    crest__cell *cells;        /* nrows * ncols, row after row */
    size_t nrows, cap;
    size_t at;                 /* crest_rows_next: the current row + 1 (0: before the first) */
    int64_t changes;           /* rows a write changed */
    int64_t last_id;           /* the id of the last row inserted (SQLite's rowid; PostgreSQL's: the id
                                  column of an INSERT's RETURNING, else 0) */
    size_t bytes;              /* what the rows weigh as JSON, at least (limits) */
};

static inline const crest__cell *crest__rows_cell(const crest__rows *r, size_t row, unsigned col)
{
    return &r->cells[row * r->ncols + col];
}

/* ---- statements ---- */

enum {
    CREST__QF_READ = 1,        /* reads only (a store checks it too before moving a slow one off the loop) */
    CREST__QF_DELETE = 2,      /* a delete: a foreign key failure is REFERENCED */
    CREST__QF_FIRST = 4,       /* keep the first row only (the rest still run: RETURNING) */
    CREST__QF_NOCACHE = 8,     /* run once: do not keep the prepared statement */
    CREST__QF_NUMBERED = 16,   /* placeholders are $1..$n (crest_query) */
    CREST__QF_INPLACE = 32,    /* complete before returning: never move off the loop */
    CREST__QF_NONAMES = 64,    /* the caller reads cells by position: no column names (names[i] NULL) */
    /* A C handler's own transaction control (crest_query), which a store
     * that wraps statements in transactions of its own must pass through. */
    CREST__QF_TXN_BEGIN = 128,     /* BEGIN, START TRANSACTION */
    CREST__QF_TXN_END = 256,       /* COMMIT, ROLLBACK, END, ABORT */
    CREST__QF_TXN_SAVEPOINT = 512, /* SAVEPOINT, RELEASE, ROLLBACK TO */
    /* The request's last read (a REST read or page, an SQL endpoint's):
     * a store that keeps a read-only transaction open for the request's
     * next reads may end it with this one, in the same round trip. */
    CREST__QF_LAST = 1024
};

/* A statement in the store's dialect and its values (1-based in order).
 * The text and the value array are borrowed until the call that runs it
 * returns (a store that completes later copies them); text the values
 * point to must live until the completion (the request's memory does). */
typedef struct crest__query {
    const char *sql;
    size_t len;
    const crest__val *binds;
    const crest__bindlist *const *lists; /* NULL, or nbinds entries: where one is set, binds[i] is that list
                                            (crest__sql's; stores whose dialect has array_in only) */
    unsigned nbinds;
    unsigned flags;            /* CREST__QF_* */
    size_t max_rows;           /* 0: all; else keep this many rows (the statement still runs to its end:
                                  bound the work with a LIMIT) */
} crest__query;

/* What the store says of a statement it was asked to check (start-up). */
typedef struct crest__stmt_info {
    unsigned nparams;
    const char **param_names;  /* 1-based names as written (":id", "?"), NULL for unnamed */
    unsigned ncols;
    const char **col_names;
    bool readonly;
    size_t tail;               /* not 0 when text follows the first statement: its bytes (SQLite), or 1
                                  (PostgreSQL says there is more, not where the first ends) */
} crest__stmt_info;

/* Columns of a table, as the store has them (schema introspection). */
typedef struct crest__column_info {
    const char *name;
    const char *type;          /* the declared type, upper case as stored */
    bool notnull, pk;
    const char *dflt;          /* the default's SQL text, or NULL */
} crest__column_info;

typedef struct crest__fkey_info {
    const char *column;        /* this table's column */
    const char *table;         /* the parent table */
    const char *to;            /* the parent's column, NULL: its primary key */
} crest__fkey_info;

/* ---- the request side ---- */

/* Runs a query's completion on its thread: `rows` is NULL on failure (then
 * err says why); both live in the session's arena. */
typedef void (*crest__query_cb)(void *ud, crest__rows *rows, const crest__dberr *err);

/* What a store's listen (crest__store_vt) tells its callback. */
enum { CREST__LISTEN_UP, CREST__LISTEN_EVENT, CREST__LISTEN_DOWN };
typedef void (*crest__listen_cb)(void *ud, int what);

/* What a request gives its session: the arena results go into, the
 * deadline, where it runs, and how to continue off the loop. */
typedef struct crest__sess_config {
    crest__arena *arena;
    uint64_t deadline_us;              /* 0: none */
    crest__store_worker *worker;       /* the worker's connections; NULL off the loop */
    bool blocking;                     /* running on a pool thread */
    /* Runs work(ud) on the thread pool, then after(ud, cancelled) on the
     * worker's loop (cancelled: work never ran, the server is stopping);
     * 0, or negative when it cannot (then neither runs). NULL: no thread
     * pool (the loopback harness): everything runs in place. */
    int (*offload)(void *engine_ud, void (*work)(void *), void (*after)(void *, bool), void *ud);
    void *engine_ud;
    /* Where the store counts the statements it runs for the session, on the
     * session's thread (the request's: /metrics' crest_db_statements_total),
     * or NULL. Each run counts: a statement sent again (a stale prepared
     * statement, a transaction that lost to a concurrent one, a read moved
     * off the loop) counts again, and a statement that fails counts too;
     * what the store adds of its own does not (crest's BEGIN, COMMIT,
     * ROLLBACK, savepoints, statement_timeout settings, DEALLOCATE, the
     * pause before a retry). A C handler's own BEGIN or COMMIT through
     * crest_query is one of its statements. */
    uint64_t *statements;
} crest__sess_config;

/* Counts a statement the session ran (crest__sess_config.statements). */
static inline void crest__sess_count(const crest__sess_config *cfg)
{
    if (cfg->statements)
        (*cfg->statements)++;
}

/* A network store's connection pools, summed over the workers (/metrics).
 * Gauges are what is now; the rest count from the start. */
typedef struct crest__pool_stats {
    uint64_t idle, in_use, connecting, down;  /* connections (down: broken, waiting to reconnect) */
    uint64_t queued;                          /* requests waiting for a connection */
    uint64_t wait_bucket[CREST__DURATION_NBOUNDS + 1]; /* acquisitions by how long they waited
                                                          (crest__duration_bucket; not cumulative) */
    uint64_t wait_sum_us;
    uint64_t reconnects;                      /* connects that succeeded after a connection was lost */
    uint64_t connect_failures;                /* connects that failed (name, refused, too slow) */
    uint64_t queue_full;                      /* requests refused at once: the queue was full */
    uint64_t acquire_timeouts;                /* requests that waited for a connection and gave up */
} crest__pool_stats;

/* ---- the table of functions ---- */

typedef struct crest__store_config {
    const char *path;                  /* SQLite: the file (":memory:" allowed); PostgreSQL: the
                                          conninfo (a URI or key=value text) */
    bool create;                       /* make the database when missing */
    bool durability_normal;            /* no sync at commit (crash-safe, not power-safe) */
    size_t max_result;                 /* bytes a result may weigh (the response limit) */
    unsigned slow_read_ksteps;         /* a read on the loop past this much work (thousands of
                                          steps) moves off it (0: never) */
    /* A network store's connections on each worker's loop (0: defaults). */
    unsigned pool_size;                /* connections per worker: 4 */
    unsigned acquire_timeout_ms;       /* how long a request waits for one: 5000, then 503 */
    unsigned queue_max;                /* requests that may wait for one: 512, then 503 at once */
    const char *password;              /* PostgreSQL: given apart from the conninfo (password_file), or NULL */
} crest__store_config;

typedef struct crest__store_vt {
    const char *name;                  /* "sqlite": also the query stage's dialect (crest__dialect_named) */
    /* Write routes run on the thread pool, one at a time (SQLite's single
     * writer and group commit), rather than on the loop. */
    bool writes_block;
    /* The write unit runs each statement as a transaction of its own (SQLite,
     * on its one writer): a statement in it outside txn() is committed when
     * it returns. Else the unit is one transaction (PostgreSQL), and what
     * must be committed at once runs outside it. */
    bool unit_autocommits;

    int (*open)(const crest__store_config *cfg, crest__store **out, crest_error *err);
    void (*close)(crest__store *s);

    /* Synchronous connections (start-up, checks). */
    int (*connect)(crest__store *s, crest__conn **out, crest_error *err);
    void (*disconnect)(crest__conn *c);
    int (*exec)(crest__conn *c, const crest__query *q, crest__arena *a, crest__rows **out, crest__dberr *err);
    /* Runs a script of statements (startup_sql); on failure *msg (malloc'd). */
    int (*exec_script)(crest__conn *c, const char *sql, char **msg);
    int (*begin)(crest__conn *c, bool write, crest__dberr *err, crest__arena *a);
    int (*commit)(crest__conn *c, crest__dberr *err, crest__arena *a);
    void (*rollback)(crest__conn *c);
    /* Checks one statement without running it; *msg (malloc'd) says why not. */
    int (*describe)(crest__conn *c, const char *sql, crest__arena *a, crest__stmt_info *out, char **msg);
    /* Schema introspection: the table's columns (none when it is missing). */
    int (*columns)(crest__conn *c, const char *table, crest__arena *a, crest__column_info **out, unsigned *n);
    int (*fkeys)(crest__conn *c, const char *table, crest__arena *a, crest__fkey_info **out, unsigned *n);
    /* Start-up: make the database ready to serve (SQLite: WAL;
     * PostgreSQL: c holds a lock on the database until it is
     * disconnected, so that processes starting together make the tables
     * one at a time). */
    int (*setup)(crest__conn *c, char **msg);

    /* Each worker's own connections. loop: the worker's event loop
     * (uv_loop_t), on which a network store runs its sessions; NULL when
     * the worker has none (its sessions then block). */
    int (*worker_init)(crest__store *s, void *loop, crest__store_worker **out, crest_error *err);
    void (*worker_dispose)(crest__store_worker *w);

    /* Requests. */
    crest__sess *(*sess_new)(crest__store *s, const crest__sess_config *cfg);
    /* Runs q; cb runs once (maybe before this returns). 0, or negative
     * when it could not start (cb never runs). */
    int (*query)(crest__sess *ss, const crest__query *q, crest__query_cb cb, void *ud);
    /* Opens / ends the request's write unit (what a write route runs in).
     * SQLite: begin takes the one writer; the statements in between
     * autocommit each; end rolls back a transaction left open, gives the
     * writer back and, when commit is true, returns once what was committed
     * is durable (group commit). A network store: one transaction, committed
     * (or rolled back) by end. */
    int (*write_begin)(crest__sess *ss, crest__dberr *err);
    int (*write_end)(crest__sess *ss, bool commit, crest__dberr *err);
    /* A transaction inside the request (bulk create). */
    int (*txn)(crest__sess *ss, int op, crest__dberr *err); /* CREST__TXN_* */
    /* The request is over: release what the session holds. Sets *timed_out
     * when its deadline interrupted a statement. */
    void (*sess_end)(crest__sess *ss, bool *timed_out);
    /* Nobody waits for the session's answer any more (the client left):
     * its running statement stops as soon as it can, and later ones at
     * once; their completions still run (as failures). Any thread. */
    void (*cancel)(crest__sess *ss);
    /* The native handle (SQLite: sqlite3 *) for crest_req_sqlite; NULL when none. */
    void *(*native)(crest__sess *ss);
    /* Schema introspection inside a request (naming a missing parent). */
    int (*sess_fkeys)(crest__sess *ss, const char *table, crest__fkey_info **out, unsigned *n);
    /* The workers' connection pools into *out; any thread, while serving.
     * NULL for a store without pools (SQLite: a connection per worker and
     * one writer, nothing to wait for): /metrics then shows no pool. */
    void (*pool_stats)(crest__store *s, crest__pool_stats *out);
    /* Notifications of other connections, processes included, on a
     * connection of the worker's own (PostgreSQL: LISTEN on a dedicated
     * connection, reconnected with a capped backoff when lost): cb runs on
     * the worker's loop with CREST__LISTEN_UP once listening (again: what
     * came meanwhile was not heard), CREST__LISTEN_EVENT for notifications
     * (those a read of the socket found, as one call), CREST__LISTEN_DOWN
     * when the connection is lost. channel: lower-case letters, digits and
     * _, not a digit first (a constant of crest's). The worker's loop only,
     * once per worker (a second call: CREST_EINVAL); it listens until
     * worker_dispose. 0, or negative when it cannot start (cb never runs).
     * NULL for a store without notifications (SQLite: one process writes,
     * and its hub hears its commits). */
    int (*listen)(crest__store_worker *w, const char *channel, crest__listen_cb cb, void *ud);
    /* The database's version as the worker's connection sees it: a number
     * that differs from the last call's once any connection, the worker's
     * own (a C handler's statements), another of this process or another
     * program's, has written to the database (SQLite: PRAGMA data_version,
     * which counts the other connections' commits, plus the worker
     * connection's own changed rows; no read of any table). The worker's
     * loop only; -1 when it cannot tell. NULL for a store that notifies
     * instead (PostgreSQL: listen). */
    int64_t (*data_version)(crest__store_worker *w);
} crest__store_vt;

enum { CREST__TXN_BEGIN, CREST__TXN_COMMIT, CREST__TXN_ROLLBACK };

extern const crest__store_vt crest__store_sqlite;
extern const crest__store_vt crest__store_postgres;

/* postgres_conn.c: whether text names a PostgreSQL database (a postgres://
 * or postgresql:// URI, or libpq's key=value form), and whether it writes a
 * password in itself. */
bool crest__pg_is_conninfo(const char *text);
bool crest__pg_has_password(const char *text);

/* The store and its table (every store object starts with this). */
struct crest__store {
    const crest__store_vt *vt;
    crest__store_config cfg;
};

/* Classifies SQLite failures (sqlite_error.c; tests use it directly). */
/* rc of a call on db (NULL: rc alone); strings into the arena a. A foreign
 * key failure is FOREIGN_KEY here: the store makes it REFERENCED for a
 * statement flagged CREST__QF_DELETE. */
void crest__dberr_sqlite(void *db, int rc, crest__arena *a, crest__dberr *out);

/* dberr.c: whether msg is "crest:<status>:<detail>", the form SQL raises an
 * answer of its own in (a trigger's RAISE); then *status and *detail (into
 * msg). Only 4xx/5xx statuses with a reason phrase, not 401 or 405. */
bool crest__dberr_raised(const char *msg, int *status, const char **detail);

/* Makes r an empty result of ncols columns (names from the arena a); 0 or -1. */
int crest__rows_init(crest__rows *r, crest__arena *a, unsigned ncols);

/* rows.c: a cell as JSON the way the database typed it (json cells as their
 * text, raw); and as a JSON string of its text (a number's digits). */
void crest__cell_write(crest_json *w, const crest__cell *c);
void crest__cell_write_text(crest_json *w, const crest__cell *c);
/* A cell as a value of a declared type (crest_field_type: a model field's,
 * or an SQL endpoint column's; 0: as the database typed it). A cell of
 * another kind is converted when that keeps its value: an integral float,
 * or an integer's text, for an int (past 2^53 the float's digits: an int is
 * an integer of any size); a number, or its text, for a float; a number or
 * a database's boolean text ("t", "false", "1") for a bool; stored JSON
 * text for json (text that is not JSON as a string); the text of any value
 * for a string, date, datetime or uuid. When it cannot be converted: strict,
 * -1 and nothing written (the caller answers 500: the document promised the
 * type); else it is written as stored and 0 returned. */
int crest__cell_write_as(crest_json *w, const crest__cell *c, int type, bool strict);

#endif
