/* req.h — the objects every stage shares, in a room of their own below
 * them: the app object (crest_app), an endpoint as the app keeps it, the
 * request and the response, a worker's view; and the request-level calls
 * stages make (the store session, the one table of database failures as
 * answers, the app file's line registry). src/app/ wires stages together;
 * the stages (rest, auth, openapi, sqlep) include this, never src/app/.
 * Internal: not installed. */
#ifndef CREST_REQ_H
#define CREST_REQ_H

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>

#include "../core/core.h"
#include "../router/router.h"
#include "../store/store.h"

typedef struct crest__worker crest__worker;
typedef struct crest__sqlep crest__sqlep;
typedef struct crest__model crest__model;
typedef struct crest__auth crest__auth;
typedef struct crest__ratelimits crest__ratelimits;
/* A rate limit: a bucket of `burst` requests refilled at per_s a second. */
typedef struct crest__rate {
    double burst, per_s;
} crest__rate;
typedef struct crest__module crest__module;
typedef struct crest__metrics crest__metrics;             /* metrics.c */
typedef struct crest__metrics_block crest__metrics_block; /* one worker's counters */
typedef struct crest__gz crest__gz;                       /* compress.c: a worker's deflate state */
/* The gzip copy of a shared body (crest__res_send_shared), made once by
 * the first answer that needs it (compress.c) and owned by whoever owns the
 * body: free it with crest__gzslot_free along with the body. */
typedef struct crest__gzslot {
    void *_Atomic body;          /* compress.c's crest__gzbody, or NULL */
} crest__gzslot;
void crest__gzslot_free(crest__gzslot *slot);

/* An endpoint as the app keeps it. */
typedef struct crest__endpoint {
    const crest_endpoint *spec; /* borrowed (C API) or owned by `sql` */
    void *ud;
    char *full_path;            /* the pattern with the API prefix, owned */
    unsigned nparams;
    unsigned index;             /* position in app->eps, for per-worker caches */
    crest__sqlep *sql;          /* SQL endpoint data, owned; NULL for C handlers */
    bool builtin;               /* /healthz and the like: not under the prefix */
    bool guarded;               /* a builtin that auth still checks (/metrics) */
    /* A blocking handler whose every statement is bounded by the request's
     * deadline and rolled back when interrupted (REST module writes): once
     * it runs, the engine waits for its own answer instead of a 504 at the
     * budget, so a 504 never hides a write that then commits. */
    bool bounded_writes;
    /* Optional: rewrites an error answer of this endpoint (REST modules'
     * custom error bodies); runs after the spec check or the handler. */
    void (*on_error)(crest_req *req, crest_res *res, void *ud);
    crest__rate rate;           /* this endpoint's limit (burst 0: the app's) */
    const char *rate_group;     /* endpoints of one group share buckets (the tag, or the path) */
} crest__endpoint;

/* Whether auth leaves the endpoint alone: the builtins (/healthz, the
 * OpenAPI document, the docs page), except those it guards (/metrics). */
static inline bool crest__ep_skips_auth(const crest__endpoint *ep) { return ep->builtin && !ep->guarded; }

