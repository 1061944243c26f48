/* keepalive_host: a small blocking HTTP/1.1 test server on gateway, for tests/h11_keepalive.py.
 *
 *   keepalive_host PORT [DRAIN_LIMIT [ALARM_SECONDS]]
 *
 * Listens on 127.0.0.1:PORT (0 picks a free port; the port is printed on stdout as the first
 * line), serves connections one at a time and, on each, as many requests as the library
 * allows: after every gw_handler_run it asks gw_handler_last_keep_alive and either reads the
 * next request from the same connection (keeping bytes already received past the request,
 * so pipelined requests work) or closes it. One gw_handler serves every connection
 * (gw_handler_set_userdata per connection), with http_version "1.1" and a drain limit of
 * DRAIN_LIMIT bytes (1024 by default).
 *
 * For every request it prints one line to stderr, which the test script reads:
 *
 *   keepalive_host: request conn=C seq=N method=M path=P proto=V status=S run=R keep=K
 *                   content_length=L body_read=B body_sent=O iter_closes=I
 *
 * (one line; S is gw_handler_last_response's code, R the gw_status gw_handler_run returned,
 * or -1 for a request the host refused itself, K the keep-alive verdict 0/1, B the body bytes
 * the read hook handed out), and one line per closed connection:
 *
 *   keepalive_host: close conn=C requests=N reason=WHY leftover=BYTES
 *
 * The library's own log lines (`gateway: ...`) go to stderr too. The applications, routed by
 * PATH_INFO: /hello, /chunked, /iter, /fail, /echo, /peek (reads 10 bytes of the body),
 * /ignore, /nocontent, /head, /quit (the
 * server answers, closes the connection and exits 0). SIGTERM or SIGINT end the server
 * cleanly (exit 0); after ALARM_SECONDS (60 by default) it exits with status 3 by itself.
 *
 * The request parser is deliberately minimal (request line, header fields up to the empty
 * line, 16 KiB at most, Content-Length bodies only): this is a test host.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "gateway.h"

#define HEAD_MAX 16384
#define BUF_SIZE (HEAD_MAX + 65536)
#define MAX_HEADERS 64
#define IDLE_SECONDS 10

static volatile sig_atomic_t stopping = 0;

typedef struct field {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
} field;

/* One connection: the bytes received and not yet consumed, and the request being served. */
typedef struct connection {
    int fd;
    unsigned id;
    unsigned server_port;
    char peer[INET_ADDRSTRLEN];
    char buf[BUF_SIZE + 1];
    size_t len;           /* bytes in buf */
    size_t pos;           /* the first byte not consumed (head, or body handed to the library) */
    /* the request (pointers into buf, NUL-terminated in place) */
    const char *method;
    const char *path;
    const char *query;
    const char *protocol;
    field fields[MAX_HEADERS];
    size_t field_count;
    const char *content_length;
    unsigned long long body_read; /* body bytes the read hook handed out for this request */
    unsigned iter_closes;
    unsigned iter_index;
    bool quit;
} connection;

/* ==== the hooks ============================================================================= */

static int hook_write(void *userdata, const void *data, size_t len, size_t *out_written) {
    connection *c = userdata;
    ssize_t n = send(c->fd, data, len, MSG_NOSIGNAL);
    if (n < 0) return errno;
    *out_written = (size_t)n;
    return 0;
}

static int hook_flush(void *userdata) {
    (void)userdata; /* unbuffered socket writes, TCP_NODELAY */
    return 0;
}

/* The body: first the bytes that came in with the head (a pipelining client may have sent
 * more), then the socket. The library asks for no more than CONTENT_LENGTH in total, so the
 * next request's bytes are never taken. */
