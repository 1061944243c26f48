/* mhd_host: gateway behind libmicrohttpd (MHD), through the structured-host hooks.
 *
 *   mhd_host [PORT [SECONDS]]
 *
 * Serves a small application on 127.0.0.1:PORT (8000 by default; 0 picks a free port and
 * prints it) until SIGTERM or SIGINT, or for SECONDS when given.
 *
 * Who does what:
 *  - MHD speaks HTTP: it parses requests (de-chunking uploads, answering
 *    `Expect: 100-continue`), writes the status line, adds Content-Length or chunks a body of
 *    unknown length (HTTP/1.1) or closes after it (HTTP/1.0), sends no body for HEAD and
 *    keeps connections alive.
 *  - gateway runs the application: builds the environ from the CGI variables this host gives
 *    it, validates the status and headers, decides the framing (HEAD, 204, 304, a computed
 *    Content-Length, the app's own enforced), turns failures into the error page and hands
 *    the head over as data (send_head), the body bytes unframed (write) and its end
 *    (end_body).
 *
 * Threads: MHD runs a thread per connection (MHD_USE_THREAD_PER_CONNECTION). Once a request
 * is in, its application runs on a worker thread of its own, so that a streamed body goes
 * out while the application writes it: the worker's write hook pushes bytes into a small
 * bounded buffer and blocks while it is full; MHD's content reader, on the connection's
 * thread, pulls them out. Nothing holds more than BUFFER_SIZE bytes of a response body.
 *
 * What MHD 0.9.75 (Debian 12) cannot do, or does wrong:
 *  - a reason phrase of the application's: MHD_queue_response takes only the status code
 *    and writes MHD's own phrase for it (`299 Custom Reason` goes out as `HTTP/1.1 299
 *    Non-Standard Status`). No flag, option or function of MHD's changes that; the host
 *    logs the application's phrase instead.
 *  - interim (1xx) responses other than its own `100 Continue`: send_interim stays NULL, so
 *    gw_request_send_interim (103 Early Hints) is skipped by the library.
 *  - a HEAD response without a length, chunked: MHD 0.9.75 sends the last chunk after it;
 *    this host makes such a response unchunked instead (see hook_send_head).
 *  - a header with an empty value: MHD_add_response_header refuses it, so such a response
 *    cannot be sent; send_head fails, the library logs it and the connection is closed.
 *
 * Build: cc -std=c99 -D_POSIX_C_SOURCE=200809L -Iinclude c-examples/mhd_host.c \
 *            target/release/libgateway.a -lmicrohttpd -lpthread -ldl -lm -lrt -lutil
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "gateway.h"

#define SERVER_SOFTWARE "gateway-mhd/" GW_VERSION
#define MAX_UPLOAD (1024 * 1024) /* larger request bodies get 413 */
#define BUFFER_SIZE 16384        /* response bytes in flight between the two threads */

/* One request, shared by MHD's connection thread and the application's worker thread. */
typedef struct exchange {
    /* The request: set on the connection thread before the worker starts. */
    struct MHD_Connection *conn;
    char *raw_uri; /* as the client sent it: QUERY_STRING is its part after '?' */
    const char *method, *path, *version; /* MHD's, valid until the request completes */
    bool seen;                           /* the access handler was called once */
    bool has_body;                       /* Content-Length or Transfer-Encoding */
    bool too_large;                      /* the body is over MAX_UPLOAD: 413 */
    char *body;                          /* the request body, whole (at most MAX_UPLOAD) */
    size_t body_len, body_read;

    /* The response: the two threads meet here, under `lock`. */
    pthread_mutex_t lock;
    pthread_cond_t changed;
    pthread_t worker;
    bool worker_started;
    struct MHD_Response *response; /* made by send_head, queued by the connection thread */
    unsigned status_code;
    char reason[64];              /* the application's phrase, for the log */
    bool run_done;                /* gw_handler_run returned */
    bool body_done, complete;     /* end_body was called (or the run ended without it) */
    bool client_gone;             /* MHD is done with the request: writes fail */
    char buf[BUFFER_SIZE];        /* body bytes written, not yet read by MHD */
    size_t buf_len;
} exchange;

/* ================= the gateway side: hooks called on the worker thread ================= */

/* Sets an environ variable from NUL-terminated strings. */
static gw_status set_var(gw_environ *env, const char *name, const char *value) {
    return gw_environ_set(env, name, strlen(name), value, strlen(value));
}

