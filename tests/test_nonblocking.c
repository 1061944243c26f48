/* Non-blocking mode (gw_handler_set_nonblocking), checked against blocking mode.
 *
 * The matrix: every application of the fault matrix (tests/faults_host.h), origin HTTP/1.1
 * and CGI, runs blocking on a fresh handler as the reference, then non-blocking with hooks
 * that answer EAGAIN
 *   - once, at the k-th call of write, flush or read_stdin, for every k the run reaches;
 *   - at every call (each call answers EAGAIN once before it goes through);
 *   - the same with writes and reads of 1 byte;
 * resumed until the end. The bytes on the wire, the error log, the status, keep-alive, the
 * access-log numbers and the body's close (once) must be those of the blocking run, the
 * pause must report what the hook waited for, and a second request on the same handler
 * must come out identical too.
 *
 * Then the parts blocking mode has no counterpart for: the high-water mark, cancelling a
 * pending cycle, request bodies spooled to a temporary file, the send_file hook (blocking and
 * non-blocking, HEAD, after a chunked head), and the API's refusals. */
#include "faults_host.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

/* ---- a host whose hooks answer EAGAIN on a schedule --------------------------------------- */

enum nb_sched { S_NONE, S_ONCE, S_ALTERNATE, S_ALTERNATE_TRICKLE, S_COUNT };
static const char *const NB_SCHED_NAMES[S_COUNT] = { "none", "once", "alternate", "alternate+1-byte" };

typedef struct nb_ctx {
    fh_ctx fh; /* first: the applications get &fh */
    int sched;
    int hook; /* S_ONCE: which hook, and which of its calls */
    int k;
    int calls[H_COUNT];
    int eagains;
    gw_wait expected_wait; /* what the last EAGAIN means */
    /* the send_file hook's record */
    int send_file_calls;
    uint64_t send_file_bytes;
    bool send_file_eagain_each; /* every other call answers EAGAIN */
    uint64_t send_file_cap;     /* at most this much per call (0: all) */
} nb_ctx;

static bool nb_eagain(nb_ctx *c, int hook) {
    int n = ++c->calls[hook];
    bool yes = false;
    switch (c->sched) {
    case S_ONCE: yes = hook == c->hook && n == c->k; break;
    case S_ALTERNATE:
    case S_ALTERNATE_TRICKLE: yes = n % 2 == 1; break;
    default: break;
    }
    if (yes) {
        c->eagains++;
        c->expected_wait = hook == H_READ ? GW_WAIT_READ : GW_WAIT_WRITE;
    }
    return yes;
}

static int nb_write(void *ud, const void *data, size_t len, size_t *out_written) {
    nb_ctx *c = ud;
    if (nb_eagain(c, H_WRITE)) {
        errno = EAGAIN; /* the "-1 with errno" form */
        return -1;
    }
    if (c->sched == S_ALTERNATE_TRICKLE && len > 1) len = 1;
    return fh_hook_write(&c->fh, data, len, out_written);
}

static int nb_flush(void *ud) {
    nb_ctx *c = ud;
    if (nb_eagain(c, H_FLUSH)) return EWOULDBLOCK; /* the errno-value form */
    return fh_hook_flush(&c->fh);
}

static int nb_read(void *ud, void *buf, size_t len, size_t *out_read) {
    nb_ctx *c = ud;
    if (nb_eagain(c, H_READ)) return EAGAIN;
    if (c->sched == S_ALTERNATE_TRICKLE && len > 1) len = 1;
    return fh_hook_read(&c->fh, buf, len, out_read);
}

static int nb_send_file(void *ud, int fd, uint64_t offset, uint64_t length, uint64_t *out_sent) {
    nb_ctx *c = ud;
    c->send_file_calls++;
    if (c->send_file_eagain_each && c->send_file_calls % 2 == 1) {
        c->expected_wait = GW_WAIT_WRITE;
        return EAGAIN;
    }
    uint64_t want = length;
    if (c->send_file_cap > 0 && want > c->send_file_cap) want = c->send_file_cap;
    if (c->fh.wire_len + want > sizeof c->fh.wire) return ENOSPC;
    ssize_t n = pread(fd, c->fh.wire + c->fh.wire_len, (size_t)want, (off_t)offset);
    if (n < 0) return errno;
    c->fh.wire_len += (size_t)n;
    c->send_file_bytes += (uint64_t)n;
    *out_sent = (uint64_t)n;
    return 0;
}

