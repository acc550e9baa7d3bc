/* module_idem.c — idempotent creates: the Idempotency-Key header of a POST
 * to a create route of a module with `idempotency` (the IETF draft "The
 * Idempotency-Key HTTP Header Field"; Stripe's behaviour). A key is claimed
 * in a statement of its own, committed before the write unit, so that a
 * duplicate running at the same time — in this process or another one on
 * the same database — finds the claim and is answered 409; the answer is
 * recorded in the transaction that makes the rows (crest__rest_write_route),
 * so the rows never exist without their record nor the record without its
 * rows; a failed create gives the claim up. Statements: src/query/idempotency.c. */
#include <openssl/evp.h>
#include <stdio.h>
#include <time.h>

#include "../json/json_internal.h"

#include "module_internal.h"

#define KEY_MAX 255            /* the key's characters (the draft's examples, Stripe's limit) */
#define CLAIM_MIN_S 60         /* a claim outlives the request's budget by this much (capped by expire) */
#define PURGE_MAX 16           /* dead records one claim removes: more than the one it adds */

static int64_t wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t expire_us(const crest_module_def *def)
{
    return (int64_t)(def->idempotency_expire_s ? def->idempotency_expire_s : 86400) * 1000000;
}

/* How long a claim holds the key without its request answering (a process
 * that died with it): past the request's own budget, and never past the
 * key's expiry. */
static int64_t claim_us(const crest_req *req, const crest_module_def *def)
{
    int64_t us = ((int64_t)crest__req_budget_ms(req) + CLAIM_MIN_S * 1000) * 1000;
    return us < expire_us(def) ? us : expire_us(def);
}

/* The key of the header value v (a bare token, or an sf-string in double
 * quotes), into the arena; NULL with *msg when it is not one. */
static const char *parse_key(crest_req *req, const char *v, const char **msg)
{
    size_t n = strlen(v);
    if (n >= 2 && v[0] == '"' && v[n - 1] == '"') {
        v++;
        n -= 2;
    }
    if (n == 0) {
        *msg = "must not be empty";
        return NULL;
    }
    if (n > KEY_MAX) {
        *msg = "must be at most 255 characters";
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)v[i] < 0x20 || (unsigned char)v[i] > 0x7e || v[i] == '"' || v[i] == '\\') {
            *msg = "must be printable ASCII characters without quotes or backslashes";
            return NULL;
        }
    char *k = crest__arena_strndup(req->arena, v, n);
    if (!k)
        *msg = NULL;
    return k;
}

/* The request's fingerprint, SHA-256 in hex into out: the method, the
 * target (path and query) and the body as canonical JSON (compact, keys
 * sorted): two bodies that differ only in whitespace or key order are the
 * same request. -1 when out of memory. */
