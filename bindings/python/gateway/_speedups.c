/* The binding's hot path in C, compiled into the cffi extension (gateway/_build.py puts
 * this file in set_source after '#include "gateway.h"'; cffi has included Python.h).
 *
 * gwpy_register() adds the module gateway._speedups, whose run() runs one request with the
 * GIL held: the library calls the hooks below as plain C functions (no cffi callback, no GIL
 * dance), and they call the handler's Python methods with the vectorcall API. They do the
 * common case only (str values latin-1 can carry, no NUL, a dict os_environ, a list of one
 * bytes as the result, start_response's plain call); anything else is handed to the Python
 * methods of gateway.handlers, which are what ABI mode runs for every request, so both
 * paths behave alike. Every hook returns with no Python exception set: an exception is
 * given to the handler's Python failure methods, which turn it into a status. */

#include <structmember.h>
#include <string.h>
#include <stdlib.h>
#include <errno.h>

typedef struct gwpy_ctx {
    /* Set by Python (gateway/handlers.py, _Native): */
    void *handle;                       /* the cffi handle of the Python callbacks */
    gw_handler *gw;
    gw_hook_read_fn fwd_read;           /* the Python callbacks the C hooks forward to */
    gw_hook_write_fn fwd_write_stderr;
    gw_hook_flush_fn fwd_flush_stderr;
    gw_environ **env_out;               /* where the request's environ is left for Python */
    /* C only: */
    PyObject *handler;                  /* borrowed, during run() */
    PyObject *app;                      /* borrowed, during run() */
    PyObject *wsgi_values;              /* borrowed, during run() */
    PyObject *cgi;                      /* strong: what add_cgi_vars gave (fast path) */
    gw_request *req;                    /* the running request, NULL outside one */
    unsigned long gen;                  /* run() count: a start_response is for one run */
    int fast_sr;                        /* the handler's start_response is BaseHandler's */
    int slow_env;                       /* the CGI variables went through Python */
    char *sent; size_t sent_len, sent_cap, sent_count;   /* the packed CGI variables */
    char *pack; size_t pack_cap;                          /* gw_environ_pack_changes' */
    char *last; size_t last_len, last_cap;                /* the changes last decoded */
    PyObject *last_changes;             /* strong: those changes as a dict */
    PyObject *merged;                   /* strong: last_changes updated with merged_from */
    PyObject *merged_from;              /* strong: the wsgi_values merged was made with */
    gw_request *req_cached;             /* the address req_obj is a cdata for */
    PyObject *req_obj;                  /* strong: a cffi `gw_request *` for Python */
    char *hdr; size_t hdr_cap;          /* start_response's packed headers */
    PyObject *capsule;                  /* borrowed: the capsule that owns this context */
} gwpy_ctx;

static PyObject *s_environ, *s_add_cgi_vars, *s__write, *s__flush, *s_os_environ, *s__input,
    *s__errors, *s__handler, *s_result, *s__req, *s_status, *s_headers, *s_headers_class,
    *s_write, *s__cgi_store, *s__cgi_failed, *s__environ_slow, *s__set_body, *s__app_failed,
    *s__req_of, *s__start_response_failed, *s__hook_failed, *s_SERVER_SOFTWARE,
    *s_wsgi_input, *s_wsgi_errors, *s_start_response;
static PyObject *g_input_type, *g_errors_type, *g_start_response; /* set by setup() */
static PyObject *g_headers_type, *g_headers_init, *s___init__, *s__headers;
/* The attributes BaseHandler._sync_settings reads, in its order. */
static const char *const settings_names[] = {
    "wsgi_multithread", "wsgi_multiprocess", "wsgi_run_once", "origin_server",
    "http_version", "server_software", "wsgi_file_wrapper", "error_status", "error_headers",
    "error_body", "wsgi_version",
};
#define N_SETTINGS (sizeof settings_names / sizeof settings_names[0])
static PyObject *s_settings[N_SETTINGS];
static PyTypeObject *g_sr_type;

#define ST_OK 0
#define ST_APP_ERROR 11
#define ST_TOO_LARGE 17

/* ---- helpers ---------------------------------------------------------------------------- */

/* The current exception, normalized and with its traceback, taken (NULL: none). */
static PyObject *take_exception(void)
{
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    if (type == NULL)
        return NULL;
    PyErr_NormalizeException(&type, &value, &tb);
    if (tb != NULL && value != NULL)
        PyException_SetTraceback(value, tb);
    Py_XDECREF(type);
    Py_XDECREF(tb);
    return value;
}

