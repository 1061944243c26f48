#include "host.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void host_init(test_host *host) {
    memset(host, 0, sizeof *host);
}

void host_clear_output(test_host *host) {
    host->out_len = 0;
    host->err_len = 0;
    host->write_calls = 0;
    host->flush_calls = 0;
    host->err_flush_calls = 0;
}

static int host_write(void *userdata, const void *data, size_t len, size_t *out_written) {
    test_host *host = userdata;
    host->write_calls++;
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

gw_handler_hooks host_hooks(test_host *host) {
    gw_handler_hooks hooks = {
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
