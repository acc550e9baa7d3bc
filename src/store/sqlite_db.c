/* sqlite_db.c — every SQLite connection crest opens (the start-up check, each
 * worker's, the writer's, each pool thread's) is opened here and set up the
 * same way: a busy timeout, extended result codes, foreign keys enforced,
 * and crest's own sum and avg, which never fail on an overflow. */
#include <stdint.h>
#include <stdio.h>

#include <sqlite3.h>

#include "sqlite_internal.h"

/* ---- sum and avg ----
 *
 * SQLite's sum() fails with "integer overflow" once a sum of integers leaves
 * 64 bits, so one large value made every sum over it an error. Here
 * integers are added exactly in 128 bits (2^64 rows of 2^63 would be needed
 * to overflow that) and reals with Kahan-Babuska-Neumaier compensation. The
 * result: NULL for no values; an integer when every value was one and the
 * sum fits in 64 bits; else a REAL (a float: exact up to 2^53). avg is the
 * same sum divided by the count, always a REAL. Both are window functions
 * too, as SQLite's are. Values are taken as sqlite3_value_numeric_type
 * does, like SQLite's own sum. */

typedef struct sum_ctx {
    __int128 isum;      /* the integers, exactly */
    double r, comp;     /* the reals, and their compensation */
    int64_t n;          /* values that were not NULL */
    int64_t nreal;      /* of which not integers */
} sum_ctx;

/* The aggregate's state: SQLite's aggregate memory is 8-byte aligned,
 * __int128 wants 16, so the state sits at the first 16-aligned byte of a
 * slightly larger block (zeroed by SQLite; the same block every call).
 * NULL: none yet (make: false) or out of memory. */
static sum_ctx *state(sqlite3_context *ctx, bool make)
{
    unsigned char *p = sqlite3_aggregate_context(ctx, make ? (int)sizeof(sum_ctx) + 16 : 0);
    if (!p)
        return NULL;
    return (sum_ctx *)(void *)(p + ((16 - (uintptr_t)p % 16) % 16));
}

static void kbn_add(sum_ctx *s, double x)
{
    double t = s->r + x;
    if ((s->r >= 0 ? s->r : -s->r) >= (x >= 0 ? x : -x))
        s->comp += (s->r - t) + x;
    else
        s->comp += (x - t) + s->r;
    s->r = t;
}

static void sum_add(sqlite3_context *ctx, sqlite3_value **argv, int sign)
{
    sum_ctx *s = state(ctx, true);
    if (!s) {
        sqlite3_result_error_nomem(ctx);
        return;
    }
    int t = sqlite3_value_numeric_type(argv[0]);
    if (t == SQLITE_NULL)
        return;
    s->n += sign;
    if (t == SQLITE_INTEGER) {
        s->isum += sign * (__int128)sqlite3_value_int64(argv[0]);
    } else {
        s->nreal += sign;
        kbn_add(s, sign * sqlite3_value_double(argv[0]));
    }
}

static void sum_step(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    sum_add(ctx, argv, 1);
}

static void sum_inverse(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    sum_add(ctx, argv, -1);
}

static double sum_double(const sum_ctx *s) { return (double)s->isum + (s->r + s->comp); }

static void sum_value(sqlite3_context *ctx)
{
    sum_ctx *s = state(ctx, false);
    if (!s || s->n == 0)
        sqlite3_result_null(ctx);
    else if (s->nreal == 0 && s->isum >= INT64_MIN && s->isum <= INT64_MAX)
        sqlite3_result_int64(ctx, (sqlite3_int64)s->isum);
    else
        sqlite3_result_double(ctx, sum_double(s));
}

static void avg_value(sqlite3_context *ctx)
{
    sum_ctx *s = state(ctx, false);
    if (!s || s->n == 0)
        sqlite3_result_null(ctx);
    else
        sqlite3_result_double(ctx, sum_double(s) / (double)s->n);
}

static int add_functions(sqlite3 *db)
{
    int flags = SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS;
    int rc = sqlite3_create_window_function(db, "sum", 1, flags, NULL, sum_step, sum_value, sum_value, sum_inverse,
                                            NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_create_window_function(db, "avg", 1, flags, NULL, sum_step, avg_value, avg_value, sum_inverse,
                                            NULL);
    return rc;
}

int crest__sq_open_db(const char *path, bool create, sqlite3 **out)
{
    sqlite3 *db = NULL;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (create ? SQLITE_OPEN_CREATE : 0);
    int rc = sqlite3_open_v2(path, &db, flags, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_busy_timeout(db, 5000);
        sqlite3_extended_result_codes(db, 1);
        rc = sqlite3_exec(db, "PRAGMA foreign_keys = ON", NULL, NULL, NULL);
    }
    if (rc == SQLITE_OK)
        rc = add_functions(db);
    *out = db;
    return rc;
}

/* Durability: FULL syncs the WAL at every commit, so an acknowledged write
 * survives a power cut; NORMAL (durability: normal) survives a crash of
 * crest but may lose the last commits on power loss. The writer always
 * uses NORMAL: its commits are synced by the group commit instead
 * (sqlite_writer.c). A modest page cache per connection keeps RSS small. */
void crest__sq_tune(sqlite3 *db, bool durability_normal, int cache_kib)
{
    char sql[96];
    int n = snprintf(sql, sizeof sql, "PRAGMA synchronous=%s", durability_normal ? "NORMAL" : "FULL");
    if (cache_kib > 0) /* 0: SQLite's default cache */
        snprintf(sql + n, sizeof sql - (size_t)n, "; PRAGMA cache_size=%d", -cache_kib);
    sqlite3_exec(db, sql, NULL, NULL, NULL);
}
