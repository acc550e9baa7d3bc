/* postgres_listen.c — a worker's LISTEN connection (the store's listen):
 * one more pg_lconn of the worker, flagged listener, made at the first
 * listen() and kept until the worker ends. postgres_lconn.c keeps it up as
 * it keeps the pool's (a connect that does not block, one uv_poll, made
 * again at once after serving a while, else after a backoff doubling to
 * 32 s); once connected it sends `LISTEN <channel>`, and once that is
 * answered its owner hears UP; each read of its socket drains libpq's
 * notifications into one EVENT; losing it says DOWN. It is never handed to
 * a session, nor counted in the pool's gauges (/metrics). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "postgres_loop.h"

#define CHANNEL_MAX 63 /* PostgreSQL's identifiers (NAMEDATALEN - 1) */

int crest__pg_listen(crest__store_worker *w, const char *channel, crest__listen_cb cb, void *ud)
{
    if (!w || !w->loop || !cb || !channel || !*channel || w->listener)
        return CREST_EINVAL;
    size_t n = strlen(channel);
    if (n > CHANNEL_MAX)
        return CREST_EINVAL;
    for (size_t i = 0; i < n; i++) {
        char c = channel[i];
        if (!((c >= 'a' && c <= 'z') || c == '_' || (i && c >= '0' && c <= '9')))
            return CREST_EINVAL;
    }
    pg_lconn *lc = calloc(1, sizeof *lc);
    if (!lc)
        return CREST_ENOMEM;
    snprintf(w->listen_sql, sizeof w->listen_sql, "LISTEN %s", channel); /* (an identifier as it is) */
    lc->w = w;
    lc->listener = true;
    lc->state = L_DOWN;
    uv_timer_init(w->loop, &lc->timer);
    lc->timer.data = lc;
    w->listener = lc;
    w->listen_cb = cb;
    w->listen_ud = ud;
    crest__pg_start_connect(lc); /* (a failure's drop starts the backoff) */
    return 0;
}

void crest__pg_listen_connected(pg_lconn *lc)
{
    crest__pg_set_state(lc, L_IDLE);
    if (crest__pg_send_cmd(lc, lc->w->listen_sql) || crest__pg_send_sync(lc, NULL)) {
        crest__pg_drop(lc, CREST__DBERR_UNAVAILABLE, "LISTEN could not be sent");
        return;
    }
    crest__pg_flush_out(lc);
}

void crest__pg_listen_answered(pg_lconn *lc, const PGresult *fail)
{
    if (fail) { /* (a hot standby refuses LISTEN): tried again after a backoff */
        crest__pg_drop(lc, CREST__DBERR_UNAVAILABLE, PQresultErrorMessage(fail));
        return;
    }
    lc->listening = true;
    lc->w->listen_cb(lc->w->listen_ud, CREST__LISTEN_UP);
}

void crest__pg_listen_heard(pg_lconn *lc)
{
    bool heard = false;
    PGnotify *n;
    while ((n = PQnotifies(lc->c.pg))) {
        heard = true;
        PQfreemem(n);
    }
    if (heard && lc->listening)
        lc->w->listen_cb(lc->w->listen_ud, CREST__LISTEN_EVENT);
}

void crest__pg_listen_lost(pg_lconn *lc)
{
    if (!lc->listening)
        return; /* (a connect that failed: it was down already) */
    lc->listening = false;
    lc->w->listen_cb(lc->w->listen_ud, CREST__LISTEN_DOWN);
}
