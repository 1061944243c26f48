/* The thread rules of include/gateway.h, exercised all at once, for ThreadSanitizer (and
 * AddressSanitizer, and as a plain program): built and run by tests/sanitizers.sh.
 *
 *  - WORKERS threads, each with its own handler (created on the main thread, moved to the
 *    worker), all given the same base environ with gw_handler_set_os_environ (one shared
 *    snapshot), each running many requests: CGI or origin output (the Date cache is shared),
 *    a body from gw_request_set_body_bytes or gw_request_write, CGI variables that shadow and remove
 *    base keys, and a failing application now and then (the handler's own error page).
 *  - Every thread reads the caller's `const gw_environ *` base at the same time (get, len,
 *    next), and takes and drops snapshots of it (gw_handler_copy_os_environ, then
 *    gw_handler_set_os_environ with that snapshot on its own handler).
 *  - READERS threads call every gw_handler_get_* on one idle handler concurrently, in two
 *    phases with a run and setting changes on the main thread between them.
 *
 * Every response is compared byte for byte with what it must be. Exits 0 when every check
 * passed, 1 otherwise. Usage: test_threads [requests-per-worker] (default 2000). */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gateway.h"

enum { WORKERS = 8, READERS = 4, BASE_VARS = 24, OUT_CAP = 4096 };

static int requests_per_worker = 2000;
static pthread_barrier_t start_line;

/* ---- failures: counted per thread, the first few printed ---------------------------------- */

static pthread_mutex_t report_lock = PTHREAD_MUTEX_INITIALIZER;
static int reported;

static void fail(long *failures, const char *fmt, ...) {
    (*failures)++;
    pthread_mutex_lock(&report_lock);
    if (reported++ < 20) {
        va_list ap;
        va_start(ap, fmt);
        fputs("test_threads: FAIL: ", stderr);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
    }
    pthread_mutex_unlock(&report_lock);
}

/* Prints at most `len` bytes with control bytes escaped, for failure messages. */
static const char *shown(const char *data, size_t len, char *buf, size_t cap) {
    size_t o = 0;
    for (size_t i = 0; i < len && o + 5 < cap; i++) {
        unsigned char c = (unsigned char)data[i];
        if (c >= 0x20 && c < 0x7f && c != '\\') buf[o++] = (char)c;
        else o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", c);
    }
    buf[o] = '\0';
    return buf;
}

static void expect_bytes(long *failures, const char *what, const char *got, size_t got_len,
                         const char *want, size_t want_len) {
    if (got_len == want_len && (want_len == 0 || memcmp(got, want, want_len) == 0)) return;
    char a[1024], b[1024];
    fail(failures, "%s:\n  got  [%zu] \"%s\"\n  want [%zu] \"%s\"", what, got_len,
         got == NULL ? "(null)" : shown(got, got_len, a, sizeof a), want_len, shown(want, want_len, b, sizeof b));
}

static void expect_status(long *failures, const char *what, gw_status got, gw_status want) {
    if (got != want) fail(failures, "%s: status %d (%s), want %d (%s): %s", what, (int)got, gw_status_str(got),
                          (int)want, gw_status_str(want), gw_last_error_message());
}

/* ---- the base environ -------------------------------------------------------------------- */

/* Entry `i` of the base environ, in insertion order: SHARED, HTTPS, BASE_0 .. BASE_23. */
static void base_entry(int i, char *name, size_t name_cap, char *value, size_t value_cap) {
    if (i == 0) {
        snprintf(name, name_cap, "SHARED");
        snprintf(value, value_cap, "shared-value");
    } else if (i == 1) {
        snprintf(name, name_cap, "HTTPS");
        snprintf(value, value_cap, "on");
    } else {
        snprintf(name, name_cap, "BASE_%d", i - 2);
        snprintf(value, value_cap, "value-%d-%.*s", i - 2, i - 2, "abcdefghijklmnopqrstuvwxyz");
    }
}

/* Reads a const environ that holds exactly the base entries, from any thread. `full` walks it
 * whole with gw_environ_next. */
