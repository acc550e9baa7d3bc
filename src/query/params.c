/* params.c — an SQL endpoint's :name parameters numbered $1..$n for
 * PostgreSQL, which has no named parameters (SQLite reads :name itself). A
 * small scanner of PostgreSQL's lexical structure finds them outside string
 * constants, quoted identifiers, comments and dollar quotes, and leaves `::`
 * casts alone; every other byte is copied as it is. It assumes
 * standard_conforming_strings (on since PostgreSQL 9.1): a backslash escapes
 * only in E'...' strings. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "query.h"

/* PostgreSQL's identifiers: a letter, _ or any byte of a multibyte
 * character, then those, digits and $. */
static bool is_letter(unsigned char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
static bool ident_start(unsigned char c) { return is_letter(c) || c == '_' || c >= 0x80; }
static bool ident_cont(unsigned char c) { return ident_start(c) || is_digit(c) || c == '$'; }
/* crest's parameter names: ASCII only. */
static bool name_start(unsigned char c) { return is_letter(c) || c == '_'; }
static bool name_cont(unsigned char c) { return name_start(c) || is_digit(c); }

#define NOT_FOUND ((size_t)-1)

typedef struct scan {
    crest__arena *a;
    const unsigned char *s;
    size_t len;
    char *o;                                  /* the output, from the arena */
    size_t olen;
    const char *names[CREST_SQL_MAX_PARAMS];  /* arena copies */
    size_t nlens[CREST_SQL_MAX_PARAMS];
    unsigned n;
    size_t first_name_at, first_positional_at; /* NOT_FOUND: none yet */
    int err;
    const char *msg;
} scan;

static int fail(scan *sc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(scan *sc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char tmp[512];
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    sc->msg = crest__arena_strdup(sc->a, tmp);
    sc->err = sc->msg ? CREST_EINVAL : CREST_ENOMEM;
    if (!sc->msg)
        sc->msg = "out of memory";
    return -1;
}

/* The end (one past the closing quote) of a quoted run opening at s[i]:
 * q doubled is a q inside; with `backslash`, \ escapes the next byte. */
static size_t quoted_end(const scan *sc, size_t i, unsigned char q, bool backslash)
{
    for (size_t j = i + 1; j < sc->len;) {
        if (backslash && sc->s[j] == '\\')
            j += 2;
        else if (sc->s[j] != q)
            j++;
        else if (j + 1 < sc->len && sc->s[j + 1] == q)
            j += 2;
        else
            return j + 1;
    }
    return NOT_FOUND;
}

/* The end of a block comment opening at s[i]: PostgreSQL's nest. */
static size_t block_comment_end(const scan *sc, size_t i)
{
    unsigned long depth = 1;
    for (size_t j = i + 2; j + 1 < sc->len;) {
        if (sc->s[j] == '/' && sc->s[j + 1] == '*') {
            depth++;
            j += 2;
        } else if (sc->s[j] == '*' && sc->s[j + 1] == '/') {
            j += 2;
            if (--depth == 0)
                return j;
        } else {
            j++;
        }
    }
    return NOT_FOUND;
}

/* The end of a line comment at s[i]: its newline stays outside. */
static size_t line_comment_end(const scan *sc, size_t i)
{
    size_t j = i + 2;
    while (j < sc->len && sc->s[j] != '\n' && sc->s[j] != '\r')
        j++;
    return j;
}

/* The length of the dollar-quote delimiter ($$ or $tag$) at s[i], or 0
 * when s[i] does not open one. A tag is an identifier without $. */
static size_t dollar_delim(const scan *sc, size_t i)
{
    size_t j = i + 1;
    if (j < sc->len && ident_start(sc->s[j]))
        while (j < sc->len && (ident_start(sc->s[j]) || is_digit(sc->s[j])))
            j++;
    return j < sc->len && sc->s[j] == '$' ? j + 1 - i : 0;
}

/* The end of the dollar-quoted string whose delimiter, d bytes, is at s[i]:
 * past the first copy of the same delimiter after it. */
static size_t dollar_end(const scan *sc, size_t i, size_t d)
{
    for (size_t j = i + d; j + d <= sc->len; j++)
        if (sc->s[j] == '$' && !memcmp(sc->s + j, sc->s + i, d))
            return j + d;
    return NOT_FOUND;
}

static void put(scan *sc, const void *p, size_t n)
{
    memcpy(sc->o + sc->olen, p, n);
    sc->olen += n;
}

/* The :name at s[i] (s[i+1] starts a name): its $n into the output. `glued`:
 * the byte before it ends an identifier or number. Returns the end of the
 * name, or NOT_FOUND after fail(). */
static size_t parameter(scan *sc, size_t i, bool glued)
{
    size_t j = i + 1;
    while (j < sc->len && name_cont(sc->s[j]))
        j++;
    if (j + 1 < sc->len && sc->s[j] == '.' && name_start(sc->s[j + 1])) { /* :user.id */
        j++;
        while (j < sc->len && name_cont(sc->s[j]))
            j++;
    }
    const char *name = (const char *)sc->s + i + 1;
    int nlen = (int)(j - i - 1 < 200 ? j - i - 1 : 200); /* for messages */
    if (j + 1 < sc->len && sc->s[j] == '.' && name_start(sc->s[j + 1])) {
        fail(sc, ":%.*s.%c... at offset %zu: a parameter name has at most one dot (:user.id)", nlen, name,
             sc->s[j + 1], i);
        return NOT_FOUND;
    }
    if (j < sc->len && (sc->s[j] == '$' || sc->s[j] >= 0x80)) {
        fail(sc,
             ":%.*s at offset %zu is followed by '$' or a non-ASCII byte: "
             "a parameter name is ASCII letters, digits and _",
             nlen, name, i);
        return NOT_FOUND;
    }
    size_t n = j - i - 1;
    unsigned k = 0;
    while (k < sc->n && !(sc->nlens[k] == n && !memcmp(sc->names[k], name, n)))
        k++;
    if (k == sc->n) {
        if (sc->n == CREST_SQL_MAX_PARAMS) {
            fail(sc, "too many parameters: :%.*s at offset %zu would be parameter %u; at most %u distinct :names", nlen,
                 name, i, CREST_SQL_MAX_PARAMS + 1, CREST_SQL_MAX_PARAMS);
            return NOT_FOUND;
        }
        if (!(sc->names[k] = crest__arena_strndup(sc->a, name, n))) {
            sc->err = CREST_ENOMEM;
            sc->msg = "out of memory";
            return NOT_FOUND;
        }
        sc->nlens[k] = n;
        sc->n++;
    }
    if (sc->first_name_at == NOT_FOUND)
        sc->first_name_at = i;
    char num[16];
    int w = snprintf(num, sizeof num, "%s$%u", glued ? " " : "", k + 1);
    put(sc, num, (size_t)w);
    return j;
}

/* Copies s[i..end) when end is found, else fails naming what is open. */
static size_t span(scan *sc, size_t i, size_t end, const char *what)
{
    if (end == NOT_FOUND) {
        fail(sc, "unterminated %s (opened at offset %zu)", what, i);
        return NOT_FOUND;
    }
    put(sc, sc->s + i, end - i);
    return end;
}

static int run(scan *sc)
{
    size_t i = 0;
    bool glue = false; /* the last byte copied ends an identifier, a number or a $n */
    while (i < sc->len) {
        const unsigned char c = sc->s[i];
        const unsigned char next = i + 1 < sc->len ? sc->s[i + 1] : 0;
        bool glues = false;
        size_t end;
        if (c == '\'') {
            end = span(sc, i, quoted_end(sc, i, '\'', false), "quoted string '...'");
        } else if (c == '"') {
            end = span(sc, i, quoted_end(sc, i, '"', false), "quoted identifier \"...\"");
        } else if (c == '-' && next == '-') {
            end = span(sc, i, line_comment_end(sc, i), "line comment");
        } else if (c == '/' && next == '*') {
            end = span(sc, i, block_comment_end(sc, i), "block comment /* */");
        } else if (c == '$' && is_digit(next)) { /* a positional parameter, $1 */
            if (sc->first_positional_at == NOT_FOUND)
                sc->first_positional_at = i;
            end = i + 1;
            while (end < sc->len && is_digit(sc->s[end]))
                end++;
            put(sc, sc->s + i, end - i);
            glues = true;
        } else if (c == '$' && dollar_delim(sc, i)) {
            size_t d = dollar_delim(sc, i);
            int dn = (int)(d < 64 ? d : 64);
            end = dollar_end(sc, i, d);
            if (end == NOT_FOUND) {
                fail(sc, "unterminated dollar-quoted string %.*s...%.*s (opened at offset %zu)", dn, sc->s + i, dn,
                     sc->s + i, i);
                return -1;
            }
            put(sc, sc->s + i, end - i);
        } else if (ident_start(c)) {
            /* A whole identifier or keyword: a $ in it opens no dollar quote,
             * and a lone E (or e) before a quote opens an escape string. */
            end = i + 1;
            while (end < sc->len && ident_cont(sc->s[end]))
                end++;
            if ((c == 'E' || c == 'e') && next == '\'') {
                end = span(sc, i, quoted_end(sc, i + 1, '\'', true), "escape string E'...'");
            } else {
                put(sc, sc->s + i, end - i);
                glues = true;
            }
        } else if (c == ':' && next == ':') { /* a cast */
            put(sc, "::", 2);
            end = i + 2;
        } else if (c == ':' && name_start(next)) {
            end = parameter(sc, i, glue);
            glues = true;
        } else {
            put(sc, &c, 1);
            end = i + 1;
            glues = is_digit(c);
        }
        if (end == NOT_FOUND)
            return -1;
        i = end;
        glue = glues;
    }
    if (sc->n && sc->first_positional_at != NOT_FOUND)
        return fail(sc,
                    "the SQL mixes a positional parameter ($n at offset %zu) with :name parameters "
                    "(:%s at offset %zu); write :name parameters only",
                    sc->first_positional_at, sc->names[0], sc->first_name_at);
    return 0;
}

int crest__sql_number_params(crest__arena *a, const char *sql, size_t len, crest__numbered_sql *out,
                             const char **msg)
{
    memset(out, 0, sizeof *out);
    const char *ignored;
    if (!msg)
        msg = &ignored;
    *msg = NULL;
    /* Each :name, two bytes at least, becomes at most five (" $255"); every
     * other byte is copied: 3 * len bytes and the NUL are enough. */
    if (len > (SIZE_MAX - 1) / 3) {
        *msg = "out of memory";
        return CREST_ENOMEM;
    }
    char *o = crest__arena_alloc(a, len * 3 + 1);
    if (!o) {
        *msg = "out of memory";
        return CREST_ENOMEM;
    }
    scan scan_, *sc = &scan_; /* 4 KB: the names seen, on the stack */
    memset(sc, 0, sizeof *sc);
    sc->a = a;
    sc->s = (const unsigned char *)sql;
    sc->len = len;
    sc->o = o;
    sc->first_name_at = sc->first_positional_at = NOT_FOUND;
    if (run(sc)) {
        *msg = sc->msg;
        return sc->err;
    }
    const char **names = NULL;
    if (sc->n && !(names = crest__arena_alloc(a, sc->n * sizeof *names))) {
        *msg = "out of memory";
        return CREST_ENOMEM;
    }
    if (sc->n)
        memcpy(names, sc->names, sc->n * sizeof *names);
    o[sc->olen] = 0;
    out->sql = o;
    out->len = sc->olen;
    out->names = names;
    out->nnames = sc->n;
    return 0;
}

/* ---- transaction control ---- */

/* The next word of s[*i..len) after blanks and comments, lower-cased into
 * w (at most n-1 letters; longer words are cut); *i moves past it. */
static void next_word(const scan *sc, size_t *i, char *w, size_t n)
{
    size_t j = *i;
    for (;;) {
        while (j < sc->len && (sc->s[j] == ' ' || (sc->s[j] >= '\t' && sc->s[j] <= '\r')))
            j++;
        if (j + 1 < sc->len && sc->s[j] == '-' && sc->s[j + 1] == '-') {
            while (j < sc->len && sc->s[j] != '\n')
                j++;
        } else if (j + 1 < sc->len && sc->s[j] == '/' && sc->s[j + 1] == '*') {
            size_t e = block_comment_end(sc, j);
            j = e == NOT_FOUND ? sc->len : e;
        } else {
            break;
        }
    }
    size_t k = 0;
    while (j < sc->len && is_letter(sc->s[j])) {
        if (k + 1 < n)
            w[k++] = (char)(sc->s[j] | 0x20);
        j++;
    }
    w[k] = 0;
    *i = j;
}

crest__txn_stmt crest__sql_txn_control(const char *sql, size_t len)
{
    scan sc = {.s = (const unsigned char *)sql, .len = len};
    size_t i = 0;
    char w[16], w2[16];
    next_word(&sc, &i, w, sizeof w);
    if (!strcmp(w, "begin"))
        return CREST__TXN_STMT_BEGIN;
    if (!strcmp(w, "savepoint") || !strcmp(w, "release"))
        return CREST__TXN_STMT_SAVEPOINT;
    if (!strcmp(w, "start") || !strcmp(w, "commit") || !strcmp(w, "end") || !strcmp(w, "rollback") ||
        !strcmp(w, "abort")) {
        next_word(&sc, &i, w2, sizeof w2);
        if (!strcmp(w, "start"))
            return !strcmp(w2, "transaction") ? CREST__TXN_STMT_BEGIN : CREST__TXN_STMT_NONE;
        if (!strcmp(w, "rollback") && !strcmp(w2, "to"))
            return CREST__TXN_STMT_SAVEPOINT;
        if (!strcmp(w2, "prepared"))
            return CREST__TXN_STMT_NONE; /* COMMIT/ROLLBACK PREPARED: no transaction of this session */
        return CREST__TXN_STMT_END;
    }
    return CREST__TXN_STMT_NONE;
}
