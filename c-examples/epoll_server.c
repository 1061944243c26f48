/* epoll_server: a single-threaded HTTP/1.1 server on gateway's non-blocking mode (Linux,
 * epoll): the example an event-loop host copies.
 *
 *   epoll_server [-c MAX_CONNECTIONS] [-i IDLE_S] PORT DIR
 *
 * Listens on 127.0.0.1:PORT (0 picks a free port; "listening on PORT" is printed on stdout)
 * and serves:
 *   /                        the demo application: a hello line and the sorted environ;
 *   /file/NAME               the file NAME of DIR (GET or HEAD), handed to the send_file
 *                            hook (sendfile(2)), so it goes out with a Content-Length;
 *   /stream?blocks=N&size=S  a body iterator producing N blocks of S bytes (block i is all
 *                            the letter 'a' + i % 26), pulled only as the client reads;
 *   /echo                    POST: the request body back.
 *
 * How it works. One thread waits in epoll_wait for every socket. Each connection owns a
 * gw_handler in non-blocking mode whose hooks are the socket itself: write and send_file
 * answer EAGAIN when the socket is full, read_stdin when it is empty, and the cycle then
 * returns GW_STATUS_PENDING instead of waiting. The loop arms EPOLLIN or EPOLLOUT as
 * gw_handler_pending says and calls gw_handler_resume when the socket is ready. So a slow
 * client costs its connection's memory (a head buffer, a handler, and what the library
 * queued for it: a body iterator's next block is pulled only once the last one went out)
 * and never the thread.
 *
 * Request heads are gathered in the connection's buffer and parsed once: when the blank
 * line that ends a head is there, the loop runs the handler, whose add_cgi_vars hook parses
 * the head with gw_environ_set_from_request_head into the handler's environ; a head it
 * refuses ends the cycle quietly (the hook returns GW_STATUS_CLIENT_GONE: nothing is sent or
 * logged) and the loop answers it with gw_error_response and closes the connection. A head
 * without its blank line yet is checked on a scratch environ, so one over a size limit is
 * refused before it ends. In non-blocking mode the library reads a request body before the
 * application runs (so the application never waits for it): first the bytes that came with
 * the head, then the socket.
 * After a response, gw_handler_last_keep_alive says whether the connection goes on; the
 * next request may already be in the buffer (pipelining).
 *
 * Limits: MAX_CONNECTIONS (1000; then new clients wait in the listen backlog); a head must
 * arrive whole within IDLE_S (10) seconds of the previous response (else 408, or a silent
 * close when nothing came); a pending cycle that makes no progress for IO_TIMEOUT_S is
 * cancelled. SIGINT or SIGTERM: every connection is closed at once (pending cycles
 * cancelled, so their bodies are closed) and a summary goes to stderr.
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
#include <sys/sendfile.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "gateway.h"

#define SERVER_SOFTWARE "gateway-epoll/" GW_VERSION
#define MAX_HEAD 16384             /* longer heads are refused (431) */
#define BUF_SIZE (MAX_HEAD + 4096) /* a head and what came after it: more than MAX_HEAD, so
                                      a head too long is refused before the buffer fills */
#define MAX_BODY (16 << 20)        /* /echo: a larger body gets 413 */
#define MAX_BLOCK (1 << 20)        /* /stream: largest block */
#define IO_TIMEOUT_S 30
#define LINGER_MS 2000
#define MAX_EVENTS 256
#define HELLO_LEN 14 /* "Hello world!\n\n" */

typedef enum { READING_HEAD, IN_CYCLE, LINGERING } conn_state;

typedef struct conn {
    struct conn *prev, *next; /* every connection: for the timeout sweep and the shutdown */
    int fd;
    conn_state state;
    uint32_t armed;   /* the epoll events registered for fd */
    bool peer_eof;    /* the read hook met the end of the stream inside a request body */
    bool unfinished;  /* add_cgi_vars found the head incomplete after all */
    uint16_t refused; /* add_cgi_vars refused the head: the status to answer */
    int64_t deadline; /* ms, monotonic */
    gw_handler *h;    /* this connection's: a pending cycle belongs to it */
    char peer[INET_ADDRSTRLEN];
    uint16_t peer_port;
    size_t len, pos; /* bytes in buf; the first one not consumed yet */
    char buf[BUF_SIZE];
} conn;

