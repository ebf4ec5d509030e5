/* tier.c — names and piece views shared by the tier module. */
#include "tier/tier.h"

const char *sym_tier_name(sym_tier t) {
    static const char *const names[SYM_TIER_COUNT] = {"device", "ram", "disk", "unloaded"};
    return (unsigned)t < SYM_TIER_COUNT ? names[t] : "?";
}

sym_status sym_tier_piece_view(const sym_pack_plan *plan, uint32_t pack_id,
                               const sym_tier_place *place, uint32_t piece_idx, sym_tensor *out) {
    SYM_CHECK(pack_id < plan->n_packs, SYM_ERR_ARG, "tier: pack %u of %u", pack_id, plan->n_packs);
    const sym_pack *k = &plan->packs[pack_id];
    SYM_CHECK(piece_idx < k->n_pieces, SYM_ERR_ARG, "tier: piece %u of pack %u (%u pieces)",
              piece_idx, pack_id, k->n_pieces);
    const sym_pack_piece *pc = &sym_pack_pieces(plan, k)[piece_idx];
    const sym_pack_weight *w = &plan->weights[pc->weight_idx];
    *out = (sym_tensor){
        .type = w->type,
        .n_cols = w->n_cols,
        .n_rows = pc->n_rows,
        .data = place->data ? (char *)place->data + pc->pack_offset : NULL,
        .buf = place->buf,
        .offset = place->offset + pc->pack_offset,
    };
    return SYM_OK;
}
