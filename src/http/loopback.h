/* loopback.h — one HTTP connection without a socket: bytes in, response bytes
 * out, through the same parser callbacks, limits, router, spec checks and
 * handlers as a real connection (h2o's loopback conn). For unit tests and the
 * fuzz targets. Blocking handlers run inline. Internal. */
#ifndef CREST_LOOPBACK_H
#define CREST_LOOPBACK_H

#include "../app/app_internal.h"

typedef struct crest__loopback crest__loopback;

/* Prepares the app as serving would (builtins, database) and opens a
 * connection. The app must outlive the loopback. NULL on error (err says). */
crest__loopback *crest__loopback_new(crest_app *app, crest_error *err);
/* Drops the connection (what it held, half-read or not) and its output,
 * and opens a new one on the same prepared app and worker: what
 * crest__loopback_free then crest__loopback_new would give, without
 * preparing the app and its database again. 0, or CREST_ENOMEM (then lb
 * may only be freed). */
int crest__loopback_reconnect(crest__loopback *lb);
/* Feeds bytes as if read from the socket. -1 when the connection is closed. */
int crest__loopback_feed(crest__loopback *lb, const char *data, size_t len);
/* Everything the server wrote so far (borrowed until the next feed/clear/free). */
const char *crest__loopback_output(crest__loopback *lb, size_t *len);
void crest__loopback_clear_output(crest__loopback *lb);
/* true once the server would have closed the connection. */
bool crest__loopback_closed(const crest__loopback *lb);
/* Bytes the connection holds besides its own struct: its buffers and its
 * request state (0 while it waits for a request: idle connections hold no
 * buffers). */
size_t crest__loopback_held(const crest__loopback *lb);
void crest__loopback_free(crest__loopback *lb);

#endif
