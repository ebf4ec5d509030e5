/* kernels_avx2.c — the AVX2 + FMA + F16C instantiation of simd_template.h: 8 lanes, gemm blocks
 * of 6 tokens x 16 outputs (12 ymm accumulators of the 16 registers). AVX2 has no 16-bit masked
 * loads, so f16/bf16 tails go through a small zero-padded buffer. Compiled with target
 * attributes only; ops.c calls it after checking the CPU. */
#include "cpu/kernels.h"

#if defined(SYM_CPU_HAVE_X86)
#include <immintrin.h>
#include <string.h>

#include "base/status.h"

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
#endif

#define AI     static inline __attribute__((always_inline))
#define VW     8
#define MR     6
#define KTABLE sym_cpu_kernels_avx2
#define KISA   "avx2"
typedef __m256 vec_t;

AI __m256i mask_n(int n) { /* lanes < n all ones, n in [0, 8) */
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

AI vec_t v_zero(void) { return _mm256_setzero_ps(); }
AI vec_t v_set1(float f) { return _mm256_set1_ps(f); }
AI vec_t v_load(const float *p) { return _mm256_loadu_ps(p); }
AI void v_store(float *p, vec_t v) { _mm256_storeu_ps(p, v); }
AI vec_t v_load_n(const float *p, int n) { return _mm256_maskload_ps(p, mask_n(n)); }
AI void v_store_n(float *p, vec_t v, int n) { _mm256_maskstore_ps(p, mask_n(n), v); }
AI vec_t v_fma(vec_t a, vec_t b, vec_t c) { return _mm256_fmadd_ps(a, b, c); }
AI vec_t v_add(vec_t a, vec_t b) { return _mm256_add_ps(a, b); }
AI vec_t v_sub(vec_t a, vec_t b) { return _mm256_sub_ps(a, b); }
AI vec_t v_mul(vec_t a, vec_t b) { return _mm256_mul_ps(a, b); }
AI vec_t v_div(vec_t a, vec_t b) { return _mm256_div_ps(a, b); }
AI vec_t v_max(vec_t a, vec_t b) { return _mm256_max_ps(a, b); }
AI float v_hsum(vec_t v) {
    __m128 q = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    q = _mm_add_ps(q, _mm_movehl_ps(q, q));
    q = _mm_add_ss(q, _mm_movehdup_ps(q));
    return _mm_cvtss_f32(q);
}
AI float v_hmax(vec_t v) {
    __m128 q = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    q = _mm_max_ps(q, _mm_movehl_ps(q, q));
    q = _mm_max_ss(q, _mm_movehdup_ps(q));
    return _mm_cvtss_f32(q);
}

AI vec_t v_load_f16(const uint16_t *p) {
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
}
AI vec_t v_load_f16_n(const uint16_t *p, int n) {
    uint16_t tmp[8] = {0};
    memcpy(tmp, p, (size_t)n * 2);
    return v_load_f16(tmp);
}
AI vec_t v_load_bf16(const uint16_t *p) {
    __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
}
AI vec_t v_load_bf16_n(const uint16_t *p, int n) {
    uint16_t tmp[8] = {0};
    memcpy(tmp, p, (size_t)n * 2);
    return v_load_bf16(tmp);
}
AI void v_load2_f16(const uint16_t *p, vec_t *a, vec_t *b) {
    __m256i v = _mm256_loadu_si256((const __m256i *)p);
    *a = _mm256_cvtph_ps(_mm256_castsi256_si128(v));
    *b = _mm256_cvtph_ps(_mm256_extracti128_si256(v, 1));
}
AI vec_t bf16_widen(__m128i h) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}
AI void v_load2_bf16(const uint16_t *p, vec_t *a, vec_t *b) {
    __m256i v = _mm256_loadu_si256((const __m256i *)p);
    *a = bf16_widen(_mm256_castsi256_si128(v));
    *b = bf16_widen(_mm256_extracti128_si256(v, 1));
}
AI __m128i f16_narrow(vec_t v) {
    return _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}
/* Round to nearest even on the bit pattern, NaNs stay (quiet) NaNs: exactly sym_f32_to_bf16. */
AI __m128i bf16_narrow(vec_t v) {
    __m256i u = _mm256_castps_si256(v);
    __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
    __m256i r = _mm256_srli_epi32(
        _mm256_add_epi32(u, _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7fff))), 16);
    /* NaN: |u| > 0x7f800000 (signed compare is fine: both sides are non-negative) */
    __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, _mm256_set1_epi32(0x7fffffff)),
                                     _mm256_set1_epi32(0x7f800000));
    __m256i qn = _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(0x40));
    r = _mm256_blendv_epi8(r, qn, nan);
    /* values are < 0x10000, so the unsigned-saturating pack is exact */
    return _mm_packus_epi32(_mm256_castsi256_si128(r), _mm256_extracti128_si256(r, 1));
}
AI void v_store_f16(uint16_t *p, vec_t v) { _mm_storeu_si128((__m128i *)p, f16_narrow(v)); }
AI void v_store_f16_n(uint16_t *p, vec_t v, int n) {
    uint16_t tmp[8];
    _mm_storeu_si128((__m128i *)tmp, f16_narrow(v));
    memcpy(p, tmp, (size_t)n * 2);
}
AI void v_store_bf16(uint16_t *p, vec_t v) { _mm_storeu_si128((__m128i *)p, bf16_narrow(v)); }
AI void v_store_bf16_n(uint16_t *p, vec_t v, int n) {
    uint16_t tmp[8];
    _mm_storeu_si128((__m128i *)tmp, bf16_narrow(v));
    memcpy(p, tmp, (size_t)n * 2);
}

/* exp(x): Cephes' expf polynomial, 2^n built in the exponent field. x is clamped to the normal
 * range, so results below ~1e-38 come out as ~1e-38 rather than subnormal or 0. */
AI vec_t v_exp(vec_t x) {
    x = _mm256_min_ps(_mm256_set1_ps(88.3762626647949f),
                      _mm256_max_ps(_mm256_set1_ps(-87.3365447505531f), x));
    vec_t n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                              _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    vec_t r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    vec_t p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    __m256i e =
        _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

/* In-register 8x8 transpose: r[i] lane j -> r[j] lane i (24 shuffles). */
AI void v_transpose(vec_t r[8]) {
    vec_t t[8], u[8];
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) {
        t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    /* u[4i + j], 128-bit lane L: column 4L + j of rows 4i .. 4i + 3 */
#pragma GCC unroll 2
    for (int i = 0; i < 2; i++) {
        u[4 * i + 0] = _mm256_shuffle_ps(t[4 * i + 0], t[4 * i + 2], _MM_SHUFFLE(1, 0, 1, 0));
        u[4 * i + 1] = _mm256_shuffle_ps(t[4 * i + 0], t[4 * i + 2], _MM_SHUFFLE(3, 2, 3, 2));
        u[4 * i + 2] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(1, 0, 1, 0));
        u[4 * i + 3] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(3, 2, 3, 2));
    }
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++) {
        r[j] = _mm256_permute2f128_ps(u[j], u[4 + j], 0x20);
        r[4 + j] = _mm256_permute2f128_ps(u[j], u[4 + j], 0x31);
    }
}

#include "cpu/simd_template.h"

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

#endif
