/* Sampler: greedy is argmax; seeded draws are reproducible; the empirical distribution follows
 * softmax(logits / T) restricted by top-k / top-p / min-p; the repetition penalty; bad params. */
#include "test_util.h"
#include "text/sampler.h"

#define NV 50

static sym_sampling params(float temp, int top_k, float top_p, float min_p) {
    sym_sampling p;
    sym_sampling_init(&p);
    p.temperature = temp;
    p.top_k = top_k;
    p.top_p = top_p;
    p.min_p = min_p;
    p.repeat_penalty = 1.0f;
    p.seed = 42;
    return p;
}

/* Draws n samples and checks frequencies against the expected distribution (chi-square-like
 * bound: |f - p| < 5 sigma + 1e-3). */
static void check_distribution(const char *what, sym_sampling p, const float *logits,
                               const double *expect, int n) {
    sym_sampler *s = NULL;
    CHECK_OK(sym_sampler_create(&p, NV, &s));
    if (!s) return;
    static int counts[NV];
    memset(counts, 0, sizeof counts);
    float tmp[NV];
    for (int i = 0; i < n; i++) {
        memcpy(tmp, logits, sizeof tmp);
        int32_t id = sym_sampler_sample(s, tmp, NULL, 0);
        CHECK(id >= 0 && id < NV, "%s: id %d", what, id);
        if (id >= 0 && id < NV) counts[id]++;
    }
    for (int i = 0; i < NV; i++) {
        double f = counts[i] / (double)n, sd = sqrt(expect[i] * (1 - expect[i]) / n);
        CHECK(fabs(f - expect[i]) < 5 * sd + 1e-3, "%s: token %d freq %.4f expected %.4f", what, i,
              f, expect[i]);
    }
    sym_sampler_destroy(s);
}

/* Drawing from the top-k candidates alone (sym_sampler_sample_top, fed what the backend's
 * topk op returns: the k largest, largest first, equal values by the lower id, NaN excluded)
 * must give the same ids as sampling the full logits, draw after draw with the same seed; and
 * sym_sampler_top_k says when that applies. Logits from a few levels (ties) with NaN. */
static void check_top(test_rng *r) {
    float logits[NV], tmp[NV], vals[NV];
    int32_t ids[NV];
    for (int i = 0; i < NV; i++)
        logits[i] = test_rng_below(r, 9) == 0 ? NAN : floorf(4.0f * test_rng_f32(r)) * 0.75f;
    static const int ks[3] = {1, 5, 40};
    for (int c = 0; c < 3; c++) {
        sym_sampling p = params(0.8f, ks[c], c == 1 ? 0.9f : 1.0f, c == 2 ? 0.05f : 0.0f);
        sym_sampler *full = NULL, *top = NULL;
        CHECK_OK(sym_sampler_create(&p, NV, &full));
        CHECK_OK(sym_sampler_create(&p, NV, &top));
        if (!full || !top) return;
        CHECK(sym_sampler_top_k(top, 64) == ks[c] && sym_sampler_top_k(top, ks[c] - 1) == 0,
              "top_k %d: sym_sampler_top_k", ks[c]);
        /* the k largest non-NaN logits, largest first, ties by id (selection by hand) */
        int n = 0;
        int used[NV] = {0};
        while (n < ks[c]) {
            int b = -1;
            for (int i = 0; i < NV; i++)
                if (!used[i] && !isnan(logits[i]) && (b < 0 || logits[i] > logits[b])) b = i;
            if (b < 0) break;
            used[b] = 1, vals[n] = logits[b], ids[n++] = b;
        }
        for (int d = 0; d < 2000; d++) {
            memcpy(tmp, logits, sizeof tmp);
            int32_t a = sym_sampler_sample(full, tmp, NULL, 0);
            int32_t t = sym_sampler_sample_top(top, vals, ids, n);
            CHECK(a == t, "top_k %d, draw %d: full logits %d, top candidates %d", ks[c], d, a, t);
            if (a != t) break;
        }
        sym_sampler_destroy(full);
        sym_sampler_destroy(top);
    }
    /* no shortcut with greedy, a penalty, or top-k off */
    sym_sampling p = params(0.8f, 0, 1.0f, 0.0f);
    sym_sampler *s = NULL;
    CHECK_OK(sym_sampler_create(&p, NV, &s));
    CHECK(s && sym_sampler_top_k(s, 64) == 0, "top_k 0: no shortcut");
    sym_sampler_destroy(s);
    p = params(0.8f, 10, 1.0f, 0.0f);
    p.repeat_penalty = 1.1f;
    CHECK_OK(sym_sampler_create(&p, NV, &s));
    CHECK(s && sym_sampler_top_k(s, 64) == 0, "penalty: no shortcut");
    sym_sampler_destroy(s);
}