static struct {
    int epfd, listener, sigfd, dirfd;
    uint16_t port;
    long max_conns, idle_s, nconns;
    bool listening;
    conn *all;
    gw_environ *scratch; /* where the loop checks a head that has no blank line yet */
    gw_request_head_options head_options;
    unsigned long accepted, requests, files, iters_opened, iters_closed;
    unsigned long cancelled[3]; /* by what the cycle waited for: indexed by gw_wait */
} srv = { .max_conns = 1000, .idle_s = 10 };

/* epoll_event.data.ptr of the two descriptors that are not connections */
static char LISTENER_TAG, SIGNAL_TAG;

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- the hooks: the socket, as the library sees it -------------------------------------- */

static int sock_write(void *userdata, const void *data, size_t len, size_t *out_written) {
    conn *c = userdata;
    ssize_t n = send(c->fd, data, len, MSG_NOSIGNAL);
    if (n < 0) return errno; /* EAGAIN: the library keeps the rest and the cycle pends */
    *out_written = (size_t)n;
    return 0;
}

/* A file body: the kernel copies it to the socket. The offset is ours, so the file's
 * position does not move (the library asks for that). */
static int sock_send_file(void *userdata, int fd, uint64_t offset, uint64_t length, uint64_t *out_sent) {
    conn *c = userdata;
    off_t off = (off_t)offset;
    size_t want = length > (1u << 30) ? (1u << 30) : (size_t)length;
    ssize_t n = sendfile(c->fd, fd, &off, want);
    if (n < 0) return errno;
    *out_sent = (uint64_t)n;
    return 0;
}

/* The request body: the bytes that came with the head first, then the socket. The library
 * never asks past the body's end, so a pipelined request stays in buf. */
