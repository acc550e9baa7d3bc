/* idempotency.c — the statements of idempotent creates (Idempotency-Key,
 * src/rest/module_idem.c) over crest's table crest_idempotency, the same
 * text in both dialects but for the placeholders (SQLite 3.24 and
 * PostgreSQL 9.5 both have INSERT ... ON CONFLICT ... DO UPDATE ... WHERE).
 *
 * A record is one key of one scope (module and user): the request's
 * fingerprint, its state (0: claimed, the first request still running; 1:
 * done, its answer kept) and expires_us (wall clock, µs): a done record
 * lives until then, a claim until its claim timeout. A record past it is
 * dead: lookups ignore it, a claim takes it over, a purge removes it. A
 * claim's expires_us is its token too: completing or releasing it touches
 * the record only while it is still that claim. */
#include "query.h"

static void bind_text(crest__sql *q, const char *s)
{
    crest__sql_bind(q, (crest__val){.k = CREST__V_TEXT, .s = s, .n = strlen(s)});
}

static void bind_int(crest__sql *q, int64_t i)
{
    crest__sql_bind(q, (crest__val){.k = CREST__V_INT, .i = i});
}

void crest__compile_idem_table(crest__sql *q)
{
    crest__sql_add(q, "CREATE TABLE IF NOT EXISTS crest_idempotency (scope TEXT NOT NULL, key TEXT NOT NULL, "
                      "fingerprint TEXT NOT NULL, state INTEGER NOT NULL, expires_us BIGINT NOT NULL, "
                      "status BIGINT, headers TEXT, body TEXT, PRIMARY KEY (scope, key))");
}

void crest__compile_idem_index(crest__sql *q)
{
    crest__sql_add(q, "CREATE INDEX IF NOT EXISTS crest_idempotency_expires_idx ON crest_idempotency (expires_us)");
}

/* SELECT state, fingerprint, status, headers, body of the live record. */
void crest__compile_idem_lookup(crest__sql *q, const char *scope, const char *key, int64_t now_us)
{
    crest__sql_add(q, "SELECT state, fingerprint, status, headers, body FROM crest_idempotency WHERE scope = ");
    bind_text(q, scope);
    crest__sql_add(q, " AND key = ");
    bind_text(q, key);
    crest__sql_add(q, " AND expires_us > ");
    bind_int(q, now_us);
}

/* Claims the key (a new record, or a dead one taken over): one row changed
 * when claimed, none when a live record holds it. */
void crest__compile_idem_claim(crest__sql *q, const char *scope, const char *key, const char *fingerprint,
                               int64_t token, int64_t now_us)
{
    crest__sql_add(q, "INSERT INTO crest_idempotency (scope, key, fingerprint, state, expires_us) VALUES (");
    bind_text(q, scope);
    crest__sql_add(q, ", ");
    bind_text(q, key);
    crest__sql_add(q, ", ");
    bind_text(q, fingerprint);
    crest__sql_add(q, ", 0, ");
    bind_int(q, token);
    crest__sql_add(q, ") ON CONFLICT (scope, key) DO UPDATE SET fingerprint = excluded.fingerprint, state = 0, "
                      "expires_us = excluded.expires_us, status = NULL, headers = NULL, body = NULL "
                      "WHERE crest_idempotency.expires_us <= ");
    bind_int(q, now_us);
}

/* Turns the claim `token` into a done record with its answer (text
 * borrowed until the run): one row changed, or none when the claim was
 * lost (it timed out and another request took the key over). */
void crest__compile_idem_complete(crest__sql *q, const char *scope, const char *key, int64_t token,
                                  int64_t expires_us, int status, const char *headers, const char *body, size_t len)
{
    crest__sql_add(q, "UPDATE crest_idempotency SET state = 1, expires_us = ");
    bind_int(q, expires_us);
    crest__sql_add(q, ", status = ");
    bind_int(q, status);
    crest__sql_add(q, ", headers = ");
    bind_text(q, headers);
    crest__sql_add(q, ", body = ");
    crest__sql_bind(q, (crest__val){.k = CREST__V_TEXT, .s = body, .n = len});
    crest__sql_add(q, " WHERE scope = ");
    bind_text(q, scope);
    crest__sql_add(q, " AND key = ");
    bind_text(q, key);
    crest__sql_add(q, " AND state = 0 AND expires_us = ");
    bind_int(q, token);
}

/* Gives the claim `token` up (the request failed: the key may be used again). */
void crest__compile_idem_release(crest__sql *q, const char *scope, const char *key, int64_t token)
{
    crest__sql_add(q, "DELETE FROM crest_idempotency WHERE scope = ");
    bind_text(q, scope);
    crest__sql_add(q, " AND key = ");
    bind_text(q, key);
    crest__sql_add(q, " AND state = 0 AND expires_us = ");
    bind_int(q, token);
}

/* Removes at most `max` dead records (the oldest first, by the index). */
void crest__compile_idem_purge(crest__sql *q, int64_t now_us, unsigned max)
{
    crest__sql_add(q, "DELETE FROM crest_idempotency WHERE (scope, key) IN (SELECT scope, key FROM "
                      "crest_idempotency WHERE expires_us <= ");
    bind_int(q, now_us);
    crest__sql_add(q, " ORDER BY expires_us LIMIT ");
    bind_int(q, max);
    crest__sql_add(q, ")");
}