int main(void) {
    test_rng r = test_rng_init("test_sampler");
    float logits[NV];
    for (int i = 0; i < NV; i++) logits[i] = 3.0f * test_rng_f32(&r);
    int best = 0;
    for (int i = 1; i < NV; i++)
        if (logits[i] > logits[best]) best = i;

    /* greedy */
    sym_sampling p = params(0.0f, 0, 1.0f, 0.0f);
    sym_sampler *s = NULL;
    CHECK_OK(sym_sampler_create(&p, NV, &s));
    float tmp[NV];
    memcpy(tmp, logits, sizeof tmp);
    CHECK(sym_sampler_sample(s, tmp, NULL, 0) == best, "greedy is argmax");
    /* repetition penalty can move the argmax away from a repeated token */
    sym_sampler_destroy(s);
    p.repeat_penalty = 1e6f;
    p.repeat_last_n = 4;
    CHECK_OK(sym_sampler_create(&p, NV, &s));
    memcpy(tmp, logits, sizeof tmp);
    int32_t hist[2] = {best, best};
    int32_t second = sym_sampler_sample(s, tmp, hist, 2);
    CHECK(second != best, "penalty moves the choice");
    CHECK(tmp[best] < logits[best] || logits[best] <= 0, "penalized logit lowered");
    sym_sampler_destroy(s);

    /* reproducibility: same seed, same sequence; different seed differs */
    int32_t a[200], b[200], c[200];
    for (int run = 0; run < 3; run++) {
        p = params(1.0f, 0, 1.0f, 0.0f);
        p.seed = run == 2 ? 43 : 42;
        CHECK_OK(sym_sampler_create(&p, NV, &s));
        for (int i = 0; i < 200; i++) {
            memcpy(tmp, logits, sizeof tmp);
            (run == 0 ? a : run == 1 ? b : c)[i] = sym_sampler_sample(s, tmp, NULL, 0);
        }
        sym_sampler_destroy(s);
    }
    CHECK(memcmp(a, b, sizeof a) == 0, "same seed, same draws");
    CHECK(memcmp(a, c, sizeof a) != 0, "different seed, different draws");

    /* distributions */
    double expect[NV], sum = 0;
    const float T = 0.7f;
    for (int i = 0; i < NV; i++) sum += expect[i] = exp(logits[i] / T);
    for (int i = 0; i < NV; i++) expect[i] /= sum;
    check_distribution("temperature", params(T, 0, 1.0f, 0.0f), logits, expect, 200000);

    /* top-k 5: only the 5 best, renormalized */
    int order[NV];
    for (int i = 0; i < NV; i++) order[i] = i;
    for (int i = 0; i < NV; i++)
        for (int j = i + 1; j < NV; j++)
            if (logits[order[j]] > logits[order[i]]) {
                int t = order[i];
                order[i] = order[j];
                order[j] = t;
            }
    double ek[NV] = {0}, sk = 0;
    for (int i = 0; i < 5; i++) sk += ek[order[i]] = exp(logits[order[i]] / T);
    for (int i = 0; i < NV; i++) ek[i] /= sk;
    check_distribution("top-k", params(T, 5, 1.0f, 0.0f), logits, ek, 100000);

    /* top-p 0.5: the smallest prefix (by probability) reaching 0.5 */
    double ep[NV] = {0}, cum = 0, sp = 0;
    int keep = 0;
    while (cum < 0.5) cum += expect[order[keep++]];
    for (int i = 0; i < keep; i++) sp += ep[order[i]] = expect[order[i]];
    for (int i = 0; i < NV; i++) ep[i] /= sp;
    check_distribution("top-p", params(T, 0, 0.5f, 0.0f), logits, ep, 100000);

    /* min-p 0.3: keep p >= 0.3 * p_max */
    double em[NV] = {0}, sm = 0;
    for (int i = 0; i < NV; i++)
        if (expect[i] >= 0.3 * expect[order[0]]) sm += em[i] = expect[i];
    for (int i = 0; i < NV; i++) em[i] /= sm;
    check_distribution("min-p", params(T, 0, 1.0f, 0.3f), logits, em, 100000);

    /* bad parameters */
    p = params(-1.0f, 0, 1.0f, 0.0f);
    CHECK_STATUS(sym_sampler_create(&p, NV, &s), SYM_ERR_ARG);
    p = params(1.0f, 0, 0.0f, 0.0f);
    CHECK_STATUS(sym_sampler_create(&p, NV, &s), SYM_ERR_ARG);
    p = params(1.0f, -3, 1.0f, 0.0f);
    CHECK_STATUS(sym_sampler_create(&p, NV, &s), SYM_ERR_ARG);
    p = params(1.0f, 0, 1.0f, 1.0f);
    CHECK_STATUS(sym_sampler_create(&p, NV, &s), SYM_ERR_ARG);
    check_top(&r);
    return test_finish("test_sampler");
}