/* The variable for one request header. */
static gw_status add_header_var(gw_environ *env, const char *key, const char *value) {
    /* Handled by MHD (the application must not act on them again), CONTENT_LENGTH, or
     * dangerous (Proxy: httpoxy). */
    static const char *const skipped[] = { "Expect", "Transfer-Encoding", "Content-Length", "Proxy" };
    for (size_t i = 0; i < sizeof skipped / sizeof skipped[0]; i++)
        if (strcasecmp(key, skipped[i]) == 0) return GW_STATUS_OK;
    if (strcasecmp(key, "Content-Type") == 0) return set_var(env, "CONTENT_TYPE", value);
    /* `X-Foo` becomes HTTP_X_FOO; a name holding '_' is dropped, so X_Foo cannot pose as it. */
    char name[256] = "HTTP_";
    size_t len = strlen(key);
    if (len == 0 || len > sizeof name - 6 || strchr(key, '_') != NULL) return GW_STATUS_OK;
    for (size_t i = 0; i < len; i++) {
        char c = key[i] == '-' ? '_' : key[i];
        name[5 + i] = c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A') : c;
    }
    name[5 + len] = '\0';
    /* A repeated header: the values joined with ", ". */
    const char *old = NULL;
    size_t old_len = 0, value_len = strlen(value);
    if (gw_environ_get(env, name, 5 + len, &old, &old_len) != GW_STATUS_OK)
        return set_var(env, name, value);
    char *joined = malloc(old_len + 2 + value_len);
    if (joined == NULL) return GW_STATUS_TOO_LARGE;
    memcpy(joined, old, old_len);
    memcpy(joined + old_len, ", ", 2);
    memcpy(joined + old_len + 2, value, value_len);
    gw_status st = gw_environ_set(env, name, 5 + len, joined, old_len + 2 + value_len);
    free(joined);
    return st;
}

typedef struct header_walk {
    gw_environ *env;
    gw_status st;
} header_walk;

static enum MHD_Result on_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                 const char *value) {
    header_walk *walk = cls;
    (void)kind;
    walk->st = add_header_var(walk->env, key, value);
    return walk->st == GW_STATUS_OK ? MHD_YES : MHD_NO;
}

/* The CGI variables. The connection thread waits in the access handler until the head
 * arrives, so reading the MHD connection from this thread is safe here. */
static int32_t hook_add_cgi_vars(void *userdata, gw_environ *env) {
    exchange *ex = userdata;
    const char *query = strchr(ex->raw_uri, '?');
    char addr[INET6_ADDRSTRLEN] = "";
    char port[8], length[24];
    const struct sockaddr *client =
        MHD_get_connection_info(ex->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS)->client_addr;
    if (client->sa_family == AF_INET) /* the daemon listens on 127.0.0.1 only */
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)client)->sin_addr, addr,
                  sizeof addr);
    struct MHD_Daemon *daemon = MHD_get_connection_info(ex->conn, MHD_CONNECTION_INFO_DAEMON)->daemon;
    snprintf(port, sizeof port, "%u", MHD_get_daemon_info(daemon, MHD_DAEMON_INFO_BIND_PORT)->port);
    snprintf(length, sizeof length, "%zu", ex->body_len);
    gw_status st = set_var(env, "REQUEST_METHOD", ex->method);
    if (st == GW_STATUS_OK) st = set_var(env, "SCRIPT_NAME", "");
    if (st == GW_STATUS_OK) st = set_var(env, "PATH_INFO", ex->path); /* MHD percent-decoded it */
    if (st == GW_STATUS_OK) st = set_var(env, "QUERY_STRING", query != NULL ? query + 1 : "");
    if (st == GW_STATUS_OK) st = set_var(env, "SERVER_NAME", "127.0.0.1");
    if (st == GW_STATUS_OK) st = set_var(env, "SERVER_PORT", port);
    if (st == GW_STATUS_OK) st = set_var(env, "SERVER_PROTOCOL", ex->version);
    if (st == GW_STATUS_OK) st = set_var(env, "REMOTE_ADDR", addr);
    /* The body as this host holds it: MHD de-chunked a chunked upload. */
    if (st == GW_STATUS_OK && ex->has_body) st = set_var(env, "CONTENT_LENGTH", length);
    header_walk walk = { env, st };
    if (st == GW_STATUS_OK) MHD_get_connection_values(ex->conn, MHD_HEADER_KIND, on_header, &walk);
    return walk.st;
}

