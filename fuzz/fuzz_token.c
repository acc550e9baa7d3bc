/* fuzz_token.c — bytes as a bearer token (and as a whole Authorization
 * header) against an app with JWT auth, through the loopback connection:
 * the token checks (size, signature, algorithm, claims) must answer 200,
 * 401 or 403 and never crash or leak. */
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

static void setup(void)
{
    app = crest_app_new();
    crest_app_set_access_log(app, false);
    static const char secret[] = "0123456789abcdef0123456789abcdef-fuzz";
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
    /* A header value cannot hold CR or LF: those bytes end the token. */
    size_t n = 0;
    while (n < size && data[n] != '\r' && data[n] != '\n')
        n++;
    bool whole = n && (data[0] & 1); /* half the inputs are the whole header value */
    char *req = malloc(n + 128);
    if (!req)
        return 0;
    int len = snprintf(req, n + 128, "GET /%s HTTP/1.1\r\nHost: f\r\nAuthorization: %s%.*s\r\n\r\n",
                       n && (data[0] & 2) ? "admin" : "me", whole ? "" : "Bearer ", (int)n, (const char *)data);
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
    return 0;
}
