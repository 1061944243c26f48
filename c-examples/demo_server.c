/* demo_server: what `python -m wsgiref.simple_server` does, as a C host on gateway, but an
 * HTTP/1.1 server fit to face real clients.
 *
 *   demo_server [-c MAX_CONNECTIONS] [-i IDLE_S] [-t HEAD_S] [-o IO_S] [PORT]
 *
 * Serves the demo application (a hello line and the sorted environ) on 127.0.0.1:PORT (8000
 * by default; 0 picks a free port) and writes an access log line per request to stderr in
 * wsgiref.simple_server's format (Common Log Format, request line escaped).
 *
 * How it is built: the HTTP work is the library's. One thread runs an epoll event loop and
 * every request, on the library's non-blocking mode: each connection owns a gw_handler
 * speaking HTTP/1.1 whose hooks are its socket (write answers EAGAIN when the socket is
 * full, the read hook when it is empty: the cycle then returns GW_STATUS_PENDING and the
 * loop resumes it when epoll says the socket is ready). So a keep-alive request costs a
 * read, a write and its share of an epoll_wait, and an idle or slow client holds no thread,
 * only a slot: the library reads a request body before the application runs and queues
 * what the client does not take at once.
 *
 * Each head is parsed once. The loop only looks for its end (a blank line; the library
 * refuses bare-LF line ends anyway) and then runs the handler, whose add_cgi_vars hook
 * parses the head into the environ the handler lends. When that parse refuses the head,
 * the hook ends the cycle quietly (GW_STATUS_CLIENT_GONE: nothing sent, nothing logged) and
 * the loop answers with gw_error_response and closes. A head without a blank line yet (cut
 * by the network, a slow client, or HTTP/0.9, which has none) is checked on a scratch
 * environ, so a bad or over-long one is refused as soon as it is known to be.
 *
 * There is no pool of worker threads (there was: -w). The application never blocks, and in
 * non-blocking mode no client can make it wait, so handing each request to another thread
 * and back would only add a context switch, futex calls and a wake-up per request, which
 * cost more than the request itself. An application that blocks (a database call) needs a
 * thread per running request: a blocking-mode host with a pool, not this loop.
 *
 * Limits: at most MAX_CONNECTIONS (1000) connections (then new ones wait in the listen
 * backlog); a connection waiting for a request is closed after IDLE_S (10) seconds, a head
 * must be complete HEAD_S (10) seconds after its first byte (else 408 and close); a request
 * whose body or response makes no progress for IO_S (10) seconds is cancelled and closed.
 * Heads use the library's default size limits. Chunked request bodies are decoded by the
 * library. The access log is buffered: written once per turn of the event loop (and when
 * the buffer fills, and at exit), not once per request. SIGINT or SIGTERM: stop accepting,
 * close idle connections, let running requests finish, exit 0.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "gateway.h"

#define SERVER_SOFTWARE "gateway-demo/" GW_VERSION
#define BUF_SIZE (GW_REQUEST_HEAD_DEFAULT_MAX_HEAD + 16384) /* a head, and what follows it */
#define LOGGED_LINE_MAX 1024                               /* request-line bytes logged */
#define LOG_BUF_SIZE 65536                                 /* access log lines between writes */
#define LINGER_MS 2000
#define MAX_EVENTS 256
#define HELLO_LEN 14 /* "Hello world!\n\n" */

typedef enum { READING_HEAD, IN_CYCLE, LINGERING } conn_state;

typedef struct connection {
    struct connection *prev, *next; /* every connection: for the deadline sweep and the stop */
    int fd;
    conn_state state;
    uint32_t armed;   /* the epoll events registered for fd */
    bool started;     /* a byte of the next head arrived: the head deadline runs */
    bool peer_eof;    /* the read hook met the end of the stream inside a request body */
    bool unfinished;  /* add_cgi_vars found the head incomplete after all */
    uint16_t refused; /* add_cgi_vars refused the head: the status to answer */
    int64_t deadline; /* ms, monotonic: idle, head, I/O or lingering deadline */
    gw_handler *h;    /* this connection's: a pending cycle belongs to it */
    char peer[INET_ADDRSTRLEN];
    size_t peer_len;
    uint16_t peer_port;
    size_t head;     /* where the current request's head starts in buf: the access log's line */
    size_t len, pos; /* bytes in buf; the first one not consumed */
    char buf[BUF_SIZE];
} connection;