/* wsgi.input: the buffered request body. The library never asks past CONTENT_LENGTH. */
static int hook_read_stdin(void *userdata, void *buf, size_t len, size_t *out_read) {
    exchange *ex = userdata;
    size_t n = ex->body_len - ex->body_read < len ? ex->body_len - ex->body_read : len;
    if (n > 0) memcpy(buf, ex->body + ex->body_read, n);
    ex->body_read += n;
    *out_read = n;
    return 0;
}

static int hook_write_stderr(void *userdata, const void *data, size_t len, size_t *out_written) {
    (void)userdata;
    ssize_t n = write(STDERR_FILENO, data, len);
    if (n < 0) return errno;
    *out_written = (size_t)n;
    return 0;
}

static ssize_t read_body(void *cls, uint64_t pos, char *out, size_t max);

/* The head, as data: validated by the library, Date and Server included, never
 * Content-Length (`content_length` says it) nor a hop-by-hop header. It becomes an MHD
 * response that pulls its body from this exchange; the connection thread queues it. */
static int hook_send_head(void *userdata, const gw_response_head *head) {
    exchange *ex = userdata;
    uint64_t size; /* MHD writes Content-Length from it, or chunks when it is unknown */
    if (head->framing == GW_BODY_FRAMING_LENGTH) size = head->content_length;
    else if (head->framing == GW_BODY_FRAMING_STREAM) size = MHD_SIZE_UNKNOWN;
    /* No body (HEAD, 204, 304): MHD sends none for these, but its headers follow the size,
     * so HEAD gets the length a GET would have, when it is known. */
    else if (head->has_content_length) size = head->content_length;
    else size = strcmp(ex->method, "HEAD") == 0 ? MHD_SIZE_UNKNOWN : 0;
    struct MHD_Response *response =
        MHD_create_response_from_callback(size, BUFFER_SIZE, read_body, ex, NULL);
    if (response == NULL) return ENOMEM;
    /* MHD 0.9.75 ends a chunked HEAD response with a stray `0\r\n\r\n`, which the client
     * takes for the start of the next response. Without chunking (and then closing the
     * connection, which MHD does in this mode) nothing follows the head. */
    if (size == MHD_SIZE_UNKNOWN && head->framing == GW_BODY_FRAMING_NONE)
        MHD_set_response_options(response, MHD_RF_HTTP_1_0_COMPATIBLE_STRICT, MHD_RO_END);
    /* Every header, in order. The library's Date comes first; MHD adds none of its own to a
     * response that has one, so exactly one goes out. */
    for (size_t i = 0; i < head->header_count; i++) {
        const gw_header *h = &head->headers[i];
        char *name = strndup(h->name, h->name_len), *value = strndup(h->value, h->value_len);
        enum MHD_Result ok = MHD_NO;
        if (name != NULL && value != NULL) ok = MHD_add_response_header(response, name, value);
        free(name);
        free(value);
        if (ok != MHD_YES) { /* MHD refuses an empty value (see the top of the file) */
            MHD_destroy_response(response);
            return EINVAL;
        }
    }
    pthread_mutex_lock(&ex->lock);
    ex->response = response;
    ex->status_code = head->status_code;
    snprintf(ex->reason, sizeof ex->reason, "%.*s", (int)head->reason_len, head->reason);
    pthread_cond_broadcast(&ex->changed);
    pthread_mutex_unlock(&ex->lock);
    return 0;
}

/* Body bytes, unframed: into the buffer, waiting while it is full. A short write is fine:
 * the library calls again with the rest. */
static int hook_write(void *userdata, const void *data, size_t len, size_t *out_written) {
    exchange *ex = userdata;
    pthread_mutex_lock(&ex->lock);
    while (ex->buf_len == BUFFER_SIZE && !ex->client_gone) pthread_cond_wait(&ex->changed, &ex->lock);
    size_t n = BUFFER_SIZE - ex->buf_len < len ? BUFFER_SIZE - ex->buf_len : len;
    if (!ex->client_gone) {
        memcpy(ex->buf + ex->buf_len, data, n);
        ex->buf_len += n;
        pthread_cond_broadcast(&ex->changed);
    }
    bool gone = ex->client_gone;
    pthread_mutex_unlock(&ex->lock);
    if (gone) return EPIPE; /* the library ends the run quietly: GW_STATUS_CLIENT_GONE */
    *out_written = n;
    return 0;
}

