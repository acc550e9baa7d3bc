/* postgres_loop.c — the PostgreSQL store on a worker's event loop: each
 * worker's own connections. */
#include <stdlib.h>

#include "postgres_internal.h"

struct crest__store_worker {
    pg_store *s;
    void *loop;
};

int crest__pg_worker_init(crest__store *st, void *loop, crest__store_worker **out, crest_error *err)
{
    crest__store_worker *w = calloc(1, sizeof *w);
    if (!w)
        return crest__error_set(err, CREST_ENOMEM, NULL, 0, "out of memory");
    w->s = (pg_store *)st;
    w->loop = loop;
    /* The worker starts only when the database answers. */
    char *msg = NULL;
    crest__conn *c = crest__pg_connect(w->s, &msg);
    if (!c) {
        crest__error_set(err, CREST_EIO, NULL, 0, "cannot connect to the database: %s", msg ? msg : "out of memory");
        free(msg);
        free(w);
        return CREST_EIO;
    }
    pthread_mutex_lock(&w->s->idle_lock);
    c->next = w->s->idle;
    w->s->idle = c;
    pthread_mutex_unlock(&w->s->idle_lock);
    *out = w;
    return 0;
}

void crest__pg_worker_dispose(crest__store_worker *w) { free(w); }
