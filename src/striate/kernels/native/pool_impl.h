/* Max and average pooling, channels-last (included by instantiate.h).
 *
 * Each output position walks its window in window (row-major) order over the elements that lie
 * on the input only: padding never wins a maximum and adds nothing to a sum, which is what
 * padding with -inf (max) or zeros (average) gives. The channels are the inner loop, so the
 * compiler vectorises along them. Max pooling keeps, per output, the window-order index
 * u*kW + v of the first maximum (a later element takes over only when strictly larger, or when
 * it is NaN, which then propagates, as in PyTorch); backward sends dy there.
 */

/* The part [u0, u1) x [v0, v1) of window (i, j) that lies on the input. */
#ifndef STRIATE_POOL_MACROS
#define STRIATE_POOL_MACROS
#include <math.h>
#define WINDOW(g, i, j)                                                                        \
    const idx h0 = (i) * (g)->sH - (g)->pH0, w0 = (j) * (g)->sW - (g)->pW0;                    \
    const idx u0 = h0 < 0 ? -h0 : 0, v0 = w0 < 0 ? -w0 : 0;                                    \
    const idx u1 = (g)->H - h0 < (g)->kH ? (g)->H - h0 : (g)->kH;                              \
    const idx v1 = (g)->W - w0 < (g)->kW ? (g)->W - w0 : (g)->kW;
#endif

/* Few channels: for an output row, the window maximum starting at EVERY column of the padded
 * input (not only every sW-th) is computed along the flat row of W*C values, so the inner loop
 * is long and contiguous whatever C is (vectorised: 8 floats a step); the outputs are then
 * copied out of it, C values every sW columns. Extra work for sW > 1, but with 6 channels the
 * per-window loops over c measured ~3x slower. */
ATTR static void FN(max_row_flat)(const T *xn, const pool_geo *g, idx i, T *restrict z,
                                  int32_t *restrict zi, T *yr, int32_t *ar)
{
    const idx C = g->C, W = g->W;
    const idx E = ((g->Wo - 1) * g->sW + 1) * C; /* flat window starts, padded coordinates */
    const idx h0 = i * g->sH - g->pH0;
    const idx u0 = h0 < 0 ? -h0 : 0, u1 = g->H - h0 < g->kH ? g->H - h0 : g->kH;
    const T lowest = -(T)INFINITY;
    for (idx col = 0, e = 0; e < E; col++) {
        /* the first element of the window on the input: (u0, max(0, pW0 - column)) */
        const int32_t first = (int32_t)(u0 * g->kW + (g->pW0 > col ? g->pW0 - col : 0));
        for (idx c = 0; c < C; c++, e++) {
            z[e] = lowest;
            zi[e] = first;
        }
    }
    for (idx u = u0; u < u1; u++) {
        const T *xr = xn + (h0 + u) * W * C;
        for (idx v = 0; v < g->kW; v++) {
            /* window starts e whose element v lies on the input: columns [pW0 - v, W + pW0 - v) */
            idx lo = (g->pW0 - v) * C, hi = (W + g->pW0 - v) * C;
            lo = lo < 0 ? 0 : lo;
            hi = hi > E ? E : hi;
            const T *restrict xe = xr + (v - g->pW0) * C;
            const int32_t id = (int32_t)(u * g->kW + v);
            for (idx e = lo; e < hi; e++) {
                const T val = xe[e], m = z[e];
                const int32_t a = zi[e];
                const int take = (val > m) | (val != val);
                z[e] = take ? val : m;
                zi[e] = take ? id : a;
            }
        }
    }
    for (idx j = 0; j < g->Wo; j++) {
        memcpy(yr + j * C, z + j * g->sW * C, sizeof(T) * (size_t)C);
        memcpy(ar + j * C, zi + j * g->sW * C, sizeof(int32_t) * (size_t)C);
    }
}

