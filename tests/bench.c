/* bench: what one request costs through a reused handler, measured side by side with a
 * hand-written baseline that puts the same bytes on the same write hook, and how many heap
 * allocations a warmed-up handler makes per request (it should make none).
 *
 *   bench [ITERATIONS]        prints ns/request for each case and the ratios
 *   bench --check-allocations exits non-zero when a warmed-up request allocates
 *
 * The machine is shared and noisy: the cases run interleaved in several rounds and the
 * median round is reported, so the ratios compare runs made under the same conditions. */
#define _GNU_SOURCE
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

static int32_t add_vars(void *userdata, gw_environ *env) {
    (void)userdata;
    static const char *const vars[][2] = {
        { "REQUEST_METHOD", "GET" },      { "SCRIPT_NAME", "" },          { "PATH_INFO", "/hello" },
        { "QUERY_STRING", "a=1&b=2" },    { "SERVER_NAME", "127.0.0.1" }, { "SERVER_PORT", "8000" },
        { "SERVER_PROTOCOL", "HTTP/1.1" }, { "REMOTE_ADDR", "127.0.0.1" }, { "HTTP_HOST", "localhost:8000" },
        { "HTTP_USER_AGENT", "bench/1" }, { "HTTP_ACCEPT", "*/*" },
    };
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        gw_status st = gw_environ_set(env, vars[i][0], strlen(vars[i][0]), vars[i][1], strlen(vars[i][1]));
        if (st != GW_STATUS_OK) return st;
    }
    return GW_STATUS_OK;
}

static const gw_header HEADERS[] = { { "Content-Type", 12, "text/plain", 10 } };

static gw_status hello_app(void *userdata, gw_request *req) {
    (void)userdata;
    gw_environ *env = NULL;
    const char *path = NULL;
    size_t path_len = 0;
    gw_request_environ(req, &env);
    gw_environ_get(env, "PATH_INFO", 9, &path, &path_len);
    gw_status st = gw_request_start_response(req, "200 OK", 6, HEADERS, 1, 0);
    if (st != GW_STATUS_OK) return st;
    return gw_request_set_body_bytes(req, "Hello, world!", 13);
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
    gw_status st = gw_request_start_response(req, "200 OK", 6, HEADERS, 1, 0);
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

/* The baseline: the same CGI response bytes, formatted by hand and given to the same hook. */
static void baseline_request(sink *s) {
    char out[256];
    const char *body = "Hello, world!";
    int n = snprintf(out, sizeof out, "Status: 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n\r\n%s",
                     strlen(body), body);
    size_t written = 0;
    sink_write(s, out, (size_t)n, &written);
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

static long allocations_per_request(gw_handler *h, gw_application_fn app, long iterations) {
    for (int i = 0; i < 10; i++) gw_handler_run(h, app, NULL);
    allocations = 0;
    counting = 1;
    for (long i = 0; i < iterations; i++) gw_handler_run(h, app, NULL);
    counting = 0;
    return allocations;
}

/* Every steady-state path: hello in CGI and origin mode, a miss in the environ and its
 * iteration to the end, the error page, a chunked response, a POST body read whole, a chunked
 * POST body read whole and drained. */
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
    struct { const char *name; gw_handler *h; gw_application_fn app; } paths[] = {
        { "hello, CGI mode", cgi, hello_app },
        { "hello, origin mode", origin, hello_app },
        { "environ miss and iteration to the end", origin, miss_app },
        { "the error page", origin, fail_app },
        { "a chunked response", http11, chunked_app },
        { "a POST body read whole", post, post_app },
        { "a chunked POST body read whole", chunked_post, post_app },
        { "a chunked POST body drained", chunked_post, hello_app },
        { "a request head parsed in add_cgi_vars", parsed, miss_app },
    };
    long total = 0;
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        long a = allocations_per_request(paths[i].h, paths[i].app, 1000);
        printf("allocations in 1000 warmed-up requests, %-40s %ld\n", paths[i].name, a);
        total += a;
    }
    gw_handler_free(http11);
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
    printf("allocations in 1000 warmed-up requests, %-40s %ld\n", "a refused head and its error response", refused);
    total += refused;
    gw_environ_free(env);
    gw_handler_free(post);
    gw_handler_free(chunked_post);
    gw_handler_free(parsed);
    return total == 0 ? 0 : 1;
}

int main(int argc, char **argv) {
    sink s = { 0 };
    gw_handler *cgi = make_handler(&s, false);
    gw_handler *origin = make_handler(&s, true);

    if (argc > 1 && strcmp(argv[1], "--check-allocations") == 0) {
        int failed = check_allocations(&s, cgi, origin);
        gw_handler_free(cgi);
        gw_handler_free(origin);
        return failed;
    }

    long iterations = argc > 1 ? strtol(argv[1], NULL, 10) : 200000;
    if (iterations <= 0) iterations = 200000;
    enum { ROUNDS = 7, CASES = 3 };
    const char *names[CASES] = { "baseline (snprintf + write hook)", "gateway, CGI mode", "gateway, origin mode" };
    double ns[CASES][ROUNDS];
    for (int round = 0; round < ROUNDS; round++) {
        for (int c = 0; c < CASES; c++) {
            double start = now_ns();
            for (long i = 0; i < iterations; i++) {
                if (c == 0) {
                    baseline_request(&s);
                } else if (gw_handler_run(c == 1 ? cgi : origin, hello_app, NULL) != GW_STATUS_OK) {
                    fprintf(stderr, "bench: %s\n", gw_last_error_message());
                    return 1;
                }
            }
            ns[c][round] = (now_ns() - start) / (double)iterations;
        }
    }
    double median[CASES];
    printf("%ld requests per case and round, %d interleaved rounds, median round:\n", iterations, ROUNDS);
    for (int c = 0; c < CASES; c++) {
        qsort(ns[c], ROUNDS, sizeof ns[c][0], compare_doubles);
        median[c] = ns[c][ROUNDS / 2];
        printf("  %-34s %8.1f ns/request\n", names[c], median[c]);
    }
    printf("ratios: CGI mode / baseline = %.2f, origin mode / baseline = %.2f\n", median[1] / median[0],
           median[2] / median[0]);
    long a = allocations_per_request(cgi, hello_app, 1000);
    printf("heap allocations per warmed-up request: %.3f\n", (double)a / 1000.0);
    gw_handler_free(cgi);
    gw_handler_free(origin);
    return 0;
}
