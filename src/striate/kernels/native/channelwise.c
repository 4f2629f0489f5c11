/* Per-channel passes: batch norm's statistics and normalisation, the fused
 * scale + shift + residual + ReLU that follows a convolution, and their gradients. */
#include "common.h"

#define IMPL "channelwise_impl.h"
#include "instantiate.h"

typedef int (*sums_fn)(const void *, const void *, const void *, const void *, double *, idx,
                       idx, idx);
typedef int (*map_fn)(const void *, const void *, const void *, const void *, const void *, int,
                      void *, idx, idx, idx);
typedef int (*grad_fn)(const void *, const void *, const void *, const void *, const void *,
                       const void *, const void *, void *, void *, idx, idx, idx);

static const sums_fn sums_variants[2][2] = VARIANTS(channel_sums);
static const map_fn map_variants[2][2] = VARIANTS(channel_map);
static const grad_fn grad_variants[2][2] = VARIANTS(channel_grad);

int channel_sums(int dt, const void *x, const void *y, const void *dy, const void *center,
                 double *sums, idx m0, idx m1, idx C)
{
    return PICK(sums_variants, dt)(x, y, dy, center, sums, m0, m1, C);
}

int channel_map(int dt, const void *x, const void *center, const void *scale,
                const void *shift, const void *res, int relu, void *out, idx m0, idx m1, idx C)
{
    return PICK(map_variants, dt)(x, center, scale, shift, res, relu, out, m0, m1, C);
}

int channel_grad(int dt, const void *dy, const void *y, const void *x, const void *center,
                 const void *scale, const void *offset, const void *slope, void *dx,
                 void *dres, idx m0, idx m1, idx C)
{
    return PICK(grad_variants, dt)(dy, y, x, center, scale, offset, slope, dx, dres, m0, m1, C);
}