ATTR static int FN(max_pool_forward)(const void *xv, void *yv, int32_t *arg, const pool_geo *g,
                                     idx n0, idx n1)
{
    const T *x = xv;
    T *y = yv;
    const idx C = g->C;
    if (C < 2 * L) {
        const idx E = ((g->Wo - 1) * g->sW + 1) * C;
        T *z = malloc(sizeof(T) * (size_t)E);
        int32_t *zi = malloc(sizeof(int32_t) * (size_t)E);
        if (!z || !zi) {
            free(z);
            free(zi);
            return -1;
        }
        for (idx n = n0; n < n1; n++)
            for (idx i = 0; i < g->Ho; i++) {
                const idx p = (n * g->Ho + i) * g->Wo * C;
                FN(max_row_flat)(x + n * g->H * g->W * C, g, i, z, zi, y + p, arg + p);
            }
        free(z);
        free(zi);
        return 0;
    }
    for (idx n = n0; n < n1; n++) {
        const T *xn = x + n * g->H * g->W * C;
        for (idx i = 0; i < g->Ho; i++)
            for (idx j = 0; j < g->Wo; j++) {
                WINDOW(g, i, j)
                T *restrict yr = y + ((n * g->Ho + i) * g->Wo + j) * C;
                int32_t *restrict ar = arg + ((n * g->Ho + i) * g->Wo + j) * C;
                const T *first = xn + ((h0 + u0) * g->W + w0 + v0) * C;
                const int32_t id0 = (int32_t)(u0 * g->kW + v0);
                for (idx c = 0; c < C; c++) {
                    yr[c] = first[c];
                    ar[c] = id0;
                }
                for (idx u = u0; u < u1; u++)
                    for (idx v = (u == u0 ? v0 + 1 : v0); v < v1; v++) {
                        const T *restrict xe = xn + ((h0 + u) * g->W + w0 + v) * C;
                        const int32_t id = (int32_t)(u * g->kW + v);
                        for (idx c = 0; c < C; c++) {
                            /* every operand loaded first: selects, not branches */
                            const T val = xe[c], m = yr[c];
                            const int32_t a0 = ar[c];
                            const int take = (val > m) | (val != val);
                            yr[c] = take ? val : m;
                            ar[c] = take ? id : a0;
                        }
                    }
            }
    }
    return 0;
}

ATTR static int FN(max_pool_backward)(const void *dyv, const int32_t *arg, void *dxv,
                                      const pool_geo *g, idx n0, idx n1)
{
    const T *dy = dyv;
    T *dx = dxv;
    const idx C = g->C, window = g->kH * g->kW;
    /* index u*kW + v -> element offset, u, v */
    idx *offset = malloc(sizeof(idx) * (size_t)(3 * window));
    if (!offset)
        return -1;
    idx *row = offset + window, *col = offset + 2 * window;
    for (idx u = 0; u < g->kH; u++)
        for (idx v = 0; v < g->kW; v++) {
            offset[u * g->kW + v] = (u * g->W + v) * C;
            row[u * g->kW + v] = u;
            col[u * g->kW + v] = v;
        }
    const idx image = g->H * g->W * C;
    for (idx n = n0; n < n1; n++) {
        T *dxn = dx + n * image;
        /* zeroed image by image: the adds that follow find it in the L1/L2 cache */
        memset(dxn, 0, sizeof(T) * (size_t)image);
        for (idx i = 0; i < g->Ho; i++)
            for (idx j = 0; j < g->Wo; j++) {
                WINDOW(g, i, j)
                const idx p = ((n * g->Ho + i) * g->Wo + j) * C;
                const idx base = (h0 * g->W + w0) * C;
                const T *dyr = dy + p;
                const int32_t *ar = arg + p;
                /* An index that does not name an input element of the window is refused (the
                 * arrays come from Python: no write may land outside dx). A window inside the
                 * input needs only the range check. */
                if (u0 == 0 && v0 == 0 && u1 == g->kH && v1 == g->kW) {
                    T *restrict dw = dxn + base;
                    for (idx c = 0; c < C; c++) {
                        const uint32_t a = (uint32_t)ar[c];
                        if (a >= (uint32_t)window) {
                            free(offset);
                            return -2;
                        }
                        dw[offset[a] + c] += dyr[c];
                    }
                    continue;
                }
                for (idx c = 0; c < C; c++) {
                    const int32_t a = ar[c];
                    if (a < 0 || a >= window || row[a] < u0 || row[a] >= u1 || col[a] < v0 ||
                        col[a] >= v1) {
                        free(offset);
                        return -2;
                    }
                    dxn[base + offset[a] + c] += dyr[c];
                }
            }
    }
    free(offset);
    return 0;
}