struct crest_app {
    crest__router *router;
    crest__endpoint **eps;
    unsigned neps, caps;
    char *listen_host;
    int listen_port;
    int workers;
    char *db_path;               /* SQLite file, PostgreSQL conninfo (db_postgres), or NULL */
    bool db_postgres;
    char *db_password_file;      /* PostgreSQL: the file holding its password (password_file:), or NULL */
    unsigned pool_size, pool_acquire_ms, pool_queue; /* pool: (0: the store's defaults) */
    bool wait_for_db;            /* serve: retry until the database answers at start (--wait-for-db) */
    char *startup_sql;           /* run once at start, in one transaction */
    char *api_prefix;            /* "" or "/api/v1" */
    crest_limits limits;
    bool access_log;
    bool loaded_from_file;
    char *source_name;           /* the app file, for messages */
    /* Hot reload (src/app/reload.c): the file crest_app_load_file read (NULL: the app was not read from
     * a file, so SIGHUP has nothing to re-read); what C made outside the loader: endpoints, models,
     * modules, or settings a reload re-reads from the file (crest__app_made_in_c: a reload could not
     * give them back); the pid file written while serving (pid_file: or --pid-file). */
    char *app_file;
    bool loading, c_made;
    char *pid_file;
    /* An app made by a reload borrows from the app first served (which outlives it): the store, the
     * metrics (shared, refcounted), the rate limits' buckets (so a reload does not refill them) and,
     * when its file names no certificate, the TLS context. */
    bool reloaded, tls_borrowed, limits_borrowed;
    /* The engine: workers that still use this app after a reload switched away from it. */
    atomic_int engine_users;
    /* Lines of app file nodes that errors found after loading (at check or
     * start) name: "startup_sql", "models.Task", "models.Task.seed[2]",
     * "modules.api_task.serializer.computed.hours". Owned. */
    struct crest__line { char *key; int line; } *lines;
    unsigned nlines, caplines;
    /* Descriptions of tags of the OpenAPI document (groups: of the app file). Owned. */
    struct crest__tag { char *name, *description; } *tags;
    unsigned ntags;
    void *appfile;               /* data owned by the loader (freed with the app) */
    void (*appfile_free)(void *);
    struct crest__server *srv;   /* while serving */
    uint64_t gen;                /* unique per app, for thread-local caches */
    /* The key of the cursors' HMAC (src/rest/module_cursor.c): read at
     * start from the database's crest_meta, where the first crest process
     * on it put a random one, so every process on it accepts the others'. */
    unsigned char cursor_key[32];
    crest__store *store;         /* the database while serving or preparing (NULL: none) */
    crest__model **models;       /* owned */
    unsigned nmodels;
    crest__module **modules;     /* owned */
    unsigned nmodules;
    bool durability_normal;      /* synchronous=NORMAL instead of FULL */
    /* OpenAPI (src/openapi/openapi.c) */
    char *info_title, *info_version, *info_description;
    char **servers, **server_descs;
    unsigned nservers;
    bool openapi_30;
    bool docs_off;
    struct crest__docs_cache *docs_cache; /* openapi.c: the docs page's files, read once */
    crest__auth *auth;           /* src/auth/auth.c; NULL: no authentication */
    struct crest__tls_ctx *tls;  /* src/http/tls.c; NULL: plain HTTP */
    crest__rate rate;            /* the default rate limit (burst 0: none) */
    crest__ratelimits *limits_table; /* src/auth/ratelimit.c */
    char **cors_origins;         /* allowed origins; none: no CORS */
    unsigned ncors;
    char *cors_headers;
    char cors_max_age[16];
    bool cors_credentials;
    char *openapi_doc;           /* the served document, made at start */
    bool builtins_added;
    /* metrics.c: GET /metrics */
    bool metrics_on;             /* default on; `metrics: off` */
    char *metrics_perm;          /* who may read it with auth (NULL: nobody) */
    crest_endpoint metrics_spec; /* the builtin's spec, with that permission */
    crest__metrics *metrics;     /* the workers' counters, made at the first worker; shared with the apps
                                    reloads make (refcounted) */
    unsigned *metric_series;     /* metrics.c: the series of each endpoint (neps + 1: unmatched last) */
    size_t openapi_len;
    crest__gzslot openapi_gz;    /* the document's gzip copy (compress.c) */
    /* compress.c: gzip of answers (`compression:`; crest_app_set_compression) */
    bool compress_off;
    int compress_level;          /* 1..9 */
    size_t compress_min;         /* bodies smaller than this are sent as they are */
    struct crest__changes *changes; /* src/rest/changes_hub.c: the workers' hubs, while serving a change feed */
};

/* ---- an answer that stays open: an event stream (src/http/stream.c) ----
 * A handler that answers with a stream fills one (in the request's arena)
 * and sets res->stream. When the answer is a 200 to a GET, the engine sends
 * the head (no Content-Length: chunked for HTTP/1.1, else delimited by the
 * close), keeps the request (its arena, user, parameters) for as long as
 * the stream lasts, calls opened(), and from then on the owner writes with
 * crest__stream_write. The request's deadline and the idle timeouts do not
 * apply; after heartbeat_ms without output the engine writes `heartbeat`.
 * The stream ends when the client leaves, when the owner drops it, or when
 * the server drains: closed() runs then, once, and the request is freed
 * after it returns (or, when the owner still uses it, once the owner lets
 * go: crest__stream_release). */
