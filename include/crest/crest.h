/* crest/crest.h — the public C API of libcrest.
 *
 * An app holds endpoints (a spec plus a handler), settings and limits; the
 * app file loader fills it the same way a C program does. crest_app_main()
 * turns it into a running server: command-line flags, worker threads,
 * signals, drain.
 *
 * Ownership in one paragraph: an app owns what is added to it (specs are
 * borrowed and must outlive the app: they are usually static const data).
 * Everything a handler gets from a request — strings, typed values, the
 * parsed JSON body — is borrowed from the request and dies when the response
 * is sent. */
#ifndef CREST_H
#define CREST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <jansson.h>

#include "crest/json.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CREST_VERSION "0.1.0"

/* Return codes: 0 or one of these (negative). */
enum {
    CREST_OK = 0,
    CREST_ENOMEM = -1,
    CREST_EINVAL = -2,   /* bad argument or bad spec */
    CREST_EEXIST = -3,   /* route already taken */
    CREST_EIO = -4,      /* file, socket or database error */
    CREST_ECONFIG = -5,  /* app file is wrong */
};

/* Detail for a failed call. Callers pass one in (may be NULL). */
typedef struct crest_error {
    int code;
    char file[256];
    int line;            /* 1-based line in `file`, 0 when not from a file */
    char msg[512];
} crest_error;

typedef struct crest_app crest_app;
typedef struct crest_req crest_req;
typedef struct crest_res crest_res;

typedef enum crest_method {
    CREST_GET = 1, CREST_HEAD, CREST_POST, CREST_PUT, CREST_PATCH, CREST_DELETE,
    CREST_OPTIONS
} crest_method;

typedef enum crest_param_in { CREST_IN_PATH = 1, CREST_IN_QUERY, CREST_IN_HEADER } crest_param_in;

typedef enum crest_type {
    CREST_T_STRING = 1, CREST_T_INT, CREST_T_FLOAT, CREST_T_BOOL, CREST_T_ENUM,
    CREST_T_UUID /* RFC 9562 text form, any case; the handler gets it lower-case */
} crest_type;

/* One typed parameter of an endpoint. Arrays of these end with a zeroed entry. */
typedef struct crest_param {
    const char *name;          /* header names are matched case-insensitively */
    crest_param_in in;
    crest_type type;
    bool required;
    const char *def;           /* default, as text; NULL: none */
    bool has_min, has_max;
    double min, max;           /* numbers: value bounds; strings: length bounds */
    const char *const *values; /* CREST_T_ENUM: NULL-terminated allowed values */
    const char *description;
    const char *example;       /* an example value, as text (docs only) */
} crest_param;

/* A handler answers through `res` and returns 0, or returns the value of
 * crest_res_error() to answer with a problem. `ud` is the pointer given to
 * crest_app_add_endpoint. */
typedef int (*crest_handler)(crest_req *req, crest_res *res, void *ud);

/* An endpoint: what the router, the parameter check and the docs read. */
typedef struct crest_endpoint {
    crest_method method;
    const char *path;            /* "/tables/{table}/count" */
    const crest_param *params;   /* zero-terminated array, or NULL */
    bool json_body;              /* the body must be JSON (object or array) */
    bool body_required;
    const char *summary;
    const char *description;
    const char *tag;
    int status;                  /* success status; 0 means 200 */
    const char *envelope;        /* wrap the handler's JSON as {"<envelope>": ...} */
    /* The handler's budget in ms; 0: the app's statement timeout. Its SQL
     * statements (crest_query, crest_req_sqlite) are interrupted past it: 504. A
     * .blocking handler still running at the deadline: its client gets a
     * 504 (code handler_timeout) then, and the connection closes; the
     * thread cannot be stopped, so it runs on, and when it returns its
     * answer is dropped and the request's memory freed (borrowed request
     * data stays valid for it until then). A .blocking handler that has not
     * started by the deadline (every pool thread busy) never runs. A
     * handler on the event loop cannot be interrupted: only its SQL
     * statements are bounded; its answer is sent when it returns, however
     * late, and its worker serves no one else meanwhile — so work that may
     * take long belongs in .blocking. */
    int timeout_ms;
    bool blocking;               /* run on the thread pool, answer on the loop */
    crest_handler handler;
    /* Documentation (the OpenAPI document and /docs). */
    const char *response_description; /* of the success answer; NULL: "OK" */
    bool deprecated;
    const char *operation_id;    /* NULL: made from the method and the path */
    /* Who may call it when the app has auth: "public", "authenticated", or
     * permissions separated by commas (the user needs one of them). NULL:
     * nobody (deny by default); without auth everything is public. */
    const char *permission;
    /* Requests per client (the user, or the IP when anonymous): "100/1m",
     * "10/s"; over it 429 + Retry-After. NULL: the app's default. */
    const char *rate_limit;
    /* Refuse query parameters the spec does not declare: a request naming
     * one answers 400 invalid_parameter naming it (a typo such as ?limt=5
     * is not silently ignored). false: undeclared query parameters are
     * ignored (handlers may read them with crest_req_query). */
    bool strict_query;
} crest_endpoint;

