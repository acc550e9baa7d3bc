/* auth.c — JWT bearer authentication and permission checks.
 *
 * A token is checked in this order: size cap, signature (libjwt, with the
 * app's secret), the algorithm against the pinned list (so `alg: none` and
 * algorithm confusion are refused even when a signature "verifies"), `exp`
 * (required), `nbf` and `iat` with the leeway, `iss` and `aud` when set, and
 * `sub` (required). The user gets the token's sub, its permissions claim
 * and every claim. Endpoints say who may call them; when auth is on, an
 * endpoint that says nothing is closed (deny by default).
 *
 * Verified tokens are remembered per worker (a 4-way set-associative cache
 * of the exact token text and its claims), so a client sending the same token
 * again skips the signature and the JSON parse. Only `exp` can turn a
 * verified token bad with time (nbf and iat only get better), so a hit
 * checks `exp` again; everything else a token says cannot change. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <time.h>

#include <jwt.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "auth.h"
#include "../json/json_internal.h"

static int unauthorized(crest_res *res, const char *why);

/* ---- the per-worker cache of verified tokens ---- */

/* 128 sets of 4: up to 512 tokens per worker; an entry is ~1 KB (the token
 * and its claims), allocated only when a token is verified. */
#define TOKEN_SETS 128
#define TOKEN_WAYS 4
#define TOKEN_CACHE_MAX 2048 /* longer tokens are verified every time */

typedef struct token_entry {
    uint64_t hash;
    char *text;               /* the whole token, malloc'd; NULL: empty slot */
    size_t len;
    int64_t exp;
    json_t *claims;           /* one reference held by the cache */
    uint64_t used;            /* the cache's clock when last found or stored */
} token_entry;

struct crest__token_cache {
    token_entry slot[TOKEN_SETS][TOKEN_WAYS];
    uint64_t clock;           /* a new token replaces its set's entry used least lately */
};

static void token_entry_clear(token_entry *e)
{
    free(e->text);
    json_decref(e->claims);
    memset(e, 0, sizeof *e);
}

void crest__token_cache_free(struct crest__token_cache *tc)
{
    if (!tc)
        return;
    for (unsigned i = 0; i < TOKEN_SETS; i++)
        for (unsigned k = 0; k < TOKEN_WAYS; k++)
            token_entry_clear(&tc->slot[i][k]);
    free(tc);
}

/* FNV-1a: collisions only cost a miss, the whole token is compared. Only
 * tokens whose signature verified get in, so a client cannot flood a set
 * without the secret. */
static uint64_t token_hash(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211u;
    return h;
}

/* The verified entry for this exact token, or NULL. Compared in constant
 * time, so timing tells nothing about a cached token's bytes. */
static token_entry *token_lookup(struct crest__token_cache *tc, const char *tok, size_t n, uint64_t h)
{
    unsigned set = (unsigned)(h % TOKEN_SETS);
    for (unsigned k = 0; k < TOKEN_WAYS; k++) {
        token_entry *e = &tc->slot[set][k];
        if (e->text && e->hash == h && e->len == n && CRYPTO_memcmp(e->text, tok, n) == 0) {
            e->used = ++tc->clock;
            return e;
        }
    }
    return NULL;
}

static void token_remember(struct crest__token_cache *tc, const char *tok, size_t n, uint64_t h, int64_t exp,
                           json_t *claims)
{
    unsigned set = (unsigned)(h % TOKEN_SETS);
    token_entry *e = &tc->slot[set][0];
    for (unsigned k = 1; k < TOKEN_WAYS && e->text; k++) /* an empty way, else the least used lately */
        if (!tc->slot[set][k].text || tc->slot[set][k].used < e->used)
            e = &tc->slot[set][k];
    char *text = malloc(n);
    if (!text)
        return;
    memcpy(text, tok, n);
    token_entry_clear(e);
    e->hash = h;
    e->text = text;
    e->len = n;
    e->exp = exp;
    e->claims = json_incref(claims);
    e->used = ++tc->clock;
}

