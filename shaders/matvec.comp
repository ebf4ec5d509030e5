#version 450
// matvec (decode, n_tok <= 8, devices without subgroup arithmetic; mv.comp elsewhere):
// out[t][row0 + r] = sum_i x[t][i] * W[r][i] (+ bias[row0 + r]) (+ out with accumulate).
// A workgroup computes NR rows of the bound slice of W: all WG threads stride over each row
// (16-byte loads when vec_ok: rows and x 16-byte aligned, n_in % 8 == 0) and the partial sums
// meet in a workgroup reduction. W is read once for all tokens. With FP16_MATH (the _fp16
// variant, f16 weights) products of eight elements are summed in f16 before joining the f32 sum.
#define NEED_REDUCE
#ifdef FP16_VARIANT
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#endif
#include "common.glsl"
layout(local_size_x_id = 0) in;
layout(constant_id = 4) const uint NR = 1;
#ifdef FP16_VARIANT
layout(constant_id = 2) const bool FP16_MATH = true;
#else
const bool FP16_MATH = false;
#endif
const uint MAXT = 8u;

layout(binding = 0) readonly buffer X { float x[]; };
layout(binding = 0) readonly buffer X4 { vec4 x4[]; };
layout(binding = 1) readonly buffer W { uint w[]; };
layout(binding = 1) readonly buffer W4 { uvec4 w4[]; };
layout(binding = 2) readonly buffer Bias { float bias[]; };
layout(binding = 3) buffer Out { float out_[]; };

layout(push_constant) uniform Push { // sym_vk_push_matvec
    uint n_in, n_rows, n_tok;
    uint x_off, w_off, b_off, out_off;
    uint out_stride, row0, has_bias, vec_ok;
    uint accumulate;
} p;

void main() {
    uint tid = gl_LocalInvocationID.x;
    uint r0 = lin_group() * NR;
    if (r0 >= p.n_rows) return; // whole workgroup leaves together
    float acc[NR * MAXT];
    [[unroll]] for (uint j = 0u; j < NR * MAXT; j++) acc[j] = 0.0;

    if (p.vec_ok != 0u && DTYPE == DT_F32) {
        uint n4 = p.n_in / 4u;
        for (uint i = tid; i < n4; i += WG) {
            [[unroll]] for (uint r = 0u; r < NR; r++) {
                if (r0 + r >= p.n_rows) break;
                vec4 wv = uintBitsToFloat(w4[(p.w_off + (r0 + r) * p.n_in) / 4u + i]);
                [[unroll]] for (uint t = 0u; t < MAXT; t++) {
                    if (t >= p.n_tok) break;
                    acc[r * MAXT + t] += dot(wv, x4[(p.x_off + t * p.n_in) / 4u + i]);
                }
            }
        }
    } else if (p.vec_ok != 0u) {
        uint n8 = p.n_in / 8u;
        for (uint i = tid; i < n8; i += WG) {
            [[unroll]] for (uint r = 0u; r < NR; r++) {
                if (r0 + r >= p.n_rows) break;
                uvec4 wq = w4[(p.w_off + (r0 + r) * p.n_in) / 8u + i];
#ifdef FP16_VARIANT
                if (FP16_MATH && DTYPE == DT_F16) {
                    f16vec2 w0 = unpackFloat2x16(wq.x), w1 = unpackFloat2x16(wq.y);
                    f16vec2 w2 = unpackFloat2x16(wq.z), w3 = unpackFloat2x16(wq.w);
                    [[unroll]] for (uint t = 0u; t < MAXT; t++) {
                        if (t >= p.n_tok) break;
                        uint xb = (p.x_off + t * p.n_in) / 4u + 2u * i;
                        f16vec4 xa = f16vec4(x4[xb]), xc = f16vec4(x4[xb + 1u]);
                        f16vec2 s2 = w0 * xa.xy + w1 * xa.zw + w2 * xc.xy + w3 * xc.zw;
                        acc[r * MAXT + t] += float(s2.x) + float(s2.y);
                    }
                    continue;
                }
#endif
                vec4 wa, wb;
                unpack8(wq, DTYPE, wa, wb);
                [[unroll]] for (uint t = 0u; t < MAXT; t++) {
                    if (t >= p.n_tok) break;
                    uint xb = (p.x_off + t * p.n_in) / 4u + 2u * i;
                    acc[r * MAXT + t] += dot(wa, x4[xb]) + dot(wb, x4[xb + 1u]);
                }
            }
        }
    } else {
        for (uint i = tid; i < p.n_in; i += WG) {
            [[unroll]] for (uint r = 0u; r < NR; r++) {
                if (r0 + r >= p.n_rows) break;
                uint e = p.w_off + (r0 + r) * p.n_in + i;
                float wv = elem_in_word(w[word_of(e, DTYPE)], e, DTYPE);
                [[unroll]] for (uint t = 0u; t < MAXT; t++) {
                    if (t >= p.n_tok) break;
                    acc[r * MAXT + t] += wv * x[p.x_off + t * p.n_in + i];
                }
            }
        }
    }

    [[unroll]] for (uint r = 0u; r < NR; r++) {
        if (r0 + r >= p.n_rows) break; // uniform: r0 is the same for the whole workgroup
        uint o = p.row0 + r0 + r;
        float b = p.has_bias != 0u ? bias[p.b_off + o] : 0.0;
        [[unroll]] for (uint t = 0u; t < MAXT; t++) {
            if (t >= p.n_tok) break;
            float s = wg_sum(acc[r * MAXT + t]);
            uint idx = p.out_off + t * p.out_stride + o;
            if (tid == 0u) out_[idx] = s + b + (p.accumulate != 0u ? out_[idx] : 0.0);
        }
    }
}
