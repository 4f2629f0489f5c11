/* Direct 2-D convolution, channels-last, for few channels (included by instantiate.h).
 *
 * Forward computes y[n,i,j,k] = b[k] + sum_{u,v,c} xp[n, i*sH + u*dH, j*sW + v*dW, c] w[u,v,c,k]
 * (xp: x zero-padded) one output row at a time, in blocks of JB output positions times NV
 * vectors of output channels: the JB*NV sums live in vector registers for the whole reduction
 * over the kernel's taps (u, v, c), each input value broadcast once and multiplied with NV
 * vectors of weights. JB and NV are compile-time constants (one function per pair), which is
 * what lets the compiler keep the sums in registers: with runtime sizes the same loops ran
 * 4-15x slower (issue 20).
 *
 * The weight gradient is the same product with the roles turned round: dw[t, k] =
 * sum_{positions} xp[position + offset(t)] g[position, k] for the taps t = (u, v, c), in blocks
 * of TB taps times NV vectors of channels, the sum over the positions of a band of rows.
 * The input gradient is a forward convolution (stride 1, same dilation) of g upsampled by the
 * stride (zeros between its rows and columns) and padded, with the kernel turned round and its
 * channel axes swapped: rows of g's buffer that hold only zeros are skipped.
 */

typedef struct {
    const T *xp;      /* padded input of one image (Hb, Wb, cin) */
    idx Wb, cin;
    const unsigned char *live; /* live[row]: row of xp can be non-zero (else skipped) */
    const T *wp;      /* packed weights (kH*kW*cin, Kp), Kp = cout rounded up to L */
    const T *bp;      /* bias (Kp) */
    idx Kp, cout;
    T *y;             /* output of one image (Ho, Wo, cout) */
    idx Wo, kH, kW, sH, sW, dH;
    const idx *off;   /* offset in xp of tap (v, c) of a kernel row: v*dW*cin + c */
    const idx *off_all; /* offset in xp of tap (u, v, c): u*dH*Wb*cin + v*dW*cin + c */
    int relu;
} FN(fwd_args);

#ifndef STRIATE_CONV_MACROS
#define STRIATE_CONV_MACROS

#define LOADV(dst, src) memcpy(&(dst), (src), sizeof(dst))
#define STOREV(dst, src) memcpy((dst), &(src), sizeof(src))

#define FWD_BLOCK(JB, NV)                                                                      \
    ATTR static void FN(fwd_block_##JB##_##NV)(const FN(fwd_args) *a, idx i, idx j0, idx kb,   \
                                               int all_live)                                   \
    {                                                                                          \
        V acc[JB][NV];                                                                         \
        for (int q = 0; q < NV; q++) {                                                         \
            V bv;                                                                              \
            LOADV(bv, a->bp + kb + q * L);                                                     \
            for (int jj = 0; jj < JB; jj++)                                                    \
                acc[jj][q] = bv;                                                               \
        }                                                                                      \
        const idx xstep = a->sW * a->cin, ntap = a->kW * a->cin;                               \
        /* every row of the window live: one loop over all kH*kW*C taps */                    \
        const idx rows = all_live ? 1 : a->kH, taps = all_live ? a->kH * ntap : ntap;          \
        const idx *off = all_live ? a->off_all : a->off;                                       \
        for (idx u = 0; u < rows; u++) {                                                       \
            const idx row = i * a->sH + u * a->dH;                                             \
            if (!a->live[row])                                                                 \
                continue; /* a row of zeros adds nothing (a table: no division here) */        \
            const T *xr = a->xp + (row * a->Wb + j0 * a->sW) * a->cin;                         \
            const T *wr = a->wp + u * ntap * a->Kp + kb;                                       \
            for (idx t = 0; t < taps; t++, wr += a->Kp) {                                      \
                const T *xe = xr + off[t];                                                     \
                V wv[NV];                                                                      \
                for (int q = 0; q < NV; q++)                                                   \
                    LOADV(wv[q], wr + q * L);                                                  \
                for (int jj = 0; jj < JB; jj++) {                                              \
                    const T s = xe[jj * xstep];                                                \
                    for (int q = 0; q < NV; q++)                                               \
                        acc[jj][q] += s * wv[q];                                               \
                }                                                                              \
            }                                                                                  \
        }                                                                                      \
        const idx nj = a->Wo - j0 < JB ? a->Wo - j0 : JB;                                      \
        T *yr = a->y + (i * a->Wo + j0) * a->cout + kb;                                        \
        const V zero = {0};                                                                    \
        for (idx jj = 0; jj < nj; jj++) {                                                      \
            for (int q = 0; q < NV; q++) {                                                     \
                V v = acc[jj][q];                                                              \
                if (a->relu) /* max(v, 0), NaN kept */                                         \
                    v = (V)((VI)v & ~(VI)(v < zero));                                          \
                const idx lanes = a->cout - kb - q * L;                                        \
                T *dst = yr + jj * a->cout + q * L;                                            \
                if (lanes >= L)                                                                \
                    STOREV(dst, v);                                                            \
                else                                                                           \
                    for (idx e = 0; e < lanes; e++)                                            \
                        dst[e] = v[e];                                                         \
            }                                                                                  \
        }                                                                                      \
    }