/* An API key: its id, the SHA-256 of the key, its permissions. */
typedef struct apikey {
    char *id;
    unsigned char hash[32];
    char **perms;             /* NULL-terminated */
    bool revoked;
} apikey;

struct crest__auth {
    apikey *keys;
    unsigned nkeys;
    bool jwt;                 /* JWT is configured (else API keys only) */
    bool algs[JWT_ALG_TERM];
    unsigned char *secret;
    size_t secret_len;
    char *audience, *issuer, *perm_claim;
    int64_t leeway;           /* seconds, 0..300 */
    size_t max_token;
    jwt_alg_t sign_alg;       /* the first pinned one, for crest_app_token */
};

void crest__auth_free(crest__auth *a)
{
    if (!a)
        return;
    for (unsigned i = 0; i < a->nkeys; i++) {
        free(a->keys[i].id);
        for (char **p = a->keys[i].perms; p && *p; p++)
            free(*p);
        free(a->keys[i].perms);
    }
    free(a->keys);
    if (a->secret) {
        memset(a->secret, 0, a->secret_len);
        free(a->secret);
    }
    free(a->audience);
    free(a->issuer);
    free(a->perm_claim);
    free(a);
}

int crest_app_set_jwt(crest_app *app, const crest_jwt_config *cfg, crest_error *err)
{
    crest__app_made_in_c(app);
    if (!cfg || !cfg->algorithms)
        return crest__error_set(err, CREST_EINVAL, NULL, 0, "auth.jwt: pin the algorithms (HS256, HS384, HS512)");
    crest__auth *a = calloc(1, sizeof *a);
    if (!a)
        return CREST_ENOMEM;
    a->sign_alg = JWT_ALG_NONE;
    char *list = strdup(cfg->algorithms), *save = NULL;
    int rc = 0;
    bool hs = false, pk = false;
    for (char *t = list ? strtok_r(list, ", ", &save) : NULL; t && !rc; t = strtok_r(NULL, ", ", &save)) {
        jwt_alg_t alg = jwt_str_alg(t);
        bool is_hs = alg == JWT_ALG_HS256 || alg == JWT_ALG_HS384 || alg == JWT_ALG_HS512;
        bool is_pk = alg == JWT_ALG_RS256 || alg == JWT_ALG_ES256;
        if (!is_hs && !is_pk)
            rc = crest__error_set(err, CREST_EINVAL, NULL, 0,
                                  "auth.jwt.algorithms: '%s' is not supported (HS256, HS384, HS512, RS256, ES256)", t);
        else {
            a->algs[alg] = true;
            hs |= is_hs;
            pk |= is_pk;
            if (a->sign_alg == JWT_ALG_NONE)
                a->sign_alg = alg;
        }
    }
    free(list);
    if (!rc && a->sign_alg == JWT_ALG_NONE)
        rc = crest__error_set(err, CREST_EINVAL, NULL, 0, "auth.jwt.algorithms: name at least one algorithm");
    if (!rc && hs && pk) /* one key cannot serve both: that mix is how algorithm confusion works */
        rc = crest__error_set(err, CREST_EINVAL, NULL, 0,
                              "auth.jwt.algorithms: do not mix HS* with RS256/ES256 (one key cannot serve both)");
    if (!rc && pk && (!cfg->secret || !strstr((const char *)cfg->secret, "-----BEGIN PUBLIC KEY-----")))
        rc = crest__error_set(err, CREST_EINVAL, NULL, 0,
                              "auth.jwt: RS256/ES256 need public_key_file, a PEM public key");
    if (!rc && hs && (!cfg->secret || cfg->secret_len < 32))
        rc = crest__error_set(err, CREST_EINVAL, NULL, 0,
                              "auth.jwt: the secret is %zu bytes; HS algorithms need at least 32 random bytes",
                              cfg->secret ? cfg->secret_len : 0);
    if (!rc) {
        a->secret = calloc(1, cfg->secret_len + 1);
        a->audience = cfg->audience ? strdup(cfg->audience) : NULL;
        a->issuer = cfg->issuer ? strdup(cfg->issuer) : NULL;
        a->perm_claim = strdup(cfg->permissions_claim ? cfg->permissions_claim : "permissions");
        if (!a->secret || !a->perm_claim || (cfg->audience && !a->audience) || (cfg->issuer && !a->issuer))
            rc = CREST_ENOMEM;
        else {
            memcpy(a->secret, cfg->secret, cfg->secret_len);
            a->secret_len = cfg->secret_len;
        }
    }
    a->leeway = cfg->leeway_s > 300 ? 300 : cfg->leeway_s;
    a->max_token = cfg->max_token ? cfg->max_token : 8192;
    a->jwt = true;
    if (rc) {
        crest__auth_free(a);
        return rc;
    }
    if (app->auth) { /* keep API keys loaded before */
        a->keys = app->auth->keys;
        a->nkeys = app->auth->nkeys;
        app->auth->keys = NULL;
        app->auth->nkeys = 0;
    }
    crest__auth_free(app->auth);
    app->auth = a;
    return 0;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

int crest_app_add_api_key(crest_app *app, const char *id, const char *sha256_hex, const char *permissions, bool revoked,
                          crest_error *err)
{
    crest__app_made_in_c(app);
    if (!id || !*id || !sha256_hex || strlen(sha256_hex) != 64)
        return crest__error_set(err, CREST_EINVAL, NULL, 0, "API key %s: expected an id and 64 hex digits of SHA-256",
                                id ? id : "(null)");
    unsigned char h[32];
    for (int i = 0; i < 32; i++) {
        int hi = hexval(sha256_hex[2 * i]), lo = hexval(sha256_hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return crest__error_set(err, CREST_EINVAL, NULL, 0, "API key %s: the hash is not hex", id);
        h[i] = (unsigned char)(hi * 16 + lo);
    }
    if (!app->auth) {
        app->auth = calloc(1, sizeof *app->auth);
        if (!app->auth)
            return CREST_ENOMEM;
    }
    crest__auth *a = app->auth;
    apikey *k = realloc(a->keys, (a->nkeys + 1) * sizeof *k);
    if (!k)
        return CREST_ENOMEM;
    a->keys = k;
    k = &a->keys[a->nkeys];
    memset(k, 0, sizeof *k);
    memcpy(k->hash, h, 32);
    k->revoked = revoked;
    k->id = strdup(id);
    unsigned n = 0;
    for (const char *p = permissions; p && *p; p++)
        n += *p == ',';
    k->perms = calloc(n + 2, sizeof *k->perms);
    if (!k->id || !k->perms) {
        free(k->id);
        free(k->perms);
        return CREST_ENOMEM;
    }
    char *copy = permissions ? strdup(permissions) : NULL, *save = NULL;
    unsigned i = 0;
    for (char *t = copy ? strtok_r(copy, ",", &save) : NULL; t; t = strtok_r(NULL, ",", &save))
        if (*t && !(k->perms[i++] = strdup(t)))
            break;
    free(copy);
    a->nkeys++;
    return 0;
}

/* X-API-Key: compared by SHA-256, in constant time against every key. */
static int authenticate_key(crest_req *req, crest_res *res, const crest__auth *a, const char *key)
{
    unsigned char h[32];
    unsigned int hl = 0;
    if (strlen(key) > 1024 || !EVP_Digest(key, strlen(key), h, &hl, EVP_sha256(), NULL) || hl != 32)
        return unauthorized(res, "the API key is not valid");
    const apikey *found = NULL;
    for (unsigned i = 0; i < a->nkeys; i++)
        if (CRYPTO_memcmp(h, a->keys[i].hash, 32) == 0)
            found = &a->keys[i];
    if (!found)
        return unauthorized(res, "the API key is not valid");
    if (found->revoked)
        return unauthorized(res, "the API key was revoked");
    crest_user *u = crest__arena_calloc(req->arena, 1, sizeof *u);
    if (!u)
        return crest__res_fail(res, CREST__E_OUT_OF_MEMORY, NULL);
    u->id = found->id;
    u->permissions = (const char *const *)found->perms;
    u->claims = NULL;
    req->user = u;
    return 0;
}

char *crest_app_token(crest_app *app, const char *sub, const char *const *permissions, long ttl_s)
{
    crest__auth *a = app->auth;
    if (!a || !a->jwt || !sub || !(a->sign_alg == JWT_ALG_HS256 || a->sign_alg == JWT_ALG_HS384 ||
                                   a->sign_alg == JWT_ALG_HS512))
        return NULL;
    jwt_t *j = NULL;
    if (jwt_new(&j))
        return NULL;
    long now = (long)time(NULL);
    char *out = NULL;
    json_t *perms = json_array();
    for (const char *const *p = permissions; p && *p; p++)
        json_array_append_new(perms, json_string(*p));
    json_t *claims = json_pack("{s:s, s:I, s:I, s:o}", "sub", sub, "iat", (json_int_t)now, "exp",
                               (json_int_t)(now + ttl_s), a->perm_claim, perms);
    if (a->issuer && claims)
        json_object_set_new(claims, "iss", json_string(a->issuer));
    if (a->audience && claims)
        json_object_set_new(claims, "aud", json_string(a->audience));
    char *text = claims ? json_dumps(claims, JSON_COMPACT) : NULL;
    if (text && !jwt_add_grants_json(j, text) && !jwt_set_alg(j, a->sign_alg, a->secret, (int)a->secret_len))
        out = jwt_encode_str(j);
    free(text);
    json_decref(claims);
    jwt_free(j);
    return out;
}

/* ---- per request ---- */

static int unauthorized(crest_res *res, const char *why)
{
    crest_res_header(res, "WWW-Authenticate", "Bearer error=\"invalid_token\"");
    return crest__res_fail(res, CREST__E_UNAUTHORIZED, "%s", why);
}

/* A NumericDate claim (seconds, RFC 7519 §2: an integer or a real number):
 * 1 present, 0 absent, -1 not a number or a real beyond ±1e18 s. */
static int int_claim(json_t *claims, const char *name, int64_t *out)
{
    json_t *v = json_object_get(claims, name);
    if (!v)
        return 0;
    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return 1;
    }
    double r = json_is_real(v) ? json_real_value(v) : NAN;
    if (!(r > -1e18 && r < 1e18)) /* NaN too: no cast of a value int64_t cannot hold */
        return -1;
    *out = (int64_t)floor(r);
    return 1;
}

/* RFC 7515 §4.1.11: a JOSE header's `crit` lists extensions the recipient
 * must understand, or else reject the token. crest understands none, so a
 * header that has `crit` at all (even an empty or malformed one, which the
 * RFC forbids) is refused. A header that cannot be decoded is left to
 * libjwt, which refuses it. true when the token must be refused. */
static bool names_critical_extensions(crest_req *req, const char *tok, size_t n)
{
    const char *dot = memchr(tok, '.', n);
    if (!dot)
        return false;
    size_t hlen = (size_t)(dot - tok), jlen = 0;
    unsigned char *json = crest_req_alloc(req, hlen / 4 * 3 + 3);
    if (!json || crest__base64url_decode(tok, hlen, json, &jlen))
        return false;
    json_t *head = json_loadb((const char *)json, jlen, 0, NULL);
    bool crit = json_is_object(head) && json_object_get(head, "crit") != NULL;
    json_decref(head);
    return crit;
}

static void claims_free(void *p) { json_decref(p); }
static int make_user(crest_req *req, crest_res *res, const crest__auth *a, json_t *claims);

/* Authenticates the request's bearer token into req->user. 0, or -1 with a 401. */
static int authenticate(crest_req *req, crest_res *res, const crest__auth *a)
{
    const char *key = crest_req_header(req, "x-api-key");
    if (key && a->nkeys)
        return authenticate_key(req, res, a, key);
    if (!a->jwt)
        return unauthorized(res, key ? "the API key is not valid" : "this endpoint needs an API key (X-API-Key)");
    const char *h = crest_req_header(req, "authorization");
    if (!h)
        return unauthorized(res, "this endpoint needs a bearer token");
    if (strncasecmp(h, "Bearer ", 7) != 0)
        return unauthorized(res, "the Authorization header must be 'Bearer <token>'");
    const char *tok = h + 7;
    while (*tok == ' ')
        tok++;
    size_t n = strlen(tok);
    if (n == 0)
        return unauthorized(res, "the bearer token is empty");
    if (n > a->max_token)
        return unauthorized(res, "the bearer token is larger than the server accepts");
    int64_t now = (int64_t)time(NULL);
    crest__app_worker *aw = req->worker ? &req->worker->aw : NULL;
    if (aw && !aw->tokens && n <= TOKEN_CACHE_MAX)
        aw->tokens = calloc(1, sizeof *aw->tokens); /* NULL: no cache, still correct */
    uint64_t th = 0;
    if (aw && aw->tokens && n <= TOKEN_CACHE_MAX) {
        th = token_hash(tok, n);
        token_entry *e = token_lookup(aw->tokens, tok, n, th);
        if (e) {
            if (now - a->leeway > e->exp) { /* (exp + leeway could overflow) */
                token_entry_clear(e);
                return unauthorized(res, "the token has expired");
            }
            json_t *claims = json_incref(e->claims);
            if (crest__arena_defer(req->arena, claims_free, claims)) {
                json_decref(claims);
                return crest__res_fail(res, CREST__E_OUT_OF_MEMORY, NULL);
            }
            return make_user(req, res, a, claims);
        }
    }
    if (names_critical_extensions(req, tok, n))
        return unauthorized(res, "the token names critical extensions (crit) this server does not understand");
    jwt_t *j = NULL;
    if (jwt_decode(&j, tok, a->secret, (int)a->secret_len) != 0 || !j) {
        jwt_free(j);
        return unauthorized(res, "the token is malformed or its signature does not verify");
    }
    jwt_alg_t alg = jwt_get_alg(j);
    if (alg <= JWT_ALG_NONE || alg >= JWT_ALG_TERM || !a->algs[alg]) {
        jwt_free(j);
        return unauthorized(res, "the token's algorithm is not accepted");
    }
    jwt_free(j);
    /* The signature verifies: the claims are the payload segment, decoded
     * once here (libjwt's grants would be printed and parsed again). A name
     * given twice is refused rather than resolved one way or the other. */
    const char *p1 = memchr(tok, '.', n);
    const char *p2 = p1 ? memchr(p1 + 1, '.', n - (size_t)(p1 + 1 - tok)) : NULL;
    size_t plen = p2 ? (size_t)(p2 - p1 - 1) : 0, jlen = 0;
    unsigned char *json = p2 ? crest_req_alloc(req, plen / 4 * 3 + 3) : NULL;
    json_t *claims = NULL;
    if (json && !crest__base64url_decode(p1 + 1, plen, json, &jlen))
        claims = json_loadb((const char *)json, jlen, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(claims)) {
        json_decref(claims);
        return unauthorized(res, "the token's claims are not one JSON object with distinct names");
    }
    if (crest__arena_defer(req->arena, claims_free, claims)) {
        json_decref(claims);
        return crest__res_fail(res, CREST__E_OUT_OF_MEMORY, NULL);
    }
    int64_t exp = 0, nbf = 0, iat = 0;
    int e = int_claim(claims, "exp", &exp), nb = int_claim(claims, "nbf", &nbf), ia = int_claim(claims, "iat", &iat);
    if (e <= 0)
        return unauthorized(res, "the token has no valid exp claim");
    if (nb < 0 || ia < 0)
        return unauthorized(res, "the token's nbf or iat is not a number");
    if (now - a->leeway > exp)
        return unauthorized(res, "the token has expired");
    if (nb && now + a->leeway < nbf)
        return unauthorized(res, "the token is not valid yet (nbf)");
    if (ia && iat > now + a->leeway)
        return unauthorized(res, "the token was issued in the future (iat)");
    if (a->issuer) {
        const char *iss = json_string_value(json_object_get(claims, "iss"));
        if (!iss || strcmp(iss, a->issuer))
            return unauthorized(res, "the token's issuer is not accepted");
    }
    if (a->audience) {
        json_t *aud = json_object_get(claims, "aud");
        bool ok = json_is_string(aud) && !strcmp(json_string_value(aud), a->audience);
        size_t i;
        json_t *x;
        if (json_is_array(aud))
            json_array_foreach(aud, i, x) ok |= json_is_string(x) && !strcmp(json_string_value(x), a->audience);
        if (!ok)
            return unauthorized(res, "the token's audience is not this API");
    }
    if (make_user(req, res, a, claims))
        return -1;
    if (th)
        token_remember(aw->tokens, tok, n, th, exp, claims);
    return 0;
}

/* req->user from verified claims (kept alive by the request's arena). */
static int make_user(crest_req *req, crest_res *res, const crest__auth *a, json_t *claims)
{
    const char *sub = json_string_value(json_object_get(claims, "sub"));
    if (!sub || !*sub)
        return unauthorized(res, "the token has no sub claim");
    json_t *perms = json_object_get(claims, a->perm_claim);
    size_t np = json_is_array(perms) ? json_array_size(perms) : 0;
    const char **pv = crest__arena_calloc(req->arena, np + 1, sizeof *pv);
    crest_user *u = crest__arena_calloc(req->arena, 1, sizeof *u);
    if (!pv || !u)
        return crest__res_fail(res, CREST__E_OUT_OF_MEMORY, NULL);
    size_t k = 0;
    for (size_t i = 0; i < np; i++)
        if (json_is_string(json_array_get(perms, i)))
            pv[k++] = json_string_value(json_array_get(perms, i));
    u->id = sub;
    u->permissions = pv;
    u->claims = claims;
    req->user = u;
    return 0;
}

bool crest_user_can(const crest_user *user, const char *permission)
{
    if (!user || !permission)
        return false;
    for (const char *const *p = user->permissions; p && *p; p++)
        if (!strcmp(*p, permission))
            return true;
    return false;
}

/* Whether the user has one of "a,b,c". */
bool crest__user_has_one(const crest_user *u, const char *list)
{
    if (!u)
        return false;
    const char *p = list;
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        const char *e = p;
        while (*e && *e != ',')
            e++;
        size_t n = (size_t)(e - p);
        while (n && p[n - 1] == ' ')
            n--;
        for (const char *const *q = u->permissions; n && q && *q; q++)
            if (strlen(*q) == n && !memcmp(*q, p, n))
                return true;
        p = e;
    }
    return false;
}

int crest__auth_check(crest_req *req, crest_res *res)
{
    const crest__auth *a = req->app->auth;
    if (!a || !req->ep || crest__ep_skips_auth(req->ep))
        return 0;
    const char *need = req->ep->spec->permission;
    if (need && !strcmp(need, "public")) /* open; a credential given is still checked, and names the user */
        return crest_req_header(req, "authorization") || crest_req_header(req, "x-api-key")
                   ? authenticate(req, res, a)
                   : 0;
    if (authenticate(req, res, a))
        return -1;
    if (!need) /* deny by default: the endpoint declares nobody */
        return crest__res_fail(res, CREST__E_FORBIDDEN, NULL);
    if (!strcmp(need, "authenticated") || crest__user_has_one(req->user, need))
        return 0;
    return crest__res_fail(res, CREST__E_FORBIDDEN, "this needs the permission %s", need);
}
