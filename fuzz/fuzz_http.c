/* fuzz_http.c — raw bytes into one loopback connection (src/http/loopback.h)
 * of an app with a handful of endpoints: HTTP parsing, limits, routing,
 * the spec check (typed path/query/header parameters, JSON bodies) and the
 * handlers, as a real connection runs them. The input is fed in one to
 * three pieces cut at offsets derived from its bytes, so pipelined requests
 * and requests split across reads are both exercised; the seeds stay plain
 * HTTP. The app also serves models with relations (belongs_to, has_many,
 * a self relation, many-to-many through a join model) from a SQLite file
 * of seeded rows, read-only so every input meets the same rows: ?include=,
 * fields[<path>]=, dotted where/sort_by/group and the nested routes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crest/rest.h"
#include "http/loopback.h"
#include "json/json_internal.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int h_hello(crest_req *req, crest_res *res, void *ud)
{
    (void)req;
    (void)ud;
    crest_json *w = crest_res_json(res);
    crest_json_object_begin(w);
    crest_json_key(w, "hello");
    crest_json_str(w, "world");
    crest_json_object_end(w);
    return 0;
}

/* Echoes what the spec check typed, plus every raw query pair, the path
 * and a header: the writer sees attacker-chosen strings. */
static int h_item(crest_req *req, crest_res *res, void *ud)
{
    (void)ud;
    crest_json *w = crest_res_json(res);
    crest_json_object_begin(w);
    crest_json_key(w, "id");
    crest_json_int(w, crest_req_int(req, "id"));
    if (crest_req_has(req, "tag")) {
        crest_json_key(w, "tag");
        crest_json_str(w, crest_req_str(req, "tag"));
    }
    crest_json_key(w, "path");
    crest_json_str(w, crest_req_path(req));
    crest_json_key(w, "ua");
    crest_json_str(w, crest_req_header(req, "user-agent"));
    crest_json_key(w, "method");
    crest_json_str(w, crest_method_name(crest_req_method(req)));
    crest_json_object_end(w);
    if (crest_res_header(res, "X-Item", crest_req_str(req, "id")))
        return crest_res_error(res, 500, "header", "could not add a header");
    return 0;
}

static int h_search(crest_req *req, crest_res *res, void *ud)
{
    (void)ud;
    crest_json *w = crest_res_json(res);
    crest_json_object_begin(w);
    crest_json_key(w, "q");
    crest_json_str(w, crest_req_str(req, "q"));
    crest_json_key(w, "n");
    crest_json_int(w, crest_req_int(req, "n"));
    crest_json_key(w, "x");
    crest_json_double(w, crest_req_float(req, "x"));
    crest_json_key(w, "flag");
    crest_json_bool(w, crest_req_bool(req, "flag"));
    crest_json_key(w, "sort");
    crest_json_str(w, crest_req_str(req, "sort"));
    crest_json_key(w, "all_q");
    crest_json_array_begin(w);
    for (unsigned i = 0; i < 64; i++) {
        const char *v = crest_req_query_at(req, "q", i);
        if (!v)
            break;
        crest_json_str(w, v);
    }
    crest_json_array_end(w);
    crest_json_object_end(w);
    return 0;
}

static int h_echo(crest_req *req, crest_res *res, void *ud)
{
    (void)ud;
    json_t *j = crest_req_json(req);
    if (j && json_is_object(j) && json_object_get(j, "fail")) {
        crest_res_error(res, 422, "invalid_body", "the body asks to fail: %s", crest_req_id(req));
        crest_res_error_field(res, "fail", "must not be present");
        return -1;
    }
    crest_json *w = crest_res_json(res);
    if (j)
        crest__json_write_value(w, j);
    else
        crest_json_null(w);
    size_t n;
    crest_req_body(req, &n);
    crest_res_status(res, n ? 201 : 200);
    return 0;
}

static int h_delete(crest_req *req, crest_res *res, void *ud)
{
    (void)req;
    (void)ud;
    crest_res_status(res, 204);
    return 0;
}

static int h_fail(crest_req *req, crest_res *res, void *ud)
{
    (void)ud;
    /* Half-written JSON and a non-zero return: the engine must answer 500. */
    crest_json *w = crest_res_json(res);
    crest_json_array_begin(w);
    crest_json_str(w, crest_req_header(req, "x-token"));
    return -1;
}

static const char *const sorts[] = {"asc", "desc", NULL};

