/* crest/rest.h — models and REST modules in the C API.
 *
 * A model is a table: typed fields with validation options and an implicit
 * integer primary key `id`. A REST module turns a model into routes (index,
 * read, create, update, delete, sample, group, stats, eval) with Emmett-REST's
 * options: envelopes, allow-lists, a serializer, a parser, hooks and a row
 * scope. The app file's `models:` and `modules:` build the same structures.
 *
 * Ownership: definitions are borrowed, like endpoint specs — they must
 * outlive the app (usually static const data). JSON values handed to
 * callbacks are borrowed for the duration of the call unless said otherwise. */
#ifndef CREST_REST_H
#define CREST_REST_H

#include "crest/crest.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum crest_field_type {
    CREST_F_STRING = 1, /* short text (max_length applies) */
    CREST_F_TEXT,       /* long text */
    CREST_F_INT,
    CREST_F_FLOAT,
    CREST_F_BOOL,
    CREST_F_DATE,       /* "YYYY-MM-DD" */
    CREST_F_DATETIME,   /* RFC 3339 in; stored and served in UTC, "YYYY-MM-DDTHH:MM:SS.sssZ" */
    CREST_F_JSON,       /* any JSON value */
    CREST_F_UUID,       /* RFC 9562 text form, any case in; stored and served lower-case */
    CREST_F_REF         /* a relation: the id of a row of another model (see crest_field.ref_model) */
} crest_field_type;

/* What deleting a row does to the rows that refer to it (a CREST_F_REF
 * field of another model): refuse (409 still_referenced), delete them too,
 * or set their reference to null. */
typedef enum crest_on_delete {
    CREST_ON_DELETE_RESTRICT = 0, CREST_ON_DELETE_CASCADE, CREST_ON_DELETE_SET_NULL
} crest_on_delete;

/* Who sees a field through REST: read and write (default), read only,
 * write only (accepted, never served), or neither. */
typedef enum crest_rest_access {
    CREST_REST_RW = 0, CREST_REST_READ, CREST_REST_WRITE, CREST_REST_NONE
} crest_rest_access;

/* One field of a model. Arrays of these end with a zeroed entry. */
typedef struct crest_field {
    const char *name;
    crest_field_type type;
    bool required;            /* create must give it (unless it has a default) */
    const char *def;          /* default as JSON text ("false", "0", "\"todo\"") or "now" */
    bool unique;              /* a duplicate answers 409 */
    bool index;               /* an index on the column */
    bool has_min, has_max;
    double min, max;          /* numbers */
    int64_t min_length;       /* strings, in characters; 0: none */
    int64_t max_length;       /* 0: none */
    const char *pattern;      /* PCRE2, the whole value must match; NULL: none */
    const char *const *values;/* allowed values (strings), NULL-terminated; NULL: any */
    crest_rest_access rest;
    const char *description;
    /* Field-level access when the app has auth: permissions ("a,b", one
     * suffices) needed to see the field (served, filtered, sorted,
     * grouped) and to write it. NULL: as the module allows. */
    const char *read_permission;
    const char *write_permission;
    /* Relations (Flask-Restless's owner / computers, Emmett-REST's
     * belongs_to / has_many). A field of type CREST_F_REF named `owner`
     * refers to a row of the model ref_model: its column and JSON key are
     * `owner_id` (an integer, a foreign key to that model's id, indexed),
     * and `owner` names the relation (?include=owner, where owner.name). */
    const char *ref_model;
    crest_on_delete on_delete;
    /* The other side of a relation, which makes no column (leave type 0):
     * has_many names the related model; via, that model's CREST_F_REF
     * field pointing here (NULL: its only one); through, a join model with
     * a CREST_F_REF field to each side (many-to-many). */
    const char *has_many;
    const char *via;
    const char *through;
    int embed_max;            /* has_many: rows embedded per parent row (0: 100) */
} crest_field;

typedef struct crest_model_def {
    const char *name;           /* "Task" */
    const char *table;          /* NULL: the name lower-cased */
    const crest_field *fields;  /* zero-terminated */
    const char *seed;           /* JSON array of rows inserted when crest creates the table; NULL: none */
    const char *const *indexes; /* composite indexes, "is_completed,-spent_time" each; NULL-terminated */
} crest_model_def;

/* Adds a model. The table is created (or its new columns added) when the
 * server starts; a change that would lose data stops the start. Returns
 * CREST_EINVAL (err says why) or CREST_EEXIST for a taken name. */
int crest_app_add_model(crest_app *app, const crest_model_def *def, crest_error *err);

/* ---- REST modules ------------------------------------------------------ */

