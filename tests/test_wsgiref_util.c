/* wsgiref.util and wsgiref.headers through the C ABI, checked with CPython's own vectors
 * (Lib/test/test_wsgiref.py, 3.11: UtilityTests and HeaderTests; each table cites its test)
 * and the observed results in the reference notes. Built against the static and the shared
 * library and run under valgrind by `make test-util`. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
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

#define LEN(s) (sizeof(s) - 1)
#define S(s) s, LEN(s)
#define HDR(n, v) { n, LEN(n), v, LEN(v) }

/* ---- helpers ----------------------------------------------------------------------------- */

static void assert_bytes(const void *got, size_t got_len, const char *want) {
    if (got_len != strlen(want) || memcmp(got, want, got_len) != 0) {
        fail_msg("got '%.*s' (%zu bytes), want '%s'", (int)got_len, (const char *)got, got_len, want);
    }
}

/* A failing call: the status, and a message saying why. */
static void assert_fails(gw_status got, gw_status want) {
    assert_int_equal(got, want);
    assert_true(strlen(gw_last_error_message()) > 0);
}

static gw_environ *environ_of(const char *const *pairs) {
    gw_environ *env = NULL;
    assert_int_equal(gw_environ_new(&env), GW_STATUS_OK);
    for (size_t i = 0; pairs && pairs[i]; i += 2) {
        assert_int_equal(gw_environ_set(env, pairs[i], strlen(pairs[i]), pairs[i + 1], strlen(pairs[i + 1])),
                         GW_STATUS_OK);
    }
    return env;
}

static void assert_environ(const gw_environ *env, const char *name, const char *want) {
    const char *v = NULL;
    size_t n = 0;
    gw_status st = gw_environ_get(env, name, strlen(name), &v, &n);
    if (want == NULL) {
        assert_int_equal(st, GW_STATUS_NOT_FOUND);
        return;
    }
    if (st != GW_STATUS_OK) fail_msg("%s is missing", name);
    assert_bytes(v, n, want);
}

/* ---- shift_path_info -------------------------------------------------------------------- */

typedef struct shift_case {
    const char *sn_in, *pi_in, *part, *sn_out, *pi_out; /* part NULL: None */
} shift_case;

/* UtilityTests.checkShift: setup_testing_defaults, then shift_path_info, then compare. */
static void check_shift(const shift_case *c) {
    const char *pairs[] = { "SCRIPT_NAME", c->sn_in, "PATH_INFO", c->pi_in, NULL };
    gw_environ *env = environ_of(pairs);
    assert_int_equal(gw_environ_setup_testing_defaults(env), GW_STATUS_OK);
    char name[64];
    size_t name_len = 99;
    bool has_name = true;
    assert_int_equal(gw_environ_shift_path_info(env, name, sizeof name, &name_len, &has_name), GW_STATUS_OK);
    if (c->part == NULL) {
        assert_false(has_name);
        assert_int_equal(name_len, 0);
    } else {
        assert_true(has_name);
        assert_bytes(name, name_len, c->part);
    }
    assert_environ(env, "PATH_INFO", c->pi_out);
    assert_environ(env, "SCRIPT_NAME", c->sn_out);
    assert_int_equal(gw_environ_free(env), GW_STATUS_OK);
}

