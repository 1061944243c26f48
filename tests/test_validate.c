/* Validation mode (gw_handler_set_validate): wsgiref.validate's rules, with its messages, on
 * the host's environ and on the application's start_response and body, through the C ABI
 * and the memory host of tests/host.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "host.h"

#define ERROR_PAGE_HEAD "Status: 500 Internal Server Error\r\n"

static const char *const GOOD_VARS[] = {
    "REQUEST_METHOD=GET", "SERVER_NAME=127.0.0.1", "SERVER_PORT=80", "QUERY_STRING=",
    "SCRIPT_NAME=",       "PATH_INFO=/",           NULL,
};

typedef struct app_spec {
    const char *status;
    const gw_header *headers;
    size_t header_count;
    bool iterate_first; /* return an iterator that yields before calling start_response */
    gw_status start_status;
    bool called;
} app_spec;

static const gw_header TEXT_PLAIN[] = { { "Content-Type", 12, "text/plain", 10 } };

static int32_t next_before_start(void *ud, gw_request *req, const void **data, size_t *len, bool *end) {
    (void)ud, (void)req;
    *data = "early";
    *len = 5;
    *end = false;
    return GW_STATUS_OK;
}

static int32_t spec_app(void *ud, gw_request *req) {
    app_spec *spec = ud;
    spec->called = true;
    if (spec->iterate_first) {
        gw_body_iter iter = GW_BODY_ITER_INIT;
        iter.next = next_before_start;
        return gw_request_set_body_iter(req, &iter);
    }
    spec->start_status = gw_request_start_response(req, spec->status, strlen(spec->status), spec->headers,
                                                   spec->header_count, 0);
    if (spec->start_status != GW_STATUS_OK) return spec->start_status;
    return gw_request_set_body_bytes(req, "Hello, world!", 13);
}

static app_spec hello(void) {
    app_spec spec = { .status = "200 OK", .headers = TEXT_PLAIN, .header_count = 1, .start_status = -1 };
    return spec;
}

/* Runs `spec` over `vars` with validation on (CGI output), returning the status. */
static gw_status run(test_host *host, const char *const *vars, app_spec *spec, bool validate) {
    host_init(host);
    host->vars = vars;
    gw_handler *h = host_handler(host, false);
    assert_int_equal(gw_handler_set_validate(h, validate), GW_STATUS_OK);
    bool on = !validate;
    assert_int_equal(gw_handler_get_validate(h, &on), GW_STATUS_OK);
    assert_int_equal(on, validate);
    gw_status st = gw_handler_run(h, spec_app, spec);
    gw_handler_free(h);
    return st;
}

/* IntegrationTests.test_validated_hello: a conforming request and app pass without a word. */
static void test_validated_hello(void **state) {
    (void)state;
    test_host host;
    app_spec spec = hello();
    assert_int_equal(run(&host, GOOD_VARS, &spec, true), GW_STATUS_OK);
    assert_string_equal(host_out(&host), "Status: 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\n"
                                         "Hello, world!");
    assert_string_equal(host_err(&host), "");
}

/* check_environ's assertions: the app is never called, the error page goes out, the log says
 * the validator's message. Off (the default), the same requests go through. */
