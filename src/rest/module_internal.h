/* module_internal.h — what the files of a REST module share: the module and
 * route structures, and the steps every route runs (module_steps.c). The
 * routes live by what they do: module_read.c (index, sample, read),
 * module_write.c (create, update, delete), module_aggregate.c (group, stats,
 * eval); module.c builds a module; src/openapi/module.c describes it.
 * Internal. */
#ifndef CREST_MODULE_INTERNAL_H
#define CREST_MODULE_INTERNAL_H

#include "rest_internal.h"

typedef enum {
    RT_INDEX,
    RT_READ,
    RT_CREATE,
    RT_UPDATE,
    RT_PATCH,
    RT_DELETE,
    RT_SAMPLE,
    RT_GROUP,
    RT_STATS,
    RT_EVAL,
    RT_CHANGES,
    RT_COUNT
} rt_kind;

typedef struct route {
    crest__module *mod;           /* the module whose rows it serves */
    crest__module *parent;        /* a nested route (/people/{id}/computers): the parent's module; else NULL */
    const crest__rel *rel;        /* a nested route: the parent's relation to mod's rows */
    rt_kind kind;
    crest_handler inner;          /* write routes: the handler write_route runs */
    crest_endpoint spec;
    crest_param params[22];       /* the spec's, zero-terminated (module.c: route_params) */
    char *path;
} route;

/* Which fields of a module an answer writes (fields=id,title): one byte per
 * model field, then one per computed field, in the module's serializer
 * order. Made by crest__rest_field_mask in the request's arena. */
typedef struct crest__field_mask {
    const struct crest__module *mod;
    unsigned char *on;            /* nfields + ncomp bytes */
} crest__field_mask;

struct crest__module {
    const crest_module_def *def;
    crest_app *app;
    const crest__mfield *owner;   /* row ownership, or NULL */
    bool scope_user;              /* the fixed scope names $user values */
    crest__qnode *scope_plan;     /* the fixed scope's plan when it does not (made once) */
    crest__arena scope_arena;     /* holds scope_plan */
    char *where_desc, *sort_desc, *stats_desc, *fields_desc; /* OpenAPI parameter descriptions */
    char *tag_desc;
    crest__model *m;
    char *name;
    char *prefix;                 /* url_prefix, without the API prefix ("" for "/") */
    char *base;                   /* prefix + base_path: the collection */
    char *id_path;                /* "/{id}" */
    char *id_param;               /* "id" */
    unsigned methods;
    crest__allow sorts, query, group, stats;
    unsigned char *served;        /* per field: written in responses */
    unsigned char *writable;      /* per field: accepted in bodies */
    const crest_computed **comp;
    unsigned ncomp;
    int ps_def, ps_min, ps_max;
    crest__plan defsort;
    json_t *scope;                /* the fixed scope, parsed; owned */
    const char *list_env, *single_env, *meta_env, *groups_env;
    route routes[RT_COUNT];
    route *nested;                /* /<id>/<relation> routes (module_nested.c); owned, never moved */
    unsigned nnested;
    /* The text of a read by id without a scope, made once at start in the
     * store's dialect (its one value is the id): the busiest route does not
     * build it for every request. NULL until then, or when its shape is not
     * that. Owned. */
    char *read_sql;
    const struct crest__dialect *read_dialect;
};

struct crest_row {
    const crest__rows *rows;
    size_t i;                     /* the row's index in rows */
    const crest__module *mod;
    crest__arena *arena;          /* the request's (crest_row_str of a number) */
};

/* A read route's next step, with the rows of its statement (the request's
 * arena); it ends the answer with crest__res_finish. */
typedef void (*crest__rest_next)(void *op, crest__rows *rows);

/* ---- module_embed.c: related rows in answers (?include=) ---- */

#define CREST_INCLUDE_MAX_DEPTH 3      /* relations in one include path */
#define CREST_INCLUDE_MAX 10           /* relations in one include */
#define CREST_EMBED_MAX_ROWS 10000     /* rows one relation embeds in one answer */

