/* app_internal.h — what src/app/ (the wiring of the stages) and the HTTP
 * engine share: dispatch, rendering, workers, metrics, start-up. The
 * objects themselves (app, endpoint, request, response) live in
 * src/req/req.h. Internal: not installed. */
#ifndef CREST_APP_INTERNAL_H
#define CREST_APP_INTERNAL_H

#include <jansson.h>
#include <pthread.h>

#include "../auth/auth.h"
#include "../openapi/openapi.h"
#include "../req/req.h"
#include "../sqlep/sqlep.h"

/* ---- app.c: dispatch ---- */

/* Routes, checks and runs the request; fills res. Returns 0 when the answer
 * is ready, 1 when the handler must run on the thread pool (the engine then
 * calls crest__app_run_blocking there and crest__app_finish after). */
int crest__app_handle(crest_req *req, crest_res *res);
void crest__app_run_blocking(crest_req *req, crest_res *res);
/* Writes the response (status line, headers, body) into out. A shared body
 * (crest__res_send_shared) is not copied: *shared gets it, to be sent right
 * after out's bytes (len 0: none). */
int crest__app_render(crest_req *req, crest_res *res, crest__buf *out, const char *date, bool keep_alive,
                      size_t *body_bytes, crest__str *shared);
/* For an answer made while a blocking handler still runs on src: copies
 * into dst (a fresh request) what src had before its handler started —
 * fields the handler never writes; pointers stay into src's memory, which
 * lives until the handler returns. */
void crest__req_take_over(crest_req *dst, const crest_req *src);
/* The 504 of a blocking handler past its budget (then the endpoint's error hook). */
void crest__app_timeout(crest_req *req, crest_res *res);
/* The effective status of a finished response. */
int crest__res_final_status(const crest_req *req, const crest_res *res);
/* Splits a query string (without '?') into req->query (decoded, arena).
 * Repeated keys are kept in order. CREST_EINVAL for a bad %XX or a NUL. */
int crest__query_parse(crest_req *req, const char *q, size_t len);
/* Prepares req/res for a new request on a connection; the statements the
 * last one ran count into its worker's metrics (on the worker's thread: the
 * engine resets a request there once nothing else uses it). */
void crest__req_reset(crest_req *req, crest_res *res);

int crest__app_worker_init(crest_app *app, crest__worker *w, crest_error *err);
void crest__app_worker_dispose(crest__worker *w);
/* A reload switched the worker to next (on its loop): what it keeps per
 * app (verified tokens) starts again; its store connections stay. */
void crest__app_worker_switch(crest__worker *w, crest_app *next);

/* ---- metrics.c ---- */

/* The worker's counters, linked into app->metrics (made at the first call);
 * nothing when metrics are off. 0 or CREST_ENOMEM. */
int crest__metrics_worker_init(crest_app *app, crest__worker *w);
/* Unlinks and frees the worker's counters. */
void crest__metrics_worker_dispose(crest__worker *w);
/* Drops an app's reference to the counters; the last frees them (every
 * worker disposed). */
void crest__metrics_free(crest__metrics *m);
/* A reload: `to` counts into from's counters (shared, refcounted), its
 * routes registered as series (a route both apps have keeps its counters).
 * On the main thread, before any worker serves `to`. 0, CREST_ENOMEM, or
 * CREST_ECONFIG past 65,536 series. */
int crest__metrics_share(crest_app *from, crest_app *to);
/* Counts one answered request of the worker (its route, status, duration). */
void crest__metrics_observe(crest__worker *w, const crest_req *req, int status, uint64_t dur_us);
/* Counts n statements a request of the worker ran on the database (on the
 * worker's thread). */
