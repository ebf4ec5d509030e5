#version 450
// probe_chain: a chain of dependent f16 matrix-vector products x[ph + 1] = W[ph] x[ph] (n x n),
// phases [ph0, ph1) in one dispatch, separated by a grid-wide barrier (grid_sync.glsl) instead
// of a pipeline barrier. The probe (probe.c) times it against one dispatch per phase: what a
// persistent decode kernel would save. Every workgroup must be resident at once (one per
// multiprocessor, or one workgroup in all).
// Each workgroup takes a contiguous block of rows, RB rows at a time: every invocation holds
// its slice of x (columns 8 * (lid + j * WG), j < MAXJ) in registers, loads RB uvec4 of W per
// step, and the RB sums are reduced across the workgroup.
#include "common.glsl"
#extension GL_KHR_memory_scope_semantics : require
layout(local_size_x_id = 0) in;
layout(constant_id = 4) const uint RB = 8;   // rows per step
layout(constant_id = 5) const uint MAXJ = 2; // x slices per invocation: n <= 8 * WG * MAXJ
layout(constant_id = 8) const uint SGS = 32;

layout(binding = 0) readonly buffer W { uvec4 w4[]; };
layout(binding = 1) queuefamilycoherent buffer X4 { vec4 x4[]; };
layout(binding = 1) queuefamilycoherent buffer X1 { float x[]; };
layout(binding = 2) queuefamilycoherent buffer Sync { uint cnt[]; };

layout(push_constant) uniform Push { // sym_vk_push_probe_chain
    uint n, ph0, ph1, base, claim_base;
} p;
layout(constant_id = 6) const bool DYN = false; // rows claimed RB at a time from cnt[1]

#include "grid_sync.glsl"

shared float red[(WG / SGS) * RB];
shared uint sh_claim;

// The next block of RB rows from cnt[1], which counts claims: n_blocks + n_groups() per phase
// (each workgroup's last claim finds nothing), counted from claim_base.
uint claim(uint ph) {
    uint nb = (p.n + RB - 1u) / RB;
    return atomicAdd(cnt[1], 1u, gl_ScopeQueueFamily, gl_StorageSemanticsBuffer,
                     gl_SemanticsRelaxed) - (p.claim_base + (ph - p.ph0) * (nb + n_groups()));
}

void main() {
    uint n8 = p.n / 8u, lid = gl_LocalInvocationID.x;
    uint G = n_groups(), per = (p.n + G - 1u) / G;
    uint r_begin = min(lin_group() * per, p.n), r_end = min(r_begin + per, p.n);
    for (uint ph = p.ph0; ph < p.ph1; ph++) {
        vec4 xa[MAXJ], xb[MAXJ];
        [[unroll]] for (uint j = 0u; j < MAXJ; j++) {
            uint i = lid + j * WG;
            xa[j] = vec4(0.0);
            xb[j] = vec4(0.0);
            if (i < n8) {
                xa[j] = x4[(ph * p.n) / 4u + 2u * i];
                xb[j] = x4[(ph * p.n) / 4u + 2u * i + 1u];
            }
        }
        uint wbase = ph * p.n * n8;
        uint nb = (p.n + RB - 1u) / RB;
        if (DYN) {
            if (lid == 0u) sh_claim = claim(ph);
            barrier();
        }
        uint blk = DYN ? sh_claim : 0u;
        for (uint r0 = DYN ? blk * RB : r_begin; DYN ? blk < nb : r0 < r_end;) {
            uint r_last = DYN ? min(r0 + RB, p.n) : r_end; // rows [r0, r_last) of this step
            if (DYN) {
                barrier(); // every invocation has read sh_claim
                if (lid == 0u) sh_claim = claim(ph); // the next block, in flight meanwhile
            }
            float acc[RB];
            [[unroll]] for (uint r = 0u; r < RB; r++) acc[r] = 0.0;
            [[unroll]] for (uint j = 0u; j < MAXJ; j++) {
                uint i = min(lid + j * WG, n8 - 1u); // past the row: x's slice is zero
                uvec4 wv[RB];
                [[unroll]] for (uint r = 0u; r < RB; r++)
                    wv[r] = w4[wbase + min(r0 + r, r_last - 1u) * n8 + i];
                [[unroll]] for (uint r = 0u; r < RB; r++) {
                    vec4 a, b;
                    unpack8(wv[r], DT_F16, a, b);
                    acc[r] += dot(a, xa[j]) + dot(b, xb[j]);
                }
            }
            [[unroll]] for (uint r = 0u; r < RB; r++) acc[r] = subgroupAdd(acc[r]);
            if (gl_SubgroupInvocationID == 0u)
                [[unroll]] for (uint r = 0u; r < RB; r++) red[gl_SubgroupID * RB + r] = acc[r];
            barrier();
            if (lid < RB && r0 + lid < r_last) {
                float s = 0.0;
                for (uint k = 0u; k < WG / SGS; k++) s += red[k * RB + lid];
                x[(ph + 1u) * p.n + r0 + lid] = s;
            }
            barrier();
            if (DYN) {
                blk = sh_claim;
                r0 = blk * RB;
            } else {
                r0 += RB;
            }
        }
        if (ph + 1u < p.ph1) grid_sync(p.base + (ph + 1u - p.ph0) * G);
    }
}
