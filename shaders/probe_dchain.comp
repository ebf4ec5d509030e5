#version 450
// probe_dchain: one product x[ph + 1] = W[ph] x[ph] (n x n f16) of a chain of dependent
// matrix-vector products per dispatch, RB rows per workgroup (the layout of the decode
// products: invocations stride along a row with 16-byte loads, the sums meet in subgroupAdd and
// shared memory). The probe (probe.c, sym_vk_probe_dchain) times how the dispatches of a chain
// may follow each other:
//   MODE 0  no wait in the shader: a pipeline barrier between dispatches, or none at all (the
//           lower bound, with wrong results);
//   MODE 1  the workgroup waits for every workgroup of the dispatch before (an arrivals
//           counter, as chained dispatches did), then loads its rows of W and x;
//   MODE 2  the workgroup loads its rows of W into registers first, then waits, then reads x:
//           the weights, the bulk of the bytes, do not depend on the dispatch before, so they
//           stream while its last workgroups finish;
//   MODE 3, 4  as 1 and 2, with arrivals spread over 32 counters (128 bytes apart) per
//           dispatch, the last arriver of each incrementing the dispatch's top counter, which is
//           all the waiters poll (one line read, no line both polled and hammered by atomics);
//           the counters are per dispatch, zeroed by the host before each chain.
// With MODE 1 and 2 no pipeline barrier separates the dispatches of a chain; each workgroup
// signals cnt[0] after its rows are written. The wait and signal are in the Vulkan memory model
// (as grid_sync.glsl): relaxed polls with backoff by one invocation, an acquire fence, x
// nonprivate.
#include "common.glsl"
#extension GL_KHR_memory_scope_semantics : require
layout(local_size_x_id = 0) in;
layout(constant_id = 4) const uint RB = 1;   // rows per workgroup
layout(constant_id = 5) const uint MAXJ = 8; // uvec4 of a row per invocation: n / 8 <= WG * MAXJ
layout(constant_id = 6) const uint MODE = 0;
layout(constant_id = 7) const uint BACKOFF = 4; // shared-memory atomics between two polls
layout(constant_id = 8) const uint SGS = 32;
const uint NSUB = 32u, SLOT = NSUB * 32u + 32u; // per dispatch: NSUB counters, then the top

layout(binding = 0) readonly buffer W { uvec4 w4[]; };
layout(binding = 1) nonprivate buffer X4 { vec4 x4[]; };
layout(binding = 1) nonprivate buffer X1 { float x[]; };
layout(binding = 2) queuefamilycoherent buffer Sync { uint cnt[]; };

layout(push_constant) uniform Push { // sym_vk_push_probe_dchain
    uint n, ph, target;
} p;

shared float red[(WG / SGS) * RB];
shared uint spin;

// Until cnt[0] reaches p.target (modular: the count only grows and may wrap). At most 2^24
// polls (two loops: llvmpipe cuts any loop at 65535 iterations); a wait that gives up goes on
// with wrong data, which the probe's check reports.
// Modes 3, 4: until the top counter of dispatch ph - 1 counts every counter that had arrivals.
uint n_sub() { return min(NSUB, n_groups()); }
bool top_done() {
    return atomicLoad(cnt[(p.ph - 1u) * SLOT + NSUB * 32u], gl_ScopeQueueFamily,
                      gl_StorageSemanticsBuffer, gl_SemanticsRelaxed) >= n_sub();
}

void wait_prev() {
    if (MODE >= 3u && p.ph == 0u) return; // the chain's first: after a pipeline barrier
    if (gl_LocalInvocationIndex == 0u) {
        for (uint outer = 0u; outer < 256u; outer++) {
            bool done = false;
            for (uint inner = 0u; inner < 65535u && !done; inner++) {
                done = MODE >= 3u ? top_done()
                                  : int(atomicLoad(cnt[0], gl_ScopeQueueFamily,
                                                   gl_StorageSemanticsBuffer, gl_SemanticsRelaxed) -
                                        p.target) >= 0;
                if (!done)
                    for (uint k = 0u; k < BACKOFF; k++) // back off: fewer reads of one L2 line
                        atomicAdd(spin, 1u, gl_ScopeWorkgroup, gl_StorageSemanticsShared,
                                  gl_SemanticsRelaxed);
            }
            if (done) break;
        }
        memoryBarrier(gl_ScopeQueueFamily, gl_StorageSemanticsBuffer,
                      gl_SemanticsAcquire | gl_SemanticsMakeVisible);
    }
    controlBarrier(gl_ScopeWorkgroup, gl_ScopeQueueFamily, gl_StorageSemanticsBuffer,
                   gl_SemanticsAcquireRelease | gl_SemanticsMakeAvailable |
                       gl_SemanticsMakeVisible);
}