static struct {
    long max_connections, idle_s, head_s, io_s;
    uint16_t port;
} cfg = { 1000, 10, 10, 10, 8000 };

static struct {
    int epfd, listener, sigfd;
    bool listening, stopping;
    long count;            /* connections open */
    connection *all;
    int64_t now;           /* ms, monotonic: read once per turn of the loop */
    int64_t next_sweep;    /* no deadline is earlier than this */
    gw_environ *scratch;   /* where a head without a blank line yet is checked */
    gw_request_head_options head_options;
} srv = { .listener = -1, .next_sweep = INT64_MAX };

/* epoll_event.data.ptr of the two descriptors that are not connections */
static char LISTENER_TAG, SIGNAL_TAG;

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void set_deadline(connection *c, int64_t when) {
    c->deadline = when;
    if (when < srv.next_sweep) srv.next_sweep = when;
}

/* ---- the log: lines gathered, written once per turn of the loop -------------------------- */

static struct {
    size_t len;
    char buf[LOG_BUF_SIZE];
    time_t second; /* the second `when` shows */
    char when[32];
    size_t when_len;
} logbuf = { .second = -1 };

static void write_all(int fd, const char *data, size_t len) {
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return; /* nowhere to log: drop it rather than stop serving */
        data += n;
        len -= (size_t)n;
    }
}

static void log_flush_now(void) {
    write_all(STDERR_FILENO, logbuf.buf, logbuf.len);
    logbuf.len = 0;
}

static void log_append(const char *data, size_t len) {
    if (logbuf.len + len > sizeof logbuf.buf) log_flush_now();
    if (len > sizeof logbuf.buf) {
        write_all(STDERR_FILENO, data, len);
        return;
    }
    memcpy(logbuf.buf + logbuf.len, data, len);
    logbuf.len += len;
}

