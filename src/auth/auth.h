/* auth.h — authentication (auth.c: JWT bearer tokens, API keys,
 * permissions) and rate limits (ratelimit.c), as the app calls them.
 * Internal: not installed. */
#ifndef CREST_AUTH_H
#define CREST_AUTH_H

#include "../req/req.h"

/* ---- auth.c ---- */
void crest__auth_free(crest__auth *a);
bool crest__user_has_one(const crest_user *u, const char *list);
/* Authenticates and checks the endpoint's permission; 0, or -1 with a 401/403.
 * Runs on the worker's loop thread (it uses the worker's token cache). */
int crest__auth_check(crest_req *req, crest_res *res);
/* Frees a worker's cache of verified tokens (NULL is fine). */
void crest__token_cache_free(struct crest__token_cache *tc);

/* ---- ratelimit.c ---- */
int crest__rate_parse(const char *s, crest__rate *out);
int crest__ratelimits_init(crest_app *app);
void crest__ratelimits_free(crest__ratelimits *r);
/* 0, or -1 with a 429 + Retry-After. */
int crest__rate_check(crest_req *req, crest_res *res);

#endif