/* handler.<method>(args...) returning a C int; on any failure `fallback`, no exception left. */
static int call_for_int(PyObject *handler, PyObject *method, PyObject *const *args,
                        size_t nargs, int fallback)
{
    PyObject *stack[4];
    size_t i;
    stack[0] = handler;
    for (i = 0; i < nargs && i < 3; i++)
        stack[i + 1] = args[i];
    PyObject *r = PyObject_VectorcallMethod(method, stack, nargs + 1, NULL);
    if (r == NULL) {
        PyErr_WriteUnraisable(method);
        return fallback;
    }
    long v = PyLong_AsLong(r);
    Py_DECREF(r);
    if (v == -1 && PyErr_Occurred()) {
        PyErr_WriteUnraisable(method);
        return fallback;
    }
    return (int)v;
}

/* The failure method `method` of the handler given the current exception. */
static int fail_with(gwpy_ctx *c, PyObject *method, PyObject *first, int fallback)
{
    PyObject *exc = take_exception();
    if (exc == NULL) {
        exc = Py_None;
        Py_INCREF(exc);
    }
    PyObject *args[2];
    size_t n = 0;
    if (first != NULL)
        args[n++] = first;
    args[n++] = exc;
    /* The exception is the one being handled while the method runs (sys.exc_info(), which
     * handle_error reads), as in the except block of the Python callbacks. */
    PyObject *ot, *ov, *otb;
    PyErr_GetExcInfo(&ot, &ov, &otb);
    if (exc != Py_None) {
        Py_INCREF(Py_TYPE(exc));
        Py_INCREF(exc);
        PyErr_SetExcInfo((PyObject *)Py_TYPE(exc), exc, PyException_GetTraceback(exc));
    }
    int r = call_for_int(c->handler, method, args, n, fallback);
    PyErr_SetExcInfo(ot, ov, otb);
    Py_DECREF(exc);
    return r;
}