static gw_handler *nb_handler(nb_ctx *c, int mode, bool nonblocking, bool with_send_file) {
    gw_handler_hooks hooks = fh_hooks(&c->fh);
    hooks.userdata = c;
    hooks.write = nb_write;
    hooks.flush = nb_flush;
    hooks.read_stdin = nb_read;
    if (with_send_file) hooks.send_file = nb_send_file;
    gw_handler *h = NULL;
    assert_int_equal(gw_handler_new(&hooks, &h), GW_STATUS_OK);
    assert_int_equal(fh_configure(h, mode), GW_STATUS_OK);
    assert_int_equal(gw_handler_set_nonblocking(h, nonblocking), GW_STATUS_OK);
    return h;
}

static void nb_reset(nb_ctx *c, int app, int mode, int sched, int hook, int k) {
    fh_ctx_reset(&c->fh, app, mode, H_NONE, 0, K_NONE);
    c->sched = sched;
    c->hook = hook;
    c->k = k;
    memset(c->calls, 0, sizeof c->calls);
    c->eagains = 0;
    c->expected_wait = GW_WAIT_NONE;
    c->send_file_calls = 0;
    c->send_file_bytes = 0;
}

static int failures;

static void nb_print_escaped(const char *s, size_t n) {
    for (size_t i = 0; i < n && i < 400; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch >= 0x20 && ch < 0x7f && ch != '\\') putchar(ch);
        else printf("\\x%02x", ch);
    }
    if (n > 400) printf("... (%zu bytes)", n);
}

static void nb_fail(const char *what, const char *fmt, ...) {
    if (failures++ < 20) {
        va_list ap;
        va_start(ap, fmt);
        printf("FAIL %s: ", what);
        vprintf(fmt, ap);
        printf("\n");
        va_end(ap);
    }
}

/* Runs one request and resumes it to its end, checking each pause reports what the hook
 * that answered EAGAIN waits for. */
static gw_status nb_drive(gw_handler *h, nb_ctx *c, const char *what, int *pauses) {
    gw_status st = gw_handler_run(h, fh_app, &c->fh);
    *pauses = 0;
    while (st == GW_STATUS_PENDING && *pauses < 100000) {
        gw_wait wait = GW_WAIT_NONE;
        assert_int_equal(gw_handler_pending(h, &wait), GW_STATUS_OK);
        if (wait != c->expected_wait) nb_fail(what, "pending says %d, the hook waited for %d", wait, c->expected_wait);
        bool keep = false;
        if (gw_handler_last_keep_alive(h, &keep) != GW_STATUS_INVALID_STATE)
            nb_fail(what, "a getter answered while a cycle was pending");
        (*pauses)++;
        st = gw_handler_resume(h);
    }
    gw_wait after = GW_WAIT_READ;
    assert_int_equal(gw_handler_pending(h, &after), GW_STATUS_OK);
    if (after != GW_WAIT_NONE) nb_fail(what, "still pending after %d resumes", *pauses);
    return st;
}

typedef struct nb_result {
    gw_status status;
    bool keep_alive;
    uint16_t code;
    uint64_t body_bytes;
    char wire[FH_WIRE_CAP];
    size_t wire_len;
    char err[FH_ERR_CAP];
    size_t err_len;
    int close_calls;
    bool iter_set;
} nb_result;

static void nb_take(nb_result *r, const nb_ctx *c, gw_handler *h, gw_status st) {
    r->status = st;
    r->keep_alive = false;
    r->code = 0;
    r->body_bytes = 0;
    assert_int_equal(gw_handler_last_keep_alive(h, &r->keep_alive), GW_STATUS_OK);
    assert_int_equal(gw_handler_last_response(h, &r->code, &r->body_bytes), GW_STATUS_OK);
    memcpy(r->wire, c->fh.wire, c->fh.wire_len);
    r->wire_len = c->fh.wire_len;
    memcpy(r->err, c->fh.err, c->fh.err_len);
    r->err_len = c->fh.err_len;
    r->close_calls = c->fh.close_calls;
    r->iter_set = c->fh.iter_set;
}

static void nb_compare(const char *what, const nb_result *ref, const nb_result *got) {
    if (got->status != ref->status) nb_fail(what, "status %d, blocking gave %d", got->status, ref->status);
    if (!fh_same(got->wire, got->wire_len, ref->wire, ref->wire_len)) {
        nb_fail(what, "the wire differs from blocking mode's");
        if (failures <= 20) {
            printf("  blocking:     ");
            nb_print_escaped(ref->wire, ref->wire_len);
            printf("\n  non-blocking: ");
            nb_print_escaped(got->wire, got->wire_len);
            printf("\n");
        }
    }
    if (!fh_same(got->err, got->err_len, ref->err, ref->err_len)) {
        nb_fail(what, "the error log differs from blocking mode's");
        if (failures <= 20) {
            printf("  blocking:     ");
            nb_print_escaped(ref->err, ref->err_len);
            printf("\n  non-blocking: ");
            nb_print_escaped(got->err, got->err_len);
            printf("\n");
        }
    }
    if (got->keep_alive != ref->keep_alive) nb_fail(what, "keep-alive %d, blocking gave %d", got->keep_alive, ref->keep_alive);
    if (got->code != ref->code || got->body_bytes != ref->body_bytes)
        nb_fail(what, "last_response %u/%llu, blocking gave %u/%llu", got->code, (unsigned long long)got->body_bytes,
                ref->code, (unsigned long long)ref->body_bytes);
    if (got->iter_set && got->close_calls != 1) nb_fail(what, "the body was closed %d times", got->close_calls);
}

