/* Winograd F(2x2, 3x3)'s tile transforms (included by instantiate.h): the passes over memory
 * around its 16 products (striate/kernels/conv/winograd.py has the algorithm and the
 * matrices). Each works on a piece of n images of h rows of tw tiles; e = 4a + b numbers the
 * 16 elements of a tile's transform, whose planes are n*h*tw*C values apart, and the innermost
 * loops run along the C contiguous channels, which the compiler vectorises. The arithmetic is
 * the NumPy passes' own, operation for operation in the same order: both give the same bits.
 *
 *   input:       v[e][tile][c] = (B^T d B)[a][b], d the 4x4 window of xp at (2r, 2q)
 *   output:      y[2r + i][2q + j][c] = (A^T m A)[i][j], cut at the piece's edge (oh, ow)
 *   output_grad: dm[e][tile][c] = (A dY A^T)[a][b], dY the tile's 2x2 outputs (0 outside)
 *
 * with tile = (image * h + r) * tw + q, B^T = [[1,0,-1,0], [0,1,1,0], [0,-1,1,0], [0,1,0,-1]]
 * and A^T = [[1,1,1,0], [0,1,-1,-1]]. Rows [r0, r1) count tile rows: image * h + r.
 */

/* o_k = (B^T (d_0, d_1, d_2, d_3))_k, channel by channel */
ATTR static inline void FN(bt)(T *restrict o0, T *restrict o1, T *restrict o2, T *restrict o3,
                               const T *d0, const T *d1, const T *d2, const T *d3, idx C)
{
    for (idx c = 0; c < C; c++) {
        o0[c] = d0[c] - d2[c];
        o1[c] = d1[c] + d2[c];
        o2[c] = d2[c] - d1[c];
        o3[c] = d1[c] - d3[c];
    }
}

/* o_k = (A (u_0, u_1))_k, channel by channel (u NULL: zeros) */
ATTR static inline void FN(a)(T *restrict o0, T *restrict o1, T *restrict o2, T *restrict o3,
                              const T *u0, const T *u1, idx C)
{
    for (idx c = 0; c < C; c++) {
        const T x0 = u0 ? u0[c] : 0, x1 = u1 ? u1[c] : 0;
        o0[c] = x0;
        o1[c] = x0 + x1;
        o2[c] = x0 - x1;
        o3[c] = -x1;
    }
}

/* xp: (n, 2h + 2, 2tw + 2, C), the piece zero-padded; v: (16, n*h*tw, C) */
ATTR static int FN(winograd_input)(const void *xv, void *vv, idx n, idx h, idx tw, idx C,
                                   idx r0, idx r1)
{
    const T *xp = xv;
    T *v = vv;
    const idx wp = 2 * tw + 2, plane = n * h * tw * C;
    T *t = malloc(sizeof(T) * 16 * (size_t)C); /* B^T d: t[4a + column] */
    if (!t)
        return -1;
    for (idx row = r0; row < r1; row++) {
        const idx image = row / h, r = row % h;
        for (idx q = 0; q < tw; q++) {
            const T *d = xp + ((image * (2 * h + 2) + 2 * r) * wp + 2 * q) * C;
            for (idx k = 0; k < 4; k++) /* each column of the window, along its rows */
                FN(bt)(t + k * C, t + (4 + k) * C, t + (8 + k) * C, t + (12 + k) * C,
                       d + k * C, d + (wp + k) * C, d + (2 * wp + k) * C, d + (3 * wp + k) * C,
                       C);
            T *o = v + (row * tw + q) * C;
            for (idx a = 0; a < 4; a++) /* then each row of t, along its columns */
                FN(bt)(o + 4 * a * plane, o + (4 * a + 1) * plane, o + (4 * a + 2) * plane,
                       o + (4 * a + 3) * plane, t + 4 * a * C, t + (4 * a + 1) * C,
                       t + (4 * a + 2) * C, t + (4 * a + 3) * C, C);
        }
    }
    free(t);
    return 0;
}

/* m: (16, n*h*tw, C); y: (n, oh, ow, C), oh in {2h - 1, 2h}, ow in {2tw - 1, 2tw} */
ATTR static int FN(winograd_output)(const void *mv, void *yv, idx n, idx h, idx tw, idx C,
                                    idx oh, idx ow, idx r0, idx r1)
{
    const T *m = mv;
    T *y = yv;
    const idx plane = n * h * tw * C;
    T *s = malloc(sizeof(T) * 8 * (size_t)C); /* A^T M: s[4i + b] */
    if (!s)
        return -1;
    for (idx row = r0; row < r1; row++) {
        const idx image = row / h, r = row % h;
        for (idx q = 0; q < tw; q++) {
            const T *mt = m + (row * tw + q) * C;
            for (idx b = 0; b < 4; b++) {
                const T *m0 = mt + b * plane, *m1 = mt + (4 + b) * plane;
                const T *m2 = mt + (8 + b) * plane, *m3 = mt + (12 + b) * plane;
                T *s0 = s + b * C, *s1 = s + (4 + b) * C;
                for (idx c = 0; c < C; c++) {
                    s0[c] = (m0[c] + m1[c]) + m2[c];
                    s1[c] = (m1[c] - m2[c]) - m3[c];
                }
            }
            for (idx i = 0; i < 2 && 2 * r + i < oh; i++) {
                const T *u = s + 4 * i * C;
                T *dst = y + ((image * oh + 2 * r + i) * ow + 2 * q) * C;
                for (idx c = 0; c < C; c++)
                    dst[c] = (u[c] + u[C + c]) + u[2 * C + c];
                if (2 * q + 1 < ow)
                    for (idx c = 0; c < C; c++)
                        dst[C + c] = (u[C + c] - u[2 * C + c]) - u[3 * C + c];
            }
        }
    }
    free(s);
    return 0;
}

/* dy: (n, oh, ow, C), oh <= 2h, ow <= 2tw; dm: (16, n*h*tw, C) */
ATTR static int FN(winograd_output_grad)(const void *dyv, void *dmv, idx n, idx h, idx tw,
                                         idx C, idx oh, idx ow, idx r0, idx r1)
{
    const T *dy = dyv;
    T *dm = dmv;
    const idx plane = n * h * tw * C;
    T *t = malloc(sizeof(T) * 8 * (size_t)C); /* A dY: t[4 j + a], column j */
    if (!t)
        return -1;
    for (idx row = r0; row < r1; row++) {
        const idx image = row / h, r = row % h;
        for (idx q = 0; q < tw; q++) {
            for (idx j = 0; j < 2; j++) { /* each column of the tile, along its rows */
                const T *u[2] = {NULL, NULL};
                for (idx i = 0; i < 2; i++)
                    if (2 * r + i < oh && 2 * q + j < ow)
                        u[i] = dy + ((image * oh + 2 * r + i) * ow + 2 * q + j) * C;
                FN(a)(t + 4 * j * C, t + (4 * j + 1) * C, t + (4 * j + 2) * C,
                      t + (4 * j + 3) * C, u[0], u[1], C);
            }
            T *o = dm + (row * tw + q) * C;
            for (idx a = 0; a < 4; a++) /* then each row of A dY, along its two columns */
                FN(a)(o + 4 * a * plane, o + (4 * a + 1) * plane, o + (4 * a + 2) * plane,
                      o + (4 * a + 3) * plane, t + a * C, t + (4 + a) * C, C);
        }
    }
    free(t);
    return 0;
}
