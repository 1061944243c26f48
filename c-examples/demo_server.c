/* demo_server: what `python -m wsgiref.simple_server` does, as a C host on gateway.
 *
 *   demo_server [PORT [MAX_REQUESTS]]
 *
 * Serves a demo application (a hello line and the sorted environ) on 127.0.0.1:PORT
 * (8000 by default; 0 picks a free port), one HTTP/1.0 request per connection, and writes an
 * access log line per request to stderr. With MAX_REQUESTS it exits after that many
 * connections. It builds the CGI variables from the HTTP request itself: method, path split
 * at '?', percent-decoded PATH_INFO, raw QUERY_STRING, headers as HTTP_* (a header name
 * holding '_' is dropped, so `X_Y` can never pose as `X-Y`), CONTENT_TYPE, CONTENT_LENGTH,
 * SERVER_NAME, SERVER_PORT, SERVER_PROTOCOL, REMOTE_ADDR, REMOTE_PORT. Requests it cannot
 * frame safely (conflicting Content-Length, any Transfer-Encoding, malformed lines) get a
 * 400 or 411 and are not passed to the application.
 *
 * One gw_handler serves every connection; gw_handler_set_userdata points its hooks at the
 * connection of the moment.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "gateway.h"

#define HEAD_MAX 65536
#define MAX_HEADERS 100
#define SERVER_SOFTWARE "gateway-demo/" GW_VERSION
#define HELLO_LEN 14 /* "Hello world!\n\n" */

typedef struct header_line {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
} header_line;

/* One connection and its parsed request. */
typedef struct connection {
    int fd;
    char client_ip[INET6_ADDRSTRLEN];
    unsigned client_port;
    unsigned server_port;
    char head[HEAD_MAX + 1];
    size_t head_len;     /* bytes received so far */
    size_t body_start;   /* where the body starts in head[] */
    size_t body_pos;     /* body bytes already handed out of head[] */
    char request_line[1024];
    const char *method;
    size_t method_len;
    const char *target;
    size_t target_len;
    const char *protocol;
    size_t protocol_len;
    header_line headers[MAX_HEADERS];
    size_t header_count;
} connection;

/* ---- the hooks --------------------------------------------------------------------------- */

static int conn_write(void *userdata, const void *data, size_t len, size_t *out_written) {
    connection *conn = userdata;
    ssize_t n = send(conn->fd, data, len, MSG_NOSIGNAL);
    if (n < 0) return errno;
    *out_written = (size_t)n;
    return 0;
}

/* The body: first what arrived with the head, then the socket. The library never asks for
 * more than CONTENT_LENGTH. */
static int conn_read(void *userdata, void *buf, size_t len, size_t *out_read) {
    connection *conn = userdata;
    size_t buffered = conn->head_len - conn->body_start - conn->body_pos;
    if (buffered > 0) {
        size_t take = buffered < len ? buffered : len;
        memcpy(buf, conn->head + conn->body_start + conn->body_pos, take);
        conn->body_pos += take;
        *out_read = take;
        return 0;
    }
    ssize_t n = recv(conn->fd, buf, len, 0);
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

static gw_status set_var(gw_environ *env, const char *name, const char *value, size_t value_len) {
    return gw_environ_set(env, name, strlen(name), value, value_len);
}

static int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* urllib.parse.unquote with latin-1: each valid %XX becomes its byte; the rest is kept. */
static size_t percent_decode(const char *in, size_t len, char *out) {
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (in[i] == '%' && i + 2 < len && hex_value(in[i + 1]) >= 0 && hex_value(in[i + 2]) >= 0) {
            out[o++] = (char)(hex_value(in[i + 1]) * 16 + hex_value(in[i + 2]));
            i += 2;
        } else {
            out[o++] = in[i];
        }
    }
    return o;
}

/* HTTP_* for one header; names holding anything but letters, digits and '-' are dropped,
 * so the mapping to environ keys cannot alias two different headers. */
