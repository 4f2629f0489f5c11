/* Depthwise 2-D convolution (one filter per channel, groups = C), channels-last (included by
 * instantiate.h).
 *
 * y[n,i,j,c] = b[c] + sum_{u,v} xp[n, i*sH + u*dH, j*sW + v*dW, c] w[u,v,0,c]: every output
 * reads one channel only, so the vectors run along the channels (padded to a multiple of L in
 * a per-image buffer), in blocks of JB output positions times NV vectors of channels held in
 * registers over the kernel's taps, as the dense kernel (conv_direct_impl.h) does. The input
 * gradient is the same product on g upsampled by the stride and padded, with the kernel turned
 * round; the weight gradient sums xp * g over the positions in blocks of TB taps.
 */

typedef struct {
    const T *xp;               /* padded input of one image (Hb, Wb, Cp) */
    idx Wb, Cp, C;
    const unsigned char *live; /* live[row]: row of xp can be non-zero */
    const T *wp;               /* weights (kH*kW, Cp) */
    const T *bp;               /* bias (Cp) */
    T *y;                      /* output of one image (Ho, Wo, C) */
    idx Wo, kH, kW, sH, sW, dH, dW;
    int relu;
} FN(dwise_args);

#ifndef STRIATE_DEPTHWISE_MACROS
#define STRIATE_DEPTHWISE_MACROS

#define DWISE_BLOCK(JB, NV)                                                                    \
    ATTR static void FN(dwise_block_##JB##_##NV)(const FN(dwise_args) *a, idx i, idx j0,       \
                                                 idx cb)                                       \
    {                                                                                          \
        V acc[JB][NV];                                                                         \
        for (int q = 0; q < NV; q++) {                                                         \
            V bv;                                                                              \
            LOADV(bv, a->bp + cb + q * L);                                                     \
            for (int jj = 0; jj < JB; jj++)                                                    \
                acc[jj][q] = bv;                                                               \
        }                                                                                      \
        const idx xstep = a->sW * a->Cp;                                                       \
        for (idx u = 0; u < a->kH; u++) {                                                      \
            const idx row = i * a->sH + u * a->dH;                                             \
            if (!a->live[row])                                                                 \
                continue;                                                                      \
            const T *xr = a->xp + (row * a->Wb + j0 * a->sW) * a->Cp + cb;                     \
            for (idx v = 0; v < a->kW; v++) {                                                  \
                const T *xe = xr + v * a->dW * a->Cp;                                          \
                V wv[NV];                                                                      \
                for (int q = 0; q < NV; q++)                                                   \
                    LOADV(wv[q], a->wp + (u * a->kW + v) * a->Cp + cb + q * L);                \
                for (int jj = 0; jj < JB; jj++)                                                \
                    for (int q = 0; q < NV; q++) {                                             \
                        V xv;                                                                  \
                        LOADV(xv, xe + jj * xstep + q * L);                                    \
                        acc[jj][q] += xv * wv[q];                                              \
                    }                                                                          \
            }                                                                                  \
        }                                                                                      \
        const idx nj = a->Wo - j0 < JB ? a->Wo - j0 : JB;                                      \
        T *yr = a->y + (i * a->Wo + j0) * a->C + cb;                                           \
        const V zero = {0};                                                                    \
        for (idx jj = 0; jj < nj; jj++)                                                        \
            for (int q = 0; q < NV; q++) {                                                     \
                V v = acc[jj][q];                                                              \
                if (a->relu)                                                                   \
                    v = (V)((VI)v & ~(VI)(v < zero));                                          \
                const idx lanes = a->C - cb - q * L;                                           \
                T *dst = yr + jj * a->C + q * L;                                               \
                if (lanes >= L)                                                                \
                    STOREV(dst, v);                                                            \
                else                                                                           \
                    for (idx e = 0; e < lanes; e++)                                            \
                        dst[e] = v[e];                                                         \
            }                                                                                  \
    }

#endif /* STRIATE_DEPTHWISE_MACROS */

DWISE_BLOCK(8, 1)
DWISE_BLOCK(4, 1)
DWISE_BLOCK(4, 2)
DWISE_BLOCK(2, 2)