static nb_ctx C;
static nb_result REF, GOT;

static void test_nonblocking_bytes_equal_blocking(void **state) {
    (void)state;
    int runs = 0, pauses_total = 0;
    static const int hooks[] = { H_WRITE, H_FLUSH, H_READ };
    for (int app = 0; app < A_COUNT; app++) {
        for (int mode = 0; mode < M_COUNT; mode++) {
            char what[200];
            /* the reference: blocking, fresh handler */
            nb_reset(&C, app, mode, S_NONE, H_NONE, 0);
            gw_handler *hb = nb_handler(&C, mode, false, false);
            gw_status st = gw_handler_run(hb, fh_app, &C.fh);
            nb_take(&REF, &C, hb, st);
            gw_handler_free(hb);

            for (int sched = S_NONE; sched < S_COUNT; sched++) {
                int nhooks = sched == S_ONCE ? 3 : 1;
                for (int hi = 0; hi < nhooks; hi++) {
                    for (int k = 1; k <= (sched == S_ONCE ? 64 : 1); k++) {
                        snprintf(what, sizeof what, "[%s] app=%s sched=%s hook=%s k=%d", FH_MODE_NAMES[mode],
                                 FH_APP_NAMES[app], NB_SCHED_NAMES[sched], sched == S_ONCE ? FH_HOOK_NAMES[hooks[hi]] : "-", k);
                        nb_reset(&C, app, mode, sched, hooks[hi], k);
                        gw_handler *h = nb_handler(&C, mode, true, false);
                        int pauses = 0;
                        st = nb_drive(h, &C, what, &pauses);
                        pauses_total += pauses;
                        runs++;
                        bool reached = C.eagains > 0;
                        nb_take(&GOT, &C, h, st);
                        nb_compare(what, &REF, &GOT);
                        if (pauses != C.eagains) nb_fail(what, "%d pauses for %d EAGAINs", pauses, C.eagains);
                        /* the handler is ready for the next request: identical again */
                        strncat(what, " (second request)", sizeof what - strlen(what) - 1);
                        nb_reset(&C, app, mode, sched, hooks[hi], k);
                        st = nb_drive(h, &C, what, &pauses);
                        nb_take(&GOT, &C, h, st);
                        nb_compare(what, &REF, &GOT);
                        gw_handler_free(h);
                        if (sched == S_ONCE && !reached) break; /* the k-th call never came */
                    }
                }
            }
        }
    }
    printf("non-blocking matrix: %d runs, %d pauses, %d failures\n", runs, pauses_total, failures);
    assert_int_equal(failures, 0);
    assert_true(pauses_total > 1000);
}

/* ---- the high-water mark -------------------------------------------------------------------- */

static int hw_write_status[4];

static int32_t hw_app(void *ud, gw_request *req) {
    (void)ud;
    static char block[40000];
    memset(block, 'x', sizeof block);
    gw_status st = gw_request_start_response(req, "200 OK", 6, FH_HEADERS, 1, 0);
    if (st != GW_STATUS_OK) return st;
    for (int i = 0; i < 4; i++) hw_write_status[i] = gw_request_write(req, block, sizeof block);
    return GW_STATUS_OK;
}

static int never_write(void *ud, const void *data, size_t len, size_t *out_written) {
    (void)ud, (void)data, (void)len, (void)out_written;
    return EAGAIN;
}

