/* Shared declarations of the compiled kernels of striate (module `striate.kernels._native`).
 *
 * Every kernel exists for two element types (float32 "f32", float64 "f64") and, on x86-64, for
 * two instruction sets: the x86-64 baseline (SSE2) and AVX2 with FMA, chosen once at import by
 * `__builtin_cpu_supports`. Each family's implementation file (`*_impl.h`) is compiled once per
 * (type, instruction set) by `instantiate.h`; on other machines (aarch64) only the plain path is
 * built. The vectors are GCC/Clang generic vectors of 32 bytes (`vector_size`), which the
 * compiler maps to whatever registers the target has.
 *
 * Arrays are C-contiguous and checked by the Python wrapper (shapes, dtypes) and by the module
 * (buffer sizes) before any kernel runs. Kernels return 0, or -1 when a scratch allocation
 * failed (the module raises MemoryError).
 */
#ifndef STRIATE_NATIVE_COMMON_H
#define STRIATE_NATIVE_COMMON_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef Py_ssize_t idx;

typedef float vf32 __attribute__((vector_size(32)));
typedef double vf64 __attribute__((vector_size(32)));
typedef int32_t vi32 __attribute__((vector_size(32)));
typedef int64_t vi64 __attribute__((vector_size(32)));

/* STRIATE_PLAIN builds the plain path only, as on machines other than x86-64 (a check that it
 * compiles and passes without the AVX2 variants). */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(STRIATE_PLAIN)
#define STRIATE_X86 1
#else
#define STRIATE_X86 0
#endif

enum { DT_F32 = 0, DT_F64 = 1 };
enum { ISA_BASE = 0, ISA_AVX2 = 1 };
extern int striate_isa; /* the instruction set in use (module.c) */

/* Geometry of a 2-D convolution, channels-last: x (N, H, W, C), w (kH, kW, C, K),
 * y (N, Ho, Wo, K); padding (pH0, pH1), (pW0, pW1) of zeros. For a depthwise convolution
 * w is (kH, kW, 1, C) and K == C. */
typedef struct {
    idx N, H, W, C, kH, kW, K, Ho, Wo, sH, sW, dH, dW, pH0, pH1, pW0, pW1;
} conv_geo;

/* Geometry of a 2-D pooling: x (N, H, W, C), windows kH x kW, stride, padding (pH0, pW0) at
 * the start, y (N, Ho, Wo, C). */
typedef struct {
    idx N, H, W, C, kH, kW, Ho, Wo, sH, sW, pH0, pW0;
} pool_geo;

/* A table of one kernel's variants, [isa][dtype]. */
#if STRIATE_X86
#define VARIANTS(name) {{name##_f32_base, name##_f64_base}, {name##_f32_avx2, name##_f64_avx2}}
#else
#define VARIANTS(name) {{name##_f32_base, name##_f64_base}, {name##_f32_base, name##_f64_base}}
#endif
#define PICK(table, dtype) ((table)[striate_isa][(dtype)])

/* conv_direct.c */
int conv2d_forward(int dt, const void *x, const void *w, const void *b, void *y,
                   const conv_geo *g, int relu, idx n0, idx n1);
int conv2d_backward(int dt, const void *x, const void *w, const void *dy, const void *y,
                    void *dx, void *dw, void *db, const conv_geo *g, idx n0, idx n1);
int depthwise_forward(int dt, const void *x, const void *w, const void *b, void *y,
                      const conv_geo *g, int relu, idx n0, idx n1);
int depthwise_backward(int dt, const void *x, const void *w, const void *dy, const void *y,
                       void *dx, void *dw, void *db, const conv_geo *g, idx n0, idx n1);

/* pool.c */
int max_pool_forward(int dt, const void *x, void *y, int32_t *arg, const pool_geo *g,
                     idx n0, idx n1);
int max_pool_backward(int dt, const void *dy, const int32_t *arg, void *dx, const pool_geo *g,
                      idx n0, idx n1);
int avg_pool_forward(int dt, const void *x, void *y, const pool_geo *g, int include_pad,
                     idx n0, idx n1);
int avg_pool_backward(int dt, const void *dy, void *dx, const pool_geo *g, int include_pad,
                      idx n0, idx n1);
int lp_pool_forward(int dt, const void *x, void *y, const pool_geo *g, double p, idx n0, idx n1);
int lp_pool_backward(int dt, const void *x, const void *y, const void *dy, void *dx,
                     const pool_geo *g, double p, idx n0, idx n1);
/* adaptive pooling: only N, H, W, C, Ho, Wo of the geometry are used */
int adaptive_max_forward(int dt, const void *x, void *y, int32_t *arg, const pool_geo *g,
                         idx n0, idx n1);
int adaptive_max_backward(int dt, const void *dy, const int32_t *arg, void *dx,
                          const pool_geo *g, idx n0, idx n1);
int adaptive_avg_forward(int dt, const void *x, void *y, const pool_geo *g, idx n0, idx n1);
int adaptive_avg_backward(int dt, const void *dy, void *dx, const pool_geo *g, idx n0, idx n1);

/* channelwise.c: arrays seen as (M, C) matrices, rows [m0, m1) */
int channel_sums(int dt, const void *x, const void *y, const void *dy, const void *center,
                 double *sums, idx m0, idx m1, idx C);
int channel_map(int dt, const void *x, const void *center, const void *scale,
                const void *shift, const void *res, int relu, void *out, idx m0, idx m1, idx C);
int channel_grad(int dt, const void *dy, const void *y, const void *x, const void *center,
                 const void *scale, const void *offset, const void *slope, void *dx,
                 void *dres, idx m0, idx m1, idx C);

/* winograd.c: F(2x2, 3x3)'s tile transforms over tile rows [r0, r1) of a piece of n images
 * of h rows of tw tiles (winograd_impl.h) */
int winograd_input(int dt, const void *xp, void *v, idx n, idx h, idx tw, idx C, idx r0, idx r1);
int winograd_output(int dt, const void *m, void *y, idx n, idx h, idx tw, idx C, idx oh,
                    idx ow, idx r0, idx r1);
int winograd_output_grad(int dt, const void *dy, void *dm, idx n, idx h, idx tw, idx C,
                         idx oh, idx ow, idx r0, idx r1);

/* threads.c: a job is one kernel call with its arguments; rows(j, r0, r1, part) runs it on
 * rows [r0, r1) of the batch (or of an (M, C) matrix) as part `part` of the call, whose
 * per-part outputs (partial sums) are that part's copy. */
#define MAX_PARTS 64
typedef struct job job;
struct job {
    int (*rows)(const job *j, idx r0, idx r1, int part);
    int dt, flag;         /* element type; ReLU / depthwise / include_pad / ... by kernel */
    double p;             /* L_p pooling's power */
    const void *geo;      /* conv_geo or pool_geo */
    idx C;                /* channels of an (M, C) matrix */
    const void *in[8];
    void *out[4];
};
/* rows [n0, n1) cut into `parts` (1..MAX_PARTS) consecutive parts, all run at once: part 0 on
 * the calling thread, the others on worker threads. Returns 0 or the first error. */
int run_parts(const job *j, idx n0, idx n1, int parts);
void threads_init(void);

#endif
