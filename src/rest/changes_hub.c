/* changes_hub.c — each worker's subscribers of change feeds, and what wakes
 * them. A worker that serves a feed has a hub on its loop: its
 * subscribers (module_changes.c), woken
 *   - at once when a write of this process commits (a REST route, an SQL
 *     endpoint: crest__changes_notify, from any thread, a uv_async per
 *     worker);
 *   - on a store that listens (PostgreSQL), at once when any connection
 *     commits a change, this process's or another's: the log's trigger
 *     notifies `crest_changes` at commit, and the worker's LISTEN
 *     connection (the store's listen, asked for at the worker's first
 *     subscriber and kept) wakes the hub; once it is listening again after
 *     a loss, the hub wakes its subscribers to catch up from the log;
 *   - by a look at the log's last id while it has subscribers, which sees
 *     every other writer: one cheap statement per worker, not one per
 *     subscriber, and only a log that grew wakes them. Every POLL_MS on
 *     SQLite (SQL endpoints, other programs), where the database's version
 *     is watched first (the store's data_version: PRAGMA data_version, no
 *     read of any table) and the log is looked at only once it changed;
 *     on PostgreSQL every POLL_MS while its LISTEN connection is down,
 *     every POLL_LISTENING_MS while it listens (a safety net only: a
 *     notification is not lost on a connection that stays up).
 * The first worker's hub also purges the changes past the retention, in
 * bounded steps on the thread pool (a write, through the store's writer).
 * Every worker of an app served with a database has a hub (idle: an unref'd
 * async handle and two timers), so a reload can turn a feed on; the hubs
 * and their counters belong to the app first served, and every app a
 * reload makes shares them (crest__changes_adopt). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "module_internal.h"

#define POLL_MS 200             /* a look at the log's end, while there are subscribers */
#define POLL_LISTENING_MS 5000  /* the same while the store listens */
#define CHANNEL "crest_changes" /* what the log's trigger notifies (src/query/changes.c) */
#define PURGE_BATCH 1000        /* changes one purge statement deletes at most */
#define DEF_RETENTION_S 86400
#define CACHE_N 8               /* reads kept per worker for subscribers of the same key */
#define CACHE_MAX_BYTES (1024 * 1024) /* a read's events past this are not kept */

typedef struct hub hub;

/* A read kept for the other subscribers of its key (its key and bytes owned). */
typedef struct cached {
    char *key;
    size_t keylen;
    crest__changes_cached c;
} cached;

/* The app's hubs (app->changes), made with the first. */
struct crest__changes {
    pthread_mutex_t lock;
    hub *hubs;
    atomic_uint retention_s;    /* the longest of the served app's modules' (0: no feed, no purge) */
    atomic_uint_fast64_t subscribers, dropped, events;
    atomic_uint_fast64_t wakeups[CREST__CHANGES_WAKE_N]; /* hubs woken, by source */
    atomic_uint_fast64_t listening;                      /* workers whose LISTEN is up */
};

struct hub {
    hub *next;
    crest__worker *w;
    struct crest__changes *all;
    uv_async_t wake;
    uv_timer_t poll;
    uv_timer_t purge;           /* the first worker's */
    uv_timer_t later;           /* subscribers that read their share of a turn of the loop go on */
    crest__changes_sub *subs;
    unsigned n;
    int64_t seen;               /* the log's last id at the last look */
    int64_t version;            /* the database's version at the last look (-1: none yet) */
    bool listen_asked;          /* the store's listen was asked for (at the first subscriber) */
    bool listen_up;             /* it listens: the look at the log's end slows down */
    uint64_t gen;               /* wake-ups so far */
    cached cache[CACHE_N];      /* reads kept, the oldest replaced first */
    unsigned cache_next;
    /* a look in flight */
    bool looking, look_returned, look_done;
    crest__arena look_arena;
    crest__sess *look_sess;
    int64_t look_last;
    bool purging;
};

static hub *hub_of(crest__worker *w) { return w ? (hub *)w->aw.changes : NULL; }

/* ---- waking the subscribers ---- */

static void wake_all(hub *h)
{
    for (crest__changes_sub *s = h->subs, *next; s; s = next) {
        next = s->next; /* (a subscriber may leave while it is woken: only itself) */
        s->wake(s);
    }
}