static int grow(char **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap : 1024;
    while (n < need)
        n *= 2;
    char *p = realloc(*buf, n);
    if (p == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    *buf = p;
    *cap = n;
    return 0;
}

/* The latin-1 bytes of an exact str whose every character fits in one byte; NULL if not. */
static const char *latin1(PyObject *s, Py_ssize_t *len)
{
#if PY_VERSION_HEX < 0x030C0000
    if (PyUnicode_CheckExact(s) && PyUnicode_READY(s) != 0) {
        PyErr_Clear();
        return NULL;
    }
#endif
    if (!PyUnicode_CheckExact(s) || PyUnicode_KIND(s) != PyUnicode_1BYTE_KIND)
        return NULL;
    *len = PyUnicode_GET_LENGTH(s);
    return (const char *)PyUnicode_1BYTE_DATA(s);
}

static PyObject *address(const void *p)
{
    return PyLong_FromVoidPtr((void *)p);
}

/* ---- the CGI variables --------------------------------------------------------------- */

/* Copies `n` bytes and a NUL after them; 0 when the bytes hold a NUL. Short strings (CGI
 * names and values) are copied faster byte by byte than through memchr and memcpy. */
static int copy_field(char *dst, const char *src, Py_ssize_t n)
{
    Py_ssize_t i;
    unsigned char any_nul = 1;
    for (i = 0; i < n; i++) {
        dst[i] = src[i];
        any_nul &= (unsigned char)(src[i] != 0);
    }
    dst[n] = 0;
    return any_nul;
}

/* `cgi` packed into c->sent as gw_environ_set_packed wants it; 0 when it cannot be (a
 * value that is not a str, latin-1 cannot carry, or holds a NUL: Python's way then). */
static int pack_cgi(gwpy_ctx *c, PyObject *cgi)
{
    Py_ssize_t pos = 0, kl, vl;
    PyObject *k, *v;
    size_t len = 0, count = 0;
    while (PyDict_Next(cgi, &pos, &k, &v)) {
        const char *kd = latin1(k, &kl), *vd = latin1(v, &vl);
        if (kd == NULL || vd == NULL)
            return 0;
        if (grow(&c->sent, &c->sent_cap, len + (size_t)kl + (size_t)vl + 2) != 0) {
            PyErr_Clear();
            return 0;
        }
        if (!copy_field(c->sent + len, kd, kl))
            return 0;
        len += (size_t)kl + 1;
        if (!copy_field(c->sent + len, vd, vl))
            return 0;
        len += (size_t)vl + 1;
        count++;
    }
    c->sent_len = len;
    c->sent_count = count;
    return 1;
}

static int32_t cgi_locked(void *userdata, gw_environ *env);

/* Called from run() only (GIL held), but take the GIL if ever it is not. */
static int32_t gwpy_add_cgi_vars(void *userdata, gw_environ *env)
{
    if (PyGILState_Check())
        return cgi_locked(userdata, env);
    PyGILState_STATE gil = PyGILState_Ensure();
    int32_t r = cgi_locked(userdata, env);
    PyGILState_Release(gil);
    return r;
}

static int32_t cgi_locked(void *userdata, gw_environ *env)
{
    gwpy_ctx *c = userdata;
    PyObject *h = c->handler;
    PyObject *d = PyDict_New();
    if (d == NULL || PyObject_SetAttr(h, s_environ, d) != 0) {
        Py_XDECREF(d);
        return fail_with(c, s__cgi_failed, NULL, ST_APP_ERROR);
    }
    Py_DECREF(d);
    PyObject *r = PyObject_VectorcallMethod(s_add_cgi_vars, &h, 1, NULL);
    if (r == NULL)
        return fail_with(c, s__cgi_failed, NULL, ST_APP_ERROR);
    Py_DECREF(r);
    PyObject *cgi = PyObject_GetAttr(h, s_environ);
    if (cgi == NULL)
        return fail_with(c, s__cgi_failed, NULL, ST_APP_ERROR);
    if (PyDict_CheckExact(cgi) && pack_cgi(c, cgi)) {
        int st = c->sent_count
            ? gw_environ_set_packed(env, c->sent, c->sent_len, c->sent_count) : ST_OK;
        if (st == ST_OK) {
            Py_XSETREF(c->cgi, cgi);
            c->slow_env = 0;
            return ST_OK;
        }
    }
    /* Python's way: it sends what the library can hold, keeps the rest aside, and raises
     * (into handle_error) what the library refuses. Nothing was set: set_packed checks the
     * whole buffer before it sets any entry. */
    Py_DECREF(cgi);
    c->slow_env = 1;
    c->sent_len = c->sent_count = 0;
    PyObject *addr = address(env);
    if (addr == NULL)
        return fail_with(c, s__cgi_failed, NULL, ST_APP_ERROR);
    int st = call_for_int(h, s__cgi_store, &addr, 1, ST_APP_ERROR);
    Py_DECREF(addr);
    return st;
}

/* ---- the environ ------------------------------------------------------------------------ */

/* The library's additions (packed) as a dict, reused while they are the same bytes. */
static PyObject *changes_dict(gwpy_ctx *c, size_t len)
{
    if (c->last_changes != NULL && len == c->last_len && memcmp(c->pack, c->last, len) == 0) {
        Py_INCREF(c->last_changes);
        return c->last_changes;
    }
    PyObject *d = PyDict_New();
    if (d == NULL)
        return NULL;
    const char *p = c->pack, *end = c->pack + len;
    while (p < end) {
        const char *n = p, *ne = memchr(p, 0, (size_t)(end - p));
        const char *v = ne + 1, *ve = memchr(v, 0, (size_t)(end - v));
        PyObject *k = PyUnicode_DecodeLatin1(n, ne - n, NULL);
        PyObject *val = k ? PyUnicode_DecodeLatin1(v, ve - v, NULL) : NULL;
        if (k != NULL)
            PyUnicode_InternInPlace(&k);
        if (val == NULL || PyDict_SetItem(d, k, val) != 0) {
            Py_XDECREF(k);
            Py_XDECREF(val);
            Py_DECREF(d);
            return NULL;
        }
        Py_DECREF(k);
        Py_DECREF(val);
        p = ve + 1;
    }
    if (grow(&c->last, &c->last_cap, len) != 0) {
        Py_DECREF(d);
        return NULL;
    }
    memcpy(c->last, c->pack, len);
    c->last_len = len;
    Py_XSETREF(c->last_changes, d);
    Py_CLEAR(c->merged);
    Py_INCREF(d);
    return d;
}

static PyObject *new_stream(PyObject *type, PyObject *handler)
{
    PyTypeObject *t = (PyTypeObject *)type;
    PyObject *s = t->tp_alloc(t, 0);
    if (s != NULL && PyObject_SetAttr(s, s__handler, handler) != 0)
        Py_CLEAR(s);
    return s;
}

/* Python's _environ_of, for what the fast path does not do. */
static PyObject *environ_slow(gwpy_ctx *c)
{
    PyObject *sent = PyBytes_FromStringAndSize(c->slow_env ? "" : c->sent,
                                               c->slow_env ? 0 : (Py_ssize_t)c->sent_len);
    PyObject *count = PyLong_FromSize_t(c->slow_env ? 0 : c->sent_count);
    PyObject *r = NULL;
    if (sent != NULL && count != NULL) {
        PyObject *stack[5] = {c->handler, c->req_obj, c->slow_env ? Py_None : sent,
                              count, c->cgi ? c->cgi : Py_None};
        r = PyObject_VectorcallMethod(s__environ_slow, stack, 5, NULL);
    }
    Py_XDECREF(sent);
    Py_XDECREF(count);
    return r;
}

static PyObject *build_environ(gwpy_ctx *c, gw_request *req)
{
    PyObject *h = c->handler;
    gw_environ *env = NULL;
    size_t len = 0, count = 0, missing = 0;
    bool nul = false;
    if (c->slow_env)
        return environ_slow(c);
    int st = gw_request_environ(req, &env);
    if (st == ST_OK) {
        *c->env_out = env;
        st = gw_environ_pack_changes(env, NULL, c->sent, c->sent_len, c->sent_count, c->pack,
                                     c->pack_cap, &len, &count, &missing, &nul);
        if (st == ST_TOO_LARGE && gw_environ_packed_size(env, &len) == ST_OK) {
            if (grow(&c->pack, &c->pack_cap, len > 2 * c->pack_cap ? len : 2 * c->pack_cap))
                return NULL;
            st = gw_environ_pack_changes(env, NULL, c->sent, c->sent_len, c->sent_count,
                                         c->pack, c->pack_cap, &len, &count, &missing, &nul);
        }
    }
    if (st != ST_OK) {
        PyErr_Format(PyExc_RuntimeError, "gw_environ_pack_changes: %s",
                     gw_last_error_message());
        return NULL;
    }
    PyObject *os_env = PyObject_GetAttr(h, s_os_environ);
    if (os_env == NULL)
        return NULL;
    if (nul || missing || !PyDict_CheckExact(os_env)) {
        Py_DECREF(os_env);
        return environ_slow(c);
    }
    PyObject *changes = changes_dict(c, len);
    PyObject *environ = changes ? PyDict_Copy(os_env) : NULL;
    if (environ == NULL)
        goto fail;
    if (c->cgi != NULL && PyDict_GET_SIZE(c->cgi) && PyDict_Update(environ, c->cgi) != 0)
        goto fail;
    /* The library's changes then the wsgi.* values, merged once for as long as both stay
     * the same: the same entries in the same order as updating with one then the other
     * (the SERVER_SOFTWARE below is not a wsgi.* value). */
    if (c->merged == NULL || c->merged_from != c->wsgi_values) {
        PyObject *merged = PyDict_Copy(changes);
        if (merged == NULL || PyDict_Update(merged, c->wsgi_values) != 0) {
            Py_XDECREF(merged);
            goto fail;
        }
        Py_XSETREF(c->merged, merged);
        Py_INCREF(c->wsgi_values);
        Py_XSETREF(c->merged_from, c->wsgi_values);
    }
    if (PyDict_Update(environ, c->merged) != 0)
        goto fail;
    if (PyDict_Contains(changes, s_SERVER_SOFTWARE) == 1
        && !(c->cgi != NULL && PyDict_Contains(c->cgi, s_SERVER_SOFTWARE) == 1)) {
        /* wsgiref's setdefault: a SERVER_SOFTWARE from os_environ stays. */
        PyObject *os_sw = PyDict_GetItemWithError(os_env, s_SERVER_SOFTWARE);
        if (os_sw != NULL && PyDict_SetItem(environ, s_SERVER_SOFTWARE, os_sw) != 0)
            goto fail;
        if (PyErr_Occurred())
            goto fail;
    }
    PyObject *in = new_stream(g_input_type, h);
    if (in == NULL)
        goto fail;
    PyObject *er = new_stream(g_errors_type, h);
    int bad = er == NULL || PyObject_SetAttr(h, s__input, in) != 0
        || PyObject_SetAttr(h, s__errors, er) != 0
        || PyDict_SetItem(environ, s_wsgi_input, in) != 0
        || PyDict_SetItem(environ, s_wsgi_errors, er) != 0;
    Py_DECREF(in);
    Py_XDECREF(er);
    if (bad)
        goto fail;
    Py_DECREF(os_env);
    Py_DECREF(changes);
    return environ;
fail:
    Py_DECREF(os_env);
    Py_XDECREF(changes);
    Py_XDECREF(environ);
    return NULL;
}

/* ---- start_response --------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    PyObject *owner;        /* the capsule that owns the context */
    PyObject *handler;
    gwpy_ctx *c;
    unsigned long gen;
} gwpy_sr;

