/* ratelimit.c — token buckets per client and route group, shared by every
 * worker. A limit is "N/period" ("100/1m"): a bucket of N requests that
 * refills at N per period. The client is the user (when authenticated) or
 * the IP address; the group is the module, or the endpoint, or the app's
 * default. Over the limit: 429 with Retry-After. The table is bounded:
 * when a probe window is full, the bucket idle longest is reused. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "auth.h"

#define RL_SLOTS 16384
#define RL_PROBE 16

typedef struct bucket {
    uint64_t hash;
    char key[96];
    double tokens;
    uint64_t last_us;
} bucket;

struct crest__ratelimits {
    pthread_mutex_t lock;
    bucket *slots;            /* RL_SLOTS, allocated on first use */
};

int crest__rate_parse(const char *s, crest__rate *out)
{
    char *end;
    long n = strtol(s, &end, 10);
    if (end == s || n <= 0 || n > 1000000000L || *end != '/')
        return -1;
    const char *p = end + 1;
    double k = 1;
    if (*p >= '0' && *p <= '9') {
        k = strtod(p, &end);
        p = end;
    }
    double unit;
    if (!strcmp(p, "s") || !strcmp(p, "sec"))
        unit = 1;
    else if (!strcmp(p, "m") || !strcmp(p, "min"))
        unit = 60;
    else if (!strcmp(p, "h"))
        unit = 3600;
    else if (!strcmp(p, "d"))
        unit = 86400;
    else
        return -1;
    if (!(k > 0) || k * unit > 86400 * 366)
        return -1;
    out->burst = (double)n;
    out->per_s = (double)n / (k * unit);
    return 0;
}

void crest__ratelimits_free(crest__ratelimits *r)
{
    if (!r)
        return;
    pthread_mutex_destroy(&r->lock);
    free(r->slots);
    free(r);
}

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

int crest__rate_check(crest_req *req, crest_res *res)
{
    crest_app *app = req->app;
    const crest__endpoint *ep = req->ep;
    const crest__rate *rate = ep && ep->rate.burst > 0 ? &ep->rate : app->rate.burst > 0 ? &app->rate : NULL;
    if (!rate || !app->limits_table)
        return 0;
    char key[96];
    const char *who = req->user ? req->user->id : (req->peer && *req->peer ? req->peer : "-");
    snprintf(key, sizeof key, "%c:%s:%s", req->user ? 'u' : 'a', ep && ep->rate.burst > 0 ? ep->rate_group : "*",
             who);
    crest__ratelimits *r = app->limits_table;
    uint64_t h = fnv1a(key), now = crest__now_us();
    double retry = 0;
    pthread_mutex_lock(&r->lock);
    if (!r->slots)
        r->slots = calloc(RL_SLOTS, sizeof *r->slots);
    if (!r->slots) {
        pthread_mutex_unlock(&r->lock);
        return 0; /* no memory for limits: serve rather than refuse */
    }
    bucket *b = NULL, *oldest = NULL;
    for (unsigned k = 0; k < RL_PROBE && !b; k++) {
        bucket *x = &r->slots[(h + k) % RL_SLOTS];
        if (x->last_us && x->hash == h && !strcmp(x->key, key))
            b = x;
        else if (!oldest || x->last_us < oldest->last_us)
            oldest = x;
    }
    if (!b) {
        b = oldest;
        b->hash = h;
        snprintf(b->key, sizeof b->key, "%s", key);
        b->tokens = rate->burst;
        b->last_us = now;
    }
    double elapsed = (double)(now - b->last_us) / 1e6;
    b->tokens = fmin(rate->burst, b->tokens + elapsed * rate->per_s);
    b->last_us = now ? now : 1;
    if (b->tokens >= 1)
        b->tokens -= 1;
    else
        retry = (1 - b->tokens) / rate->per_s;
    pthread_mutex_unlock(&r->lock);
    if (retry <= 0)
        return 0;
    char ra[24];
    snprintf(ra, sizeof ra, "%.0f", ceil(retry));
    res->retry_after = crest__arena_strdup(req->arena, ra);
    return crest__res_fail(res, CREST__E_RATE_LIMITED, "too many requests; try again in %s s", ra);
}

int crest__ratelimits_init(crest_app *app)
{
    if (app->limits_table)
        return 0;
    crest__ratelimits *r = calloc(1, sizeof *r);
    if (!r)
        return CREST_ENOMEM;
    pthread_mutex_init(&r->lock, NULL);
    app->limits_table = r;
    return 0;
}

int crest_app_set_rate_limit(crest_app *app, const char *limit)
{
    crest__app_made_in_c(app);
    crest__rate r;
    if (!limit || crest__rate_parse(limit, &r))
        return CREST_EINVAL;
    app->rate = r;
    return crest__ratelimits_init(app);
}