enum {
    CREST_R_INDEX = 1u << 0, CREST_R_READ = 1u << 1, CREST_R_CREATE = 1u << 2,
    CREST_R_UPDATE = 1u << 3, CREST_R_DELETE = 1u << 4, CREST_R_SAMPLE = 1u << 5,
    CREST_R_GROUP = 1u << 6, CREST_R_STATS = 1u << 7, CREST_R_EVAL = 1u << 8,
    CREST_R_DEFAULT = CREST_R_INDEX | CREST_R_READ | CREST_R_CREATE | CREST_R_UPDATE | CREST_R_DELETE,
    CREST_R_ALL = 0x1ff
};

/* What a callback of a module gets: the request, the response, the module's
 * user data. Borrowed for the call. */
typedef struct crest_rest_ctx {
    crest_req *req;
    crest_res *res;
    void *ud;
    const char *module;
} crest_rest_ctx;

/* A row as the serializer reads it (borrowed for the call). */
typedef struct crest_row crest_row;
bool crest_row_is_null(const crest_row *row, const char *field);
int64_t crest_row_int(const crest_row *row, const char *field);
double crest_row_float(const crest_row *row, const char *field);
const char *crest_row_str(const crest_row *row, const char *field); /* NULL when null */

/* A computed field of the serializer: an SQL expression over the row's
 * columns ("spent_time / 3600.0"), or a C function writing one JSON value.
 * type: what the value is (the OpenAPI document says so). For sql, the
 * cell is converted to it as a model field's is; CREST_F_JSON writes the
 * cell's JSON text (json_group_array, json_agg) as the value it holds. A
 * cell that is not of the type answers 500 (logged). 0: as the database
 * gives it, untyped in the document. */
typedef struct crest_computed {
    const char *name;
    const char *sql;
    int (*fn)(const crest_rest_ctx *ctx, const crest_row *row, crest_json *w);
    crest_field_type type;
} crest_computed;

/* A per-field parse callback: may replace the value (*v, a new reference
 * owned by crest afterwards) or reject it with a message (return non-NULL,
 * a static or request-arena string). */
typedef struct crest_parse_field {
    const char *name;
    const char *(*fn)(const crest_rest_ctx *ctx, json_t **v);
} crest_parse_field;

/* Hooks and callbacks return 0 to go on, or the value of crest_res_error()
 * (through ctx->res) to stop the request with that answer. */
typedef int (*crest_rest_hook)(const crest_rest_ctx *ctx, json_t *obj);
typedef int (*crest_rest_id_hook)(const crest_rest_ctx *ctx, int64_t id);