ATTR static int FN(avg_pool_forward)(const void *xv, void *yv, const pool_geo *g,
                                     int include_pad, idx n0, idx n1)
{
    const T *x = xv;
    T *y = yv;
    const idx C = g->C;
    for (idx n = n0; n < n1; n++) {
        const T *xn = x + n * g->H * g->W * C;
        for (idx i = 0; i < g->Ho; i++)
            for (idx j = 0; j < g->Wo; j++) {
                WINDOW(g, i, j)
                T *restrict yr = y + ((n * g->Ho + i) * g->Wo + j) * C;
                const T count = include_pad ? (T)(g->kH * g->kW) : (T)((u1 - u0) * (v1 - v0));
                for (idx c = 0; c < C; c++)
                    yr[c] = 0;
                for (idx u = u0; u < u1; u++)
                    for (idx v = v0; v < v1; v++) {
                        const T *restrict xe = xn + ((h0 + u) * g->W + w0 + v) * C;
                        for (idx c = 0; c < C; c++)
                            yr[c] += xe[c];
                    }
                for (idx c = 0; c < C; c++)
                    yr[c] /= count;
            }
    }
    return 0;
}

ATTR static int FN(avg_pool_backward)(const void *dyv, void *dxv, const pool_geo *g,
                                      int include_pad, idx n0, idx n1)
{
    const T *dy = dyv;
    T *dx = dxv;
    const idx C = g->C, image = g->H * g->W * C;
    T *share = malloc(sizeof(T) * (size_t)C);
    if (!share)
        return -1;
    for (idx n = n0; n < n1; n++) {
        T *dxn = dx + n * image;
        /* zeroed image by image: the adds that follow find it in the L1/L2 cache */
        memset(dxn, 0, sizeof(T) * (size_t)image);
        for (idx i = 0; i < g->Ho; i++)
            for (idx j = 0; j < g->Wo; j++) {
                WINDOW(g, i, j)
                const T *dyr = dy + ((n * g->Ho + i) * g->Wo + j) * C;
                const T count = include_pad ? (T)(g->kH * g->kW) : (T)((u1 - u0) * (v1 - v0));
                for (idx c = 0; c < C; c++)
                    share[c] = dyr[c] / count;
                for (idx u = u0; u < u1; u++)
                    for (idx v = v0; v < v1; v++) {
                        T *restrict de = dxn + ((h0 + u) * g->W + w0 + v) * C;
                        for (idx c = 0; c < C; c++)
                            de[c] += share[c];
                    }
            }
    }
    free(share);
    return 0;
}

/* ===== L_p-norm pooling: y = (sum over the window's input elements of |x|^p)^(1/p) ======== */

static inline T FN(abs_pow)(T v, double p)
{
    const T a = v < 0 ? -v : v;
    return p == 2 ? a * a : p == 1 ? a : (T)pow((double)a, p);
}

ATTR static int FN(lp_pool_forward)(const void *xv, void *yv, const pool_geo *g, double p,
                                    idx n0, idx n1)
{
    const T *x = xv;
    T *y = yv;
    const idx C = g->C;
    for (idx n = n0; n < n1; n++) {
        const T *xn = x + n * g->H * g->W * C;
        for (idx i = 0; i < g->Ho; i++)
            for (idx j = 0; j < g->Wo; j++) {
                WINDOW(g, i, j)
                T *restrict yr = y + ((n * g->Ho + i) * g->Wo + j) * C;
                for (idx c = 0; c < C; c++)
                    yr[c] = 0;
                for (idx u = u0; u < u1; u++)
                    for (idx v = v0; v < v1; v++) {
                        const T *restrict xe = xn + ((h0 + u) * g->W + w0 + v) * C;
                        for (idx c = 0; c < C; c++)
                            yr[c] += FN(abs_pow)(xe[c], p);
                    }
                for (idx c = 0; c < C; c++)
                    yr[c] = p == 2 ? (T)sqrt((double)yr[c])
                          : p == 1 ? yr[c] : (T)pow((double)yr[c], 1 / p);
            }
    }
    return 0;
}

