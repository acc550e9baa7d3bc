/* buf.c — a growable byte buffer with a hard cap, for connection input and
 * output and anything else sized by what a client sends. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "core.h"

void crest__buf_init(crest__buf *b, size_t limit)
{
    b->ptr = NULL;
    b->len = b->cap = 0;
    b->limit = limit;
}

void crest__buf_dispose(crest__buf *b)
{
    free(b->ptr);
    b->ptr = NULL;
    b->len = b->cap = 0;
}

int crest__buf_reserve(crest__buf *b, size_t extra)
{
    if (extra > SIZE_MAX - b->len)
        return CREST_EINVAL;
    size_t need = b->len + extra;
    if (b->limit && need > b->limit)
        return CREST_EINVAL;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    if (b->limit && cap > b->limit)
        cap = b->limit;
    char *p = realloc(b->ptr, cap);
    if (!p)
        return CREST_ENOMEM;
    b->ptr = p;
    b->cap = cap;
    return 0;
}

int crest__buf_append(crest__buf *b, const void *p, size_t n)
{
    int rc = crest__buf_reserve(b, n);
    if (rc)
        return rc;
    if (n)
        memcpy(b->ptr + b->len, p, n);
    b->len += n;
    return 0;
}

int crest__buf_appendf(crest__buf *b, const char *fmt, ...)
{
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return CREST_EINVAL;
    if ((size_t)n < sizeof small)
        return crest__buf_append(b, small, (size_t)n);
    if (b->limit && (size_t)n > b->limit - (b->len < b->limit ? b->len : b->limit))
        return CREST_EINVAL;
    /* Room for vsnprintf's NUL, which is not part of the content: the limit
     * counts content only. */
    size_t lim = b->limit;
    if (lim)
        b->limit = lim + 1;
    int rc = crest__buf_reserve(b, (size_t)n + 1);
    b->limit = lim;
    if (rc)
        return rc;
    va_start(ap, fmt);
    vsnprintf(b->ptr + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

void crest__buf_consume(crest__buf *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->ptr, b->ptr + n, b->len - n);
    b->len -= n;
}
