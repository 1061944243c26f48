/* The C harness: the request cycle through the public header, with exact bytes on the wire.
 * Built against the static and the shared library and run under valgrind by `make test`. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "gateway.h"
#include "host.h"

#define LEN(s) (sizeof(s) - 1)
#define HDR(n, v) { n, LEN(n), v, LEN(v) }
#define ERROR_BODY "A server error occurred.  Please contact the administrator."
#define CGI_ERROR_PAGE \
    "Status: 500 Internal Server Error\r\nContent-Type: text/plain\r\nContent-Length: 59\r\n\r\n" ERROR_BODY

/* ---- a scripted application ------------------------------------------------------------ */

enum body_kind { BODY_NONE, BODY_BYTES, BODY_ITER, BODY_FILE };

typedef struct app_spec {
    const char *status;           /* NULL: never call start_response */
    const gw_header *headers;
    size_t header_count;
    uint32_t flags;
    const char *write;            /* gw_request_write this before returning */
    enum body_kind body_kind;
    const char *body;             /* BODY_BYTES */
    const char *const *chunks;    /* BODY_ITER, NULL-terminated */
    long block_count;             /* BODY_ITER: < 0 unknown */
    int fail_at_chunk;            /* BODY_ITER: fail when asked for this chunk (-1: never) */
    int32_t close_status;         /* BODY_ITER: what close returns */
    bool end_with_last;           /* BODY_ITER: say "end" together with the last chunk */
    int fd;                       /* BODY_FILE */
    size_t block_size;
    bool close_fd;
    bool fail;                    /* return gw_request_fail at the end */
    /* what happened */
    gw_status start_status;
    gw_status write_status;
    gw_status body_status;
    int next_calls;
    int close_calls;
    char seen[512];               /* environ values the app was asked to record */
    const char *const *record;    /* names to record into `seen` as "NAME=value;" */
} app_spec;

static app_spec spec_defaults(void) {
    app_spec spec;
    memset(&spec, 0, sizeof spec);
    spec.block_count = -1;
    spec.fail_at_chunk = -1;
    spec.fd = -1;
    return spec;
}

/* A spec that answers "200 OK" ... */
static app_spec ok_spec(void) {
    app_spec spec = spec_defaults();
    spec.status = "200 OK";
    return spec;
}

/* ... with these chunks as its body iterator (block count unknown). */
static app_spec iter_spec(const char *const *chunks) {
    app_spec spec = ok_spec();
    spec.body_kind = BODY_ITER;
    spec.chunks = chunks;
    return spec;
}

static int32_t iter_next(void *userdata, gw_request *req, const void **out_data, size_t *out_len, bool *out_end) {
    app_spec *spec = userdata;
    (void)req;
    int i = spec->next_calls++;
    if (i == spec->fail_at_chunk) return gw_request_fail(req, "iteration failed", LEN("iteration failed"));
    if (spec->chunks[i] == NULL) {
        *out_end = true;
        return GW_STATUS_OK;
    }
    *out_data = spec->chunks[i];
    *out_len = strlen(spec->chunks[i]);
    *out_end = spec->end_with_last && spec->chunks[i + 1] == NULL;
    return GW_STATUS_OK;
}

static bool iter_count(void *userdata, size_t *out_count) {
    app_spec *spec = userdata;
    if (spec->block_count < 0) return false;
    *out_count = (size_t)spec->block_count;
    return true;
}

static int32_t iter_close(void *userdata) {
    app_spec *spec = userdata;
    spec->close_calls++;
    return spec->close_status;
}

static void record_environ(app_spec *spec, gw_request *req) {
    gw_environ *env = NULL;
    assert_int_equal(gw_request_environ(req, &env), GW_STATUS_OK);
    for (const char *const *name = spec->record; name != NULL && *name != NULL; name++) {
        const char *value = NULL;
        size_t len = 0;
        size_t used = strlen(spec->seen);
        if (gw_environ_get(env, *name, strlen(*name), &value, &len) == GW_STATUS_OK) {
            snprintf(spec->seen + used, sizeof spec->seen - used, "%s=%.*s;", *name, (int)len, value);
        } else {
            snprintf(spec->seen + used, sizeof spec->seen - used, "%s absent;", *name);
        }
    }
}

static int32_t spec_app(void *userdata, gw_request *req) {
    app_spec *spec = userdata;
    record_environ(spec, req);
    if (spec->status != NULL) {
        spec->start_status = gw_request_start_response(req, spec->status, strlen(spec->status), spec->headers,
                                               spec->header_count, spec->flags);
        if (spec->start_status != GW_STATUS_OK) return spec->start_status;
    }
    if (spec->write != NULL) {
        spec->write_status = gw_request_write(req, spec->write, strlen(spec->write));
        if (spec->write_status != GW_STATUS_OK) return spec->write_status;
    }
    switch (spec->body_kind) {
    case BODY_NONE:
        break;
    case BODY_BYTES:
        spec->body_status = gw_request_set_body_bytes(req, spec->body, strlen(spec->body));
        break;
    case BODY_ITER: {
        gw_body_iter iter = { sizeof(gw_body_iter), spec, iter_next, iter_count, iter_close };
        spec->body_status = gw_request_set_body_iter(req, &iter);
        break;
    }
    case BODY_FILE:
        spec->body_status = gw_request_set_body_file(req, spec->fd, spec->block_size, spec->close_fd);
        break;
    }
    if (spec->body_status != GW_STATUS_OK) return spec->body_status;
    if (spec->fail) return gw_request_fail(req, "the app failed on purpose", LEN("the app failed on purpose"));
    return GW_STATUS_OK;
}

/* Runs `spec` on a fresh handler over `host`; returns the run's status. */
static gw_status run_spec(test_host *host, bool origin, app_spec *spec) {
    gw_handler *h = host_handler(host, origin);
    gw_status st = gw_handler_run(h, spec_app, spec);
    gw_handler_free(h);
    return st;
}

/* Compares origin-server output where "{DATE}" stands for the Date header's value. */
static void assert_dated(const char *out, const char *expected) {
    /* time() reads a coarse clock that can lag the library's by a tick, so the Date may be
     * one second ahead of it; under valgrind the check may come a second or two late. */
    time_t now = time(NULL) + 1;
    for (int back = 0; back <= 3; back++) {
        char date[GW_HTTP_DATE_LEN + 1];
        assert_int_equal(gw_format_date_time((int64_t)(now - back), date, sizeof date), GW_STATUS_OK);
        char want[4096];
        const char *mark = strstr(expected, "{DATE}");
        if (mark == NULL) {
            snprintf(want, sizeof want, "%s", expected);
        } else {
            snprintf(want, sizeof want, "%.*s%s%s", (int)(mark - expected), expected, date, mark + 6);
        }
        if (strcmp(out, want) == 0) return;
        if (back == 3) assert_string_equal(out, want);
    }
}

static void assert_origin_output(test_host *host, const char *expected) {
    assert_dated(host_out(host), expected);
}

static const gw_header TEXT_PLAIN[] = { HDR("Content-Type", "text/plain") };

/* ---- the hello app, CGI and origin --------------------------------------------------------- */

static int32_t hello_app(void *userdata, gw_request *req) {
    (void)userdata;
    gw_status st = gw_request_start_response(req, "200 OK", 6, TEXT_PLAIN, 1, 0);
    if (st != GW_STATUS_OK) return st;
    return gw_request_set_body_bytes(req, "Hello, world!", 13);
}

static void test_hello_cgi(void **state) {
    (void)state;
    test_host host;
    host_init(&host);
    gw_handler *h = host_handler(&host, false);
    assert_int_equal(gw_handler_run(h, hello_app, NULL), GW_STATUS_OK);
    assert_string_equal(host_out(&host),
                        "Status: 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, world!");
    assert_string_equal(host_err(&host), "");
    /* The preamble, headers and the one block go out in one write call, then one flush. */
    assert_int_equal(host.write_calls, 1);
    assert_int_equal(host.flush_calls, 1);
    gw_handler_free(h);
}

static void test_hello_origin(void **state) {
    (void)state;
    test_host host;
    host_init(&host);
    gw_handler *h = host_handler(&host, true);
    assert_int_equal(gw_handler_run(h, hello_app, NULL), GW_STATUS_OK);
    assert_origin_output(&host, "HTTP/1.0 200 OK\r\nDate: {DATE}\r\nContent-Type: text/plain\r\n"
                                "Content-Length: 13\r\n\r\nHello, world!");
    /* A reused handler serves the next request the same way. */
    host_clear_output(&host);
    assert_int_equal(gw_handler_run(h, hello_app, NULL), GW_STATUS_OK);
    assert_origin_output(&host, "HTTP/1.0 200 OK\r\nDate: {DATE}\r\nContent-Type: text/plain\r\n"
                                "Content-Length: 13\r\n\r\nHello, world!");
    gw_handler_free(h);
}

/* origin or CGI × http_version × SERVER_PROTOCOL × server_software */
static void test_header_format_matrix(void **state) {
    (void)state;
    const char *versions[] = { "1.0", "1.1" };
    const char *protocols[] = { "HTTP/0.9", "HTTP/1.0", "HTTP/1.1" };
    for (int origin = 0; origin <= 1; origin++) {
        for (int v = 0; v < 2; v++) {
            for (int p = 0; p < 3; p++) {
                for (int sw = 0; sw <= 1; sw++) {
                    char protocol_var[64];
                    snprintf(protocol_var, sizeof protocol_var, "SERVER_PROTOCOL=%s", protocols[p]);
                    const char *vars[] = { protocol_var, NULL };
                    const char *record[] = { "SERVER_SOFTWARE", NULL };
                    test_host host;
                    host_init(&host);
                    host.vars = vars;
                    gw_handler *h = host_handler(&host, origin);
                    assert_int_equal(gw_handler_set_http_version(h, versions[v], 3), GW_STATUS_OK);
                    if (sw) assert_int_equal(gw_handler_set_server_software(h, "gw-test/1", 9), GW_STATUS_OK);
                    app_spec spec = ok_spec();
                    spec.headers = TEXT_PLAIN;
                    spec.header_count = 1;
                    spec.body_kind = BODY_BYTES;
                    spec.body = "hi";
                    spec.record = record;
                    assert_int_equal(gw_handler_run(h, spec_app, &spec), GW_STATUS_OK);
                    char want[512];
                    if (!origin) {
                        snprintf(want, sizeof want,
                                 "Status: 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nhi");
                        assert_string_equal(spec.seen, "SERVER_SOFTWARE absent;");
                    } else if (p == 0) {
                        snprintf(want, sizeof want, "hi");
                    } else {
                        /* A handler speaking 1.1 says when it will close: to an HTTP/1.0 client. */
                        snprintf(want, sizeof want,
                                 "HTTP/%s 200 OK\r\nDate: {DATE}\r\n%sContent-Type: text/plain\r\n"
                                 "Content-Length: 2\r\n%s\r\nhi",
                                 versions[v], sw ? "Server: gw-test/1\r\n" : "",
                                 v == 1 && p == 1 ? "Connection: close\r\n" : "");
                    }
                    if (origin) {
                        assert_string_equal(spec.seen, sw ? "SERVER_SOFTWARE=gw-test/1;" : "SERVER_SOFTWARE absent;");
                    }
                    assert_origin_output(&host, want);
                    gw_handler_free(h);
                }
            }
        }
    }
}

static void test_app_date_and_server_in_any_case(void **state) {
    (void)state;
    static const gw_header hdrs[] = { HDR("date", "Mon, 01 Jan 2001 00:00:00 GMT"), HDR("SERVER", "mine/2") };
    test_host host;
    host_init(&host);
    gw_handler *h = host_handler(&host, true);
    assert_int_equal(gw_handler_set_server_software(h, "gw-test/1", 9), GW_STATUS_OK);
    app_spec spec = ok_spec();
    spec.headers = hdrs;
    spec.header_count = 2;
    spec.body_kind = BODY_BYTES;
    spec.body = "x";
    assert_int_equal(gw_handler_run(h, spec_app, &spec), GW_STATUS_OK);
    assert_string_equal(host_out(&host), "HTTP/1.0 200 OK\r\ndate: Mon, 01 Jan 2001 00:00:00 GMT\r\n"
                                         "SERVER: mine/2\r\nContent-Length: 1\r\n\r\nx");
    gw_handler_free(h);
}

static void test_missing_server_protocol_is_modern(void **state) {
    (void)state;
    test_host host;
    host_init(&host);
    app_spec spec = spec_defaults();
    spec.status = "204 No Content";
    assert_int_equal(run_spec(&host, true, &spec), GW_STATUS_OK);
    assert_origin_output(&host, "HTTP/1.0 204 No Content\r\nDate: {DATE}\r\n\r\n");
}

/* ---- the error page ---------------------------------------------------------------------- */

static void test_error_page_cgi(void **state) {
    (void)state;
    test_host host;
    host_init(&host);
    app_spec spec = ok_spec();
    spec.headers = TEXT_PLAIN;
    spec.header_count = 1;
    spec.fail = true;
    assert_int_equal(run_spec(&host, false, &spec), GW_STATUS_APP_ERROR);
    assert_string_equal(host_out(&host), CGI_ERROR_PAGE);
    assert_string_equal(host_err(&host), "gateway: application error: the app failed on purpose\n");
    assert_true(host.err_flush_calls >= 1);
    assert_int_equal((int)strlen(ERROR_BODY), 59);
}

static void test_error_page_origin(void **state) {
    (void)state;
    test_host host;
    host_init(&host);
    gw_handler *h = host_handler(&host, true);
    assert_int_equal(gw_handler_set_server_software(h, "gw-test/1", 9), GW_STATUS_OK);
    app_spec spec = spec_defaults();
    spec.fail = true;
    assert_int_equal(gw_handler_run(h, spec_app, &spec), GW_STATUS_APP_ERROR);
    assert_origin_output(&host, "HTTP/1.0 500 Internal Server Error\r\nDate: {DATE}\r\nServer: gw-test/1\r\n"
                                "Content-Type: text/plain\r\nContent-Length: 59\r\n\r\n" ERROR_BODY);
    gw_handler_free(h);
}

static void test_no_start_response_gives_error_page(void **state) {
    (void)state;
    test_host host;
    host_init(&host);
    app_spec spec = spec_defaults();
    assert_int_equal(run_spec(&host, false, &spec), GW_STATUS_APP_ERROR);
    assert_string_equal(host_out(&host), CGI_ERROR_PAGE);
    assert_non_null(strstr(host_err(&host), "without calling start_response()"));
}

static void test_custom_error_page(void **state) {
    (void)state;
    static const gw_header hdrs[] = { HDR("Content-Type", "text/html"), HDR("X-Err", "1") };
    test_host host;
    host_init(&host);
    gw_handler *h = host_handler(&host, false);
    assert_int_equal(gw_handler_set_error_page(h, "503 Busy", 8, hdrs, 2, "<p>busy</p>", 11), GW_STATUS_OK);
    app_spec spec = spec_defaults();
    spec.fail = true;
    assert_int_equal(gw_handler_run(h, spec_app, &spec), GW_STATUS_APP_ERROR);
    assert_string_equal(host_out(&host),
                        "Status: 503 Busy\r\nContent-Type: text/html\r\nX-Err: 1\r\nContent-Length: 11\r\n\r\n<p>busy</p>");
    /* The error page follows the same rules as an app's response. */
    static const gw_header bad[] = { HDR("Connection", "close") };
    assert_int_equal(gw_handler_set_error_page(h, "500 X", 5, bad, 1, "", 0), GW_STATUS_HOP_BY_HOP_HEADER);
    assert_int_equal(gw_handler_set_error_page(h, "50 X", 4, NULL, 0, "", 0), GW_STATUS_INVALID_STATUS_LINE);
    const char *status = NULL;
    size_t len = 0;
    assert_int_equal(gw_handler_get_error_status(h, &status, &len), GW_STATUS_OK);
    assert_int_equal(len, 8);
    assert_memory_equal(status, "503 Busy", 8);
    size_t count = 0;
    assert_int_equal(gw_handler_get_error_header_count(h, &count), GW_STATUS_OK);
    assert_int_equal(count, 2);
    gw_header got;
    assert_int_equal(gw_handler_get_error_header(h, 1, &got), GW_STATUS_OK);
    assert_memory_equal(got.name, "X-Err", 5);
    assert_int_equal(gw_handler_get_error_header(h, 2, &got), GW_STATUS_NOT_FOUND);
    assert_int_equal(gw_handler_get_error_body(h, &status, &len), GW_STATUS_OK);
    assert_int_equal(len, 11);
    gw_handler_free(h);
}

static void test_default_error_page_getters(void **state) {
    (void)state;
    test_host host;
    host_init(&host);
    gw_handler *h = host_handler(&host, true);
    const char *text = NULL;
    size_t len = 0;
    assert_int_equal(gw_handler_get_error_status(h, &text, &len), GW_STATUS_OK);
    assert_int_equal(len, LEN("500 Internal Server Error"));
    assert_memory_equal(text, "500 Internal Server Error", len);
    assert_int_equal(gw_handler_get_error_body(h, &text, &len), GW_STATUS_OK);
    assert_int_equal(len, 59);
    assert_memory_equal(text, ERROR_BODY, 59);
    gw_header got;
    assert_int_equal(gw_handler_get_error_header(h, 0, &got), GW_STATUS_OK);
    assert_int_equal(got.name_len, 12);
    assert_memory_equal(got.value, "text/plain", 10);
    gw_handler_free(h);
}

static void test_error_after_output_is_logged_and_truncated(void **state) {
    (void)state;
    test_host host;
    host_init(&host);
    app_spec spec = ok_spec();
    spec.write = "part";
    spec.fail = true;
    assert_int_equal(run_spec(&host, false, &spec), GW_STATUS_RESPONSE_INCOMPLETE);
    assert_string_equal(host_out(&host), "Status: 200 OK\r\n\r\npart");
    assert_string_equal(host_err(&host), "gateway: response cut short: the app failed on purpose\n");
}

static void test_iteration_error_after_first_chunk(void **state) {
    (void)state;
    static const char *const chunks[] = { "part", "more", NULL };
    test_host host;
    host_init(&host);
    app_spec spec = iter_spec(chunks);
    spec.fail_at_chunk = 1;
    assert_int_equal(run_spec(&host, false, &spec), GW_STATUS_RESPONSE_INCOMPLETE);
    assert_string_equal(host_out(&host), "Status: 200 OK\r\n\r\npart");
    assert_string_equal(host_err(&host), "gateway: response cut short: iteration failed\n");
    assert_int_equal(spec.close_calls, 1);
}

static void test_empty_first_chunk_does_not_commit(void **state) {
    (void)state;
    static const char *const chunks[] = { "", "never", NULL };
    test_host host;
    host_init(&host);
    app_spec spec = iter_spec(chunks);
    spec.fail_at_chunk = 1;
    assert_int_equal(run_spec(&host, false, &spec), GW_STATUS_APP_ERROR);
    assert_string_equal(host_out(&host), CGI_ERROR_PAGE);
    assert_int_equal(spec.close_calls, 1);
}

/* ---- responses without a body: HEAD, 1xx, 204, 304 ----------------------------------------- */

static void test_head_sends_no_body(void **state) {
    (void)state;
    static const char *const head[] = { "REQUEST_METHOD=HEAD", NULL };
    static const char *const chunks[] = { "abc", "def", NULL };
    /* One block: its length is the Content-Length, its bytes stay unsent. */
    test_host host;
    host_init(&host);
    host.vars = head;
    gw_handler *h = host_handler(&host, false);
    assert_int_equal(gw_handler_run(h, hello_app, NULL), GW_STATUS_OK);
    assert_string_equal(host_out(&host), "Status: 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\n");
    uint16_t code = 0;
    uint64_t bytes = 99;
    assert_int_equal(gw_handler_last_response(h, &code, &bytes), GW_STATUS_OK);
    assert_int_equal(bytes, 0);
    /* An iterator is drained and closed, nothing of it is sent. */
    host_clear_output(&host);
    app_spec spec = iter_spec(chunks);
    assert_int_equal(gw_handler_run(h, spec_app, &spec), GW_STATUS_OK);
    assert_string_equal(host_out(&host), "Status: 200 OK\r\n\r\n");
    assert_int_equal(spec.next_calls, 3);
    assert_int_equal(spec.close_calls, 1);
    /* write() bytes are not sent either. */
    host_clear_output(&host);
    spec = ok_spec();
    spec.write = "written";
    assert_int_equal(gw_handler_run(h, spec_app, &spec), GW_STATUS_OK);
    assert_string_equal(host_out(&host), "Status: 200 OK\r\n\r\n");
    /* No body at all: no made-up Content-Length: 0 for the GET it stands for. */
    host_clear_output(&host);
    spec = ok_spec();
    assert_int_equal(gw_handler_run(h, spec_app, &spec), GW_STATUS_OK);
    assert_string_equal(host_out(&host), "Status: 200 OK\r\n\r\n");
    /* The error page keeps its length and loses its body. */
    host_clear_output(&host);
    spec.fail = true;
    assert_int_equal(gw_handler_run(h, spec_app, &spec), GW_STATUS_APP_ERROR);
    assert_string_equal(host_out(&host),
                        "Status: 500 Internal Server Error\r\nContent-Type: text/plain\r\nContent-Length: 59\r\n\r\n");
    gw_handler_free(h);
}

