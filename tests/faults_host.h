/* Shared by tests/test_faults.c (the fault-injection matrix) and tests/endurance.c (10^6
 * requests through one handler): a memory host whose hooks fail on their k-th call in a
 * chosen way, the applications the matrix runs, their expected healthy output, a parser that
 * says whether the bytes on the wire form a complete framed response, and the oracle that
 * checks one run against the documented outcome (include/gateway.h, gw_handler_run).
 *
 * Everything is `static inline` so that each program uses what it needs without
 * -Wunused-function; nothing here is a public API. */
#ifndef GATEWAY_FAULTS_HOST_H
#define GATEWAY_FAULTS_HOST_H

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gateway.h"

#define FH_LEN(s) (sizeof(s) - 1)
#define FH_WIRE_CAP 65536
#define FH_ERR_CAP 16384
#define FH_BIG_LEN 20000 /* a block larger than the library's 16 KiB coalescing limit */
#define FH_FIXED_DATE "Thu, 01 Jan 1970 00:00:00 GMT"
#define FH_ERROR_BODY "A server error occurred.  Please contact the administrator."
#define FH_REQ_BODY "ping=pong\n" /* the request body of the echo apps: CONTENT_LENGTH 10 */
#define FH_READ_CHUNK 4           /* the healthy read hook hands out at most this much per call */
#define FH_FILE_BODY "file-body:abcdefg\n"
#define FH_FILE_BLOCK 4
/* read(2) calls the library makes on the file body: the data blocks, then end of file */
#define FH_FILE_READS ((int)((FH_LEN(FH_FILE_BODY) + FH_FILE_BLOCK - 1) / FH_FILE_BLOCK) + 1)
#define FH_MAX_FAILS 16
/* How many EINTRs in a row the library retries (the header's name changed in 0.2). */
#if defined(GW_MAX_EINTR_RETRIES)
#define FH_EINTR_RETRIES GW_MAX_EINTR_RETRIES
#elif defined(GW_MAX_EINTR_RETRIES)
#define FH_EINTR_RETRIES GW_MAX_EINTR_RETRIES
#else
#define FH_EINTR_RETRIES 64
#endif

/* ---- the dimensions of the matrix ------------------------------------------------------ */

enum fh_mode { M_ORIGIN, M_CGI, M_COUNT };
static const char *const FH_MODE_NAMES[M_COUNT] = { "origin", "cgi" };

/* Host hooks, then the application-side "hooks" (iterator next/close, the file body's read). */
enum fh_hook { H_NONE, H_WRITE, H_FLUSH, H_READ, H_WERR, H_FERR, H_CGI, H_NEXT, H_CLOSE, H_FILE, H_COUNT };
static const char *const FH_HOOK_NAMES[H_COUNT] = {
    "none", "write", "flush", "read_stdin", "write_stderr", "flush_stderr", "add_cgi_vars",
    "iter_next", "iter_close", "file_read",
};

enum fh_kind {
    K_NONE,
    K_EPIPE,       /* the k-th call fails with EPIPE (later calls are healthy again) */
    K_ECONNRESET,
    K_EIO,
    K_EAGAIN,      /* returned as -1 with errno set */
    K_EINTR,       /* every call from the k-th on returns EINTR (reads: -1 with errno) */
    K_ZERO,        /* the k-th write reports 0 bytes taken */
    K_OVER,        /* the k-th call stores nothing and reports len + 1 */
    K_SHORT,       /* the k-th call takes 1 byte: not a failure */
    K_TRICKLE,     /* every call from the k-th on takes 1 byte: not a failure */
    K_EOF,         /* reads report end of input from the k-th call on (before CONTENT_LENGTH) */
    K_ST_CLIENT_GONE, /* add_cgi_vars returns this gw_status ... */
    K_ST_APP_ERROR,
    K_ST_IO_ERROR,
    K_ST_INVALID_ARGUMENT,
    K_ST_PANIC,
    K_ST_UNKNOWN,  /* 999 */
    K_ST_NEGATIVE, /* -1 */
    K_NEXT_FAIL,   /* the k-th next returns gw_request_fail(...) */
    K_NEXT_NULL,   /* the k-th next returns OK with NULL data and a length of 5 */
    K_CLOSE_FAIL,  /* close returns GW_STATUS_IO_ERROR */
    K_FILE_EAGAIN, /* the k-th read(2) of the file body fails with EAGAIN */
    K_COUNT
};
static const char *const FH_KIND_NAMES[K_COUNT] = {
    "none", "EPIPE", "ECONNRESET", "EIO", "EAGAIN", "EINTR-forever", "zero-progress", "over-report",
    "short-1-byte", "trickle-1-byte", "early-EOF", "status-CLIENT_GONE", "status-APP_ERROR",
    "status-IO_ERROR", "status-INVALID_ARGUMENT", "status-PANIC", "status-999", "status--1",
    "next-fails", "next-NULL-data", "close-fails", "EAGAIN",
};

/* Which kinds apply to which hook (K_NONE ends each list). */
static const int FH_HOOK_KINDS[H_COUNT][12] = {
    [H_NONE] = { K_NONE },
    [H_WRITE] = { K_EPIPE, K_ECONNRESET, K_EIO, K_EAGAIN, K_EINTR, K_ZERO, K_OVER, K_SHORT, K_TRICKLE, K_NONE },
    [H_FLUSH] = { K_EPIPE, K_ECONNRESET, K_EIO, K_EINTR, K_NONE },
    [H_READ] = { K_EPIPE, K_ECONNRESET, K_EIO, K_EINTR, K_OVER, K_SHORT, K_TRICKLE, K_EOF, K_NONE },
    [H_WERR] = { K_EPIPE, K_EIO, K_EINTR, K_ZERO, K_OVER, K_SHORT, K_TRICKLE, K_NONE },
    [H_FERR] = { K_EPIPE, K_EIO, K_EINTR, K_NONE },
    [H_CGI] = { K_ST_CLIENT_GONE, K_ST_APP_ERROR, K_ST_IO_ERROR, K_ST_INVALID_ARGUMENT, K_ST_PANIC,
                K_ST_UNKNOWN, K_ST_NEGATIVE, K_NONE },
    [H_NEXT] = { K_NEXT_FAIL, K_NEXT_NULL, K_NONE },
    [H_CLOSE] = { K_CLOSE_FAIL, K_NONE },
    [H_FILE] = { K_FILE_EAGAIN, K_NONE },
};