typedef enum crest__stream_end {
    CREST__STREAM_GONE,     /* the client closed the connection (or it broke) */
    CREST__STREAM_DROPPED,  /* the owner dropped it (crest__stream_drop: a client reading too slowly) */
    CREST__STREAM_DRAINED   /* the server is stopping: the stream was ended cleanly */
} crest__stream_end;

typedef struct crest__stream crest__stream;
struct crest__stream {
    /* the owner's */
    const char *content_type;           /* static */
    const char *heartbeat;              /* static: written after heartbeat_ms of silence */
    unsigned heartbeat_ms;
    size_t max_unsent;                  /* output the client may leave unread (crest__stream_write) */
    void (*opened)(crest__stream *s);   /* the head is out: writes may begin */
    /* No write after it. true: the owner still uses the request (a
     * statement of it runs): the request stays until the owner calls
     * crest__stream_release; false: it is freed when this returns. */
    bool (*closed)(crest__stream *s, crest__stream_end why);
    void *ud;
    /* the engine's */
    void *conn;                         /* the connection while open, else NULL */
    void *held;                         /* the request kept for the owner after closed() */
    size_t sent;                        /* body bytes written */
};

/* Writes n bytes to the open stream s as they are (src/http/stream.c).
 * 0; -1 when s is not open, or when the client has left more than
 * s->max_unsent bytes unread: then nothing is written, and the owner ends
 * the stream with crest__stream_drop once it no longer uses the request
 * (the stream and the request stay until then). */
int crest__stream_write(crest__stream *s, const char *p, size_t n);
/* Ends an open stream at once and closes its connection: closed(DROPPED)
 * runs, and the request is freed, before this returns. A line goes to the
 * log. Nothing when s is not open. */
void crest__stream_drop(crest__stream *s);
/* The owner is done with the request of a stream whose closed() returned
 * true: it is freed now (with s, when s lives in its arena). On the
 * worker's loop. */
void crest__stream_release(crest__stream *s);

/* A typed parameter value after the spec check. */
typedef struct crest__value {
    bool present;
    const char *str;   /* the text (decoded), always set when present */
    int64_t i;
    double f;
    bool b;
} crest__value;

typedef struct crest__header {
    const char *name, *value;
    size_t name_len, value_len;
} crest__header;

typedef struct crest__kv {
    const char *key, *value;
} crest__kv;

typedef struct crest__field_error {
    struct crest__field_error *next;
    const char *field, *msg;
} crest__field_error;

struct crest_req {
    crest__arena *arena;
    crest__worker *worker;
    crest_app *app;
    crest_method method;
    const char *method_text;
    unsigned short http_major, http_minor;
    const char *url;             /* raw request target, NUL-terminated */
    size_t url_len;
    const char *path;            /* the path as sent (for the log), arena */
    const char *path_decoded;    /* percent-decoded on first use, arena */
    crest__header *headers;
    unsigned nheaders;
    crest__kv *query;
    unsigned nquery;
    const char *body;
    size_t body_len;
    json_t *json;                /* parsed body, decref'd at reset */
    const crest__endpoint *ep;
    crest__match match;
    crest__value *values;        /* one per spec param */
    uint64_t start_us;
    char id[40];
    bool blocking;
    crest__sess *sess;           /* the request's use of the store, made at first use (arena) */
    unsigned store_pending;      /* statements in flight (a deferred answer waits for them) */
    uint64_t statements;         /* statements the store ran for the request (its session counts them on
                                    the request's thread); added to the worker's metrics by
                                    crest__req_reset */
    bool deferred;               /* the handler returned CREST_DEFERRED and has not finished */
    unsigned in_query_cb;        /* crest_query callbacks running (nested when one runs in place) */
    const crest_user *user;      /* set by auth (arena), NULL when anonymous */
    const char *peer;            /* the client's IP address ("-" when unknown) */
    uint64_t deadline_us;
    bool timed_out;
    bool db_conflict;            /* an answer was a transaction's CONFLICT (dberror.c): a write unit
                                    may run again (crest__rest_write_route) */
    const struct crest__field_mask *fields; /* a REST route's fields= (arena), NULL: every field */
    bool in_route_txn;           /* a write route holds a transaction around its handler (an idempotent
                                    create): the handler's own transaction is that one */
};

