/* striate.kernels._native: the CPython boundary of the compiled kernels.
 *
 * Each function takes ndarrays (any object with the buffer protocol), the geometry as a tuple
 * of ints and a range of the batch (or of the rows of an (M, C) matrix). Before any kernel
 * runs it checks that every buffer is C-contiguous, has the element type asked for, and holds
 * exactly the number of elements the geometry implies, and that the geometry is consistent:
 * a wrong call raises, it never reads or writes outside the arrays. The kernels run with the
 * GIL released. The friendly checks and messages are in the Python wrapper
 * (striate/kernels/native/__init__.py); these are the last line.
 */
#include "common.h"

int striate_isa = ISA_BASE;

/* ===== buffers ============================================================================ */

typedef struct {
    Py_buffer view[12];
    int count;
} buffers;

static void release(buffers *s)
{
    for (int i = 0; i < s->count; i++)
        PyBuffer_Release(&s->view[i]);
    s->count = 0;
}

/* *ptr = the data of o, which must hold exactly `count` elements of type `kind` ('f' float32,
 * 'd' float64, 'i' int32), C-contiguous (and writable if asked). None gives NULL when
 * optional. Returns 0, or -1 with an exception set. */
static int get(buffers *s, PyObject *o, void **ptr, char kind, idx count, int writable,
               int optional, const char *name)
{
    *ptr = NULL;
    if (o == Py_None) {
        if (optional)
            return 0;
        PyErr_Format(PyExc_TypeError, "_native: %s must be an array, not None", name);
        return -1;
    }
    Py_buffer *v = &s->view[s->count];
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(o, v, flags) < 0) {
        PyErr_Clear();
        PyErr_Format(PyExc_ValueError,
                     "_native: %s must be a C-contiguous%s array", name,
                     writable ? ", writable" : "");
        return -1;
    }
    s->count++;
    const char *f = v->format ? v->format : "B";
    if (*f == '@' || *f == '=' || (*f == '<' && PY_LITTLE_ENDIAN) || (*f == '>' && !PY_LITTLE_ENDIAN))
        f++;
    const idx size = kind == 'd' ? 8 : 4;
    if (f[0] != kind || f[1] != '\0' || v->itemsize != size) {
        PyErr_Format(PyExc_TypeError, "_native: %s has element format '%s', expected '%c'", name,
                     v->format ? v->format : "B", kind);
        return -1;
    }
    if (count < 0 || v->len != count * size) {
        PyErr_Format(PyExc_ValueError, "_native: %s holds %zd elements, the geometry needs %zd",
                     name, v->len / size, count);
        return -1;
    }
    *ptr = v->buf;
    return 0;
}

static char kind_of(int dt) { return dt == DT_F64 ? 'd' : 'f'; }

/* a * b * ..., or -1 on overflow or a negative factor */
static idx product(int n, const idx *f)
{
    idx p = 1;
    for (int i = 0; i < n; i++)
        if (f[i] < 0 || __builtin_mul_overflow(p, f[i], &p))
            return -1;
    return p;
}
#define PRODUCT(...) product(sizeof((idx[]){__VA_ARGS__}) / sizeof(idx), (idx[]){__VA_ARGS__})

static int read_ints(PyObject *t, idx *out, Py_ssize_t n, const char *name)
{
    if (!PyTuple_Check(t) || PyTuple_GET_SIZE(t) != n) {
        PyErr_Format(PyExc_TypeError, "_native: %s must be a tuple of %zd ints", name, n);
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        out[i] = PyLong_AsSsize_t(PyTuple_GET_ITEM(t, i));
        if (out[i] == -1 && PyErr_Occurred())
            return -1;
    }
    return 0;
}

static int check_dtype(int dt)
{
    if (dt != DT_F32 && dt != DT_F64) {
        PyErr_Format(PyExc_ValueError, "_native: dtype code must be 0 (float32) or 1 (float64)");
        return -1;
    }
    return 0;
}

static int check_range(idx n0, idx n1, idx n, const char *what)
{
    if (n0 < 0 || n1 < n0 || n1 > n) {
        PyErr_Format(PyExc_ValueError, "_native: %s range [%zd, %zd) is not inside [0, %zd)",
                     what, n0, n1, n);
        return -1;
    }
    return 0;
}

/* parts: 1 to MAX_PARTS, and no more than the rows when there are any */
static int check_parts(int parts, idx n0, idx n1)
{
    if (parts < 1 || parts > MAX_PARTS || (n1 > n0 && parts > n1 - n0)) {
        PyErr_Format(PyExc_ValueError, "_native: parts must be in [1, %d] and no more than the "
                     "%zd rows, got %d", MAX_PARTS, n1 - n0, parts);
        return -1;
    }
    return 0;
}

static idx item_size(int dt) { return dt == DT_F64 ? 8 : 4; }

