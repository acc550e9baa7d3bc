/* postgres_loop.h — what the files of the PostgreSQL store on a worker's
 * loop share: a worker, its connections, the statements they carry.
 * postgres_loop.c is the sessions' side (taking a connection, the queue,
 * the worker); postgres_lconn.c keeps a connection up (its socket watcher,
 * connecting, losing it, its timer, cancels); postgres_segment.c sends a
 * session's statements as pipeline segments and reads their results;
 * postgres_listen.c is the worker's LISTEN connection (a pg_lconn of its
 * own, kept up by postgres_lconn.c). Internal to those files. */
#ifndef CREST_POSTGRES_LOOP_H
#define CREST_POSTGRES_LOOP_H

#include <uv.h>

#include "postgres_internal.h"

enum { L_DOWN, L_CONNECTING, L_IDLE, L_OWNED, L_RELEASING };
typedef enum { OP_CMD, OP_PREPARE, OP_QUERY, OP_SYNC } op_kind;

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 32000
#define STABLE_MS 1000          /* a connection lost after serving this long is made again at once */
#define CONNECT_TIMEOUT_MS 10000
#define DEADLINE_GRACE_MS 200   /* crest's timer fires this long after the server's statement_timeout */
#define CANCEL_AGAIN_MS 1000    /* a cancel not answered in this time is sent once more, */
#define CANCEL_WAIT_MS 4000     /* and the connection dropped when that is not answered in this time */

/* A statement of a session, from pg_loop_query to its completion (in the
 * session's arena: the session lives until its statements complete). */
struct pg_call {
    crest__sess *ss;
    crest__query_cb cb;
    void *ud;
    const char *sql;              /* NUL-terminated copy */
    size_t len;
    pg_params p;
    unsigned flags;
    size_t max_rows;
    bool retried;                 /* sent again after its prepared statement went stale */
    bool whole;                   /* its segment opens its transaction (BEGIN): it may run again */
    unsigned conflicts;           /* times it ran again after losing to a concurrent transaction */
    pg_call *next;                /* in its session's list of waiting statements */
};

typedef struct pg_op {
    op_kind kind;
    pg_call *call;                /* OP_QUERY, OP_SYNC: the statement of the segment (NULL: crest's own) */
    unsigned stmt_id;             /* OP_PREPARE: the name to record once prepared */
} pg_op;

/* A socket watcher. Allocated per connection attempt (libpq may change
 * sockets while it connects) and freed when closed, or by worker_dispose
 * when the engine closed it on the way out. */
typedef struct pg_poll {
    uv_poll_t h;
    struct pg_poll *prev, *next;  /* the worker's list */
    crest__store_worker *w;
    pg_lconn *lc;                 /* NULL once closing */
    int fd;
} pg_poll;

struct pg_lconn {
    crest__store_worker *w;
    crest__conn c;                /* the PGconn and its statements */
    int state;
    pg_poll *poll;
    int events;
    uv_timer_t timer;             /* connecting, backing off, or watching a deadline */
    unsigned backoff_ms;
    uint64_t up_since;            /* when it connected (the loop's clock, ms) */
    crest__sess *owner;
    pg_op *ops;                   /* sent, not yet answered: a ring */
    unsigned head, n, cap;
    PGresult *seg_res, *seg_fail; /* the segment being read: its statement's result, its first failure */
    int cancel_sent;              /* cancel requests sent for what runs now (a second one a second later:
                                     a request that lands between two messages cancels nothing) */
    bool was_connected;           /* it served before: its next connect is a reconnect (/metrics) */
    pg_resolve *resolving;        /* connecting: the host's name being looked up, or NULL */
    bool listener;                /* the worker's LISTEN connection (postgres_listen.c): never handed
                                     out, not counted in the pool */
    bool listening;               /* listener: its LISTEN answered, not lost since */
};

