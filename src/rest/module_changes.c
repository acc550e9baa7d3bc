/* module_changes.c — GET <collection>/changes: a module's change feed as
 * Server-Sent Events. The route checks what index checks (permission,
 * pipeline, scope, ownership, ?where=, fields=), finds where the feed
 * starts (Last-Event-ID, or the log's end), and answers with a stream
 * (src/http/stream.c). From then on the subscriber lives in its worker's
 * hub (changes_hub.c), which wakes it when the log may have grown: it reads
 * the changes after the last one it read as rows of the model
 * (crest__compile_changes_read: scope and where compiled as for any read),
 * and writes one event per change the user may see, through the module's
 * serializer (field access, computed fields):
 *
 *   id: <change id>
 *   event: created | updated | deleted
 *   data: <the row as GET /<id> serves it; before the delete for deleted>
 *
 * Subscribers of one worker with the same key (the module, the request's
 * target and its headers but Last-Event-ID: so the same rows visible, the
 * same fields written) share reads: a read made for one of them during a
 * wake-up is kept by the hub, and another at the same place in the log
 * during the same wake-up writes its events without reading again.
 *
 * A subscriber whose client reads too slowly is dropped (the stream's
 * bound), never kept growing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "module_internal.h"

#define READ_BATCH 256     /* changes read by one statement */
#define READ_ROUNDS 16     /* statements in a row; more go on at the loop's next turn */

#define DEF_HEARTBEAT_MS 15000
#define DEF_SUBSCRIBERS 1000
#define DEF_BUFFER (256 * 1024)

typedef struct sub {
    crest__stream stream;         /* res->stream */
    crest__changes_sub hs;        /* in the worker's hub */
    crest_rest_ctx ctx;
    crest__module *mod;
    crest__qnode *where;          /* scope and ?where= (NULL: every row) */
    int64_t after;                /* the last change read */
    const char *key;              /* what decides its events but after (request arena); one key, one read */
    size_t keylen;
    uint64_t gen;                 /* the hub's wake-up it reads for */
    int64_t last_event;           /* Last-Event-ID, or -1 */
    unsigned rounds;              /* reads in a row on this turn of the loop */
    crest__arena *req_arena;      /* the request's arena, while a read uses its own */
    crest__arena a;               /* one read's memory */
    bool polling, again, drop;
    bool gone;                    /* the stream ended while a read ran: release the request after it */
    bool cancelling;              /* in sub_closed's cancel: a completion run by it releases nothing */
} sub;

static unsigned heartbeat_ms(const crest__module *mod)
{
    return mod->def->changes_heartbeat_ms ? mod->def->changes_heartbeat_ms : DEF_HEARTBEAT_MS;
}

/* ---- reading the log ---- */

static void poll_step(sub *s);

/* One read is over: its memory goes, then the next, or the drop. */
static void step_done(sub *s, bool more)
{
    crest_req *req = s->ctx.req;
    crest__req_end_sess(req);
    req->arena = s->req_arena;
    s->ctx.res->arena = s->req_arena;
    s->ctx.res->is_error = false; /* (a failure of a read is logged; the stream's answer is out) */
    crest__arena_dispose(&s->a);
    if (s->gone) { /* the client left meanwhile: the request (and s) go now */
        if (s->cancelling) { /* (the cancel ran the completion at once: the stream holds nothing yet) */
            s->polling = false;
            return;
        }
        crest__stream_release(&s->stream);
        return;
    }
    if (s->drop) {
        s->polling = false;
        crest__stream_drop(&s->stream); /* frees s with the request */
        return;
    }
    if ((more || s->again) && ++s->rounds < READ_ROUNDS) {
        if (s->again) /* a wake-up came meanwhile: read for it */
            s->gen = crest__changes_hub_gen(req->worker);
        s->again = false;
        poll_step(s);
        return;
    }
    /* (a store that completes in place, SQLite, would otherwise read a
     * long log, most of it hidden by where or scope, in one call stack) */
    if (more || s->again)
        crest__changes_hub_later(req->worker, &s->hs);
    s->again = false;
    s->rounds = 0;
    s->polling = false;
}

