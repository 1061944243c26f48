/* demo_server: what `python -m wsgiref.simple_server` does, as a C host on gateway, but an
 * HTTP/1.1 server fit to face real clients.
 *
 *   demo_server [-w WORKERS] [-c MAX_CONNECTIONS] [-i IDLE_S] [-t HEAD_S] [-o IO_S] [PORT]
 *
 * Serves the demo application (a hello line and the sorted environ) on 127.0.0.1:PORT (8000
 * by default; 0 picks a free port) and writes an access log line per request to stderr in
 * wsgiref.simple_server's format (Common Log Format, request line escaped).
 *
 * How it is built: the HTTP work is the library's. The main thread is an event loop (poll)
 * that accepts connections and gathers request heads for all of them; it asks
 * gw_environ_set_from_request_head whether a head is complete (or bad: answered with
 * gw_error_response and closed). A complete head goes to a fixed pool of WORKERS threads (4),
 * each with its own reused gw_handler speaking HTTP/1.1: its add_cgi_vars parses the head
 * again into the environ the handler lends, the read hook hands out the body (bytes already
 * received first, then the socket), and after the run gw_handler_last_keep_alive says
 * whether the connection goes back to the event loop for its next request (pipelined bytes
 * included) or is closed. So an idle or slow client holds no thread, only a slot.
 *
 * Limits: at most MAX_CONNECTIONS (1000) connections (then new ones wait in the listen
 * backlog); a connection waiting for a request is closed after IDLE_S (10) seconds, a head
 * must be complete HEAD_S (10) seconds after its first byte (else 408 and close); each body
 * read and response write may wait IO_S (10) seconds. Heads use the library's default size
 * limits. Chunked request bodies are decoded by the library. SIGINT or SIGTERM:
 * stop accepting, close idle connections, let the workers finish their requests, exit 0.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "gateway.h"

#define SERVER_SOFTWARE "gateway-demo/" GW_VERSION
#define BUF_SIZE (GW_REQUEST_HEAD_DEFAULT_MAX_HEAD + 16384) /* a head, and what follows it */
#define LOGGED_LINE_MAX 1024                               /* request-line bytes logged */
#define LINGER_MS 2000
#define HELLO_LEN 14 /* "Hello world!\n\n" */

typedef enum { READING, BUSY, LINGERING } conn_state;

typedef struct connection {
    struct connection *next; /* in the workers' queue or the returned list */
    int fd;
    conn_state state;
    bool started;    /* a byte of the next head arrived */
    bool closing;    /* set by the worker: do not keep the connection */
    int64_t deadline; /* ms, monotonic: idle, head or lingering deadline */
    char peer[INET_ADDRSTRLEN];
    uint16_t peer_port;
    char request_line[4 * LOGGED_LINE_MAX + 4]; /* escaped, for the access log */
    size_t len, pos; /* bytes in buf; the first one not consumed */
    char buf[BUF_SIZE];
} connection;

static struct {
    long workers, max_connections, idle_s, head_s, io_s;
    uint16_t port;
} cfg = { 4, 1000, 10, 10, 10, 8000 };

static gw_request_head_options head_options = GW_REQUEST_HEAD_OPTIONS_INIT;
static int wake[2]; /* the self-pipe: workers and signals wake the event loop */
static volatile sig_atomic_t stop_signal = 0;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t work_ready = PTHREAD_COND_INITIALIZER;
static connection *queue_head, *queue_tail; /* complete heads, for the workers */
static connection *returned;                /* back from the workers, for the event loop */
static bool workers_exit;
static long busy; /* connections at a worker (the event loop's count) */

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void wake_loop(void) {
    ssize_t ignored = write(wake[1], "", 1); /* non-blocking: a full pipe already wakes it */
    (void)ignored;
}

static gw_connection_facts facts_of(const connection *c) {
    gw_connection_facts f = GW_CONNECTION_FACTS_INIT;
    f.remote_addr = c->peer;
    f.remote_addr_len = strlen(c->peer);
    f.server_name = "127.0.0.1";
    f.server_name_len = 9;
    f.remote_port = c->peer_port;
    f.server_port = cfg.port;
    return f;
}