static void test_write_refused_past_high_water(void **state) {
    (void)state;
    nb_reset(&C, A_BYTES, M_ORIGIN, S_NONE, H_NONE, 0);
    gw_handler_hooks hooks = fh_hooks(&C.fh);
    hooks.write = never_write;
    gw_handler *h = NULL;
    assert_int_equal(gw_handler_new(&hooks, &h), GW_STATUS_OK);
    assert_int_equal(gw_handler_set_nonblocking(h, true), GW_STATUS_OK);
    size_t mark = 0;
    assert_int_equal(gw_handler_get_write_high_water(h, &mark), GW_STATUS_OK);
    assert_int_equal(mark, GW_DEFAULT_WRITE_HIGH_WATER);
    assert_int_equal(gw_handler_run(h, hw_app, NULL), GW_STATUS_PENDING);
    /* 40000 queued, 80000 queued (below the mark when accepted), then refused */
    assert_int_equal(hw_write_status[0], GW_STATUS_OK);
    assert_int_equal(hw_write_status[1], GW_STATUS_OK);
    assert_int_equal(hw_write_status[2], GW_STATUS_WOULD_BLOCK);
    assert_int_equal(hw_write_status[3], GW_STATUS_WOULD_BLOCK);
    assert_int_equal(gw_handler_cancel(h), GW_STATUS_OK);
    /* a lower mark refuses earlier */
    assert_int_equal(gw_handler_set_write_high_water(h, 0), GW_STATUS_INVALID_ARGUMENT);
    assert_int_equal(gw_handler_set_write_high_water(h, 1), GW_STATUS_OK);
    assert_int_equal(gw_handler_run(h, hw_app, NULL), GW_STATUS_PENDING);
    assert_int_equal(hw_write_status[0], GW_STATUS_OK);
    assert_int_equal(hw_write_status[1], GW_STATUS_WOULD_BLOCK);
    gw_handler_free(h); /* frees a pending cycle: cancelled (valgrind checks nothing leaks) */
}

/* ---- cancelling ------------------------------------------------------------------------------ */

static void test_cancel_closes_the_body_once(void **state) {
    (void)state;
    for (int sched = S_ONCE; sched <= S_ALTERNATE; sched++) {
        nb_reset(&C, A_ITER, M_ORIGIN, sched, H_WRITE, 1);
        gw_handler *h = nb_handler(&C, M_ORIGIN, true, false);
        assert_int_equal(gw_handler_run(h, fh_app, &C.fh), GW_STATUS_PENDING);
        gw_wait wait = GW_WAIT_NONE;
        assert_int_equal(gw_handler_pending(h, &wait), GW_STATUS_OK);
        assert_int_equal(wait, GW_WAIT_WRITE);
        /* refused while pending: a new run, setters, getters */
        assert_int_equal(gw_handler_run(h, fh_app, &C.fh), GW_STATUS_INVALID_STATE);
        assert_int_equal(gw_handler_set_origin_server(h, true), GW_STATUS_INVALID_STATE);
        assert_int_equal(C.fh.close_calls, 0);
        assert_int_equal(gw_handler_cancel(h), GW_STATUS_OK);
        assert_int_equal(C.fh.close_calls, 1);
        assert_int_equal(gw_handler_pending(h, &wait), GW_STATUS_OK);
        assert_int_equal(wait, GW_WAIT_NONE);
        bool keep = true;
        assert_int_equal(gw_handler_last_keep_alive(h, &keep), GW_STATUS_OK);
        assert_false(keep);
        assert_int_equal(gw_handler_resume(h), GW_STATUS_INVALID_STATE);
        assert_int_equal(gw_handler_cancel(h), GW_STATUS_OK); /* nothing pending: a no-op */
        assert_int_equal(C.fh.close_calls, 1);
        /* the next request is whole */
        nb_reset(&C, A_BYTES, M_ORIGIN, S_NONE, H_NONE, 0);
        assert_int_equal(gw_handler_run(h, fh_app, &C.fh), GW_STATUS_OK);
        assert_non_null(fh_find(C.fh.wire, C.fh.wire_len, "\r\n\r\nHello, bytes!\n"));
        gw_handler_free(h);
    }
    /* cancelled while the request body is still coming: the app is never called */
    nb_reset(&C, A_ECHO_READ, M_ORIGIN, S_ONCE, H_READ, 2);
    gw_handler *h = nb_handler(&C, M_ORIGIN, true, false);
    assert_int_equal(gw_handler_run(h, fh_app, &C.fh), GW_STATUS_PENDING);
    gw_wait wait = GW_WAIT_NONE;
    assert_int_equal(gw_handler_pending(h, &wait), GW_STATUS_OK);
    assert_int_equal(wait, GW_WAIT_READ);
    assert_false(C.fh.app_called);
    assert_int_equal(gw_handler_cancel(h), GW_STATUS_OK);
    assert_false(C.fh.app_called);
    assert_int_equal(C.fh.wire_len, 0);
    gw_handler_free(h);
}

/* ---- request bodies spooled to a file ------------------------------------------------------ */

#define BIG_BODY_LEN 300000

typedef struct spool_ctx {
    size_t in_pos;
    int reads;
    char wire[4096];
    size_t wire_len;
    const char *content_length;
    size_t matched;
    gw_status read_status;
} spool_ctx;