static void check_base_environ(long *failures, const gw_environ *env, int pick, bool full) {
    char name[64], want[64];
    const char *value = NULL;
    size_t len = 0;
    int i = pick % (BASE_VARS + 2);
    base_entry(i, name, sizeof name, want, sizeof want);
    expect_status(failures, "gw_environ_get(base)", gw_environ_get(env, name, strlen(name), &value, &len), GW_STATUS_OK);
    if (value != NULL) expect_bytes(failures, "base value", value, len, want, strlen(want));
    expect_status(failures, "gw_environ_get(base, absent)", gw_environ_get(env, "PATH_INFO", 9, &value, &len),
                  GW_STATUS_NOT_FOUND);
    size_t count = 0;
    expect_status(failures, "gw_environ_len(base)", gw_environ_len(env, &count), GW_STATUS_OK);
    if (count != BASE_VARS + 2) fail(failures, "gw_environ_len(base) = %zu, want %d", count, BASE_VARS + 2);
    if (!full) return;
    size_t cursor = 0;
    for (int k = 0; k <= BASE_VARS + 2; k++) {
        const char *n = NULL, *v = NULL;
        size_t n_len = 0, v_len = 0;
        gw_status st = gw_environ_next(env, &cursor, &n, &n_len, &v, &v_len);
        if (k == BASE_VARS + 2) {
            expect_status(failures, "gw_environ_next(base) at the end", st, GW_STATUS_NOT_FOUND);
            break;
        }
        expect_status(failures, "gw_environ_next(base)", st, GW_STATUS_OK);
        if (st != GW_STATUS_OK) break;
        base_entry(k, name, sizeof name, want, sizeof want);
        expect_bytes(failures, "gw_environ_next name", n, n_len, name, strlen(name));
        expect_bytes(failures, "gw_environ_next value", v, v_len, want, strlen(want));
    }
}

/* ---- a memory host, one per handler ------------------------------------------------------- */

typedef struct host {
    int id;          /* the worker's number */
    int request;     /* the request being served */
    char out[OUT_CAP];
    size_t out_len;
    char err[1024];
    size_t err_len;
} host;

static int host_write(void *userdata, const void *data, size_t len, size_t *out_written) {
    host *h = userdata;
    if (h->out_len + len > sizeof h->out) return ENOSPC;
    memcpy(h->out + h->out_len, data, len);
    h->out_len += len;
    *out_written = len;
    return 0;
}

static int host_write_err(void *userdata, const void *data, size_t len, size_t *out_written) {
    host *h = userdata;
    if (h->err_len + len > sizeof h->err) return ENOSPC;
    memcpy(h->err + h->err_len, data, len);
    h->err_len += len;
    *out_written = len;
    return 0;
}

/* What the request is: which variables it shadows or removes, how it answers. */
static bool shadows_shared(int request) { return request % 3 == 1; }
static bool removes_base3(int request) { return request % 5 == 2; }
static bool fails(int request) { return request % 7 == 6; }
static bool body_as_bytes(int request) { return request % 2 == 0; }

static int32_t host_add_cgi_vars(void *userdata, gw_environ *env) {
    host *h = userdata;
    char path[64], own[32];
    int path_len = snprintf(path, sizeof path, "/w%d/r%d", h->id, h->request);
    gw_status st = gw_environ_set(env, "REQUEST_METHOD", 14, "GET", 3);
    if (st == GW_STATUS_OK) st = gw_environ_set(env, "SERVER_PROTOCOL", 15, "HTTP/1.0", 8);
    if (st == GW_STATUS_OK) st = gw_environ_set(env, "PATH_INFO", 9, path, (size_t)path_len);
    if (st == GW_STATUS_OK && shadows_shared(h->request)) {
        int own_len = snprintf(own, sizeof own, "own-%d", h->id);
        st = gw_environ_set(env, "SHARED", 6, own, (size_t)own_len);
    }
    if (st == GW_STATUS_OK && removes_base3(h->request)) st = gw_environ_remove(env, "BASE_3", 6);
    return st;
}

static gw_handler *new_handler(host *h) {
    gw_handler_hooks hooks = { .size = sizeof(gw_handler_hooks), .userdata = h, .write = host_write, .write_stderr = host_write_err,
                               .add_cgi_vars = host_add_cgi_vars };
    gw_handler *handler = NULL;
    if (gw_handler_new(&hooks, &handler) != GW_STATUS_OK) {
        fprintf(stderr, "gw_handler_new: %s\n", gw_last_error_message());
        exit(1);
    }
    return handler;
}

