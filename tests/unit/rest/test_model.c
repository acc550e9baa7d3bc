/* test_model.c — relations through the C API (crest/rest.h): what
 * crest_app_add_model makes of CREST_F_REF, has_many, via, through,
 * embed_max and on_delete, every refusal of model.c's field_setup,
 * ref_setup and has_many_setup (at crest_app_add_model) and of
 * crest__app_link_models (at crest_app_add_module, the first call that
 * links), each with its exact message; then a C app declaring relations
 * and serving ?include=, its sparse fieldsets and a nested route through
 * the socket-free loopback connection. */
#include <stdlib.h>
#include <unistd.h>

#include "unit.h"

#include "crest/rest.h"
#include "http/loopback.h"
#include "json/json_internal.h"
#include "rest/rest_internal.h"

/* ---- declarations ---- */

static const crest_field person_fields[] = {
    {.name = "name", .type = CREST_F_STRING, .required = true},
    {.name = "computers", .has_many = "Computer", .via = "owner", .embed_max = 2},
    {.name = "tags", .has_many = "Tag", .through = "PersonTag"},
    {0}};
static const crest_field computer_fields[] = {
    {.name = "name", .type = CREST_F_STRING, .required = true},
    {.name = "owner", .type = CREST_F_REF, .ref_model = "Person", .on_delete = CREST_ON_DELETE_SET_NULL},
    {.name = "maker", .type = CREST_F_REF, .ref_model = "Maker", .required = true, .on_delete = CREST_ON_DELETE_CASCADE},
    {0}};
static const crest_field maker_fields[] = {{.name = "name", .type = CREST_F_STRING}, {0}};
static const crest_field tag_fields[] = {{.name = "label", .type = CREST_F_STRING}, {0}};
static const crest_field person_tag_fields[] = {
    {.name = "person", .type = CREST_F_REF, .ref_model = "Person", .required = true},
    {.name = "tag", .type = CREST_F_REF, .ref_model = "Tag", .required = true},
    {0}};
static const crest_model_def defs[] = {
    {.name = "Person", .table = "people", .fields = person_fields},
    {.name = "Computer", .table = "computers", .fields = computer_fields},
    {.name = "Maker", .table = "makers", .fields = maker_fields},
    {.name = "Tag", .table = "tags", .fields = tag_fields},
    {.name = "PersonTag", .table = "person_tags", .fields = person_tag_fields},
};

static void relations_are_made_and_linked(void **state)
{
    (void)state;
    crest_app *app = crest_app_new();
    crest_error e = {0};
    for (size_t i = 0; i < COUNT_OF(defs); i++)
        assert_int_equal(crest_app_add_model(app, &defs[i], &e), 0);
    const crest__model *person = crest__app_model(app, "Person"), *computer = crest__app_model(app, "Computer");
    /* has_many makes no column; a ref makes "<name>_id", an indexed integer */
    assert_int_equal(person->nfields, 2);
    assert_int_equal(person->nrels, 2);
    const crest__mfield *owner_id = crest__model_field(computer, "owner_id");
    assert_non_null(owner_id);
    assert_null(crest__model_field(computer, "owner"));
    assert_int_equal(owner_id->f.type, CREST_F_INT);
    assert_true(owner_id->f.index);
    assert_string_equal(owner_id->qname, "\"owner_id\"");
    assert_int_equal(owner_id->f.on_delete, CREST_ON_DELETE_SET_NULL);
    assert_int_equal(crest__model_field(computer, "maker_id")->f.on_delete, CREST_ON_DELETE_CASCADE);
    assert_true(crest__model_field(computer, "maker_id")->f.required);
    const crest__rel *owner = crest__model_rel(computer, "owner");
    assert_non_null(owner);
    assert_int_equal(owner->kind, CREST__REL_BELONGS_TO);
    assert_ptr_equal(owner->fk, owner_id);
    assert_ptr_equal(owner_id->ref, owner);
    assert_ptr_equal(owner->owner, computer);
    const crest__rel *computers = crest__model_rel(person, "computers"), *tags = crest__model_rel(person, "tags");
    assert_int_equal(computers->kind, CREST__REL_HAS_MANY);
    assert_int_equal(computers->embed_max, 2);
    assert_int_equal(tags->kind, CREST__REL_THROUGH);
    assert_int_equal(tags->embed_max, CREST_EMBED_MAX_DEFAULT);
    assert_int_equal(CREST_EMBED_MAX_DEFAULT, 100);
    /* linked by the first module */
    const crest_module_def mod = {.name = "people", .model = "Person"};
    assert_int_equal(crest_app_add_module(app, &mod, &e), 0);
    assert_ptr_equal(owner->target, person);
    assert_ptr_equal(computers->target, computer);
    assert_ptr_equal(computers->fk, owner_id);
    const crest__model *pt = crest__app_model(app, "PersonTag");
    assert_ptr_equal(tags->target, crest__app_model(app, "Tag"));
    assert_ptr_equal(tags->join, pt);
    assert_ptr_equal(tags->fk, crest__model_field(pt, "person_id"));
    assert_ptr_equal(tags->join_fk, crest__model_field(pt, "tag_id"));
    crest_app_free(app);
}