/* Wakes the subscribers, counted by source (CREST__CHANGES_WAKE_*). */
static void wake_from(hub *h, int source)
{
    if (!h->n)
        return;
    h->gen++;
    atomic_fetch_add_explicit(&h->all->wakeups[source], 1, memory_order_relaxed);
    wake_all(h);
}

static void wake_cb(uv_async_t *a) { wake_from(a->data, CREST__CHANGES_WAKE_COMMIT); }

static void poll_cb(uv_timer_t *t);

static unsigned poll_ms(const hub *h) { return h->listen_up ? POLL_LISTENING_MS : POLL_MS; }

/* The store's listen: a notification wakes the subscribers; being up (again)
 * too, as what came while it was down was not heard; down, the look at the
 * log's end is back to POLL_MS. */
static void listen_cb(void *ud, int what)
{
    hub *h = ud;
    bool was_up = h->listen_up;
    h->listen_up = what != CREST__LISTEN_DOWN;
    if (h->listen_up != was_up) {
        atomic_fetch_add_explicit(&h->all->listening, h->listen_up ? 1 : (uint_fast64_t)-1, memory_order_relaxed);
        if (h->n)
            uv_timer_start(&h->poll, poll_cb, poll_ms(h), poll_ms(h));
    }
    if (what == CREST__LISTEN_EVENT)
        wake_from(h, CREST__CHANGES_WAKE_NOTIFY);
    else if (what == CREST__LISTEN_UP)
        wake_from(h, CREST__CHANGES_WAKE_LISTEN);
}

static void look_finish(hub *h)
{
    const crest__store_vt *vt = h->w->app->store->vt;
    bool timed_out;
    vt->sess_end(h->look_sess, &timed_out);
    crest__arena_dispose(&h->look_arena);
    h->looking = false;
    if (h->look_last > h->seen) {
        h->seen = h->look_last;
        wake_from(h, CREST__CHANGES_WAKE_POLL);
    }
}

static void look_done(void *p, crest__rows *r, const crest__dberr *err)
{
    hub *h = p;
    CREST_UNUSED(err);
    const crest__cell *c = r && r->nrows && r->ncols ? crest__rows_cell(r, 0, 0) : NULL;
    h->look_last = c && c->k == CREST__V_INT ? c->v.i : h->seen;
    if (!r)
        h->version = -1; /* the look failed: the next one does not wait for a new version */
    h->look_done = true;
    if (h->look_returned)
        look_finish(h);
}

/* Reads the log's last id on the worker's connection. */
static void poll_cb(uv_timer_t *t)
{
    hub *h = t->data;
    crest_app *app = h->w->app;
    if (h->looking || !h->n)
        return;
    const crest__store_vt *vt = app->store->vt;
    if (vt->data_version) { /* nothing committed since the last look: the log did not grow */
        int64_t v = vt->data_version(h->w->aw.store);
        if (v >= 0 && v == h->version)
            return;
        h->version = v;
    }
    crest__arena_init(&h->look_arena, 2048, 0);
    crest__sess_config cfg = crest__worker_sess_config(h->w, &h->look_arena, app->limits.statement_timeout_ms);
    h->look_sess = vt->sess_new(app->store, &cfg);
    crest__sql q;
    crest__sql_init(&q, &h->look_arena, crest__app_dialect(app));
    crest__compile_changes_ends(&q);
    crest__query qq = {.sql = q.text.ptr, .len = q.text.len, .nbinds = 0,
                       .flags = CREST__QF_READ | CREST__QF_NONAMES | CREST__QF_INPLACE | CREST__QF_LAST,
                       .max_rows = 1};
    h->looking = true;
    h->look_returned = h->look_done = false;
    if (!h->look_sess || q.err || vt->query(h->look_sess, &qq, look_done, h)) {
        if (h->look_sess)
            vt->sess_end(h->look_sess, &(bool){false});
        crest__arena_dispose(&h->look_arena);
        h->looking = false;
        h->version = -1;
    } else {
        h->look_returned = true;
        if (h->look_done)
            look_finish(h);
    }
    crest__sql_dispose(&q);
}

/* ---- the purge ---- */

