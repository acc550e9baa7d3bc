/* dberr.c — what every store's failures share: the form in which SQL
 * raises an answer of its own (a SQLite trigger's RAISE(ABORT, ...), a
 * PostgreSQL RAISE EXCEPTION), read the same for both; and how long a
 * transaction that lost to a concurrent one waits before it runs again. */
#include <string.h>

#include "store.h"

/* "crest:<status>:<detail>", the form a trigger's RAISE(ABORT, ...) uses to
 * answer with its own status (docs: README, "Errors raised by SQL"). Only
 * 4xx/5xx statuses crest has a reason phrase for are honoured, except 401
 * and 405, whose answers need headers SQL cannot give. */
unsigned crest__conflict_pause_ms(unsigned again)
{
    /* 10, 20, 40 ms, and as much again at most, by the clock's low bits:
     * the two sides of a deadlock do not come back at the same moment. */
    unsigned base = 10u << (again > 1 ? (again - 1 < 4 ? again - 1 : 4) : 0);
    return base + (unsigned)(crest__now_us() % base);
}

bool crest__dberr_raised(const char *msg, int *status, const char **detail)
{
    if (!msg || strncmp(msg, "crest:", 6))
        return false;
    const char *p = msg + 6;
    if (!(p[0] >= '4' && p[0] <= '5') || !(p[1] >= '0' && p[1] <= '9') || !(p[2] >= '0' && p[2] <= '9') ||
        p[3] != ':')
        return false;
    int st = (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
    if (st == 401 || st == 405 || !strcmp(crest__status_text(st), "Unknown"))
        return false;
    p += 4;
    while (*p == ' ')
        p++;
    if (!*p)
        return false;
    *status = st;
    *detail = p;
    return true;
}