/* One relation of an include, and its rows once read (the request's arena). */
typedef struct crest__embed {
    const crest__rel *rel;
    crest__module *mod;           /* the target's module: its permissions, scope, fields */
    const crest__qnode *scope;    /* its scope for this request */
    int parent;                   /* the node whose rows are the parents; -1: the answer's rows */
    const char *path;             /* "owner.computers" (the request's arena) */
    const crest__field_mask *mask; /* fields[<path>]=, or NULL: every served field */
    crest__rows *rows;            /* NULL: no parent had a key */
    unsigned keycol;              /* the column of rows holding the parent's key */
    int64_t cap;                  /* has_many, through: rows written per parent */
    int64_t *gkey;                /* rows grouped by key (sorted): key, first row, count */
    size_t *gfirst;
    unsigned *gcount;
    size_t ngroups;
} crest__embed;

typedef struct crest__embeds {
    crest__embed node[CREST_INCLUDE_MAX]; /* a parent before its children */
    unsigned n;
    const crest__module *root;
    /* while reading */
    crest_rest_ctx ctx;
    crest__rows *root_rows;
    unsigned next;
    crest__rest_next done;
    void *op;
} crest__embeds;

/* The first module over model m (related rows are served through it), or NULL. */
crest__module *crest__rest_module_of(const crest_app *app, const crest__model *m);
/* Whether the request's user may call mod's method bit (CREST_R_*): enabled, and permitted. */
bool crest__rest_may(const crest_req *req, const crest__module *mod, unsigned bit);
/* Whether allowed_includes of mod lets path (n bytes) in (NULL list: all). */
bool crest__rest_include_allowed(const crest__module *mod, const char *path, size_t n);
/* Calls each(ud, path) for every path ?include= may name on mod's routes
 * (for the OpenAPI enum): relations whose rows a module serves, to a depth
 * of 3, within allowed_includes. path is borrowed for the call. */
void crest__rest_include_paths(const crest__module *mod, void (*each)(void *ud, const char *path), void *ud);
/* The request's `include` parameter of module mod as a tree of relations
 * (*out NULL when absent; the request's arena). 0, or -1 answered (400
 * naming the path). */
int crest__rest_embeds_parse(crest_rest_ctx *ctx, crest__module *mod, crest__embeds **out);
/* Reads the related rows of rows (the answer's, borrowed until done runs),
 * one statement per relation, then runs done(op, rows) — at once or later
 * on the loop. A failure finishes the answer (done never runs). */
void crest__rest_embeds_fetch(crest__embeds *e, const crest_rest_ctx *ctx, crest__rows *rows, crest__rest_next done,
                              void *op);
/* Writes row i of r through mod's serializer as an object, with the
 * embeds e read for r (NULL: none). */
int crest__rest_write_item(const crest_rest_ctx *ctx, const crest__module *mod, const crest__rows *r, size_t i,
                           crest_json *w, const crest__embeds *e);

/* ---- module_steps.c: the steps every route shares ---- */

/* A 400 invalid_parameter naming `param`; returns -1. */
int crest__rest_bad_param(crest_res *res, const char *param, const char *msg);
/* Runs q (CREST__QF_* flags) in the request's session, in place, and
 * returns its rows (the request's arena). On failure answers through the
 * error table (res NULL: leaves the answer alone), copies the failure into
 * *failed (when not NULL) and returns NULL. */
crest__rows *crest__rest_query(crest_req *req, crest_res *res, crest__sql *q, unsigned flags, crest__dberr *failed);
/* Runs q (CREST__QF_* flags; at most max_rows rows, 0: all) in the
 * request's session; next(op, rows) runs when it is done — at once, or
 * later on the worker's loop. A failure is answered through the error table
 * and finishes the answer (next never runs). Returns CREST_DEFERRED (the
 * route returns it), or -1 answered when it could not start. q is the
 * caller's to dispose once this returns. */
/* The same for a statement already made (its text and values borrowed
 * until it returns, the values' text until the completion). */
