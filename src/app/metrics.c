/* metrics.c — GET /metrics in Prometheus' text format (version 0.0.4):
 * requests by route and status, their durations as a histogram, open
 * connections, the statements run on the database for requests
 * (crest_db_statements_total, any store), the answers sent gzipped and the
 * bytes that saved (crest_http_gzip_*), the database's connection pools
 * (crest_db_pool_*: a store with pools, PostgreSQL; SQLite has none, a
 * connection per worker and one writer, and shows no such lines), change
 * feeds (crest_changes_*: when the app serves one), and the process' CPU,
 * memory and file descriptors.
 *
 * Each worker counts into its own block (one writer, relaxed atomics, no
 * lock on the request path): a request's session counts its statements
 * (store.h, crest__sess_config.statements), and the worker adds them up
 * when it is done with the request (crest__req_reset). A scrape sums every
 * block under the app's metrics lock. Labels are bounded by construction:
 * the route is the endpoint's pattern (never the path a client sent), the
 * status one of a fixed list or "other", so a client cannot grow the
 * series. */
#include <dirent.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "app_internal.h"

/* The statuses counted one by one; anything else counts as "other". */
static const int codes[] = {200, 201, 202, 204, 206, 301, 302, 304, 307, 308, 400, 401, 403, 404, 405, 406,
                            408, 409, 410, 411, 412, 413, 414, 415, 416, 422, 428, 429, 431, 500, 501, 502,
                            503, 504, 505};
#define NCODES (CREST_ARRAY_LEN(codes) + 1)
/* Histogram bounds in microseconds (reported in seconds): crest's one set. */
#define bounds_us crest__duration_bounds_us
#define NBOUNDS CREST__DURATION_NBOUNDS

typedef _Atomic uint64_t counter;

/* One route's counters in one worker. */
typedef struct route_counts {
    counter by_code[NCODES];
    counter bucket[NBOUNDS + 1]; /* not cumulative; the last is above every bound */
    counter sum_us;
} route_counts;

/* A series (method and route) has its counters in every worker's block, in
 * chunks of CHUNK, made when an app registers the series (the main thread,
 * before any worker serves that app) and never moved: a worker finds its
 * counters without a lock. Series are never dropped, so a counter goes on
 * across a reload that keeps its route, and never goes backwards. */
#define CHUNK 64
#define MAX_CHUNKS 1024 /* 65,536 series: routes of every app served since the start */

struct crest__metrics_block {
    crest__metrics_block *next;
    counter statements;          /* run on the database for the worker's requests */
    counter gzip_answers;        /* answers sent gzipped (compress.c) */
    counter gzip_saved;          /* identity bytes minus gzip bytes of those */
    _Atomic(route_counts *) chunks[MAX_CHUNKS];
};

typedef struct series {
    const char *method;          /* static */
    char *route;                 /* owned */
} series;

struct crest__metrics {
    pthread_mutex_t lock;
    crest__metrics_block *blocks;
    time_t started;
    atomic_int refs;             /* the apps sharing it: the app first served and those reloads made */
    series *series;              /* by first registration: the first app's endpoints, then unmatched */
    unsigned nseries, capseries;
};

static void bump(counter *c, uint64_t by)
{
    /* One writer per block: a load and a store, no locked add. */
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + by, memory_order_relaxed);
}

static uint64_t read_counter(counter *c) { return atomic_load_explicit(c, memory_order_relaxed); }

/* Gives b the chunks of the series [0, nseries); under m->lock. */
static int block_grow(crest__metrics_block *b, unsigned nseries)
{
    for (unsigned c = 0; c * CHUNK < nseries; c++) {
        if (atomic_load_explicit(&b->chunks[c], memory_order_relaxed))
            continue;
        route_counts *rc = calloc(CHUNK, sizeof *rc);
        if (!rc)
            return CREST_ENOMEM;
        atomic_store_explicit(&b->chunks[c], rc, memory_order_release);
    }
    return 0;
}

static route_counts *counts_of(crest__metrics_block *b, unsigned s)
{
    route_counts *c = atomic_load_explicit(&b->chunks[s / CHUNK], memory_order_acquire);
    return c ? &c[s % CHUNK] : NULL;
}

