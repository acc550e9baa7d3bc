/* postgres_pool.c — the PostgreSQL pools' bookkeeping for /metrics: each
 * worker's loop counts its own pool (connections by state, its queue, how
 * long acquisitions waited, reconnects and failures) into atomics only it
 * writes, as src/app/metrics.c counts requests; the store keeps the list of
 * those counts, and pool_stats sums them for whoever renders /metrics, on
 * any thread. */
#include <string.h>

#include "postgres_internal.h"

void crest__pg_count(pg_counter *c, int64_t by)
{
    /* One writer (the worker's loop): a load and a store, no locked add. */
    uint64_t v = atomic_load_explicit(c, memory_order_relaxed);
    atomic_store_explicit(c, v + (uint64_t)by, memory_order_relaxed);
}

void crest__pg_count_wait(pg_pool_counts *pc, uint64_t us)
{
    crest__pg_count(&pc->wait_bucket[crest__duration_bucket(us)], 1);
    crest__pg_count(&pc->wait_sum_us, (int64_t)us);
}

void crest__pg_pool_join(pg_store *s, pg_pool_counts *pc)
{
    pthread_mutex_lock(&s->pools_lock);
    pc->next = s->pools;
    s->pools = pc;
    pthread_mutex_unlock(&s->pools_lock);
}

void crest__pg_pool_leave(pg_store *s, pg_pool_counts *pc)
{
    pthread_mutex_lock(&s->pools_lock);
    for (pg_pool_counts **p = &s->pools; *p; p = &(*p)->next)
        if (*p == pc) {
            *p = pc->next;
            break;
        }
    pthread_mutex_unlock(&s->pools_lock);
}

static uint64_t get(pg_counter *c) { return atomic_load_explicit(c, memory_order_relaxed); }

void crest__pg_pool_stats(crest__store *st, crest__pool_stats *out)
{
    pg_store *s = (pg_store *)st;
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&s->pools_lock);
    for (pg_pool_counts *pc = s->pools; pc; pc = pc->next) {
        out->idle += get(&pc->idle);
        out->in_use += get(&pc->in_use);
        out->connecting += get(&pc->connecting);
        out->down += get(&pc->down);
        out->queued += get(&pc->queued);
        for (unsigned i = 0; i <= CREST__DURATION_NBOUNDS; i++)
            out->wait_bucket[i] += get(&pc->wait_bucket[i]);
        out->wait_sum_us += get(&pc->wait_sum_us);
        out->reconnects += get(&pc->reconnects);
        out->connect_failures += get(&pc->connect_failures);
        out->queue_full += get(&pc->queue_full);
        out->acquire_timeouts += get(&pc->acquire_timeouts);
    }
    pthread_mutex_unlock(&s->pools_lock);
}