/* A start_response refers to its handler, which an application may make refer back to it:
 * the type takes part in the cycle collector, as a bound method does. */
static int sr_traverse(PyObject *o, visitproc visit, void *arg)
{
    gwpy_sr *s = (gwpy_sr *)o;
    Py_VISIT(s->handler);
    Py_VISIT(Py_TYPE(o));
    return 0;
}

static int sr_clear(PyObject *o)
{
    Py_CLEAR(((gwpy_sr *)o)->handler);
    return 0;
}

static void sr_dealloc(PyObject *o)
{
    gwpy_sr *s = (gwpy_sr *)o;
    PyTypeObject *t = Py_TYPE(o);
    PyObject_GC_UnTrack(o);
    Py_XDECREF(s->owner);
    Py_XDECREF(s->handler);
    PyObject_GC_Del(o);
    Py_DECREF(t);
}

/* BaseHandler.start_response(handler, *args, **kwargs): every case but the plain one. */
static PyObject *sr_python(gwpy_sr *s, PyObject *args, PyObject *kwargs)
{
    Py_ssize_t n = PyTuple_GET_SIZE(args), i;
    PyObject *all = PyTuple_New(n + 1);
    if (all == NULL)
        return NULL;
    Py_INCREF(s->handler);
    PyTuple_SET_ITEM(all, 0, s->handler);
    for (i = 0; i < n; i++) {
        PyObject *a = PyTuple_GET_ITEM(args, i);
        Py_INCREF(a);
        PyTuple_SET_ITEM(all, i + 1, a);
    }
    PyObject *r = PyObject_Call(g_start_response, all, kwargs);
    Py_DECREF(all);
    return r;
}