/* One refused declaration: models added in order, the first refusal's
 * message must be want; when all are added, the link that the first
 * module runs must be refused with it. */
typedef struct bad_case {
    const char *what;
    crest_model_def models[3];
    const char *want;
} bad_case;

#define F(...) ((const crest_field[]){__VA_ARGS__, {0}})
#define NAME {.name = "name", .type = CREST_F_STRING}
#define LONG61 "a123456789b123456789c123456789d123456789e123456789f123456789g"

static const bad_case bad_cases[] = {
    /* ref_setup */
    {"ref without model", {{.name = "Computer", .fields = F({.name = "owner", .type = CREST_F_REF})}},
     "model Computer: field owner: a ref needs the model it refers to"},
    {"ref with an empty model", {{.name = "Computer", .fields = F({.name = "owner", .type = CREST_F_REF, .ref_model = ""})}},
     "model Computer: field owner: a ref needs the model it refers to"},
    {"bad on_delete",
     {{.name = "Computer", .fields = F({.name = "owner", .type = CREST_F_REF, .ref_model = "Person", .on_delete = 3})}},
     "model Computer: field owner: bad on_delete"},
    {"set_null and required",
     {{.name = "Computer", .fields =
       F({.name = "owner", .type = CREST_F_REF, .ref_model = "Person", .required = true,
          .on_delete = CREST_ON_DELETE_SET_NULL})}},
     "model Computer: field owner: on_delete set_null needs a field that is not required"},
    {"ref with a max_length",
     {{.name = "Computer", .fields = F({.name = "owner", .type = CREST_F_REF, .ref_model = "Person", .max_length = 3})}},
     "model Computer: field owner: a ref takes model, on_delete, required, rest, description and permissions only"},
    {"ref with a default",
     {{.name = "Computer", .fields = F({.name = "owner", .type = CREST_F_REF, .ref_model = "Person", .def = "1"})}},
     "model Computer: field owner: a ref takes model, on_delete, required, rest, description and permissions only"},
    {"ref with via",
     {{.name = "Computer", .fields = F({.name = "owner", .type = CREST_F_REF, .ref_model = "Person", .via = "x"})}},
     "model Computer: field owner: a ref takes model, on_delete, required, rest, description and permissions only"},
    {"ref too long for _id", {{.name = "Computer", .fields = F({.name = LONG61, .type = CREST_F_REF, .ref_model = "Person"})}},
     "model Computer: field " LONG61 ": the name is too long for " LONG61 "_id"},
    {"ref named id", {{.name = "Computer", .fields = F({.name = "id", .type = CREST_F_REF, .ref_model = "Person"})}},
     "model Computer: 'id' is implicit (an integer primary key)"},
    /* field_setup */
    {"model on a plain field",
     {{.name = "Computer", .fields = F({.name = "owner", .type = CREST_F_INT, .ref_model = "Person"})}},
     "model Computer: field owner: model, via and through are for relations (type ref, has_many)"},
    {"via on a plain field", {{.name = "Computer", .fields = F({.name = "owner", .type = CREST_F_INT, .via = "x"})}},
     "model Computer: field owner: model, via and through are for relations (type ref, has_many)"},
    {"through on a plain field", {{.name = "Computer", .fields = F({.name = "owner", .type = CREST_F_INT, .through = "X"})}},
     "model Computer: field owner: model, via and through are for relations (type ref, has_many)"},
    /* crest's own columns (crest_version, src/rest/etag.c) */
    {"a field named crest_version", {{.name = "Computer", .fields = F({.name = "crest_version", .type = CREST_F_INT})}},
     "model Computer: field name 'crest_version' is reserved: names starting with 'crest_' are crest's own"},
    {"a field named CREST_x", {{.name = "Computer", .fields = F({.name = "CREST_x", .type = CREST_F_STRING})}},
     "model Computer: field name 'CREST_x' is reserved: names starting with 'crest_' are crest's own"},
    {"a relation named crest_owner",
     {{.name = "Computer", .fields = F({.name = "crest_owner", .type = CREST_F_REF, .ref_model = "Computer"})}},
     "model Computer: field name 'crest_owner' is reserved: names starting with 'crest_' are crest's own"},
    /* has_many_setup */
    {"has_many with a bad name", {{.name = "Person", .fields = F({.name = "the-computers", .has_many = "Computer"})}},
     "model Person: field name 'the-computers' must be letters, digits and '_' (at most 63)"},
    {"has_many with a type",
     {{.name = "Person", .fields = F({.name = "computers", .type = CREST_F_STRING, .has_many = "Computer"})}},
     "model Person: field computers: has_many takes via, through, embed_max, description and read_permission "
     "only"},
    {"has_many of type ref",
     {{.name = "Person", .fields = F({.name = "computers", .type = CREST_F_REF, .has_many = "Computer"})}},
     "model Person: field computers: has_many takes via, through, embed_max, description and read_permission "
     "only"},
    {"has_many with a model", {{.name = "Person", .fields = F({.name = "computers", .has_many = "Computer", .ref_model = "X"})}},
     "model Person: field computers: has_many takes via, through, embed_max, description and read_permission "
     "only"},
    {"has_many required", {{.name = "Person", .fields = F({.name = "computers", .has_many = "Computer", .required = true})}},
     "model Person: field computers: has_many takes via, through, embed_max, description and read_permission "
     "only"},
    {"has_many with a write permission",
     {{.name = "Person", .fields = F({.name = "computers", .has_many = "Computer", .write_permission = "admin"})}},
     "model Person: field computers: has_many takes via, through, embed_max, description and read_permission "
     "only"},
    {"via and through",
     {{.name = "Person", .fields = F({.name = "computers", .has_many = "Computer", .via = "owner", .through = "J"})}},
     "model Person: field computers: via or through, not both"},
    {"embed_max below 0", {{.name = "Person", .fields = F({.name = "computers", .has_many = "Computer", .embed_max = -1})}},
     "model Person: field computers: embed_max must be 1 to 10000"},
    {"embed_max above 10000",
     {{.name = "Person", .fields = F({.name = "computers", .has_many = "Computer", .embed_max = 10001})}},
     "model Person: field computers: embed_max must be 1 to 10000"},
    /* names */
    {"owner_id, then owner",
     {{.name = "Computer", .fields =
       F({.name = "owner_id", .type = CREST_F_INT}, {.name = "owner", .type = CREST_F_REF, .ref_model = "Person"})}},
     "model Computer: field owner_id is defined twice (owner makes it)"},
    {"owner, then owner_id",
     {{.name = "Computer", .fields =
       F({.name = "owner", .type = CREST_F_REF, .ref_model = "Person"}, {.name = "owner_id", .type = CREST_F_INT})}},
     "model Computer: field owner_id is defined twice (owner_id makes it)"},
    {"a ref and a has_many of one name",
     {{.name = "Person", .fields =
       F({.name = "owner", .type = CREST_F_REF, .ref_model = "Person"}, {.name = "owner", .has_many = "Person"})}},
     "model Person: field owner is defined twice"},
    /* crest__app_link_models */
    {"ref to an unknown model",
     {{.name = "Computer", .fields = F({.name = "owner", .type = CREST_F_REF, .ref_model = "Nobody"})}},
     "model Computer: field owner: there is no model 'Nobody'"},
    {"has_many of an unknown model", {{.name = "Person", .fields = F({.name = "computers", .has_many = "Nobody"})}},
     "model Person: field computers: there is no model 'Nobody'"},
    {"has_many via a plain field",
     {{.name = "Person", .fields = F({.name = "computers", .has_many = "Computer", .via = "name"})},
      {.name = "Computer", .fields = F(NAME, {.name = "owner", .type = CREST_F_REF, .ref_model = "Person"})}},
     "model Person: field computers: model Computer has no ref field 'name' to Person"},
    {"has_many via an unknown field",
     {{.name = "Person", .fields = F({.name = "computers", .has_many = "Computer", .via = "user"})},
      {.name = "Computer", .fields = F({.name = "owner", .type = CREST_F_REF, .ref_model = "Person"})}},
     "model Person: field computers: model Computer has no ref field 'user' to Person"},
    {"has_many via a ref to another model",
     {{.name = "Person", .fields = F({.name = "computers", .has_many = "Computer", .via = "maker"})},
      {.name = "Computer", .fields =
       F({.name = "owner", .type = CREST_F_REF, .ref_model = "Person"},
         {.name = "maker", .type = CREST_F_REF, .ref_model = "Maker"})},
      {.name = "Maker", .fields = F(NAME)}},
     "model Person: field computers: model Computer has no ref field 'maker' to Person"},
    {"has_many without via, two refs back",
     {{.name = "Person", .fields = F({.name = "computers", .has_many = "Computer"})},
      {.name = "Computer", .fields =
       F({.name = "owner", .type = CREST_F_REF, .ref_model = "Person"},
         {.name = "user", .type = CREST_F_REF, .ref_model = "Person"})}},
     "model Person: field computers: model Computer has more than one ref field to Person: name it with via"},
    {"has_many without a ref back",
     {{.name = "Person", .fields = F({.name = "computers", .has_many = "Computer"})}, {.name = "Computer", .fields = F(NAME)}},
     "model Person: field computers: model Computer has no ref field to Person: name it with via"},
    {"through an unknown model",
     {{.name = "Person", .fields = F({.name = "tags", .has_many = "Tag", .through = "Nope"})}, {.name = "Tag", .fields = F(NAME)}},
     "model Person: field tags: there is no model 'Nope'"},
    {"through a model with one ref",
     {{.name = "Person", .fields = F({.name = "tags", .has_many = "Tag", .through = "PersonTag"})},
      {.name = "Tag", .fields = F(NAME)},
      {.name = "PersonTag", .fields = F({.name = "person", .type = CREST_F_REF, .ref_model = "Person"})}},
     "model Person: field tags: the join model PersonTag needs one ref field to Person and one to Tag"},
    {"through a model with two refs to one side",
     {{.name = "Person", .fields = F({.name = "tags", .has_many = "Tag", .through = "PersonTag"})},
      {.name = "Tag", .fields = F(NAME)},
      {.name = "PersonTag", .fields =
       F({.name = "person", .type = CREST_F_REF, .ref_model = "Person"},
         {.name = "boss", .type = CREST_F_REF, .ref_model = "Person"},
         {.name = "tag", .type = CREST_F_REF, .ref_model = "Tag"})}},
     "model Person: field tags: the join model PersonTag needs one ref field to Person and one to Tag"},
    {"through to itself",
     {{.name = "Person", .fields = F({.name = "friends", .has_many = "Person", .through = "Friendship"})},
      {.name = "Friendship", .fields =
       F({.name = "a", .type = CREST_F_REF, .ref_model = "Person"},
         {.name = "b", .type = CREST_F_REF, .ref_model = "Person"})}},
     "model Person: field friends: the join model Friendship needs one ref field to Person and one to Person"},
};