int crest__rest_run_then(crest_req *req, crest_res *res, crest__query *q, crest__rest_next next, void *op);
int crest__rest_query_then(crest_req *req, crest_res *res, crest__sql *q, unsigned flags, size_t max_rows,
                           crest__rest_next next, void *op);
/* The same, reading at most max_rows rows (0: all). */
crest__rows *crest__rest_query_n(crest_req *req, crest_res *res, crest__sql *q, unsigned flags, crest__dberr *failed,
                                 size_t max_rows);
/* Field-level access: may this request's user see / write field f? */
bool crest__rest_can_read(const crest_req *req, const crest__mfield *f);
bool crest__rest_can_write(const crest_req *req, const crest__mfield *f);
/* The field a client names in a query parameter, or NULL when it has no
 * such field it may see. */
const crest__mfield *crest__rest_client_field(const crest_req *req, const crest__module *mod, const char *name);
/* The columns a row read returns: every field, then the computed ones
 * (borrowed from mod). */
crest__proj crest__rest_proj(const crest__module *mod);
/* Ends plan's sort with the id (the way of the last key) unless it has it:
 * a total order, so pages neither repeat nor skip rows. */
void crest__rest_total_order(crest__plan *plan, const crest__model *m);
/* mod's default sort with the id tie-break, into *out. */
void crest__rest_full_sort(const crest__module *mod, crest__plan *out);
/* mod's row scope for this request (owner, fixed scope, scope_fn), or
 * NULL; 0, or -1 answered. */
int crest__rest_scope(const crest_rest_ctx *ctx, const crest__module *mod, crest__qnode **out);
/* Writes row i of r (a SELECT of mod->select) through the serializer: the
 * fields of the route's fields= mask (req->fields) when it is mod's, else
 * every served field. On an error it has answered, returns non-zero. */
int crest__rest_write_row(const crest_rest_ctx *ctx, const crest__module *mod, const crest__rows *r, size_t i,
                          crest_json *w);
/* The same with a mask of mod's fields (NULL: every served field). */
int crest__rest_write_fields(const crest_rest_ctx *ctx, const crest__module *mod, const crest__rows *r, size_t i,
                             const crest__field_mask *mask, crest_json *w);
/* The same without the braces: the object's members only. */
int crest__rest_write_members(const crest_rest_ctx *ctx, const crest__module *mod, const crest__rows *r, size_t i,
                              const crest__field_mask *mask, crest_json *w);
/* The request's fields= mask when it is mod's (the route's module), else NULL. */
const crest__field_mask *crest__rest_route_mask(const crest_req *req, const crest__module *mod);
/* Row i as a JSON object, for after_* hooks (new reference, or NULL). */
json_t *crest__rest_row_object(const crest_rest_ctx *ctx, const crest__module *mod, const crest__rows *r, size_t i);
/* The `where` parameter as a plan (NULL when absent); -1 when answered. */
int crest__rest_where_param(crest_req *req, crest_res *res, const crest__module *mod, crest__qnode **out);
/* The related rows of rel as the request's user may reach them: *mod, the
 * target model's module (crest__rest_module_of), when the method is
 * enabled and the user has its permission for `access` (CREST_R_INDEX for has_many / through rows,
 * CREST_R_READ for a belongs_to row; an app without auth: anyone), and
 * *scope, that module's scope for this request (fixed scope, scope_fn, row
 * ownership; NULL: none; from the request's arena), which every related row
 * used must meet. Fields of the target: crest__rest_client_field(req, *mod,
 * name). 0; -1 when the user may not reach them (answer as for an unknown
 * name; nothing is answered); -2 when the scope failed and res is answered.
 * Both outputs borrowed (the app's, the request's). */
int crest__rest_rel_target(crest_req *req, crest_res *res, const crest__rel *rel, unsigned access,
                           const crest__module **mod, const crest__qnode **scope);
/* The judge of a client's dotted names (where, sort_by, group) in a
 * request to mod: the state behind it lives in *rr (the caller's, for the
 * parse; it remembers each target's scope). */
