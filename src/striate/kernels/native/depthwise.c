/* Depthwise 2-D convolution (groups = channels): forward (bias and ReLU fused) and backward. */
#include "common.h"

#define LOADV(dst, src) memcpy(&(dst), (src), sizeof(dst))
#define STOREV(dst, src) memcpy((dst), &(src), sizeof(src))

#define IMPL "depthwise_impl.h"
#include "instantiate.h"

typedef int (*dw_fwd_fn)(const void *, const void *, const void *, void *, const conv_geo *,
                         int, idx, idx);
typedef int (*dw_bwd_fn)(const void *, const void *, const void *, const void *, void *, void *,
                         void *, const conv_geo *, idx, idx);

static const dw_fwd_fn fwd_variants[2][2] = VARIANTS(depthwise_forward);
static const dw_bwd_fn bwd_variants[2][2] = VARIANTS(depthwise_backward);

int depthwise_forward(int dt, const void *x, const void *w, const void *b, void *y,
                      const conv_geo *g, int relu, idx n0, idx n1)
{
    return PICK(fwd_variants, dt)(x, w, b, y, g, relu, n0, n1);
}

int depthwise_backward(int dt, const void *x, const void *w, const void *dy, const void *y,
                       void *dx, void *dw, void *db, const conv_geo *g, idx n0, idx n1)
{
    return PICK(bwd_variants, dt)(x, w, dy, y, dx, dw, db, g, n0, n1);
}
