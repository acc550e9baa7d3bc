/* fuzz_appfile.c — bytes into the app file loader (YAML or JSON, from
 * memory: crest_app_load_string). Loading only records the database path and
 * never opens it. An app that loads is then checked the way `crest check`
 * does, but against an in-memory SQLite database and without its
 * startup_sql, so no input can create or change a file or run SQL for long
 * (endpoint SQL is only prepared, never stepped). No server is started. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/app_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    crest_app *app = crest_app_new();
    if (!app)
        abort();
    crest_error err;
    memset(&err, 0, sizeof err);
    int rc = crest_app_load_string(app, "fuzz.yaml", (const char *)data, size, &err);
    if (rc) {
        /* A refusal always says where and why. */
        if (rc != CREST_ECONFIG || !err.msg[0]) {
            fprintf(stderr, "fuzz_appfile: load failed (%d) without a message\n", rc);
            abort();
        }
    } else {
        free(app->startup_sql);
        app->startup_sql = NULL;
        if (crest_app_set_database(app, ":memory:"))
            abort();
        memset(&err, 0, sizeof err);
        crest_app_check(app, &err);
        /* The limits the file set are within what the loader allows. */
        const crest_limits *L = crest_app_limits(app);
        if (L->headers_count < 1 || L->headers_count > 128 || L->json_depth < 1 || L->json_depth > 1000 ||
            L->request_line < 64 || L->body < 64) {
            fprintf(stderr, "fuzz_appfile: limits out of range after load\n");
            abort();
        }
    }
    crest_app_free(app);
    return 0;
}