void main() {
    uint n8 = p.n / 8u, lid = gl_LocalInvocationID.x;
    uint r0 = lin_group() * RB;
    uint wbase = p.ph * p.n * n8;
    if (MODE == 1u || MODE == 3u) wait_prev();
    uvec4 wv[RB * MAXJ];
    [[unroll]] for (uint r = 0u; r < RB; r++) {
        uint row = min(r0 + r, p.n - 1u);
        [[unroll]] for (uint j = 0u; j < MAXJ; j++) {
            uint i = lid + j * WG;
            wv[r * MAXJ + j] = i < n8 ? w4[wbase + row * n8 + i] : uvec4(0u);
        }
    }
    if (MODE == 2u || MODE == 4u) {
        // every invocation's loads complete before the wait: a side effect that depends on all
        // of them (never taken: p.n is a multiple of 8) keeps the compiler from sinking them
        uint h = 0u;
        [[unroll]] for (uint k = 0u; k < RB * MAXJ; k++) h ^= wv[k].x ^ wv[k].y ^ wv[k].z ^ wv[k].w;
        if (h == 0x5eed1e55u && (p.n & 7u) != 0u) spin = h;
        wait_prev();
    }
    float acc[RB];
    [[unroll]] for (uint r = 0u; r < RB; r++) acc[r] = 0.0;
    [[unroll]] for (uint j = 0u; j < MAXJ; j++) {
        uint i = lid + j * WG;
        if (i < n8) {
            vec4 xa = x4[(p.ph * p.n) / 4u + 2u * i], xb = x4[(p.ph * p.n) / 4u + 2u * i + 1u];
            [[unroll]] for (uint r = 0u; r < RB; r++) {
                vec4 a, b;
                unpack8(wv[r * MAXJ + j], DT_F16, a, b);
                acc[r] += dot(a, xa) + dot(b, xb);
            }
        }
    }
    [[unroll]] for (uint r = 0u; r < RB; r++) acc[r] = subgroupAdd(acc[r]);
    if (gl_SubgroupInvocationID == 0u)
        [[unroll]] for (uint r = 0u; r < RB; r++) red[gl_SubgroupID * RB + r] = acc[r];
    barrier();
    if (lid < RB && r0 + lid < p.n) {
        float s = 0.0;
        for (uint k = 0u; k < WG / SGS; k++) s += red[k * RB + lid];
        x[(p.ph + 1u) * p.n + r0 + lid] = s;
    }
    if (MODE != 0u) {
        // every invocation's writes made available at queue-family scope, then one arrival
        controlBarrier(gl_ScopeWorkgroup, gl_ScopeQueueFamily, gl_StorageSemanticsBuffer,
                       gl_SemanticsAcquireRelease | gl_SemanticsMakeAvailable |
                           gl_SemanticsMakeVisible);
        if (lid == 0u && MODE < 3u)
            atomicAdd(cnt[0], 1u, gl_ScopeQueueFamily, gl_StorageSemanticsBuffer,
                      gl_SemanticsRelease | gl_SemanticsMakeAvailable);
        if (lid == 0u && MODE >= 3u) {
            uint g = lin_group(), s = g % NSUB, n_s = (n_groups() - s + NSUB - 1u) / NSUB;
            uint old = atomicAdd(cnt[p.ph * SLOT + s * 32u], 1u, gl_ScopeQueueFamily,
                                 gl_StorageSemanticsBuffer,
                                 gl_SemanticsAcquireRelease | gl_SemanticsMakeAvailable |
                                     gl_SemanticsMakeVisible);
            if (old + 1u == n_s)
                atomicAdd(cnt[p.ph * SLOT + NSUB * 32u], 1u, gl_ScopeQueueFamily,
                          gl_StorageSemanticsBuffer,
                          gl_SemanticsRelease | gl_SemanticsMakeAvailable);
        }
    }
}
