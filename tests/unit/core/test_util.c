/* test_util.c — the shared helpers in src/core/util.c: strict number parsing
 * (whole string, no spaces, no overflow), booleans, case-insensitive compare,
 * base64url, UUIDs, the HTTP status table, the RFC 3339 log timestamp and the error struct.
 * (The IMF-fixdate Date header is the engine's: test_limits.c checks it.) */
#define _GNU_SOURCE /* strptime, timegm */
#include <math.h>
#include <stdlib.h>
#include <time.h>

#include "unit.h"

#include "core/core.h"

static int pint(const char *s, int64_t *out) { return crest__parse_int(s, strlen(s), out); }
static int pdbl(const char *s, double *out) { return crest__parse_double(s, strlen(s), out); }
static int pbool(const char *s, bool *out) { return crest__parse_bool(s, strlen(s), out); }

/* Decodes S (base64url) into a NUL-terminated string; NULL when refused. */
static char *b64(const char *s)
{
    static unsigned char out[256];
    size_t n = 0;
    if (crest__base64url_decode(s, strlen(s), out, &n) != 0)
        return NULL;
    assert_true(n <= strlen(s) * 3 / 4);
    out[n] = 0;
    return (char *)out;
}

static void base64url_decodes(void **state)
{
    (void)state;
    assert_string_equal(b64(""), "");
    assert_string_equal(b64("Zg"), "f");
    assert_string_equal(b64("Zm8"), "fo");
    assert_string_equal(b64("Zm9v"), "foo");
    assert_string_equal(b64("Zm9vYmE"), "fooba");
    assert_string_equal(b64("Zm9vYmFy"), "foobar");
    /* the URL-safe alphabet: 0xfb 0xff 0xbf is "-_-_" (standard "+/+/") */
    unsigned char out[8];
    size_t n = 0;
    assert_int_equal(crest__base64url_decode("-_-_", 4, out, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(out[0], 0xfb);
    assert_int_equal(out[1], 0xff);
    assert_int_equal(out[2], 0xbf);
    assert_string_equal(b64("eyJhbGciOiJIUzI1NiJ9"), "{\"alg\":\"HS256\"}");
}

static void base64url_refuses(void **state)
{
    (void)state;
    assert_null(b64("Zg=="));  /* padding */
    assert_null(b64("Z"));     /* no encoding is 1 mod 4 long */
    assert_null(b64("Zm9vY"));
    assert_null(b64("+/+/"));  /* the standard alphabet's characters */
    assert_null(b64("Zm 9v"));
    assert_null(b64("Zh"));    /* "f" with non-zero unused bits */
    assert_null(b64("Zm9"
                    "\x80"));
}

static void parse_int_accepts(void **state)
{
    (void)state;
    int64_t v = -1;
    assert_int_equal(pint("0", &v), 0);
    assert_i64_eq(v, 0);
    assert_int_equal(pint("-0", &v), 0);
    assert_i64_eq(v, 0);
    assert_int_equal(pint("+17", &v), 0);
    assert_i64_eq(v, 17);
    assert_int_equal(pint("-17", &v), 0);
    assert_i64_eq(v, -17);
    assert_int_equal(pint("007", &v), 0);
    assert_i64_eq(v, 7);
    assert_int_equal(pint("9223372036854775807", &v), 0);
    assert_i64_eq(v, INT64_MAX);
    assert_int_equal(pint("-9223372036854775808", &v), 0);
    assert_true(v == INT64_MIN);
    /* Only len bytes are read: no NUL needed. */
    assert_int_equal(crest__parse_int("123abc", 3, &v), 0);
    assert_i64_eq(v, 123);
}

static void parse_int_rejects(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "", "-", "+", " 1", "1 ", "\t1", "1\n", "1a", "a1", "0x10", "1.0", "1e3", "--1", "+-1", "1-",
        "9223372036854775808",   /* INT64_MAX + 1 */
        "-9223372036854775809",  /* INT64_MIN - 1 */
        "18446744073709551615",  /* UINT64_MAX */
        "18446744073709551616",  /* UINT64_MAX + 1 */
        "99999999999999999999",  /* 20 digits, past uint64 */
        "000000000000000000001", /* 21 characters: longer than the parser reads */
        "１",                    /* a full-width digit */
    };
    for (size_t i = 0; i < CREST_ARRAY_LEN(bad); i++) {
        int64_t v = 12345;
        if (pint(bad[i], &v) != -1) {
            print_error("parse_int accepted '%s' as %lld\n", bad[i], (long long)v);
            fail();
        }
        assert_i64_eq(v, 12345); /* out untouched on failure */
    }
    int64_t v;
    assert_int_equal(crest__parse_int("1\0" "2", 3, &v), -1); /* an embedded NUL */
}

static void parse_double_accepts(void **state)
{
    (void)state;
    double v;
    assert_int_equal(pdbl("0.1", &v), 0);
    assert_true(v == 0.1);
    assert_int_equal(pdbl("-1.5e3", &v), 0);
    assert_true(v == -1500.0);
    assert_int_equal(pdbl("42", &v), 0);
    assert_true(v == 42.0);
    assert_int_equal(pdbl("1E+2", &v), 0);
    assert_true(v == 100.0);
    assert_int_equal(pdbl("-0", &v), 0);
    assert_true(v == 0.0 && signbit(v));
    assert_int_equal(pdbl("1.7976931348623157e308", &v), 0);
    assert_true(isfinite(v));
    assert_int_equal(pdbl("2.2250738585072014e-308", &v), 0); /* DBL_MIN, normal */
    /* strtod's leniency that is kept: "1." and ".5" read as numbers. */
    assert_int_equal(pdbl("1.", &v), 0);
    assert_true(v == 1.0);
    assert_int_equal(pdbl(".5", &v), 0);
    assert_true(v == 0.5);
    /* 63 characters fit the parser's buffer. */
    char s[64];
    memset(s, '0', 63);
    s[0] = '1';
    s[1] = '.';
    s[63] = 0;
    assert_int_equal(pdbl(s, &v), 0);
    assert_true(v == 1.0);
}

static void parse_double_rejects(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "", " ", " 1", "1 ", "\t1", "1\n", "abc", "1a", ".", "-", "e5", "1e", "1e+", "--1", "1..2",
        "nan", "NaN", "inf", "-inf", "Infinity", "0x1p3", "0X10",
        "1e309",  /* overflows to infinity */
        "-1e400", /* the same, negative */
        "1e-400", /* underflows to zero */
    };
    for (size_t i = 0; i < CREST_ARRAY_LEN(bad); i++) {
        double v = 12.5;
        if (pdbl(bad[i], &v) != -1) {
            print_error("parse_double accepted '%s' as %.17g\n", bad[i], v);
            fail();
        }
        assert_true(v == 12.5);
    }
    double v;
    /* 64 characters and more: refused (the parser copies into 64 bytes). */
    char s[100];
    memset(s, '1', sizeof s);
    assert_int_equal(crest__parse_double(s, 64, &v), -1);
    assert_int_equal(crest__parse_double(s, 100, &v), -1);
    assert_int_equal(crest__parse_double("1\0" "2", 3, &v), -1);
}