static char body_byte(size_t i) {
    return (char)('a' + (i * 7 + i / 251) % 26);
}

static int spool_read(void *ud, void *buf, size_t len, size_t *out_read) {
    spool_ctx *s = ud;
    if (++s->reads % 3 == 0) return EAGAIN;
    size_t left = BIG_BODY_LEN - s->in_pos;
    size_t take = len < left ? len : left;
    if (take > 5000) take = 5000;
    for (size_t i = 0; i < take; i++) ((char *)buf)[i] = body_byte(s->in_pos + i);
    s->in_pos += take;
    *out_read = take;
    return 0;
}

static int spool_write(void *ud, const void *data, size_t len, size_t *out_written) {
    spool_ctx *s = ud;
    if (s->wire_len + len > sizeof s->wire) return ENOSPC;
    memcpy(s->wire + s->wire_len, data, len);
    s->wire_len += len;
    *out_written = len;
    return 0;
}

static int32_t spool_cgi(void *ud, gw_environ *env) {
    spool_ctx *s = ud;
    gw_status st = fh_set(env, "REQUEST_METHOD", "POST");
    if (st == GW_STATUS_OK) st = fh_set(env, "SERVER_PROTOCOL", "HTTP/1.1");
    if (st == GW_STATUS_OK) st = fh_set(env, "CONTENT_LENGTH", s->content_length);
    return st;
}

static int32_t spool_app(void *ud, gw_request *req) {
    spool_ctx *s = ud;
    char buf[7000];
    size_t total = 0;
    for (;;) {
        size_t n = 0;
        s->read_status = gw_request_input_read(req, buf, sizeof buf, &n);
        if (s->read_status != GW_STATUS_OK) return s->read_status;
        if (n == 0) break;
        for (size_t i = 0; i < n; i++)
            if (buf[i] == body_byte(total + i)) s->matched++;
        total += n;
    }
    gw_status st = gw_request_start_response(req, "200 OK", 6, FH_HEADERS, 1, 0);
    if (st != GW_STATUS_OK) return st;
    return gw_request_set_body_bytes(req, "got it\n", 7);
}

static gw_handler *spool_handler(spool_ctx *s) {
    gw_handler_hooks hooks = GW_HANDLER_HOOKS_INIT;
    hooks.userdata = s;
    hooks.write = spool_write;
    hooks.read_stdin = spool_read;
    hooks.add_cgi_vars = spool_cgi;
    gw_handler *h = NULL;
    assert_int_equal(gw_handler_new(&hooks, &h), GW_STATUS_OK);
    assert_int_equal(gw_handler_set_nonblocking(h, true), GW_STATUS_OK);
    assert_int_equal(gw_handler_set_http_version(h, "1.1", 3), GW_STATUS_OK);
    return h;
}

static gw_status spool_drive(gw_handler *h, spool_ctx *s) {
    gw_status st = gw_handler_run(h, spool_app, s);
    int pauses = 0;
    while (st == GW_STATUS_PENDING && pauses++ < 10000) st = gw_handler_resume(h);
    return st;
}

static int open_fds(void) {
    int n = 0;
    for (int fd = 0; fd < 1024; fd++)
        if (fcntl(fd, F_GETFD) != -1) n++;
    return n;
}

static void test_large_body_spooled_to_a_file(void **state) {
    (void)state;
    int fds_before = open_fds();
    size_t limits[] = { GW_DEFAULT_BODY_MEMORY_LIMIT, 1024, 0, 1u << 20 };
    for (size_t i = 0; i < sizeof limits / sizeof limits[0]; i++) {
        spool_ctx s = { .content_length = "300000" };
        gw_handler *h = spool_handler(&s);
        size_t got = 1;
        assert_int_equal(gw_handler_get_body_memory_limit(h, &got), GW_STATUS_OK);
        assert_int_equal(got, GW_DEFAULT_BODY_MEMORY_LIMIT);
        assert_int_equal(gw_handler_set_body_memory_limit(h, limits[i]), GW_STATUS_OK);
        assert_int_equal(spool_drive(h, &s), GW_STATUS_OK);
        assert_int_equal(s.matched, BIG_BODY_LEN);
        assert_int_equal(s.in_pos, BIG_BODY_LEN);
        bool keep = false;
        assert_int_equal(gw_handler_last_keep_alive(h, &keep), GW_STATUS_OK);
        assert_true(keep);
        assert_non_null(fh_find(s.wire, s.wire_len, "\r\n\r\ngot it\n"));
        /* the temporary file is gone once the request is over, while the handler lives on */
        assert_int_equal(open_fds(), fds_before);
        gw_handler_free(h);
    }
    /* past the size limit: reading stops there, the app meets TOO_LARGE, the client gets 413 */
    spool_ctx s = { .content_length = "300000" };
    gw_handler *h = spool_handler(&s);
    assert_int_equal(gw_handler_set_max_request_body(h, 100000), GW_STATUS_OK);
    assert_int_equal(gw_handler_set_body_memory_limit(h, 4096), GW_STATUS_OK);
    assert_int_equal(spool_drive(h, &s), GW_STATUS_APP_ERROR);
    assert_int_equal(s.read_status, GW_STATUS_TOO_LARGE);
    assert_true(s.in_pos <= 100000 + 8192);
    assert_non_null(fh_find(s.wire, s.wire_len, "HTTP/1.1 413 Content Too Large\r\n"));
    gw_handler_free(h);
    /* a body cut short: the app reads what came, then the error, as in blocking mode */
    spool_ctx t = { .content_length = "400000" };
    h = spool_handler(&t);
    assert_int_equal(spool_drive(h, &t), GW_STATUS_APP_ERROR);
    assert_int_equal(t.read_status, GW_STATUS_INPUT_ERROR);
    assert_true(t.matched >= BIG_BODY_LEN - 7000);
    gw_handler_free(h);
}