enum fh_app {
    A_BYTES,           /* start_response + set_body_bytes */
    A_ITER,            /* iterator "", "alpha ", "beta ", "gamma\n", block_count unknown */
    A_ITER_ONE,        /* iterator "only block\n", block_count 1 (Content-Length computed) */
    A_ITER_ONE_MULTI,  /* iterator "first ", "second\n" claiming block_count 1: Content-Length 6, the
                        * second chunk dropped and logged once */
    A_WRITE_ITER,      /* gw_request_write("head ") + iterator "tail1 ", "tail2\n" */
    A_FILE,            /* a pipe handed over with close_fd = true, block size 4 */
    A_FAIL_BEFORE,     /* start_response, then gw_request_fail before any output */
    A_FAIL_AFTER_WRITE,/* gw_request_write("partial "), then gw_request_fail */
    A_ECHO_READ,       /* reads CONTENT_LENGTH 10 with gw_request_input_read (6 at a time), echoes it */
    A_ECHO_READ_ALL,   /* the same with gw_request_input_read_all */
    A_IGNORE_WRITE,    /* gw_request_write("hello "), gw_request_write("world\n"), ignores failures, returns OK */
    A_FILE_REFUSED,    /* set_body_bytes, then set_body_file(fd, close_fd = true): refused */
    A_RESTART_REFUSED, /* start_response 200, then an exc_info start_response with a bad status */
    A_BIG,             /* iterator: a 20000-byte block, then "end\n" (headers, block, CRLF: separate writes) */
    A_COUNT
};
static const char *const FH_APP_NAMES[A_COUNT] = {
    "bytes", "iter", "iter_count1", "iter_count1_multi", "write+iter", "file", "fail_before_output", "fail_after_write",
    "echo_read", "echo_read_all", "ignore_failed_write", "file_refused", "restart_refused", "big_block",
};

/* ---- one run's context: the host's view and the application's record -------------------- */

typedef struct fh_ctx {
    int app;
    int mode;
    /* the fault */
    int f_hook, f_k, f_kind;
    bool fired;
    size_t wire_at_fire;
    bool out_failed;        /* a write/flush fault that fails the output fired */
    int calls_after_failure;/* write/flush hook calls after that */
    int calls[H_COUNT];
    /* what the client and the error stream got */
    char wire[FH_WIRE_CAP];
    size_t wire_len;
    char err[FH_ERR_CAP];
    size_t err_len;
    bool overflow;
    /* request body */
    size_t in_pos;
    bool read_past_length;
    /* the application's record */
    bool app_called;
    bool iter_set;
    int close_calls;
    bool ended;
    bool next_after_close;
    bool next_after_end;
    int handed_fd;          /* the fd given to set_body_file with close_fd = true (-1: none) */
    int writer_fd;          /* the pipe's write end kept open by a K_FILE_EAGAIN fault */
    gw_status input_status; /* what the failing gw_request_input_* call returned (-1: none failed) */
    gw_status refused_status;      /* A_FILE_REFUSED: what set_body_file returned (-1: not reached) */
    gw_status second_start_status; /* A_RESTART_REFUSED: what the second call returned */
    /* called when the app has made the pipe it hands over (test_faults tracks its closes) */
    void (*on_handover)(int fd);
    /* sabotage switches, to watch the checks fail (see test_faults --sabotage) */
    bool sab_close_uncounted;
    bool sab_stderr_half;
    bool sab_short_drops;
    bool sab_cgi_ignored;
    /* failures found by the oracle */
    int nfails;
    const char *fail_check[FH_MAX_FAILS];
    char fail_msg[FH_MAX_FAILS][400];
} fh_ctx;

static inline void fh_ctx_reset(fh_ctx *c, int app, int mode, int hook, int k, int kind) {
    /* cheap: the buffers are not cleared, only their lengths */
    c->app = app;
    c->mode = mode;
    c->f_hook = hook;
    c->f_k = k;
    c->f_kind = kind;
    c->fired = false;
    c->wire_at_fire = 0;
    c->out_failed = false;
    c->calls_after_failure = 0;
    memset(c->calls, 0, sizeof c->calls);
    c->wire_len = 0;
    c->err_len = 0;
    c->overflow = false;
    c->in_pos = 0;
    c->read_past_length = false;
    c->app_called = false;
    c->iter_set = false;
    c->close_calls = 0;
    c->ended = false;
    c->next_after_close = false;
    c->next_after_end = false;
    c->handed_fd = -1;
    c->writer_fd = -1;
    c->input_status = -1;
    c->refused_status = -1;
    c->second_start_status = -1;
    c->nfails = 0; /* on_handover and the sabotage switches stay: they are configuration */
}

static inline void fh_fail(fh_ctx *c, const char *check, const char *fmt, ...) {
    if (c->nfails >= FH_MAX_FAILS) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->fail_msg[c->nfails], sizeof c->fail_msg[0], fmt, ap);
    va_end(ap);
    c->fail_check[c->nfails++] = check;
}

/* Marks the fault as fired (its k-th call happened). */
static inline void fh_fire(fh_ctx *c) {
    c->fired = true;
    c->wire_at_fire = c->wire_len;
}

/* Whether the fault is on `hook` and applies to call number `n`: 1 at the k-th call,
 * 2 at a later call of a kind that lasts ("from the k-th on"), 0 otherwise. */
static inline int fh_at(fh_ctx *c, int hook, int n) {
    if (c->f_hook != hook || n < c->f_k) return 0;
    if (n == c->f_k) {
        fh_fire(c);
        return 1;
    }
    return (c->f_kind == K_EINTR || c->f_kind == K_TRICKLE || c->f_kind == K_EOF) ? 2 : 0;
}

static inline int fh_errno_of(int kind) {
    switch (kind) {
    case K_EPIPE: return EPIPE;
    case K_ECONNRESET: return ECONNRESET;
    case K_EIO: return EIO;
    case K_EAGAIN: return EAGAIN;
    case K_EINTR: return EINTR;
    default: return 0;
    }
}

/* A write hook over `buf`: the client (write) or the error stream (write_stderr). */
static inline int fh_write_into(fh_ctx *c, int hook, char *buf, size_t *buf_len, size_t cap,
                                const void *data, size_t len, size_t *out_written) {
    int n = ++c->calls[hook];
    if (hook == H_WRITE && c->out_failed) c->calls_after_failure++;
    size_t take = len;
    int at = fh_at(c, hook, n);
    if (at != 0) {
        switch (c->f_kind) {
        case K_TRICKLE:
        case K_SHORT:
            if (take > 1) take = 1;
            if (c->sab_short_drops && at == 1) { /* sabotage: a byte claimed but lost */
                *out_written = take;
                return 0;
            }
            break;
        case K_EINTR:
            if (hook == H_WRITE && at == 1) c->out_failed = true;
            return EINTR;
        case K_ZERO:
        case K_OVER:
            if (hook == H_WRITE) c->out_failed = true;
            if (c->sab_stderr_half && hook == H_WERR && len > 1) {
                /* sabotage: half a line reaches the stream */
                memcpy(buf + *buf_len, data, len / 2);
                *buf_len += len / 2;
            }
            *out_written = c->f_kind == K_ZERO ? 0 : len + 1;
            return 0;
        case K_EAGAIN:
            if (hook == H_WRITE) c->out_failed = true;
            errno = EAGAIN;
            return -1;
        default:
            if (hook == H_WRITE) c->out_failed = true;
            if (c->sab_stderr_half && hook == H_WERR && len > 1) {
                memcpy(buf + *buf_len, data, len / 2);
                *buf_len += len / 2;
            }
            return fh_errno_of(c->f_kind);
        }
    }
    if (*buf_len + take > cap) {
        c->overflow = true;
        return ENOSPC;
    }
    memcpy(buf + *buf_len, data, take);
    *buf_len += take;
    *out_written = take;
    return 0;
}

static inline int fh_hook_write(void *ud, const void *data, size_t len, size_t *out_written) {
    fh_ctx *c = ud;
    return fh_write_into(c, H_WRITE, c->wire, &c->wire_len, sizeof c->wire, data, len, out_written);
}