static int hook_read(void *userdata, void *buf, size_t len, size_t *out_read) {
    connection *c = userdata;
    size_t buffered = c->len - c->pos;
    if (buffered > 0) {
        size_t take = buffered < len ? buffered : len;
        memcpy(buf, c->buf + c->pos, take);
        c->pos += take;
        c->body_read += take;
        *out_read = take;
        return 0;
    }
    if (stopping) return ECONNABORTED;
    ssize_t n = recv(c->fd, buf, len, 0);
    if (n < 0) return errno;
    c->body_read += (unsigned long long)n;
    *out_read = (size_t)n;
    return 0;
}

static int hook_write_stderr(void *userdata, const void *data, size_t len, size_t *out_written) {
    (void)userdata;
    ssize_t n = write(STDERR_FILENO, data, len);
    if (n < 0) return errno;
    *out_written = (size_t)n;
    return 0;
}

static int hook_flush_stderr(void *userdata) {
    (void)userdata;
    return 0;
}

/* ==== every call into the library ============================================================
 * The rest of the file uses only these wrappers, so a rename in the header is one edit here. */

typedef gw_request request;
typedef gw_status status;
#define ST_OK GW_STATUS_OK

static status env_set(gw_environ *env, const char *name, size_t name_len, const char *value, size_t value_len) {
    return gw_environ_set(env, name, name_len, value, value_len);
}

static bool env_get(gw_environ *env, const char *name, const char **value, size_t *value_len) {
    return gw_environ_get(env, name, strlen(name), value, value_len) == GW_STATUS_OK;
}

static bool req_env_get(request *req, const char *name, const char **value, size_t *value_len) {
    gw_environ *env = NULL;
    return gw_request_environ(req, &env) == GW_STATUS_OK && env_get(env, name, value, value_len);
}

static status req_start(request *req, const char *status_line, const char *content_type) {
    gw_header h = { "Content-Type", 12, content_type, strlen(content_type) };
    return gw_request_start_response(req, status_line, strlen(status_line), &h, content_type[0] ? 1 : 0, 0);
}

static status req_write(request *req, const char *data, size_t len) {
    return gw_request_write(req, data, len);
}

static status req_body(request *req, const char *data, size_t len) {
    return gw_request_set_body_bytes(req, data, len);
}

static status req_read_all(request *req, const char **data, size_t *len) {
    return gw_request_input_read_all(req, data, len);
}

static status req_read(request *req, char *buf, size_t cap, size_t *len) {
    return gw_request_input_read(req, buf, cap, len);
}

static status req_fail(request *req, const char *why) {
    return gw_request_fail(req, why, strlen(why));
}

static int32_t iter_next(void *userdata, gw_request *req, const void **out_data, size_t *out_len, bool *out_end);
static bool iter_count(void *userdata, size_t *out_count);
static int32_t iter_close(void *userdata);

static status req_body_iter(request *req, connection *c) {
    gw_body_iter it = { sizeof(gw_body_iter), c, iter_next, iter_count, iter_close };
    return gw_request_set_body_iter(req, &it);
}

static int32_t host_add_cgi_vars(void *userdata, gw_environ *env);
static int32_t route(void *userdata, gw_request *req);

static gw_handler *handler_create(unsigned long long drain_limit) {
    gw_handler_hooks hooks;
#ifdef GW_HANDLER_HOOKS_INIT
    gw_handler_hooks init = GW_HANDLER_HOOKS_INIT;
    hooks = init;
#else
    memset(&hooks, 0, sizeof hooks);
#endif
    hooks.userdata = NULL;
    hooks.write = hook_write;
    hooks.flush = hook_flush;
    hooks.read_stdin = hook_read;
    hooks.write_stderr = hook_write_stderr;
    hooks.flush_stderr = hook_flush_stderr;
    hooks.add_cgi_vars = host_add_cgi_vars;
    gw_handler *h = NULL;
    if (gw_handler_new(&hooks, &h) != GW_STATUS_OK || gw_handler_set_http_version(h, "1.1", 3) != GW_STATUS_OK ||
        gw_handler_set_drain_limit(h, drain_limit) != GW_STATUS_OK ||
        gw_handler_set_multithread(h, false) != GW_STATUS_OK ||
        gw_handler_set_server_software(h, "keepalive_host", 14) != GW_STATUS_OK) {
        fprintf(stderr, "keepalive_host: handler setup failed: %s\n", gw_last_error_message());
        gw_handler_free(h);
        return NULL;
    }
    return h;
}

