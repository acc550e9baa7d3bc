/* tls.h — HTTPS for the libuv engine: OpenSSL over memory BIOs. The engine
 * owns the socket; this layer only turns ciphertext into plaintext and back,
 * so the event loop, timers and limits stay the same for HTTP and HTTPS. */
#ifndef CREST_HTTP_TLS_H
#define CREST_HTTP_TLS_H

#include <stddef.h>
#include <sys/types.h>

#include "crest/crest.h"
#include "../core/core.h"

typedef struct crest__tls_ctx crest__tls_ctx;
typedef struct crest__tls crest__tls;

/* Loads a PEM certificate chain and its private key; TLS 1.2 and 1.3 only,
 * forward-secret AEAD ciphers, no renegotiation, ALPN http/1.1. Returns NULL
 * and fills err when a file cannot be read or the key does not match the
 * certificate. The context is shared by all workers; free it with
 * crest__tls_ctx_free once no connection uses it. */
crest__tls_ctx *crest__tls_ctx_new(const char *cert_file, const char *key_file, crest_error *err);
void crest__tls_ctx_free(crest__tls_ctx *ctx);

/* One server-side connection; NULL when out of memory. Freed with crest__tls_free. */
crest__tls *crest__tls_new(crest__tls_ctx *ctx);
void crest__tls_free(crest__tls *t);

enum {
    CREST__TLS_AGAIN = 0,       /* more input is needed */
    CREST__TLS_DONE = 1,        /* handshake complete */
    CREST__TLS_FAIL = -1,       /* protocol error; an alert may be in the output */
    CREST__TLS_PLAIN_HTTP = -2  /* the client spoke plain HTTP to the TLS port */
};

/* Takes ciphertext read from the socket (copied). 0, or CREST_ENOMEM. */
int crest__tls_input(crest__tls *t, const char *data, size_t len);
/* Advances the handshake: one of CREST__TLS_AGAIN/DONE/FAIL/PLAIN_HTTP. */
int crest__tls_handshake(crest__tls *t);
/* Decrypts into buf: bytes read, 0 when more ciphertext is needed, -1 when
 * the peer closed (close_notify) or the stream is broken. */
ssize_t crest__tls_read(crest__tls *t, char *buf, size_t cap);
/* Encrypts len bytes (all of them; memory BIOs never block). 0, or -1. */
int crest__tls_write(crest__tls *t, const char *data, size_t len);
/* Queues a close_notify alert (once; nothing after a fatal error). */
void crest__tls_close_notify(crest__tls *t);
/* Appends the ciphertext waiting to be sent to out. 0, or CREST_ENOMEM. */
int crest__tls_output(crest__tls *t, crest__buf *out);
/* Whether ciphertext is waiting to be sent. */
int crest__tls_has_output(const crest__tls *t);

#endif