/* A public setter or adder ran outside the app file's loader: what it did
 * is the C program's, which a reload of the file could not give back (the
 * settings a reload keeps from the running app, listen, workers, database,
 * TLS, pid file and access log, do not count). */
static inline void crest__app_made_in_c(crest_app *app)
{
    if (!app->loading)
        app->c_made = true;
}

struct crest_res {
    crest__arena *arena;         /* the request's */
    crest_req *req;              /* the request it answers */
    bool finished;               /* crest_res_finish was called */
    int finish_rc;               /* what the finished handler's work returned (0, or -1 answered) */
    int status;                  /* 0: the spec's */
    bool json_used;
    bool enveloped;
    crest_json *json;            /* the connection's writer, reset per request */
    crest__buf *headers;         /* extra header lines, "Name: value\r\n" */
    /* a problem answer */
    bool is_error;
    int err_status;
    const char *err_code, *err_detail;
    crest__field_error *err_fields;
    unsigned nerr_fields;
    const char *allow;           /* 405 / OPTIONS */
    bool close;                  /* answer with Connection: close */
    const char *retry_after;
    const char *content_type;    /* crest_res_send: a body that is not JSON; static or arena */
    const char *shared;          /* crest__res_send_shared: the body, borrowed for as long as the app lives */
    size_t shared_len;
    crest__gzslot *shared_gz;    /* where the shared body's gzip copy is kept (NULL: none) */
    crest__stream *stream;       /* an answer that stays open (the request's arena), or NULL */
    bool etag_gzip;              /* a 304 whose If-None-Match tag was a compressed answer's: its ETag
                                    says "-gzip" too, as that 200 did (dispatch.c) */
};

/* Per worker-thread state of the app (store connections, caches). */
typedef struct crest__app_worker {
    crest__store_worker *store;  /* the worker's connections, or NULL */
    struct crest__token_cache *tokens; /* verified bearer tokens (auth.c), made at first use */
    crest__metrics_block *metrics;     /* this worker's counters (metrics.c), or NULL */
    crest__gz *gz;                     /* deflate state (compress.c), made at the first gzip answer */
    void *changes;                     /* its hub of change feed subscribers (src/rest/changes_hub.c), or NULL */
} crest__app_worker;

struct crest__worker {
    int id;
    crest_app *app;
    crest__app_worker aw;
    void *engine;                /* the engine's own per-worker data */
    void *loop;                  /* the worker's event loop (uv_loop_t), set by the engine; NULL when
                                    requests run without one (the loopback harness) */
    /* Set by the engine. offload: runs work on the thread pool, then
     * after(ud, cancelled) on this worker's loop; 0 or negative (then
     * neither runs). resume: a deferred request's answer is ready (called
     * on this worker's loop). */
    int (*offload)(crest__worker *w, void (*work)(void *), void (*after)(void *, bool), void *ud);
    void (*resume)(crest__worker *w, crest_req *req);
};

/* ---- change feeds (src/rest/changes_hub.c) ---- */

/* The worker's hub of change feed subscribers, on its loop, when the app
 * has a store and the worker a loop (else nothing; a reload may turn a
 * feed on): 0 or
 * CREST_ENOMEM. Disposed after the loop is closed. */
int crest__changes_worker_init(crest_app *app, crest__worker *w);
void crest__changes_worker_dispose(crest__worker *w);
/* Frees what the hubs shared (every worker disposed). */
void crest__changes_app_free(crest_app *app);
/* A reload's new app next shares the hubs of base (the app first served),
 * and its feeds' retention becomes theirs. On the main thread, before the
 * workers switch to next. */
void crest__changes_adopt(crest_app *base, crest_app *next);
/* A write of this process committed: every worker's subscribers read the
 * log now. Any thread; nothing when the app serves no feed. */
void crest__changes_notify(crest_app *app);
/* /metrics: open subscribers, subscribers dropped for reading too slowly,
 * events written (on: the app serves a feed); the workers' hubs woken, by
 * source: a REST write of this process committed, a notification of the
 * store (PostgreSQL's LISTEN), the store listening again after a loss, a
 * look at the log's end that found it grew; workers whose LISTEN is up
 * (listens: the store has notifications). */
enum { CREST__CHANGES_WAKE_COMMIT, CREST__CHANGES_WAKE_NOTIFY, CREST__CHANGES_WAKE_LISTEN, CREST__CHANGES_WAKE_POLL,
       CREST__CHANGES_WAKE_N };
