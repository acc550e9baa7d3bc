/* ytree.c — libyaml events → ynode tree (see ytree.h). */
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "../core/core.h"
#include "ytree.h"

typedef struct {
    yaml_parser_t p;
    const char *name;
    crest_error *err;
    size_t nodes;
} ctx;

void crest__ytree_free(ynode *n)
{
    if (!n)
        return;
    size_t k = n->kind == Y_MAP ? n->n * 2 : n->n;
    for (size_t i = 0; i < k; i++)
        crest__ytree_free(n->kids[i]);
    free(n->kids);
    free(n->str);
    free(n);
}

ynode *crest__ytree_get(const ynode *map, const char *key)
{
    if (!map || map->kind != Y_MAP)
        return NULL;
    for (size_t i = 0; i < map->n; i++)
        if (strcmp(map->kids[2 * i]->str, key) == 0)
            return map->kids[2 * i + 1];
    return NULL;
}

bool crest__ytree_is_null(const ynode *n)
{
    return n->kind == Y_SCALAR && n->plain &&
           (n->len == 0 || !strcmp(n->str, "~") || !strcmp(n->str, "null") || !strcmp(n->str, "Null") ||
            !strcmp(n->str, "NULL"));
}

static int fail(ctx *c, int line, const char *msg)
{
    crest__error_set(c->err, CREST_ECONFIG, c->name, line, "%s", msg);
    return -1;
}

static int next(ctx *c, yaml_event_t *ev)
{
    if (!yaml_parser_parse(&c->p, ev)) {
        char msg[400];
        snprintf(msg, sizeof msg, "YAML syntax error: %s%s%s", c->p.problem ? c->p.problem : "unknown problem",
                 c->p.context ? " " : "", c->p.context ? c->p.context : "");
        return fail(c, (int)c->p.problem_mark.line + 1, msg);
    }
    return 0;
}

/* Builds the node for the event ev (already read). */
static ynode *build(ctx *c, yaml_event_t *ev, int depth)
{
    if (++c->nodes > YTREE_MAX_NODES) {
        fail(c, (int)ev->start_mark.line + 1, "the app file has too many nodes");
        return NULL;
    }
    if (depth > YTREE_MAX_DEPTH) {
        fail(c, (int)ev->start_mark.line + 1, "the app file nests too deeply");
        return NULL;
    }
    ynode *n = calloc(1, sizeof *n);
    if (!n) {
        fail(c, 0, "out of memory");
        return NULL;
    }
    n->line = (int)ev->start_mark.line + 1;
    switch (ev->type) {
    case YAML_SCALAR_EVENT:
        n->kind = Y_SCALAR;
        n->len = ev->data.scalar.length;
        n->str = malloc(n->len + 1);
        if (!n->str) {
            free(n);
            fail(c, 0, "out of memory");
            return NULL;
        }
        memcpy(n->str, ev->data.scalar.value, n->len);
        n->str[n->len] = 0;
        n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
        if (memchr(n->str, 0, n->len)) {
            crest__ytree_free(n);
            fail(c, (int)ev->start_mark.line + 1, "a string holds a NUL character");
            return NULL;
        }
        return n;
    case YAML_ALIAS_EVENT:
        free(n);
        fail(c, (int)ev->start_mark.line + 1, "YAML aliases (*name) are not supported in app files");
        return NULL;
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT: {
        bool map = ev->type == YAML_MAPPING_START_EVENT;
        n->kind = map ? Y_MAP : Y_SEQ;
        size_t cap = 0, cnt = 0;
        for (;;) {
            yaml_event_t e;
            if (next(c, &e))
                goto bad;
            if (e.type == YAML_SEQUENCE_END_EVENT || e.type == YAML_MAPPING_END_EVENT) {
                yaml_event_delete(&e);
                break;
            }
            ynode *k = build(c, &e, depth + 1);
            yaml_event_delete(&e);
            if (!k)
                goto bad;
            if (cnt == cap) {
                size_t nc = cap ? cap * 2 : 8;
                ynode **nk = realloc(n->kids, nc * sizeof *nk);
                if (!nk) {
                    crest__ytree_free(k);
                    fail(c, 0, "out of memory");
                    goto bad;
                }
                n->kids = nk;
                cap = nc;
            }
            n->kids[cnt++] = k;
            if (map && cnt % 2 == 1) {
                if (k->kind != Y_SCALAR) {
                    n->n = cnt / 2;
                    fail(c, k->line, "map keys must be strings");
                    n->kids[cnt - 1] = NULL;
                    crest__ytree_free(k);
                    goto bad_count;
                }
                for (size_t i = 0; i + 1 < cnt; i += 2)
                    if (strcmp(n->kids[i]->str, k->str) == 0) {
                        char msg[300];
                        int kline = k->line;
                        snprintf(msg, sizeof msg, "the key '%.200s' appears twice", k->str);
                        n->kids[cnt - 1] = NULL;
                        crest__ytree_free(k);
                        n->n = cnt / 2;
                        fail(c, kline, msg);
                        goto bad_count;
                    }
            }
            n->n = map ? cnt / 2 : cnt;
        }
        return n;
    bad_count:
        /* The kids array holds cnt-1 built nodes. */
        for (size_t i = 0; i + 1 < cnt; i++)
            crest__ytree_free(n->kids[i]);
        free(n->kids);
        free(n);
        return NULL;
    bad:
        n->n = map ? cnt / 2 : cnt;
        if (map && cnt % 2 == 1) /* a key without its value */
            crest__ytree_free(n->kids[cnt - 1]);
        crest__ytree_free(n);
        return NULL;
    }
    default:
        free(n);
        fail(c, (int)ev->start_mark.line + 1, "unexpected YAML event");
        return NULL;
    }
}