static void every_bad_declaration_is_refused_with_its_message(void **state)
{
    (void)state;
    for (size_t i = 0; i < COUNT_OF(bad_cases); i++) {
        const bad_case *c = &bad_cases[i];
        crest_app *app = crest_app_new();
        crest_error e = {0};
        int rc = 0;
        for (size_t k = 0; k < 3 && c->models[k].name && !rc; k++)
            rc = crest_app_add_model(app, &c->models[k], &e);
        if (!rc) {
            const crest_module_def mod = {.name = "m", .model = c->models[0].name};
            rc = crest_app_add_module(app, &mod, &e);
        }
        if (rc != CREST_EINVAL || strcmp(e.msg, c->want)) {
            print_error("%s: rc %d, message\n  [%s]\nwant\n  [%s]\n", c->what, rc, e.msg, c->want);
            fail();
        }
        crest_app_free(app);
    }
}

static void embed_max_bounds_are_accepted(void **state)
{
    (void)state;
    static const int ok[] = {0, 1, 10000};
    for (size_t i = 0; i < COUNT_OF(ok); i++) {
        const crest_field f[] = {{.name = "computers", .has_many = "Computer", .embed_max = ok[i]}, {0}};
        const crest_model_def d = {.name = "Person", .fields = f};
        crest_app *app = crest_app_new();
        crest_error e = {0};
        assert_int_equal(crest_app_add_model(app, &d, &e), 0);
        assert_int_equal(crest__model_rel(crest__app_model(app, "Person"), "computers")->embed_max,
                         ok[i] ? (unsigned)ok[i] : CREST_EMBED_MAX_DEFAULT);
        crest_app_free(app);
    }
}