/* Limits: every size or time input can grow. Defaults are DESIGN.md's. */
typedef struct crest_limits {
    size_t request_line;      /* 8 KiB → 414 */
    size_t header_line;       /* one header 8 KiB → 431 */
    size_t headers_total;     /* 32 KiB → 431 */
    unsigned headers_count;   /* 100 → 431 */
    size_t body;              /* 1 MiB → 413 */
    unsigned json_depth;      /* 64 → 400 */
    unsigned header_timeout_ms;    /* total time for a request head: 10 s → 408 */
    unsigned body_timeout_ms;      /* idle time while reading a body: 30 s → 408 (and see body_total_timeout_ms) */
    unsigned keepalive_timeout_ms; /* idle between requests: 30 s → close */
    unsigned max_connections;      /* 10000 → 503 + Retry-After */
    unsigned drain_timeout_ms;     /* SIGTERM: finish in-flight within 10 s */
    unsigned statement_timeout_ms; /* 5 s → 504; the default handler budget (timeout_ms) */
    size_t response;          /* largest response body: 64 MiB → 500 */
    size_t output_buffer;     /* unsent bytes per connection (queued or being written) past
                                 which no more responses are made until the client reads: 1 MiB */
    unsigned body_total_timeout_ms; /* total time for a body from the end of its head, however
                                       it trickles in (progress does not extend it): 60 s → 408 */
} crest_limits;

/* ---- the app ---------------------------------------------------------- */

/* A new app with default settings, or NULL when out of memory. Caller owns it;
 * free it with crest_app_free (crest_app_main does not free it). */
crest_app *crest_app_new(void);
void crest_app_free(crest_app *app);

/* Loads an app file (YAML or JSON): settings and SQL endpoints. On error
 * returns CREST_ECONFIG and fills err with the file, the line and the cause;
 * the app is then unusable for serving. While the app is served, SIGHUP
 * re-reads this file (hot reload; see crest_app_serve) unless endpoints
 * were added in C too, which a reload could not give back. */
int crest_app_load_file(crest_app *app, const char *path, crest_error *err);
/* The same from memory; `name` is what error messages call the text. */
int crest_app_load_string(crest_app *app, const char *name, const char *text, size_t len,
                          crest_error *err);

/* Adds an endpoint. The spec is borrowed: it must outlive the app. `ud` is
 * passed to the handler. Returns CREST_EINVAL for a bad spec (err says
 * why) or CREST_EEXIST when method and path are taken. */
int crest_app_add_endpoint(crest_app *app, const crest_endpoint *ep, void *ud, crest_error *err);
/* Adds the n endpoints of an array in order, each as crest_app_add_endpoint
 * with the same ud; stops at the first that fails and returns its code (err
 * names its path). The specs are borrowed as above. */
int crest_app_add_endpoints(crest_app *app, const crest_endpoint *eps, size_t n, void *ud, crest_error *err);