/* ---- file bodies through send_file ------------------------------------------------------- */

#define FILE_LEN 40000 /* the file's bytes after the first 1000 fit the wire buffer */

static int make_file(size_t skip) {
    char path[] = "/tmp/gateway-sendfile-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    static char data[FILE_LEN];
    for (size_t i = 0; i < FILE_LEN; i++) data[i] = body_byte(i);
    assert_int_equal(write(fd, data, FILE_LEN), FILE_LEN);
    assert_int_equal(lseek(fd, (off_t)skip, SEEK_SET), (off_t)skip);
    return fd;
}

static bool file_app_write_first;
static bool file_app_head;
static size_t file_app_skip = 1000;

static int32_t file_app(void *ud, gw_request *req) {
    (void)ud;
    gw_status st = gw_request_start_response(req, "200 OK", 6, FH_HEADERS, 1, 0);
    if (st == GW_STATUS_OK && file_app_write_first) st = gw_request_write(req, "first ", 6);
    if (st != GW_STATUS_OK) return st;
    return gw_request_set_body_file(req, make_file(file_app_skip), 0, true);
}

static int32_t file_cgi(void *ud, gw_environ *env) {
    (void)ud;
    gw_status st = fh_set(env, "REQUEST_METHOD", file_app_head ? "HEAD" : "GET");
    if (st == GW_STATUS_OK) st = fh_set(env, "SERVER_PROTOCOL", "HTTP/1.1");
    return st;
}

/* An HTTP/1.1 origin handler over C whose send_file hook writes into the wire. */
static gw_handler *file_handler(bool nonblocking) {
    gw_handler_hooks hooks = fh_hooks(&C.fh);
    hooks.userdata = &C;
    hooks.write = nb_write;
    hooks.send_file = nb_send_file;
    hooks.add_cgi_vars = file_cgi;
    gw_handler *h = NULL;
    assert_int_equal(gw_handler_new(&hooks, &h), GW_STATUS_OK);
    assert_int_equal(gw_handler_set_http_version(h, "1.1", 3), GW_STATUS_OK);
    assert_int_equal(gw_handler_set_nonblocking(h, nonblocking), GW_STATUS_OK);
    return h;
}