typedef struct crest_module_def {
    const char *name;                 /* "tasks" */
    const char *model;                /* "Task" */
    const char *url_prefix;           /* NULL: "/" + name */
    unsigned enabled_methods;         /* CREST_R_* bits; 0: CREST_R_DEFAULT */
    unsigned disabled_methods;
    /* Allow-lists (NULL-terminated); NULL: every readable field and id. */
    const char *const *allowed_sorts;
    const char *const *query_allowed_fields;
    const char *const *grouping_allowed_fields;
    const char *const *stats_allowed_fields;
    const char *default_sort;         /* "id", "-created_at,id"; NULL: "id" */
    int page_size_default, page_size_min, page_size_max; /* 0: 20, 1, 100 */
    const char *list_envelope;        /* NULL: "data" */
    const char *single_envelope;      /* NULL: bare objects */
    const char *meta_envelope;        /* NULL: "meta" */
    const char *groups_envelope;      /* NULL: "data" */
    bool use_envelope_on_parse;       /* bodies come as {"<single_envelope>": {...}} */
    bool no_meta;                     /* Emmett's serialize_meta = False */
    const char *base_path;            /* the collection's path under url_prefix; NULL: "" */
    const char *id_path;              /* NULL: "/{id}" */
    /* Serializer: attributes (NULL: every readable field and id), plus
     * include, minus exclude, plus computed fields. */
    const char *const *attributes;
    const char *const *include;
    const char *const *exclude;
    const crest_computed *computed;   /* zero-terminated */
    /* Parser: the writable keys (NULL: every writable field), per-field
     * callbacks, and a processor over the whole validated object. */
    const char *const *parse_attributes;
    const crest_parse_field *parse_fields; /* zero-terminated */
    crest_rest_hook processor;
    /* Hooks (Emmett-REST's names). obj: the validated attributes (before_*,
     * may be changed) or the stored row as served (after_*). */
    crest_rest_hook before_create, after_create, before_update, after_update;
    crest_rest_id_hook before_delete, after_delete;
    /* after_parse_params: runs after the query parameters were checked. */
    int (*after_parse_params)(const crest_rest_ctx *ctx);
    /* Row scope (Emmett's get_dbset): a fixed where (JSON text) and/or a
     * callback returning a where object (a new reference, or NULL for
     * none) for this request. Both apply to every route. */
    const char *scope;
    json_t *(*scope_fn)(const crest_rest_ctx *ctx);
    /* Pipeline: run in order before every operation of the module. */
    const crest_handler *pipeline;    /* NULL-terminated */
    /* A custom meta object for lists: writes the members of "meta". On an
     * index, crest adds "next_cursor" after them (cursor pagination). */
    int (*meta_fn)(const crest_rest_ctx *ctx, int64_t total, bool has_more, crest_json *w);
    /* A custom error body: called for every error answer of the module;
     * writes a JSON value replacing the problem document (the status
     * stays). Return non-zero to keep the default body. */
    int (*error_fn)(const crest_rest_ctx *ctx, int status, const char *code, const char *detail,
                    crest_json *w);
    void *ud;
    /* Who may call each method when the app has auth, in CREST_R_* bit
     * order (index, read, create, update, delete, sample, group, stats,
     * eval): "public", "authenticated" or "perm,perm". NULL: nobody. */
    const char *permissions[9];
    /* Row ownership (OWASP BOLA): a string field holding the owner's id.
     * Create sets it from the user; every route sees only the user's rows
     * (someone else's row is 404). A fixed scope may also name
     * "$user.id" or "$user.<claim>" as values. */
    const char *owner;
    /* The module's rate limit, shared by its routes ("100/1m"); NULL: the app's. */
    const char *rate_limit;
    /* The relation paths ?include= may name ("owner", "computers.vendor";
     * a path lets its beginnings in too), NULL-terminated; NULL: every
     * relation, to a depth of 3. Related rows are served through their
     * model's first module: its permissions, scope and fields apply. */
    const char *const *allowed_includes;
    /* Idempotent creates (the IETF draft "The Idempotency-Key HTTP Header
     * Field", as Stripe serves it): a POST to the module's create route
     * (and the nested create routes to it) may send `Idempotency-Key: k`
     * (1 to 255 printable ASCII characters, optionally in double quotes;
     * anything else is 400). The first successful answer (status, Location,
     * ETag, body) is kept with the key, per module and user (anonymous
     * clients share one scope), in the table crest_idempotency, written in
     * the transaction that makes the rows; a retry of the same request (the
     * same method, target and JSON body, whitespace and key order aside)
     * gets that answer again with `Idempotent-Replayed: true` and makes no
     * row; the key with another body or path is 422
     * idempotency_key_reused; while the first is still being processed, 409
     * idempotency_key_in_use. A failed create keeps nothing: the key may be
     * used again. Modules without it ignore the header. */
    bool idempotency;
    unsigned idempotency_expire_s;    /* how long a key's answer is kept; 0: 86400 (24 h) */
    bool idempotency_required;        /* a create without the header is 400 */
    /* Conditional writes only (RFC 6585): an update or delete without an
     * If-Match header (a row's ETag, or "*") is answered 428
     * precondition_required, before the row is looked up. Every answer
     * of a row carries its ETag; If-Match with a stale one is 412
     * whether or not this is set. */
    bool require_if_match;
    /* The change feed: GET <collection>/changes streams the module's rows
     * as they are created, updated and deleted (Server-Sent Events, one
     * event per change, the row in the module's read shape; permissions,
     * scope, ownership and field access as for index; ?where= filters).
     * Off unless `changes` is true. Every write to the model's table (by
     * crest, an SQL endpoint or another program) goes to a change log
     * (table crest_changes) in the same transaction, by triggers the schema
     * sync makes; Last-Event-ID resumes from it. The rest: 0 or NULL for
     * the default. */
    bool changes;
    unsigned changes_retention_s;     /* how long the log keeps a change: 86400 (24 h) */
    unsigned changes_heartbeat_ms;    /* a comment line after this much silence: 15000 */
    unsigned changes_subscribers;     /* open feeds per worker, then 503: 1000 */
    size_t changes_buffer;            /* bytes a subscriber may leave unread before it is dropped: 256 KiB */
    const char *changes_permission;   /* who may follow it; NULL: the index permission */
} crest_module_def;

/* Adds a module over a model added before. Returns CREST_EINVAL with err
 * naming the bad option, or CREST_EEXIST when a route is taken. */
int crest_app_add_module(crest_app *app, const crest_module_def *def, crest_error *err);

#ifdef __cplusplus
}
#endif
#endif
