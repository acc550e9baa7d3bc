/* tls.c — OpenSSL over memory BIOs for the libuv engine (see tls.h). Each
 * connection has an SSL object with two memory BIOs: the engine writes the
 * ciphertext it reads from the socket into the read BIO, and sends what
 * OpenSSL leaves in the write BIO. The settings follow Mozilla's
 * "intermediate" profile: TLS 1.2 and 1.3, ECDHE with AEAD ciphers only. */
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "tls.h"

struct crest__tls_ctx {
    SSL_CTX *ssl;
};

struct crest__tls {
    SSL *ssl;
    BIO *rbio, *wbio; /* owned by ssl */
    int failed;
};

/* TLS 1.2 suites; TLS 1.3's defaults are all AEAD and stay as they are. */
static const char tls12_ciphers[] = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
                                    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
                                    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

/* The last OpenSSL error as text, for start-up messages. */
static const char *ssl_reason(char *buf, size_t cap)
{
    unsigned long e = ERR_peek_last_error();
    if (!e)
        return "unknown error";
    ERR_error_string_n(e, buf, cap);
    ERR_clear_error();
    return buf;
}

/* Only HTTP/1.1 is spoken: pick it when offered, else answer no ALPN. */
static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
                       unsigned inlen, void *arg)
{
    (void)ssl;
    (void)arg;
    for (unsigned i = 0; i < inlen;) {
        unsigned n = in[i];
        if (i + 1 + n > inlen)
            break;
        if (n == 8 && !memcmp(in + i + 1, "http/1.1", 8)) {
            *out = in + i + 1;
            *outlen = (unsigned char)n;
            return SSL_TLSEXT_ERR_OK;
        }
        i += 1 + n;
    }
    return SSL_TLSEXT_ERR_NOACK;
}