typedef struct crest__rest_reach {
    crest_req *req;
    crest_res *res;
    const crest__module *mod;
    struct crest__rest_seen {
        const crest__model *m;
        unsigned access;
        int rc;
        const crest__module *mod;
        const crest__qnode *scope;
    } seen[8];
    unsigned n;
} crest__rest_reach;
crest__reach crest__rest_reach_init(crest__rest_reach *rr, crest_req *req, crest_res *res, const crest__module *mod);
/* The value "$user.id" / "$user.<claim>" stands for (new reference). */
json_t *crest__rest_user_value(const crest_user *u, const char *ref);
/* A copy of v with every "$user..." string replaced (new reference). */
json_t *crest__rest_with_user(json_t *v, const crest_user *u);
/* Pipeline, scope, after_parse_params: what every route runs first. */
int crest__rest_begin(crest_rest_ctx *ctx, crest__module *mod, crest__qnode **scope);
void crest__rest_ctx_init(crest_rest_ctx *ctx, crest_req *req, crest_res *res, crest__module *mod);
/* The prologue of every route (ud: the route): *mod, the context, then
 * the pipeline, the scope and after_parse_params (crest__rest_begin); with
 * id, the row's id from the path (404 when it is not an integer). 0, or -1
 * answered. */
int crest__rest_prologue(crest_req *req, crest_res *res, void *ud, crest_rest_ctx *ctx, crest__module **mod,
                         crest__qnode **scope, int64_t *id);
int crest__rest_page_params(crest_req *req, crest_res *res, const crest__module *mod, int64_t *page, int64_t *size);
/* The window of a list route: page/page_size, or limit/offset (index;
 * sample: page_size or limit), each clamped to the module's page size
 * bounds. 0, or -1 answered (400: both kinds given). */
int crest__rest_window(crest_req *req, crest_res *res, const crest__module *mod, bool sample, int64_t *offset,
                       int64_t *size);
/* The mask of the fields named in `list` ("id,title": fields of mod the
 * request's user may read through mod, computed fields included), in the
 * request's arena. param names the parameter in the 400 answered for an
 * empty list or a name that is not such a field. 0, or -1 answered. Usable
 * for any module (an embedded one's fields[<relation>] too). */
int crest__rest_field_mask(crest_req *req, crest_res *res, const crest__module *mod, const char *param,
                           const char *list, crest__field_mask **out);
/* id from the path; false when it is not an integer (the route answers 404). */
bool crest__rest_path_id(crest_req *req, const crest__module *mod, int64_t *id);
int crest__rest_not_found(crest_res *res, const crest__module *mod);
/* Compiles the read of row `id` of mod (its columns, then its version)
 * within scope into q. */
void crest__rest_select_by_id(crest__sql *q, const crest__module *mod, int64_t id, const crest__qnode *scope);
/* One read of row id in scope (404 when it is not there: answered, -1):
 * whether it is (SELECT 1), or its version (version: the one cell of *out,
 * the preconditions of a write, etag.c). out may be NULL. */
int crest__rest_row_read(crest_req *req, crest_res *res, const crest__module *mod, int64_t id,
                         const crest__qnode *scope, bool version, crest__rows **out);
/* 0 when row `id` is in scope; otherwise answered (404, or the database's error), -1. */
int crest__rest_row_visible(crest_req *req, crest_res *res, const crest__module *mod, int64_t id,
                            const crest__qnode *scope);
/* Writes a list's meta (the module's meta_fn, or object, total_objects
 * when has_total, total_estimated when estimated >= 0 — count=estimated:
 * 1 when total is the planner's estimate, 0 when exact — and has_more),
 * then, when next_cursor is not NULL (index), next_cursor: *next_cursor,
 * or null on the last page (after a meta_fn's members too). */
void crest__rest_meta(const crest_rest_ctx *ctx, const crest__module *mod, crest_json *w, int64_t total,
                      bool has_total, int estimated, bool has_more, const char *const *next_cursor);

/* ---- module_cursor.c: cursors of keyset pagination (?cursor=) ---- */

/* What a cursor is bound to: digests of the list (module and path), of
 * its where and of its sort. */