ynode *crest__ytree_parse(const char *name, const char *text, size_t len, crest_error *err)
{
    if (len > YTREE_MAX_BYTES) {
        crest__error_set(err, CREST_ECONFIG, name, 0, "the app file is larger than %u bytes", YTREE_MAX_BYTES);
        return NULL;
    }
    /* A JSON document may indent with tabs, which YAML forbids; outside strings
     * (where JSON has no raw tabs) a tab is plain whitespace, so a space will do. */
    char *copy = NULL;
    size_t i = 0;
    while (i < len && (text[i] == ' ' || text[i] == '\n' || text[i] == '\r' || text[i] == '\t'))
        i++;
    if (i < len && (text[i] == '{' || text[i] == '[') && memchr(text, '\t', len)) {
        copy = malloc(len ? len : 1);
        if (!copy) {
            crest__error_set(err, CREST_ENOMEM, name, 0, "out of memory");
            return NULL;
        }
        for (size_t k = 0; k < len; k++)
            copy[k] = text[k] == '\t' ? ' ' : text[k];
        text = copy;
    }
    ctx c = {.name = name, .err = err};
    ynode *root = NULL;
    if (!yaml_parser_initialize(&c.p)) {
        free(copy);
        crest__error_set(err, CREST_ENOMEM, name, 0, "out of memory");
        return NULL;
    }
    yaml_parser_set_input_string(&c.p, (const unsigned char *)text, len);
    yaml_event_t ev;
    int docs = 0;
    for (;;) {
        if (next(&c, &ev))
            goto fail;
        yaml_event_type_t t = ev.type;
        if (t == YAML_STREAM_END_EVENT) {
            yaml_event_delete(&ev);
            break;
        }
        if (t == YAML_DOCUMENT_START_EVENT) {
            if (++docs > 1) {
                fail(&c, (int)ev.start_mark.line + 1, "an app file holds one YAML document");
                yaml_event_delete(&ev);
                goto fail;
            }
        } else if (t == YAML_SCALAR_EVENT || t == YAML_SEQUENCE_START_EVENT || t == YAML_MAPPING_START_EVENT ||
                   t == YAML_ALIAS_EVENT) {
            root = build(&c, &ev, 0);
            if (!root) {
                yaml_event_delete(&ev);
                goto fail;
            }
        }
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&c.p);
    free(copy);
    if (!root)
        crest__error_set(err, CREST_ECONFIG, name, 1, "the app file is empty");
    return root;
fail:
    crest__ytree_free(root);
    yaml_parser_delete(&c.p);
    free(copy);
    return NULL;
}