static void test_send_file_hook(void **state) {
    (void)state;
    for (int variant = 0; variant < 8; variant++) {
        bool nonblocking = variant & 1;
        file_app_write_first = variant & 2;
        file_app_head = variant & 4;
        nb_reset(&C, A_BYTES, M_ORIGIN, S_NONE, H_NONE, 0);
        C.send_file_eagain_each = nonblocking;
        C.send_file_cap = 7000;
        gw_handler *h = file_handler(nonblocking);
        gw_status st = gw_handler_run(h, file_app, NULL);
        int pauses = 0;
        while (st == GW_STATUS_PENDING && pauses++ < 1000) st = gw_handler_resume(h);
        assert_int_equal(st, GW_STATUS_OK);
        const size_t len = FILE_LEN - 1000;
        const char *end = fh_find(C.fh.wire, C.fh.wire_len, "\r\n\r\n");
        assert_non_null(end);
        size_t head_len = (size_t)(end - C.fh.wire) + 4;
        if (getenv("NB_DEBUG")) { nb_print_escaped(C.fh.wire, head_len); printf("\n"); }
        if (file_app_head) {
            /* HEAD: the file's length (unless a write committed the head first), no body,
             * send_file never called */
            if (file_app_write_first) assert_null(fh_find(C.fh.wire, head_len, "Content-Length"));
            else assert_non_null(fh_find(C.fh.wire, head_len, "Content-Length: 39000\r\n"));
            assert_int_equal(C.fh.wire_len, head_len);
            assert_int_equal(C.send_file_calls, 0);
        } else if (file_app_write_first) {
            /* the head went out chunked with "first ": the file is one chunk */
            assert_non_null(fh_find(C.fh.wire, head_len, "Transfer-Encoding: chunked\r\n"));
            const char *p = C.fh.wire + head_len;
            assert_memory_equal(p, "6\r\nfirst \r\n", 11);
            p += 11;
            assert_memory_equal(p, "9858\r\n", 6); /* 39000 */
            p += 6;
            for (size_t i = 0; i < len; i++)
                if (p[i] != body_byte(1000 + i)) fail_msg("byte %zu of the file differs", i);
            p += len;
            assert_int_equal(C.fh.wire + C.fh.wire_len - p, 7);
            assert_memory_equal(p, "\r\n0\r\n\r\n", 7);
        } else {
            assert_non_null(fh_find(C.fh.wire, head_len, "Content-Length: 39000\r\n"));
            assert_null(fh_find(C.fh.wire, head_len, "chunked"));
            assert_int_equal(C.fh.wire_len, head_len + len);
            for (size_t i = 0; i < len; i++)
                if (C.fh.wire[head_len + i] != body_byte(1000 + i)) fail_msg("byte %zu of the file differs", i);
        }
        if (!file_app_head) assert_int_equal(C.send_file_bytes, len);
        uint16_t code = 0;
        uint64_t body = 0;
        assert_int_equal(gw_handler_last_response(h, &code, &body), GW_STATUS_OK);
        assert_int_equal(body, file_app_head ? 0 : len + (file_app_write_first ? 6 : 0));
        bool keep = false;
        assert_int_equal(gw_handler_last_keep_alive(h, &keep), GW_STATUS_OK);
        assert_true(keep);
        gw_handler_free(h);
    }
}

/* An empty file's length is 0, for HEAD too (an app's empty HEAD body says nothing). */
static void test_send_file_empty_file(void **state) {
    (void)state;
    file_app_skip = FILE_LEN;
    file_app_write_first = false;
    for (int head = 0; head < 2; head++) {
        file_app_head = head;
        nb_reset(&C, A_BYTES, M_ORIGIN, S_NONE, H_NONE, 0);
        C.send_file_eagain_each = false;
        C.send_file_cap = 0;
        gw_handler *h = file_handler(false);
        assert_int_equal(gw_handler_run(h, file_app, NULL), GW_STATUS_OK);
        const char *end = fh_find(C.fh.wire, C.fh.wire_len, "\r\n\r\n");
        assert_non_null(end);
        assert_int_equal(C.fh.wire_len, (size_t)(end - C.fh.wire) + 4);
        assert_non_null(fh_find(C.fh.wire, C.fh.wire_len, "Content-Length: 0\r\n"));
        assert_int_equal(C.send_file_calls, 0);
        gw_handler_free(h);
    }
    file_app_skip = 1000;
}

/* ---- a borrowed body ------------------------------------------------------------------------ */

static char borrowed_page[30000];
static size_t borrowed_len;
static bool borrowed_copy;

static int32_t borrowed_app(void *ud, gw_request *req) {
    (void)ud;
    gw_status st = gw_request_start_response(req, "200 OK", 6, FH_HEADERS, 2, 0);
    if (st != GW_STATUS_OK) return st;
    if (borrowed_copy) return gw_request_set_body_bytes(req, borrowed_page, borrowed_len);
    st = gw_request_set_body_borrowed(req, borrowed_page, borrowed_len);
    if (st == GW_STATUS_OK) assert_int_equal(gw_request_set_body_borrowed(req, "x", 1), GW_STATUS_INVALID_STATE);
    return st;
}

/* gw_request_set_body_borrowed sends what gw_request_set_body_bytes sends (Content-Length
 * computed), small and large, blocking and with EAGAIN everywhere, without copying first. */