static inline int fh_hook_write_stderr(void *ud, const void *data, size_t len, size_t *out_written) {
    fh_ctx *c = ud;
    return fh_write_into(c, H_WERR, c->err, &c->err_len, sizeof c->err, data, len, out_written);
}

static inline int fh_flush_common(fh_ctx *c, int hook) {
    int n = ++c->calls[hook];
    if (hook == H_FLUSH && c->out_failed) c->calls_after_failure++;
    if (fh_at(c, hook, n) != 0) {
        if (hook == H_FLUSH) c->out_failed = true;
        return fh_errno_of(c->f_kind);
    }
    return 0;
}

static inline int fh_hook_flush(void *ud) {
    return fh_flush_common(ud, H_FLUSH);
}

static inline int fh_hook_flush_stderr(void *ud) {
    return fh_flush_common(ud, H_FERR);
}

static inline int fh_hook_read(void *ud, void *buf, size_t len, size_t *out_read) {
    fh_ctx *c = ud;
    int n = ++c->calls[H_READ];
    size_t left = FH_LEN(FH_REQ_BODY) - c->in_pos;
    if (len > left) c->read_past_length = true;
    size_t take = len < left ? len : left;
    if (take > FH_READ_CHUNK) take = FH_READ_CHUNK;
    if (fh_at(c, H_READ, n) != 0) {
        switch (c->f_kind) {
        case K_EINTR:
            errno = EINTR; /* the "-1 with errno set" form */
            return -1;
        case K_EOF:
            *out_read = 0;
            return 0;
        case K_OVER:
            *out_read = len + 1;
            return 0;
        case K_SHORT:
        case K_TRICKLE:
            if (take > 1) take = 1;
            break;
        default:
            return fh_errno_of(c->f_kind);
        }
    }
    memcpy(buf, FH_REQ_BODY + c->in_pos, take);
    c->in_pos += take;
    *out_read = take;
    return 0;
}

static inline bool fh_reads_body(int app) {
    return app == A_ECHO_READ || app == A_ECHO_READ_ALL;
}

static inline int32_t fh_set(gw_environ *env, const char *name, const char *value) {
    return gw_environ_set(env, name, strlen(name), value, strlen(value));
}

static inline int32_t fh_hook_add_cgi_vars(void *ud, gw_environ *env) {
    fh_ctx *c = ud;
    int n = ++c->calls[H_CGI];
    int32_t st = fh_set(env, "REQUEST_METHOD", fh_reads_body(c->app) ? "POST" : "GET");
    if (st != GW_STATUS_OK) return st;
    if (fh_at(c, H_CGI, n) == 1 && !c->sab_cgi_ignored) {
        switch (c->f_kind) { /* fails with the environ half built */
        case K_ST_CLIENT_GONE: return GW_STATUS_CLIENT_GONE;
        case K_ST_APP_ERROR: return GW_STATUS_APP_ERROR;
        case K_ST_IO_ERROR: return GW_STATUS_IO_ERROR;
        case K_ST_INVALID_ARGUMENT: return GW_STATUS_INVALID_ARGUMENT;
        case K_ST_PANIC: return GW_STATUS_PANIC;
        case K_ST_UNKNOWN: return 999;
        default: return -1;
        }
    }
    static const char *const vars[][2] = {
        { "SCRIPT_NAME", "" },           { "PATH_INFO", "/faults" }, { "QUERY_STRING", "" },
        { "SERVER_NAME", "localhost" },  { "SERVER_PORT", "8000" },  { "SERVER_PROTOCOL", "HTTP/1.1" },
        { "REMOTE_ADDR", "127.0.0.1" },
    };
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        st = fh_set(env, vars[i][0], vars[i][1]);
        if (st != GW_STATUS_OK) return st;
    }
    if (fh_reads_body(c->app)) {
        st = fh_set(env, "CONTENT_LENGTH", "10");
        if (st == GW_STATUS_OK) st = fh_set(env, "CONTENT_TYPE", "text/plain");
    }
    return st;
}

static inline gw_handler_hooks fh_hooks(fh_ctx *c) {
    gw_handler_hooks hooks = {
        .size = sizeof(gw_handler_hooks),
        .userdata = c,
        .write = fh_hook_write,
        .flush = fh_hook_flush,
        .read_stdin = fh_hook_read,
        .write_stderr = fh_hook_write_stderr,
        .flush_stderr = fh_hook_flush_stderr,
        .add_cgi_vars = fh_hook_add_cgi_vars,
    };
    return hooks;
}

static const gw_header FH_HEADERS[] = {
    { "Content-Type", 12, "text/plain", 10 },
    { "Date", 4, FH_FIXED_DATE, FH_LEN(FH_FIXED_DATE) },
};

/* Puts `h` in `mode`: origin HTTP/1.1, or CGI output. The error page carries a fixed Date, so
 * every byte on the wire is deterministic. */
static inline gw_status fh_configure(gw_handler *h, int mode) {
    gw_status st = gw_handler_set_origin_server(h, mode == M_ORIGIN);
    if (st == GW_STATUS_OK) st = gw_handler_set_http_version(h, mode == M_ORIGIN ? "1.1" : "1.0", 3);
    if (st == GW_STATUS_OK) {
        st = gw_handler_set_error_page(h, "500 Internal Server Error", 25, FH_HEADERS, 2, FH_ERROR_BODY,
                                       FH_LEN(FH_ERROR_BODY));
    }
    return st;
}

static inline gw_handler *fh_new_handler(fh_ctx *c, int mode) {
    gw_handler_hooks hooks = fh_hooks(c);
    gw_handler *h = NULL;
    if (gw_handler_new(&hooks, &h) != GW_STATUS_OK || fh_configure(h, mode) != GW_STATUS_OK) {
        fprintf(stderr, "cannot create a handler: %s\n", gw_last_error_message());
        exit(2);
    }
    return h;
}

/* ---- the applications ----------------------------------------------------------------- */

static const char *const FH_ITER_CHUNKS[] = { "", "alpha ", "beta ", "gamma\n", NULL };
static const char *const FH_ITER_ONE_CHUNKS[] = { "only block\n", NULL };
static const char *const FH_TAIL_CHUNKS[] = { "tail1 ", "tail2\n", NULL };
static const char *const FH_MULTI_CHUNKS[] = { "first ", "second\n", NULL };

static char FH_BIG_CHUNK[FH_BIG_LEN + 1];
static const char *const FH_BIG_CHUNKS[] = { FH_BIG_CHUNK, "end\n", NULL };

static inline const char *const *fh_chunks(int app) {
    switch (app) {
    case A_ITER: return FH_ITER_CHUNKS;
    case A_ITER_ONE: return FH_ITER_ONE_CHUNKS;
    case A_ITER_ONE_MULTI: return FH_MULTI_CHUNKS;
    case A_BIG:
        if (FH_BIG_CHUNK[0] == '\0') memset(FH_BIG_CHUNK, 'x', FH_BIG_LEN);
        return FH_BIG_CHUNKS;
    default: return FH_TAIL_CHUNKS;
    }
}

