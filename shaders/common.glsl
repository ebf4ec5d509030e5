// common.glsl — included by every kernel (after #version). Conventions:
//  * Tensors are bound as storage buffers holding 32-bit words; a push-constant "*_off" is the
//    tensor's first element inside the bound window, in elements of its own type. 16-bit types
//    (f16, bf16) are read as halves of uint words, so no 16-bit storage feature is needed.
//  * Specialization constants 0..3 mean the same in every kernel: 0 WG (threads per workgroup,
//    where the kernel takes it), 1 USE_SUBGROUPS, 2 FP16_MATH (fp16 variants only), 3 DTYPE (the
//    element type of the kernel's typed tensor: 0 f32, 1 f16, 2 bf16). 4.. are per kernel.
//  * Each kernel's push-constant block mirrors a struct of src/vk/push.h (all 32-bit members);
//    pipeline.c checks the sizes agree when it creates the pipeline.
//  * Grids larger than 65535 workgroups are folded into y: lin_group() unfolds them.
#extension GL_EXT_control_flow_attributes : enable

#ifdef NO_SUBGROUP_EXT
const bool USE_SUBGROUPS = false;
#else
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
layout(constant_id = 1) const bool USE_SUBGROUPS = true;
#endif

layout(constant_id = 0) const uint WG = 128;
layout(constant_id = 3) const uint DTYPE = 0;

const uint DT_F32 = 0u;
const uint DT_F16 = 1u;
const uint DT_BF16 = 2u;

uint lin_group() { return gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x; }
uint n_groups() { return gl_NumWorkGroups.x * gl_NumWorkGroups.y; }

float bf16_to_f32(uint h) { return uintBitsToFloat(h << 16); }
float f16_to_f32(uint h) { return unpackHalf2x16(h).x; }

// Element i (relative to the window) of a tensor of type dt stored in words w[]: the word that
// holds it is word_of(i, dt); elem_in_word picks the element out of that word.
uint word_of(uint i, uint dt) { return dt == DT_F32 ? i : (i >> 1); }
float elem_in_word(uint w, uint i, uint dt) {
    if (dt == DT_F32) return uintBitsToFloat(w);
    uint h = (i & 1u) != 0u ? (w >> 16) : (w & 0xffffu);
    return dt == DT_F16 ? f16_to_f32(h) : bf16_to_f32(h);
}
// The two 16-bit elements of a word as floats (dt f16 or bf16).
vec2 pair_of_word(uint w, uint dt) {
    if (dt == DT_F16) return unpackHalf2x16(w);
    return vec2(uintBitsToFloat(w << 16), uintBitsToFloat(w & 0xffff0000u));
}
// Eight 16-bit elements of a uvec4.
void unpack8(uvec4 w, uint dt, out vec4 a, out vec4 b) {
    vec2 p0 = pair_of_word(w.x, dt), p1 = pair_of_word(w.y, dt);
    vec2 p2 = pair_of_word(w.z, dt), p3 = pair_of_word(w.w, dt);
    a = vec4(p0, p1);
    b = vec4(p2, p3);
}

// f32 -> bf16 / f16 bits, round to nearest even, NaN stays NaN: bit-identical to src/base/half.h,
// so stored caches match the reference exactly.
uint f32_to_bf16(float f) {
    uint u = floatBitsToUint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return ((u >> 16) | 0x40u) & 0xffffu;
    u += 0x7fffu + ((u >> 16) & 1u);
    return u >> 16;
}
uint f32_to_f16(float f) {
    uint u = floatBitsToUint(f);
    uint sign = (u >> 16) & 0x8000u;
    uint a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return sign | 0x7e00u;
    if (a >= 0x477ff000u) return sign | 0x7c00u;
    if (a < 0x38800000u) { // f16 subnormal or zero: round a * 2^24 to nearest even
        uint e = a >> 23;
        if (e < 102u) return sign;
        uint m = (a & 0x7fffffu) | 0x800000u;
        uint sh = 126u - e;
        uint q = m >> sh, rem = m & ((1u << sh) - 1u), half_ = 1u << (sh - 1u);
        if (rem > half_ || (rem == half_ && (q & 1u) != 0u)) q++;
        return sign | q;
    }
    uint mant = a & 0x7fffffu;
    uint h = (((a >> 23) - 112u) << 10) | (mant >> 13);
    uint rest = mant & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (h & 1u) != 0u)) h++;
    return sign | h;
}
uint f32_to_type(float f, uint dt) {
    return dt == DT_F32 ? floatBitsToUint(f) : (dt == DT_F16 ? f32_to_f16(f) : f32_to_bf16(f));
}

// cos and sin of the RoPE angle (pos * freq_scale) * freq, computed exactly as the reference
// (float product in that order), then reduced to [-pi, pi] in three steps so that sin/cos stay
// accurate at large positions: 2*pi = C1 + C2 + C3, C1 with 8 significant bits so k * C1 is
// exact for |k| < 2^16.
vec2 rope_cos_sin(int pos_i, float freq_scale, float freq) {
    precise float pos = float(pos_i) * freq_scale;
    precise float ang = pos * freq;
    const float C1 = 6.28125;
    const float C2 = 1.9353071693331003e-03;
    const float C3 = 1.0253131677018246e-11;
    precise float k = round(ang * 0.15915494309189535);
    precise float r = fma(-k, C1, ang);
    r = fma(-k, C2, r);
    r = fma(-k, C3, r);
    return vec2(cos(r), sin(r));
}

#ifdef NEED_REDUCE
// Workgroup-wide sum / max of one value per thread; every thread gets the result. Must be
// reached by the whole workgroup (uniform control flow). Subgroup operations when enabled, else
// a shared-memory tree that works for any WG.
shared float sh_red[WG];

float wg_reduce(float v, bool is_max) {
    uint tid = gl_LocalInvocationID.x;
    barrier(); // sh_red may still be read by the previous call
#ifndef NO_SUBGROUP_EXT
    if (USE_SUBGROUPS) {
        v = is_max ? subgroupMax(v) : subgroupAdd(v);
        if (subgroupElect()) sh_red[gl_SubgroupID] = v;
        barrier();
        float t = sh_red[0];
        for (uint i = 1u; i < gl_NumSubgroups; i++) t = is_max ? max(t, sh_red[i]) : t + sh_red[i];
        return t;
    }
#endif
    sh_red[tid] = v;
    barrier();
    uint s = 1u;
    while (s < WG) s <<= 1;
    for (s >>= 1; s > 0u; s >>= 1) {
        if (tid < s && tid + s < WG)
            sh_red[tid] = is_max ? max(sh_red[tid], sh_red[tid + s]) : sh_red[tid] + sh_red[tid + s];
        barrier();
    }
    return sh_red[0];
}
float wg_sum(float v) { return wg_reduce(v, false); }
float wg_max(float v) { return wg_reduce(v, true); }
#endif
