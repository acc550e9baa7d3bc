/* errors.c — the one table of error codes crest answers with (see
 * errors.h): code, status and default detail per row. Every problem answer
 * crest itself makes takes its code and status from here, through
 * crest__res_fail (src/app/app.c) or the engine's crest__conn_engine_error. */
#include <stddef.h>
#include <string.h>

#include "core.h"

static const crest__problem_def table[CREST__E_COUNT] = {
    [CREST__E_BAD_REQUEST] = {"bad_request", 400, "the request is malformed", false},
    [CREST__E_URI_TOO_LONG] = {"uri_too_long", 414, "the request target is too long", false},
    [CREST__E_HEADERS_TOO_LARGE] = {"headers_too_large", 431, "the header fields are too large", false},
    [CREST__E_PAYLOAD_TOO_LARGE] = {"payload_too_large", 413, "the body is larger than the server accepts", false},
    [CREST__E_HTTP_VERSION_NOT_SUPPORTED] = {"http_version_not_supported", 505,
                                             "only HTTP/1.0 and HTTP/1.1 are served", false},
    [CREST__E_NOT_IMPLEMENTED] = {"not_implemented", 501, "this method is not supported", false},
    [CREST__E_EXPECTATION_FAILED] = {"expectation_failed", 417, "only Expect: 100-continue is supported", false},
    [CREST__E_HTTPS_REQUIRED] = {"https_required", 400, "this port speaks HTTPS: plain HTTP was sent to it", false},
    [CREST__E_REQUEST_TIMEOUT] = {"request_timeout", 408, "the request took too long to arrive", false},
    [CREST__E_TOO_MANY_CONNECTIONS] = {"too_many_connections", 503, "the server is at its connection limit", false},
    [CREST__E_SHUTTING_DOWN] = {"shutting_down", 503, "the server is shutting down", false},
    [CREST__E_OVERLOADED] = {"overloaded", 503, "the server could not schedule the request", false},
    [CREST__E_TOO_MANY_SUBSCRIBERS] = {"too_many_subscribers", 503,
                                       "the server is at its limit of change feed subscribers; try again later",
                                       false},

    [CREST__E_NOT_FOUND] = {"not_found", 404, "no route for this path", false},
    [CREST__E_METHOD_NOT_ALLOWED] = {"method_not_allowed", 405, "this method is not allowed here", false},
    [CREST__E_MISSING_PARAMETER] = {"missing_parameter", 400, "a required parameter is missing", false},
    [CREST__E_INVALID_PARAMETER] = {"invalid_parameter", 400, "a parameter is invalid", false},
    [CREST__E_INVALID_CURSOR] = {"invalid_cursor", 400, "the cursor is not valid for this list", false},
    [CREST__E_MISSING_BODY] = {"missing_body", 400, "a JSON body is required", false},
    [CREST__E_INVALID_JSON] = {"invalid_json", 400, "the body is not valid JSON", false},
    [CREST__E_UNSUPPORTED_MEDIA_TYPE] = {"unsupported_media_type", 415, "the body must be application/json", false},
    [CREST__E_UNSUPPORTED_CONTENT_ENCODING] = {"unsupported_content_encoding", 415,
                                               "the body must not be content-coded", false},
    [CREST__E_VALIDATION_FAILED] = {"validation_failed", 422, "the body's values are invalid", false},
    [CREST__E_PRECONDITION_FAILED] = {"precondition_failed", 412,
                                      "the row has changed since the ETag given in If-Match", false},
    [CREST__E_PRECONDITION_REQUIRED] = {"precondition_required", 428,
                                        "this change needs an If-Match header with the row's ETag", false},

    [CREST__E_UNAUTHORIZED] = {"unauthorized", 401, "a valid bearer token or API key is required", false},
    [CREST__E_FORBIDDEN] = {"forbidden", 403, "this endpoint is not open to anyone", false},
    [CREST__E_RATE_LIMITED] = {"rate_limited", 429, "too many requests; try again later", false},
    [CREST__E_CHANGES_EXPIRED] = {"changes_expired", 410,
                                  "the changes after Last-Event-ID are no longer kept: read the rows again, then "
                                  "follow the feed without Last-Event-ID",
                                  false},

    [CREST__E_CONFLICT] = {"conflict", 409, "a row with the same unique value exists", false},
    [CREST__E_MISSING_REFERENCE] = {"missing_reference", 422, "a value refers to a row that does not exist", false},
    [CREST__E_STILL_REFERENCED] = {"still_referenced", 409, "other rows refer to this row", false},
    [CREST__E_IDEMPOTENCY_KEY_REUSED] = {"idempotency_key_reused", 422,
                                         "this Idempotency-Key was used for another request", false},
    [CREST__E_IDEMPOTENCY_KEY_IN_USE] = {"idempotency_key_in_use", 409,
                                         "a request with this Idempotency-Key is still being processed", false},
    [CREST__E_CONSTRAINT_VIOLATED] = {"constraint_violated", 422, "the values break a rule of the table", false},
    [CREST__E_RAISED] = {"raised", 500, "an SQL trigger refused the request", true},
    [CREST__E_STATEMENT_TIMEOUT] = {"statement_timeout", 504, "the query took longer than allowed", false},
    [CREST__E_DATABASE_BUSY] = {"database_busy", 503, "the database is busy; try again", false},
    [CREST__E_DATABASE_UNAVAILABLE] = {"database_unavailable", 503, "the database is not available", false},
    [CREST__E_STORAGE_FULL] = {"storage_full", 507,
                               "the database cannot grow (storage full or failing); try again later", false},

    [CREST__E_OUT_OF_MEMORY] = {"out_of_memory", 503, "the server is short of memory", false},
    [CREST__E_INTERNAL_ERROR] = {"internal_error", 500, "the server could not answer", false},
    [CREST__E_RESPONSE_TOO_LARGE] = {"response_too_large", 500, "the response is larger than the server allows",
                                     false},
    [CREST__E_HANDLER_TIMEOUT] = {"handler_timeout", 504, "the handler took longer than its endpoint allows", false},
    [CREST__E_DOCS_UNAVAILABLE] = {"docs_unavailable", 503, "the docs page's files are not installed", false},
    [CREST__E_ERROR] = {"error", 500, "a C handler answered with an error without a code", true},
};

const crest__problem_def *crest__problem(crest__ecode e)
{
    return (unsigned)e < CREST__E_COUNT ? &table[e] : NULL;
}

const crest__problem_def *crest__problem_find(const char *code, crest__ecode *e)
{
    if (!code)
        return NULL;
    for (unsigned i = 0; i < CREST__E_COUNT; i++)
        if (!strcmp(table[i].code, code)) {
            if (e)
                *e = (crest__ecode)i;
            return &table[i];
        }
    return NULL;
}
