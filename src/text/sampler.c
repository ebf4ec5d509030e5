#include "symbiote.h"
#include "text/sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"

typedef struct cand {
    float logit;
    int32_t id;
} cand;

struct sym_sampler {
    sym_sampling p;
    int n_vocab;
    uint64_t rng[4]; /* xoshiro256** */
    cand *cands;     /* n_vocab */
    float *probs;    /* n_vocab */
    uint8_t *seen;   /* n_vocab: marks for the repetition penalty */
};

void sym_sampling_init(sym_sampling *s) {
    memset(s, 0, sizeof *s);
    s->temperature = 0.8f;
    s->top_k = 40;
    s->top_p = 0.95f;
    s->min_p = 0.05f;
    s->repeat_penalty = 1.0f;
    s->repeat_last_n = 64;
    s->seed = 0x5eed;
}

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t next_u64(uint64_t s[4]) {
    uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return r;
}

/* uniform in [0, 1) with 53 random bits */
static double next_unit(uint64_t s[4]) { return (double)(next_u64(s) >> 11) * 0x1.0p-53; }

void sym_sampler_reset(sym_sampler *s) {
    uint64_t x = s->p.seed;
    for (int i = 0; i < 4; i++) s->rng[i] = splitmix64(&x);
}

sym_status sym_sampler_create(const sym_sampling *params, int n_vocab, sym_sampler **out) {
    const sym_sampling *p = params;
    SYM_CHECK(n_vocab > 0, SYM_ERR_ARG, "sampler: n_vocab %d", n_vocab);
    SYM_CHECK(p->temperature >= 0.0f && isfinite(p->temperature), SYM_ERR_ARG,
              "sampler: temperature %g must be >= 0", p->temperature);
    SYM_CHECK(p->top_k >= 0, SYM_ERR_ARG, "sampler: top-k %d must be >= 0", p->top_k);
    SYM_CHECK(p->top_p > 0.0f && p->top_p <= 1.0f, SYM_ERR_ARG,
              "sampler: top-p %g must be in (0, 1]", p->top_p);
    SYM_CHECK(p->min_p >= 0.0f && p->min_p < 1.0f, SYM_ERR_ARG,
              "sampler: min-p %g must be in [0, 1)", p->min_p);
    SYM_CHECK(p->repeat_penalty > 0.0f && isfinite(p->repeat_penalty), SYM_ERR_ARG,
              "sampler: repeat penalty %g must be > 0", p->repeat_penalty);
    SYM_CHECK(p->repeat_last_n >= 0, SYM_ERR_ARG, "sampler: repeat-last-n %d must be >= 0",
              p->repeat_last_n);
    sym_sampler *s = sym_calloc(1, sizeof *s);
    if (!s) return SYM_FAIL(SYM_ERR_OOM, "sampler: out of memory");
    s->p = *p;
    s->n_vocab = n_vocab;
    s->cands = sym_calloc((size_t)n_vocab, sizeof *s->cands);
    s->probs = sym_calloc((size_t)n_vocab, sizeof *s->probs);
    s->seen = sym_calloc((size_t)n_vocab, 1);
    if (!s->cands || !s->probs || !s->seen) {
        sym_sampler_destroy(s);
        return SYM_FAIL(SYM_ERR_OOM, "sampler: out of memory");
    }
    sym_sampler_reset(s);
    *out = s;
    return SYM_OK;
}

void sym_sampler_destroy(sym_sampler *s) {
    if (!s) return;
    sym_free(s->cands);
    sym_free(s->probs);
    sym_free(s->seen);
    sym_free(s);
}

/* Penalizes each distinct id among the last repeat_last_n (llama.cpp convention: positive logits
 * are divided by the penalty, negative ones multiplied). */
static int penalty_off(const sym_sampler *s) {
    return s->p.repeat_penalty == 1.0f || s->p.repeat_last_n == 0;
}

static void apply_penalty(sym_sampler *s, float *logits, const int32_t *hist, size_t n) {
    if (penalty_off(s) || n == 0) return;
    size_t start = n > (size_t)s->p.repeat_last_n ? n - (size_t)s->p.repeat_last_n : 0;
    for (size_t i = start; i < n; i++) {
        int32_t id = hist[i];
        if (id < 0 || id >= s->n_vocab || s->seen[id]) continue;
        s->seen[id] = 1;
        float *l = &logits[id];
        *l = *l > 0.0f ? *l / s->p.repeat_penalty : *l * s->p.repeat_penalty;
    }
    for (size_t i = start; i < n; i++)
        if (hist[i] >= 0 && hist[i] < s->n_vocab) s->seen[hist[i]] = 0;
}

