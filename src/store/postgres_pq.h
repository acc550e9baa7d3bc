/* postgres_pq.h — libpq, as the PostgreSQL store calls it: loaded with
 * dlopen when a PostgreSQL database is first opened (crest__pq_load), so a
 * crest that serves SQLite maps neither libpq nor the twenty libraries it
 * brings (Kerberos, LDAP, GnuTLS: 3.5 MiB of resident memory). Each PQ
 * function the store uses is a pointer of crest__pq_api under its own name
 * (the macros below), typed from libpq-fe.h. Internal: included by the
 * store's postgres*.c files only. */
#ifndef CREST_POSTGRES_PQ_H
#define CREST_POSTGRES_PQ_H

#include <libpq-fe.h>

#define CREST__PQ_FUNCS(X) \
    X(PQcancel) \
    X(PQclear) \
    X(PQcmdStatus) \
    X(PQcmdTuples) \
    X(PQconnectPoll) \
    X(PQconnectStartParams) \
    X(PQconnectdbParams) \
    X(PQconninfoFree) \
    X(PQconninfoParse) \
    X(PQconsumeInput) \
    X(PQdescribePrepared) \
    X(PQenterPipelineMode) \
    X(PQerrorMessage) \
    X(PQexec) \
    X(PQexecParams) \
    X(PQexecPrepared) \
    X(PQfinish) \
    X(PQflush) \
    X(PQfname) \
    X(PQfreeCancel) \
    X(PQfreemem) \
    X(PQftype) \
    X(PQgetCancel) \
    X(PQgetResult) \
    X(PQgetisnull) \
    X(PQgetlength) \
    X(PQgetvalue) \
    X(PQisBusy) \
    X(PQnfields) \
    X(PQnotifies) \
    X(PQnparams) \
    X(PQntuples) \
    X(PQpipelineSync) \
    X(PQprepare) \
    X(PQresultErrorField) \
    X(PQresultErrorMessage) \
    X(PQresultStatus) \
    X(PQsendPrepare) \
    X(PQsendQueryParams) \
    X(PQsendQueryPrepared) \
    X(PQserverVersion) \
    X(PQsetNoticeProcessor) \
    X(PQsetnonblocking) \
    X(PQsocket) \
    X(PQstatus) \
    X(PQtransactionStatus) \

typedef struct crest__pq {
#define CREST__PQ_FIELD(f) __typeof__(f) *f;
    CREST__PQ_FUNCS(CREST__PQ_FIELD)
#undef CREST__PQ_FIELD
} crest__pq;

extern crest__pq crest__pq_api;

/* Loads libpq (libpq.so.5) once, for every thread; 0, or -1 with *msg
 * (static, or valid until the next dlerror) saying why not. */
int crest__pq_load(const char **msg);

#ifndef CREST__PQ_IMPL
#define PQcancel (crest__pq_api.PQcancel)
#define PQclear (crest__pq_api.PQclear)
#define PQcmdStatus (crest__pq_api.PQcmdStatus)
#define PQcmdTuples (crest__pq_api.PQcmdTuples)
#define PQconnectPoll (crest__pq_api.PQconnectPoll)
#define PQconnectStartParams (crest__pq_api.PQconnectStartParams)
#define PQconnectdbParams (crest__pq_api.PQconnectdbParams)
#define PQconninfoFree (crest__pq_api.PQconninfoFree)
#define PQconninfoParse (crest__pq_api.PQconninfoParse)
#define PQconsumeInput (crest__pq_api.PQconsumeInput)
#define PQdescribePrepared (crest__pq_api.PQdescribePrepared)
#define PQenterPipelineMode (crest__pq_api.PQenterPipelineMode)
#define PQerrorMessage (crest__pq_api.PQerrorMessage)
#define PQexec (crest__pq_api.PQexec)
#define PQexecParams (crest__pq_api.PQexecParams)
#define PQexecPrepared (crest__pq_api.PQexecPrepared)
#define PQfinish (crest__pq_api.PQfinish)
#define PQflush (crest__pq_api.PQflush)
#define PQfname (crest__pq_api.PQfname)
#define PQfreeCancel (crest__pq_api.PQfreeCancel)
#define PQfreemem (crest__pq_api.PQfreemem)
#define PQftype (crest__pq_api.PQftype)
#define PQgetCancel (crest__pq_api.PQgetCancel)
#define PQgetResult (crest__pq_api.PQgetResult)
#define PQgetisnull (crest__pq_api.PQgetisnull)
#define PQgetlength (crest__pq_api.PQgetlength)
#define PQgetvalue (crest__pq_api.PQgetvalue)
#define PQisBusy (crest__pq_api.PQisBusy)
#define PQnfields (crest__pq_api.PQnfields)
#define PQnotifies (crest__pq_api.PQnotifies)
#define PQnparams (crest__pq_api.PQnparams)
#define PQntuples (crest__pq_api.PQntuples)
#define PQpipelineSync (crest__pq_api.PQpipelineSync)
#define PQprepare (crest__pq_api.PQprepare)
#define PQresultErrorField (crest__pq_api.PQresultErrorField)
#define PQresultErrorMessage (crest__pq_api.PQresultErrorMessage)
#define PQresultStatus (crest__pq_api.PQresultStatus)
#define PQsendPrepare (crest__pq_api.PQsendPrepare)
#define PQsendQueryParams (crest__pq_api.PQsendQueryParams)
#define PQsendQueryPrepared (crest__pq_api.PQsendQueryPrepared)
#define PQserverVersion (crest__pq_api.PQserverVersion)
#define PQsetNoticeProcessor (crest__pq_api.PQsetNoticeProcessor)
#define PQsetnonblocking (crest__pq_api.PQsetnonblocking)
#define PQsocket (crest__pq_api.PQsocket)
#define PQstatus (crest__pq_api.PQstatus)
#define PQtransactionStatus (crest__pq_api.PQtransactionStatus)
#endif

#endif