static const crest_param item_params[] = {
    {.name = "id", .in = CREST_IN_PATH, .type = CREST_T_INT, .required = true, .has_min = true, .min = 1},
    {0},
};
static const crest_param tag_params[] = {
    {.name = "id", .in = CREST_IN_PATH, .type = CREST_T_INT, .required = true},
    {.name = "tag", .in = CREST_IN_PATH, .type = CREST_T_STRING, .has_min = true, .min = 1, .has_max = true,
     .max = 8},
    {0},
};
static const crest_param search_params[] = {
    {.name = "q", .in = CREST_IN_QUERY, .type = CREST_T_STRING, .required = true},
    {.name = "n", .in = CREST_IN_QUERY, .type = CREST_T_INT, .def = "10", .has_min = true, .min = 0,
     .has_max = true, .max = 100},
    {.name = "x", .in = CREST_IN_QUERY, .type = CREST_T_FLOAT, .has_min = true, .min = -1e9},
    {.name = "flag", .in = CREST_IN_QUERY, .type = CREST_T_BOOL, .def = "false"},
    {.name = "sort", .in = CREST_IN_QUERY, .type = CREST_T_ENUM, .values = sorts, .def = "asc"},
    {0},
};
static const crest_param fail_params[] = {
    {.name = "X-Token", .in = CREST_IN_HEADER, .type = CREST_T_STRING, .required = true},
    {0},
};

static const crest_endpoint endpoints[] = {
    {.method = CREST_GET, .path = "/hello", .handler = h_hello},
    {.method = CREST_GET, .path = "/items/{id}", .params = item_params, .handler = h_item},
    {.method = CREST_GET, .path = "/items/{id}/tags/{tag}", .params = tag_params, .handler = h_item},
    {.method = CREST_DELETE, .path = "/items/{id}", .params = item_params, .handler = h_delete},
    {.method = CREST_GET, .path = "/items/search", .params = search_params, .handler = h_search},
    {.method = CREST_POST, .path = "/items", .json_body = true, .body_required = true, .handler = h_echo},
    {.method = CREST_PUT, .path = "/items/{id}", .params = item_params, .json_body = true, .handler = h_echo,
     .envelope = "data"},
    {.method = CREST_PATCH, .path = "/items/{id}", .params = item_params, .json_body = true, .handler = h_echo,
     .blocking = true},
    {.method = CREST_GET, .path = "/fail", .params = fail_params, .handler = h_fail},
};

/* The relations' models: Person (scoped to adults by its module, a
 * manager, computers, tags), Computer (an owner, a vendor), Vendor, Tag,
 * PersonTag. A field called "secret" is never served. */
static const crest_field person_fields[] = {
    {.name = "name", .type = CREST_F_STRING, .required = true, .max_length = 40},
    {.name = "age", .type = CREST_F_INT},
    {.name = "secret", .type = CREST_F_STRING, .rest = CREST_REST_NONE},
    {.name = "manager", .type = CREST_F_REF, .ref_model = "Person", .on_delete = CREST_ON_DELETE_SET_NULL},
    {.name = "computers", .has_many = "Computer", .via = "owner", .embed_max = 3},
    {.name = "reports", .has_many = "Person", .via = "manager"},
    {.name = "tags", .has_many = "Tag", .through = "PersonTag"},
    {0}};
static const crest_field computer_fields[] = {
    {.name = "name", .type = CREST_F_STRING, .required = true},
    {.name = "price", .type = CREST_F_INT},
    {.name = "owner", .type = CREST_F_REF, .ref_model = "Person", .on_delete = CREST_ON_DELETE_SET_NULL},
    {.name = "vendor", .type = CREST_F_REF, .ref_model = "Vendor", .on_delete = CREST_ON_DELETE_SET_NULL},
    {0}};
static const crest_field vendor_fields[] = {{.name = "name", .type = CREST_F_STRING}, {0}};
static const crest_field tag_fields[] = {{.name = "name", .type = CREST_F_STRING}, {0}};
static const crest_field person_tag_fields[] = {
    {.name = "person", .type = CREST_F_REF, .ref_model = "Person", .required = true},
    {.name = "tag", .type = CREST_F_REF, .ref_model = "Tag", .required = true},
    {0}};