static PyObject *sr_call(PyObject *o, PyObject *args, PyObject *kwargs)
{
    gwpy_sr *s = (gwpy_sr *)o;
    gwpy_ctx *c = s->c;
    Py_ssize_t n = PyTuple_GET_SIZE(args);
    if (s->handler == NULL) { /* cleared by the cycle collector */
        PyErr_SetString(PyExc_AssertionError, "start_response() called outside of a request");
        return NULL;
    }
    if ((kwargs != NULL && PyDict_GET_SIZE(kwargs)) || n < 2 || n > 3
        || (n == 3 && PyTuple_GET_ITEM(args, 2) != Py_None)
        || c->gen != s->gen || c->req == NULL || c->handler != s->handler)
        return sr_python(s, args, kwargs);
    PyObject *status = PyTuple_GET_ITEM(args, 0), *headers = PyTuple_GET_ITEM(args, 1);
    Py_ssize_t sl, i, count;
    const char *sd = latin1(status, &sl);
    /* wsgiref's checks, and its messages, are Python's: anything unusual goes there. */
    if (sd == NULL || sl < 4 || !(sd[0] >= '0' && sd[0] <= '9') || !(sd[1] >= '0'
        && sd[1] <= '9') || !(sd[2] >= '0' && sd[2] <= '9') || sd[3] != ' '
        || memchr(sd, 0, (size_t)sl) != NULL || !PyList_CheckExact(headers))
        return sr_python(s, args, kwargs);
    count = PyList_GET_SIZE(headers);
    size_t len = 0;
    for (i = 0; i < count; i++) {
        PyObject *t = PyList_GET_ITEM(headers, i);
        Py_ssize_t nl, vl;
        const char *nd, *vd;
        if (!PyTuple_CheckExact(t) || PyTuple_GET_SIZE(t) != 2
            || (nd = latin1(PyTuple_GET_ITEM(t, 0), &nl)) == NULL
            || (vd = latin1(PyTuple_GET_ITEM(t, 1), &vl)) == NULL
            || memchr(nd, 0, (size_t)nl) != NULL || memchr(vd, 0, (size_t)vl) != NULL)
            return sr_python(s, args, kwargs);
        if (grow(&c->hdr, &c->hdr_cap, len + (size_t)nl + (size_t)vl + 2) != 0)
            return NULL;
        memcpy(c->hdr + len, nd, (size_t)nl);
        len += (size_t)nl;
        c->hdr[len++] = 0;
        memcpy(c->hdr + len, vd, (size_t)vl);
        len += (size_t)vl;
        c->hdr[len++] = 0;
    }
    int st = gw_request_start_response_packed(c->req, sd, (size_t)sl, len ? c->hdr : "",
                                              len, (size_t)count, 0);
    PyObject *h = s->handler;
    if (st != ST_OK) {
        PyObject *stv = PyLong_FromLong(st);
        if (stv == NULL)
            return NULL;
        PyObject *stack[2] = {h, stv};
        PyObject *r = PyObject_VectorcallMethod(s__start_response_failed, stack, 2, NULL);
        Py_DECREF(stv);
        return r; /* it raises */
    }
    if (PyObject_SetAttr(h, s_status, status) != 0)
        return NULL;
    PyObject *hc = PyObject_GetAttr(h, s_headers_class);
    if (hc == NULL)
        return NULL;
    PyObject *hobj;
    if (hc == g_headers_type && PyDict_GetItemWithError(((PyTypeObject *)hc)->tp_dict,
                                                        s___init__) == g_headers_init) {
        /* wsgiref.headers.Headers(headers) as its __init__ makes it, for a list of str
         * pairs (checked above): the list kept as _headers. */
        PyTypeObject *t = (PyTypeObject *)hc;
        hobj = t->tp_alloc(t, 0);
        if (hobj != NULL && PyObject_SetAttr(hobj, s__headers, headers) != 0)
            Py_CLEAR(hobj);
    } else {
        hobj = PyErr_Occurred() ? NULL : PyObject_CallOneArg(hc, headers);
    }
    Py_DECREF(hc);
    if (hobj == NULL)
        return NULL;
    int bad = PyObject_SetAttr(h, s_headers, hobj);
    Py_DECREF(hobj);
    if (bad)
        return NULL;
    return PyObject_GetAttr(h, s_write);
}

