/* Per-channel passes over channels-last arrays seen as (M, C) matrices (included by
 * instantiate.h): the affine map of a bias or a batch norm with its residual and ReLU, its
 * gradient, and per-channel sums. Rows [m0, m1) are walked in chunks of R whole rows
 * (R*C >= 64 values) against the per-channel vectors repeated R times, so that the inner loop
 * runs along contiguous memory whatever C is (LeNet's 6 channels as ResNet's 512). Absent
 * vectors are replaced by their neutral value (0 or 1) and every case is its own loop without
 * conditions inside, so that the compiler vectorises it; the ReLU's gradient is a select on
 * values loaded beforehand, never a branch on a random sign. Sums are accumulated in double.
 */

/* v (C) repeated R times into dst (R*C), or `fill` where v is NULL. */
static inline const T *FN(tiled)(T *dst, const T *v, T fill, idx C, idx R)
{
    for (idx r = 0; r < R; r++)
        for (idx c = 0; c < C; c++)
            dst[r * C + c] = v ? v[c] : fill;
    return dst;
}

static inline idx FN(rows_per_chunk)(idx C)
{
    return C >= 64 ? 1 : (64 + C - 1) / C;
}

/* g = dy where y > 0 (a select), into gb; returns g (dy itself when y is NULL). */
static inline const T *FN(routed)(T *restrict gb, const T *restrict dy, const T *restrict y,
                                  idx len)
{
    if (!y)
        return dy;
    for (idx e = 0; e < len; e++) {
        const T d = dy[e];
        gb[e] = y[e] > 0 ? d : 0;
    }
    return gb;
}

/* Without dy: sums[0][c] = sum (x - center), sums[1][c] = sum (x - center)^2.
 * With dy: g = dy where y > 0 (dy if y is NULL), sums[0][c] = sum g and, if x is given,
 * sums[1][c] = sum g * (x - center), else 0. center NULL: 0. */
ATTR static int FN(channel_sums)(const void *xv, const void *yv, const void *dyv,
                                 const void *centerv, double *sums, idx m0, idx m1, idx C)
{
    const T *x = xv, *y = yv, *dy = dyv;
    const idx R = FN(rows_per_chunk)(C), LT = R * C;
    T *buf = malloc(sizeof(T) * (size_t)(2 * LT));
    double *acc = calloc((size_t)(2 * LT), sizeof(double));
    if (!buf || !acc) {
        free(buf);
        free(acc);
        return -1;
    }
    const T *restrict cr = FN(tiled)(buf, centerv, 0, C, R);
    T *restrict gb = buf + LT;
    double *restrict a0 = acc, *restrict a1 = acc + LT;
    for (idx e0 = m0 * C; e0 < m1 * C; e0 += LT) {
        const idx len = m1 * C - e0 < LT ? m1 * C - e0 : LT;
        if (!dy) {
            const T *restrict xe = x + e0;
            for (idx e = 0; e < len; e++) {
                const double d = (double)(xe[e] - cr[e]);
                a0[e] += d;
                a1[e] += d * d;
            }
            continue;
        }
        const T *restrict g = FN(routed)(gb, dy + e0, y ? y + e0 : NULL, len);
        for (idx e = 0; e < len; e++)
            a0[e] += (double)g[e];
        if (x) {
            const T *restrict xe = x + e0;
            for (idx e = 0; e < len; e++)
                a1[e] += (double)g[e] * (double)(xe[e] - cr[e]);
        }
    }
    for (idx c = 0; c < C; c++)
        sums[c] = sums[C + c] = 0;
    for (idx r = 0; r < R; r++)
        for (idx c = 0; c < C; c++) {
            sums[c] += a0[r * C + c];
            sums[C + c] += a1[r * C + c];
        }
    free(buf);
    free(acc);
    return 0;
}

/* out = (x - center) * scale + shift + res, then max(., 0) if relu (NaN kept); an absent
 * (NULL) vector is neutral (0, 1, 0), an absent res adds nothing. out may be x. */