crest__tls_ctx *crest__tls_ctx_new(const char *cert_file, const char *key_file, crest_error *err)
{
    char why[256];
    ERR_clear_error();
    SSL_CTX *ssl = SSL_CTX_new(TLS_server_method());
    if (!ssl) {
        crest__error_set(err, CREST_ENOMEM, NULL, 0, "TLS: %s", ssl_reason(why, sizeof why));
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ssl, TLS1_2_VERSION);
    SSL_CTX_set_options(ssl, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    /* Idle connections give their 16 KiB record buffers back (as nginx does). */
    SSL_CTX_set_mode(ssl, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_session_id_context(ssl, (const unsigned char *)"crest", 5);
    SSL_CTX_set_alpn_select_cb(ssl, alpn_select, NULL);
    if (!SSL_CTX_set_cipher_list(ssl, tls12_ciphers) || !SSL_CTX_set1_groups_list(ssl, "X25519:P-256:P-384")) {
        crest__error_set(err, CREST_EINVAL, NULL, 0, "TLS settings: %s", ssl_reason(why, sizeof why));
        goto fail;
    }
    if (SSL_CTX_use_certificate_chain_file(ssl, cert_file) != 1) {
        crest__error_set(err, CREST_ECONFIG, cert_file, 0, "tls.cert: cannot use the certificate %s: %s",
                         cert_file, ssl_reason(why, sizeof why));
        goto fail;
    }
    /* OpenSSL 3 already refuses a key that does not match here; older ones in the check. */
    int used = SSL_CTX_use_PrivateKey_file(ssl, key_file, SSL_FILETYPE_PEM) == 1;
    if (!used && ERR_GET_REASON(ERR_peek_last_error()) != X509_R_KEY_VALUES_MISMATCH) {
        crest__error_set(err, CREST_ECONFIG, key_file, 0, "tls.key: cannot use the private key %s: %s",
                         key_file, ssl_reason(why, sizeof why));
        goto fail;
    }
    if (!used || SSL_CTX_check_private_key(ssl) != 1) {
        crest__error_set(err, CREST_ECONFIG, key_file, 0, "tls.key: the key does not match the certificate %s",
                         cert_file);
        ERR_clear_error();
        goto fail;
    }
    crest__tls_ctx *ctx = malloc(sizeof *ctx);
    if (!ctx) {
        crest__error_set(err, CREST_ENOMEM, NULL, 0, "out of memory");
        goto fail;
    }
    ctx->ssl = ssl;
    return ctx;
fail:
    SSL_CTX_free(ssl);
    return NULL;
}

void crest__tls_ctx_free(crest__tls_ctx *ctx)
{
    if (!ctx)
        return;
    SSL_CTX_free(ctx->ssl);
    free(ctx);
}

crest__tls *crest__tls_new(crest__tls_ctx *ctx)
{
    crest__tls *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->ssl = SSL_new(ctx->ssl);
    t->rbio = BIO_new(BIO_s_mem());
    t->wbio = BIO_new(BIO_s_mem());
    if (!t->ssl || !t->rbio || !t->wbio) {
        BIO_free(t->rbio);
        BIO_free(t->wbio);
        SSL_free(t->ssl);
        free(t);
        ERR_clear_error();
        return NULL;
    }
    /* An empty read BIO means "wait for more", not end of stream. */
    BIO_set_mem_eof_return(t->rbio, -1);
    BIO_set_mem_eof_return(t->wbio, -1);
    SSL_set_bio(t->ssl, t->rbio, t->wbio);
    SSL_set_accept_state(t->ssl);
    return t;
}

void crest__tls_free(crest__tls *t)
{
    if (!t)
        return;
    SSL_free(t->ssl); /* frees the BIOs */
    free(t);
}

int crest__tls_input(crest__tls *t, const char *data, size_t len)
{
    while (len) {
        int chunk = len > 1u << 30 ? 1 << 30 : (int)len;
        int n = BIO_write(t->rbio, data, chunk);
        if (n <= 0) {
            ERR_clear_error();
            return CREST_ENOMEM;
        }
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

int crest__tls_handshake(crest__tls *t)
{
    ERR_clear_error();
    int r = SSL_do_handshake(t->ssl);
    if (r == 1)
        return CREST__TLS_DONE;
    int e = SSL_get_error(t->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return CREST__TLS_AGAIN;
    unsigned long le = ERR_peek_error();
    int reason = ERR_GET_REASON(le);
    ERR_clear_error();
    t->failed = 1;
    if (ERR_GET_LIB(le) == ERR_LIB_SSL && (reason == SSL_R_HTTP_REQUEST || reason == SSL_R_HTTPS_PROXY_REQUEST))
        return CREST__TLS_PLAIN_HTTP;
    return CREST__TLS_FAIL;
}

ssize_t crest__tls_read(crest__tls *t, char *buf, size_t cap)
{
    if (t->failed)
        return -1;
    ERR_clear_error();
    int n = SSL_read(t->ssl, buf, cap > 1u << 30 ? 1 << 30 : (int)cap);
    if (n > 0)
        return n;
    int e = SSL_get_error(t->ssl, n);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return 0;
    ERR_clear_error();
    if (e != SSL_ERROR_ZERO_RETURN)
        t->failed = 1;
    return -1;
}

int crest__tls_write(crest__tls *t, const char *data, size_t len)
{
    if (t->failed)
        return -1;
    ERR_clear_error();
    while (len) {
        int chunk = len > 1u << 30 ? 1 << 30 : (int)len;
        int n = SSL_write(t->ssl, data, chunk);
        if (n <= 0) {
            ERR_clear_error();
            t->failed = 1;
            return -1;
        }
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

void crest__tls_close_notify(crest__tls *t)
{
    if (t->failed || !SSL_is_init_finished(t->ssl) || (SSL_get_shutdown(t->ssl) & SSL_SENT_SHUTDOWN))
        return;
    ERR_clear_error();
    SSL_shutdown(t->ssl);
    ERR_clear_error();
}

int crest__tls_output(crest__tls *t, crest__buf *out)
{
    size_t pending;
    while ((pending = BIO_ctrl_pending(t->wbio)) > 0) {
        if (crest__buf_reserve(out, pending))
            return CREST_ENOMEM;
        int n = BIO_read(t->wbio, out->ptr + out->len, pending > 1u << 30 ? 1 << 30 : (int)pending);
        if (n <= 0)
            break;
        out->len += (size_t)n;
    }
    return 0;
}

int crest__tls_has_output(const crest__tls *t)
{
    return BIO_ctrl_pending(t->wbio) > 0;
}
