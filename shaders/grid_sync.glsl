// grid_sync.glsl — a barrier across every workgroup of a dispatch, for persistent kernels, in the
// Vulkan memory model (the device enables vulkanMemoryModel and its device scope). The
// including kernel declares `queuefamilycoherent buffer ... { uint cnt[]; }` and keeps every buffer that
// one workgroup writes and another reads after the barrier `coherent` (queue-family-scope
// visibility: its loads do not hit the multiprocessor's stale L1 lines).
// cnt[0] counts arrivals and only grows: the host passes each dispatch the count at its start
// (base), and the kernel waits for base + (barriers so far) * n_groups(); the comparison is
// modular, so the count may wrap. Every workgroup of the grid must be resident at once (the
// caller launches at most one per multiprocessor), or the waits never end.
#extension GL_KHR_memory_scope_semantics : require
layout(constant_id = 7) const uint SYNC_MODE = 0; // 0 acquire polls, 1 relaxed polls, 2 with backoff
shared uint gs_spin;

void grid_sync(uint target) {
    // every invocation's writes made available at queue-family scope, then one arrival per group
    controlBarrier(gl_ScopeWorkgroup, gl_ScopeQueueFamily, gl_StorageSemanticsBuffer,
                   gl_SemanticsAcquireRelease | gl_SemanticsMakeAvailable | gl_SemanticsMakeVisible);
    if (gl_LocalInvocationIndex == 0u) {
        atomicAdd(cnt[0], 1u, gl_ScopeQueueFamily, gl_StorageSemanticsBuffer,
                  gl_SemanticsRelease | gl_SemanticsMakeAvailable);
        if (SYNC_MODE == 0u) {
            while (int(atomicLoad(cnt[0], gl_ScopeQueueFamily, gl_StorageSemanticsBuffer,
                                  gl_SemanticsAcquire | gl_SemanticsMakeVisible) - target) < 0) {
            }
        } else {
            while (int(atomicLoad(cnt[0], gl_ScopeQueueFamily, gl_StorageSemanticsBuffer,
                                  gl_SemanticsRelaxed) - target) < 0) {
                if (SYNC_MODE == 2u)
                    for (uint k = 0u; k < 8u; k++)
                        atomicAdd(gs_spin, 1u, gl_ScopeWorkgroup, gl_StorageSemanticsShared,
                                  gl_SemanticsRelaxed);
            }
            memoryBarrier(gl_ScopeQueueFamily, gl_StorageSemanticsBuffer,
                          gl_SemanticsAcquire | gl_SemanticsMakeVisible);
        }
    }
    controlBarrier(gl_ScopeWorkgroup, gl_ScopeQueueFamily, gl_StorageSemanticsBuffer,
                   gl_SemanticsAcquireRelease | gl_SemanticsMakeAvailable | gl_SemanticsMakeVisible);
}