static void parse_bool_words(void **state)
{
    (void)state;
    static const char *const yes[] = {"true", "TRUE", "True", "tRuE", "1", "yes", "YES", "on", "On"};
    static const char *const no[] = {"false", "FALSE", "0", "no", "No", "off", "OFF"};
    static const char *const bad[] = {"", " ", "t", "tru", "truee", " true", "true ", "2", "-1", "y", "n",
                                      "nope", "onn", "0.0", "null"};
    bool b;
    for (size_t i = 0; i < CREST_ARRAY_LEN(yes); i++) {
        b = false;
        assert_int_equal(pbool(yes[i], &b), 0);
        assert_true(b);
    }
    for (size_t i = 0; i < CREST_ARRAY_LEN(no); i++) {
        b = true;
        assert_int_equal(pbool(no[i], &b), 0);
        assert_false(b);
    }
    for (size_t i = 0; i < CREST_ARRAY_LEN(bad); i++) {
        if (pbool(bad[i], &b) != -1) {
            print_error("parse_bool accepted '%s'\n", bad[i]);
            fail();
        }
    }
    assert_int_equal(crest__parse_bool("trueX", 4, &b), 0); /* only len bytes */
    assert_true(b);
}

/* Every type name a message puts after an article (field types, the
 * dialects' id columns, PostgreSQL's and SQLite's column types). */
