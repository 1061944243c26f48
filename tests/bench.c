/* bench: what one request costs through a reused handler, measured side by side with a
 * hand-written C baseline that copies the same CGI variables and puts the same bytes on the
 * same write hook, and how many heap allocations a warmed-up handler makes per request (it
 * should make none).
 *
 *   bench [ITERATIONS]        ns/request for each case, the ratios, and the scaling sweep
 *   bench --case NAME --requests N [--vars V] [--headers H] [--body BYTES]
 *                             runs N requests of one case and nothing else (what
 *                             tests/bench_instructions.sh counts under callgrind); NAME is
 *                             baseline-cgi, gateway-cgi, baseline-origin, gateway-origin, or
 *                             gateway-head (the variables parsed from a request head with
 *                             gw_environ_set_from_request_head instead; no baseline)
 *   bench --check-allocations exits non-zero when a warmed-up request allocates
 *
 * The request (the issue's): 15 CGI variables from the host (one gw_environ_set_many), the
 * app reads PATH_INFO, sets "200 OK" with 2 headers and a 13-byte body; a reused handler,
 * CGI or origin mode. The baseline does by hand what such a server would: copies the 15
 * names and values (with NULs) into an arena and an index, finds PATH_INFO there, and
 * writes the same head and body (origin mode: the same Date, cached per second, and
 * Server) in one write.
 *
 * The machine is shared and noisy: the cases run interleaved in 21 short rounds and the
 * median round is reported, so the ratios compare runs made under the same conditions; the
 * instruction counts (tests/bench_instructions.sh) do not depend on the load at all. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gateway.h"

/* ---- allocation counting: glibc's malloc family, interposed ---- */
extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *ptr, size_t size);
extern void __libc_free(void *ptr);

static int counting;
static long allocations;

void *malloc(size_t size) {
    if (counting) allocations++;
    return __libc_malloc(size);
}
void *calloc(size_t n, size_t size) {
    if (counting) allocations++;
    return __libc_calloc(n, size);
}
void *realloc(void *ptr, size_t size) {
    if (counting) allocations++;
    return __libc_realloc(ptr, size);
}
void free(void *ptr) {
    __libc_free(ptr);
}

/* ---- a host whose client swallows bytes ---- */
typedef struct sink {
    uint64_t bytes;
} sink;

static int sink_write(void *userdata, const void *data, size_t len, size_t *out_written) {
    sink *s = userdata;
    (void)data;
    s->bytes += len;
    *out_written = len;
    return 0;
}

/* ---- the request: variables, headers, body (the sweep changes their number and size) ---- */
enum { MAX_VARS = 200, MAX_HEADERS = 100, MAX_BODY = 64 * 1024 };

static const char *const BASE_VARS[][2] = {
    { "REQUEST_METHOD", "GET" },          { "SCRIPT_NAME", "" },
    { "PATH_INFO", "/hello" },            { "QUERY_STRING", "a=1&b=2" },
    { "SERVER_NAME", "127.0.0.1" },       { "SERVER_PORT", "8000" },
    { "SERVER_PROTOCOL", "HTTP/1.1" },    { "REMOTE_ADDR", "127.0.0.1" },
    { "REMOTE_PORT", "54321" },           { "GATEWAY_INTERFACE", "CGI/1.1" },
    { "REQUEST_URI", "/hello?a=1&b=2" }, { "HTTP_HOST", "localhost:8000" },
    { "HTTP_USER_AGENT", "bench/1" },     { "HTTP_ACCEPT", "*/*" },
    { "HTTP_ACCEPT_ENCODING", "gzip" },
};
enum { BASE_VAR_COUNT = sizeof BASE_VARS / sizeof BASE_VARS[0] };

static char var_names[MAX_VARS][32], var_values[MAX_VARS][32];
static char header_names[MAX_HEADERS][32];
static gw_header all_vars[MAX_VARS], all_headers[MAX_HEADERS];
static char body[MAX_BODY];

/* What the current case uses. */
static size_t n_vars = BASE_VAR_COUNT, n_headers = 2, body_len = 13;

