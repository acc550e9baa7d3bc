/* test_reader.c — the JSON reader (src/json/reader.c): the nesting scan
 * that runs before jansson (exact limit, brackets inside strings, escapes,
 * very deep input refused cheaply), malformed input and its error message,
 * duplicate keys, the bounded error buffer, and writing a parsed value back
 * through the writer. The body size limit itself is the HTTP layer's
 * (test_limits.c). */
#include <stdlib.h>

#include "unit.h"

#include "json/json_internal.h"

/* depth levels of open/close around a 0; malloc'd. */
static char *nested(const char *open, const char *close, int depth)
{
    size_t ol = strlen(open), cl = strlen(close);
    char *s = malloc((size_t)depth * (ol + cl) + 2);
    assert_non_null(s);
    char *p = s;
    for (int i = 0; i < depth; i++, p += ol)
        memcpy(p, open, ol);
    *p++ = '0';
    for (int i = 0; i < depth; i++, p += cl)
        memcpy(p, close, cl);
    *p = 0;
    return s;
}

static json_t *parse(const char *s, unsigned depth, char *err, size_t errcap)
{
    return crest__json_parse(s, strlen(s), depth, err, errcap);
}

static void depth_limit_is_exact(void **state)
{
    (void)state;
    char err[256];
    for (int kind = 0; kind < 2; kind++) {
        const char *open = kind ? "{\"k\":" : "[";
        const char *close = kind ? "}" : "]";
        char *ok = nested(open, close, 64), *deep = nested(open, close, 65);
        json_t *v = parse(ok, 64, err, sizeof err);
        assert_non_null(v);
        json_decref(v);
        err[0] = 0;
        assert_null(parse(deep, 64, err, sizeof err));
        assert_string_equal(err, "JSON nesting is deeper than 64 levels");
        assert_int_equal(crest__json_depth_ok(deep, strlen(deep), 65), 1);
        assert_int_equal(crest__json_depth_ok(deep, strlen(deep), 64), 0);
        free(ok);
        free(deep);
    }
    /* Mixed arrays and objects count together. */
    const char *mixed = "[{\"a\":[{\"b\":[]}]}]"; /* 5 levels */
    assert_int_equal(crest__json_depth_ok(mixed, strlen(mixed), 5), 1);
    assert_int_equal(crest__json_depth_ok(mixed, strlen(mixed), 4), 0);
    /* Depth 0: scalars only. */
    assert_int_equal(crest__json_depth_ok("42", 2, 0), 1);
    assert_int_equal(crest__json_depth_ok("[]", 2, 0), 0);
    /* Siblings do not add up. */
    const char *wide = "[[],[],[[]],{}]";
    assert_int_equal(crest__json_depth_ok(wide, strlen(wide), 3), 1);
}

static void depth_scan_ignores_strings(void **state)
{
    (void)state;
    char err[256];
    /* Brackets inside strings do not count. */
    const char *s1 = "[\"[[[[[[[[[[{{{{{{{{\"]";
    json_t *v = parse(s1, 1, err, sizeof err);
    assert_non_null(v);
    json_decref(v);
    /* An escaped quote does not end the string. */
    const char *s2 = "[\"\\\"[[[[[[\"]";
    v = parse(s2, 1, err, sizeof err);
    assert_non_null(v);
    assert_string_equal(json_string_value(json_array_get(v, 0)), "\"[[[[[[");
    json_decref(v);
    /* An escaped backslash does end it: the brackets after it count. */
    const char *s3 = "[\"\\\\\",[[]]]";
    assert_int_equal(crest__json_depth_ok(s3, strlen(s3), 3), 1);
    assert_int_equal(crest__json_depth_ok(s3, strlen(s3), 2), 0);
    /* Keys are strings too. */
    const char *s4 = "{\"[[[[\":{\"]]]]\":1}}";
    assert_int_equal(crest__json_depth_ok(s4, strlen(s4), 2), 1);
    assert_int_equal(crest__json_depth_ok(s4, strlen(s4), 1), 0);
}

static void very_deep_input_is_refused_cheaply(void **state)
{
    (void)state;
    /* A million '[': refused by the scan, jansson never sees it. */
    size_t n = 1000000;
    char *s = malloc(n);
    assert_non_null(s);
    memset(s, '[', n);
    char err[128];
    assert_null(crest__json_parse(s, n, 64, err, sizeof err));
    assert_string_equal(err, "JSON nesting is deeper than 64 levels");
    free(s);
}

