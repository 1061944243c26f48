/* bench_baseline_server: the hand-written baseline of `make bench-e2e` (tests/bench_e2e.py).
 *
 *   bench_baseline_server PORT
 *
 * A minimal single-threaded epoll keep-alive HTTP/1.1 server on 127.0.0.1:PORT, written by
 * hand with no library, that answers every request with the bytes build/demo_server sends
 * for it: "Hello world!", a blank line, then `key = value` for the sorted CGI environ the
 * demo's application sees (the request's HTTP_* variables, PATH_INFO percent-decoded,
 * QUERY_STRING, REQUEST_URI, the server's variables and the wsgi.* entries as the demo names
 * them), under the same head (Date cached per second, Server, Content-Type, Content-Length).
 * It sorts the environ as the demo's application does (an insertion sort on an 8-byte key of
 * each name). Like the demo it writes an access log line per request to stderr in wsgiref's
 * format (the request line escaped the same way), buffered and written once per turn of its
 * loop.
 * tests/bench_e2e.py checks the bytes against the demo's before timing.
 *
 * What it leaves out, since the bench does not send it: request bodies other than a
 * Content-Length to skip, chunked requests, Expect, HTTP/1.0 keep-alive (1.0 closes), limits
 * beyond the buffer size (a larger head gets 431 and close), idle timeouts.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define SERVER_SOFTWARE "gateway-demo/0.2.0"
#define IN_SIZE 16384
#define MAX_VARS 128
#define ARENA_SIZE 16384

typedef struct {
    int fd;
    char peer[INET_ADDRSTRLEN];
    unsigned peer_port;
    size_t len;        /* bytes in in[] */
    size_t skip;       /* request body bytes still to discard */
    char *out;         /* pending response bytes */
    size_t out_len, out_pos, out_cap;
    int close_after;   /* close once out is written */
    char in[IN_SIZE];
} conn;

typedef struct {
    const char *name, *value;
    size_t name_len, value_len;
    uint64_t key;
} var;

static unsigned server_port;
static volatile sig_atomic_t stopping;

static void on_signal(int sig) {
    (void)sig;
    stopping = 1;
}

static int cmp_var(const void *a, const void *b) {
    const var *x = a, *y = b;
    size_t n = x->name_len < y->name_len ? x->name_len : y->name_len;
    int c = memcmp(x->name, y->name, n);
    if (c != 0) return c;
    return (x->name_len > y->name_len) - (x->name_len < y->name_len);
}

/* The name's first 8 bytes, big-endian, zero-padded: sorting compares these first. */
static uint64_t name_key(const char *name, size_t len) {
    unsigned char b[8] = { 0 };
    memcpy(b, name, len < 8 ? len : 8);
    return (uint64_t)b[0] << 56 | (uint64_t)b[1] << 48 | (uint64_t)b[2] << 40 | (uint64_t)b[3] << 32 |
           (uint64_t)b[4] << 24 | (uint64_t)b[5] << 16 | (uint64_t)b[6] << 8 | b[7];
}

/* The demo application's sort: insertion by key, then by the whole name. */
static void sort_vars(var **order, size_t n) {
    for (size_t i = 1; i < n; i++) {
        var *e = order[i];
        size_t j = i;
        while (j > 0 && (order[j - 1]->key > e->key || (order[j - 1]->key == e->key && cmp_var(order[j - 1], e) > 0))) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = e;
    }
}

static char date_header[64]; /* "Date: ...\r\n", rebuilt once a second */
static time_t date_second = -1;

