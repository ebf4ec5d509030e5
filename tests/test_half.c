/* f16/bf16 conversions: exhaustive over all 65536 half values (round trip), and f32 -> half
 * rounding to nearest even against a slow reference built from the exact half values. */
#include "base/half.h"
#include "test_util.h"

int main(void) {
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = sym_f16_to_f32((uint16_t)h);
        uint16_t back = sym_f32_to_f16(f);
        bool nan = ((h >> 10) & 0x1f) == 0x1f && (h & 0x3ff);
        if (nan ? !(isnan(f) && ((back >> 10) & 0x1f) == 0x1f && (back & 0x3ff)) : back != h)
            if (bad++ < 5) CHECK(0, "f16 0x%04x -> %g -> 0x%04x", h, f, back);
        float b = sym_bf16_to_f32((uint16_t)h);
        uint16_t bb = sym_f32_to_bf16(b);
        bool bnan = ((h >> 7) & 0xff) == 0xff && (h & 0x7f);
        if (bnan ? !isnan(sym_bf16_to_f32(bb)) : bb != h)
            if (bad++ < 5) CHECK(0, "bf16 0x%04x -> %g -> 0x%04x", h, b, bb);
    }
    /* rounding: random f32 values land on the nearest representable half (ties to even) */
    test_rng r = test_rng_init("test_half");
    for (int i = 0; i < 200000; i++) {
        float f = test_rng_f32(&r) * powf(2.0f, (float)((int)test_rng_below(&r, 40) - 26));
        uint16_t h = sym_f32_to_f16(f);
        float hf = sym_f16_to_f32(h);
        /* neighbours of h (same sign) must not be closer */
        for (int d = -1; d <= 1; d += 2) {
            uint16_t n = (uint16_t)(h + d);
            if ((n & 0x7fff) >= 0x7c00 || ((n ^ h) & 0x8000)) continue;
            float nf = sym_f16_to_f32(n);
            double en = fabs((double)nf - f), eh = fabs((double)hf - f);
            if (en < eh || (en == eh && (h & 1)))
                if (bad++ < 10) CHECK(0, "f16(%.9g) = 0x%04x but 0x%04x is nearer/even", f, h, n);
        }
        uint16_t bh = sym_f32_to_bf16(f);
        double eb = fabs((double)sym_bf16_to_f32(bh) - f);
        double en1 = fabs((double)sym_bf16_to_f32((uint16_t)(bh + 1)) - f);
        double en2 = fabs((double)sym_bf16_to_f32((uint16_t)(bh - 1)) - f);
        if (en1 < eb || en2 < eb)
            if (bad++ < 10) CHECK(0, "bf16(%.9g) = 0x%04x is not nearest", f, bh);
    }
    CHECK(sym_f32_to_f16(1e6f) == 0x7c00, "overflow to +inf");
    CHECK(sym_f32_to_f16(-1e6f) == 0xfc00, "overflow to -inf");
    CHECK(sym_f32_to_f16(65504.0f) == 0x7bff, "max half");
    CHECK(sym_f32_to_f16(5.96046448e-08f) == 0x0001, "smallest subnormal");
    return test_finish("test_half");
}
