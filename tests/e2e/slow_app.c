/* slow_app.c — a C app on the public API whose handlers take their time, for
 * the handler deadline tests (test_http.py, "handler budget"):
 *
 *   GET /sleep?ms=N[&pad_kib=K]
 *                         blocking, timeout_ms 1000: sleeps, then answers
 *                         {"slept": N, "pad": "<K KiB of x, default 64>"}
 *                         (memory from the request arena and the JSON writer,
 *                         so a late answer that is not freed shows in the
 *                         process' memory, and one freed too early under ASan)
 *   GET /sleep-loop?ms=N  the same on the event loop (not blocking)
 *   GET /quick            {"ok": true}, on the loop
 *
 * With SLOW_APP_FILE=PATH in the environment it also loads that app file
 * (models, modules, SQL endpoints) next to these handlers; with
 * SLOW_APP_SLOW_CREATES=MODEL too, a REST module `slow` at /slow over that
 * model (a string field `title`), with idempotency on, whose creates of a
 * row titled "slow" sleep 2 s in before_create (test_idempotency.py's
 * concurrent duplicate), on the thread pool inside the write unit. With
 * SLOW_APP_RATE_LIMIT=LIMIT it sets that rate limit after the file, and
 * adds no handlers: a C program that changes a setting of its app file.
 *
 * Usage: slow_app [--listen HOST:PORT] [--workers N]; every sleep is capped at 10 s. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crest/crest.h"
#include "crest/rest.h"

static int sleep_and_answer(crest_req *req, crest_res *res, void *ud)
{
    (void)ud;
    int64_t ms = crest_req_int(req, "ms");
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts))
        ;
    size_t n = (size_t)(crest_req_has(req, "pad_kib") ? crest_req_int(req, "pad_kib") : 64) * 1024;
    char *pad = crest_req_alloc(req, n + 1);
    if (!pad)
        return crest_res_error(res, 503, "out_of_memory", "no memory");
    memset(pad, 'x', n);
    pad[n] = 0;
    crest_json *w = crest_res_json(res);
    crest_json_object_begin(w);
    crest_json_key(w, "slept");
    crest_json_int(w, ms);
    crest_json_key(w, "pad");
    crest_json_str(w, pad);
    crest_json_object_end(w);
    return 0;
}

static int quick(crest_req *req, crest_res *res, void *ud)
{
    (void)req;
    (void)ud;
    crest_json *w = crest_res_json(res);
    crest_json_object_begin(w);
    crest_json_key(w, "ok");
    crest_json_bool(w, true);
    crest_json_object_end(w);
    return 0;
}

static const crest_param ms_param[] = {
    {"ms", CREST_IN_QUERY, CREST_T_INT, .required = true, .has_min = true, .min = 0, .has_max = true, .max = 10000},
    {"pad_kib", CREST_IN_QUERY, CREST_T_INT, .has_min = true, .min = 0, .has_max = true, .max = 8192},
    {0}};

static const crest_endpoint endpoints[] = {
    {.method = CREST_GET, .path = "/sleep", .params = ms_param, .summary = "Sleep on the thread pool",
     .handler = sleep_and_answer, .blocking = true, .timeout_ms = 1000},
    {.method = CREST_GET, .path = "/sleep-loop", .params = ms_param, .summary = "Sleep on the event loop",
     .handler = sleep_and_answer, .timeout_ms = 1000},
    {.method = CREST_GET, .path = "/quick", .summary = "Answer at once", .handler = quick},
};

/* before_create of /slow: a row titled "slow" takes its time. */
static int slow_create(const crest_rest_ctx *ctx, json_t *obj)
{
    (void)ctx;
    const char *t = json_string_value(json_object_get(obj, "title"));
    if (t && !strcmp(t, "slow")) {
        struct timespec ts = {.tv_sec = 2};
        while (nanosleep(&ts, &ts))
            ;
    }
    return 0;
}

int main(int argc, char **argv)
{
    crest_app *app = crest_app_new();
    if (!app)
        return 1;
    crest_error err = {0};
    const char *file = getenv("SLOW_APP_FILE");
    if (file && crest_app_load_file(app, file, &err)) {
        crest_error_print(&err, "slow_app");
        return 1;
    }
    const char *slow_model = getenv("SLOW_APP_SLOW_CREATES");
    const crest_module_def slow = {.name = "slow", .model = slow_model, .idempotency = true,
                                   .before_create = slow_create};
    if (slow_model && crest_app_add_module(app, &slow, &err)) {
        crest_error_print(&err, "slow_app");
        return 1;
    }
    const char *rate = getenv("SLOW_APP_RATE_LIMIT");
    if (rate && crest_app_set_rate_limit(app, rate)) {
        fprintf(stderr, "slow_app: bad SLOW_APP_RATE_LIMIT\n");
        return 1;
    }
    if (!rate && crest_app_add_endpoints(app, endpoints, sizeof endpoints / sizeof endpoints[0], NULL, &err)) {
        crest_error_print(&err, "slow_app");
        return 1;
    }
    int rc = crest_app_main(app, argc, argv);
    crest_app_free(app);
    return rc;
}