ATTR static void FN(dwise_image)(const FN(dwise_args) *a, idx Ho)
{
    for (idx i = 0; i < Ho; i++) {
        idx cb = 0;
        for (; a->Cp - cb >= 2 * L; cb += 2 * L) {
            idx j0 = 0;
            for (; a->Wo - j0 >= 4; j0 += 4)
                FN(dwise_block_4_2)(a, i, j0, cb);
            if (a->Wo - j0 > 2)
                FN(dwise_block_4_2)(a, i, j0, cb);
            else if (a->Wo - j0 > 0)
                FN(dwise_block_2_2)(a, i, j0, cb);
        }
        if (cb < a->Cp) {
            idx j0 = 0;
            for (; a->Wo - j0 >= 8; j0 += 8)
                FN(dwise_block_8_1)(a, i, j0, cb);
            if (a->Wo - j0 > 4)
                FN(dwise_block_8_1)(a, i, j0, cb);
            else if (a->Wo - j0 > 0)
                FN(dwise_block_4_1)(a, i, j0, cb);
        }
    }
}

/* Columns of a padded buffer: wide enough for the last block of 8 positions to read. */
static inline idx FN(dwise_width)(idx width, idx Wo, idx sW, idx kW, idx dW)
{
    const idx need = ((Wo + 7) / 8 * 8 - 1) * sW + (kW - 1) * dW + 1;
    return need > width ? need : width;
}

/* rows [0, rows) of (rows, cols, C) src into dst (Hb, Wb, Cp) at (r0, c0), channels padded */
static inline void FN(put_image)(T *dst, idx Wb, idx Cp, idx r0, idx c0, const T *src,
                                 idx rows, idx cols, idx C)
{
    for (idx r = 0; r < rows; r++)
        for (idx c = 0; c < cols; c++)
            memcpy(dst + ((r0 + r) * Wb + c0 + c) * Cp, src + (r * cols + c) * C,
                   sizeof(T) * (size_t)C);
}

ATTR static int FN(depthwise_forward)(const void *xv, const void *wv, const void *bv, void *yv,
                                      const conv_geo *g, int relu, idx n0, idx n1)
{
    const T *x = xv, *w = wv, *b = bv;
    T *y = yv;
    const idx C = g->C, Cp = (C + L - 1) / L * L, ntap = g->kH * g->kW;
    const idx Hb = g->pH0 + g->H + g->pH1;
    const idx Wb = FN(dwise_width)(g->pW0 + g->W + g->pW1, g->Wo, g->sW, g->kW, g->dW);
    T *wp = calloc((size_t)((ntap + 1) * Cp), sizeof(T));
    T *xp = calloc((size_t)(Hb * Wb * Cp), sizeof(T));
    unsigned char *live = malloc((size_t)Hb);
    if (!wp || !xp || !live) {
        free(wp);
        free(xp);
        free(live);
        return -1;
    }
    for (idx t = 0; t < ntap; t++)
        memcpy(wp + t * Cp, w + t * C, sizeof(T) * (size_t)C);
    if (b)
        memcpy(wp + ntap * Cp, b, sizeof(T) * (size_t)C);
    for (idx r = 0; r < Hb; r++)
        live[r] = r >= g->pH0 && r < g->pH0 + g->H;
    FN(dwise_args) a = {xp, Wb, Cp, C, live, wp, wp + ntap * Cp, NULL,
                        g->Wo, g->kH, g->kW, g->sH, g->sW, g->dH, g->dW, relu};
    for (idx n = n0; n < n1; n++) {
        FN(put_image)(xp, Wb, Cp, g->pH0, g->pW0, x + n * g->H * g->W * C, g->H, g->W, C);
        a.y = y + n * g->Ho * g->Wo * C;
        FN(dwise_image)(&a, g->Ho);
    }
    free(wp);
    free(xp);
    free(live);
    return 0;
}

