/* main.c — the `crest` command. It uses only the public API (like curl's
 * tool over libcurl), so everything it does a C program can do too. */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crest/crest.h"

/* Each command's usage: `crest CMD --help` prints it on stdout. */
static const struct command {
    const char *name, *usage, *help;
} commands[] = {
    {"serve", "crest serve APP_FILE [--listen HOST:PORT] [--workers N] [--tls-cert FILE --tls-key FILE] [--wait-for-db] [--pid-file PATH]",
     "load the app file (YAML or JSON) and serve its API\n"
     "  --listen HOST:PORT  address to serve on (env CREST_LISTEN; default: the app file's, or 127.0.0.1:8080)\n"
     "  --workers N         event-loop threads, 1 to 256 (default: the app file's, or the number of cores)\n"
     "  --tls-cert FILE     serve HTTPS with this PEM certificate chain (with --tls-key)\n"
     "  --tls-key FILE      the certificate's private key (PEM)\n"
     "  --wait-for-db       wait for a PostgreSQL database that does not answer yet (a second between tries)\n"
     "  --pid-file PATH     write the server's pid there while it serves (default: the app file's pid_file)\n"
     "\nSIGHUP (or `crest reload`) re-reads the app file: a good one is served at once, requests in flight\n"
     "finishing on the old one; a bad one is logged and the old one goes on.\n"},
    {"reload", "crest reload APP_FILE | --pid-file PATH",
     "make a running `crest serve` re-read its app file: sends SIGHUP to the pid in the pid file (--pid-file,\n"
     "or the app file's pid_file: then the file must load, or nothing is sent); the server's log says whether\n"
     "the file was good. Exit 0 when sent, 1 when the pid file cannot be read or names no running process\n"
     "  --pid-file PATH     the pid file the server writes (crest serve --pid-file)\n"},
    {"check", "crest check APP_FILE",
     "validate the app file, its database and its SQL without serving (PostgreSQL: the app file only, without\n"
     "connecting); exit 0 when it is good, 1 when not\n"},
    {"openapi", "crest openapi APP_FILE [--openapi 3.1|3.0]",
     "print the app's OpenAPI document (JSON) without serving\n"
     "  --openapi VERSION   3.1 (the default, unless the app file says openapi: \"3.0\") or 3.0\n"},
    {"token", "crest token APP_FILE --sub ID [--perm P]... [--ttl 1h]",
     "print a signed token for development and tests (auth.jwt of the app file, an HS algorithm)\n"
     "  --sub ID            the user's id (the token's sub)\n"
     "  --perm P            a permission of the token; repeat for more\n"
     "  --ttl DURATION      lifetime: 3600, 30m, 1h or 7d (default 1h, at most 366d)\n"},
};

static void usage(FILE *f)
{
    fputs("usage:", f);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "%s%s\n", i ? "       " : " ", commands[i].usage);
    fputs("       crest --help | --version\n"
          "       crest COMMAND --help\n\n",
          f);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        const char *h = commands[i].help;
        fprintf(f, "  %-7s %.*s\n", commands[i].name, (int)strcspn(h, "\n"), h);
    }
    fputs("\nenvironment: CREST_LISTEN (HOST:PORT) and CREST_DATABASE (sqlite:PATH or a postgresql:// URI) override the app file.\n", f);
}

static void command_usage(FILE *f, const struct command *c)
{
    fprintf(f, "usage: %s\n\n%s", c->usage, c->help);
    if (!strcmp(c->name, "serve"))
        fputs("\nenvironment: CREST_LISTEN (HOST:PORT) and CREST_DATABASE (sqlite:PATH or a postgresql:// URI) override the app file.\n", f);
    else if (strcmp(c->name, "token"))
        fputs("\nenvironment: CREST_DATABASE (sqlite:PATH or a postgresql:// URI) overrides the app file's database.\n", f);
}

static bool is_help(const char *a) { return !strcmp(a, "--help") || !strcmp(a, "-h"); }

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
        fprintf(stderr, "crest: CREST_DATABASE: expected sqlite:PATH or a postgresql:// URI, found '%s'\n", db);
        crest_app_free(app);
        return NULL;
    }
    return app;
}

