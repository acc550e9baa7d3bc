/* contract.h — what the two files of the store contract suite share
 * (test_store_contract.c: connections, statements, failures, introspection;
 * test_store_contract_sess.c: sessions): the table of stores under test,
 * the test's world (one store, one connection, one arena per test),
 * asserts that print both sides, and helpers that run statements through
 * `const crest__store_vt *` only. Defined in contract.c. */
#ifndef CREST_TEST_CONTRACT_H
#define CREST_TEST_CONTRACT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "unit.h"

#include "store/store.h"

typedef struct contract_store {
    const char *name;
    const crest__store_vt *vt;
    bool (*available)(void);               /* false: the group is skipped (no server, no driver) */
    /* A fresh, empty database named db (create: true); the path or
     * conninfo may live in a static buffer (open copies it). */
    void (*config)(const char *db, crest__store_config *cfg);
    void (*drop)(const char *db);          /* removes what config made */
    void (*missing)(crest__store_config *cfg); /* a database that does not exist (create: false) */
    char placeholder;                      /* '?' (SQLite) or '$' ($1..$n: PostgreSQL) */
    const char *id_pk;                     /* a column type for an id the database assigns */
    /* The cell kind a value of each crest__vkind reads back as, from a
     * column of the matching type (kinds table of exec_binds_every_value_kind). */
    uint8_t cell_of[CREST__V_UUID + 1];
    bool text_verbatim;                    /* text kinds read back exactly as bound */
    bool last_id;                          /* rows carry the id of the row an INSERT made */
    bool native;                           /* native() gives a handle */
    const char *last_id_sql;               /* a SELECT of the connection's last inserted id, or NULL */
    bool moves_slow_reads;                 /* a slow read on the loop moves to the offload hook (SQLite) */
    bool on_loop;                          /* a worker's sessions run on its event loop (a network store) */
    bool list_binds;                       /* binds a list (crest__query.lists) as one array parameter */
    /* Store-specific SQL (a script): on table r (id, n), deleting a row
     * whose n = 7 raises 'crest:409:Seven is kept', and n = 8 raises a plain
     * 'eight is kept'. */
    const char *raise_setup;
} contract_store;

/* The test's world: set up before each test (t_setup), gone after it. */
typedef struct contract_world {
    const contract_store *fx;
    const crest__store_vt *vt;
    const char *db;          /* the test's database (its name) */
    crest__store *s;
    crest__conn *c;
    crest__arena a;
} contract_world;

extern contract_world T;

/* A statement that counts to a million (well past a small slow-read
 * budget) and one that would run for many seconds (past any deadline). */
#define SLOW_COUNT 1000000
extern const char slow_read[], endless_read[];

const char *kname(int k); /* a failure kind's name */

#define assert_kind(e, want)                                                                               \
    do {                                                                                                   \
        const crest__dberr *e_ = (e);                                                                      \
        if ((int)e_->kind != (int)(want)) {                                                                \
            print_error("%s: kind %s (%s), want %s\n", #e, kname((int)e_->kind),                           \
                        e_->detail ? e_->detail : "no detail", kname((int)(want)));                        \
            fail();                                                                                        \
        }                                                                                                  \
    } while (0)

