/* sqlite_internal.h — what the files of the SQLite store share: the store,
 * its connections and sessions. sqlite.c runs statements and sessions,
 * sqlite_db.c opens connections (and crest's sum/avg), sqlite_cache.c keeps
 * each connection's prepared statements, sqlite_writer.c is the single
 * writer with group commit, sqlite_error.c classifies failures. Internal. */
#ifndef CREST_SQLITE_INTERNAL_H
#define CREST_SQLITE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include <sqlite3.h>

#include "store.h"

typedef struct sq_cache sq_cache; /* sqlite_cache.c */

/* A connection and its statement cache. */
struct crest__conn {
    sqlite3 *db;
    sq_cache *cache;
};

typedef struct sq_store {
    crest__store base;
    uint64_t gen;                 /* tells stores at a reused address apart (thread-local connections) */
    /* pool threads' connections, one per thread, closed with the store */
    pthread_mutex_t pool_lock;
    crest__conn **pool;
    unsigned npool;
    /* sqlite_writer.c: one writer at a time, group commit */
    pthread_mutex_t write_lock;
    crest__conn *writer;          /* used under write_lock */
    pthread_mutex_t sync_lock;
    pthread_cond_t sync_cond;
    uint64_t commit_seq, synced_seq;
    bool syncing;
    int wal_fd;
} sq_store;

struct crest__store_worker {
    sq_store *s;
    crest__conn conn;
    sqlite3_stmt *data_version;   /* PRAGMA data_version, prepared at its first use */
};

/* Where a session's statements run. */
typedef enum { SQ_NONE, SQ_WORKER, SQ_POOL, SQ_WRITER } sq_where;

struct crest__sess {
    sq_store *s;
    crest__sess_config cfg;
    crest__conn *conn;            /* NULL until the first statement */
    sq_where where;
    sqlite3 *hooked;              /* the connection whose progress handler serves this session */
    unsigned budget;              /* on the loop: progress calls (1000 steps each) left before a read
                                     moves off it (0: no budget) */
    bool over_budget;             /* the progress handler stopped a read for its budget */
    bool moved;                   /* a read of this session went off the loop: its next reads go at once */
    bool timed_out;
    bool in_txn;
    atomic_bool cancelled;        /* cancel(): the running statement stops at its next progress call */
};

/* sqlite_db.c: opens a connection set up as every one of crest's is; an
 * SQLite code; *out is the caller's to close even on failure. */
int crest__sq_open_db(const char *path, bool create, sqlite3 **out);
/* Sets synchronous and the page cache of a serving connection. */
void crest__sq_tune(sqlite3 *db, bool durability_normal, int cache_kib);

/* sqlite_cache.c: the prepared statement for sql (cached on c unless
 * nocache); NULL with *rc on failure. Release it with crest__sq_cache_done. */
sqlite3_stmt *crest__sq_cache_get(crest__conn *c, const char *sql, size_t len, bool nocache, int *rc);
void crest__sq_cache_done(crest__conn *c, sqlite3_stmt *st, bool nocache);
void crest__sq_cache_free(crest__conn *c);
void crest__sq_bind(sqlite3_stmt *st, int i, const crest__val *v);

/* sqlite_writer.c */
void crest__sq_writer_init(sq_store *s);
void crest__sq_writer_dispose(sq_store *s);
/* Takes the write lock; returns the writer (NULL on failure, lock not held). */
crest__conn *crest__sq_writer_begin(sq_store *s);
void crest__sq_writer_end(sq_store *s);
/* After a commit made under the lock (and the lock released): returns once
 * that commit is on disk (durability full), sharing fsyncs between writers. */
int crest__sq_writer_durable(sq_store *s);

#endif