/* ---- the application ----------------------------------------------------------------------- */

static const char *lookup(gw_environ *env, const char *name, size_t *len) {
    const char *value = NULL;
    if (gw_environ_get(env, name, strlen(name), &value, len) != GW_STATUS_OK) {
        *len = 6;
        return "absent";
    }
    return value;
}

/* The body the application answers with, from the request's environ or from what it must be. */
static int format_body(char *out, size_t cap, const char *path, size_t path_len, const char *shared,
                       size_t shared_len, const char *base3, size_t base3_len, const char *mine, size_t mine_len,
                       const char *scheme, size_t scheme_len, const char *mt, size_t mt_len) {
    return snprintf(out, cap, "path=%.*s shared=%.*s base3=%.*s mine=%.*s scheme=%.*s multithread=%.*s\n",
                    (int)path_len, path, (int)shared_len, shared, (int)base3_len, base3, (int)mine_len, mine,
                    (int)scheme_len, scheme, (int)mt_len, mt);
}

static int32_t app(void *userdata, gw_request *req) {
    host *h = userdata;
    gw_environ *env = NULL;
    gw_status st = gw_request_environ(req, &env);
    if (st != GW_STATUS_OK) return st;
    if (fails(h->request)) return gw_request_fail(req, "failing on purpose", 18);

    char mine_name[32];
    snprintf(mine_name, sizeof mine_name, "BASE_%d", h->id);
    size_t path_len, shared_len, base3_len, mine_len, scheme_len, mt_len;
    const char *path = lookup(env, "PATH_INFO", &path_len);
    const char *shared = lookup(env, "SHARED", &shared_len);
    const char *base3 = lookup(env, "BASE_3", &base3_len);
    const char *mine = lookup(env, mine_name, &mine_len);
    const char *scheme = lookup(env, "wsgi.url_scheme", &scheme_len);
    const char *mt = lookup(env, "wsgi.multithread", &mt_len);
    char body[512];
    int n = format_body(body, sizeof body, path, path_len, shared, shared_len, base3, base3_len, mine, mine_len,
                        scheme, scheme_len, mt, mt_len);

    char worker[16];
    int worker_len = snprintf(worker, sizeof worker, "%d", h->id);
    gw_header headers[] = { { "Content-Type", 12, "text/plain", 10 }, { "X-Worker", 8, worker, (size_t)worker_len } };
    st = gw_request_start_response(req, "200 OK", 6, headers, 2, 0);
    if (st != GW_STATUS_OK) return st;
    if (body_as_bytes(h->request)) return gw_request_set_body_bytes(req, body, (size_t)n);
    return gw_request_write(req, body, (size_t)n);
}

/* ---- the workers ------------------------------------------------------------------------- */

typedef struct worker {
    int id;
    bool origin;
    gw_handler *handler;
    const gw_environ *base; /* the caller's environ, read concurrently by every thread */
    host host;
    long failures;
    long requests;
} worker;

/* Origin output carries `Date: <29 bytes>` after the status line: checks it is the date of a
 * second between t0 - 1 and t1 + 1, and copies it to `date`. */
static void check_date(long *failures, const host *h, size_t status_line_len, time_t t0, time_t t1, char *date) {
    memset(date, '?', GW_HTTP_DATE_LEN);
    date[GW_HTTP_DATE_LEN] = '\0';
    if (h->out_len < status_line_len + 6 + GW_HTTP_DATE_LEN || memcmp(h->out + status_line_len, "Date: ", 6) != 0) {
        fail(failures, "worker %d request %d: no Date header where expected", h->id, h->request);
        return;
    }
    const char *got = h->out + status_line_len + 6;
    for (time_t t = t0 - 1; t <= t1 + 1; t++) {
        char want[GW_HTTP_DATE_LEN + 1];
        if (gw_format_date_time((int64_t)t, want, sizeof want) == GW_STATUS_OK && memcmp(got, want, GW_HTTP_DATE_LEN) == 0) {
            memcpy(date, got, GW_HTTP_DATE_LEN);
            return;
        }
    }
    char a[64];
    fail(failures, "worker %d request %d: Date \"%s\" is not the time of the request", h->id, h->request,
         shown(got, GW_HTTP_DATE_LEN, a, sizeof a));
}