/* A cell of kind k (crest__vkind), printed by name when it differs. */
#define assert_cell_kind(cell, want)                                                                       \
    do {                                                                                                   \
        static const char *const vk_[] = {"NULL", "BOOL", "INT", "FLOAT", "TEXT",                          \
                                          "DATE", "DATETIME", "JSON", "UUID"};                             \
        unsigned g_ = (cell)->k, w_ = (unsigned)(want);                                                    \
        if (g_ != w_) {                                                                                    \
            print_error("%s: cell kind %s, want %s\n", #cell, g_ < 9 ? vk_[g_] : "?", w_ < 9 ? vk_[w_] : "?"); \
            fail();                                                                                        \
        }                                                                                                  \
    } while (0)

#define assert_cell_int(r, row, col, want)                                                                 \
    do {                                                                                                   \
        const crest__cell *c_ = crest__rows_cell((r), (row), (col));                                       \
        assert_cell_kind(c_, CREST__V_INT);                                                                \
        assert_i64_eq(c_->v.i, (want));                                                                    \
    } while (0)

#define assert_cell_text(r, row, col, want)                                                                \
    do {                                                                                                   \
        const crest__cell *c_ = crest__rows_cell((r), (row), (col));                                       \
        assert_cell_kind(c_, CREST__V_TEXT);                                                               \
        assert_bytes_eq(c_->v.s, c_->n, (want));                                                           \
        assert_int_equal(c_->v.s[c_->n], 0);                                                               \
    } while (0)

static inline crest__val vnull(void) { return (crest__val){.k = CREST__V_NULL}; }
static inline crest__val vint(int64_t i) { return (crest__val){.k = CREST__V_INT, .i = i}; }
static inline crest__val vtext(const char *s) { return (crest__val){.k = CREST__V_TEXT, .s = s, .n = strlen(s)}; }

/* tmpl with each '?' made the store's placeholder ($1, $2, ... in order
 * for '$'); into the test's arena. The suite's SQL has no '?' in literals. */
const char *P(const char *tmpl);
crest__query Q(const char *sql, const crest__val *binds, unsigned n, unsigned flags);
/* Run on the test's connection: they must succeed (the result) / fail (its failure). */
crest__rows *run_ok(const crest__query *q);
crest__rows *ok(const char *sql, const crest__val *binds, unsigned n, unsigned flags);
crest__dberr fails(const char *sql, const crest__val *binds, unsigned n, unsigned flags);
void script(const char *sql);
/* SELECT count(*) FROM table, on connection c / the test's. */
int64_t count_on(crest__conn *c, const char *table);
int64_t count_of(const char *table);
/* t (id, name, n, x, b) with the rows 1..5 named one..five. */
void setup_five(void);
/* A second store on the test's database, configured otherwise; a worker of a store. */
crest__store *open_with(size_t max_result, unsigned slow_read_ksteps, bool durability_normal);
/* The same with a pool of size connections per worker, acquire_ms to wait
 * for one, queue_max requests waiting (a store on a loop); any config. */
crest__store *open_pool(unsigned size, unsigned acquire_ms, unsigned queue_max);
crest__store *open_cfg(const crest__store_config *cfg);
crest__store_worker *worker_of(crest__store *s);
/* Ends a worker made by worker_of (its loop too, for a store on a loop). */
void worker_done(crest__store_worker *w);
/* Runs w's loop until *calls reaches want, at most ms; whether it did
 * (false at once for a worker without a loop). */
bool pump_until(crest__store_worker *w, const int *calls, int want, unsigned ms);

/* ---- sessions ---- */

/* What a query's callback saw. */
typedef struct done {
    int calls;
    crest__rows *rows;
    crest__dberr err;
} done;

void on_done(void *ud, crest__rows *rows, const crest__dberr *err);

/* The engine's thread pool, simulated: work runs on a thread of its own,
 * after on the test's thread once the test calls pool_finish (the loop). */
enum { POOL_RUN, POOL_REFUSE, POOL_CANCEL };

typedef struct pool_sim {
    int mode;
    int calls;
    bool pending, started;
    pthread_t th;
    void (*work)(void *);
    void (*after)(void *, bool);
    void *ud;
} pool_sim;

int pool_offload(void *engine_ud, void (*work)(void *), void (*after)(void *, bool), void *ud);
void pool_finish(pool_sim *ps);

/* A session in arena a (a request's own: another request's session never
 * shares it, as a read moved off the loop fills it from a pool thread);
 * blocking (a pool thread's) when w is NULL; ps: the offload hook, or NULL. */
crest__sess *sess_in(crest__arena *a, crest__store *s, crest__store_worker *w, uint64_t deadline_us, pool_sim *ps);
/* The same, counting the statements it runs in *statements (crest__sess_config's). */
crest__sess *sess_counted(crest__arena *a, crest__store *s, crest__store_worker *w, uint64_t deadline_us, pool_sim *ps,
                          uint64_t *statements);
crest__sess *sess_on(crest__store *s, crest__store_worker *w, uint64_t deadline_us, pool_sim *ps);
/* The worker a request's transactions and write unit run with: w, or none
 * (a pool thread's session) on a store whose sessions on a loop take no
 * transactions (write routes run off the loop there). */
static inline crest__store_worker *txn_worker(crest__store_worker *w) { return T.fx->on_loop ? NULL : w; }
/* Starts a statement on the session; how many times its callback ran before query returned
 * (for a store on a loop: after running the loop until it ran, at most 60 s). */
int start(crest__sess *ss, const char *sql, const crest__val *v, unsigned n, unsigned flags, done *d);
/* The same for a query made by the test (its lists, say). */
int start_q(crest__sess *ss, const crest__query *q, done *d);
/* Runs sql on the session: it must complete at once, and succeed. */
crest__rows *sess_ok(crest__sess *ss, const char *sql, const crest__val *v, unsigned n, unsigned flags);

/* ---- running ---- */

int t_setup(void **state);
int t_teardown(void **state);
/* A test on a fresh database of its own, named after it. */
#define CT(f) cmocka_unit_test_prestate_setup_teardown(f, t_setup, t_teardown, (void *)#f)
/* Runs the tests once per available store; the number that failed. */
int contract_run(const char *suite, const struct CMUnitTest *tests, size_t n);
/* The same for the store called only (tests of one store's own behaviour). */
int contract_run_store(const char *suite, const char *only, const struct CMUnitTest *tests, size_t n);

#endif