/* The changes read: an event for each the user may see. */
static void read_done(void *p, crest__rows *r, const crest__dberr *err)
{
    sub *s = p;
    crest__module *mod = s->mod;
    if (!r) {
        char ts[40];
        crest__format_time(ts, sizeof ts);
        fprintf(stderr, "{\"time\":\"%s\",\"event\":\"changes_read_failed\",\"request_id\":\"%s\",\"message\":\"%s\"}\n",
                ts, s->ctx.req->id, err && err->message ? "database error" : "unknown error");
        step_done(s, false);
        return;
    }
    if (s->gone) {
        step_done(s, false);
        return;
    }
    int64_t from = s->after;
    unsigned base = mod->m->nfields + mod->ncomp;
    crest__buf out;
    crest__buf_init(&out, 0);
    uint64_t events = 0;
    int oom = 0;
    crest_json w;
    crest_json_init(&w, 0);
    for (size_t i = 0; i < r->nrows && r->ncols >= base + 3; i++) {
        const crest__cell *cid = crest__rows_cell(r, i, base), *cop = crest__rows_cell(r, i, base + 1),
                          *vis = crest__rows_cell(r, i, base + 2);
        s->after = cid->v.i;
        bool visible = (vis->k == CREST__V_INT || vis->k == CREST__V_BOOL) && vis->v.i;
        const char *op = crest__vkind_is_text((crest__vkind)cop->k) ? cop->v.s : "";
        if (!visible || (strcmp(op, "created") && strcmp(op, "updated") && strcmp(op, "deleted")))
            continue;
        crest_json_reset(&w);
        if (crest__rest_write_item(&s->ctx, mod, r, i, &w, NULL) || crest_json_error(&w))
            continue; /* (a cell of the wrong type: logged by the serializer's caller as for a read) */
        size_t n;
        const char *data = crest_json_data(&w, &n);
        oom |= crest__buf_appendf(&out, "id: %lld\nevent: %s\ndata: ", (long long)cid->v.i, op);
        oom |= crest__buf_append(&out, data, n); /* (JSON text holds no raw newline) */
        oom |= crest__buf_append(&out, "\n\n", 2);
        events++;
    }
    crest_json_dispose(&w);
    if (oom) { /* what was read is not all written: nothing is, and the subscriber goes */
        crest__buf_dispose(&out);
        s->after = from;
        s->drop = true;
        step_done(s, false);
        return;
    }
    crest__changes_cached kept = {.from = from, .to = s->after, .gen = s->gen, .bytes = out.ptr, .len = out.len,
                                  .events = events, .more = r->nrows == READ_BATCH};
    crest__changes_cache_put(s->ctx.req->worker, s->key, s->keylen, &kept);
    if (out.len && crest__stream_write(&s->stream, out.ptr, out.len))
        s->drop = true; /* the client reads too slowly */
    else
        crest__changes_count_events(mod->app, events);
    crest__buf_dispose(&out);
    step_done(s, r->nrows == READ_BATCH && !s->drop);
}

/* Reads the next changes, in the subscriber's own memory: or writes what
 * a subscriber of the same key read from here during this wake-up. */
static void poll_step(sub *s)
{
    crest_req *req = s->ctx.req;
    const crest__changes_cached *c;
    while ((c = crest__changes_cache_find(req->worker, s->key, s->keylen, s->after, s->gen))) {
        if (c->len && crest__stream_write(&s->stream, c->bytes, c->len)) {
            s->polling = false;
            crest__stream_drop(&s->stream); /* the client reads too slowly; frees s with the request */
            return;
        }
        crest__changes_count_events(req->app, c->events);
        s->after = c->to;
        if (!c->more) {
            s->polling = false;
            return;
        }
    }
    crest__arena_init(&s->a, 16384, 0);
    s->req_arena = req->arena;
    req->arena = &s->a;
    s->ctx.res->arena = &s->a;
    crest__sql q;
    crest__sql_init(&q, &s->a, crest__app_dialect(req->app));
    crest__changes_plan p = {.proj = crest__rest_proj(s->mod), .where = s->where, .after = s->after,
                             .limit = READ_BATCH};
    crest__compile_changes_read(&q, &p);
    crest__query qq = {.sql = q.text.ptr, .len = q.text.len, .binds = q.binds, .lists = q.lists,
                       .nbinds = q.nbinds,
                       .flags = CREST__QF_READ | CREST__QF_NONAMES | CREST__QF_INPLACE | CREST__QF_LAST};
    int rc = q.err ? -1 : crest__req_query(req, s->ctx.res, &qq, read_done, s);
    crest__sql_dispose(&q);
    if (rc < 0)
        step_done(s, false);
}

/* The hub's wake-up: the log may have grown. */
static void sub_wake(crest__changes_sub *hs)
{
    sub *s = (sub *)(void *)((char *)hs - offsetof(sub, hs));
    if (s->polling) {
        s->again = true;
        return;
    }
    s->polling = true;
    s->gen = crest__changes_hub_gen(s->ctx.req->worker);
    poll_step(s);
}

/* ---- the stream ---- */

static void sub_opened(crest__stream *st)
{
    sub *s = st->ud;
    crest__changes_hub_add(s->ctx.req->worker, &s->hs);
    /* What came since Last-Event-ID, or since the log's end was read: a
     * commit before the subscriber joined woke only the others. */
    sub_wake(&s->hs);
}

static bool sub_closed(crest__stream *st, crest__stream_end why)
{
    sub *s = st->ud;
    crest__changes_hub_remove(s->ctx.req->worker, &s->hs, why == CREST__STREAM_DROPPED);
    if (!s->polling)
        return false;
    /* A read runs (a network store's, on the loop): it stops as soon as
     * it can, and the request goes once its completion has run. A read
     * still waiting for a connection completes within the cancel: then the
     * request goes now (it was held, and never released, before). */
    s->gone = true;
    s->cancelling = true;
    crest__req_cancel(s->ctx.req);
    s->cancelling = false;
    return s->polling;
}