static void run_one(worker *w, int request) {
    host *h = &w->host;
    h->request = request;
    h->out_len = 0;
    h->err_len = 0;
    time_t t0 = time(NULL);
    gw_status st = gw_handler_run(w->handler, app, h);
    time_t t1 = time(NULL);

    /* What the response must be. */
    char body[512], want[OUT_CAP], date[GW_HTTP_DATE_LEN + 1], server[32], what[64];
    snprintf(what, sizeof what, "worker %d request %d", w->id, request);
    snprintf(server, sizeof server, "gw-threads/%d", w->id);
    const char *status = fails(request) ? "500 Worker Failed" : "200 OK";
    int want_len;
    char head[256];
    if (w->origin) {
        int status_line_len = snprintf(head, sizeof head, "HTTP/1.0 %s\r\n", status);
        check_date(&w->failures, h, (size_t)status_line_len, t0, t1, date);
        snprintf(head + status_line_len, sizeof head - (size_t)status_line_len, "Date: %s\r\nServer: %s\r\n", date,
                 server);
    } else {
        snprintf(head, sizeof head, "Status: %s\r\n", status);
    }
    int body_len;
    if (fails(request)) {
        expect_status(&w->failures, what, st, GW_STATUS_APP_ERROR);
        body_len = snprintf(body, sizeof body, "worker %d failed\n", w->id);
        want_len = snprintf(want, sizeof want, "%sContent-Type: text/plain\r\nX-Error: %d\r\nContent-Length: %d\r\n\r\n%s",
                            head, w->id, body_len, body);
        static const char log_line[] = "gateway: application error: failing on purpose\n";
        expect_bytes(&w->failures, "error log", h->err, h->err_len, log_line, sizeof log_line - 1);
    } else {
        expect_status(&w->failures, what, st, GW_STATUS_OK);
        char path[64], shared[32], base3[64], mine[64], mine_name[32];
        snprintf(path, sizeof path, "/w%d/r%d", w->id, request);
        if (shadows_shared(request)) snprintf(shared, sizeof shared, "own-%d", w->id);
        else snprintf(shared, sizeof shared, "shared-value");
        if (removes_base3(request)) snprintf(base3, sizeof base3, "absent");
        else base_entry(3 + 2, mine_name, sizeof mine_name, base3, sizeof base3);
        if (w->id == 3 && removes_base3(request)) snprintf(mine, sizeof mine, "absent");
        else base_entry(w->id + 2, mine_name, sizeof mine_name, mine, sizeof mine);
        body_len = format_body(body, sizeof body, path, strlen(path), shared, strlen(shared), base3, strlen(base3),
                               mine, strlen(mine), "https", 5, "1", 1);
        char length[64] = "";
        if (body_as_bytes(request)) snprintf(length, sizeof length, "Content-Length: %d\r\n", body_len);
        want_len = snprintf(want, sizeof want, "%sContent-Type: text/plain\r\nX-Worker: %d\r\n%s\r\n%s", head, w->id,
                            length, body);
        expect_bytes(&w->failures, "error log", h->err, h->err_len, "", 0);
    }
    expect_bytes(&w->failures, what, h->out, h->out_len, want, (size_t)want_len);

    uint16_t code = 0;
    uint64_t sent = 0;
    expect_status(&w->failures, "gw_handler_last_response", gw_handler_last_response(w->handler, &code, &sent),
                  GW_STATUS_OK);
    if (code != (fails(request) ? 500 : 200) || sent != (uint64_t)body_len)
        fail(&w->failures, "%s: last_response %u/%llu, want %d/%d", what, code, (unsigned long long)sent,
             fails(request) ? 500 : 200, body_len);
    w->requests++;
}

/* Takes a snapshot of the handler's base environ, reads it, and makes it the handler's base
 * environ again (the same shared snapshot: nothing is copied). */
static void cycle_snapshot(worker *w, int pick) {
    gw_environ *snap = NULL;
    expect_status(&w->failures, "gw_handler_copy_os_environ", gw_handler_copy_os_environ(w->handler, &snap), GW_STATUS_OK);
    if (snap == NULL) return;
    check_base_environ(&w->failures, snap, pick, pick % 4 == 0);
    expect_status(&w->failures, "gw_handler_set_os_environ(snapshot)", gw_handler_set_os_environ(w->handler, snap),
                  GW_STATUS_OK);
    gw_environ_free(snap);
}