static PyObject *finish(buffers *s, int rc)
{
    release(s);
    if (rc == -1)
        return PyErr_NoMemory();
    if (rc == -2) {
        PyErr_SetString(PyExc_ValueError,
                        "_native: argmax holds an index outside its window's input");
        return NULL;
    }
    Py_RETURN_NONE;
}

/* ===== convolution ======================================================================== */

static int conv_geometry(PyObject *t, conv_geo *g)
{
    idx v[17];
    if (read_ints(t, v, 17, "geometry") < 0)
        return -1;
    *g = (conv_geo){v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11],
                    v[12], v[13], v[14], v[15], v[16]};
    const int sizes_ok = g->N >= 1 && g->H >= 1 && g->W >= 1 && g->C >= 1 && g->kH >= 1 &&
                         g->kW >= 1 && g->K >= 1 && g->sH >= 1 && g->sW >= 1 && g->dH >= 1 &&
                         g->dW >= 1 && g->pH0 >= 0 && g->pH1 >= 0 && g->pW0 >= 0 &&
                         g->pW1 >= 0 && g->H < (1 << 24) && g->W < (1 << 24) &&
                         g->kH < (1 << 16) && g->kW < (1 << 16) && g->dH < (1 << 16) &&
                         g->dW < (1 << 16) && g->pH0 < (1 << 24) && g->pH1 < (1 << 24) &&
                         g->pW0 < (1 << 24) && g->pW1 < (1 << 24);
    if (!sizes_ok) {
        PyErr_SetString(PyExc_ValueError, "_native: convolution geometry out of range");
        return -1;
    }
    const idx eh = g->H + g->pH0 + g->pH1 - g->dH * (g->kH - 1) - 1;
    const idx ew = g->W + g->pW0 + g->pW1 - g->dW * (g->kW - 1) - 1;
    if (eh < 0 || ew < 0 || g->Ho != eh / g->sH + 1 || g->Wo != ew / g->sW + 1) {
        PyErr_SetString(PyExc_ValueError,
                        "_native: output size does not match the convolution geometry");
        return -1;
    }
    return 0;
}

static int conv_kind(const conv_geo *g, int depthwise)
{
    if (depthwise && g->K != g->C) {
        PyErr_SetString(PyExc_ValueError, "_native: a depthwise convolution needs K == C");
        return -1;
    }
    return 0;
}

static int conv_forward_rows(const job *j, idx r0, idx r1, int part)
{
    return (j->flag & 2 ? depthwise_forward : conv2d_forward)(
        j->dt, j->in[0], j->in[1], j->in[2], j->out[0], j->geo, j->flag & 1, r0, r1);
}

static PyObject *conv_forward(PyObject *args, int depthwise)
{
    int dt, relu, parts;
    PyObject *xo, *wo, *bo, *yo, *geo;
    idx n0, n1;
    if (!PyArg_ParseTuple(args, "iOOOOOpnni", &dt, &xo, &wo, &bo, &yo, &geo, &relu, &n0, &n1,
                          &parts))
        return NULL;
    conv_geo g;
    if (check_dtype(dt) < 0 || conv_geometry(geo, &g) < 0 || conv_kind(&g, depthwise) < 0 ||
        check_range(n0, n1, g.N, "batch") < 0 || check_parts(parts, n0, n1) < 0)
        return NULL;
    buffers s = {.count = 0};
    void *x, *w, *b, *y;
    const char k = kind_of(dt);
    if (get(&s, xo, &x, k, PRODUCT(g.N, g.H, g.W, g.C), 0, 0, "x") < 0 ||
        get(&s, wo, &w, k, PRODUCT(g.kH, g.kW, depthwise ? 1 : g.C, g.K), 0, 0, "w") < 0 ||
        get(&s, bo, &b, k, g.K, 0, 1, "b") < 0 ||
        get(&s, yo, &y, k, PRODUCT(g.N, g.Ho, g.Wo, g.K), 1, 0, "y") < 0) {
        release(&s);
        return NULL;
    }
    const job j = {conv_forward_rows, dt, relu | (depthwise << 1), 0, &g, 0, {x, w, b}, {y}};
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = run_parts(&j, n0, n1, parts);
    Py_END_ALLOW_THREADS
    return finish(&s, rc);
}

/* dw and db: one copy per part, (parts, kH, kW, C or 1, K) and (parts, K) */
static int conv_backward_rows(const job *j, idx r0, idx r1, int part)
{
    const conv_geo *g = j->geo;
    const idx ws = g->kH * g->kW * (j->flag ? 1 : g->C) * g->K, item = item_size(j->dt);
    char *dw = j->out[1], *db = j->out[2];
    return (j->flag ? depthwise_backward : conv2d_backward)(
        j->dt, j->in[0], j->in[1], j->in[2], j->in[3], j->out[0],
        dw ? dw + part * ws * item : NULL, db ? db + part * g->K * item : NULL, g, r0, r1);
}

