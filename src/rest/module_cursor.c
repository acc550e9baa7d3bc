/* module_cursor.c — the cursors of keyset pagination: an index answer's
 * meta.next_cursor and Link rel="next", and ?cursor= read back. A cursor
 * is the sort key values of a page's last row (the id last: the sort is a
 * total order), with digests of the list (module and path), of its where
 * and of its sort, signed with an HMAC whose key every crest process on
 * the database shares (table crest_meta); base64url, opaque to clients.
 * The page after it is a keyset condition compiled in src/query
 * (crest__sql_keyset), so rows written between pages never make a walk
 * repeat or skip a row that was there throughout. */
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>

#include "module_internal.h"

#define CURSOR_VERSION 1
#define CURSOR_MAC 16                  /* bytes of HMAC-SHA256 kept */
#define CURSOR_HEAD (1 + 4 + 8 + 8 + 1) /* version, list, where, sort digests, keys */
#define CURSOR_MAX_TEXT 4096           /* the longest ?cursor= read */

enum { TAG_NULL, TAG_INT, TAG_FLOAT, TAG_TEXT };

/* ---- the shared secret ---- */

/* Runs q on c; its rows (out may be NULL) in the arena a. 0, or -1 with
 * the database's message in err. q is disposed. */
static int meta_exec(crest_app *app, crest__conn *c, crest__arena *a, crest__sql *q, crest__rows **out,
                     crest_error *err)
{
    crest__dberr e = {0};
    int rc = q->err ? -1 : 0;
    if (!rc) {
        crest__query qq = {.sql = q->text.ptr, .len = q->text.len, .binds = q->binds, .nbinds = q->nbinds,
                           .flags = CREST__QF_NOCACHE};
        rc = app->store->vt->exec(c, &qq, a, out, &e);
    }
    crest__sql_dispose(q);
    if (rc)
        return crest__error_set(err, CREST_EIO, app->source_name, 0, "database: crest_meta: %s",
                                e.message ? e.message : e.detail ? e.detail : "out of memory");
    return 0;
}

int crest__rest_cursor_secret(crest_app *app, crest__conn *c, crest_error *err)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char fresh[32];
    char text[65];
    if (RAND_bytes(fresh, sizeof fresh) != 1)
        return crest__error_set(err, CREST_EIO, app->source_name, 0, "cannot draw the cursors' random secret");
    for (unsigned i = 0; i < 32; i++) {
        text[2 * i] = hex[fresh[i] >> 4];
        text[2 * i + 1] = hex[fresh[i] & 15];
    }
    text[64] = 0;
    crest__arena a;
    crest__arena_init(&a, 1024, 0);
    const crest__dialect *d = crest__app_dialect(app);
    crest__sql q;
    crest__rows *rows = NULL;
    /* The first process on the database puts its secret; every one reads
     * the one there (a race of two puts keeps one). */
    crest__sql_init(&q, &a, d);
    crest__compile_meta_table(&q);
    int rc = meta_exec(app, c, &a, &q, NULL, err);
    if (!rc) {
        crest__sql_init(&q, &a, d);
        crest__compile_meta_put(&q, "cursor_secret", text);
        rc = meta_exec(app, c, &a, &q, NULL, err);
    }
    if (!rc) {
        crest__sql_init(&q, &a, d);
        crest__compile_meta_get(&q, "cursor_secret");
        rc = meta_exec(app, c, &a, &q, &rows, err);
    }
    const crest__cell *cell = !rc && rows && rows->nrows ? crest__rows_cell(rows, 0, 0) : NULL;
    if (!rc && (!cell || !crest__vkind_is_text((crest__vkind)cell->k) || cell->n < 32))
        rc = crest__error_set(err, CREST_ECONFIG, app->source_name, 0,
                              "database: crest_meta's cursor_secret is not a secret crest made (at least 32 bytes)");
    if (!rc) {
        /* The key is the digest of the stored text: any text of 32 bytes or more works. */
        unsigned int n = 0;
        if (!EVP_Digest(cell->v.s, cell->n, app->cursor_key, &n, EVP_sha256(), NULL) || n != 32)
            rc = crest__error_set(err, CREST_EIO, app->source_name, 0, "cannot digest the cursors' secret");
    }
    crest__arena_dispose(&a);
    return rc;
}

/* ---- what a cursor is bound to ---- */

/* The first n bytes of SHA-256 of the text parts (NULL ends them), each
 * followed by a NUL so that ("ab", "c") and ("a", "bc") differ. */