static const char *date_line(void) {
    time_t now = time(NULL);
    if (now != date_second) {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(date_header, sizeof date_header, "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
        date_second = now;
    }
    return date_header;
}

static int out_reserve(conn *c, size_t more) {
    if (c->out_len + more <= c->out_cap) return 0;
    size_t cap = c->out_cap ? c->out_cap : 4096;
    while (cap < c->out_len + more) cap *= 2;
    char *p = realloc(c->out, cap);
    if (p == NULL) return -1;
    c->out = p;
    c->out_cap = cap;
    return 0;
}

static void out_put(conn *c, const char *s, size_t n) {
    memcpy(c->out + c->out_len, s, n);
    c->out_len += n;
}

static int hexval(char ch) {
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

/* The access log, as the demo keeps it: lines gathered in a buffer, written once per turn of
 * the loop (and when it fills, and at exit); the time text made once a second. */
static char log_buf[65536];
static size_t log_len;
static char log_when[32];
static size_t log_when_len;
static time_t log_second = -1;

static void log_flush(void) {
    for (size_t done = 0; done < log_len;) {
        ssize_t n = write(STDERR_FILENO, log_buf + done, log_len - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        done += (size_t)n;
    }
    log_len = 0;
}

static char *put_decimal(char *o, unsigned long long v) {
    char digits[20];
    size_t n = 0;
    do digits[n++] = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    while (n > 0) *o++ = digits[--n];
    return o;
}

/* The demo's line, made as the demo makes it: the request line escaped (\xHH for bytes
 * outside printable ASCII, '"' and '\\'), at most 1024 of its bytes. */
static void access_log(const conn *c, const char *line, size_t line_len, unsigned code, size_t bytes) {
    static const char hex[] = "0123456789abcdef";
    time_t now = time(NULL);
    if (now != log_second) {
        struct tm tm;
        localtime_r(&now, &tm);
        log_when_len = strftime(log_when, sizeof log_when, "%d/%b/%Y %H:%M:%S", &tm);
        log_second = now;
    }
    if (log_len + 4 * 1024 + 128 > sizeof log_buf) log_flush();
    char *start = log_buf + log_len, *o = start;
    size_t peer_len = strlen(c->peer);
    memcpy(o, c->peer, peer_len);
    o += peer_len;
    memcpy(o, " - - [", 6);
    o += 6;
    memcpy(o, log_when, log_when_len);
    o += log_when_len;
    memcpy(o, "] \"", 3);
    o += 3;
    for (size_t i = 0; i < line_len; i++) {
        if (i == 1024) {
            memcpy(o, "...", 3);
            o += 3;
            break;
        }
        unsigned char u = (unsigned char)line[i];
        if (u < 0x20 || u >= 0x7f || u == '"' || u == '\\') {
            *o++ = '\\';
            *o++ = 'x';
            *o++ = hex[u >> 4];
            *o++ = hex[u & 15];
        } else {
            *o++ = (char)u;
        }
    }
    memcpy(o, "\" ", 2);
    o = put_decimal(o + 2, code);
    *o++ = ' ';
    o = put_decimal(o, bytes);
    *o++ = '\n';
    log_len += (size_t)(o - start);
}

static void simple_error(conn *c, const char *status) {
    char buf[256];
    int n = snprintf(buf, sizeof buf, "HTTP/1.1 %s\r\n%sConnection: close\r\nContent-Length: 0\r\n\r\n", status,
                     date_line());
    if (out_reserve(c, (size_t)n) == 0) out_put(c, buf, (size_t)n);
    c->close_after = 1;
}

static int add(var *vars, size_t *nvars, const char *n, size_t nl, const char *v, size_t vl) {
    if (*nvars == MAX_VARS) return -1;
    vars[*nvars] = (var){ n, v, nl, vl, name_key(n, nl) };
    (*nvars)++;
    return 0;
}

/* One complete head at c->in[0 .. head_len) (the blank line included): answers it into c->out.
 * Returns 0, or -1 when the connection is to be closed after what is queued. */
static int answer(conn *c, size_t head_len) {
    char arena[ARENA_SIZE];
    size_t used = 0;
    var vars[MAX_VARS];
    size_t nvars = 0;
    const char *p = c->in, *end = c->in + head_len - 2; /* up to the last line's CRLF */

    /* the request line: METHOD SP TARGET SP HTTP/x.y CRLF */
    const char *eol = memchr(p, '\n', (size_t)(end - p));
    if (eol == NULL || eol == p || eol[-1] != '\r') return simple_error(c, "400 Bad Request"), -1;
    const char *line = p;
    size_t line_len = (size_t)(eol - 1 - p);
    const char *sp1 = memchr(line, ' ', line_len);
    const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(line + line_len - sp1 - 1)) : NULL;
    if (sp1 == NULL || sp2 == NULL || sp1 == line || sp2 == sp1 + 1) return simple_error(c, "400 Bad Request"), -1;
    const char *version = sp2 + 1;
    size_t version_len = (size_t)(line + line_len - version);
    if (version_len != 8 || memcmp(version, "HTTP/1.", 7) != 0) return simple_error(c, "400 Bad Request"), -1;
    int keep = version[7] == '1';
    const char *target = sp1 + 1;
    size_t target_len = (size_t)(sp2 - target);

#define ADD(...)                                                                                         \
    do {                                                                                                         \
        if (add(vars, &nvars, __VA_ARGS__) != 0) return simple_error(c, "431 Request Header Fields Too Large"), -1; \
    } while (0)
#define LIT(s) s, sizeof s - 1

    ADD(LIT("REQUEST_METHOD"), line, (size_t)(sp1 - line));
    ADD(LIT("REQUEST_URI"), target, target_len);
    ADD(LIT("SERVER_PROTOCOL"), version, version_len);
    const char *q = memchr(target, '?', target_len);
    size_t path_len = q ? (size_t)(q - target) : target_len;
    ADD(LIT("QUERY_STRING"), q ? q + 1 : "", q ? target_len - path_len - 1 : 0);
    /* PATH_INFO: the path percent-decoded (bytes as they are, like wsgiref's latin-1) */
    char *path = arena + used;
    size_t pl = 0;
    for (size_t i = 0; i < path_len; i++) {
        int h, l;
        if (target[i] == '%' && i + 2 < path_len && (h = hexval(target[i + 1])) >= 0 &&
            (l = hexval(target[i + 2])) >= 0) {
            path[pl++] = (char)(h * 16 + l);
            i += 2;
        } else {
            path[pl++] = target[i];
        }
    }
    used += pl;
    ADD(LIT("PATH_INFO"), path, pl);

    /* the header lines: HTTP_NAME, CONTENT_TYPE and CONTENT_LENGTH; repeats joined by ", " */
    size_t content_length = 0;
    for (p = eol + 1; p < end;) {
        eol = memchr(p, '\n', (size_t)(end - p) + 1);
        if (eol == NULL || eol[-1] != '\r') return simple_error(c, "400 Bad Request"), -1;
        const char *colon = memchr(p, ':', (size_t)(eol - p));
        if (colon == NULL || colon == p) return simple_error(c, "400 Bad Request"), -1;
        const char *v = colon + 1, *ve = eol - 1;
        while (v < ve && (*v == ' ' || *v == '\t')) v++;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t')) ve--;
        size_t nl = (size_t)(colon - p);
        if (used + nl + 5 > ARENA_SIZE) return simple_error(c, "431 Request Header Fields Too Large"), -1;
        char *name = arena + used;
        size_t k = 0;
        int special = (nl == 12 && strncasecmp(p, "Content-Type", 12) == 0) ||
                      (nl == 14 && strncasecmp(p, "Content-Length", 14) == 0);
        if (!special) {
            memcpy(name, "HTTP_", 5);
            k = 5;
        }
        for (size_t i = 0; i < nl; i++) {
            char ch = p[i];
            name[k++] = ch == '-' ? '_' : (ch >= 'a' && ch <= 'z') ? (char)(ch - 32) : ch;
        }
        used += k;
        if (nl == 14 && special) {
            content_length = 0;
            for (const char *d = v; d < ve; d++) {
                if (*d < '0' || *d > '9' || content_length > 1000000000) return simple_error(c, "400 Bad Request"), -1;
                content_length = content_length * 10 + (size_t)(*d - '0');
            }
        }
        if (nl == 10 && strncasecmp(p, "Connection", 10) == 0) {
            if ((size_t)(ve - v) == 5 && strncasecmp(v, "close", 5) == 0) keep = 0;
            if ((size_t)(ve - v) == 10 && strncasecmp(v, "keep-alive", 10) == 0) keep = 1;
        }
        size_t j = 0;
        while (j < nvars && cmp_var(&vars[j], &(var){ name, NULL, k, 0, 0 }) != 0) j++;
        if (j < nvars) { /* a repeat: the value becomes "old, new" in the arena */
            size_t vl = vars[j].value_len + 2 + (size_t)(ve - v);
            if (used + vl > ARENA_SIZE) return simple_error(c, "431 Request Header Fields Too Large"), -1;
            char *joined = arena + used;
            memcpy(joined, vars[j].value, vars[j].value_len);
            memcpy(joined + vars[j].value_len, ", ", 2);
            memcpy(joined + vars[j].value_len + 2, v, (size_t)(ve - v));
            used += vl;
            vars[j].value = joined;
            vars[j].value_len = vl;
        } else {
            ADD(name, k, v, (size_t)(ve - v));
        }
        p = eol + 1;
    }

    char port[8], peer_port[8];
    int port_len = snprintf(port, sizeof port, "%u", server_port);
    int peer_port_len = snprintf(peer_port, sizeof peer_port, "%u", c->peer_port);
    ADD(LIT("GATEWAY_INTERFACE"), LIT("CGI/1.1"));
    ADD(LIT("REMOTE_ADDR"), c->peer, strlen(c->peer));
    ADD(LIT("REMOTE_PORT"), peer_port, (size_t)peer_port_len);
    ADD(LIT("SCRIPT_NAME"), LIT(""));
    ADD(LIT("SERVER_NAME"), LIT("127.0.0.1"));
    ADD(LIT("SERVER_PORT"), port, (size_t)port_len);
    ADD(LIT("SERVER_SOFTWARE"), LIT(SERVER_SOFTWARE));
    ADD(LIT("wsgi.errors"), LIT("gw_request_errors"));
    ADD(LIT("wsgi.file_wrapper"), LIT("gw_request_set_body_file"));
    ADD(LIT("wsgi.input"), LIT("gw_request_input"));
    ADD(LIT("wsgi.input_terminated"), LIT("1"));
    ADD(LIT("wsgi.multiprocess"), LIT("0"));
    ADD(LIT("wsgi.multithread"), LIT("0"));
    ADD(LIT("wsgi.run_once"), LIT("0"));
    ADD(LIT("wsgi.url_scheme"), LIT("http"));
    ADD(LIT("wsgi.version"), LIT("1.0"));
    var *order[MAX_VARS];
    for (size_t i = 0; i < nvars; i++) order[i] = &vars[i];
    sort_vars(order, nvars);

    size_t body_len = 14;
    for (size_t i = 0; i < nvars; i++) body_len += vars[i].name_len + 3 + vars[i].value_len + 1;
    char head[256];
    int head_len_out = snprintf(head, sizeof head,
                                "HTTP/1.1 200 OK\r\n%sServer: " SERVER_SOFTWARE
                                "\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %zu\r\n%s\r\n",
                                date_line(), body_len, keep ? "" : "Connection: close\r\n");
    if (out_reserve(c, (size_t)head_len_out + body_len) != 0) return -1;
    out_put(c, head, (size_t)head_len_out);
    out_put(c, "Hello world!\n\n", 14);
    for (size_t i = 0; i < nvars; i++) {
        out_put(c, order[i]->name, order[i]->name_len);
        out_put(c, " = ", 3);
        out_put(c, order[i]->value, order[i]->value_len);
        out_put(c, "\n", 1);
    }
    access_log(c, line, line_len, 200, body_len);
    c->skip = content_length;
    if (!keep) c->close_after = 1;
    return keep ? 0 : -1;
#undef ADD
#undef LIT
}

static void drop(int ep, conn *c) {
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c->out);
    free(c);
}

/* Writes what is pending; 1: all written, 0: the socket is full, -1: an error. */
static int flush_out(conn *c) {
    while (c->out_pos < c->out_len) {
        ssize_t n = write(c->fd, c->out + c->out_pos, c->out_len - c->out_pos);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
        if (n <= 0) return -1;
        c->out_pos += (size_t)n;
    }
    c->out_pos = c->out_len = 0;
    return 1;
}

/* Reads, answers every complete head in the buffer (pipelining), writes. 0: keep; -1: drop. */
static int serve(int ep, conn *c) {
    if (c->out_len > 0) { /* still writing: finish that first */
        int w = flush_out(c);
        if (w < 0) return -1;
        if (w == 0) return 0;
        if (c->close_after) return -1;
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
    }
    for (;;) {
        if (c->len == IN_SIZE) { /* a head that does not fit */
            simple_error(c, "431 Request Header Fields Too Large");
            flush_out(c);
            return -1;
        }
        ssize_t n = read(c->fd, c->in + c->len, IN_SIZE - c->len);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        if (n <= 0) return -1;
        c->len += (size_t)n;
        size_t pos = 0;
        int stop = 0;
        while (!stop) {
            if (c->skip > 0) { /* a request body: discarded */
                size_t k = c->len - pos < c->skip ? c->len - pos : c->skip;
                pos += k;
                c->skip -= k;
                if (c->skip > 0) break;
            }
            char *h = NULL;
            for (char *s = c->in + pos; s + 3 < c->in + c->len; s++) {
                if (s[0] == '\r' && s[1] == '\n' && s[2] == '\r' && s[3] == '\n') {
                    h = s + 4;
                    break;
                }
            }
            if (h == NULL) break;
            size_t head_len = (size_t)(h - (c->in + pos));
            if (pos > 0) memmove(c->in, c->in + pos, c->len - pos), c->len -= pos, pos = 0;
            if (answer(c, head_len) < 0) stop = 1;
            pos = head_len;
        }
        if (pos > 0) memmove(c->in, c->in + pos, c->len - pos), c->len -= pos;
        int w = flush_out(c);
        if (w < 0) return -1;
        if (w == 0) {
            struct epoll_event ev = { .events = EPOLLOUT, .data.ptr = c };
            epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
            return 0;
        }
        if (c->close_after || stop) return -1;
        break; /* level-triggered: epoll reports the socket again while bytes wait */
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s PORT\n", argv[0]);
        return 2;
    }
    server_port = (unsigned)strtoul(argv[1], NULL, 10);
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    int ls = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)server_port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (ls < 0 || bind(ls, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(ls, 1024) != 0) {
        perror("bench_baseline_server: listen");
        return 1;
    }
    fcntl(ls, F_SETFL, O_NONBLOCK);
    int ep = epoll_create1(0);
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
    epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
    fprintf(stderr, "Serving HTTP on 127.0.0.1 port %u ...\n", server_port);

    struct epoll_event events[64];
    while (!stopping) {
        int n = epoll_wait(ep, events, 64, 1000);
        if (n < 0 && errno != EINTR) break;
        for (int i = 0; i < n; i++) {
            conn *c = events[i].data.ptr;
            if (c == NULL) { /* the listening socket */
                for (;;) {
                    struct sockaddr_in pa;
                    socklen_t pl = sizeof pa;
                    int fd = accept(ls, (struct sockaddr *)&pa, &pl);
                    if (fd < 0) break;
                    conn *nc = calloc(1, sizeof *nc);
                    if (nc == NULL) {
                        close(fd);
                        continue;
                    }
                    fcntl(fd, F_SETFL, O_NONBLOCK);
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    nc->fd = fd;
                    inet_ntop(AF_INET, &pa.sin_addr, nc->peer, sizeof nc->peer);
                    nc->peer_port = ntohs(pa.sin_port);
                    struct epoll_event cev = { .events = EPOLLIN, .data.ptr = nc };
                    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev);
                }
                continue;
            }
            if (serve(ep, c) < 0) drop(ep, c);
        }
        log_flush();
    }
    log_flush();
    close(ep);
    close(ls);
    return 0;
}