static int fingerprint(const crest_req *req, char out[65])
{
    char *body = req->json ? json_dumps(req->json, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY) : NULL;
    if (req->json && !body)
        return -1;
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    unsigned char h[32];
    unsigned hl = 0;
    int ok = c && EVP_DigestInit_ex(c, EVP_sha256(), NULL) &&
             EVP_DigestUpdate(c, req->method_text, strlen(req->method_text)) && EVP_DigestUpdate(c, "\n", 1) &&
             EVP_DigestUpdate(c, req->url, req->url_len) && EVP_DigestUpdate(c, "\n", 1) &&
             (!body || EVP_DigestUpdate(c, body, strlen(body))) && EVP_DigestFinal_ex(c, h, &hl) && hl == 32;
    EVP_MD_CTX_free(c);
    free(body);
    if (!ok)
        return -1;
    for (unsigned i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", h[i]);
    return 0;
}

/* Runs q (disposed here) in the request's session, in place: outside a
 * write unit, or in one that autocommits, so a write is committed when it
 * returns. Its rows, or NULL answered (res NULL: nothing answered). */
static crest__rows *run(crest_req *req, crest_res *res, crest__sql *q, unsigned flags)
{
    crest__rows *r = crest__rest_query(req, res, q, flags | CREST__QF_INPLACE, NULL);
    crest__sql_dispose(q);
    return r;
}

/* Answers with the live record of row 0 of r: its answer again, or why not. */
static int answer_record(crest_req *req, crest_res *res, const crest__idem *idem, const crest__rows *r)
{
    const crest__cell *state = crest__rows_cell(r, 0, 0), *fp = crest__rows_cell(r, 0, 1);
    if (fp->k == CREST__V_NULL || strcmp(fp->v.s, idem->fp))
        return crest__res_fail(res, CREST__E_IDEMPOTENCY_KEY_REUSED,
                               "this Idempotency-Key was used with another body or path; use a new key");
    if (state->v.i != 1) {
        res->retry_after = "1";
        return crest__res_fail(res, CREST__E_IDEMPOTENCY_KEY_IN_USE, NULL);
    }
    const crest__cell *status = crest__rows_cell(r, 0, 2), *headers = crest__rows_cell(r, 0, 3),
                      *body = crest__rows_cell(r, 0, 4);
    crest_res_status(res, (int)status->v.i);
    if (headers->k != CREST__V_NULL && headers->n && crest__buf_append(res->headers, headers->v.s, headers->n))
        return crest__res_fail(res, CREST__E_OUT_OF_MEMORY, NULL);
    if (crest_res_header(res, "Idempotent-Replayed", "true"))
        return crest__res_fail(res, CREST__E_OUT_OF_MEMORY, NULL);
    crest_json_raw(crest_res_json(res), body->k == CREST__V_NULL ? "null" : body->v.s,
                   body->k == CREST__V_NULL ? 4 : body->n);
    return 0;
}

/* The live record of the key, when there is one: 1 answered with it, 0
 * none, -1 answered (the lookup failed). */
static int lookup(crest_req *req, crest_res *res, const crest__idem *idem)
{
    crest__sql q;
    crest__sql_init(&q, req->arena, crest__app_dialect(req->app));
    crest__compile_idem_lookup(&q, idem->scope, idem->key, wall_us());
    crest__rows *r = run(req, res, &q, CREST__QF_READ);
    if (!r)
        return -1;
    if (!r->nrows)
        return 0;
    answer_record(req, res, idem, r);
    return 1;
}

int crest__idem_check(crest_req *req, crest_res *res, const route *r, crest__idem *idem)
{
    memset(idem, 0, sizeof *idem);
    const crest_module_def *def = r->mod->def;
    if (r->kind != RT_CREATE || !def->idempotency)
        return CREST__IDEM_OFF;
    const char *h = crest_req_header(req, "Idempotency-Key");
    if (!h) /* (when the module requires it, the route's spec has answered 400) */
        return CREST__IDEM_OFF;
    const char *msg = NULL;
    if (!(idem->key = parse_key(req, h, &msg))) {
        if (msg)
            crest__rest_bad_param(res, "Idempotency-Key", msg);
        else
            crest__res_fail(res, CREST__E_OUT_OF_MEMORY, NULL);
        return CREST__IDEM_ANSWERED;
    }
    const crest_user *u = req->user;
    idem->scope = crest__arena_printf(req->arena, "%s\n%s", r->mod->name, u && u->id ? u->id : "");
    if (!idem->scope || fingerprint(req, idem->fp)) {
        crest__res_fail(res, CREST__E_OUT_OF_MEMORY, NULL);
        return CREST__IDEM_ANSWERED;
    }
    return lookup(req, res, idem) ? CREST__IDEM_ANSWERED : CREST__IDEM_GO;
}

int crest__idem_claim(crest_req *req, crest_res *res, const route *r, crest__idem *idem)
{
    int64_t now = wall_us();
    idem->token = now + claim_us(req, r->mod->def);
    crest__sql q;
    crest__sql_init(&q, req->arena, crest__app_dialect(req->app));
    crest__compile_idem_claim(&q, idem->scope, idem->key, idem->fp, idem->token, now);
    crest__rows *c = run(req, res, &q, 0);
    if (!c)
        return CREST__IDEM_ANSWERED;
    if (c->changes != 1) { /* another request claimed it since the lookup */
        if (lookup(req, res, idem) == 0) {
            res->retry_after = "1"; /* (claimed, then given up: gone now) */
            crest__res_fail(res, CREST__E_IDEMPOTENCY_KEY_IN_USE, NULL);
        }
        return CREST__IDEM_ANSWERED;
    }
    idem->claimed = true;
    /* Each claim removes a few dead records: the table holds the live keys
     * and at most what expired since the last claims. */
    crest__sql_init(&q, req->arena, crest__app_dialect(req->app));
    crest__compile_idem_purge(&q, now, PURGE_MAX);
    run(req, NULL, &q, 0);
    return CREST__IDEM_CLAIMED;
}

int crest__idem_complete(crest_req *req, crest_res *res, const route *r, const crest__idem *idem,
                         size_t headers_from)
{
    size_t n = 0;
    const char *data = crest_json_data(res->json, &n);
    if (crest_json_error(res->json)) /* (the answer is past the response limit, or broken: it is not kept) */
        return crest__res_fail(res, CREST__E_RESPONSE_TOO_LARGE, NULL);
    const crest__buf *hb = res->headers;
    size_t hl = hb && hb->len > headers_from ? hb->len - headers_from : 0;
    char *headers = crest__arena_strndup(req->arena, hl ? hb->ptr + headers_from : "", hl);
    char *body = crest__arena_strndup(req->arena, n ? data : "", n);
    if (!headers || !body)
        return crest__res_fail(res, CREST__E_OUT_OF_MEMORY, NULL);
    crest__sql q;
    crest__sql_init(&q, req->arena, crest__app_dialect(req->app));
    crest__compile_idem_complete(&q, idem->scope, idem->key, idem->token, wall_us() + expire_us(r->mod->def),
                                 res->status ? res->status : r->spec.status, headers, body, n);
    crest__rows *done = crest__rest_query(req, res, &q, CREST__QF_INPLACE, NULL);
    crest__sql_dispose(&q);
    if (!done)
        return -1;
    if (done->changes != 1) { /* the claim timed out and another request has the key */
        res->retry_after = "1";
        return crest__res_fail(res, CREST__E_IDEMPOTENCY_KEY_IN_USE,
                               "the claim on this Idempotency-Key timed out before the create ended");
    }
    return 0;
}

void crest__idem_release(crest_req *req, crest__idem *idem)
{
    idem->claimed = false;
    crest__sql q;
    crest__sql_init(&q, req->arena, crest__app_dialect(req->app));
    crest__compile_idem_release(&q, idem->scope, idem->key, idem->token);
    run(req, NULL, &q, 0);
}

int crest__idem_prepare(crest_app *app, crest__conn *c, crest_error *err)
{
    bool used = false;
    for (unsigned i = 0; i < app->nmodules; i++)
        used |= app->modules[i]->def->idempotency;
    if (!used)
        return 0;
    crest__arena a;
    crest__arena_init(&a, 1024, 0);
    int rc = 0;
    for (int step = 0; step < 2 && !rc; step++) {
        crest__sql q;
        crest__sql_init(&q, &a, crest__app_dialect(app));
        if (step == 0)
            crest__compile_idem_table(&q);
        else
            crest__compile_idem_index(&q);
        crest__dberr e;
        crest__query qq = {.sql = q.text.ptr, .len = q.text.len, .flags = CREST__QF_NOCACHE};
        if (q.err)
            rc = CREST_ENOMEM;
        else if (app->store->vt->exec(c, &qq, &a, NULL, &e))
            rc = crest__error_set(err, CREST_ECONFIG, app->source_name, 0,
                                  "database: cannot make the table crest_idempotency: %s",
                                  e.message ? e.message : e.detail ? e.detail : "unknown error");
        crest__sql_dispose(&q);
    }
    crest__arena_dispose(&a);
    return rc;
}
