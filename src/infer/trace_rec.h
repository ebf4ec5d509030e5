/* trace_rec.h — records the pack accesses of real runs as a .symtrace (tier/trace.h), for the
 * policy simulator and the oracle (`symbiote run --trace-out FILE`).
 *
 * Per evaluated token, one record per use of the plan's schedule, in order: dense packs as FULL
 * (or GATHER for the embedding), and for a mixture of experts one EXPERT record per expert the
 * router chose in each layer, with its routing weight. Whether the engine streams or not, the
 * accesses are the model's: what any placement would have to serve.
 */
#ifndef SYM_INFER_TRACE_REC_H
#define SYM_INFER_TRACE_REC_H

#include "infer/forward.h"
#include "tier/trace.h"

typedef struct sym_trace_rec sym_trace_rec;

/* For plan (borrowed, outlives the recorder) and chunks of at most max_tok tokens. */
sym_status sym_trace_rec_create(const sym_pack_plan *plan, int max_tok, sym_trace_rec **out);
void sym_trace_rec_destroy(sym_trace_rec *r);
/* Hooks for the forward pass: a layer's routing, and a finished chunk of n tokens. */
void sym_trace_rec_route(void *user, int layer, const sym_moe_route *route);
void sym_trace_rec_chunk(void *user, int n_tok);
/* The first error met while recording (SYM_OK if none), then writes the file. */
sym_status sym_trace_rec_write(sym_trace_rec *r, const char *path);

#endif