static void test_borrowed_body_equals_copied_body(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof borrowed_page; i++) borrowed_page[i] = body_byte(i);
    static const size_t lens[] = { 0, 13, 16000, 30000 };
    for (size_t li = 0; li < 4; li++) {
        for (int sched = S_NONE; sched < S_COUNT; sched++) {
            if (sched == S_ONCE) continue;
            borrowed_len = lens[li];
            nb_result *ref = &REF, *got = &GOT;
            for (int copy = 1; copy >= 0; copy--) {
                borrowed_copy = copy;
                nb_reset(&C, A_BYTES, M_ORIGIN, copy ? S_NONE : sched, H_NONE, 0);
                gw_handler *h = nb_handler(&C, M_ORIGIN, !copy, false);
                int pauses = 0;
                gw_status st = gw_handler_run(h, borrowed_app, NULL);
                while (st == GW_STATUS_PENDING && pauses++ < 100000) st = gw_handler_resume(h);
                nb_take(copy ? ref : got, &C, h, st);
                gw_handler_free(h);
            }
            char what[100];
            snprintf(what, sizeof what, "borrowed body of %zu bytes, %s", lens[li], NB_SCHED_NAMES[sched]);
            nb_compare(what, ref, got);
            assert_int_equal(got->status, GW_STATUS_OK);
            char length[40];
            snprintf(length, sizeof length, "Content-Length: %zu\r\n", lens[li]);
            assert_non_null(fh_find(got->wire, got->wire_len, length));
        }
    }
    assert_int_equal(failures, 0);
    /* NULL with a length is refused at once */
    assert_int_equal(gw_request_set_body_borrowed(NULL, "x", 1), GW_STATUS_NULL_ARGUMENT);
}

/* A flush answering EINTR fails the cycle in both modes alike (flush is not retried). */
static int eintr_flush(void *ud) {
    (void)ud;
    return EINTR;
}

static void test_flush_eintr_same_in_both_modes(void **state) {
    (void)state;
    for (int nonblocking = 0; nonblocking < 2; nonblocking++) {
        nb_reset(&C, A_BYTES, M_ORIGIN, S_NONE, H_NONE, 0);
        gw_handler_hooks hooks = fh_hooks(&C.fh);
        hooks.flush = eintr_flush;
        gw_handler *h = NULL;
        assert_int_equal(gw_handler_new(&hooks, &h), GW_STATUS_OK);
        assert_int_equal(gw_handler_set_nonblocking(h, nonblocking), GW_STATUS_OK);
        assert_int_equal(gw_handler_run(h, fh_app, &C.fh), GW_STATUS_IO_ERROR);
        gw_handler_free(h);
    }
}

/* ---- the API's refusals --------------------------------------------------------------------- */

static void test_nonblocking_api_checks(void **state) {
    (void)state;
    bool flag = true;
    size_t n = 0;
    gw_wait wait = GW_WAIT_READ;
    assert_int_equal(gw_handler_set_nonblocking(NULL, true), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_handler_get_nonblocking(NULL, &flag), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_handler_set_write_high_water(NULL, 1), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_handler_get_write_high_water(NULL, &n), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_handler_set_body_memory_limit(NULL, 1), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_handler_get_body_memory_limit(NULL, &n), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_handler_pending(NULL, &wait), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_handler_resume(NULL), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_handler_cancel(NULL), GW_STATUS_NULL_ARGUMENT);
    nb_reset(&C, A_BYTES, M_ORIGIN, S_NONE, H_NONE, 0);
    gw_handler *h = nb_handler(&C, M_ORIGIN, false, false);
    assert_int_equal(gw_handler_get_nonblocking(h, &flag), GW_STATUS_OK);
    assert_false(flag);
    assert_int_equal(gw_handler_get_nonblocking(h, NULL), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_handler_pending(h, NULL), GW_STATUS_NULL_ARGUMENT);
    assert_int_equal(gw_handler_pending(h, &wait), GW_STATUS_OK);
    assert_int_equal(wait, GW_WAIT_NONE);
    assert_int_equal(gw_handler_resume(h), GW_STATUS_INVALID_STATE);
    assert_string_equal(gw_status_str(GW_STATUS_PENDING), "pending: the cycle waits for the client");
    assert_string_equal(gw_status_str(GW_STATUS_WOULD_BLOCK), "would block: the output queue is full");
    /* blocking mode: EAGAIN stays an I/O error, as before */
    nb_reset(&C, A_BYTES, M_ORIGIN, S_ONCE, H_WRITE, 1);
    assert_int_equal(gw_handler_run(h, fh_app, &C.fh), GW_STATUS_IO_ERROR);
    gw_handler_free(h);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nonblocking_api_checks),
        cmocka_unit_test(test_nonblocking_bytes_equal_blocking),
        cmocka_unit_test(test_write_refused_past_high_water),
        cmocka_unit_test(test_cancel_closes_the_body_once),
        cmocka_unit_test(test_large_body_spooled_to_a_file),
        cmocka_unit_test(test_send_file_hook),
        cmocka_unit_test(test_borrowed_body_equals_copied_body),
        cmocka_unit_test(test_send_file_empty_file),
        cmocka_unit_test(test_flush_eintr_same_in_both_modes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
