/* app_internal.h — the structures behind crest_app, crest_req and crest_res,
 * shared by the app, the HTTP engine, SQL endpoints and the app file loader.
 * Internal: not installed. */
#ifndef CREST_APP_INTERNAL_H
#define CREST_APP_INTERNAL_H

#include <jansson.h>
#include <pthread.h>

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
    char *db_path;               /* SQLite file, or NULL */
    char *startup_sql;           /* run once at start, in one transaction */
    char *api_prefix;            /* "" or "/api/v1" */
    crest_limits limits;
    bool access_log;
    bool loaded_from_file;
    char *source_name;           /* the app file, for messages */
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
    crest__metrics *metrics;     /* the workers' counters, made at the first worker */
    size_t openapi_len;
};

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
    bool deferred;               /* the handler returned CREST_DEFERRED and has not finished */
    unsigned in_query_cb;        /* crest_query callbacks running (nested when one runs in place) */
    const crest_user *user;      /* set by auth (arena), NULL when anonymous */
    const char *peer;            /* the client's IP address ("-" when unknown) */
    uint64_t deadline_us;
    bool timed_out;
};

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
};

/* Per worker-thread state of the app (store connections, caches). */
typedef struct crest__app_worker {
    crest__store_worker *store;  /* the worker's connections, or NULL */
    struct crest__token_cache *tokens; /* verified bearer tokens (auth.c), made at first use */
    crest__metrics_block *metrics;     /* this worker's counters (metrics.c), or NULL */
} crest__app_worker;

struct crest__worker {
    int id;
    crest_app *app;
    crest__app_worker aw;
    void *engine;                /* the engine's own per-worker data */
    /* Set by the engine. offload: runs work on the thread pool, then
     * after(ud, cancelled) on this worker's loop; 0 or negative (then
     * neither runs). resume: a deferred request's answer is ready (called
     * on this worker's loop). */
    int (*offload)(crest__worker *w, void (*work)(void *), void (*after)(void *, bool), void *ud);
    void (*resume)(crest__worker *w, crest_req *req);
};

/* ---- app.c: dispatch ---- */

/* Routes, checks and runs the request; fills res. Returns 0 when the answer
 * is ready, 1 when the handler must run on the thread pool (the engine then
 * calls crest__app_run_blocking there and crest__app_finish after). */
int crest__app_handle(crest_req *req, crest_res *res);
void crest__app_run_blocking(crest_req *req, crest_res *res);
/* The request's session with the store, made at first use with the
 * request's deadline (now + its budget); NULL without a database or memory. */
crest__sess *crest__req_sess(crest_req *req);
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
/* Writes the response (status line, headers, body) into out. A shared body
 * (crest__res_send_shared) is not copied: *shared gets it, to be sent right
 * after out's bytes (len 0: none). */
int crest__app_render(crest_req *req, crest_res *res, crest__buf *out, const char *date, bool keep_alive,
                      size_t *body_bytes, crest__str *shared);
/* Answers with bytes that live as long as the app (a static file read
 * once, the OpenAPI document): the engine sends them from there, without a
 * copy per response or per connection. content_type as for crest_res_send. */
int crest__res_send_shared(crest_res *res, const char *content_type, const void *data, size_t len);
/* A handler's budget in ms: the endpoint's timeout_ms, else the app's
 * statement timeout. */
unsigned crest__req_budget_ms(const crest_req *req);
/* For an answer made while a blocking handler still runs on src: copies
 * into dst (a fresh request) what src had before its handler started —
 * fields the handler never writes; pointers stay into src's memory, which
 * lives until the handler returns. */
void crest__req_take_over(crest_req *dst, const crest_req *src);
/* The 504 of a blocking handler past its budget (then the endpoint's error hook). */
void crest__app_timeout(crest_req *req, crest_res *res);
/* An error answer produced by the engine itself (limits). */
void crest__res_problem(crest_res *res, int status, const char *code, const char *detail);
/* The effective status of a finished response. */
int crest__res_final_status(const crest_req *req, const crest_res *res);
/* Splits a query string (without '?') into req->query (decoded, arena).
 * Repeated keys are kept in order. CREST_EINVAL for a bad %XX or a NUL. */