/* What the purge needs, copied on the loop: the pool thread never reads
 * the worker's app, which a reload switches. The store is the same in
 * every app a reload makes. */
typedef struct purge_job {
    hub *h;
    crest__store *store;
    const crest__dialect *dialect;
    unsigned timeout_ms, retention_s;
    int64_t deleted;
} purge_job;

static void purge_counted(void *p, crest__rows *r, const crest__dberr *err)
{
    CREST_UNUSED(err);
    ((purge_job *)p)->deleted = r ? r->changes : 0;
}

static void purge_work(void *p)
{
    purge_job *job = p;
    const crest__store_vt *vt = job->store->vt;
    crest__arena a;
    crest__arena_init(&a, 2048, 0);
    crest__sess_config cfg = {.arena = &a, .deadline_us = crest__now_us() + (uint64_t)job->timeout_ms * 1000,
                              .blocking = true};
    crest__sess *ss = vt->sess_new(job->store, &cfg);
    crest__dberr e;
    if (ss && !vt->write_begin(ss, &e)) {
        crest__sql q;
        crest__sql_init(&q, &a, job->dialect);
        crest__compile_changes_purge(&q, job->retention_s, PURGE_BATCH);
        crest__query qq = {.sql = q.text.ptr, .len = q.text.len, .binds = q.binds, .nbinds = q.nbinds,
                           .flags = CREST__QF_INPLACE};
        bool ok = !q.err && vt->query(ss, &qq, purge_counted, job) == 0;
        crest__sql_dispose(&q);
        vt->write_end(ss, ok, &e);
    }
    if (ss)
        vt->sess_end(ss, &(bool){false});
    crest__arena_dispose(&a);
}

static void purge_cb(uv_timer_t *t);

static void purge_after(void *p, bool cancelled)
{
    purge_job *job = p;
    hub *h = job->h;
    h->purging = false;
    /* A full step: more to delete, at once. */
    if (!cancelled && job->deleted >= PURGE_BATCH && !uv_is_closing((uv_handle_t *)&h->purge))
        uv_timer_start(&h->purge, purge_cb, 10, 0);
    free(job);
}

static unsigned purge_interval_ms(struct crest__changes *all)
{
    unsigned r = atomic_load(&all->retention_s);
    if (!r) /* no feed (a reload may turn one on) */
        return 60000;
    uint64_t ms = (uint64_t)r * 500;
    return ms < 500 ? 500 : ms > 60000 ? 60000 : (unsigned)ms;
}

static void purge_cb(uv_timer_t *t)
{
    hub *h = t->data;
    unsigned retention_s = atomic_load(&h->all->retention_s);
    if (!h->purging && h->w->offload && retention_s) {
        purge_job *job = calloc(1, sizeof *job);
        if (job) {
            crest_app *app = h->w->app;
            *job = (purge_job){.h = h, .store = app->store, .dialect = crest__app_dialect(app),
                               .timeout_ms = app->limits.statement_timeout_ms, .retention_s = retention_s};
            h->purging = true;
            if (h->w->offload(h->w, purge_work, purge_after, job)) {
                h->purging = false;
                free(job);
            }
        }
    }
    uv_timer_start(&h->purge, purge_cb, purge_interval_ms(h->all), 0);
}

/* ---- the app's side ---- */

/* The longest retention of app's feeds; 0 when it has none. */
static unsigned retention_of(const crest_app *app)
{
    unsigned longest = 0;
    for (unsigned i = 0; i < app->nmodules; i++) {
        const crest_module_def *d = app->modules[i]->def;
        unsigned r = d->changes_retention_s ? d->changes_retention_s : DEF_RETENTION_S;
        if (d->changes && r > longest)
            longest = r;
    }
    return longest;
}

