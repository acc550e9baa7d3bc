/* test_params.c — the numbering of an SQL endpoint's :name parameters for
 * PostgreSQL (src/query/params.c): which colons are parameters and which
 * are not (casts, strings of every kind, quoted identifiers, nested
 * comments, dollar quotes, slices), names and their numbers, the refusals
 * (unterminated runs, mixed $1, the 255-name limit) and a scan of every
 * prefix of tricky statements from buffers that end exactly at len. */
#include <stdlib.h>

#include "unit.h"

#include "query/query.h"

static crest__arena A;

static int setup(void **state)
{
    (void)state;
    crest__arena_init(&A, 4096, 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    crest__arena_dispose(&A);
    return 0;
}

/* sql numbered: asserts success, the text want and the names (NULL-ended). */
static void numbered(const char *sql, const char *want, ...)
{
    crest__numbered_sql out;
    const char *msg = "unset";
    int rc = crest__sql_number_params(&A, sql, strlen(sql), &out, &msg);
    if (rc)
        print_error("[%s]: %d %s\n", sql, rc, msg);
    assert_i64_eq(rc, 0);
    assert_null(msg);
    assert_bytes_eq(out.sql, out.len, want);
    assert_i64_eq(out.sql[out.len], 0);
    va_list ap;
    va_start(ap, want);
    unsigned n = 0;
    for (const char *name; (name = va_arg(ap, const char *)); n++) {
        if (n >= out.nnames)
            print_error("[%s]: only %u names, want %s as $%u\n", sql, out.nnames, name, n + 1);
        assert_true(n < out.nnames);
        assert_string_equal(out.names[n], name);
    }
    va_end(ap);
    assert_i64_eq(out.nnames, n);
}

/* sql refused: asserts CREST_EINVAL and a message containing want; returns it. */
static const char *refused(const char *sql, const char *want)
{
    crest__numbered_sql out;
    const char *msg = NULL;
    int rc = crest__sql_number_params(&A, sql, strlen(sql), &out, &msg);
    if (rc != CREST_EINVAL)
        print_error("[%s] was not refused: %d [%.*s]\n", sql, rc, rc ? 0 : (int)out.len, rc ? "" : out.sql);
    assert_i64_eq(rc, CREST_EINVAL);
    assert_non_null(msg);
    if (!strstr(msg, want))
        print_error("[%s]: message [%s] does not say [%s]\n", sql, msg, want);
    assert_non_null(strstr(msg, want));
    assert_null(out.sql);
    assert_i64_eq(out.nnames, 0);
    return msg;
}

static void names_are_numbered_in_order_of_first_appearance(void **state)
{
    (void)state;
    numbered("SELECT * FROM tasks WHERE id = :id AND owner = :owner",
             "SELECT * FROM tasks WHERE id = $1 AND owner = $2", "id", "owner", NULL);
    numbered("SELECT :b, :a, :b, :a_1, :_x9", "SELECT $1, $2, $1, $3, $4", "b", "a", "a_1", "_x9", NULL);
    numbered("WHERE (a=:A OR a=:a)", "WHERE (a=$1 OR a=$2)", "A", "a", NULL); /* names are case-sensitive */
    numbered("SELECT 1", "SELECT 1", NULL);
    numbered("INSERT INTO t VALUES(:x,:y)", "INSERT INTO t VALUES($1,$2)", "x", "y", NULL);
}

static void user_names_keep_their_dot(void **state)
{
    (void)state;
    numbered("WHERE owner = :user.id AND tenant = :user.tenant_id OR owner = :user.id",
             "WHERE owner = $1 AND tenant = $2 OR owner = $1", "user.id", "user.tenant_id", NULL);
    numbered("SELECT :user", "SELECT $1", "user", NULL);
    /* A dot not followed by a name is not part of it. */
    numbered("SELECT (:rec).*, :r.", "SELECT ($1).*, $2.", "rec", "r", NULL);
    numbered("SELECT :a.1", "SELECT $1.1", "a", NULL);
    refused("SELECT :user.claims.x", "at most one dot");
}

static void names_are_ascii(void **state)
{
    (void)state;
    refused("SELECT :nam\xc3\xa9", "non-ASCII");
    refused("SELECT :a$b", "'$'");
    /* A colon before a non-ASCII byte starts no name: copied as it is. */
    numbered("SELECT :\xc3\xa9", "SELECT :\xc3\xa9", NULL);
}

static void casts_and_assignments_are_not_parameters(void **state)
{
    (void)state;
    numbered("SELECT x::text, '1'::int", "SELECT x::text, '1'::int", NULL);
    numbered("WHERE id = :id::int", "WHERE id = $1::int", "id", NULL);
    numbered("SELECT :id::int[], :user.id::bigint", "SELECT $1::int[], $2::bigint", "id", "user.id", NULL);
    numbered("SELECT CAST(:v AS text)::varchar", "SELECT CAST($1 AS text)::varchar", "v", NULL);
    numbered("SELECT f(a := 1)", "SELECT f(a := 1)", NULL);
    numbered("x:=1", "x:=1", NULL);
    /* A cast, then a parameter: "::" is read first. */
    numbered("SELECT x:::y", "SELECT x::$1", "y", NULL);
    numbered("::", "::", NULL);
}

static void single_quoted_strings_hide_parameters(void **state)
{
    (void)state;
    numbered("SELECT ':x', 'a::b' || :y", "SELECT ':x', 'a::b' || $1", "y", NULL);
    numbered("SELECT 'it''s :x' = :s", "SELECT 'it''s :x' = $1", "s", NULL);
    numbered("SELECT '''' || :q || ''", "SELECT '''' || $1 || ''", "q", NULL);
    /* A backslash escapes nothing in a standard string. */
    numbered("SELECT 'a\\' = :x", "SELECT 'a\\' = $1", "x", NULL);
    /* U&'...', B'...', X'...', N'...' are standard strings. */
    numbered("SELECT U&'d\\0061t :x', u&'\\' || :y", "SELECT U&'d\\0061t :x', u&'\\' || $1", "y", NULL);
    numbered("SELECT N':x', B'01', X'1F', :z", "SELECT N':x', B'01', X'1F', $1", "z", NULL);
    /* Strings next to each other are two strings. */
    numbered("SELECT 'a'\n':b' :c", "SELECT 'a'\n':b' $1", "c", NULL);
}

static void escape_strings_take_backslashes(void **state)
{
    (void)state;
    numbered("SELECT E'it\\'s :x' || :y", "SELECT E'it\\'s :x' || $1", "y", NULL);
    numbered("SELECT e'\\\\' || :z", "SELECT e'\\\\' || $1", "z", NULL);
    numbered("SELECT E'a''b :x\\n' || :w", "SELECT E'a''b :x\\n' || $1", "w", NULL);
    /* Only a lone E is a prefix: "namE'...'" is an identifier and a standard string. */
    numbered("SELECT namE'\\' :y", "SELECT namE'\\' $1", "y", NULL);
    numbered("SELECT (E'\\' :x')", "SELECT (E'\\' :x')", NULL);
}

static void quoted_identifiers_hide_parameters(void **state)
{
    (void)state;
    numbered("SELECT \"a:x\", \"b\"\":y\" FROM t WHERE c = :c", "SELECT \"a:x\", \"b\"\":y\" FROM t WHERE c = $1", "c",
             NULL);
    numbered("SELECT U&\"d\\0061t:x\" FROM t", "SELECT U&\"d\\0061t:x\" FROM t", NULL);
    numbered("SELECT \"::\"::text", "SELECT \"::\"::text", NULL);
}

static void line_comments_hide_parameters(void **state)
{
    (void)state;
    numbered("SELECT :a -- and :b\n, :c", "SELECT $1 -- and :b\n, $2", "a", "c", NULL);
    numbered("SELECT 1 --:x", "SELECT 1 --:x", NULL); /* to the end: no newline needed */
    numbered("SELECT 1 --:x\r:y", "SELECT 1 --:x\r$1", "y", NULL);
    numbered("SELECT '--' || :x", "SELECT '--' || $1", "x", NULL);
    numbered("SELECT 2-:x", "SELECT 2-$1", "x", NULL);
}

static void block_comments_nest(void **state)
{
    (void)state;
    numbered("SELECT /* :a */ :b", "SELECT /* :a */ $1", "b", NULL);
    numbered("SELECT /* outer /* :x inner */ still :y */ :z", "SELECT /* outer /* :x inner */ still :y */ $1", "z",
             NULL);
    numbered("/**/:a/*/ :b */", "/**/$1/*/ :b */", "a", NULL);
    numbered("SELECT /* -- */ :a", "SELECT /* -- */ $1", "a", NULL);
    numbered("SELECT /* ' */ :a", "SELECT /* ' */ $1", "a", NULL);
    numbered("SELECT :a -- /*\n", "SELECT $1 -- /*\n", "a", NULL);
}

static void dollar_quotes_hide_parameters(void **state)
{
    (void)state;
    numbered("SELECT $$ :x ' $$ || :y", "SELECT $$ :x ' $$ || $1", "y", NULL);
    numbered("SELECT $a$ :x $$ :y $$ $a$ || :z", "SELECT $a$ :x $$ :y $$ $a$ || $1", "z", NULL);
    numbered("SELECT $fn_1$ :x $FN_1$ $fn$ $fn_1$, :z", "SELECT $fn_1$ :x $FN_1$ $fn$ $fn_1$, $1", "z", NULL);
    numbered("SELECT $\xc3\xa9$ :x $\xc3\xa9$, :z", "SELECT $\xc3\xa9$ :x $\xc3\xa9$, $1", "z", NULL);
    numbered("SELECT $$$$, :z", "SELECT $$$$, $1", "z", NULL);
    numbered("SELECT $b$ $a$b$ :z", "SELECT $b$ $a$b$ $1", "z", NULL); /* "$a$b$" ends with $b$ */
    /* A $ inside an identifier opens nothing; a lone $ is copied. */
    numbered("SELECT a$b$ :x", "SELECT a$b$ $1", "x", NULL);
    numbered("SELECT $ :x, $a :y", "SELECT $ $1, $a $2", "x", "y", NULL);
}

static void slices_keep_their_colon(void **state)
{
    (void)state;
    numbered("SELECT arr[1:2], arr[:2], arr[2:], arr[1 : n]", "SELECT arr[1:2], arr[:2], arr[2:], arr[1 : n]", NULL);
    /* Documented: a name right after the colon is a parameter, as psql
     * reads it; the $n gets a space so it stays a parameter token. Write
     * "lo : hi" for a slice by columns. */
    numbered("SELECT arr[lo:hi], arr[1:n]", "SELECT arr[lo $1], arr[1 $2]", "hi", "n", NULL);
    numbered("SELECT arr[:hi]", "SELECT arr[$1]", "hi", NULL);
    numbered("SELECT arr[lo : :hi]", "SELECT arr[lo : $1]", "hi", NULL);
    numbered("SELECT x$:y", "SELECT x$ $1", "y", NULL);
    numbered("SELECT \"lo\":hi, ':':hi", "SELECT \"lo\"$1, ':'$1", "hi", NULL);
}

static void positional_parameters_do_not_mix_with_names(void **state)
{
    (void)state;
    const char *msg = refused("WHERE id = $1 AND owner = :user.id", "mixes a positional parameter");
    assert_non_null(strstr(msg, ":user.id"));
    refused("WHERE owner = :owner AND id = $12", "write :name parameters only");
    /* Positional only: unchanged, no names. */
    numbered("WHERE id = $1 AND b = $2", "WHERE id = $1 AND b = $2", NULL);
    /* A $1 in a string, a comment or an identifier is no parameter. */
    numbered("SELECT '$1', a$1, /* $2 */ :x", "SELECT '$1', a$1, /* $2 */ $1", "x", NULL);
}

static void unterminated_runs_are_named(void **state)
{
    (void)state;
    refused("SELECT 'abc :x", "unterminated quoted string");
    refused("SELECT 'it''", "unterminated quoted string");
    refused("SELECT E'it\\'s", "unterminated escape string");
    refused("SELECT E'\\", "unterminated escape string");
    refused("SELECT \"col", "unterminated quoted identifier");
    refused("SELECT /* a */ /* :x", "unterminated block comment");
    refused("SELECT /* /* :x */", "unterminated block comment");
    refused("SELECT /*", "unterminated block comment");
    const char *msg = refused("SELECT $tag$ :x $TAG$", "unterminated dollar-quoted string $tag$");
    assert_non_null(strstr(msg, "offset 7"));
    refused("SELECT $$ :x $", "unterminated dollar-quoted string $$");
    refused(":a '", "(opened at offset 3)");
}

static void the_empty_text_and_names_at_the_end(void **state)
{
    (void)state;
    crest__numbered_sql out;
    const char *msg = "unset";
    assert_i64_eq(crest__sql_number_params(&A, "", 0, &out, &msg), 0);
    assert_null(msg);
    assert_bytes_eq(out.sql, out.len, "");
    assert_i64_eq(out.nnames, 0);
    numbered(":x", "$1", "x", NULL);
    numbered("WHERE id = :id", "WHERE id = $1", "id", NULL);
    numbered("WHERE owner = :user.id", "WHERE owner = $1", "user.id", NULL);
    numbered("WHERE owner = :user.", "WHERE owner = $1.", "user", NULL);
    numbered("SELECT :", "SELECT :", NULL);
    numbered("SELECT x:", "SELECT x:", NULL);
    numbered("SELECT E", "SELECT E", NULL);
    numbered("SELECT $", "SELECT $", NULL);
    numbered("SELECT -", "SELECT -", NULL);
    numbered("SELECT /", "SELECT /", NULL);
    /* msg may be NULL. */
    assert_i64_eq(crest__sql_number_params(&A, "'", 1, &out, NULL), CREST_EINVAL);
}

/* ":p0, :p1, ..." with n distinct names, each used twice. */
static char *many(unsigned n)
{
    crest__buf b;
    crest__buf_init(&b, 0);
    assert_i64_eq(crest__buf_appends(&b, "SELECT "), 0);
    for (unsigned round = 0; round < 2; round++)
        for (unsigned i = 0; i < n; i++)
            assert_i64_eq(crest__buf_appendf(&b, "%s:p%u", i || round ? ", " : "", i), 0);
    assert_i64_eq(crest__buf_append(&b, "", 1), 0);
    return b.ptr;
}

static void at_most_255_distinct_names(void **state)
{
    (void)state;
    char *sql = many(CREST_SQL_MAX_PARAMS);
    crest__numbered_sql out;
    const char *msg = NULL;
    assert_i64_eq(crest__sql_number_params(&A, sql, strlen(sql), &out, &msg), 0);
    assert_i64_eq(out.nnames, 255);
    assert_string_equal(out.names[0], "p0");
    assert_string_equal(out.names[254], "p254");
    assert_non_null(strstr(out.sql, ", $254, $255, $1, $2,"));
    assert_i64_eq(strcmp(out.sql + out.len - 6, ", $255"), 0);
    free(sql);

    sql = many(CREST_SQL_MAX_PARAMS + 1);
    refused(sql, "too many parameters: :p255");
    refused(sql, "at most 255 distinct");
    free(sql);
}

/* Names glued to the one before, up to $255: each gets a space, and the
 * output buffer has room for the widest numbers. */
static void the_output_has_room_for_the_longest_numbers(void **state)
{
    (void)state;
    crest__buf b, want;
    crest__buf_init(&b, 0);
    crest__buf_init(&want, 0);
    assert_i64_eq(crest__buf_appends(&b, "x"), 0);
    assert_i64_eq(crest__buf_appends(&want, "x"), 0);
    for (unsigned round = 0; round < 3; round++)
        for (unsigned i = 0; i < 255; i++) {
            assert_i64_eq(crest__buf_appendf(&b, ":%c%c", 'a' + i / 26, 'a' + i % 26), 0);
            assert_i64_eq(crest__buf_appendf(&want, " $%u", i + 1), 0);
        }
    assert_i64_eq(crest__buf_append(&want, "", 1), 0); /* a C string for assert_bytes_eq */
    crest__numbered_sql out;
    assert_i64_eq(crest__sql_number_params(&A, b.ptr, b.len, &out, NULL), 0);
    assert_i64_eq(out.nnames, 255);
    assert_string_equal(out.names[254], "ju");
    assert_bytes_eq(out.sql, out.len, want.ptr);
    crest__buf_dispose(&b);
    crest__buf_dispose(&want);
}

/* The text is read up to len only: what follows is none of its business. */
static void bytes_after_len_are_not_read(void **state)
{
    (void)state;
    const char buf[] = "WHERE id = :ab'garbage\"/*$$";
    crest__numbered_sql out;
    assert_i64_eq(crest__sql_number_params(&A, buf, 13, &out, NULL), 0); /* "WHERE id = :a" */
    assert_bytes_eq(out.sql, out.len, "WHERE id = $1");
    assert_string_equal(out.names[0], "a");
    const char str[] = "'ab'c";
    assert_i64_eq(crest__sql_number_params(&A, str, 3, &out, NULL), CREST_EINVAL); /* "'ab": open */
    const char dq[] = "$a$ x $a$";
    assert_i64_eq(crest__sql_number_params(&A, dq, 8, &out, NULL), CREST_EINVAL);
    const char cm[] = "/* x */";
    assert_i64_eq(crest__sql_number_params(&A, cm, 6, &out, NULL), CREST_EINVAL);
    const char es[] = "E'\\'";
    assert_i64_eq(crest__sql_number_params(&A, es, 3, &out, NULL), CREST_EINVAL);
}

/* Every prefix of each statement, copied to a heap buffer of exactly its
 * length (the sanitizer build sees any read past it) and to one followed by
 * garbage: the same answer, 0 or CREST_EINVAL, and a sound result. */
static void every_prefix_is_scanned_safely(void **state)
{
    (void)state;
    static const char *const texts[] = {
        "SELECT a[1:2], :id::int, E'x\\'y :no' || $q$ $$ :no $q$ /* /* :no */ */ -- :no\n"
        "FROM t WHERE u = :user.id AND \"c\"\":no\" = 'it''s' AND x:=:y",
        "SELECT $a$b$ $b$ $a$, U&'\\' :c, arr[lo:hi], x:::z, $1, e'\\\\', :user.a.b",
        "/**/:a/*/ :b */'':c\"\"::d$$$$$::e\r--\n:f.g.",
        ":\xc3\xa9 :a\xc3\xa9 $\xc3\xa9$:x$\xc3\xa9$ a$:b E",
    };
    for (size_t t = 0; t < COUNT_OF(texts); t++) {
        size_t n = strlen(texts[t]);
        for (size_t len = 0; len <= n; len++) {
            char *exact = malloc(len ? len : 1);
            char *padded = malloc(len + 16);
            assert_non_null(exact);
            assert_non_null(padded);
            memcpy(exact, texts[t], len);
            memcpy(padded, texts[t], len);
            memcpy(padded + len, ":g'\"/*$$--E'\\", 14);
            crest__numbered_sql o1, o2;
            const char *m1 = NULL, *m2 = NULL;
            int r1 = crest__sql_number_params(&A, exact, len, &o1, &m1);
            int r2 = crest__sql_number_params(&A, padded, len, &o2, &m2);
            if (r1 != 0 && r1 != CREST_EINVAL)
                print_error("text %zu, prefix %zu: %d\n", t, len, r1);
            assert_true(r1 == 0 || r1 == CREST_EINVAL);
            assert_i64_eq(r1, r2);
            if (r1 == 0) {
                assert_null(m1);
                assert_true(o1.len <= 3 * len);
                assert_i64_eq(o1.sql[o1.len], 0);
                assert_bytes_eq(o2.sql, o2.len, o1.sql);
                assert_i64_eq(o1.nnames, o2.nnames);
                for (unsigned i = 0; i < o1.nnames; i++)
                    assert_string_equal(o1.names[i], o2.names[i]);
            } else {
                assert_non_null(m1);
                assert_string_equal(m1, m2);
            }
            free(exact);
            free(padded);
        }
        crest__arena_reset(&A);
    }
}

/* Out of memory at any point is CREST_ENOMEM, never a crash or a bad text. */
static void out_of_memory_is_its_own_error(void **state)
{
    (void)state;
    const char *sql = "SELECT :a, :b, :user.id, :a FROM t WHERE x = :c";
    bool ok = false;
    for (size_t limit = 16; !ok && limit < 8192; limit += 16) {
        crest__arena a;
        crest__arena_init(&a, 16, limit);
        crest__numbered_sql out;
        const char *msg = NULL;
        int rc = crest__sql_number_params(&a, sql, strlen(sql), &out, &msg);
        if (rc == 0) {
            assert_bytes_eq(out.sql, out.len, "SELECT $1, $2, $3, $1 FROM t WHERE x = $4");
            assert_i64_eq(out.nnames, 4);
            ok = true;
        } else {
            assert_i64_eq(rc, CREST_ENOMEM);
            assert_string_equal(msg, "out of memory");
            assert_null(out.sql);
        }
        crest__arena_dispose(&a);
    }
    assert_true(ok);
}

/* A C handler's transaction control, told by its first words. */
static void transaction_control_is_told_by_the_first_words(void **state)
{
    (void)state;
    static const struct {
        const char *sql;
        crest__txn_stmt want;
    } cases[] = {
        {"BEGIN", CREST__TXN_STMT_BEGIN},
        {"  begin transaction isolation level serializable", CREST__TXN_STMT_BEGIN},
        {"-- open\n/* a /* nested */ comment */ Start Transaction", CREST__TXN_STMT_BEGIN},
        {"START", CREST__TXN_STMT_NONE},
        {"COMMIT", CREST__TXN_STMT_END},
        {"end;", CREST__TXN_STMT_END},
        {"ROLLBACK", CREST__TXN_STMT_END},
        {"abort work", CREST__TXN_STMT_END},
        {"rollback to savepoint a", CREST__TXN_STMT_SAVEPOINT},
        {"ROLLBACK TO a", CREST__TXN_STMT_SAVEPOINT},
        {"SAVEPOINT a", CREST__TXN_STMT_SAVEPOINT},
        {"release a", CREST__TXN_STMT_SAVEPOINT},
        {"COMMIT PREPARED 'x'", CREST__TXN_STMT_NONE},
        {"INSERT INTO begin_log VALUES (1)", CREST__TXN_STMT_NONE},
        {"beginning", CREST__TXN_STMT_NONE},
        {"SELECT 'BEGIN'", CREST__TXN_STMT_NONE},
        {"/* unterminated BEGIN", CREST__TXN_STMT_NONE},
        {"", CREST__TXN_STMT_NONE},
    };
    for (size_t i = 0; i < COUNT_OF(cases); i++)
        if (crest__sql_txn_control(cases[i].sql, strlen(cases[i].sql)) != cases[i].want)
            fail_msg("%s: %d, want %d", cases[i].sql, crest__sql_txn_control(cases[i].sql, strlen(cases[i].sql)),
                     cases[i].want);
    /* Only len bytes are read: "BEGIN" cut to "BEG". */
    assert_int_equal(crest__sql_txn_control("BEGIN", 3), CREST__TXN_STMT_NONE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(names_are_numbered_in_order_of_first_appearance),
        cmocka_unit_test(user_names_keep_their_dot),
        cmocka_unit_test(names_are_ascii),
        cmocka_unit_test(casts_and_assignments_are_not_parameters),
        cmocka_unit_test(single_quoted_strings_hide_parameters),
        cmocka_unit_test(escape_strings_take_backslashes),
        cmocka_unit_test(quoted_identifiers_hide_parameters),
        cmocka_unit_test(line_comments_hide_parameters),
        cmocka_unit_test(block_comments_nest),
        cmocka_unit_test(dollar_quotes_hide_parameters),
        cmocka_unit_test(slices_keep_their_colon),
        cmocka_unit_test(positional_parameters_do_not_mix_with_names),
        cmocka_unit_test(unterminated_runs_are_named),
        cmocka_unit_test(the_empty_text_and_names_at_the_end),
        cmocka_unit_test(at_most_255_distinct_names),
        cmocka_unit_test(the_output_has_room_for_the_longest_numbers),
        cmocka_unit_test(bytes_after_len_are_not_read),
        cmocka_unit_test(every_prefix_is_scanned_safely),
        cmocka_unit_test(out_of_memory_is_its_own_error),
        cmocka_unit_test(transaction_control_is_told_by_the_first_words),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