/* One request through the library: the run's status, the code sent and the verdict. */
static int handler_serve(gw_handler *h, connection *c, unsigned *code, unsigned long long *body_sent, bool *keep) {
    uint16_t sent_code = 0;
    uint64_t sent_bytes = 0;
    bool verdict = false;
    if (gw_handler_set_userdata(h, c) != GW_STATUS_OK) return -2;
    gw_status st = gw_handler_run(h, route, c);
    if (gw_handler_last_response(h, &sent_code, &sent_bytes) != GW_STATUS_OK ||
        gw_handler_last_keep_alive(h, &verdict) != GW_STATUS_OK) {
        return -2;
    }
    if (st != GW_STATUS_OK && st != GW_STATUS_APP_ERROR && st != GW_STATUS_CLIENT_GONE) {
        fprintf(stderr, "keepalive_host: run: %s: %s\n", gw_status_str(st), gw_last_error_message());
    }
    *code = sent_code;
    *body_sent = sent_bytes;
    *keep = verdict;
    return (int)st;
}

static void handler_destroy(gw_handler *h) {
    gw_handler_free(h);
}

/* ==== the CGI variables ===================================================================== */

static status set_str(gw_environ *env, const char *name, const char *value) {
    return env_set(env, name, strlen(name), value, strlen(value));
}

/* HTTP_<NAME> with '-' as '_', upper-cased; a name holding anything but letters, digits and
 * '-' is dropped (so `X_Y` cannot pose as `X-Y`); a repeated field is joined with ", ". */