typedef struct crest__changes_stats {
    bool on, listens;
    uint64_t subscribers, dropped, events;
    uint64_t wakeups[CREST__CHANGES_WAKE_N];
    uint64_t listening;
} crest__changes_stats;
void crest__changes_stats_of(const crest_app *app, crest__changes_stats *out);

/* ---- the request's calls (src/req/session.c, src/app/) ---- */

/* The request's session with the store, made at first use with the
 * request's deadline (now + its budget); NULL without a database or memory. */
crest__sess *crest__req_sess(crest_req *req);
/* A session's config for statements the worker runs on its own loop (not
 * a request's: the change feed's look at the log): its connections, the
 * engine's way off the loop, a deadline timeout_ms from now. */
crest__sess_config crest__worker_sess_config(crest__worker *w, crest__arena *a, unsigned timeout_ms);
/* The client is gone: the request's statements stop (its session, if any). */
void crest__req_cancel(crest_req *req);
/* Ends the request's session (releases what it holds; notes a deadline hit). */
void crest__req_end_sess(crest_req *req);
/* Runs q in the request's session; cb runs once, on the request's thread,
 * maybe before this returns. Returns CREST_DEFERRED (the handler returns
 * it, and cb ends with crest_res_finish), or -1 with res answered (no
 * database, no memory; cb never runs). */
int crest__req_query(crest_req *req, crest_res *res, const crest__query *q, crest__query_cb cb, void *ud);
/* crest_res_finish with the handler's result: rc -1 without an error
 * answer becomes a 500, as a handler returning -1 does. */
void crest__res_finish(crest_res *res, int rc);
/* Sends a finished deferred answer (after_handler, then the engine's
 * resume): req and res may be gone when it returns. */
void crest__req_deliver(crest_req *req, crest_res *res);
/* Answers with bytes that live as long as the app (a static file read
 * once, the OpenAPI document): the engine sends them from there, without a
 * copy per response or per connection. content_type as for crest_res_send.
 * gz: where the body's gzip copy is kept (owned with the body), or NULL:
 * then a gzip answer compresses it each time (fine for small bodies). */
int crest__res_send_shared(crest_res *res, const char *content_type, const void *data, size_t len,
                           crest__gzslot *gz);
/* A handler's budget in ms: the endpoint's timeout_ms, else the app's
 * statement timeout. */
unsigned crest__req_budget_ms(const crest_req *req);
/* Records where the app file declared key (copied); 0 or CREST_ENOMEM. */
int crest__app_note_line(crest_app *app, const char *key, int line);
/* Describes a tag of the OpenAPI document (strings copied); 0 or CREST_ENOMEM. */
int crest__app_set_tag_description(crest_app *app, const char *tag, const char *description);
/* The description of tag, or NULL. */
const char *crest__app_tag_description(const crest_app *app, const char *tag);
/* The line recorded for key, or 0. */
int crest__app_line(const crest_app *app, const char *key);
/* For an error found after loading: when err has no line yet, names the app
 * file and the line recorded for key (nothing when none is). Returns rc. */
int crest__app_locate(const crest_app *app, crest_error *err, const char *key, int rc);
/* An endpoint outside the API prefix (builtins). */
int crest__app_add_builtin(crest_app *app, const crest_endpoint *ep, void *ud, crest_error *err);
/* Answers with the problem e of the table (src/core/errors.h): its status
 * and code, and the detail printed from fmt into the request's arena (fmt
 * NULL: the table's default detail, static, so it needs no memory). Returns
 * -1, for a handler to return. */
int crest__res_fail(crest_res *res, crest__ecode e, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* crest__res_fail for a code whose status is the caller's (any_status:
 * `raised`); another code, or a status outside 400..599, keeps the table's. */
int crest__res_fail_status(crest_res *res, crest__ecode e, int status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* An error answer produced by the engine itself (limits), without
 * allocating: detail is static, or NULL for the table's default. */
void crest__res_fail_static(crest_res *res, crest__ecode e, const char *detail);
/* Answers e (the one table of kinds → status, code, detail, Retry-After).
 * Returns -1. */
int crest__dberr_answer(crest_req *req, crest_res *res, const crest__dberr *e);

#endif
