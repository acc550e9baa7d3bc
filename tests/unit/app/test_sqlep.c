/* test_sqlep.c — src/app/sqlep.c's rewrite of :user.<claim> in an SQL
 * endpoint's text (crest__sqlep_user_params): rewritten where SQLite reads a
 * parameter, left alone inside string literals, quoted names and comments,
 * and safe on text that ends inside any of them. */
#include <stdlib.h>

#include "unit.h"

#include "sqlep/sqlep.h"

static void expect(const char *sql, const char *want)
{
    char *got = crest__sqlep_user_params(sql);
    assert_non_null(got);
    assert_string_equal(got, want);
    free(got);
}

static void user_params_are_rewritten(void **state)
{
    (void)state;
    expect("SELECT :user.id", "SELECT :user::id");
    expect("x = $user.team AND y = @user.level_2", "x = :user::team AND y = :user::level_2");
    expect(":user.a,:user.b", ":user::a,:user::b");
    expect("(:user.id)", "(:user::id)");
}

static void other_text_is_left_alone(void **state)
{
    (void)state;
    expect("SELECT ':user.id', \":user.id\", `:user.id`, [:user.id]",
           "SELECT ':user.id', \":user.id\", `:user.id`, [:user.id]");
    expect("SELECT 'it''s :user.id' -- :user.id\n, :user.id /* :user.id */",
           "SELECT 'it''s :user.id' -- :user.id\n, :user::id /* :user.id */");
    expect("SELECT :user, :username, :user., :user.1, a:user.id, :users.id",
           "SELECT :user, :username, :user., :user.1, a:user.id, :users.id");
    expect("SELECT 1 /*/ :user.id */", "SELECT 1 /*/ :user.id */");
}

static void unterminated_text_ends_cleanly(void **state)
{
    (void)state;
    const char *cases[] = {"'", "\"abc", "`", "[", "-", "--", "-- x", "/", "/*", "/* x *", ":", ":user", ":user.",
                           "'a' :user.id '"};
    for (size_t i = 0; i < COUNT_OF(cases); i++) {
        char *got = crest__sqlep_user_params(cases[i]);
        assert_non_null(got);
        free(got);
    }
    expect("'a' :user.id '", "'a' :user::id '");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(user_params_are_rewritten),
        cmocka_unit_test(other_text_is_left_alone),
        cmocka_unit_test(unterminated_text_ends_cleanly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