static PyObject *conv_backward(PyObject *args, int depthwise)
{
    int dt, parts;
    PyObject *xo, *wo, *dyo, *yo, *dxo, *dwo, *dbo, *geo;
    idx n0, n1;
    if (!PyArg_ParseTuple(args, "iOOOOOOOOnni", &dt, &xo, &wo, &dyo, &yo, &dxo, &dwo, &dbo,
                          &geo, &n0, &n1, &parts))
        return NULL;
    conv_geo g;
    if (check_dtype(dt) < 0 || conv_geometry(geo, &g) < 0 || conv_kind(&g, depthwise) < 0 ||
        check_range(n0, n1, g.N, "batch") < 0 || check_parts(parts, n0, n1) < 0)
        return NULL;
    buffers s = {.count = 0};
    void *x, *w, *dy, *y, *dx, *dw, *db;
    const char k = kind_of(dt);
    const idx xs = PRODUCT(g.N, g.H, g.W, g.C);
    const idx ws = PRODUCT(g.kH, g.kW, depthwise ? 1 : g.C, g.K);
    const idx ys = PRODUCT(g.N, g.Ho, g.Wo, g.K);
    if (get(&s, xo, &x, k, xs, 0, 0, "x") < 0 || get(&s, wo, &w, k, ws, 0, 0, "w") < 0 ||
        get(&s, dyo, &dy, k, ys, 0, 0, "dy") < 0 || get(&s, yo, &y, k, ys, 0, 1, "y") < 0 ||
        get(&s, dxo, &dx, k, xs, 1, 1, "dx") < 0 ||
        get(&s, dwo, &dw, k, PRODUCT(parts, ws), 1, 1, "dw") < 0 ||
        get(&s, dbo, &db, k, PRODUCT(parts, g.K), 1, 1, "db") < 0) {
        release(&s);
        return NULL;
    }
    const job j = {conv_backward_rows, dt, depthwise, 0, &g, 0, {x, w, dy, y}, {dx, dw, db}};
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = run_parts(&j, n0, n1, parts);
    Py_END_ALLOW_THREADS
    return finish(&s, rc);
}

static PyObject *py_conv2d_forward(PyObject *self, PyObject *a) { return conv_forward(a, 0); }
static PyObject *py_conv2d_backward(PyObject *self, PyObject *a) { return conv_backward(a, 0); }
static PyObject *py_depthwise_forward(PyObject *self, PyObject *a) { return conv_forward(a, 1); }
static PyObject *py_depthwise_backward(PyObject *self, PyObject *a) { return conv_backward(a, 1); }

/* ===== pooling ============================================================================ */

static int pool_geometry(PyObject *t, pool_geo *g)
{
    idx v[12];
    if (read_ints(t, v, 12, "geometry") < 0)
        return -1;
    *g = (pool_geo){v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11]};
    const int ok = g->N >= 1 && g->H >= 1 && g->W >= 1 && g->C >= 1 && g->kH >= 1 &&
                   g->kW >= 1 && g->Ho >= 1 && g->Wo >= 1 && g->sH >= 1 && g->sW >= 1 &&
                   g->pH0 >= 0 && g->pW0 >= 0 && g->kH < (1 << 15) && g->kW < (1 << 15) &&
                   g->H < (1 << 24) && g->W < (1 << 24) && g->Ho < (1 << 24) &&
                   g->Wo < (1 << 24) && g->sH < (1 << 24) && g->sW < (1 << 24) &&
                   /* every window holds at least one input element */
                   g->pH0 < g->kH && g->pW0 < g->kW && (g->Ho - 1) * g->sH - g->pH0 < g->H &&
                   (g->Wo - 1) * g->sW - g->pW0 < g->W;
    if (!ok) {
        PyErr_SetString(PyExc_ValueError, "_native: pooling geometry out of range");
        return -1;
    }
    return 0;
}

static int max_forward_rows(const job *j, idx r0, idx r1, int part)
{
    return (j->flag ? adaptive_max_forward : max_pool_forward)(j->dt, j->in[0], j->out[0],
                                                               j->out[1], j->geo, r0, r1);
}

static int max_backward_rows(const job *j, idx r0, idx r1, int part)
{
    return (j->flag ? adaptive_max_backward : max_pool_backward)(j->dt, j->in[0], j->in[1],
                                                                 j->out[0], j->geo, r0, r1);
}

static int avg_forward_rows(const job *j, idx r0, idx r1, int part)
{
    return avg_pool_forward(j->dt, j->in[0], j->out[0], j->geo, j->flag, r0, r1);
}

static int avg_backward_rows(const job *j, idx r0, idx r1, int part)
{
    return avg_pool_backward(j->dt, j->in[0], j->out[0], j->geo, j->flag, r0, r1);
}