static gw_status add_header_var(gw_environ *env, const header_line *h) {
    char key[256];
    if (h->name_len + 5 >= sizeof key) return GW_STATUS_OK;
    memcpy(key, "HTTP_", 5);
    for (size_t i = 0; i < h->name_len; i++) {
        char c = h->name[i];
        if (c == '-') {
            c = '_';
        } else if (c >= 'a' && c <= 'z') {
            c = (char)(c - 'a' + 'A');
        } else if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))) {
            return GW_STATUS_OK;
        }
        key[5 + i] = c;
    }
    size_t key_len = 5 + h->name_len;
    if (key_len == 10 && memcmp(key, "HTTP_PROXY", 10) == 0) return GW_STATUS_OK; /* httpoxy */
    const char *old = NULL;
    size_t old_len = 0;
    if (gw_environ_get(env, key, key_len, &old, &old_len) == GW_STATUS_OK) {
        /* A repeated header: values joined with ", " (with "; " for Cookie). */
        const char *sep = key_len == 11 && memcmp(key, "HTTP_COOKIE", 11) == 0 ? "; " : ", ";
        size_t joined_len = old_len + 2 + h->value_len;
        char *joined = malloc(joined_len);
        if (joined == NULL) return GW_STATUS_TOO_LARGE;
        memcpy(joined, old, old_len);
        memcpy(joined + old_len, sep, 2);
        memcpy(joined + old_len + 2, h->value, h->value_len);
        gw_status st = gw_environ_set(env, key, key_len, joined, joined_len);
        free(joined);
        return st;
    }
    return gw_environ_set(env, key, key_len, h->value, h->value_len);
}