static PyMemberDef sr_members[] = {
    {"__self__", T_OBJECT, offsetof(gwpy_sr, handler), READONLY, "the handler"},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot sr_slots[] = {
    {Py_tp_members, (void *)sr_members},
    {Py_tp_dealloc, (void *)sr_dealloc},
    {Py_tp_traverse, (void *)sr_traverse},
    {Py_tp_clear, (void *)sr_clear},
    {Py_tp_call, (void *)sr_call},
    {Py_tp_doc, (void *)"start_response() of one request (PEP 3333), in C."},
    {0, NULL},
};

static PyType_Spec sr_spec = {
    "gateway._speedups.start_response", sizeof(gwpy_sr), 0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC, sr_slots,
};

/* ---- the application -------------------------------------------------------------------- */

static int32_t gwpy_app(void *userdata, gw_request *req)
{
    gwpy_ctx *c = userdata;
    PyObject *h = c->handler;
    PyObject *environ = NULL, *sr = NULL, *result = NULL;
    c->req = req;
    if (req != c->req_cached || c->req_obj == NULL) {
        PyObject *addr = address(req);
        if (addr == NULL)
            goto fail;
        PyObject *stack[2] = {h, addr};
        PyObject *obj = PyObject_VectorcallMethod(s__req_of, stack, 2, NULL);
        Py_DECREF(addr);
        if (obj == NULL)
            goto fail;
        Py_XSETREF(c->req_obj, obj);
        c->req_cached = req;
    }
    if (PyObject_SetAttr(h, s__req, c->req_obj) != 0)
        goto fail;
    environ = build_environ(c, req);
    if (environ == NULL || PyObject_SetAttr(h, s_environ, environ) != 0)
        goto fail;
    if (c->fast_sr) {
        gwpy_sr *s = PyObject_GC_New(gwpy_sr, g_sr_type);
        if (s == NULL)
            goto fail;
        Py_INCREF(c->capsule);
        s->owner = c->capsule;
        s->c = c;
        s->gen = c->gen;
        Py_INCREF(h);
        s->handler = h;
        sr = (PyObject *)s;
        PyObject_GC_Track(sr);
    } else {
        sr = PyObject_GetAttr(h, s_start_response);
        if (sr == NULL)
            goto fail;
    }
    {
        PyObject *stack[2] = {environ, sr};
        result = PyObject_Vectorcall(c->app, stack, 2, NULL);
    }
    Py_CLEAR(environ);
    Py_CLEAR(sr);
    if (result == NULL || PyObject_SetAttr(h, s_result, result) != 0)
        goto fail;
    if (PyList_CheckExact(result) && PyList_GET_SIZE(result) == 1
        && PyBytes_CheckExact(PyList_GET_ITEM(result, 0))) {
        /* The bytes stay alive in handler.result until the run is over. */
        PyObject *data = PyList_GET_ITEM(result, 0);
        int st = gw_request_set_body_bytes(req, PyBytes_AS_STRING(data),
                                           (size_t)PyBytes_GET_SIZE(data));
        if (st != ST_OK) {
            PyErr_SetString(PyExc_AssertionError, gw_last_error_message());
            goto fail;
        }
    } else {
        PyObject *stack[3] = {h, c->req_obj, result};
        PyObject *r = PyObject_VectorcallMethod(s__set_body, stack, 3, NULL);
        if (r == NULL)
            goto fail;
        Py_DECREF(r);
    }
    Py_DECREF(result);
    return ST_OK;
fail:
    Py_XDECREF(environ);
    Py_XDECREF(sr);
    Py_XDECREF(result);
    return fail_with(c, s__app_failed, c->req_obj ? c->req_obj : Py_None, ST_APP_ERROR);
}

/* ---- the I/O hooks ---------------------------------------------------------------------- */

/* wsgiref's write(): _write(data) then _flush(), the handler's methods. The library calls
 * it from run() (GIL held) but also from gw_request_write and gw_request_fail called by
 * Python through cffi, which releases the GIL around its calls: take it then. */
static int write_locked(void *userdata, const void *data, size_t len, size_t *out_written);

static int gwpy_write(void *userdata, const void *data, size_t len, size_t *out_written)
{
    if (PyGILState_Check())
        return write_locked(userdata, data, len, out_written);
    PyGILState_STATE gil = PyGILState_Ensure();
    int r = write_locked(userdata, data, len, out_written);
    PyGILState_Release(gil);
    return r;
}

static int write_locked(void *userdata, const void *data, size_t len, size_t *out_written)
{
    gwpy_ctx *c = userdata;
    PyObject *h = c->handler;
    PyObject *b = PyBytes_FromStringAndSize(data, (Py_ssize_t)len);
    if (b == NULL)
        return fail_with(c, s__hook_failed, NULL, EIO);
    PyObject *stack[2] = {h, b};
    PyObject *r = PyObject_VectorcallMethod(s__write, stack, 2, NULL);
    Py_DECREF(b);
    if (r == NULL)
        return fail_with(c, s__hook_failed, NULL, EIO);
    Py_DECREF(r);
    r = PyObject_VectorcallMethod(s__flush, stack, 1, NULL);
    if (r == NULL)
        return fail_with(c, s__hook_failed, NULL, EIO);
    Py_DECREF(r);
    *out_written = len;
    return 0;
}

/* The rarer hooks stay the Python callbacks (cffi's), with their own userdata. */
static int gwpy_read(void *userdata, void *buf, size_t len, size_t *out_read)
{
    gwpy_ctx *c = userdata;
    return c->fwd_read(c->handle, buf, len, out_read);
}

static int gwpy_write_stderr(void *userdata, const void *data, size_t len, size_t *out)
{
    gwpy_ctx *c = userdata;
    return c->fwd_write_stderr(c->handle, data, len, out);
}

static int gwpy_flush_stderr(void *userdata)
{
    gwpy_ctx *c = userdata;
    return c->fwd_flush_stderr(c->handle);
}

/* ---- the module --------------------------------------------------------------------------- */

static void ctx_free(PyObject *capsule)
{
    gwpy_ctx *c = PyCapsule_GetPointer(capsule, "gateway._speedups.ctx");
    if (c == NULL)
        return;
    Py_XDECREF(c->cgi);
    Py_XDECREF(c->last_changes);
    Py_XDECREF(c->merged);
    Py_XDECREF(c->merged_from);
    Py_XDECREF(c->req_obj);
    free(c->sent);
    free(c->pack);
    free(c->last);
    free(c->hdr);
    free(c);
}

/* new_ctx() -> (capsule, address): a context for one native handler, owned by the capsule. */
static PyObject *sp_new_ctx(PyObject *mod, PyObject *unused)
{
    (void)mod;
    (void)unused;
    gwpy_ctx *c = calloc(1, sizeof *c);
    if (c == NULL)
        return PyErr_NoMemory();
    c->pack_cap = 2048;
    c->pack = malloc(c->pack_cap);
    PyObject *cap = c->pack ? PyCapsule_New(c, "gateway._speedups.ctx", ctx_free) : NULL;
    if (cap == NULL) {
        int nomem = c->pack == NULL;
        free(c->pack);
        free(c);
        return nomem ? PyErr_NoMemory() : NULL;
    }
    c->capsule = cap;
    PyObject *addr = address(c);
    if (addr == NULL) {
        Py_DECREF(cap);
        return NULL;
    }
    return Py_BuildValue("(NN)", cap, addr);
}

/* Whether handler.start_response is BaseHandler.start_response bound to the handler (not
 * overridden by its class or on the instance). Looking at the instance's __dict__ instead
 * would make CPython 3.11 give it a dict of its own, which slows every attribute access. */
static int plain_start_response(PyObject *h)
{
    PyObject *m = PyObject_GetAttr(h, s_start_response);
    if (m == NULL)
        return -1;
    int plain = PyMethod_Check(m) && PyMethod_GET_FUNCTION(m) == g_start_response
                && PyMethod_GET_SELF(m) == h;
    Py_DECREF(m);
    return plain;
}

/* run(ctx, handler, application, wsgi_values) -> gw_handler_run's status. The GIL stays
 * held: the hooks are C functions called by the library. */
static PyObject *sp_run(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
    (void)mod;
    if (nargs != 4 || !PyDict_CheckExact(args[3])) {
        PyErr_SetString(PyExc_TypeError, "run(ctx, handler, application, wsgi_values: dict)");
        return NULL;
    }
    gwpy_ctx *c = PyCapsule_GetPointer(args[0], "gateway._speedups.ctx");
    if (c == NULL)
        return NULL;
    if (c->handler != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "this native handler is already running");
        return NULL;
    }
    int fast = plain_start_response(args[1]);
    if (fast < 0)
        return NULL;
    c->handler = args[1];
    c->app = args[2];
    c->wsgi_values = args[3];
    c->fast_sr = fast;
    c->slow_env = 0;
    c->sent_len = c->sent_count = 0;
    c->req = NULL;
    c->gen++;
    int st = gw_handler_run(c->gw, gwpy_app, c);
    c->req = NULL;
    c->gen++;
    c->handler = c->app = c->wsgi_values = NULL;
    Py_CLEAR(c->cgi);
    if (PyErr_Occurred()) /* no hook leaves one; never let one leak into the caller */
        PyErr_WriteUnraisable(args[1]);
    return PyLong_FromLong(st);
}