static int lp_forward_rows(const job *j, idx r0, idx r1, int part)
{
    return lp_pool_forward(j->dt, j->in[0], j->out[0], j->geo, j->p, r0, r1);
}

static int lp_backward_rows(const job *j, idx r0, idx r1, int part)
{
    return lp_pool_backward(j->dt, j->in[0], j->in[1], j->in[2], j->out[0], j->geo, j->p, r0,
                            r1);
}

static int adaptive_avg_rows(const job *j, idx r0, idx r1, int part)
{
    return (j->flag ? adaptive_avg_backward : adaptive_avg_forward)(j->dt, j->in[0], j->out[0],
                                                                    j->geo, r0, r1);
}

static PyObject *py_max_pool_forward(PyObject *self, PyObject *args)
{
    int dt, parts;
    PyObject *xo, *yo, *ao, *geo;
    idx n0, n1;
    if (!PyArg_ParseTuple(args, "iOOOOnni", &dt, &xo, &yo, &ao, &geo, &n0, &n1, &parts))
        return NULL;
    pool_geo g;
    if (check_dtype(dt) < 0 || pool_geometry(geo, &g) < 0 ||
        check_range(n0, n1, g.N, "batch") < 0 || check_parts(parts, n0, n1) < 0)
        return NULL;
    buffers s = {.count = 0};
    void *x, *y, *a;
    const char k = kind_of(dt);
    const idx ys = PRODUCT(g.N, g.Ho, g.Wo, g.C);
    if (get(&s, xo, &x, k, PRODUCT(g.N, g.H, g.W, g.C), 0, 0, "x") < 0 ||
        get(&s, yo, &y, k, ys, 1, 0, "y") < 0 || get(&s, ao, &a, 'i', ys, 1, 0, "argmax") < 0) {
        release(&s);
        return NULL;
    }
    const job j = {max_forward_rows, dt, 0, 0, &g, 0, {x}, {y, a}};
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = run_parts(&j, n0, n1, parts);
    Py_END_ALLOW_THREADS
    return finish(&s, rc);
}

static PyObject *py_max_pool_backward(PyObject *self, PyObject *args)
{
    int dt, parts;
    PyObject *dyo, *ao, *dxo, *geo;
    idx n0, n1;
    if (!PyArg_ParseTuple(args, "iOOOOnni", &dt, &dyo, &ao, &dxo, &geo, &n0, &n1, &parts))
        return NULL;
    pool_geo g;
    if (check_dtype(dt) < 0 || pool_geometry(geo, &g) < 0 ||
        check_range(n0, n1, g.N, "batch") < 0 || check_parts(parts, n0, n1) < 0)
        return NULL;
    buffers s = {.count = 0};
    void *dy, *a, *dx;
    const char k = kind_of(dt);
    const idx ys = PRODUCT(g.N, g.Ho, g.Wo, g.C);
    if (get(&s, dyo, &dy, k, ys, 0, 0, "dy") < 0 || get(&s, ao, &a, 'i', ys, 0, 0, "argmax") < 0 ||
        get(&s, dxo, &dx, k, PRODUCT(g.N, g.H, g.W, g.C), 1, 0, "dx") < 0) {
        release(&s);
        return NULL;
    }
    const job j = {max_backward_rows, dt, 0, 0, &g, 0, {dy, a}, {dx}};
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = run_parts(&j, n0, n1, parts);
    Py_END_ALLOW_THREADS
    return finish(&s, rc);
}

static PyObject *py_avg_pool(PyObject *args, int backward)
{
    int dt, include_pad, parts;
    PyObject *io, *oo, *geo;
    idx n0, n1;
    if (!PyArg_ParseTuple(args, "iOOOpnni", &dt, &io, &oo, &geo, &include_pad, &n0, &n1,
                          &parts))
        return NULL;
    pool_geo g;
    if (check_dtype(dt) < 0 || pool_geometry(geo, &g) < 0 ||
        check_range(n0, n1, g.N, "batch") < 0 || check_parts(parts, n0, n1) < 0)
        return NULL;
    buffers s = {.count = 0};
    void *in, *out;
    const char k = kind_of(dt);
    const idx xs = PRODUCT(g.N, g.H, g.W, g.C), ys = PRODUCT(g.N, g.Ho, g.Wo, g.C);
    if (get(&s, io, &in, k, backward ? ys : xs, 0, 0, backward ? "dy" : "x") < 0 ||
        get(&s, oo, &out, k, backward ? xs : ys, 1, 0, backward ? "dx" : "y") < 0) {
        release(&s);
        return NULL;
    }
    const job j = {backward ? avg_backward_rows : avg_forward_rows, dt, include_pad, 0, &g, 0,
                   {in}, {out}};
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = run_parts(&j, n0, n1, parts);
    Py_END_ALLOW_THREADS
    return finish(&s, rc);
}

