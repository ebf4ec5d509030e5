/* half.h — scalar f16 / bf16 <-> f32 conversions (portable; SIMD versions live in cpu/).
 * f16: IEEE 754 binary16. bf16: the top 16 bits of an f32; f32 -> bf16 rounds to nearest even
 * and keeps NaNs NaN. */
#ifndef SYM_BASE_HALF_H
#define SYM_BASE_HALF_H

#include <stdint.h>
#include <string.h>

static inline float sym_bits_to_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}
static inline uint32_t sym_f32_to_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static inline float sym_bf16_to_f32(uint16_t h) { return sym_bits_to_f32((uint32_t)h << 16); }

static inline uint16_t sym_f32_to_bf16(float f) {
    uint32_t u = sym_f32_to_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* quiet NaN */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

static inline float sym_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;
    if (exp == 0) {
        if (mant == 0) return sym_bits_to_f32(sign);
        /* subnormal: value = mant * 2^-24 */
        float v = (float)mant * (1.0f / 16777216.0f);
        return sign ? -v : v;
    }
    if (exp == 31) return sym_bits_to_f32(sign | 0x7f800000u | (mant << 13));
    return sym_bits_to_f32(sign | ((exp + 112u) << 23) | (mant << 13));
}

static inline uint16_t sym_f32_to_f16(float f) {
    uint32_t u = sym_f32_to_bits(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    uint32_t abs = u & 0x7fffffffu;
    if (abs > 0x7f800000u) return (uint16_t)(sign | 0x7e00u); /* NaN */
    if (abs >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u); /* overflow -> inf (rounds) */
    if (abs < 0x38800000u) {
        /* subnormal or zero in f16: round abs * 2^24 to nearest even integer */
        float a = sym_bits_to_f32(abs) * 16777216.0f;
        uint32_t m = (uint32_t)a;
        float frac = a - (float)m;
        if (frac > 0.5f || (frac == 0.5f && (m & 1u))) m++;
        return (uint16_t)(sign | m);
    }
    uint32_t mant = abs & 0x7fffffu;
    uint32_t exp = (abs >> 23) - 112u;
    uint32_t h = (exp << 10) | (mant >> 13);
    uint32_t rest = mant & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) h++;
    return (uint16_t)(sign | h);
}

#endif