/* crest reload: SIGHUP to the pid of the pid file. 0 sent, 1 no server, 2 usage. */
static int reload(const struct command *c, int argc, char **argv)
{
    const char *file = NULL, *pid_file = NULL;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--pid-file")) {
            if (i + 1 >= argc) {
                fputs("crest reload: --pid-file needs a value\n", stderr);
                return 2;
            }
            pid_file = argv[++i];
        } else if (argv[i][0] == '-' || file) {
            fprintf(stderr, "crest reload: unexpected argument '%s'\n", argv[i]);
            command_usage(stderr, c);
            return 2;
        } else {
            file = argv[i];
        }
    }
    if (!file && !pid_file) {
        fputs("crest reload: give the APP_FILE (with a pid_file:) or --pid-file PATH\n", stderr);
        command_usage(stderr, c);
        return 2;
    }
    crest_app *app = NULL;
    if (!pid_file) {
        if (!(app = load(file)))
            return 1;
        if (!(pid_file = crest_app_pid_file(app))) {
            fprintf(stderr, "crest reload: %s names no pid_file; give --pid-file PATH\n", file);
            crest_app_free(app);
            return 2;
        }
    }
    int rc = 1;
    char buf[64];
    FILE *f = fopen(pid_file, "r");
    if (!f) {
        fprintf(stderr, "crest reload: cannot read the pid file %s: %s (is the server running?)\n", pid_file,
                strerror(errno));
        goto out;
    }
    char *end = NULL;
    long pid = fgets(buf, sizeof buf, f) ? strtol(buf, &end, 10) : 0;
    fclose(f);
    if (pid <= 1 || pid > INT_MAX || !end || (*end && *end != '\n')) { /* (never kill(-1) or init) */
        fprintf(stderr, "crest reload: the pid file %s does not hold a process id\n", pid_file);
        goto out;
    }
    if (kill((pid_t)pid, SIGHUP)) {
        if (errno == ESRCH)
            fprintf(stderr, "crest reload: no process %ld (from %s): the server is not running (a stale pid file?)\n",
                    pid, pid_file);
        else
            fprintf(stderr, "crest reload: cannot signal process %ld (from %s): %s\n", pid, pid_file, strerror(errno));
        goto out;
    }
    printf("crest reload: sent SIGHUP to %ld; the server's log says whether the app file was good\n", pid);
    rc = 0;
out:
    crest_app_free(app);
    return rc;
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
    const struct command *c = NULL;
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(cmd, commands[i].name))
            c = &commands[i];
    if (!c) {
        fprintf(stderr, "crest: unknown command '%s'\n", cmd);
        usage(stderr);
        return 2;
    }
    /* `crest serve --help`, `crest token app.yaml --help`: the command's own usage. */
    for (int i = 2; i < argc; i++)
        if (is_help(argv[i])) {
            command_usage(stdout, c);
            return 0;
        }
    if (!strcmp(c->name, "reload"))
        return reload(c, argc, argv);
    if (argc < 3 || argv[2][0] == '-') {
        fprintf(stderr, "crest %s: an APP_FILE is required\n", cmd);
        command_usage(stderr, c);
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
            if (strcmp(argv[i], "--openapi")) {
                fprintf(stderr, "crest openapi: unexpected argument '%s'\n", argv[i]);
                command_usage(stderr, c);
                crest_app_free(app);
                return 2;
            }
            if (i + 1 >= argc || (strcmp(argv[i + 1], "3.0") && strcmp(argv[i + 1], "3.1"))) {
                if (i + 1 >= argc)
                    fputs("crest openapi: --openapi needs a version: 3.1 (the default) or 3.0\n", stderr);
                else
                    fprintf(stderr, "crest openapi: --openapi: unknown version '%s'; crest writes OpenAPI 3.1 (the "
                                    "default) or 3.0\n", argv[i + 1]);
                crest_app_free(app);
                return 2;
            }
            v30 = !strcmp(argv[++i], "3.0");
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