static void *worker_main(void *arg) {
    worker *w = arg;
    pthread_barrier_wait(&start_line);
    for (int r = 0; r < requests_per_worker; r++) {
        check_base_environ(&w->failures, w->base, r + w->id, r % 50 == 0);
        if (r % 10 == 5) cycle_snapshot(w, r);
        run_one(w, r);
    }
    /* The handlers are freed here, concurrently: the shared snapshot's last reference goes
     * wherever it happens to be dropped. */
    gw_handler_free(w->handler);
    w->handler = NULL;
    return NULL;
}

/* ---- concurrent getters on one idle handler ----------------------------------------------- */

typedef struct expected_settings {
    bool multithread, multiprocess, run_once, origin_server, file_wrapper;
    const char *http_version;
    const char *server_software; /* NULL: not set */
    const char *error_status;
    const char *error_body;
    uint16_t last_code;
    uint64_t last_bytes;
} expected_settings;

typedef struct reader {
    const gw_handler *handler;
    const gw_environ *base;
    const expected_settings *want;
    void *want_userdata;
    long failures;
    long rounds;
} reader;

static void check_flag(long *failures, const char *what, gw_status st, bool got, bool want) {
    expect_status(failures, what, st, GW_STATUS_OK);
    if (got != want) fail(failures, "%s = %d, want %d", what, got, want);
}

static void *reader_main(void *arg) {
    reader *r = arg;
    const gw_handler *h = r->handler;
    const expected_settings *want = r->want;
    long *failures = &r->failures;
    pthread_barrier_wait(&start_line);
    for (int i = 0; i < requests_per_worker; i++) {
        bool flag = false;
        gw_status st = gw_handler_get_multithread(h, &flag);
        check_flag(failures, "multithread", st, flag, want->multithread);
        st = gw_handler_get_multiprocess(h, &flag);
        check_flag(failures, "multiprocess", st, flag, want->multiprocess);
        st = gw_handler_get_run_once(h, &flag);
        check_flag(failures, "run_once", st, flag, want->run_once);
        st = gw_handler_get_origin_server(h, &flag);
        check_flag(failures, "origin_server", st, flag, want->origin_server);
        st = gw_handler_get_file_wrapper(h, &flag);
        check_flag(failures, "file_wrapper", st, flag, want->file_wrapper);

        const char *text = NULL;
        size_t len = 0;
        expect_status(failures, "http_version", gw_handler_get_http_version(h, &text, &len), GW_STATUS_OK);
        expect_bytes(failures, "http_version", text, len, want->http_version, strlen(want->http_version));
        expect_status(failures, "server_software", gw_handler_get_server_software(h, &text, &len), GW_STATUS_OK);
        if (want->server_software == NULL) {
            if (text != NULL || len != 0) fail(failures, "server_software set, want NULL");
        } else {
            expect_bytes(failures, "server_software", text, len, want->server_software, strlen(want->server_software));
        }
        expect_status(failures, "error_status", gw_handler_get_error_status(h, &text, &len), GW_STATUS_OK);
        expect_bytes(failures, "error_status", text, len, want->error_status, strlen(want->error_status));
        expect_status(failures, "error_body", gw_handler_get_error_body(h, &text, &len), GW_STATUS_OK);
        expect_bytes(failures, "error_body", text, len, want->error_body, strlen(want->error_body));

        size_t count = 0;
        expect_status(failures, "error_header_count", gw_handler_get_error_header_count(h, &count), GW_STATUS_OK);
        if (count != 2) fail(failures, "error_header_count = %zu, want 2", count);
        gw_header hdr;
        expect_status(failures, "error_header 1", gw_handler_get_error_header(h, 1, &hdr), GW_STATUS_OK);
        expect_bytes(failures, "error_header 1 name", hdr.name, hdr.name_len, "X-Error", 7);
        expect_bytes(failures, "error_header 1 value", hdr.value, hdr.value_len, "0", 1);
        expect_status(failures, "error_header 2", gw_handler_get_error_header(h, 2, &hdr), GW_STATUS_NOT_FOUND);

        void *userdata = NULL;
        expect_status(failures, "userdata", gw_handler_get_userdata(h, &userdata), GW_STATUS_OK);
        if (userdata != r->want_userdata) fail(failures, "userdata %p, want %p", userdata, r->want_userdata);

        uint16_t code = 0;
        uint64_t bytes = 0;
        expect_status(failures, "last_response", gw_handler_last_response(h, &code, &bytes), GW_STATUS_OK);
        if (code != want->last_code || bytes != want->last_bytes)
            fail(failures, "last_response %u/%llu, want %u/%llu", code, (unsigned long long)bytes, want->last_code,
                 (unsigned long long)want->last_bytes);
        bool keep_alive = true;
        st = gw_handler_last_keep_alive(h, &keep_alive);
        check_flag(failures, "last_keep_alive", st, keep_alive, false);

        if (i % 8 == 0) {
            gw_environ *snap = NULL;
            expect_status(failures, "gw_handler_copy_os_environ", gw_handler_copy_os_environ(h, &snap), GW_STATUS_OK);
            if (snap != NULL) check_base_environ(failures, snap, i, i % 64 == 0);
            gw_environ_free(snap);
        }
        check_base_environ(failures, r->base, i, i % 50 == 25);
        r->rounds++;
    }
    return NULL;
}

