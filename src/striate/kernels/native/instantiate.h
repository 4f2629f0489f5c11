/* Compiles the implementation file named by IMPL once per element type and instruction set.
 * IMPL's functions are written with T (the element type), V (a vector of 32 bytes of T),
 * VI (the integer vector of the same size, for masks), L (lanes per vector), FN(name) (the
 * name with its variant's suffix) and ATTR (the variant's target attribute). */

#define T float
#define V vf32
#define VI vi32
#define L 8
#define ATTR
#define FN(name) name##_f32_base
#include IMPL
#undef FN
#undef ATTR
#undef L
#undef VI
#undef V
#undef T

#define T double
#define V vf64
#define VI vi64
#define L 4
#define ATTR
#define FN(name) name##_f64_base
#include IMPL
#undef FN
#undef ATTR
#undef L
#undef VI
#undef V
#undef T

#if STRIATE_X86
#define T float
#define V vf32
#define VI vi32
#define L 8
#define ATTR __attribute__((target("avx2,fma")))
#define FN(name) name##_f32_avx2
#include IMPL
#undef FN
#undef ATTR
#undef L
#undef VI
#undef V
#undef T

#define T double
#define V vf64
#define VI vi64
#define L 4
#define ATTR __attribute__((target("avx2,fma")))
#define FN(name) name##_f64_avx2
#include IMPL
#undef FN
#undef ATTR
#undef L
#undef VI
#undef V
#undef T
#endif