static int32_t conn_add_cgi_vars(void *userdata, gw_environ *env) {
    connection *conn = userdata;
    char port[16], decoded[HEAD_MAX];
    gw_status st = GW_STATUS_OK;
    const char *query = memchr(conn->target, '?', conn->target_len);
    size_t path_len = query ? (size_t)(query - conn->target) : conn->target_len;
    size_t decoded_len = percent_decode(conn->target, path_len, decoded);

    snprintf(port, sizeof port, "%u", conn->server_port);
    if (st == GW_STATUS_OK) st = set_var(env, "GATEWAY_INTERFACE", "CGI/1.1", 7);
    if (st == GW_STATUS_OK) st = set_var(env, "SERVER_NAME", "127.0.0.1", 9);
    if (st == GW_STATUS_OK) st = set_var(env, "SERVER_PORT", port, strlen(port));
    if (st == GW_STATUS_OK) st = set_var(env, "SERVER_PROTOCOL", conn->protocol, conn->protocol_len);
    if (st == GW_STATUS_OK) st = set_var(env, "SERVER_SOFTWARE", SERVER_SOFTWARE, strlen(SERVER_SOFTWARE));
    if (st == GW_STATUS_OK) st = set_var(env, "REQUEST_METHOD", conn->method, conn->method_len);
    if (st == GW_STATUS_OK) st = set_var(env, "SCRIPT_NAME", "", 0);
    if (st == GW_STATUS_OK) st = set_var(env, "PATH_INFO", decoded, decoded_len);
    if (st == GW_STATUS_OK) {
        st = query ? set_var(env, "QUERY_STRING", query + 1, conn->target_len - path_len - 1)
                   : set_var(env, "QUERY_STRING", "", 0);
    }
    if (st == GW_STATUS_OK) st = set_var(env, "REMOTE_ADDR", conn->client_ip, strlen(conn->client_ip));
    snprintf(port, sizeof port, "%u", conn->client_port);
    if (st == GW_STATUS_OK) st = set_var(env, "REMOTE_PORT", port, strlen(port));
    for (size_t i = 0; i < conn->header_count && st == GW_STATUS_OK; i++) {
        const header_line *h = &conn->headers[i];
        if (h->name_len == 12 && strncasecmp(h->name, "Content-Type", 12) == 0) {
            st = set_var(env, "CONTENT_TYPE", h->value, h->value_len);
        } else if (h->name_len == 14 && strncasecmp(h->name, "Content-Length", 14) == 0) {
            st = set_var(env, "CONTENT_LENGTH", h->value, h->value_len);
        } else {
            st = add_header_var(env, h);
        }
    }
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

/* ---- HTTP ----------------------------------------------------------------------------------- */

static void send_all(int fd, const char *data, size_t len) {
    while (len > 0) {
        ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
        if (n <= 0) return;
        data += n;
        len -= (size_t)n;
    }
}

static const char *error_reason(int code) {
    switch (code) {
    case 411: return "Length Required";
    case 431: return "Request Header Fields Too Large";
    case 505: return "HTTP Version Not Supported";
    default: return "Bad Request";
    }
}

/* A response the server itself makes for a request it cannot parse. */
static void send_error(connection *conn, int code, const char *reason) {
    char msg[256];
    int body_len = snprintf(msg, sizeof msg, "%d %s\n", code, reason);
    char out[512];
    int n = snprintf(out, sizeof out,
                     "HTTP/1.0 %d %s\r\nServer: %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
                     "Connection: close\r\n\r\n%s",
                     code, reason, SERVER_SOFTWARE, body_len, msg);
    send_all(conn->fd, out, (size_t)n);
    fprintf(stderr, "%s - - \"%s\" %d %d\n", conn->client_ip, conn->request_line, code, body_len);
}

static bool is_token_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Reads the request head and parses it in place. Returns 0, or an HTTP error code. */
static int read_request(connection *conn) {
    char *end = NULL;
    while (end == NULL) {
        if (conn->head_len >= HEAD_MAX) return 431;
        ssize_t n = recv(conn->fd, conn->head + conn->head_len, HEAD_MAX - conn->head_len, 0);
        if (n <= 0) return -1;
        conn->head_len += (size_t)n;
        conn->head[conn->head_len] = '\0';
        end = strstr(conn->head, "\r\n\r\n");
        if (end == NULL && memchr(conn->head, '\0', conn->head_len) != NULL) return 400;
    }
    conn->body_start = (size_t)(end - conn->head) + 4;
    *end = '\0';

    char *line_end = strstr(conn->head, "\r\n");
    if (line_end == NULL) line_end = end;
    *line_end = '\0';
    snprintf(conn->request_line, sizeof conn->request_line, "%.1000s", conn->head);
    /* METHOD SP TARGET [SP PROTOCOL] */
    char *sp1 = strchr(conn->head, ' ');
    if (sp1 == NULL) return 400;
    char *sp2 = strchr(sp1 + 1, ' ');
    conn->method = conn->head;
    conn->method_len = (size_t)(sp1 - conn->head);
    conn->target = sp1 + 1;
    if (sp2 != NULL) {
        conn->target_len = (size_t)(sp2 - conn->target);
        conn->protocol = sp2 + 1;
        conn->protocol_len = strlen(conn->protocol);
        if (conn->protocol_len != 8 || strncmp(conn->protocol, "HTTP/1.", 7) != 0 ||
            (conn->protocol[7] != '0' && conn->protocol[7] != '1')) {
            return conn->protocol_len == 8 && strncmp(conn->protocol, "HTTP/", 5) == 0 ? 505 : 400;
        }
    } else {
        conn->target_len = strlen(conn->target);
        conn->protocol = "HTTP/0.9";
        conn->protocol_len = 8;
        if (conn->method_len != 3 || memcmp(conn->method, "GET", 3) != 0) return 400;
    }
    if (conn->method_len == 0 || conn->target_len == 0 || conn->target[0] != '/') return 400;
    for (size_t i = 0; i < conn->method_len; i++) {
        if (!is_token_char(conn->method[i])) return 400;
    }
    for (size_t i = 0; i < conn->target_len; i++) {
        if ((unsigned char)conn->target[i] <= ' ' || conn->target[i] == 0x7f) return 400;
    }

    /* Header lines: name ":" OWS value OWS; no obsolete folding, no bare CR or LF. */
    const header_line *content_length = NULL;
    char *line = line_end == end ? end : line_end + 2;
    while (line < end) {
        char *next = strstr(line, "\r\n");
        if (next == NULL) next = end;
        *next = '\0';
        if (conn->header_count == MAX_HEADERS) return 431;
        char *colon = strchr(line, ':');
        if (colon == NULL || colon == line || strpbrk(line, "\r\n") != NULL) return 400;
        for (char *c = line; c < colon; c++) {
            if (!is_token_char(*c)) return 400;
        }
        char *value = colon + 1;
        while (*value == ' ' || *value == '\t') value++;
        char *value_end = next;
        while (value_end > value && (value_end[-1] == ' ' || value_end[-1] == '\t')) value_end--;
        header_line *h = &conn->headers[conn->header_count++];
        h->name = line;
        h->name_len = (size_t)(colon - line);
        h->value = value;
        h->value_len = (size_t)(value_end - value);
        if (h->name_len == 14 && strncasecmp(h->name, "Content-Length", 14) == 0) {
            /* Plain digits, and every repeat the same: anything else could desynchronise. */
            if (h->value_len == 0 || strspn(h->value, "0123456789") < h->value_len) return 400;
            if (content_length != NULL &&
                (content_length->value_len != h->value_len || memcmp(content_length->value, h->value, h->value_len) != 0)) {
                return 400;
            }
            content_length = h;
        }
        /* This server does not decode chunked or other request framings. */
        if (h->name_len == 17 && strncasecmp(h->name, "Transfer-Encoding", 17) == 0) return 411;
        line = next + 2;
    }
    return 0;
}

/* Lets the client read the whole response before the socket closes: stop sending, then read
 * what it still sends for a short while. */
static void lingering_close(int fd) {
    shutdown(fd, SHUT_WR);
    char sink[4096];
    struct timeval tv = { 0, 200000 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    for (int i = 0; i < 64 && recv(fd, sink, sizeof sink, 0) > 0; i++) {
    }
    close(fd);
}

static void log_access(connection *conn, gw_handler *handler) {
    uint16_t code = 0;
    uint64_t bytes = 0;
    gw_handler_last_response(handler, &code, &bytes);
    char when[64];
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    strftime(when, sizeof when, "%d/%b/%Y %H:%M:%S", &tm);
    /* The request line came from the client: escape anything unprintable. */
    char line[4 * sizeof conn->request_line];
    size_t o = 0;
    for (const char *c = conn->request_line; *c != '\0' && o + 5 < sizeof line; c++) {
        unsigned char u = (unsigned char)*c;
        if (u < 0x20 || u >= 0x7f || u == '\\' || u == '"') {
            o += (size_t)snprintf(line + o, sizeof line - o, "\\x%02x", u);
        } else {
            line[o++] = (char)u;
        }
    }
    line[o] = '\0';
    if (code == 0) {
        fprintf(stderr, "%s - - [%s] \"%s\" - -\n", conn->client_ip, when, line);
    } else {
        fprintf(stderr, "%s - - [%s] \"%s\" %u %llu\n", conn->client_ip, when, line, code,
                (unsigned long long)bytes);
    }
    fflush(stderr);
}

static void serve(int client, struct sockaddr_in *peer, unsigned server_port, gw_handler *handler,
                  connection *conn) {
    /* Reset the fields a previous connection set; the buffers are overwritten as they fill. */
    conn->head_len = 0;
    conn->body_start = 0;
    conn->body_pos = 0;
    conn->header_count = 0;
    conn->request_line[0] = '\0';
    conn->fd = client;
    conn->server_port = server_port;
    conn->client_port = ntohs(peer->sin_port);
    inet_ntop(AF_INET, &peer->sin_addr, conn->client_ip, sizeof conn->client_ip);
    struct timeval tv = { 10, 0 };
    setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);

    int error = read_request(conn);
    if (error > 0) {
        send_error(conn, error, error_reason(error));
    } else if (error == 0) {
        gw_handler_set_userdata(handler, conn);
        gw_status st = gw_handler_run(handler, demo_app, NULL);
        if (st != GW_STATUS_OK && st != GW_STATUS_CLIENT_GONE) {
            fprintf(stderr, "demo_server: %s: %s\n", gw_status_str(st), gw_last_error_message());
        }
        log_access(conn, handler);
    }
    lingering_close(client);
}

int main(int argc, char **argv) {
    long port = argc > 1 ? strtol(argv[1], NULL, 10) : 8000;
    long max_requests = argc > 2 ? strtol(argv[2], NULL, 10) : 0;
    if (port < 0 || port > 65535 || max_requests < 0) {
        fprintf(stderr, "usage: %s [PORT [MAX_REQUESTS]]\n", argv[0]);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);

    int listener = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t addr_len = sizeof addr;
    if (listener < 0 || bind(listener, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(listener, 16) != 0 ||
        getsockname(listener, (struct sockaddr *)&addr, &addr_len) != 0) {
        perror("demo_server");
        return 1;
    }
    unsigned bound_port = ntohs(addr.sin_port);

    gw_handler_hooks hooks = {
        .size = sizeof(gw_handler_hooks),
        .userdata = NULL,
        .write = conn_write,
        .flush = NULL,
        .read_stdin = conn_read,
        .write_stderr = log_write,
        .flush_stderr = log_flush,
        .add_cgi_vars = conn_add_cgi_vars,
    };
    gw_handler *handler = NULL;
    if (gw_handler_new(&hooks, &handler) != GW_STATUS_OK ||
        gw_handler_set_server_software(handler, SERVER_SOFTWARE, strlen(SERVER_SOFTWARE)) != GW_STATUS_OK ||
        gw_handler_set_multithread(handler, false) != GW_STATUS_OK ||
        gw_handler_set_multiprocess(handler, false) != GW_STATUS_OK) {
        fprintf(stderr, "demo_server: %s\n", gw_last_error_message());
        return 1;
    }
    printf("Serving HTTP on 127.0.0.1 port %u ...\n", bound_port);
    fflush(stdout);

    connection *conn = malloc(sizeof *conn);
    if (conn == NULL) return 1;
    for (long served = 0; max_requests == 0 || served < max_requests; served++) {
        struct sockaddr_in peer;
        socklen_t peer_len = sizeof peer;
        int client = accept(listener, (struct sockaddr *)&peer, &peer_len);
        if (client < 0) {
            if (errno == EINTR) continue;
            perror("demo_server: accept");
            break;
        }
        serve(client, &peer, bound_port, handler, conn);
    }
    free(conn);
    gw_handler_free(handler);
    close(listener);
    return 0;
}