static void digest(unsigned char *out, size_t n, const char *const *parts)
{
    unsigned char h[EVP_MAX_MD_SIZE];
    unsigned int hl = 0;
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    bool ok = c && EVP_DigestInit_ex(c, EVP_sha256(), NULL);
    for (unsigned i = 0; ok && parts[i]; i++)
        ok = EVP_DigestUpdate(c, parts[i], strlen(parts[i]) + 1);
    ok = ok && EVP_DigestFinal_ex(c, h, &hl) && hl >= n;
    EVP_MD_CTX_free(c);
    if (ok)
        memcpy(out, h, n);
    else
        memset(out, 0, n); /* out of memory: a digest no cursor has, so every cursor is refused */
}

/* The sort as text, "owner.name,-title,-id". */
static const char *sort_text(crest__arena *a, const crest__plan *p)
{
    crest__buf b;
    crest__buf_init(&b, 0);
    int e = 0;
    for (unsigned i = 0; i < p->nsort; i++) {
        const crest__sort *s = &p->sort[i];
        e |= crest__buf_appends(&b, i ? (s->desc ? ",-" : ",") : (s->desc ? "-" : ""));
        for (unsigned r = 0; r < s->nrels; r++)
            e |= crest__buf_appends(&b, s->rels[r]->name) | crest__buf_appends(&b, ".");
        e |= crest__buf_appends(&b, s->field->f.name);
    }
    const char *t = e ? NULL : crest__arena_strndup(a, b.ptr ? b.ptr : "", b.len);
    crest__buf_dispose(&b);
    return t;
}

int crest__rest_cursor_scope(crest_req *req, crest_res *res, const crest__module *mod, const crest__plan *plan,
                             crest__cursor_scope *out)
{
    /* where, as the same JSON whatever its spacing and key order. */
    const char *where = crest_req_str(req, "where");
    char *canon = NULL;
    if (where && *where) {
        json_t *j = json_loads(where, JSON_DECODE_ANY, NULL);
        canon = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY) : NULL;
        json_decref(j);
        if (!canon)
            return crest__res_fail(res, CREST__E_OUT_OF_MEMORY, NULL); /* (where parsed before) */
    }
    const char *sort = sort_text(req->arena, plan);
    if (!sort) {
        free(canon);
        return crest__res_fail(res, CREST__E_OUT_OF_MEMORY, NULL);
    }
    const char *list[] = {"list", mod->name, crest_req_path(req), NULL};
    const char *w[] = {"where", canon ? canon : "", NULL};
    const char *s[] = {"sort", sort, NULL};
    digest(out->list, sizeof out->list, list);
    digest(out->where, sizeof out->where, w);
    digest(out->sort, sizeof out->sort, s);
    free(canon);
    return 0;
}

/* ---- the cursor's bytes ---- */

static void mac_of(const crest_app *app, const unsigned char *data, size_t n, unsigned char out[CURSOR_MAC])
{
    unsigned char h[EVP_MAX_MD_SIZE];
    unsigned int hl = 0;
    if (!HMAC(EVP_sha256(), app->cursor_key, sizeof app->cursor_key, data, n, h, &hl) || hl < CURSOR_MAC)
        memset(h, 0, CURSOR_MAC);
    memcpy(out, h, CURSOR_MAC);
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* base64url without padding, in the arena a; NULL when out of memory. */
static char *b64_encode(crest__arena *a, const unsigned char *p, size_t n)
{
    char *o = crest__arena_alloc(a, (n + 2) / 3 * 4 + 1), *t = o;
    if (!o)
        return NULL;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);
        *t++ = b64[v >> 18 & 63];
        *t++ = b64[v >> 12 & 63];
        if (i + 1 < n)
            *t++ = b64[v >> 6 & 63];
        if (i + 2 < n)
            *t++ = b64[v & 63];
    }
    *t = 0;
    return o;
}

/* base64url (no padding) s into out (cap bytes); its length, or -1 when
 * s is not such text. Looser than crest__base64url_decode on purpose: the
 * spare bits of the last character are not judged here, so that a cut or
 * altered cursor is told as such by its MAC, not as not base64url. */
static long b64_decode(const char *s, unsigned char *out, size_t cap)
{
    size_t n = strlen(s), o = 0;
    if (n % 4 == 1)
        return -1;
    uint32_t acc = 0;
    unsigned bits = 0;
    for (size_t i = 0; i < n; i++) {
        const char *c = memchr(b64, s[i], 64);
        if (!c || !s[i])
            return -1;
        acc = acc << 6 | (uint32_t)(c - b64);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o == cap)
                return -1;
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
    return (long)o; /* (spare bits of the last character are ignored: the MAC judges the bytes) */
}