static PyObject *py_avg_pool_forward(PyObject *self, PyObject *args) { return py_avg_pool(args, 0); }
static PyObject *py_avg_pool_backward(PyObject *self, PyObject *args) { return py_avg_pool(args, 1); }

static PyObject *py_lp_pool_forward(PyObject *self, PyObject *args)
{
    int dt, parts;
    double p;
    PyObject *xo, *yo, *geo;
    idx n0, n1;
    if (!PyArg_ParseTuple(args, "iOOOdnni", &dt, &xo, &yo, &geo, &p, &n0, &n1, &parts))
        return NULL;
    pool_geo g;
    if (check_dtype(dt) < 0 || pool_geometry(geo, &g) < 0 ||
        check_range(n0, n1, g.N, "batch") < 0 || check_parts(parts, n0, n1) < 0)
        return NULL;
    if (!(p >= 1) || p > 1e300) {
        PyErr_SetString(PyExc_ValueError, "_native: p must be a finite number >= 1");
        return NULL;
    }
    buffers s = {.count = 0};
    void *x, *y;
    const char k = kind_of(dt);
    if (get(&s, xo, &x, k, PRODUCT(g.N, g.H, g.W, g.C), 0, 0, "x") < 0 ||
        get(&s, yo, &y, k, PRODUCT(g.N, g.Ho, g.Wo, g.C), 1, 0, "y") < 0) {
        release(&s);
        return NULL;
    }
    const job j = {lp_forward_rows, dt, 0, p, &g, 0, {x}, {y}};
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = run_parts(&j, n0, n1, parts);
    Py_END_ALLOW_THREADS
    return finish(&s, rc);
}

static PyObject *py_lp_pool_backward(PyObject *self, PyObject *args)
{
    int dt, parts;
    double p;
    PyObject *xo, *yo, *dyo, *dxo, *geo;
    idx n0, n1;
    if (!PyArg_ParseTuple(args, "iOOOOOdnni", &dt, &xo, &yo, &dyo, &dxo, &geo, &p, &n0, &n1,
                          &parts))
        return NULL;
    pool_geo g;
    if (check_dtype(dt) < 0 || pool_geometry(geo, &g) < 0 ||
        check_range(n0, n1, g.N, "batch") < 0 || check_parts(parts, n0, n1) < 0)
        return NULL;
    if (!(p >= 1) || p > 1e300) {
        PyErr_SetString(PyExc_ValueError, "_native: p must be a finite number >= 1");
        return NULL;
    }
    buffers s = {.count = 0};
    void *x, *y, *dy, *dx;
    const char k = kind_of(dt);
    const idx xs = PRODUCT(g.N, g.H, g.W, g.C), ys = PRODUCT(g.N, g.Ho, g.Wo, g.C);
    if (get(&s, xo, &x, k, xs, 0, 0, "x") < 0 || get(&s, yo, &y, k, ys, 0, 0, "y") < 0 ||
        get(&s, dyo, &dy, k, ys, 0, 0, "dy") < 0 || get(&s, dxo, &dx, k, xs, 1, 0, "dx") < 0) {
        release(&s);
        return NULL;
    }
    const job j = {lp_backward_rows, dt, 0, p, &g, 0, {x, y, dy}, {dx}};
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = run_parts(&j, n0, n1, parts);
    Py_END_ALLOW_THREADS
    return finish(&s, rc);
}

/* adaptive pooling: geometry (N, H, W, C, Ho, Wo) */
static int adaptive_geometry(PyObject *t, pool_geo *g)
{
    idx v[6];
    if (read_ints(t, v, 6, "geometry") < 0)
        return -1;
    *g = (pool_geo){v[0], v[1], v[2], v[3], 1, 1, v[4], v[5], 1, 1, 0, 0};
    if (g->N < 1 || g->H < 1 || g->W < 1 || g->C < 1 || g->Ho < 1 || g->Wo < 1 ||
        g->H >= (1 << 15) || g->W >= (1 << 15) || g->Ho >= (1 << 15) || g->Wo >= (1 << 15)) {
        PyErr_SetString(PyExc_ValueError, "_native: adaptive pooling geometry out of range");
        return -1;
    }
    return 0;
}