/* The series of (method, route), registered when new; under m->lock. */
static int series_of(crest__metrics *m, const char *method, const char *route, unsigned *out)
{
    for (unsigned i = 0; i < m->nseries; i++)
        if (!strcmp(m->series[i].method, method) && !strcmp(m->series[i].route, route)) {
            *out = i;
            return 0;
        }
    if (m->nseries == (unsigned)MAX_CHUNKS * CHUNK)
        return CREST_ECONFIG; /* the reload that would add one more fails */
    if (m->nseries == m->capseries) {
        unsigned cap = m->capseries ? 2 * m->capseries : 32;
        series *n = realloc(m->series, cap * sizeof *n);
        if (!n)
            return CREST_ENOMEM;
        m->series = n;
        m->capseries = cap;
    }
    char *r = strdup(route);
    if (!r)
        return CREST_ENOMEM;
    m->series[m->nseries] = (series){method, r};
    for (crest__metrics_block *b = m->blocks; b; b = b->next)
        if (block_grow(b, m->nseries + 1)) {
            free(r);
            return CREST_ENOMEM;
        }
    *out = m->nseries++;
    return 0;
}

/* Registers the app's routes (and unmatched) as series of m: app->metric_series. */
static int attach(crest_app *app, crest__metrics *m)
{
    unsigned *map = calloc(app->neps + 1, sizeof *map);
    if (!map)
        return CREST_ENOMEM;
    int rc = 0;
    pthread_mutex_lock(&m->lock);
    for (unsigned r = 0; r <= app->neps && !rc; r++)
        rc = series_of(m, r < app->neps ? crest_method_name(app->eps[r]->spec->method) : "",
                       r < app->neps ? app->eps[r]->full_path : "(unmatched)", &map[r]);
    pthread_mutex_unlock(&m->lock);
    if (rc) {
        free(map);
        return rc;
    }
    free(app->metric_series);
    app->metric_series = map;
    return 0;
}

static void block_free(crest__metrics_block *b)
{
    for (unsigned c = 0; c < MAX_CHUNKS; c++)
        free(atomic_load_explicit(&b->chunks[c], memory_order_relaxed));
    free(b);
}

int crest__metrics_worker_init(crest_app *app, crest__worker *w)
{
    if (!app->metrics_on)
        return 0;
    if (!app->metrics) {
        app->metrics = calloc(1, sizeof *app->metrics);
        if (!app->metrics)
            return CREST_ENOMEM;
        pthread_mutex_init(&app->metrics->lock, NULL);
        app->metrics->started = time(NULL);
        atomic_init(&app->metrics->refs, 1);
    }
    int rc;
    if (!app->metric_series && (rc = attach(app, app->metrics)))
        return rc;
    crest__metrics_block *b = calloc(1, sizeof *b);
    if (!b)
        return CREST_ENOMEM;
    pthread_mutex_lock(&app->metrics->lock);
    rc = block_grow(b, app->metrics->nseries);
    if (!rc) {
        b->next = app->metrics->blocks;
        app->metrics->blocks = b;
    }
    pthread_mutex_unlock(&app->metrics->lock);
    if (rc) {
        block_free(b);
        return rc;
    }
    w->aw.metrics = b;
    return 0;
}

int crest__metrics_share(crest_app *from, crest_app *to)
{
    to->metrics_on = from->metrics_on; /* whether workers count is decided at the start */
    if (!from->metrics)
        return 0;
    int rc = attach(to, from->metrics);
    if (rc)
        return rc;
    atomic_fetch_add(&from->metrics->refs, 1);
    to->metrics = from->metrics;
    return 0;
}

void crest__metrics_worker_dispose(crest__worker *w)
{
    crest__metrics_block *b = w->aw.metrics;
    crest__metrics *m = w->app ? w->app->metrics : NULL;
    if (!b || !m)
        return;
    pthread_mutex_lock(&m->lock);
    for (crest__metrics_block **p = &m->blocks; *p; p = &(*p)->next)
        if (*p == b) {
            *p = b->next;
            break;
        }
    pthread_mutex_unlock(&m->lock);
    block_free(b);
    w->aw.metrics = NULL;
}

