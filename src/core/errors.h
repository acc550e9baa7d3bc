/* errors.h — every error code crest answers with, in one table (PostgREST's
 * Error.hs): the code's stable string, its HTTP status and a default detail.
 * A problem answer's title is the reason phrase of its status. Codes are
 * never renamed or reused; docs/internals/errors.md lists them all. */
#ifndef CREST_CORE_ERRORS_H
#define CREST_CORE_ERRORS_H

#include <stdbool.h>

/* One constant per code, in the order of the table in errors.c. */
typedef enum crest__ecode {
    /* the HTTP engine: the request's bytes */
    CREST__E_BAD_REQUEST,
    CREST__E_URI_TOO_LONG,
    CREST__E_HEADERS_TOO_LARGE,
    CREST__E_PAYLOAD_TOO_LARGE,
    CREST__E_HTTP_VERSION_NOT_SUPPORTED,
    CREST__E_NOT_IMPLEMENTED,
    CREST__E_EXPECTATION_FAILED,
    CREST__E_HTTPS_REQUIRED,
    CREST__E_REQUEST_TIMEOUT,
    CREST__E_TOO_MANY_CONNECTIONS,
    CREST__E_SHUTTING_DOWN,
    CREST__E_OVERLOADED,
    CREST__E_TOO_MANY_SUBSCRIBERS,
    /* routing and the endpoint's spec */
    CREST__E_NOT_FOUND,
    CREST__E_METHOD_NOT_ALLOWED,
    CREST__E_MISSING_PARAMETER,
    CREST__E_INVALID_PARAMETER,
    CREST__E_INVALID_CURSOR,
    CREST__E_MISSING_BODY,
    CREST__E_INVALID_JSON,
    CREST__E_UNSUPPORTED_MEDIA_TYPE,
    CREST__E_UNSUPPORTED_CONTENT_ENCODING,
    CREST__E_VALIDATION_FAILED,
    /* conditional requests (If-Match) */
    CREST__E_PRECONDITION_FAILED,
    CREST__E_PRECONDITION_REQUIRED,
    /* auth and rate limits; a change feed's resume point past the log */
    CREST__E_UNAUTHORIZED,
    CREST__E_FORBIDDEN,
    CREST__E_RATE_LIMITED,
    CREST__E_CHANGES_EXPIRED,
    /* the database (src/req/dberror.c maps the store's kinds to these;
     * the idempotency keys' are src/rest/module_idem.c's) */
    CREST__E_CONFLICT,
    CREST__E_MISSING_REFERENCE,
    CREST__E_STILL_REFERENCED,
    CREST__E_IDEMPOTENCY_KEY_REUSED,
    CREST__E_IDEMPOTENCY_KEY_IN_USE,
    CREST__E_CONSTRAINT_VIOLATED,
    CREST__E_RAISED,
    CREST__E_STATEMENT_TIMEOUT,
    CREST__E_DATABASE_BUSY,
    CREST__E_DATABASE_UNAVAILABLE,
    CREST__E_STORAGE_FULL,
    /* the server */
    CREST__E_OUT_OF_MEMORY,
    CREST__E_INTERNAL_ERROR,
    CREST__E_RESPONSE_TOO_LARGE,
    CREST__E_HANDLER_TIMEOUT,
    CREST__E_DOCS_UNAVAILABLE,
    CREST__E_ERROR,
    CREST__E_COUNT
} crest__ecode;

/* A row of the table. The title of an answer is crest__status_text(status). */
typedef struct crest__problem_def {
    const char *code;   /* stable snake_case string ("not_found") */
    int status;         /* 4xx/5xx */
    const char *detail; /* the detail when the caller gives none */
    /* The status is the caller's and `status` (500) only stands in for one
     * outside 400..599: `raised` answers with an SQL trigger's own status,
     * `error` with a C handler's. */
    bool any_status;
} crest__problem_def;

/* The row of e; NULL for a value outside the enum. Static storage. */
const crest__problem_def *crest__problem(crest__ecode e);
/* The row whose code is `code` (and its constant in *e, if e is non-NULL);
 * NULL for a code crest does not produce or a NULL code. */
const crest__problem_def *crest__problem_find(const char *code, crest__ecode *e);

#endif