/* ---- a C app serving relations ---- */

static const char *const person_includes[] = {"computers", "computers.maker", "tags", NULL};
static const crest_module_def modules[] = {
    {.name = "people", .model = "Person", .allowed_includes = person_includes},
    {.name = "computers", .model = "Computer", .default_sort = "-name"},
    {.name = "makers", .model = "Maker"},
    {.name = "tags", .model = "Tag"},
    {.name = "person_tags", .model = "PersonTag"},
};

static char dbpath[64];
static crest_app *app;
static crest__loopback *lb;

static int setup(void **state)
{
    (void)state;
    snprintf(dbpath, sizeof dbpath, "/tmp/crest-unit-model-%d.db", (int)getpid());
    unit_drop_db(dbpath);
    app = crest_app_new();
    crest_app_set_access_log(app, false);
    crest_app_set_database(app, dbpath);
    crest_error e = {0};
    for (size_t i = 0; i < COUNT_OF(defs); i++)
        if (crest_app_add_model(app, &defs[i], &e)) {
            fprintf(stderr, "setup: %s\n", e.msg);
            return -1;
        }
    for (size_t i = 0; i < COUNT_OF(modules); i++)
        if (crest_app_add_module(app, &modules[i], &e)) {
            fprintf(stderr, "setup: %s\n", e.msg);
            return -1;
        }
    lb = crest__loopback_new(app, &e);
    if (!lb)
        fprintf(stderr, "loopback: %s\n", e.msg);
    return lb ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    crest__loopback_free(lb);
    crest_app_free(app);
    unit_drop_db(dbpath);
    return 0;
}