static inline int32_t fh_iter_next(void *ud, gw_request *req, const void **out_data, size_t *out_len, bool *out_end) {
    fh_ctx *c = ud;
    int n = ++c->calls[H_NEXT];
    if (c->close_calls > 0) c->next_after_close = true;
    if (c->ended) c->next_after_end = true;
    if (fh_at(c, H_NEXT, n) == 1) {
        if (c->f_kind == K_NEXT_FAIL) return gw_request_fail(req, "iterator failed", 15);
        *out_data = NULL;
        *out_len = 5;
        return GW_STATUS_OK;
    }
    const char *const *chunks = fh_chunks(c->app);
    for (int i = 0; i < n - 1; i++) {
        if (chunks[i] == NULL) { /* asked again after the end */
            *out_end = true;
            return GW_STATUS_OK;
        }
    }
    if (chunks[n - 1] == NULL) {
        c->ended = true;
        *out_end = true;
        return GW_STATUS_OK;
    }
    *out_data = chunks[n - 1];
    *out_len = strlen(chunks[n - 1]);
    return GW_STATUS_OK;
}

static inline bool fh_iter_count(void *ud, size_t *out_count) {
    fh_ctx *c = ud;
    if (c->app != A_ITER_ONE && c->app != A_ITER_ONE_MULTI) return false;
    *out_count = 1;
    return true;
}

static inline int32_t fh_iter_close(void *ud) {
    fh_ctx *c = ud;
    int n = ++c->calls[H_CLOSE];
    if (!c->sab_close_uncounted) c->close_calls++;
    if (fh_at(c, H_CLOSE, n) == 1) return GW_STATUS_IO_ERROR;
    return GW_STATUS_OK;
}

static inline gw_status fh_start(gw_request *req) {
    return gw_request_start_response(req, "200 OK", 6, FH_HEADERS, 2, 0);
}

static inline gw_status fh_set_iter(fh_ctx *c, gw_request *req) {
    gw_body_iter iter = { sizeof(gw_body_iter), c, fh_iter_next, fh_iter_count, fh_iter_close };
    gw_status st = gw_request_set_body_iter(req, &iter);
    c->iter_set = st == GW_STATUS_OK;
    return st;
}

/* A pipe holding the file body, its read end handed over with close_fd = true. With a
 * K_FILE_EAGAIN fault on read k, only the blocks before it are there, the read end is
 * non-blocking and the write end stays open, so read k fails with EAGAIN. */
static inline gw_status fh_file_body(fh_ctx *c, gw_request *req, bool refused) {
    int p[2];
    if (pipe(p) != 0) {
        perror("pipe");
        exit(2);
    }
    size_t avail = FH_LEN(FH_FILE_BODY);
    bool keep_writer = false;
    if (!refused) c->calls[H_FILE] = FH_FILE_READS; /* what a healthy run reads */
    if (!refused && c->f_hook == H_FILE && c->f_k <= FH_FILE_READS) {
        size_t before = (size_t)(c->f_k - 1) * FH_FILE_BLOCK;
        if (before < avail) avail = before;
        keep_writer = true;
        fh_fire(c);
    }
    if (avail > 0 && write(p[1], FH_FILE_BODY, avail) != (ssize_t)avail) {
        perror("write");
        exit(2);
    }
    if (keep_writer) {
        if (fcntl(p[0], F_SETFL, O_NONBLOCK) != 0) {
            perror("fcntl");
            exit(2);
        }
        c->writer_fd = p[1];
    } else {
        close(p[1]);
    }
    c->handed_fd = p[0];
    if (c->on_handover != NULL) c->on_handover(p[0]);
    return gw_request_set_body_file(req, p[0], refused ? 0 : FH_FILE_BLOCK, true);
}

static inline int32_t fh_echo(gw_request *req, const char *data, size_t len) {
    char line[64];
    int n = snprintf(line, sizeof line, "app: echo %zu bytes\n", len);
    (void)gw_request_errors_write(req, line, (size_t)n); /* a failing log does not fail the request */
    (void)gw_request_errors_flush(req);
    gw_status st = fh_start(req);
    if (st != GW_STATUS_OK) return st;
    return gw_request_set_body_bytes(req, data, len);
}

static inline int32_t fh_app(void *ud, gw_request *req) {
    fh_ctx *c = ud;
    c->app_called = true;
    gw_status st;
    switch (c->app) {
    case A_BYTES:
        st = fh_start(req);
        if (st != GW_STATUS_OK) return st;
        return gw_request_set_body_bytes(req, "Hello, bytes!\n", 14);
    case A_ITER:
    case A_ITER_ONE:
    case A_ITER_ONE_MULTI:
    case A_BIG:
        st = fh_start(req);
        if (st != GW_STATUS_OK) return st;
        return fh_set_iter(c, req);
    case A_WRITE_ITER:
        st = fh_start(req);
        if (st == GW_STATUS_OK) st = gw_request_write(req, "head ", 5);
        if (st != GW_STATUS_OK) return st;
        return fh_set_iter(c, req);
    case A_FILE:
        st = fh_start(req);
        if (st != GW_STATUS_OK) return st;
        return fh_file_body(c, req, false);
    case A_FAIL_BEFORE:
        st = fh_start(req);
        if (st != GW_STATUS_OK) return st;
        return gw_request_fail(req, "fail before output", 18);
    case A_FAIL_AFTER_WRITE:
        st = fh_start(req);
        if (st == GW_STATUS_OK) st = gw_request_write(req, "partial ", 8);
        if (st != GW_STATUS_OK) return st;
        return gw_request_fail(req, "fail after write", 16);
    case A_ECHO_READ: {
        char data[32];
        size_t got = 0;
        for (;;) {
            size_t n = 0;
            st = gw_request_input_read(req, data + got, 6, &n);
            if (st != GW_STATUS_OK) {
                c->input_status = st;
                return st;
            }
            if (n == 0) break;
            got += n;
            if (got + 6 > sizeof data) return gw_request_fail(req, "read past CONTENT_LENGTH", 24);
        }
        return fh_echo(req, data, got);
    }
    case A_ECHO_READ_ALL: {
        const char *data = NULL;
        size_t len = 0;
        st = gw_request_input_read_all(req, &data, &len);
        if (st != GW_STATUS_OK) {
            c->input_status = st;
            return st;
        }
        char copy[32];
        if (len > sizeof copy) return gw_request_fail(req, "read past CONTENT_LENGTH", 24);
        memcpy(copy, data, len);
        return fh_echo(req, copy, len);
    }
    case A_IGNORE_WRITE:
        st = fh_start(req);
        if (st != GW_STATUS_OK) return st;
        (void)gw_request_write(req, "hello ", 6);
        (void)gw_request_write(req, "world\n", 6);
        return GW_STATUS_OK;
    case A_FILE_REFUSED:
        st = fh_start(req);
        if (st == GW_STATUS_OK) st = gw_request_set_body_bytes(req, "refused file\n", 13);
        if (st != GW_STATUS_OK) return st;
        c->refused_status = fh_file_body(c, req, true);
        return GW_STATUS_OK; /* the bytes body stands */
    case A_RESTART_REFUSED:
        st = fh_start(req);
        if (st != GW_STATUS_OK) return st;
        c->second_start_status = gw_request_start_response(req, "2000 Bad", 8, FH_HEADERS, 2, GW_START_RESPONSE_EXC_INFO);
        return gw_request_set_body_bytes(req, "kept first status\n", 18);
    default:
        return gw_request_fail(req, "no such app", 11);
    }
}