/* dx[i] = |x[i]|^(p-1) sign(x[i]) * sum over windows o holding i of dy[o] / y[o]^(p-1); a
 * window of zeros (y = 0) sends back 0. */
ATTR static int FN(lp_pool_backward)(const void *xv, const void *yv, const void *dyv, void *dxv,
                                     const pool_geo *g, double p, idx n0, idx n1)
{
    const T *x = xv, *y = yv, *dy = dyv;
    T *dx = dxv;
    const idx C = g->C, image = g->H * g->W * C;
    T *share = malloc(sizeof(T) * (size_t)C);
    if (!share)
        return -1;
    for (idx n = n0; n < n1; n++) {
        T *dxn = dx + n * image;
        /* zeroed image by image: the adds that follow find it in the L1/L2 cache */
        memset(dxn, 0, sizeof(T) * (size_t)image);
        for (idx i = 0; i < g->Ho; i++)
            for (idx j = 0; j < g->Wo; j++) {
                WINDOW(g, i, j)
                const idx at = ((n * g->Ho + i) * g->Wo + j) * C;
                for (idx c = 0; c < C; c++) {
                    const T yv = y[at + c];
                    const T power = p == 2 ? yv : p == 1 ? 1 : (T)pow((double)yv, p - 1);
                    share[c] = yv > 0 ? dy[at + c] / power : 0;
                }
                for (idx u = u0; u < u1; u++)
                    for (idx v = v0; v < v1; v++) {
                        T *restrict de = dxn + ((h0 + u) * g->W + w0 + v) * C;
                        for (idx c = 0; c < C; c++)
                            de[c] += share[c];
                    }
            }
        const T *xn = x + n * image;
        for (idx e = 0; e < image; e++) {
            const T v = xn[e];
            const T sign = (T)((v > 0) - (v < 0));
            const T factor = p == 2 ? v : p == 1 ? sign : FN(abs_pow)(v, p - 1) * sign;
            dxn[e] *= factor;
        }
    }
    free(share);
    return 0;
}

/* ===== adaptive pooling: output i pools [floor(i*I/O), ceil((i+1)*I/O)), PyTorch's windows == */

#ifndef STRIATE_ADAPTIVE_MACROS
#define STRIATE_ADAPTIVE_MACROS
#define ADAPTIVE_WINDOW(g, i, j)                                                               \
    const idx hs = (i) * (g)->H / (g)->Ho, he = ((i) + 1) * (g)->H / (g)->Ho +                 \
        (((i) + 1) * (g)->H % (g)->Ho != 0);                                                   \
    const idx ws = (j) * (g)->W / (g)->Wo, we = ((j) + 1) * (g)->W / (g)->Wo +                 \
        (((j) + 1) * (g)->W % (g)->Wo != 0);
#endif

/* argmax: the flat spatial index h*W + w of each window's first maximum (NaN propagates) */
ATTR static int FN(adaptive_max_forward)(const void *xv, void *yv, int32_t *arg,
                                         const pool_geo *g, idx n0, idx n1)
{
    const T *x = xv;
    T *y = yv;
    const idx C = g->C;
    for (idx n = n0; n < n1; n++) {
        const T *xn = x + n * g->H * g->W * C;
        for (idx i = 0; i < g->Ho; i++)
            for (idx j = 0; j < g->Wo; j++) {
                ADAPTIVE_WINDOW(g, i, j)
                T *restrict yr = y + ((n * g->Ho + i) * g->Wo + j) * C;
                int32_t *restrict ar = arg + ((n * g->Ho + i) * g->Wo + j) * C;
                for (idx c = 0; c < C; c++) {
                    yr[c] = xn[(hs * g->W + ws) * C + c];
                    ar[c] = (int32_t)(hs * g->W + ws);
                }
                for (idx h = hs; h < he; h++)
                    for (idx w = (h == hs ? ws + 1 : ws); w < we; w++) {
                        const T *restrict xe = xn + (h * g->W + w) * C;
                        const int32_t id = (int32_t)(h * g->W + w);
                        for (idx c = 0; c < C; c++) {
                            const T val = xe[c], m = yr[c];
                            const int32_t a0 = ar[c];
                            const int take = (val > m) | (val != val);
                            yr[c] = take ? val : m;
                            ar[c] = take ? id : a0;
                        }
                    }
            }
    }
    return 0;
}