/* Settings. Strings are copied. */
int crest_app_set_listen(crest_app *app, const char *host_port);  /* "127.0.0.1:8080" */
int crest_app_set_workers(crest_app *app, int n);                 /* 0: number of cores */
/* "sqlite:path" or a path (SQLite), or PostgreSQL: a postgresql:// URI or
 * libpq's key=value conninfo (its password is best kept out of it: libpq
 * reads PGPASSWORD and PGPASSFILE). */
int crest_app_set_database(crest_app *app, const char *url);
int crest_app_set_api_prefix(crest_app *app, const char *prefix); /* "/api/v1" */
/* Appends SQL run once at start, in one transaction, before serving (e.g.
 * CREATE TABLE IF NOT EXISTS ...). The text is copied. */
int crest_app_add_startup_sql(crest_app *app, const char *sql);
/* The OpenAPI document's info (strings copied; NULL leaves a value as is). */
int crest_app_set_info(crest_app *app, const char *title, const char *version, const char *description);
/* Adds a server URL to the document ("https://api.example.com/"). */
int crest_app_add_server(crest_app *app, const char *url, const char *description);
/* OpenAPI 3.0.3 instead of 3.1 (for older code generators); the docs page
 * (/docs) on or off (default on). /openapi.json is always served. */
void crest_app_set_openapi_30(crest_app *app, bool on);
bool crest_app_openapi_30(const crest_app *app);
void crest_app_set_docs(crest_app *app, bool on);
/* GET /metrics, in Prometheus' text format: requests by route and status,
 * their durations, open connections, the process' CPU, memory and files. On
 * by default. With auth, who may read it: "public", "authenticated" or
 * permissions separated by commas (copied); NULL: nobody (deny by default,
 * as for any route). Call before serving. 0, or CREST_ENOMEM. */
int crest_app_set_metrics(crest_app *app, bool on, const char *permission);
/* gzip of answers: a JSON, problem+json, text (text/...) or JavaScript body of at
 * least min_bytes goes gzipped (Content-Encoding: gzip) to a client whose
 * Accept-Encoding allows it; such answers say Vary: Accept-Encoding, and an
 * ETag of a gzipped one gets -gzip inside its quotes. level: zlib's 1
 * (fastest) to 9. On by default with min_bytes 1024 and level 1. Call
 * before serving. 0, or CREST_EINVAL for a level outside 1..9. */
int crest_app_set_compression(crest_app *app, bool on, size_t min_bytes, int level);
/* The OpenAPI document of the app (everything added so far), malloc'd JSON
 * text the caller frees; NULL when out of memory. */
char *crest_app_openapi(crest_app *app, bool v30, size_t *len);
/* JWT bearer authentication (HS256/384/512 with a secret of >= 32 bytes).
 * Once set, every endpoint needs its `permission` (deny by default). The
 * secret is copied. Returns CREST_EINVAL with err saying why. */
typedef struct crest_jwt_config {
    const char *algorithms;     /* pinned: "HS256", "HS256,HS512", or "RS256" / "ES256" with a public key */
    const unsigned char *secret; /* HS*: the shared secret; RS256/ES256: the public key (PEM) */
    size_t secret_len;
    const char *audience;       /* checked when set */
    const char *issuer;         /* checked when set */
    unsigned leeway_s;          /* for exp, nbf, iat */
    const char *permissions_claim; /* a list claim; NULL: "permissions" */
    size_t max_token;           /* bytes; 0: 8192 */
} crest_jwt_config;
int crest_app_set_jwt(crest_app *app, const crest_jwt_config *cfg, crest_error *err);
/* CORS: origins allowed to call the API from a browser ("https://app.example.com",
 * or "*" for any origin without credentials). Nothing is allowed until one
 * is added. headers: the request headers a preflight allows (NULL:
 * "Authorization, Content-Type, If-Match, If-None-Match"); max_age_s: how
 * long browsers cache it. Answers expose ETag, Location, Retry-After,
 * WWW-Authenticate and X-Request-Id to scripts. */