/* ---- expected healthy output (the fixed behaviour, spelled out) ------------------------- */

typedef struct fh_buf {
    char d[FH_WIRE_CAP];
    size_t n;
} fh_buf;

static inline void fh_put(fh_buf *b, const char *s, size_t n) {
    if (b->n + n > sizeof b->d) abort();
    memcpy(b->d + b->n, s, n);
    b->n += n;
}

static inline void fh_puts(fh_buf *b, const char *s) {
    fh_put(b, s, strlen(s));
}

static inline void fh_putf(fh_buf *b, const char *fmt, ...) {
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    fh_put(b, tmp, (size_t)n);
}

typedef struct fh_expect {
    gw_status status;
    fh_buf wire;
    char err[256];
    bool keep_alive;
} fh_expect;

/* The error page as the handler is configured (fh_configure). `connection_close`: an origin
 * server may end its head with `Connection: close` (the page never keeps the connection); both
 * forms are accepted wherever the page is expected. */
static inline void fh_expect_error_page(fh_buf *b, int mode, bool connection_close) {
    b->n = 0;
    fh_puts(b, mode == M_ORIGIN ? "HTTP/1.1 500 Internal Server Error\r\n" : "Status: 500 Internal Server Error\r\n");
    fh_puts(b, "Content-Type: text/plain\r\nDate: " FH_FIXED_DATE "\r\nContent-Length: 59\r\n");
    if (connection_close && mode == M_ORIGIN) fh_puts(b, "Connection: close\r\n");
    fh_puts(b, "\r\n" FH_ERROR_BODY);
}

/* The preamble of a 200 with the apps' headers; `length` < 0: unknown. */
static inline void fh_expect_head(fh_buf *b, int mode, long length) {
    fh_puts(b, mode == M_ORIGIN ? "HTTP/1.1 200 OK\r\n" : "Status: 200 OK\r\n");
    fh_puts(b, "Content-Type: text/plain\r\nDate: " FH_FIXED_DATE "\r\n");
    if (length >= 0) fh_putf(b, "Content-Length: %ld\r\n", length);
    else if (mode == M_ORIGIN) fh_puts(b, "Transfer-Encoding: chunked\r\n");
    fh_puts(b, "\r\n");
}

/* Body blocks of unknown length: chunks in origin HTTP/1.1, raw in CGI. */
static inline void fh_expect_blocks(fh_buf *b, int mode, const char *const *blocks, bool last_chunk) {
    for (; *blocks != NULL; blocks++) {
        size_t n = strlen(*blocks);
        if (n == 0) continue;
        if (mode == M_ORIGIN) fh_putf(b, "%zx\r\n", n);
        fh_put(b, *blocks, n);
        if (mode == M_ORIGIN) fh_puts(b, "\r\n");
    }
    if (last_chunk && mode == M_ORIGIN) fh_puts(b, "0\r\n\r\n");
}

static inline void fh_expected(int app, int mode, fh_expect *e) {
    fh_buf *b = &e->wire;
    b->n = 0;
    e->status = GW_STATUS_OK;
    e->err[0] = '\0';
    switch (app) {
    case A_BYTES:
        fh_expect_head(b, mode, 14);
        fh_puts(b, "Hello, bytes!\n");
        break;
    case A_ITER:
        fh_expect_head(b, mode, -1);
        fh_expect_blocks(b, mode, FH_ITER_CHUNKS, true);
        break;
    case A_ITER_ONE:
        fh_expect_head(b, mode, 11);
        fh_puts(b, "only block\n");
        break;
    case A_ITER_ONE_MULTI:
        fh_expect_head(b, mode, 6);
        fh_puts(b, "first ");
        snprintf(e->err, sizeof e->err, "gateway: response body longer than its Content-Length; the extra bytes were dropped\n");
        break;
    case A_WRITE_ITER: {
        static const char *const blocks[] = { "head ", "tail1 ", "tail2\n", NULL };
        fh_expect_head(b, mode, -1);
        fh_expect_blocks(b, mode, blocks, true);
        break;
    }
    case A_FILE: {
        static const char *const blocks[] = { "file", "-bod", "y:ab", "cdef", "g\n", NULL };
        fh_expect_head(b, mode, -1);
        fh_expect_blocks(b, mode, blocks, true);
        break;
    }
    case A_FAIL_BEFORE:
        fh_expect_error_page(b, mode, false);
        e->status = GW_STATUS_APP_ERROR;
        snprintf(e->err, sizeof e->err, "gateway: application error: fail before output\n");
        break;
    case A_FAIL_AFTER_WRITE: {
        static const char *const blocks[] = { "partial ", NULL };
        fh_expect_head(b, mode, -1);
        fh_expect_blocks(b, mode, blocks, false);
        e->status = GW_STATUS_RESPONSE_INCOMPLETE;
        snprintf(e->err, sizeof e->err, "gateway: response cut short: fail after write\n");
        break;
    }
    case A_ECHO_READ:
    case A_ECHO_READ_ALL:
        fh_expect_head(b, mode, 10);
        fh_puts(b, FH_REQ_BODY);
        snprintf(e->err, sizeof e->err, "app: echo 10 bytes\n");
        break;
    case A_IGNORE_WRITE: {
        static const char *const blocks[] = { "hello ", "world\n", NULL };
        fh_expect_head(b, mode, -1);
        fh_expect_blocks(b, mode, blocks, true);
        break;
    }
    case A_FILE_REFUSED:
        fh_expect_head(b, mode, 13);
        fh_puts(b, "refused file\n");
        break;
    case A_RESTART_REFUSED:
        fh_expect_head(b, mode, 18);
        fh_puts(b, "kept first status\n");
        break;
    case A_BIG:
        fh_expect_head(b, mode, -1);
        fh_expect_blocks(b, mode, fh_chunks(A_BIG), true);
        break;
    default:
        break;
    }
    e->keep_alive = mode == M_ORIGIN && e->status == GW_STATUS_OK;
}

/* ---- what the wire holds ---------------------------------------------------------------- */

enum fh_frame {
    FR_EMPTY,      /* nothing */
    FR_INCOMPLETE, /* the headers or a framed body are cut short: a client can tell */
    FR_COMPLETE,   /* a complete Content-Length or chunked response, nothing after it */
    FR_UNFRAMED,   /* headers complete, body delimited only by the connection's end */
    FR_MALFORMED,  /* bytes past the framed end, or framing that does not parse */
};
static const char *const FH_FRAME_NAMES[] = { "empty", "incomplete", "complete", "unframed", "malformed" };

static inline bool fh_header_is(const char *line, size_t len, const char *name) {
    size_t n = strlen(name);
    if (len < n + 1 || line[n] != ':') return false;
    for (size_t i = 0; i < n; i++) {
        char a = line[i], b = name[i];
        if (a >= 'A' && a <= 'Z') a = (char)(a - 'A' + 'a');
        if (b >= 'A' && b <= 'Z') b = (char)(b - 'A' + 'a');
        if (a != b) return false;
    }
    return true;
}

static inline const char *fh_find(const char *hay, size_t hay_len, const char *needle) {
    size_t n = strlen(needle);
    for (size_t i = 0; i + n <= hay_len; i++) {
        if (memcmp(hay + i, needle, n) == 0) return hay + i;
    }
    return NULL;
}

