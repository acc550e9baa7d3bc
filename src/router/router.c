/* router.c — the segment tree behind crest__router_match. Literal children
 * are kept in a small array (routes per level are few); matching never
 * allocates. */
#include <stdio.h>
#include <stdlib.h>

#include "router.h"

typedef struct node node;
struct node {
    char *lit;         /* this node's literal segment (NULL for a param node) */
    size_t lit_len;
    node **kids;       /* literal children */
    unsigned nkids;
    node *param;       /* the {param} child */
    crest__route *routes[CREST_METHOD_COUNT];
};

struct crest__router {
    node root;
};

crest__router *crest__router_new(void)
{
    return calloc(1, sizeof(crest__router));
}

static void node_free(node *n)
{
    for (unsigned i = 0; i < n->nkids; i++) {
        node_free(n->kids[i]);
        free(n->kids[i]);
    }
    free(n->kids);
    if (n->param) {
        node_free(n->param);
        free(n->param);
    }
    for (unsigned i = 0; i < CREST_METHOD_COUNT; i++) {
        crest__route *rt = n->routes[i];
        if (!rt)
            continue;
        for (unsigned k = 0; k < rt->nparams; k++)
            free(rt->param_names[k]);
        free(rt);
    }
    free(n->lit);
}

void crest__router_free(crest__router *r)
{
    if (!r)
        return;
    node_free(&r->root);
    free(r);
}

static node *child_lit(node *n, const char *s, size_t len, bool create)
{
    for (unsigned i = 0; i < n->nkids; i++)
        if (n->kids[i]->lit_len == len && memcmp(n->kids[i]->lit, s, len) == 0)
            return n->kids[i];
    if (!create)
        return NULL;
    node **k = realloc(n->kids, (n->nkids + 1) * sizeof *k);
    if (!k)
        return NULL;
    n->kids = k;
    node *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->lit = malloc(len + 1);
    if (!c->lit) {
        free(c);
        return NULL;
    }
    memcpy(c->lit, s, len);
    c->lit[len] = 0;
    c->lit_len = len;
    n->kids[n->nkids++] = c;
    return c;
}

int crest__router_add(crest__router *r, crest_method m, const char *pattern, void *target, crest_error *err)
{
    if (m < 1 || m >= CREST_METHOD_COUNT)
        return crest__error_set(err, CREST_EINVAL, NULL, 0, "bad method for %s", pattern ? pattern : "?");
    if (!pattern || pattern[0] != '/')
        return crest__error_set(err, CREST_EINVAL, NULL, 0, "path '%s' must start with '/'",
                                pattern ? pattern : "(null)");
    crest__route tmp = {.method = m, .target = target};
    node *n = &r->root;
    const char *p = pattern + 1;
    int rc = 0;
    for (;;) {
        const char *e = strchr(p, '/');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len >= 2 && p[0] == '{' && p[len - 1] == '}') {
            if (len == 2) {
                rc = crest__error_set(err, CREST_EINVAL, NULL, 0, "path '%s': a parameter without a name", pattern);
                goto out;
            }
            if (tmp.nparams == CREST_ROUTER_MAX_PARAMS) {
                rc = crest__error_set(err, CREST_EINVAL, NULL, 0, "path '%s' has too many parameters", pattern);
                goto out;
            }
            for (size_t i = 1; i + 1 < len; i++) {
                char c = p[i];
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_')) {
                    rc = crest__error_set(err, CREST_EINVAL, NULL, 0, "path '%s': bad parameter name", pattern);
                    goto out;
                }
            }
            for (unsigned k = 0; k < tmp.nparams; k++)
                if (strlen(tmp.param_names[k]) == len - 2 && memcmp(tmp.param_names[k], p + 1, len - 2) == 0) {
                    rc = crest__error_set(err, CREST_EINVAL, NULL, 0, "path '%s' repeats a parameter", pattern);
                    goto out;
                }
            char *name = malloc(len - 1);
            if (!name) {
                rc = CREST_ENOMEM;
                goto out;
            }
            memcpy(name, p + 1, len - 2);
            name[len - 2] = 0;
            tmp.param_names[tmp.nparams++] = name;
            if (!n->param && !(n->param = calloc(1, sizeof(node)))) {
                rc = CREST_ENOMEM;
                goto out;
            }
            n = n->param;
        } else {
            if (memchr(p, '{', len) || memchr(p, '}', len)) {
                rc = crest__error_set(err, CREST_EINVAL, NULL, 0, "path '%s': '{' and '}' must wrap a whole segment",
                                      pattern);
                goto out;
            }
            node *c = child_lit(n, p, len, true);
            if (!c) {
                rc = CREST_ENOMEM;
                goto out;
            }
            n = c;
        }
        if (!e)
            break;
        p = e + 1;
    }
    if (n->routes[m]) {
        rc = crest__error_set(err, CREST_EEXIST, NULL, 0, "%s %s is declared twice", crest_method_name(m), pattern);
        goto out;
    }
    crest__route *rt = malloc(sizeof *rt);
    if (!rt) {
        rc = CREST_ENOMEM;
        goto out;
    }
    *rt = tmp;
    n->routes[m] = rt;
    return 0;
out:
    for (unsigned k = 0; k < tmp.nparams; k++)
        free(tmp.param_names[k]);
    return rc;
}