static void article_of_type_names(void **state)
{
    (void)state;
    static const struct {
        const char *word, *want;
    } cases[] = {{"int", "an"},       {"INTEGER", "an"}, {"integer", "an"},   {"uuid", "a"},   {"UUID", "a"},
                 {"unique", "a"},     {"unsigned", "an"}, {"array", "an"},    {"object", "an"}, {"enum", "an"},
                 {"bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY", "a"}, {"string", "a"}, {"text", "a"},
                 {"float", "a"},      {"bool", "a"},     {"date", "a"},       {"datetime", "a"}, {"json", "a"},
                 {"", "a"},           {NULL, "a"}};
    for (size_t i = 0; i < CREST_ARRAY_LEN(cases); i++) {
        const char *got = crest__article(cases[i].word);
        if (strcmp(got, cases[i].want)) {
            print_error("article of '%s': got '%s', want '%s'\n", cases[i].word ? cases[i].word : "(null)", got,
                        cases[i].want);
            fail();
        }
    }
}

static void strcaseeq(void **state)
{
    (void)state;
    assert_true(crest__strcaseeq("Content-Type", 12, "content-type", 12));
    assert_true(crest__strcaseeq("", 0, "", 0));
    assert_false(crest__strcaseeq("abc", 3, "abd", 3));
    assert_false(crest__strcaseeq("abc", 3, "abcd", 4));
    /* ASCII only: '@' (0x40) and '`' (0x60) are not letters. */
    assert_false(crest__strcaseeq("@", 1, "`", 1));
    assert_false(crest__strcaseeq("[", 1, "{", 1));
}

static void status_text(void **state)
{
    (void)state;
    assert_string_equal(crest__status_text(200), "OK");
    assert_string_equal(crest__status_text(201), "Created");
    assert_string_equal(crest__status_text(204), "No Content");
    assert_string_equal(crest__status_text(400), "Bad Request");
    assert_string_equal(crest__status_text(404), "Not Found");
    assert_string_equal(crest__status_text(405), "Method Not Allowed");
    assert_string_equal(crest__status_text(408), "Request Timeout");
    assert_string_equal(crest__status_text(413), "Content Too Large");
    assert_string_equal(crest__status_text(414), "URI Too Long");
    assert_string_equal(crest__status_text(415), "Unsupported Media Type");
    assert_string_equal(crest__status_text(422), "Unprocessable Content");
    assert_string_equal(crest__status_text(431), "Request Header Fields Too Large");
    assert_string_equal(crest__status_text(500), "Internal Server Error");
    assert_string_equal(crest__status_text(501), "Not Implemented");
    assert_string_equal(crest__status_text(503), "Service Unavailable");
    assert_string_equal(crest__status_text(504), "Gateway Timeout");
    assert_string_equal(crest__status_text(0), "Unknown");
    assert_string_equal(crest__status_text(-1), "Unknown");
    assert_string_equal(crest__status_text(299), "Unknown");
    assert_string_equal(crest__status_text(999), "Unknown");
    /* Every code in the table has a phrase without CR/LF (it goes on the status line). */
    for (int s = 100; s < 600; s++) {
        const char *t = crest__status_text(s);
        assert_non_null(t);
        assert_null(strpbrk(t, "\r\n"));
    }
}

static void format_time_rfc3339(void **state)
{
    (void)state;
    char buf[40];
    memset(buf, 'X', sizeof buf);
    time_t before = time(NULL);
    crest__format_time(buf, sizeof buf);
    time_t after = time(NULL);
    /* 2024-05-06T07:08:09.123456Z */
    assert_int_equal(strlen(buf), 27);
    static const char shape[] = "dddd-dd-ddTdd:dd:dd.ddddddZ";
    for (int i = 0; i < 27; i++) {
        if (shape[i] == 'd')
            assert_true(buf[i] >= '0' && buf[i] <= '9');
        else
            assert_int_equal(buf[i], shape[i]);
    }
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    char *end = strptime(buf, "%Y-%m-%dT%H:%M:%S", &tm);
    assert_non_null(end);
    assert_int_equal(*end, '.');
    time_t t = timegm(&tm);
    assert_true(t >= before - 1 && t <= after + 1); /* time() may read a coarser clock */
    /* Called twice: the cached seconds part is reused, the result stays well formed. */
    char buf2[28];
    crest__format_time(buf2, sizeof buf2);
    assert_int_equal(strlen(buf2), 27);
}

static void format_time_small_buffer(void **state)
{
    (void)state;
    char buf[27];
    memset(buf, 'X', sizeof buf);
    crest__format_time(buf, sizeof buf); /* too small: empty string, no overflow */
    assert_int_equal(buf[0], 0);
    assert_int_equal(buf[1], 'X');
    char one = 'X';
    crest__format_time(&one, 0); /* nothing written at all */
    assert_int_equal(one, 'X');
}