typedef struct crest__cursor_scope {
    unsigned char list[4], where[8], sort[8];
} crest__cursor_scope;
/* The scope of this request's list of mod sorted by plan (the total
 * order); 0, or -1 answered (out of memory). */
int crest__rest_cursor_scope(crest_req *req, crest_res *res, const crest__module *mod, const crest__plan *plan,
                             crest__cursor_scope *out);
/* The cursor after row `row` of r (read by lp, with key_columns): text in
 * the request's arena, or NULL when out of memory. */
const char *crest__rest_cursor_make(crest_req *req, const crest__cursor_scope *cs, const crest__list_plan *lp,
                                    const crest__rows *r, size_t row);
/* Reads ?cursor= text made for cs with plan's sort: *out, plan->nsort key
 * values (the request's arena). 0, or -1 answered: 400 invalid_cursor
 * saying what is wrong (not a cursor, altered or another database's,
 * another list's, or where / sort_by changed). */
int crest__rest_cursor_read(crest_req *req, crest_res *res, const crest__cursor_scope *cs, const crest__plan *plan,
                            const char *text, crest__val **out);
/* Adds the header Link: <the request's target with cursor=, without page
 * and offset>; rel="next". 0, or -1 answered (out of memory). */
int crest__rest_link_next(crest_req *req, crest_res *res, const char *cursor);
/* At start: reads the cursors' key from crest_meta (the first process on
 * the database puts a random secret there) into app->cursor_key. */
int crest__rest_cursor_secret(crest_app *app, crest__conn *c, crest_error *err);

/* ---- the routes' handlers (ud: the route) ---- */

/* module_read.c */
int crest__rest_op_index(crest_req *req, crest_res *res, void *ud);
int crest__rest_op_sample(crest_req *req, crest_res *res, void *ud);
int crest__rest_op_read(crest_req *req, crest_res *res, void *ud);
/* Serves row `id` (in scope) with the embeds e (NULL: none; parsed by
 * the route before it wrote anything); 404 when absent. Returns
 * CREST_DEFERRED (the answer is finished with crest__res_finish, maybe
 * already), or -1 answered. */
int crest__rest_serve_one(crest_rest_ctx *ctx, crest__module *mod, int64_t id, const crest__qnode *scope,
                          crest_rest_hook after, crest__embeds *e);
/* module_write.c */
int crest__rest_op_create(crest_req *req, crest_res *res, void *ud);
int crest__rest_op_update(crest_req *req, crest_res *res, void *ud);
int crest__rest_op_delete(crest_req *req, crest_res *res, void *ud);
/* The spec handler of write routes: runs route->inner on the app's writer connection. */
int crest__rest_write_route(crest_req *req, crest_res *res, void *ud);
/* module_aggregate.c */
int crest__rest_op_group(crest_req *req, crest_res *res, void *ud);
int crest__rest_op_stats(crest_req *req, crest_res *res, void *ud);
int crest__rest_op_eval(crest_req *req, crest_res *res, void *ud);

/* module_nested.c: /people/{id}/computers, a has_many relation's rows */
/* Adds the nested routes a new module mod (already in the app's list)
 * makes: its own relations' to the modules there, and theirs to it. */
int crest__rest_nest(crest_app *app, crest__module *mod, crest_error *err);
int crest__rest_op_nested_index(crest_req *req, crest_res *res, void *ud);
int crest__rest_op_nested_create(crest_req *req, crest_res *res, void *ud);
/* module_read.c: a list (index, sample) of mod's rows within scope. */
int crest__rest_list(const crest_rest_ctx *ctx, crest__module *mod, crest__qnode *scope, bool sample);
/* module_write.c: a create (one row, or a list) whose field pin, when not
 * NULL, is set to pin_id and may not be named by the body (422). */
int crest__rest_create(crest_rest_ctx *ctx, crest__module *mod, crest__embeds *e, const crest__mfield *pin,
                       int64_t pin_id);

/* module_idem.c: Idempotency-Key on create routes (see there). A request's
 * key: its scope (module and user), the key, the request's fingerprint
 * and its claim's token (the request's arena). */
