/* sqlite_writer.c — the SQLite store's write policy: one writer at a time,
 * and group commit.
 *
 * REST writes run on the thread pool, one at a time, on the app's writer
 * connection (so writers never fight over SQLite's lock, whose busy handler
 * backs off by sleeping). With `durability: full` that connection commits
 * with synchronous=NORMAL — no fsync in COMMIT — and a write is acknowledged
 * only after an fdatasync of the WAL file that started after its commit:
 * one fsync covers every commit made while the previous one ran (group
 * commit), instead of one fsync per request. The WAL holds every committed
 * frame until a checkpoint, and checkpoints sync the WAL before copying, so
 * a synced WAL is as durable as synchronous=FULL. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sqlite_internal.h"

void crest__sq_writer_init(sq_store *s)
{
    pthread_mutex_init(&s->write_lock, NULL);
    pthread_mutex_init(&s->sync_lock, NULL);
    pthread_cond_init(&s->sync_cond, NULL);
    s->wal_fd = -1;
}

void crest__sq_writer_dispose(sq_store *s)
{
    if (s->writer) {
        crest__sq_cache_free(s->writer);
        sqlite3_close_v2(s->writer->db);
        free(s->writer);
    }
    s->writer = NULL;
    if (s->wal_fd >= 0)
        close(s->wal_fd);
    s->wal_fd = -1;
    pthread_cond_destroy(&s->sync_cond);
    pthread_mutex_destroy(&s->sync_lock);
    pthread_mutex_destroy(&s->write_lock);
}

crest__conn *crest__sq_writer_begin(sq_store *s)
{
    pthread_mutex_lock(&s->write_lock);
    if (!s->writer) {
        sqlite3 *db = NULL;
        crest__conn *c = calloc(1, sizeof *c);
        if (!c || crest__sq_open_db(s->base.cfg.path, false, &db) != SQLITE_OK) {
            sqlite3_close_v2(db);
            free(c);
            pthread_mutex_unlock(&s->write_lock);
            return NULL;
        }
        /* full: NORMAL plus the group fsync in crest__sq_writer_durable. */
        crest__sq_tune(db, true, 2048);
        c->db = db;
        s->writer = c;
    }
    return s->writer;
}

void crest__sq_writer_end(sq_store *s)
{
    pthread_mutex_unlock(&s->write_lock);
}

/* fdatasync of the WAL; reopened when SQLite made a new file. */
static int wal_sync(sq_store *s)
{
    char path[4096];
    snprintf(path, sizeof path, "%s-wal", s->base.cfg.path);
    struct stat a, b;
    if (s->wal_fd >= 0 && (stat(path, &a) != 0 || fstat(s->wal_fd, &b) != 0 || a.st_ino != b.st_ino ||
                             a.st_dev != b.st_dev)) {
        close(s->wal_fd);
        s->wal_fd = -1;
    }
    if (s->wal_fd < 0)
        s->wal_fd = open(path, O_RDONLY | O_CLOEXEC);
    if (s->wal_fd < 0)
        return errno == ENOENT ? 0 : -1; /* no WAL: everything was checkpointed (and synced) */
    int rc;
    do
        rc = fdatasync(s->wal_fd);
    while (rc != 0 && errno == EINTR);
    return rc;
}

int crest__sq_writer_durable(sq_store *s)
{
    if (s->base.cfg.durability_normal)
        return 0;
    int rc = 0;
    pthread_mutex_lock(&s->sync_lock);
    uint64_t mine = ++s->commit_seq;
    while (s->synced_seq < mine) {
        if (s->syncing) {
            pthread_cond_wait(&s->sync_cond, &s->sync_lock);
            continue;
        }
        /* Lead a sync: it covers every commit counted so far. */
        s->syncing = true;
        uint64_t target = s->commit_seq;
        pthread_mutex_unlock(&s->sync_lock);
        rc = wal_sync(s);
        pthread_mutex_lock(&s->sync_lock);
        s->syncing = false;
        if (rc == 0)
            s->synced_seq = target;
        pthread_cond_broadcast(&s->sync_cond);
        if (rc)
            break;
    }
    pthread_mutex_unlock(&s->sync_lock);
    return rc;
}