static int put_u64(crest__buf *b, uint64_t v)
{
    unsigned char t[8];
    for (int i = 0; i < 8; i++)
        t[i] = (unsigned char)(v >> (56 - 8 * i));
    return crest__buf_append(b, t, 8);
}

static uint64_t get_u64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

const char *crest__rest_cursor_make(crest_req *req, const crest__cursor_scope *cs, const crest__list_plan *lp,
                                    const crest__rows *r, size_t row)
{
    crest__buf b;
    crest__buf_init(&b, 0);
    int e = 0;
    unsigned char head[CURSOR_HEAD];
    head[0] = CURSOR_VERSION;
    memcpy(head + 1, cs->list, 4);
    memcpy(head + 5, cs->where, 8);
    memcpy(head + 13, cs->sort, 8);
    head[21] = (unsigned char)lp->order->nsort;
    e |= crest__buf_append(&b, head, sizeof head);
    for (unsigned k = 0; k < lp->order->nsort; k++) {
        const crest__cell *c = crest__rows_cell(r, row, crest__list_key_col(lp, k));
        crest__vkind kind = (crest__vkind)c->k;
        if (kind == CREST__V_NULL) {
            e |= crest__buf_append(&b, (unsigned char[]){TAG_NULL}, 1);
        } else if (kind == CREST__V_INT || kind == CREST__V_BOOL) {
            e |= crest__buf_append(&b, (unsigned char[]){TAG_INT}, 1) | put_u64(&b, (uint64_t)c->v.i);
        } else if (kind == CREST__V_FLOAT) {
            uint64_t bits;
            memcpy(&bits, &c->v.f, 8);
            e |= crest__buf_append(&b, (unsigned char[]){TAG_FLOAT}, 1) | put_u64(&b, bits);
        } else {
            size_t n = c->n < 0xffff ? c->n : 0xffff; /* (a longer key makes a cursor no request line carries) */
            e |= crest__buf_append(&b, (unsigned char[]){TAG_TEXT, (unsigned char)(n >> 8), (unsigned char)n}, 3) |
                 crest__buf_append(&b, c->v.s, n);
        }
    }
    unsigned char mac[CURSOR_MAC];
    if (!e)
        mac_of(req->app, (const unsigned char *)b.ptr, b.len, mac);
    e |= crest__buf_append(&b, mac, sizeof mac);
    char *text = e ? NULL : b64_encode(req->arena, (const unsigned char *)b.ptr, b.len);
    crest__buf_dispose(&b);
    return text;
}

/* The key values of a verified cursor's body p..end as values of the
 * sort's fields' kinds; -1 when they do not fit the sort. */
static int read_keys(crest__arena *a, const crest__plan *plan, const unsigned char *p, const unsigned char *end,
                     crest__val *out)
{
    for (unsigned k = 0; k < plan->nsort; k++) {
        crest__vkind want = crest__field_vkind(plan->sort[k].field);
        crest__val *v = &out[k];
        *v = (crest__val){.k = CREST__V_NULL};
        if (p >= end)
            return -1;
        unsigned tag = *p++;
        if (tag == TAG_NULL)
            continue;
        if (tag == TAG_INT || tag == TAG_FLOAT) {
            if (end - p < 8)
                return -1;
            uint64_t u = get_u64(p);
            p += 8;
            if (tag == TAG_FLOAT) {
                v->k = CREST__V_FLOAT;
                memcpy(&v->f, &u, 8);
            } else if (want == CREST__V_FLOAT) {
                *v = (crest__val){.k = CREST__V_FLOAT, .f = (double)(int64_t)u};
            } else {
                *v = (crest__val){.k = want == CREST__V_BOOL ? CREST__V_BOOL : CREST__V_INT, .i = (int64_t)u};
            }
            continue;
        }
        if (tag != TAG_TEXT || end - p < 2)
            return -1;
        size_t n = (size_t)p[0] << 8 | p[1];
        p += 2;
        if ((size_t)(end - p) < n)
            return -1;
        char *s = crest__arena_strndup(a, (const char *)p, n);
        if (!s)
            return -1;
        *v = (crest__val){.k = crest__vkind_is_text(want) ? want : CREST__V_TEXT, .s = s, .n = n};
        p += n;
    }
    return p == end ? 0 : -1;
}

