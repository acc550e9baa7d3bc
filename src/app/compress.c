/* compress.c — gzip of answers (the app's `compression:` setting).
 *
 * An answer is sent gzipped when compression is on, its content type is
 * text (JSON, problem+json, text/..., JavaScript), the handler set no
 * Content-Encoding of its own, its body is at least compress_min bytes and
 * the request's Accept-Encoding allows gzip. Every answer that could have
 * been (all but the size and the request) says `Vary: Accept-Encoding`.
 * dispatch.c's render asks the questions in that order, so an answer under
 * compress_min costs a content type check, a look through the handler's
 * headers for its own Content-Encoding, and the Vary merge while they are
 * copied: no zlib state touched.
 *
 * Each worker keeps one deflate state (made at its first gzip answer, reset
 * after each) and one output buffer bounded by deflateBound; a large one is
 * given back after the answer. Shared bodies (the OpenAPI document, the docs
 * page's files) are compressed once, by the first answer that needs them,
 * into a slot their owner frees with them. A failure to compress (no
 * memory) sends the identity body instead; so does a gzip copy that is no
 * smaller than the body.
 *
 * Streamed answers (text/event-stream) are never compressed: the content
 * type check refuses them, and a streaming render path must not call in
 * here (its Vary and Content-Encoding stay its own). */
#include <limits.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <strings.h>
#include <zlib.h>

#include "app_internal.h"

#define GZ_KEEP (64 * 1024) /* a worker's output buffer past this is freed after use */

struct crest__gz {
    z_stream zs;
    bool ready;     /* deflateInit2 done */
    int level;      /* ... with this level: the app's when it was made (a reload may change it) */
    crest__buf out; /* the last answer's gzip bytes */
};

typedef struct crest__gzbody {
    size_t len;
    char data[];
} crest__gzbody;

/* ---- Accept-Encoding ---- */

