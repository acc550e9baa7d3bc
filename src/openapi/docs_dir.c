/* docs_dir.c — where the docs page's files (swagger-ui-dist's browser files)
 * are on disk: the CREST_SWAGGER_UI environment variable, else the folder an
 * install puts them in (found from the running program or the shared library,
 * so a relocated prefix still works), else the build folder of an uninstalled
 * build, else the configured install folder. Only the lookup lives here; the
 * files are read and served by openapi.c. */
#define _GNU_SOURCE /* dladdr */
#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "openapi.h"

/* Set by CMakeLists.txt; these defaults only keep the file compilable alone. */
#ifndef CREST_SWAGGER_UI_DIR /* the build folder's copy (scripts/npm.sh) */
#define CREST_SWAGGER_UI_DIR "swagger-ui"
#endif
#ifndef CREST_DOCS_UI_INSTALLED /* the configured install folder, absolute */
#define CREST_DOCS_UI_INSTALLED "/usr/local/share/crest/swagger-ui"
#endif
#ifndef CREST_DOCS_UI_FROM_BINDIR /* the install folder, relative to the installed `crest` */
#define CREST_DOCS_UI_FROM_BINDIR "../share/crest/swagger-ui"
#endif
#ifndef CREST_DOCS_UI_FROM_LIBDIR /* the install folder, relative to the installed libcrest.so */
#define CREST_DOCS_UI_FROM_LIBDIR "../share/crest/swagger-ui"
#endif

/* The file every copy has; a folder without it is not a copy. */
#define MARK_FILE "swagger-ui-bundle.js"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static char found[PATH_MAX]; /* written once, under lock, then only read */
static bool have;

/* Whether dir holds the files; if so, copies it into found. */
static bool try_dir(const char *dir)
{
    char mark[PATH_MAX];
    int n = snprintf(mark, sizeof mark, "%s/" MARK_FILE, dir);
    if (n < 0 || (size_t)n >= sizeof mark || access(mark, R_OK) != 0)
        return false;
    memcpy(found, dir, strlen(dir) + 1); /* fits: shorter than mark */
    return true;
}

/* rel (a path relative to the folder of file) made absolute, then tried. */
static bool try_next_to(const char *file, const char *rel)
{
    const char *slash = strrchr(file, '/');
    if (!slash || file[0] != '/')
        return false;
    char dir[PATH_MAX];
    int n = snprintf(dir, sizeof dir, "%.*s/%s", (int)(slash - file), file, rel);
    return n > 0 && (size_t)n < sizeof dir && try_dir(dir);
}

static bool lookup(void)
{
    const char *env = getenv("CREST_SWAGGER_UI");
    if (env && *env) /* an explicit choice: nothing else is tried */
        return try_dir(env);

    /* An installed `crest` (or any program installed next to the files). */
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = 0;
        if (try_next_to(exe, CREST_DOCS_UI_FROM_BINDIR))
            return true;
    }
    /* A program linked with an installed libcrest.so, wherever the prefix went. */
    Dl_info info;
    if (dladdr((void *)crest__docs_ui_dir, &info) && info.dli_fname &&
        try_next_to(info.dli_fname, CREST_DOCS_UI_FROM_LIBDIR))
        return true;
    /* An uninstalled build, then the install folder it was configured with. */
    return try_dir(CREST_SWAGGER_UI_DIR) || try_dir(CREST_DOCS_UI_INSTALLED);
}

const char *crest__docs_ui_dir(void)
{
    pthread_mutex_lock(&lock);
    /* Only a success is kept: files installed while the server runs are
     * found at the next request. */
    if (!have)
        have = lookup();
    const char *dir = have ? found : NULL;
    pthread_mutex_unlock(&lock);
    return dir;
}

const char *crest__docs_ui_missing(void)
{
    const char *env = getenv("CREST_SWAGGER_UI");
    if (env && *env) /* the folder is not echoed: it is the server's business */
        return "the docs page's files are not where CREST_SWAGGER_UI says (no swagger-ui-bundle.js there): "
               "point it at a folder holding swagger-ui-dist's files, or unset it";
    return "the docs page's files (swagger-ui-dist) are not installed: install npm (Debian: apt-get install "
           "nodejs npm) and build crest again, or run scripts/npm.sh BUILD_DIR (then `make install` again if "
           "crest is installed); or set CREST_SWAGGER_UI to a folder holding swagger-ui-dist's files";
}