struct crest__store_worker {
    pg_store *s;
    uv_loop_t *loop;              /* NULL: this worker's sessions block (postgres.c) */
    pg_lconn *conns;
    unsigned nconns;
    unsigned acquire_ms, queue_max;
    crest__sess *qhead, *qtail;   /* sessions waiting for a connection, oldest first */
    unsigned qlen;
    uv_timer_t qtimer;
    pg_poll *polls;
    pg_pool_counts counts;        /* for /metrics (postgres_pool.c) */
    pg_lconn *listener;           /* LISTEN's connection once asked for (postgres_listen.c), or NULL */
    crest__listen_cb listen_cb;
    void *listen_ud;
    char listen_sql[80];          /* `LISTEN <channel>` */
};

/* ---- postgres_loop.c ---- */

/* lc moves to state (L_*), counted for /metrics. */
void crest__pg_set_state(pg_lconn *lc, int state);
/* Runs a statement's completion: its rows, or its failure (err). */
void crest__pg_complete(pg_call *call, crest__rows *rows, const crest__dberr *err);
/* The statement fails with kind and why (borrowed: a static text, or
 * libpq's message read before the completion returns). */
void crest__pg_fail_call(pg_call *call, crest__dberr_kind kind, const char *why);
/* Whether every connection of w is down. */
bool crest__pg_pool_down(const crest__store_worker *w);
/* Every waiting session fails (the pool is down). */
void crest__pg_fail_queue(crest__store_worker *w, const char *why);
/* lc's ops are all answered and nobody holds it: it serves the queue. */
void crest__pg_release(pg_lconn *lc);
/* Idle connections go to the sessions waiting, oldest first. */
void crest__pg_serve_queue(crest__store_worker *w);

/* ---- postgres_lconn.c ---- */

/* Watches lc's socket for events (made anew when libpq changed sockets); 0 or -1. */
int crest__pg_poll_want(pg_lconn *lc, int events);
/* The ring of operations lc waits answers for: one more at its end (0, or
 * -1 out of memory), the oldest taken off. */
int crest__pg_push_op(pg_lconn *lc, op_kind kind, pg_call *call, unsigned stmt_id);
pg_op crest__pg_pop_op(pg_lconn *lc);
/* lc is broken: what it carried fails with kind and why, it is closed and
 * made again (at once, or after a backoff). */
void crest__pg_drop(pg_lconn *lc, crest__dberr_kind kind, const char *why);
/* lc's connect ended well (or the worker's first, blocking one): it serves. */
void crest__pg_connected(pg_lconn *lc);
/* A connect (its lookup first, when the host is a name) within CONNECT_TIMEOUT_MS. */
void crest__pg_start_connect(pg_lconn *lc);
/* Cancels what runs on lc, from the thread pool of cfg (NULL: in place). */
void crest__pg_send_cancel(pg_lconn *lc, const crest__sess_config *cfg);
/* lc's one timer: a connect that takes too long, a backoff's end, a deadline. */
void crest__pg_timer_cb(uv_timer_t *t);

/* ---- postgres_segment.c ---- */

/* Sends what libpq holds; watches for writability while some is left. */
void crest__pg_flush_out(pg_lconn *lc);
/* crest's own command, and a segment's end (call: the statement whose
 * completion the sync ends, or NULL); 0 or -1. */
int crest__pg_send_cmd(pg_lconn *lc, const char *sql);
int crest__pg_send_sync(pg_lconn *lc, pg_call *call);
/* Sends the statements lc's owner waits to send. */
void crest__pg_send_calls(pg_lconn *lc);
/* Reads what the server answered, operation by operation. */
void crest__pg_read_results(pg_lconn *lc);

/* ---- postgres_listen.c ---- */

/* The listener connected: it sends its LISTEN. */
void crest__pg_listen_connected(pg_lconn *lc);
/* The listener's LISTEN was answered: fail (borrowed; NULL: it listens) is
 * its failure (the connection is then dropped and made again). */
void crest__pg_listen_answered(pg_lconn *lc, const PGresult *fail);
/* After a read of the listener's socket: the notifications it brought. */
void crest__pg_listen_heard(pg_lconn *lc);
/* The listener was dropped (crest__pg_drop). */
void crest__pg_listen_lost(pg_lconn *lc);

#endif