int crest_app_add_cors_origin(crest_app *app, const char *origin);
int crest_app_set_cors(crest_app *app, const char *headers, unsigned max_age_s, bool credentials);
/* HTTPS: serve TLS 1.2/1.3 with a PEM certificate chain and its private key
 * (paths are read now; the files may be closed or replaced afterwards).
 * CREST_ECONFIG with err filled when a file cannot be used or the key does
 * not match. Without it the app serves plain HTTP (fine for local use). */
int crest_app_set_tls(crest_app *app, const char *cert_file, const char *key_file, crest_error *err);
/* The default rate limit of every endpoint ("100/1m"); CREST_EINVAL for a bad one. */
int crest_app_set_rate_limit(crest_app *app, const char *limit);
/* An API key (sent as X-API-Key): its id (the user's id), the SHA-256 of the
 * key in hex (the key itself is never stored), permissions "a,b". A revoked
 * key answers 401 "revoked". Adding one turns auth on (deny by default). */
int crest_app_add_api_key(crest_app *app, const char *id, const char *sha256_hex, const char *permissions, bool revoked,
                          crest_error *err);
/* A signed token for development and tests (HS algorithms): malloc'd text. */
char *crest_app_token(crest_app *app, const char *sub, const char *const *permissions, long ttl_s);
/* The app's limits, to read or change before serving. Borrowed from the app. */
crest_limits *crest_app_limits(crest_app *app);
/* Access log on stderr (default on). */
void crest_app_set_access_log(crest_app *app, bool on);
/* A file the server writes its pid into once it listens, and removes when it
 * stops (`crest reload` reads it to send SIGHUP). The path is copied; NULL:
 * none (the default). 0 or CREST_ENOMEM. */
int crest_app_set_pid_file(crest_app *app, const char *path);
/* The pid file set by crest_app_set_pid_file or the app file's pid_file:
 * (borrowed from the app), or NULL. */
const char *crest_app_pid_file(const crest_app *app);

/* Checks what serving needs without serving: opens the database (or, when
 * the file does not exist yet, an in-memory one), runs the startup SQL and
 * prepares every SQL endpoint, then rolls everything back. 0 or an error. */
int crest_app_check(crest_app *app, crest_error *err);

/* Runs the server until SIGTERM/SIGINT, then drains and returns 0 (or a
 * negative code when it could not start; err says why). It sets SIGPIPE
 * and SIGXFSZ to be ignored: a write past a file-size limit then fails and
 * the request answers 507 instead of the process being killed. */
int crest_app_serve(crest_app *app, crest_error *err);

/* The whole program for a C app: reads --listen HOST:PORT, --workers N,
 * --wait-for-db (a PostgreSQL database that does not answer at start is
 * waited for, a second between tries), --help and --version from argv, applies CREST_LISTEN, then serves. Returns
 * the process exit status. Does not free the app. */
int crest_app_main(crest_app *app, int argc, char **argv);

/* Writes a one-line description of err to stderr, "file:line: msg". */
void crest_error_print(const crest_error *err, const char *prefix);

/* ---- the request (borrowed by a handler; valid until it answers) ------- */

crest_method crest_req_method(const crest_req *req);
/* The decoded path, without the query string. */
const char *crest_req_path(const crest_req *req);
/* A request header (case-insensitive name), or NULL. */
const char *crest_req_header(const crest_req *req, const char *name);
/* The first query value for key (decoded), or NULL. */
const char *crest_req_query(const crest_req *req, const char *key);
/* The n-th value of a repeated query key (0-based), or NULL past the end. */
const char *crest_req_query_at(const crest_req *req, const char *key, unsigned n);
/* The request id (also sent as X-Request-Id). */
const char *crest_req_id(const crest_req *req);

/* Typed parameter values, by the name used in the spec. They are present when
 * the request carried the parameter or the spec has a default; the spec check
 * ran before the handler, so the type is the declared one. */
bool crest_req_has(const crest_req *req, const char *name);
const char *crest_req_str(const crest_req *req, const char *name);  /* string or enum */
int64_t crest_req_int(const crest_req *req, const char *name);      /* 0 when absent */
double crest_req_float(const crest_req *req, const char *name);     /* 0 when absent */
bool crest_req_bool(const crest_req *req, const char *name);        /* false when absent */