static int hook_end_body(void *userdata, bool complete) {
    exchange *ex = userdata;
    pthread_mutex_lock(&ex->lock);
    ex->body_done = true;
    ex->complete = complete;
    pthread_cond_broadcast(&ex->changed);
    pthread_mutex_unlock(&ex->lock);
    return 0;
}

/* ================= the MHD side: called on the connection's thread ================= */

/* MHD's content reader: the next body bytes, blocking until the worker wrote some (allowed
 * in thread-per-connection mode). A body cut short (end_body(false), or a run that ended
 * without end_body) is an error, so MHD closes the connection instead of ending the chunked
 * body or pretending a Content-Length was met. */
static ssize_t read_body(void *cls, uint64_t pos, char *out, size_t max) {
    exchange *ex = cls;
    (void)pos;
    pthread_mutex_lock(&ex->lock);
    while (ex->buf_len == 0 && !ex->body_done) pthread_cond_wait(&ex->changed, &ex->lock);
    ssize_t n;
    if (ex->buf_len > 0) {
        size_t take = ex->buf_len < max ? ex->buf_len : max;
        memcpy(out, ex->buf, take);
        memmove(ex->buf, ex->buf + take, ex->buf_len - take);
        ex->buf_len -= take;
        n = (ssize_t)take;
        pthread_cond_broadcast(&ex->changed);
    } else {
        n = ex->complete ? MHD_CONTENT_READER_END_OF_STREAM : MHD_CONTENT_READER_END_WITH_ERROR;
    }
    pthread_mutex_unlock(&ex->lock);
    return n;
}

static gw_status app(void *userdata, gw_request *req);

/* The worker: one handler per request, run once, then an access-log line. */
static void *run_app(void *arg) {
    exchange *ex = arg;
    gw_handler_hooks hooks = {
        .size = sizeof(gw_handler_hooks), /* what GW_HANDLER_HOOKS_INIT sets: the ABI can grow */
        .userdata = ex,
        .write = hook_write,
        .read_stdin = hook_read_stdin,
        .write_stderr = hook_write_stderr,
        .add_cgi_vars = hook_add_cgi_vars,
        .send_head = hook_send_head, /* set: the library writes no status line, headers or chunks */
        .send_interim = NULL,        /* MHD cannot send 1xx: interim responses are skipped */
        .end_body = hook_end_body,
    };
    gw_handler *handler = NULL;
    gw_status st = gw_handler_new(&hooks, &handler);
    uint16_t code = 0;
    uint64_t bytes = 0;
    if (st == GW_STATUS_OK) {
        /* http_version stays "1.0": it shapes only what the library writes as bytes (status
         * line, chunks, its own `100 Continue`), and here MHD writes all of that. */
        gw_handler_set_server_software(handler, SERVER_SOFTWARE, strlen(SERVER_SOFTWARE));
        st = gw_handler_run(handler, app, NULL);
        gw_handler_last_response(handler, &code, &bytes);
        gw_handler_free(handler);
    }
    pthread_mutex_lock(&ex->lock);
    fprintf(stderr, "%s %s %s -> %u %s, %llu body bytes: %s\n", ex->method, ex->raw_uri, ex->version,
            (unsigned)code, ex->reason, (unsigned long long)bytes, gw_status_str(st));
    ex->run_done = true;
    ex->body_done = true; /* without end_body(true), the body is not complete */
    pthread_cond_broadcast(&ex->changed);
    pthread_mutex_unlock(&ex->lock);
    return NULL;
}

static enum MHD_Result answer_413(struct MHD_Connection *conn) {
    static const char msg[] = "Request body too large\n";
    struct MHD_Response *r =
        MHD_create_response_from_buffer(sizeof msg - 1, (void *)msg, MHD_RESPMEM_PERSISTENT);
    enum MHD_Result ok = MHD_queue_response(conn, MHD_HTTP_CONTENT_TOO_LARGE, r);
    MHD_destroy_response(r);
    return ok;
}