/* Parses one response (status line or CGI Status, headers, framed body). */
static inline int fh_frame(const char *w, size_t n, char *why, size_t why_cap) {
    why[0] = '\0';
    if (n == 0) return FR_EMPTY;
    const char *end = fh_find(w, n, "\r\n\r\n");
    if (end == NULL) {
        snprintf(why, why_cap, "headers cut short");
        return FR_INCOMPLETE;
    }
    const char *body = end + 4;
    size_t body_len = n - (size_t)(body - w);
    bool chunked = false;
    long long length = -1;
    const char *line = w;
    while (line < end + 2) {
        const char *eol = fh_find(line, (size_t)(end + 2 - line), "\r\n");
        size_t len = (size_t)(eol - line);
        if (fh_header_is(line, len, "content-length")) {
            length = 0;
            for (size_t i = 15; i < len; i++) {
                if (line[i] >= '0' && line[i] <= '9') length = length * 10 + (line[i] - '0');
            }
        } else if (fh_header_is(line, len, "transfer-encoding")) {
            chunked = fh_find(line, len, "chunked") != NULL;
        }
        line = eol + 2;
    }
    if (chunked) {
        size_t pos = 0;
        for (;;) {
            const char *eol = fh_find(body + pos, body_len - pos, "\r\n");
            if (eol == NULL) {
                snprintf(why, why_cap, "chunk size line cut short at body byte %zu", pos);
                return FR_INCOMPLETE;
            }
            size_t size = 0;
            const char *p = body + pos;
            if (p == eol) {
                snprintf(why, why_cap, "empty chunk size line at body byte %zu", pos);
                return FR_MALFORMED;
            }
            for (; p < eol; p++) {
                int d = (*p >= '0' && *p <= '9') ? *p - '0' : (*p >= 'a' && *p <= 'f') ? *p - 'a' + 10 : -1;
                if (d < 0) {
                    snprintf(why, why_cap, "bad chunk size at body byte %zu", pos);
                    return FR_MALFORMED;
                }
                size = size * 16 + (size_t)d;
            }
            pos = (size_t)(eol - body) + 2;
            if (size == 0) {
                if (body_len - pos < 2) {
                    snprintf(why, why_cap, "last chunk without its final CRLF");
                    return FR_INCOMPLETE;
                }
                if (memcmp(body + pos, "\r\n", 2) != 0) {
                    snprintf(why, why_cap, "trailers after the last chunk");
                    return FR_MALFORMED;
                }
                if (body_len - pos > 2) {
                    snprintf(why, why_cap, "%zu bytes after the last chunk", body_len - pos - 2);
                    return FR_MALFORMED;
                }
                snprintf(why, why_cap, "chunked, with the last chunk 0\\r\\n\\r\\n");
                return FR_COMPLETE;
            }
            if (body_len - pos < size + 2) {
                snprintf(why, why_cap, "chunk of %zu bytes cut short", size);
                return FR_INCOMPLETE;
            }
            if (memcmp(body + pos + size, "\r\n", 2) != 0) {
                snprintf(why, why_cap, "chunk of %zu bytes not followed by CRLF", size);
                return FR_MALFORMED;
            }
            pos += size + 2;
        }
    }
    if (length >= 0) {
        if ((long long)body_len < length) {
            snprintf(why, why_cap, "Content-Length %lld, %zu body bytes", length, body_len);
            return FR_INCOMPLETE;
        }
        if ((long long)body_len > length) {
            snprintf(why, why_cap, "Content-Length %lld, %zu body bytes (extra bytes)", length, body_len);
            return FR_MALFORMED;
        }
        snprintf(why, why_cap, "Content-Length %lld, all there", length);
        return FR_COMPLETE;
    }
    snprintf(why, why_cap, "no Content-Length, not chunked: %zu body bytes up to the close", body_len);
    return FR_UNFRAMED;
}

/* ---- the reference: a healthy run on a fresh handler ------------------------------------ */

static inline bool fh_same(const char *a, size_t an, const char *b, size_t bn) {
    return an == bn && memcmp(a, b, an) == 0;
}

static inline bool fh_prefix(const char *a, size_t an, const char *b, size_t bn) {
    return an <= bn && memcmp(a, b, an) == 0;
}


typedef struct fh_ref {
    gw_status status;
    bool keep_alive;
    uint16_t code;
    uint64_t body_bytes;
    int calls[H_COUNT];
    char wire[FH_WIRE_CAP];
    size_t wire_len;
    char err[FH_ERR_CAP];
    size_t err_len;
    fh_buf error_page;       /* the page ... */
    fh_buf error_page_close; /* ... and the page with `Connection: close` (origin) */
} fh_ref;

static inline void fh_ref_take(fh_ref *r, const fh_ctx *c, gw_status st, gw_handler *h) {
    r->status = st;
    if (gw_handler_last_keep_alive(h, &r->keep_alive) != GW_STATUS_OK) r->keep_alive = true;
    if (gw_handler_last_response(h, &r->code, &r->body_bytes) != GW_STATUS_OK) r->code = 0;
    memcpy(r->calls, c->calls, sizeof r->calls);
    memcpy(r->wire, c->wire, c->wire_len);
    r->wire_len = c->wire_len;
    memcpy(r->err, c->err, c->err_len);
    r->err_len = c->err_len;
    fh_expect_error_page(&r->error_page, c->mode, false);
    fh_expect_error_page(&r->error_page_close, c->mode, true);
}

/* Whether `w` is the error page (or a prefix of it, with `prefix`), in either form. */
static inline bool fh_is_error_page(const fh_ref *r, const char *w, size_t n, bool prefix) {
    if (prefix)
        return fh_prefix(w, n, r->error_page.d, r->error_page.n) || fh_prefix(w, n, r->error_page_close.d, r->error_page_close.n);
    return fh_same(w, n, r->error_page.d, r->error_page.n) || fh_same(w, n, r->error_page_close.d, r->error_page_close.n);
}

/* ---- checks ------------------------------------------------------------------------------ */

static inline bool fh_status_known(gw_status st) {
    return st == GW_STATUS_OK || st == GW_STATUS_APP_ERROR || st == GW_STATUS_RESPONSE_INCOMPLETE ||
           st == GW_STATUS_CLIENT_GONE || st == GW_STATUS_IO_ERROR;
}

static inline const char *fh_status_name(gw_status st) {
    switch (st) {
    case GW_STATUS_OK: return "OK";
    case GW_STATUS_APP_ERROR: return "APP_ERROR";
    case GW_STATUS_RESPONSE_INCOMPLETE: return "RESPONSE_INCOMPLETE";
    case GW_STATUS_CLIENT_GONE: return "CLIENT_GONE";
    case GW_STATUS_IO_ERROR: return "IO_ERROR";
    case GW_STATUS_INPUT_ERROR: return "INPUT_ERROR";
    case GW_STATUS_INVALID_STATE: return "INVALID_STATE";
    case GW_STATUS_INVALID_STATUS_LINE: return "INVALID_STATUS_LINE";
    case GW_STATUS_PANIC: return "PANIC";
    default: return gw_status_str(st);
    }
}

/* Whether the stream is made of whole lines only, each "gateway: ..." or "app: ...", with no
 * control byte inside a line. */