static PyObject *py_adaptive(PyObject *args, int max, int backward)
{
    int dt, parts;
    PyObject *io, *ao = Py_None, *oo, *geo;
    idx n0, n1;
    const int ok = max ? PyArg_ParseTuple(args, "iOOOOnni", &dt, &io, &ao, &oo, &geo, &n0, &n1,
                                          &parts)
                       : PyArg_ParseTuple(args, "iOOOnni", &dt, &io, &oo, &geo, &n0, &n1, &parts);
    if (!ok)
        return NULL;
    pool_geo g;
    if (check_dtype(dt) < 0 || adaptive_geometry(geo, &g) < 0 ||
        check_range(n0, n1, g.N, "batch") < 0 || check_parts(parts, n0, n1) < 0)
        return NULL;
    buffers s = {.count = 0};
    void *in, *a = NULL, *out;
    const char k = kind_of(dt);
    const idx xs = PRODUCT(g.N, g.H, g.W, g.C), ys = PRODUCT(g.N, g.Ho, g.Wo, g.C);
    /* max forward: (x, argmax out, y out); max backward: (dy, argmax, dx out) */
    if (get(&s, io, &in, k, backward ? ys : xs, 0, 0, backward ? "dy" : "x") < 0 ||
        (max && get(&s, ao, &a, 'i', ys, !backward, 0, "argmax") < 0) ||
        get(&s, oo, &out, k, backward ? xs : ys, 1, 0, backward ? "dx" : "y") < 0) {
        release(&s);
        return NULL;
    }
    job j = {adaptive_avg_rows, dt, backward, 0, &g, 0, {in}, {out}};
    if (max)
        j = backward ? (job){max_backward_rows, dt, 1, 0, &g, 0, {in, a}, {out}}
                     : (job){max_forward_rows, dt, 1, 0, &g, 0, {in}, {out, a}};
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = run_parts(&j, n0, n1, parts);
    Py_END_ALLOW_THREADS
    return finish(&s, rc);
}

static PyObject *py_adaptive_max_forward(PyObject *self, PyObject *a) { return py_adaptive(a, 1, 0); }
static PyObject *py_adaptive_max_backward(PyObject *self, PyObject *a) { return py_adaptive(a, 1, 1); }
static PyObject *py_adaptive_avg_forward(PyObject *self, PyObject *a) { return py_adaptive(a, 0, 0); }
static PyObject *py_adaptive_avg_backward(PyObject *self, PyObject *a) { return py_adaptive(a, 0, 1); }

/* ===== per-channel passes ================================================================= */

static int matrix(idx M, idx C, idx m0, idx m1, int parts)
{
    if (M < 0 || C < 1 || PRODUCT(M, C) < 0) {
        PyErr_SetString(PyExc_ValueError, "_native: matrix shape out of range");
        return -1;
    }
    return check_range(m0, m1, M, "row") < 0 ? -1 : check_parts(parts, m0, m1);
}

/* sums: one (2, C) float64 copy per part */
static int sums_rows(const job *j, idx r0, idx r1, int part)
{
    return channel_sums(j->dt, j->in[0], j->in[1], j->in[2], j->in[3],
                        (double *)j->out[0] + 2 * j->C * part, r0, r1, j->C);
}

static int map_rows(const job *j, idx r0, idx r1, int part)
{
    return channel_map(j->dt, j->in[0], j->in[1], j->in[2], j->in[3], j->in[4], j->flag,
                       j->out[0], r0, r1, j->C);
}

static int grad_rows(const job *j, idx r0, idx r1, int part)
{
    return channel_grad(j->dt, j->in[0], j->in[1], j->in[2], j->in[3], j->in[4], j->in[5],
                        j->in[6], j->out[0], j->out[1], r0, r1, j->C);
}

static PyObject *py_channel_sums(PyObject *self, PyObject *args)
{
    int dt, parts;
    PyObject *xo, *yo, *dyo, *co, *so;
    idx M, C, m0, m1;
    if (!PyArg_ParseTuple(args, "iOOOOOnnnni", &dt, &xo, &yo, &dyo, &co, &so, &M, &C, &m0, &m1,
                          &parts))
        return NULL;
    if (check_dtype(dt) < 0 || matrix(M, C, m0, m1, parts) < 0)
        return NULL;
    buffers s = {.count = 0};
    void *x, *y, *dy, *c, *sums;
    const char k = kind_of(dt);
    const idx n = PRODUCT(M, C);
    if (get(&s, xo, &x, k, n, 0, 1, "x") < 0 || get(&s, yo, &y, k, n, 0, 1, "y") < 0 ||
        get(&s, dyo, &dy, k, n, 0, 1, "dy") < 0 || get(&s, co, &c, k, C, 0, 1, "center") < 0 ||
        get(&s, so, &sums, 'd', PRODUCT(parts, 2, C), 1, 0, "sums") < 0) {
        release(&s);
        return NULL;
    }
    if ((!dy && !x) || (!dy && y)) {
        release(&s);
        PyErr_SetString(PyExc_ValueError, "_native: channel_sums needs x, or dy");
        return NULL;
    }
    const job j = {sums_rows, dt, 0, 0, NULL, C, {x, y, dy, c}, {sums}};
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = run_parts(&j, m0, m1, parts);
    Py_END_ALLOW_THREADS
    return finish(&s, rc);
}