/* The parsed JSON body (borrowed), or NULL when there is none. */
json_t *crest_req_json(const crest_req *req);
/* The raw body bytes (borrowed), or NULL with *len 0. */
const char *crest_req_body(const crest_req *req, size_t *len);

/* The authenticated user of a request (NULL when anonymous). Borrowed from
 * the request. */
typedef struct crest_user {
    const char *id;                   /* the token's sub */
    const char *const *permissions;   /* NULL-terminated */
    json_t *claims;                   /* every claim of the token */
} crest_user;
const crest_user *crest_req_user(const crest_req *req);
/* true when the user has the permission. */
bool crest_user_can(const crest_user *user, const char *permission);

/* Memory that lives as long as the request. NULL when out of memory. */
void *crest_req_alloc(crest_req *req, size_t n);

/* ---- the database, whichever it is ------------------------------------- */

/* A handler returns CREST_DEFERRED when its answer comes later: it (or a
 * callback it started, such as crest_query's) makes the response and then
 * calls crest_res_finish. Until then the connection waits; past the
 * endpoint's timeout the client gets a 504, unless a statement of the
 * request is still running (statements stop at that deadline themselves). */
#define CREST_DEFERRED 1

/* Ends a deferred answer: the response as made so far is sent. Call it
 * once, on the request's worker thread — in a crest_query callback, or in
 * the handler itself; a second call does nothing. The answer leaves when
 * the handler or that callback returns; from then on the request, res and
 * the request's memory (crest_req_alloc) are gone: touch none of them. A
 * blocking handler (spec.blocking) must have finished before it returns. */
void crest_res_finish(crest_res *res);

/* A value bound to a statement, or read from a row. Text kinds (TEXT,
 * DATE, DATETIME, JSON, UUID) are s/len, borrowed until the statement has
 * run; BOOL and INT are i; FLOAT is f. Each database stores them its own
 * way (SQLite: booleans as 0/1, the text kinds as text). */
typedef enum crest_vtype {
    CREST_V_NULL,
    CREST_V_BOOL,
    CREST_V_INT,
    CREST_V_FLOAT,
    CREST_V_TEXT,
    CREST_V_DATE,     /* "YYYY-MM-DD" */
    CREST_V_DATETIME, /* RFC 3339, UTC */
    CREST_V_JSON,     /* JSON text */
    CREST_V_UUID
} crest_vtype;

typedef struct crest_value {
    crest_vtype type;
    int64_t i;
    double f;
    const char *s;
    size_t len;
} crest_value;

static inline crest_value crest_null(void) { return (crest_value){.type = CREST_V_NULL}; }
static inline crest_value crest_bool(bool b) { return (crest_value){.type = CREST_V_BOOL, .i = b}; }
static inline crest_value crest_int(int64_t i) { return (crest_value){.type = CREST_V_INT, .i = i}; }
static inline crest_value crest_float(double f) { return (crest_value){.type = CREST_V_FLOAT, .f = f}; }
/* NUL-terminated text (NULL: a null value); borrowed. */
static inline crest_value crest_text(const char *s)
{
    return s ? (crest_value){.type = CREST_V_TEXT, .s = s, .len = strlen(s)} : crest_null();
}

/* A statement's whole result, in the request's memory (freed with it). */
typedef struct crest_rows crest_rows;

/* Runs when a statement is done, on the request's worker thread. rows is
 * NULL when it failed: res then holds the problem answer (409 for a
 * unique key, 504 past the deadline, ...), which the callback may keep or
 * replace. The callback ends the answer with crest_res_finish. */
typedef void (*crest_query_cb)(crest_req *req, crest_res *res, crest_rows *rows, void *ud);