static const crest_model_def models[] = {
    {.name = "Person", .table = "people", .fields = person_fields,
     .seed = "[{\"name\":\"Ann\",\"age\":40,\"secret\":\"s1\"},{\"name\":\"Bob\",\"age\":30,\"manager_id\":1},"
             "{\"name\":\"Cid\",\"age\":12,\"manager_id\":1},{\"name\":\"Dee\",\"age\":null,\"manager_id\":2}]"},
    {.name = "Vendor", .table = "vendors", .fields = vendor_fields, .seed = "[{\"name\":\"Dell\"},{\"name\":\"HP\"}]"},
    {.name = "Computer", .table = "computers", .fields = computer_fields,
     .seed = "[{\"name\":\"a1\",\"price\":900,\"owner_id\":1,\"vendor_id\":1},{\"name\":\"a2\",\"owner_id\":1},"
             "{\"name\":\"a3\",\"price\":100,\"owner_id\":1,\"vendor_id\":2},{\"name\":\"a4\",\"owner_id\":1},"
             "{\"name\":\"b1\",\"price\":5,\"owner_id\":2,\"vendor_id\":2},{\"name\":\"c1\",\"owner_id\":3},"
             "{\"name\":\"z\"}]"},
    {.name = "Tag", .table = "tags", .fields = tag_fields, .seed = "[{\"name\":\"x\"},{\"name\":\"y\"}]"},
    {.name = "PersonTag", .table = "person_tags", .fields = person_tag_fields,
     .seed = "[{\"person_id\":1,\"tag_id\":1},{\"person_id\":1,\"tag_id\":2},{\"person_id\":3,\"tag_id\":2}]"},
};
#define READS (CREST_R_INDEX | CREST_R_READ | CREST_R_GROUP | CREST_R_STATS | CREST_R_EVAL)
static const crest_module_def modules[] = {
    {.name = "people", .model = "Person", .enabled_methods = READS, .scope = "{\"age\": {\"$ge\": 18}}",
     .page_size_default = 3, .page_size_max = 5},
    {.name = "computers", .model = "Computer", .enabled_methods = READS, .default_sort = "-price,name",
     .page_size_default = 3, .page_size_max = 5},
    {.name = "vendors", .model = "Vendor", .enabled_methods = READS},
    {.name = "tags", .model = "Tag", .enabled_methods = READS},
    {.name = "person_tags", .model = "PersonTag", .enabled_methods = READS},
};

static crest_app *app;
static char dbpath[64];

static void drop_db(void)
{
    char p[80];
    unlink(dbpath);
    snprintf(p, sizeof p, "%s-wal", dbpath);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", dbpath);
    unlink(p);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    app = crest_app_new();
    if (!app)
        abort();
    crest_app_set_access_log(app, true); /* written to a buffer the loopback drops */
    /* Limits small enough for the fuzzer to reach every one of them. */
    crest_limits *L = crest_app_limits(app);
    L->request_line = 512;
    L->header_line = 256;
    L->headers_total = 1024;
    L->headers_count = 12;
    L->body = 1024;
    L->json_depth = 8;
    L->response = 4096;
    L->output_buffer = 2048;
    crest_error err = {0};
    if (crest_app_add_endpoints(app, endpoints, sizeof endpoints / sizeof endpoints[0], NULL, &err)) {
        fprintf(stderr, "fuzz_http: %s\n", err.msg);
        abort();
    }
    snprintf(dbpath, sizeof dbpath, "/tmp/fuzz_http-%d.db", (int)getpid());
    drop_db();
    atexit(drop_db);
    crest_app_set_database(app, dbpath);
    for (size_t i = 0; i < sizeof models / sizeof models[0]; i++)
        if (crest_app_add_model(app, &models[i], &err)) {
            fprintf(stderr, "fuzz_http: %s\n", err.msg);
            abort();
        }
    for (size_t i = 0; i < sizeof modules / sizeof modules[0]; i++)
        if (crest_app_add_module(app, &modules[i], &err)) {
            fprintf(stderr, "fuzz_http: %s\n", err.msg);
            abort();
        }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* One prepared app and worker for every input (preparing the database
     * each time would cost far more than the input), a new connection
     * each. */
    static crest__loopback *lb;
    crest_error err = {0};
    if (!lb && !(lb = crest__loopback_new(app, &err))) {
        fprintf(stderr, "fuzz_http: loopback: %s\n", err.msg);
        abort();
    }
    if (crest__loopback_reconnect(lb)) {
        fprintf(stderr, "fuzz_http: loopback: out of memory\n");
        abort();
    }
    /* FNV-1a of the input picks the pieces, so they follow the data. */
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < size; i++)
        h = (h ^ data[i]) * 1099511628211ull;
    unsigned pieces = 1 + (unsigned)(h % 3);
    size_t cut[4] = {0, 0, 0, size};
    cut[1] = pieces > 1 ? (size_t)((h >> 8) % (size + 1)) : size;
    cut[2] = pieces > 2 ? (size_t)((h >> 32) % (size + 1)) : size;
    if (cut[1] > cut[2]) {
        size_t t = cut[1];
        cut[1] = cut[2];
        cut[2] = t;
    }
    for (int i = 0; i < 3; i++) {
        size_t from = cut[i], to = cut[i + 1];
        if (crest__loopback_feed(lb, (const char *)data + from, to - from) < 0)
            break; /* closed: the rest is never read */
    }
    /* Whatever came in, what went out is HTTP/1.1 responses. */
    size_t n;
    const char *out = crest__loopback_output(lb, &n);
    if (n && (n < 12 || memcmp(out, "HTTP/1.1 ", 9) != 0)) {
        fprintf(stderr, "fuzz_http: output does not start with a status line: %.*s\n", (int)(n < 200 ? n : 200), out);
        abort();
    }
    return 0;
}