int crest__rest_cursor_read(crest_req *req, crest_res *res, const crest__cursor_scope *cs, const crest__plan *plan,
                            const char *text, crest__val **out)
{
    size_t tn = strlen(text);
    unsigned char *raw = tn <= CURSOR_MAX_TEXT ? crest__arena_alloc(req->arena, tn) : NULL;
    long sn = raw ? b64_decode(text, raw, tn) : -1;
    size_t n = sn < 0 ? 0 : (size_t)sn;
    if (!tn || tn > CURSOR_MAX_TEXT || sn < 0)
        return crest__res_fail(res, CREST__E_INVALID_CURSOR,
                               "cursor: not a cursor of crest's (not base64url text of at most %d characters)",
                               CURSOR_MAX_TEXT);
    unsigned char mac[CURSOR_MAC];
    if (n >= CURSOR_HEAD + CURSOR_MAC)
        mac_of(req->app, raw, (size_t)n - CURSOR_MAC, mac);
    if (n < CURSOR_HEAD + CURSOR_MAC || CRYPTO_memcmp(mac, raw + n - CURSOR_MAC, CURSOR_MAC) || raw[0] != CURSOR_VERSION)
        return crest__res_fail(res, CREST__E_INVALID_CURSOR,
                               "cursor: altered, truncated, or made by a server on another database");
    if (memcmp(raw + 1, cs->list, 4))
        return crest__res_fail(res, CREST__E_INVALID_CURSOR, "cursor: made for another list than %s",
                               crest_req_path(req));
    /* Both named when both changed. */
    bool where = memcmp(raw + 5, cs->where, 8) != 0, sort = memcmp(raw + 13, cs->sort, 8) != 0;
    if (where || sort)
        return crest__res_fail(res, CREST__E_INVALID_CURSOR,
                               "cursor: %s%s%s differ%s from the cursor's page (a cursor continues the same where "
                               "and sort_by; leave cursor out to start again)",
                               where ? "where" : "", where && sort ? " and " : "", sort ? "sort_by" : "",
                               where && sort ? "" : "s");
    crest__val *v = crest__arena_calloc(req->arena, plan->nsort ? plan->nsort : 1, sizeof *v);
    if (!v)
        return crest__res_fail(res, CREST__E_OUT_OF_MEMORY, NULL);
    if (raw[21] != plan->nsort || read_keys(req->arena, plan, raw + CURSOR_HEAD, raw + n - CURSOR_MAC, v))
        return crest__res_fail(res, CREST__E_INVALID_CURSOR,
                               "cursor: altered, truncated, or made by a server on another database");
    *out = v;
    return 0;
}

/* ---- Link: <...>; rel="next" ---- */

/* Whether the query item p (n bytes, "name=value") is named name. */
static bool item_named(const char *p, size_t n, const char *name)
{
    size_t k = strlen(name);
    return n >= k && !memcmp(p, name, k) && (n == k || p[k] == '=');
}

/* Appends p (n bytes of the request's target) with the bytes a URI in <>
 * may not hold percent-escaped; non-zero when out of memory. */
static int append_uri(crest__buf *b, const char *p, size_t n)
{
    int e = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c <= ' ' || c >= 0x7f || strchr("<>\"\\^`{|}", c))
            e |= crest__buf_appendf(b, "%%%02X", c);
        else
            e |= crest__buf_append(b, &p[i], 1);
    }
    return e;
}

int crest__rest_link_next(crest_req *req, crest_res *res, const char *cursor)
{
    /* The request's target as sent, without page, offset and cursor, with
     * the new cursor. */
    crest__buf b;
    crest__buf_init(&b, 64 * 1024);
    const char *url = req->url ? req->url : crest_req_path(req);
    const char *q = strchr(url, '?');
    int e = crest__buf_appends(&b, "<") | append_uri(&b, url, q ? (size_t)(q - url) : strlen(url));
    char sep = '?';
    for (const char *p = q ? q + 1 : NULL; p && *p;) {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);
        if (len && !item_named(p, len, "page") && !item_named(p, len, "offset") && !item_named(p, len, "cursor")) {
            e |= crest__buf_append(&b, &sep, 1) | append_uri(&b, p, len);
            sep = '&';
        }
        p = amp ? amp + 1 : NULL;
    }
    e |= crest__buf_append(&b, &sep, 1) | crest__buf_appends(&b, "cursor=") | crest__buf_appends(&b, cursor) |
         crest__buf_appends(&b, ">; rel=\"next\"") | crest__buf_append(&b, "", 1);
    int rc = e ? crest__res_fail(res, CREST__E_OUT_OF_MEMORY, NULL) : crest_res_header(res, "Link", b.ptr);
    crest__buf_dispose(&b);
    return rc ? -1 : 0;
}
