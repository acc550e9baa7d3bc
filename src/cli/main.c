/* main.c — the `crest` command. It uses only the public API (like curl's
 * tool over libcurl), so everything it does a C program can do too. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crest/crest.h"

static void usage(FILE *f)
{
    fputs("usage: crest serve APP_FILE [--listen HOST:PORT] [--workers N] [--tls-cert FILE --tls-key FILE]\n"
          "       crest check APP_FILE\n"
          "       crest openapi APP_FILE [--openapi 3.1|3.0]\n"
          "       crest token APP_FILE --sub ID [--perm P]... [--ttl 1h]\n"
          "       crest --help | --version\n"
          "\n"
          "  serve   load the app file (YAML or JSON) and serve its API\n"
          "  check   validate the app file and its SQL; exit 0 when it is good, 1 when not\n"
          "  openapi print the app's OpenAPI document (JSON) without serving\n"
          "  token   print a signed token for development and tests (auth.jwt of the app file)\n"
          "\n"
          "environment: CREST_LISTEN (HOST:PORT) and CREST_DATABASE (sqlite:PATH) override the app file.\n",
          f);
}

static crest_app *load(const char *path)
{
    crest_app *app = crest_app_new();
    if (!app) {
        fputs("crest: out of memory\n", stderr);
        return NULL;
    }
    crest_error err = {0};
    if (crest_app_load_file(app, path, &err)) {
        crest_error_print(&err, "crest");
        crest_app_free(app);
        return NULL;
    }
    const char *db = getenv("CREST_DATABASE");
    if (db && *db && crest_app_set_database(app, db)) {
        fprintf(stderr, "crest: CREST_DATABASE: expected sqlite:PATH, found '%s'\n", db);
        crest_app_free(app);
        return NULL;
    }
    return app;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(cmd, "--version") || !strcmp(cmd, "version")) {
        printf("crest %s\n", CREST_VERSION);
        return 0;
    }
    if (strcmp(cmd, "serve") && strcmp(cmd, "check") && strcmp(cmd, "openapi") && strcmp(cmd, "token")) {
        fprintf(stderr, "crest: unknown command '%s'\n", cmd);
        usage(stderr);
        return 2;
    }
    if (argc < 3 || argv[2][0] == '-') {
        fprintf(stderr, "crest %s: an APP_FILE is required\n", cmd);
        usage(stderr);
        return 2;
    }
    crest_app *app = load(argv[2]);
    if (!app)
        return 1;
    int rc;
    if (!strcmp(cmd, "token")) {
        const char *sub = NULL;
        const char *perms[65];
        int np = 0;
        long ttl = 3600;
        for (int i = 3; i < argc; i++) {
            const char *a = argv[i];
            if (i + 1 >= argc) {
                fprintf(stderr, "crest token: %s needs a value\n", a);
                crest_app_free(app);
                return 2;
            }
            const char *v = argv[++i];
            if (!strcmp(a, "--sub")) {
                sub = v;
            } else if (!strcmp(a, "--perm") && np < 64) {
                perms[np++] = v;
            } else if (!strcmp(a, "--ttl")) {
                char *end;
                ttl = strtol(v, &end, 10);
                long mul = !strcmp(end, "h") ? 3600 : !strcmp(end, "m") ? 60 : !strcmp(end, "d") ? 86400
                           : (!*end || !strcmp(end, "s")) ? 1 : -1;
                if (end == v || ttl <= 0 || mul < 0 || ttl > 366L * 86400 / mul) {
                    fprintf(stderr, "crest token: --ttl: expected a duration such as 3600, 30m, 1h or 7d\n");
                    crest_app_free(app);
                    return 2;
                }
                ttl *= mul;
            } else {
                fprintf(stderr, "crest token: unexpected argument '%s'\n", a);
                crest_app_free(app);
                return 2;
            }
        }
        perms[np] = NULL;
        if (!sub) {
            fputs("crest token: --sub is required\n", stderr);
            crest_app_free(app);
            return 2;
        }
        char *tok = crest_app_token(app, sub, perms, ttl);
        if (!tok) {
            fputs("crest token: the app file has no auth.jwt with an HS algorithm\n", stderr);
            crest_app_free(app);
            return 1;
        }
        puts(tok);
        free(tok);
        crest_app_free(app);
        return 0;
    }
    if (!strcmp(cmd, "openapi")) {
        int v30 = -1;
        for (int i = 3; i < argc; i++) {
            if (!strcmp(argv[i], "--openapi") && i + 1 < argc && (!strcmp(argv[i + 1], "3.0") || !strcmp(argv[i + 1], "3.1"))) {
                v30 = !strcmp(argv[++i], "3.0");
            } else {
                fprintf(stderr, "crest openapi: unexpected argument '%s' (--openapi 3.1|3.0)\n", argv[i]);
                crest_app_free(app);
                return 2;
            }
        }
        if (v30 >= 0)
            crest_app_set_openapi_30(app, v30);
        size_t len;
        char *doc = crest_app_openapi(app, v30 >= 0 ? v30 : crest_app_openapi_30(app), &len);
        if (!doc) {
            fputs("crest openapi: out of memory\n", stderr);
            crest_app_free(app);
            return 1;
        }
        fwrite(doc, 1, len, stdout);
        fputc('\n', stdout);
        free(doc);
        crest_app_free(app);
        return 0;
    }
    if (!strcmp(cmd, "check")) {
        if (argc > 3) {
            fprintf(stderr, "crest check: unexpected argument '%s'\n", argv[3]);
            crest_app_free(app);
            return 2;
        }
        crest_error err = {0};
        rc = crest_app_check(app, &err);
        if (rc)
            crest_error_print(&err, "crest");
        else
            printf("%s: ok\n", argv[2]);
        rc = rc ? 1 : 0;
    } else {
        /* crest_app_main reads the flags after the app file. */
        argv[2] = "crest serve";
        rc = crest_app_main(app, argc - 2, argv + 2);
    }
    crest_app_free(app);
    return rc;
}