/* Larger logit first; ties broken by smaller id so results never depend on sort stability. */
static int cand_cmp(const void *a, const void *b) {
    const cand *x = a, *y = b;
    if (x->logit != y->logit) return x->logit < y->logit ? 1 : -1;
    return (x->id > y->id) - (x->id < y->id);
}

/* Moves the k largest candidates to the front (unordered) — quickselect, O(n). */
static void select_top(cand *c, int n, int k) {
    int lo = 0, hi = n - 1;
    while (lo < hi) {
        cand pivot = c[lo + (hi - lo) / 2];
        int i = lo, j = hi;
        while (i <= j) {
            while (cand_cmp(&c[i], &pivot) < 0) i++;
            while (cand_cmp(&c[j], &pivot) > 0) j--;
            if (i <= j) {
                cand t = c[i];
                c[i++] = c[j];
                c[j--] = t;
            }
        }
        if (k - 1 <= j) hi = j;
        else if (k - 1 >= i) lo = i;
        else break;
    }
}

static int32_t draw(sym_sampler *s, int k);

int sym_sampler_is_argmax(const sym_sampler *s) {
    return s->p.temperature == 0.0f && penalty_off(s);
}

int32_t sym_argmax_f32(const float *v, int n) {
    int32_t best = -1;
    for (int i = 0; i < n; i++)
        if (!isnan(v[i]) && (best < 0 || v[i] > v[best])) best = i;
    return best < 0 ? 0 : best;
}

int32_t sym_sampler_sample(sym_sampler *s, float *logits, const int32_t *history, size_t n_history) {
    int n = s->n_vocab;
    apply_penalty(s, logits, history, n_history);
    if (s->p.temperature == 0.0f) return sym_argmax_f32(logits, n);
    int m = 0;
    for (int i = 0; i < n; i++)
        if (!isnan(logits[i])) s->cands[m++] = (cand){logits[i] / s->p.temperature, i};
    if (m == 0) return 0;
    int k = s->p.top_k > 0 && s->p.top_k < m ? s->p.top_k : m;
    if (k < m) select_top(s->cands, m, k);
    return draw(s, k);
}

int sym_sampler_top_k(const sym_sampler *s, int max_k) {
    if (s->p.temperature == 0.0f || s->p.top_k <= 0 || s->p.top_k > max_k || !penalty_off(s))
        return 0;
    return s->p.top_k;
}

int32_t sym_sampler_sample_top(sym_sampler *s, const float *vals, const int32_t *ids, int n) {
    int m = 0;
    for (int i = 0; i < n && m < s->n_vocab; i++)
        if (!isnan(vals[i]) && ids[i] >= 0 && ids[i] < s->n_vocab)
            s->cands[m++] = (cand){vals[i] / s->p.temperature, ids[i]};
    if (m == 0) return 0;
    return draw(s, s->p.top_k > 0 && s->p.top_k < m ? s->p.top_k : m);
}

/* Sorts the k candidates in front of s->cands (largest first, equal ones by id) and draws one:
 * softmax over them, then top-p and min-p. */
static int32_t draw(sym_sampler *s, int k) {
    qsort(s->cands, (size_t)k, sizeof *s->cands, cand_cmp);
    /* softmax over the k survivors */
    double sum = 0.0;
    float max = s->cands[0].logit;
    for (int i = 0; i < k; i++) {
        s->probs[i] = expf(s->cands[i].logit - max);
        sum += s->probs[i];
    }
    /* top-p: the smallest prefix whose mass reaches top_p; min-p: drop p < min_p * p_max */
    int keep = k;
    double cum = 0.0;
    for (int i = 0; i < k; i++) {
        double pi = s->probs[i] / sum;
        if (s->p.min_p > 0.0f && pi < s->p.min_p * (s->probs[0] / sum) && i > 0) {
            keep = i;
            break;
        }
        cum += pi;
        if (cum >= s->p.top_p) {
            keep = i + 1;
            break;
        }
    }
    double total = 0.0;
    for (int i = 0; i < keep; i++) total += s->probs[i];
    double r = next_unit(s->rng) * total, acc = 0.0;
    for (int i = 0; i < keep; i++) {
        acc += s->probs[i];
        if (r < acc) return s->cands[i].id;
    }
    return s->cands[keep - 1].id;
}
