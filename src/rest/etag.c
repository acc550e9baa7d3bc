/* etag.c — conditional requests (RFC 9110 section 13) for REST modules:
 * the ETag of each answer, If-None-Match (304 on reads and lists) and
 * If-Match (412 on updates and deletes, 428 when a module requires it).
 *
 * Row versions. Every model's table has a column crest_version (model
 * sync adds it) that each write crest makes sets in its own statement: an
 * insert gives the row a random 52-bit first version (the dialect's
 * version_new), an update adds 1 in the UPDATE itself, so the version is
 * exact across processes, never a hash computed after the fact. The first
 * version is random, not 1, because SQLite reuses the id of a deleted row
 * (no AUTOINCREMENT): a row made again under an old id must not get an
 * ETag a client still holds for the old row. The chance that it does is
 * k / 2^52 for an old row that went through k versions. (A database-wide
 * counter would make every insert write one shared row: a hot spot between
 * processes on PostgreSQL.) Writes that bypass crest (SQL endpoints, other
 * programs) do not move the version: their changes are not seen by ETags.
 *
 * ETag formats: opaque to clients, but crest reads the row's part back:
 *   "<id>.<version>.f<variant>"  a row whose answer the row decides: the
 *                                variant hashes which fields the answer
 *                                writes (the serializer's, the user's field
 *                                access, fields=), one tag per representation;
 *   "<id>.<version>.b<hash>"     a row answered with more than the row
 *                                (include=, computed fields): the body's hash;
 *   "l<hash>"                    lists, group, stats, eval, bulk creates: the
 *                                body's hash (a sample, random, has none).
 * id in decimal, version and hashes in lower-case hex; hashes are 64-bit
 * FNV-1a of the JSON bytes. If-None-Match uses the weak comparison (W/
 * ignored); If-Match the strong one (W/ tags never match) on the
 * "<id>.<version>" part only, so a tag of an include= or fields= answer
 * conditions a write too. g-gzip appends "-gzip" inside the quotes of a
 * compressed answer's tag: every comparison drops one such suffix.
 *
 * Order of the checks of an update (delete): 428 (no If-Match where the
 * module requires it) and 400 (a malformed If-Match or If-None-Match)
 * first, as they are about the request's headers alone; then 404 (DESIGN:
 * before the body) and the preconditions (RFC 9110 13.2.2: If-Match, then
 * If-None-Match, whose false answer on a write is 412 too) in one read of
 * the row's version, before the body is read and before any hook runs;
 * then 422 (the body); then the write, whose statement carries the same
 * version check again, so that check and write are atomic: no row changed
 * → 404 when the row is gone, else 412. An update that sets no field
 * writes nothing: the read decided. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "module_internal.h"

/* ---- the entity-tag list grammar ---- */

static bool ows(char c)
{
    return c == ' ' || c == '\t';
}

/* etagc = %x21 / %x23-7E / obs-text */
static bool etagc(unsigned char c)
{
    return c == 0x21 || (c >= 0x23 && c != 0x7f);
}

int crest__etag_parse(const char *s, crest__etags *out, const char **msg)
{
    *out = (crest__etags){0};
    const char *p = s;
    while (ows(*p))
        p++;
    if (*p == '*') {
        p++;
        while (ows(*p))
            p++;
        if (*p) {
            *msg = "'*' must stand alone";
            return -1;
        }
        out->star = true;
        return 0;
    }
    for (;;) {
        /* empty list elements (", ,") are allowed by the #rule */
        while (ows(*p) || *p == ',')
            p++;
        if (!*p)
            break;
        bool weak = false;
        if (p[0] == 'W' && p[1] == '/') {
            weak = true;
            p += 2;
        }
        if (*p != '"') {
            *msg = "expected a quoted entity-tag (\"...\" or W/\"...\")";
            return -1;
        }
        const char *open = ++p;
        while (etagc((unsigned char)*p))
            p++;
        if (*p != '"') {
            *msg = "an entity-tag is not closed by '\"' (or holds a character it may not)";
            return -1;
        }
        size_t n = (size_t)(p - open);
        p++;
        while (ows(*p))
            p++;
        if (*p && *p != ',') {
            *msg = "entity-tags must be separated by ','";
            return -1;
        }
        if (out->n == CREST_ETAG_LIST_MAX) {
            *msg = "too many entity-tags (at most 32)";
            return -1;
        }
        bool gz = n >= 5 && !memcmp(open + n - 5, "-gzip", 5); /* g-gzip's suffix of a compressed answer */
        out->tag[out->n++] = (crest__etag){open, gz ? n - 5 : n, weak, gz};
    }
    if (!out->n) {
        *msg = "expected '*' or a list of entity-tags";
        return -1;
    }
    return 0;
}

