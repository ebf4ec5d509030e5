#version 450
// probe_read: the device-memory read bandwidth probe. Reads n16 uvec4 with a grid-stride loop,
// four 16-byte loads in flight per thread, folds them with xor and writes the fold only if it
// equals a value the host never passes (so the loads cannot be removed) .
#include "common.glsl"
layout(local_size_x_id = 0) in;

layout(binding = 0) readonly buffer Src { uvec4 src[]; };
layout(binding = 1) writeonly buffer Sink { uint sink[]; };

layout(push_constant) uniform Push { // sym_vk_push_probe
    uint n16, src_off, magic;
} p;

void main() {
    uint stride = n_groups() * WG;
    uint i = lin_group() * WG + gl_LocalInvocationID.x;
    uvec4 acc = uvec4(0u);
    for (; i + 3u * stride < p.n16; i += 4u * stride) {
        uvec4 a = src[p.src_off + i], b = src[p.src_off + i + stride];
        uvec4 c = src[p.src_off + i + 2u * stride], d = src[p.src_off + i + 3u * stride];
        acc ^= a ^ b ^ c ^ d;
    }
    for (; i < p.n16; i += stride) acc ^= src[p.src_off + i];
    uint f = acc.x ^ acc.y ^ acc.z ^ acc.w;
    if (f == p.magic) sink[0] = f;
}
