#include "host.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void host_init(test_host *host) {
    memset(host, 0, sizeof *host);
}

void host_clear_output(test_host *host) {
    host->calls_len = 0;
    host->calls[0] = '\0';
    host->out_len = 0;
    host->err_len = 0;
    host->write_calls = 0;
    host->flush_calls = 0;
    host->err_flush_calls = 0;
}

/* Appends to the structured host's call log. */
static void log_call(test_host *host, const char *format, ...) {
    va_list args;
    va_start(args, format);
    int n = vsnprintf(host->calls + host->calls_len, sizeof host->calls - host->calls_len, format, args);
    va_end(args);
    if (n > 0 && host->calls_len + (size_t)n < sizeof host->calls) host->calls_len += (size_t)n;
}

static int host_write(void *userdata, const void *data, size_t len, size_t *out_written) {
    test_host *host = userdata;
    host->write_calls++;
    log_call(host, "write(%zu) ", len);
    if (host->write_calls == host->fail_call) return host->fail_call_errno;
    if (host->write_eintr > 0) {
        host->write_eintr--;
        return EINTR;
    }
    if (host->zero_progress) {
        *out_written = 0;
        return 0;
    }
    size_t take = len;
    if (host->max_write > 0 && take > host->max_write) take = host->max_write;
    if (host->fail_errno != 0) {
        if (host->out_len >= host->fail_after) return host->fail_errno;
        if (host->out_len + take > host->fail_after) take = host->fail_after - host->out_len;
    }
    if (host->out_len + take >= HOST_BUF) return ENOSPC;
    memcpy(host->out + host->out_len, data, take);
    host->out_len += take;
    *out_written = take;
    return 0;
}

static int host_flush(void *userdata) {
    test_host *host = userdata;
    host->flush_calls++;
    log_call(host, "flush ");
    return host->flush_errno;
}

static int host_read(void *userdata, void *buf, size_t len, size_t *out_read) {
    test_host *host = userdata;
    if (host->read_calls++ == 0) host->out_len_at_first_read = host->out_len;
    if (host->read_eintr > 0) {
        host->read_eintr--;
        errno = EINTR;
        return -1; /* the "-1 with errno set" form of the contract */
    }
    if (host->read_errno != 0) return host->read_errno;
    size_t left = host->in_len - host->in_pos;
    size_t take = len < left ? len : left;
    if (host->max_read > 0 && take > host->max_read) take = host->max_read;
    if (take > 0) memcpy(buf, host->in + host->in_pos, take);
    host->in_pos += take;
    *out_read = take;
    return 0;
}

static int host_write_err(void *userdata, const void *data, size_t len, size_t *out_written) {
    test_host *host = userdata;
    if (host->err_fail_after > 0 && host->err_write_calls++ >= host->err_fail_after) return EPIPE;
    if (host->err_len + len >= HOST_BUF) return ENOSPC;
    memcpy(host->err + host->err_len, data, len);
    host->err_len += len;
    *out_written = len;
    return 0;
}

static int host_flush_err(void *userdata) {
    test_host *host = userdata;
    host->err_flush_calls++;
    return 0;
}

static int32_t host_add_vars(void *userdata, gw_environ *environ) {
    test_host *host = userdata;
    if (host->vars != NULL) {
        for (const char *const *var = host->vars; *var != NULL; var++) {
            const char *eq = strchr(*var, '=');
            gw_status st = gw_environ_set(environ, *var, (size_t)(eq - *var), eq + 1, strlen(eq + 1));
            if (st != GW_STATUS_OK) return st;
        }
    }
    return host->add_vars_status;
}

static const char *framing_name(gw_body_framing framing) {
    switch (framing) {
    case GW_BODY_FRAMING_NONE:
        return "NONE";
    case GW_BODY_FRAMING_LENGTH:
        return "LENGTH";
    case GW_BODY_FRAMING_STREAM:
        return "STREAM";
    }
    return "?";
}

/* Logs "<what>(<code> <reason>|<framing>[ <length>]|<header names>) ". */
static void log_head(test_host *host, const char *what, const gw_response_head *head) {
    log_call(host, "%s(%u %.*s|%s", what, head->status_code, (int)head->reason_len, head->reason,
             framing_name(head->framing));
    if (head->has_content_length) log_call(host, " %llu", (unsigned long long)head->content_length);
    log_call(host, "|");
    for (size_t i = 0; i < head->header_count; i++) {
        log_call(host, "%s%.*s", i > 0 ? "," : "", (int)head->headers[i].name_len, head->headers[i].name);
    }
    log_call(host, ") ");
}

static int host_send_head(void *userdata, const gw_response_head *head) {
    test_host *host = userdata;
    if (head->size != sizeof *head) abort();
    log_head(host, "head", head);
    return host->head_errno;
}

static int host_send_interim(void *userdata, const gw_response_head *head) {
    log_head(userdata, "interim", head);
    return 0;
}

static int host_end_body(void *userdata, bool complete) {
    log_call(userdata, "end(%d) ", complete);
    return 0;
}

gw_handler *host_structured_handler(test_host *host) {
    gw_handler_hooks hooks = host_hooks(host);
    hooks.send_head = host_send_head;
    hooks.send_interim = host_send_interim;
    hooks.end_body = host_end_body;
    gw_handler *handler = NULL;
    if (gw_handler_new(&hooks, &handler) != GW_STATUS_OK) abort();
    return handler;
}

gw_handler_hooks host_hooks(test_host *host) {
    gw_handler_hooks hooks = {
        .size = sizeof(gw_handler_hooks),
        .userdata = host,
        .write = host_write,
        .flush = host_flush,
        .read_stdin = host_read,
        .write_stderr = host_write_err,
        .flush_stderr = host_flush_err,
        .add_cgi_vars = host_add_vars,
    };
    return hooks;
}

gw_handler *host_handler(test_host *host, bool origin_server) {
    gw_handler_hooks hooks = host_hooks(host);
    gw_handler *handler = NULL;
    if (gw_handler_new(&hooks, &handler) != GW_STATUS_OK) abort();
    if (gw_handler_set_origin_server(handler, origin_server) != GW_STATUS_OK) abort();
    return handler;
}

const char *host_out(test_host *host) {
    host->out[host->out_len] = '\0';
    return host->out;
}

const char *host_err(test_host *host) {
    host->err[host->err_len] = '\0';
    return host->err;
}
