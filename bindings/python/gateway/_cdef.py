"""The part of include/gateway.h the binding uses, as cffi declarations (no side effects:
_build.py reads it without loading the library)."""

# The declarations, as in include/gateway.h (API mode checks them against it when the
# extension is compiled).
CDEF = r"""
typedef int32_t gw_status;
typedef struct gw_environ gw_environ;
typedef struct gw_handler gw_handler;
typedef struct gw_request gw_request;
typedef struct gw_response_head gw_response_head;

typedef struct gw_bytes { const char *data; size_t len; } gw_bytes;
typedef struct gw_header {
    const char *name; size_t name_len; const char *value; size_t value_len;
} gw_header;

typedef int (*gw_hook_write_fn)(void *userdata, const void *data, size_t len, size_t *out_written);
typedef int (*gw_hook_flush_fn)(void *userdata);
typedef int (*gw_hook_read_fn)(void *userdata, void *buf, size_t len, size_t *out_read);
typedef int32_t (*gw_hook_add_cgi_vars_fn)(void *userdata, gw_environ *environ);
typedef int (*gw_hook_send_head_fn)(void *userdata, const gw_response_head *head);
typedef int (*gw_hook_end_body_fn)(void *userdata, bool complete);
typedef int (*gw_hook_send_file_fn)(void *userdata, int fd, uint64_t offset, uint64_t length, uint64_t *out_sent);

typedef struct gw_handler_hooks {
    size_t size;
    void *userdata;
    gw_hook_write_fn write;
    gw_hook_flush_fn flush;
    gw_hook_read_fn read_stdin;
    gw_hook_write_fn write_stderr;
    gw_hook_flush_fn flush_stderr;
    gw_hook_add_cgi_vars_fn add_cgi_vars;
    gw_hook_send_head_fn send_head;
    gw_hook_send_head_fn send_interim;
    gw_hook_end_body_fn end_body;
    gw_hook_send_file_fn send_file;
} gw_handler_hooks;

typedef int32_t (*gw_application_fn)(void *userdata, gw_request *request);
typedef int32_t (*gw_body_next_fn)(void *userdata, gw_request *request,
                                   const void **out_data, size_t *out_len, bool *out_end);
typedef bool (*gw_body_block_count_fn)(void *userdata, size_t *out_count);
typedef int32_t (*gw_body_close_fn)(void *userdata);
typedef struct gw_body_iter {
    size_t size;
    void *userdata;
    gw_body_next_fn next;
    gw_body_block_count_fn block_count;
    gw_body_close_fn close;
} gw_body_iter;

const char *gw_status_str(int32_t status);
const char *gw_last_error_message(void);
const char *gw_version(void);
uint32_t gw_version_number(void);
gw_status gw_format_date_time(int64_t seconds, char *out, size_t out_cap);

gw_status gw_environ_new(gw_environ **out);
gw_status gw_environ_free(gw_environ *environ);
gw_status gw_environ_set(gw_environ *environ, const char *name, size_t name_len,
                         const char *value, size_t value_len);
gw_status gw_environ_next(const gw_environ *environ, size_t *cursor,
                          const char **out_name, size_t *out_name_len,
                          const char **out_value, size_t *out_value_len);
gw_status gw_environ_packed_size(const gw_environ *environ, size_t *out_size);
gw_status gw_environ_pack(const gw_environ *environ, char *buf, size_t cap,
                          size_t *out_len, size_t *out_count, bool *out_nul_in_value);
gw_status gw_environ_pack_changes(const gw_environ *environ, const gw_environ *known,
                                  const char *sent, size_t sent_len, size_t sent_count,
                                  char *buf, size_t cap, size_t *out_len, size_t *out_count,
                                  size_t *out_environ_len, bool *out_nul_in_value);
gw_status gw_environ_set_packed(gw_environ *environ, const char *data, size_t len,
                                size_t count);

gw_status gw_handler_new(const gw_handler_hooks *hooks, gw_handler **out);
void gw_handler_free(gw_handler *handler);
gw_status gw_handler_set_userdata(gw_handler *handler, void *userdata);
gw_status gw_handler_run(gw_handler *handler, gw_application_fn app, void *app_userdata);
gw_status gw_handler_last_response(const gw_handler *handler, uint16_t *out_status_code,
                                   uint64_t *out_body_bytes);
gw_status gw_handler_last_keep_alive(const gw_handler *handler, bool *out);
gw_status gw_handler_set_multithread(gw_handler *handler, bool value);
gw_status gw_handler_set_multiprocess(gw_handler *handler, bool value);
gw_status gw_handler_set_run_once(gw_handler *handler, bool value);
gw_status gw_handler_set_origin_server(gw_handler *handler, bool value);
gw_status gw_handler_set_file_wrapper(gw_handler *handler, bool value);
gw_status gw_handler_set_http_version(gw_handler *handler, const char *version, size_t len);
gw_status gw_handler_set_server_software(gw_handler *handler, const char *software, size_t len);
gw_status gw_handler_set_os_environ(gw_handler *handler, gw_environ *environ);
gw_status gw_handler_set_error_page(gw_handler *handler, const char *status, size_t status_len,
                                    const gw_header *headers, size_t header_count,
                                    const void *body, size_t body_len);

gw_status gw_request_environ(gw_request *req, gw_environ **out);
gw_status gw_request_start_response(gw_request *req, const char *status, size_t status_len,
                                    const gw_header *headers, size_t header_count,
                                    uint32_t flags);
gw_status gw_request_start_response_packed(gw_request *req, const char *status,
                                           size_t status_len, const char *headers,
                                           size_t headers_len, size_t header_count,
                                           uint32_t flags);
gw_status gw_request_write(gw_request *req, const void *data, size_t len);
gw_status gw_request_set_body_bytes(gw_request *req, const void *data, size_t len);
gw_status gw_request_set_body_iter(gw_request *req, const gw_body_iter *iter);
gw_status gw_request_fail(gw_request *req, const char *message, size_t len);
gw_status gw_request_input_read(gw_request *req, void *buf, size_t cap, size_t *out_len);
gw_status gw_request_input_readline(gw_request *req, void *buf, size_t cap, size_t *out_len);
gw_status gw_request_input_read_all(gw_request *req, const char **out_data, size_t *out_len);
gw_status gw_request_input_next_line(gw_request *req, const char **out_data, size_t *out_len);
gw_status gw_request_input_readlines(gw_request *req, size_t hint, const gw_bytes **out_lines,
                                     size_t *out_count);
gw_status gw_request_errors_write(gw_request *req, const void *data, size_t len);
gw_status gw_request_errors_flush(gw_request *req);

/* gateway.util, gateway.headers, gateway.simple_server (wsgiref's util, headers and
   simple_server): the environ helpers, the header list, the file wrapper, request heads. */
typedef struct gw_headers gw_headers;
typedef struct gw_file_wrapper gw_file_wrapper;
typedef struct gw_connection_facts {
    size_t size;
    const char *remote_addr; size_t remote_addr_len;
    const char *server_name; size_t server_name_len;
    const char *script_name; size_t script_name_len;
    uint16_t remote_port;
    uint16_t server_port;
    bool tls;
} gw_connection_facts;
typedef struct gw_request_head_options {
    size_t size;
    size_t max_request_line;
    size_t max_fields;
    size_t max_field_size;
    size_t max_head;
    bool keep_unusual_names;
    bool allow_nul_in_path;
    bool allow_http09;
} gw_request_head_options;
gw_status gw_environ_get(const gw_environ *environ, const char *name, size_t name_len,
                         const char **out_value, size_t *out_value_len);
gw_status gw_environ_guess_scheme(const gw_environ *environ, const char **out_scheme,
                                  size_t *out_len);
gw_status gw_environ_application_uri(const gw_environ *environ, char *out, size_t out_cap,
                                     size_t *out_len);
gw_status gw_environ_request_uri(const gw_environ *environ, bool include_query, char *out,
                                 size_t out_cap, size_t *out_len);
gw_status gw_environ_shift_path_info(gw_environ *environ, char *out, size_t out_cap,
                                     size_t *out_name_len, bool *out_has_name);
gw_status gw_environ_setup_testing_defaults(gw_environ *environ);
gw_status gw_is_hop_by_hop(const char *name, size_t name_len, bool *out);
gw_status gw_headers_new(gw_headers **out);
gw_status gw_headers_new_from(const gw_header *headers, size_t count, gw_headers **out);
gw_status gw_headers_free(gw_headers *headers);
gw_status gw_headers_get(const gw_headers *headers, const char *name, size_t name_len,
                         const char **out_value, size_t *out_value_len);
gw_status gw_headers_add_header(gw_headers *headers, const char *name, size_t name_len,
                                const char *value, size_t value_len,
                                const gw_header *params, size_t param_count);
gw_status gw_headers_format(const gw_headers *headers, char *out, size_t out_cap,
                            size_t *out_len);
gw_status gw_file_wrapper_new(int fd, size_t block_size, bool close_fd,
                              gw_file_wrapper **out);
gw_status gw_file_wrapper_next(gw_file_wrapper *wrapper, const void **out_data,
                               size_t *out_len);
gw_status gw_file_wrapper_close(gw_file_wrapper *wrapper);
gw_status gw_file_wrapper_free(gw_file_wrapper *wrapper);
gw_status gw_environ_set_from_request_head(gw_environ *environ, const char *head,
                                           size_t head_len, const gw_connection_facts *facts,
                                           const gw_request_head_options *options,
                                           size_t *out_consumed, bool *out_chunked,
                                           uint16_t *out_http_status);
"""

