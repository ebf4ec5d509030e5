/* libFuzzer target: the pack-access trace reader (sym_trace_read_memory), then what consumes a
 * trace that reads: the working set, the oracle's skeleton, a replay under LRU, MIN and the
 * oracle at half the working set, and for a mixture of experts the prediction scores.
 *
 * Both checksums are recomputed over the input before parsing, so mutations reach the field
 * checks behind them rather than stopping at "checksum mismatch". */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "tier/policy_sim.h"

#define MAX_INPUT     (1u << 20)
#define MAX_SIM_PACKS 4096u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void replay(const sym_trace *t) {
    uint64_t ws = sym_trace_working_set(t);
    sym_policy_sim_options so;
    sym_policy_sim_options_init(&so);
    static const sym_policy_sim_kind kinds[] = {SYM_POLICY_SIM_LRU, SYM_POLICY_SIM_MIN,
                                                SYM_POLICY_SIM_STATIC, SYM_POLICY_SIM_ORACLE};
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        sym_policy_sim_result r;
        if (sym_policy_sim_run(t, kinds[k], ws / 2, &so, &r) == SYM_OK &&
            (r.n_hits > r.n_uses || r.bytes_moved > r.bytes_used))
            abort(); /* the replay's own invariants */
    }
    if (t->n_expert) {
        sym_policy_sim_pred pr;
        if (sym_policy_sim_predict(t, &so, 0, &pr) == SYM_OK) sym_policy_sim_pred_free(&pr);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 64 || size > MAX_INPUT) return 0;
    uint8_t *p = malloc(size);
    if (!p) return 0;
    memcpy(p, data, size);
    uint64_t h = XXH3_64bits(p + 64, size - 64);
    memcpy(p + 48, &h, 8);
    h = XXH3_64bits(p, 56);
    memcpy(p + 56, &h, 8);
    sym_trace *t = NULL;
    if (sym_trace_read_memory(p, size, &t) == SYM_OK) {
        if (t->n_packs <= MAX_SIM_PACKS && t->n_records <= 65536) replay(t);
        sym_trace_destroy(t);
    }
    free(p);
    return 0;
}
