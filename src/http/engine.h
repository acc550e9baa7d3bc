/* engine.h — the libuv engine's own structures, shared by its files:
 *
 *   uv_engine.c  workers, listeners, signals and drain; a connection's life
 *                (accept, read, parse, timers, close) and each request
 *                through the app, blocking handlers and their deadline
 *   request.c    the request: its state (pooled per worker, released while
 *                a connection waits), the parser callbacks with every check
 *                and limit of the head, the body's limits and deadlines
 *   output.c     the answer: rendering, logging, the output queue (owned
 *                bytes and shared bytes it borrows, in order), writes, the
 *                bound on what a connection holds, TLS encryption in bounded
 *                steps, lingering close, memory given back after a peak
 *   stream.c     an answer that stays open (an event stream): chunks
 *                written as they come, heartbeats, the bound on what a
 *                slow client leaves unread, its end (client gone, dropped,
 *                drained)
 *   loopback.c   a connection without a socket (unit tests, fuzzing)
 *
 * Internal to src/http: the app sees none of this. */
#ifndef CREST_HTTP_ENGINE_H
#define CREST_HTTP_ENGINE_H

#include <stdatomic.h>

#include <http_parser.h>
#include <uv.h>

#include "../app/app_internal.h"
#include "tls.h"

#define READ_BUF_SIZE 65536
#define LINGER_MS 2000
#define LINGER_MAX_BYTES (4u * 1024 * 1024)
#define MAX_HEADERS 128
/* Shared pieces one output queue holds at most; a full queue counts as
 * over the output limit, so no more responses are produced until it drains. */
#define OUT_REFS 4

typedef struct server server;
typedef struct worker worker;
typedef struct conn conn;
typedef struct reqstate reqstate;

enum conn_state {
    ST_IDLE,      /* between requests (no byte of the next one yet) */
    ST_HEAD,      /* reading a request head */
    ST_BODY,      /* reading a body */
    ST_HANDLING,  /* a blocking handler runs */
    ST_CLOSING,   /* sending the last response, then close */
    ST_LINGER,    /* response sent, write side shut, reading and dropping */
    ST_STREAM     /* an answer that stays open (stream.c): input is read and dropped */
};

/* Bytes waiting to go out, in order: owned bytes (response heads, JSON
 * bodies) with shared pieces spliced in — borrowed, never copied: memory
 * that lives as long as the app (the docs page's files, the OpenAPI
 * document). refs[i] goes out just before b.ptr[refs[i].at]. */
typedef struct outref {
    size_t at;
    const char *ptr;
    size_t len;
} outref;

typedef struct outq {
    crest__buf b;
    outref refs[OUT_REFS];
    unsigned nrefs;
    size_t refs_len; /* bytes of the refs */
    size_t done;     /* bytes of the whole sequence already written (or encrypted) */
} outq;

/* One request: everything a request needs between its first byte and its
 * answer. A connection holds one only while a request is under way; idle,
 * it gives it back to its worker's pool. A blocking handler's thread uses
 * it, so a handler past its deadline keeps it (c is NULL: abandoned) and
 * frees it when the thread is done. */
struct reqstate {
    reqstate *next_free;  /* in the worker's pool */
    conn *c;              /* the connection it serves; NULL once abandoned */
    worker *w;
    /* the head: url and header bytes, each piece NUL-terminated */
    crest__buf head;
    size_t url_len;
    unsigned nheaders;
    size_t hdr_name_off[MAX_HEADERS], hdr_value_off[MAX_HEADERS]; /* offsets into head */
    size_t cur_len;       /* length of the header line being read */
    int hdr_state;        /* 0: in the url, 1: in a header name, 2: in a value */
    bool has_err;         /* a limit hit inside a parser callback: */
    crest__ecode err;     /* its code, and its static detail (NULL: the table's) */
    const char *err_detail;
    bool expect_continue;
    crest__buf body;
    crest__arena arena;
    crest_json json;
    crest__buf res_headers;
    crest_req req;
    crest_res res;
    uv_work_t work;
    /* A blocking handler's run: RUN_QUEUED until a pool thread takes it
     * (RUN_STARTED) or the engine gives up on it first (RUN_ABANDONED: it
     * never runs). One compare-and-swap each side decides, so a handler
     * whose 504 was sent never starts. */
    atomic_int run;
    /* Abandoning a deferred request cancels its statements, and a store may
     * run their completions (failures) inside that call: the answer they
     * finish must not free the state under the store's feet. While
     * cancelling is set, a finished answer only sets finished_in_cancel;
     * crest__request_abandon frees the state once the cancel returned. */
    bool cancelling, finished_in_cancel;
};