/* READERS threads over the idle handler; with `with_workers`, the workers start with them. */
static long run_readers(gw_handler *h0, host *h0_host, const gw_environ *base, const expected_settings *want,
                        worker *workers, int worker_count, long *rounds) {
    reader readers[READERS];
    pthread_t reader_threads[READERS], worker_threads[WORKERS];
    if (pthread_barrier_init(&start_line, NULL, (unsigned)(READERS + worker_count)) != 0) exit(1);
    for (int i = 0; i < READERS; i++) {
        readers[i] = (reader){ .handler = h0, .base = base, .want = want, .want_userdata = h0_host };
        if (pthread_create(&reader_threads[i], NULL, reader_main, &readers[i]) != 0) exit(1);
    }
    for (int i = 0; i < worker_count; i++) {
        if (pthread_create(&worker_threads[i], NULL, worker_main, &workers[i]) != 0) exit(1);
    }
    long failures = 0;
    for (int i = 0; i < READERS; i++) {
        pthread_join(reader_threads[i], NULL);
        failures += readers[i].failures;
        *rounds += readers[i].rounds;
    }
    for (int i = 0; i < worker_count; i++) pthread_join(worker_threads[i], NULL);
    pthread_barrier_destroy(&start_line);
    return failures;
}

static void set_error_page(gw_handler *h, int id) {
    char id_text[16], body[64];
    int id_len = snprintf(id_text, sizeof id_text, "%d", id);
    int body_len = snprintf(body, sizeof body, "worker %d failed\n", id);
    gw_header headers[] = { { "Content-Type", 12, "text/plain", 10 }, { "X-Error", 7, id_text, (size_t)id_len } };
    if (gw_handler_set_error_page(h, "500 Worker Failed", 17, headers, 2, body, (size_t)body_len) != GW_STATUS_OK) {
        fprintf(stderr, "gw_handler_set_error_page: %s\n", gw_last_error_message());
        exit(1);
    }
}