static void make_request_data(void) {
    for (size_t i = 0; i < MAX_VARS; i++) {
        if (i < BASE_VAR_COUNT) {
            snprintf(var_names[i], sizeof var_names[i], "%s", BASE_VARS[i][0]);
            snprintf(var_values[i], sizeof var_values[i], "%s", BASE_VARS[i][1]);
        } else {
            snprintf(var_names[i], sizeof var_names[i], "HTTP_X_BENCH_FIELD_%03zu", i);
            snprintf(var_values[i], sizeof var_values[i], "value number %zu", i);
        }
        all_vars[i] = (gw_header){ var_names[i], strlen(var_names[i]), var_values[i], strlen(var_values[i]) };
    }
    all_headers[0] = (gw_header){ "Content-Type", 12, "text/plain", 10 };
    for (size_t i = 1; i < MAX_HEADERS; i++) {
        snprintf(header_names[i], sizeof header_names[i], "X-Bench-%03zu", i);
        all_headers[i] = (gw_header){ header_names[i], strlen(header_names[i]), "1", 1 };
    }
    memset(body, 'x', sizeof body);
    memcpy(body, "Hello, world!", 13);
}

static int32_t add_vars(void *userdata, gw_environ *env) {
    (void)userdata;
    return gw_environ_set_many(env, all_vars, n_vars);
}

static gw_status hello_app(void *userdata, gw_request *req) {
    (void)userdata;
    gw_environ *env = NULL;
    const char *path = NULL;
    size_t path_len = 0;
    gw_request_environ(req, &env);
    gw_environ_get(env, "PATH_INFO", 9, &path, &path_len);
    gw_status st = gw_request_start_response(req, "200 OK", 6, all_headers, n_headers, 0);
    if (st != GW_STATUS_OK) return st;
    return gw_request_set_body_bytes(req, body, body_len);
}

/* ---- the baseline: the same work, by hand ---- */
typedef struct base_entry {
    uint32_t name, name_len, value, value_len;
} base_entry;

static struct {
    char arena[MAX_VARS * 80];
    base_entry entries[MAX_VARS];
    size_t count, used;
} base_env;

static char base_out[MAX_BODY + 8192];
static int (*volatile base_write)(void *, const void *, size_t, size_t *) = sink_write;

static void base_copy(const char *bytes, size_t len, uint32_t *start) {
    *start = (uint32_t)base_env.used;
    memcpy(base_env.arena + base_env.used, bytes, len);
    base_env.arena[base_env.used + len] = 0;
    base_env.used += len + 1;
}

static size_t put(size_t n, const char *bytes, size_t len) {
    memcpy(base_out + n, bytes, len);
    return n + len;
}