void crest__metrics_statements(crest__worker *w, uint64_t n);
/* Counts one answer of the worker sent gzipped: identity bytes became gz. */
void crest__metrics_gzip(crest__worker *w, size_t identity, size_t gz);
/* The /metrics builtin's spec (static; app->metrics_spec copies it). */
const crest_endpoint *crest__metrics_endpoint(void);
/* Opens the database once at start: WAL mode, startup SQL, endpoint SQL checked. */
int crest__app_prepare(crest_app *app, bool dry_run, crest_error *err);
/* A reload's start-up work on app->store (borrowed from the app serving):
 * tables made or altered and the SQL endpoints checked, in one transaction
 * that a failure rolls back; no startup_sql. */
int crest__app_prepare_reload(crest_app *app, crest_error *err);
/* Registers /healthz (unless the app has it), /openapi.json and /docs, then
 * makes the OpenAPI document. */
int crest__app_add_builtins(crest_app *app, crest_error *err);
/* Just the routes of crest__app_add_builtins (idempotent). */
int crest__app_add_builtin_routes(crest_app *app, crest_error *err);

/* ---- compress.c: gzip of answers ---- */

#define CREST__GZ_LEVEL 1    /* the default level: see bench/gzip.sh */
#define CREST__GZ_MIN 1024   /* the default min_bytes */

/* Whether the answer could go gzipped, whatever its size and the request:
 * compression on, a text content type (not text/event-stream), no
 * Content-Encoding set by the handler. Such answers carry
 * Vary: Accept-Encoding. */
bool crest__gz_candidate(const crest_req *req, const crest_res *res, const char *ctype);
/* Whether the request's Accept-Encoding lines allow gzip: gzip or x-gzip
 * with q > 0, or failing those, * with q > 0 (case, spaces and parameters
 * as RFC 9110 12.5.3 writes them). No header: false. */
bool crest__accept_gzip(const crest_req *req);
/* The same for one header value (NULL: no header). */
bool crest__accept_gzip_value(const char *value);
/* Gzips the pieces (in order, as one body) into the worker's buffer: *out
 * borrows it until crest__gz_done. 0, or nonzero when the identity body
 * must go instead (no memory, or the gzip copy is no smaller). */
int crest__gz_body(crest__worker *w, const crest__str *pieces, unsigned n, crest__str *out);
/* The gzip copy of a shared body, kept in slot (made now if it is not
 * there): *out lives as long as the slot. 0, or nonzero as above. */
int crest__gz_shared(crest__worker *w, crest__gzslot *slot, const char *p, size_t n, crest__str *out);
/* The answer is rendered: a large output buffer is given back. */
void crest__gz_done(crest__worker *w);
/* Appends the response's extra header lines h to out with Accept-Encoding
 * merged into their Vary line (or a Vary line added) and, when gzipped,
 * -gzip appended inside the ETag's quotes. 0 or CREST_ENOMEM. */
int crest__gz_headers(crest__buf *out, const crest__buf *h, bool gzipped);
/* Frees the worker's deflate state. */
void crest__gz_worker_free(crest__worker *w);

/* ---- reload.c: hot reload ---- */

/* A reload of the app `cur` (serving; `base` is the app first served,
 * which outlives every reload), on the main thread while workers serve
 * cur: 0 and *out, the new app ready to serve (its tables made or altered,
 * its SQL checked, its builtins and OpenAPI document made), with the
 * store, the metrics and the settings that need a restart taken from
 * base; CREST__RELOAD_IGNORED when there is nothing to re-read; or an
 * error code, nothing changed. In every case *line is the log line to
 * print (malloc'd JSON; NULL when out of memory): the routes and what
 * changed, or the error as `crest check` prints it, or why it was ignored. */
#define CREST__RELOAD_IGNORED 1
int crest__app_reload(crest_app *base, crest_app *cur, crest_app **out, char **line);
/* The pid file of the app, when it has one: written once serving (0, or an
 * error code with err set), and removed at the end. */
int crest__pid_file_write(const crest_app *app, crest_error *err);
void crest__pid_file_remove(const crest_app *app);

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