static inline bool fh_whole_lines(const char *s, size_t n, char *why, size_t why_cap) {
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\n') {
            size_t len = i - start;
            if (!(len >= 9 && memcmp(s + start, "gateway: ", 9) == 0) && !(len >= 5 && memcmp(s + start, "app: ", 5) == 0)) {
                snprintf(why, why_cap, "line at byte %zu is neither 'gateway: ...' nor 'app: ...'", start);
                return false;
            }
            start = i + 1;
        } else if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) {
            snprintf(why, why_cap, "control byte 0x%02x inside a line at byte %zu", (unsigned char)s[i], i);
            return false;
        }
    }
    if (start != n) {
        snprintf(why, why_cap, "the stream ends with half a line (%zu bytes after the last newline)", n - start);
        return false;
    }
    return true;
}

/* Whether every line of `s` is, in order, a line of `ref` (lines may be missing, never cut). */
static inline bool fh_line_subsequence(const char *s, size_t n, const char *ref, size_t ref_n) {
    size_t rp = 0, start = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '\n') continue;
        size_t len = i + 1 - start;
        bool found = false;
        while (rp < ref_n) {
            const char *eol = memchr(ref + rp, '\n', ref_n - rp);
            size_t rlen = eol == NULL ? ref_n - rp : (size_t)(eol - (ref + rp)) + 1;
            bool match = rlen == len && memcmp(ref + rp, s + start, len) == 0;
            rp += rlen;
            if (match) {
                found = true;
                break;
            }
        }
        if (!found) return false;
        start = i + 1;
    }
    return start == n;
}

static inline int fh_count_prefix(const char *s, size_t n, const char *prefix) {
    int count = 0;
    size_t pl = strlen(prefix), start = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '\n') continue;
        if (i - start >= pl && memcmp(s + start, prefix, pl) == 0) count++;
        start = i + 1;
    }
    return count;
}

/* What the fault should lead to. */
enum fh_class {
    C_NONE,       /* no fault fired: everything as the reference */
    C_NEUTRAL,    /* short I/O, stderr faults, a failing close: status and wire as the reference */
    C_DISCONNECT, /* EPIPE/ECONNRESET (or add_cgi_vars saying CLIENT_GONE): CLIENT_GONE, quiet */
    C_OUTPUT,     /* a write/flush failure: IO_ERROR, logged, nothing written after it */
    C_INPUT,      /* a read failure or early end: the app's read fails, APP_ERROR with the page */
    C_SETUP,      /* add_cgi_vars fails: APP_ERROR with the page, the app never called */
    C_APP,        /* the iterator or the file body fails: the page before output, else cut short */
};
static const char *const FH_CLASS_NAMES[] = { "none", "neutral", "disconnect", "output-error", "input-error",
                                             "setup-error", "app-error" };

static inline int fh_class_of(const fh_ctx *c) {
    if (!c->fired) return C_NONE;
    int k = c->f_kind;
    switch (c->f_hook) {
    case H_WRITE:
    case H_FLUSH:
        if (k == K_SHORT || k == K_TRICKLE) return C_NEUTRAL;
        if (k == K_EPIPE || k == K_ECONNRESET) return C_DISCONNECT;
        return C_OUTPUT;
    case H_READ:
        if (k == K_SHORT || k == K_TRICKLE) return C_NEUTRAL;
        if (k == K_EPIPE || k == K_ECONNRESET) return C_DISCONNECT;
        return C_INPUT;
    case H_WERR:
    case H_FERR:
    case H_CLOSE:
        return C_NEUTRAL;
    case H_CGI:
        return k == K_ST_CLIENT_GONE ? C_DISCONNECT : C_SETUP;
    default:
        return C_APP;
    }
}

/* Checks one run (the fault described in `c`) against the reference `r` of its app and mode.
 * `ka`, `code`, `body_bytes`: what the handler reported afterwards. Failures go to c->fail_*. */
