/* writer.c — one writer at a time, and group commit.
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

#include <sqlite3.h>

#include "app_internal.h"
#include "../rest/rest_internal.h"

int crest__writer_init(crest_app *app)
{
    pthread_mutex_init(&app->write_lock, NULL);
    pthread_mutex_init(&app->sync_lock, NULL);
    pthread_cond_init(&app->sync_cond, NULL);
    app->wal_fd = -1;
    return 0;
}

void crest__writer_dispose(crest_app *app)
{
    crest__stmt_cache_free(&app->writer_cache);
    if (app->writer_db)
        sqlite3_close_v2(app->writer_db);
    app->writer_db = NULL;
    if (app->wal_fd >= 0)
        close(app->wal_fd);
    app->wal_fd = -1;
    pthread_cond_destroy(&app->sync_cond);
    pthread_mutex_destroy(&app->sync_lock);
    pthread_mutex_destroy(&app->write_lock);
}

void *crest__writer_begin(crest_app *app)
{
    pthread_mutex_lock(&app->write_lock);
    if (!app->writer_db) {
        void *db = NULL;
        if (crest__db_open(app->db_path, false, &db) != SQLITE_OK) {
            sqlite3_close_v2(db);
            pthread_mutex_unlock(&app->write_lock);
            return NULL;
        }
        /* full: NORMAL plus the group fsync in crest__writer_durable. */
        sqlite3_exec(db, "PRAGMA synchronous=NORMAL; PRAGMA cache_size=-2048", NULL, NULL, NULL);
        app->writer_db = db;
    }
    return app->writer_db;
}

void crest__writer_end(crest_app *app)
{
    pthread_mutex_unlock(&app->write_lock);
}

/* fdatasync of the WAL; reopened when SQLite made a new file. */
static int wal_sync(crest_app *app)
{
    char path[4096];
    snprintf(path, sizeof path, "%s-wal", app->db_path);
    struct stat a, b;
    if (app->wal_fd >= 0 && (stat(path, &a) != 0 || fstat(app->wal_fd, &b) != 0 || a.st_ino != b.st_ino ||
                             a.st_dev != b.st_dev)) {
        close(app->wal_fd);
        app->wal_fd = -1;
    }
    if (app->wal_fd < 0)
        app->wal_fd = open(path, O_RDONLY | O_CLOEXEC);
    if (app->wal_fd < 0)
        return errno == ENOENT ? 0 : -1; /* no WAL: everything was checkpointed (and synced) */
    int rc;
    do
        rc = fdatasync(app->wal_fd);
    while (rc != 0 && errno == EINTR);
    return rc;
}

int crest__writer_durable(crest_app *app)
{
    if (app->durability_normal)
        return 0;
    int rc = 0;
    pthread_mutex_lock(&app->sync_lock);
    uint64_t mine = ++app->commit_seq;
    while (app->synced_seq < mine) {
        if (app->syncing) {
            pthread_cond_wait(&app->sync_cond, &app->sync_lock);
            continue;
        }
        /* Lead a sync: it covers every commit counted so far. */
        app->syncing = true;
        uint64_t target = app->commit_seq;
        pthread_mutex_unlock(&app->sync_lock);
        rc = wal_sync(app);
        pthread_mutex_lock(&app->sync_lock);
        app->syncing = false;
        if (rc == 0)
            app->synced_seq = target;
        pthread_cond_broadcast(&app->sync_cond);
        if (rc)
            break;
    }
    pthread_mutex_unlock(&app->sync_lock);
    return rc;
}