static status add_field(gw_environ *env, const field *f) {
    char key[128];
    if (f->name_len + 5 >= sizeof key) return ST_OK;
    memcpy(key, "HTTP_", 5);
    for (size_t i = 0; i < f->name_len; i++) {
        char ch = f->name[i];
        if (ch == '-') {
            ch = '_';
        } else if (ch >= 'a' && ch <= 'z') {
            ch = (char)(ch - 'a' + 'A');
        } else if (!((ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9'))) {
            return ST_OK;
        }
        key[5 + i] = ch;
    }
    key[5 + f->name_len] = '\0';
    const char *old = NULL;
    size_t old_len = 0;
    if (env_get(env, key, &old, &old_len)) {
        char joined[HEAD_MAX];
        if (old_len + 2 + f->value_len > sizeof joined) return ST_OK;
        memcpy(joined, old, old_len);
        memcpy(joined + old_len, ", ", 2);
        memcpy(joined + old_len + 2, f->value, f->value_len);
        return env_set(env, key, 5 + f->name_len, joined, old_len + 2 + f->value_len);
    }
    return env_set(env, key, 5 + f->name_len, f->value, f->value_len);
}

static int32_t host_add_cgi_vars(void *userdata, gw_environ *env) {
    connection *c = userdata;
    char port[16];
    snprintf(port, sizeof port, "%u", c->server_port);
    status st = set_str(env, "GATEWAY_INTERFACE", "CGI/1.1");
    if (st == ST_OK) st = set_str(env, "SERVER_NAME", "127.0.0.1");
    if (st == ST_OK) st = set_str(env, "SERVER_PORT", port);
    if (st == ST_OK) st = set_str(env, "SERVER_PROTOCOL", c->protocol);
    if (st == ST_OK) st = set_str(env, "REQUEST_METHOD", c->method);
    if (st == ST_OK) st = set_str(env, "SCRIPT_NAME", "");
    if (st == ST_OK) st = set_str(env, "PATH_INFO", c->path);
    if (st == ST_OK) st = set_str(env, "QUERY_STRING", c->query);
    if (st == ST_OK) st = set_str(env, "REMOTE_ADDR", c->peer);
    for (size_t i = 0; i < c->field_count && st == ST_OK; i++) {
        const field *f = &c->fields[i];
        if (f->name_len == 12 && strncasecmp(f->name, "Content-Type", 12) == 0) {
            st = env_set(env, "CONTENT_TYPE", 12, f->value, f->value_len);
        } else if (f->name_len == 14 && strncasecmp(f->name, "Content-Length", 14) == 0) {
            st = env_set(env, "CONTENT_LENGTH", 14, f->value, f->value_len);
        } else {
            st = add_field(env, f);
        }
    }
    return st;
}

/* ==== the applications ======================================================================= */

static const char *const iter_chunks[] = { "one\n", "two\n", "three\n" };

static int32_t iter_next(void *userdata, gw_request *req, const void **out_data, size_t *out_len, bool *out_end) {
    connection *c = userdata;
    (void)req;
    if (c->iter_index >= sizeof iter_chunks / sizeof iter_chunks[0]) {
        *out_end = true;
        return ST_OK;
    }
    const char *chunk = iter_chunks[c->iter_index++];
    *out_data = chunk;
    *out_len = strlen(chunk);
    return ST_OK;
}

static bool iter_count(void *userdata, size_t *out_count) {
    (void)userdata;
    (void)out_count;
    return false; /* unknown: the library must chunk on HTTP/1.1 */
}

static int32_t iter_close(void *userdata) {
    connection *c = userdata;
    c->iter_closes++;
    return ST_OK;
}

static bool path_is(const char *path, const char *want) {
    return strcmp(path, want) == 0;
}

static int32_t route(void *userdata, gw_request *req) {
    connection *c = userdata;
    const char *path = "";
    size_t path_len = 0;
    if (!req_env_get(req, "PATH_INFO", &path, &path_len)) return req_fail(req, "no PATH_INFO");
    status st;
    if (path_is(path, "/hello")) {
        static const char body[] = "Hello, keep-alive!\n";
        if ((st = req_start(req, "200 OK", "text/plain")) != ST_OK) return st;
        return req_body(req, body, sizeof body - 1);
    }
    if (path_is(path, "/chunked")) {
        if ((st = req_start(req, "200 OK", "text/plain")) != ST_OK) return st;
        if ((st = req_write(req, "first chunk\n", 12)) != ST_OK) return st;
        return req_write(req, "second chunk\n", 13);
    }
    if (path_is(path, "/iter")) {
        if ((st = req_start(req, "200 OK", "text/plain")) != ST_OK) return st;
        return req_body_iter(req, c);
    }
    if (path_is(path, "/fail")) {
        return req_fail(req, "the /fail application fails on purpose");
    }
    if (path_is(path, "/echo")) {
        const char *data = NULL;
        size_t len = 0;
        if ((st = req_read_all(req, &data, &len)) != ST_OK) return st;
        if ((st = req_start(req, "200 OK", "application/octet-stream")) != ST_OK) return st;
        return req_body(req, data, len);
    }
    if (path_is(path, "/peek")) { /* reads 10 bytes of the body, answers them, leaves the rest */
        char peek[10];
        size_t len = 0;
        if ((st = req_read(req, peek, sizeof peek, &len)) != ST_OK) return st;
        if ((st = req_start(req, "200 OK", "application/octet-stream")) != ST_OK) return st;
        return req_body(req, peek, len);
    }
    if (path_is(path, "/ignore")) {
        if ((st = req_start(req, "200 OK", "text/plain")) != ST_OK) return st;
        return req_body(req, "ignored\n", 8);
    }
    if (path_is(path, "/nocontent")) {
        return req_start(req, "204 No Content", "");
    }
    if (path_is(path, "/head")) {
        if ((st = req_start(req, "200 OK", "text/plain")) != ST_OK) return st;
        return req_body(req, "head body\n", 10);
    }
    if (path_is(path, "/quit")) {
        c->quit = true;
        if ((st = req_start(req, "200 OK", "text/plain")) != ST_OK) return st;
        return req_body(req, "bye\n", 4);
    }
    if ((st = req_start(req, "404 Not Found", "text/plain")) != ST_OK) return st;
    return req_body(req, "not found\n", 10);
}

/* ==== HTTP ==================================================================================== */

static void on_stop(int sig) {
    (void)sig;
    stopping = 1;
}

static void on_alarm(int sig) {
    static const char msg[] = "keepalive_host: alarm: the overall time limit ran out; exiting\n";
    (void)sig;
    ssize_t ignored = write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)ignored;
    _exit(3);
}

static bool is_token_char(char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

/* Where "\r\n\r\n" starts in buf[0..len), or -1. */
static long find_head_end(const char *buf, size_t len) {
    for (size_t i = 0; i + 4 <= len; i++) {
        if (buf[i] == '\r' && buf[i + 1] == '\n' && buf[i + 2] == '\r' && buf[i + 3] == '\n') return (long)i;
    }
    return -1;
}

enum { HEAD_EOF = -1, HEAD_BROKEN = -2 };

/* Waits until fd is readable, in short slices so a stop signal is seen promptly even when it
 * lands just before the wait. False on a stop, an idle timeout or an error. */
static bool wait_readable(int fd, int seconds) {
    for (int slice = 0; slice < seconds * 10; slice++) {
        if (stopping) return false;
        struct pollfd p = { fd, POLLIN, 0 };
        int n = poll(&p, 1, 100);
        if (n > 0) return true;
        if (n < 0 && errno != EINTR) return false;
    }
    return false;
}

/* Reads a request head into c->buf (after the leftover of the previous request) and parses it
 * in place. Returns 0 (c->pos is then the body's first byte), HEAD_EOF (the client closed
 * between requests), HEAD_BROKEN (timeout, error, or a close in the middle of a head), or an
 * HTTP status for a request this host refuses. */
static int read_head(connection *c) {
    long end = find_head_end(c->buf, c->len);
    while (end < 0) {
        if (c->len >= HEAD_MAX) return 431;
        if (!wait_readable(c->fd, IDLE_SECONDS)) return HEAD_BROKEN;
        ssize_t n = recv(c->fd, c->buf + c->len, BUF_SIZE - c->len, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n == 0 && c->len == 0) return HEAD_EOF;
        if (n <= 0) return HEAD_BROKEN;
        size_t from = c->len >= 3 ? c->len - 3 : 0;
        c->len += (size_t)n;
        long found = find_head_end(c->buf + from, c->len - from);
        if (found >= 0) end = (long)from + found;
    }
    if ((size_t)end > HEAD_MAX) return 431;
    char *head = c->buf;
    head[end] = '\0';
    c->pos = (size_t)end + 4;
    if (memchr(head, '\0', (size_t)end) != NULL) return 400;

    /* METHOD SP TARGET SP HTTP/1.x */
    char *line_end = strstr(head, "\r\n");
    char *fields = line_end ? line_end + 2 : head + end;
    if (line_end) *line_end = '\0';
    char *sp1 = strchr(head, ' ');
    char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
    if (sp1 == NULL || sp2 == NULL || sp1 == head) return 400;
    *sp1 = '\0';
    *sp2 = '\0';
    c->method = head;
    for (const char *m = head; *m; m++) {
        if (!is_token_char(*m)) return 400;
    }
    char *target = sp1 + 1;
    if (target[0] != '/') return 400;
    for (const char *t = target; *t; t++) {
        if ((unsigned char)*t <= ' ' || *t == 0x7f) return 400;
    }
    char *q = strchr(target, '?');
    if (q) *q = '\0';
    c->path = target;
    c->query = q ? q + 1 : "";
    c->protocol = sp2 + 1;
    if (strcmp(c->protocol, "HTTP/1.1") != 0 && strcmp(c->protocol, "HTTP/1.0") != 0) return 505;

    /* name ":" OWS value OWS, no folding */
    char *line = fields;
    char *stop = head + end;
    while (line < stop) {
        char *next = strstr(line, "\r\n");
        if (next == NULL) next = stop;
        *next = '\0';
        if (c->field_count == MAX_HEADERS) return 431;
        char *colon = strchr(line, ':');
        if (colon == NULL || colon == line || strchr(line, '\r') || strchr(line, '\n')) return 400;
        for (char *ch = line; ch < colon; ch++) {
            if (!is_token_char(*ch)) return 400;
        }
        char *value = colon + 1;
        while (*value == ' ' || *value == '\t') value++;
        char *value_end = next;
        while (value_end > value && (value_end[-1] == ' ' || value_end[-1] == '\t')) value_end--;
        *value_end = '\0';
        field *f = &c->fields[c->field_count++];
        f->name = line;
        f->name_len = (size_t)(colon - line);
        f->value = value;
        f->value_len = (size_t)(value_end - value);
        if (f->name_len == 14 && strncasecmp(f->name, "Content-Length", 14) == 0) {
            if (f->value_len == 0 || strspn(f->value, "0123456789") != f->value_len || f->value_len > 15) return 400;
            if (c->content_length && strcmp(c->content_length, f->value) != 0) return 400;
            c->content_length = f->value;
        }
        /* This host does not decode request framings other than Content-Length. */
        if (f->name_len == 17 && strncasecmp(f->name, "Transfer-Encoding", 17) == 0) return 411;
        line = next + 2;
    }
    return 0;
}

/* A response this host makes itself, for a request it will not pass to the library. */
static void send_refusal(connection *c, int code) {
    char out[256];
    int n = snprintf(out, sizeof out,
                     "HTTP/1.1 %d Refused by keepalive_host\r\nContent-Type: text/plain\r\n"
                     "Content-Length: 8\r\nConnection: close\r\n\r\nrefused\n",
                     code);
    const char *p = out;
    size_t left = (size_t)n;
    while (left > 0) {
        ssize_t w = send(c->fd, p, left, MSG_NOSIGNAL);
        if (w <= 0) return;
        p += w;
        left -= (size_t)w;
    }
}

/* Stops sending, then reads what the client still sends for a short while before closing, so
 * that unread request bytes do not turn the close into a reset that could destroy the
 * response in the client's receive buffer. */
static void lingering_close(int fd) {
    if (stopping) {
        close(fd);
        return;
    }
    shutdown(fd, SHUT_WR);
    struct timeval tv = { 2, 0 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char sink[4096];
    for (int i = 0; i < 256; i++) {
        ssize_t n = recv(fd, sink, sizeof sink, 0);
        if (n < 0 && errno == EINTR && !stopping) continue;
        if (n <= 0) break;
    }
    close(fd);
}

static void serve_connection(gw_handler *h, connection *c) {
    unsigned requests = 0;
    const char *reason = "eof";
    c->len = 0;
    c->pos = 0;
    for (;;) {
        /* Keep what the client sent past the last request: the next request starts there. */
        memmove(c->buf, c->buf + c->pos, c->len - c->pos);
        c->len -= c->pos;
        c->pos = 0;
        c->field_count = 0;
        c->content_length = NULL;
        c->body_read = 0;
        c->iter_closes = 0;
        c->iter_index = 0;
        c->method = c->path = c->protocol = "-";
        c->query = "";

        int parsed = read_head(c);
        if (parsed == HEAD_EOF) {
            reason = "eof";
            break;
        }
        if (parsed == HEAD_BROKEN) {
            reason = stopping ? "signal" : "broken";
            break;
        }
        requests++;
        if (parsed > 0) {
            send_refusal(c, parsed);
            fprintf(stderr,
                    "keepalive_host: request conn=%u seq=%u method=%s path=%s proto=%s status=%d run=-1 keep=0 "
                    "content_length=%s body_read=0 body_sent=8 iter_closes=0\n",
                    c->id, requests, c->method, c->path, c->protocol, parsed,
                    c->content_length ? c->content_length : "-");
            reason = "refused";
            break;
        }

        unsigned code = 0;
        unsigned long long body_sent = 0;
        bool keep = false;
        int run = handler_serve(h, c, &code, &body_sent, &keep);
        fprintf(stderr,
                "keepalive_host: request conn=%u seq=%u method=%s path=%s proto=%s status=%u run=%d keep=%d "
                "content_length=%s body_read=%llu body_sent=%llu iter_closes=%u\n",
                c->id, requests, c->method, c->path, c->protocol, code, run, keep ? 1 : 0,
                c->content_length ? c->content_length : "-", c->body_read, body_sent, c->iter_closes);
        if (c->quit) {
            reason = "quit";
            break;
        }
        if (!keep) {
            reason = "verdict";
            break;
        }
    }
    size_t leftover = c->len > c->pos ? c->len - c->pos : 0;
    lingering_close(c->fd);
    fprintf(stderr, "keepalive_host: close conn=%u requests=%u reason=%s leftover=%zu\n", c->id, requests, reason,
            leftover);
}

static bool parse_number(const char *s, unsigned long long max, unsigned long long *out) {
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || s[0] == '-' || v > max) return false;
    *out = v;
    return true;
}

int main(int argc, char **argv) {
    unsigned long long port = 0, drain_limit = 1024, alarm_seconds = 60;
    if (argc < 2 || argc > 4 || !parse_number(argv[1], 65535, &port) ||
        (argc > 2 && !parse_number(argv[2], (unsigned long long)1 << 40, &drain_limit)) ||
        (argc > 3 && !parse_number(argv[3], 3600, &alarm_seconds))) {
        fprintf(stderr, "usage: %s PORT [DRAIN_LIMIT [ALARM_SECONDS]]\n", argv[0]);
        return 2;
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_stop; /* no SA_RESTART: accept and recv return EINTR */
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = on_alarm;
    sigaction(SIGALRM, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    alarm((unsigned)alarm_seconds);

    int listener = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t addr_len = sizeof addr;
    if (listener < 0 || setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(listener, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(listener, 16) != 0 ||
        getsockname(listener, (struct sockaddr *)&addr, &addr_len) != 0) {
        perror("keepalive_host: listen");
        return 1;
    }

    gw_handler *h = handler_create(drain_limit);
    connection *c = malloc(sizeof *c);
    if (h == NULL || c == NULL) {
        handler_destroy(h);
        free(c);
        close(listener);
        return 1;
    }
    printf("%u\n", (unsigned)ntohs(addr.sin_port));
    fflush(stdout);
    fprintf(stderr, "keepalive_host: listening on 127.0.0.1:%u drain_limit=%llu alarm=%llus\n",
            (unsigned)ntohs(addr.sin_port), drain_limit, alarm_seconds);

    unsigned connections = 0;
    int exit_code = 0;
    while (!stopping) {
        struct sockaddr_in peer;
        socklen_t peer_len = sizeof peer;
        struct pollfd p = { listener, POLLIN, 0 };
        if (poll(&p, 1, 100) <= 0) continue; /* a timeout or EINTR: look at `stopping` again */
        int fd = accept(listener, (struct sockaddr *)&peer, &peer_len);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            perror("keepalive_host: accept");
            exit_code = 1;
            break;
        }
        struct timeval tv = { IDLE_SECONDS, 0 };
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        memset(c->peer, 0, sizeof c->peer);
        inet_ntop(AF_INET, &peer.sin_addr, c->peer, sizeof c->peer);
        c->fd = fd;
        c->id = ++connections;
        c->server_port = ntohs(addr.sin_port);
        c->quit = false;
        serve_connection(h, c);
        if (c->quit) break;
    }
    fprintf(stderr, "keepalive_host: exiting after %u connections (%s)\n", connections,
            stopping ? "signal" : c->quit ? "quit" : "error");
    handler_destroy(h);
    free(c);
    close(listener);
    return exit_code;
}