static void malformed_inputs(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "", " ", "{", "}", "[", "]", "[1,]", "[,1]", "{\"a\":}", "{\"a\" 1}", "{a:1}", "{'a':1}", "'x'",
        "[1] x", "[1][2]", "1 2", "nul", "tru", "True", "NULL", "01", "-", "1.", ".5", "+1", "1e", "0x10",
        "NaN", "Infinity", "-Infinity", "\"abc", "\"\\x\"", "\"\\u12\"", "\"\\uZZZZ\"", "\"a\nb\"", "\"\t\"",
        "\"\xff\"", "\"\xC0\xAF\"", "\"\xED\xA0\x80\"", "\"\\u0000\"", "\"\\ud800\"", "\"\\udc00x\"",
        "{\"a\":1,\"a\":2}", "{\"x\":{\"a\":1,\"a\":1}}", "1e400", "9223372036854775808", "[1,2", "/* c */ 1",
        "// c\n1",
    };
    char err[256];
    for (size_t i = 0; i < COUNT_OF(bad); i++) {
        strcpy(err, "untouched");
        json_t *v = parse(bad[i], 64, err, sizeof err);
        if (v) {
            char *dump = json_dumps(v, JSON_ENCODE_ANY);
            print_error("accepted malformed JSON [%s] as %s\n", bad[i], dump ? dump : "?");
            free(dump);
            json_decref(v);
            fail();
        }
        if (strncmp(err, "invalid JSON at line ", 21) != 0) {
            print_error("[%s]: unexpected message '%s'\n", bad[i], err);
            fail();
        }
    }
    /* A NUL byte inside the given length. */
    assert_null(crest__json_parse("[1]\0", 4, 64, err, sizeof err));
    assert_null(crest__json_parse("[\"a\0b\"]", 7, 64, err, sizeof err));
}

static void error_position(void **state)
{
    (void)state;
    char err[256];
    assert_null(parse("{\n  \"a\": 1,\n  \"b\": ?\n}", 64, err, sizeof err));
    assert_non_null(strstr(err, "line 3"));
    assert_null(parse("{\"a\":1,\"a\":2}", 64, err, sizeof err));
    assert_non_null(strstr(err, "duplicate"));
    /* A small error buffer is cut, not overrun. */
    char small[12];
    memset(small, 'Z', sizeof small);
    assert_null(parse("[1,,]", 64, small, 8));
    assert_int_equal(strlen(small), 7);
    assert_int_equal(small[8], 'Z');
    char tiny[4] = "ZZZ";
    char *deep = nested("[", "]", 3);
    assert_null(parse(deep, 1, tiny, 2)); /* the depth message, cut to one byte */
    assert_int_equal(strlen(tiny), 1);
    assert_int_equal(tiny[2], 'Z');
    free(deep);
}

static void accepts_any_value(void **state)
{
    (void)state;
    static const char *const good[] = {
        "1", "-0", "0.5", "-1.5e-3", "1E10", "\"s\"", "\"\"", "null", "true", "false", " [1, 2] ",
        "\n\t{ \"a\" : [ ] }\r\n", "9223372036854775807", "-9223372036854775808", "\"\\u00e9\\ud834\\udd1e\"",
        "\"caf\xC3\xA9\"", "{\"a\":1,\"A\":2}", "[[[[]]]]", "{\"\":0}", "\"\\/\\b\\f\\n\\r\\t\\\\\\\"\"",
    };
    char err[256];
    for (size_t i = 0; i < COUNT_OF(good); i++) {
        json_t *v = parse(good[i], 64, err, sizeof err);
        if (!v) {
            print_error("refused valid JSON [%s]: %s\n", good[i], err);
            fail();
        }
        json_decref(v);
    }
}

static void large_documents_parse(void **state)
{
    (void)state;
    /* The reader has no size cap of its own (the HTTP body limit applies
     * before it): a 1 MiB document parses. */
    size_t n = 0, cap = 1200000;
    char *s = malloc(cap);
    assert_non_null(s);
    s[n++] = '[';
    for (int i = 0; n < 1048576; i++)
        n += (size_t)snprintf(s + n, cap - n, "%s{\"i\":%d}", i ? "," : "", i);
    s[n++] = ']';
    char err[256];
    json_t *v = crest__json_parse(s, n, 64, err, sizeof err);
    assert_non_null(v);
    assert_true(json_array_size(v) > 50000);
    json_decref(v);
    free(s);
}

static void write_value_round_trip(void **state)
{
    (void)state;
    static const char *const docs[] = {
        "{\"b\":1,\"a\":[true,false,null,1.5,\"x\"]}",
        "[]",
        "{}",
        "[1.0,-0.0,0.1,1e+300,-9223372036854775808]",
        "\"caf\xC3\xA9\\n\\u0001\"",
        "{\"nested\":{\"deeper\":[[{\"k\":\"v\"}]]}}",
        "42",
    };
    char err[256];
    for (size_t i = 0; i < COUNT_OF(docs); i++) {
        json_t *v = parse(docs[i], 64, err, sizeof err);
        assert_non_null(v);
        crest_json w;
        crest_json_init(&w, 0);
        crest__json_write_value(&w, v);
        assert_int_equal(crest_json_error(&w), 0);
        size_t len;
        const char *o = crest_json_data(&w, &len);
        /* Written exactly as read: key order, reals and escapes survive. */
        assert_bytes_eq(o, len, docs[i]);
        json_t *back = crest__json_parse(o, len, 64, err, sizeof err);
        assert_non_null(back);
        assert_true(json_equal(v, back));
        json_decref(back);
        json_decref(v);
        crest_json_dispose(&w);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(depth_limit_is_exact),
        cmocka_unit_test(depth_scan_ignores_strings),
        cmocka_unit_test(very_deep_input_is_refused_cheaply),
        cmocka_unit_test(malformed_inputs),
        cmocka_unit_test(error_position),
        cmocka_unit_test(accepts_any_value),
        cmocka_unit_test(large_documents_parse),
        cmocka_unit_test(write_value_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