static inline void fh_check_run(fh_ctx *c, const fh_ref *r, gw_status st, bool ka, uint16_t code, uint64_t body_bytes) {
    int cls = fh_class_of(c);
    char why[256];
    bool stderr_fault = c->fired && (c->f_hook == H_WERR || c->f_hook == H_FERR);

    if (c->overflow) fh_fail(c, "host", "a hook buffer overflowed");

    /* the status: one of the five, and the one the fault means */
    if (!fh_status_known(st)) fh_fail(c, "status", "run returned %d (%s)", st, fh_status_name(st));
    gw_status want = -1; /* -1: decided below */
    switch (cls) {
    case C_NONE:
    case C_NEUTRAL: want = r->status; break;
    case C_DISCONNECT: want = GW_STATUS_CLIENT_GONE; break;
    case C_OUTPUT: want = GW_STATUS_IO_ERROR; break;
    case C_INPUT:
    case C_SETUP: want = GW_STATUS_APP_ERROR; break;
    case C_APP:
        if (c->f_hook == H_FILE) want = c->f_k == 1 ? GW_STATUS_APP_ERROR : GW_STATUS_RESPONSE_INCOMPLETE;
        else want = c->wire_at_fire == 0 ? GW_STATUS_APP_ERROR : GW_STATUS_RESPONSE_INCOMPLETE;
        break;
    default: break;
    }
    if (st != want) {
        fh_fail(c, "status", "run returned %s, the fault (%s) means %s", fh_status_name(st), FH_CLASS_NAMES[cls],
                fh_status_name(want));
    }

    /* the wire */
    int frame = fh_frame(c->wire, c->wire_len, why, sizeof why);
    if (frame == FR_MALFORMED) fh_fail(c, "wire-framing", "malformed response on the wire: %s", why);
    if (st == GW_STATUS_OK) {
        if (!fh_same(c->wire, c->wire_len, r->wire, r->wire_len))
            fh_fail(c, "wire-ok", "status OK but the wire differs from the healthy run's");
    } else if (st == GW_STATUS_APP_ERROR) {
        if (!fh_is_error_page(r, c->wire, c->wire_len, false))
            fh_fail(c, "wire-app-error", "APP_ERROR but the wire is not exactly the error page");
    } else {
        bool cut_of_ref = fh_prefix(c->wire, c->wire_len, r->wire, r->wire_len);
        bool cut_of_page = fh_is_error_page(r, c->wire, c->wire_len, true);
        if (!cut_of_ref && !cut_of_page)
            fh_fail(c, "wire-cut", "%s: the wire is neither a prefix of the healthy response nor of the error page",
                    fh_status_name(st));
        if (frame == FR_COMPLETE && !fh_same(c->wire, c->wire_len, r->wire, r->wire_len))
            fh_fail(c, "wire-cut", "%s: the wire holds a complete response (%s) that is not the healthy one",
                    fh_status_name(st), why);
        if (cls == C_APP && c->f_hook != H_FILE && st == GW_STATUS_RESPONSE_INCOMPLETE && c->wire_len != c->wire_at_fire)
            fh_fail(c, "wire-cut", "%zu bytes written after the body iterator failed", c->wire_len - c->wire_at_fire);
    }
    if ((cls == C_NONE || cls == C_NEUTRAL) && st != GW_STATUS_OK && !fh_same(c->wire, c->wire_len, r->wire, r->wire_len))
        fh_fail(c, "wire-same", "the fault (%s) must not change the response, but the wire differs from the healthy run's",
                FH_CLASS_NAMES[cls]);
    if (c->out_failed && c->wire_len != c->wire_at_fire)
        fh_fail(c, "write-after-failure", "%zu bytes reached the wire after the failed %s call",
                c->wire_len - c->wire_at_fire, FH_HOOK_NAMES[c->f_hook]);
    if (c->out_failed) {
        int limit = c->f_kind == K_EINTR && c->f_hook == H_WRITE ? FH_EINTR_RETRIES : 0;
        if (c->calls_after_failure > limit)
            fh_fail(c, "write-after-failure", "%d write/flush hook calls after the failed %s call (allowed: %d)",
                    c->calls_after_failure, FH_HOOK_NAMES[c->f_hook], limit);
        if (c->f_kind == K_EINTR && c->f_hook == H_WRITE && c->calls_after_failure < 1)
            fh_fail(c, "write-after-failure", "EINTR from the write hook was not retried");
    }

    /* the error stream */
    int gw_lines = fh_count_prefix(c->err, c->err_len, "gateway: ");
    if (!fh_whole_lines(c->err, c->err_len, why, sizeof why)) fh_fail(c, "stderr-lines", "%s", why);
    if (stderr_fault || (c->fired && c->f_hook == H_CLOSE)) {
        if (c->f_hook == H_CLOSE) {
            if (gw_lines != fh_count_prefix(r->err, r->err_len, "gateway: ") + 1)
                fh_fail(c, "stderr-logged", "a failing close was not logged in exactly one line");
        } else if (!fh_line_subsequence(c->err, c->err_len, r->err, r->err_len)) {
            fh_fail(c, "stderr-lines", "the stream is not made of the healthy run's lines (some dropped, none cut)");
        }
    } else if (cls == C_NONE || (cls == C_NEUTRAL && c->f_hook != H_CLOSE)) {
        if (!fh_same(c->err, c->err_len, r->err, r->err_len))
            fh_fail(c, "stderr-logged", "the error stream differs from the healthy run's");
    } else if (st == GW_STATUS_CLIENT_GONE) {
        if (!fh_prefix(c->err, c->err_len, r->err, r->err_len))
            fh_fail(c, "stderr-logged", "CLIENT_GONE, yet something was logged beyond the healthy run's lines");
    } else if (st != GW_STATUS_OK && gw_lines == 0) {
        fh_fail(c, "stderr-logged", "%s, yet nothing was logged", fh_status_name(st));
    }

    /* keep-alive and the access-log numbers */
    if (st != GW_STATUS_OK && ka) fh_fail(c, "keep-alive", "keep-alive true after %s", fh_status_name(st));
    if (st == GW_STATUS_OK && ka != r->keep_alive)
        fh_fail(c, "keep-alive", "keep-alive %d, the healthy run's is %d", ka, r->keep_alive);
    if (st == GW_STATUS_OK && (code != r->code || body_bytes != r->body_bytes))
        fh_fail(c, "last-response", "last_response %u/%llu, the healthy run's %u/%llu", code,
                (unsigned long long)body_bytes, r->code, (unsigned long long)r->body_bytes);

    /* the body's close and the app's view */
    if (c->iter_set && c->close_calls != 1)
        fh_fail(c, "iter-close", "set_body_iter succeeded, close ran %d times", c->close_calls);
    if (!c->iter_set && c->close_calls != 0)
        fh_fail(c, "iter-close", "close ran %d times for an iterator never handed over", c->close_calls);
    if (c->next_after_close) fh_fail(c, "iter-close", "next called after close");
    if (c->next_after_end) fh_fail(c, "iter-close", "next called again after the end");
    if (c->read_past_length) fh_fail(c, "input", "the read hook was asked for bytes past CONTENT_LENGTH");
    if (cls == C_INPUT) {
        bool ok = c->input_status == GW_STATUS_INPUT_ERROR ||
                  (c->f_kind == K_OVER && c->input_status == GW_STATUS_IO_ERROR);
        if (!ok) fh_fail(c, "input", "gw_request_input_* returned %s after the read hook's %s (want INPUT_ERROR)",
                         c->input_status == -1 ? "no failure" : fh_status_name(c->input_status), FH_KIND_NAMES[c->f_kind]);
    }
    if (cls == C_DISCONNECT && c->f_hook == H_READ && c->input_status != GW_STATUS_CLIENT_GONE)
        fh_fail(c, "input", "gw_request_input_* returned %s after a disconnect (want CLIENT_GONE)",
                c->input_status == -1 ? "no failure" : fh_status_name(c->input_status));
    if (c->fired && c->f_hook == H_CGI && c->app_called) fh_fail(c, "setup", "the app ran although add_cgi_vars failed");
    if (c->fired && c->f_hook == H_CGI && c->f_kind == K_ST_CLIENT_GONE && (c->wire_len != 0 || c->err_len != 0))
        fh_fail(c, "setup", "add_cgi_vars said CLIENT_GONE, yet %zu bytes went to the client and %zu to the log",
                c->wire_len, c->err_len);
    if (cls == C_NONE && memcmp(c->calls, r->calls, sizeof c->calls) != 0) {
        char got[160] = "", ref[160] = "";
        for (int i = H_WRITE; i < H_COUNT; i++) {
            size_t gl = strlen(got), rl = strlen(ref);
            snprintf(got + gl, sizeof got - gl, " %s=%d", FH_HOOK_NAMES[i], c->calls[i]);
            snprintf(ref + rl, sizeof ref - rl, " %s=%d", FH_HOOK_NAMES[i], r->calls[i]);
        }
        fh_fail(c, "calls", "hook calls differ from the healthy run's:%s; healthy:%s", got, ref);
    }
    if (c->refused_status != -1 && c->refused_status != GW_STATUS_INVALID_STATE)
        fh_fail(c, "refusal", "set_body_file after a body returned %s (want INVALID_STATE)", fh_status_name(c->refused_status));
    if (c->second_start_status != -1 && c->second_start_status != GW_STATUS_INVALID_STATUS_LINE)
        fh_fail(c, "refusal", "the exc_info start_response with a bad status returned %s (want INVALID_STATUS_LINE)",
                fh_status_name(c->second_start_status));
}

/* Whether `fd` is closed (not a valid descriptor any more). */
static inline bool fh_fd_closed(int fd) {
    return fcntl(fd, F_GETFD) == -1 && errno == EBADF;
}

/* Prints `n` bytes with \r, \n, \t, \\, \" and \xNN escapes, at most `max` bytes. */
static inline void fh_print_escaped(FILE *f, const char *s, size_t n, size_t max) {
    fputc('"', f);
    for (size_t i = 0; i < n && i < max; i++) {
        unsigned char ch = (unsigned char)s[i];
        switch (ch) {
        case '\r': fputs("\\r", f); break;
        case '\n': fputs("\\n", f); break;
        case '\t': fputs("\\t", f); break;
        case '\\': fputs("\\\\", f); break;
        case '"': fputs("\\\"", f); break;
        default:
            if (ch < 0x20 || ch >= 0x7f) fprintf(f, "\\x%02x", ch);
            else fputc(ch, f);
        }
    }
    fputc('"', f);
    if (n > max) fprintf(f, "... (%zu bytes)", n);
}

#endif