/* ---- the access log: nothing the client sent reaches it raw ------------------------------- */

/* Keeps the request's first line with every byte outside printable ASCII, '"' and '\\' written
 * as \xHH, so a client can neither forge log lines nor send terminal escapes. */
static void remember_request_line(connection *c) {
    const char *p = c->buf + c->pos, *end = c->buf + c->len;
    while (p < end && (*p == '\r' || *p == '\n')) p++; /* empty lines before a request */
    size_t o = 0;
    for (size_t i = 0; p + i < end && p[i] != '\r' && p[i] != '\n'; i++) {
        if (i == LOGGED_LINE_MAX) {
            memcpy(c->request_line + o, "...", 3);
            o += 3;
            break;
        }
        unsigned char u = (unsigned char)p[i];
        if (u < 0x20 || u >= 0x7f || u == '"' || u == '\\') {
            o += (size_t)snprintf(c->request_line + o, 5, "\\x%02x", u);
        } else {
            c->request_line[o++] = (char)u;
        }
    }
    c->request_line[o] = '\0';
}

/* wsgiref: `127.0.0.1 - - [19/Mar/2024 10:00:00] "GET / HTTP/1.1" 200 123`, local time. */
static void log_access(const connection *c, unsigned code, unsigned long long bytes) {
    char when[64], line[sizeof c->request_line + 160];
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    strftime(when, sizeof when, "%d/%b/%Y %H:%M:%S", &tm);
    int n = code == 0 ? snprintf(line, sizeof line, "%s - - [%s] \"%s\" - -\n", c->peer, when, c->request_line)
                      : snprintf(line, sizeof line, "%s - - [%s] \"%s\" %u %llu\n", c->peer, when,
                                 c->request_line, code, bytes);
    fwrite(line, 1, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1, stderr); /* one locked call */
}

/* ---- the hooks (worker threads) ------------------------------------------------------------ */

static int conn_write(void *userdata, const void *data, size_t len, size_t *out_written) {
    connection *c = userdata;
    ssize_t n = send(c->fd, data, len, MSG_NOSIGNAL); /* SO_SNDTIMEO bounds the wait */
    if (n < 0) return errno;
    *out_written = (size_t)n;
    return 0;
}

/* The body: the bytes that came with the head, then the socket (SO_RCVTIMEO bounds each
 * wait). The library never asks past the body's end (CONTENT_LENGTH, or the last chunk), so
 * a pipelined request stays in buf. */
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

static int log_flush(void *userdata) {
    (void)userdata;
    return fflush(stderr) == 0 ? 0 : errno;
}

/* The head was found complete and good by the event loop: parse it into the lent environ. */
static int32_t conn_add_cgi_vars(void *userdata, gw_environ *env) {
    connection *c = userdata;
    gw_connection_facts facts = facts_of(c);
    size_t consumed = 0;
    bool chunked = false;
    uint16_t code = 0;
    gw_status st = gw_environ_set_from_request_head(env, c->buf + c->pos, c->len - c->pos, &facts, &head_options,
                                                    &consumed, &chunked, &code);
    if (st == GW_STATUS_OK) c->pos += consumed;
    return st;
}

/* ---- the application ------------------------------------------------------------------------ */

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

/* wsgiref's demo_app: "Hello world!", a blank line, then `key = value` for the sorted environ. */
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

/* ---- the workers ---------------------------------------------------------------------------- */

static void serve_request(gw_handler *h, connection *c) {
    uint16_t code = 0;
    uint64_t bytes = 0;
    bool keep = false;
    gw_handler_set_userdata(h, c);
    gw_status st = gw_handler_run(h, demo_app, NULL);
    gw_handler_last_response(h, &code, &bytes);
    gw_handler_last_keep_alive(h, &keep);
    if (st != GW_STATUS_OK && st != GW_STATUS_APP_ERROR && st != GW_STATUS_CLIENT_GONE) {
        fprintf(stderr, "demo_server: %s: %s\n", gw_status_str(st), gw_last_error_message());
    }
    log_access(c, code, bytes);
    c->closing = !keep;
    if (keep) { /* keep what the client sent past this request: the next one starts there */
        memmove(c->buf, c->buf + c->pos, c->len - c->pos);
        c->len -= c->pos;
        c->pos = 0;
    }
}