static const char *skip_ows(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

static bool tchar(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strchr("!#$%&'*+-.^_`|~", c);
}

/* A qvalue (RFC 9110 12.4.2: "0" ["." 0*3DIGIT] / "1" ["." 0*3("0")]) in
 * thousandths at p..e, or -1 when it is not one. */
static int qvalue(const char *p, const char *e)
{
    if (p == e || (*p != '0' && *p != '1'))
        return -1;
    int q = (*p++ - '0') * 1000;
    if (p == e)
        return q;
    if (*p++ != '.' || e - p > 3)
        return -1;
    for (int scale = 100; p < e; p++, scale /= 10) {
        if (*p < '0' || *p > '9')
            return -1;
        q += (*p - '0') * scale;
    }
    return q <= 1000 ? q : -1;
}

/* Reads one Accept-Encoding value into the weights seen so far (thousandths,
 * -1: not named): gz for gzip / x-gzip (the larger when both), any for "*".
 * A member with a bad weight counts as refused (q=0). */
static void accept_scan(const char *v, int *gz, int *any)
{
    const char *p = v;
    while (*p) {
        p = skip_ows(p);
        const char *name = p;
        while (*p && tchar(*p))
            p++;
        size_t nlen = (size_t)(p - name);
        int q = 1000;
        p = skip_ows(p);
        while (*p == ';') { /* parameters: only q means anything here */
            p = skip_ows(p + 1);
            const char *k = p;
            while (*p && tchar(*p))
                p++;
            size_t klen = (size_t)(p - k);
            p = skip_ows(p);
            const char *val = p, *vend = p;
            if (*p == '=') {
                p = skip_ows(p + 1);
                val = p;
                while (*p && *p != ',' && *p != ';' && *p != ' ' && *p != '\t')
                    p++;
                vend = p;
                p = skip_ows(p);
            }
            if (klen == 1 && (*k == 'q' || *k == 'Q')) {
                int w = qvalue(val, vend);
                q = w < 0 ? 0 : w;
            }
        }
        if (*p && *p != ',') { /* junk in the member: refuse it, go to the next */
            q = 0;
            while (*p && *p != ',')
                p++;
        }
        if (*p == ',')
            p++;
        if ((nlen == 4 && !strncasecmp(name, "gzip", 4)) || (nlen == 6 && !strncasecmp(name, "x-gzip", 6)))
            *gz = q > *gz ? q : *gz;
        else if (nlen == 1 && *name == '*')
            *any = q > *any ? q : *any;
    }
}

bool crest__accept_gzip_value(const char *value)
{
    int gz = -1, any = -1;
    if (value)
        accept_scan(value, &gz, &any);
    return gz >= 0 ? gz > 0 : any > 0;
}

bool crest__accept_gzip(const crest_req *req)
{
    /* Several Accept-Encoding lines are one list (RFC 9110 5.3). No header:
     * no compression (a client that says nothing gets the identity body). */
    int gz = -1, any = -1;
    for (unsigned i = 0; i < req->nheaders; i++)
        if (crest__strcaseeq(req->headers[i].name, req->headers[i].name_len, "accept-encoding", 15))
            accept_scan(req->headers[i].value, &gz, &any);
    return gz >= 0 ? gz > 0 : any > 0;
}

/* ---- which answers ---- */

/* The start of the header line named name (with its colon) in the
 * response's extra headers, or NULL. */
static const char *find_line(const crest__buf *h, const char *name, size_t nlen)
{
    for (size_t at = 0; at + nlen < h->len;) {
        const char *line = h->ptr + at;
        if (!strncasecmp(line, name, nlen) && line[nlen] == ':')
            return line;
        const char *nl = memchr(line, '\n', h->len - at);
        if (!nl)
            break;
        at = (size_t)(nl - h->ptr) + 1;
    }
    return NULL;
}

static bool compressible(const char *ctype)
{
    size_t n = strcspn(ctype, "; \t");
    if (n > 5 && !strncasecmp(ctype, "text/", 5))
        return !(n == 17 && !strncasecmp(ctype, "text/event-stream", 17)); /* streamed: never */
    static const char *const types[] = {"application/json", "application/problem+json", "application/javascript"};
    for (size_t i = 0; i < CREST_ARRAY_LEN(types); i++)
        if (n == strlen(types[i]) && !strncasecmp(ctype, types[i], n))
            return true;
    return false;
}

bool crest__gz_candidate(const crest_req *req, const crest_res *res, const char *ctype)
{
    return !req->app->compress_off && req->worker && ctype && compressible(ctype) &&
           !(res->headers->len && find_line(res->headers, "Content-Encoding", 16));
}

/* ---- compressing ---- */

static crest__gz *worker_gz(crest__worker *w)
{
    crest__gz *g = w->aw.gz;
    if (!g) {
        if (!(g = calloc(1, sizeof *g)))
            return NULL;
        crest__buf_init(&g->out, 0);
        w->aw.gz = g;
    }
    if (g->ready && g->level != w->app->compress_level) { /* a reload changed it */
        deflateEnd(&g->zs);
        g->ready = false;
    }
    if (!g->ready) {
        /* windowBits 15 + 16: a gzip wrapper; memLevel 8: zlib's default. */
        if (deflateInit2(&g->zs, w->app->compress_level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
            return NULL;
        g->ready = true;
        g->level = w->app->compress_level;
    }
    return g;
}

void crest__gz_worker_free(crest__worker *w)
{
    crest__gz *g = w->aw.gz;
    if (!g)
        return;
    if (g->ready)
        deflateEnd(&g->zs);
    crest__buf_dispose(&g->out);
    free(g);
    w->aw.gz = NULL;
}

/* Deflates the pieces into dst (room for deflateBound of their total);
 * *len gets the gzip size. 0, or CREST_ENOMEM when zlib failed. The state
 * is reset for the next answer either way. */
static int deflate_pieces(z_stream *zs, const crest__str *pieces, unsigned n, char *dst, size_t room, size_t *len)
{
    bool ok = false;
    size_t done = 0;
    zs->next_out = (Bytef *)dst;
    for (unsigned i = 0; i < n; i++) {
        const char *p = pieces[i].ptr;
        size_t left = pieces[i].len;
        bool last_piece = i + 1 == n;
        if (!left && !last_piece)
            continue; /* deflate makes no progress on nothing: Z_BUF_ERROR */
        for (;;) { /* avail_in and avail_out are unsigned int */
            size_t in = left < UINT_MAX ? left : UINT_MAX;
            size_t out = room - done < UINT_MAX ? room - done : UINT_MAX;
            bool finish = last_piece && in == left;
            zs->next_in = (Bytef *)p;
            zs->avail_in = (uInt)in;
            zs->avail_out = (uInt)out;
            int zrc = deflate(zs, finish ? Z_FINISH : Z_NO_FLUSH);
            size_t took = in - zs->avail_in;
            done += out - zs->avail_out;
            p += took;
            left -= took;
            if (zrc == Z_STREAM_END) {
                ok = true;
                goto end;
            }
            if (zrc != Z_OK || done == room)
                goto end; /* an error, or out of room (deflateBound says it cannot be) */
            if (!left && !finish)
                break;
        }
    }
end:
    deflateReset(zs);
    *len = done;
    return ok ? 0 : CREST_ENOMEM;
}

static size_t total_len(const crest__str *pieces, unsigned n)
{
    size_t t = 0;
    for (unsigned i = 0; i < n; i++)
        t += pieces[i].len;
    return t;
}

int crest__gz_body(crest__worker *w, const crest__str *pieces, unsigned n, crest__str *out)
{
    crest__gz *g = worker_gz(w);
    size_t total = total_len(pieces, n), clen = 0;
    if (!g)
        return CREST_ENOMEM;
    size_t bound = deflateBound(&g->zs, total);
    g->out.len = 0;
    if (crest__buf_reserve(&g->out, bound) || deflate_pieces(&g->zs, pieces, n, g->out.ptr, bound, &clen) ||
        clen >= total)
        return CREST_ENOMEM;
    g->out.len = clen;
    *out = (crest__str){g->out.ptr, clen};
    return 0;
}

int crest__gz_shared(crest__worker *w, crest__gzslot *slot, const char *p, size_t n, crest__str *out)
{
    crest__gzbody *b = atomic_load_explicit(&slot->body, memory_order_acquire);
    if (!b) {
        crest__gz *g = worker_gz(w);
        if (!g)
            return CREST_ENOMEM;
        size_t bound = deflateBound(&g->zs, n), clen = 0;
        crest__str piece = {p, n};
        crest__gzbody *nb = malloc(sizeof *nb + bound);
        if (!nb || deflate_pieces(&g->zs, &piece, 1, nb->data, bound, &clen)) {
            free(nb);
            return CREST_ENOMEM;
        }
        crest__gzbody *small = realloc(nb, sizeof *nb + clen);
        nb = small ? small : nb;
        nb->len = clen;
        /* Two workers may race for the first answer: one copy is kept. */
        void *expect = NULL;
        if (atomic_compare_exchange_strong_explicit(&slot->body, &expect, nb, memory_order_acq_rel,
                                                    memory_order_acquire)) {
            b = nb;
        } else {
            free(nb);
            b = expect;
        }
    }
    if (b->len >= n)
        return CREST_ENOMEM; /* no smaller: the identity body */
    *out = (crest__str){b->data, b->len};
    return 0;
}

void crest__gz_done(crest__worker *w)
{
    crest__gz *g = w->aw.gz;
    if (g && g->out.cap > GZ_KEEP)
        crest__buf_dispose(&g->out);
}

void crest__gzslot_free(crest__gzslot *slot)
{
    free(atomic_exchange(&slot->body, NULL));
}

/* ---- headers ---- */

static bool contains_ci(const char *p, size_t n, const char *word)
{
    size_t k = strlen(word);
    for (size_t i = 0; i + k <= n; i++)
        if (!strncasecmp(p + i, word, k))
            return true;
    return false;
}

int crest__gz_headers(crest__buf *out, const crest__buf *h, bool gzipped)
{
    int rc = 0;
    bool vary = false;
    for (size_t at = 0; at < h->len;) {
        const char *line = h->ptr + at;
        const char *nl = memchr(line, '\n', h->len - at);
        size_t len = nl ? (size_t)(nl - line) + 1 : h->len - at;
        at += len;
        size_t body = len >= 2 && line[len - 2] == '\r' ? len - 2 : len; /* without its CRLF */
        if (body > 5 && !strncasecmp(line, "Vary:", 5)) {
            /* One Vary line: the handler's (CORS: Origin) plus ours. */
            rc |= crest__buf_append(out, line, body);
            const char *v = line + 5, *ve = line + body;
            while (v < ve && (*v == ' ' || *v == '\t'))
                v++;
            while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            bool star = ve - v == 1 && *v == '*'; /* varies on anything already: stays alone */
            if (!star && !contains_ci(line + 5, body - 5, "accept-encoding"))
                rc |= crest__buf_appends(out, ", Accept-Encoding");
            rc |= crest__buf_appends(out, "\r\n");
            vary = true;
            continue;
        }
        if (gzipped && body > 5 && !strncasecmp(line, "ETag:", 5)) {
            const char *q = line + body;
            while (q > line + 5 && q[-1] != '"')
                q--;
            q--; /* the closing quote, when there is one */
            if (q > line + 5 && memchr(line + 5, '"', (size_t)(q - line - 5))) {
                /* "abc" -> "abc-gzip" (W/ kept): one validator per representation. */
                rc |= crest__buf_append(out, line, (size_t)(q - line));
                rc |= crest__buf_appends(out, "-gzip");
                rc |= crest__buf_append(out, q, len - (size_t)(q - line));
                continue;
            }
        }
        rc |= crest__buf_append(out, line, len);
    }
    if (!vary)
        rc |= crest__buf_appends(out, "Vary: Accept-Encoding\r\n");
    return rc ? CREST_ENOMEM : 0;
}