int crest__changes_worker_init(crest_app *app, crest__worker *w)
{
    if (!app->store || !w->loop)
        return 0;
    if (!app->changes) { /* (workers start one after the other, on one thread) */
        struct crest__changes *all = calloc(1, sizeof *all);
        if (!all)
            return CREST_ENOMEM;
        pthread_mutex_init(&all->lock, NULL);
        atomic_init(&all->retention_s, retention_of(app));
        app->changes = all;
    }
    hub *h = calloc(1, sizeof *h);
    if (!h)
        return CREST_ENOMEM;
    h->w = w;
    h->all = app->changes;
    h->version = -1;
    uv_loop_t *loop = w->loop;
    uv_async_init(loop, &h->wake, wake_cb);
    uv_timer_init(loop, &h->poll);
    uv_timer_init(loop, &h->purge);
    uv_timer_init(loop, &h->later);
    h->wake.data = h->poll.data = h->purge.data = h->later.data = h;
    uv_unref((uv_handle_t *)&h->wake);
    uv_unref((uv_handle_t *)&h->poll);
    uv_unref((uv_handle_t *)&h->purge);
    uv_unref((uv_handle_t *)&h->later);
    if (w->id == 0)
        uv_timer_start(&h->purge, purge_cb, purge_interval_ms(h->all), 0);
    pthread_mutex_lock(&h->all->lock);
    h->next = h->all->hubs;
    h->all->hubs = h;
    pthread_mutex_unlock(&h->all->lock);
    w->aw.changes = h;
    return 0;
}

void crest__changes_worker_dispose(crest__worker *w)
{
    hub *h = hub_of(w);
    if (!h)
        return;
    /* (the loop is closed: its handles were closed with it) */
    pthread_mutex_lock(&h->all->lock);
    for (hub **p = &h->all->hubs; *p; p = &(*p)->next)
        if (*p == h) {
            *p = h->next;
            break;
        }
    pthread_mutex_unlock(&h->all->lock);
    /* A look still in flight when the loop stopped (a network store's)
     * never completes: the store drops its calls with its connections,
     * after this, without running them; its session lives in the arena. */
    if (h->looking)
        crest__arena_dispose(&h->look_arena);
    for (unsigned i = 0; i < CACHE_N; i++) {
        free(h->cache[i].key);
        free((char *)h->cache[i].c.bytes);
    }
    free(h);
    w->aw.changes = NULL;
}

void crest__changes_adopt(crest_app *base, crest_app *next)
{
    next->changes = base->changes;
    if (next->changes)
        atomic_store(&next->changes->retention_s, retention_of(next));
}

void crest__changes_app_free(crest_app *app)
{
    if (!app->changes || app->reloaded) /* (a reloaded app's are the first app's) */
        return;
    pthread_mutex_destroy(&app->changes->lock);
    free(app->changes);
    app->changes = NULL;
}

void crest__changes_notify(crest_app *app)
{
    struct crest__changes *all = app->changes;
    /* (most writes: no subscriber anywhere, one load; a hub without
     * subscribers of its own ignores the wake-up on its loop) */
    if (!all || !atomic_load_explicit(&all->subscribers, memory_order_relaxed))
        return;
    pthread_mutex_lock(&all->lock);
    for (hub *h = all->hubs; h; h = h->next)
        uv_async_send(&h->wake);
    pthread_mutex_unlock(&all->lock);
}

void crest__changes_stats_of(const crest_app *app, crest__changes_stats *out)
{
    struct crest__changes *all = app->changes;
    *out = (crest__changes_stats){0};
    if (!all || !atomic_load(&all->retention_s)) /* (hubs, but no feed served) */
        return;
    out->on = true;
    out->subscribers = atomic_load_explicit(&all->subscribers, memory_order_relaxed);
    out->dropped = atomic_load_explicit(&all->dropped, memory_order_relaxed);
    out->events = atomic_load_explicit(&all->events, memory_order_relaxed);
    for (int i = 0; i < CREST__CHANGES_WAKE_N; i++)
        out->wakeups[i] = atomic_load_explicit(&all->wakeups[i], memory_order_relaxed);
    out->listening = atomic_load_explicit(&all->listening, memory_order_relaxed);
    out->listens = app->store && app->store->vt->listen;
}

/* ---- the subscribers' side ---- */

int crest__changes_hub_count(crest__worker *w)
{
    hub *h = hub_of(w);
    return h ? (int)h->n : -1;
}