ATTR static int FN(adaptive_max_backward)(const void *dyv, const int32_t *arg, void *dxv,
                                          const pool_geo *g, idx n0, idx n1)
{
    const T *dy = dyv;
    T *dx = dxv;
    const idx C = g->C, image = g->H * g->W * C;
    for (idx n = n0; n < n1; n++) {
        T *dxn = dx + n * image;
        /* zeroed image by image: the adds that follow find it in the L1/L2 cache */
        memset(dxn, 0, sizeof(T) * (size_t)image);
        for (idx i = 0; i < g->Ho; i++)
            for (idx j = 0; j < g->Wo; j++) {
                ADAPTIVE_WINDOW(g, i, j)
                const idx at = ((n * g->Ho + i) * g->Wo + j) * C;
                for (idx c = 0; c < C; c++) {
                    const int32_t a = arg[at + c];
                    const idx h = a / g->W, w = a - h * g->W;
                    if (a < 0 || h < hs || h >= he || w < ws || w >= we)
                        return -2; /* not an element of the window: refused */
                    dxn[(idx)a * C + c] += dy[at + c];
                }
            }
    }
    return 0;
}

ATTR static int FN(adaptive_avg_forward)(const void *xv, void *yv, const pool_geo *g, idx n0,
                                         idx n1)
{
    const T *x = xv;
    T *y = yv;
    const idx C = g->C;
    for (idx n = n0; n < n1; n++) {
        const T *xn = x + n * g->H * g->W * C;
        for (idx i = 0; i < g->Ho; i++)
            for (idx j = 0; j < g->Wo; j++) {
                ADAPTIVE_WINDOW(g, i, j)
                T *restrict yr = y + ((n * g->Ho + i) * g->Wo + j) * C;
                const T count = (T)((he - hs) * (we - ws));
                for (idx c = 0; c < C; c++)
                    yr[c] = 0;
                for (idx h = hs; h < he; h++)
                    for (idx w = ws; w < we; w++) {
                        const T *restrict xe = xn + (h * g->W + w) * C;
                        for (idx c = 0; c < C; c++)
                            yr[c] += xe[c];
                    }
                for (idx c = 0; c < C; c++)
                    yr[c] /= count;
            }
    }
    return 0;
}

ATTR static int FN(adaptive_avg_backward)(const void *dyv, void *dxv, const pool_geo *g, idx n0,
                                          idx n1)
{
    const T *dy = dyv;
    T *dx = dxv;
    const idx C = g->C, image = g->H * g->W * C;
    T *share = malloc(sizeof(T) * (size_t)C);
    if (!share)
        return -1;
    for (idx n = n0; n < n1; n++) {
        T *dxn = dx + n * image;
        /* zeroed image by image: the adds that follow find it in the L1/L2 cache */
        memset(dxn, 0, sizeof(T) * (size_t)image);
        for (idx i = 0; i < g->Ho; i++)
            for (idx j = 0; j < g->Wo; j++) {
                ADAPTIVE_WINDOW(g, i, j)
                const T count = (T)((he - hs) * (we - ws));
                const T *dyr = dy + ((n * g->Ho + i) * g->Wo + j) * C;
                for (idx c = 0; c < C; c++)
                    share[c] = dyr[c] / count;
                for (idx h = hs; h < he; h++)
                    for (idx w = ws; w < we; w++) {
                        T *restrict de = dxn + (h * g->W + w) * C;
                        for (idx c = 0; c < C; c++)
                            de[c] += share[c];
                    }
            }
    }
    free(share);
    return 0;
}
