/* sampler.h — picks the next token from logits: repetition penalty, then greedy (temperature 0)
 * or temperature + top-k + top-p + min-p and a draw from a seeded RNG (same seed, same logits →
 * same token sequence). All buffers are sized at create: sampling never allocates. */
#ifndef SYM_TEXT_SAMPLER_H
#define SYM_TEXT_SAMPLER_H

#include <stddef.h>
#include <stdint.h>

#include "base/status.h"

typedef struct sym_sampler sym_sampler;

/* Validates params (temperature >= 0, top_p in (0, 1], min_p in [0, 1), repeat_penalty > 0,
 * top_k >= 0, repeat_last_n >= 0): SYM_ERR_ARG naming the bad one. Caller owns *out. */
sym_status sym_sampler_create(const sym_sampling *params, int n_vocab, sym_sampler **out);
void sym_sampler_destroy(sym_sampler *s);

/* Chooses a token from logits (n_vocab floats; modified in place). history holds the ids so far
 * (prompt and generated), the last repeat_last_n of which are penalized. */
int32_t sym_sampler_sample(sym_sampler *s, float *logits, const int32_t *history, size_t n_history);

/* 1 if sym_sampler_sample always returns the argmax of the raw logits (temperature 0 and no
 * repetition penalty): the caller may then take the argmax where the logits are (the GPU). */
int sym_sampler_is_argmax(const sym_sampler *s);
/* The index of the largest of n values, the first of equals, NaN never winning (0 if all are):
 * the greedy choice, and what a backend's argmax op returns. */
int32_t sym_argmax_f32(const float *v, int n);

/* top_k if the sampler draws from the top_k largest logits alone (temperature > 0, 0 < top_k <=
 * max_k, no repetition penalty), else 0: the caller may then find them where the logits are. */
int sym_sampler_top_k(const sym_sampler *s, int max_k);

/* As sym_sampler_sample, from the n largest logits alone (n >= top_k, or every non-NaN one):
 * vals[i] is logit ids[i]; NaN values and ids outside the vocabulary are skipped. Draws what
 * sym_sampler_sample would from all the logits (the same candidates, sorted and drawn alike),
 * unless two logits that differ round to the same value once divided by the temperature and
 * sit at the k-th place. */
int32_t sym_sampler_sample_top(sym_sampler *s, const float *vals, const int32_t *ids, int n);

/* Restarts the RNG from the configured seed. */
void sym_sampler_reset(sym_sampler *s);

#endif