/* The Date header's value, formatted once a second. */
static const char *base_date(void) {
    static time_t cached = -1;
    static char text[64];
    time_t now = time(NULL);
    if (now != cached) {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(text, sizeof text, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        cached = now;
    }
    return text;
}

static void baseline_request(sink *s, bool origin) {
    base_env.count = 0;
    base_env.used = 0;
    for (size_t i = 0; i < n_vars; i++) {
        base_entry *e = &base_env.entries[base_env.count++];
        e->name_len = (uint32_t)all_vars[i].name_len;
        e->value_len = (uint32_t)all_vars[i].value_len;
        base_copy(all_vars[i].name, all_vars[i].name_len, &e->name);
        base_copy(all_vars[i].value, all_vars[i].value_len, &e->value);
    }
    const char *path = NULL;
    for (size_t i = 0; i < base_env.count && path == NULL; i++) {
        base_entry *e = &base_env.entries[i];
        if (e->name_len == 9 && memcmp(base_env.arena + e->name, "PATH_INFO", 9) == 0) path = base_env.arena + e->value;
    }
    if (path == NULL) abort();
    size_t n = 0;
    if (origin) {
        n = put(n, "HTTP/1.0 200 OK\r\nDate: ", 23);
        n = put(n, base_date(), 29);
        n = put(n, "\r\nServer: bench/1\r\n", 19);
    } else {
        n = put(n, "Status: 200 OK\r\n", 16);
    }
    for (size_t i = 0; i < n_headers; i++) {
        n = put(n, all_headers[i].name, all_headers[i].name_len);
        n = put(n, ": ", 2);
        n = put(n, all_headers[i].value, all_headers[i].value_len);
        n = put(n, "\r\n", 2);
    }
    n += (size_t)snprintf(base_out + n, 64, "Content-Length: %zu\r\n\r\n", body_len);
    n = put(n, body, body_len);
    size_t written = 0;
    base_write(s, base_out, n, &written);
}

/* What tests/host.c does: one gw_environ_set per variable. */
static int32_t add_vars_one_by_one(void *userdata, gw_environ *env) {
    (void)userdata;
    for (size_t i = 0; i < n_vars; i++) {
        gw_status st = gw_environ_set(env, all_vars[i].name, all_vars[i].name_len, all_vars[i].value,
                                      all_vars[i].value_len);
        if (st != GW_STATUS_OK) return st;
    }
    return GW_STATUS_OK;
}

/* The paths the allocation check covers besides hello_app. */
static gw_status miss_app(void *userdata, gw_request *req) {
    (void)userdata;
    gw_environ *env = NULL;
    const char *value = NULL, *name = NULL;
    size_t len = 0, name_len = 0, cursor = 0;
    gw_request_environ(req, &env);
    if (gw_environ_get(env, "HTTP_ABSENT", 11, &value, &len) != GW_STATUS_NOT_FOUND) return GW_STATUS_APP_ERROR;
    while (gw_environ_next(env, &cursor, &name, &name_len, &value, &len) == GW_STATUS_OK) {
    }
    return hello_app(userdata, req);
}

static gw_status fail_app(void *userdata, gw_request *req) {
    (void)userdata;
    return gw_request_fail(req, "the error page's path", 21);
}

static gw_status chunked_app(void *userdata, gw_request *req) {
    (void)userdata;
    gw_status st = gw_request_start_response(req, "200 OK", 6, all_headers, 1, 0);
    if (st == GW_STATUS_OK) st = gw_request_write(req, "Hello, ", 7);
    if (st == GW_STATUS_OK) st = gw_request_write(req, "world!", 6);
    return st;
}

static char post_body[4096];
static size_t post_pos;

static int read_post(void *userdata, void *buf, size_t len, size_t *out_read) {
    (void)userdata;
    size_t left = sizeof post_body - post_pos;
    size_t n = len < left ? len : left;
    memcpy(buf, post_body + post_pos, n);
    post_pos += n;
    *out_read = n;
    return 0;
}

/* Non-blocking mode's hooks as an event-loop host meets them: every other call finds the
 * socket empty (or full, stalling_write below) and says EAGAIN; the others move up to 100
 * bytes. */
static int stalls;

static int stalling_read(void *userdata, void *buf, size_t len, size_t *out_read) {
    if ((stalls ^= 1)) return EAGAIN;
    return read_post(userdata, buf, len < 100 ? len : 100, out_read);
}

static int32_t add_post_vars(void *userdata, gw_environ *env) {
    gw_status st = add_vars(userdata, env);
    if (st == GW_STATUS_OK) st = gw_environ_set(env, "REQUEST_METHOD", 14, "POST", 4);
    if (st == GW_STATUS_OK) st = gw_environ_set(env, "CONTENT_LENGTH", 14, "4096", 4);
    post_pos = 0;
    return st;
}

static gw_status post_app(void *userdata, gw_request *req) {
    const char *data = NULL;
    size_t len = 0;
    gw_status st = gw_request_input_read_all(req, &data, &len);
    if (st != GW_STATUS_OK || len != sizeof post_body) return GW_STATUS_APP_ERROR;
    return hello_app(userdata, req);
}

/* The same body, chunked: two 2 KiB chunks with an extension, the last chunk and a trailer. */
static char chunked_wire[4096 + 64];
static size_t chunked_len, chunked_pos;

static void make_chunked_wire(void) {
    size_t n = 0;
    for (int i = 0; i < 2; i++) {
        n += (size_t)sprintf(chunked_wire + n, "800;i=%d\r\n", i);
        memcpy(chunked_wire + n, post_body + i * 2048, 2048);
        n += 2048;
        n += (size_t)sprintf(chunked_wire + n, "\r\n");
    }
    n += (size_t)sprintf(chunked_wire + n, "0\r\nX-Sum: 1\r\n\r\n");
    chunked_len = n;
}

static int read_chunked(void *userdata, void *buf, size_t len, size_t *out_read) {
    (void)userdata;
    size_t left = chunked_len - chunked_pos;
    size_t n = len < left ? len : left;
    memcpy(buf, chunked_wire + chunked_pos, n);
    chunked_pos += n;
    *out_read = n;
    return 0;
}

static int32_t add_chunked_post_vars(void *userdata, gw_environ *env) {
    gw_status st = add_vars(userdata, env);
    if (st == GW_STATUS_OK) st = gw_environ_set(env, "REQUEST_METHOD", 14, "POST", 4);
    if (st == GW_STATUS_OK) st = gw_environ_set(env, "HTTP_TRANSFER_ENCODING", 22, "chunked", 7);
    chunked_pos = 0;
    return st;
}

/* The CGI variables from a request head (what a real HTTP host does); a refused head also
 * formats the canned error response. */
static const char *bench_head = "GET /app/a/%7Euser/../b?x=1 HTTP/1.1\r\nHost: localhost:8000\r\nUser-Agent: bench/1\r\n"
                                "Accept: */*\r\nCookie: a=1\r\nCookie: b=2\r\nX_Dropped: 1\r\n\r\n";

static int32_t add_head_vars(void *userdata, gw_environ *env) {
    (void)userdata;
    gw_connection_facts facts = GW_CONNECTION_FACTS_INIT;
    facts.remote_addr = "127.0.0.1";
    facts.remote_addr_len = 9;
    facts.server_name = "127.0.0.1";
    facts.server_name_len = 9;
    facts.server_port = 8000;
    facts.script_name = "/app";
    facts.script_name_len = 4;
    size_t consumed = 0;
    bool chunked = false;
    uint16_t code = 0;
    gw_status st = gw_environ_set_from_request_head(env, bench_head, strlen(bench_head), &facts, NULL, &consumed,
                                                    &chunked, &code);
    if (st == GW_STATUS_BAD_REQUEST) {
        char page[GW_ERROR_RESPONSE_MAX_LEN];
        size_t len = 0;
        if (gw_error_response(code, page, sizeof page, &len) != GW_STATUS_OK) return GW_STATUS_IO_ERROR;
    }
    return st;
}

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static gw_handler *make_handler(sink *s, bool origin) {
    gw_handler_hooks hooks = { .size = sizeof(gw_handler_hooks), .userdata = s, .write = sink_write, .add_cgi_vars = add_vars };
    gw_handler *h = NULL;
    if (gw_handler_new(&hooks, &h) != GW_STATUS_OK) exit(2);
    gw_handler_set_origin_server(h, origin);
    gw_handler_set_server_software(h, "bench/1", 7);
    return h;
}

static int compare_doubles(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Requests that did not end as expected while allocations were counted. */
static long failed_runs;
/* gw_handler_resume calls made by run_to_end (the non-blocking paths must pend). */
static long resumes;

/* One request to its end: in non-blocking mode, resumed until it is no longer pending
 * (the stalling hooks below make progress on every other call). */
static gw_status run_to_end(gw_handler *h, gw_application_fn app) {
    gw_status st = gw_handler_run(h, app, NULL);
    for (int i = 0; st == GW_STATUS_PENDING && i < 100000; i++) {
        st = gw_handler_resume(h);
        resumes++;
    }
    return st;
}

static long allocations_per_request(gw_handler *h, gw_application_fn app, long iterations, gw_status expect) {
    for (int i = 0; i < 10; i++) run_to_end(h, app);
    allocations = 0;
    counting = 1;
    for (long i = 0; i < iterations; i++) {
        if (run_to_end(h, app) != expect) failed_runs++;
    }
    counting = 0;
    return allocations;
}

static int stalling_write(void *userdata, const void *data, size_t len, size_t *out_written) {
    if ((stalls ^= 1)) return EAGAIN;
    return sink_write(userdata, data, len < 100 ? len : 100, out_written);
}

/* Every steady-state path: hello in CGI and origin mode, the largest sweep case, variables
 * set one by one, a miss in the environ and its iteration to the end, the error page, a
 * chunked response, a POST body read whole, a chunked POST body read whole and drained, a
 * request head parsed, a refused head answered; in non-blocking mode hello, a response
 * queued behind EAGAIN (also chunked) and a POST body read ahead, each resumed to its end. */
static int check_allocations(sink *s, gw_handler *cgi, gw_handler *origin) {
    gw_handler *http11 = make_handler(s, true);
    gw_handler_set_http_version(http11, "1.1", 3);
    gw_handler_hooks hooks = { .size = sizeof(gw_handler_hooks), .userdata = s, .write = sink_write, .read_stdin = read_post,
                               .add_cgi_vars = add_post_vars };
    gw_handler *post = NULL;
    if (gw_handler_new(&hooks, &post) != GW_STATUS_OK) return 2;
    make_chunked_wire();
    hooks.read_stdin = read_chunked;
    hooks.add_cgi_vars = add_chunked_post_vars;
    gw_handler *chunked_post = NULL;
    if (gw_handler_new(&hooks, &chunked_post) != GW_STATUS_OK) return 2;
    gw_handler_set_http_version(chunked_post, "1.1", 3);
    /* The paths counted below are the good ones: the body decodes whole, the drain keeps the
     * connection. */
    bool keep = false;
    if (gw_handler_run(chunked_post, post_app, NULL) != GW_STATUS_OK) return 2;
    if (gw_handler_run(chunked_post, hello_app, NULL) != GW_STATUS_OK) return 2;
    if (gw_handler_last_keep_alive(chunked_post, &keep) != GW_STATUS_OK || !keep) return 2;
    hooks.read_stdin = NULL;
    hooks.add_cgi_vars = add_head_vars;
    gw_handler *parsed = NULL;
    if (gw_handler_new(&hooks, &parsed) != GW_STATUS_OK) return 2;
    gw_handler_set_http_version(parsed, "1.1", 3);
    hooks.add_cgi_vars = add_vars_one_by_one;
    gw_handler *single = NULL;
    if (gw_handler_new(&hooks, &single) != GW_STATUS_OK) return 2;
    /* Non-blocking mode: a client that takes everything; one whose socket is full on every
     * other write (the response queued, the cycle pending and resumed), also for a chunked
     * response; a POST body read ahead from a socket empty on every other read. */
    gw_handler *nb = make_handler(s, true);
    gw_handler_hooks stalled_hooks = { .size = sizeof(gw_handler_hooks), .userdata = s, .write = stalling_write,
                                       .read_stdin = stalling_read, .add_cgi_vars = add_vars };
    gw_handler *nb_stalled = NULL, *nb_chunked = NULL, *nb_post = NULL;
    if (gw_handler_new(&stalled_hooks, &nb_stalled) != GW_STATUS_OK) return 2;
    if (gw_handler_new(&stalled_hooks, &nb_chunked) != GW_STATUS_OK) return 2;
    stalled_hooks.add_cgi_vars = add_post_vars;
    if (gw_handler_new(&stalled_hooks, &nb_post) != GW_STATUS_OK) return 2;
    gw_handler_set_origin_server(nb_stalled, true);
    gw_handler_set_http_version(nb_chunked, "1.1", 3);
    gw_handler_set_origin_server(nb_chunked, true);
    gw_handler *nb_handlers[] = { nb, nb_stalled, nb_post, nb_chunked };
    for (size_t i = 0; i < sizeof nb_handlers / sizeof nb_handlers[0]; i++) {
        if (gw_handler_set_nonblocking(nb_handlers[i], true) != GW_STATUS_OK) return 2;
    }
    struct { const char *name; gw_handler *h; gw_application_fn app; size_t vars, headers, body; gw_status expect; } paths[] = {
        { "hello, CGI mode", cgi, hello_app, BASE_VAR_COUNT, 2, 13, GW_STATUS_OK },
        { "hello, origin mode", origin, hello_app, BASE_VAR_COUNT, 2, 13, GW_STATUS_OK },
        { "200 variables, 100 headers, 64 KiB body", origin, hello_app, MAX_VARS, MAX_HEADERS, MAX_BODY, GW_STATUS_OK },
        { "variables set one by one (gw_environ_set)", single, hello_app, BASE_VAR_COUNT, 2, 13, GW_STATUS_OK },
        { "environ miss and iteration to the end", origin, miss_app, BASE_VAR_COUNT, 2, 13, GW_STATUS_OK },
        { "the error page", origin, fail_app, BASE_VAR_COUNT, 2, 13, GW_STATUS_APP_ERROR },
        { "a chunked response", http11, chunked_app, BASE_VAR_COUNT, 2, 13, GW_STATUS_OK },
        { "a POST body read whole", post, post_app, BASE_VAR_COUNT, 2, 13, GW_STATUS_OK },
        { "a chunked POST body read whole", chunked_post, post_app, BASE_VAR_COUNT, 2, 13, GW_STATUS_OK },
        { "a chunked POST body drained", chunked_post, hello_app, BASE_VAR_COUNT, 2, 13, GW_STATUS_OK },
        { "a request head parsed in add_cgi_vars", parsed, miss_app, BASE_VAR_COUNT, 2, 13, GW_STATUS_OK },
        { "non-blocking: hello", nb, hello_app, BASE_VAR_COUNT, 2, 13, GW_STATUS_OK },
        { "non-blocking: 64 KiB queued behind EAGAIN", nb_stalled, hello_app, BASE_VAR_COUNT, 2, MAX_BODY, GW_STATUS_OK },
        { "non-blocking: a chunked response queued", nb_chunked, chunked_app, BASE_VAR_COUNT, 2, 13, GW_STATUS_OK },
        { "non-blocking: a POST body read ahead", nb_post, post_app, BASE_VAR_COUNT, 2, 13, GW_STATUS_OK },
    };
    long total = 0;
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        n_vars = paths[i].vars;
        n_headers = paths[i].headers;
        body_len = paths[i].body;
        long failed = failed_runs, resumed = resumes;
        long a = allocations_per_request(paths[i].h, paths[i].app, 1000, paths[i].expect);
        printf("allocations in 1000 warmed-up requests, %-42s %ld\n", paths[i].name, a);
        if (resumes != resumed) printf("  (resumed %ld times)\n", resumes - resumed);
        if (paths[i].h != nb && strncmp(paths[i].name, "non-blocking", 12) == 0 && resumes == resumed) {
            printf("  this path never pended\n");
            failed_runs++;
        }
        if (failed_runs != failed) printf("  of them not as expected: %ld (%s)\n", failed_runs - failed, gw_last_error_message());
        total += a;
    }
    n_vars = BASE_VAR_COUNT;
    n_headers = 2;
    body_len = 13;
    gw_handler_free(single);
    gw_handler_free(http11);
    for (size_t i = 0; i < sizeof nb_handlers / sizeof nb_handlers[0]; i++) gw_handler_free(nb_handlers[i]);
    /* A refused head, as a host meets it: parsed, then answered with the canned response
     * without running the handler. */
    bench_head = "GET /../etc/passwd HTTP/1.1\r\nHost: localhost:8000\r\n\r\n";
    gw_environ *env = NULL;
    if (gw_environ_new(&env) != GW_STATUS_OK) return 2;
    long refused = 0;
    for (int round = 0; round < 2; round++) {
        allocations = 0;
        counting = round;
        for (int i = 0; i < 1000; i++) {
            if (add_head_vars(NULL, env) != GW_STATUS_BAD_REQUEST) return 2;
        }
        counting = 0;
        refused = allocations;
    }
    printf("allocations in 1000 warmed-up requests, %-42s %ld\n", "a refused head and its error response", refused);
    total += refused;
    gw_environ_free(env);
    gw_handler_free(post);
    gw_handler_free(chunked_post);
    gw_handler_free(parsed);
    return total == 0 && failed_runs == 0 ? 0 : 1;
}

/* ---- the cases ---- */
enum { BASELINE_CGI, GATEWAY_CGI, BASELINE_ORIGIN, GATEWAY_ORIGIN, CASES };
static const char *const CASE_NAMES[CASES] = { "baseline-cgi", "gateway-cgi", "baseline-origin", "gateway-origin" };
/* Outside the timings and the ratios (it has no baseline): the CGI variables parsed from a
 * request head in add_cgi_vars (gw_environ_set_from_request_head), for --case only. */
enum { GATEWAY_HEAD = CASES };
static gw_handler *handlers[3]; /* CGI, origin, head */
static sink the_sink;

static void run_case(int c, long iterations) {
    for (long i = 0; i < iterations; i++) {
        if (c == BASELINE_CGI || c == BASELINE_ORIGIN) {
            baseline_request(&the_sink, c == BASELINE_ORIGIN);
        } else if (gw_handler_run(handlers[c == GATEWAY_HEAD ? 2 : c == GATEWAY_ORIGIN], hello_app, NULL) != GW_STATUS_OK) {
            fprintf(stderr, "bench: %s\n", gw_last_error_message());
            exit(1);
        }
    }
}

enum { ROUNDS = 21 };

/* The median over ROUNDS interleaved rounds of each case in `cases`, in ns/request. */
static void measure(const int *cases, int count, long iterations, double *median) {
    double ns[CASES][ROUNDS];
    for (int round = 0; round < ROUNDS; round++) {
        for (int k = 0; k < count; k++) {
            double start = now_ns();
            run_case(cases[k], iterations);
            ns[k][round] = (now_ns() - start) / (double)iterations;
        }
    }
    for (int k = 0; k < count; k++) {
        qsort(ns[k], ROUNDS, sizeof ns[k][0], compare_doubles);
        median[k] = ns[k][ROUNDS / 2];
    }
}

/* The baseline must write the very bytes the gateway writes (the Date may tick between the
 * two: then try again). */
static unsigned char captured[2][MAX_BODY + 8192];
static size_t captured_len[2];
static int capture_slot = -1;

static int capture_write(void *userdata, const void *data, size_t len, size_t *out_written) {
    (void)userdata;
    if (capture_slot >= 0 && captured_len[capture_slot] + len <= sizeof captured[0]) {
        memcpy(captured[capture_slot] + captured_len[capture_slot], data, len);
        captured_len[capture_slot] += len;
    }
    *out_written = len;
    return 0;
}

static bool same_bytes(bool origin) {
    gw_handler_hooks hooks = { .size = sizeof(gw_handler_hooks), .write = capture_write, .add_cgi_vars = add_vars };
    gw_handler *h = NULL;
    if (gw_handler_new(&hooks, &h) != GW_STATUS_OK) exit(2);
    gw_handler_set_origin_server(h, origin);
    gw_handler_set_server_software(h, "bench/1", 7);
    bool same = false;
    for (int attempt = 0; attempt < 3 && !same; attempt++) {
        captured_len[0] = captured_len[1] = 0;
        capture_slot = 0;
        if (gw_handler_run(h, hello_app, NULL) != GW_STATUS_OK) exit(2);
        capture_slot = 1;
        base_write = capture_write;
        baseline_request(NULL, origin);
        base_write = sink_write;
        capture_slot = -1;
        same = captured_len[0] == captured_len[1] && memcmp(captured[0], captured[1], captured_len[0]) == 0;
    }
    gw_handler_free(h);
    if (!same) {
        fprintf(stderr, "bench: the baseline's bytes differ from the gateway's (%s mode):\n%.*s\n---\n%.*s\n",
                origin ? "origin" : "CGI", (int)captured_len[0], (const char *)captured[0], (int)captured_len[1],
                (const char *)captured[1]);
    }
    return same;
}

static void set_shape(size_t vars, size_t headers, size_t body_bytes) {
    n_vars = vars;
    n_headers = headers;
    body_len = body_bytes;
}

/* The sweep: one dimension at a time from the request, CGI mode. */
typedef struct shape {
    const char *dimension;
    size_t vars, headers, body, unit; /* unit: the value that grows */
} shape;

static const shape SWEEP[] = {
    { "variables", 15, 2, 13, 15 },   { "variables", 50, 2, 13, 50 },     { "variables", 100, 2, 13, 100 },
    { "variables", 200, 2, 13, 200 }, { "headers", 15, 1, 13, 1 },        { "headers", 15, 10, 13, 10 },
    { "headers", 15, 50, 13, 50 },    { "headers", 15, 100, 13, 100 },    { "body bytes", 15, 2, 13, 13 },
    { "body bytes", 15, 2, 1024, 1024 }, { "body bytes", 15, 2, 65536, 65536 },
};
enum { SWEEP_COUNT = sizeof SWEEP / sizeof SWEEP[0] };

static int timings(long iterations) {
    if (!same_bytes(false) || !same_bytes(true)) return 1;
    printf("gateway bench: 15 CGI variables (one gw_environ_set_many), 2 headers, 13-byte body, reused handler;\n"
           "the baseline writes the same bytes (checked) after copying the same variables\n");
    int cases[CASES] = { BASELINE_CGI, GATEWAY_CGI, BASELINE_ORIGIN, GATEWAY_ORIGIN };
    double median[CASES];
    set_shape(BASE_VAR_COUNT, 2, 13);
    measure(cases, CASES, iterations, median);
    printf("%ld requests per case and round, %d interleaved rounds, median round:\n", iterations, ROUNDS);
    for (int c = 0; c < CASES; c++) printf("  %-16s %8.1f ns/request\n", CASE_NAMES[c], median[c]);
    printf("ratios: CGI mode %.2fx its baseline, origin mode %.2fx its baseline\n\n", median[1] / median[0],
           median[3] / median[2]);

    printf("sweep (CGI mode, median of %d interleaved rounds; per unit: the gateway's extra ns over the\n"
           "row above, divided by the extra units):\n", ROUNDS);
    printf("  %-11s %6s %8s %8s %11s %11s %7s %10s\n", "dimension", "units", "vars", "headers", "baseline ns",
           "gateway ns", "ratio", "ns/unit");
    double previous = 0;
    for (int i = 0; i < SWEEP_COUNT; i++) {
        const shape *sh = &SWEEP[i];
        set_shape(sh->vars, sh->headers, sh->body);
        int pair[2] = { BASELINE_CGI, GATEWAY_CGI };
        double m[2];
        long n = sh->body > 4096 ? iterations / 8 : iterations / 2;
        measure(pair, 2, n > 0 ? n : 1, m);
        bool first = i == 0 || strcmp(SWEEP[i - 1].dimension, sh->dimension) != 0;
        char per_unit[32] = "";
        if (!first) snprintf(per_unit, sizeof per_unit, "%.3f", (m[1] - previous) / (double)(sh->unit - SWEEP[i - 1].unit));
        printf("  %-11s %6zu %8zu %8zu %11.1f %11.1f %7.2f %10s\n", sh->dimension, sh->unit, sh->vars, sh->headers, m[0],
               m[1], m[1] / m[0], per_unit);
        previous = m[1];
    }
    set_shape(BASE_VAR_COUNT, 2, 13);
    return 0;
}

int main(int argc, char **argv) {
    make_request_data();
    handlers[0] = make_handler(&the_sink, false);
    handlers[1] = make_handler(&the_sink, true);
    gw_handler_hooks head_hooks = { .size = sizeof(gw_handler_hooks), .userdata = &the_sink, .write = sink_write,
                                    .add_cgi_vars = add_head_vars };
    if (gw_handler_new(&head_hooks, &handlers[2]) != GW_STATUS_OK) return 2;
    gw_handler_set_server_software(handlers[2], "bench/1", 7);
    int status = 0;
    if (argc > 1 && strcmp(argv[1], "--check-allocations") == 0) {
        status = check_allocations(&the_sink, handlers[0], handlers[1]);
    } else if (argc > 1 && strcmp(argv[1], "--case") == 0) {
        int c = -1;
        long requests = 1000;
        for (int i = 0; i < CASES; i++) {
            if (argc > 2 && strcmp(argv[2], CASE_NAMES[i]) == 0) c = i;
        }
        if (argc > 2 && strcmp(argv[2], "gateway-head") == 0) c = GATEWAY_HEAD;
        for (int i = 3; i + 1 < argc; i += 2) {
            long v = strtol(argv[i + 1], NULL, 10);
            if (strcmp(argv[i], "--requests") == 0) requests = v;
            else if (strcmp(argv[i], "--vars") == 0 && v >= 0 && v <= MAX_VARS) n_vars = (size_t)v;
            else if (strcmp(argv[i], "--headers") == 0 && v >= 1 && v <= MAX_HEADERS) n_headers = (size_t)v;
            else if (strcmp(argv[i], "--body") == 0 && v >= 0 && v <= MAX_BODY) body_len = (size_t)v;
            else c = -1;
        }
        if (c < 0 || requests < 0) {
            fprintf(stderr, "usage: bench --case baseline-cgi|gateway-cgi|baseline-origin|gateway-origin|gateway-head "
                            "--requests N "
                            "[--vars V] [--headers H] [--body BYTES]\n");
            status = 2;
        } else {
            run_case(c, 10); /* warm up: the same in the N and the 2N run */
            run_case(c, requests);
        }
    } else {
        long iterations = argc > 1 ? strtol(argv[1], NULL, 10) : 50000;
        status = timings(iterations > 0 ? iterations : 50000);
    }
    gw_handler_free(handlers[0]);
    gw_handler_free(handlers[1]);
    gw_handler_free(handlers[2]);
    return status;
}
