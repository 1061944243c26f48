/* hello_cgi: a CGI program on gateway's CGI preset (wsgiref's CGIHandler).
 *
 * A web server runs it once per request with the request in the environment and the body
 * on stdin; it answers on stdout with a `Status:` line, headers and the body.
 *
 *   REQUEST_METHOD=GET PATH_INFO=/you ./hello_cgi
 */
#include <stdio.h>
#include <string.h>

#include "gateway.h"

static gw_status lookup(gw_request *req, const char *name, const char **value, size_t *len) {
    gw_environ *env = NULL;
    gw_status st = gw_request_environ(req, &env);
    if (st != GW_STATUS_OK) return st;
    if (gw_environ_get(env, name, strlen(name), value, len) != GW_STATUS_OK) {
        *value = "";
        *len = 0;
    }
    return GW_STATUS_OK;
}

/* Greets PATH_INFO and echoes the request body (read through wsgi.input, which never reads
 * past CONTENT_LENGTH). */
static gw_status hello_app(void *userdata, gw_request *req) {
    (void)userdata;
    const char *path, *body;
    size_t path_len, body_len;
    gw_status st = lookup(req, "PATH_INFO", &path, &path_len);
    if (st != GW_STATUS_OK) return st;
    st = gw_request_input_read_all(req, &body, &body_len);
    if (st != GW_STATUS_OK) return st;

    char page[4096];
    int n = snprintf(page, sizeof page, "Hello, %.*s!\nYou sent %zu bytes: %.*s\n", (int)path_len, path, body_len,
                     (int)(body_len < 1024 ? body_len : 1024), body);
    if (n < 0 || (size_t)n >= sizeof page) return gw_request_fail(req, "page too long", 13);

    static const gw_header headers[] = { { "Content-Type", 12, "text/plain; charset=utf-8", 25 } };
    st = gw_request_start_response(req, "200 OK", 6, headers, 1, 0);
    if (st != GW_STATUS_OK) return st;
    return gw_request_set_body_bytes(req, page, (size_t)n);
}

int main(void) {
    gw_handler *handler = NULL;
    if (gw_handler_new_cgi(&handler) != GW_STATUS_OK) {
        fprintf(stderr, "hello_cgi: %s\n", gw_last_error_message());
        return 1;
    }
    gw_status st = gw_handler_run(handler, hello_app, NULL);
    gw_handler_free(handler);
    /* The error page (if any) is already on stdout; the exit code tells the server. */
    return st == GW_STATUS_OK ? 0 : 1;
}