enum { RUN_QUEUED, RUN_STARTED, RUN_ABANDONED };

struct conn {
    uv_tcp_t tcp; /* first: the handle's address is the conn's */
    uv_timer_t timer;
    worker *w;
    conn *prev, *next;
    http_parser parser;
    enum conn_state state;
    int pending_handles;  /* handles still to close before freeing */
    uint64_t deadline;    /* loop ms at which the current state times out */
    uint64_t timer_due;   /* when the timer is set to fire (0: not armed) */
    uint64_t body_due;    /* loop ms by which the whole body must have arrived */
    bool reading;
    bool writing;
    bool close_after;     /* close once the output is sent */
    bool tls_ready;       /* HTTPS: handshake done, records carry HTTP */
    bool lb_closed;       /* loopback: the connection would be closed now */
    size_t linger_bytes;
    char peer[48];        /* the client's IP address, for rate limits and logs */
    reqstate *rs;         /* the request under way; NULL while idle */
    crest__buf in;        /* unparsed bytes kept while paused */
    outq out;             /* output not yet handed to the socket (plaintext) */
    outq inflight;        /* output the socket is writing (uv_write) */
    outq wire;            /* HTTPS: ciphertext not yet handed to the socket */
    uv_write_t wreq;
    uv_shutdown_t sreq;
    crest__tls *tls;      /* HTTPS: the session; NULL for plain HTTP */
    crest__buf *capture;  /* loopback: output goes here instead of a socket */
    crest_app *shared_app; /* held while the output borrows its memory (a shared body), so that a
                              reload does not free it under the write */
    crest__stream *stream; /* ST_STREAM: the open stream (its request is c->rs) */
    bool chunked;         /* the stream's body is chunked (HTTP/1.1) */
    bool stream_writing;  /* inside crest__stream_write: a close waits (stream_broken) for the owner's drop */
    bool stream_broken;
};

struct worker {
    crest__worker cw; /* the app's view */
    server *srv;
    uv_thread_t thread;
    uv_loop_t loop;
    uv_tcp_t listener;
    uv_async_t stop_async;
    uv_check_t flush_check;
    uv_timer_t drain_timer;
    uv_timer_t trim_timer;  /* gives freed memory back to the system after a peak, when this
                               worker armed the server's trim */
    conn *conns;
    unsigned nconns;
    reqstate *rs_free;      /* pool of request states */
    unsigned rs_nfree;
    unsigned rs_live;       /* request states in use: on a connection, or left by one and still
                               waiting for their statement or thread (a drain waits for them) */
    bool draining;
    bool drain_forced;      /* the drain's time is up: only the grace for those states is left */
    bool listening;
    int fd;
    time_t date_sec;
    char date[64];
    uint64_t req_counter;
    crest__buf log;
    /* Hot reload: the app a reload switches the worker to (set by the main
     * thread, taken on the worker's loop); requests begun on cw.app (the
     * app the worker serves); the apps switched away from that requests
     * still use, with how many. */
    uv_async_t reload_async;
    _Atomic(crest_app *) next_app;
    unsigned cur_holds;
    struct held_app {
        crest_app *app;
        unsigned holds;
    } *retiring;
    unsigned nretiring, capretiring;
    char readbuf[READ_BUF_SIZE];
    bool readbuf_busy;
};

struct server {
    crest_app *app;  /* the app new requests get (the main thread's view; a worker's is w->cw.app) */
    crest_app *base; /* the app first served, which the caller owns: it outlives every reload */
    crest_app **retired; /* apps reloads replaced, freed once no worker uses them (engine_users) */
    unsigned nretired;
    worker *workers;
    int nworkers;
    atomic_uint nconns;
    /* malloc_trim works on the whole process: one is armed at a time, by
     * the worker whose frees crossed the threshold, on its own timer. */
    atomic_size_t released; /* bytes of large buffers freed since the last trim, by every worker */
    atomic_bool trim_armed;
    uint32_t id_prefix;
    uv_loop_t main_loop;
    uv_signal_t sigterm, sigint, sighup;
    uv_async_t retire_async; /* a worker let go of the last request of a replaced app */
    /* A reload waits for every worker to switch before it says it is done. */
    pthread_mutex_t switch_lock;
    pthread_cond_t switched;
    int switch_pending;
    bool stopping;
};

extern http_parser_settings crest__parser_settings;

static inline const crest_limits *conn_limits(const conn *c) { return &c->w->cw.app->limits; }

/* ---- uv_engine.c ---- */
/* A connection (no handle initialised yet), or NULL when out of memory. */
conn *crest__conn_new(worker *w);
/* Closes the connection's handles (2: socket and timer; 1: the timer only,
 * loopback); the last close frees it. */
