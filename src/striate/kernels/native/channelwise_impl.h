/* Per-channel passes over channels-last arrays seen as (M, C) matrices (included by
 * instantiate.h): the affine map of a bias or a batch norm with its residual and ReLU, its
 * gradient, and per-channel sums. Rows [m0, m1) are walked in chunks of R whole rows
 * (R*C >= 64 values) against the per-channel vectors repeated R times, so that the inner loop
 * runs along contiguous memory whatever C is (LeNet's 6 channels as ResNet's 512). Sums are
 * accumulated in double.
 */

/* v (C) repeated R times into dst (R*C); absent (NULL) stays NULL. */
static inline T *FN(tiled)(T *dst, const T *v, idx C, idx R)
{
    if (!v)
        return NULL;
    for (idx r = 0; r < R; r++)
        memcpy(dst + r * C, v, sizeof(T) * (size_t)C);
    return dst;
}

static inline idx FN(rows_per_chunk)(idx C)
{
    return C >= 64 ? 1 : (64 + C - 1) / C;
}

/* Without dy: sums[0][c] = sum (x - center), sums[1][c] = sum (x - center)^2.
 * With dy: g = dy where y > 0 (dy if y is NULL), sums[0][c] = sum g and, if x is given,
 * sums[1][c] = sum g * (x - center). center NULL: 0. */
ATTR static int FN(channel_sums)(const void *xv, const void *yv, const void *dyv,
                                 const void *centerv, double *sums, idx m0, idx m1, idx C)
{
    const T *x = xv, *y = yv, *dy = dyv;
    const idx R = FN(rows_per_chunk)(C), LT = R * C;
    T *ct = calloc((size_t)LT, sizeof(T));
    double *acc = calloc((size_t)(2 * LT), sizeof(double));
    if (!ct || !acc) {
        free(ct);
        free(acc);
        return -1;
    }
    if (centerv)
        FN(tiled)(ct, centerv, C, R);
    double *restrict a0 = acc, *restrict a1 = acc + LT;
    const T *restrict cr = ct;
    for (idx e0 = m0 * C; e0 < m1 * C; e0 += LT) {
        const idx len = m1 * C - e0 < LT ? m1 * C - e0 : LT;
        if (!dy) {
            const T *restrict xe = x + e0;
            for (idx e = 0; e < len; e++) {
                const double d = (double)(xe[e] - cr[e]);
                a0[e] += d;
                a1[e] += d * d;
            }
        } else {
            const T *restrict de = dy + e0;
            const T *restrict ye = y ? y + e0 : NULL;
            const T *restrict xe = x ? x + e0 : NULL;
            for (idx e = 0; e < len; e++) {
                const T gv = ye ? (ye[e] > 0 ? de[e] : 0) : de[e];
                a0[e] += (double)gv;
                if (xe)
                    a1[e] += (double)gv * (double)(xe[e] - cr[e]);
            }
        }
    }
    for (idx c = 0; c < C; c++)
        sums[c] = sums[C + c] = 0;
    for (idx r = 0; r < R; r++)
        for (idx c = 0; c < C; c++) {
            sums[c] += a0[r * C + c];
            sums[C + c] += a1[r * C + c];
        }
    free(ct);
    free(acc);
    return 0;
}

/* out = (x - center) * scale + shift + res, then max(., 0) if relu (NaN kept); an absent
 * (NULL) term is left out. out may be x. */
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
    const T *ct = FN(tiled)(buf, centerv, C, R);
    const T *st = FN(tiled)(buf + LT, scalev, C, R);
    const T *ht = FN(tiled)(buf + 2 * LT, shiftv, C, R);
    for (idx e0 = m0 * C; e0 < m1 * C; e0 += LT) {
        const idx len = m1 * C - e0 < LT ? m1 * C - e0 : LT;
        const T *xe = x + e0;
        T *oe = out + e0;
        const T *re = res ? res + e0 : NULL;
        for (idx e = 0; e < len; e++) {
            T v = xe[e];
            if (ct)
                v -= ct[e];
            if (st)
                v *= st[e];
            if (ht)
                v += ht[e];
            if (re)
                v += re[e];
            if (relu)
                v = v < 0 ? 0 : v;
            oe[e] = v;
        }
    }
    free(buf);
    return 0;
}

/* g = dy where y > 0 (dy if y is NULL); dres = g; dx = scale * (g - offset - (x - center) *
 * slope), absent (NULL) terms left out (slope needs x). */
ATTR static int FN(channel_grad)(const void *dyv, const void *yv, const void *xv,
                                 const void *centerv, const void *scalev, const void *offsetv,
                                 const void *slopev, void *dxv, void *dresv, idx m0, idx m1,
                                 idx C)
{
    const T *dy = dyv, *y = yv, *x = xv;
    T *dx = dxv, *dres = dresv;
    const idx R = FN(rows_per_chunk)(C), LT = R * C;
    T *buf = malloc(sizeof(T) * (size_t)(4 * LT));
    if (!buf)
        return -1;
    const T *ct = FN(tiled)(buf, centerv, C, R);
    const T *st = FN(tiled)(buf + LT, scalev, C, R);
    const T *ot = FN(tiled)(buf + 2 * LT, offsetv, C, R);
    const T *lt = FN(tiled)(buf + 3 * LT, slopev, C, R);
    for (idx e0 = m0 * C; e0 < m1 * C; e0 += LT) {
        const idx len = m1 * C - e0 < LT ? m1 * C - e0 : LT;
        const T *de = dy + e0, *ye = y ? y + e0 : NULL, *xe = x ? x + e0 : NULL;
        T *dxe = dx ? dx + e0 : NULL, *dre = dres ? dres + e0 : NULL;
        for (idx e = 0; e < len; e++) {
            const T gv = ye ? (ye[e] > 0 ? de[e] : 0) : de[e];
            if (dre)
                dre[e] = gv;
            if (dxe) {
                T v = gv;
                if (ot)
                    v -= ot[e];
                if (lt)
                    v -= (ct ? xe[e] - ct[e] : xe[e]) * lt[e];
                if (st)
                    v *= st[e];
                dxe[e] = v;
            }
        }
    }
    free(buf);
    return 0;
}
