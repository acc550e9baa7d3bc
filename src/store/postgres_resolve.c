/* postgres_resolve.c — the database's host name looked up without
 * blocking a worker's loop: libpq looks a host name up with a blocking
 * getaddrinfo inside PQconnectStartParams/PQconnectPoll, so the loop
 * resolves it first with uv_getaddrinfo (on libuv's thread pool) and
 * connects with `hostaddr` set to the addresses found, `host` kept (for
 * TLS verification and .pgpass): the host repeated once per address, so
 * that libpq tries each in turn as it would have. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "postgres_internal.h"

#define MAX_ADDRS 8 /* addresses of one name tried in turn */

struct pg_resolve {
    uv_getaddrinfo_t req;
    crest__pg_resolved_cb done;   /* NULL once abandoned */
    void *ud;
    char *host;
};

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    pg_resolve *r = req->data;
    char ips[MAX_ADDRS][INET6_ADDRSTRLEN];
    size_t na = 0;
    for (struct addrinfo *ai = status ? NULL : res; ai && na < MAX_ADDRS; ai = ai->ai_next) {
        char *ip = ips[na];
        if (ai->ai_family == AF_INET)
            uv_ip4_name((const struct sockaddr_in *)ai->ai_addr, ip, INET6_ADDRSTRLEN);
        else if (ai->ai_family == AF_INET6)
            uv_ip6_name((const struct sockaddr_in6 *)ai->ai_addr, ip, INET6_ADDRSTRLEN);
        else
            continue;
        size_t i = 0; /* (an address may come once per protocol: kept once) */
        while (i < na && strcmp(ips[i], ip))
            i++;
        na += i == na;
    }
    uv_freeaddrinfo(res);
    /* "h,h,..." and "a1,a2,...": at most MAX_ADDRS of each */
    size_t hlen = strlen(r->host);
    char *hosts = na ? malloc(na * (hlen + 1)) : NULL;
    char addrs[MAX_ADDRS * INET6_ADDRSTRLEN];
    size_t used = 0;
    for (size_t i = 0; hosts && i < na; i++) {
        memcpy(hosts + i * (hlen + 1), r->host, hlen);
        hosts[i * (hlen + 1) + hlen] = i + 1 < na ? ',' : 0;
        used += (size_t)snprintf(addrs + used, sizeof addrs - used, "%s%s", i ? "," : "", ips[i]);
    }
    if (r->done) {
        char why[320];
        if (!na)
            snprintf(why, sizeof why, "the database's host name \"%.200s\" does not resolve (%s)", r->host,
                     status ? uv_strerror(status) : "no address");
        else
            snprintf(why, sizeof why, "out of memory");
        r->done(r->ud, hosts, hosts ? addrs : NULL, hosts ? NULL : why);
    }
    free(hosts);
    free(r->host);
    free(r);
}

pg_resolve *crest__pg_resolve(void *loop, const char *host, crest__pg_resolved_cb done, void *ud)
{
    pg_resolve *r = calloc(1, sizeof *r);
    if (!r || !(r->host = strdup(host))) {
        free(r);
        return NULL;
    }
    r->done = done;
    r->ud = ud;
    r->req.data = r;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    if (uv_getaddrinfo(loop, &r->req, on_resolved, host, NULL, &hints)) {
        free(r->host);
        free(r);
        return NULL;
    }
    return r;
}

void crest__pg_resolve_abandon(pg_resolve *r)
{
    if (!r)
        return;
    r->done = NULL;
    uv_cancel((uv_req_t *)&r->req); /* (when not started yet; its callback still runs, and frees r) */
}

int crest__pg_params_at(const pg_store *s, const char *hosts, const char *addrs, const char ***keys,
                        const char ***vals)
{
    *keys = malloc((s->nparams + 3) * sizeof **keys);
    *vals = malloc((s->nparams + 3) * sizeof **vals);
    if (!*keys || !*vals) {
        free(*keys);
        free(*vals);
        return -1;
    }
    size_t k = 0;
    for (size_t i = 0; i < s->nparams; i++) {
        if (!strcmp(s->keys[i], "host") || !strcmp(s->keys[i], "hostaddr"))
            continue;
        (*keys)[k] = s->keys[i];
        (*vals)[k++] = s->vals[i];
    }
    (*keys)[k] = "host";
    (*vals)[k++] = hosts;
    (*keys)[k] = "hostaddr";
    (*vals)[k++] = addrs;
    (*keys)[k] = (*vals)[k] = NULL;
    return 0;
}
