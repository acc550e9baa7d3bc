/* loopback.c — one connection without a socket: bytes in, response bytes
 * out, through the same parser callbacks, limits, router, spec checks and
 * handlers as a real connection (loopback.h). Blocking handlers run inline,
 * so there is no handler deadline here. */
#include <stdlib.h>

#include "engine.h"
#include "loopback.h"

struct crest__loopback {
    server srv;
    worker w;
    conn *c;
    crest__buf capture;
};

/* A new connection of lb's worker, writing into lb's capture. */
static int open_conn(crest__loopback *lb)
{
    if (!(lb->c = crest__conn_new(&lb->w)))
        return CREST_ENOMEM;
    uv_timer_init(&lb->w.loop, &lb->c->timer);
    lb->c->capture = &lb->capture;
    return 0;
}

crest__loopback *crest__loopback_new(crest_app *app, crest_error *err)
{
    crest__parser_settings_init();
    if (crest__app_add_builtins(app, err) || crest__app_prepare(app, false, err))
        return NULL;
    crest__loopback *lb = calloc(1, sizeof *lb);
    if (!lb)
        return NULL;
    lb->srv.app = app;
    lb->srv.nworkers = 1;
    lb->srv.id_prefix = 0x10000000u;
    worker *w = &lb->w;
    w->srv = &lb->srv;
    w->cw.app = app;
    w->cw.engine = w;
    crest__worker_set_hooks(w, false); /* no thread pool: statements run in place */
    crest__buf_init(&w->log, 0);
    crest__buf_init(&lb->capture, 0);
    if (uv_loop_init(&w->loop)) {
        free(lb);
        return NULL;
    }
    crest__worker_init_timers(w);
    if (crest__app_worker_init(app, &w->cw, err) || open_conn(lb)) {
        crest__app_worker_dispose(&w->cw);
        uv_close((uv_handle_t *)&w->drain_timer, NULL);
        uv_close((uv_handle_t *)&w->trim_timer, NULL);
        uv_run(&w->loop, UV_RUN_DEFAULT);
        uv_loop_close(&w->loop);
        free(lb);
        return NULL;
    }
    return lb;
}

int crest__loopback_feed(crest__loopback *lb, const char *data, size_t len)
{
    conn *c = lb->c;
    if (c->lb_closed)
        return -1;
    if (crest__buf_append(&c->in, data, len))
        return CREST_ENOMEM;
    crest__conn_process(c);
    lb->w.log.len = 0; /* the access log of a loopback goes nowhere */
    return 0;
}

int crest__loopback_reconnect(crest__loopback *lb)
{
    worker *w = &lb->w;
    crest__conn_free_handles(lb->c, 1);
    uv_run(&w->loop, UV_RUN_NOWAIT); /* (its close callback frees it) */
    lb->capture.len = 0;
    return open_conn(lb);
}

const char *crest__loopback_output(crest__loopback *lb, size_t *len)
{
    *len = lb->capture.len;
    return lb->capture.ptr ? lb->capture.ptr : "";
}

void crest__loopback_clear_output(crest__loopback *lb) { lb->capture.len = 0; }
bool crest__loopback_closed(const crest__loopback *lb) { return lb->c->lb_closed; }

size_t crest__loopback_held(const crest__loopback *lb)
{
    const conn *c = lb->c;
    size_t n = c->in.cap + c->out.b.cap + c->inflight.b.cap + c->wire.b.cap;
    if (c->rs)
        n += sizeof *c->rs + c->rs->head.cap + c->rs->body.cap + c->rs->json.cap + c->rs->res_headers.cap +
             c->rs->arena.total;
    return n;
}

void crest__loopback_free(crest__loopback *lb)
{
    if (!lb)
        return;
    worker *w = &lb->w;
    if (lb->c)
        crest__conn_free_handles(lb->c, 1);
    uv_close((uv_handle_t *)&w->drain_timer, NULL);
    uv_close((uv_handle_t *)&w->trim_timer, NULL);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    uv_loop_close(&w->loop);
    crest__reqstate_pool_free(w);
    crest__app_worker_dispose(&w->cw);
    crest__buf_dispose(&w->log);
    crest__buf_dispose(&lb->capture);
    free(lb);
}