static void *worker(void *arg) {
    (void)arg;
    gw_handler_hooks hooks = GW_HANDLER_HOOKS_INIT;
    hooks.write = conn_write;
    hooks.read_stdin = conn_read;
    hooks.write_stderr = log_write;
    hooks.flush_stderr = log_flush;
    hooks.add_cgi_vars = conn_add_cgi_vars;
    gw_handler *h = NULL;
    if (gw_handler_new(&hooks, &h) != GW_STATUS_OK || gw_handler_set_http_version(h, "1.1", 3) != GW_STATUS_OK ||
        gw_handler_set_server_software(h, SERVER_SOFTWARE, strlen(SERVER_SOFTWARE)) != GW_STATUS_OK ||
        gw_handler_set_multiprocess(h, false) != GW_STATUS_OK) {
        fprintf(stderr, "demo_server: %s\n", gw_last_error_message());
        exit(1);
    }
    for (;;) {
        pthread_mutex_lock(&lock);
        while (queue_head == NULL && !workers_exit) pthread_cond_wait(&work_ready, &lock);
        connection *c = queue_head;
        if (c != NULL && (queue_head = c->next) == NULL) queue_tail = NULL;
        pthread_mutex_unlock(&lock);
        if (c == NULL) break;
        serve_request(h, c);
        pthread_mutex_lock(&lock);
        c->next = returned;
        returned = c;
        pthread_mutex_unlock(&lock);
        wake_loop();
    }
    gw_handler_free(h);
    return NULL;
}

/* ---- the event loop (main thread) ---------------------------------------------------------- */

static void start_lingering(connection *c) {
    shutdown(c->fd, SHUT_WR); /* let the client read the answer before the socket closes */
    c->state = LINGERING;
    c->deadline = now_ms() + LINGER_MS;
}

/* An answer the library wrote for a request that never reaches the application. */
static void refuse(connection *c, uint16_t code) {
    char out[GW_ERROR_RESPONSE_MAX_LEN];
    size_t len = 0;
    if (gw_error_response(code, out, sizeof out, &len) == GW_STATUS_OK) {
        send(c->fd, out, len, MSG_NOSIGNAL | MSG_DONTWAIT); /* small: fits the socket buffer */
        const char *body = strstr(out, "\r\n\r\n");
        remember_request_line(c);
        log_access(c, code, body ? (unsigned long long)(len - (size_t)(body + 4 - out)) : 0);
    }
    start_lingering(c);
}

/* Looks at what arrived of the next head: wait for more, refuse it, or hand it to a worker. */
static void examine_head(connection *c, gw_environ **scratch) {
    if (c->len == c->pos) return;
    if (!c->started) {
        c->started = true;
        c->deadline = now_ms() + cfg.head_s * 1000;
    }
    gw_connection_facts facts = facts_of(c);
    size_t consumed = 0;
    bool chunked = false;
    uint16_t code = 0;
    gw_status st = gw_environ_set_from_request_head(*scratch, c->buf + c->pos, c->len - c->pos, &facts,
                                                    &head_options, &consumed, &chunked, &code);
    if (st == GW_STATUS_INCOMPLETE) return; /* max_head < BUF_SIZE: a head too long is 431 */
    if (st == GW_STATUS_OK) { /* a fresh scratch environ, so it never grows */
        gw_environ_free(*scratch);
        *scratch = NULL;
        if (gw_environ_new(scratch) != GW_STATUS_OK) exit(1);
    }
    if (st != GW_STATUS_OK) { /* a chunked body is fine: the library decodes it */
        refuse(c, st == GW_STATUS_BAD_REQUEST ? code : 500);
        return;
    }
    remember_request_line(c);
    busy++;
    c->state = BUSY;
    c->closing = false;
    c->next = NULL;
    pthread_mutex_lock(&lock);
    if (queue_tail) queue_tail->next = c;
    else queue_head = c;
    queue_tail = c;
    pthread_cond_signal(&work_ready);
    pthread_mutex_unlock(&lock);
}

