/* fuzz_token.c — bytes as a bearer token (and as a whole Authorization
 * header) against an app with JWT auth, through the loopback connection:
 * the token checks (size, signature, algorithm, claims) must answer 200,
 * 401 or 403 and never crash or leak. A quarter of the inputs are claims
 * instead: the bytes become the payload of a token signed with the app's
 * secret, so the checks after the signature (payload decoding, exp, nbf,
 * iat, aud, sub, permissions, the token cache) see arbitrary claims too. */
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crest/crest.h"
#include "http/loopback.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int h_me(crest_req *req, crest_res *res, void *ud)
{
    (void)ud;
    const crest_user *u = crest_req_user(req);
    crest_json *w = crest_res_json(res);
    crest_json_object_begin(w);
    crest_json_key(w, "id");
    crest_json_str(w, u ? u->id : NULL);
    crest_json_object_end(w);
    return 0;
}

static const crest_endpoint me = {.method = CREST_GET, .path = "/me", .handler = h_me,
                                  .permission = "authenticated"};
static const crest_endpoint admin = {.method = CREST_GET, .path = "/admin", .handler = h_me,
                                     .permission = "admin,root"};
static crest_app *app;
static crest__loopback *lb;
static const char secret[] = "0123456789abcdef0123456789abcdef-fuzz";

/* base64url of in[0..n) at out (room for n * 4 / 3 + 4), no padding; returns its length. */
static size_t b64url(const unsigned char *in, size_t n, char *out)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0) |
                     (i + 2 < n ? in[i + 2] : 0);
        out[o++] = a[v >> 18];
        out[o++] = a[(v >> 12) & 63];
        if (i + 1 < n)
            out[o++] = a[(v >> 6) & 63];
        if (i + 2 < n)
            out[o++] = a[v & 63];
    }
    return o;
}

/* An HS256 token whose payload is claims[0..n), signed with the app's secret;
 * malloc'd, NUL-terminated, or NULL. */
static char *signed_token(const uint8_t *claims, size_t n)
{
    static const char head[] = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."; /* {"alg":"HS256","typ":"JWT"} */
    char *t = malloc(sizeof head + n * 4 / 3 + 4 + 1 + 48);
    if (!t)
        return NULL;
    size_t len = sizeof head - 1;
    memcpy(t, head, len);
    len += b64url(claims, n, t + len);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    if (!HMAC(EVP_sha256(), secret, (int)sizeof secret - 1, (const unsigned char *)t, len, mac, &maclen)) {
        free(t);
        return NULL;
    }
    t[len++] = '.';
    len += b64url(mac, maclen, t + len);
    t[len] = 0;
    return t;
}

static void setup(void)
{
    app = crest_app_new();
    crest_app_set_access_log(app, false);
    crest_jwt_config cfg = {.algorithms = "HS256,HS384", .secret = (const unsigned char *)secret,
                            .secret_len = sizeof secret - 1, .audience = "api", .leeway_s = 30};
    crest_error e = {0};
    if (crest_app_set_jwt(app, &cfg, &e) || crest_app_add_endpoint(app, &me, NULL, &e) ||
        crest_app_add_endpoint(app, &admin, NULL, &e) || !(lb = crest__loopback_new(app, &e)))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!app)
        setup();
    if (size > 16384)
        return 0;
    uint8_t mode = size ? data[0] : 0; /* bit 0: whole header, 1: /admin, 2+3: signed claims */
    char *tok = NULL;
    if ((mode & 12) == 12) { /* claims: the rest of the bytes, signed */
        tok = signed_token(data + 1, size - 1);
        if (!tok)
            return 0;
        data = (const uint8_t *)tok;
        size = strlen(tok);
    }
    /* A header value cannot hold CR or LF: those bytes end the token. */
    size_t n = 0;
    while (n < size && data[n] != '\r' && data[n] != '\n')
        n++;
    bool whole = !tok && n && (mode & 1); /* half the inputs are the whole header value */
    char *req = malloc(n + 128);
    if (!req) {
        free(tok);
        return 0;
    }
    int len = snprintf(req, n + 128, "GET /%s HTTP/1.1\r\nHost: f\r\nAuthorization: %s%.*s\r\n\r\n",
                       n && (mode & 2) ? "admin" : "me", whole ? "" : "Bearer ", (int)n, (const char *)data);
    crest__loopback_clear_output(lb);
    if (crest__loopback_closed(lb)) {
        crest__loopback_free(lb);
        crest_error e = {0};
        lb = crest__loopback_new(app, &e);
        if (!lb)
            abort();
    }
    crest__loopback_feed(lb, req, (size_t)len);
    size_t olen;
    const char *o = crest__loopback_output(lb, &olen);
    if (olen >= 12 && memcmp(o, "HTTP/1.1 2", 10) == 0 && memcmp(o, "HTTP/1.1 200", 12) != 0)
        abort();
    free(req);
    free(tok);
    return 0;
}
