/* Winograd F(2x2, 3x3)'s tile transforms: the input's, the output's, and the output
 * gradient's. */
#include "common.h"

#define IMPL "winograd_impl.h"
#include "instantiate.h"

typedef int (*input_fn)(const void *, void *, idx, idx, idx, idx, idx, idx);
typedef int (*output_fn)(const void *, void *, idx, idx, idx, idx, idx, idx, idx, idx);

static const input_fn input_variants[2][2] = VARIANTS(winograd_input);
static const output_fn output_variants[2][2] = VARIANTS(winograd_output);
static const output_fn output_grad_variants[2][2] = VARIANTS(winograd_output_grad);

int winograd_input(int dt, const void *xp, void *v, idx n, idx h, idx tw, idx C, idx r0, idx r1)
{
    return PICK(input_variants, dt)(xp, v, n, h, tw, C, r0, r1);
}

int winograd_output(int dt, const void *m, void *y, idx n, idx h, idx tw, idx C, idx oh,
                    idx ow, idx r0, idx r1)
{
    return PICK(output_variants, dt)(m, y, n, h, tw, C, oh, ow, r0, r1);
}

int winograd_output_grad(int dt, const void *dy, void *dm, idx n, idx h, idx tw, idx C,
                         idx oh, idx ow, idx r0, idx r1)
{
    return PICK(output_grad_variants, dt)(dy, dm, n, h, tw, C, oh, ow, r0, r1);
}