void crest__changes_hub_add(crest__worker *w, crest__changes_sub *s)
{
    hub *h = hub_of(w);
    s->prev = NULL;
    s->next = h->subs;
    if (h->subs)
        h->subs->prev = s;
    h->subs = s;
    if (h->n++ == 0) {
        uv_ref((uv_handle_t *)&h->wake);
        uv_timer_start(&h->poll, poll_cb, poll_ms(h), poll_ms(h));
        const crest__store_vt *vt = h->w->app->store->vt;
        if (!h->listen_asked && vt->listen) {
            /* Kept once asked for: a worker that had a subscriber likely
             * has more (no connection made and lost per subscriber). When
             * it cannot start, the look at the log's end stays at POLL_MS. */
            h->listen_asked = true;
            vt->listen(h->w->aw.store, CHANNEL, listen_cb, h);
        }
    }
    atomic_fetch_add_explicit(&h->all->subscribers, 1, memory_order_relaxed);
}

void crest__changes_hub_remove(crest__worker *w, crest__changes_sub *s, bool dropped)
{
    hub *h = hub_of(w);
    if (s->prev)
        s->prev->next = s->next;
    else
        h->subs = s->next;
    if (s->next)
        s->next->prev = s->prev;
    s->prev = s->next = NULL;
    if (--h->n == 0) {
        uv_unref((uv_handle_t *)&h->wake);
        uv_timer_stop(&h->poll);
    }
    atomic_fetch_sub_explicit(&h->all->subscribers, 1, memory_order_relaxed);
    if (dropped)
        atomic_fetch_add_explicit(&h->all->dropped, 1, memory_order_relaxed);
}

uint64_t crest__changes_hub_gen(crest__worker *w) { return hub_of(w)->gen; }

static void later_cb(uv_timer_t *t)
{
    hub *h = t->data;
    for (crest__changes_sub *s = h->subs, *next; s; s = next) {
        next = s->next; /* (a subscriber may leave while it is woken: only itself) */
        if (s->later) {
            s->later = false;
            s->wake(s);
        }
    }
}

void crest__changes_hub_later(crest__worker *w, crest__changes_sub *s)
{
    hub *h = hub_of(w);
    s->later = true;
    if (!uv_is_active((uv_handle_t *)&h->later))
        uv_timer_start(&h->later, later_cb, 0, 0);
}

const crest__changes_cached *crest__changes_cache_find(crest__worker *w, const char *key, size_t keylen, int64_t from,
                                                       uint64_t gen)
{
    hub *h = hub_of(w);
    for (unsigned i = 0; i < CACHE_N; i++) {
        const cached *e = &h->cache[i];
        if (e->key && e->c.gen == gen && e->c.from == from && e->keylen == keylen && !memcmp(e->key, key, keylen))
            return &e->c;
    }
    return NULL;
}

void crest__changes_cache_put(crest__worker *w, const char *key, size_t keylen, const crest__changes_cached *c)
{
    hub *h = hub_of(w);
    /* Reads of earlier wake-ups serve hardly anyone any more: they go first. */
    for (unsigned i = 0; i < CACHE_N; i++)
        if (h->cache[i].key && h->cache[i].c.gen < c->gen) {
            free(h->cache[i].key);
            free((char *)h->cache[i].c.bytes);
            h->cache[i] = (cached){0};
        }
    if (c->len > CACHE_MAX_BYTES)
        return;
    cached *e = NULL; /* a free slot, or the oldest */
    for (unsigned i = 0; i < CACHE_N && !e; i++)
        if (!h->cache[i].key)
            e = &h->cache[i];
    if (!e) {
        e = &h->cache[h->cache_next];
        h->cache_next = (h->cache_next + 1) % CACHE_N;
    }
    free(e->key);
    free((char *)e->c.bytes);
    *e = (cached){0};
    char *k = malloc(keylen ? keylen : 1), *b = malloc(c->len ? c->len : 1);
    if (!k || !b) {
        free(k);
        free(b);
        return;
    }
    memcpy(k, key, keylen);
    if (c->len) /* (an empty read has no buffer) */
        memcpy(b, c->bytes, c->len);
    *e = (cached){.key = k, .keylen = keylen, .c = *c};
    e->c.bytes = b;
}

void crest__changes_count_events(crest_app *app, uint64_t n)
{
    if (app->changes && n)
        atomic_fetch_add_explicit(&app->changes->events, n, memory_order_relaxed);
}