static void test_shift_path_info_vectors(void **state) {
    (void)state;
    static const shift_case cases[] = {
        /* testSimpleShifts */
        { "", "/", "", "/", "" },
        { "", "/x", "x", "/x", "" },
        { "/", "", NULL, "/", "" },
        { "/a", "/x/y", "x", "/a/x", "/y" },
        { "/a", "/x/", "x", "/a/x", "/" },
        /* testNormalizedShifts */
        { "/a/b", "/../y", "..", "/a", "/y" },
        { "", "/../y", "..", "", "/y" },
        { "/a/b", "//y", "y", "/a/b/y", "" },
        { "/a/b", "//y/", "y", "/a/b/y", "/" },
        { "/a/b", "/./y", "y", "/a/b/y", "" },
        { "/a/b", "/./y/", "y", "/a/b/y", "/" },
        { "/a/b", "///./..//y/.//", "..", "/a", "/y/" },
        { "/a/b", "///", "", "/a/b/", "" },
        { "/a/b", "/.//", "", "/a/b/", "" },
        { "/a/b", "/x//", "x", "/a/b/x", "/" },
        { "/a/b", "/.", NULL, "/a/b", "" },
        /* reference notes, section 3: posixpath.normpath keeps exactly two leading slashes */
        { "/", "/x", "x", "//x", "" },
        { "//", "/x", "x", "/x", "" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) check_shift(&cases[i]);
}

static void test_shift_path_info_edges(void **state) {
    (void)state;
    char name[8];
    size_t name_len = 0;
    bool has_name = true;

    /* No PATH_INFO at all: None, and a missing SCRIPT_NAME stays missing. */
    gw_environ *env = environ_of(NULL);
    assert_int_equal(gw_environ_shift_path_info(env, name, sizeof name, &name_len, &has_name), GW_STATUS_OK);
    assert_false(has_name);
    size_t count = 9;
    assert_int_equal(gw_environ_len(env, &count), GW_STATUS_OK);
    assert_int_equal(count, 0);
    gw_environ_free(env);

    /* A buffer too small for the name: TOO_LARGE, the length needed, nothing shifted. */
    const char *pairs[] = { "SCRIPT_NAME", "/a", "PATH_INFO", "/abcdefghij/k", NULL };
    env = environ_of(pairs);
    assert_fails(gw_environ_shift_path_info(env, name, sizeof name, &name_len, &has_name), GW_STATUS_TOO_LARGE);
    assert_int_equal(name_len, 10);
    assert_environ(env, "SCRIPT_NAME", "/a");
    assert_environ(env, "PATH_INFO", "/abcdefghij/k");
    char big[16];
    assert_int_equal(gw_environ_shift_path_info(env, big, sizeof big, &name_len, &has_name), GW_STATUS_OK);
    assert_bytes(big, name_len, "abcdefghij");
    assert_environ(env, "SCRIPT_NAME", "/a/abcdefghij");
    assert_environ(env, "PATH_INFO", "/k");
    gw_environ_free(env);

    /* A PATH_INFO with no '/': wsgiref's IndexError, nothing changed. */
    const char *bad[] = { "SCRIPT_NAME", "/a", "PATH_INFO", "x", NULL };
    env = environ_of(bad);
    assert_fails(gw_environ_shift_path_info(env, big, sizeof big, &name_len, &has_name), GW_STATUS_INVALID_ARGUMENT);
    assert_environ(env, "SCRIPT_NAME", "/a");
    assert_environ(env, "PATH_INFO", "x");

    assert_fails(gw_environ_shift_path_info(NULL, big, sizeof big, &name_len, &has_name), GW_STATUS_NULL_ARGUMENT);
    assert_fails(gw_environ_shift_path_info(env, NULL, 4, &name_len, &has_name), GW_STATUS_NULL_ARGUMENT);
    assert_fails(gw_environ_shift_path_info(env, big, sizeof big, NULL, &has_name), GW_STATUS_NULL_ARGUMENT);
    assert_fails(gw_environ_shift_path_info(env, big, sizeof big, &name_len, NULL), GW_STATUS_NULL_ARGUMENT);
    gw_environ_free(env);
}

/* ---- setup_testing_defaults, guess_scheme ----------------------------------------------- */

/* UtilityTests.testDefaults: every key with its default, in wsgiref's order; the wsgi.*
 * values that are Python objects in wsgiref are the byte strings a request's environ has. */
static const char *const DEFAULTS[] = {
    "SERVER_NAME", "127.0.0.1",
    "SERVER_PROTOCOL", "HTTP/1.0",
    "HTTP_HOST", "127.0.0.1",
    "REQUEST_METHOD", "GET",
    "SCRIPT_NAME", "",
    "PATH_INFO", "/",
    "wsgi.version", "1.0",
    "wsgi.run_once", "0",
    "wsgi.multithread", "0",
    "wsgi.multiprocess", "0",
    "wsgi.input", "gw_request_input",
    "wsgi.errors", "gw_request_errors",
    "wsgi.url_scheme", "http",
    "SERVER_PORT", "80",
    NULL,
};

static void test_setup_testing_defaults(void **state) {
    (void)state;
    gw_environ *env = environ_of(NULL);
    assert_int_equal(gw_environ_setup_testing_defaults(env), GW_STATUS_OK);
    size_t cursor = 0, i = 0;
    const char *name, *value;
    size_t name_len, value_len;
    while (gw_environ_next(env, &cursor, &name, &name_len, &value, &value_len) == GW_STATUS_OK) {
        assert_non_null(DEFAULTS[i]);
        assert_bytes(name, name_len, DEFAULTS[i]);
        assert_bytes(value, value_len, DEFAULTS[i + 1]);
        i += 2;
    }
    assert_null(DEFAULTS[i]);
    gw_environ_free(env);

    /* checkDefault's second half: an existing value is kept (an empty one too). */
    for (i = 0; DEFAULTS[i]; i += 2) {
        const char *alt[] = { DEFAULTS[i], "alt", NULL };
        env = environ_of(alt);
        assert_int_equal(gw_environ_setup_testing_defaults(env), GW_STATUS_OK);
        assert_environ(env, DEFAULTS[i], "alt");
        gw_environ_free(env);
        const char *empty[] = { DEFAULTS[i], "", NULL };
        env = environ_of(empty);
        assert_int_equal(gw_environ_setup_testing_defaults(env), GW_STATUS_OK);
        assert_environ(env, DEFAULTS[i], "");
        gw_environ_free(env);
    }

    /* Only one of SCRIPT_NAME and PATH_INFO present: the other stays absent. */
    const char *only_path[] = { "PATH_INFO", "/x", NULL };
    env = environ_of(only_path);
    assert_int_equal(gw_environ_setup_testing_defaults(env), GW_STATUS_OK);
    assert_environ(env, "SCRIPT_NAME", NULL);
    gw_environ_free(env);
    /* A scheme other than http or https: no SERVER_PORT. */
    const char *ftp[] = { "wsgi.url_scheme", "ftp", NULL };
    env = environ_of(ftp);
    assert_int_equal(gw_environ_setup_testing_defaults(env), GW_STATUS_OK);
    assert_environ(env, "SERVER_PORT", NULL);
    gw_environ_free(env);

    assert_fails(gw_environ_setup_testing_defaults(NULL), GW_STATUS_NULL_ARGUMENT);
}

/* UtilityTests.testCrossDefaults. */
static void test_setup_testing_cross_defaults(void **state) {
    (void)state;
    static const char *const cases[][4] = {
        { "HTTP_HOST", "foo.bar", "SERVER_NAME", "foo.bar" },
        { "wsgi.url_scheme", "https", "HTTPS", "on" },
        { "wsgi.url_scheme", "https", "HTTPS", "1" },
        { "wsgi.url_scheme", "https", "HTTPS", "yes" },
        { "wsgi.url_scheme", "http", "HTTPS", "foo" },
        { "SERVER_PORT", "80", "HTTPS", "foo" },
        { "SERVER_PORT", "443", "HTTPS", "on" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *pairs[] = { cases[i][2], cases[i][3], NULL };
        gw_environ *env = environ_of(pairs);
        assert_int_equal(gw_environ_setup_testing_defaults(env), GW_STATUS_OK);
        assert_environ(env, cases[i][0], cases[i][1]);
        gw_environ_free(env);
    }
}

/* UtilityTests.testGuessScheme, and the case-sensitivity the reference notes observe. */
static void test_guess_scheme(void **state) {
    (void)state;
    static const char *const cases[][2] = {
        { NULL, "http" }, { "foo", "http" }, { "on", "https" }, { "yes", "https" }, { "1", "https" },
        { "ON", "http" }, { "true", "http" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *pairs[] = { "HTTPS", cases[i][0], NULL };
        gw_environ *env = environ_of(cases[i][0] ? pairs : NULL);
        const char *scheme = NULL;
        size_t len = 0;
        assert_int_equal(gw_environ_guess_scheme(env, &scheme, &len), GW_STATUS_OK);
        assert_bytes(scheme, len, cases[i][1]);
        assert_string_equal(scheme, cases[i][1]); /* static and NUL-terminated */
        assert_fails(gw_environ_guess_scheme(env, NULL, &len), GW_STATUS_NULL_ARGUMENT);
        assert_fails(gw_environ_guess_scheme(env, &scheme, NULL), GW_STATUS_NULL_ARGUMENT);
        gw_environ_free(env);
    }
    const char *scheme;
    size_t len;
    assert_fails(gw_environ_guess_scheme(NULL, &scheme, &len), GW_STATUS_NULL_ARGUMENT);
}

/* ---- application_uri, request_uri ------------------------------------------------------- */

typedef struct uri_case {
    const char *want;
    bool query;
    const char *pairs[8];
} uri_case;

/* UtilityTests.checkAppURI / checkReqURI: setup_testing_defaults, then the URI. */
static void check_uri(const uri_case *c, bool request) {
    gw_environ *env = environ_of(c->pairs);
    assert_int_equal(gw_environ_setup_testing_defaults(env), GW_STATUS_OK);
    char out[128];
    size_t len = 0;
    gw_status st = request ? gw_environ_request_uri(env, c->query, out, sizeof out, &len)
                           : gw_environ_application_uri(env, out, sizeof out, &len);
    assert_int_equal(st, GW_STATUS_OK);
    assert_bytes(out, len, c->want);
    /* The length alone (NULL, 0), then a buffer one byte short: TOO_LARGE and the length. */
    size_t needed = 0;
    st = request ? gw_environ_request_uri(env, c->query, NULL, 0, &needed)
                 : gw_environ_application_uri(env, NULL, 0, &needed);
    assert_fails(st, GW_STATUS_TOO_LARGE);
    assert_int_equal(needed, len);
    char short_buf[128];
    memset(short_buf, '#', sizeof short_buf);
    st = request ? gw_environ_request_uri(env, c->query, short_buf, len - 1, &needed)
                 : gw_environ_application_uri(env, short_buf, len - 1, &needed);
    assert_fails(st, GW_STATUS_TOO_LARGE);
    assert_int_equal(needed, len);
    assert_int_equal(short_buf[0], '#'); /* nothing written */
    gw_environ_free(env);
}

static void test_application_uri(void **state) {
    (void)state;
    static const uri_case cases[] = {
        /* testAppURIs (HTTP_HOST=None there is an HTTP_HOST wsgiref reads as false: empty) */
        { "http://127.0.0.1/", true, { NULL } },
        { "http://127.0.0.1/spam", true, { "SCRIPT_NAME", "/spam", NULL } },
        { "http://127.0.0.1/sp%E4m", true, { "SCRIPT_NAME", "/sp\xe4m", NULL } },
        { "http://spam.example.com:2071/", true,
          { "HTTP_HOST", "spam.example.com:2071", "SERVER_PORT", "2071", NULL } },
        { "http://spam.example.com/", true, { "SERVER_NAME", "spam.example.com", NULL } },
        { "http://127.0.0.1/", true, { "HTTP_HOST", "127.0.0.1", "SERVER_NAME", "spam.example.com", NULL } },
        { "https://127.0.0.1/", true, { "HTTPS", "on", NULL } },
        { "http://127.0.0.1:8000/", true, { "SERVER_PORT", "8000", "HTTP_HOST", "", NULL } },
        /* reference notes, section 3 (observed) */
        { "https://127.0.0.1:8443/", true, { "HTTPS", "on", "SERVER_PORT", "8443", "HTTP_HOST", "", NULL } },
        { "http://127.0.0.1:443/", true, { "SERVER_PORT", "443", "HTTP_HOST", "", NULL } },
        { "http://127.0.0.1/a%20b%3Ac%40d%21%24%26%27%28%29%2A%2B%3B%3D%2C~", true,
          { "SCRIPT_NAME", "/a b:c@d!$&'()*+;=,~", NULL } },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) check_uri(&cases[i], false);
}

static void test_request_uri(void **state) {
    (void)state;
    static const uri_case cases[] = {
        /* testReqURIs */
        { "http://127.0.0.1/", true, { NULL } },
        { "http://127.0.0.1/spam", true, { "SCRIPT_NAME", "/spam", NULL } },
        { "http://127.0.0.1/sp%E4m", true, { "SCRIPT_NAME", "/sp\xe4m", NULL } },
        { "http://127.0.0.1/spammity/spam", true, { "SCRIPT_NAME", "/spammity", "PATH_INFO", "/spam", NULL } },
        { "http://127.0.0.1/spammity/sp%E4m", true, { "SCRIPT_NAME", "/spammity", "PATH_INFO", "/sp\xe4m", NULL } },
        { "http://127.0.0.1/spammity/spam;ham", true,
          { "SCRIPT_NAME", "/spammity", "PATH_INFO", "/spam;ham", NULL } },
        { "http://127.0.0.1/spammity/spam;cookie=1234,5678", true,
          { "SCRIPT_NAME", "/spammity", "PATH_INFO", "/spam;cookie=1234,5678", NULL } },
        { "http://127.0.0.1/spammity/spam?say=ni", true,
          { "SCRIPT_NAME", "/spammity", "PATH_INFO", "/spam", "QUERY_STRING", "say=ni", NULL } },
        { "http://127.0.0.1/spammity/spam?s%E4y=ni", true,
          { "SCRIPT_NAME", "/spammity", "PATH_INFO", "/spam", "QUERY_STRING", "s%E4y=ni", NULL } },
        { "http://127.0.0.1/spammity/spam", false,
          { "SCRIPT_NAME", "/spammity", "PATH_INFO", "/spam", "QUERY_STRING", "say=ni", NULL } },
        /* reference notes, section 3: an empty SCRIPT_NAME drops PATH_INFO's first byte even
         * when it is not '/'; the query goes out verbatim */
        { "http://127.0.0.1/", true, { "SCRIPT_NAME", "", "PATH_INFO", "x", NULL } },
        { "http://127.0.0.1/a?b c#d", true, { "PATH_INFO", "/a", "QUERY_STRING", "b c#d", NULL } },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) check_uri(&cases[i], true);
}

static void test_uri_errors(void **state) {
    (void)state;
    char out[64];
    size_t len = 0;
    /* wsgiref's KeyError: the missing key is named. */
    gw_environ *env = environ_of(NULL);
    assert_fails(gw_environ_application_uri(env, out, sizeof out, &len), GW_STATUS_NOT_FOUND);
    assert_non_null(strstr(gw_last_error_message(), "wsgi.url_scheme"));
    gw_environ_free(env);
    const char *no_port[] = { "wsgi.url_scheme", "http", "SERVER_NAME", "h", NULL };
    env = environ_of(no_port);
    assert_fails(gw_environ_request_uri(env, true, out, sizeof out, &len), GW_STATUS_NOT_FOUND);
    assert_non_null(strstr(gw_last_error_message(), "SERVER_PORT"));
    assert_fails(gw_environ_application_uri(NULL, out, sizeof out, &len), GW_STATUS_NULL_ARGUMENT);
    assert_fails(gw_environ_application_uri(env, NULL, 4, &len), GW_STATUS_NULL_ARGUMENT);
    assert_fails(gw_environ_application_uri(env, out, sizeof out, NULL), GW_STATUS_NULL_ARGUMENT);
    assert_fails(gw_environ_request_uri(NULL, true, out, sizeof out, &len), GW_STATUS_NULL_ARGUMENT);
    assert_fails(gw_environ_request_uri(env, true, NULL, 4, &len), GW_STATUS_NULL_ARGUMENT);
    assert_fails(gw_environ_request_uri(env, true, out, sizeof out, NULL), GW_STATUS_NULL_ARGUMENT);
    assert_fails(gw_environ_request_uri(env, true, out, SIZE_MAX, &len), GW_STATUS_INVALID_ARGUMENT);
    gw_environ_free(env);
}

/* ---- is_hop_by_hop ---------------------------------------------------------------------- */

/* Python's str.title() for ASCII: a letter after a non-letter is upper case, others lower. */
static void title(char *s) {
    bool after_letter = false;
    for (; *s; s++) {
        bool letter = (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z');
        if (letter) *s = after_letter ? (char)(*s | 0x20) : (char)(*s & ~0x20);
        after_letter = letter;
    }
}

static void check_hop(const char *name, bool want) {
    char alt[4][32];
    for (int k = 0; k < 4; k++) snprintf(alt[k], sizeof alt[k], "%s", name);
    title(alt[1]);
    for (char *p = alt[2]; *p; p++) *p = (char)((*p >= 'a' && *p <= 'z') ? *p - 32 : *p);
    for (char *p = alt[3]; *p; p++) *p = (char)((*p >= 'A' && *p <= 'Z') ? *p + 32 : *p);
    for (int k = 0; k < 4; k++) {
        bool got = !want;
        assert_int_equal(gw_is_hop_by_hop(alt[k], strlen(alt[k]), &got), GW_STATUS_OK);
        if (got != want) fail_msg("is_hop_by_hop(%s) is %d", alt[k], got);
    }
}

/* UtilityTests.testHopByHop: each name as given, title-cased, upper and lower case. */
static void test_is_hop_by_hop(void **state) {
    (void)state;
    static const char *const hop[] = { "Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
                                       "TE", "Trailers", "Transfer-Encoding", "Upgrade" };
    static const char *const not_hop[] = { "Accept", "Cache-Control", "Date", "Pragma", "Trailer", "Via", "Warning" };
    for (size_t i = 0; i < sizeof hop / sizeof hop[0]; i++) check_hop(hop[i], true);
    for (size_t i = 0; i < sizeof not_hop / sizeof not_hop[0]; i++) check_hop(not_hop[i], false);
    bool out;
    assert_int_equal(gw_is_hop_by_hop(NULL, 0, &out), GW_STATUS_OK);
    assert_false(out);
    assert_fails(gw_is_hop_by_hop(NULL, 2, &out), GW_STATUS_NULL_ARGUMENT);
    assert_fails(gw_is_hop_by_hop("TE", 2, NULL), GW_STATUS_NULL_ARGUMENT);
    assert_fails(gw_is_hop_by_hop("TE", SIZE_MAX, &out), GW_STATUS_INVALID_ARGUMENT); /* length */
}

/* ---- Headers ---------------------------------------------------------------------------- */

static void assert_header(const gw_headers *h, const char *name, const char *want) {
    const char *v = NULL;
    size_t n = 0;
    gw_status st = gw_headers_get(h, name, strlen(name), &v, &n);
    if (want == NULL) {
        assert_int_equal(st, GW_STATUS_NOT_FOUND);
        return;
    }
    if (st != GW_STATUS_OK) fail_msg("header %s is missing", name);
    assert_bytes(v, n, want);
}

/* get_all(name), joined with '|' into `out`. */
static const char *get_all(const gw_headers *h, const char *name, char *out, size_t cap) {
    size_t cursor = 0, used = 0;
    const char *v;
    size_t n;
    out[0] = 0;
    while (gw_headers_get_all(h, name, strlen(name), &cursor, &v, &n) == GW_STATUS_OK) {
        used += (size_t)snprintf(out + used, cap - used, "%s%.*s", used ? "|" : "", (int)n, v);
        assert_true(used < cap);
    }
    return out;
}

static void assert_format(const gw_headers *h, const char *want) {
    char out[512];
    size_t len = 0;
    assert_int_equal(gw_headers_format(h, out, sizeof out, &len), GW_STATUS_OK);
    assert_bytes(out, len, want);
    size_t needed = 0;
    assert_fails(gw_headers_format(h, NULL, 0, &needed), GW_STATUS_TOO_LARGE);
    assert_int_equal(needed, len);
    assert_fails(gw_headers_format(h, out, len - 1, &needed), GW_STATUS_TOO_LARGE);
    assert_int_equal(needed, len);
}

/* HeaderTests.testMappingInterface. */
static void test_headers_mapping_interface(void **state) {
    (void)state;
    gw_headers *h = NULL;
    size_t len = 9;
    assert_int_equal(gw_headers_new(&h), GW_STATUS_OK);
    assert_int_equal(gw_headers_len(h, &len), GW_STATUS_OK);
    assert_int_equal(len, 0);
    gw_headers_free(h);
    assert_int_equal(gw_headers_new_from(NULL, 0, &h), GW_STATUS_OK); /* Headers([]) */
    assert_int_equal(gw_headers_len(h, &len), GW_STATUS_OK);
    assert_int_equal(len, 0);
    gw_headers_free(h);

    gw_header test[] = { HDR("x", "y") };
    assert_int_equal(gw_headers_new_from(test, 1, &h), GW_STATUS_OK);
    test[0].name = "changed"; /* a copy: the caller's array is not kept */
    assert_int_equal(gw_headers_len(h, &len), GW_STATUS_OK);
    assert_int_equal(len, 1);
    const gw_header *items = NULL;
    size_t count = 0;
    assert_int_equal(gw_headers_items(h, &items, &count), GW_STATUS_OK); /* keys(), values(), items() */
    assert_int_equal(count, 1);
    assert_bytes(items[0].name, items[0].name_len, "x");
    assert_bytes(items[0].value, items[0].value_len, "y");
    gw_headers_free(h);

    assert_int_equal(gw_headers_new(&h), GW_STATUS_OK);
    assert_int_equal(gw_headers_delete(h, S("foo")), GW_STATUS_OK); /* should not raise an error */
    assert_int_equal(gw_headers_set(h, S("Foo"), S("bar")), GW_STATUS_OK);
    char all[128];
    static const char *const spellings[] = { "foo", "Foo", "FOO" };
    for (int i = 0; i < 3; i++) {
        assert_header(h, spellings[i], "bar");
        assert_string_equal(get_all(h, spellings[i], all, sizeof all), "bar");
    }
    assert_header(h, "bar", NULL);
    assert_string_equal(get_all(h, "bar", all, sizeof all), "");

    assert_header(h, "foo", "bar");
    assert_int_equal(gw_headers_set(h, S("foo"), S("baz")), GW_STATUS_OK);
    assert_header(h, "FOO", "baz");
    assert_string_equal(get_all(h, "foo", all, sizeof all), "baz");

    const char *v;
    size_t n;
    assert_int_equal(gw_headers_setdefault(h, S("foo"), S("whee"), &v, &n), GW_STATUS_OK);
    assert_bytes(v, n, "baz");
    assert_int_equal(gw_headers_setdefault(h, S("zoo"), S("whee"), &v, &n), GW_STATUS_OK);
    assert_bytes(v, n, "whee");
    assert_header(h, "foo", "baz");
    assert_header(h, "zoo", "whee");
    assert_format(h, "foo: baz\r\nzoo: whee\r\n\r\n"); /* set moved foo to the end, spelled as given */

    /* del removes every match, whatever its case. */
    assert_int_equal(gw_headers_add_header(h, S("FOO"), S("2"), NULL, 0), GW_STATUS_OK);
    assert_string_equal(get_all(h, "Foo", all, sizeof all), "baz|2");
    assert_int_equal(gw_headers_delete(h, S("fOO")), GW_STATUS_OK);
    assert_format(h, "zoo: whee\r\n\r\n");

    /* Names compare as str.lower() compares latin-1 text: \xc9 and \xe9 are a case pair,
     * \xd7 and \xf7 are not. */
    assert_int_equal(gw_headers_set(h, S("X-\xc9t\xe9"), S("1")), GW_STATUS_OK);
    assert_header(h, "x-\xe9T\xc9", "1");
    assert_int_equal(gw_headers_set(h, S("\xd7"), S("2")), GW_STATUS_OK);
    assert_header(h, "\xf7", NULL);
    gw_headers_free(h);
}

/* HeaderTests.testExtras. */
static void test_headers_extras(void **state) {
    (void)state;
    gw_headers *h = NULL;
    assert_int_equal(gw_headers_new(&h), GW_STATUS_OK);
    assert_format(h, "\r\n");
    const gw_header baz[] = { HDR("baz", "spam") };
    assert_int_equal(gw_headers_add_header(h, S("foo"), S("bar"), baz, 1), GW_STATUS_OK);
    assert_header(h, "foo", "bar; baz=\"spam\"");
    assert_format(h, "foo: bar; baz=\"spam\"\r\n\r\n");
    const gw_header cheese[] = { { "cheese", 6, NULL, 0 } }; /* cheese=None */
    assert_int_equal(gw_headers_add_header(h, S("Foo"), S("bar"), cheese, 1), GW_STATUS_OK);
    char all[128];
    assert_string_equal(get_all(h, "foo", all, sizeof all), "bar; baz=\"spam\"|bar; cheese");
    assert_format(h, "foo: bar; baz=\"spam\"\r\nFoo: bar; cheese\r\n\r\n");
    gw_headers_free(h);
}

/* The reference notes' observed add_header results (section 2). */
static void test_headers_add_header_quoting(void **state) {
    (void)state;
    gw_headers *h = NULL;
    assert_int_equal(gw_headers_new(&h), GW_STATUS_OK);
    const gw_header params[] = {
        HDR("a_b", "1"), { "c", 1, NULL, 0 }, HDR("d", ""), HDR("e", "sp ace"), HDR("f", "q\"uote\\b"), HDR("g", "tok"),
    };
    /* add_header('X', None, a_b='1', c=None, d='', e='sp ace', f='q"uote\\b', g='tok') */
    assert_int_equal(gw_headers_add_header(h, S("X"), NULL, 0, params, 6), GW_STATUS_OK);
    assert_header(h, "x", "a-b=\"1\"; c; d; e=\"sp ace\"; f=\"q\\\"uote\\\\b\"; g=\"tok\"");
    assert_int_equal(gw_headers_add_header(h, S("Y"), "", 0, NULL, 0), GW_STATUS_OK); /* add_header('Y', '') */
    assert_header(h, "y", "");
    const gw_header filename[] = { HDR("filename", "bud.gif") };
    assert_int_equal(gw_headers_add_header(h, S("Content-Disposition"), S("attachment"), filename, 1), GW_STATUS_OK);
    assert_header(h, "content-disposition", "attachment; filename=\"bud.gif\"");
    /* '' is a value (an empty first part), None is none */
    const gw_header a[] = { HDR("a", "1") };
    assert_int_equal(gw_headers_add_header(h, S("Z"), "", 0, a, 1), GW_STATUS_OK);
    assert_header(h, "z", "; a=\"1\"");
    gw_headers_free(h);
}

/* Refused names and values (wsgiref's patched checks) change nothing; NULL and lengths. */
static void test_headers_refusals(void **state) {
    (void)state;
    gw_headers *h = NULL;
    const gw_header one[] = { HDR("A", "1") };
    assert_int_equal(gw_headers_new_from(one, 1, &h), GW_STATUS_OK);
    assert_fails(gw_headers_set(h, S("B"), S("x\r\nInjected: 1")), GW_STATUS_INVALID_HEADER);
    assert_fails(gw_headers_set(h, S("A\n"), S("x")), GW_STATUS_INVALID_HEADER);
    assert_fails(gw_headers_set(h, S("A"), "x\0y", 3), GW_STATUS_INVALID_HEADER);
    const gw_header bad_param[] = { HDR("p", "\x7f") };
    assert_fails(gw_headers_add_header(h, S("C"), S("v"), bad_param, 1), GW_STATUS_INVALID_HEADER);
    const char *v;
    size_t n;
    assert_fails(gw_headers_setdefault(h, S("C"), S("\n"), &v, &n), GW_STATUS_INVALID_HEADER);
    assert_fails(gw_headers_get(h, S("A\r"), &v, &n), GW_STATUS_INVALID_HEADER);
    assert_fails(gw_headers_delete(h, S("A\x01")), GW_STATUS_INVALID_HEADER);
    assert_format(h, "A: 1\r\n\r\n");
    assert_int_equal(gw_headers_set(h, S("T"), S("a\tb")), GW_STATUS_OK); /* HTAB in a value */

    const gw_header refused[] = { HDR("ok", "1"), HDR("bad", "\r") };
    gw_headers *other = (gw_headers *)&other;
    assert_fails(gw_headers_new_from(refused, 2, &other), GW_STATUS_INVALID_HEADER);
    assert_ptr_equal(other, (gw_headers *)&other); /* out written only on success */

    /* NULL and lengths, each with a message */
    size_t len, cursor = 0;
    const gw_header *items;
    char out[8];
    assert_fails(gw_headers_new(NULL), GW_STATUS_NULL_ARGUMENT);
    assert_fails(gw_headers_new_from(one, 1, NULL), GW_STATUS_NULL_ARGUMENT);
    assert_fails(gw_headers_new_from(NULL, 1, &other), GW_STATUS_NULL_ARGUMENT);
    const gw_header null_name[] = { { NULL, 1, "v", 1 } };
    assert_fails(gw_headers_new_from(null_name, 1, &other), GW_STATUS_NULL_ARGUMENT);
    assert_fails(gw_headers_len(NULL, &len), GW_STATUS_NULL_ARGUMENT);
    assert_fails(gw_headers_len(h, NULL), GW_STATUS_NULL_ARGUMENT);
    assert_fails(gw_headers_get(NULL, S("A"), &v, &n), GW_STATUS_NULL_ARGUMENT);
    assert_fails(gw_headers_get(h, NULL, 1, &v, &n), GW_STATUS_NULL_ARGUMENT);
    assert_fails(gw_headers_get(h, S("A"), NULL, &n), GW_STATUS_NULL_ARGUMENT);
    assert_fails(gw_headers_get(h, S("A"), &v, NULL), GW_STATUS_NULL_ARGUMENT);
    assert_fails(gw_headers_get_all(NULL, S("A"), &cursor, &v, &n), GW_STATUS_NULL_ARGUMENT);
    assert_fails(gw_headers_get_all(h, S("A"), NULL, &v, &n), GW_STATUS_NULL_ARGUMENT);
    assert_fails(gw_headers_get_all(h, S("A"), &cursor, NULL, &n), GW_STATUS_NULL_ARGUMENT);
    assert_fails(gw_headers_get_all(h, S("A"), &cursor, &v, NULL), GW_STATUS_NULL_ARGUMENT);
    assert_fails(gw_headers_set(NULL, S("A"), S("1")), GW_STATUS_NULL_ARGUMENT);
    assert_fails(gw_headers_set(h, S("A"), NULL, 1), GW_STATUS_NULL_ARGUMENT);
    assert_fails(gw_headers_delete(NULL, S("A")), GW_STATUS_NULL_ARGUMENT);
    assert_fails(gw_headers_delete(h, NULL, 1), GW_STATUS_NULL_ARGUMENT);
    assert_fails(gw_headers_setdefault(NULL, S("A"), S("1"), &v, &n), GW_STATUS_NULL_ARGUMENT);
    assert_fails(gw_headers_setdefault(h, S("A"), S("1"), NULL, &n), GW_STATUS_NULL_ARGUMENT);
    assert_fails(gw_headers_setdefault(h, S("A"), S("1"), &v, NULL), GW_STATUS_NULL_ARGUMENT);
    assert_fails(gw_headers_add_header(NULL, S("A"), S("1"), NULL, 0), GW_STATUS_NULL_ARGUMENT);
    assert_fails(gw_headers_add_header(h, S("A"), NULL, 1, NULL, 0), GW_STATUS_NULL_ARGUMENT);
    assert_fails(gw_headers_add_header(h, S("A"), S("1"), NULL, 1), GW_STATUS_NULL_ARGUMENT);
    const gw_header null_value[] = { { "p", 1, NULL, 2 } };
    assert_fails(gw_headers_add_header(h, S("A"), S("1"), null_value, 1), GW_STATUS_NULL_ARGUMENT);
    assert_fails(gw_headers_items(NULL, &items, &len), GW_STATUS_NULL_ARGUMENT);
    assert_fails(gw_headers_items(h, NULL, &len), GW_STATUS_NULL_ARGUMENT);
    assert_fails(gw_headers_items(h, &items, NULL), GW_STATUS_NULL_ARGUMENT);
    assert_fails(gw_headers_format(NULL, out, sizeof out, &len), GW_STATUS_NULL_ARGUMENT);
    assert_fails(gw_headers_format(h, NULL, 4, &len), GW_STATUS_NULL_ARGUMENT);
    assert_fails(gw_headers_format(h, out, sizeof out, NULL), GW_STATUS_NULL_ARGUMENT);
    /* lengths past what any object can hold */
    assert_fails(gw_headers_get(h, "A", SIZE_MAX, &v, &n), GW_STATUS_INVALID_ARGUMENT);
    assert_fails(gw_headers_set(h, S("A"), "1", SIZE_MAX), GW_STATUS_INVALID_ARGUMENT);
    assert_fails(gw_headers_add_header(h, S("A"), S("1"), one, SIZE_MAX), GW_STATUS_INVALID_ARGUMENT);
    assert_fails(gw_headers_format(h, out, SIZE_MAX, &len), GW_STATUS_INVALID_ARGUMENT);
    /* a value over 1 MiB */
    size_t big_len = 1048577;
    char *big = malloc(big_len);
    assert_non_null(big);
    memset(big, 'a', big_len);
    assert_fails(gw_headers_set(h, S("Big"), big, big_len), GW_STATUS_TOO_LARGE);
    free(big);
    assert_format(h, "A: 1\r\nT: a\tb\r\n\r\n");
    assert_int_equal(gw_headers_free(h), GW_STATUS_OK);
    assert_int_equal(gw_headers_free(NULL), GW_STATUS_OK);
}

/* ---- a CGI handler writing into memory, for the body and start_response tests ---------- */

typedef struct sink {
    char out[4096];
    size_t out_len;
    char err[4096];
    size_t err_len;
} sink;

static int sink_write(void *userdata, const void *data, size_t len, size_t *out_written) {
    sink *s = userdata;
    if (len > sizeof s->out - s->out_len) return ENOSPC;
    memcpy(s->out + s->out_len, data, len);
    s->out_len += len;
    *out_written = len;
    return 0;
}

static int sink_write_stderr(void *userdata, const void *data, size_t len, size_t *out_written) {
    sink *s = userdata;
    size_t n = len < sizeof s->err - 1 - s->err_len ? len : sizeof s->err - 1 - s->err_len;
    memcpy(s->err + s->err_len, data, n);
    s->err_len += n;
    s->err[s->err_len] = 0;
    *out_written = len;
    return 0;
}

/* As test_wsgiref's ErrorHandler: the request's environ is setup_testing_defaults'. */
static int32_t testing_cgi_vars(void *userdata, gw_environ *environ) {
    (void)userdata;
    return gw_environ_setup_testing_defaults(environ);
}

/* Runs `app` through a CGI handler (wsgiref's BaseCGIHandler output) into `s`. */
static gw_status run_cgi(gw_application_fn app, void *app_userdata, sink *s) {
    memset(s, 0, sizeof *s);
    gw_handler_hooks hooks = GW_HANDLER_HOOKS_INIT;
    hooks.userdata = s;
    hooks.write = sink_write;
    hooks.write_stderr = sink_write_stderr;
    hooks.add_cgi_vars = testing_cgi_vars;
    gw_handler *handler = NULL;
    assert_int_equal(gw_handler_new(&hooks, &handler), GW_STATUS_OK);
    assert_int_equal(gw_handler_set_origin_server(handler, false), GW_STATUS_OK);
    gw_status st = gw_handler_run(handler, app, app_userdata);
    gw_handler_free(handler);
    return st;
}

/* An app that builds its headers with gw_headers and hands them to start_response, and
 * answers with the request URI the util functions rebuild from its environ. */
static gw_status headers_app(void *userdata, gw_request *req) {
    gw_status *seen = userdata;
    gw_environ *env = NULL;
    gw_status st = gw_request_environ(req, &env);
    if (st != GW_STATUS_OK) return st;
    const gw_header *items = NULL;
    size_t count = 0;

    /* A Headers object may hold a hop-by-hop header; start_response refuses it. */
    gw_headers *hop = NULL;
    if ((st = gw_headers_new(&hop)) != GW_STATUS_OK) return st;
    st = gw_headers_set(hop, S("Connection"), S("close"));
    if (st == GW_STATUS_OK) st = gw_headers_items(hop, &items, &count);
    if (st == GW_STATUS_OK) *seen = gw_request_start_response(req, S("200 OK"), items, count, 0);
    gw_headers_free(hop);
    if (st != GW_STATUS_OK) return st;

    gw_headers *h = NULL;
    if ((st = gw_headers_new(&h)) != GW_STATUS_OK) return st;
    const gw_header filename[] = { HDR("filename", "bud.gif") };
    st = gw_headers_set(h, S("Content-Type"), S("text/plain"));
    if (st == GW_STATUS_OK) st = gw_headers_add_header(h, S("Content-Disposition"), S("attachment"), filename, 1);
    if (st == GW_STATUS_OK) st = gw_headers_items(h, &items, &count);
    /* after a failed call, a second one needs exc_info (PEP 3333) */
    if (st == GW_STATUS_OK) st = gw_request_start_response(req, S("200 OK"), items, count, GW_START_RESPONSE_EXC_INFO);
    gw_headers_free(h); /* start_response copied them */
    if (st != GW_STATUS_OK) return st;

    char uri[128];
    size_t len = 0;
    if ((st = gw_environ_request_uri(env, true, uri, sizeof uri, &len)) != GW_STATUS_OK) return st;
    return gw_request_set_body_bytes(req, uri, len);
}

static void test_headers_to_start_response(void **state) {
    (void)state;
    sink s;
    gw_status hop_status = GW_STATUS_OK;
    assert_int_equal(run_cgi(headers_app, &hop_status, &s), GW_STATUS_OK);
    assert_int_equal(hop_status, GW_STATUS_HOP_BY_HOP_HEADER);
    assert_bytes(s.out, s.out_len,
                 "Status: 200 OK\r\n"
                 "Content-Type: text/plain\r\n"
                 "Content-Disposition: attachment; filename=\"bud.gif\"\r\n"
                 "Content-Length: 17\r\n"
                 "\r\n"
                 "http://127.0.0.1/");
}

/* ---- FileWrapper ------------------------------------------------------------------------ */

static bool fd_open(int fd) {
    return fcntl(fd, F_GETFD) != -1;
}

/* A temporary file holding `data`, positioned at its start. */
static int temp_file(const char *data) {
    char path[] = "/tmp/gw_util_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    size_t len = strlen(data);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    return fd;
}

static void expect_block(gw_file_wrapper *w, const char *want) {
    const void *data = NULL;
    size_t len = 0;
    assert_int_equal(gw_file_wrapper_next(w, &data, &len), GW_STATUS_OK);
    assert_bytes(data, len, want);
}

static void expect_end(gw_file_wrapper *w) {
    const void *data = NULL;
    size_t len = 0;
    assert_int_equal(gw_file_wrapper_next(w, &data, &len), GW_STATUS_NOT_FOUND);
}

/* UtilityTests.testFileWrapper: checkFW("xyz"*50, 120, ["xyz"*40, "xyz"*10]): the blocks in
 * order, then the end; iterating to the end leaves the file open; close closes it. */
static void test_file_wrapper(void **state) {
    (void)state;
    char text[151], first[121], second[31];
    for (int i = 0; i < 50; i++) memcpy(text + 3 * i, "xyz", 3);
    text[150] = 0;
    memcpy(first, text, 120);
    first[120] = 0;
    memcpy(second, text, 30);
    second[30] = 0;

    /* From a regular file, then from a pipe a child process fills 7 bytes at a time with
     * pauses, so read(2) comes back short: each block is still filled, as Python's
     * buffered read(n) fills it. */
    for (int kind = 0; kind < 2; kind++) {
        int fd;
        pid_t child = -1;
        if (kind == 0) {
            fd = temp_file(text);
        } else {
            int p[2];
            assert_int_equal(pipe(p), 0);
            child = fork();
            assert_true(child >= 0);
            if (child == 0) {
                close(p[0]);
                for (int i = 0; i < 150; i += 7) { /* 22 small writes, 2 ms apart */
                    size_t n = 150 - i < 7 ? (size_t)(150 - i) : 7;
                    if (write(p[1], text + i, n) != (ssize_t)n) _exit(1);
                    struct timespec pause = { 0, 2000000 };
                    nanosleep(&pause, NULL);
                }
                _exit(0);
            }
            close(p[1]);
            fd = p[0];
        }
        gw_file_wrapper *w = NULL;
        assert_int_equal(gw_file_wrapper_new(fd, 120, true, &w), GW_STATUS_OK);
        expect_block(w, first);
        expect_block(w, second);
        expect_end(w);
        expect_end(w);
        bool closed = true;
        assert_int_equal(gw_file_wrapper_is_closed(w, &closed), GW_STATUS_OK);
        assert_false(closed);
        assert_true(fd_open(fd));
        assert_int_equal(gw_file_wrapper_close(w), GW_STATUS_OK);
        assert_int_equal(gw_file_wrapper_is_closed(w, &closed), GW_STATUS_OK);
        assert_true(closed);
        assert_false(fd_open(fd));
        /* Exactly once: the number now belongs to another file, which no later call closes. */
        int null_fd = open("/dev/null", O_RDONLY);
        assert_true(null_fd >= 0);
        int reused = null_fd == fd ? fd : dup2(null_fd, fd);
        assert_int_equal(reused, fd);
        if (null_fd != fd) close(null_fd);
        assert_int_equal(gw_file_wrapper_close(w), GW_STATUS_OK);
        const void *data;
        size_t len;
        assert_fails(gw_file_wrapper_next(w, &data, &len), GW_STATUS_INVALID_STATE);
        assert_int_equal(gw_file_wrapper_free(w), GW_STATUS_OK);
        assert_true(fd_open(reused));
        close(reused);
        if (child > 0) {
            int status = -1;
            assert_int_equal(waitpid(child, &status, 0), child);
            assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        }
    }
}

static void test_file_wrapper_ownership(void **state) {
    (void)state;
    /* Not owned: close and free leave the descriptor open. */
    int fd = temp_file("abc");
    gw_file_wrapper *w = NULL;
    assert_int_equal(gw_file_wrapper_new(fd, 0, false, &w), GW_STATUS_OK); /* 0: 8192 */
    expect_block(w, "abc");
    assert_int_equal(gw_file_wrapper_close(w), GW_STATUS_OK);
    assert_int_equal(gw_file_wrapper_free(w), GW_STATUS_OK);
    assert_true(fd_open(fd));

    /* Owned and freed without close: free closes it. */
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    assert_int_equal(gw_file_wrapper_new(fd, 2, true, &w), GW_STATUS_OK);
    expect_block(w, "ab");
    expect_block(w, "c");
    assert_int_equal(gw_file_wrapper_free(w), GW_STATUS_OK);
    assert_false(fd_open(fd));

    /* A refused call consumes an owned descriptor, and keeps one it does not own. */
    fd = temp_file("abc");
    w = (gw_file_wrapper *)&w;
    assert_fails(gw_file_wrapper_new(fd, (size_t)16 * 1024 * 1024 + 1, false, &w), GW_STATUS_TOO_LARGE);
    assert_ptr_equal(w, (gw_file_wrapper *)&w);
    assert_true(fd_open(fd));
    assert_fails(gw_file_wrapper_new(fd, (size_t)16 * 1024 * 1024 + 1, true, &w), GW_STATUS_TOO_LARGE);
    assert_false(fd_open(fd));
    fd = temp_file("abc");
    assert_fails(gw_file_wrapper_new(fd, 4, true, NULL), GW_STATUS_NULL_ARGUMENT);
    assert_false(fd_open(fd));
    assert_fails(gw_file_wrapper_new(-1, 4, true, &w), GW_STATUS_INVALID_ARGUMENT);

    /* A failing read is an I/O error with the reason. */
    int p[2];
    assert_int_equal(pipe(p), 0);
    assert_int_equal(gw_file_wrapper_new(p[1], 4, true, &w), GW_STATUS_OK); /* the write end */
    const void *data;
    size_t len;
    assert_fails(gw_file_wrapper_next(w, &data, &len), GW_STATUS_IO_ERROR);
    assert_non_null(strstr(gw_last_error_message(), "reading the wrapped file failed"));
    assert_int_equal(gw_file_wrapper_free(w), GW_STATUS_OK);
    assert_false(fd_open(p[1]));
    close(p[0]);

    /* NULL arguments */
    fd = temp_file("abc");
    assert_int_equal(gw_file_wrapper_new(fd, 4, true, &w), GW_STATUS_OK);
    bool closed;
    assert_fails(gw_file_wrapper_next(NULL, &data, &len), GW_STATUS_NULL_ARGUMENT);
    assert_fails(gw_file_wrapper_next(w, NULL, &len), GW_STATUS_NULL_ARGUMENT);
    assert_fails(gw_file_wrapper_next(w, &data, NULL), GW_STATUS_NULL_ARGUMENT);
    assert_fails(gw_file_wrapper_close(NULL), GW_STATUS_NULL_ARGUMENT);
    assert_fails(gw_file_wrapper_is_closed(NULL, &closed), GW_STATUS_NULL_ARGUMENT);
    assert_fails(gw_file_wrapper_is_closed(w, NULL), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_file_wrapper_free(NULL), GW_STATUS_OK);
    assert_int_equal(gw_file_wrapper_free(w), GW_STATUS_OK);
    assert_false(fd_open(fd));
    assert_fails(gw_request_set_body_file_wrapper(NULL, NULL), GW_STATUS_NULL_ARGUMENT);
    /* consumed on every path: a NULL request still closes and frees the wrapper */
    fd = temp_file("abc");
    assert_int_equal(gw_file_wrapper_new(fd, 4, true, &w), GW_STATUS_OK);
    assert_fails(gw_request_set_body_file_wrapper(NULL, w), GW_STATUS_NULL_ARGUMENT);
    assert_false(fd_open(fd));
}

typedef struct body_app {
    int fd;
    size_t block_size;
    bool twice;             /* set a second body: refused, and that wrapper consumed */
    int second_fd;
    gw_status second_status;
} body_app;

static gw_status file_wrapper_app(void *userdata, gw_request *req) {
    body_app *a = userdata;
    gw_status st = gw_request_start_response(req, S("200 OK"), NULL, 0, 0);
    if (st != GW_STATUS_OK) return st;
    gw_file_wrapper *w = NULL;
    if ((st = gw_file_wrapper_new(a->fd, a->block_size, true, &w)) != GW_STATUS_OK) return st;
    if ((st = gw_request_set_body_file_wrapper(req, w)) != GW_STATUS_OK) return st;
    if (a->twice) {
        gw_file_wrapper *again = NULL;
        if ((st = gw_file_wrapper_new(a->second_fd, 0, true, &again)) != GW_STATUS_OK) return st;
        a->second_status = gw_request_set_body_file_wrapper(req, again);
    }
    return GW_STATUS_OK;
}

/* The reference notes' table: FileWrapper(BytesIO(b'0123456789'), 4) as the result of a CGI
 * handler gives `Status: 200 OK\r\n\r\n0123456789` (no len(), so no Content-Length); the
 * library closes the wrapper, and so the descriptor, once. */
static void test_file_wrapper_as_body(void **state) {
    (void)state;
    sink s;
    body_app a = { temp_file("0123456789"), 4, true, temp_file("x"), GW_STATUS_OK };
    assert_int_equal(run_cgi(file_wrapper_app, &a, &s), GW_STATUS_OK);
    assert_bytes(s.out, s.out_len, "Status: 200 OK\r\n\r\n0123456789");
    assert_int_equal(s.err_len, 0);
    assert_false(fd_open(a.fd));
    assert_int_equal(a.second_status, GW_STATUS_INVALID_STATE); /* a body already set */
    assert_false(fd_open(a.second_fd));                        /* consumed all the same */

    /* An exact multiple of the block size, and an empty file. */
    body_app exact = { temp_file("01234567"), 4, false, -1, GW_STATUS_OK };
    assert_int_equal(run_cgi(file_wrapper_app, &exact, &s), GW_STATUS_OK);
    assert_bytes(s.out, s.out_len, "Status: 200 OK\r\n\r\n01234567");
    assert_false(fd_open(exact.fd));
    body_app empty = { temp_file(""), 4, false, -1, GW_STATUS_OK };
    assert_int_equal(run_cgi(file_wrapper_app, &empty, &s), GW_STATUS_OK);
    assert_bytes(s.out, s.out_len, "Status: 200 OK\r\nContent-Length: 0\r\n\r\n");
    assert_false(fd_open(empty.fd));

    /* A file that cannot be read: the application failed before any output, so the error
     * page goes out, the reason is logged, and the descriptor is still closed. */
    int p[2];
    assert_int_equal(pipe(p), 0);
    body_app broken = { p[1], 4, false, -1, GW_STATUS_OK };
    assert_int_equal(run_cgi(file_wrapper_app, &broken, &s), GW_STATUS_APP_ERROR);
    assert_non_null(strstr(s.out, "Status: 500 Internal Server Error\r\n"));
    assert_non_null(strstr(s.err, "reading the wrapped file failed"));
    assert_false(fd_open(p[1]));
    close(p[0]);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shift_path_info_vectors),
        cmocka_unit_test(test_shift_path_info_edges),
        cmocka_unit_test(test_setup_testing_defaults),
        cmocka_unit_test(test_setup_testing_cross_defaults),
        cmocka_unit_test(test_guess_scheme),
        cmocka_unit_test(test_application_uri),
        cmocka_unit_test(test_request_uri),
        cmocka_unit_test(test_uri_errors),
        cmocka_unit_test(test_is_hop_by_hop),
        cmocka_unit_test(test_headers_mapping_interface),
        cmocka_unit_test(test_headers_extras),
        cmocka_unit_test(test_headers_add_header_quoting),
        cmocka_unit_test(test_headers_refusals),
        cmocka_unit_test(test_headers_to_start_response),
        cmocka_unit_test(test_file_wrapper),
        cmocka_unit_test(test_file_wrapper_ownership),
        cmocka_unit_test(test_file_wrapper_as_body),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