int crest__query_parse(crest_req *req, const char *q, size_t len);
/* Prepares req/res for a new request on a connection. */
void crest__req_reset(crest_req *req, crest_res *res);

int crest__app_worker_init(crest_app *app, crest__worker *w, crest_error *err);
void crest__app_worker_dispose(crest__worker *w);

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

/* ---- metrics.c ---- */

/* The worker's counters, linked into app->metrics (made at the first call);
 * nothing when metrics are off. 0 or CREST_ENOMEM. */
int crest__metrics_worker_init(crest_app *app, crest__worker *w);
/* Unlinks and frees the worker's counters. */
void crest__metrics_worker_dispose(crest__worker *w);
/* Frees what crest__metrics_worker_init made (every worker disposed). */
void crest__metrics_free(crest__metrics *m);
/* Counts one answered request of the worker (its route, status, duration). */
void crest__metrics_observe(crest__worker *w, const crest_req *req, int status, uint64_t dur_us);
/* The /metrics builtin's spec (static; app->metrics_spec copies it). */
const crest_endpoint *crest__metrics_endpoint(void);
/* Opens the database once at start: WAL mode, startup SQL, endpoint SQL checked. */
int crest__app_prepare(crest_app *app, bool dry_run, crest_error *err);
/* Registers /healthz (unless the app has it), /openapi.json and /docs, then
 * makes the OpenAPI document. */
int crest__app_add_builtins(crest_app *app, crest_error *err);
/* Just the routes of crest__app_add_builtins (idempotent). */
int crest__app_add_builtin_routes(crest_app *app, crest_error *err);
/* An endpoint outside the API prefix (builtins). */
int crest__app_add_builtin(crest_app *app, const crest_endpoint *ep, void *ud, crest_error *err);
/* openapi.c: /openapi.json, /docs and its files. */
int crest__openapi_add_builtins(crest_app *app, crest_error *err);
/* Frees the docs page's files read by /docs/{file} (NULL is fine). */
void crest__docs_cache_free(struct crest__docs_cache *dc);

/* ---- sqlep.c: SQL-backed endpoints ---- */
int crest__sqlep_handler(crest_req *req, crest_res *res, void *ud);
void crest__sqlep_free(crest__sqlep *s);
/* The endpoint's line in the app file. */
/* Prepares the SQL against db to check it; err names the endpoint's line. */
int crest__sqlep_check(crest_app *app, crest__endpoint *ep, crest__conn *c, crest_error *err);

/* ---- dberror.c: database errors as HTTP answers ---- */

/* Answers e (the one table of kinds → status, code, detail, Retry-After).
 * Returns -1. */
int crest__dberr_answer(crest_req *req, crest_res *res, const crest__dberr *e);

/* ---- auth.c ---- */
void crest__auth_free(crest__auth *a);
bool crest__user_has_one(const crest_user *u, const char *list);
/* Authenticates and checks the endpoint's permission; 0, or -1 with a 401/403.
 * Runs on the worker's loop thread (it uses the worker's token cache). */
int crest__auth_check(crest_req *req, crest_res *res);
/* Frees a worker's cache of verified tokens (NULL is fine). */
void crest__token_cache_free(struct crest__token_cache *tc);

/* ---- ratelimit.c ---- */
int crest__rate_parse(const char *s, crest__rate *out);
int crest__ratelimits_init(crest_app *app);
void crest__ratelimits_free(crest__ratelimits *r);
/* 0, or -1 with a 429 + Retry-After. */
int crest__rate_check(crest_req *req, crest_res *res);

/* ---- the engine adapter ---- */
typedef struct crest__engine {
    const char *name;
    /* Serves until stopped by a signal, then drains; 0 or negative on failure to start. */
    int (*serve)(crest_app *app, crest_error *err);
    /* Open client connections of the app being served (0 when not serving). */
    unsigned (*open_connections)(const crest_app *app);
} crest__engine;

extern const crest__engine crest__engine_uv;

#endif
