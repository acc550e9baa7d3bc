/* postgres_pq.c — loads libpq when the PostgreSQL store first needs it
 * (postgres_pq.h says why), and resolves the functions the store calls. */
#define CREST__PQ_IMPL
#include <dlfcn.h>
#include <pthread.h>
#include <stddef.h>

#include "postgres_pq.h"

crest__pq crest__pq_api;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static const char *load_error; /* NULL: loaded */

static void load(void)
{
    void *h = dlopen("libpq.so.5", RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        load_error = "PostgreSQL needs libpq (Debian: the libpq5 package), which cannot be loaded";
        return;
    }
#define CREST__PQ_RESOLVE(f)                                                                                \
    if (!load_error && !(*(void **)&crest__pq_api.f = dlsym(h, #f)))                                       \
        load_error = "the libpq found lacks " #f " (crest needs libpq 14 or later: pipeline mode)";
    CREST__PQ_FUNCS(CREST__PQ_RESOLVE)
#undef CREST__PQ_RESOLVE
}

int crest__pq_load(const char **msg)
{
    pthread_once(&once, load);
    if (load_error && msg)
        *msg = load_error;
    return load_error ? -1 : 0;
}