/* MHD's access handler, called several times per request: once the headers are in, once
 * per piece of the upload, and once more at its end. */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls) {
    exchange *ex = *req_cls; /* made by on_uri */
    (void)cls;
    if (ex == NULL) return MHD_NO; /* out of memory: close */
    if (!ex->seen) {
        ex->seen = true;
        ex->conn = conn;
        ex->method = method;
        ex->path = url;
        ex->version = version;
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
        const char *te = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Transfer-Encoding");
        ex->has_body = cl != NULL || te != NULL;
        /* Answered now, MHD sends no `100 Continue` and reads no body. */
        if (cl != NULL && strtoull(cl, NULL, 10) > MAX_UPLOAD) return answer_413(conn);
        return MHD_YES;
    }
    if (*upload_data_size > 0) { /* a piece of the body: keep it */
        /* Too much: MHD 0.9.75 cannot answer in the middle of an upload (queueing a response
         * here fails), so the rest is read and dropped, and the 413 goes out at the end. */
        ex->too_large = ex->too_large || ex->body_len + *upload_data_size > MAX_UPLOAD;
        if (ex->too_large) {
            *upload_data_size = 0;
            return MHD_YES;
        }
        char *grown = realloc(ex->body, ex->body_len + *upload_data_size);
        if (grown == NULL) return MHD_NO;
        ex->body = grown;
        memcpy(ex->body + ex->body_len, upload_data, *upload_data_size);
        ex->body_len += *upload_data_size;
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (ex->too_large) return answer_413(conn);
    /* The whole request is in: start the application and wait for its head. */
    if (pthread_create(&ex->worker, NULL, run_app, ex) != 0) return MHD_NO;
    ex->worker_started = true;
    pthread_mutex_lock(&ex->lock);
    while (ex->response == NULL && !ex->run_done) pthread_cond_wait(&ex->changed, &ex->lock);
    struct MHD_Response *response = ex->response;
    ex->response = NULL;
    unsigned code = ex->status_code;
    pthread_mutex_unlock(&ex->lock);
    if (response == NULL) return MHD_NO; /* no head (the client left): close the connection */
    /* The status code only: MHD writes its own reason phrase (see the top of the file). */
    enum MHD_Result ok = MHD_queue_response(conn, code, response);
    MHD_destroy_response(response); /* MHD holds its own reference while sending */
    return ok;
}

/* MHD_OPTION_URI_LOG_CALLBACK: called with the request target as sent, before MHD splits
 * and decodes it; its result becomes the request's *req_cls. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn) {
    (void)cls;
    (void)conn;
    exchange *ex = calloc(1, sizeof *ex);
    if (ex == NULL) return NULL;
    ex->raw_uri = strdup(uri);
    pthread_mutex_init(&ex->lock, NULL);
    pthread_cond_init(&ex->changed, NULL);
    return ex;
}

/* MHD_OPTION_NOTIFY_COMPLETED: MHD is done with the request (sent, failed, or the client
 * left). A worker still writing is told the client is gone, and awaited. */
static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode toe) {
    exchange *ex = *req_cls;
    (void)cls;
    (void)conn;
    (void)toe;
    if (ex == NULL) return;
    pthread_mutex_lock(&ex->lock);
    ex->client_gone = true;
    pthread_cond_broadcast(&ex->changed);
    pthread_mutex_unlock(&ex->lock);
    if (ex->worker_started) pthread_join(ex->worker, NULL);
    if (ex->response != NULL) MHD_destroy_response(ex->response); /* a head never queued */
    pthread_cond_destroy(&ex->changed);
    pthread_mutex_destroy(&ex->lock);
    free(ex->body);
    free(ex->raw_uri);
    free(ex);
    *req_cls = NULL;
}

/* ================= the application ================= */

static gw_status respond(gw_request *req, const char *status, const char *body, size_t len) {
    static const gw_header text[] = { { "Content-Type", 12, "text/plain", 10 } };
    gw_status st = gw_request_start_response(req, status, strlen(status), text, 1, 0);
    return st == GW_STATUS_OK ? gw_request_set_body_bytes(req, body, len) : st;
}