static void wait_for_request(connection *c) {
    c->state = READING;
    c->started = false;
    c->deadline = now_ms() + cfg.idle_s * 1000;
}

static void on_signal(int sig) {
    (void)sig;
    stop_signal = 1;
    wake_loop();
}

static bool parse_long(const char *s, long min, long max, long *out) {
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max) return false;
    *out = v;
    return true;
}

int main(int argc, char **argv) {
    long port = 8000;
    bool ok = true;
    for (int opt; (opt = getopt(argc, argv, "w:c:i:t:o:")) != -1;) {
        long *target = opt == 'w' ? &cfg.workers : opt == 'c' ? &cfg.max_connections : opt == 'i' ? &cfg.idle_s
                     : opt == 't' ? &cfg.head_s : opt == 'o' ? &cfg.io_s : NULL;
        ok = ok && target != NULL && parse_long(optarg, 1, 100000, target);
    }
    if (!ok || argc - optind > 1 || (optind < argc && !parse_long(argv[optind], 0, 65535, &port))) {
        fprintf(stderr, "usage: %s [-w WORKERS] [-c MAX_CONNECTIONS] [-i IDLE_S] [-t HEAD_S] [-o IO_S] [PORT]\n",
                argv[0]);
        return 2;
    }
    struct rlimit rl; /* a connection is a descriptor: stay under the process's limit */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && (rlim_t)cfg.max_connections + 16 > rl.rlim_cur) {
        cfg.max_connections = rl.rlim_cur > 32 ? (long)rl.rlim_cur - 16 : 16;
    }
    head_options.allow_http09 = true;

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    sa.sa_handler = on_signal; /* no SA_RESTART: poll returns EINTR */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    int one = 1;
    int listener = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t addr_len = sizeof addr;
    if (listener < 0 || setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(listener, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(listener, 128) != 0 ||
        getsockname(listener, (struct sockaddr *)&addr, &addr_len) != 0 || pipe(wake) != 0) {
        perror("demo_server");
        return 1;
    }
    fcntl(listener, F_SETFL, O_NONBLOCK);
    fcntl(wake[0], F_SETFL, O_NONBLOCK);
    fcntl(wake[1], F_SETFL, O_NONBLOCK);
    cfg.port = ntohs(addr.sin_port);

    /* The workers block SIGINT and SIGTERM (they inherit this mask), so the loop gets them. */
    sigset_t stops, old;
    sigemptyset(&stops);
    sigaddset(&stops, SIGINT);
    sigaddset(&stops, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stops, &old);
    pthread_t *threads = calloc((size_t)cfg.workers, sizeof *threads);
    connection **conns = calloc((size_t)cfg.max_connections, sizeof *conns);
    struct pollfd *fds = calloc((size_t)cfg.max_connections + 2, sizeof *fds);
    connection **polled = calloc((size_t)cfg.max_connections + 2, sizeof *polled);
    gw_environ *scratch = NULL;
    if (threads == NULL || conns == NULL || fds == NULL || polled == NULL || gw_environ_new(&scratch) != GW_STATUS_OK) {
        return 1;
    }
    for (long i = 0; i < cfg.workers; i++) {
        if (pthread_create(&threads[i], NULL, worker, NULL) != 0) return 1;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    printf("Serving HTTP on 127.0.0.1 port %u ...\n", (unsigned)cfg.port);
    fflush(stdout);

    long count = 0;
    bool stopping = false;
    while (!stopping || busy > 0) {
        if (stop_signal && !stopping) { /* stop accepting; idle connections go now */
            stopping = true;
            close(listener);
            for (long i = 0; i < count; i++) {
                if (conns[i]->state != BUSY) conns[i]->deadline = 0;
            }
        }
        nfds_t n = 0, listen_at = 0;
        int64_t now = now_ms(), next = -1;
        fds[n++] = (struct pollfd){ wake[0], POLLIN, 0 };
        if (!stopping && count < cfg.max_connections) {
            listen_at = n;
            fds[n++] = (struct pollfd){ listener, POLLIN, 0 };
        }
        for (long i = 0; i < count; i++) {
            connection *c = conns[i];
            if (c->state == BUSY) continue;
            polled[n] = c;
            fds[n++] = (struct pollfd){ c->fd, POLLIN, 0 };
            if (next < 0 || c->deadline < next) next = c->deadline;
        }
        int timeout = next < 0 ? -1 : next <= now ? 0 : (int)(next - now);
        if (poll(fds, n, timeout) < 0 && errno != EINTR) {
            perror("demo_server: poll");
            break;
        }
        for (nfds_t k = 1; k < n; k++) {
            if (fds[k].revents == 0) continue;
            if (k == listen_at) {
                for (;;) {
                    struct sockaddr_in peer;
                    socklen_t peer_len = sizeof peer;
                    int fd = count < cfg.max_connections ? accept(listener, (struct sockaddr *)&peer, &peer_len) : -1;
                    if (fd < 0) break;
                    connection *c = malloc(sizeof *c);
                    if (c == NULL) {
                        close(fd);
                        break;
                    }
                    struct timeval tv = { cfg.io_s, 0 };
                    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
                    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    c->fd = fd;
                    c->len = c->pos = 0;
                    c->peer_port = ntohs(peer.sin_port);
                    inet_ntop(AF_INET, &peer.sin_addr, c->peer, sizeof c->peer);
                    wait_for_request(c);
                    conns[count++] = c;
                }
                continue;
            }
            connection *c = polled[k];
            if (c->state == READING) {
                ssize_t got = recv(c->fd, c->buf + c->len, BUF_SIZE - c->len, MSG_DONTWAIT);
                if (got > 0) {
                    c->len += (size_t)got;
                    examine_head(c, &scratch);
                } else if (got == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
                    c->deadline = 0; /* closed or broken: drop it below */
                    c->state = LINGERING;
                }
            } else { /* LINGERING: read and discard until the client closes */
                char sink[4096];
                ssize_t got = recv(c->fd, sink, sizeof sink, MSG_DONTWAIT);
                if (got == 0 || (got < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) c->deadline = 0;
            }
        }
        if (fds[0].revents) { /* workers returned connections */
            char drain[256];
            while (read(wake[0], drain, sizeof drain) > 0) {
            }
            pthread_mutex_lock(&lock);
            connection *list = returned;
            returned = NULL;
            pthread_mutex_unlock(&lock);
            for (connection *c = list, *next_c; c != NULL; c = next_c) {
                next_c = c->next;
                busy--;
                if (stopping) {
                    c->state = LINGERING;
                    c->deadline = 0;
                } else if (c->closing) {
                    start_lingering(c);
                } else {
                    wait_for_request(c);
                    examine_head(c, &scratch); /* a pipelined request may be there already */
                }
            }
        }
        /* Deadlines: an idle connection is closed, a head too slow gets 408, lingering ends. */
        now = now_ms();
        long kept = 0;
        for (long i = 0; i < count; i++) {
            connection *c = conns[i];
            if (c->state != BUSY && c->deadline <= now) {
                if (c->state == READING && c->started && !stopping) {
                    refuse(c, 408);
                } else {
                    close(c->fd);
                    free(c);
                    continue;
                }
            }
            conns[kept++] = c;
        }
        count = kept;
    }
    pthread_mutex_lock(&lock);
    workers_exit = true;
    pthread_cond_broadcast(&work_ready);
    pthread_mutex_unlock(&lock);
    for (long i = 0; i < cfg.workers; i++) pthread_join(threads[i], NULL);
    for (long i = 0; i < count; i++) {
        close(conns[i]->fd);
        free(conns[i]);
    }
    gw_environ_free(scratch);
    free(threads);
    free(conns);
    free(fds);
    free(polled);
    fprintf(stderr, "demo_server: stopped by a signal\n");
    return 0;
}