static PyObject *py_channel_map(PyObject *self, PyObject *args)
{
    int dt, relu, parts;
    PyObject *xo, *co, *sco, *sho, *ro, *oo;
    idx M, C, m0, m1;
    if (!PyArg_ParseTuple(args, "iOOOOOpOnnnni", &dt, &xo, &co, &sco, &sho, &ro, &relu, &oo, &M,
                          &C, &m0, &m1, &parts))
        return NULL;
    if (check_dtype(dt) < 0 || matrix(M, C, m0, m1, parts) < 0)
        return NULL;
    buffers s = {.count = 0};
    void *x, *c, *sc, *sh, *r, *out;
    const char k = kind_of(dt);
    const idx n = PRODUCT(M, C);
    if (get(&s, xo, &x, k, n, 0, 0, "x") < 0 || get(&s, co, &c, k, C, 0, 1, "center") < 0 ||
        get(&s, sco, &sc, k, C, 0, 1, "scale") < 0 || get(&s, sho, &sh, k, C, 0, 1, "shift") < 0 ||
        get(&s, ro, &r, k, n, 0, 1, "residual") < 0 || get(&s, oo, &out, k, n, 1, 0, "out") < 0) {
        release(&s);
        return NULL;
    }
    const job j = {map_rows, dt, relu, 0, NULL, C, {x, c, sc, sh, r}, {out}};
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = run_parts(&j, m0, m1, parts);
    Py_END_ALLOW_THREADS
    return finish(&s, rc);
}

static PyObject *py_channel_grad(PyObject *self, PyObject *args)
{
    int dt, parts;
    PyObject *dyo, *yo, *xo, *co, *sco, *oo, *slo, *dxo, *dro;
    idx M, C, m0, m1;
    if (!PyArg_ParseTuple(args, "iOOOOOOOOOnnnni", &dt, &dyo, &yo, &xo, &co, &sco, &oo, &slo,
                          &dxo, &dro, &M, &C, &m0, &m1, &parts))
        return NULL;
    if (check_dtype(dt) < 0 || matrix(M, C, m0, m1, parts) < 0)
        return NULL;
    buffers s = {.count = 0};
    void *dy, *y, *x, *c, *sc, *of, *sl, *dx, *dr;
    const char k = kind_of(dt);
    const idx n = PRODUCT(M, C);
    if (get(&s, dyo, &dy, k, n, 0, 0, "dy") < 0 || get(&s, yo, &y, k, n, 0, 1, "y") < 0 ||
        get(&s, xo, &x, k, n, 0, 1, "x") < 0 || get(&s, co, &c, k, C, 0, 1, "center") < 0 ||
        get(&s, sco, &sc, k, C, 0, 1, "scale") < 0 || get(&s, oo, &of, k, C, 0, 1, "offset") < 0 ||
        get(&s, slo, &sl, k, C, 0, 1, "slope") < 0 || get(&s, dxo, &dx, k, n, 1, 1, "dx") < 0 ||
        get(&s, dro, &dr, k, n, 1, 1, "dres") < 0) {
        release(&s);
        return NULL;
    }
    if (sl && !x) {
        release(&s);
        PyErr_SetString(PyExc_ValueError, "_native: channel_grad's slope needs x");
        return NULL;
    }
    const job j = {grad_rows, dt, 0, 0, NULL, C, {dy, y, x, c, sc, of, sl}, {dx, dr}};
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = run_parts(&j, m0, m1, parts);
    Py_END_ALLOW_THREADS
    return finish(&s, rc);
}

/* ===== Winograd's tile transforms ========================================================= */

/* geometry (n, h, tw, C, oh, ow): n images of h rows of tw tiles on C channels, and the rows and
 * columns of the outputs (2h - 1 or 2h, 2tw - 1 or 2tw) */
static int tiles_geometry(PyObject *t, idx *g)
{
    if (read_ints(t, g, 6, "geometry") < 0)
        return -1;
    const int ok = g[0] >= 1 && g[1] >= 1 && g[2] >= 1 && g[3] >= 1 && g[4] >= 2 * g[1] - 1 &&
                   g[4] <= 2 * g[1] && g[5] >= 2 * g[2] - 1 && g[5] <= 2 * g[2] &&
                   PRODUCT(16, g[0], g[1] + 1, g[2] + 1, g[3]) > 0;
    if (!ok) {
        PyErr_SetString(PyExc_ValueError, "_native: tile geometry out of range");
        return -1;
    }
    return 0;
}

static int winograd_rows(const job *j, idx r0, idx r1, int part)
{
    const idx *g = j->geo;
    if (j->flag == 0)
        return winograd_input(j->dt, j->in[0], j->out[0], g[0], g[1], g[2], g[3], r0, r1);
    return (j->flag == 1 ? winograd_output : winograd_output_grad)(
        j->dt, j->in[0], j->out[0], g[0], g[1], g[2], g[3], g[4], g[5], r0, r1);
}

/* kind 0: input (xp (n, 2h + 2, 2tw + 2, C) -> v (16, n*h*tw, C)); 1: output (m (16, n*h*tw, C)
 * -> y (n, oh, ow, C)); 2: output_grad (dy (n, oh, ow, C) -> dm (16, n*h*tw, C)) */