typedef struct crest__idem {
    const char *scope, *key;
    char fp[65];
    int64_t token;
    bool claimed;
} crest__idem;
enum { CREST__IDEM_OFF, CREST__IDEM_GO, CREST__IDEM_CLAIMED, CREST__IDEM_ANSWERED };
/* Before route r's write unit: OFF (not a create of a module with
 * idempotency, or no key sent: the route runs as ever), GO (a valid key no
 * live record holds: claim it), or ANSWERED (res holds the answer: a
 * replay, or a 400/409/422 problem, or the database's failure). */
int crest__idem_check(crest_req *req, crest_res *res, const route *r, crest__idem *idem);
/* Claims the key in a statement committed when it returns (outside the
 * write unit, or inside one that autocommits): CLAIMED (the unit records
 * the answer with crest__idem_complete, or the key is given up with
 * crest__idem_release), or ANSWERED (held by another request meanwhile:
 * answered as crest__idem_check does). */
int crest__idem_claim(crest_req *req, crest_res *res, const route *r, crest__idem *idem);
/* Inside the unit's transaction, once the create has answered: records
 * the answer (its status, the header lines from byte headers_from of
 * res->headers on, its body). 0, or -1 answered (the unit then fails). */
int crest__idem_complete(crest_req *req, crest_res *res, const route *r, const crest__idem *idem,
                         size_t headers_from);
/* After a unit that failed (committed at once, as the claim): the key is
 * free again (failures are not kept). */
void crest__idem_release(crest_req *req, crest__idem *idem);
/* Start-up: makes crest_idempotency when a module of app uses it. 0, or
 * CREST_ECONFIG / CREST_ENOMEM with err set. */
int crest__idem_prepare(crest_app *app, crest__conn *c, crest_error *err);

/* module_changes.c: GET <collection>/changes, the change feed */
int crest__rest_op_changes(crest_req *req, crest_res *res, void *ud);

/* changes_hub.c: a worker's subscribers. A subscriber is woken (on the
 * worker's loop) when the change log may have grown. */
typedef struct crest__changes_sub crest__changes_sub;
struct crest__changes_sub {
    crest__changes_sub *prev, *next;
    void (*wake)(crest__changes_sub *s);
    bool later;                   /* woken again on the loop's next turn (crest__changes_hub_later) */
};
/* Subscribers in the worker's hub; -1 when it has none (no loop, no feed). */
int crest__changes_hub_count(crest__worker *w);
/* Adds / removes s (the hub must exist: count >= 0); dropped counts a
 * subscriber dropped for reading too slowly. */
void crest__changes_hub_add(crest__worker *w, crest__changes_sub *s);
void crest__changes_hub_remove(crest__worker *w, crest__changes_sub *s, bool dropped);
/* Counts n events written to subscribers. */
void crest__changes_count_events(crest_app *app, uint64_t n);
/* The hub's wake-ups so far: a read begun after the n-th saw every commit
 * that caused it. */
uint64_t crest__changes_hub_gen(crest__worker *w);
/* Wakes s again on the loop's next turn: a subscriber that read its share
 * of this one lets the loop serve others (and its stack unwind). */
void crest__changes_hub_later(crest__worker *w, crest__changes_sub *s);
/* A read of the log made for one subscriber, kept by the hub for the
 * others of the same key (module_changes.c: the same module, target and
 * headers, so the same rows visible and the same fields written): the
 * changes after from up to to, read during wake-up gen, as the events
 * written. */
typedef struct crest__changes_cached {
    int64_t from, to;
    uint64_t gen;
    const char *bytes;
    size_t len;
    uint64_t events;
    bool more;                    /* a full batch: more may follow to */
} crest__changes_cached;
/* The read of key after from made during wake-up gen, or NULL; borrowed
 * until the next put. */
const crest__changes_cached *crest__changes_cache_find(crest__worker *w, const char *key, size_t keylen, int64_t from,
                                                       uint64_t gen);