/* same_settings(handler, settings) -> bool: whether the handler's settings attributes are
 * those of the tuple `settings` (BaseHandler._sync_settings' comparison, without building
 * the tuple). */
static PyObject *sp_same_settings(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
    (void)mod;
    size_t i;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "same_settings(handler, settings)");
        return NULL;
    }
    if (!PyTuple_CheckExact(args[1]) || PyTuple_GET_SIZE(args[1]) != (Py_ssize_t)N_SETTINGS)
        Py_RETURN_FALSE;
    for (i = 0; i < N_SETTINGS; i++) {
        PyObject *v = PyObject_GetAttr(args[0], s_settings[i]);
        if (v == NULL)
            return NULL;
        PyObject *known = PyTuple_GET_ITEM(args[1], i);
        int same = v == known ? 1 : PyObject_RichCompareBool(v, known, Py_EQ);
        Py_DECREF(v);
        if (same < 0)
            return NULL;
        if (!same)
            Py_RETURN_FALSE;
    }
    Py_RETURN_TRUE;
}

/* setup(InputStream, ErrorStream, BaseHandler.start_response, wsgiref.headers.Headers) */
static PyObject *sp_setup(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
    (void)mod;
    if (nargs != 4 || !PyType_Check(args[0]) || !PyType_Check(args[1])
        || !PyType_Check(args[3])) {
        PyErr_SetString(PyExc_TypeError,
                        "setup(InputStream, ErrorStream, start_response, Headers)");
        return NULL;
    }
    PyObject *init = PyDict_GetItemWithError(((PyTypeObject *)args[3])->tp_dict, s___init__);
    if (init == NULL) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, "Headers has no __init__ of its own");
        return NULL;
    }
    Py_INCREF(init);
    Py_XSETREF(g_headers_init, init);
    Py_INCREF(args[3]);
    Py_XSETREF(g_headers_type, args[3]);
    Py_INCREF(args[0]);
    Py_XSETREF(g_input_type, args[0]);
    Py_INCREF(args[1]);
    Py_XSETREF(g_errors_type, args[1]);
    Py_INCREF(args[2]);
    Py_XSETREF(g_start_response, args[2]);
    Py_RETURN_NONE;
}