uint64_t crest__etag_hash(const void *p, size_t n)
{
    const unsigned char *b = p;
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 1099511628211ull;
    }
    return h;
}

bool crest__etag_weak_match(const crest__etags *l, const char *tag, bool *gzip)
{
    if (gzip)
        *gzip = false;
    if (l->star)
        return true;
    size_t n = strlen(tag);
    if (n < 2)
        return false;
    for (unsigned i = 0; i < l->n; i++)
        if (l->tag[i].n == n - 2 && !memcmp(l->tag[i].s, tag + 1, n - 2)) {
            if (gzip)
                *gzip = l->tag[i].gzip;
            return true;
        }
    return false;
}

int crest__etag_row_part(const crest__etag *t, int64_t *id, int64_t *version)
{
    /* "<id>.<version>." then the variant */
    const char *p = t->s, *e = t->s + t->n;
    uint64_t a = 0;
    int64_t v = 0;
    const char *d = p;
    while (p < e && *p >= '0' && *p <= '9' && p - d < 19) /* 19 digits fit in 64 bits */
        a = a * 10 + (uint64_t)(*p++ - '0');
    if (p == d || p >= e || *p++ != '.' || a > INT64_MAX)
        return -1;
    d = p;
    while (p < e && p - d < 15 && ((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'))) {
        v = v * 16 + (*p <= '9' ? *p - '0' : *p - 'a' + 10);
        p++;
    }
    if (p == d || p >= e || *p != '.')
        return -1;
    *id = (int64_t)a;
    *version = v;
    return 0;
}

/* ---- the request's headers ---- */

/* Every line of header `name`, joined by ", " (a list header may come in
 * several lines), in the request's arena; NULL when absent. */
static const char *list_header(const crest_req *req, const char *name)
{
    size_t n = strlen(name);
    const char *out = NULL;
    for (unsigned i = 0; i < req->nheaders; i++) {
        const crest__header *h = &req->headers[i];
        if (!crest__strcaseeq(h->name, h->name_len, name, n))
            continue;
        out = out ? crest__arena_printf(req->arena, "%s, %s", out, h->value) : h->value;
        if (!out)
            return "";
    }
    return out;
}

/* Parses header `name` into *l: 1 given, 0 absent, -1 answered (400). */
static int header_tags(crest_req *req, crest_res *res, const char *name, crest__etags *l)
{
    const char *v = list_header(req, name);
    if (!v)
        return 0;
    const char *msg;
    if (crest__etag_parse(v, l, &msg))
        return crest__rest_bad_param(res, name, crest__arena_printf(req->arena, "%s: %s", name, msg));
    return 1;
}

/* ---- answers ---- */

int crest__rest_etag_answer(crest_res *res, const char *tag)
{
    crest_req *req = res->req;
    if (crest_res_header(res, "ETag", tag))
        return crest__res_fail(res, CREST__E_OUT_OF_MEMORY, NULL);
    if (req->method != CREST_GET && req->method != CREST_HEAD)
        return 0;
    crest__etags l;
    int rc = header_tags(req, res, "If-None-Match", &l);
    if (rc <= 0)
        return rc;
    if (!crest__etag_weak_match(&l, tag, &res->etag_gzip))
        return 0;
    crest_res_status(res, 304); /* no body is rendered for a 304 */
    return 1;
}

int crest__rest_etag_body(crest_res *res)
{
    size_t n;
    const char *body = crest_json_data(res->json, &n);
    char tag[24];
    snprintf(tag, sizeof tag, "\"l%016" PRIx64 "\"", crest__etag_hash(body, n));
    return crest__rest_etag_answer(res, tag) < 0 ? -1 : 0;
}

void crest__rest_finish_tagged(crest_res *res, int rc)
{
    if (!rc && !res->is_error && crest__rest_etag_body(res))
        rc = -1;
    crest__res_finish(res, rc);
}

void crest__rest_etag_row(const crest_rest_ctx *ctx, const crest__module *mod, const crest__rows *r, size_t i,
                          const crest__field_mask *mask, const char *body, size_t body_len, char *buf, size_t cap)
{
    const crest__model *m = mod->m;
    int64_t id = crest__rows_cell(r, i, 0)->v.i;
    const crest__cell *vc = crest__rows_cell(r, i, m->nfields + mod->ncomp);
    uint64_t version = vc->k == CREST__V_INT ? (uint64_t)vc->v.i : 0;
    uint64_t h;
    char kind;
    if (body) {
        kind = 'b';
        h = crest__etag_hash(body, body_len);
    } else {
        /* Which fields the answer writes, one byte each (the serializer's
         * rule, crest__rest_write_members), then whether it is enveloped. */
        kind = 'f';
        h = crest__etag_hash("", 0);
        for (unsigned k = 0; k <= m->nfields; k++) {
            unsigned char on = k == m->nfields ? mod->single_env != NULL
                                               : mod->served[k] && (!mask || mask->on[k]) &&
                                                     crest__rest_can_read(ctx->req, &m->fields[k]);
            h = (h ^ on) * 1099511628211ull; /* FNV-1a, one byte */
        }
    }
    snprintf(buf, cap, "\"%" PRId64 ".%" PRIx64 ".%c%08" PRIx32 "\"", id, version, kind, (uint32_t)(h ^ (h >> 32)));
}

/* ---- conditional writes: If-Match, If-None-Match ---- */

/* The versions of row id that the tags of l name: into *v (request arena),
 * *n of them; strong: weak tags name none (If-Match's strong comparison).
 * 0, or -1 short of memory. */
static int row_versions(crest_req *req, const crest__etags *l, int64_t id, bool strong, const int64_t **v,
                        unsigned *n)
{
    int64_t *out = crest__arena_alloc(req->arena, (l->n + 1) * sizeof *out);
    if (!out)
        return -1;
    unsigned k = 0;
    for (unsigned i = 0; i < l->n; i++) {
        int64_t tid, tv;
        if ((!strong || !l->tag[i].weak) && !crest__etag_row_part(&l->tag[i], &tid, &tv) && tid == id)
            out[k++] = tv;
    }
    *v = out;
    *n = k;
    return 0;
}

int crest__rest_if_match(crest_rest_ctx *ctx, const crest__module *mod, int64_t id, bool *given,
                         crest__version_check *out)
{
    crest_req *req = ctx->req;
    crest_res *res = ctx->res;
    *given = false;
    *out = (crest__version_check){0};
    crest__etags l;
    int rc = header_tags(req, res, "If-Match", &l);
    if (rc < 0)
        return -1;
    if (!rc && mod->def->require_if_match)
        return crest__res_fail(res, CREST__E_PRECONDITION_REQUIRED,
                               "this %s needs an If-Match header with the row's ETag (GET it first)",
                               req->method == CREST_DELETE ? "delete" : "update");
    if (rc && !l.star) { /* ("*": the row must exist, at any version) */
        if (row_versions(req, &l, id, true, &out->v, &out->n))
            return crest__res_fail(res, CREST__E_OUT_OF_MEMORY, NULL);
        if (!out->n) { /* no tag of this row: a version no row has, so it finds none (then 412) */
            static const int64_t none = -1;
            out->v = &none;
            out->n = 1;
        }
    }
    *given = rc > 0;
    rc = header_tags(req, res, "If-None-Match", &l);
    if (rc < 0)
        return -1;
    if (rc && l.star)
        out->none_star = true;
    else if (rc && row_versions(req, &l, id, false, &out->nv, &out->nn))
        return crest__res_fail(res, CREST__E_OUT_OF_MEMORY, NULL);
    *given |= rc > 0;
    return 0;
}

static int precondition_failed(crest_res *res, const crest__module *mod, int64_t id, const char *why)
{
    return crest__res_fail(res, CREST__E_PRECONDITION_FAILED, "%s %" PRId64 " %s", mod->m->name, id, why);
}

#define CHANGED "has changed since the ETag given in If-Match: GET it again"

static bool has_version(const int64_t *v, unsigned n, int64_t version)
{
    for (unsigned i = 0; i < n; i++)
        if (v[i] == version)
            return true;
    return false;
}

int crest__rest_row_check(crest_req *req, crest_res *res, const crest__module *mod, int64_t id,
                          const crest__qnode *scope, const crest__version_check *c)
{
    bool versions = c->n || c->nn || c->none_star;
    crest__rows *r;
    if (crest__rest_row_read(req, res, mod, id, scope, versions, &r))
        return -1; /* 404, or the database's error */
    if (!versions)
        return 0;
    const crest__cell *vc = crest__rows_cell(r, 0, 0);
    int64_t version = vc->k == CREST__V_INT ? vc->v.i : -1;
    if (c->n && !has_version(c->v, c->n, version))
        return precondition_failed(res, mod, id, CHANGED);
    if (c->none_star)
        return precondition_failed(res, mod, id, "exists (If-None-Match: * asks that it does not)");
    if (has_version(c->nv, c->nn, version))
        return precondition_failed(res, mod, id, "is at the version If-None-Match names");
    return 0;
}

int crest__rest_if_match_failed(crest_req *req, crest_res *res, const crest__module *mod, int64_t id,
                                const crest__qnode *scope, const crest__version_check *c)
{
    /* The row changed between the check and the write: the check again
     * says how (404: gone; 412), as it would have before. */
    if (crest__rest_row_check(req, res, mod, id, scope, c))
        return -1;
    return precondition_failed(res, mod, id, CHANGED);
}