/* ---- the route ---- */

/* The subscriber's key: the module, the request's target, its headers but
 * Last-Event-ID (the user, ?where=, fields=: everything its events depend
 * on but where it is in the log). -1 out of memory. */
static int sub_key(crest_req *req, const crest__module *mod, sub *s)
{
    crest__buf b;
    crest__buf_init(&b, 0);
    int rc = crest__buf_appendf(&b, "%p %s\n", (const void *)mod, req->url);
    for (unsigned i = 0; i < req->nheaders; i++) {
        const crest__header *h = &req->headers[i];
        if (h->name_len == 13 && !strncasecmp(h->name, "last-event-id", 13))
            continue;
        rc |= crest__buf_append(&b, h->name, h->name_len);
        rc |= crest__buf_append(&b, ":", 1);
        rc |= crest__buf_append(&b, h->value, h->value_len);
        rc |= crest__buf_append(&b, "\n", 1);
    }
    char *key = rc ? NULL : crest__arena_alloc(req->arena, b.len ? b.len : 1);
    if (key) {
        memcpy(key, b.ptr, b.len);
        s->key = key;
        s->keylen = b.len;
    }
    crest__buf_dispose(&b);
    return key ? 0 : -1;
}

/* The log's ends are here: where the feed starts, then the stream. */
static void ends_read(void *p, crest__rows *r)
{
    sub *s = p;
    crest_res *res = s->ctx.res;
    const crest__cell *hi = r->nrows && r->ncols >= 2 ? crest__rows_cell(r, 0, 0) : NULL;
    const crest__cell *lo = r->nrows && r->ncols >= 2 ? crest__rows_cell(r, 0, 1) : NULL;
    int64_t last = hi && hi->k == CREST__V_INT ? hi->v.i : 0;
    int64_t first = lo && lo->k == CREST__V_INT ? lo->v.i : 0;
    if (s->last_event >= 0) {
        /* Ids only grow, and the purge keeps the newest change it could
         * delete as the log's first: every change after an id from
         * first - 1 on is still there; before it, some may be gone. */
        if (s->last_event > last || (s->last_event < first - 1 && first > 0)) {
            crest__res_finish(res, crest__res_fail(res, CREST__E_CHANGES_EXPIRED,
                                                   "Last-Event-ID %lld: the changes after it are no longer kept (or "
                                                   "it is not an id of this feed): read the rows again, then follow "
                                                   "the feed without Last-Event-ID",
                                                   (long long)s->last_event));
            return;
        }
        s->after = s->last_event;
    } else {
        s->after = last;
    }
    res->stream = &s->stream;
    crest__res_finish(res, 0);
}

int crest__rest_op_changes(crest_req *req, crest_res *res, void *ud)
{
    crest__module *mod;
    crest_rest_ctx ctx;
    crest__qnode *scope, *where;
    if (crest__rest_prologue(req, res, ud, &ctx, &mod, &scope, NULL) || crest__rest_where_param(req, res, mod, &where))
        return -1;
    const char *lei = crest_req_header(req, "last-event-id");
    if (!lei || !*lei)
        lei = crest_req_str(req, "last_event_id");
    int64_t last_event = -1;
    if (lei && *lei && (crest__parse_int(lei, strlen(lei), &last_event) || last_event < 0))
        return crest__rest_bad_param(res, "Last-Event-ID",
                                     "Last-Event-ID: expected the id of an event of this feed (an integer)");
    unsigned max = mod->def->changes_subscribers ? mod->def->changes_subscribers : DEF_SUBSCRIBERS;
    int n = crest__changes_hub_count(req->worker);
    if (n < 0 || (unsigned)n >= max) {
        res->retry_after = "5";
        return crest__res_fail(res, CREST__E_TOO_MANY_SUBSCRIBERS,
                               n < 0 ? "this server has no event loop for change feeds" : NULL);
    }
    sub *s = crest__arena_calloc(req->arena, 1, sizeof *s);
    if (!s)
        return crest__res_fail(res, CREST__E_OUT_OF_MEMORY, NULL);
    s->ctx = ctx;
    s->mod = mod;
    s->where = crest__qnode_and(req->arena, where, scope);
    s->last_event = last_event;
    if (sub_key(req, mod, s))
        return crest__res_fail(res, CREST__E_OUT_OF_MEMORY, NULL);
    s->hs.wake = sub_wake;
    s->stream = (crest__stream){.content_type = "text/event-stream",
                                .heartbeat = ": keep-alive\n\n",
                                .heartbeat_ms = heartbeat_ms(mod),
                                .max_unsent = mod->def->changes_buffer ? mod->def->changes_buffer : DEF_BUFFER,
                                .opened = sub_opened,
                                .closed = sub_closed,
                                .ud = s};
    crest__sql q;
    crest__sql_init(&q, req->arena, crest__app_dialect(req->app));
    crest__compile_changes_ends(&q);
    int rc = crest__rest_query_then(req, res, &q, CREST__QF_READ | CREST__QF_LAST, 1, ends_read, s);
    crest__sql_dispose(&q);
    return rc;
}
