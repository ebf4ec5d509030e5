// grid_sync.glsl — a barrier across every workgroup of a dispatch, for persistent kernels, in the
// Vulkan memory model (the device enables vulkanMemoryModel and its device scope). The
// including kernel declares `queuefamilycoherent buffer ... { uint cnt[]; }` and keeps every buffer that
// one workgroup writes and another reads after the barrier `coherent` (queue-family-scope
// visibility: its loads do not hit the multiprocessor's stale L1 lines).
// cnt[0] counts arrivals and only grows: the host passes each dispatch the count at its start
// (base), and the kernel waits for base + (barriers so far) * n_groups(); the comparison is
// modular, so the count may wrap. Every workgroup of the grid must be resident at once (the
// caller launches at most one per multiprocessor), else the waits give up and the data read
// after them is wrong.
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
        // at most 2^24 polls (two loops: llvmpipe cuts any loop at 65535 iterations); a grid
        // that is not all resident then goes on with wrong data rather than hang
        for (uint outer = 0u; outer < 256u; outer++) {
            bool done = false;
            for (uint inner = 0u; inner < 65535u && !done; inner++) {
                if (SYNC_MODE == 0u) {
                    done = int(atomicLoad(cnt[0], gl_ScopeQueueFamily, gl_StorageSemanticsBuffer,
                                          gl_SemanticsAcquire | gl_SemanticsMakeVisible) -
                               target) >= 0;
                } else {
                    done = int(atomicLoad(cnt[0], gl_ScopeQueueFamily, gl_StorageSemanticsBuffer,
                                          gl_SemanticsRelaxed) -
                               target) >= 0;
                    if (!done && SYNC_MODE == 2u)
                        for (uint k = 0u; k < 8u; k++)
                            atomicAdd(gs_spin, 1u, gl_ScopeWorkgroup, gl_StorageSemanticsShared,
                                      gl_SemanticsRelaxed);
                }
            }
            if (done) break;
        }
        if (SYNC_MODE != 0u)
            memoryBarrier(gl_ScopeQueueFamily, gl_StorageSemanticsBuffer,
                          gl_SemanticsAcquire | gl_SemanticsMakeVisible);
    }
    controlBarrier(gl_ScopeWorkgroup, gl_ScopeQueueFamily, gl_StorageSemanticsBuffer,
                   gl_SemanticsAcquireRelease | gl_SemanticsMakeAvailable | gl_SemanticsMakeVisible);
}