/* Sends one request; its status, and its body parsed into *body (NULL:
 * not wanted; the caller decrefs). */
static int call(const char *method, const char *path, const char *body, json_t **out)
{
    char req[2048];
    size_t blen = body ? strlen(body) : 0;
    int n = snprintf(req, sizeof req, "%s %s HTTP/1.1\r\nHost: t\r\n%sContent-Length: %zu\r\n\r\n%s", method, path,
                     body ? "Content-Type: application/json\r\n" : "", blen, body ? body : "");
    crest__loopback_clear_output(lb);
    assert_int_equal(crest__loopback_feed(lb, req, (size_t)n), 0);
    size_t len;
    const char *o = crest__loopback_output(lb, &len);
    assert_true(len > 12);
    const char *sep = strstr(o, "\r\n\r\n");
    assert_non_null(sep);
    if (out) {
        *out = json_loadb(sep + 4, len - (size_t)(sep + 4 - o), 0, NULL);
        assert_non_null(*out);
    }
    return atoi(o + 9);
}

/* The JSON text of v, compact with sorted keys, for exact comparisons. */
static void assert_json(json_t *v, const char *want)
{
    char *s = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
    if (!s || strcmp(s, want)) {
        print_error("got  %s\nwant %s\n", s ? s : "(null)", want);
        free(s);
        fail();
    }
    free(s);
}

