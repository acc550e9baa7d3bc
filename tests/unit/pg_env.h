/* pg_env.h — where a unit test finds the tests' PostgreSQL cluster
 * (tests/pg/cluster.py; CTest passes it to the tests registered with
 * crest_uses_pg). Header-only: include it from the tests that need it. */
#ifndef CREST_TESTS_PG_ENV_H
#define CREST_TESTS_PG_ENV_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The libpq conninfo of the cluster: CREST_TEST_PG itself when set, else the
 * first line of the file CREST_TEST_PG_FILE names. NULL when neither is set:
 * the test then skips PostgreSQL. The string is a static buffer of this
 * translation unit, read once; do not free it. A CREST_TEST_PG_FILE that
 * cannot be read, or a conninfo that does not fit, ends the test program
 * with status 1: the cluster was promised and is not there. */
static inline const char *crest_test_pg_conninfo(void)
{
    static char buf[1024];
    static int loaded;
    if (loaded)
        return buf[0] ? buf : NULL;
    const char *direct = getenv("CREST_TEST_PG");
    const char *path = getenv("CREST_TEST_PG_FILE");
    if (direct && direct[0]) {
        if (strlen(direct) >= sizeof buf) {
            fprintf(stderr, "CREST_TEST_PG is longer than %zu bytes\n", sizeof buf - 1);
            exit(1);
        }
        memcpy(buf, direct, strlen(direct) + 1);
    } else if (path && path[0]) {
        FILE *f = fopen(path, "r");
        if (!f || !fgets(buf, sizeof buf, f)) {
            fprintf(stderr, "CREST_TEST_PG_FILE=%s cannot be read (did the pg.start test fail?)\n", path);
            exit(1);
        }
        fclose(f);
        size_t n = strcspn(buf, "\r\n");
        if (buf[n] == 0 && n == sizeof buf - 1) {
            fprintf(stderr, "CREST_TEST_PG_FILE=%s: the conninfo is longer than %zu bytes\n", path, sizeof buf - 2);
            exit(1);
        }
        buf[n] = 0;
    }
    loaded = 1;
    return buf[0] ? buf : NULL;
}

#endif