void crest__metrics_free(crest__metrics *m)
{
    if (!m || atomic_fetch_sub(&m->refs, 1) > 1)
        return;
    for (unsigned i = 0; i < m->nseries; i++)
        free(m->series[i].route);
    free(m->series);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

void crest__metrics_observe(crest__worker *w, const crest_req *req, int status, uint64_t dur_us)
{
    crest__metrics_block *b = w ? w->aw.metrics : NULL;
    const crest_app *app = req->app;
    if (!b || !app || !app->metric_series)
        return;
    unsigned r = req->ep && req->ep->index < app->neps ? req->ep->index : app->neps;
    route_counts *rc = counts_of(b, app->metric_series[r]);
    if (!rc)
        return;
    size_t k = 0;
    while (k < CREST_ARRAY_LEN(codes) && codes[k] != status)
        k++;
    bump(&rc->by_code[k], 1);
    bump(&rc->bucket[crest__duration_bucket(dur_us)], 1);
    bump(&rc->sum_us, dur_us);
}

void crest__metrics_statements(crest__worker *w, uint64_t n)
{
    crest__metrics_block *b = w ? w->aw.metrics : NULL;
    if (b)
        bump(&b->statements, n);
}

void crest__metrics_gzip(crest__worker *w, size_t identity, size_t gz)
{
    crest__metrics_block *b = w ? w->aw.metrics : NULL;
    if (b) {
        bump(&b->gzip_answers, 1);
        bump(&b->gzip_saved, identity > gz ? identity - gz : 0);
    }
}

/* ---- the scrape ---- */

/* The text being written; err sticks at the first failed append. */
typedef struct out {
    crest__buf b;
    int err;
} out;

static void put(out *o, const char *s, size_t n)
{
    if (!o->err)
        o->err = crest__buf_append(&o->b, s, n);
}

static void puts_(out *o, const char *s) { put(o, s, strlen(s)); }

static void putf(out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(out *o, const char *fmt, ...)
{
    char tmp[4096];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp) {
        if (!o->err)
            o->err = CREST_EINVAL;
        return;
    }
    put(o, tmp, (size_t)n);
}

/* `"value"` with Prometheus' label escapes (\\, \", \n). */
static void label(out *o, const char *s)
{
    put(o, "\"", 1);
    for (; *s; s++) {
        if (*s == '\\' || *s == '"')
            put(o, "\\", 1);
        if (*s == '\n')
            put(o, "\\n", 2);
        else
            put(o, s, 1);
    }
    put(o, "\"", 1);
}

static void route_labels(out *o, const series *se)
{
    puts_(o, "method=");
    label(o, se->method);
    puts_(o, ",route=");
    label(o, se->route);
}

static void seconds(out *o, uint64_t us)
{
    putf(o, "%llu.%06llu", (unsigned long long)(us / 1000000), (unsigned long long)(us % 1000000));
}

/* A bucket's bound in seconds, as short as it goes ("0.00025", "2.5", "10"). */
static void bound(out *o, uint64_t us)
{
    char frac[8];
    snprintf(frac, sizeof frac, "%06llu", (unsigned long long)(us % 1000000));
    size_t n = strlen(frac);
    while (n && frac[n - 1] == '0')
        frac[--n] = 0;
    putf(o, "%llu%s%s", (unsigned long long)(us / 1000000), n ? "." : "", frac);
}

/* A histogram's _bucket, _sum and _count lines: buckets not cumulative
 * (NBOUNDS + 1, the last above every bound), labels written by labels(ud)
 * (NULL: none). */
static void histogram(out *o, const char *name, const uint64_t *bucket, uint64_t sum_us,
                      void (*labels)(out *, const void *), const void *ud)
{
    uint64_t cum = 0;
    for (size_t i = 0; i <= NBOUNDS; i++) {
        cum += bucket[i];
        putf(o, "%s_bucket{", name);
        if (labels) {
            labels(o, ud);
            puts_(o, ",");
        }
        puts_(o, "le=\"");
        if (i < NBOUNDS)
            bound(o, bounds_us[i]);
        else
            puts_(o, "+Inf");
        putf(o, "\"} %llu\n", (unsigned long long)cum);
    }
    putf(o, "%s_sum", name);
    if (labels) {
        puts_(o, "{");
        labels(o, ud);
        puts_(o, "}");
    }
    puts_(o, " ");
    seconds(o, sum_us);
    putf(o, "\n%s_count", name);
    if (labels) {
        puts_(o, "{");
        labels(o, ud);
        puts_(o, "}");
    }
    putf(o, " %llu\n", (unsigned long long)cum);
}

/* The route's labels for histogram(): ud is a series. */
static void route_labels_of(out *o, const void *ud) { route_labels(o, ud); }

/* The database's connection pools (a store with pools: PostgreSQL), summed
 * over the workers. */
static void pool_metrics(out *o, const crest__pool_stats *p)
{
    putf(o,
         "# HELP crest_db_pool_connections Database connections of the pools, by state (down: broken, "
         "waiting to reconnect).\n"
         "# TYPE crest_db_pool_connections gauge\n"
         "crest_db_pool_connections{state=\"idle\"} %llu\n"
         "crest_db_pool_connections{state=\"in_use\"} %llu\n"
         "crest_db_pool_connections{state=\"connecting\"} %llu\n"
         "crest_db_pool_connections{state=\"down\"} %llu\n"
         "# HELP crest_db_pool_queue_length Requests waiting for a database connection.\n"
         "# TYPE crest_db_pool_queue_length gauge\n"
         "crest_db_pool_queue_length %llu\n",
         (unsigned long long)p->idle, (unsigned long long)p->in_use, (unsigned long long)p->connecting,
         (unsigned long long)p->down, (unsigned long long)p->queued);
    puts_(o, "# HELP crest_db_pool_acquire_wait_seconds Time a request waited for a database connection.\n"
             "# TYPE crest_db_pool_acquire_wait_seconds histogram\n");
    histogram(o, "crest_db_pool_acquire_wait_seconds", p->wait_bucket, p->wait_sum_us, NULL, NULL);
    putf(o,
         "# HELP crest_db_pool_reconnects_total Connections made again after one was lost.\n"
         "# TYPE crest_db_pool_reconnects_total counter\n"
         "crest_db_pool_reconnects_total %llu\n"
         "# HELP crest_db_pool_connect_failures_total Attempts to connect to the database that failed.\n"
         "# TYPE crest_db_pool_connect_failures_total counter\n"
         "crest_db_pool_connect_failures_total %llu\n"
         "# HELP crest_db_pool_queue_full_total Requests refused at once: too many waited for a connection.\n"
         "# TYPE crest_db_pool_queue_full_total counter\n"
         "crest_db_pool_queue_full_total %llu\n"
         "# HELP crest_db_pool_acquire_timeouts_total Requests that gave up waiting for a connection.\n"
         "# TYPE crest_db_pool_acquire_timeouts_total counter\n"
         "crest_db_pool_acquire_timeouts_total %llu\n",
         (unsigned long long)p->reconnects, (unsigned long long)p->connect_failures,
         (unsigned long long)p->queue_full, (unsigned long long)p->acquire_timeouts);
}

/* What /proc/self says of the process (Linux); 0 where it cannot tell. */
typedef struct proc_info {
    double cpu_s;
    uint64_t rss, vsz;
    unsigned long fds, max_fds;
} proc_info;

static proc_info proc_self(void)
{
    proc_info p = {0};
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        p.cpu_s = (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
                  ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) / 1e6;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        unsigned long long vsz_pages = 0, rss_pages = 0;
        if (fscanf(f, "%llu %llu", &vsz_pages, &rss_pages) == 2) {
            long page = sysconf(_SC_PAGESIZE);
            p.vsz = vsz_pages * (uint64_t)page;
            p.rss = rss_pages * (uint64_t)page;
        }
        fclose(f);
    }
    DIR *d = opendir("/proc/self/fd");
    if (d) {
        for (struct dirent *e; (e = readdir(d));)
            if (e->d_name[0] != '.')
                p.fds++;
        closedir(d);
        p.fds--; /* the directory's own */
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        p.max_fds = (unsigned long)rl.rlim_cur;
    return p;
}

static int h_metrics(crest_req *req, crest_res *res, void *ud)
{
    CREST_UNUSED(ud);
    crest_app *app = req->app;
    crest__metrics *m = app->metrics;
    uint64_t statements = 0, gzip_answers = 0, gzip_saved = 0;
    out o = {0};
    crest__buf_init(&o.b, 0);
    if (!m)
        return crest__res_fail(res, CREST__E_OUT_OF_MEMORY, NULL);
    /* Every series since the start (routes a reload removed too: their
     * counters stay), summed over the workers. */
    pthread_mutex_lock(&m->lock);
    unsigned n = m->nseries;
    route_counts *sum = crest__arena_calloc(req->arena, n ? n : 1, sizeof *sum);
    series *labels = crest__arena_calloc(req->arena, n ? n : 1, sizeof *labels);
    if (labels) /* (the strings live as long as m) */
        memcpy(labels, m->series, n * sizeof *labels);
    for (crest__metrics_block *b = sum && labels ? m->blocks : NULL; b; b = b->next) {
        statements += read_counter(&b->statements);
        gzip_answers += read_counter(&b->gzip_answers);
        gzip_saved += read_counter(&b->gzip_saved);
        for (unsigned r = 0; r < n; r++) {
            route_counts *c = counts_of(b, r);
            if (!c)
                continue;
            for (size_t k = 0; k < NCODES; k++)
                sum[r].by_code[k] += read_counter(&c->by_code[k]);
            for (size_t i = 0; i <= NBOUNDS; i++)
                sum[r].bucket[i] += read_counter(&c->bucket[i]);
            sum[r].sum_us += read_counter(&c->sum_us);
        }
    }
    pthread_mutex_unlock(&m->lock);
    if (!sum || !labels)
        return crest__res_fail(res, CREST__E_OUT_OF_MEMORY, NULL);

    puts_(&o, "# HELP crest_http_requests_total HTTP requests answered, by route and status.\n"
                           "# TYPE crest_http_requests_total counter\n");
    for (unsigned r = 0; r < n; r++)
        for (size_t k = 0; k < NCODES; k++) {
            uint64_t v = sum[r].by_code[k];
            if (!v)
                continue;
            puts_(&o, "crest_http_requests_total{");
            route_labels(&o, &labels[r]);
            if (k < CREST_ARRAY_LEN(codes))
                putf(&o, ",code=\"%d\"} %llu\n", codes[k], (unsigned long long)v);
            else
                putf(&o, ",code=\"other\"} %llu\n", (unsigned long long)v);
        }
    puts_(&o, "# HELP crest_http_request_duration_seconds Time from a request's first byte to its "
                           "answer being ready, by route.\n"
                           "# TYPE crest_http_request_duration_seconds histogram\n");
    for (unsigned r = 0; r < n; r++) {
        uint64_t count = 0;
        for (size_t i = 0; i <= NBOUNDS; i++)
            count += sum[r].bucket[i];
        if (!count)
            continue;
        uint64_t bucket[NBOUNDS + 1];
        for (size_t i = 0; i <= NBOUNDS; i++)
            bucket[i] = read_counter(&sum[r].bucket[i]);
        histogram(&o, "crest_http_request_duration_seconds", bucket, read_counter(&sum[r].sum_us), route_labels_of,
                  &labels[r]);
    }
    putf(&o,
                       "# HELP crest_http_connections Open client connections.\n"
                       "# TYPE crest_http_connections gauge\n"
                       "crest_http_connections %u\n",
                       crest__engine_uv.open_connections(app));
    putf(&o,
         "# HELP crest_http_gzip_responses_total Answers sent gzipped (Content-Encoding: gzip).\n"
         "# TYPE crest_http_gzip_responses_total counter\n"
         "crest_http_gzip_responses_total %llu\n"
         "# HELP crest_http_gzip_saved_bytes_total Body bytes gzip saved: the identity bodies' sizes minus the "
         "gzip bodies' of those answers.\n"
         "# TYPE crest_http_gzip_saved_bytes_total counter\n"
         "crest_http_gzip_saved_bytes_total %llu\n",
         (unsigned long long)gzip_answers, (unsigned long long)gzip_saved);
    if (app->store)
        putf(&o,
             "# HELP crest_db_statements_total Statements run on the database for requests (REST routes, SQL "
             "endpoints, crest_query), each run counted (a retry again); not crest's own transaction control.\n"
             "# TYPE crest_db_statements_total counter\n"
             "crest_db_statements_total %llu\n",
             (unsigned long long)statements);
    crest__changes_stats cs;
    crest__changes_stats_of(app, &cs);
    if (cs.on)
        putf(&o,
             "# HELP crest_changes_subscribers Open change feed streams.\n"
             "# TYPE crest_changes_subscribers gauge\n"
             "crest_changes_subscribers %llu\n"
             "# HELP crest_changes_dropped_total Change feed subscribers dropped for leaving too much unread.\n"
             "# TYPE crest_changes_dropped_total counter\n"
             "crest_changes_dropped_total %llu\n"
             "# HELP crest_changes_events_total Change events written to subscribers.\n"
             "# TYPE crest_changes_events_total counter\n"
             "crest_changes_events_total %llu\n",
             (unsigned long long)cs.subscribers, (unsigned long long)cs.dropped, (unsigned long long)cs.events);
    if (cs.on) {
        putf(&o, "# HELP crest_changes_wakeups_total Times a worker's change feed subscribers were woken, by what woke "
                 "them: a write of this process committed, a database notification (LISTEN), the LISTEN connection up "
                 "again (a catch-up), a look at the log's end that found it grew.\n"
                 "# TYPE crest_changes_wakeups_total counter\n");
        static const char *const sources[CREST__CHANGES_WAKE_N] = {"commit", "notify", "listen", "poll"};
        for (int i = 0; i < CREST__CHANGES_WAKE_N; i++)
            putf(&o, "crest_changes_wakeups_total{source=\"%s\"} %llu\n", sources[i],
                 (unsigned long long)cs.wakeups[i]);
    }
    if (cs.on && cs.listens)
        putf(&o,
             "# HELP crest_changes_listening Workers whose LISTEN connection for the change feed is up.\n"
             "# TYPE crest_changes_listening gauge\n"
             "crest_changes_listening %llu\n",
             (unsigned long long)cs.listening);
    if (app->store && app->store->vt->pool_stats) {
        crest__pool_stats ps;
        app->store->vt->pool_stats(app->store, &ps);
        pool_metrics(&o, &ps);
    }
    proc_info p = proc_self();
    putf(&o,
                       "# HELP process_cpu_seconds_total User and system CPU time spent, in seconds.\n"
                       "# TYPE process_cpu_seconds_total counter\n"
                       "process_cpu_seconds_total %.6f\n"
                       "# HELP process_resident_memory_bytes Resident memory size, in bytes.\n"
                       "# TYPE process_resident_memory_bytes gauge\n"
                       "process_resident_memory_bytes %llu\n"
                       "# HELP process_virtual_memory_bytes Virtual memory size, in bytes.\n"
                       "# TYPE process_virtual_memory_bytes gauge\n"
                       "process_virtual_memory_bytes %llu\n"
                       "# HELP process_open_fds Open file descriptors.\n"
                       "# TYPE process_open_fds gauge\n"
                       "process_open_fds %lu\n"
                       "# HELP process_max_fds The limit on open file descriptors.\n"
                       "# TYPE process_max_fds gauge\n"
                       "process_max_fds %lu\n"
                       "# HELP process_start_time_seconds When the server started, in seconds since the epoch.\n"
                       "# TYPE process_start_time_seconds gauge\n"
                       "process_start_time_seconds %lld\n"
                       "# HELP crest_build_info The crest version serving.\n"
                       "# TYPE crest_build_info gauge\n"
                       "crest_build_info{version=\"%s\"} 1\n",
                       p.cpu_s, (unsigned long long)p.rss, (unsigned long long)p.vsz, p.fds, p.max_fds,
                       (long long)m->started, CREST_VERSION);
    int rc;
    if (o.err) {
        rc = crest__res_fail(res, CREST__E_OUT_OF_MEMORY, NULL);
    } else {
        crest_res_header(res, "Cache-Control", "no-store");
        rc = crest_res_send(res, "text/plain; version=0.0.4; charset=utf-8", o.b.ptr, o.b.len);
    }
    crest__buf_dispose(&o.b); /* crest_res_send copied it */
    return rc;
}

static const crest_endpoint metrics_ep = {
    .method = CREST_GET, .path = "/metrics", .summary = "Metrics in Prometheus' text format", .tag = "ops",
    .handler = h_metrics, .operation_id = "metrics",
    .response_description = "requests by route and status, their durations, connections and the process"};

const crest_endpoint *crest__metrics_endpoint(void) { return &metrics_ep; }