# API mode only: the hot path in C (gateway/_speedups.c, compiled into the extension).
# gwpy_register() puts the module gateway._speedups in sys.modules; the hooks below are
# plain C functions whose userdata is a gwpy_ctx (the fields Python sets are declared).
SPEEDUPS_CDEF = r"""
typedef struct gwpy_ctx {
    void *handle;
    gw_handler *gw;
    gw_hook_read_fn fwd_read;
    gw_hook_write_fn fwd_write_stderr;
    gw_hook_flush_fn fwd_flush_stderr;
    gw_environ **env_out;
    ...;
} gwpy_ctx;
int gwpy_register(void);
int32_t gwpy_add_cgi_vars(void *userdata, gw_environ *environ);
int gwpy_write(void *userdata, const void *data, size_t len, size_t *out_written);
int gwpy_read(void *userdata, void *buf, size_t len, size_t *out_read);
int gwpy_write_stderr(void *userdata, const void *data, size_t len, size_t *out);
int gwpy_flush_stderr(void *userdata);
"""

# The callbacks: one C function each, generated by cffi in API mode.
CALLBACKS = {
    "py_write": "int(void *, const void *, size_t, size_t *)",
    "py_flush": "int(void *)",
    "py_read": "int(void *, void *, size_t, size_t *)",
    "py_write_stderr": "int(void *, const void *, size_t, size_t *)",
    "py_flush_stderr": "int(void *)",
    "py_add_cgi_vars": "int32_t(void *, gw_environ *)",
    "py_app": "int32_t(void *, gw_request *)",
    "py_body_next": "int32_t(void *, gw_request *, const void **, size_t *, bool *)",
    "py_body_count": "bool(void *, size_t *)",
    "py_body_close": "int32_t(void *)",
}


def callback_cdef():
    """The extern "Python" declarations of the callbacks, for API mode."""
    lines = []
    for name, ctype in CALLBACKS.items():
        ret, args = ctype.split("(", 1)
        lines.append('extern "Python" %s %s(%s;' % (ret, name, args))
    return "\n".join(lines)