#define DW_BLOCK(TB, NV)                                                                       \
    ATTR static void FN(dw_block_##TB##_##NV)(const FN(dw_args) *a, idx t0, idx kb, idx i0,    \
                                             idx i1)                                           \
    {                                                                                          \
        V acc[TB][NV];                                                                         \
        const V zero = {0};                                                                    \
        idx o[TB];                                                                             \
        for (int tt = 0; tt < TB; tt++) {                                                      \
            o[tt] = a->off[t0 + tt];                                                           \
            for (int q = 0; q < NV; q++)                                                       \
                acc[tt][q] = zero;                                                             \
        }                                                                                      \
        const idx xstep = a->sW * a->cin;                                                      \
        for (idx i = i0; i < i1; i++) {                                                        \
            const T *xr = a->xp + i * a->sH * a->Wb * a->cin;                                  \
            const T *gr = a->gp + i * a->Wo * a->Kp + kb;                                      \
            for (idx j = 0; j < a->Wo; j++, xr += xstep, gr += a->Kp) {                        \
                V gv[NV];                                                                      \
                for (int q = 0; q < NV; q++)                                                   \
                    LOADV(gv[q], gr + q * L);                                                  \
                for (int tt = 0; tt < TB; tt++) {                                              \
                    const T s = xr[o[tt]];                                                     \
                    for (int q = 0; q < NV; q++)                                               \
                        acc[tt][q] += s * gv[q];                                               \
                }                                                                              \
            }                                                                                  \
        }                                                                                      \
        T *dr = a->dwp + t0 * a->Kp + kb;                                                      \
        for (int tt = 0; tt < TB; tt++)                                                        \
            for (int q = 0; q < NV; q++) {                                                     \
                V d;                                                                           \
                LOADV(d, dr + tt * a->Kp + q * L);                                             \
                d += acc[tt][q];                                                               \
                STOREV(dr + tt * a->Kp + q * L, d);                                            \
            }                                                                                  \
    }

#endif /* STRIATE_CONV_MACROS */

FWD_BLOCK(12, 1)
FWD_BLOCK(8, 1)
FWD_BLOCK(4, 1)
FWD_BLOCK(6, 2)
FWD_BLOCK(4, 2)
FWD_BLOCK(2, 2)

/* One output image: every row, every block of channels, every block of positions. */
ATTR static void FN(fwd_image)(const FN(fwd_args) *a, idx Ho)
{
    for (idx i = 0; i < Ho; i++) {
        int live = 1;
        for (idx u = 0; u < a->kH; u++)
            live &= a->live[i * a->sH + u * a->dH];
        idx kb = 0;
        for (; a->Kp - kb >= 2 * L; kb += 2 * L) {
            idx j0 = 0;
            for (; a->Wo - j0 >= 6; j0 += 6)
                FN(fwd_block_6_2)(a, i, j0, kb, live);
            const idx rest = a->Wo - j0;
            if (rest > 4)
                FN(fwd_block_6_2)(a, i, j0, kb, live);
            else if (rest > 2)
                FN(fwd_block_4_2)(a, i, j0, kb, live);
            else if (rest > 0)
                FN(fwd_block_2_2)(a, i, j0, kb, live);
        }
        if (kb < a->Kp) {
            idx j0 = 0;
            for (; a->Wo - j0 >= 12; j0 += 12)
                FN(fwd_block_12_1)(a, i, j0, kb, live);
            const idx rest = a->Wo - j0;
            if (rest > 8)
                FN(fwd_block_12_1)(a, i, j0, kb, live);
            else if (rest > 4)
                FN(fwd_block_8_1)(a, i, j0, kb, live);
            else if (rest > 0)
                FN(fwd_block_4_1)(a, i, j0, kb, live);
        }
    }
}