static gw_status app(void *userdata, gw_request *req) {
    (void)userdata;
    gw_environ *env = NULL;
    const char *path = "";
    size_t path_len = 0;
    gw_status st = gw_request_environ(req, &env);
    if (st != GW_STATUS_OK) return st;
    gw_environ_get(env, "PATH_INFO", 9, &path, &path_len);

    if (strcmp(path, "/hello") == 0) return respond(req, "200 OK", "Hello, world!", 13);
    if (strcmp(path, "/reason") == 0) return respond(req, "299 Custom Reason", "custom\n", 7);
    if (strcmp(path, "/fail") == 0) return gw_request_fail(req, "/fail always fails", 18);
    if (strcmp(path, "/hints") == 0) {
        static const gw_header link[] = { { "Link", 4, "</style.css>; rel=preload; as=style", 35 } };
        /* Skipped by the library: this host has no send_interim. */
        st = gw_request_send_interim(req, "103 Early Hints", 15, link, 1);
        return st == GW_STATUS_OK ? respond(req, "200 OK", "hints\n", 6) : st;
    }
    if (strcmp(path, "/echo") == 0) { /* the request body back */
        const char *data = NULL;
        size_t len = 0;
        st = gw_request_input_read_all(req, &data, &len);
        return st == GW_STATUS_OK ? respond(req, "200 OK", data, len) : st;
    }
    if (strncmp(path, "/environ", 8) == 0) { /* the CGI variables, one per line */
        char text[8192];
        size_t len = 0, cursor = 0, name_len, value_len;
        const char *name, *value;
        while (gw_environ_next(env, &cursor, &name, &name_len, &value, &value_len) == GW_STATUS_OK) {
            int n = snprintf(text + len, sizeof text - len, "%.*s = %.*s\n", (int)name_len, name,
                             (int)value_len, value);
            if (n < 0 || (size_t)n >= sizeof text - len) break;
            len += (size_t)n;
        }
        return respond(req, "200 OK", text, len);
    }
    if (strcmp(path, "/cut") == 0) { /* fails once its body started: the client must see it cut */
        st = gw_request_start_response(req, "200 OK", 6, NULL, 0, 0);
        if (st == GW_STATUS_OK) st = gw_request_write(req, "partial\n", 8);
        return st == GW_STATUS_OK ? gw_request_fail(req, "/cut fails after its first block", 32) : st;
    }
    /* No Content-Length below: the length is unknown, so the head says STREAM and MHD chunks
     * the body (HTTP/1.1) as the application writes it. */
    if (strcmp(path, "/stream") == 0) { /* 200 blocks of 1 KiB: 1023 times a letter, a newline */
        char block[1024];
        st = gw_request_start_response(req, "200 OK", 6, NULL, 0, 0);
        for (int i = 0; st == GW_STATUS_OK && i < 200; i++) {
            memset(block, 'a' + i % 26, sizeof block - 1);
            block[sizeof block - 1] = '\n';
            st = gw_request_write(req, block, sizeof block);
        }
        return st;
    }
    if (strcmp(path, "/slow") == 0) { /* five lines, half a second apart */
        char line[16];
        st = gw_request_start_response(req, "200 OK", 6, NULL, 0, 0);
        for (int i = 0; st == GW_STATUS_OK && i < 5; i++) {
            if (i > 0) nanosleep(&(struct timespec){ 0, 500000000L }, NULL);
            st = gw_request_write(req, line, (size_t)snprintf(line, sizeof line, "tick %d\n", i));
        }
        return st;
    }
    return respond(req, "404 Not Found", "Not found\n", 10);
}

/* ================= main ================= */

int main(int argc, char **argv) {
    unsigned port = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 10) : 8000;
    long seconds = argc > 2 ? strtol(argv[2], NULL, 10) : 0;

    /* SIGTERM and SIGINT are waited for below; blocked here, before MHD starts its threads,
     * so that none of them gets the signal instead. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);

    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK); /* loopback only */
    struct MHD_Daemon *daemon = MHD_start_daemon(
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG,
        (uint16_t)port, NULL, NULL, on_request, NULL,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_URI_LOG_CALLBACK, on_uri, NULL,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
        MHD_OPTION_CONNECTION_TIMEOUT, 30u,
        MHD_OPTION_END);
    if (daemon == NULL) {
        fprintf(stderr, "mhd_host: cannot listen on 127.0.0.1 port %u\n", port);
        return 1;
    }
    printf("Serving HTTP on 127.0.0.1 port %u (libmicrohttpd %s, gateway %s)\n",
           MHD_get_daemon_info(daemon, MHD_DAEMON_INFO_BIND_PORT)->port, MHD_get_version(),
           gw_version());
    fflush(stdout);

    struct timespec limit = { seconds, 0 };
    int sig = seconds > 0 ? sigtimedwait(&stop, NULL, &limit) : sigwaitinfo(&stop, NULL);
    fprintf(stderr, "mhd_host: %s, stopping\n", sig > 0 ? "signal" : "time limit");
    MHD_stop_daemon(daemon); /* waits for the connections' threads */
    return 0;
}