int main(int argc, char **argv) {
    if (argc > 1) requests_per_worker = atoi(argv[1]);
    if (requests_per_worker < 1) {
        fprintf(stderr, "usage: %s [requests-per-worker]\n", argv[0]);
        return 2;
    }
    long failures = 0;

    /* The caller's base environ, given to every handler (one shared snapshot). */
    gw_environ *base = NULL;
    if (gw_environ_new(&base) != GW_STATUS_OK) return 1;
    for (int i = 0; i < BASE_VARS + 2; i++) {
        char name[64], value[64];
        base_entry(i, name, sizeof name, value, sizeof value);
        if (gw_environ_set(base, name, strlen(name), value, strlen(value)) != GW_STATUS_OK) return 1;
    }

    /* The idle handler whose getters run concurrently. It has served one request. */
    host h0_host = { .id = 0, .request = 0 };
    gw_handler *h0 = new_handler(&h0_host);
    set_error_page(h0, 0);
    if (gw_handler_set_http_version(h0, "1.1", 3) != GW_STATUS_OK ||
        gw_handler_set_server_software(h0, "gw-threads/0", 12) != GW_STATUS_OK ||
        gw_handler_set_multithread(h0, false) != GW_STATUS_OK || gw_handler_set_run_once(h0, true) != GW_STATUS_OK ||
        gw_handler_set_file_wrapper(h0, false) != GW_STATUS_OK || gw_handler_set_os_environ(h0, base) != GW_STATUS_OK) {
        fprintf(stderr, "setting up the idle handler: %s\n", gw_last_error_message());
        return 1;
    }
    expect_status(&failures, "run on the idle handler", gw_handler_run(h0, app, &h0_host), GW_STATUS_OK);
    char body[512];
    uint64_t first_body = (uint64_t)format_body(body, sizeof body, "/w0/r0", 6, "shared-value", 12, "value-3-abc", 11,
                                                "value-0-", 8, "https", 5, "0", 1);

    worker workers[WORKERS];
    for (int i = 0; i < WORKERS; i++) {
        workers[i] = (worker){ .id = i + 1, .origin = i % 2 == 1, .base = base };
        workers[i].host.id = i + 1;
        workers[i].handler = new_handler(&workers[i].host);
        set_error_page(workers[i].handler, i + 1);
        char server[32];
        int server_len = snprintf(server, sizeof server, "gw-threads/%d", i + 1);
        if (gw_handler_set_origin_server(workers[i].handler, workers[i].origin) != GW_STATUS_OK ||
            gw_handler_set_server_software(workers[i].handler, server, (size_t)server_len) != GW_STATUS_OK ||
            gw_handler_set_os_environ(workers[i].handler, base) != GW_STATUS_OK) {
            fprintf(stderr, "setting up worker %d: %s\n", i + 1, gw_last_error_message());
            return 1;
        }
    }

    /* Phase 1: the workers and the readers together. */
    expected_settings phase1 = { .multithread = false, .multiprocess = true, .run_once = true, .origin_server = true,
                                 .file_wrapper = false, .http_version = "1.1", .server_software = "gw-threads/0",
                                 .error_status = "500 Worker Failed", .error_body = "worker 0 failed\n",
                                 .last_code = 200, .last_bytes = first_body };
    long rounds = 0;
    failures += run_readers(h0, &h0_host, base, &phase1, workers, WORKERS, &rounds);
    long requests = 0;
    for (int i = 0; i < WORKERS; i++) {
        failures += workers[i].failures;
        requests += workers[i].requests;
    }

    /* Phase 2: the main thread changes the idle handler and runs a failing request on it,
     * then the readers look again. */
    if (gw_handler_set_http_version(h0, "1.0", 3) != GW_STATUS_OK ||
        gw_handler_set_server_software(h0, NULL, 0) != GW_STATUS_OK ||
        gw_handler_set_multithread(h0, true) != GW_STATUS_OK || gw_handler_set_origin_server(h0, false) != GW_STATUS_OK) {
        fprintf(stderr, "changing the idle handler: %s\n", gw_last_error_message());
        return 1;
    }
    h0_host.request = 6; /* fails(6) */
    expect_status(&failures, "failing run on the idle handler", gw_handler_run(h0, app, &h0_host), GW_STATUS_APP_ERROR);
    expected_settings phase2 = phase1;
    phase2.multithread = true;
    phase2.origin_server = false;
    phase2.http_version = "1.0";
    phase2.server_software = NULL;
    phase2.last_code = 500;
    phase2.last_bytes = strlen("worker 0 failed\n");
    failures += run_readers(h0, &h0_host, base, &phase2, NULL, 0, &rounds);

    gw_handler_free(h0);
    gw_environ_free(base);

    if (failures != 0) fprintf(stderr, "test_threads: %ld failed checks\n", failures);
    fflush(stderr);
    printf("test_threads: %d workers x %d requests (%ld served), %d getter threads x 2 phases (%ld rounds)\n", WORKERS,
           requests_per_worker, requests, READERS, rounds);
    printf("threads: %d passed, %d failed\n", failures == 0 ? 1 : 0, failures == 0 ? 0 : 1);
    return failures == 0 ? 0 : 1;
}