ATTR static int FN(depthwise_backward)(const void *xv, const void *wv, const void *dyv,
                                       const void *yv, void *dxv, void *dwv, void *dbv,
                                       const conv_geo *g, idx n0, idx n1)
{
    const T *x = xv, *w = wv, *dy = dyv, *y = yv;
    T *dx = dxv, *dw = dwv, *db = dbv;
    const idx C = g->C, Cp = (C + L - 1) / L * L, kH = g->kH, kW = g->kW, ntap = kH * kW;
    const idx Ho = g->Ho, Wo = g->Wo, Hb = g->pH0 + g->H + g->pH1, Wb = g->pW0 + g->W + g->pW1;
    const idx P0 = (kH - 1) * g->dH - g->pH0, Q0 = (kW - 1) * g->dW - g->pW0;
    const idx Hz = g->H + (kH - 1) * g->dH;
    const idx Wz = FN(dwise_width)(g->W + (kW - 1) * g->dW, g->W, 1, kW, g->dW);
    const size_t nb = dw || db ? 1 : 0, nd = dx ? 1 : 0;
    T *xp = calloc(nb * (size_t)(Hb * Wb * Cp), sizeof(T));
    T *gp = calloc((size_t)(Ho * Wo * Cp), sizeof(T));
    T *dwp = calloc((size_t)((ntap + 1) * Cp), sizeof(T)); /* the sums, then db's */
    T *gz = calloc(nd * (size_t)(Hz * Wz * Cp), sizeof(T));
    T *wf = calloc(nd * (size_t)((ntap + 1) * Cp), sizeof(T));
    unsigned char *live = malloc((size_t)Hz);
    if ((nb && !xp) || !gp || !dwp || (nd && (!gz || !wf)) || !live) {
        free(xp);
        free(gp);
        free(dwp);
        free(gz);
        free(wf);
        free(live);
        return -1;
    }
    if (nd) {
        for (idx u = 0; u < kH; u++) /* the kernel turned round */
            for (idx v = 0; v < kW; v++)
                memcpy(wf + (u * kW + v) * Cp, w + ((kH - 1 - u) * kW + (kW - 1 - v)) * C,
                       sizeof(T) * (size_t)C);
        for (idx r = 0; r < Hz; r++)
            live[r] = r >= P0 && (r - P0) % g->sH == 0 && (r - P0) / g->sH < Ho;
    }
    FN(dwise_args) f = {gz, Wz, Cp, C, live, wf, wf + ntap * Cp, NULL,
                        g->W, kH, kW, 1, 1, g->dH, g->dW, 0};
    T *dbp = dwp + ntap * Cp;
    for (idx n = n0; n < n1; n++) {
        const T *dyn = dy + n * Ho * Wo * C, *yn = y ? y + n * Ho * Wo * C : NULL;
        for (idx p = 0; p < Ho * Wo; p++) { /* g = dy where y > 0, channels padded */
            T *dst = gp + p * Cp;
            for (idx c = 0; c < C; c++) {
                const T d = dyn[p * C + c];
                dst[c] = yn ? (yn[p * C + c] > 0 ? d : 0) : d;
            }
        }
        if (nb) {
            FN(put_image)(xp, Wb, Cp, g->pH0, g->pW0, x + n * g->H * g->W * C, g->H, g->W, C);
            for (idx p = 0; p < Ho * Wo; p++)
                for (idx c = 0; c < Cp; c++)
                    dbp[c] += gp[p * Cp + c];
            if (dw)
                for (idx cb = 0; cb < Cp; cb += L)
                    for (idx u = 0; u < kH; u++)
                        for (idx v = 0; v < kW; v++) {
                            /* one tap, one vector of channels: the sum over the positions */
                            V acc[4] = {{0}, {0}, {0}, {0}};
                            const idx off = (u * g->dH * Wb + v * g->dW) * Cp + cb;
                            for (idx i = 0; i < Ho; i++) {
                                const T *xr = xp + i * g->sH * Wb * Cp + off;
                                const T *gr = gp + i * Wo * Cp + cb;
                                idx j = 0;
                                for (; j + 4 <= Wo; j += 4)
                                    for (int jj = 0; jj < 4; jj++) {
                                        V xv, gv;
                                        LOADV(xv, xr + (j + jj) * g->sW * Cp);
                                        LOADV(gv, gr + (j + jj) * Cp);
                                        acc[jj] += xv * gv;
                                    }
                                for (; j < Wo; j++) {
                                    V xv, gv;
                                    LOADV(xv, xr + j * g->sW * Cp);
                                    LOADV(gv, gr + j * Cp);
                                    acc[0] += xv * gv;
                                }
                            }
                            V d;
                            T *dst = dwp + (u * kW + v) * Cp + cb;
                            LOADV(d, dst);
                            d += (acc[0] + acc[1]) + (acc[2] + acc[3]);
                            STOREV(dst, d);
                        }
        }
        if (nd) {
            for (idx i = 0; i < Ho; i++) {
                const idx r = P0 + i * g->sH;
                if (r < 0 || r >= Hz)
                    continue;
                for (idx j = 0; j < Wo; j++) {
                    const idx cz = Q0 + j * g->sW;
                    if (cz >= 0 && cz < Wz)
                        memcpy(gz + (r * Wz + cz) * Cp, gp + (i * Wo + j) * Cp,
                               sizeof(T) * (size_t)Cp);
                }
            }
            f.y = dx + n * g->H * g->W * C;
            FN(dwise_image)(&f, g->H);
        }
    }
    if (dw)
        for (idx t = 0; t < ntap; t++)
            memcpy(dw + t * C, dwp + t * Cp, sizeof(T) * (size_t)C);
    if (db)
        memcpy(db, dbp, sizeof(T) * (size_t)C);
    free(xp);
    free(gp);
    free(dwp);
    free(gz);
    free(wf);
    free(live);
    return 0;
}
