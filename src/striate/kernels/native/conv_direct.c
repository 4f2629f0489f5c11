/* Direct 2-D convolution for few channels: forward (bias and ReLU fused) and backward. */
#include "common.h"

#define IMPL "conv_direct_impl.h"
#include "instantiate.h"

typedef int (*conv_fwd_fn)(const void *, const void *, const void *, void *, const conv_geo *,
                           int, idx, idx);
typedef int (*conv_bwd_fn)(const void *, const void *, const void *, const void *, void *,
                           void *, void *, const conv_geo *, idx, idx);

static const conv_fwd_fn conv_fwd_variants[2][2] = VARIANTS(conv2d_forward);
static const conv_bwd_fn conv_bwd_variants[2][2] = VARIANTS(conv2d_backward);

int conv2d_forward(int dt, const void *x, const void *w, const void *b, void *y,
                   const conv_geo *g, int relu, idx n0, idx n1)
{
    return PICK(conv_fwd_variants, dt)(x, w, b, y, g, relu, n0, n1);
}

int conv2d_backward(int dt, const void *x, const void *w, const void *dy, const void *y,
                    void *dx, void *dw, void *db, const conv_geo *g, idx n0, idx n1)
{
    return PICK(conv_bwd_variants, dt)(x, w, dy, y, dx, dw, db, g, n0, n1);
}