static void test_environ_rules(void **state) {
    (void)state;
    static const struct {
        const char *vars[8];
        const char *message;
    } cases[] = {
        { { "REQUEST_METHOD=GET", "SERVER_NAME=x", "QUERY_STRING=", "PATH_INFO=/", NULL },
          "Environment missing required key: 'SERVER_PORT'" },
        { { "REQUEST_METHOD=GET", "SERVER_NAME=x", "SERVER_PORT=80", "QUERY_STRING=", "PATH_INFO=/",
            "HTTP_CONTENT_LENGTH=3", NULL },
          "Environment should not have the key: HTTP_CONTENT_LENGTH (use CONTENT_LENGTH instead)" },
        { { "REQUEST_METHOD=GET", "SERVER_NAME=x", "SERVER_PORT=80", "QUERY_STRING=", "SCRIPT_NAME=app",
            "PATH_INFO=/", NULL },
          "SCRIPT_NAME doesn't start with /: 'app'" },
        { { "REQUEST_METHOD=GET", "SERVER_NAME=x", "SERVER_PORT=80", "QUERY_STRING=", "PATH_INFO=index", NULL },
          "PATH_INFO doesn't start with /: 'index'" },
        { { "REQUEST_METHOD=GET", "SERVER_NAME=x", "SERVER_PORT=80", "QUERY_STRING=", NULL },
          "One of SCRIPT_NAME or PATH_INFO are required (PATH_INFO should at least be '/' if SCRIPT_NAME is empty)" },
        { { "REQUEST_METHOD=GET", "SERVER_NAME=x", "SERVER_PORT=80", "QUERY_STRING=", "SCRIPT_NAME=/",
            "PATH_INFO=", NULL },
          "SCRIPT_NAME cannot be '/'; it should instead be '', and PATH_INFO should be '/'" },
        { { "REQUEST_METHOD=POST", "SERVER_NAME=x", "SERVER_PORT=80", "QUERY_STRING=", "PATH_INFO=/",
            "CONTENT_LENGTH=-5", NULL },
          "Invalid CONTENT_LENGTH: '-5'" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        test_host host;
        app_spec spec = hello();
        assert_int_equal(run(&host, cases[i].vars, &spec, true), GW_STATUS_APP_ERROR);
        assert_false(spec.called);
        assert_memory_equal(host_out(&host), ERROR_PAGE_HEAD, strlen(ERROR_PAGE_HEAD));
        char expected[400];
        snprintf(expected, sizeof expected, "gateway: application error: validate: the host's environ: %s\n",
                 cases[i].message);
        assert_string_equal(host_err(&host), expected);
        spec = hello();
        gw_status off = run(&host, cases[i].vars, &spec, false);
        assert_true(spec.called);
        if (strstr(cases[i].message, "CONTENT_LENGTH") == NULL) assert_int_equal(off, GW_STATUS_OK);
    }
}

/* The validator's warnings: logged, the request goes on. */
static void test_environ_warnings(void **state) {
    (void)state;
    static const char *const vars[] = { "REQUEST_METHOD=BREW", "SERVER_NAME=x", "SERVER_PORT=80", "PATH_INFO=/",
                                        NULL };
    test_host host;
    app_spec spec = hello();
    assert_int_equal(run(&host, vars, &spec, true), GW_STATUS_OK);
    assert_true(spec.called);
    assert_string_equal(host_err(&host),
                        "gateway: validate warning: QUERY_STRING is not in the WSGI environment; the cgi module "
                        "will use sys.argv when this variable is missing, so application errors are more likely\n"
                        "gateway: validate warning: Unknown REQUEST_METHOD: 'BREW'\n");
}

/* check_headers and check_content_type: start_response refused with the validator's message,
 * the app's failure answered with the error page. */
static void test_response_rules(void **state) {
    (void)state;
    static const gw_header status_header[] = { { "Content-Type", 12, "text/plain", 10 }, { "Status", 6, "200 OK", 6 } };
    static const gw_header dash[] = { { "Content-Type", 12, "text/plain", 10 }, { "X-Trail-", 8, "1", 1 } };
    static const gw_header underscore[] = { { "Content-Type", 12, "text/plain", 10 }, { "X_Trail_", 8, "1", 1 } };
    static const gw_header no_type[] = { { "X-Foo", 5, "1", 1 } };
    static const struct {
        const char *status;
        const gw_header *headers;
        size_t count;
        const char *message;
    } cases[] = {
        { "200 OK", status_header, 2,
          "The Status header cannot be used; it conflicts with CGI script, and HTTP status is not given "
          "through headers (value: '200 OK')." },
        { "200 OK", dash, 2, "Names may not end in '-' or '_': 'X-Trail-'" },
        { "200 OK", underscore, 2, "Names may not end in '-' or '_': 'X_Trail_'" },
        { "200 OK", no_type, 1, "No Content-Type header found in headers ([('X-Foo', '1')])" },
        { "204 No Content", TEXT_PLAIN, 1, "Content-Type header found in a 204 response, which must not return content." },
        { "304 Not Modified", TEXT_PLAIN, 1, "Content-Type header found in a 304 response, which must not return content." },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        test_host host;
        app_spec spec = { .status = cases[i].status, .headers = cases[i].headers, .header_count = cases[i].count };
        assert_int_equal(run(&host, GOOD_VARS, &spec, true), GW_STATUS_APP_ERROR);
        assert_int_equal(spec.start_status, GW_STATUS_INVALID_HEADER);
        char expected[400];
        snprintf(expected, sizeof expected, "gateway: application error: validate: %s\n", cases[i].message);
        assert_string_equal(host_err(&host), expected);
        assert_memory_equal(host_out(&host), ERROR_PAGE_HEAD, strlen(ERROR_PAGE_HEAD));
        /* off: the library's own rules allow all of these */
        app_spec again = { .status = cases[i].status, .headers = cases[i].headers, .header_count = cases[i].count };
        assert_int_equal(run(&host, GOOD_VARS, &again, false), GW_STATUS_OK);
    }
    /* 204 and 304 without Content-Type pass */
    test_host host;
    app_spec spec = { .status = "204 No Content", .headers = NULL, .header_count = 0 };
    assert_int_equal(run(&host, GOOD_VARS, &spec, true), GW_STATUS_OK);
    assert_string_equal(host_err(&host), "");
}

/* IteratorWrapper: the body's first block before start_response. */
static void test_iteration_before_start_response(void **state) {
    (void)state;
    test_host host;
    app_spec spec = hello();
    spec.iterate_first = true;
    assert_int_equal(run(&host, GOOD_VARS, &spec, true), GW_STATUS_APP_ERROR);
    assert_string_equal(host_err(&host), "gateway: application error: validate: The application returns and we "
                                         "started iterating over its body, but start_response has not yet been "
                                         "called\n");
    assert_memory_equal(host_out(&host), ERROR_PAGE_HEAD, strlen(ERROR_PAGE_HEAD));
}

static void test_validate_null_checks(void **state) {
    (void)state;
    bool on = false;
    assert_int_equal(gw_handler_set_validate(NULL, true), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_handler_get_validate(NULL, &on), GW_STATUS_NULL_ARGUMENT);
    test_host host;
    host_init(&host);
    gw_handler *h = host_handler(&host, false);
    assert_int_equal(gw_handler_get_validate(h, NULL), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_handler_get_validate(h, &on), GW_STATUS_OK);
    assert_false(on);
    gw_handler_free(h);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_validated_hello),
        cmocka_unit_test(test_environ_rules),
        cmocka_unit_test(test_environ_warnings),
        cmocka_unit_test(test_response_rules),
        cmocka_unit_test(test_iteration_before_start_response),
        cmocka_unit_test(test_validate_null_checks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