static int sock_read(void *userdata, void *buf, size_t len, size_t *out_read) {
    conn *c = userdata;
    if (c->len > c->pos) {
        size_t take = c->len - c->pos < len ? c->len - c->pos : len;
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

static int log_write(void *userdata, const void *data, size_t len, size_t *out_written) {
    (void)userdata;
    size_t n = fwrite(data, 1, len, stderr);
    if (n == 0 && len > 0) return EIO;
    *out_written = n;
    return 0;
}

static gw_connection_facts facts_of(const conn *c) {
    gw_connection_facts f = GW_CONNECTION_FACTS_INIT;
    f.remote_addr = c->peer;
    f.remote_addr_len = strlen(c->peer);
    f.remote_port = c->peer_port;
    f.server_name = "127.0.0.1";
    f.server_name_len = 9;
    f.server_port = srv.port;
    return f;
}

/* The one parse of the head, into the environ the handler lends. A refused head ends the
 * cycle quietly (the library sends and logs nothing for CLIENT_GONE); the loop answers it. */
static int32_t add_cgi_vars(void *userdata, gw_environ *env) {
    conn *c = userdata;
    gw_connection_facts facts = facts_of(c);
    size_t consumed = 0;
    bool chunked = false;
    uint16_t code = 0;
    gw_status st = gw_environ_set_from_request_head(env, c->buf + c->pos, c->len - c->pos, &facts,
                                                    &srv.head_options, &consumed, &chunked, &code);
    if (st == GW_STATUS_OK) {
        c->pos += consumed; /* the body (or the next request) starts here */
        return GW_STATUS_OK;
    }
    if (st == GW_STATUS_INCOMPLETE) c->unfinished = true;
    else c->refused = st == GW_STATUS_BAD_REQUEST ? code : 500;
    return GW_STATUS_CLIENT_GONE;
}

/* ---- the applications ------------------------------------------------------------------ */

typedef struct entry {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
} entry;

static int compare_entries(const void *a, const void *b) {
    const entry *x = a, *y = b;
    size_t n = x->name_len < y->name_len ? x->name_len : y->name_len;
    int c = memcmp(x->name, y->name, n);
    if (c != 0) return c;
    return (x->name_len > y->name_len) - (x->name_len < y->name_len);
}

/* wsgiref's demo_app: "Hello world!", a blank line, then `key = value` for the sorted environ.
 * (c-examples/demo_server.c's does the same with buffers kept between requests and a
 * cheaper sort.) */
static gw_status demo_app(void *userdata, gw_request *req) {
    (void)userdata;
    gw_environ *env = NULL;
    gw_status st = gw_request_environ(req, &env);
    if (st != GW_STATUS_OK) return st;
    size_t count = 0;
    if ((st = gw_environ_len(env, &count)) != GW_STATUS_OK) return st;
    entry *entries = calloc(count + 1, sizeof *entries);
    if (entries == NULL) return gw_request_fail(req, "out of memory", 13);
    size_t cursor = 0, n = 0, size = HELLO_LEN;
    while (n < count && gw_environ_next(env, &cursor, &entries[n].name, &entries[n].name_len, &entries[n].value,
                                        &entries[n].value_len) == GW_STATUS_OK) {
        size += entries[n].name_len + 3 + entries[n].value_len + 1;
        n++;
    }
    qsort(entries, n, sizeof *entries, compare_entries);
    char *body = malloc(size);
    if (body == NULL) {
        free(entries);
        return gw_request_fail(req, "out of memory", 13);
    }
    memcpy(body, "Hello world!\n\n", HELLO_LEN);
    size_t used = HELLO_LEN;
    for (size_t i = 0; i < n; i++) {
        memcpy(body + used, entries[i].name, entries[i].name_len);
        used += entries[i].name_len;
        memcpy(body + used, " = ", 3);
        used += 3;
        memcpy(body + used, entries[i].value, entries[i].value_len);
        used += entries[i].value_len;
        body[used++] = '\n';
    }
    free(entries);
    static const gw_header headers[] = { { "Content-Type", 12, "text/plain; charset=utf-8", 25 } };
    st = gw_request_start_response(req, "200 OK", 6, headers, 1, 0);
    if (st == GW_STATUS_OK) st = gw_request_set_body_bytes(req, body, used);
    free(body);
    return st;
}

static bool equals(const char *s, size_t len, const char *literal) {
    return len == strlen(literal) && memcmp(s, literal, len) == 0;
}

/* A short text/plain answer; `allow` (or NULL) is the Allow header of a 405. */
static gw_status reply(gw_request *req, const char *status, const char *allow, const char *text) {
    gw_header headers[2] = { { "Content-Type", 12, "text/plain; charset=utf-8", 25 } };
    size_t count = 1;
    if (allow != NULL) headers[count++] = (gw_header){ "Allow", 5, allow, strlen(allow) };
    gw_status st = gw_request_start_response(req, status, strlen(status), headers, count, 0);
    return st != GW_STATUS_OK ? st : gw_request_set_body_bytes(req, text, strlen(text));
}

static const gw_header OCTETS[] = { { "Content-Type", 12, "application/octet-stream", 24 } };

/* /file/NAME: a regular file straight under DIR (no '/', no leading '.'), as a file body:
 * with the send_file hook the library sends its length as Content-Length and hands the
 * descriptor to sendfile; it closes it (close_fd) however the request ends. */
static gw_status file_app(gw_request *req, const char *method, size_t method_len, const char *name, size_t len) {
    if (!equals(method, method_len, "GET") && !equals(method, method_len, "HEAD")) {
        return reply(req, "405 Method Not Allowed", "GET, HEAD", "GET or HEAD\n");
    }
    char path[256];
    if (len == 0 || len >= sizeof path || name[0] == '.' || memchr(name, '/', len) || memchr(name, '\0', len)) {
        return reply(req, "404 Not Found", NULL, "no such file\n");
    }
    memcpy(path, name, len);
    path[len] = '\0';
    int fd = openat(srv.dirfd, path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        if (fd >= 0) close(fd);
        return reply(req, "404 Not Found", NULL, "no such file\n");
    }
    gw_status s = gw_request_start_response(req, "200 OK", 6, OCTETS, 1, 0);
    if (s != GW_STATUS_OK) {
        close(fd);
        return s;
    }
    srv.files++;
    return gw_request_set_body_file(req, fd, 0, true); /* consumes fd, also on failure */
}

typedef struct stream {
    unsigned long left, index;
    size_t size;
    char block[]; /* reused for every block */
} stream;

static int32_t stream_next(void *userdata, gw_request *req, const void **out_data, size_t *out_len, bool *out_end) {
    (void)req;
    stream *s = userdata;
    if (s->left == 0) {
        *out_end = true;
        return GW_STATUS_OK;
    }
    memset(s->block, 'a' + (int)(s->index % 26), s->size);
    s->index++;
    s->left--;
    *out_data = s->block;
    *out_len = s->size;
    *out_end = s->left == 0; /* the last block goes out with the end of the body */
    return GW_STATUS_OK;
}

/* Called exactly once by the library, whether the body was sent, failed or was cancelled. */
static int32_t stream_close(void *userdata) {
    free(userdata);
    srv.iters_closed++;
    return GW_STATUS_OK;
}

/* The value of `key` in a query string such as "blocks=3&size=10", as a number. */
static bool query_number(const char *q, size_t len, const char *key, unsigned long max, unsigned long *out) {
    size_t klen = strlen(key);
    for (size_t i = 0; i < len;) {
        size_t end = i;
        while (end < len && q[end] != '&') end++;
        if (end - i > klen && memcmp(q + i, key, klen) == 0 && q[i + klen] == '=') {
            unsigned long v = 0;
            size_t j = i + klen + 1;
            if (j == end) return false;
            for (; j < end; j++) {
                if (q[j] < '0' || q[j] > '9' || v > (max - (unsigned long)(q[j] - '0')) / 10) return false;
                v = v * 10 + (unsigned long)(q[j] - '0');
            }
            *out = v;
            return true;
        }
        i = end + 1;
    }
    return false;
}

/* /stream?blocks=N&size=S: a body of unknown length (chunked), produced as the client reads:
 * in non-blocking mode the library pulls the next block only when the last one went out. */
static gw_status stream_app(gw_request *req, gw_environ *env) {
    const char *q = NULL;
    size_t qlen = 0;
    unsigned long blocks = 0, size = 0;
    if (gw_environ_get(env, "QUERY_STRING", 12, &q, &qlen) != GW_STATUS_OK ||
        !query_number(q, qlen, "blocks", 100000000ul, &blocks) || !query_number(q, qlen, "size", MAX_BLOCK, &size) ||
        size == 0) {
        return reply(req, "400 Bad Request", NULL, "use /stream?blocks=N&size=S (S from 1 to 1048576)\n");
    }
    gw_status st = gw_request_start_response(req, "200 OK", 6, OCTETS, 1, 0);
    if (st != GW_STATUS_OK) return st;
    stream *s = malloc(sizeof *s + size);
    if (s == NULL) return gw_request_fail(req, "out of memory", 13);
    s->left = blocks;
    s->index = 0;
    s->size = size;
    gw_body_iter iter = GW_BODY_ITER_INIT;
    iter.userdata = s;
    iter.next = stream_next;
    iter.close = stream_close;
    st = gw_request_set_body_iter(req, &iter);
    if (st != GW_STATUS_OK) { /* not taken: still ours */
        free(s);
        return st;
    }
    srv.iters_opened++;
    return GW_STATUS_OK;
}

/* /echo: the whole body (already read ahead by the library, so this never waits) back. */
static gw_status echo_app(gw_request *req, const char *method, size_t method_len) {
    if (!equals(method, method_len, "POST")) return reply(req, "405 Method Not Allowed", "POST", "POST a body\n");
    const char *body = NULL;
    size_t len = 0;
    gw_status st = gw_request_input_read_all(req, &body, &len);
    if (st != GW_STATUS_OK) return st; /* the library answers 413 for TOO_LARGE, else 500 */
    st = gw_request_start_response(req, "200 OK", 6, OCTETS, 1, 0);
    return st != GW_STATUS_OK ? st : gw_request_set_body_bytes(req, body, len);
}

static gw_status route(void *userdata, gw_request *req) {
    gw_environ *env = NULL;
    const char *path = NULL, *method = NULL;
    size_t path_len = 0, method_len = 0;
    gw_status st = gw_request_environ(req, &env);
    if (st == GW_STATUS_OK) st = gw_environ_get(env, "PATH_INFO", 9, &path, &path_len);
    if (st == GW_STATUS_OK) st = gw_environ_get(env, "REQUEST_METHOD", 14, &method, &method_len);
    if (st != GW_STATUS_OK) return st;
    if (equals(path, path_len, "/")) return demo_app(userdata, req);
    if (path_len > 6 && memcmp(path, "/file/", 6) == 0) return file_app(req, method, method_len, path + 6, path_len - 6);
    if (equals(path, path_len, "/stream")) return stream_app(req, env);
    if (equals(path, path_len, "/echo")) return echo_app(req, method, method_len);
    return reply(req, "404 Not Found", NULL, "not found\n");
}

/* ---- connections ------------------------------------------------------------------------ */

static void arm(conn *c, uint32_t events) {
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

static void close_conn(conn *c) {
    gw_wait wait = GW_WAIT_NONE;
    if (gw_handler_pending(c->h, &wait) == GW_STATUS_OK && wait != GW_WAIT_NONE) {
        gw_handler_cancel(c->h); /* closes the body once; nothing more is sent or read */
        srv.cancelled[wait == GW_WAIT_READ ? GW_WAIT_READ : GW_WAIT_WRITE]++;
    }
    gw_handler_free(c->h);
    close(c->fd); /* also leaves the epoll set */
    if (c->prev) c->prev->next = c->next;
    else srv.all = c->next;
    if (c->next) c->next->prev = c->prev;
    free(c);
    srv.nconns--;
    if (srv.nconns < srv.max_conns) set_listening(true);
}

/* Stop sending, and read (and drop) what the client still sends until it closes or
 * LINGER_MS pass: closing at once with unread bytes would reset the connection and could
 * destroy the answer before the client read it. */
static void linger(conn *c) {
    shutdown(c->fd, SHUT_WR);
    c->state = LINGERING;
    c->deadline = now_ms() + LINGER_MS;
    arm(c, EPOLLIN);
}

/* A request that never reaches the application: the library's canned answer, then close. */
static void refuse(conn *c, uint16_t code) {
    char out[GW_ERROR_RESPONSE_MAX_LEN];
    size_t len = 0;
    if (gw_error_response(code, out, sizeof out, &len) == GW_STATUS_OK) {
        ssize_t ignored = send(c->fd, out, len, MSG_NOSIGNAL | MSG_DONTWAIT); /* small: fits */
        (void)ignored;
    }
    linger(c);
}

/* What to do after gw_handler_run or gw_handler_resume returned `st`. Returns true when the
 * connection waits for its next request (its next head may be in buf already); false when
 * the cycle pends (the socket is armed for it) or the connection is lingering or closed. */
static bool after_step(conn *c, gw_status st) {
    if (st == GW_STATUS_PENDING) {
        if (c->peer_eof) { /* the client is gone: no point waiting for the rest of the body */
            close_conn(c);
            return false;
        }
        gw_wait wait = GW_WAIT_NONE;
        gw_handler_pending(c->h, &wait);
        arm(c, wait == GW_WAIT_READ ? EPOLLIN : EPOLLOUT);
        c->deadline = now_ms() + IO_TIMEOUT_S * 1000; /* pushed back at each step */
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
    srv.requests++;
    bool keep = false;
    gw_handler_last_keep_alive(c->h, &keep);
    if (st == GW_STATUS_OK && keep) {
        memmove(c->buf, c->buf + c->pos, c->len - c->pos); /* the next request's bytes */
        c->len -= c->pos;
        c->pos = 0;
        c->state = READING_HEAD;
        c->deadline = now_ms() + srv.idle_s * 1000;
        return true;
    }
    if (st == GW_STATUS_OK || st == GW_STATUS_APP_ERROR) linger(c); /* whole, but no keep-alive */
    else close_conn(c); /* cut short, client gone or I/O error (logged by the library) */
    return false;
}

/* Whether buf holds the whole next head, by its blank line: only a hint for the loop (the
 * parse in add_cgi_vars decides; the library refuses bare-LF line ends anyway). */
static bool head_complete(const conn *c) {
    const char *p = c->buf + c->pos, *end = c->buf + c->len;
    while (p < end && (*p == '\r' || *p == '\n')) p++; /* empty lines before a request */
    while ((p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        if (end - p >= 3 && p[-1] == '\r' && p[1] == '\r' && p[2] == '\n') return true;
        p++;
    }
    return false;
}

/* Runs the requests whose heads are complete in buf, one after the other (pipelining), until
 * one pends, the connection ends, or buf holds no whole head (then it waits for more). */
static void serve_buffered(conn *c) {
    while (c->state == READING_HEAD && c->len > c->pos) {
        if (!head_complete(c)) { /* the parser says whether it is bad or unfinished */
            gw_connection_facts facts = facts_of(c);
            size_t consumed = 0;
            bool chunked = false;
            uint16_t code = 0;
            gw_status st = gw_environ_set_from_request_head(srv.scratch, c->buf + c->pos, c->len - c->pos, &facts,
                                                            &srv.head_options, &consumed, &chunked, &code);
            if (st == GW_STATUS_INCOMPLETE) break;
            if (st != GW_STATUS_OK) {
                refuse(c, st == GW_STATUS_BAD_REQUEST ? code : 500);
                return;
            }
            /* A fresh scratch environ, so it does not keep every field name clients ever sent. */
            gw_environ_free(srv.scratch);
            srv.scratch = NULL;
            if (gw_environ_new(&srv.scratch) != GW_STATUS_OK) abort();
        }
        c->state = IN_CYCLE;
        c->unfinished = false;
        c->refused = 0;
        if (!after_step(c, gw_handler_run(c->h, route, NULL))) return;
    }
    if (c->state == READING_HEAD) arm(c, EPOLLIN);
}

/* Reads what the socket holds into buf. False when the connection is over. */
static bool read_more(conn *c) {
    if (c->pos > 0) { /* make room: the unconsumed bytes go to the front */
        memmove(c->buf, c->buf + c->pos, c->len - c->pos);
        c->len -= c->pos;
        c->pos = 0;
    }
    ssize_t n = recv(c->fd, c->buf + c->len, BUF_SIZE - c->len, 0);
    if (n > 0) c->len += (size_t)n;
    return n > 0 || (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR));
}

static void on_event(conn *c, uint32_t events) {
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

static gw_handler *new_handler(conn *c) {
    gw_handler_hooks hooks = GW_HANDLER_HOOKS_INIT;
    hooks.userdata = c;
    hooks.write = sock_write;
    hooks.read_stdin = sock_read;
    hooks.send_file = sock_send_file;
    hooks.write_stderr = log_write;
    hooks.add_cgi_vars = add_cgi_vars;
    gw_handler *h = NULL;
    if (gw_handler_new(&hooks, &h) != GW_STATUS_OK) return NULL;
    if (gw_handler_set_nonblocking(h, true) != GW_STATUS_OK || gw_handler_set_http_version(h, "1.1", 3) != GW_STATUS_OK ||
        gw_handler_set_server_software(h, SERVER_SOFTWARE, strlen(SERVER_SOFTWARE)) != GW_STATUS_OK ||
        gw_handler_set_multithread(h, false) != GW_STATUS_OK || gw_handler_set_multiprocess(h, false) != GW_STATUS_OK ||
        gw_handler_set_max_request_body(h, MAX_BODY) != GW_STATUS_OK) {
        gw_handler_free(h);
        return NULL;
    }
    return h;
}

static void accept_all(void) {
    while (srv.nconns < srv.max_conns) {
        struct sockaddr_in peer;
        socklen_t peer_len = sizeof peer;
        int fd = accept(srv.listener, (struct sockaddr *)&peer, &peer_len);
        if (fd < 0) {
            if (errno == ECONNABORTED || errno == EINTR) continue;
            return; /* EAGAIN: none left */
        }
        int one = 1;
        conn *c = malloc(sizeof *c);
        if (c == NULL || fcntl(fd, F_SETFL, O_NONBLOCK) != 0 || (c->h = new_handler(c)) == NULL) {
            free(c);
            close(fd);
            continue;
        }
        /* The library hands each body block to write as it comes: no Nagle delay on the last. */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        c->fd = fd;
        c->state = READING_HEAD;
        c->armed = EPOLLIN;
        c->peer_eof = false;
        c->deadline = now_ms() + srv.idle_s * 1000;
        inet_ntop(AF_INET, &peer.sin_addr, c->peer, sizeof c->peer);
        c->peer_port = ntohs(peer.sin_port);
        c->len = c->pos = 0;
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
        srv.nconns++;
        srv.accepted++;
    }
    set_listening(false); /* full: new clients wait in the backlog until one closes */
}

/* Once a second: connections past their deadline. A head begun but not finished gets 408. */
static void sweep(void) {
    int64_t now = now_ms();
    for (conn *c = srv.all, *next; c != NULL; c = next) {
        next = c->next;
        if (c->deadline > now) continue;
        if (c->state == READING_HEAD && c->len > c->pos) refuse(c, 408);
        else close_conn(c);
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

/* The listening socket on 127.0.0.1:port, non-blocking; sets srv.port to the real port. */
static int listen_on(long port) {
    int one = 1, fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(fd, 1024) != 0 ||
        getsockname(fd, (struct sockaddr *)&addr, &len) != 0 || fcntl(fd, F_SETFL, O_NONBLOCK) != 0) {
        if (fd >= 0) close(fd);
        return -1;
    }
    srv.port = ntohs(addr.sin_port);
    return fd;
}

int main(int argc, char **argv) {
    long port = 0;
    bool ok = true;
    for (int opt; (opt = getopt(argc, argv, "c:i:")) != -1;) {
        long *target = opt == 'c' ? &srv.max_conns : opt == 'i' ? &srv.idle_s : NULL;
        ok = ok && target != NULL && parse_long(optarg, 1, 1000000, target);
    }
    if (!ok || argc - optind != 2 || !parse_long(argv[optind], 0, 65535, &port)) {
        fprintf(stderr, "usage: %s [-c MAX_CONNECTIONS] [-i IDLE_S] PORT DIR\n", argv[0]);
        return 2;
    }
    /* A connection is a descriptor: use what the process may have, and stay under it. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        if (rl.rlim_cur != RLIM_INFINITY && (rlim_t)srv.max_conns + 16 > rl.rlim_cur) {
            srv.max_conns = rl.rlim_cur > 32 ? (long)rl.rlim_cur - 16 : 16;
        }
    }
    srv.head_options = (gw_request_head_options)GW_REQUEST_HEAD_OPTIONS_INIT;
    srv.head_options.max_head = MAX_HEAD;

    /* SIGINT and SIGTERM arrive as readable data on a signalfd, in the loop like any event. */
    sigset_t stops;
    sigemptyset(&stops);
    sigaddset(&stops, SIGINT);
    sigaddset(&stops, SIGTERM);
    sigprocmask(SIG_BLOCK, &stops, NULL);
    signal(SIGPIPE, SIG_IGN); /* sendfile to a closed socket: EPIPE, not a signal */

    srv.dirfd = open(argv[optind + 1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    srv.listener = listen_on(port);
    srv.sigfd = signalfd(-1, &stops, SFD_CLOEXEC);
    srv.epfd = epoll_create1(EPOLL_CLOEXEC);
    if (srv.dirfd < 0 || srv.listener < 0 || srv.sigfd < 0 || srv.epfd < 0 || gw_environ_new(&srv.scratch) != GW_STATUS_OK) {
        perror("epoll_server");
        return 1;
    }
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &LISTENER_TAG };
    epoll_ctl(srv.epfd, EPOLL_CTL_ADD, srv.listener, &ev);
    srv.listening = true;
    ev.data.ptr = &SIGNAL_TAG;
    epoll_ctl(srv.epfd, EPOLL_CTL_ADD, srv.sigfd, &ev);
    printf("listening on %u\n", (unsigned)srv.port);
    fflush(stdout);

    struct epoll_event events[MAX_EVENTS];
    int64_t next_sweep = now_ms() + 1000;
    for (bool stop = false; !stop;) {
        int n = epoll_wait(srv.epfd, events, MAX_EVENTS, 1000);
        if (n < 0 && errno != EINTR) {
            perror("epoll_server: epoll_wait");
            break;
        }
        /* Only the connection an event is about is ever closed while handling it, so the
         * other events of the batch stay valid. */
        for (int i = 0; i < n; i++) {
            void *tag = events[i].data.ptr;
            if (tag == &LISTENER_TAG) accept_all();
            else if (tag == &SIGNAL_TAG) stop = true;
            else on_event(tag, events[i].events);
        }
        if (now_ms() >= next_sweep) {
            sweep();
            next_sweep = now_ms() + 1000;
        }
    }
    close(srv.listener);
    srv.listener = -1;
    while (srv.all != NULL) close_conn(srv.all); /* pending cycles are cancelled */
    gw_environ_free(srv.scratch);
    close(srv.epfd);
    close(srv.sigfd);
    close(srv.dirfd);
    fprintf(stderr,
            "epoll_server: stopped: %lu connections, %lu requests, %lu cancelled (%lu reading, %lu writing), "
            "%lu files, iterators opened %lu closed %lu\n",
            srv.accepted, srv.requests, srv.cancelled[GW_WAIT_READ] + srv.cancelled[GW_WAIT_WRITE],
            srv.cancelled[GW_WAIT_READ], srv.cancelled[GW_WAIT_WRITE], srv.files, srv.iters_opened, srv.iters_closed);
    return 0;
}
