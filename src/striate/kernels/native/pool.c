/* Max pooling (with the index of each window's maximum) and average pooling. */
#include "common.h"

#define IMPL "pool_impl.h"
#include "instantiate.h"

typedef int (*max_fwd_fn)(const void *, void *, int32_t *, const pool_geo *, idx, idx);
typedef int (*max_bwd_fn)(const void *, const int32_t *, void *, const pool_geo *, idx, idx);
typedef int (*avg_fwd_fn)(const void *, void *, const pool_geo *, int, idx, idx);
typedef int (*avg_bwd_fn)(const void *, void *, const pool_geo *, int, idx, idx);

static const max_fwd_fn max_fwd_variants[2][2] = VARIANTS(max_pool_forward);
static const max_bwd_fn max_bwd_variants[2][2] = VARIANTS(max_pool_backward);
static const avg_fwd_fn avg_fwd_variants[2][2] = VARIANTS(avg_pool_forward);
static const avg_bwd_fn avg_bwd_variants[2][2] = VARIANTS(avg_pool_backward);

typedef int (*lp_fwd_fn)(const void *, void *, const pool_geo *, double, idx, idx);
typedef int (*lp_bwd_fn)(const void *, const void *, const void *, void *, const pool_geo *,
                         double, idx, idx);
typedef int (*ad_avg_fn)(const void *, void *, const pool_geo *, idx, idx);

static const lp_fwd_fn lp_fwd_variants[2][2] = VARIANTS(lp_pool_forward);
static const lp_bwd_fn lp_bwd_variants[2][2] = VARIANTS(lp_pool_backward);
static const max_fwd_fn ad_max_fwd_variants[2][2] = VARIANTS(adaptive_max_forward);
static const max_bwd_fn ad_max_bwd_variants[2][2] = VARIANTS(adaptive_max_backward);
static const ad_avg_fn ad_avg_fwd_variants[2][2] = VARIANTS(adaptive_avg_forward);
static const ad_avg_fn ad_avg_bwd_variants[2][2] = VARIANTS(adaptive_avg_backward);

int max_pool_forward(int dt, const void *x, void *y, int32_t *arg, const pool_geo *g,
                     idx n0, idx n1)
{
    return PICK(max_fwd_variants, dt)(x, y, arg, g, n0, n1);
}

int max_pool_backward(int dt, const void *dy, const int32_t *arg, void *dx, const pool_geo *g,
                      idx n0, idx n1)
{
    return PICK(max_bwd_variants, dt)(dy, arg, dx, g, n0, n1);
}

int avg_pool_forward(int dt, const void *x, void *y, const pool_geo *g, int include_pad,
                     idx n0, idx n1)
{
    return PICK(avg_fwd_variants, dt)(x, y, g, include_pad, n0, n1);
}

int avg_pool_backward(int dt, const void *dy, void *dx, const pool_geo *g, int include_pad,
                      idx n0, idx n1)
{
    return PICK(avg_bwd_variants, dt)(dy, dx, g, include_pad, n0, n1);
}

int lp_pool_forward(int dt, const void *x, void *y, const pool_geo *g, double p, idx n0, idx n1)
{
    return PICK(lp_fwd_variants, dt)(x, y, g, p, n0, n1);
}

int lp_pool_backward(int dt, const void *x, const void *y, const void *dy, void *dx,
                     const pool_geo *g, double p, idx n0, idx n1)
{
    return PICK(lp_bwd_variants, dt)(x, y, dy, dx, g, p, n0, n1);
}

int adaptive_max_forward(int dt, const void *x, void *y, int32_t *arg, const pool_geo *g,
                         idx n0, idx n1)
{
    return PICK(ad_max_fwd_variants, dt)(x, y, arg, g, n0, n1);
}

int adaptive_max_backward(int dt, const void *dy, const int32_t *arg, void *dx,
                          const pool_geo *g, idx n0, idx n1)
{
    return PICK(ad_max_bwd_variants, dt)(dy, arg, dx, g, n0, n1);
}

int adaptive_avg_forward(int dt, const void *x, void *y, const pool_geo *g, idx n0, idx n1)
{
    return PICK(ad_avg_fwd_variants, dt)(x, y, g, n0, n1);
}

int adaptive_avg_backward(int dt, const void *dy, void *dx, const pool_geo *g, idx n0, idx n1)
{
    return PICK(ad_avg_bwd_variants, dt)(dy, dx, g, n0, n1);
}