ATTR static int FN(channel_map)(const void *xv, const void *centerv, const void *scalev,
                                const void *shiftv, const void *resv, int relu, void *outv,
                                idx m0, idx m1, idx C)
{
    const T *x = xv, *res = resv;
    T *out = outv;
    const idx R = FN(rows_per_chunk)(C), LT = R * C;
    T *buf = malloc(sizeof(T) * (size_t)(3 * LT));
    if (!buf)
        return -1;
    const T *ct = FN(tiled)(buf, centerv, 0, C, R);
    const T *st = FN(tiled)(buf + LT, scalev, 1, C, R);
    const T *ht = FN(tiled)(buf + 2 * LT, shiftv, 0, C, R);
    for (idx e0 = m0 * C; e0 < m1 * C; e0 += LT) {
        const idx len = m1 * C - e0 < LT ? m1 * C - e0 : LT;
        const T *xe = x + e0;
        T *oe = out + e0;
        if (res && relu) {
            const T *re = res + e0;
            for (idx e = 0; e < len; e++) {
                const T v = (xe[e] - ct[e]) * st[e] + ht[e] + re[e];
                oe[e] = v < 0 ? 0 : v;
            }
        } else if (res) {
            const T *re = res + e0;
            for (idx e = 0; e < len; e++)
                oe[e] = (xe[e] - ct[e]) * st[e] + ht[e] + re[e];
        } else if (relu) {
            for (idx e = 0; e < len; e++) {
                const T v = (xe[e] - ct[e]) * st[e] + ht[e];
                oe[e] = v < 0 ? 0 : v;
            }
        } else {
            for (idx e = 0; e < len; e++)
                oe[e] = (xe[e] - ct[e]) * st[e] + ht[e];
        }
    }
    free(buf);
    return 0;
}

/* g = dy where y > 0 (dy if y is NULL); dres = g; dx = scale * (g - offset - (x - center) *
 * slope), absent (NULL) vectors neutral (slope: the term left out; it needs x). */
ATTR static int FN(channel_grad)(const void *dyv, const void *yv, const void *xv,
                                 const void *centerv, const void *scalev, const void *offsetv,
                                 const void *slopev, void *dxv, void *dresv, idx m0, idx m1,
                                 idx C)
{
    const T *dy = dyv, *y = yv, *x = xv;
    T *dx = dxv, *dres = dresv;
    const idx R = FN(rows_per_chunk)(C), LT = R * C;
    T *buf = malloc(sizeof(T) * (size_t)(5 * LT));
    if (!buf)
        return -1;
    const T *ct = FN(tiled)(buf, centerv, 0, C, R);
    const T *st = FN(tiled)(buf + LT, scalev, 1, C, R);
    const T *ot = FN(tiled)(buf + 2 * LT, offsetv, 0, C, R);
    const T *lt = FN(tiled)(buf + 3 * LT, slopev, 0, C, R);
    T *gb = buf + 4 * LT;
    for (idx e0 = m0 * C; e0 < m1 * C; e0 += LT) {
        const idx len = m1 * C - e0 < LT ? m1 * C - e0 : LT;
        /* dx may be dy itself (written in place): g and dxe may alias, no restrict */
        const T *g = FN(routed)(dres ? dres + e0 : gb, dy + e0, y ? y + e0 : NULL, len);
        if (dres && !y)
            memmove(dres + e0, g, sizeof(T) * (size_t)len);
        if (!dx)
            continue;
        T *dxe = dx + e0;
        if (slopev) {
            const T *restrict xe = x + e0;
            for (idx e = 0; e < len; e++)
                dxe[e] = (g[e] - ot[e] - (xe[e] - ct[e]) * lt[e]) * st[e];
        } else {
            for (idx e = 0; e < len; e++)
                dxe[e] = (g[e] - ot[e]) * st[e];
        }
    }
    free(buf);
    return 0;
}
