/* kernels_avx512.c — the AVX-512 (F/BW/VL/DQ) + FMA + F16C instantiation of simd_template.h:
 * 16 lanes, gemm blocks of 8 tokens x 32 outputs (16 zmm accumulators). Masked loads and stores
 * handle every tail. Compiled with target attributes only; ops.c calls it after checking the CPU
 * (__builtin_cpu_supports), so the library still runs on any x86-64. */
#include "cpu/kernels.h"

#if defined(SYM_CPU_HAVE_X86)
#include <immintrin.h>

#include "base/status.h"

#if defined(__clang__)
#pragma clang attribute push(                                                                      \
    __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c"))),                   \
    apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")
#endif

#define AI     static inline __attribute__((always_inline))
#define VW     16
#define MR     8
#define KTABLE sym_cpu_kernels_avx512
#define KISA   "avx512"
typedef __m512 vec_t;

AI __mmask16 mask_n(int n) { return (__mmask16)((1u << n) - 1u); } /* n in [0, 16) */

AI vec_t v_zero(void) { return _mm512_setzero_ps(); }
AI vec_t v_set1(float f) { return _mm512_set1_ps(f); }
AI vec_t v_load(const float *p) { return _mm512_loadu_ps(p); }
AI void v_store(float *p, vec_t v) { _mm512_storeu_ps(p, v); }
AI vec_t v_load_n(const float *p, int n) { return _mm512_maskz_loadu_ps(mask_n(n), p); }
AI void v_store_n(float *p, vec_t v, int n) { _mm512_mask_storeu_ps(p, mask_n(n), v); }
AI vec_t v_fma(vec_t a, vec_t b, vec_t c) { return _mm512_fmadd_ps(a, b, c); }
AI vec_t v_add(vec_t a, vec_t b) { return _mm512_add_ps(a, b); }
AI vec_t v_sub(vec_t a, vec_t b) { return _mm512_sub_ps(a, b); }
AI vec_t v_mul(vec_t a, vec_t b) { return _mm512_mul_ps(a, b); }
AI vec_t v_div(vec_t a, vec_t b) { return _mm512_div_ps(a, b); }
AI vec_t v_max(vec_t a, vec_t b) { return _mm512_max_ps(a, b); }
AI float v_hsum(vec_t v) {
    __m256 h = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
    __m128 q = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    q = _mm_add_ps(q, _mm_movehl_ps(q, q));
    q = _mm_add_ss(q, _mm_movehdup_ps(q));
    return _mm_cvtss_f32(q);
}
AI float v_hmax(vec_t v) { return _mm512_reduce_max_ps(v); }

AI vec_t v_load_f16(const uint16_t *p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
}
AI vec_t v_load_f16_n(const uint16_t *p, int n) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mask_n(n), p));
}
AI vec_t bf16_widen(__m256i h) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}
AI vec_t v_load_bf16(const uint16_t *p) {
    return bf16_widen(_mm256_loadu_si256((const __m256i *)p));
}
AI vec_t v_load_bf16_n(const uint16_t *p, int n) {
    return bf16_widen(_mm256_maskz_loadu_epi16(mask_n(n), p));
}
AI void v_load2_f16(const uint16_t *p, vec_t *a, vec_t *b) {
    __m512i v = _mm512_loadu_si512((const void *)p);
    *a = _mm512_cvtph_ps(_mm512_castsi512_si256(v));
    *b = _mm512_cvtph_ps(_mm512_extracti64x4_epi64(v, 1));
}
AI void v_load2_bf16(const uint16_t *p, vec_t *a, vec_t *b) {
    __m512i v = _mm512_loadu_si512((const void *)p);
    *a = bf16_widen(_mm512_castsi512_si256(v));
    *b = bf16_widen(_mm512_extracti64x4_epi64(v, 1));
}
AI __m256i f16_narrow(vec_t v) {
    return _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}
/* Round to nearest even on the bit pattern, NaNs stay (quiet) NaNs: exactly sym_f32_to_bf16.
 * (vcvtneps2bf16 would flush subnormals, so it is not used.) */
AI __m256i bf16_narrow(vec_t v) {
    __m512i u = _mm512_castps_si512(v);
    __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    __m512i r = _mm512_srli_epi32(
        _mm512_add_epi32(u, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff))), 16);
    __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff)),
                                            _mm512_set1_epi32(0x7f800000));
    r = _mm512_mask_or_epi32(r, nan, _mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40));
    return _mm512_cvtepi32_epi16(r);
}
AI void v_store_f16(uint16_t *p, vec_t v) { _mm256_storeu_si256((__m256i *)p, f16_narrow(v)); }
AI void v_store_f16_n(uint16_t *p, vec_t v, int n) {
    _mm256_mask_storeu_epi16(p, mask_n(n), f16_narrow(v));
}
AI void v_store_bf16(uint16_t *p, vec_t v) { _mm256_storeu_si256((__m256i *)p, bf16_narrow(v)); }
AI void v_store_bf16_n(uint16_t *p, vec_t v, int n) {
    _mm256_mask_storeu_epi16(p, mask_n(n), bf16_narrow(v));
}

/* exp(x): Cephes' expf polynomial on x - n ln2, then scalef by 2^n (which also produces the
 * subnormal / zero / infinite results at the ends of the range). About 1 ulp. */
AI vec_t v_exp(vec_t x) {
    x = _mm512_min_ps(_mm512_set1_ps(89.0f), _mm512_max_ps(_mm512_set1_ps(-104.0f), x));
    vec_t n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    vec_t r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    vec_t p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_scalef_ps(p, n);
}

/* In-register 16x16 transpose: r[i] lane j -> r[j] lane i (64 shuffles). */
AI void v_transpose(vec_t r[16]) {
    vec_t t[16], u[16];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    /* u[4i + j], 128-bit lane L: column 4L + j of rows 4i .. 4i + 3 */
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) {
        u[4 * i + 0] = _mm512_shuffle_ps(t[4 * i + 0], t[4 * i + 2], _MM_SHUFFLE(1, 0, 1, 0));
        u[4 * i + 1] = _mm512_shuffle_ps(t[4 * i + 0], t[4 * i + 2], _MM_SHUFFLE(3, 2, 3, 2));
        u[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(1, 0, 1, 0));
        u[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(3, 2, 3, 2));
    }
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++) {
        vec_t x0 = _mm512_shuffle_f32x4(u[j], u[4 + j], _MM_SHUFFLE(2, 0, 2, 0));
        vec_t x1 = _mm512_shuffle_f32x4(u[j], u[4 + j], _MM_SHUFFLE(3, 1, 3, 1));
        vec_t y0 = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], _MM_SHUFFLE(2, 0, 2, 0));
        vec_t y1 = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], _MM_SHUFFLE(3, 1, 3, 1));
        r[j] = _mm512_shuffle_f32x4(x0, y0, _MM_SHUFFLE(2, 0, 2, 0));
        r[8 + j] = _mm512_shuffle_f32x4(x0, y0, _MM_SHUFFLE(3, 1, 3, 1));
        r[4 + j] = _mm512_shuffle_f32x4(x1, y1, _MM_SHUFFLE(2, 0, 2, 0));
        r[12 + j] = _mm512_shuffle_f32x4(x1, y1, _MM_SHUFFLE(3, 1, 3, 1));
    }
}

#include "cpu/simd_template.h"

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

#endif