void crest__conn_free_handles(conn *c, int n);
void crest__conn_close(conn *c);
/* Moves the connection on until it waits for something (see uv_engine.c). */
void crest__conn_process(conn *c);
void crest__conn_set_deadline(conn *c, unsigned ms);
/* Re-arms the timer for a deadline that may be later than the one set. */
void crest__conn_reset_deadline(conn *c, unsigned ms);
void crest__conn_stop_reading(conn *c);
void crest__conn_start_reading(conn *c);
/* Nothing more will be parsed on this connection. */
bool crest__conn_ending(const conn *c);
/* Gives the app the worker's hooks: resume (a deferred answer is ready)
 * and, when offload, moving work to the thread pool. */
void crest__worker_set_hooks(worker *w, bool offload);
/* The worker's drain and trim timers, on its loop. */
void crest__worker_init_timers(worker *w);
/* A request state takes app (the worker's app now) for its request, and
 * lets it go when done (NULL: nothing); on the worker's loop. The last
 * request of an app a reload replaced lets the main thread free it. */
void crest__worker_hold_app(worker *w, crest_app *app);
void crest__worker_drop_app(worker *w, crest_app *app);

/* ---- request.c ---- */
void crest__parser_settings_init(void);
/* Gives the connection a fresh request state (from the pool) and starts a
 * request: id, peer, start time. 0, or CREST_ENOMEM (then c->rs is NULL). */
int crest__request_begin(conn *c);
/* The request is answered: its state goes back to the pool. */
void crest__request_end(conn *c);
/* The connection gives up its request state to the blocking handler still
 * running on it; the state is freed when the thread is done. */
void crest__request_abandon(conn *c);
/* A body's bytes arrived: its deadline is its idle time again, within the
 * total time (limits.body_total_timeout) that nothing extends. */
void crest__request_body_progress(conn *c);
/* Takes back a request state: cleaned and pooled, or freed. */
void crest__reqstate_release(worker *w, reqstate *rs);
/* Frees the worker's pool. */
void crest__reqstate_pool_free(worker *w);

/* ---- output.c ---- */
void crest__outq_init(outq *q);
/* Frees the queue's memory (counted for the worker's trim). */
void crest__outq_release(outq *q, worker *w);
static inline size_t crest__outq_left(const outq *q) { return q->b.len + q->refs_len - q->done; }
/* Unsent output of the connection, owned or borrowed, in flight or not. */
size_t crest__conn_unsent(const conn *c);
/* Whether the connection holds as much output as it may: no response is
 * produced until it drains (limits.output_buffer, or a full queue). */
bool crest__conn_output_full(const conn *c);
/* Renders the answer of c->rs into the output, logs it and counts it, then
 * lets the request state go; sets the idle or closing deadline. */
void crest__conn_answer(conn *c);
/* Answers an error found by the engine itself (code e of src/core/errors.h;
 * detail static, or NULL for the table's default) and closes after it. */
void crest__conn_engine_error(conn *c, crest__ecode e, const char *detail);
/* Writes what is queued (or as much as the socket takes). */
void crest__conn_flush(conn *c);
/* Frees the output buffers of a connection that has nothing to send. */
void crest__conn_release_output(conn *c);
/* The connection's output buffers, at its end. */
void crest__conn_dispose_output(conn *c);
/* Counts freed bytes (for the whole process); past a threshold, gives free
 * memory back to the system (malloc_trim) from one worker's timer, at most
 * one trim armed at a time. */
void crest__worker_released(worker *w, size_t bytes);
/* A draining worker's loop stops once it has no connection and no request
 * state in use (a request whose client left waits for its statement). */
void crest__worker_drain_check(worker *w);
void crest__worker_flush_log(worker *w);
/* Counts an answer of the connection's request in the metrics and the
 * access log (status, body bytes, time since the request began). */
void crest__conn_account(conn *c, int status, size_t bytes);

/* ---- stream.c ---- */
/* The answer of c->rs is a stream (res->stream, a 200 to a GET), its head
 * in the output: the connection keeps the request and streams. */
void crest__stream_open(conn *c);
/* The heartbeat timer of a streaming connection fired. */
void crest__stream_tick(conn *c);
/* Ends the connection's stream (closed() runs, the request is freed):
 * GONE before a close, DRAINED ends the body cleanly and closes after it. */
void crest__conn_stream_end(conn *c, crest__stream_end why);
/* n bytes came from a streaming client (dropped): false past the bound
 * (then the connection closes). */
bool crest__stream_input(conn *c, size_t n);

#endif