/* Runs one SQL statement on the app's database, whichever it is, under the
 * endpoint's timeout; parameters are $1..$n, bound from params (borrowed
 * until cb runs). A read that takes long continues off the worker's event
 * loop, so other requests go on meanwhile. cb runs exactly once — maybe
 * before crest_query returns (SQLite's fast path), maybe later. Returns
 * CREST_DEFERRED: return it from the handler. On failure to start (no
 * database, no memory) returns -1 with res answered, and cb never runs. */
int crest_query(crest_req *req, crest_res *res, const char *sql, const crest_value *params, unsigned nparams,
                crest_query_cb cb, void *ud);

/* Rows: crest_rows_next moves to the next row (the first at the first
 * call), false past the last. Getters read column col (0-based) of the
 * current row: a NULL, or a column out of range, reads as 0 / NULL. Text
 * is NUL-terminated and lives as long as the request. */
size_t crest_rows_count(const crest_rows *rows);
unsigned crest_rows_columns(const crest_rows *rows);
const char *crest_rows_name(const crest_rows *rows, unsigned col);
bool crest_rows_next(crest_rows *rows);
crest_vtype crest_rows_type(const crest_rows *rows, unsigned col);
bool crest_rows_is_null(const crest_rows *rows, unsigned col);
int64_t crest_rows_int(const crest_rows *rows, unsigned col);
double crest_rows_float(const crest_rows *rows, unsigned col);
const char *crest_rows_text(const crest_rows *rows, unsigned col, size_t *len);
/* Writes the current row as a JSON object {"<column>": value, ...}. */
void crest_rows_write(const crest_rows *rows, crest_json *w);
/* Rows a write changed, and the id of the last row it inserted (0: none).
 * SQLite knows the id of any insert (its rowid); PostgreSQL has none to
 * tell, so there it is the integer `id` column of the INSERT's RETURNING
 * (write `INSERT ... RETURNING id` for the same answer on both). */
int64_t crest_rows_changes(const crest_rows *rows);
int64_t crest_rows_last_id(const crest_rows *rows);

/* SQLite only — an escape hatch: the request's SQLite connection (the
 * worker's; a blocking handler's thread's own), or NULL when the app has no
 * SQLite database. Borrowed; use it only inside the handler. Its statements
 * run under the endpoint's timeout too. Typed as void* so this header does
 * not need sqlite3.h: cast to sqlite3 *. Prefer crest_query, which works on
 * every store and never blocks the worker's loop. */
void *crest_req_sqlite(crest_req *req);

/* ---- the response ------------------------------------------------------ */

/* The JSON writer for the body; using it makes the body application/json. */
crest_json *crest_res_json(crest_res *res);
/* Overrides the success status from the spec. */
void crest_res_status(crest_res *res, int status);
/* Adds a response header; both strings are copied. */
int crest_res_header(crest_res *res, const char *name, const char *value);
/* Answers with a problem+json error. Returns a value for the handler to
 * return. `code` is a stable machine-readable string ("not_found"), copied
 * into the request's arena: the caller's buffer may be reused or freed once
 * this returns. NULL code: "error". A status outside 400..599 becomes 500.
 * The detail is printed from fmt (at most 1023 bytes; NULL fmt: empty).
 * Without memory for the copy, the answer is crest's own 503
 * "out_of_memory". Earlier field errors of the response are dropped. */
int crest_res_error(crest_res *res, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Answers with a body that is not JSON (a page, a stylesheet): data is
 * copied; content_type must be static or live as long as the request. */
int crest_res_send(crest_res *res, const char *content_type, const void *data, size_t len);
/* Adds a per-field message to the error's "errors" object (call after
 * crest_res_error). */
int crest_res_error_field(crest_res *res, const char *field, const char *msg);
/* The code of the problem answer res holds ("conflict",
 * "constraint_violated", "statement_timeout", ...), or NULL when it holds
 * none. Borrowed from the request. A crest_query callback given rows NULL
 * reads it to decide whether to keep crest's answer or replace it. */
const char *crest_res_error_code(const crest_res *res);

/* Method names as in HTTP, "GET" etc.; NULL for an unknown value. */
const char *crest_method_name(crest_method m);

#ifdef __cplusplus
}
#endif
#endif