static void log_message(const char *format, const char *a, const char *b) {
    char line[1024];
    int n = snprintf(line, sizeof line, format, a, b);
    if (n > 0) log_append(line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

/* Appends the request's first line, from the head at `p` (bytes up to `end`), with every byte
 * outside printable ASCII, '"' and '\\' written as \xHH, so a client can neither forge log
 * lines nor send terminal escapes. Writes at most 4 * LOGGED_LINE_MAX + 3 bytes. */
static char *put_request_line(char *o, const char *p, const char *end) {
    static const char hex[] = "0123456789abcdef";
    while (p < end && (*p == '\r' || *p == '\n')) p++; /* empty lines before a request */
    for (size_t i = 0; p + i < end && p[i] != '\r' && p[i] != '\n'; i++) {
        if (i == LOGGED_LINE_MAX) {
            memcpy(o, "...", 3);
            return o + 3;
        }
        unsigned char u = (unsigned char)p[i];
        if (u < 0x20 || u >= 0x7f || u == '"' || u == '\\') {
            *o++ = '\\';
            *o++ = 'x';
            *o++ = hex[u >> 4];
            *o++ = hex[u & 15];
        } else {
            *o++ = (char)u;
        }
    }
    return o;
}

static char *put_decimal(char *o, unsigned long long v) {
    char digits[20];
    size_t n = 0;
    do digits[n++] = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    while (n > 0) *o++ = digits[--n];
    return o;
}

/* wsgiref: `127.0.0.1 - - [19/Mar/2024 10:00:00] "GET / HTTP/1.1" 200 123`, local time (the
 * time text is made once a second), the request line taken from the head at c->head. */
static void log_access(const connection *c, unsigned code, unsigned long long bytes) {
    time_t now = time(NULL);
    if (now != logbuf.second) {
        struct tm tm;
        localtime_r(&now, &tm);
        logbuf.when_len = strftime(logbuf.when, sizeof logbuf.when, "%d/%b/%Y %H:%M:%S", &tm);
        logbuf.second = now;
    }
    size_t longest = c->peer_len + logbuf.when_len + 4 * LOGGED_LINE_MAX + 64;
    if (logbuf.len + longest > sizeof logbuf.buf) log_flush_now();
    char *start = logbuf.buf + logbuf.len, *o = start;
    memcpy(o, c->peer, c->peer_len);
    o += c->peer_len;
    memcpy(o, " - - [", 6);
    o += 6;
    memcpy(o, logbuf.when, logbuf.when_len);
    o += logbuf.when_len;
    memcpy(o, "] \"", 3);
    o = put_request_line(o + 3, c->buf + c->head, c->buf + c->len);
    if (code == 0) {
        memcpy(o, "\" - -", 5);
        o += 5;
    } else {
        memcpy(o, "\" ", 2);
        o = put_decimal(o + 2, code);
        *o++ = ' ';
        o = put_decimal(o, bytes);
    }
    *o++ = '\n';
    logbuf.len += (size_t)(o - start);
}

/* ---- the hooks: the socket, as the library sees it --------------------------------------- */

static int conn_write(void *userdata, const void *data, size_t len, size_t *out_written) {
    connection *c = userdata;
    ssize_t n = send(c->fd, data, len, MSG_NOSIGNAL);
    if (n < 0) return errno; /* EAGAIN: the library keeps the rest and the cycle pends */
    *out_written = (size_t)n;
    return 0;
}

/* The body: the bytes that came with the head, then the socket. The library never asks past
 * the body's end (CONTENT_LENGTH, or the last chunk), so a pipelined request stays in buf. */
static int conn_read(void *userdata, void *buf, size_t len, size_t *out_read) {
    connection *c = userdata;
    size_t buffered = c->len - c->pos;
    if (buffered > 0) {
        size_t take = buffered < len ? buffered : len;
        memcpy(buf, c->buf + c->pos, take);
        c->pos += take;
        *out_read = take;
        return 0;
    }
    ssize_t n = recv(c->fd, buf, len, 0);
    if (n < 0) return errno;
    if (n == 0) { /* the client left mid-body: pause, and the loop cancels the cycle */
        c->peer_eof = true;
        return EAGAIN;
    }
    *out_read = (size_t)n;
    return 0;
}

/* The library's own log lines (application errors) join the access log's buffer. */
static int log_write(void *userdata, const void *data, size_t len, size_t *out_written) {
    (void)userdata;
    log_append(data, len);
    *out_written = len;
    return 0;
}

static int log_flush(void *userdata) {
    (void)userdata;
    return 0; /* written at the end of the loop's turn */
}

static gw_connection_facts facts_of(const connection *c) {
    gw_connection_facts f = GW_CONNECTION_FACTS_INIT;
    f.remote_addr = c->peer;
    f.remote_addr_len = c->peer_len;
    f.server_name = "127.0.0.1";
    f.server_name_len = 9;
    f.remote_port = c->peer_port;
    f.server_port = cfg.port;
    return f;
}

/* The one parse of the head, into the environ the handler lends. A refused head ends the
 * cycle quietly (the library sends and logs nothing for CLIENT_GONE); the loop answers it. */
static int32_t conn_add_cgi_vars(void *userdata, gw_environ *env) {
    connection *c = userdata;
    gw_connection_facts facts = facts_of(c);
    size_t consumed = 0;
    bool chunked = false;
    uint16_t code = 0;
    gw_status st = gw_environ_set_from_request_head(env, c->buf + c->pos, c->len - c->pos, &facts, &srv.head_options,
                                                    &consumed, &chunked, &code);
    if (st == GW_STATUS_OK) {
        c->pos += consumed; /* the body (or the next request) starts here */
        return GW_STATUS_OK;
    }
    if (st == GW_STATUS_INCOMPLETE) c->unfinished = true;
    else c->refused = st == GW_STATUS_BAD_REQUEST ? code : 500;
    return GW_STATUS_CLIENT_GONE;
}

/* ---- the application ------------------------------------------------------------------------ */

typedef struct entry {
    uint64_t key; /* the name's first 8 bytes, big-endian, zero-padded: most comparisons end here */
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
} entry;

/* Byte order of the names (memcmp, then the shorter first). A name holds no NUL, so equal keys
 * mean equal first 8 bytes and both names at least that long, or the same name. */
static int compare_entries(const entry *x, const entry *y) {
    if (x->key != y->key) return x->key < y->key ? -1 : 1;
    size_t n = x->name_len < y->name_len ? x->name_len : y->name_len;
    int c = n > 8 ? memcmp(x->name + 8, y->name + 8, n - 8) : 0;
    if (c != 0) return c;
    return (x->name_len > y->name_len) - (x->name_len < y->name_len);
}

static entry make_entry(const char *name, size_t name_len, const char *value, size_t value_len) {
    unsigned char b[8] = { 0 };
    memcpy(b, name, name_len < 8 ? name_len : 8);
    uint64_t key = (uint64_t)b[0] << 56 | (uint64_t)b[1] << 48 | (uint64_t)b[2] << 40 | (uint64_t)b[3] << 32 |
                   (uint64_t)b[4] << 24 | (uint64_t)b[5] << 16 | (uint64_t)b[6] << 8 | b[7];
    return (entry){ key, name, name_len, value, value_len };
}

/* Grows *buf to hold `need` bytes; its contents are not kept. */
static bool reserve(void *buf, size_t *cap, size_t need) {
    if (need <= *cap) return true;
    size_t grown = *cap ? *cap : 1024;
    while (grown < need) grown *= 2;
    void *p = malloc(grown);
    if (p == NULL) return false;
    free(*(void **)buf);
    *(void **)buf = p;
    *cap = grown;
    return true;
}

/* The application's buffers, kept at their largest size: one thread runs it, and each
 * request is done with them when the application returns (the body is copied). */
static struct {
    char *body;
    entry *entries;
    entry **order;
    size_t body_cap, entries_cap, order_cap;
} app;

/* The environ's entries into app.entries, in its order. */
static gw_status read_environ(gw_environ *env, size_t *out_count) {
    size_t count = 0, cursor = 0, n = 0;
    gw_status st = gw_environ_len(env, &count);
    if (st != GW_STATUS_OK) return st;
    if (!reserve(&app.entries, &app.entries_cap, (count + 1) * sizeof *app.entries)) return GW_STATUS_TOO_LARGE;
    const char *name, *value;
    size_t name_len, value_len;
    while (n < count && gw_environ_next(env, &cursor, &name, &name_len, &value, &value_len) == GW_STATUS_OK) {
        app.entries[n++] = make_entry(name, name_len, value, value_len);
    }
    *out_count = n;
    return GW_STATUS_OK;
}

/* Sorts app.order by name: an insertion sort, as the environ is a few dozen entries (the
 * head's limits keep it small) and partly in order already; most comparisons are of keys. */
static void sort_entries(size_t n) {
    for (size_t i = 1; i < n; i++) {
        entry *e = app.order[i];
        size_t j = i;
        while (j > 0 && (app.order[j - 1]->key > e->key ||
                         (app.order[j - 1]->key == e->key && compare_entries(app.order[j - 1], e) > 0))) {
            app.order[j] = app.order[j - 1];
            j--;
        }
        app.order[j] = e;
    }
}

/* wsgiref's demo_app: "Hello world!", a blank line, then `key = value` for the sorted environ. */
static gw_status demo_app(void *userdata, gw_request *req) {
    (void)userdata;
    gw_environ *env = NULL;
    size_t n = 0;
    gw_status st = gw_request_environ(req, &env);
    if (st == GW_STATUS_OK) st = read_environ(env, &n);
    if (st == GW_STATUS_TOO_LARGE) return gw_request_fail(req, "out of memory", 13);
    if (st != GW_STATUS_OK) return st;
    if (!reserve(&app.order, &app.order_cap, (n + 1) * sizeof *app.order)) return gw_request_fail(req, "out of memory", 13);
    size_t size = HELLO_LEN;
    for (size_t i = 0; i < n; i++) {
        app.order[i] = &app.entries[i];
        size += app.entries[i].name_len + 3 + app.entries[i].value_len + 1;
    }
    sort_entries(n);
    if (!reserve(&app.body, &app.body_cap, size)) return gw_request_fail(req, "out of memory", 13);
    char *o = app.body;
    memcpy(o, "Hello world!\n\n", HELLO_LEN);
    o += HELLO_LEN;
    for (size_t i = 0; i < n; i++) {
        const entry *e = app.order[i];
        memcpy(o, e->name, e->name_len);
        o += e->name_len;
        memcpy(o, " = ", 3);
        o += 3;
        memcpy(o, e->value, e->value_len);
        o += e->value_len;
        *o++ = '\n';
    }
    static const gw_header headers[] = { { "Content-Type", 12, "text/plain; charset=utf-8", 25 } };
    st = gw_request_start_response(req, "200 OK", 6, headers, 1, 0);
    if (st == GW_STATUS_OK) st = gw_request_set_body_bytes(req, app.body, (size_t)(o - app.body));
    return st;
}

/* ---- connections ---------------------------------------------------------------------------- */

static void arm(connection *c, uint32_t events) {
    if (c->armed == events) return;
    struct epoll_event ev = { .events = events, .data.ptr = c };
    epoll_ctl(srv.epfd, EPOLL_CTL_MOD, c->fd, &ev);
    c->armed = events;
}

static void set_listening(bool on) {
    if (srv.listening == on || srv.listener < 0) return;
    struct epoll_event ev = { .events = on ? EPOLLIN : 0, .data.ptr = &LISTENER_TAG };
    epoll_ctl(srv.epfd, EPOLL_CTL_MOD, srv.listener, &ev);
    srv.listening = on;
}

/* The access log line of a finished (or abandoned) request. */
static void log_request(connection *c) {
    uint16_t code = 0;
    uint64_t bytes = 0;
    gw_handler_last_response(c->h, &code, &bytes);
    log_access(c, code, bytes);
}

static void close_conn(connection *c) {
    gw_wait wait = GW_WAIT_NONE;
    if (gw_handler_pending(c->h, &wait) == GW_STATUS_OK && wait != GW_WAIT_NONE) {
        gw_handler_cancel(c->h); /* closes the body once; nothing more is sent or read */
        log_request(c);
    }
    gw_handler_free(c->h);
    close(c->fd); /* also leaves the epoll set */
    if (c->prev) c->prev->next = c->next;
    else srv.all = c->next;
    if (c->next) c->next->prev = c->prev;
    free(c);
    srv.count--;
    if (!srv.stopping) set_listening(true);
}

/* Stop sending, and read (and drop) what the client still sends until it closes or
 * LINGER_MS pass: closing at once with unread bytes would reset the connection and could
 * destroy the answer before the client read it. */
static void linger(connection *c) {
    shutdown(c->fd, SHUT_WR);
    c->state = LINGERING;
    set_deadline(c, srv.now + LINGER_MS);
    arm(c, EPOLLIN);
}

/* An answer the library wrote for a request that never reaches the application. */
static void refuse(connection *c, uint16_t code) {
    char out[GW_ERROR_RESPONSE_MAX_LEN];
    size_t len = 0;
    if (gw_error_response(code, out, sizeof out, &len) == GW_STATUS_OK) {
        ssize_t ignored = send(c->fd, out, len, MSG_NOSIGNAL | MSG_DONTWAIT); /* small: fits */
        (void)ignored;
        const char *body = strstr(out, "\r\n\r\n");
        c->head = c->pos;
        log_access(c, code, body ? (unsigned long long)(len - (size_t)(body + 4 - out)) : 0);
    }
    linger(c);
}

static void wait_for_request(connection *c) {
    c->state = READING_HEAD;
    c->started = false;
    set_deadline(c, srv.now + cfg.idle_s * 1000);
}

/* What to do after gw_handler_run or gw_handler_resume returned `st`. True when the
 * connection waits for its next request (which may be in buf already); false when the cycle
 * pends (the socket is armed for it), the head needs more bytes, or the connection is
 * lingering or closed. */
static bool after_step(connection *c, gw_status st) {
    if (st == GW_STATUS_PENDING) {
        if (c->peer_eof) { /* the client is gone: no point waiting for the rest of the body */
            close_conn(c);
            return false;
        }
        gw_wait wait = GW_WAIT_NONE;
        gw_handler_pending(c->h, &wait);
        arm(c, wait == GW_WAIT_READ ? EPOLLIN : EPOLLOUT);
        set_deadline(c, srv.now + cfg.io_s * 1000); /* pushed back at each step */
        return false;
    }
    if (c->unfinished) { /* the head was not whole after all: wait for the rest */
        c->state = READING_HEAD;
        arm(c, EPOLLIN);
        return false;
    }
    if (c->refused != 0) {
        refuse(c, c->refused);
        return false;
    }
    if (st != GW_STATUS_OK && st != GW_STATUS_APP_ERROR && st != GW_STATUS_CLIENT_GONE) {
        log_message("demo_server: %s: %s\n", gw_status_str(st), gw_last_error_message());
    }
    log_request(c);
    bool keep = false;
    gw_handler_last_keep_alive(c->h, &keep);
    if (srv.stopping) {
        close_conn(c);
        return false;
    }
    if (!keep) {
        linger(c);
        return false;
    }
    memmove(c->buf, c->buf + c->pos, c->len - c->pos); /* the next request's bytes */
    c->len -= c->pos;
    c->pos = 0;
    wait_for_request(c);
    return true;
}

/* Whether buf holds the whole next head, by its blank line: only a hint for the loop (the
 * parse in add_cgi_vars decides). False for a head still arriving, and for HTTP/0.9's. */
static bool head_complete(const connection *c) {
    const char *p = c->buf + c->pos, *end = c->buf + c->len;
    while (p < end && (*p == '\r' || *p == '\n')) p++; /* empty lines before a request */
    while ((p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        if (end - p >= 3 && p[-1] == '\r' && p[1] == '\r' && p[2] == '\n') return true;
        p++;
    }
    return false;
}

/* Runs the requests whose heads are in buf, one after the other (pipelining), until one
 * pends, the connection ends, or buf holds no whole head (then it waits for more). */
static void serve_buffered(connection *c) {
    while (c->state == READING_HEAD && c->len > c->pos) {
        if (!c->started) {
            c->started = true;
            set_deadline(c, srv.now + cfg.head_s * 1000);
        }
        if (!head_complete(c)) { /* the parser says whether it is bad, HTTP/0.9 or unfinished */
            gw_connection_facts facts = facts_of(c);
            size_t consumed = 0;
            bool chunked = false;
            uint16_t code = 0;
            gw_status st = gw_environ_set_from_request_head(srv.scratch, c->buf + c->pos, c->len - c->pos, &facts,
                                                            &srv.head_options, &consumed, &chunked, &code);
            if (st == GW_STATUS_INCOMPLETE) break; /* max_head < BUF_SIZE: a head too long is 431 */
            if (st != GW_STATUS_OK) {
                refuse(c, st == GW_STATUS_BAD_REQUEST ? code : 500);
                return;
            }
            gw_environ_free(srv.scratch); /* a fresh one, so it never grows */
            srv.scratch = NULL;
            if (gw_environ_new(&srv.scratch) != GW_STATUS_OK) abort();
        }
        c->head = c->pos; /* the head stays in buf until the cycle ends: the log reads it */
        c->state = IN_CYCLE;
        c->peer_eof = c->unfinished = false;
        c->refused = 0;
        if (!after_step(c, gw_handler_run(c->h, demo_app, NULL))) return;
    }
    if (c->state == READING_HEAD) arm(c, EPOLLIN);
}

/* Reads what the socket holds into buf. False when the connection is over. */
static bool read_more(connection *c) {
    if (c->pos > 0) { /* make room: the unconsumed bytes go to the front */
        memmove(c->buf, c->buf + c->pos, c->len - c->pos);
        c->len -= c->pos;
        c->pos = 0;
    }
    if (c->len == BUF_SIZE) return false; /* cannot happen: the parser refuses such a head */
    ssize_t n = recv(c->fd, c->buf + c->len, BUF_SIZE - c->len, 0);
    if (n > 0) c->len += (size_t)n;
    return n > 0 || (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR));
}

static void on_event(connection *c, uint32_t events) {
    switch (c->state) {
    case IN_CYCLE:
        if (events & (EPOLLERR | EPOLLHUP)) { /* reset or gone: cancel the cycle */
            close_conn(c);
        } else if (after_step(c, gw_handler_resume(c->h))) {
            serve_buffered(c); /* pipelined requests */
        }
        break;
    case READING_HEAD:
        if (read_more(c)) serve_buffered(c);
        else close_conn(c);
        break;
    case LINGERING: {
        char sink[4096];
        ssize_t n = recv(c->fd, sink, sizeof sink, 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) close_conn(c);
        break;
    }
    }
}

static gw_handler *new_handler(connection *c) {
    gw_handler_hooks hooks = GW_HANDLER_HOOKS_INIT;
    hooks.userdata = c;
    hooks.write = conn_write;
    hooks.read_stdin = conn_read;
    hooks.write_stderr = log_write;
    hooks.flush_stderr = log_flush;
    hooks.add_cgi_vars = conn_add_cgi_vars;
    gw_handler *h = NULL;
    if (gw_handler_new(&hooks, &h) != GW_STATUS_OK) return NULL;
    if (gw_handler_set_nonblocking(h, true) != GW_STATUS_OK || gw_handler_set_http_version(h, "1.1", 3) != GW_STATUS_OK ||
        gw_handler_set_server_software(h, SERVER_SOFTWARE, strlen(SERVER_SOFTWARE)) != GW_STATUS_OK ||
        gw_handler_set_multithread(h, false) != GW_STATUS_OK || gw_handler_set_multiprocess(h, false) != GW_STATUS_OK) {
        gw_handler_free(h);
        return NULL;
    }
    return h;
}

static void accept_all(void) {
    while (srv.count < cfg.max_connections) {
        struct sockaddr_in peer;
        socklen_t peer_len = sizeof peer;
        int fd = accept(srv.listener, (struct sockaddr *)&peer, &peer_len);
        if (fd < 0) {
            if (errno == ECONNABORTED || errno == EINTR) continue;
            return; /* EAGAIN: none left */
        }
        int one = 1;
        connection *c = malloc(sizeof *c);
        if (c == NULL || fcntl(fd, F_SETFL, O_NONBLOCK) != 0 || (c->h = new_handler(c)) == NULL) {
            free(c);
            close(fd);
            continue;
        }
        /* The library hands each response to write as it is made: no Nagle delay on it. */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        c->fd = fd;
        c->armed = EPOLLIN;
        c->len = c->pos = 0;
        c->peer_port = ntohs(peer.sin_port);
        inet_ntop(AF_INET, &peer.sin_addr, c->peer, sizeof c->peer);
        c->peer_len = strlen(c->peer);
        wait_for_request(c);
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
        if (epoll_ctl(srv.epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
            gw_handler_free(c->h);
            free(c);
            close(fd);
            continue;
        }
        c->prev = NULL;
        c->next = srv.all;
        if (srv.all) srv.all->prev = c;
        srv.all = c;
        srv.count++;
    }
    set_listening(false); /* full: new clients wait in the backlog until one closes */
}

/* Connections past their deadline: an idle one is closed, a head too slow gets 408, a
 * request making no progress is cancelled, lingering ends. Then the next deadline. */
static void sweep(void) {
    srv.next_sweep = INT64_MAX;
    for (connection *c = srv.all, *next; c != NULL; c = next) {
        next = c->next;
        if (c->deadline <= srv.now) {
            if (c->state == READING_HEAD && c->started && !srv.stopping) {
                refuse(c, 408); /* sets the lingering deadline */
            } else {
                close_conn(c);
                continue;
            }
        }
        if (c->deadline < srv.next_sweep) srv.next_sweep = c->deadline;
    }
}

/* SIGINT or SIGTERM: stop accepting; connections not in a request close now. */
static void stop(void) {
    srv.stopping = true;
    close(srv.listener);
    srv.listener = -1;
    for (connection *c = srv.all, *next; c != NULL; c = next) {
        next = c->next;
        if (c->state != IN_CYCLE) close_conn(c);
    }
}

static bool parse_long(const char *s, long min, long max, long *out) {
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max) return false;
    *out = v;
    return true;
}

/* The listening socket on 127.0.0.1:port, non-blocking; sets cfg.port to the real port. */
static int listen_on(long port) {
    int one = 1, fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(fd, 128) != 0 ||
        getsockname(fd, (struct sockaddr *)&addr, &len) != 0 || fcntl(fd, F_SETFL, O_NONBLOCK) != 0) {
        if (fd >= 0) close(fd);
        return -1;
    }
    cfg.port = ntohs(addr.sin_port);
    return fd;
}

int main(int argc, char **argv) {
    long port = 8000;
    bool ok = true;
    for (int opt; (opt = getopt(argc, argv, "c:i:t:o:")) != -1;) {
        long *target = opt == 'c' ? &cfg.max_connections : opt == 'i' ? &cfg.idle_s : opt == 't' ? &cfg.head_s
                     : opt == 'o' ? &cfg.io_s : NULL;
        ok = ok && target != NULL && parse_long(optarg, 1, 100000, target);
    }
    if (!ok || argc - optind > 1 || (optind < argc && !parse_long(argv[optind], 0, 65535, &port))) {
        fprintf(stderr, "usage: %s [-c MAX_CONNECTIONS] [-i IDLE_S] [-t HEAD_S] [-o IO_S] [PORT]\n", argv[0]);
        return 2;
    }
    struct rlimit rl; /* a connection is a descriptor: stay under the process's limit */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && (rlim_t)cfg.max_connections + 16 > rl.rlim_cur) {
        cfg.max_connections = rl.rlim_cur > 32 ? (long)rl.rlim_cur - 16 : 16;
    }
    srv.head_options = (gw_request_head_options)GW_REQUEST_HEAD_OPTIONS_INIT;
    srv.head_options.allow_http09 = true;

    /* SIGINT and SIGTERM arrive as readable data on a signalfd, in the loop like any event. */
    sigset_t stops;
    sigemptyset(&stops);
    sigaddset(&stops, SIGINT);
    sigaddset(&stops, SIGTERM);
    sigprocmask(SIG_BLOCK, &stops, NULL);
    signal(SIGPIPE, SIG_IGN);

    srv.listener = listen_on(port);
    srv.sigfd = signalfd(-1, &stops, SFD_CLOEXEC);
    srv.epfd = epoll_create1(EPOLL_CLOEXEC);
    if (srv.listener < 0 || srv.sigfd < 0 || srv.epfd < 0 || gw_environ_new(&srv.scratch) != GW_STATUS_OK) {
        perror("demo_server");
        return 1;
    }
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &LISTENER_TAG };
    epoll_ctl(srv.epfd, EPOLL_CTL_ADD, srv.listener, &ev);
    srv.listening = true;
    ev.data.ptr = &SIGNAL_TAG;
    epoll_ctl(srv.epfd, EPOLL_CTL_ADD, srv.sigfd, &ev);
    printf("Serving HTTP on 127.0.0.1 port %u ...\n", (unsigned)cfg.port);
    fflush(stdout);

    struct epoll_event events[MAX_EVENTS];
    srv.now = now_ms();
    while (!srv.stopping || srv.count > 0) {
        int64_t until = srv.next_sweep - srv.now;
        int timeout = srv.next_sweep == INT64_MAX ? -1 : until <= 0 ? 0 : until > 60000 ? 60000 : (int)until;
        int n = epoll_wait(srv.epfd, events, MAX_EVENTS, timeout);
        if (n < 0 && errno != EINTR) {
            perror("demo_server: epoll_wait");
            break;
        }
        srv.now = now_ms();
        /* Only the connection an event is about is ever closed while handling it (stop()
         * closes others, and ends the batch), so the other events of the batch stay valid. */
        for (int i = 0; i < n; i++) {
            void *tag = events[i].data.ptr;
            if (tag == &LISTENER_TAG) {
                accept_all();
            } else if (tag == &SIGNAL_TAG) {
                if (!srv.stopping) stop();
                break;
            } else {
                on_event(tag, events[i].events);
            }
        }
        if (srv.next_sweep <= srv.now) sweep();
        log_flush_now(); /* the access log lines of this turn, in one write */
    }
    for (connection *c = srv.all, *next; c != NULL; c = next) { /* after an epoll error */
        next = c->next;
        close_conn(c);
    }
    gw_environ_free(srv.scratch);
    free(app.body);
    free(app.entries);
    free(app.order);
    close(srv.epfd);
    close(srv.sigfd);
    log_append("demo_server: stopped by a signal\n", 33);
    log_flush_now();
    return 0;
}