/* Columns of a padded buffer: wide enough for the last block of 12 positions to read. */
static inline idx FN(buffer_width)(idx width, idx Wo, idx sW, idx kW, idx dW)
{
    const idx blocks = (Wo + 11) / 12 * 12;
    const idx need = (blocks - 1) * sW + (kW - 1) * dW + 1;
    return need > width ? need : width;
}

ATTR static int FN(conv2d_forward)(const void *xv, const void *wv, const void *bv, void *yv,
                                   const conv_geo *g, int relu, idx n0, idx n1)
{
    const T *x = xv, *w = wv, *b = bv;
    T *y = yv;
    const idx C = g->C, K = g->K, Kp = (K + L - 1) / L * L, ntap = g->kH * g->kW * C;
    const idx Hb = g->pH0 + g->H + g->pH1;
    const idx Wb = FN(buffer_width)(g->pW0 + g->W + g->pW1, g->Wo, g->sW, g->kW, g->dW);
    T *wp = calloc((size_t)(ntap * Kp + Kp), sizeof(T));
    T *xp = calloc((size_t)(Hb * Wb * C), sizeof(T));
    idx *off = malloc(sizeof(idx) * (size_t)((g->kH + 1) * g->kW * C));
    unsigned char *live = malloc((size_t)Hb);
    if (!wp || !xp || !off || !live) {
        free(wp);
        free(xp);
        free(off);
        free(live);
        return -1;
    }
    for (idx r = 0; r < Hb; r++)
        live[r] = r >= g->pH0 && r < g->pH0 + g->H;
    T *bp = wp + ntap * Kp;
    for (idx t = 0; t < ntap; t++)
        memcpy(wp + t * Kp, w + t * K, sizeof(T) * (size_t)K);
    if (b)
        memcpy(bp, b, sizeof(T) * (size_t)K);
    idx *off_all = off + g->kW * C;
    for (idx u = 0; u < g->kH; u++)
        for (idx v = 0; v < g->kW; v++)
            for (idx c = 0; c < C; c++) {
                off[v * C + c] = v * g->dW * C + c;
                off_all[(u * g->kW + v) * C + c] = (u * g->dH * Wb + v * g->dW) * C + c;
            }
    FN(fwd_args) a = {xp, Wb, C, live, wp, bp, Kp, K, NULL,
                      g->Wo, g->kH, g->kW, g->sH, g->sW, g->dH, off, off_all, relu};
    const idx row = g->W * C;
    for (idx n = n0; n < n1; n++) {
        const T *xn = x + n * g->H * row;
        for (idx h = 0; h < g->H; h++) /* the padding stays zero from calloc */
            memcpy(xp + ((g->pH0 + h) * Wb + g->pW0) * C, xn + h * row, sizeof(T) * (size_t)row);
        a.y = y + n * g->Ho * g->Wo * K;
        FN(fwd_image)(&a, g->Ho);
    }
    free(wp);
    free(xp);
    free(off);
    free(live);
    return 0;
}

typedef struct {
    const T *xp;  /* padded input of one image (Hb, Wb, cin) */
    idx Wb, cin;
    const T *gp;  /* gradient of the output (Ho, Wo, Kp), channels padded with zeros */
    idx Kp, Wo, sH, sW;
    const idx *off; /* offset in xp of tap (u, v, c): (u*dH*Wb + v*dW)*cin + c, then zeros */
    T *dwp;       /* the sums (ntap rounded up, Kp) */
} FN(dw_args);

DW_BLOCK(12, 1)
DW_BLOCK(8, 1)
DW_BLOCK(4, 1)
DW_BLOCK(6, 2)
DW_BLOCK(4, 2)
DW_BLOCK(2, 2)

