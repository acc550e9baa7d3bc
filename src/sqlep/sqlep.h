/* sqlep.h — an SQL-backed endpoint from the app file: its spec, its SQL and
 * where each :name in the SQL takes its value from. */
#ifndef CREST_SQLEP_H
#define CREST_SQLEP_H

#include "../query/model.h"
#include "../req/req.h"

typedef enum { RET_ONE, RET_MANY, RET_VALUE, RET_NONE } sqlep_returns;

/* A parameter read from the JSON body (POST/PUT/PATCH): a field, checked
 * by the one field validator (crest__field_input) as a model's field is. */
typedef struct sqlep_body_param {
    crest__mfield f;       /* its strings point below; f.defv (the default) is owned */
    char *name;            /* owned */
    char **values;         /* enum, NULL-terminated, owned */
    char *description;     /* owned */
} sqlep_body_param;

/* A header parameter whose SQL name is not its header's name
 * (`header: X-Tenant-Id`), or whose value goes back in the response
 * (`reply_header: true`). */
typedef struct sqlep_header {
    unsigned param;        /* index into spec.params (whose name is the header's) */
    char *sql_name;        /* :<sql_name> in the SQL, owned */
    bool reply;            /* copied into the response, under the header's name */
} sqlep_header;

/* Where the SQL's parameter number i+1 takes its value. */
typedef struct sqlep_bind {
    int spec_param;        /* index into spec.params, or -1 */
    int body_param;        /* index into body, or -1 */
    char *user_claim;      /* :user.<claim> ("id": the user's id), owned, or NULL */
} sqlep_bind;

/* How a result column is written: as the database typed it (kind 0), or
 * as a declared type (`columns:`, kind a crest_field_type, written by
 * crest__cell_write_as), which the OpenAPI document also gives. */
typedef struct sqlep_col {
    char *name;
    int kind;              /* crest_field_type, or 0 ("auto") */
    int line;              /* in the app file */
} sqlep_col;


/* The kind (crest_field_type, 0 for auto) of a type name of `columns:` ("int", "datetime", "auto"...), or -1. */
int crest__sqlep_col_kind(const char *name);
/* Its OpenAPI type and format (NULL: none; json and auto: type NULL too). */
void crest__sqlep_col_schema(int kind, const char **type, const char **format);

/* The response headers a script on another origin may read (CORS): ETag
 * for its If-Match / If-None-Match (src/rest/etag.c), Link for the next
 * page by cursor, Idempotent-Replayed (REST modules). */
#define CREST__CORS_EXPOSE "ETag, Idempotent-Replayed, Link, Location, Retry-After, WWW-Authenticate, X-Request-Id"
/* The request headers a preflight allows when the app names none: those
 * REST modules read too (conditional requests, idempotent creates, the
 * change feed's resume). */
#define CREST__CORS_ALLOW_HEADERS \
    "Authorization, Content-Type, Idempotency-Key, If-Match, If-None-Match, Last-Event-ID"

struct crest__sqlep {
    crest_endpoint spec;   /* strings below are owned */
    crest_param *params;   /* path/query/header params, zero-terminated */
    unsigned nparams;
    sqlep_body_param *body;
    unsigned nbody;
    sqlep_header *headers;
    unsigned nheaders;
    char *sql;             /* what runs: SQLite's form (:user.x as :user::x), or PostgreSQL's ($1..$n,
                              set by crest__sqlep_check) */
    char *sql_source;      /* the SQL as the app file wrote it, owned */
    sqlep_returns returns;
    sqlep_col *cols;       /* the `columns:` map */
    unsigned ncols;
    char *expose;          /* Access-Control-Expose-Headers: crest's own and the reply headers, owned;
                              NULL when there are none of those (set by crest__sqlep_check) */
    int *col_kind;         /* the kind of each column the statement returns, by position (set by
                              crest__sqlep_check when there are `columns:`), or NULL */
    int ncol_kind;
    bool readonly;         /* the statement only reads (set by crest__sqlep_check): it may run off the loop */
    int line;              /* the endpoint's line in the app file */
    int sql_line;
    sqlep_bind *binds;     /* set by crest__sqlep_check */
    int nbinds;
    char *strings[8];      /* path, summary... freed with the endpoint */
    unsigned nstrings;
};

/* The SQL with every :user.<claim> (also $user. and @user.) outside string
 * literals, quoted names and comments written :user::<claim>, which SQLite
 * reads as one parameter name (a '.' would end it). malloc'd, or NULL when
 * out of memory. */
char *crest__sqlep_user_params(const char *sql);

/* The handler of every SQL endpoint (ud: its crest__sqlep). */
int crest__sqlep_handler(crest_req *req, crest_res *res, void *ud);
void crest__sqlep_free(crest__sqlep *s);
/* Prepares the SQL against db to check it; err names the endpoint's line. */
int crest__sqlep_check(crest_app *app, crest__endpoint *ep, crest__conn *c, crest_error *err);
/* What can be checked of PostgreSQL's SQL without a database (crest
 * check): its :names numbered, each naming a declared parameter or a claim
 * of a user the app has. */
int crest__sqlep_check_text(crest_app *app, crest__endpoint *ep, crest_error *err);

#endif