static PyObject *py_winograd(PyObject *args, int kind)
{
    int dt, parts;
    PyObject *io, *oo, *geo;
    idx r0, r1, g[6];
    if (!PyArg_ParseTuple(args, "iOOOnni", &dt, &io, &oo, &geo, &r0, &r1, &parts))
        return NULL;
    if (check_dtype(dt) < 0 || tiles_geometry(geo, g) < 0 ||
        check_range(r0, r1, g[0] * g[1], "tile row") < 0 || check_parts(parts, r0, r1) < 0)
        return NULL;
    const idx tiles = PRODUCT(16, g[0], g[1], g[2], g[3]);
    const idx images = kind == 0 ? PRODUCT(g[0], 2 * g[1] + 2, 2 * g[2] + 2, g[3])
                                 : PRODUCT(g[0], g[4], g[5], g[3]);
    buffers s = {.count = 0};
    void *in, *out;
    const char k = kind_of(dt);
    if (get(&s, io, &in, k, kind == 1 ? tiles : images, 0, 0, "input") < 0 ||
        get(&s, oo, &out, k, kind == 1 ? images : tiles, 1, 0, "output") < 0) {
        release(&s);
        return NULL;
    }
    const job j = {winograd_rows, dt, kind, 0, g, 0, {in}, {out}};
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = run_parts(&j, r0, r1, parts);
    Py_END_ALLOW_THREADS
    return finish(&s, rc);
}

static PyObject *py_winograd_input(PyObject *self, PyObject *a) { return py_winograd(a, 0); }
static PyObject *py_winograd_output(PyObject *self, PyObject *a) { return py_winograd(a, 1); }
static PyObject *py_winograd_output_grad(PyObject *self, PyObject *a) { return py_winograd(a, 2); }

/* ===== instruction set ==================================================================== */

static int avx2_supported(void)
{
#if STRIATE_X86
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return 0;
#endif
}

static PyObject *py_isa(PyObject *self, PyObject *unused)
{
    return PyUnicode_FromString(striate_isa == ISA_AVX2 ? "avx2" : "baseline");
}

static PyObject *py_set_isa(PyObject *self, PyObject *args)
{
    const char *name;
    if (!PyArg_ParseTuple(args, "s", &name))
        return NULL;
    if (strcmp(name, "baseline") == 0)
        striate_isa = ISA_BASE;
    else if (strcmp(name, "avx2") == 0 && avx2_supported())
        striate_isa = ISA_AVX2;
    else {
        PyErr_Format(PyExc_ValueError, "_native: instruction set '%s' is not available here",
                     name);
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"conv2d_forward", py_conv2d_forward, METH_VARARGS, NULL},
    {"conv2d_backward", py_conv2d_backward, METH_VARARGS, NULL},
    {"depthwise_forward", py_depthwise_forward, METH_VARARGS, NULL},
    {"depthwise_backward", py_depthwise_backward, METH_VARARGS, NULL},
    {"max_pool_forward", py_max_pool_forward, METH_VARARGS, NULL},
    {"max_pool_backward", py_max_pool_backward, METH_VARARGS, NULL},
    {"avg_pool_forward", py_avg_pool_forward, METH_VARARGS, NULL},
    {"avg_pool_backward", py_avg_pool_backward, METH_VARARGS, NULL},
    {"lp_pool_forward", py_lp_pool_forward, METH_VARARGS, NULL},
    {"lp_pool_backward", py_lp_pool_backward, METH_VARARGS, NULL},
    {"adaptive_max_forward", py_adaptive_max_forward, METH_VARARGS, NULL},
    {"adaptive_max_backward", py_adaptive_max_backward, METH_VARARGS, NULL},
    {"adaptive_avg_forward", py_adaptive_avg_forward, METH_VARARGS, NULL},
    {"adaptive_avg_backward", py_adaptive_avg_backward, METH_VARARGS, NULL},
    {"channel_sums", py_channel_sums, METH_VARARGS, NULL},
    {"channel_map", py_channel_map, METH_VARARGS, NULL},
    {"channel_grad", py_channel_grad, METH_VARARGS, NULL},
    {"winograd_input", py_winograd_input, METH_VARARGS, NULL},
    {"winograd_output", py_winograd_output, METH_VARARGS, NULL},
    {"winograd_output_grad", py_winograd_output_grad, METH_VARARGS, NULL},
    {"isa", py_isa, METH_NOARGS, NULL},
    {"set_isa", py_set_isa, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_native",
    "Compiled kernels of striate; use them through striate.kernels.native.", -1, methods,
};

PyMODINIT_FUNC PyInit__native(void)
{
    striate_isa = avx2_supported() ? ISA_AVX2 : ISA_BASE;
    threads_init();
    return PyModule_Create(&module);
}