ATTR static void FN(dw_image)(const FN(dw_args) *a, idx ntap, idx Ho)
{
    /* Bands of rows whose gradient stays in the L2 cache while every block of taps reads it. */
    const idx band_rows = (idx)(128 * 1024 / sizeof(T)) / (a->Wo * a->Kp) + 1;
    for (idx i0 = 0; i0 < Ho; i0 += band_rows) {
        const idx i1 = i0 + band_rows < Ho ? i0 + band_rows : Ho;
        idx kb = 0;
        for (; a->Kp - kb >= 2 * L; kb += 2 * L) {
            idx t0 = 0;
            for (; ntap - t0 >= 6; t0 += 6)
                FN(dw_block_6_2)(a, t0, kb, i0, i1);
            const idx rest = ntap - t0;
            if (rest > 4)
                FN(dw_block_6_2)(a, t0, kb, i0, i1);
            else if (rest > 2)
                FN(dw_block_4_2)(a, t0, kb, i0, i1);
            else if (rest > 0)
                FN(dw_block_2_2)(a, t0, kb, i0, i1);
        }
        if (kb < a->Kp) {
            idx t0 = 0;
            for (; ntap - t0 >= 12; t0 += 12)
                FN(dw_block_12_1)(a, t0, kb, i0, i1);
            const idx rest = ntap - t0;
            if (rest > 8)
                FN(dw_block_12_1)(a, t0, kb, i0, i1);
            else if (rest > 4)
                FN(dw_block_8_1)(a, t0, kb, i0, i1);
            else if (rest > 0)
                FN(dw_block_4_1)(a, t0, kb, i0, i1);
        }
    }
}

/* dy routed through the ReLU (where y > 0, if y is given) into a buffer of Kp channels. */
ATTR static void FN(routed_rows)(T *dst, idx Kp, const T *dy, const T *y, idx P, idx K, T *db)
{
    for (idx p = 0; p < P; p++, dst += Kp, dy += K) {
        if (y) {
            const T *yr = y + p * K;
            for (idx k = 0; k < K; k++) {
                const T d = dy[k]; /* both loaded: a select, not a branch on random signs */
                dst[k] = yr[k] > 0 ? d : 0;
            }
        } else {
            memcpy(dst, dy, sizeof(T) * (size_t)K);
        }
        if (db)
            for (idx k = 0; k < K; k++)
                db[k] += dst[k];
    }
}

/* The same into the dw buffer gp (P, Kp), a vector at a time: a row's last vector reads on
 * into the next row, so the padding lanes k >= K of gp hold values of the next position. They
 * only feed sums of lanes k >= K, which are never read back (dw and db keep k < K); the last
 * vectors, which would read past the image, are done lane by lane instead. db (Kp) += g. */
ATTR static void FN(routed_padded)(T *restrict gp, idx Kp, const T *restrict dy,
                                   const T *restrict y, idx P, idx K, T *restrict db)
{
    const V zero = {0};
    const idx total = P * K;
    for (idx kb = 0; kb < Kp; kb += L) {
        V sum = zero; /* db's share in a register: no chain through memory per position */
        for (idx p = 0; p < P; p++) {
            const idx at = p * K + kb;
            V g;
            if (at + L <= total) {
                LOADV(g, dy + at);
                if (y) {
                    V yv;
                    LOADV(yv, y + at);
                    g = (V)((VI)g & (VI)(yv > zero));
                }
            } else {
                for (int e = 0; e < L; e++)
                    g[e] = kb + e < K && (!y || y[at + e] > 0) ? dy[at + e] : 0;
            }
            STOREV(gp + p * Kp + kb, g);
            sum += g;
        }
        V d;
        LOADV(d, db + kb);
        d += sum;
        STOREV(db + kb, d);
    }
}

