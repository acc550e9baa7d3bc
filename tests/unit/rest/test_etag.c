/* test_etag.c — the entity-tag list grammar of If-Match and If-None-Match
 * (RFC 9110 section 8.8.3 and 13.1: "*" / #entity-tag) as etag.c parses it,
 * every odd form accepted or refused; the weak comparison of If-None-Match
 * (W/ and g-gzip's "-gzip" ignored); and the row part of crest's row tags
 * that If-Match compares. */
#include <stdlib.h>

#include "unit.h"

#include "rest/module_internal.h"

static int parse(const char *s, crest__etags *l)
{
    const char *msg = NULL;
    int rc = crest__etag_parse(s, l, &msg);
    if (rc)
        assert_non_null(msg);
    return rc;
}

static void tag_is(const crest__etags *l, unsigned i, const char *opaque, bool weak)
{
    assert_true(i < l->n);
    assert_bytes_eq(l->tag[i].s, l->tag[i].n, opaque);
    assert_int_equal(l->tag[i].weak, weak);
}

static void well_formed_lists(void **state)
{
    (void)state;
    crest__etags l;
    assert_int_equal(parse("\"abc\"", &l), 0);
    assert_int_equal(l.n, 1);
    assert_false(l.star);
    tag_is(&l, 0, "abc", false);
    assert_int_equal(parse("W/\"abc\"", &l), 0);
    tag_is(&l, 0, "abc", true);
    /* the empty opaque tag is an entity-tag */
    assert_int_equal(parse("\"\"", &l), 0);
    tag_is(&l, 0, "", false);
    /* a list, with OWS (spaces, tabs) and empty elements */
    assert_int_equal(parse(" \"a\" ,\tW/\"b\",\"c\" ", &l), 0);
    assert_int_equal(l.n, 3);
    tag_is(&l, 0, "a", false);
    tag_is(&l, 1, "b", true);
    tag_is(&l, 2, "c", false);
    assert_int_equal(parse(", , \"a\",,\"b\" ,", &l), 0);
    assert_int_equal(l.n, 2);
    /* "*" alone, with OWS */
    assert_int_equal(parse("*", &l), 0);
    assert_true(l.star);
    assert_int_equal(parse("  *\t", &l), 0);
    assert_true(l.star);
    /* etagc: '!' and %x23-7E and obs-text; a comma and W/ inside quotes are text */
    assert_int_equal(parse("\"!#$,W/~\x80\xff\"", &l), 0);
    tag_is(&l, 0, "!#$,W/~\x80\xff", false);
    /* g-gzip's suffix is dropped, once */
    assert_int_equal(parse("\"1.2.fab-gzip\", W/\"x-gzip-gzip\", \"-gzip\"", &l), 0);
    tag_is(&l, 0, "1.2.fab", false);
    tag_is(&l, 1, "x-gzip", true);
    tag_is(&l, 2, "", false);
    /* as many tags as the limit */
    char many[CREST_ETAG_LIST_MAX * 5 + 1] = "";
    for (int i = 0; i < CREST_ETAG_LIST_MAX; i++)
        strcat(many, "\"x\",");
    assert_int_equal(parse(many, &l), 0);
    assert_int_equal(l.n, CREST_ETAG_LIST_MAX);
}

static void malformed_lists(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",                /* 1#: one element at least */
        "   ",
        ",",
        " , ,",
        "abc",             /* not quoted */
        "\"abc",           /* not closed */
        "abc\"",
        "w/\"abc\"",       /* W/ is case-sensitive */
        "W/abc",
        "W/ \"abc\"",      /* nothing between W/ and the quote */
        "W\"abc\"",
        "\"a\" \"b\"",     /* no comma between */
        "\"a\"b",
        "\"a\";q=1",
        "\"a\"\"b\"",
        "\"a b\"",         /* SP is not an etagc */
        "\"a\tb\"",
        "\"a\x7f\"",       /* DEL neither */
        "\"a\x01\"",
        "*, \"a\"",        /* * stands alone */
        "\"a\", *",
        "**",
        "* *",
        "W/*",
        "\"*\" x",
    };
    for (size_t i = 0; i < COUNT_OF(bad); i++) {
        crest__etags l;
        if (parse(bad[i], &l) != -1)
            fail_msg("accepted: [%s]", bad[i]);
    }
    /* one past the limit */
    char many[(CREST_ETAG_LIST_MAX + 1) * 5 + 1] = "";
    for (int i = 0; i <= CREST_ETAG_LIST_MAX; i++)
        strcat(many, "\"x\",");
    crest__etags l;
    const char *msg = NULL;
    assert_int_equal(crest__etag_parse(many, &l, &msg), -1);
    assert_string_equal(msg, "too many entity-tags (at most 32)");
}

static void weak_comparison(void **state)
{
    (void)state;
    crest__etags l;
    assert_int_equal(parse("W/\"1.a.f0\", \"2.b.f0-gzip\"", &l), 0);
    assert_true(crest__etag_weak_match(&l, "\"1.a.f0\"", NULL));
    assert_true(crest__etag_weak_match(&l, "\"2.b.f0\"", NULL));
    assert_false(crest__etag_weak_match(&l, "\"1.a.f1\"", NULL));
    assert_false(crest__etag_weak_match(&l, "\"1.a.f\"", NULL));
    assert_false(crest__etag_weak_match(&l, "\"\"", NULL));
    assert_int_equal(parse("*", &l), 0);
    assert_true(crest__etag_weak_match(&l, "\"anything\"", NULL));
}

static void row_part(void **state)
{
    (void)state;
    crest__etags l;
    assert_int_equal(parse("\"12.1a2b.f0c\", \"12.ff.b99\", \"l0123\", \"12.\", \"x.1.f\", \"12.1g.f\", \"1.2\", "
                           "\"12.1A.f\", \".1.f\", \"1..f\", \"9223372036854775808.1.f\", \"99999999999999999999.1.f\", "
                           "\"1.1234567890abcdef.f\"",
                           &l),
                     0);
    int64_t id, v;
    assert_int_equal(crest__etag_row_part(&l.tag[0], &id, &v), 0);
    assert_int_equal(id, 12);
    assert_int_equal(v, 0x1a2b);
    assert_int_equal(crest__etag_row_part(&l.tag[1], &id, &v), 0);
    assert_int_equal(v, 0xff);
    /* the largest id */
    crest__etag t = {"9223372036854775807.0.f", 23, false, false};
    assert_int_equal(crest__etag_row_part(&t, &id, &v), 0);
    assert_true(id == INT64_MAX && v == 0);
    for (unsigned i = 2; i < l.n; i++)
        assert_int_equal(crest__etag_row_part(&l.tag[i], &id, &v), -1);
}

static void hash_is_fnv1a(void **state)
{
    (void)state;
    assert_true(crest__etag_hash("", 0) == 14695981039346656037ull);
    assert_true(crest__etag_hash("a", 1) == 0xaf63dc4c8601ec8cull);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(well_formed_lists), cmocka_unit_test(malformed_lists), cmocka_unit_test(weak_comparison),
        cmocka_unit_test(row_part),          cmocka_unit_test(hash_is_fnv1a),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
