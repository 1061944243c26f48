/* hello_host: the smallest complete host and application (the README's tour).
 * The host's "client" is stdout; the request's CGI variables come from the host itself. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "gateway.h"

/* ---- host side: hooks over a file descriptor ---- */
static int host_write(void *userdata, const void *data, size_t len, size_t *out_written) {
    int fd = *(int *)userdata;
    ssize_t n = write(fd, data, len);
    if (n < 0) return errno;   /* EPIPE etc. tell the library the client is gone */
    *out_written = (size_t)n;  /* a short write is fine: the library writes the rest */
    return 0;
}

static int32_t host_add_cgi_vars(void *userdata, gw_environ *environ) {
    (void)userdata;
    gw_status st = gw_environ_set(environ, "REQUEST_METHOD", 14, "GET", 3);
    if (st == GW_STATUS_OK) st = gw_environ_set(environ, "PATH_INFO", 9, "/world", 6);
    if (st == GW_STATUS_OK) st = gw_environ_set(environ, "SERVER_PROTOCOL", 15, "HTTP/1.0", 8);
    return st;
}

/* ---- application side ---- */
static gw_status hello_app(void *userdata, gw_request *req) {
    (void)userdata;
    gw_environ *env = NULL;
    const char *path = NULL;
    size_t path_len = 0;
    gw_status st = gw_request_environ(req, &env);
    if (st != GW_STATUS_OK) return st;
    if (gw_environ_get(env, "PATH_INFO", 9, &path, &path_len) != GW_STATUS_OK) path_len = 0;

    char body[256];
    int n = snprintf(body, sizeof body, "Hello, %.*s!\n", (int)path_len, path);

    static const gw_header headers[] = { { "Content-Type", 12, "text/plain", 10 } };
    st = gw_request_start_response(req, "200 OK", 6, headers, 1, 0);
    if (st != GW_STATUS_OK) return st;                     /* a bad status or header: a clean 500 */
    return gw_request_set_body_bytes(req, body, (size_t)n); /* one block: Content-Length computed */
}

int main(void) {
    int client = STDOUT_FILENO;
    gw_handler_hooks hooks = GW_HANDLER_HOOKS_INIT; /* sets hooks.size, so the ABI can grow */
    hooks.userdata = &client;
    hooks.write = host_write;
    hooks.add_cgi_vars = host_add_cgi_vars;
    gw_handler *handler = NULL;
    if (gw_handler_new(&hooks, &handler) != GW_STATUS_OK) {
        fprintf(stderr, "gw_handler_new: %s\n", gw_last_error_message());
        return 1;
    }
    gw_handler_set_origin_server(handler, false); /* CGI output: "Status: 200 OK" */

    gw_status st = gw_handler_run(handler, hello_app, NULL);
    if (st != GW_STATUS_OK) fprintf(stderr, "run: %s: %s\n", gw_status_str(st), gw_last_error_message());
    gw_handler_free(handler);
    return st == GW_STATUS_OK ? 0 : 1;
}