ATTR static int FN(conv2d_backward)(const void *xv, const void *wv, const void *dyv,
                                    const void *yv, void *dxv, void *dwv, void *dbv,
                                    const conv_geo *g, idx n0, idx n1)
{
    const T *x = xv, *w = wv, *dy = dyv, *y = yv;
    T *dx = dxv, *dw = dwv, *db = dbv;
    const idx C = g->C, K = g->K, kH = g->kH, kW = g->kW, Ho = g->Ho, Wo = g->Wo;
    const idx Kp = (K + L - 1) / L * L, Cp = (C + L - 1) / L * L, ntap = kH * kW * C;
    const idx Hb = g->pH0 + g->H + g->pH1, Wb = g->pW0 + g->W + g->pW1;
    /* the input gradient's buffer: g upsampled by the stride, padded by (k-1)*d - p0 first */
    const idx P0 = (kH - 1) * g->dH - g->pH0, Q0 = (kW - 1) * g->dW - g->pW0;
    const idx Hz = g->H + (kH - 1) * g->dH;
    const idx Wz = FN(buffer_width)(g->W + (kW - 1) * g->dW, g->W, 1, kW, g->dW);
    const size_t nb = dw || db ? 1 : 0, nd = dx ? 1 : 0;
    T *xp = calloc(nb * (size_t)(Hb * Wb * C), sizeof(T));
    T *gp = calloc(nb * (size_t)(Ho * Wo * Kp), sizeof(T));
    T *dwp = calloc(nb * (size_t)((ntap + 12) * Kp + Kp), sizeof(T)); /* the sums, then db */
    idx *off = malloc(sizeof(idx) * (size_t)(ntap + 12 + (kH + 1) * kW * K));
    T *gz = calloc(nd * (size_t)(Hz * Wz * K), sizeof(T));
    T *wt = calloc(nd * (size_t)(kH * kW * K * Cp + Cp), sizeof(T));
    unsigned char *live = malloc((size_t)Hz);
    if ((nb && (!xp || !gp || !dwp)) || !off || (nd && (!gz || !wt)) || !live) {
        free(xp);
        free(gp);
        free(dwp);
        free(off);
        free(gz);
        free(wt);
        free(live);
        return -1;
    }
    idx *offz = off + ntap + 12;
    T *dbp = nb ? dwp + (ntap + 12) * Kp : NULL;
    FN(dw_args) a = {xp, Wb, C, gp, Kp, Wo, g->sH, g->sW, off, dwp};
    if (nb) {
        for (idx u = 0, t = 0; u < kH; u++)
            for (idx v = 0; v < kW; v++)
                for (idx c = 0; c < C; c++)
                    off[t++] = (u * g->dH * Wb + v * g->dW) * C + c;
        for (idx t = ntap; t < ntap + 12; t++)
            off[t] = 0;
    }
    /* dx = forward convolution of gz with wt[u', v', k, c] = w[kH-1-u', kW-1-v', c, k] */
    for (idx r = 0; r < Hz; r++) /* rows of gz that hold a row of g */
        live[r] = r >= P0 && (r - P0) % g->sH == 0 && (r - P0) / g->sH < Ho;
    idx *offz_all = offz + kW * K;
    FN(fwd_args) f = {gz, Wz, K, live, wt, wt + kH * kW * K * Cp, Cp, C, NULL,
                      g->W, kH, kW, 1, 1, g->dH, offz, offz_all, 0};
    if (nd) {
        for (idx u = 0; u < kH; u++)
            for (idx v = 0; v < kW; v++)
                for (idx k = 0; k < K; k++)
                    for (idx c = 0; c < C; c++)
                        wt[((u * kW + v) * K + k) * Cp + c] =
                            w[(((kH - 1 - u) * kW + (kW - 1 - v)) * C + c) * K + k];
        for (idx u = 0; u < kH; u++)
            for (idx v = 0; v < kW; v++)
                for (idx k = 0; k < K; k++) {
                    offz[v * K + k] = v * g->dW * K + k;
                    offz_all[(u * kW + v) * K + k] = (u * g->dH * Wz + v * g->dW) * K + k;
                }
    }
    const idx row = g->W * C;
    for (idx n = n0; n < n1; n++) {
        const T *dyn = dy + n * Ho * Wo * K, *yn = y ? y + n * Ho * Wo * K : NULL;
        if (nb) {
            const T *xn = x + n * g->H * row;
            for (idx h = 0; h < g->H; h++)
                memcpy(xp + ((g->pH0 + h) * Wb + g->pW0) * C, xn + h * row,
                       sizeof(T) * (size_t)row);
            FN(routed_padded)(gp, Kp, dyn, yn, Ho * Wo, K, dbp);
            if (dw)
                FN(dw_image)(&a, ntap, Ho);
        }
        if (nd) {
            for (idx i = 0; i < Ho; i++) {
                const idx r = P0 + i * g->sH;
                if (r < 0 || r >= Hz)
                    continue;
                for (idx j = 0; j < Wo; j++) {
                    const idx cz = Q0 + j * g->sW;
                    if (cz < 0 || cz >= Wz)
                        continue;
                    const idx p = i * Wo + j;
                    FN(routed_rows)(gz + (r * Wz + cz) * K, K, dyn + p * K,
                                    yn ? yn + p * K : NULL, 1, K, NULL);
                }
            }
            f.y = dx + n * g->H * row;
            FN(fwd_image)(&f, g->H);
        }
    }
    if (dw)
        for (idx t = 0; t < ntap; t++)
            memcpy(dw + t * K, dwp + t * Kp, sizeof(T) * (size_t)K);
    if (db)
        memcpy(db, dbp, sizeof(T) * (size_t)K);
    free(xp);
    free(gp);
    free(dwp);
    free(off);
    free(gz);
    free(wt);
    free(live);
    return 0;
}