/* Keeps a copy of c for key (the oldest of a few replaced, those of
 * earlier wake-ups dropped; nothing kept past 1 MiB of events or when out
 * of memory). */
void crest__changes_cache_put(crest__worker *w, const char *key, size_t keylen, const crest__changes_cached *c);

/* module.c */
const char *crest__rest_method_name(unsigned bit);

/* ---- etag.c: conditional requests (ETag, If-None-Match, If-Match) ---- */

#define CREST_ETAG_LIST_MAX 32         /* entity-tags in one If-Match / If-None-Match */

/* One entity-tag of a request header: its opaque text without the quotes
 * (and without g-gzip's "-gzip" suffix), borrowed from the header. */
typedef struct crest__etag {
    const char *s;
    size_t n;
    bool weak;                    /* W/"..." */
    bool gzip;                    /* it had the suffix */
} crest__etag;
typedef struct crest__etags {
    bool star;                    /* "*" */
    unsigned n;
    crest__etag tag[CREST_ETAG_LIST_MAX];
} crest__etags;

/* Parses an If-Match / If-None-Match value (RFC 9110: "*" / #entity-tag,
 * empty list elements allowed) into *out, pointing into s. 0, or -1 with
 * *msg (static) saying what is malformed. */
int crest__etag_parse(const char *s, crest__etags *out, const char **msg);
/* 64-bit FNV-1a of n bytes. */
uint64_t crest__etag_hash(const void *p, size_t n);
/* The weak comparison of l with tag (a full tag, quotes included): true
 * for "*". *gzip (when not NULL): whether the tag that matched had the
 * "-gzip" suffix. */
bool crest__etag_weak_match(const crest__etags *l, const char *tag, bool *gzip);
/* The row part of one of crest's row tags ("<id>.<version hex>.<variant>"):
 * 0, or -1 when t is not of that form. */
int crest__etag_row_part(const crest__etag *t, int64_t *id, int64_t *version);
/* Adds the ETag header tag (copied) to the answer and, on a GET or HEAD
 * whose If-None-Match names it (weak comparison), turns the answer into a
 * 304 (no body). 1: 304; 0: not; -1 answered (a malformed If-None-Match:
 * 400). */
int crest__rest_etag_answer(crest_res *res, const char *tag);
/* crest__rest_etag_answer with the tag of the body res's writer holds
 * ("l<hash>"): 0, or -1 answered. */
int crest__rest_etag_body(crest_res *res);
/* crest__res_finish(res, rc) of a list-like answer, tagged by its body first. */
void crest__rest_finish_tagged(crest_res *res, int rc);
/* The tag of row i of r (a read of mod's columns and its version,
 * crest__rest_select_by_id) into buf (>= 64 bytes): from the version and
 * the fields the answer writes (mask: fields=, or NULL), or, when body is
 * not NULL (an answer the row alone does not decide), from the version and
 * body's body_len bytes. */
void crest__rest_etag_row(const crest_rest_ctx *ctx, const crest__module *mod, const crest__rows *r, size_t i,
                          const crest__field_mask *mask, const char *body, size_t body_len, char *buf, size_t cap);
/* If-Match and If-None-Match of an update or delete of row id: *given
 * when either is there; *out the versions the write must find and those
 * it must not. 0; -1 answered: 428 when If-Match is absent and mod
 * requires it, 400 when one is malformed. */
int crest__rest_if_match(crest_rest_ctx *ctx, const crest__module *mod, int64_t id, bool *given,
                         crest__version_check *out);
/* Row id is there (in scope; else 404) and, when c checks versions, at a
 * version c allows (else 412): one read. 0, or -1 answered. */
int crest__rest_row_check(crest_req *req, crest_res *res, const crest__module *mod, int64_t id,
                          const crest__qnode *scope, const crest__version_check *c);
/* A conditional write changed no row: 404 when row id is not there (in
 * scope), else 412. Always -1 (answered). */
int crest__rest_if_match_failed(crest_req *req, crest_res *res, const crest__module *mod, int64_t id,
                                const crest__qnode *scope, const crest__version_check *c);

#endif