static void error_set(void **state)
{
    (void)state;
    assert_int_equal(crest__error_set(NULL, CREST_EIO, "f", 1, "x %d", 1), CREST_EIO);
    crest_error e;
    memset(&e, 0, sizeof e);
    assert_int_equal(crest__error_set(&e, CREST_ECONFIG, "app.yaml", 12, "bad %s", "key"), CREST_ECONFIG);
    assert_int_equal(e.code, CREST_ECONFIG);
    assert_string_equal(e.file, "app.yaml");
    assert_int_equal(e.line, 12);
    assert_string_equal(e.msg, "bad key");
    assert_int_equal(crest__error_set(&e, CREST_EINVAL, NULL, 0, "%s", "no file"), CREST_EINVAL);
    assert_string_equal(e.file, "");
    /* Long messages are cut to the struct, NUL-terminated. */
    char big[2000];
    memset(big, 'm', sizeof big - 1);
    big[sizeof big - 1] = 0;
    crest__error_set(&e, CREST_EINVAL, big, 0, "%s", big);
    assert_int_equal(strlen(e.msg), sizeof e.msg - 1);
    assert_int_equal(strlen(e.file), sizeof e.file - 1);
}

static void method_names(void **state)
{
    (void)state;
    assert_string_equal(crest_method_name(CREST_GET), "GET");
    assert_string_equal(crest_method_name(CREST_HEAD), "HEAD");
    assert_string_equal(crest_method_name(CREST_POST), "POST");
    assert_string_equal(crest_method_name(CREST_PUT), "PUT");
    assert_string_equal(crest_method_name(CREST_PATCH), "PATCH");
    assert_string_equal(crest_method_name(CREST_DELETE), "DELETE");
    assert_string_equal(crest_method_name(CREST_OPTIONS), "OPTIONS");
    assert_null(crest_method_name((crest_method)0));
    assert_null(crest_method_name((crest_method)8));
}

static void now_is_monotonic(void **state)
{
    (void)state;
    uint64_t a = crest__now_us(), b = crest__now_us();
    assert_true(b >= a);
    assert_true(a > 0);
}

/* RFC 9562's text form only: 8-4-4-4-12 hex digits, any case → lower-case. */
static void uuid_norm(void **state)
{
    (void)state;
    char out[37];
    assert_int_equal(crest__uuid_norm("1B4E28BA-2FA1-11D2-883F-0016D3CCA427", 36, out), 0);
    assert_string_equal(out, "1b4e28ba-2fa1-11d2-883f-0016d3cca427");
    assert_int_equal(crest__uuid_norm("00000000-0000-0000-0000-000000000000", 36, out), 0);
    assert_string_equal(out, "00000000-0000-0000-0000-000000000000");
    static const char *const bad[] = {
        "1b4e28ba2fa111d2883f0016d3cca427",       /* no hyphens */
        "{1b4e28ba-2fa1-11d2-883f-0016d3cca427}", /* braces */
        "urn:uuid:1b4e28ba-2fa1-11d2-883f-0016d3", /* a URN */
        "1b4e28ba-2fa1-11d2-883f-0016d3cca42g",   /* not hex */
        "1b4e28ba-2fa1-11d2-883f_0016d3cca427",   /* a hyphen moved */
        "1b4e28ba-2fa1-11d2-883f-0016d3cca42",    /* short */
        "",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(crest__uuid_norm(bad[i], strlen(bad[i]), out), -1);
    assert_int_equal(crest__uuid_norm("1b4e28ba-2fa1-11d2-883f-0016d3cca4270", 37, out), -1); /* long */
    char nul[] = "1b4e28ba-2fa1-11d2-883f-0016d3cca427";
    nul[20] = 0;
    assert_int_equal(crest__uuid_norm(nul, 36, out), -1); /* a NUL inside */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parse_int_accepts),
        cmocka_unit_test(parse_int_rejects),
        cmocka_unit_test(parse_double_accepts),
        cmocka_unit_test(parse_double_rejects),
        cmocka_unit_test(parse_bool_words),
        cmocka_unit_test(article_of_type_names),
        cmocka_unit_test(strcaseeq),
        cmocka_unit_test(status_text),
        cmocka_unit_test(format_time_rfc3339),
        cmocka_unit_test(format_time_small_buffer),
        cmocka_unit_test(base64url_decodes),
        cmocka_unit_test(base64url_refuses),
        cmocka_unit_test(error_set),
        cmocka_unit_test(method_names),
        cmocka_unit_test(now_is_monotonic),
        cmocka_unit_test(uuid_norm),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