static void test_bodiless_statuses(void **state) {
    (void)state;
    static const gw_header cl3[] = { HDR("Content-Length", "3") };
    const struct {
        const char *status;
        const char *body;
        const gw_header *headers;
        size_t header_count;
        const char *expect;
    } cases[] = {
        { "204 No Content", "", NULL, 0, "Status: 204 No Content\r\n\r\n" },
        { "204 No Content", "ignored", NULL, 0, "Status: 204 No Content\r\n\r\n" },
        { "304 Not Modified", "abc", NULL, 0, "Status: 304 Not Modified\r\n\r\n" },
        { "304 Not Modified", "", cl3, 1, "Status: 304 Not Modified\r\nContent-Length: 3\r\n\r\n" },
        { "103 Early Hints", "x", NULL, 0, "Status: 103 Early Hints\r\n\r\n" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        test_host host;
        host_init(&host);
        app_spec spec = spec_defaults();
        spec.status = cases[i].status;
        spec.headers = cases[i].headers;
        spec.header_count = cases[i].header_count;
        spec.body_kind = BODY_BYTES;
        spec.body = cases[i].body;
        assert_int_equal(run_spec(&host, false, &spec), GW_STATUS_OK);
        assert_string_equal(host_out(&host), cases[i].expect);
        assert_string_equal(host_err(&host), "");
    }
}

/* ---- chunked responses ------------------------------------------------------------------------ */

/* Runs `spec` on an origin handler speaking HTTP/1.1 to a client announcing `protocol`. */
static gw_status run_http11(test_host *host, const char *protocol, app_spec *spec) {
    char var[64];
    snprintf(var, sizeof var, "SERVER_PROTOCOL=%s", protocol);
    const char *vars[] = { var, NULL };
    host->vars = vars;
    gw_handler *h = host_handler(host, true);
    assert_int_equal(gw_handler_set_http_version(h, "1.1", 3), GW_STATUS_OK);
    gw_status st = gw_handler_run(h, spec_app, spec);
    gw_handler_free(h);
    host->vars = NULL;
    return st;
}

static void test_chunked_when_length_unknown_on_http11(void **state) {
    (void)state;
    static const char *const chunks[] = { "abc", "", "defgh", NULL };
    for (size_t max_write = 0; max_write <= 7; max_write += 7) {
        test_host host;
        host_init(&host);
        host.max_write = max_write;
        app_spec spec = iter_spec(chunks);
        assert_int_equal(run_http11(&host, "HTTP/1.1", &spec), GW_STATUS_OK);
        assert_origin_output(&host, "HTTP/1.1 200 OK\r\nDate: {DATE}\r\nTransfer-Encoding: chunked\r\n\r\n"
                                    "3\r\nabc\r\n5\r\ndefgh\r\n0\r\n\r\n");
    }
    /* write() blocks are chunks too. */
    test_host host;
    host_init(&host);
    app_spec spec = ok_spec();
    spec.write = "abc";
    spec.body_kind = BODY_BYTES;
    spec.body = "de";
    assert_int_equal(run_http11(&host, "HTTP/1.1", &spec), GW_STATUS_OK);
    assert_origin_output(&host, "HTTP/1.1 200 OK\r\nDate: {DATE}\r\nTransfer-Encoding: chunked\r\n\r\n"
                                "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n");
}

static void test_chunked_large_block(void **state) {
    (void)state;
    static char big[20001];
    memset(big, 'x', 20000);
    big[20000] = '\0';
    const char *const chunks[] = { big, NULL };
    test_host host;
    host_init(&host);
    app_spec spec = iter_spec(chunks);
    assert_int_equal(run_http11(&host, "HTTP/1.1", &spec), GW_STATUS_OK);
    const char *out = host_out(&host);
    const char *body = strstr(out, "\r\n\r\n");
    assert_non_null(body);
    body += 4;
    assert_memory_equal(body, "4e20\r\n", 6);
    assert_memory_equal(body + 6, big, 20000);
    assert_string_equal(body + 6 + 20000, "\r\n0\r\n\r\n");
}

static void test_chunking_needs_http11_on_both_sides(void **state) {
    (void)state;
    static const char *const chunks[] = { "abc", "def", NULL };
    /* An HTTP/1.0 client: the body ends with the connection, as in wsgiref, and the head
     * says so. */
    test_host host;
    host_init(&host);
    app_spec spec = iter_spec(chunks);
    assert_int_equal(run_http11(&host, "HTTP/1.0", &spec), GW_STATUS_OK);
    assert_origin_output(&host, "HTTP/1.1 200 OK\r\nDate: {DATE}\r\nConnection: close\r\n\r\nabcdef");
    /* A known length is never chunked. */
    host_init(&host);
    spec = iter_spec(chunks);
    spec.block_count = 1;
    static const gw_header cl6[] = { HDR("Content-Length", "6") };
    spec.headers = cl6;
    spec.header_count = 1;
    assert_int_equal(run_http11(&host, "HTTP/1.1", &spec), GW_STATUS_OK);
    assert_origin_output(&host, "HTTP/1.1 200 OK\r\nDate: {DATE}\r\nContent-Length: 6\r\n\r\nabcdef");
    /* An HTTP/1.0 server (the default) never chunks. */
    host_init(&host);
    static const char *const vars[] = { "SERVER_PROTOCOL=HTTP/1.1", NULL };
    host.vars = vars;
    spec = iter_spec(chunks);
    assert_int_equal(run_spec(&host, true, &spec), GW_STATUS_OK);
    assert_origin_output(&host, "HTTP/1.0 200 OK\r\nDate: {DATE}\r\n\r\nabcdef");
}

static void test_chunked_failure_leaves_out_the_last_chunk(void **state) {
    (void)state;
    static const char *const chunks[] = { "abc", "def", NULL };
    test_host host;
    host_init(&host);
    app_spec spec = iter_spec(chunks);
    spec.fail_at_chunk = 1;
    assert_int_equal(run_http11(&host, "HTTP/1.1", &spec), GW_STATUS_RESPONSE_INCOMPLETE);
    assert_origin_output(&host, "HTTP/1.1 200 OK\r\nDate: {DATE}\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n");
    assert_int_equal(spec.close_calls, 1);
}

/* ---- start_response rules ----------------------------------------------------------------- */

/* Calls start_response with one bad input and checks the status and the message. */
typedef struct bad_call {
    const char *status;
    size_t status_len;
    gw_header header;
    size_t header_count;
    gw_status expect;
    const char *message_part;
} bad_call;

static int32_t bad_call_app(void *userdata, gw_request *req) {
    bad_call *call = userdata;
    gw_status st = gw_request_start_response(req, call->status, call->status_len, &call->header, call->header_count, 0);
    assert_int_equal(st, call->expect);
    assert_non_null(strstr(gw_last_error_message(), call->message_part));
    return st;
}

static void check_bad_call(bad_call call) {
    test_host host;
    host_init(&host);
    gw_handler *h = host_handler(&host, false);
    assert_int_equal(gw_handler_run(h, bad_call_app, &call), GW_STATUS_APP_ERROR);
    assert_string_equal(host_out(&host), CGI_ERROR_PAGE);
    assert_non_null(strstr(host_err(&host), call.message_part));
    gw_handler_free(h);
}

#define BAD_STATUS(s, part) \
    check_bad_call((bad_call){ s, LEN(s), HDR("A", "b"), 0, GW_STATUS_INVALID_STATUS_LINE, part })
#define BAD_HEADER(n, v, st, part) \
    check_bad_call((bad_call){ "200 OK", 6, HDR(n, v), 1, st, part })

static void test_status_validation(void **state) {
    (void)state;
    BAD_STATUS("200", "Status must be at least 4 characters");
    BAD_STATUS("", "Status must be at least 4 characters");
    BAD_STATUS("2x0 OK", "Status message must begin w/3-digit code");
    BAD_STATUS("\xd9\xa2" "00 OK", "Status message must begin w/3-digit code");
    BAD_STATUS("2000 OK", "Status message must have a space after code");
    BAD_STATUS("200\tOK", "Control characters are not allowed in status");
    BAD_STATUS("200 OK\r\nX-Injected: 1", "Control characters are not allowed in status");
    BAD_STATUS("200 OK\n", "Control characters are not allowed in status");
    BAD_STATUS("200 O\0K", "Control characters are not allowed in status");
    BAD_STATUS("200 OK\x7f", "Control characters are not allowed in status");
    BAD_STATUS("600 Nope", "between 100 and 599");
    BAD_STATUS("099 Nope", "between 100 and 599");
}

static void test_header_validation(void **state) {
    (void)state;
    BAD_HEADER("X Y", "v", GW_STATUS_INVALID_HEADER, "Header name must be a token");
    BAD_HEADER("X:", "v", GW_STATUS_INVALID_HEADER, "Header name must be a token");
    BAD_HEADER("", "v", GW_STATUS_INVALID_HEADER, "Header name must be a token");
    BAD_HEADER("X\r\nY", "v", GW_STATUS_INVALID_HEADER, "Header name must be a token");
    BAD_HEADER("X\tY", "v", GW_STATUS_INVALID_HEADER, "Header name must be a token");
    BAD_HEADER("X\0Y", "v", GW_STATUS_INVALID_HEADER, "Header name must be a token");
    BAD_HEADER("X", "a\r\nInjected: 1", GW_STATUS_INVALID_HEADER, "Control characters not allowed in header value");
    BAD_HEADER("X", "a\rb", GW_STATUS_INVALID_HEADER, "Control characters not allowed in header value");
    BAD_HEADER("X", "a\nb", GW_STATUS_INVALID_HEADER, "Control characters not allowed in header value");
    BAD_HEADER("X", "a\0b", GW_STATUS_INVALID_HEADER, "Control characters not allowed in header value");
    BAD_HEADER("X", "a\x7f", GW_STATUS_INVALID_HEADER, "Control characters not allowed in header value");
    BAD_HEADER("X", "a\x01", GW_STATUS_INVALID_HEADER, "Control characters not allowed in header value");
    BAD_HEADER("Content-Length", "-5", GW_STATUS_INVALID_HEADER, "Content-Length must be a decimal number");
    BAD_HEADER("Content-Length", "+5", GW_STATUS_INVALID_HEADER, "Content-Length must be a decimal number");
    BAD_HEADER("Content-Length", " 5", GW_STATUS_INVALID_HEADER, "Content-Length must be a decimal number");
}

static void test_hop_by_hop_refused(void **state) {
    (void)state;
    BAD_HEADER("Connection", "close", GW_STATUS_HOP_BY_HOP_HEADER, "Hop-by-hop header, 'Connection: close', not allowed");
    BAD_HEADER("keep-alive", "5", GW_STATUS_HOP_BY_HOP_HEADER, "Hop-by-hop header");
    BAD_HEADER("Proxy-Authenticate", "x", GW_STATUS_HOP_BY_HOP_HEADER, "Hop-by-hop header");
    BAD_HEADER("Proxy-Authorization", "x", GW_STATUS_HOP_BY_HOP_HEADER, "Hop-by-hop header");
    BAD_HEADER("TE", "trailers", GW_STATUS_HOP_BY_HOP_HEADER, "Hop-by-hop header");
    BAD_HEADER("Trailers", "x", GW_STATUS_HOP_BY_HOP_HEADER, "Hop-by-hop header");
    BAD_HEADER("TRANSFER-ENCODING", "chunked", GW_STATUS_HOP_BY_HOP_HEADER, "Hop-by-hop header");
    BAD_HEADER("Upgrade", "h2c", GW_STATUS_HOP_BY_HOP_HEADER, "Hop-by-hop header");
}

static void test_valid_headers_pass_through_in_order(void **state) {
    (void)state;
    static const gw_header hdrs[] = { HDR("Trailer", "X"), HDR("X-Tab", "a\tb"), HDR("X-Latin", "caf\xe9"),
                                      HDR("Set-Cookie", "a=1"), HDR("Set-Cookie", "b=2") };
    test_host host;
    host_init(&host);
    app_spec spec = spec_defaults();
    spec.status = "200  OK ";
    spec.headers = hdrs;
    spec.header_count = 5;
    spec.body_kind = BODY_BYTES;
    spec.body = "abc";
    assert_int_equal(run_spec(&host, false, &spec), GW_STATUS_OK);
    assert_string_equal(host_out(&host), "Status: 200  OK \r\nTrailer: X\r\nX-Tab: a\tb\r\nX-Latin: caf\xe9\r\n"
                                         "Set-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length: 3\r\n\r\nabc");
}

static int32_t twice_app(void *userdata, gw_request *req) {
    (void)userdata;
    assert_int_equal(gw_request_start_response(req, "200 OK", 6, NULL, 0, 0), GW_STATUS_OK);
    gw_status st = gw_request_start_response(req, "200 OK", 6, NULL, 0, 0);
    assert_int_equal(st, GW_STATUS_HEADERS_ALREADY_SET);
    assert_string_equal(gw_last_error_message(), "Headers already set!");
    return st;
}

static int32_t retry_after_failure_app(void *userdata, gw_request *req) {
    (void)userdata;
    assert_int_equal(gw_request_start_response(req, "20 OK", 5, NULL, 0, 0), GW_STATUS_INVALID_STATUS_LINE);
    /* PEP 3333: a second call without exc_info is fatal even when the first one failed. */
    return gw_request_start_response(req, "200 OK", 6, NULL, 0, 0);
}

static void test_second_start_response(void **state) {
    (void)state;
    test_host host;
    host_init(&host);
    gw_handler *h = host_handler(&host, false);
    assert_int_equal(gw_handler_run(h, twice_app, NULL), GW_STATUS_APP_ERROR);
    assert_string_equal(host_out(&host), CGI_ERROR_PAGE);
    assert_string_equal(host_err(&host), "gateway: application error: Headers already set!\n");
    host_clear_output(&host);
    assert_int_equal(gw_handler_run(h, retry_after_failure_app, NULL), GW_STATUS_APP_ERROR);
    assert_string_equal(host_out(&host), CGI_ERROR_PAGE);
    gw_handler_free(h);
}

static int32_t exc_info_before_output_app(void *userdata, gw_request *req) {
    (void)userdata;
    static const gw_header first[] = { HDR("A", "1") };
    static const gw_header second[] = { HDR("B", "2") };
    assert_int_equal(gw_request_start_response(req, "200 OK", 6, first, 1, 0), GW_STATUS_OK);
    assert_int_equal(gw_request_start_response(req, "500 Err", 7, second, 1, GW_START_RESPONSE_EXC_INFO), GW_STATUS_OK);
    return gw_request_set_body_bytes(req, "err", 3);
}

static int32_t exc_info_after_output_app(void *userdata, gw_request *req) {
    (void)userdata;
    assert_int_equal(gw_request_start_response(req, "200 OK", 6, NULL, 0, 0), GW_STATUS_OK);
    assert_int_equal(gw_request_write(req, "abc", 3), GW_STATUS_OK);
    gw_status st = gw_request_start_response(req, "500 Err", 7, NULL, 0, GW_START_RESPONSE_EXC_INFO);
    assert_int_equal(st, GW_STATUS_HEADERS_ALREADY_SENT);
    return st; /* the re-raise */
}

static int32_t bad_flags_app(void *userdata, gw_request *req) {
    (void)userdata;
    return gw_request_start_response(req, "200 OK", 6, NULL, 0, 0x80);
}

static void test_exc_info(void **state) {
    (void)state;
    test_host host;
    host_init(&host);
    gw_handler *h = host_handler(&host, false);
    assert_int_equal(gw_handler_run(h, exc_info_before_output_app, NULL), GW_STATUS_OK);
    assert_string_equal(host_out(&host), "Status: 500 Err\r\nB: 2\r\nContent-Length: 3\r\n\r\nerr");
    host_clear_output(&host);
    assert_int_equal(gw_handler_run(h, exc_info_after_output_app, NULL), GW_STATUS_RESPONSE_INCOMPLETE);
    assert_string_equal(host_out(&host), "Status: 200 OK\r\n\r\nabc");
    assert_non_null(strstr(host_err(&host), "re-raised"));
    host_clear_output(&host);
    assert_int_equal(gw_handler_run(h, bad_flags_app, NULL), GW_STATUS_APP_ERROR);
    gw_handler_free(h);
}

static int32_t write_first_app(void *userdata, gw_request *req) {
    (void)userdata;
    gw_status st = gw_request_write(req, "x", 1);
    assert_int_equal(st, GW_STATUS_INVALID_STATE);
    assert_string_equal(gw_last_error_message(), "write() before start_response()");
    return st;
}

static void test_write_before_start_response(void **state) {
    (void)state;
    test_host host;
    host_init(&host);
    gw_handler *h = host_handler(&host, false);
    assert_int_equal(gw_handler_run(h, write_first_app, NULL), GW_STATUS_APP_ERROR);
    assert_string_equal(host_out(&host), CGI_ERROR_PAGE);
    assert_string_equal(host_err(&host), "gateway: application error: write() before start_response()\n");
    gw_handler_free(h);
}

/* ---- bodies --------------------------------------------------------------------------------- */

static void test_multi_block_body(void **state) {
    (void)state;
    static const char *const chunks[] = { "a", "b", NULL };
    test_host host;
    host_init(&host);
    app_spec spec = ok_spec();
    spec.headers = TEXT_PLAIN;
    spec.header_count = 1;
    spec.body_kind = BODY_ITER;
    spec.chunks = chunks;
    spec.block_count = 2;
    assert_int_equal(run_spec(&host, false, &spec), GW_STATUS_OK);
    assert_string_equal(host_out(&host), "Status: 200 OK\r\nContent-Type: text/plain\r\n\r\nab");
    assert_int_equal(spec.close_calls, 1);
    assert_int_equal(spec.next_calls, 3);
}

static void test_one_block_iterator_gets_content_length(void **state) {
    (void)state;
    static const char *const chunks[] = { "xyz", NULL };
    test_host host;
    host_init(&host);
    app_spec spec = iter_spec(chunks);
    spec.block_count = 1;
    assert_int_equal(run_spec(&host, false, &spec), GW_STATUS_OK);
    assert_string_equal(host_out(&host), "Status: 200 OK\r\nContent-Length: 3\r\n\r\nxyz");
}

static void test_empty_bodies_get_content_length_zero(void **state) {
    (void)state;
    static const char *const empty_chunk[] = { "", NULL };
    static const char *const no_chunks[] = { NULL };
    const char *const *cases[] = { empty_chunk, no_chunks };
    for (int i = 0; i < 2; i++) {
        test_host host;
        host_init(&host);
        app_spec spec = ok_spec();
        spec.body_kind = BODY_ITER;
        spec.chunks = cases[i];
        assert_int_equal(run_spec(&host, false, &spec), GW_STATUS_OK);
        assert_string_equal(host_out(&host), "Status: 200 OK\r\nContent-Length: 0\r\n\r\n");
    }
    /* No body at all, and an empty bytes body. */
    for (int i = 0; i < 2; i++) {
        test_host host;
        host_init(&host);
        app_spec spec = ok_spec();
        spec.body_kind = i == 0 ? BODY_NONE : BODY_BYTES;
        spec.body = "";
        assert_int_equal(run_spec(&host, false, &spec), GW_STATUS_OK);
        assert_string_equal(host_out(&host), "Status: 200 OK\r\nContent-Length: 0\r\n\r\n");
    }
}

static void test_app_content_length_kept_and_enforced(void **state) {
    (void)state;
    static const gw_header lower[] = { HDR("content-length", "3") };
    static const gw_header ten[] = { HDR("Content-Length", "10") };
    test_host host;
    host_init(&host);
    app_spec spec = ok_spec();
    spec.headers = lower;
    spec.header_count = 1;
    spec.body_kind = BODY_BYTES;
    spec.body = "abc";
    assert_int_equal(run_spec(&host, false, &spec), GW_STATUS_OK);
    assert_string_equal(host_out(&host), "Status: 200 OK\r\ncontent-length: 3\r\n\r\nabc");

    /* Longer than declared: the extra bytes are dropped and logged. */
    host_init(&host);
    spec.body = "abcdef";
    assert_int_equal(run_spec(&host, false, &spec), GW_STATUS_OK);
    assert_string_equal(host_out(&host), "Status: 200 OK\r\ncontent-length: 3\r\n\r\nabc");
    assert_string_equal(host_err(&host),
                        "gateway: response body longer than its Content-Length; the extra bytes were dropped\n");

    /* Shorter than declared: the host is told to close. */
    host_init(&host);
    spec.headers = ten;
    spec.body = "abc";
    assert_int_equal(run_spec(&host, false, &spec), GW_STATUS_RESPONSE_INCOMPLETE);
    assert_string_equal(host_out(&host), "Status: 200 OK\r\nContent-Length: 10\r\n\r\nabc");
    assert_non_null(strstr(host_err(&host), "shorter than its Content-Length (3 of 10 bytes)"));

    /* ... except for HEAD, which declares the GET length without a body. */
    static const char *const head[] = { "REQUEST_METHOD=HEAD", NULL };
    host_init(&host);
    host.vars = head;
    spec.body_kind = BODY_NONE;
    assert_int_equal(run_spec(&host, false, &spec), GW_STATUS_OK);
    assert_string_equal(host_out(&host), "Status: 200 OK\r\nContent-Length: 10\r\n\r\n");
}

static void test_lying_block_count_cannot_overrun(void **state) {
    (void)state;
    static const char *const chunks[] = { "abc", "def", NULL };
    test_host host;
    host_init(&host);
    app_spec spec = iter_spec(chunks);
    spec.block_count = 1;
    assert_int_equal(run_spec(&host, false, &spec), GW_STATUS_OK);
    assert_string_equal(host_out(&host), "Status: 200 OK\r\nContent-Length: 3\r\n\r\nabc");
    assert_non_null(strstr(host_err(&host), "longer than its Content-Length"));
}

static void test_write_then_body(void **state) {
    (void)state;
    test_host host;
    host_init(&host);
    app_spec spec = ok_spec();
    spec.write = "abc";
    spec.body_kind = BODY_BYTES;
    spec.body = "de";
    assert_int_equal(run_spec(&host, false, &spec), GW_STATUS_OK);
    assert_string_equal(host_out(&host), "Status: 200 OK\r\n\r\nabcde");
}

static int32_t body_twice_app(void *userdata, gw_request *req) {
    (void)userdata;
    assert_int_equal(gw_request_start_response(req, "200 OK", 6, NULL, 0, 0), GW_STATUS_OK);
    assert_int_equal(gw_request_set_body_bytes(req, "a", 1), GW_STATUS_OK);
    assert_int_equal(gw_request_set_body_bytes(req, "b", 1), GW_STATUS_INVALID_STATE);
    gw_body_iter iter = { sizeof(gw_body_iter), NULL, iter_next, NULL, NULL };
    assert_int_equal(gw_request_set_body_iter(req, &iter), GW_STATUS_INVALID_STATE);
    return GW_STATUS_OK;
}

static void test_body_set_twice(void **state) {
    (void)state;
    test_host host;
    host_init(&host);
    gw_handler *h = host_handler(&host, false);
    assert_int_equal(gw_handler_run(h, body_twice_app, NULL), GW_STATUS_OK);
    assert_string_equal(host_out(&host), "Status: 200 OK\r\nContent-Length: 1\r\n\r\na");
    gw_handler_free(h);
}

static int make_temp_file(const char *content) {
    char path[] = "/tmp/gw-test-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    return fd;
}

static void test_file_body(void **state) {
    (void)state;
    test_host host;
    host_init(&host);
    app_spec spec = ok_spec();
    spec.body_kind = BODY_FILE;
    spec.fd = make_temp_file("0123456789");
    spec.block_size = 4;
    spec.close_fd = true;
    assert_int_equal(run_spec(&host, false, &spec), GW_STATUS_OK);
    assert_string_equal(host_out(&host), "Status: 200 OK\r\n\r\n0123456789");
    /* The library closed the descriptor it was given. */
    assert_int_equal(fcntl(spec.fd, F_GETFD), -1);
    assert_int_equal(errno, EBADF);

    /* Without close_fd the descriptor stays the app's, read from its current position. */
    host_init(&host);
    spec.fd = make_temp_file("0123456789");
    assert_int_equal(lseek(spec.fd, 6, SEEK_SET), 6);
    spec.close_fd = false;
    spec.block_size = 0;
    assert_int_equal(run_spec(&host, false, &spec), GW_STATUS_OK);
    assert_string_equal(host_out(&host), "Status: 200 OK\r\n\r\n6789");
    assert_int_equal(close(spec.fd), 0);

    /* With wsgi.file_wrapper turned off the call is refused. */
    host_init(&host);
    gw_handler *h = host_handler(&host, false);
    assert_int_equal(gw_handler_set_file_wrapper(h, false), GW_STATUS_OK);
    spec.fd = 0;
    assert_int_equal(gw_handler_run(h, spec_app, &spec), GW_STATUS_APP_ERROR);
    assert_int_equal(spec.body_status, GW_STATUS_UNSUPPORTED);
    gw_handler_free(h);
}

static void test_partial_writes_seven_bytes(void **state) {
    (void)state;
    static const char *const chunks[] = { "first chunk, ", "second chunk, ", "third", NULL };
    test_host whole, partial;
    host_init(&whole);
    host_init(&partial);
    partial.max_write = 7;
    for (int i = 0; i < 2; i++) {
        test_host *host = i == 0 ? &whole : &partial;
        app_spec spec = ok_spec();
        spec.headers = TEXT_PLAIN;
        spec.header_count = 1;
        spec.write = "written, ";
        spec.body_kind = BODY_ITER;
        spec.chunks = chunks;
        assert_int_equal(run_spec(host, false, &spec), GW_STATUS_OK);
    }
    assert_string_equal(host_out(&partial), "Status: 200 OK\r\nContent-Type: text/plain\r\n\r\n"
                                            "written, first chunk, second chunk, third");
    assert_string_equal(host_out(&partial), host_out(&whole));
    assert_true(partial.write_calls > whole.write_calls);
    assert_true(partial.write_calls >= (int)(partial.out_len / 7));
}

/* ---- hooks that fail ----------------------------------------------------------------------- */

static void test_disconnect_errnos(void **state) {
    (void)state;
    const int errnos[] = { EPIPE, ECONNRESET, ECONNABORTED };
    static const char *const chunks[] = { "abc", "def", NULL };
    for (int i = 0; i < 3; i++) {
        for (size_t after = 0; after <= 20; after += 10) {
            test_host host;
            host_init(&host);
            host.fail_errno = errnos[i];
            host.fail_after = after;
            gw_handler *h = host_handler(&host, false);
            app_spec spec = iter_spec(chunks);
            assert_int_equal(gw_handler_run(h, spec_app, &spec), GW_STATUS_CLIENT_GONE);
            assert_string_equal(host_err(&host), "");
            assert_int_equal(spec.close_calls, 1);
            /* The handler is ready for the next request. */
            host.fail_errno = 0;
            host_clear_output(&host);
            host.out_len = 0;
            assert_int_equal(gw_handler_run(h, hello_app, NULL), GW_STATUS_OK);
            assert_string_equal(host_out(&host), "Status: 200 OK\r\nContent-Type: text/plain\r\n"
                                                 "Content-Length: 13\r\n\r\nHello, world!");
            gw_handler_free(h);
        }
    }
}

static int32_t write_after_gone_app(void *userdata, gw_request *req) {
    int *calls = userdata;
    assert_int_equal(gw_request_start_response(req, "200 OK", 6, NULL, 0, 0), GW_STATUS_OK);
    assert_int_equal(gw_request_write(req, "abc", 3), GW_STATUS_CLIENT_GONE);
    /* An app that ignores it gets the same answer, without touching the client again. */
    *calls = 1;
    assert_int_equal(gw_request_write(req, "def", 3), GW_STATUS_CLIENT_GONE);
    return GW_STATUS_OK;
}

static void test_disconnect_inside_app(void **state) {
    (void)state;
    test_host host;
    host_init(&host);
    host.fail_errno = EPIPE;
    gw_handler *h = host_handler(&host, false);
    int calls = 0;
    assert_int_equal(gw_handler_run(h, write_after_gone_app, &calls), GW_STATUS_CLIENT_GONE);
    assert_int_equal(host.write_calls, 1);
    assert_int_equal(calls, 1);
    assert_string_equal(host_err(&host), "");
    gw_handler_free(h);
}

static void test_write_errors_end_the_cycle(void **state) {
    (void)state;
    test_host host;
    host_init(&host);
    host.fail_errno = EIO;
    host.fail_after = 5;
    app_spec spec = ok_spec();
    spec.body_kind = BODY_BYTES;
    spec.body = "hello";
    assert_int_equal(run_spec(&host, false, &spec), GW_STATUS_IO_ERROR);
    assert_string_equal(host_out(&host), "Statu");
    assert_non_null(strstr(host_err(&host), "gateway: write hook failed"));

    /* A write hook that makes no progress is an error, never a loop. */
    host_init(&host);
    host.zero_progress = true;
    assert_int_equal(run_spec(&host, false, &spec), GW_STATUS_IO_ERROR);
    assert_int_equal(host.write_calls, 1);
    assert_string_equal(host_err(&host), "gateway: write hook made no progress\n");

    /* A failing flush is an error too; a flush reporting EPIPE is a disconnect. */
    host_init(&host);
    host.flush_errno = EIO;
    assert_int_equal(run_spec(&host, false, &spec), GW_STATUS_IO_ERROR);
    host_init(&host);
    host.flush_errno = EPIPE;
    assert_int_equal(run_spec(&host, false, &spec), GW_STATUS_CLIENT_GONE);
    assert_string_equal(host_err(&host), "");
}

static void test_close_called_once_on_every_path(void **state) {
    (void)state;
    static const char *const chunks[] = { "abc", NULL };
    /* success, app error after setting the body, iteration error, disconnect */
    for (int path = 0; path < 4; path++) {
        test_host host;
        host_init(&host);
        app_spec spec = iter_spec(chunks);
        gw_status expect = GW_STATUS_OK;
        if (path == 1) {
            spec.fail = true;
            expect = GW_STATUS_APP_ERROR;
        } else if (path == 2) {
            spec.fail_at_chunk = 0;
            expect = GW_STATUS_APP_ERROR;
        } else if (path == 3) {
            host.fail_errno = ECONNRESET;
            expect = GW_STATUS_CLIENT_GONE;
        }
        assert_int_equal(run_spec(&host, false, &spec), expect);
        assert_int_equal(spec.close_calls, 1);
    }
}

static void test_failing_close_is_only_logged(void **state) {
    (void)state;
    static const char *const chunks[] = { "body", NULL };
    test_host host;
    host_init(&host);
    app_spec spec = iter_spec(chunks);
    spec.close_status = GW_STATUS_APP_ERROR;
    assert_int_equal(run_spec(&host, false, &spec), GW_STATUS_OK);
    assert_string_equal(host_out(&host), "Status: 200 OK\r\n\r\nbody");
    assert_int_equal(spec.close_calls, 1);
    assert_non_null(strstr(host_err(&host), "closing the response body failed"));
}

static void test_add_cgi_vars_failure(void **state) {
    (void)state;
    test_host host;
    host_init(&host);
    host.add_vars_status = GW_STATUS_INVALID_ARGUMENT;
    app_spec spec = ok_spec();
    assert_int_equal(run_spec(&host, false, &spec), GW_STATUS_APP_ERROR);
    assert_string_equal(host_out(&host), CGI_ERROR_PAGE);
    assert_non_null(strstr(host_err(&host), "add_cgi_vars hook failed"));
}

/* ---- wsgi.input ------------------------------------------------------------------------------- */

typedef struct input_case {
    char got[256];
    size_t got_len;
    gw_status status;
} input_case;

static int32_t read_all_app(void *userdata, gw_request *req) {
    input_case *c = userdata;
    const char *data = NULL;
    size_t len = 0;
    c->status = gw_request_input_read_all(req, &data, &len);
    if (c->status == GW_STATUS_OK) {
        memcpy(c->got, data, len);
        c->got_len = len;
        /* After the end every read returns nothing. */
        char buf[8];
        size_t n = 99;
        assert_int_equal(gw_request_input_read(req, buf, sizeof buf, &n), GW_STATUS_OK);
        assert_int_equal(n, 0);
    }
    assert_int_equal(gw_request_start_response(req, "200 OK", 6, NULL, 0, 0), GW_STATUS_OK);
    return GW_STATUS_OK;
}

static input_case run_read_all(const char *const *vars, const char *body, size_t max_read) {
    test_host host;
    host_init(&host);
    host.vars = vars;
    host.in = body;
    host.in_len = strlen(body);
    host.max_read = max_read;
    gw_handler *h = host_handler(&host, false);
    input_case c;
    memset(&c, 0, sizeof c);
    assert_int_equal(gw_handler_run(h, read_all_app, &c), GW_STATUS_OK);
    gw_handler_free(h);
    return c;
}

static void test_input_bounded_by_content_length(void **state) {
    (void)state;
    static const char *const cl11[] = { "CONTENT_LENGTH=11", NULL };
    static const char *const empty[] = { "CONTENT_LENGTH=", NULL };
    static const char *const bad[] = { "CONTENT_LENGTH=-1", NULL };
    input_case c = run_read_all(cl11, "hello worldEXTRA: the next request", 0);
    assert_int_equal(c.status, GW_STATUS_OK);
    assert_int_equal(c.got_len, 11);
    assert_memory_equal(c.got, "hello world", 11);
    c = run_read_all(cl11, "hello worldEXTRA", 3);
    assert_int_equal(c.got_len, 11);
    /* A client that sends less than it announced: the body is truncated, an input error. */
    c = run_read_all(cl11, "hello", 0);
    assert_int_equal(c.status, GW_STATUS_INPUT_ERROR);
    assert_int_equal(c.got_len, 0);
    /* Absent or empty CONTENT_LENGTH means no body. */
    c = run_read_all(NULL, "unannounced", 0);
    assert_int_equal(c.status, GW_STATUS_OK);
    assert_int_equal(c.got_len, 0);
    c = run_read_all(empty, "unannounced", 0);
    assert_int_equal(c.got_len, 0);
    c = run_read_all(bad, "body", 0);
    assert_int_equal(c.status, GW_STATUS_INPUT_ERROR);
}

static int32_t lines_app(void *userdata, gw_request *req) {
    input_case *c = userdata;
    char buf[8];
    size_t n = 0;
    /* readline with a size limit, then without reaching it */
    assert_int_equal(gw_request_input_readline(req, buf, 3, &n), GW_STATUS_OK);
    assert_int_equal(n, 3);
    assert_memory_equal(buf, "one", 3);
    assert_int_equal(gw_request_input_readline(req, buf, sizeof buf, &n), GW_STATUS_OK);
    assert_int_equal(n, 1);
    assert_memory_equal(buf, "\n", 1);
    /* read(size) */
    assert_int_equal(gw_request_input_read(req, buf, 2, &n), GW_STATUS_OK);
    assert_int_equal(n, 2);
    assert_memory_equal(buf, "tw", 2);
    /* line iteration */
    const char *line = NULL;
    assert_int_equal(gw_request_input_next_line(req, &line, &n), GW_STATUS_OK);
    assert_int_equal(n, 2);
    assert_memory_equal(line, "o\n", 2);
    /* readlines: the rest, up to CONTENT_LENGTH */
    const gw_bytes *lines = NULL;
    size_t count = 0;
    assert_int_equal(gw_request_input_readlines(req, 0, &lines, &count), GW_STATUS_OK);
    assert_int_equal(count, 2);
    assert_int_equal(lines[0].len, 6);
    assert_memory_equal(lines[0].data, "three\n", 6);
    assert_int_equal(lines[1].len, 4);
    assert_memory_equal(lines[1].data, "four", 4);
    assert_int_equal(gw_request_input_next_line(req, &line, &n), GW_STATUS_OK);
    assert_int_equal(n, 0);
    assert_int_equal(gw_request_input_readlines(req, 0, &lines, &count), GW_STATUS_OK);
    assert_int_equal(count, 0);
    c->status = GW_STATUS_OK;
    return gw_request_start_response(req, "200 OK", 6, NULL, 0, 0);
}

static void test_input_lines(void **state) {
    (void)state;
    static const char *const vars[] = { "CONTENT_LENGTH=18", NULL };
    const char *body = "one\ntwo\nthree\nfourNEXT REQUEST\n";
    for (size_t max_read = 0; max_read <= 2; max_read++) {
        test_host host;
        host_init(&host);
        host.vars = vars;
        host.in = body;
        host.in_len = strlen(body);
        host.max_read = max_read;
        gw_handler *h = host_handler(&host, false);
        input_case c;
        memset(&c, 0, sizeof c);
        c.status = GW_STATUS_APP_ERROR;
        assert_int_equal(gw_handler_run(h, lines_app, &c), GW_STATUS_OK);
        assert_int_equal(c.status, GW_STATUS_OK);
        assert_int_equal(host.in_pos, 18);
        gw_handler_free(h);
    }
}

static int32_t readlines_hint_app(void *userdata, gw_request *req) {
    (void)userdata;
    const gw_bytes *lines = NULL;
    size_t count = 0;
    assert_int_equal(gw_request_input_readlines(req, 5, &lines, &count), GW_STATUS_OK);
    assert_int_equal(count, 2);
    assert_memory_equal(lines[1].data, "bb\n", 3);
    assert_int_equal(gw_request_input_readlines(req, 0, &lines, &count), GW_STATUS_OK);
    assert_int_equal(count, 1);
    assert_memory_equal(lines[0].data, "cc\n", 3);
    return gw_request_start_response(req, "200 OK", 6, NULL, 0, 0);
}

static void test_input_readlines_hint(void **state) {
    (void)state;
    static const char *const vars[] = { "CONTENT_LENGTH=9", NULL };
    test_host host;
    host_init(&host);
    host.vars = vars;
    host.in = "aa\nbb\ncc\n";
    host.in_len = 9;
    gw_handler *h = host_handler(&host, false);
    assert_int_equal(gw_handler_run(h, readlines_hint_app, NULL), GW_STATUS_OK);
    gw_handler_free(h);
}

static void test_input_read_errors(void **state) {
    (void)state;
    static const char *const cl[] = { "CONTENT_LENGTH=4", NULL };
    test_host host;
    host_init(&host);
    host.vars = cl;
    host.in = "body";
    host.in_len = 4;
    host.read_errno = EIO;
    gw_handler *h = host_handler(&host, false);
    input_case c;
    memset(&c, 0, sizeof c);
    assert_int_equal(gw_handler_run(h, read_all_app, &c), GW_STATUS_OK);
    assert_int_equal(c.status, GW_STATUS_INPUT_ERROR);
    host.read_errno = ECONNRESET;
    memset(&c, 0, sizeof c);
    assert_int_equal(gw_handler_run(h, read_all_app, &c), GW_STATUS_OK);
    assert_int_equal(c.status, GW_STATUS_CLIENT_GONE);
    gw_handler_free(h);
}

/* ---- HTTP/1.1: Expect: 100-continue and the keep-alive verdict ------------------------------ */

/* A handler speaking HTTP/1.1 over `host`, whose request has these CGI variables. */
static gw_handler *http11_handler(test_host *host, const char *const *vars) {
    host->vars = vars;
    gw_handler *h = host_handler(host, true);
    assert_int_equal(gw_handler_set_http_version(h, "1.1", 3), GW_STATUS_OK);
    return h;
}

static int32_t write_then_read_app(void *userdata, gw_request *req) {
    input_case *c = userdata;
    assert_int_equal(gw_request_start_response(req, "200 OK", 6, NULL, 0, 0), GW_STATUS_OK);
    assert_int_equal(gw_request_write(req, "early", 5), GW_STATUS_OK);
    const char *data = NULL;
    c->status = gw_request_input_read_all(req, &data, &c->got_len);
    return GW_STATUS_OK;
}

static void test_expect_continue_on_first_read(void **state) {
    (void)state;
    static const char *const expect[] = { "SERVER_PROTOCOL=HTTP/1.1", "HTTP_EXPECT=100-Continue",
                                          "CONTENT_LENGTH=5", NULL };
    test_host host;
    host_init(&host);
    host.in = "hello";
    host.in_len = 5;
    gw_handler *h = http11_handler(&host, expect);
    input_case c;
    memset(&c, 0, sizeof c);
    assert_int_equal(gw_handler_run(h, read_all_app, &c), GW_STATUS_OK);
    assert_int_equal(c.got_len, 5);
    assert_origin_output(&host, "HTTP/1.1 100 Continue\r\n\r\n"
                                "HTTP/1.1 200 OK\r\nDate: {DATE}\r\nContent-Length: 0\r\n\r\n");
    /* The interim response went out before the body was asked for. */
    assert_int_equal(host.out_len_at_first_read, LEN("HTTP/1.1 100 Continue\r\n\r\n"));

    /* An application that never reads the body: no 100, and the connection cannot be reused. */
    host_init(&host);
    host.in = "hello";
    host.in_len = 5;
    host.vars = expect;
    assert_int_equal(gw_handler_set_userdata(h, &host), GW_STATUS_OK);
    assert_int_equal(gw_handler_run(h, hello_app, NULL), GW_STATUS_OK);
    assert_null(strstr(host_out(&host), "100 Continue"));
    bool keep = true;
    assert_int_equal(gw_handler_last_keep_alive(h, &keep), GW_STATUS_OK);
    assert_false(keep);

    /* Never once the final response has started. */
    host_init(&host);
    host.in = "hello";
    host.in_len = 5;
    host.vars = expect;
    assert_int_equal(gw_handler_set_userdata(h, &host), GW_STATUS_OK);
    memset(&c, 0, sizeof c);
    assert_int_equal(gw_handler_run(h, write_then_read_app, &c), GW_STATUS_OK);
    assert_int_equal(c.got_len, 5);
    assert_null(strstr(host_out(&host), "100 Continue"));
    gw_handler_free(h);

    /* Not for HTTP/1.0 clients, not without a body, not for an HTTP/1.0 server. */
    static const char *const old_client[] = { "SERVER_PROTOCOL=HTTP/1.0", "HTTP_EXPECT=100-continue",
                                              "CONTENT_LENGTH=5", NULL };
    static const char *const no_body[] = { "SERVER_PROTOCOL=HTTP/1.1", "HTTP_EXPECT=100-continue", NULL };
    const char *const *cases[] = { old_client, no_body };
    for (int i = 0; i < 2; i++) {
        host_init(&host);
        host.in = "hello";
        host.in_len = 5;
        h = http11_handler(&host, cases[i]);
        memset(&c, 0, sizeof c);
        assert_int_equal(gw_handler_run(h, read_all_app, &c), GW_STATUS_OK);
        assert_null(strstr(host_out(&host), "100 Continue"));
        gw_handler_free(h);
    }
    host_init(&host);
    host.in = "hello";
    host.in_len = 5;
    host.vars = expect;
    h = host_handler(&host, true);
    memset(&c, 0, sizeof c);
    assert_int_equal(gw_handler_run(h, read_all_app, &c), GW_STATUS_OK);
    assert_null(strstr(host_out(&host), "100 Continue"));
    gw_handler_free(h);
}

/* Runs `app` on an HTTP/1.1 handler with these variables and returns the keep-alive verdict. */
static bool keep_alive_after(const char *const *vars, bool origin, const char *version, gw_application_fn app,
                             void *userdata, gw_status expect) {
    test_host host;
    host_init(&host);
    host.in = "hello";
    host.in_len = 5;
    host.vars = vars;
    gw_handler *h = host_handler(&host, origin);
    assert_int_equal(gw_handler_set_http_version(h, version, strlen(version)), GW_STATUS_OK);
    assert_int_equal(gw_handler_run(h, app, userdata), expect);
    bool keep = false;
    assert_int_equal(gw_handler_last_keep_alive(h, &keep), GW_STATUS_OK);
    gw_handler_free(h);
    return keep;
}

static void test_keep_alive_verdict(void **state) {
    (void)state;
    static const char *const v11[] = { "SERVER_PROTOCOL=HTTP/1.1", NULL };
    static const char *const v10[] = { "SERVER_PROTOCOL=HTTP/1.0", NULL };
    static const char *const closing[] = { "SERVER_PROTOCOL=HTTP/1.1", "HTTP_CONNECTION=keep-alive, Close", NULL };
    static const char *const with_body[] = { "SERVER_PROTOCOL=HTTP/1.1", "CONTENT_LENGTH=5", NULL };
    static const char *const head[] = { "SERVER_PROTOCOL=HTTP/1.1", "REQUEST_METHOD=HEAD", NULL };
    static const char *const chunks[] = { "a", "b", NULL };
    /* Framed by Content-Length, by chunks, or by having no body. */
    assert_true(keep_alive_after(v11, true, "1.1", hello_app, NULL, GW_STATUS_OK));
    app_spec spec = iter_spec(chunks);
    assert_true(keep_alive_after(v11, true, "1.1", spec_app, &spec, GW_STATUS_OK));
    assert_true(keep_alive_after(head, true, "1.1", hello_app, NULL, GW_STATUS_OK));
    /* The request body must have been read to its end, by the app or by the drain. */
    assert_true(keep_alive_after(with_body, true, "1.1", hello_app, NULL, GW_STATUS_OK));
    input_case c;
    memset(&c, 0, sizeof c);
    assert_true(keep_alive_after(with_body, true, "1.1", read_all_app, &c, GW_STATUS_OK));
    /* Not when either side is HTTP/1.0, the client asks to close, in CGI mode, or after a failure. */
    assert_false(keep_alive_after(v10, true, "1.1", hello_app, NULL, GW_STATUS_OK));
    assert_false(keep_alive_after(v11, true, "1.0", hello_app, NULL, GW_STATUS_OK));
    assert_false(keep_alive_after(closing, true, "1.1", hello_app, NULL, GW_STATUS_OK));
    assert_false(keep_alive_after(v11, false, "1.1", hello_app, NULL, GW_STATUS_OK));
    spec = ok_spec();
    spec.fail = true;
    assert_false(keep_alive_after(v11, true, "1.1", spec_app, &spec, GW_STATUS_APP_ERROR));

    bool keep = true;
    assert_int_equal(gw_handler_last_keep_alive(NULL, &keep), GW_STATUS_NULL_ARGUMENT);
    test_host host;
    host_init(&host);
    gw_handler *h = host_handler(&host, true);
    assert_int_equal(gw_handler_last_keep_alive(h, NULL), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_handler_last_keep_alive(h, &keep), GW_STATUS_OK);
    assert_false(keep);
    gw_handler_free(h);
}

/* ---- wsgi.errors ------------------------------------------------------------------------------- */

static int32_t errors_app(void *userdata, gw_request *req) {
    (void)userdata;
    const gw_bytes lines[] = { { "two\n", 4 }, { "three\n", 6 } };
    assert_int_equal(gw_request_errors_write(req, "one\n", 4), GW_STATUS_OK);
    assert_int_equal(gw_request_errors_writelines(req, lines, 2), GW_STATUS_OK);
    assert_int_equal(gw_request_errors_flush(req), GW_STATUS_OK);
    return gw_request_start_response(req, "200 OK", 6, NULL, 0, 0);
}

static void test_errors_stream(void **state) {
    (void)state;
    test_host host;
    host_init(&host);
    gw_handler *h = host_handler(&host, false);
    assert_int_equal(gw_handler_run(h, errors_app, NULL), GW_STATUS_OK);
    assert_string_equal(host_err(&host), "one\ntwo\nthree\n");
    assert_int_equal(host.err_flush_calls, 1);
    gw_handler_free(h);
}

/* ---- the environ -------------------------------------------------------------------------------- */

typedef struct environ_dump {
    char text[2048];
} environ_dump;

static int32_t dump_environ_app(void *userdata, gw_request *req) {
    environ_dump *dump = userdata;
    gw_environ *env = NULL;
    assert_int_equal(gw_request_environ(req, &env), GW_STATUS_OK);
    size_t cursor = 0, used = 0;
    const char *name, *value;
    size_t name_len, value_len;
    while (gw_environ_next(env, &cursor, &name, &name_len, &value, &value_len) == GW_STATUS_OK) {
        used += (size_t)snprintf(dump->text + used, sizeof dump->text - used, "%.*s=%.*s\n", (int)name_len,
                                 name, (int)value_len, value);
    }
    return gw_request_start_response(req, "200 OK", 6, NULL, 0, 0);
}

static void test_environ_order_and_precedence(void **state) {
    (void)state;
    static const char *const vars[] = { "B=cgi", "wsgi.url_scheme=ftp", "HTTPS=on", "C=cgi",
                                        "SERVER_SOFTWARE=from-cgi", NULL };
    gw_environ *os = NULL;
    assert_int_equal(gw_environ_new(&os), GW_STATUS_OK);
    assert_int_equal(gw_environ_set(os, "A", 1, "os", 2), GW_STATUS_OK);
    assert_int_equal(gw_environ_set(os, "B", 1, "os", 2), GW_STATUS_OK);
    assert_int_equal(gw_environ_set(os, "wsgi.multithread", 16, "os", 2), GW_STATUS_OK);
    test_host host;
    host_init(&host);
    host.vars = vars;
    gw_handler *h = host_handler(&host, true);
    assert_int_equal(gw_handler_set_os_environ(h, os), GW_STATUS_OK);
    assert_int_equal(gw_handler_set_server_software(h, "gw-test/1", 9), GW_STATUS_OK);
    /* A later change to the caller's environ does not reach the handler's snapshot. */
    assert_int_equal(gw_environ_set(os, "A", 1, "changed", 7), GW_STATUS_OK);
    gw_environ_free(os);
    environ_dump dump;
    memset(&dump, 0, sizeof dump);
    assert_int_equal(gw_handler_run(h, dump_environ_app, &dump), GW_STATUS_OK);
    assert_string_equal(dump.text, "A=os\nB=cgi\nwsgi.multithread=1\nwsgi.url_scheme=https\nHTTPS=on\nC=cgi\n"
                                   "SERVER_SOFTWARE=from-cgi\nwsgi.input=gw_request_input\nwsgi.errors=gw_request_errors\n"
                                   "wsgi.version=1.0\nwsgi.run_once=0\nwsgi.multiprocess=1\n"
                                   "wsgi.file_wrapper=gw_request_set_body_file\nwsgi.input_terminated=1\n");
    /* The base environ can be read back. */
    gw_environ *back = NULL;
    assert_int_equal(gw_handler_copy_os_environ(h, &back), GW_STATUS_OK);
    const char *value = NULL;
    size_t len = 0;
    assert_int_equal(gw_environ_get(back, "A", 1, &value, &len), GW_STATUS_OK);
    assert_string_equal(value, "os");
    gw_environ_free(back);
    gw_handler_free(h);
}

static void test_environ_defaults_and_server_software(void **state) {
    (void)state;
    static const char *const vars[] = { "HTTPS=ON", NULL };
    static const char *const record[] = { "SERVER_SOFTWARE", "wsgi.url_scheme", "wsgi.multithread",
                                          "wsgi.multiprocess", "wsgi.run_once", "wsgi.version", "PATH", NULL };
    test_host host;
    host_init(&host);
    host.vars = vars;
    gw_handler *h = host_handler(&host, true);
    assert_int_equal(gw_handler_set_server_software(h, "gw-test/1", 9), GW_STATUS_OK);
    app_spec spec = ok_spec();
    spec.record = record;
    assert_int_equal(gw_handler_run(h, spec_app, &spec), GW_STATUS_OK);
    /* HTTPS is compared case-sensitively, as wsgiref; the process environment is not inherited. */
    assert_string_equal(spec.seen, "SERVER_SOFTWARE=gw-test/1;wsgi.url_scheme=http;wsgi.multithread=1;"
                                   "wsgi.multiprocess=1;wsgi.run_once=0;wsgi.version=1.0;PATH absent;");
    gw_handler_free(h);
}

/* Overwriting a value, or setting and removing a key, reuses space: a 1 MiB value replaced
 * 200 times stays one live key, not 200 MiB. */
static int32_t frees_its_environ_app(void *userdata, gw_request *req) {
    gw_status *refused = userdata;
    gw_environ *env = NULL;
    assert_int_equal(gw_request_environ(req, &env), GW_STATUS_OK);
    *refused = gw_environ_free(env);
    /* Refused, and the environ is still there. */
    const char *value = NULL;
    size_t len = 0;
    assert_int_equal(gw_environ_get(env, "wsgi.version", 12, &value, &len), GW_STATUS_OK);
    return hello_app(NULL, req);
}

static void test_a_request_environ_cannot_be_freed(void **state) {
    (void)state;
    test_host host;
    host_init(&host);
    gw_handler *h = host_handler(&host, false);
    gw_status refused = GW_STATUS_OK;
    assert_int_equal(gw_handler_run(h, frees_its_environ_app, &refused), GW_STATUS_OK);
    assert_int_equal(refused, GW_STATUS_INVALID_STATE);
    assert_non_null(strstr(gw_last_error_message(), "belongs to a request"));
    assert_int_equal(gw_environ_free(NULL), GW_STATUS_OK);
    gw_environ *owned = NULL;
    assert_int_equal(gw_environ_new(&owned), GW_STATUS_OK);
    assert_int_equal(gw_environ_free(owned), GW_STATUS_OK);
    gw_handler_free(h);
}

static void test_environ_reclaims_space(void **state) {
    (void)state;
    gw_environ *env = NULL;
    assert_int_equal(gw_environ_new(&env), GW_STATUS_OK);
    char *big = malloc(GW_ENVIRON_MAX_VALUE_LEN);
    assert_non_null(big);
    for (int i = 0; i < 200; i++) {
        memset(big, 'a' + i % 26, GW_ENVIRON_MAX_VALUE_LEN);
        assert_int_equal(gw_environ_set(env, "BIG", 3, big, GW_ENVIRON_MAX_VALUE_LEN - (size_t)(i % 2)),
                         GW_STATUS_OK);
        assert_int_equal(gw_environ_set(env, "TMP", 3, big, 4096), GW_STATUS_OK);
        assert_int_equal(gw_environ_remove(env, "TMP", 3), GW_STATUS_OK);
    }
    const char *value = NULL;
    size_t len = 0;
    assert_int_equal(gw_environ_get(env, "BIG", 3, &value, &len), GW_STATUS_OK);
    assert_int_equal(len, GW_ENVIRON_MAX_VALUE_LEN - 1);
    assert_int_equal(value[0], 'a' + 199 % 26);
    assert_int_equal(gw_environ_len(env, &len), GW_STATUS_OK);
    assert_int_equal(len, 1);
    free(big);
    gw_environ_free(env);
}

static void test_environ_object(void **state) {
    (void)state;
    gw_environ *env = NULL;
    assert_int_equal(gw_environ_new(&env), GW_STATUS_OK);
    assert_int_equal(gw_environ_set(env, "B", 1, "1", 1), GW_STATUS_OK);
    assert_int_equal(gw_environ_set(env, "A", 1, "x\0y", 3), GW_STATUS_OK);
    assert_int_equal(gw_environ_set(env, "B", 1, "2", 1), GW_STATUS_OK);
    size_t len = 0;
    assert_int_equal(gw_environ_len(env, &len), GW_STATUS_OK);
    assert_int_equal(len, 2);
    const char *value = NULL;
    size_t value_len = 0;
    assert_int_equal(gw_environ_get(env, "A", 1, &value, &value_len), GW_STATUS_OK);
    assert_int_equal(value_len, 3);
    assert_memory_equal(value, "x\0y", 4);
    assert_int_equal(gw_environ_get(env, "Z", 1, &value, &value_len), GW_STATUS_NOT_FOUND);
    size_t cursor = 0;
    const char *name = NULL;
    size_t name_len = 0;
    assert_int_equal(gw_environ_next(env, &cursor, &name, &name_len, &value, &value_len), GW_STATUS_OK);
    assert_memory_equal(name, "B", 1);
    assert_memory_equal(value, "2", 1);
    assert_int_equal(gw_environ_remove(env, "B", 1), GW_STATUS_OK);
    assert_int_equal(gw_environ_remove(env, "B", 1), GW_STATUS_NOT_FOUND);
    assert_int_equal(gw_environ_set(env, "", 0, "v", 1), GW_STATUS_INVALID_ARGUMENT);
    assert_int_equal(gw_environ_set(env, "A=B", 3, "v", 1), GW_STATUS_INVALID_ARGUMENT);
    assert_int_equal(gw_environ_set(env, "Q", 1, NULL, 0), GW_STATUS_OK);
    assert_int_equal(gw_environ_get(env, "Q", 1, &value, &value_len), GW_STATUS_OK);
    assert_int_equal(value_len, 0);
    gw_environ_free(env);

    /* From the process environment, byte for byte. */
    assert_int_equal(setenv("GW_TEST_RAW", "caf\xe9", 1), 0);
    assert_int_equal(gw_environ_new_from_process(&env), GW_STATUS_OK);
    assert_int_equal(gw_environ_get(env, "GW_TEST_RAW", 11, &value, &value_len), GW_STATUS_OK);
    assert_int_equal(value_len, 4);
    assert_memory_equal(value, "caf\xe9", 4);
    gw_environ_free(env);
    unsetenv("GW_TEST_RAW");
}

/* ---- settings and presets ------------------------------------------------------------------------ */

static void test_handler_defaults_and_setters(void **state) {
    (void)state;
    test_host host;
    host_init(&host);
    gw_handler_hooks hooks = host_hooks(&host);
    gw_handler *h = NULL;
    assert_int_equal(gw_handler_new(&hooks, &h), GW_STATUS_OK);
    bool flag = false;
    assert_int_equal(gw_handler_get_multithread(h, &flag), GW_STATUS_OK);
    assert_true(flag);
    assert_int_equal(gw_handler_get_multiprocess(h, &flag), GW_STATUS_OK);
    assert_true(flag);
    assert_int_equal(gw_handler_get_run_once(h, &flag), GW_STATUS_OK);
    assert_false(flag);
    assert_int_equal(gw_handler_get_origin_server(h, &flag), GW_STATUS_OK);
    assert_true(flag);
    assert_int_equal(gw_handler_get_file_wrapper(h, &flag), GW_STATUS_OK);
    assert_true(flag);
    const char *text = NULL;
    size_t len = 1;
    assert_int_equal(gw_handler_get_server_software(h, &text, &len), GW_STATUS_OK);
    assert_null(text);
    assert_int_equal(len, 0);
    assert_int_equal(gw_handler_get_http_version(h, &text, &len), GW_STATUS_OK);
    assert_int_equal(len, 3);
    assert_memory_equal(text, "1.0", 3);

    assert_int_equal(gw_handler_set_multithread(h, false), GW_STATUS_OK);
    assert_int_equal(gw_handler_set_multiprocess(h, false), GW_STATUS_OK);
    assert_int_equal(gw_handler_set_run_once(h, true), GW_STATUS_OK);
    assert_int_equal(gw_handler_set_origin_server(h, false), GW_STATUS_OK);
    assert_int_equal(gw_handler_set_file_wrapper(h, false), GW_STATUS_OK);
    assert_int_equal(gw_handler_get_multithread(h, &flag), GW_STATUS_OK);
    assert_false(flag);
    assert_int_equal(gw_handler_get_multiprocess(h, &flag), GW_STATUS_OK);
    assert_false(flag);
    assert_int_equal(gw_handler_get_run_once(h, &flag), GW_STATUS_OK);
    assert_true(flag);
    assert_int_equal(gw_handler_get_origin_server(h, &flag), GW_STATUS_OK);
    assert_false(flag);
    assert_int_equal(gw_handler_get_file_wrapper(h, &flag), GW_STATUS_OK);
    assert_false(flag);

    assert_int_equal(gw_handler_set_http_version(h, "1.1", 3), GW_STATUS_OK);
    assert_int_equal(gw_handler_set_http_version(h, "1.1\r\n", 5), GW_STATUS_INVALID_ARGUMENT);
    assert_int_equal(gw_handler_set_http_version(h, "x", 1), GW_STATUS_INVALID_ARGUMENT);
    assert_int_equal(gw_handler_get_http_version(h, &text, &len), GW_STATUS_OK);
    assert_memory_equal(text, "1.1", 3);
    assert_int_equal(gw_handler_set_server_software(h, "a\r\nb", 4), GW_STATUS_INVALID_ARGUMENT);
    assert_int_equal(gw_handler_set_server_software(h, "sw/1", 4), GW_STATUS_OK);
    assert_int_equal(gw_handler_get_server_software(h, &text, &len), GW_STATUS_OK);
    assert_int_equal(len, 4);
    assert_int_equal(gw_handler_set_server_software(h, NULL, 0), GW_STATUS_OK);
    assert_int_equal(gw_handler_get_server_software(h, &text, &len), GW_STATUS_OK);
    assert_null(text);

    /* The hooks' userdata can change between requests. */
    test_host other;
    host_init(&other);
    void *ud = NULL;
    assert_int_equal(gw_handler_set_userdata(h, &other), GW_STATUS_OK);
    assert_int_equal(gw_handler_get_userdata(h, &ud), GW_STATUS_OK);
    assert_ptr_equal(ud, &other);
    assert_int_equal(gw_handler_run(h, hello_app, NULL), GW_STATUS_OK);
    assert_int_equal(host.out_len, 0);
    assert_true(other.out_len > 0);
    gw_handler_free(h);

    /* write is the one required hook. */
    hooks.write = NULL;
    assert_int_equal(gw_handler_new(&hooks, &h), GW_STATUS_NULL_ARGUMENT);
    assert_string_equal(gw_last_error_message(), "hooks->write is NULL");
}

static int32_t reentrant_app(void *userdata, gw_request *req) {
    gw_handler *h = userdata;
    assert_int_equal(gw_handler_run(h, hello_app, NULL), GW_STATUS_INVALID_STATE);
    assert_int_equal(gw_handler_set_multithread(h, false), GW_STATUS_INVALID_STATE);
    return gw_request_start_response(req, "200 OK", 6, NULL, 0, 0);
}

static void test_handler_refuses_reentry(void **state) {
    (void)state;
    test_host host;
    host_init(&host);
    gw_handler *h = host_handler(&host, false);
    assert_int_equal(gw_handler_run(h, reentrant_app, h), GW_STATUS_OK);
    gw_handler_free(h);
}

/* Records the wsgi.* flags and PATH_INFO as the body. */
static int32_t flags_app(void *userdata, gw_request *req) {
    (void)userdata;
    gw_environ *env = NULL;
    gw_request_environ(req, &env);
    const char *names[] = { "wsgi.multithread", "wsgi.multiprocess", "wsgi.run_once", "PATH_INFO" };
    char body[256];
    size_t used = 0;
    for (int i = 0; i < 4; i++) {
        const char *value = "-";
        size_t len = 1;
        gw_environ_get(env, names[i], strlen(names[i]), &value, &len);
        used += (size_t)snprintf(body + used, sizeof body - used, "%s=%.*s;", names[i], (int)len, value);
    }
    gw_status st = gw_request_start_response(req, "200 OK", 6, TEXT_PLAIN, 1, 0);
    if (st != GW_STATUS_OK) return st;
    return gw_request_set_body_bytes(req, body, used);
}

static size_t read_fd(int fd, char *buf, size_t cap) {
    size_t used = 0;
    ssize_t n;
    while (used < cap - 1 && (n = read(fd, buf + used, cap - 1 - used)) > 0) used += (size_t)n;
    buf[used] = '\0';
    return used;
}

static void test_simple_and_base_cgi_presets(void **state) {
    (void)state;
    for (int cgi = 0; cgi <= 1; cgi++) {
        int in[2], out[2], err[2];
        assert_int_equal(pipe(in), 0);
        assert_int_equal(pipe(out), 0);
        assert_int_equal(pipe(err), 0);
        gw_environ *env = NULL;
        assert_int_equal(gw_environ_new(&env), GW_STATUS_OK);
        assert_int_equal(gw_environ_set(env, "PATH_INFO", 9, "/p", 2), GW_STATUS_OK);
        assert_int_equal(gw_environ_set(env, "SERVER_PROTOCOL", 15, "HTTP/1.0", 8), GW_STATUS_OK);
        gw_handler *h = NULL;
        gw_status st = cgi ? gw_handler_new_base_cgi(in[0], out[1], err[1], env, &h)
                           : gw_handler_new_simple(in[0], out[1], err[1], env, &h);
        assert_int_equal(st, GW_STATUS_OK);
        /* wsgiref's SimpleHandler(multithread=True, multiprocess=False): the setters. */
        assert_int_equal(gw_handler_set_multithread(h, true), GW_STATUS_OK);
        assert_int_equal(gw_handler_set_multiprocess(h, false), GW_STATUS_OK);
        gw_environ_free(env);
        assert_int_equal(gw_handler_set_userdata(h, NULL), GW_STATUS_INVALID_STATE);
        assert_int_equal(gw_handler_run(h, flags_app, NULL), GW_STATUS_OK);
        gw_handler_free(h);
        close(out[1]);
        char got[1024];
        read_fd(out[0], got, sizeof got);
        const char *body = "wsgi.multithread=1;wsgi.multiprocess=0;wsgi.run_once=0;PATH_INFO=/p;";
        char want[1024];
        if (cgi) {
            snprintf(want, sizeof want, "Status: 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n\r\n%s",
                     strlen(body), body);
            assert_string_equal(got, want);
        } else {
            snprintf(want, sizeof want,
                     "HTTP/1.0 200 OK\r\nDate: {DATE}\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n\r\n%s",
                     strlen(body), body);
            test_host fake;
            host_init(&fake);
            memcpy(fake.out, got, strlen(got));
            fake.out_len = strlen(got);
            assert_origin_output(&fake, want);
        }
        close(in[0]);
        close(in[1]);
        close(out[0]);
        close(err[0]);
        close(err[1]);
    }
    gw_handler *h = NULL;
    assert_int_equal(gw_handler_new_simple(-1, 1, 2, NULL, &h), GW_STATUS_INVALID_ARGUMENT);
}

/* Runs a CGI preset in a child process with the given environment; returns its stdout. */
static void run_cgi_child(bool iis, const char *script_name, const char *path_info, char *got, size_t cap) {
    int out[2];
    assert_int_equal(pipe(out), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(out[1], 1);
        close(out[0]);
        close(out[1]);
        setenv("SCRIPT_NAME", script_name, 1);
        setenv("PATH_INFO", path_info, 1);
        gw_handler *h = NULL;
        if ((iis ? gw_handler_new_iis_cgi(&h) : gw_handler_new_cgi(&h)) != GW_STATUS_OK) _exit(2);
        gw_status st = gw_handler_run(h, flags_app, NULL);
        gw_handler_free(h);
        _exit(st == GW_STATUS_OK ? 0 : 3);
    }
    close(out[1]);
    read_fd(out[0], got, cap);
    close(out[0]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_cgi_and_iis_presets(void **state) {
    (void)state;
    const char *prefix = "Status: 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ";
    char got[1024], want[1024];
    const char *cases[][4] = {
        /* iis?, SCRIPT_NAME, PATH_INFO, expected PATH_INFO */
        { "cgi", "/app", "/app/x", "/app/x" },
        { "iis", "/app", "/app/x", "/x" },
        { "iis", "/app", "/app", "" },
        { "iis", "/app", "/apple", "/apple" },
        { "iis", "", "/x", "/x" },
        { "iis", "/app", "/x", "/x" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        run_cgi_child(strcmp(cases[i][0], "iis") == 0, cases[i][1], cases[i][2], got, sizeof got);
        char body[256];
        snprintf(body, sizeof body, "wsgi.multithread=0;wsgi.multiprocess=1;wsgi.run_once=1;PATH_INFO=%s;",
                 cases[i][3]);
        snprintf(want, sizeof want, "%s%zu\r\n\r\n%s", prefix, strlen(body), body);
        assert_string_equal(got, want);
    }
}

/* ---- helpers, versions, NULL arguments ------------------------------------------------------------ */

static void test_format_date_time_and_version(void **state) {
    (void)state;
    char date[GW_HTTP_DATE_LEN + 1];
    assert_int_equal(gw_format_date_time(0, date, sizeof date), GW_STATUS_OK);
    assert_string_equal(date, "Thu, 01 Jan 1970 00:00:00 GMT");
    assert_int_equal(gw_format_date_time(1000000000, date, sizeof date), GW_STATUS_OK);
    assert_string_equal(date, "Sun, 09 Sep 2001 01:46:40 GMT");
    assert_int_equal(gw_format_date_time(0, date, GW_HTTP_DATE_LEN), GW_STATUS_INVALID_ARGUMENT);
    assert_int_equal(gw_format_date_time(0, NULL, 30), GW_STATUS_NULL_ARGUMENT);

    assert_string_equal(gw_version(), GW_VERSION);
    assert_int_equal(gw_version_number(), GW_VERSION_NUMBER);
    char from_parts[32];
    snprintf(from_parts, sizeof from_parts, "%d.%d.%d", GW_VERSION_MAJOR, GW_VERSION_MINOR, GW_VERSION_PATCH);
    assert_string_equal(from_parts, GW_VERSION);
    assert_int_equal(gw_version_number() & 0xff, GW_VERSION_PATCH);

    assert_string_equal(gw_status_str(GW_STATUS_OK), "ok");
    assert_string_equal(gw_status_str(GW_STATUS_HEADERS_ALREADY_SET), "Headers already set!");
    assert_string_equal(gw_status_str(9999), "unknown status");
    assert_string_equal(gw_status_str(-1), "unknown status");
}

static int32_t null_request_args_app(void *userdata, gw_request *req) {
    (void)userdata;
    size_t n = 0;
    const char *p = NULL;
    char buf[4];
    const gw_bytes *lines = NULL;
    gw_header bad = { NULL, 3, "v", 1 };
    assert_int_equal(gw_request_environ(req, NULL), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_request_start_response(req, NULL, 6, NULL, 0, 0), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_request_start_response(req, "200 OK", 6, NULL, 1, 0), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_request_start_response(req, "200 OK", 6, &bad, 1, 0), GW_STATUS_NULL_ARGUMENT);
    assert_string_equal(gw_last_error_message(), "headers[0].name is NULL");
    assert_int_equal(gw_request_write(req, NULL, 1), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_request_set_body_bytes(req, NULL, 1), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_request_set_body_iter(req, NULL), GW_STATUS_NULL_ARGUMENT);
    gw_body_iter no_next = { sizeof(gw_body_iter), NULL, NULL, NULL, NULL };
    assert_int_equal(gw_request_set_body_iter(req, &no_next), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_request_set_body_file(req, -1, 0, false), GW_STATUS_INVALID_ARGUMENT);
    assert_int_equal(gw_request_fail(req, NULL, 3), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_request_input_read(req, NULL, 4, &n), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_request_input_read(req, buf, 4, NULL), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_request_input_readline(req, NULL, 4, &n), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_request_input_readline(req, buf, 4, NULL), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_request_input_read_all(req, NULL, &n), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_request_input_read_all(req, &p, NULL), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_request_input_next_line(req, NULL, &n), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_request_input_next_line(req, &p, NULL), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_request_input_readlines(req, 0, NULL, &n), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_request_input_readlines(req, 0, &lines, NULL), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_request_errors_write(req, NULL, 1), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_request_errors_writelines(req, NULL, 1), GW_STATUS_NULL_ARGUMENT);
    gw_bytes bad_line = { NULL, 2 };
    assert_int_equal(gw_request_errors_writelines(req, &bad_line, 1), GW_STATUS_NULL_ARGUMENT);
    /* Zero lengths accept NULL. */
    assert_int_equal(gw_request_errors_write(req, NULL, 0), GW_STATUS_OK);
    assert_int_equal(gw_request_input_read(req, NULL, 0, &n), GW_STATUS_OK);
    assert_int_equal(gw_request_start_response(req, "200 OK", 6, NULL, 0, 0), GW_STATUS_OK);
    return gw_request_set_body_bytes(req, NULL, 0);
}

static void test_null_arguments(void **state) {
    (void)state;
    test_host host;
    host_init(&host);
    gw_handler *h = host_handler(&host, false);
    gw_environ *env = NULL;
    assert_int_equal(gw_environ_new(&env), GW_STATUS_OK);
    const char *p = NULL;
    size_t n = 0, cursor = 0;
    bool flag = false;
    void *ud = NULL;
    gw_header hdr;
    gw_handler *out = NULL;
    gw_handler_hooks hooks = host_hooks(&host);

    /* Requests exist only inside a run. */
    assert_int_equal(gw_request_environ(NULL, (gw_environ **)&ud), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_request_start_response(NULL, "200 OK", 6, NULL, 0, 0), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_request_write(NULL, "x", 1), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_request_set_body_bytes(NULL, "x", 1), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_request_set_body_iter(NULL, NULL), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_request_set_body_file(NULL, 0, 0, false), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_request_fail(NULL, "x", 1), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_request_input_read(NULL, &n, 1, &n), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_request_input_readline(NULL, &n, 1, &n), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_request_input_read_all(NULL, &p, &n), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_request_input_next_line(NULL, &p, &n), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_request_input_readlines(NULL, 0, (const gw_bytes **)&ud, &n), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_request_errors_write(NULL, "x", 1), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_request_errors_writelines(NULL, NULL, 0), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_request_errors_flush(NULL), GW_STATUS_NULL_ARGUMENT);

    /* Environs. */
    assert_int_equal(gw_environ_new(NULL), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_environ_new_from_process(NULL), GW_STATUS_NULL_ARGUMENT);
    gw_environ_free(NULL);
    assert_int_equal(gw_environ_set(NULL, "A", 1, "b", 1), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_environ_set(env, NULL, 1, "b", 1), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_environ_set(env, "A", 1, NULL, 1), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_environ_get(NULL, "A", 1, &p, &n), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_environ_get(env, NULL, 1, &p, &n), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_environ_get(env, "A", 1, NULL, &n), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_environ_get(env, "A", 1, &p, NULL), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_environ_remove(NULL, "A", 1), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_environ_remove(env, NULL, 1), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_environ_len(NULL, &n), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_environ_len(env, NULL), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_environ_next(NULL, &cursor, &p, &n, &p, &n), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_environ_next(env, NULL, &p, &n, &p, &n), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_environ_next(env, &cursor, NULL, &n, &p, &n), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_environ_next(env, &cursor, &p, NULL, &p, &n), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_environ_next(env, &cursor, &p, &n, NULL, &n), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_environ_next(env, &cursor, &p, &n, &p, NULL), GW_STATUS_NULL_ARGUMENT);

    /* Handlers. */
    assert_int_equal(gw_handler_new(NULL, &out), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_handler_new(&hooks, NULL), GW_STATUS_NULL_ARGUMENT);
    gw_handler_free(NULL);
    assert_int_equal(gw_handler_run(NULL, hello_app, NULL), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_handler_run(h, NULL, NULL), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_handler_set_userdata(NULL, NULL), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_handler_get_userdata(NULL, &ud), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_handler_get_userdata(h, NULL), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_handler_set_multithread(NULL, true), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_handler_get_multithread(NULL, &flag), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_handler_get_multithread(h, NULL), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_handler_set_multiprocess(NULL, true), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_handler_get_multiprocess(NULL, &flag), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_handler_get_multiprocess(h, NULL), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_handler_set_run_once(NULL, true), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_handler_get_run_once(NULL, &flag), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_handler_get_run_once(h, NULL), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_handler_set_origin_server(NULL, true), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_handler_get_origin_server(NULL, &flag), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_handler_get_origin_server(h, NULL), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_handler_set_file_wrapper(NULL, true), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_handler_get_file_wrapper(NULL, &flag), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_handler_get_file_wrapper(h, NULL), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_handler_set_http_version(NULL, "1.1", 3), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_handler_set_http_version(h, NULL, 3), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_handler_get_http_version(NULL, &p, &n), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_handler_get_http_version(h, NULL, &n), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_handler_get_http_version(h, &p, NULL), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_handler_set_server_software(NULL, "x", 1), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_handler_set_server_software(h, NULL, 1), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_handler_get_server_software(NULL, &p, &n), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_handler_get_server_software(h, NULL, &n), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_handler_get_server_software(h, &p, NULL), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_handler_set_os_environ(NULL, env), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_handler_set_os_environ(h, NULL), GW_STATUS_OK);
    assert_int_equal(gw_handler_copy_os_environ(NULL, &env), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_handler_copy_os_environ(h, NULL), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_handler_set_error_page(NULL, "500 X", 5, NULL, 0, "", 0), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_handler_set_error_page(h, NULL, 5, NULL, 0, "", 0), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_handler_set_error_page(h, "500 X", 5, NULL, 1, "", 0), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_handler_set_error_page(h, "500 X", 5, NULL, 0, NULL, 1), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_handler_get_error_status(NULL, &p, &n), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_handler_get_error_status(h, NULL, &n), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_handler_get_error_status(h, &p, NULL), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_handler_get_error_body(NULL, &p, &n), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_handler_get_error_body(h, NULL, &n), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_handler_get_error_body(h, &p, NULL), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_handler_get_error_header_count(NULL, &n), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_handler_get_error_header_count(h, NULL), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_handler_get_error_header(NULL, 0, &hdr), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_handler_get_error_header(h, 0, NULL), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_handler_new_simple(0, 1, 2, NULL, NULL), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_handler_new_base_cgi(0, 1, 2, NULL, NULL), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_handler_new_cgi(NULL), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_handler_new_iis_cgi(NULL), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_format_date_time(0, NULL, 0), GW_STATUS_NULL_ARGUMENT);
    uint16_t code = 0;
    uint64_t bytes = 0;
    assert_int_equal(gw_handler_last_response(NULL, &code, &bytes), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_handler_last_response(h, NULL, &bytes), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_handler_last_response(h, &code, NULL), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_handler_last_keep_alive(NULL, &flag), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_handler_last_keep_alive(h, NULL), GW_STATUS_NULL_ARGUMENT);
    assert_non_null(gw_last_error_message());
    /* The functions without pointer arguments answer for any input. */
    assert_non_null(gw_status_str(-5));
    assert_non_null(gw_version());
    assert_true(gw_version_number() > 0);

    /* NULL arguments from inside an application. */
    assert_int_equal(gw_handler_run(h, null_request_args_app, NULL), GW_STATUS_OK);
    assert_string_equal(host_out(&host), "Status: 200 OK\r\nContent-Length: 0\r\n\r\n");
    gw_environ_free(env);
    gw_handler_free(h);
}

static int32_t empty_write_app(void *userdata, gw_request *req) {
    (void)userdata;
    assert_int_equal(gw_request_start_response(req, "200 OK", 6, NULL, 0, 0), GW_STATUS_OK);
    assert_int_equal(gw_request_write(req, NULL, 0), GW_STATUS_OK);
    return gw_request_fail(req, "after an empty write", LEN("after an empty write"));
}

static void test_empty_write_commits_headers(void **state) {
    (void)state;
    test_host host;
    host_init(&host);
    gw_handler *h = host_handler(&host, false);
    assert_int_equal(gw_handler_run(h, empty_write_app, NULL), GW_STATUS_RESPONSE_INCOMPLETE);
    assert_string_equal(host_out(&host), "Status: 200 OK\r\n\r\n");
    uint16_t code = 0;
    uint64_t bytes = 99;
    assert_int_equal(gw_handler_last_response(h, &code, &bytes), GW_STATUS_OK);
    assert_int_equal(code, 200);
    assert_int_equal(bytes, 0);
    gw_handler_free(h);
}

static void test_last_response(void **state) {
    (void)state;
    test_host host;
    host_init(&host);
    gw_handler *h = host_handler(&host, false);
    uint16_t code = 1;
    uint64_t bytes = 1;
    assert_int_equal(gw_handler_last_response(h, &code, &bytes), GW_STATUS_OK);
    assert_int_equal(code, 0);
    assert_int_equal(bytes, 0);
    assert_int_equal(gw_handler_run(h, hello_app, NULL), GW_STATUS_OK);
    assert_int_equal(gw_handler_last_response(h, &code, &bytes), GW_STATUS_OK);
    assert_int_equal(code, 200);
    assert_int_equal(bytes, 13);
    app_spec spec = spec_defaults();
    spec.fail = true;
    assert_int_equal(gw_handler_run(h, spec_app, &spec), GW_STATUS_APP_ERROR);
    assert_int_equal(gw_handler_last_response(h, &code, &bytes), GW_STATUS_OK);
    assert_int_equal(code, 500);
    assert_int_equal(bytes, 59);
    host.fail_errno = EPIPE;
    assert_int_equal(gw_handler_run(h, hello_app, NULL), GW_STATUS_CLIENT_GONE);
    gw_handler_free(h);
}

static void test_eintr_is_retried(void **state) {
    (void)state;
    static const char *const cl[] = { "CONTENT_LENGTH=5", NULL };
    test_host host;
    host_init(&host);
    host.vars = cl;
    host.in = "hello";
    host.in_len = 5;
    host.read_eintr = 3;
    host.write_eintr = 3;
    gw_handler *h = host_handler(&host, false);
    input_case c;
    memset(&c, 0, sizeof c);
    assert_int_equal(gw_handler_run(h, read_all_app, &c), GW_STATUS_OK);
    assert_int_equal(c.status, GW_STATUS_OK);
    assert_int_equal(c.got_len, 5);
    assert_string_equal(host_out(&host), "Status: 200 OK\r\nContent-Length: 0\r\n\r\n");
    /* A hook that reports EINTR forever is an error after a bounded number of retries. */
    host_clear_output(&host);
    host.write_eintr = 1000000;
    assert_int_equal(gw_handler_run(h, hello_app, NULL), GW_STATUS_IO_ERROR);
    assert_true(host.write_calls < 1000);
    gw_handler_free(h);
}

/* A preset's read interrupted by a signal is retried (by the fd hook, and by the cycle,
 * which retries EINTR from any hook a bounded number of times). */
static void on_signal(int sig) {
    (void)sig;
}

typedef struct interrupter {
    pthread_t target;
    int fd;
} interrupter;

static void *interrupt_then_write(void *arg) {
    interrupter *it = arg;
    struct timespec pause = { 0, 100 * 1000 * 1000 };
    nanosleep(&pause, NULL);
    pthread_kill(it->target, SIGUSR1);
    nanosleep(&pause, NULL);
    /* No cmocka assertion off the test's thread: the result goes back through join. */
    return write(it->fd, "hello", 5) == 5 ? NULL : (void *)1;
}

static void test_fd_preset_retries_eintr(void **state) {
    (void)state;
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal; /* no SA_RESTART: read(2) fails with EINTR */
    sigemptyset(&sa.sa_mask);
    assert_int_equal(sigaction(SIGUSR1, &sa, &old), 0);
    int in[2], out[2];
    assert_int_equal(pipe(in), 0);
    assert_int_equal(pipe(out), 0);
    gw_environ *env = NULL;
    assert_int_equal(gw_environ_new(&env), GW_STATUS_OK);
    assert_int_equal(gw_environ_set(env, "CONTENT_LENGTH", 14, "5", 1), GW_STATUS_OK);
    gw_handler *h = NULL;
    assert_int_equal(gw_handler_new_base_cgi(in[0], out[1], 2, env, &h), GW_STATUS_OK);
    gw_environ_free(env);
    interrupter it = { pthread_self(), in[1] };
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, interrupt_then_write, &it), 0);
    input_case c;
    memset(&c, 0, sizeof c);
    assert_int_equal(gw_handler_run(h, read_all_app, &c), GW_STATUS_OK);
    void *wrote = (void *)1;
    assert_int_equal(pthread_join(thread, &wrote), 0);
    assert_null(wrote);
    assert_int_equal(c.status, GW_STATUS_OK);
    assert_int_equal(c.got_len, 5);
    assert_memory_equal(c.got, "hello", 5);
    gw_handler_free(h);
    close(out[1]);
    char got[256];
    read_fd(out[0], got, sizeof got);
    assert_string_equal(got, "Status: 200 OK\r\nContent-Length: 0\r\n\r\n");
    close(in[0]);
    close(in[1]);
    close(out[0]);
    assert_int_equal(sigaction(SIGUSR1, &old, NULL), 0);
}

/* ---- threads ---------------------------------------------------------------------------------- */

static void *fail_on_another_thread(void *arg) {
    (void)arg;
    gw_environ *env = NULL;
    if (gw_environ_new(&env) != GW_STATUS_OK) return (void *)1;
    gw_status st = gw_environ_set(env, "", 0, "x", 1);
    int ok = st == GW_STATUS_INVALID_ARGUMENT && strcmp(gw_last_error_message(), "environ names must not be empty") == 0;
    gw_environ_free(env);
    return ok ? NULL : (void *)1;
}

static void test_last_error_is_per_thread(void **state) {
    (void)state;
    assert_int_equal(gw_handler_new(NULL, NULL), GW_STATUS_NULL_ARGUMENT);
    assert_string_equal(gw_last_error_message(), "hooks is NULL");
    pthread_t thread;
    void *result = (void *)2;
    assert_int_equal(pthread_create(&thread, NULL, fail_on_another_thread, NULL), 0);
    assert_int_equal(pthread_join(thread, &result), 0);
    assert_null(result);
    assert_string_equal(gw_last_error_message(), "hooks is NULL");
}

typedef struct worker {
    gw_environ *shared; /* read concurrently through const getters */
    gw_handler *handler;
    test_host host;
    int failures;
} worker;

static int32_t shared_env_app(void *userdata, gw_request *req) {
    (void)userdata;
    gw_environ *env = NULL;
    const char *value = NULL;
    size_t len = 0;
    gw_status st = gw_request_environ(req, &env);
    if (st == GW_STATUS_OK) st = gw_environ_get(env, "SHARED", 6, &value, &len);
    if (st != GW_STATUS_OK) return st;
    st = gw_request_start_response(req, "200 OK", 6, NULL, 0, 0);
    if (st != GW_STATUS_OK) return st;
    return gw_request_set_body_bytes(req, value, len);
}

static void *worker_main(void *arg) {
    worker *w = arg;
    for (int i = 0; i < 500; i++) {
        host_clear_output(&w->host);
        const char *value = NULL;
        size_t len = 0;
        bool flag = false;
        if (gw_environ_get(w->shared, "SHARED", 6, &value, &len) != GW_STATUS_OK || len != 5) w->failures++;
        if (gw_handler_get_multithread(w->handler, &flag) != GW_STATUS_OK || !flag) w->failures++;
        if (gw_handler_run(w->handler, shared_env_app, NULL) != GW_STATUS_OK) w->failures++;
        if (strcmp(host_out(&w->host), "Status: 200 OK\r\nContent-Length: 5\r\n\r\nvalue") != 0) w->failures++;
    }
    return NULL;
}

static void test_handlers_on_threads_share_a_base_environ(void **state) {
    (void)state;
    gw_environ *base = NULL;
    assert_int_equal(gw_environ_new(&base), GW_STATUS_OK);
    assert_int_equal(gw_environ_set(base, "SHARED", 6, "value", 5), GW_STATUS_OK);
    enum { THREADS = 4 };
    worker workers[THREADS];
    pthread_t threads[THREADS];
    for (int i = 0; i < THREADS; i++) {
        host_init(&workers[i].host);
        workers[i].handler = host_handler(&workers[i].host, false);
        workers[i].shared = base;
        workers[i].failures = 0;
        assert_int_equal(gw_handler_set_os_environ(workers[i].handler, base), GW_STATUS_OK);
    }
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(pthread_create(&threads[i], NULL, worker_main, &workers[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(pthread_join(threads[i], NULL), 0);
        assert_int_equal(workers[i].failures, 0);
        gw_handler_free(workers[i].handler);
    }
    gw_environ_free(base);
}

/* ---- reliability: nothing that looks complete when it is not ------------------------------- */

static const char *const HTTP11_VARS[] = { "SERVER_PROTOCOL=HTTP/1.1", NULL };

/* An app that ignores a failed gw_request_write and returns OK. */
static int32_t ignores_failed_write_app(void *userdata, gw_request *req) {
    gw_status *second = userdata;
    assert_int_equal(gw_request_start_response(req, "200 OK", 6, NULL, 0, 0), GW_STATUS_OK);
    assert_int_equal(gw_request_write(req, "first", 5), GW_STATUS_OK);
    *second = gw_request_write(req, "second", 6);
    (void)gw_request_write(req, "third", 5);
    return GW_STATUS_OK;
}

static void test_no_last_chunk_after_an_ignored_write_failure(void **state) {
    (void)state;
    const int errnos[] = { EIO, EAGAIN, EPIPE };
    const gw_status expected[] = { GW_STATUS_IO_ERROR, GW_STATUS_IO_ERROR, GW_STATUS_CLIENT_GONE };
    for (int i = 0; i < 3; i++) {
        test_host host;
        host_init(&host);
        host.vars = HTTP11_VARS;
        host.fail_call = 2; /* the second gw_request_write's only write call */
        host.fail_call_errno = errnos[i];
        gw_handler *h = host_handler(&host, true);
        assert_int_equal(gw_handler_set_http_version(h, "1.1", 3), GW_STATUS_OK);
        gw_status second = GW_STATUS_OK;
        assert_int_equal(gw_handler_run(h, ignores_failed_write_app, &second), expected[i]);
        assert_int_equal(second, expected[i]);
        /* The first chunk went out; nothing after the failure, above all no last chunk. */
        const char *out = host_out(&host);
        assert_non_null(strstr(out, "\r\n\r\n5\r\nfirst\r\n"));
        assert_null(strstr(out, "0\r\n\r\n"));
        assert_null(strstr(out, "third"));
        assert_int_equal(host.write_calls, 2);
        bool keep = true;
        assert_int_equal(gw_handler_last_keep_alive(h, &keep), GW_STATUS_OK);
        assert_false(keep);
        gw_handler_free(h);
    }
}

typedef struct truncated_case {
    int how; /* 0: gw_request_input_read, 1: gw_request_input_read_all, 2: gw_request_input_next_line */
    gw_status first, again;
} truncated_case;

static int32_t truncated_body_app(void *userdata, gw_request *req) {
    truncated_case *c = userdata;
    char buf[16];
    size_t n = 0;
    const char *data = NULL;
    if (c->how == 0) c->first = gw_request_input_read(req, buf, 10, &n);
    if (c->how == 1) c->first = gw_request_input_read_all(req, &data, &n);
    if (c->how == 2) c->first = gw_request_input_next_line(req, &data, &n);
    c->again = gw_request_input_read(req, buf, sizeof buf, &n);
    /* The app carries on regardless: the response still goes out. */
    assert_int_equal(gw_request_start_response(req, "200 OK", 6, NULL, 0, 0), GW_STATUS_OK);
    return gw_request_set_body_bytes(req, "ok", 2);
}

static void test_truncated_request_body_is_an_input_error(void **state) {
    (void)state;
    static const char *const vars[] = { "SERVER_PROTOCOL=HTTP/1.1", "CONTENT_LENGTH=10", NULL };
    for (int how = 0; how < 3; how++) {
        for (int whole = 0; whole <= 1; whole++) {
            test_host host;
            host_init(&host);
            host.vars = vars;
            host.in = whole ? "abcdefghij" : "abc";
            host.in_len = strlen(host.in);
            host.max_read = 2;
            gw_handler *h = host_handler(&host, true);
            assert_int_equal(gw_handler_set_http_version(h, "1.1", 3), GW_STATUS_OK);
            truncated_case c = { how, GW_STATUS_OK, GW_STATUS_OK };
            assert_int_equal(gw_handler_run(h, truncated_body_app, &c), GW_STATUS_OK);
            bool keep = false;
            assert_int_equal(gw_handler_last_keep_alive(h, &keep), GW_STATUS_OK);
            if (whole) {
                assert_int_equal(c.first, GW_STATUS_OK);
                assert_int_equal(c.again, GW_STATUS_OK);
                assert_true(keep);
                assert_string_equal(host_err(&host), "");
            } else {
                /* The read that meets the early end fails, and so does every later one. */
                assert_int_equal(c.first, GW_STATUS_INPUT_ERROR);
                assert_int_equal(c.again, GW_STATUS_INPUT_ERROR);
                assert_false(keep);
                assert_string_equal(host_err(&host), "gateway: request body: request body ended after 3 of 10 "
                                                     "bytes (CONTENT_LENGTH)\n");
            }
            gw_handler_free(h);
        }
    }
}

/* ---- request bodies of any framing: chunked, terminated, the size limit ----------------------- */

/* "one\ntwo\nthree\nfour" chunked, with an extension, leading zeros and a trailer, then the
 * start of a pipelined request that must stay unread. */
#define CHUNKED_WIRE "6;x=y\r\none\ntw\r\n0A\r\no\nthree\nfo\r\n2\r\nur\r\n0\r\nT: 1\r\n\r\n"
#define NEXT_REQUEST "GET /next HTTP/1.1\r\n"
static const char *const CHUNKED_VARS[] = { "SERVER_PROTOCOL=HTTP/1.1", "REQUEST_METHOD=POST",
                                            "HTTP_TRANSFER_ENCODING=chunked", NULL };

static int32_t chunked_environ_app(void *userdata, gw_request *req) {
    (void)userdata;
    gw_environ *env = NULL;
    const char *v = NULL;
    size_t n = 0;
    assert_int_equal(gw_request_environ(req, &env), GW_STATUS_OK);
    assert_int_equal(gw_environ_get(env, "CONTENT_LENGTH", 14, &v, &n), GW_STATUS_NOT_FOUND);
    assert_int_equal(gw_environ_get(env, "wsgi.input_terminated", 21, &v, &n), GW_STATUS_OK);
    assert_memory_equal(v, "1", n);
    return lines_app(userdata, req);
}

static void test_chunked_body_through_every_read_function(void **state) {
    (void)state;
    const char *wire = CHUNKED_WIRE NEXT_REQUEST;
    for (size_t max_read = 0; max_read <= 1; max_read++) {
        for (int how = 0; how < 2; how++) {
            test_host host;
            host_init(&host);
            host.in = wire;
            host.in_len = strlen(wire);
            host.max_read = max_read; /* 1: the hook gives one byte per call */
            gw_handler *h = http11_handler(&host, CHUNKED_VARS);
            input_case c;
            memset(&c, 0, sizeof c);
            c.status = GW_STATUS_APP_ERROR;
            /* readline, read, next_line and readlines; then read_all */
            assert_int_equal(gw_handler_run(h, how == 0 ? chunked_environ_app : read_all_app, &c), GW_STATUS_OK);
            assert_int_equal(c.status, GW_STATUS_OK);
            if (how == 1) {
                assert_int_equal(c.got_len, 18);
                assert_memory_equal(c.got, "one\ntwo\nthree\nfour", 18);
            }
            /* The decoder never asks for a byte past the last chunk. */
            assert_int_equal(host.in_pos, LEN(CHUNKED_WIRE));
            bool keep = false;
            assert_int_equal(gw_handler_last_keep_alive(h, &keep), GW_STATUS_OK);
            assert_true(keep);
            assert_string_equal(host_err(&host), "");
            gw_handler_free(h);
        }
    }
}

static void test_malformed_chunks_are_an_input_error(void **state) {
    (void)state;
    static const struct {
        const char *wire;
        const char *log;
    } cases[] = {
        { "5\r\nhelloX\r\n0\r\n\r\n", "chunked request body: chunk data not followed by CRLF" },
        { "5\nhello\r\n0\r\n\r\n", "chunked request body: chunk line not ended by CRLF" },
        { "zz\r\n", "chunked request body: malformed chunk size" },
        { "10000000000000000\r\n", "chunked request body: chunk size too large" },
        { "5\r\nhel", "chunked request body ended early, after 3 bytes" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        for (int how = 0; how < 3; how++) {
            test_host host;
            host_init(&host);
            host.in = cases[i].wire;
            host.in_len = strlen(cases[i].wire);
            host.max_read = 1;
            gw_handler *h = http11_handler(&host, CHUNKED_VARS);
            truncated_case c = { how, GW_STATUS_OK, GW_STATUS_OK };
            assert_int_equal(gw_handler_run(h, truncated_body_app, &c), GW_STATUS_OK);
            assert_int_equal(c.first, GW_STATUS_INPUT_ERROR);
            assert_int_equal(c.again, GW_STATUS_INPUT_ERROR);
            bool keep = true;
            assert_int_equal(gw_handler_last_keep_alive(h, &keep), GW_STATUS_OK);
            assert_false(keep);
            assert_origin_output(&host, "HTTP/1.1 200 OK\r\nDate: {DATE}\r\nContent-Length: 2\r\n"
                                        "Connection: close\r\n\r\nok");
            char log[256];
            snprintf(log, sizeof log, "gateway: request body: %s\n", cases[i].log);
            assert_string_equal(host_err(&host), log);
            gw_handler_free(h);
        }
    }
}

static void test_terminated_stream_of_unknown_length(void **state) {
    (void)state;
    /* A host that already removed the framing (CGI, a dechunking server): no CONTENT_LENGTH,
     * wsgi.input_terminated=1, and the body is what the read hook gives until it ends. */
    static const char *const vars[] = { "SERVER_PROTOCOL=HTTP/1.1", "wsgi.input_terminated=1", NULL };
    test_host host;
    host_init(&host);
    host.in = "all of it, to the end";
    host.in_len = strlen(host.in);
    host.max_read = 1;
    gw_handler *h = http11_handler(&host, vars);
    input_case c;
    memset(&c, 0, sizeof c);
    assert_int_equal(gw_handler_run(h, read_all_app, &c), GW_STATUS_OK);
    assert_int_equal(c.status, GW_STATUS_OK);
    assert_int_equal(c.got_len, host.in_len);
    assert_memory_equal(c.got, "all of it, to the end", c.got_len);
    /* The end of the input is the end of the body: the connection cannot be reused. */
    bool keep = true;
    assert_int_equal(gw_handler_last_keep_alive(h, &keep), GW_STATUS_OK);
    assert_false(keep);
    assert_origin_output(&host, "HTTP/1.1 200 OK\r\nDate: {DATE}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");

    /* wsgi.input_terminated=0 from the host (or absent) with no CONTENT_LENGTH: no body. */
    static const char *const zero[] = { "wsgi.input_terminated=0", NULL };
    memset(&c, 0, sizeof c);
    c = run_read_all(zero, "unannounced", 0);
    assert_int_equal(c.status, GW_STATUS_OK);
    assert_int_equal(c.got_len, 0);
    gw_handler_free(h);
}

/* Reads the body whole and fails with the read's status, as an app passing it on would. */
static int32_t read_or_fail_app(void *userdata, gw_request *req) {
    input_case *c = userdata;
    const char *data = NULL;
    c->status = gw_request_input_read_all(req, &data, &c->got_len);
    if (c->status != GW_STATUS_OK) return c->status;
    assert_int_equal(gw_request_start_response(req, "200 OK", 6, NULL, 0, 0), GW_STATUS_OK);
    return GW_STATUS_OK;
}

#define TOO_LARGE_BODY "The request body is larger than the server accepts."
#define TOO_LARGE_PAGE \
    "HTTP/1.1 413 Content Too Large\r\nDate: {DATE}\r\nContent-Type: text/plain\r\nContent-Length: 51\r\n" \
    "Connection: close\r\n\r\n" TOO_LARGE_BODY

static void test_request_body_size_limit(void **state) {
    (void)state;
    static const char *const cl[] = { "SERVER_PROTOCOL=HTTP/1.1", "CONTENT_LENGTH=18", "HTTP_EXPECT=100-continue",
                                      NULL };
    static const gw_header custom_headers[] = { HDR("Content-Type", "text/html") };
    for (int framing = 0; framing < 2; framing++) {
        for (int custom = 0; custom <= 1; custom++) {
            test_host host;
            host_init(&host);
            host.in = framing == 0 ? "one\ntwo\nthree\nfour" : CHUNKED_WIRE;
            host.in_len = strlen(host.in);
            host.max_read = 1;
            gw_handler *h = http11_handler(&host, framing == 0 ? cl : CHUNKED_VARS);
            uint64_t limit = 99;
            assert_int_equal(gw_handler_get_max_request_body(h, &limit), GW_STATUS_OK);
            assert_int_equal(limit, 0); /* unlimited by default, as wsgiref */
            assert_int_equal(gw_handler_set_max_request_body(h, 17), GW_STATUS_OK);
            assert_int_equal(gw_handler_get_max_request_body(h, &limit), GW_STATUS_OK);
            assert_int_equal(limit, 17);
            if (custom) {
                /* The app's own error page is for its failures; this one is the client's. */
                assert_int_equal(gw_handler_set_error_page(h, "503 Busy", 8, custom_headers, 1, "<p>busy</p>", 11),
                                 GW_STATUS_OK);
            }
            input_case c;
            memset(&c, 0, sizeof c);
            assert_int_equal(gw_handler_run(h, read_or_fail_app, &c), GW_STATUS_APP_ERROR);
            assert_int_equal(c.status, GW_STATUS_TOO_LARGE);
            /* Content-Length above the limit: refused without reading, and without 100 Continue. */
            if (framing == 0) assert_int_equal(host.read_calls, 0);
            assert_origin_output(&host, TOO_LARGE_PAGE);
            bool keep = true;
            assert_int_equal(gw_handler_last_keep_alive(h, &keep), GW_STATUS_OK);
            assert_false(keep);
            assert_string_equal(host_err(&host), "gateway: request body: request body larger than the limit of 17 bytes\n"
                                                 "gateway: application error: request body larger than the limit of 17 "
                                                 "bytes\n");
            /* At the limit the body is read as usual. */
            host_clear_output(&host);
            host.in_pos = 0;
            host.err_len = 0;
            assert_int_equal(gw_handler_set_max_request_body(h, 18), GW_STATUS_OK);
            memset(&c, 0, sizeof c);
            assert_int_equal(gw_handler_run(h, read_or_fail_app, &c), GW_STATUS_OK);
            assert_int_equal(c.got_len, 18);
            gw_handler_free(h);
        }
    }
    assert_int_equal(gw_handler_set_max_request_body(NULL, 1), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_handler_get_max_request_body(NULL, NULL), GW_STATUS_NULL_ARGUMENT);
}

static void test_expect_continue_with_a_chunked_body(void **state) {
    (void)state;
    static const char *const vars[] = { "SERVER_PROTOCOL=HTTP/1.1", "HTTP_EXPECT=100-continue",
                                        "HTTP_TRANSFER_ENCODING=chunked", NULL };
    test_host host;
    host_init(&host);
    host.in = CHUNKED_WIRE;
    host.in_len = LEN(CHUNKED_WIRE);
    gw_handler *h = http11_handler(&host, vars);
    input_case c;
    memset(&c, 0, sizeof c);
    assert_int_equal(gw_handler_run(h, read_all_app, &c), GW_STATUS_OK);
    assert_int_equal(c.got_len, 18);
    assert_origin_output(&host, "HTTP/1.1 100 Continue\r\n\r\n"
                                "HTTP/1.1 200 OK\r\nDate: {DATE}\r\nContent-Length: 0\r\n\r\n");
    assert_int_equal(host.out_len_at_first_read, LEN("HTTP/1.1 100 Continue\r\n\r\n"));
    /* Never read: no 100, and the connection is not kept (the body may never come). */
    host_init(&host);
    host.in = CHUNKED_WIRE;
    host.in_len = LEN(CHUNKED_WIRE);
    host.vars = vars;
    assert_int_equal(gw_handler_set_userdata(h, &host), GW_STATUS_OK);
    assert_int_equal(gw_handler_run(h, hello_app, NULL), GW_STATUS_OK);
    assert_null(strstr(host_out(&host), "100 Continue"));
    assert_int_equal(host.read_calls, 0);
    bool keep = true;
    assert_int_equal(gw_handler_last_keep_alive(h, &keep), GW_STATUS_OK);
    assert_false(keep);
    gw_handler_free(h);
}

static void test_unread_chunked_body_is_drained(void **state) {
    (void)state;
    const char *wire = CHUNKED_WIRE NEXT_REQUEST;
    for (int over_limit = 0; over_limit <= 1; over_limit++) {
        test_host host;
        host_init(&host);
        host.in = wire;
        host.in_len = strlen(wire);
        host.max_read = 1;
        gw_handler *h = http11_handler(&host, CHUNKED_VARS);
        if (over_limit) assert_int_equal(gw_handler_set_drain_limit(h, 10), GW_STATUS_OK);
        assert_int_equal(gw_handler_run(h, hello_app, NULL), GW_STATUS_OK);
        /* The head promised to keep the connection: a chunked body's size is unknown. */
        assert_origin_output(&host, "HTTP/1.1 200 OK\r\nDate: {DATE}\r\nContent-Type: text/plain\r\n"
                                    "Content-Length: 13\r\n\r\nHello, world!");
        bool keep = over_limit;
        assert_int_equal(gw_handler_last_keep_alive(h, &keep), GW_STATUS_OK);
        if (over_limit) {
            /* More than the drain limit was left: the drain stops, quietly, and costs the
             * connection. */
            assert_false(keep);
            assert_true(host.in_pos < LEN(CHUNKED_WIRE));
        } else {
            assert_true(keep);
            assert_int_equal(host.in_pos, LEN(CHUNKED_WIRE));
        }
        assert_string_equal(host_err(&host), "");
        gw_handler_free(h);
    }
}

static void test_no_content_length_on_1xx_and_204(void **state) {
    (void)state;
    static const gw_header with_length[] = { HDR("Content-Length", "0"), HDR("X-A", "1") };
    static const struct { const char *status, *expected; } cases[] = {
        { "204 No Content", "HTTP/1.1 204 No Content\r\nDate: {DATE}\r\nX-A: 1\r\n\r\n" },
        { "103 Early Hints", "HTTP/1.1 103 Early Hints\r\nDate: {DATE}\r\nX-A: 1\r\n\r\n" },
        /* 304's Content-Length describes the representation: it stays. */
        { "304 Not Modified", "HTTP/1.1 304 Not Modified\r\nDate: {DATE}\r\nContent-Length: 0\r\nX-A: 1\r\n\r\n" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        test_host host;
        host_init(&host);
        host.vars = HTTP11_VARS;
        gw_handler *h = host_handler(&host, true);
        assert_int_equal(gw_handler_set_http_version(h, "1.1", 3), GW_STATUS_OK);
        app_spec spec = spec_defaults();
        spec.status = cases[i].status;
        spec.headers = with_length;
        spec.header_count = 2;
        assert_int_equal(gw_handler_run(h, spec_app, &spec), GW_STATUS_OK);
        assert_origin_output(&host, cases[i].expected);
        gw_handler_free(h);
    }
}

static void test_add_cgi_vars_client_gone_is_quiet(void **state) {
    (void)state;
    test_host host;
    host_init(&host);
    host.add_vars_status = GW_STATUS_CLIENT_GONE;
    static const char *const record[] = { "REQUEST_METHOD", NULL };
    app_spec spec = ok_spec();
    spec.record = record;
    assert_int_equal(run_spec(&host, false, &spec), GW_STATUS_CLIENT_GONE);
    assert_string_equal(host_out(&host), "");
    assert_string_equal(host_err(&host), "");
    assert_string_equal(spec.seen, ""); /* the app never ran */
    /* Any other failure is logged and answered with the error page, without the app. */
    host_init(&host);
    host.add_vars_status = GW_STATUS_INVALID_ARGUMENT;
    spec = ok_spec();
    spec.body_kind = BODY_BYTES;
    spec.body = "never";
    assert_int_equal(run_spec(&host, false, &spec), GW_STATUS_APP_ERROR);
    assert_string_equal(host_out(&host), CGI_ERROR_PAGE);
    assert_string_equal(host_err(&host), "gateway: application error: add_cgi_vars hook failed: invalid argument\n");
}

static void test_log_lines_are_whole_or_absent(void **state) {
    (void)state;
    /* The error stream takes one call, then fails: the first line is whole, no fragment of
     * a second line follows. */
    test_host host;
    host_init(&host);
    host.err_fail_after = 1;
    app_spec spec = ok_spec();
    spec.fail = true;
    assert_int_equal(run_spec(&host, false, &spec), GW_STATUS_APP_ERROR);
    assert_string_equal(host_err(&host), "gateway: application error: the app failed on purpose\n");
    assert_int_equal(host.err_write_calls, 1);
    /* The app fails, then its error page meets a disconnect: the run is CLIENT_GONE, and
     * the application's failure, logged before the page was tried, stays logged whole. */
    host_init(&host);
    host.fail_errno = EPIPE;
    spec = ok_spec();
    spec.fail = true;
    assert_int_equal(run_spec(&host, true, &spec), GW_STATUS_CLIENT_GONE);
    assert_string_equal(host_err(&host), "gateway: application error: the app failed on purpose\n");
    assert_string_equal(host_out(&host), "");
}

static bool fd_is_open(int fd) {
    return fcntl(fd, F_GETFD) != -1 || errno != EBADF;
}

static int32_t two_file_bodies_app(void *userdata, gw_request *req) {
    int *fds = userdata;
    assert_int_equal(gw_request_start_response(req, "200 OK", 6, NULL, 0, 0), GW_STATUS_OK);
    assert_int_equal(gw_request_set_body_bytes(req, "x", 1), GW_STATUS_OK);
    /* Refused (a body is set already), yet the descriptor was handed over: it is closed. */
    assert_int_equal(gw_request_set_body_file(req, fds[0], 0, true), GW_STATUS_INVALID_STATE);
    /* Refused without close_fd: it stays the caller's. */
    assert_int_equal(gw_request_set_body_file(req, fds[1], 0, false), GW_STATUS_INVALID_STATE);
    return GW_STATUS_OK;
}

static void test_refused_body_file_is_still_consumed(void **state) {
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    test_host host;
    host_init(&host);
    gw_handler *h = host_handler(&host, false);
    assert_int_equal(gw_handler_run(h, two_file_bodies_app, fds), GW_STATUS_OK);
    assert_false(fd_is_open(fds[0]));
    assert_true(fd_is_open(fds[1]));
    /* Refused because file_wrapper is off, and with a NULL request: closed all the same. */
    assert_int_equal(pipe(fds + 0), 0);
    assert_int_equal(gw_request_set_body_file(NULL, fds[0], 0, true), GW_STATUS_NULL_ARGUMENT);
    assert_false(fd_is_open(fds[0]));
    close(fds[1]);
    gw_handler_free(h);
}

static int32_t refused_exc_info_app(void *userdata, gw_request *req) {
    gw_status *refused = userdata;
    static const gw_header first[] = { HDR("X-First", "1") };
    static const gw_header bad[] = { HDR("X Bad", "1") };
    assert_int_equal(gw_request_start_response(req, "201 Created", 11, first, 1, 0), GW_STATUS_OK);
    refused[0] = gw_request_start_response(req, "2000 Bad", 8, NULL, 0, GW_START_RESPONSE_EXC_INFO);
    refused[1] = gw_request_start_response(req, "500 Oops", 8, bad, 1, GW_START_RESPONSE_EXC_INFO);
    return gw_request_set_body_bytes(req, "made", 4);
}

static void test_refused_start_response_keeps_the_first(void **state) {
    (void)state;
    test_host host;
    host_init(&host);
    gw_status refused[2] = { GW_STATUS_OK, GW_STATUS_OK };
    gw_handler *h = host_handler(&host, false);
    assert_int_equal(gw_handler_run(h, refused_exc_info_app, refused), GW_STATUS_OK);
    assert_int_equal(refused[0], GW_STATUS_INVALID_STATUS_LINE);
    assert_int_equal(refused[1], GW_STATUS_INVALID_HEADER);
    assert_string_equal(host_out(&host), "Status: 201 Created\r\nX-First: 1\r\nContent-Length: 4\r\n\r\nmade");
    gw_handler_free(h);
}

/* ---- the connection, decided before the head goes out ------------------------------------ */

typedef struct conn_case {
    const char *const *vars;
    const char *version;    /* the handler's http_version */
    const char *body;       /* the request body the client sends */
    uint64_t drain_limit;
    bool fail;              /* the app fails: the error page */
    bool reads_body;
    /* results */
    gw_status status;
    bool keep;
    size_t body_read;       /* request body bytes taken from the read hook */
    int write_calls;
    char out[1024];
    char err[512];
} conn_case;

static int32_t conn_app(void *userdata, gw_request *req) {
    conn_case *c = userdata;
    if (c->reads_body) {
        const char *data = NULL;
        size_t len = 0;
        (void)gw_request_input_read_all(req, &data, &len);
    }
    if (c->fail) return gw_request_fail(req, "no", 2);
    assert_int_equal(gw_request_start_response(req, "200 OK", 6, NULL, 0, 0), GW_STATUS_OK);
    return gw_request_set_body_bytes(req, "hi", 2);
}

static void run_conn_case(conn_case *c) {
    test_host host;
    host_init(&host);
    host.vars = c->vars;
    host.in = c->body != NULL ? c->body : "";
    host.in_len = strlen(host.in);
    gw_handler *h = host_handler(&host, true);
    assert_int_equal(gw_handler_set_http_version(h, c->version, 3), GW_STATUS_OK);
    if (c->drain_limit > 0) assert_int_equal(gw_handler_set_drain_limit(h, c->drain_limit), GW_STATUS_OK);
    uint64_t limit = 0;
    assert_int_equal(gw_handler_get_drain_limit(h, &limit), GW_STATUS_OK);
    assert_int_equal(limit, c->drain_limit > 0 ? c->drain_limit : 65536);
    c->status = gw_handler_run(h, conn_app, c);
    assert_int_equal(gw_handler_last_keep_alive(h, &c->keep), GW_STATUS_OK);
    c->body_read = host.in_pos;
    c->write_calls = host.write_calls;
    snprintf(c->out, sizeof c->out, "%s", host_out(&host));
    snprintf(c->err, sizeof c->err, "%s", host_err(&host));
    gw_handler_free(h);
}

static void test_connection_header_says_what_happens(void **state) {
    (void)state;
    static const char *const v11[] = { "SERVER_PROTOCOL=HTTP/1.1", NULL };
    static const char *const v11_close[] = { "SERVER_PROTOCOL=HTTP/1.1", "HTTP_CONNECTION=close", NULL };
    static const char *const v10[] = { "SERVER_PROTOCOL=HTTP/1.0", NULL };
    static const char *const v10_keep[] = { "SERVER_PROTOCOL=HTTP/1.0", "HTTP_CONNECTION=Keep-Alive", NULL };
    static const struct { const char *const *vars; const char *version; bool fail; const char *head; bool keep; } cases[] = {
        { v11, "1.1", false, "HTTP/1.1 200 OK\r\nDate: {DATE}\r\nContent-Length: 2\r\n\r\nhi", true },
        { v11_close, "1.1", false, "HTTP/1.1 200 OK\r\nDate: {DATE}\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi", false },
        { v11, "1.1", true, "HTTP/1.1 500 Internal Server Error\r\nDate: {DATE}\r\nContent-Type: text/plain\r\n"
                            "Content-Length: 59\r\nConnection: close\r\n\r\n" ERROR_BODY, false },
        { v10, "1.1", false, "HTTP/1.1 200 OK\r\nDate: {DATE}\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi", false },
        { v10_keep, "1.1", false, "HTTP/1.1 200 OK\r\nDate: {DATE}\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nhi", true },
        /* A handler speaking HTTP/1.0 writes wsgiref's bytes: no Connection header, no reuse. */
        { v10_keep, "1.0", false, "HTTP/1.0 200 OK\r\nDate: {DATE}\r\nContent-Length: 2\r\n\r\nhi", false },
        { v11, "1.0", true, "HTTP/1.0 500 Internal Server Error\r\nDate: {DATE}\r\nContent-Type: text/plain\r\n"
                            "Content-Length: 59\r\n\r\n" ERROR_BODY, false },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        conn_case c;
        memset(&c, 0, sizeof c);
        c.vars = cases[i].vars;
        c.version = cases[i].version;
        c.fail = cases[i].fail;
        run_conn_case(&c);
        test_host shown;
        host_init(&shown);
        memcpy(shown.out, c.out, strlen(c.out));
        shown.out_len = strlen(c.out);
        assert_origin_output(&shown, cases[i].head);
        assert_int_equal(c.keep, cases[i].keep);
        /* The head, the body and any framing: one write call. */
        assert_int_equal(c.write_calls, 1);
    }
}

static void test_unread_request_body_is_drained_within_the_limit(void **state) {
    (void)state;
    static const char *const post[] = { "SERVER_PROTOCOL=HTTP/1.1", "CONTENT_LENGTH=10", NULL };
    static const char *const expect[] = { "SERVER_PROTOCOL=HTTP/1.1", "CONTENT_LENGTH=10", "HTTP_EXPECT=100-continue", NULL };
    /* Within the limit: drained after the response, the connection kept. */
    conn_case c;
    memset(&c, 0, sizeof c);
    c.vars = post;
    c.version = "1.1";
    c.body = "0123456789";
    run_conn_case(&c);
    assert_int_equal(c.status, GW_STATUS_OK);
    assert_true(c.keep);
    assert_int_equal(c.body_read, 10);
    assert_null(strstr(c.out, "Connection:"));
    /* Over the limit: not read, `Connection: close` in the head, not kept. */
    c.drain_limit = 9;
    run_conn_case(&c);
    assert_false(c.keep);
    assert_int_equal(c.body_read, 0);
    assert_non_null(strstr(c.out, "\r\nConnection: close\r\n"));
    /* A drain that meets a truncated body: the connection is not kept, and it is logged. */
    c.drain_limit = 0;
    c.body = "01234";
    run_conn_case(&c);
    assert_int_equal(c.status, GW_STATUS_OK);
    assert_false(c.keep);
    assert_string_equal(c.err, "gateway: request body: request body ended after 5 of 10 bytes (CONTENT_LENGTH)\n");
    /* A client waiting for 100 Continue may never send the body: close, never drain. */
    memset(&c, 0, sizeof c);
    c.vars = expect;
    c.version = "1.1";
    c.body = "0123456789";
    run_conn_case(&c);
    assert_false(c.keep);
    assert_int_equal(c.body_read, 0);
    assert_null(strstr(c.out, "100 Continue"));
    assert_non_null(strstr(c.out, "\r\nConnection: close\r\n"));
    /* The app read it: kept, with the interim 100 Continue before the response. */
    c.reads_body = true;
    run_conn_case(&c);
    assert_true(c.keep);
    assert_int_equal(strncmp(c.out, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n", 42), 0);
}

static void test_small_chunked_response_is_one_write(void **state) {
    (void)state;
    static const char *const one[] = { "hello", NULL };
    static const char *const two[] = { "hel", "lo", NULL };
    test_host host;
    host_init(&host);
    host.vars = HTTP11_VARS;
    gw_handler *h = host_handler(&host, true);
    assert_int_equal(gw_handler_set_http_version(h, "1.1", 3), GW_STATUS_OK);
    /* The iterator says "end" with its only chunk: that chunk is the whole body, so it gets
     * a Content-Length, and head and body go out in one call. */
    app_spec spec = iter_spec(one);
    spec.end_with_last = true;
    assert_int_equal(gw_handler_run(h, spec_app, &spec), GW_STATUS_OK);
    assert_origin_output(&host, "HTTP/1.1 200 OK\r\nDate: {DATE}\r\nContent-Length: 5\r\n\r\nhello");
    assert_int_equal(host.write_calls, 1);
    assert_int_equal(spec.next_calls, 1); /* not asked again after the end */
    assert_int_equal(spec.close_calls, 1);
    /* Two chunks, chunked: the head with the first, the last with the end of the body. */
    host_clear_output(&host);
    spec = iter_spec(two);
    spec.end_with_last = true;
    assert_int_equal(gw_handler_run(h, spec_app, &spec), GW_STATUS_OK);
    assert_origin_output(&host, "HTTP/1.1 200 OK\r\nDate: {DATE}\r\nTransfer-Encoding: chunked\r\n\r\n"
                                "3\r\nhel\r\n2\r\nlo\r\n0\r\n\r\n");
    assert_int_equal(host.write_calls, 2);
    /* A block count of 1 after the head went out (gw_request_write first): nothing is "the
     * whole body" any more, every chunk is framed and the last chunk comes once, at the end. */
    host_clear_output(&host);
    static const char *const more[] = { "b", "c", NULL };
    spec = iter_spec(more);
    spec.block_count = 1;
    spec.write = "a";
    assert_int_equal(gw_handler_run(h, spec_app, &spec), GW_STATUS_OK);
    assert_origin_output(&host, "HTTP/1.1 200 OK\r\nDate: {DATE}\r\nTransfer-Encoding: chunked\r\n\r\n"
                                "1\r\na\r\n1\r\nb\r\n1\r\nc\r\n0\r\n\r\n");
    /* Without the end flag the end goes out on its own, once the iterator says so. */
    host_clear_output(&host);
    spec = iter_spec(one);
    assert_int_equal(gw_handler_run(h, spec_app, &spec), GW_STATUS_OK);
    assert_origin_output(&host, "HTTP/1.1 200 OK\r\nDate: {DATE}\r\nTransfer-Encoding: chunked\r\n\r\n"
                                "5\r\nhello\r\n0\r\n\r\n");
    assert_int_equal(host.write_calls, 2);
    assert_int_equal(spec.next_calls, 2);
    bool keep = false;
    assert_int_equal(gw_handler_last_keep_alive(h, &keep), GW_STATUS_OK);
    assert_true(keep);
    gw_handler_free(h);
}

/* ---- structured hosts: the head as data, unframed body bytes ------------------------------- */

/* Runs `spec` on a structured handler; the call log and the raw body come back in `host`. */
static gw_status run_structured(test_host *host, const char *const *vars, app_spec *spec) {
    host_init(host);
    host->vars = vars;
    gw_handler *h = host_structured_handler(host);
    assert_int_equal(gw_handler_set_http_version(h, "1.1", 3), GW_STATUS_OK);
    assert_int_equal(gw_handler_set_server_software(h, "gw-test/1", 9), GW_STATUS_OK);
    gw_status st = gw_handler_run(h, spec_app, spec);
    gw_handler_free(h);
    return st;
}

static void test_structured_head_and_unframed_body(void **state) {
    (void)state;
    static const gw_header custom[] = { HDR("Content-Type", "text/plain"), HDR("X-Custom", "yes") };
    static const char *const chunks[] = { "Hello, ", "world!", NULL };
    test_host host;
    /* One block: the reason phrase as the app chose it, a known length, the bytes as they are. */
    app_spec spec = ok_spec();
    spec.status = "299 Quite Custom";
    spec.headers = custom;
    spec.header_count = 2;
    spec.body_kind = BODY_BYTES;
    spec.body = "Hello, world!";
    assert_int_equal(run_structured(&host, HTTP11_VARS, &spec), GW_STATUS_OK);
    assert_string_equal(host.calls, "head(299 Quite Custom|LENGTH 13|Date,Server,Content-Type,X-Custom) "
                                    "write(13) flush end(1) ");
    assert_string_equal(host_out(&host), "Hello, world!");
    /* A streamed body: no chunk framing, whatever the protocol; the host frames it. */
    spec = iter_spec(chunks);
    assert_int_equal(run_structured(&host, HTTP11_VARS, &spec), GW_STATUS_OK);
    assert_string_equal(host.calls, "head(200 OK|STREAM|Date,Server) write(7) flush write(6) flush end(1) ");
    assert_string_equal(host_out(&host), "Hello, world!");
    /* The app's own Content-Length is enforced: the extra bytes are dropped and logged. */
    static const gw_header cl5[] = { HDR("Content-Length", "5") };
    spec = ok_spec();
    spec.headers = cl5;
    spec.header_count = 1;
    spec.body_kind = BODY_BYTES;
    spec.body = "Hello, world!";
    assert_int_equal(run_structured(&host, HTTP11_VARS, &spec), GW_STATUS_OK);
    assert_string_equal(host.calls, "head(200 OK|LENGTH 5|Date,Server) write(5) flush end(1) ");
    assert_string_equal(host_err(&host),
                        "gateway: response body longer than its Content-Length; the extra bytes were dropped\n");
}

static void test_structured_head_request_and_bodiless_statuses(void **state) {
    (void)state;
    static const char *const head[] = { "SERVER_PROTOCOL=HTTP/1.1", "REQUEST_METHOD=HEAD", NULL };
    static const gw_header cl7[] = { HDR("Content-Length", "7") };
    test_host host;
    /* HEAD keeps the computed length and sends no bytes. */
    app_spec spec = ok_spec();
    spec.body_kind = BODY_BYTES;
    spec.body = "Hello, world!";
    assert_int_equal(run_structured(&host, head, &spec), GW_STATUS_OK);
    assert_string_equal(host.calls, "head(200 OK|NONE 13|Date,Server) flush end(1) ");
    assert_int_equal(host.out_len, 0);
    /* HEAD with no body: no length is invented (wsgiref would say 0). */
    spec = ok_spec();
    assert_int_equal(run_structured(&host, head, &spec), GW_STATUS_OK);
    assert_string_equal(host.calls, "head(200 OK|NONE|Date,Server) flush end(1) ");
    /* HEAD with the app's own length. */
    spec = ok_spec();
    spec.headers = cl7;
    spec.header_count = 1;
    assert_int_equal(run_structured(&host, head, &spec), GW_STATUS_OK);
    assert_string_equal(host.calls, "head(200 OK|NONE 7|Date,Server) flush end(1) ");
    /* 304 keeps the app's length; 204 never carries one. */
    spec = spec_defaults();
    spec.status = "304 Not Modified";
    spec.headers = cl7;
    spec.header_count = 1;
    assert_int_equal(run_structured(&host, HTTP11_VARS, &spec), GW_STATUS_OK);
    assert_string_equal(host.calls, "head(304 Not Modified|NONE 7|Date,Server) flush end(1) ");
    spec.status = "204 No Content";
    assert_int_equal(run_structured(&host, HTTP11_VARS, &spec), GW_STATUS_OK);
    assert_string_equal(host.calls, "head(204 No Content|NONE|Date,Server) flush end(1) ");
}

static void test_structured_failures_end_the_body_once(void **state) {
    (void)state;
    static const char *const chunks[] = { "abc", "def", NULL };
    test_host host;
    /* Cut short after the head: end(0), once. */
    app_spec spec = iter_spec(chunks);
    spec.fail_at_chunk = 1;
    assert_int_equal(run_structured(&host, HTTP11_VARS, &spec), GW_STATUS_RESPONSE_INCOMPLETE);
    assert_string_equal(host.calls, "head(200 OK|STREAM|Date,Server) write(3) flush end(0) ");
    assert_int_equal(spec.close_calls, 1);
    /* A failure before the head: the error page as a head, whole. */
    spec = spec_defaults();
    spec.fail = true;
    assert_int_equal(run_structured(&host, HTTP11_VARS, &spec), GW_STATUS_APP_ERROR);
    assert_string_equal(host.calls, "head(500 Internal Server Error|LENGTH 59|Date,Server,Content-Type) "
                                    "write(59) flush end(1) ");
    assert_string_equal(host_out(&host), ERROR_BODY);
    /* The head hook failing with a disconnect: the client is gone, nothing else is called. */
    host_init(&host);
    host.vars = HTTP11_VARS;
    host.head_errno = ECONNRESET;
    gw_handler *h = host_structured_handler(&host);
    spec = ok_spec();
    spec.body_kind = BODY_BYTES;
    spec.body = "x";
    assert_int_equal(gw_handler_run(h, spec_app, &spec), GW_STATUS_CLIENT_GONE);
    assert_string_equal(host.calls, "head(200 OK|LENGTH 1|Date) end(0) ");
    gw_handler_free(h);
}

static int32_t early_hints_app(void *userdata, gw_request *req) {
    gw_status *statuses = userdata;
    static const gw_header link[] = { HDR("Link", "</style.css>; rel=preload; as=style") };
    static const gw_header with_length[] = { HDR("Content-Length", "0") };
    statuses[0] = gw_request_send_interim(req, "103 Early Hints", 15, link, 1);
    statuses[1] = gw_request_send_interim(req, "100 Continue", 12, NULL, 0);
    statuses[2] = gw_request_send_interim(req, "200 OK", 6, NULL, 0);
    statuses[3] = gw_request_send_interim(req, "103 Early Hints", 15, with_length, 1);
    assert_int_equal(gw_request_start_response(req, "200 OK", 6, NULL, 0, 0), GW_STATUS_OK);
    assert_int_equal(gw_request_write(req, "ok", 2), GW_STATUS_OK);
    statuses[4] = gw_request_send_interim(req, "103 Early Hints", 15, link, 1);
    return GW_STATUS_OK;
}

static void test_interim_responses(void **state) {
    (void)state;
    static const char *const v10[] = { "SERVER_PROTOCOL=HTTP/1.0", NULL };
    const gw_status refused[] = { GW_STATUS_OK, GW_STATUS_INVALID_STATUS_LINE, GW_STATUS_INVALID_STATUS_LINE,
                                  GW_STATUS_INVALID_HEADER, GW_STATUS_INVALID_STATE };
    /* Bytes to an HTTP/1.1 client, before the final response. */
    test_host host;
    host_init(&host);
    host.vars = HTTP11_VARS;
    gw_handler *h = host_handler(&host, true);
    assert_int_equal(gw_handler_set_http_version(h, "1.1", 3), GW_STATUS_OK);
    gw_status statuses[5];
    assert_int_equal(gw_handler_run(h, early_hints_app, statuses), GW_STATUS_OK);
    assert_memory_equal(statuses, refused, sizeof refused);
    assert_origin_output(&host, "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload; as=style\r\n\r\n"
                                "HTTP/1.1 200 OK\r\nDate: {DATE}\r\nTransfer-Encoding: chunked\r\n\r\n"
                                "2\r\nok\r\n0\r\n\r\n");
    /* Skipped for an HTTP/1.0 client (RFC 9110 forbids it) and in CGI output. */
    host_init(&host);
    host.vars = v10;
    assert_int_equal(gw_handler_run(h, early_hints_app, statuses), GW_STATUS_OK);
    assert_int_equal(statuses[0], GW_STATUS_OK);
    assert_int_equal(strncmp(host_out(&host), "HTTP/1.1 200 OK\r\n", 17), 0);
    gw_handler_free(h);
    host_init(&host);
    host.vars = HTTP11_VARS;
    h = host_handler(&host, false);
    assert_int_equal(gw_handler_run(h, early_hints_app, statuses), GW_STATUS_OK);
    assert_int_equal(strncmp(host_out(&host), "Status: 200 OK\r\n", 16), 0);
    gw_handler_free(h);
    /* Through a structured host's hook. */
    host_init(&host);
    host.vars = HTTP11_VARS;
    h = host_structured_handler(&host);
    assert_int_equal(gw_handler_run(h, early_hints_app, statuses), GW_STATUS_OK);
    assert_memory_equal(statuses, refused, sizeof refused);
    assert_string_equal(host.calls, "interim(103 Early Hints|NONE|Link) head(200 OK|STREAM|Date) write(2) flush end(1) ");
    gw_handler_free(h);
}

/* ---- the ABI can grow ----------------------------------------------------------------------- */

/* gw_handler_hooks as the first 0.2 header had it, before the structured-response hooks:
 * a binary built then passes a table this long. */
typedef struct hooks_before_structured {
    size_t size;
    void *userdata;
    gw_hook_write_fn write;
    gw_hook_flush_fn flush;
    gw_hook_read_fn read_stdin;
    gw_hook_write_fn write_stderr;
    gw_hook_flush_fn flush_stderr;
    gw_hook_add_cgi_vars_fn add_cgi_vars;
} hooks_before_structured;

static void test_an_older_or_newer_hook_table(void **state) {
    (void)state;
    test_host host;
    host_init(&host);
    gw_handler_hooks now = host_hooks(&host);
    /* The older table sits right before bytes that would be garbage hooks if the library
     * read past its size. */
    struct {
        hooks_before_structured old;
        unsigned char garbage[sizeof(gw_handler_hooks)];
    } memory;
    memset(memory.garbage, 0xAB, sizeof memory.garbage);
    memory.old.size = sizeof memory.old;
    memory.old.userdata = now.userdata;
    memory.old.write = now.write;
    memory.old.flush = now.flush;
    memory.old.read_stdin = now.read_stdin;
    memory.old.write_stderr = now.write_stderr;
    memory.old.flush_stderr = now.flush_stderr;
    memory.old.add_cgi_vars = now.add_cgi_vars;
    gw_handler *h = NULL;
    assert_int_equal(gw_handler_new((const gw_handler_hooks *)(void *)&memory.old, &h), GW_STATUS_OK);
    assert_int_equal(gw_handler_run(h, hello_app, NULL), GW_STATUS_OK);
    assert_origin_output(&host, "HTTP/1.0 200 OK\r\nDate: {DATE}\r\nContent-Type: text/plain\r\n"
                                "Content-Length: 13\r\n\r\nHello, world!");
    gw_handler_free(h);
    /* A newer table: fields this library does not know must be zero. */
    struct {
        gw_handler_hooks now;
        void *unknown_hook;
    } newer;
    memset(&newer, 0, sizeof newer);
    newer.now = now;
    newer.now.size = sizeof newer;
    assert_int_equal(gw_handler_new(&newer.now, &h), GW_STATUS_OK);
    gw_handler_free(h);
    newer.unknown_hook = &newer;
    h = NULL;
    assert_int_equal(gw_handler_new(&newer.now, &h), GW_STATUS_UNSUPPORTED);
    assert_null(h);
    assert_non_null(strstr(gw_last_error_message(), "does not know"));
    /* A table without its size (not from GW_HANDLER_HOOKS_INIT) is refused. */
    now.size = 0;
    assert_int_equal(gw_handler_new(&now, &h), GW_STATUS_INVALID_ARGUMENT);
    assert_non_null(strstr(gw_last_error_message(), "_INIT"));
    gw_handler_hooks from_macro = GW_HANDLER_HOOKS_INIT;
    assert_int_equal(from_macro.size, sizeof(gw_handler_hooks));
    assert_true(from_macro.write == NULL);
    gw_body_iter iter = GW_BODY_ITER_INIT;
    assert_int_equal(iter.size, sizeof(gw_body_iter));
}

static void test_structured_hosts_answer_expect_themselves(void **state) {
    (void)state;
    static const char *const expect[] = { "SERVER_PROTOCOL=HTTP/1.1", "HTTP_EXPECT=100-continue",
                                          "CONTENT_LENGTH=3", NULL };
    test_host host;
    host_init(&host);
    host.vars = expect;
    host.in = "abc";
    host.in_len = 3;
    gw_handler *h = host_structured_handler(&host);
    assert_int_equal(gw_handler_set_http_version(h, "1.1", 3), GW_STATUS_OK);
    input_case c;
    memset(&c, 0, sizeof c);
    assert_int_equal(gw_handler_run(h, read_all_app, &c), GW_STATUS_OK);
    assert_int_equal(c.got_len, 3);
    /* No `100 Continue` bytes among the body bytes: the server library sends its own. */
    assert_string_equal(host.calls, "head(200 OK|LENGTH 0|Date) flush end(1) ");
    assert_int_equal(host.out_len, 0);
    gw_handler_free(h);
}

static void test_last_response_counts_only_bytes_handed_over(void **state) {
    (void)state;
    test_host host;
    host_init(&host);
    host.vars = HTTP11_VARS;
    host.fail_call = 2;
    host.fail_call_errno = EPIPE;
    gw_handler *h = host_handler(&host, false);
    gw_status second = GW_STATUS_OK;
    assert_int_equal(gw_handler_run(h, ignores_failed_write_app, &second), GW_STATUS_CLIENT_GONE);
    uint16_t code = 0;
    uint64_t bytes = 0;
    assert_int_equal(gw_handler_last_response(h, &code, &bytes), GW_STATUS_OK);
    assert_int_equal(code, 200);
    assert_int_equal(bytes, 5); /* "first"; "second" met the disconnect */
    gw_handler_free(h);
}

/* ---- gw_environ_set_from_request_head and gw_error_response ---------------------------- */

/* What the add_cgi_vars below parses, and what it found. */
static struct {
    const char *head;
    size_t len;
    gw_connection_facts facts;
    size_t consumed;
    bool chunked;
    uint16_t http_status;
    gw_status status;
} parse_ctx;

static int32_t parse_head_add_cgi_vars(void *userdata, gw_environ *environ) {
    (void)userdata;
    parse_ctx.status = gw_environ_set_from_request_head(environ, parse_ctx.head, parse_ctx.len,
                                                        &parse_ctx.facts, NULL, &parse_ctx.consumed,
                                                        &parse_ctx.chunked, &parse_ctx.http_status);
    return parse_ctx.status;
}

/* Echoes a few variables and the body it reads. */
static gw_status echo_env_app(void *userdata, gw_request *req) {
    (void)userdata;
    gw_environ *env = NULL;
    gw_status st = gw_request_environ(req, &env);
    if (st != GW_STATUS_OK) return st;
    static const char *const names[] = { "SERVER_PROTOCOL", "REQUEST_METHOD", "REQUEST_URI", "SCRIPT_NAME",
                                         "PATH_INFO", "QUERY_STRING", "CONTENT_LENGTH", "HTTP_HOST",
                                         "HTTP_X_Y", "HTTP_PROXY", "wsgi.url_scheme", NULL };
    char body[1024];
    size_t at = 0;
    for (const char *const *n = names; *n != NULL; n++) {
        const char *v = NULL;
        size_t vlen = 0;
        if (gw_environ_get(env, *n, strlen(*n), &v, &vlen) == GW_STATUS_OK) {
            at += (size_t)snprintf(body + at, sizeof body - at, "%s=%.*s\n", *n, (int)vlen, v);
        }
    }
    size_t got = 0;
    st = gw_request_input_read(req, body + at + 6, 64, &got);
    if (st != GW_STATUS_OK) return st;
    memcpy(body + at, "body=", 5);
    body[at + 5] = '\0';
    memmove(body + at + 5, body + at + 6, got);
    at += 5 + got;
    static const gw_header headers[] = { HDR("Content-Type", "text/plain") };
    st = gw_request_start_response(req, "200 OK", 6, headers, 1, 0);
    if (st != GW_STATUS_OK) return st;
    return gw_request_set_body_bytes(req, body, at);
}

static gw_connection_facts test_facts(void) {
    gw_connection_facts facts = GW_CONNECTION_FACTS_INIT;
    facts.remote_addr = "192.0.2.7";
    facts.remote_addr_len = 9;
    facts.remote_port = 50000;
    facts.server_name = "gw.test";
    facts.server_name_len = 7;
    facts.server_port = 8080;
    return facts;
}

/* A host parses the head in add_cgi_vars, then the library runs the app on that environ
 * and reads the body that follows the head. */
static void test_request_head_in_add_cgi_vars(void **state) {
    (void)state;
    static const char wire[] = "POST /app/items/%41b/../c?x=%2F HTTP/1.1\r\nHost: gw.test\r\n"
                               "Content-Length: 5\r\nX_Y: underscore\r\nX-Y: dash\r\nProxy: http://evil/\r\n\r\n"
                               "hello";
    memset(&parse_ctx, 0, sizeof parse_ctx);
    parse_ctx.head = wire;
    parse_ctx.len = LEN(wire);
    parse_ctx.facts = test_facts();
    parse_ctx.facts.script_name = "/app";
    parse_ctx.facts.script_name_len = 4;
    parse_ctx.facts.tls = true;
    test_host host;
    host_init(&host);
    gw_handler_hooks hooks = host_hooks(&host);
    hooks.add_cgi_vars = parse_head_add_cgi_vars;
    gw_handler *h = NULL;
    assert_int_equal(gw_handler_new(&hooks, &h), GW_STATUS_OK);
    assert_int_equal(gw_handler_set_http_version(h, "1.1", 3), GW_STATUS_OK);
    /* The host hands the library the bytes after the head as the body. */
    size_t head_len = LEN(wire) - 5;
    host.in = wire + head_len;
    host.in_len = 5;
    assert_int_equal(gw_handler_run(h, echo_env_app, NULL), GW_STATUS_OK);
    assert_int_equal(parse_ctx.status, GW_STATUS_OK);
    assert_int_equal(parse_ctx.consumed, head_len);
    assert_false(parse_ctx.chunked);
    assert_origin_output(&host, "HTTP/1.1 200 OK\r\nDate: {DATE}\r\nContent-Type: text/plain\r\n"
                                "Content-Length: 220\r\n\r\n"
                                "SERVER_PROTOCOL=HTTP/1.1\nREQUEST_METHOD=POST\n"
                                "REQUEST_URI=/app/items/%41b/../c?x=%2F\nSCRIPT_NAME=/app\nPATH_INFO=/items/c\n"
                                "QUERY_STRING=x=%2F\nCONTENT_LENGTH=5\nHTTP_HOST=gw.test\nHTTP_X_Y=dash\n"
                                "wsgi.url_scheme=https\nbody=hello");
    /* A bad head: add_cgi_vars fails, so the library answers with its error page; a real
     * host would rather answer with gw_error_response before running the handler. */
    host_clear_output(&host);
    parse_ctx.head = "GET /../x HTTP/1.1\r\nHost: h\r\n\r\n";
    parse_ctx.len = strlen(parse_ctx.head);
    assert_int_equal(gw_handler_run(h, echo_env_app, NULL), GW_STATUS_APP_ERROR);
    assert_int_equal(parse_ctx.status, GW_STATUS_BAD_REQUEST);
    assert_int_equal(parse_ctx.http_status, 400);
    gw_handler_free(h);
}

static void test_request_head_null_and_length_checks(void **state) {
    (void)state;
    gw_environ *env = NULL;
    assert_int_equal(gw_environ_new(&env), GW_STATUS_OK);
    gw_connection_facts facts = test_facts();
    static const char head[] = "GET / HTTP/1.0\r\n\r\n";
    size_t consumed = 99;
    bool chunked = true;
    uint16_t code = 99;
    assert_int_equal(gw_environ_set_from_request_head(NULL, head, LEN(head), &facts, NULL, &consumed, &chunked, &code),
                     GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_environ_set_from_request_head(env, NULL, 1, &facts, NULL, &consumed, &chunked, &code),
                     GW_STATUS_NULL_ARGUMENT);
    assert_non_null(strstr(gw_last_error_message(), "head"));
    assert_int_equal(gw_environ_set_from_request_head(env, head, LEN(head), NULL, NULL, &consumed, &chunked, &code),
                     GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_environ_set_from_request_head(env, head, LEN(head), &facts, NULL, NULL, &chunked, &code),
                     GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_environ_set_from_request_head(env, head, LEN(head), &facts, NULL, &consumed, NULL, &code),
                     GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_environ_set_from_request_head(env, head, LEN(head), &facts, NULL, &consumed, &chunked, NULL),
                     GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_environ_set_from_request_head(env, head, SIZE_MAX, &facts, NULL, &consumed, &chunked, &code),
                     GW_STATUS_INVALID_ARGUMENT);
    /* A string of the facts NULL with a length, or missing where it is required. */
    facts.server_name = NULL;
    assert_int_equal(gw_environ_set_from_request_head(env, head, LEN(head), &facts, NULL, &consumed, &chunked, &code),
                     GW_STATUS_NULL_ARGUMENT);
    assert_non_null(strstr(gw_last_error_message(), "server_name"));
    facts.server_name_len = 0;
    assert_int_equal(gw_environ_set_from_request_head(env, head, LEN(head), &facts, NULL, &consumed, &chunked, &code),
                     GW_STATUS_INVALID_ARGUMENT);
    facts = test_facts();
    facts.script_name = "/app/";
    facts.script_name_len = 5;
    assert_int_equal(gw_environ_set_from_request_head(env, head, LEN(head), &facts, NULL, &consumed, &chunked, &code),
                     GW_STATUS_INVALID_ARGUMENT);
    /* None of it touched the out-parameters or the environ. */
    assert_int_equal(consumed, 99);
    assert_true(chunked);
    assert_int_equal(code, 99);
    size_t n = 1;
    assert_int_equal(gw_environ_len(env, &n), GW_STATUS_OK);
    assert_int_equal(n, 0);
    /* An empty head is just incomplete; a NULL one with length 0 too. */
    facts = test_facts();
    assert_int_equal(gw_environ_set_from_request_head(env, NULL, 0, &facts, NULL, &consumed, &chunked, &code),
                     GW_STATUS_INCOMPLETE);
    assert_int_equal(code, 0);
    gw_environ_free(env);
}

static void test_request_head_incomplete_then_complete(void **state) {
    (void)state;
    gw_environ *env = NULL;
    assert_int_equal(gw_environ_new(&env), GW_STATUS_OK);
    gw_connection_facts facts = test_facts();
    static const char head[] = "POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
    size_t head_len = strstr(head, "\r\n\r\n") + 4 - head;
    size_t consumed = 0;
    bool chunked = false;
    uint16_t code = 1;
    for (size_t cut = 0; cut < head_len; cut++) {
        assert_int_equal(gw_environ_set_from_request_head(env, head, cut, &facts, NULL, &consumed, &chunked, &code),
                         GW_STATUS_INCOMPLETE);
        assert_int_equal(code, 0);
        size_t n = 1;
        assert_int_equal(gw_environ_len(env, &n), GW_STATUS_OK);
        assert_int_equal(n, 0);
    }
    assert_string_equal(gw_status_str(GW_STATUS_INCOMPLETE), "incomplete: more bytes are needed");
    assert_int_equal(gw_environ_set_from_request_head(env, head, LEN(head), &facts, NULL, &consumed, &chunked, &code),
                     GW_STATUS_OK);
    assert_int_equal(consumed, head_len);
    assert_true(chunked);
    const char *v = NULL;
    size_t vlen = 0;
    assert_int_equal(gw_environ_get(env, "CONTENT_LENGTH", 14, &v, &vlen), GW_STATUS_NOT_FOUND);
    assert_int_equal(gw_environ_get(env, "HTTP_TRANSFER_ENCODING", 22, &v, &vlen), GW_STATUS_OK);
    gw_environ_free(env);
}

/* Every variable, in order, as "NAME=value\n". */
static void environ_text(const gw_environ *env, char *out, size_t cap) {
    size_t at = 0, cursor = 0, nlen, vlen;
    const char *name, *value;
    out[0] = '\0';
    while (gw_environ_next(env, &cursor, &name, &nlen, &value, &vlen) == GW_STATUS_OK) {
        at += (size_t)snprintf(out + at, cap - at, "%.*s=%.*s\n", (int)nlen, name, (int)vlen, value);
    }
}

static void test_request_head_pipelined(void **state) {
    (void)state;
    static const char two[] = "GET /one?a HTTP/1.1\r\nHost: h\r\nCookie: a=1\r\nCookie: b=2\r\n\r\n"
                              "GET /two HTTP/1.1\r\nHost: h\r\n\r\n";
    gw_connection_facts facts = test_facts();
    size_t consumed = 0, at = 0;
    bool chunked = true;
    uint16_t code = 1;
    char text[1024];
    const char *want[] = {
        "GATEWAY_INTERFACE=CGI/1.1\nSERVER_NAME=gw.test\nSERVER_PORT=8080\nSERVER_PROTOCOL=HTTP/1.1\n"
        "REQUEST_METHOD=GET\nREQUEST_URI=/one?a\nSCRIPT_NAME=\nPATH_INFO=/one\nQUERY_STRING=a\n"
        "REMOTE_ADDR=192.0.2.7\nREMOTE_PORT=50000\nHTTP_HOST=h\nHTTP_COOKIE=a=1; b=2\n",
        "GATEWAY_INTERFACE=CGI/1.1\nSERVER_NAME=gw.test\nSERVER_PORT=8080\nSERVER_PROTOCOL=HTTP/1.1\n"
        "REQUEST_METHOD=GET\nREQUEST_URI=/two\nSCRIPT_NAME=\nPATH_INFO=/two\nQUERY_STRING=\n"
        "REMOTE_ADDR=192.0.2.7\nREMOTE_PORT=50000\nHTTP_HOST=h\n",
    };
    for (int i = 0; i < 2; i++) {
        gw_environ *env = NULL;
        assert_int_equal(gw_environ_new(&env), GW_STATUS_OK);
        assert_int_equal(gw_environ_set_from_request_head(env, two + at, LEN(two) - at, &facts, NULL, &consumed,
                                                          &chunked, &code),
                         GW_STATUS_OK);
        assert_false(chunked);
        assert_int_equal(code, 0);
        environ_text(env, text, sizeof text);
        assert_string_equal(text, want[i]);
        at += consumed;
        gw_environ_free(env);
    }
    assert_int_equal(at, LEN(two));
    assert_int_equal(consumed, LEN(two) - (strstr(two, "\r\n\r\n") + 4 - two));
}

static void test_request_head_bad_requests(void **state) {
    (void)state;
    static const struct {
        const char *head;
        uint16_t code;
        const char *words;
    } cases[] = {
        { "GET /../etc/passwd HTTP/1.0\r\n\r\n", 400, "above the root" },
        { "GET / HTTP/1.1\r\n\r\n", 400, "without Host" },
        { "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", 400, "both" },
        { "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501, "not implemented" },
        { "GET / HTTP/2.0\r\n\r\n", 505, "version" },
        { "GET /x\r\n", 505, "HTTP/0.9" },
        { "GET /elsewhere HTTP/1.0\r\n\r\n", 404, "mount prefix" },
        { "GET / HTTP/1.1\nHost: h\n\n", 400, "bare LF" },
    };
    gw_environ *env = NULL;
    assert_int_equal(gw_environ_new(&env), GW_STATUS_OK);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        gw_connection_facts facts = test_facts();
        if (cases[i].code == 404) {
            facts.script_name = "/app";
            facts.script_name_len = 4;
        }
        size_t consumed = 99;
        bool chunked = false;
        uint16_t code = 0;
        assert_int_equal(gw_environ_set_from_request_head(env, cases[i].head, strlen(cases[i].head), &facts, NULL,
                                                          &consumed, &chunked, &code),
                         GW_STATUS_BAD_REQUEST);
        assert_int_equal(code, cases[i].code);
        assert_int_equal(consumed, 99);
        if (strstr(gw_last_error_message(), cases[i].words) == NULL) fail_msg("%s", gw_last_error_message());
        size_t n = 1;
        assert_int_equal(gw_environ_len(env, &n), GW_STATUS_OK);
        assert_int_equal(n, 0);
    }
    /* Limits come from the options: 414 for the request line, 431 for the fields. */
    gw_request_head_options opts = GW_REQUEST_HEAD_OPTIONS_INIT;
    opts.max_request_line = 10;
    opts.max_fields = 1;
    gw_connection_facts facts = test_facts();
    size_t consumed = 0;
    bool chunked = false;
    uint16_t code = 0;
    assert_int_equal(gw_environ_set_from_request_head(env, "GET /abcdefgh", 13, &facts, &opts, &consumed, &chunked,
                                                      &code),
                     GW_STATUS_BAD_REQUEST);
    assert_int_equal(code, 414);
    opts.max_request_line = 0;
    static const char two_fields[] = "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\n\r\n";
    assert_int_equal(gw_environ_set_from_request_head(env, two_fields, LEN(two_fields), &facts, &opts, &consumed,
                                                      &chunked, &code),
                     GW_STATUS_BAD_REQUEST);
    assert_int_equal(code, 431);
    opts.max_fields = GW_REQUEST_HEAD_MAX_FIELDS_LIMIT + 1;
    assert_int_equal(gw_environ_set_from_request_head(env, two_fields, LEN(two_fields), &facts, &opts, &consumed,
                                                      &chunked, &code),
                     GW_STATUS_INVALID_ARGUMENT);
    /* HTTP/0.9 and %00 when the options allow them. */
    opts.max_fields = 0;
    opts.allow_http09 = true;
    opts.allow_nul_in_path = true;
    assert_int_equal(gw_environ_set_from_request_head(env, "GET /a%00\r\n", 11, &facts, &opts, &consumed, &chunked,
                                                      &code),
                     GW_STATUS_OK);
    assert_int_equal(consumed, 11);
    const char *v = NULL;
    size_t vlen = 0;
    assert_int_equal(gw_environ_get(env, "SERVER_PROTOCOL", 15, &v, &vlen), GW_STATUS_OK);
    assert_string_equal(v, "HTTP/0.9");
    assert_int_equal(gw_environ_get(env, "PATH_INFO", 9, &v, &vlen), GW_STATUS_OK);
    assert_int_equal(vlen, 3);
    assert_memory_equal(v, "/a\0", 3);
    gw_environ_free(env);
}

static void test_request_head_sized_structs(void **state) {
    (void)state;
    gw_connection_facts from_macro = GW_CONNECTION_FACTS_INIT;
    assert_int_equal(from_macro.size, sizeof(gw_connection_facts));
    assert_null(from_macro.server_name);
    assert_int_equal(from_macro.server_port, 0);
    assert_false(from_macro.tls);
    gw_request_head_options opts_macro = GW_REQUEST_HEAD_OPTIONS_INIT;
    assert_int_equal(opts_macro.size, sizeof(gw_request_head_options));
    assert_int_equal(opts_macro.max_fields, 0);
    assert_false(opts_macro.allow_http09);

    gw_environ *env = NULL;
    assert_int_equal(gw_environ_new(&env), GW_STATUS_OK);
    static const char head[] = "GET / HTTP/1.0\r\n\r\n";
    size_t consumed = 0;
    bool chunked = false;
    uint16_t code = 0;
    gw_connection_facts facts = test_facts();
    gw_request_head_options opts = GW_REQUEST_HEAD_OPTIONS_INIT;
    assert_int_equal(gw_environ_set_from_request_head(env, head, LEN(head), &facts, &opts, &consumed, &chunked, &code),
                     GW_STATUS_OK);
    /* Without the size (not from the _INIT macro): refused. */
    facts.size = 0;
    assert_int_equal(gw_environ_set_from_request_head(env, head, LEN(head), &facts, &opts, &consumed, &chunked, &code),
                     GW_STATUS_INVALID_ARGUMENT);
    assert_non_null(strstr(gw_last_error_message(), "_INIT"));
    facts = test_facts();
    opts.size = sizeof(size_t);
    assert_int_equal(gw_environ_set_from_request_head(env, head, LEN(head), &facts, &opts, &consumed, &chunked, &code),
                     GW_STATUS_INVALID_ARGUMENT);
    /* A newer struct: fields this library does not know must be zero. */
    struct {
        gw_request_head_options now;
        size_t unknown;
    } newer;
    memset(&newer, 0, sizeof newer);
    newer.now.size = sizeof newer;
    assert_int_equal(gw_environ_set_from_request_head(env, head, LEN(head), &facts, &newer.now, &consumed, &chunked,
                                                      &code),
                     GW_STATUS_OK);
    newer.unknown = 1;
    assert_int_equal(gw_environ_set_from_request_head(env, head, LEN(head), &facts, &newer.now, &consumed, &chunked,
                                                      &code),
                     GW_STATUS_UNSUPPORTED);
    struct {
        gw_connection_facts now;
        void *unknown;
    } newer_facts;
    memset(&newer_facts, 0, sizeof newer_facts);
    newer_facts.now = test_facts();
    newer_facts.now.size = sizeof newer_facts;
    newer_facts.unknown = &newer_facts;
    assert_int_equal(gw_environ_set_from_request_head(env, head, LEN(head), &newer_facts.now, NULL, &consumed,
                                                      &chunked, &code),
                     GW_STATUS_UNSUPPORTED);
    gw_environ_free(env);
}

static void test_error_response_bytes(void **state) {
    (void)state;
    char buf[GW_ERROR_RESPONSE_MAX_LEN + 1];
    size_t len = 0;
    assert_int_equal(gw_error_response(400, buf, GW_ERROR_RESPONSE_MAX_LEN, &len), GW_STATUS_OK);
    buf[len] = '\0';
    assert_dated(buf, "HTTP/1.1 400 Bad Request\r\nDate: {DATE}\r\nContent-Type: text/plain; charset=utf-8\r\n"
                      "Content-Length: 16\r\nConnection: close\r\n\r\n400 Bad Request\n");
    assert_int_equal(gw_error_response(431, buf, GW_ERROR_RESPONSE_MAX_LEN, &len), GW_STATUS_OK);
    buf[len] = '\0';
    assert_dated(buf, "HTTP/1.1 431 Request Header Fields Too Large\r\nDate: {DATE}\r\n"
                      "Content-Type: text/plain; charset=utf-8\r\nContent-Length: 36\r\nConnection: close\r\n\r\n"
                      "431 Request Header Fields Too Large\n");
    static const uint16_t codes[] = { 400, 404, 414, 431, 501, 505 };
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        assert_int_equal(gw_error_response(codes[i], buf, GW_ERROR_RESPONSE_MAX_LEN, &len), GW_STATUS_OK);
        char start[16];
        snprintf(start, sizeof start, "HTTP/1.1 %u ", (unsigned)codes[i]);
        assert_memory_equal(buf, start, strlen(start));
    }
    /* Too small: TOO_LARGE with the length needed; then that length is enough. */
    size_t needed = 0;
    assert_int_equal(gw_error_response(505, buf, 10, &needed), GW_STATUS_TOO_LARGE);
    assert_true(needed > 10 && needed <= GW_ERROR_RESPONSE_MAX_LEN);
    assert_int_equal(gw_error_response(505, buf, needed, &len), GW_STATUS_OK);
    assert_int_equal(len, needed);
    assert_int_equal(gw_error_response(200, buf, sizeof buf, &len), GW_STATUS_INVALID_ARGUMENT);
    assert_int_equal(gw_error_response(999, buf, sizeof buf, &len), GW_STATUS_INVALID_ARGUMENT);
    assert_int_equal(gw_error_response(400, NULL, sizeof buf, &len), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_error_response(400, buf, sizeof buf, NULL), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_error_response(400, buf, SIZE_MAX, &len), GW_STATUS_INVALID_ARGUMENT);
}

/* ---- packed name/value pairs (src/ffi/packed.rs): the bulk calls of language bindings ------ */

/* "A\0x\0B\0\0" as pairs: the exact bytes gw_environ_pack gives and set_packed takes. */
static void test_environ_pack(void **state) {
    (void)state;
    gw_environ *env = NULL;
    assert_int_equal(gw_environ_new(&env), GW_STATUS_OK);
    char buf[64];
    size_t len = 99, count = 99, size = 0;
    bool nul = true;
    /* Empty. */
    assert_int_equal(gw_environ_pack(env, buf, sizeof buf, &len, &count, &nul), GW_STATUS_OK);
    assert_int_equal(len, 0);
    assert_int_equal(count, 0);
    assert_false(nul);
    assert_int_equal(gw_environ_set(env, "B", 1, "2", 1), GW_STATUS_OK);
    assert_int_equal(gw_environ_set(env, "A", 1, "x", 1), GW_STATUS_OK);
    assert_int_equal(gw_environ_set(env, "E", 1, "", 0), GW_STATUS_OK);
    assert_int_equal(gw_environ_set(env, "B", 1, "22", 2), GW_STATUS_OK); /* keeps its place */
    assert_int_equal(gw_environ_pack(env, buf, sizeof buf, &len, &count, &nul), GW_STATUS_OK);
    assert_int_equal(len, LEN("B\0" "22\0" "A\0x\0E\0\0"));
    assert_memory_equal(buf, "B\0" "22\0" "A\0x\0E\0\0", len);
    assert_int_equal(count, 3);
    assert_false(nul);
    assert_int_equal(gw_environ_packed_size(env, &size), GW_STATUS_OK);
    assert_int_equal(size, len);
    /* Too small: TOO_LARGE, the out-parameters untouched, and the size to give is known. */
    len = count = 77;
    assert_int_equal(gw_environ_pack(env, buf, size - 1, &len, &count, &nul), GW_STATUS_TOO_LARGE);
    assert_int_equal(len, 77);
    assert_int_equal(count, 77);
    assert_non_null(strstr(gw_last_error_message(), "needs 12 bytes"));
    assert_int_equal(gw_environ_pack(env, buf, size, &len, &count, &nul), GW_STATUS_OK);
    /* A value holding a NUL is packed as it is, and said so. */
    assert_int_equal(gw_environ_set(env, "N", 1, "a\0b", 3), GW_STATUS_OK);
    assert_int_equal(gw_environ_pack(env, buf, sizeof buf, &len, &count, &nul), GW_STATUS_OK);
    assert_true(nul);
    assert_int_equal(count, 4);
    assert_memory_equal(buf + len - 6, "N\0a\0b\0", 6);
    /* NULL and length checks. */
    assert_int_equal(gw_environ_pack(NULL, buf, sizeof buf, &len, &count, &nul), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_environ_pack(env, NULL, 8, &len, &count, &nul), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_environ_pack(env, NULL, 0, &len, &count, &nul), GW_STATUS_TOO_LARGE);
    assert_int_equal(gw_environ_pack(env, buf, sizeof buf, NULL, &count, &nul), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_environ_pack(env, buf, sizeof buf, &len, NULL, &nul), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_environ_pack(env, buf, sizeof buf, &len, &count, NULL), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_environ_pack(env, buf, (size_t)PTRDIFF_MAX + 1, &len, &count, &nul),
                     GW_STATUS_INVALID_ARGUMENT);
    assert_int_equal(gw_environ_packed_size(NULL, &size), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_environ_packed_size(env, NULL), GW_STATUS_NULL_ARGUMENT);
    gw_environ_free(env);
}

static void assert_environ_is(const gw_environ *env, const char *packed, size_t packed_len) {
    char buf[256];
    size_t len = 0, count = 0;
    bool nul = false;
    assert_int_equal(gw_environ_pack(env, buf, sizeof buf, &len, &count, &nul), GW_STATUS_OK);
    assert_int_equal(len, packed_len);
    assert_memory_equal(buf, packed, packed_len);
}

static void test_environ_set_packed(void **state) {
    (void)state;
    gw_environ *env = NULL;
    assert_int_equal(gw_environ_new(&env), GW_STATUS_OK);
    assert_int_equal(gw_environ_set(env, "A", 1, "old", 3), GW_STATUS_OK);
    /* Set in order, an existing name keeps its place, a later pair of a name wins. */
    static const char pairs[] = "B\0" "1\0" "A\0" "new\0" "B\0" "2\0" "E\0";
    assert_int_equal(gw_environ_set_packed(env, pairs, sizeof pairs, 4), GW_STATUS_OK);
    static const char want[] = "A\0new\0B\0" "2\0E\0";
    assert_environ_is(env, want, sizeof want);
    /* Refused whole, nothing set: NULs that do not make `count` pairs (a NUL in a value),
     * a last field without its NUL, an empty name, a name with '='. */
    static const char nul_in_value[] = "C\0x\0y\0"; /* C = "x\0y" cannot be packed */
    assert_int_equal(gw_environ_set_packed(env, nul_in_value, LEN(nul_in_value), 1), GW_STATUS_INVALID_ARGUMENT);
    assert_non_null(strstr(gw_last_error_message(), "1 name/value pairs"));
    assert_int_equal(gw_environ_set_packed(env, "C\0x", 3, 1), GW_STATUS_INVALID_ARGUMENT);
    assert_int_equal(gw_environ_set_packed(env, "C\0x\0", 4, 2), GW_STATUS_INVALID_ARGUMENT);
    assert_int_equal(gw_environ_set_packed(env, "C\0x\0", 4, 0), GW_STATUS_INVALID_ARGUMENT);
    static const char empty_name[] = "C\0x\0\0y\0";
    assert_int_equal(gw_environ_set_packed(env, empty_name, LEN(empty_name), 2), GW_STATUS_INVALID_ARGUMENT);
    static const char equals[] = "C\0x\0D=E\0y\0";
    assert_int_equal(gw_environ_set_packed(env, equals, LEN(equals), 2), GW_STATUS_INVALID_ARGUMENT);
    assert_environ_is(env, want, sizeof want);
    /* Nothing is fine; NULL and length checks. */
    assert_int_equal(gw_environ_set_packed(env, NULL, 0, 0), GW_STATUS_OK);
    assert_int_equal(gw_environ_set_packed(env, NULL, 4, 1), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_environ_set_packed(NULL, pairs, sizeof pairs, 4), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_environ_set_packed(env, pairs, (size_t)PTRDIFF_MAX + 1, 4), GW_STATUS_INVALID_ARGUMENT);
    assert_environ_is(env, want, sizeof want);
    /* A name of latin-1 bytes (the batch's checked path) and a repeat of it. */
    static const char latin1[] = "X\xe9\0" "1\0" "A\0" "a\0" "X\xe9\0" "2\0";
    assert_int_equal(gw_environ_set_packed(env, latin1, sizeof latin1 - 1, 3), GW_STATUS_OK);
    static const char want_latin1[] = "A\0a\0B\0" "2\0E\0\0X\xe9\0" "2";
    assert_environ_is(env, want_latin1, sizeof want_latin1);
    gw_environ_free(env);
}

/* The request environ against what the caller knows: its os_environ and what it sent. */
typedef struct changes_case {
    const gw_environ *known;
    const char *sent;
    size_t sent_len;
    size_t sent_count;
    char packed[512];
    size_t len;
    size_t count;
    size_t missing;
    gw_status status;
    gw_status small_status;
} changes_case;

static int32_t pack_changes_app(void *userdata, gw_request *req) {
    changes_case *c = userdata;
    gw_environ *env = NULL;
    gw_status st = gw_request_environ(req, &env);
    if (st != GW_STATUS_OK) return st;
    bool nul = true;
    size_t untouched = 5;
    c->small_status = gw_environ_pack_changes(env, c->known, c->sent, c->sent_len, c->sent_count, c->packed, 4,
                                              &untouched, &c->count, &c->missing, &nul);
    assert_int_equal(untouched, 5);
    c->status = gw_environ_pack_changes(env, c->known, c->sent, c->sent_len, c->sent_count, c->packed,
                                        sizeof c->packed, &c->len, &c->count, &c->missing, &nul);
    if (c->status == GW_STATUS_OK) assert_false(nul);
    st = gw_request_start_response(req, "204 No Content", LEN("204 No Content"), NULL, 0, 0);
    return st;
}

static void test_environ_pack_changes(void **state) {
    (void)state;
    /* The host sends three variables; one of them it then overrides with a different value
     * it does not tell about (as if a middle layer changed it). */
    static const char *const vars[] = { "PATH_INFO=/p", "HOME=/cgi-home", "X=1", NULL };
    test_host host;
    host_init(&host);
    host.vars = vars;
    gw_handler *h = host_handler(&host, false);
    gw_environ *os = NULL;
    assert_int_equal(gw_environ_new(&os), GW_STATUS_OK);
    assert_int_equal(gw_environ_set(os, "HOME", 4, "/root", 5), GW_STATUS_OK);
    assert_int_equal(gw_environ_set(os, "LANG", 4, "C", 1), GW_STATUS_OK);
    assert_int_equal(gw_handler_set_os_environ(h, os), GW_STATUS_OK);
    assert_int_equal(gw_handler_set_multithread(h, false), GW_STATUS_OK);
    assert_int_equal(gw_handler_set_file_wrapper(h, false), GW_STATUS_OK);
    static const char sent[] = "PATH_INFO\0/p\0HOME\0/cgi-home\0X\0" "2\0";
    changes_case c;
    memset(&c, 0, sizeof c);
    c.known = os;
    c.sent = sent;
    c.sent_len = LEN(sent);
    c.sent_count = 3;
    assert_int_equal(gw_handler_run(h, pack_changes_app, &c), GW_STATUS_OK);
    assert_int_equal(c.status, GW_STATUS_OK);
    assert_int_equal(c.small_status, GW_STATUS_TOO_LARGE);
    /* Known and skipped: LANG (os), HOME and PATH_INFO (sent). Unknown: X (sent as 2, is 1)
     * and the library's own wsgi.* keys, in the environ's order. */
    static const char want[] = "X\0" "1\0wsgi.input\0gw_request_input\0wsgi.errors\0gw_request_errors\0"
                               "wsgi.version\0" "1.0\0wsgi.run_once\0" "0\0wsgi.url_scheme\0http\0"
                               "wsgi.multithread\0" "0\0wsgi.multiprocess\0" "1\0wsgi.input_terminated\0" "1\0";
    assert_int_equal(c.len, LEN(want));
    assert_memory_equal(c.packed, want, LEN(want));
    assert_int_equal(c.count, 9);
    assert_int_equal(c.missing, 0);

    /* Without `known` the os_environ entries are unknown too; with nothing sent, all are. */
    c.known = NULL;
    assert_int_equal(gw_handler_run(h, pack_changes_app, &c), GW_STATUS_OK);
    assert_int_equal(c.count, 10);
    assert_memory_equal(c.packed, "LANG\0C\0X\0", 9);
    c.sent = NULL;
    c.sent_len = 0;
    c.sent_count = 0;
    assert_int_equal(gw_handler_run(h, pack_changes_app, &c), GW_STATUS_OK);
    assert_int_equal(c.count, 12);
    assert_int_equal(c.missing, 0);
    /* Names the caller knows that the environ does not hold are counted: one sent, one in
     * `known`. */
    static const char sent_gone[] = "PATH_INFO\0/p\0GONE\0x\0";
    gw_environ *known = NULL;
    assert_int_equal(gw_environ_new(&known), GW_STATUS_OK);
    assert_int_equal(gw_environ_set(known, "LANG", 4, "C", 1), GW_STATUS_OK);
    assert_int_equal(gw_environ_set(known, "EXTRA", 5, "e", 1), GW_STATUS_OK);
    c.known = known;
    c.sent = sent_gone;
    c.sent_len = LEN(sent_gone);
    c.sent_count = 2;
    assert_int_equal(gw_handler_run(h, pack_changes_app, &c), GW_STATUS_OK);
    assert_int_equal(c.status, GW_STATUS_OK);
    assert_int_equal(c.missing, 2);
    gw_environ_free(known);
    c.known = NULL;
    /* A malformed `sent` is refused like set_packed's data. */
    c.sent = "A\0b";
    c.sent_len = 3;
    c.sent_count = 1;
    assert_int_equal(gw_handler_run(h, pack_changes_app, &c), GW_STATUS_OK);
    assert_int_equal(c.status, GW_STATUS_INVALID_ARGUMENT);
    gw_environ_free(os);
    gw_handler_free(h);

    /* NULL checks, outside a request. */
    gw_environ *env = NULL;
    assert_int_equal(gw_environ_new(&env), GW_STATUS_OK);
    char buf[16];
    size_t len = 0, count = 0, missing = 0;
    bool nul = false;
    assert_int_equal(gw_environ_pack_changes(NULL, NULL, NULL, 0, 0, buf, sizeof buf, &len, &count, &missing, &nul),
                     GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_environ_pack_changes(env, NULL, NULL, 2, 0, buf, sizeof buf, &len, &count, &missing, &nul),
                     GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_environ_pack_changes(env, NULL, NULL, 0, 0, buf, sizeof buf, NULL, &count, &missing, &nul),
                     GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_environ_pack_changes(env, NULL, NULL, 0, 0, buf, sizeof buf, &len, &count, NULL, &nul),
                     GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_environ_pack_changes(env, NULL, NULL, 0, 0, buf, sizeof buf, &len, &count, &missing, &nul),
                     GW_STATUS_OK);
    assert_int_equal(count, 0);
    assert_int_equal(missing, 0);
    gw_environ_free(env);
}

typedef struct packed_start_case {
    const char *headers;
    size_t headers_len;
    size_t count;
    uint32_t flags;
    gw_status first;
    gw_status second;
    gw_status after_write;
} packed_start_case;

static int32_t packed_start_app(void *userdata, gw_request *req) {
    packed_start_case *c = userdata;
    c->first = gw_request_start_response_packed(req, "200 OK", 6, c->headers, c->headers_len, c->count, c->flags);
    static const char good[] = "Content-Type\0text/plain\0X-Two\0a b\0";
    c->second = gw_request_start_response_packed(req, "201 Created", 11, good, LEN(good), 2, 0);
    if (c->second != GW_STATUS_OK && c->first != GW_STATUS_OK) return c->second;
    gw_status st = gw_request_write(req, "hi", 2);
    if (st != GW_STATUS_OK) return st;
    c->after_write = gw_request_start_response_packed(req, "500 Oops", 8, NULL, 0, 0, GW_START_RESPONSE_EXC_INFO);
    return GW_STATUS_OK;
}

static void test_start_response_packed(void **state) {
    (void)state;
    static const char two[] = "Content-Type\0text/plain\0X-Two\0a b\0";
    test_host host;
    host_init(&host);
    packed_start_case c = { two, LEN(two), 2, 0, 0, 0, 0 };
    gw_handler *h = host_handler(&host, false);
    assert_int_equal(gw_handler_run(h, packed_start_app, &c), GW_STATUS_OK);
    assert_int_equal(c.first, GW_STATUS_OK);
    assert_int_equal(c.second, GW_STATUS_HEADERS_ALREADY_SET);
    assert_int_equal(c.after_write, GW_STATUS_HEADERS_ALREADY_SENT);
    assert_string_equal(host_out(&host), "Status: 200 OK\r\nContent-Type: text/plain\r\nX-Two: a b\r\n\r\nhi");

    /* A malformed buffer fails before start_response is attempted: the next call is a first. */
    static const char nul_in_value[] = "X-A\0a\0b\0";
    packed_start_case bad = { nul_in_value, LEN(nul_in_value), 1, 0, 0, 0, 0 };
    host_clear_output(&host);
    assert_int_equal(gw_handler_run(h, packed_start_app, &bad), GW_STATUS_OK);
    assert_int_equal(bad.first, GW_STATUS_INVALID_ARGUMENT);
    assert_int_equal(bad.second, GW_STATUS_OK);
    assert_string_equal(host_out(&host), "Status: 201 Created\r\nContent-Type: text/plain\r\nX-Two: a b\r\n\r\nhi");

    /* start_response's own rules hold: a hop-by-hop header, a bad name, unknown flags, no
     * status; these do count as the call. */
    static const char hop[] = "Connection\0close\0";
    static const char badname[] = "Bad Name\0v\0";
    const struct { const char *h; size_t len; size_t n; uint32_t flags; gw_status want; } refusals[] = {
        { hop, LEN(hop), 1, 0, GW_STATUS_HOP_BY_HOP_HEADER },
        { badname, LEN(badname), 1, 0, GW_STATUS_INVALID_HEADER },
        { two, LEN(two), 2, 4, GW_STATUS_INVALID_ARGUMENT },
        { NULL, 3, 1, 0, GW_STATUS_NULL_ARGUMENT },
        { two, (size_t)PTRDIFF_MAX + 1, 2, 0, GW_STATUS_INVALID_ARGUMENT },
    };
    for (size_t i = 0; i < sizeof refusals / sizeof refusals[0]; i++) {
        packed_start_case r = { refusals[i].h, refusals[i].len, refusals[i].n, refusals[i].flags, 0, 0, 0 };
        host_clear_output(&host);
        gw_handler_run(h, packed_start_app, &r);
        assert_int_equal(r.first, refusals[i].want);
    }
    assert_int_equal(gw_request_start_response_packed(NULL, "200 OK", 6, NULL, 0, 0, 0), GW_STATUS_NULL_ARGUMENT);
    gw_handler_free(h);
}

/* gw_environ_pack_changes walks `sent` alongside the environ and falls back to looking
 * every name up when they part: the result must be the same whatever the order of `sent`,
 * and a name sent twice is known by its last value, not by the pair met in step. */
static void test_environ_pack_changes_order_and_repeats(void **state) {
    (void)state;
    static const char *const vars[] = { "PATH_INFO=/p", "HOME=/h", "X=1", NULL };
    test_host host;
    host_init(&host);
    host.vars = vars;
    gw_handler *h = host_handler(&host, false);
    changes_case c;
    memset(&c, 0, sizeof c);
    /* In the environ's order: only the library's own entries are unknown. */
    static const char in_order[] = "PATH_INFO\0/p\0HOME\0/h\0X\0" "1\0";
    c.sent = in_order;
    c.sent_len = LEN(in_order);
    c.sent_count = 3;
    assert_int_equal(gw_handler_run(h, pack_changes_app, &c), GW_STATUS_OK);
    assert_int_equal(c.status, GW_STATUS_OK);
    assert_int_equal(c.missing, 0);
    size_t own = c.count, own_len = c.len;
    char own_packed[512];
    memcpy(own_packed, c.packed, own_len);
    assert_true(own > 0);
    assert_memory_equal(own_packed, "wsgi.", 5); /* the host's variables are all known */
    /* Reversed: the same answer. */
    static const char reversed[] = "X\0" "1\0HOME\0/h\0PATH_INFO\0/p\0";
    c.sent = reversed;
    c.sent_len = LEN(reversed);
    assert_int_equal(gw_handler_run(h, pack_changes_app, &c), GW_STATUS_OK);
    assert_int_equal(c.status, GW_STATUS_OK);
    assert_int_equal(c.count, own);
    assert_int_equal(c.len, own_len);
    assert_memory_equal(c.packed, own_packed, own_len);
    assert_int_equal(c.missing, 0);
    /* X sent twice, last as 2: the environ's X=1 is unknown (the caller's dict says 2),
     * though the first X pair matches it in step. Both X pairs are held. */
    static const char repeated[] = "PATH_INFO\0/p\0HOME\0/h\0X\0" "1\0X\0" "2\0";
    c.sent = repeated;
    c.sent_len = LEN(repeated);
    c.sent_count = 4;
    assert_int_equal(gw_handler_run(h, pack_changes_app, &c), GW_STATUS_OK);
    assert_int_equal(c.status, GW_STATUS_OK);
    assert_int_equal(c.count, own + 1);
    assert_int_equal(c.len, own_len + 4);
    assert_memory_equal(c.packed, "X\0" "1\0", 4);
    assert_memory_equal(c.packed + 4, own_packed, own_len);
    assert_int_equal(c.missing, 0);
    /* A name sent that the environ lacks, in the middle: counted, the rest exact. */
    static const char gone[] = "PATH_INFO\0/p\0GONE\0g\0HOME\0/h\0X\0" "1\0";
    c.sent = gone;
    c.sent_len = LEN(gone);
    assert_int_equal(gw_handler_run(h, pack_changes_app, &c), GW_STATUS_OK);
    assert_int_equal(c.status, GW_STATUS_OK);
    assert_int_equal(c.count, own);
    assert_memory_equal(c.packed, own_packed, own_len);
    assert_int_equal(c.missing, 1);
    gw_handler_free(h);
}

/* ---- gw_environ_set_many ------------------------------------------------------------------------ */

#define VAR(n, v) { n, sizeof(n) - 1, v, sizeof(v) - 1 }

/* One call sets what the same gw_environ_set calls in order would: a name already there keeps
 * its place, a name given twice takes the later value at the earlier place. */
static void test_environ_set_many_sets_like_single_sets(void **state) {
    (void)state;
    static const gw_header vars[] = {
        VAR("B", "2"), VAR("A", "new"), VAR("C", "3"), VAR("B", "twice"), VAR("EMPTY", ""),
    };
    gw_environ *many = NULL, *single = NULL;
    assert_int_equal(gw_environ_new(&many), GW_STATUS_OK);
    assert_int_equal(gw_environ_new(&single), GW_STATUS_OK);
    assert_int_equal(gw_environ_set(many, "A", 1, "old", 3), GW_STATUS_OK);
    assert_int_equal(gw_environ_set(single, "A", 1, "old", 3), GW_STATUS_OK);
    assert_int_equal(gw_environ_set_many(many, vars, 5), GW_STATUS_OK);
    for (size_t i = 0; i < 5; i++) {
        assert_int_equal(gw_environ_set(single, vars[i].name, vars[i].name_len, vars[i].value, vars[i].value_len),
                         GW_STATUS_OK);
    }
    char a[512], b[512];
    environ_text(many, a, sizeof a);
    environ_text(single, b, sizeof b);
    assert_string_equal(a, "A=new\nB=twice\nC=3\nEMPTY=\n");
    assert_string_equal(a, b);
    size_t len = 0;
    assert_int_equal(gw_environ_len(many, &len), GW_STATUS_OK);
    assert_int_equal(len, 4);
    /* Nothing to set: vars may be NULL. */
    assert_int_equal(gw_environ_set_many(many, NULL, 0), GW_STATUS_OK);
    environ_text(many, a, sizeof a);
    assert_string_equal(a, b);
    /* Over a base environ: a base key gets a new value in its place, as gw_environ_set does. */
    gw_handler *h = NULL;
    test_host host;
    host_init(&host);
    h = host_handler(&host, true);
    assert_int_equal(gw_handler_set_os_environ(h, many), GW_STATUS_OK);
    gw_environ *layered = NULL;
    assert_int_equal(gw_handler_copy_os_environ(h, &layered), GW_STATUS_OK);
    static const gw_header more[] = { VAR("D", "4"), VAR("B", "over") };
    assert_int_equal(gw_environ_set_many(layered, more, 2), GW_STATUS_OK);
    environ_text(layered, a, sizeof a);
    assert_string_equal(a, "A=new\nB=over\nC=3\nEMPTY=\nD=4\n");
    gw_environ_free(layered);
    gw_handler_free(h);
    gw_environ_free(many);
    gw_environ_free(single);
}

/* A bad record anywhere changes nothing, not even the values replaced before it, and the
 * message names it. */
static void test_environ_set_many_is_all_or_nothing(void **state) {
    (void)state;
    gw_environ *env = NULL;
    assert_int_equal(gw_environ_new(&env), GW_STATUS_OK);
    assert_int_equal(gw_environ_set(env, "KEEP", 4, "kept", 4), GW_STATUS_OK);
    assert_int_equal(gw_environ_set(env, "X", 1, "x", 1), GW_STATUS_OK);
    char before[512], after[512];
    environ_text(env, before, sizeof before);
    static char big[GW_ENVIRON_MAX_VALUE_LEN + 1];
    struct {
        gw_header bad;
        gw_status status;
        const char *message;
    } cases[] = {
        { VAR("A=B", "v"), GW_STATUS_INVALID_ARGUMENT, "environ variable 3: environ names must not contain NUL or '='" },
        { { "", 0, "v", 1 }, GW_STATUS_INVALID_ARGUMENT, "environ variable 3: environ names must not be empty" },
        { { "A\0B", 3, "v", 1 }, GW_STATUS_INVALID_ARGUMENT, "environ variable 3: environ names must not contain NUL or '='" },
        { { NULL, 3, "v", 1 }, GW_STATUS_NULL_ARGUMENT, "vars[3].name is NULL" },
        { { "N", 1, NULL, 2 }, GW_STATUS_NULL_ARGUMENT, "vars[3].value is NULL" },
        { { "N", 1, big, sizeof big }, GW_STATUS_TOO_LARGE, "environ variable 3: name or value longer than its limit" },
        { { "N", 1, big, SIZE_MAX }, GW_STATUS_TOO_LARGE, "environ variable 3: name or value longer than its limit" },
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        /* New keys, a replaced value (longer and shorter) and a repeat before the bad one. */
        gw_header vars[] = { VAR("NEW", "1"), VAR("X", "a longer value than before"), VAR("NEW", "2"), cases[c].bad,
                             VAR("LATER", "l") };
        assert_int_equal(gw_environ_set_many(env, vars, 5), cases[c].status);
        assert_string_equal(gw_last_error_message(), cases[c].message);
        environ_text(env, after, sizeof after);
        assert_string_equal(after, before);
        size_t len = 0;
        assert_int_equal(gw_environ_len(env, &len), GW_STATUS_OK);
        assert_int_equal(len, 2);
        const char *v = NULL;
        size_t vlen = 0;
        assert_int_equal(gw_environ_get(env, "NEW", 3, &v, &vlen), GW_STATUS_NOT_FOUND);
        assert_int_equal(gw_environ_get(env, "X", 1, &v, &vlen), GW_STATUS_OK);
        assert_string_equal(v, "x");
    }
    /* And it still works afterwards. */
    static const gw_header good[] = { VAR("X", "y"), VAR("Z", "z") };
    assert_int_equal(gw_environ_set_many(env, good, 2), GW_STATUS_OK);
    environ_text(env, after, sizeof after);
    assert_string_equal(after, "KEEP=kept\nX=y\nZ=z\n");
    /* The arguments themselves. */
    assert_int_equal(gw_environ_set_many(NULL, good, 2), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_environ_set_many(env, NULL, 2), GW_STATUS_NULL_ARGUMENT);
    assert_string_equal(gw_last_error_message(), "vars is NULL");
    assert_int_equal(gw_environ_set_many(env, good, SIZE_MAX), GW_STATUS_INVALID_ARGUMENT);
    environ_text(env, after, sizeof after);
    assert_string_equal(after, "KEEP=kept\nX=y\nZ=z\n");
    gw_environ_free(env);
}

static int32_t set_many_vars(void *userdata, gw_environ *env) {
    (void)userdata;
    static const gw_header vars[] = { VAR("REQUEST_METHOD", "GET"), VAR("PATH_INFO", "/p"),
                                      VAR("SERVER_PROTOCOL", "HTTP/1.1"), VAR("HTTPS", "on") };
    return gw_environ_set_many(env, vars, 4);
}

/* After the request keys: a new key goes after them, a request key set again keeps its place,
 * a removed one is gone; a second request starts from the same keys. */
static int32_t change_environ_app(void *userdata, gw_request *req) {
    gw_environ *env = NULL;
    assert_int_equal(gw_request_environ(req, &env), GW_STATUS_OK);
    const char *v = NULL;
    size_t vlen = 0;
    assert_int_equal(gw_environ_get(env, "wsgi.url_scheme", 15, &v, &vlen), GW_STATUS_OK);
    assert_string_equal(v, "https");
    assert_int_equal(gw_environ_set(env, "NEW", 3, "n", 1), GW_STATUS_OK);
    assert_int_equal(gw_environ_set(env, "wsgi.errors", 11, "mine", 4), GW_STATUS_OK);
    assert_int_equal(gw_environ_remove(env, "wsgi.version", 12), GW_STATUS_OK);
    assert_int_equal(gw_environ_get(env, "wsgi.version", 12, &v, &vlen), GW_STATUS_NOT_FOUND);
    return dump_environ_app(userdata, req);
}

static void test_request_keys_follow_the_hosts_variables(void **state) {
    (void)state;
    gw_handler_hooks hooks = GW_HANDLER_HOOKS_INIT;
    test_host host;
    host_init(&host);
    hooks = host_hooks(&host);
    hooks.add_cgi_vars = set_many_vars;
    gw_handler *h = NULL;
    assert_int_equal(gw_handler_new(&hooks, &h), GW_STATUS_OK);
    assert_int_equal(gw_handler_set_server_software(h, "gw-test/1", 9), GW_STATUS_OK);
    static const char *const keys = "wsgi.input=gw_request_input\nwsgi.errors=gw_request_errors\nwsgi.version=1.0\n"
                                    "wsgi.run_once=0\nwsgi.url_scheme=https\nwsgi.multithread=1\n"
                                    "wsgi.multiprocess=1\nwsgi.file_wrapper=gw_request_set_body_file\n"
                                    "wsgi.input_terminated=1\nSERVER_SOFTWARE=gw-test/1\n";
    char want[2048];
    snprintf(want, sizeof want, "REQUEST_METHOD=GET\nPATH_INFO=/p\nSERVER_PROTOCOL=HTTP/1.1\nHTTPS=on\n%s", keys);
    for (int round = 0; round < 2; round++) {
        environ_dump dump;
        memset(&dump, 0, sizeof dump);
        assert_int_equal(gw_handler_run(h, dump_environ_app, &dump), GW_STATUS_OK);
        assert_string_equal(dump.text, want);
        memset(&dump, 0, sizeof dump);
        assert_int_equal(gw_handler_run(h, change_environ_app, &dump), GW_STATUS_OK);
        assert_string_equal(dump.text, "REQUEST_METHOD=GET\nPATH_INFO=/p\nSERVER_PROTOCOL=HTTP/1.1\nHTTPS=on\n"
                                       "wsgi.input=gw_request_input\nwsgi.errors=mine\n"
                                       "wsgi.run_once=0\nwsgi.url_scheme=https\nwsgi.multithread=1\n"
                                       "wsgi.multiprocess=1\nwsgi.file_wrapper=gw_request_set_body_file\n"
                                       "wsgi.input_terminated=1\nSERVER_SOFTWARE=gw-test/1\nNEW=n\n");
    }
    /* A setting changed between requests changes the keys. */
    assert_int_equal(gw_handler_set_multithread(h, false), GW_STATUS_OK);
    assert_int_equal(gw_handler_set_file_wrapper(h, false), GW_STATUS_OK);
    assert_int_equal(gw_handler_set_server_software(h, NULL, 0), GW_STATUS_OK);
    environ_dump dump;
    memset(&dump, 0, sizeof dump);
    assert_int_equal(gw_handler_run(h, dump_environ_app, &dump), GW_STATUS_OK);
    assert_string_equal(dump.text, "REQUEST_METHOD=GET\nPATH_INFO=/p\nSERVER_PROTOCOL=HTTP/1.1\nHTTPS=on\n"
                                   "wsgi.input=gw_request_input\nwsgi.errors=gw_request_errors\nwsgi.version=1.0\n"
                                   "wsgi.run_once=0\nwsgi.url_scheme=https\nwsgi.multithread=0\n"
                                   "wsgi.multiprocess=1\nwsgi.input_terminated=1\n");
    gw_handler_free(h);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hello_cgi),
        cmocka_unit_test(test_request_head_in_add_cgi_vars),
        cmocka_unit_test(test_request_head_null_and_length_checks),
        cmocka_unit_test(test_request_head_incomplete_then_complete),
        cmocka_unit_test(test_request_head_pipelined),
        cmocka_unit_test(test_request_head_bad_requests),
        cmocka_unit_test(test_request_head_sized_structs),
        cmocka_unit_test(test_error_response_bytes),
        cmocka_unit_test(test_hello_origin),
        cmocka_unit_test(test_header_format_matrix),
        cmocka_unit_test(test_app_date_and_server_in_any_case),
        cmocka_unit_test(test_missing_server_protocol_is_modern),
        cmocka_unit_test(test_error_page_cgi),
        cmocka_unit_test(test_error_page_origin),
        cmocka_unit_test(test_no_start_response_gives_error_page),
        cmocka_unit_test(test_custom_error_page),
        cmocka_unit_test(test_default_error_page_getters),
        cmocka_unit_test(test_error_after_output_is_logged_and_truncated),
        cmocka_unit_test(test_iteration_error_after_first_chunk),
        cmocka_unit_test(test_empty_first_chunk_does_not_commit),
        cmocka_unit_test(test_head_sends_no_body),
        cmocka_unit_test(test_bodiless_statuses),
        cmocka_unit_test(test_chunked_when_length_unknown_on_http11),
        cmocka_unit_test(test_chunked_large_block),
        cmocka_unit_test(test_chunking_needs_http11_on_both_sides),
        cmocka_unit_test(test_chunked_failure_leaves_out_the_last_chunk),
        cmocka_unit_test(test_status_validation),
        cmocka_unit_test(test_header_validation),
        cmocka_unit_test(test_hop_by_hop_refused),
        cmocka_unit_test(test_valid_headers_pass_through_in_order),
        cmocka_unit_test(test_second_start_response),
        cmocka_unit_test(test_exc_info),
        cmocka_unit_test(test_write_before_start_response),
        cmocka_unit_test(test_multi_block_body),
        cmocka_unit_test(test_one_block_iterator_gets_content_length),
        cmocka_unit_test(test_empty_bodies_get_content_length_zero),
        cmocka_unit_test(test_app_content_length_kept_and_enforced),
        cmocka_unit_test(test_lying_block_count_cannot_overrun),
        cmocka_unit_test(test_write_then_body),
        cmocka_unit_test(test_body_set_twice),
        cmocka_unit_test(test_file_body),
        cmocka_unit_test(test_partial_writes_seven_bytes),
        cmocka_unit_test(test_disconnect_errnos),
        cmocka_unit_test(test_disconnect_inside_app),
        cmocka_unit_test(test_write_errors_end_the_cycle),
        cmocka_unit_test(test_close_called_once_on_every_path),
        cmocka_unit_test(test_failing_close_is_only_logged),
        cmocka_unit_test(test_add_cgi_vars_failure),
        cmocka_unit_test(test_input_bounded_by_content_length),
        cmocka_unit_test(test_no_last_chunk_after_an_ignored_write_failure),
        cmocka_unit_test(test_truncated_request_body_is_an_input_error),
        cmocka_unit_test(test_chunked_body_through_every_read_function),
        cmocka_unit_test(test_malformed_chunks_are_an_input_error),
        cmocka_unit_test(test_terminated_stream_of_unknown_length),
        cmocka_unit_test(test_request_body_size_limit),
        cmocka_unit_test(test_expect_continue_with_a_chunked_body),
        cmocka_unit_test(test_unread_chunked_body_is_drained),
        cmocka_unit_test(test_no_content_length_on_1xx_and_204),
        cmocka_unit_test(test_add_cgi_vars_client_gone_is_quiet),
        cmocka_unit_test(test_log_lines_are_whole_or_absent),
        cmocka_unit_test(test_refused_body_file_is_still_consumed),
        cmocka_unit_test(test_refused_start_response_keeps_the_first),
        cmocka_unit_test(test_connection_header_says_what_happens),
        cmocka_unit_test(test_unread_request_body_is_drained_within_the_limit),
        cmocka_unit_test(test_small_chunked_response_is_one_write),
        cmocka_unit_test(test_structured_head_and_unframed_body),
        cmocka_unit_test(test_structured_head_request_and_bodiless_statuses),
        cmocka_unit_test(test_structured_failures_end_the_body_once),
        cmocka_unit_test(test_interim_responses),
        cmocka_unit_test(test_an_older_or_newer_hook_table),
        cmocka_unit_test(test_structured_hosts_answer_expect_themselves),
        cmocka_unit_test(test_last_response_counts_only_bytes_handed_over),
        cmocka_unit_test(test_input_lines),
        cmocka_unit_test(test_input_readlines_hint),
        cmocka_unit_test(test_input_read_errors),
        cmocka_unit_test(test_expect_continue_on_first_read),
        cmocka_unit_test(test_keep_alive_verdict),
        cmocka_unit_test(test_errors_stream),
        cmocka_unit_test(test_environ_order_and_precedence),
        cmocka_unit_test(test_environ_defaults_and_server_software),
        cmocka_unit_test(test_environ_object),
        cmocka_unit_test(test_environ_reclaims_space),
        cmocka_unit_test(test_a_request_environ_cannot_be_freed),
        cmocka_unit_test(test_handler_defaults_and_setters),
        cmocka_unit_test(test_handler_refuses_reentry),
        cmocka_unit_test(test_simple_and_base_cgi_presets),
        cmocka_unit_test(test_cgi_and_iis_presets),
        cmocka_unit_test(test_format_date_time_and_version),
        cmocka_unit_test(test_null_arguments),
        cmocka_unit_test(test_empty_write_commits_headers),
        cmocka_unit_test(test_last_response),
        cmocka_unit_test(test_eintr_is_retried),
        cmocka_unit_test(test_fd_preset_retries_eintr),
        cmocka_unit_test(test_last_error_is_per_thread),
        cmocka_unit_test(test_handlers_on_threads_share_a_base_environ),
        cmocka_unit_test(test_environ_pack),
        cmocka_unit_test(test_environ_set_packed),
        cmocka_unit_test(test_environ_pack_changes),
        cmocka_unit_test(test_start_response_packed),
        cmocka_unit_test(test_environ_pack_changes_order_and_repeats),
        cmocka_unit_test(test_environ_set_many_sets_like_single_sets),
        cmocka_unit_test(test_environ_set_many_is_all_or_nothing),
        cmocka_unit_test(test_request_keys_follow_the_hosts_variables),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
