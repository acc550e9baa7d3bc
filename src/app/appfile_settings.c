/* appfile_settings.c — the app file's settings: database, listen, limits,
 * OpenAPI info, auth (JWT and API keys), TLS, CORS, rate limits, compression.
 *
 * compression: gzip of answers (src/app/compress.c), on by default.
 *   compression: off                          never gzip
 *   compression: {min_bytes: 1024, level: 1}  bodies of at least min_bytes
 *     (a size: 1024, 2KiB) go gzipped to clients whose Accept-Encoding
 *     allows it, at zlib level 1 (fastest) .. 9; both keys optional. */
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

#include "../json/json_internal.h"
#include "app_internal.h"
#include "appfile.h"

/* The `limits:` keys, in the order error messages list them: each names its
 * field of crest_limits, how it is written and, for counts, its range. */
enum { LIM_SIZE, LIM_COUNT, LIM_DURATION };
static const struct limit_key {
    const char *name;
    int kind;        /* LIM_SIZE: "8KiB" into a size_t, at least 64 bytes;
                        LIM_COUNT: a whole number in [lo, hi] into an unsigned;
                        LIM_DURATION: "10s" into unsigned milliseconds, more than 0 */
    size_t off;      /* offsetof(crest_limits, <field>) */
    int64_t lo, hi;
} limit_keys[] = {
/* The field's type is checked at compile time: _Generic has no match for
 * any other type, so a field that changes type stops the build. */
#define SIZE_KEY(f) {#f, LIM_SIZE, offsetof(crest_limits, f) + 0 * sizeof(_Generic(((crest_limits *)0)->f, size_t: 1)), 0, 0}
#define COUNT_KEY(f, lo, hi)                                                                                  \
    {#f, LIM_COUNT, offsetof(crest_limits, f) + 0 * sizeof(_Generic(((crest_limits *)0)->f, unsigned: 1)), lo, hi}
#define MS_KEY(k, f) {k, LIM_DURATION, offsetof(crest_limits, f) + 0 * sizeof(_Generic(((crest_limits *)0)->f, unsigned: 1)), 0, 0}
    SIZE_KEY(request_line),
    SIZE_KEY(header_line),
    SIZE_KEY(headers_total),
    COUNT_KEY(headers_count, 1, 128),
    SIZE_KEY(body),
    COUNT_KEY(json_depth, 1, 1000),
    MS_KEY("header_timeout", header_timeout_ms),
    MS_KEY("body_timeout", body_timeout_ms),
    MS_KEY("body_total_timeout", body_total_timeout_ms),
    MS_KEY("keepalive_timeout", keepalive_timeout_ms),
    COUNT_KEY(max_connections, 1, 1000000),
    MS_KEY("drain_timeout", drain_timeout_ms),
    MS_KEY("statement_timeout", statement_timeout_ms),
    SIZE_KEY(response),
    SIZE_KEY(output_buffer),
#undef SIZE_KEY
#undef COUNT_KEY
#undef MS_KEY
};

static int load_limits(crest__loader *L, const ynode *m)
{
    const char *keys[CREST_ARRAY_LEN(limit_keys) + 1];
    for (size_t i = 0; i < CREST_ARRAY_LEN(limit_keys); i++)
        keys[i] = limit_keys[i].name;
    keys[CREST_ARRAY_LEN(limit_keys)] = NULL;
    if (crest__af_want_map(L, m, "limits") || crest__af_check_keys(L, m, "limits", keys))
        return CREST_ECONFIG;
    char *lim = (char *)&L->app->limits;
    for (size_t i = 0; i < m->n; i++) {
        const char *k = m->kids[2 * i]->str;
        const ynode *v = m->kids[2 * i + 1];
        const struct limit_key *lk = NULL;
        for (size_t j = 0; j < CREST_ARRAY_LEN(limit_keys) && !lk; j++)
            if (!strcmp(k, limit_keys[j].name))
                lk = &limit_keys[j];
        if (!lk) /* crest__af_check_keys refused it already */
            return CREST_ECONFIG;
        char where[64];
        snprintf(where, sizeof where, "limits.%s", k);
        int rc;
        if (lk->kind == LIM_SIZE) {
            size_t sz = 0;
            if ((rc = crest__af_get_size(L, v, where, &sz)))
                return rc;
            if (sz < 64)
                return crest__af_bad(L, v, "%s: must be at least 64 bytes", where);
            memcpy(lim + lk->off, &sz, sizeof sz);
        } else if (lk->kind == LIM_COUNT) {
            int64_t x;
            if ((rc = crest__af_get_int(L, v, where, lk->lo, lk->hi, &x)))
                return rc;
            unsigned u = (unsigned)x;
            memcpy(lim + lk->off, &u, sizeof u);
        } else {
            unsigned ms;
            if ((rc = crest__af_get_duration(L, v, where, &ms)))
                return rc;
            if (ms == 0)
                return crest__af_bad(L, v, "%s: must be more than 0", where);
            memcpy(lim + lk->off, &ms, sizeof ms);
        }
    }
    return 0;
}


static int load_auth(crest__loader *L, const ynode *x)
{
    static const char *const keys[] = {"jwt", "api_keys_file", NULL};
    static const char *const jk[] = {"algorithms", "secret_env", "secret_file", "public_key_file", "audience",
                                     "issuer", "leeway", "permissions_claim", "max_token", NULL};
    if (crest__af_want_map(L, x, "auth") || crest__af_check_keys(L, x, "auth", keys))
        return CREST_ECONFIG;
    const ynode *kf = crest__ytree_get(x, "api_keys_file");
    if (kf) {
        /* "<id> <sha256 hex of the key> [perm,perm] [revoked]" per line; # comments. */
        if (crest__af_want_scalar(L, kf, "auth.api_keys_file"))
            return CREST_ECONFIG;
        FILE *f = fopen(kf->str, "r");
        if (!f)
            return crest__af_bad(L, kf, "auth.api_keys_file: cannot open %s: %s", kf->str, strerror(errno));
        char line[2048];
        int ln = 0, krc = 0;
        while (!krc && fgets(line, sizeof line, f)) {
            ln++;
            char *save = NULL, *id = strtok_r(line, " \t\r\n", &save);
            if (!id || id[0] == '#')
                continue;
            char *hash = strtok_r(NULL, " \t\r\n", &save), *perms = strtok_r(NULL, " \t\r\n", &save);
            char *flag = strtok_r(NULL, " \t\r\n", &save);
            bool revoked = false;
            if (perms && !strcmp(perms, "revoked") && !flag) {
                revoked = true;
                perms = NULL;
            } else if (flag && !strcmp(flag, "revoked")) {
                revoked = true;
            } else if (flag) {
                krc = crest__af_bad(L, kf, "auth.api_keys_file: %s line %d: unexpected '%s'", kf->str, ln, flag);
                break;
            }
            crest_error e2 = {0};
            if (crest_app_add_api_key(L->app, id, hash, perms, revoked, &e2))
                krc = crest__af_bad(L, kf, "auth.api_keys_file: %s line %d: %s", kf->str, ln, e2.msg);
        }
        fclose(f);
        if (krc)
            return krc;
    }
    const ynode *j = crest__ytree_get(x, "jwt");
    if (!j) {
        if (!kf)
            return crest__af_bad(L, x, "auth: configure jwt, api_keys_file or both");
        return 0;
    }
    if (crest__af_want_map(L, j, "auth.jwt") || crest__af_check_keys(L, j, "auth.jwt", jk))
        return CREST_ECONFIG;
    crest_jwt_config cfg = {0};
    const ynode *y;
    int rc;
    const char *const *algs = NULL;
    if (!(y = crest__ytree_get(j, "algorithms")))
        return crest__af_bad(L, j, "auth.jwt: pin the algorithms, as in algorithms: [HS256]");
    if ((rc = crest__af_get_names(L, y, "auth.jwt.algorithms", &algs)) || (rc = crest__af_conf_join(L, algs, &cfg.algorithms)))
        return rc;
    const ynode *env = crest__ytree_get(j, "secret_env"), *file = crest__ytree_get(j, "secret_file");
    const ynode *pub = crest__ytree_get(j, "public_key_file");
    if (pub && (env || file))
        return crest__af_bad(L, pub, "auth.jwt: public_key_file (RS256/ES256) or a secret (HS*), not both");
    if (pub)
        file = pub; /* read the same way; the algorithms say how it is used */
    if (!env == !file)
        return crest__af_bad(L, j, "auth.jwt: give the secret's source, secret_env (a variable's name) or secret_file "
                         "(never the secret itself), or public_key_file for RS256/ES256");
    char *secret = NULL;
    size_t slen = 0;
    if (env) {
        if (crest__af_want_scalar(L, env, "auth.jwt.secret_env"))
            return CREST_ECONFIG;
        const char *v = getenv(env->str);
        if (!v || !*v)
            return crest__af_bad(L, env, "auth.jwt.secret_env: the variable %s is not set", env->str);
        secret = strdup(v);
        slen = secret ? strlen(secret) : 0;
    } else {
        if (crest__af_want_scalar(L, file, "auth.jwt.secret_file"))
            return CREST_ECONFIG;
        FILE *f = fopen(file->str, "rb");
        if (!f)
            return crest__af_bad(L, file, "auth.jwt.%s: cannot open %s: %s", pub ? "public_key_file" : "secret_file", file->str,
                       strerror(errno));
        char buf[4097];
        slen = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        while (!pub && slen && (buf[slen - 1] == '\n' || buf[slen - 1] == '\r'))
            slen--; /* a PEM keeps its last newline */
        secret = malloc(slen + 1);
        if (secret)
            memcpy(secret, buf, slen);
        memset(buf, 0, sizeof buf);
    }
    if (!secret)
        return CREST_ENOMEM;
    cfg.secret = (const unsigned char *)secret;
    cfg.secret_len = slen;
    if ((y = crest__ytree_get(j, "audience")) && (rc = crest__af_get_string(L, y, "auth.jwt.audience", &cfg.audience)))
        goto out;
    if ((y = crest__ytree_get(j, "issuer")) && (rc = crest__af_get_string(L, y, "auth.jwt.issuer", &cfg.issuer)))
        goto out;
    if ((y = crest__ytree_get(j, "permissions_claim")) &&
        (rc = crest__af_get_string(L, y, "auth.jwt.permissions_claim", &cfg.permissions_claim)))
        goto out;
    int64_t n;
    if ((y = crest__ytree_get(j, "leeway"))) {
        if ((rc = crest__af_get_int(L, y, "auth.jwt.leeway", 0, 300, &n)))
            goto out;
        cfg.leeway_s = (unsigned)n;
    }
    if ((y = crest__ytree_get(j, "max_token"))) {
        if ((rc = crest__af_get_size(L, y, "auth.jwt.max_token", &cfg.max_token)))
            goto out;
    }
    crest_error e2 = {0};
    if (crest_app_set_jwt(L->app, &cfg, &e2)) {
        /* "auth.jwt.algorithms: ...": the key it names, else the jwt map. */
        const ynode *at = NULL;
        if (!strncmp(e2.msg, "auth.jwt.", 9)) {
            char k[40];
            snprintf(k, sizeof k, "%.*s", (int)strcspn(e2.msg + 9, ": "), e2.msg + 9);
            at = crest__ytree_get(j, k);
        }
        rc = crest__af_bad(L, at ? at : j, "%s", e2.msg);
    }
out:
    memset(secret, 0, slen);
    free(secret);
    return rc;
}

/* Everything but models, modules and endpoints, in the order the app needs
 * them (limits and auth before the endpoints that use them). */
int crest__af_load_settings(crest__loader *L, const ynode *root)
{
    crest_app *app = L->app;
    const ynode *x;
    const char *s;
    int rc;
    /* Settings a reload keeps until a restart: it says so when the file
     * changes one (reload.c), so it needs to know the file gave it. */
    static const char *const kept[] = {"database", "password_file", "pool", "listen", "workers", "metrics",
                                       "limits", "tls", "durability", NULL};
    for (size_t i = 0; kept[i]; i++)
        if ((x = crest__ytree_get(root, kept[i])) && crest__app_note_line(app, kept[i], x->line))
            return CREST_ENOMEM;
    if ((x = crest__ytree_get(root, "database"))) {
        if ((rc = crest__af_get_string(L, x, "database", &s)))
            return rc;
        if (crest__pg_is_conninfo(s) && crest__pg_has_password(s))
            return crest__af_bad(L, x,
                                 "database: the password must not be written in the app file (whoever reads the file "
                                 "reads it): give it in PGPASSWORD, a PGPASSFILE, or password_file:");
        if (crest_app_set_database(app, s))
            return crest__af_bad(L, x, "database: expected sqlite:PATH or a postgresql:// URI, found '%s'", s);
    }
    if ((x = crest__ytree_get(root, "password_file"))) {
        if ((rc = crest__af_get_string(L, x, "password_file", &s)))
            return rc;
        free(app->db_password_file);
        if (!(app->db_password_file = strdup(s)))
            return CREST_ENOMEM;
    }
    if ((x = crest__ytree_get(root, "pool"))) { /* {size: 4, acquire_timeout: 5s, queue: 512} */
        static const char *const pk[] = {"size", "acquire_timeout", "queue", NULL};
        const ynode *y;
        int64_t n;
        if (crest__af_want_map(L, x, "pool") || crest__af_check_keys(L, x, "pool", pk))
            return CREST_ECONFIG;
        if ((y = crest__ytree_get(x, "size"))) {
            if ((rc = crest__af_get_int(L, y, "pool.size", 1, 1000, &n)))
                return rc;
            app->pool_size = (unsigned)n;
        }
        if ((y = crest__ytree_get(x, "acquire_timeout")) &&
            (rc = crest__af_get_duration(L, y, "pool.acquire_timeout", &app->pool_acquire_ms)))
            return rc;
        if ((y = crest__ytree_get(x, "queue"))) {
            if ((rc = crest__af_get_int(L, y, "pool.queue", 1, 1000000, &n)))
                return rc;
            app->pool_queue = (unsigned)n;
        }
    }
    if ((x = crest__ytree_get(root, "listen"))) {
        if ((rc = crest__af_get_string(L, x, "listen", &s)))
            return rc;
        if (crest_app_set_listen(app, s))
            return crest__af_bad(L, x, "listen: expected HOST:PORT, found '%s'", s);
    }
    if ((x = crest__ytree_get(root, "workers"))) {
        int64_t n;
        if ((rc = crest__af_get_int(L, x, "workers", 0, 256, &n)))
            return rc;
        crest_app_set_workers(app, (int)n);
    }
    if ((x = crest__ytree_get(root, "metrics"))) { /* off | on | {permission: ...} */
        bool on = true;
        const char *perm = NULL;
        const ynode *y;
        if (x->kind == Y_MAP) {
            static const char *const mk[] = {"permission", NULL};
            if (crest__af_check_keys(L, x, "metrics", mk))
                return CREST_ECONFIG;
            if ((y = crest__ytree_get(x, "permission")) && (rc = crest__af_get_permission(L, y, "metrics.permission", &perm)))
                return rc;
        } else if (x->kind != Y_SCALAR || crest__parse_bool(x->str, strlen(x->str), &on)) {
            return crest__af_bad(L, x, "metrics: expected off, on or {permission: ...}");
        }
        if (crest_app_set_metrics(app, on, perm))
            return CREST_ENOMEM;
    }
    if ((x = crest__ytree_get(root, "compression"))) { /* off | on | {min_bytes, level} */
        bool on = true;
        size_t min = CREST__GZ_MIN;
        int64_t level = CREST__GZ_LEVEL;
        const ynode *y;
        if (x->kind == Y_MAP) {
            static const char *const ck[] = {"min_bytes", "level", NULL};
            if (crest__af_check_keys(L, x, "compression", ck))
                return CREST_ECONFIG;
            if ((y = crest__ytree_get(x, "min_bytes")) && (rc = crest__af_get_size(L, y, "compression.min_bytes", &min)))
                return rc;
            if ((y = crest__ytree_get(x, "level")) && (rc = crest__af_get_int(L, y, "compression.level", 1, 9, &level)))
                return rc;
        } else if (x->kind != Y_SCALAR || crest__parse_bool(x->str, strlen(x->str), &on)) {
            return crest__af_bad(L, x, "compression: expected off, on or {min_bytes: 1024, level: 1}");
        }
        if (crest_app_set_compression(app, on, min, (int)level))
            return CREST_EINVAL; /* the level was checked */
    }
    if ((x = crest__ytree_get(root, "pid_file"))) {
        if (crest__af_want_scalar(L, x, "pid_file"))
            return CREST_ECONFIG;
        if (!*x->str)
            return crest__af_bad(L, x, "pid_file: expected a file name");
        if (crest_app_set_pid_file(app, x->str))
            return CREST_ENOMEM;
    }
    if ((x = crest__ytree_get(root, "access_log"))) {
        bool on;
        if ((rc = crest__af_get_bool(L, x, "access_log", &on)))
            return rc;
        app->access_log = on;
    }
    const ynode *pfx = crest__ytree_get(root, "api_prefix"), *ver = crest__ytree_get(root, "api_version");
    if (pfx || ver) {
        const char *p = "";
        char buf[256];
        if (pfx && (rc = crest__af_get_string(L, pfx, "api_prefix", &p)))
            return rc;
        if (ver && (rc = crest__af_want_scalar(L, ver, "api_version")))
            return rc;
        /* Inmanta's /<prefix>/v<version>: "api" + 1 → "/api/v1". */
        const char *v = ver ? ver->str : NULL;
        if (v && (v[0] == 'v' || v[0] == 'V'))
            v++;
        int64_t vn;
        if (v && crest__parse_int(v, strlen(v), &vn))
            return crest__af_bad(L, ver, "api_version: expected a number such as 1, found '%s'", ver->str);
        snprintf(buf, sizeof buf, "%s%s%s%s", (p[0] && p[0] != '/') ? "/" : "", p, v ? "/v" : "", v ? v : "");
        for (const char *c = buf; *c; c++)
            if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '_' ||
                  *c == '-' || *c == '/' || *c == '.'))
                return crest__af_bad(L, pfx ? pfx : ver, "api_prefix: use letters, digits, '-', '_', '.' and '/'");
        if (crest_app_set_api_prefix(app, buf))
            return crest__af_bad(L, pfx ? pfx : ver, "api_prefix: bad prefix '%s'", buf);
    }
    if ((x = crest__ytree_get(root, "limits")) && (rc = load_limits(L, x)))
        return rc;
    if ((x = crest__ytree_get(root, "startup_sql"))) {
        if (crest__app_note_line(app, "startup_sql", x->line))
            return CREST_ENOMEM;
        crest__buf b;
        crest__buf_init(&b, 0);
        if (x->kind == Y_SCALAR) {
            crest__buf_appends(&b, x->str);
        } else if (x->kind == Y_SEQ) {
            for (size_t i = 0; i < x->n; i++) {
                if (crest__af_want_scalar(L, x->kids[i], "startup_sql")) {
                    crest__buf_dispose(&b);
                    return CREST_ECONFIG;
                }
                crest__buf_appendf(&b, "%s;\n", x->kids[i]->str);
            }
        } else {
            return crest__af_bad(L, x, "startup_sql: expected SQL text or a list of statements");
        }
        if (crest__buf_append(&b, "", 1)) {
            crest__buf_dispose(&b);
            return CREST_ENOMEM;
        }
        free(app->startup_sql);
        app->startup_sql = b.ptr;
    }
    if ((x = crest__ytree_get(root, "info"))) {
        static const char *const ik[] = {"title", "version", "description", NULL};
        if (crest__af_want_map(L, x, "info") || crest__af_check_keys(L, x, "info", ik))
            return CREST_ECONFIG;
        const char *t = NULL, *iv = NULL, *d = NULL;
        const ynode *y;
        if ((y = crest__ytree_get(x, "title")) && (rc = crest__af_get_string(L, y, "info.title", &t)))
            return rc;
        if ((y = crest__ytree_get(x, "version")) && (rc = crest__af_get_string(L, y, "info.version", &iv)))
            return rc;
        if ((y = crest__ytree_get(x, "description")) && (rc = crest__af_get_string(L, y, "info.description", &d)))
            return rc;
        if (crest_app_set_info(app, t, iv, d))
            return CREST_ENOMEM;
    }
    if ((x = crest__ytree_get(root, "servers"))) {
        if (x->kind != Y_SEQ)
            return crest__af_bad(L, x, "servers: expected a list of URLs (or {url, description})");
        for (size_t i = 0; i < x->n; i++) {
            const ynode *e = x->kids[i];
            const char *url = NULL, *d = NULL;
            if (e->kind == Y_SCALAR) {
                url = e->str;
            } else {
                static const char *const sk[] = {"url", "description", NULL};
                if (crest__af_want_map(L, e, "servers[]") || crest__af_check_keys(L, e, "servers[]", sk))
                    return CREST_ECONFIG;
                const ynode *y;
                if (!(y = crest__ytree_get(e, "url")) || (rc = crest__af_get_string(L, y, "servers[].url", &url)))
                    return y ? rc : crest__af_bad(L, e, "servers[]: needs a url");
                if ((y = crest__ytree_get(e, "description")) && (rc = crest__af_get_string(L, y, "servers[].description", &d)))
                    return rc;
            }
            if (!*url || crest_app_add_server(app, url, d))
                return crest__af_bad(L, e, "servers[]: expected a URL");
        }
    }
    if ((x = crest__ytree_get(root, "openapi"))) {
        if (crest__af_want_scalar(L, x, "openapi"))
            return CREST_ECONFIG;
        if (strcmp(x->str, "3.0") && strcmp(x->str, "3.1") && strcmp(x->str, "3.0.3") && strcmp(x->str, "3.1.0"))
            return crest__af_bad(L, x, "openapi: expected \"3.1\" or \"3.0\", found '%s'", x->str);
        crest_app_set_openapi_30(app, !strncmp(x->str, "3.0", 3));
    }
    if ((x = crest__ytree_get(root, "docs"))) {
        bool on;
        if ((rc = crest__af_get_bool(L, x, "docs", &on)))
            return rc;
        crest_app_set_docs(app, on);
    }
    if ((x = crest__ytree_get(root, "auth")) && (rc = load_auth(L, x)))
        return rc;
    if ((x = crest__ytree_get(root, "tls"))) {
        static const char *const tk[] = {"cert", "key", NULL};
        if (crest__af_want_map(L, x, "tls") || crest__af_check_keys(L, x, "tls", tk))
            return CREST_ECONFIG;
        const ynode *cert = crest__ytree_get(x, "cert"), *key = crest__ytree_get(x, "key");
        if (!cert || !key)
            return crest__af_bad(L, x, "tls: give cert (a PEM certificate chain) and key (its private key)");
        if (crest__af_want_scalar(L, cert, "tls.cert") || crest__af_want_scalar(L, key, "tls.key"))
            return CREST_ECONFIG;
        crest_error terr = {0};
        if (crest_app_set_tls(app, cert->str, key->str, &terr))
            return crest__af_bad(L, strstr(terr.msg, "tls.key") ? key : cert, "%s", terr.msg);
    }
    if ((x = crest__ytree_get(root, "rate_limit"))) {
        if (crest__af_want_scalar(L, x, "rate_limit"))
            return CREST_ECONFIG;
        if (crest_app_set_rate_limit(app, x->str))
            return crest__af_bad(L, x, "rate_limit: expected requests/period, as in 100/1m or 10/s, found '%s'", x->str);
    }
    if ((x = crest__ytree_get(root, "cors"))) {
        static const char *const ck[] = {"origins", "headers", "max_age", "credentials", NULL};
        if (crest__af_want_map(L, x, "cors") || crest__af_check_keys(L, x, "cors", ck))
            return CREST_ECONFIG;
        const ynode *y = crest__ytree_get(x, "origins");
        const char *const *origins;
        if (!y || y->kind != Y_SEQ || !y->n)
            return crest__af_bad(L, y ? y : x, "cors.origins: a list of allowed origins (https://app.example.com)");
        if ((rc = crest__af_get_names(L, y, "cors.origins", &origins)))
            return rc;
        for (size_t i = 0; origins[i]; i++)
            if ((strncmp(origins[i], "http://", 7) && strncmp(origins[i], "https://", 8) && strcmp(origins[i], "*")) ||
                crest_app_add_cors_origin(app, origins[i]))
                return crest__af_bad(L, y->kids[i], "cors.origins: '%s' is not an origin (scheme://host[:port], or *)",
                                     origins[i]);
        const char *headers = NULL;
        unsigned max_age = 600;
        bool cred = false;
        if ((y = crest__ytree_get(x, "headers"))) {
            const char *const *hs;
            if ((rc = crest__af_get_names(L, y, "cors.headers", &hs)) || (rc = crest__af_conf_join(L, hs, &headers)))
                return rc;
        }
        if ((y = crest__ytree_get(x, "max_age"))) {
            int64_t secs;
            if (y->kind == Y_SCALAR && !crest__parse_int(y->str, y->len, &secs) && secs >= 0 && secs <= 86400) {
                max_age = (unsigned)secs; /* a bare number is seconds here */
            } else {
                if ((rc = crest__af_get_duration(L, y, "cors.max_age", &max_age)))
                    return rc;
                max_age /= 1000;
            }
        }
        if ((y = crest__ytree_get(x, "credentials")) && (rc = crest__af_get_bool(L, y, "cors.credentials", &cred)))
            return rc;
        for (size_t i = 0; cred && origins[i]; i++)
            if (!strcmp(origins[i], "*"))
                return crest__af_bad(L, y, "cors: credentials cannot go with the origin *");
        if (crest_app_set_cors(app, headers, max_age, cred))
            return CREST_ENOMEM;
    }
    if ((x = crest__ytree_get(root, "durability"))) {
        if (crest__af_want_scalar(L, x, "durability"))
            return CREST_ECONFIG;
        if (strcmp(x->str, "full") && strcmp(x->str, "normal"))
            return crest__af_bad(L, x, "durability: expected full or normal, found '%s'", x->str);
        app->durability_normal = !strcmp(x->str, "normal");
    }
    return 0;
}