static void a_c_app_serves_its_relations(void **state)
{
    (void)state;
    static const char *const writes[][2] = {
        {"/makers", "{\"name\":\"Acme\"}"},
        {"/people", "{\"name\":\"Ada\"}"},
        {"/people", "{\"name\":\"Bob\"}"},
        {"/computers", "{\"name\":\"a1\",\"owner_id\":1,\"maker_id\":1}"},
        {"/computers", "{\"name\":\"a2\",\"owner_id\":1,\"maker_id\":1}"},
        {"/computers", "{\"name\":\"a3\",\"owner_id\":1,\"maker_id\":1}"},
        {"/computers", "{\"name\":\"loose\",\"maker_id\":1}"},
        {"/tags", "{\"label\":\"x\"}"},
        {"/tags", "{\"label\":\"y\"}"},
        {"/person_tags", "{\"person_id\":1,\"tag_id\":2}"},
        {"/person_tags", "{\"person_id\":2,\"tag_id\":1}"},
        {"/person_tags", "{\"person_id\":2,\"tag_id\":2}"},
    };
    for (size_t i = 0; i < COUNT_OF(writes); i++)
        assert_int_equal(call("POST", writes[i][0], writes[i][1], NULL), 201);
    json_t *b;
    /* has_many: at most embed_max (2) rows a parent, in the computers
     * module's default sort (-name), with <name>_has_more; through: every
     * tag; a nested belongs_to under has_many */
    assert_int_equal(call("GET", "/people?include=computers.maker,tags&fields[computers]=name&fields[tags]=label"
                                 "&fields[computers.maker]=name", NULL, &b), 200);
    assert_json(json_object_get(b, "data"),
                "[{\"computers\":[{\"maker\":{\"name\":\"Acme\"},\"name\":\"a3\"},{\"maker\":{\"name\":\"Acme\"},"
                "\"name\":\"a2\"}],\"computers_has_more\":true,\"id\":1,\"name\":\"Ada\",\"tags\":[{\"label\":\"y\"}],"
                "\"tags_has_more\":false},"
                "{\"computers\":[],\"computers_has_more\":false,\"id\":2,\"name\":\"Bob\",\"tags\":[{\"label\":\"x\"},"
                "{\"label\":\"y\"}],\"tags_has_more\":false}]");
    json_decref(b);
    /* belongs_to: the row, or null for a NULL key */
    assert_int_equal(call("GET", "/computers?include=owner&fields=name&fields[owner]=name&sort_by=id", NULL, &b),
                     200);
    assert_json(json_object_get(b, "data"),
                "[{\"name\":\"a1\",\"owner\":{\"name\":\"Ada\"}},{\"name\":\"a2\",\"owner\":{\"name\":\"Ada\"}},"
                "{\"name\":\"a3\",\"owner\":{\"name\":\"Ada\"}},{\"name\":\"loose\",\"owner\":null}]");
    json_decref(b);
    /* a path outside allowed_includes is refused */
    assert_int_equal(call("GET", "/people?include=tags.person_tags", NULL, NULL), 400);
    /* the nested route lists the parent's rows through the related module */
    assert_int_equal(call("GET", "/people/1/computers?fields=name", NULL, &b), 200);
    assert_json(json_object_get(b, "data"), "[{\"name\":\"a3\"},{\"name\":\"a2\"},{\"name\":\"a1\"}]");
    json_decref(b);
    assert_int_equal(call("GET", "/people/9/computers", NULL, NULL), 404);
}

int main(void)
{
    const struct CMUnitTest decl[] = {
        cmocka_unit_test(relations_are_made_and_linked),
        cmocka_unit_test(every_bad_declaration_is_refused_with_its_message),
        cmocka_unit_test(embed_max_bounds_are_accepted),
    };
    const struct CMUnitTest served[] = {
        cmocka_unit_test(a_c_app_serves_its_relations),
    };
    int failed = cmocka_run_group_tests_name("declarations", decl, NULL, NULL);
    return failed | cmocka_run_group_tests_name("served", served, setup, teardown);
}