static PyMethodDef sp_methods[] = {
    {"new_ctx", sp_new_ctx, METH_NOARGS, "new_ctx() -> (capsule, address)"},
    {"run", (PyCFunction)(void (*)(void))sp_run, METH_FASTCALL,
     "run(ctx, handler, application, wsgi_values) -> status"},
    {"setup", (PyCFunction)(void (*)(void))sp_setup, METH_FASTCALL,
     "setup(InputStream, ErrorStream, BaseHandler.start_response, Headers)"},
    {"same_settings", (PyCFunction)(void (*)(void))sp_same_settings, METH_FASTCALL,
     "same_settings(handler, settings) -> bool"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef sp_module = {
    PyModuleDef_HEAD_INIT, "gateway._speedups",
    "The binding's hot path in C (gateway/_speedups.c).", -1, sp_methods,
    NULL, NULL, NULL, NULL,
};

static int intern_all(void)
{
#define S(var, text) if ((var = PyUnicode_InternFromString(text)) == NULL) return -1
    S(s_environ, "environ"); S(s_add_cgi_vars, "add_cgi_vars"); S(s__write, "_write");
    S(s__flush, "_flush"); S(s_os_environ, "os_environ"); S(s__input, "_input");
    S(s__errors, "_errors"); S(s__handler, "_handler"); S(s_result, "result");
    S(s__req, "_req"); S(s_status, "status"); S(s_headers, "headers");
    S(s_headers_class, "headers_class"); S(s_write, "write");
    S(s__cgi_store, "_cgi_store"); S(s__cgi_failed, "_cgi_failed");
    S(s__environ_slow, "_environ_slow"); S(s__set_body, "_set_body");
    S(s__app_failed, "_app_failed"); S(s__req_of, "_req_of");
    S(s__start_response_failed, "_start_response_failed");
    S(s__hook_failed, "_hook_failed"); S(s_SERVER_SOFTWARE, "SERVER_SOFTWARE");
    S(s_wsgi_input, "wsgi.input"); S(s_wsgi_errors, "wsgi.errors");
    S(s_start_response, "start_response"); S(s___init__, "__init__");
    S(s__headers, "_headers");
#undef S
    size_t i;
    for (i = 0; i < N_SETTINGS; i++)
        if ((s_settings[i] = PyUnicode_InternFromString(settings_names[i])) == NULL)
            return -1;
    return 0;
}

/* Called once by gateway.handlers (through cffi, which may have released the GIL): puts
 * the module gateway._speedups in sys.modules. 0 on success, -1 on failure (printed). */
static int gwpy_register(void)
{
    PyGILState_STATE gil = PyGILState_Ensure();
    int rc = -1;
    PyObject *m = NULL;
    if (PyImport_GetModuleDict() != NULL
        && PyDict_GetItemString(PyImport_GetModuleDict(), "gateway._speedups") != NULL) {
        rc = 0;
        goto out;
    }
    if (intern_all() != 0)
        goto out;
    if (g_sr_type == NULL && (g_sr_type = (PyTypeObject *)PyType_FromSpec(&sr_spec)) == NULL)
        goto out;
    m = PyModule_Create(&sp_module);
    if (m == NULL || PyDict_SetItemString(PyImport_GetModuleDict(), "gateway._speedups", m))
        goto out;
    rc = 0;
out:
    if (rc != 0)
        PyErr_Print();
    Py_XDECREF(m);
    PyGILState_Release(gil);
    return rc;
}
