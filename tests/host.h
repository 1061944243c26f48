/* A memory-backed host for the C harness: captures what the library writes to the client
 * and to the error stream, serves a request body from memory, adds CGI variables from a
 * list, and can be told to write a few bytes at a time or to fail with an errno. */
#ifndef GATEWAY_TEST_HOST_H
#define GATEWAY_TEST_HOST_H

#include <stdbool.h>
#include <stddef.h>

#include "gateway.h"

#define HOST_BUF 65536

typedef struct test_host {
    char out[HOST_BUF];
    size_t out_len;
    int write_calls;
    int flush_calls;
    size_t max_write;      /* > 0: take at most this many bytes per write call */
    int fail_errno;        /* != 0: fail writes with this errno ... */
    size_t fail_after;     /* ... once this many bytes were taken */
    bool zero_progress;    /* report 0 bytes written */
    int flush_errno;       /* != 0: flush fails with this errno */
    int write_eintr;       /* this many write calls fail with EINTR first */
    int fail_call;         /* > 0: write call number fail_call (from 1) fails ... */
    int fail_call_errno;   /* ... with this errno, once; later calls succeed again */

    const char *in;        /* the request body the client sends */
    size_t in_len;
    size_t in_pos;
    size_t max_read;       /* > 0: give at most this many bytes per read call */
    int read_calls;
    size_t out_len_at_first_read; /* what had been written when the body was first read */
    int read_errno;        /* != 0: reads fail with this errno */
    int read_eintr;        /* this many read calls fail with EINTR first */

    char err[HOST_BUF];
    size_t err_len;
    int err_write_calls;
    int err_flush_calls;
    int err_fail_after;    /* > 0: error-stream writes after this many calls fail with EPIPE */

    const char *const *vars; /* "NAME=value" strings, NULL-terminated */
    int add_vars_status;     /* returned by add_cgi_vars */

    /* A structured host (host_structured_handler): every hook call in order, e.g.
     * "head(200 OK|LENGTH 13|Date,Content-Type) write(13) flush end(1) ". */
    char calls[2048];
    size_t calls_len;
    int head_errno;          /* != 0: send_head fails with this errno */
} test_host;

/* Zeroes the host. */
void host_init(test_host *host);
/* The hook table over `host` (every hook set). */
gw_handler_hooks host_hooks(test_host *host);
/* A handler over `host`, asserting success. */
gw_handler *host_handler(test_host *host, bool origin_server);
/* A structured handler over `host` (send_head, send_interim and end_body set; origin
 * server): the hooks log their calls in host->calls. */
gw_handler *host_structured_handler(test_host *host);
/* Forgets what was written; keeps the configuration. */
void host_clear_output(test_host *host);
/* NUL-terminated copies for string comparisons (the buffers never fill up in the tests). */
const char *host_out(test_host *host);
const char *host_err(test_host *host);

#endif