int crest__path_check(const char *pattern, char *msg, size_t cap)
{
    for (const char *c = pattern; *c; c++) {
        if (*c == '?') {
            snprintf(msg, cap, "path '%s': a path cannot hold '?' (the query string is not part of the route; "
                               "declare query parameters under params, in: query)", pattern);
            return -1;
        }
        if (*c == '#') {
            snprintf(msg, cap, "path '%s': a path cannot hold '#' (a fragment is never sent to the server)", pattern);
            return -1;
        }
        if (*c == '%') {
            snprintf(msg, cap, "path '%s': a path cannot hold '%%' escapes (paths are matched decoded: write the "
                               "character itself)", pattern);
            return -1;
        }
        if ((unsigned char)*c <= ' ' || *c == 0x7f) {
            snprintf(msg, cap, "path '%s': a path cannot hold spaces or control characters", pattern);
            return -1;
        }
        if (*c == '<' || *c == '>') {
            /* "/project/<id>" (Flask, Inmanta): name the parameter crest's way. */
            const char *open = *c == '<' ? c : NULL, *close = open ? strchr(open, '>') : NULL;
            const char *colon = open && close ? memchr(open, ':', (size_t)(close - open)) : NULL;
            const char *name = colon ? colon + 1 : open ? open + 1 : NULL;
            if (name && close && close > name)
                snprintf(msg, cap, "path '%s': '%.*s' is not a parameter here: write {%.*s}", pattern,
                         (int)(close - open + 1), open, (int)(close - name), name);
            else
                snprintf(msg, cap, "path '%s': a path cannot hold '<' or '>' (write parameters as {name})", pattern);
            return -1;
        }
    }
    return 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

long crest__percent_decode(char *dst, const char *s, size_t len, bool plus_is_space)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '%') {
            if (i + 2 >= len)
                return -1;
            int h = hexval(s[i + 1]), l = hexval(s[i + 2]);
            if (h < 0 || l < 0)
                return -1;
            dst[o++] = (char)(h * 16 + l);
            i += 2;
        } else if (c == '+' && plus_is_space) {
            dst[o++] = ' ';
        } else {
            dst[o++] = c;
        }
    }
    return (long)o;
}

int crest__path_split(char *buf, crest__str *segs, unsigned max)
{
    if (buf[0] != '/')
        return -1;
    char *p = buf + 1;
    unsigned n = 0;
    for (;;) {
        char *e = strchr(p, '/');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (n == max)
            return -2;
        long d = crest__percent_decode(p, p, len, false);
        if (d < 0 || memchr(p, 0, (size_t)d))
            return -1;
        segs[n].ptr = p;
        segs[n].len = (size_t)d;
        n++;
        if (!e)
            break;
        p = e + 1;
    }
    return (int)n;
}

static const crest__route *walk(const node *n, crest_method m, const crest__str *segs, unsigned nsegs,
                                crest__match *mt, unsigned depth_params, bool *path_found)
{
    if (nsegs == 0) {
        bool any = false;
        for (unsigned i = 1; i < CREST_METHOD_COUNT; i++)
            if (n->routes[i])
                any = true;
        if (!any)
            return NULL;
        *path_found = true;
        const crest__route *rt = n->routes[m];
        if (!rt && m == CREST_HEAD)
            rt = n->routes[CREST_GET];
        if (rt) {
            mt->nparams = depth_params;
            return rt;
        }
        for (unsigned i = 1; i < CREST_METHOD_COUNT; i++)
            if (n->routes[i])
                mt->allow |= 1u << i;
        return NULL;
    }
    for (unsigned i = 0; i < n->nkids; i++) {
        const node *c = n->kids[i];
        if (c->lit_len == segs[0].len && memcmp(c->lit, segs[0].ptr, c->lit_len) == 0) {
            const crest__route *rt = walk(c, m, segs + 1, nsegs - 1, mt, depth_params, path_found);
            if (rt)
                return rt;
            break;
        }
    }
    if (n->param && segs[0].len > 0 && depth_params < CREST_ROUTER_MAX_PARAMS) {
        mt->values[depth_params] = segs[0];
        return walk(n->param, m, segs + 1, nsegs - 1, mt, depth_params + 1, path_found);
    }
    return NULL;
}

int crest__router_match(const crest__router *r, crest_method method, const crest__str *segs, unsigned nsegs,
                        crest__match *m)
{
    m->route = NULL;
    m->nparams = 0;
    m->allow = 0;
    bool path_found = false;
    if (method < 1 || method >= CREST_METHOD_COUNT)
        method = 0;
    const crest__route *rt = walk(&r->root, method, segs, nsegs, m, 0, &path_found);
    if (rt) {
        m->route = rt;
        return 200;
    }
    if (path_found) {
        if (m->allow & (1u << CREST_GET))
            m->allow |= 1u << CREST_HEAD;
        return 405;
    }
    return 404;
}

/* The method's name as HTTP writes it (crest.h). */
const char *crest_method_name(crest_method m)
{
    switch (m) {
    case CREST_GET: return "GET";
    case CREST_HEAD: return "HEAD";
    case CREST_POST: return "POST";
    case CREST_PUT: return "PUT";
    case CREST_PATCH: return "PATCH";
    case CREST_DELETE: return "DELETE";
    case CREST_OPTIONS: return "OPTIONS";
    }
    return NULL;
}
