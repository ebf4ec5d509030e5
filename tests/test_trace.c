/* test_trace: pack-access traces (tier/trace.h) — the dense and mixture-of-experts generators
 * (shapes, determinism, and that the router's skew, temporal locality and layer correlation are
 * there and respond to their knobs), the file round trip, and a strict reader: every truncation,
 * every flipped byte, and each field broken on its own (checksums fixed up) is SYM_ERR_FORMAT
 * naming the problem. */
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "test_util.h"
#include "tier/trace.h"

static char g_dir[1024];

static void rm_rf(const char *path) {
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    if (system(cmd) != 0) fprintf(stderr, "rm -rf %s failed\n", path);
}

static sym_pack_plan *plan_of(const char *preset, uint64_t limit) {
    sym_pack_plan *p = NULL;
    CHECK_OK(sym_trace_plan_preset(preset, SYM_DT_F16, limit, &p));
    return p;
}

static uint8_t *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)len + 1);
    *n = fread(b, 1, (size_t)len, f);
    fclose(f);
    return b;
}

/* fixes both checksums after a deliberate change (the fuzzer does the same) */
static void rehash(uint8_t *b, size_t n) {
    uint64_t h = XXH3_64bits(b + 64, n - 64);
    memcpy(b + 48, &h, 8);
    h = XXH3_64bits(b, 56);
    memcpy(b + 56, &h, 8);
}

static void expect_format(const uint8_t *b, size_t n, const char *want, const char *what) {
    sym_trace *t = NULL;
    sym_status st = sym_trace_read_memory(b, n, &t);
    CHECK(st == SYM_ERR_FORMAT && strstr(sym_last_error(), want), "%s: got %s (%s), want '%s'",
          what, sym_status_name(st), sym_last_error(), want);
    CHECK(t == NULL, "%s: a trace came back", what);
    sym_trace_destroy(t);
}

static bool same_trace(const sym_trace *a, const sym_trace *b) {
    if (a->n_packs != b->n_packs || a->n_dense != b->n_dense || a->n_layer != b->n_layer ||
        a->n_expert != b->n_expert || a->top_k != b->top_k || a->n_tokens != b->n_tokens ||
        a->n_records != b->n_records)
        return false;
    for (uint32_t i = 0; i < a->n_packs; i++)
        if (a->packs[i].bytes != b->packs[i].bytes || a->packs[i].layer != b->packs[i].layer ||
            a->packs[i].expert != b->packs[i].expert)
            return false;
    for (uint64_t i = 0; i < a->n_records; i++) {
        const sym_trace_record *x = &a->records[i], *y = &b->records[i];
        if (x->token != y->token || x->pack_id != y->pack_id || x->layer != y->layer ||
            x->kind != y->kind || memcmp(&x->prob, &y->prob, 4) != 0)
            return false;
    }
    return true;
}

/* ---- generators ------------------------------------------------------------------------------ */

static void test_dense(void) {
    sym_pack_plan *p = plan_of("tinyllama-1.1b", 32u << 20);
    sym_trace *t = NULL;
    CHECK_OK(sym_trace_dense(p, 3, &t));
    if (!t) return;
    CHECK(t->n_packs == p->n_packs && t->n_dense == p->n_packs && t->n_expert == 0,
          "dense: %u packs", t->n_packs);
    CHECK(t->n_records == 3ull * p->n_uses && t->n_tokens == 3, "dense: %llu records",
          (unsigned long long)t->n_records);
    uint64_t total = 0;
    for (uint32_t i = 0; i < p->n_packs; i++) {
        CHECK(t->packs[i].bytes == p->packs[i].buffer_bytes &&
                  t->packs[i].layer == p->packs[i].layer,
              "dense: pack %u", i);
        total += p->packs[i].buffer_bytes;
    }
    CHECK(sym_trace_working_set(t) == total, "dense: working set");
    uint64_t n_gather = 0;
    for (uint64_t i = 0; i < t->n_records; i++) {
        const sym_trace_record *r = &t->records[i];
        const sym_pack_use *u = &p->schedule[i % p->n_uses];
        bool ok = r->pack_id == u->pack_id && r->token == i / p->n_uses &&
                  r->kind == (u->kind == SYM_PACK_USE_GATHER ? SYM_TRACE_GATHER : SYM_TRACE_FULL) &&
                  r->prob == SYM_TRACE_PROB_UNKNOWN && r->layer == p->packs[u->pack_id].layer;
        CHECK(ok, "dense: record %llu", (unsigned long long)i);
        if (!ok) break;
        n_gather += r->kind == SYM_TRACE_GATHER;
    }
    CHECK(n_gather == 3ull * p->n_packs_by_type[SYM_PACK_EMBED], "dense: %llu gather uses",
          (unsigned long long)n_gather);
    sym_trace_destroy(t);
    sym_pack_plan_destroy(p);
}

typedef struct moe_stats {
    double top_quarter_share; /* share of uses taken by each layer's most used quarter */
    double reuse;             /* P(chosen again at the next token | chosen) */
    double next_layer;        /* P(same index chosen at layer l + 1 | chosen at l) */
} moe_stats;

/* Checks the structure of a MoE trace against its plan and measures its routing statistics. */
static moe_stats check_moe(const sym_pack_plan *p, const sym_trace *t, const char *what) {
    moe_stats s = {0};
    uint32_t E = t->n_expert, L = (uint32_t)t->n_layer, k = t->top_k;
    /* the packs a slot replaced: a MoE plan's experts, else the MLP packs */
    uint32_t n_mlp = p->n_packs_by_type[p->n_expert ? SYM_PACK_EXPERT : SYM_PACK_MLP];
    CHECK(t->n_dense == p->n_packs - n_mlp && t->n_packs == t->n_dense + L * E, "%s: %u packs",
          what, t->n_packs);
    uint64_t *count = calloc((size_t)L * E, sizeof *count);
    uint8_t *prev = calloc((size_t)L * E, 1), *cur = calloc((size_t)L * E, 1);
    uint64_t reuse = 0, chances = 0, nl_hit = 0, nl_n = 0;
    uint64_t i = 0;
    bool ok = true;
    for (uint32_t tok = 0; tok < t->n_tokens && ok; tok++) {
        memset(cur, 0, (size_t)L * E);
        uint32_t n_dense = 0, slots = 0;
        for (; i < t->n_records && t->records[i].token == tok;) {
            const sym_trace_record *r = &t->records[i];
            if (r->kind != SYM_TRACE_EXPERT) {
                n_dense++;
                i++;
                continue;
            }
            uint32_t l = (uint32_t)r->layer;
            float last = 2.0f;
            for (uint32_t j = 0; j < k; j++, i++) {
                const sym_trace_record *x = &t->records[i];
                uint32_t e = x->pack_id - t->n_dense - l * E;
                ok &= i < t->n_records && x->token == tok && x->kind == SYM_TRACE_EXPERT &&
                      (uint32_t)x->layer == l && x->prob > 0.0f && x->prob <= last &&
                      !cur[l * E + e] && t->packs[x->pack_id].expert == e;
                last = x->prob;
                cur[l * E + e] = 1;
                count[l * E + e]++;
            }
            CHECK(slots == l, "%s: token %u: slot of layer %u comes %u-th", what, tok, l, slots);
            slots++;
        }
        CHECK(ok && slots == L && n_dense == p->n_uses - n_mlp, "%s: token %u: %u slots, %u dense",
              what, tok, slots, n_dense);
        for (uint32_t j = 0; j < L * E; j++) {
            if (tok > 0 && prev[j]) chances++, reuse += cur[j];
        }
        for (uint32_t l = 0; l + 1 < L; l++)
            for (uint32_t e = 0; e < E; e++)
                if (cur[l * E + e]) nl_n++, nl_hit += cur[(l + 1) * E + e];
        memcpy(prev, cur, (size_t)L * E);
    }
    /* per layer: the uses of the most used quarter of the experts */
    uint64_t top = 0, all = 0;
    for (uint32_t l = 0; l < L; l++) {
        uint64_t *c = count + (size_t)l * E;
        for (uint32_t a = 0; a < E; a++) /* sort descending (E is small) */
            for (uint32_t b = a + 1; b < E; b++)
                if (c[b] > c[a]) {
                    uint64_t x = c[a];
                    c[a] = c[b];
                    c[b] = x;
                }
        for (uint32_t e = 0; e < E; e++) {
            all += c[e];
            if (e < E / 4) top += c[e];
        }
    }
    s.top_quarter_share = all ? (double)top / (double)all : 0;
    s.reuse = chances ? (double)reuse / (double)chances : 0;
    s.next_layer = nl_n ? (double)nl_hit / (double)nl_n : 0;
    free(count);
    free(prev);
    free(cur);
    return s;
}

static void test_moe(void) {
    sym_pack_plan *p = plan_of("tinyllama-1.1b", 32u << 20);
    sym_trace_moe_options o;
    sym_trace_moe_options_init(&o);
    o.n_tokens = 200;
    o.seed = 7;
    sym_trace *t = NULL, *u = NULL, *v = NULL;
    CHECK_OK(sym_trace_moe(p, &o, &t));
    if (!t) return;
    uint64_t mlp0 = 0;
    for (uint32_t i = 0; i < p->n_packs; i++)
        if (p->packs[i].type == SYM_PACK_MLP && p->packs[i].layer == 0) mlp0 += p->packs[i].n_bytes;
    CHECK(t->packs[t->n_dense].bytes == (mlp0 / 4 + 255) / 256 * 256 &&
              t->packs[t->n_packs - 1].bytes == t->packs[t->n_dense].bytes,
          "moe: expert bytes %llu (layer 0 MLP %llu)",
          (unsigned long long)t->packs[t->n_dense].bytes, (unsigned long long)mlp0);
    moe_stats s = check_moe(p, t, "moe default");
    double chance = (double)o.top_k / o.n_expert;
    fprintf(stderr, "moe default: top quarter %.3f, reuse %.3f, next layer %.3f (chance %.3f)\n",
            s.top_quarter_share, s.reuse, s.next_layer, chance);
    CHECK(s.top_quarter_share > 0.45, "moe: usage not skewed (top quarter %.3f)",
          s.top_quarter_share);
    CHECK(s.reuse > 3 * chance, "moe: no temporal locality (%.3f)", s.reuse);
    CHECK(s.next_layer > 2 * chance, "moe: layers not correlated (%.3f)", s.next_layer);

    /* the same seed gives the same trace, another seed another */
    CHECK_OK(sym_trace_moe(p, &o, &u));
    CHECK(u && same_trace(t, u), "moe: same seed, different trace");
    o.seed = 8;
    CHECK_OK(sym_trace_moe(p, &o, &v));
    CHECK(v && !same_trace(t, v), "moe: another seed, same trace");
    sym_trace_destroy(u);
    sym_trace_destroy(v);
    u = v = NULL;

    /* the knobs do what the header says */
    o.seed = 7;
    o.topic_stay = 0;
    CHECK_OK(sym_trace_moe(p, &o, &u));
    moe_stats s0 = u ? check_moe(p, u, "moe stay 0") : s;
    CHECK(s0.reuse < s.reuse - 0.05, "moe: topic_stay 0 keeps locality (%.3f vs %.3f)", s0.reuse,
          s.reuse);
    sym_trace_destroy(u);
    u = NULL;
    sym_trace_moe_options_init(&o);
    o.n_tokens = 200;
    o.seed = 7;
    o.layer_drift = 1;
    o.layer_corr = 0;
    o.global_zipf = 0;
    CHECK_OK(sym_trace_moe(p, &o, &u));
    moe_stats s1 = u ? check_moe(p, u, "moe drift 1") : s;
    CHECK(s1.next_layer < s.next_layer - 0.05 && s1.next_layer < 1.6 * chance,
          "moe: independent layers still correlated (%.3f vs %.3f)", s1.next_layer, s.next_layer);
    sym_trace_destroy(u);
    u = NULL;
    sym_trace_moe_options_init(&o);
    o.n_tokens = 200;
    o.zipf_s = 0;
    o.global_zipf = 0;
    CHECK_OK(sym_trace_moe(p, &o, &u));
    moe_stats s2 = u ? check_moe(p, u, "moe flat") : s;
    CHECK(s2.top_quarter_share < s.top_quarter_share - 0.1,
          "moe: flat preferences still skewed (%.3f vs %.3f)", s2.top_quarter_share,
          s.top_quarter_share);
    sym_trace_destroy(u);

    /* options out of range */
    sym_trace_moe_options bad[8];
    for (int i = 0; i < 8; i++)
        sym_trace_moe_options_init(&bad[i]);
    bad[0].n_expert = 0;
    bad[1].top_k = 33;
    bad[2].topic_stay = 1.5;
    bad[3].n_tokens = 0;
    bad[4].zipf_s = -1;
    bad[5].noise = NAN;
    bad[6].layer_corr = 2;
    bad[7].n_topics = 0;
    for (int i = 0; i < 8; i++) {
        u = NULL;
        CHECK_STATUS(sym_trace_moe(p, &bad[i], &u), SYM_ERR_ARG);
        CHECK(!u, "bad options %d gave a trace", i);
    }
    sym_trace_destroy(t);
    sym_pack_plan_destroy(p);
}

/* a plan with EXPERT packs (pack.h) keeps its own experts: n_expert, top-k and bytes */
static void test_moe_plan(void) {
    sym_pack_plan *p = plan_of("mixtral-8x7b", 64u << 20);
    if (!p) return;
    sym_trace *t = NULL;
    CHECK_STATUS(sym_trace_dense(p, 2, &t), SYM_ERR_ARG);
    sym_trace_moe_options o;
    sym_trace_moe_options_init(&o);
    o.n_tokens = 40;
    CHECK_OK(sym_trace_moe(p, &o, &t));
    if (!t) return;
    CHECK(t->n_expert == (uint32_t)p->n_expert && t->top_k == (uint32_t)p->n_expert_used &&
              t->n_expert == 8 && t->top_k == 2,
          "mixtral: %u experts, top %u", t->n_expert, t->top_k);
    uint64_t expert_total = 0, trace_total = 0;
    for (uint32_t i = 0; i < p->n_packs; i++)
        if (p->packs[i].type == SYM_PACK_EXPERT) expert_total += p->packs[i].buffer_bytes;
    bool same = true;
    for (uint32_t i = t->n_dense; i < t->n_packs; i++) {
        trace_total += t->packs[i].bytes;
        same &= t->packs[i].bytes == t->packs[t->n_dense].bytes;
    }
    CHECK(trace_total == expert_total && same && t->packs[t->n_dense].bytes > (64u << 20),
          "mixtral: expert bytes %llu in the trace, %llu in the plan",
          (unsigned long long)trace_total, (unsigned long long)expert_total);
    moe_stats s = check_moe(p, t, "mixtral plan");
    CHECK(s.reuse > 1.5 * 2.0 / 8, "mixtral: no temporal locality (%.3f)", s.reuse);
    sym_trace_destroy(t);
    sym_pack_plan_destroy(p);
}

static void test_append_rules(void) {
    sym_trace *t = NULL;
    CHECK_OK(sym_trace_create(2, 1, 2, 1, &t));
    if (!t) return;
    CHECK(t->n_packs == 4 && t->packs[2].layer == 0 && t->packs[3].expert == 1, "create: shape");
    CHECK_STATUS(sym_trace_set_pack(t, 0, 0, -1), SYM_ERR_ARG);
    CHECK_STATUS(sym_trace_set_pack(t, 0, SYM_TRACE_MAX_PACK_BYTES + 1, -1), SYM_ERR_ARG);
    CHECK_STATUS(sym_trace_set_pack(t, 0, 100, 1), SYM_ERR_ARG);
    CHECK_STATUS(sym_trace_set_pack(t, 4, 100, 0), SYM_ERR_ARG);
    CHECK_OK(sym_trace_set_pack(t, 0, 100, -1));
    CHECK_OK(sym_trace_set_pack(t, 1, 200, 0));
    CHECK_OK(sym_trace_set_pack(t, 2, 50, 0));
    char path[1200];
    snprintf(path, sizeof path, "%s/unset.symtrace", g_dir);
    CHECK_STATUS(sym_trace_write(t, path), SYM_ERR_ARG); /* pack 3 has no bytes */
    CHECK_OK(sym_trace_set_pack(t, 3, 50, 0));
    CHECK_OK(sym_trace_append(t, 0, 0, SYM_TRACE_GATHER, SYM_TRACE_PROB_UNKNOWN));
    CHECK_OK(sym_trace_append(t, 0, 1, SYM_TRACE_FULL, SYM_TRACE_PROB_UNKNOWN));
    CHECK_OK(sym_trace_append(t, 0, 3, SYM_TRACE_EXPERT, 0.75f));
    CHECK_STATUS(sym_trace_append(t, 0, 4, SYM_TRACE_FULL, -1), SYM_ERR_ARG);
    CHECK_STATUS(sym_trace_append(t, 0, 1, SYM_TRACE_EXPERT, -1), SYM_ERR_ARG);
    CHECK_STATUS(sym_trace_append(t, 0, 2, SYM_TRACE_FULL, -1), SYM_ERR_ARG);
    CHECK_STATUS(sym_trace_append(t, 0, 2, SYM_TRACE_EXPERT, 1.5f), SYM_ERR_ARG);
    CHECK_STATUS(sym_trace_append(t, 0, 1, SYM_TRACE_FULL, 0.5f), SYM_ERR_ARG);
    CHECK_STATUS(sym_trace_append(t, 0, 1, (sym_trace_kind)7, -1), SYM_ERR_ARG);
    CHECK_OK(sym_trace_append(t, 2, 1, SYM_TRACE_FULL, -1));
    CHECK_STATUS(sym_trace_append(t, 1, 1, SYM_TRACE_FULL, -1), SYM_ERR_ARG);
    CHECK(t->n_records == 4 && t->n_tokens == 3, "append: %llu records, %u tokens",
          (unsigned long long)t->n_records, t->n_tokens);
    CHECK(sym_trace_working_set(t) == 350, "working set %llu",
          (unsigned long long)sym_trace_working_set(t));
    sym_trace_destroy(t);
    t = NULL;
    CHECK_STATUS(sym_trace_create(0, 0, 0, 0, &t), SYM_ERR_ARG);
    CHECK_STATUS(sym_trace_create(1, 2, 4, 5, &t), SYM_ERR_ARG);
    CHECK_STATUS(sym_trace_create(1, 2, 4, 0, &t), SYM_ERR_ARG);
    CHECK_STATUS(sym_trace_create(1, 0, 0, 1, &t), SYM_ERR_ARG);
    CHECK(!t, "create: a bad shape gave a trace");
}

/* ---- the file -------------------------------------------------------------------------------- */

static void round_trip(const sym_trace *t, const char *name) {
    char path[1200];
    snprintf(path, sizeof path, "%s/%s.symtrace", g_dir, name);
    CHECK_OK(sym_trace_write(t, path));
    sym_trace *r = NULL;
    CHECK_OK(sym_trace_read(path, &r));
    CHECK(r && same_trace(t, r), "%s: the trace read back differs", name);
    size_t n = 0;
    uint8_t *b = slurp(path, &n);
    CHECK(b && n == 64 + 16 * ((size_t)t->n_packs + t->n_records), "%s: %zu bytes", name, n);
    sym_trace *m = NULL;
    if (b) CHECK_OK(sym_trace_read_memory(b, n, &m));
    CHECK(m && same_trace(t, m), "%s: read_memory differs", name);
    free(b);
    sym_trace_destroy(r);
    sym_trace_destroy(m);
}

static void test_round_trip(void) {
    sym_pack_plan *p = plan_of("tiny-qwen2", 8000); /* tied embeddings: EMBED used twice */
    sym_trace *t = NULL;
    CHECK_OK(sym_trace_dense(p, 4, &t));
    if (t) round_trip(t, "dense-qwen2");
    sym_trace_destroy(t);
    sym_pack_plan_destroy(p);
    p = plan_of("tinyllama-1.1b", 32u << 20);
    sym_trace_moe_options o;
    sym_trace_moe_options_init(&o);
    o.n_tokens = 20;
    o.n_expert = 8;
    o.top_k = 2;
    t = NULL;
    CHECK_OK(sym_trace_moe(p, &o, &t));
    if (t) round_trip(t, "moe");
    if (t) CHECK_STATUS(sym_trace_write(t, "/nonexistent-dir/x.symtrace"), SYM_ERR_IO);
    sym_trace_destroy(t);
    sym_pack_plan_destroy(p);
    /* nothing left under a temporary name */
    char cmd[1300];
    snprintf(cmd, sizeof cmd, "ls '%s' | grep -q '\\.tmp$'", g_dir);
    CHECK(system(cmd) != 0, "a temporary file was left in %s", g_dir);
    sym_trace *none = NULL;
    snprintf(cmd, sizeof cmd, "%s/missing.symtrace", g_dir);
    CHECK_STATUS(sym_trace_read(cmd, &none), SYM_ERR_IO);
}

static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }

static void test_corrupt(void) {
    /* a small MoE trace: 2 layers of 4 experts, top 2, 3 tokens */
    sym_pack_plan *p = plan_of("tiny", 64 << 10);
    sym_trace_moe_options o;
    sym_trace_moe_options_init(&o);
    o.n_tokens = 3;
    o.n_expert = 4;
    o.top_k = 2;
    sym_trace *t = NULL;
    CHECK_OK(sym_trace_moe(p, &o, &t));
    sym_pack_plan_destroy(p);
    if (!t) return;
    char path[1200];
    snprintf(path, sizeof path, "%s/small.symtrace", g_dir);
    CHECK_OK(sym_trace_write(t, path));
    size_t n = 0;
    uint8_t *orig = slurp(path, &n), *b = malloc(n + 16);
    if (!orig || !b) return;
    size_t recs = 64 + 16 * (size_t)t->n_packs;
    uint32_t first_expert_rec = 0, first_dense_rec = 0;
    while (t->records[first_expert_rec].kind != SYM_TRACE_EXPERT)
        first_expert_rec++;
    while (t->records[first_dense_rec].kind != SYM_TRACE_FULL)
        first_dense_rec++;
    fprintf(stderr, "corrupt: a %zu-byte trace of %u packs and %llu records\n", n, t->n_packs,
            (unsigned long long)t->n_records);

    for (size_t len = 0; len < n; len++) {
        char what[64];
        snprintf(what, sizeof what, "truncated to %zu", len);
        expect_format(orig, len, len < 64 ? "header" : "truncated", what);
    }
    memcpy(b, orig, n);
    b[n] = 0;
    expect_format(b, n + 1, "more than", "one byte extra");
    int flips_ok = 0;
    for (size_t i = 0; i < n; i++) {
        memcpy(b, orig, n);
        b[i] ^= 0x40;
        sym_trace *x = NULL;
        flips_ok += sym_trace_read_memory(b, n, &x) == SYM_ERR_FORMAT && !x;
        sym_trace_destroy(x);
    }
    CHECK(flips_ok == (int)n, "flipped bytes: %d of %zu refused", flips_ok, n);

    /* each field alone, checksums fixed up */
    typedef struct mut {
        size_t off;
        int width; /* bytes written: 1, 2 or 4 */
        uint32_t value;
        const char *want;
    } mut;
    size_t er = recs + 16 * first_expert_rec, dr = recs + 16 * first_dense_rec;
    int16_t er_layer;
    memcpy(&er_layer, orig + er + 8, 2);
    float nan = NAN, big = 1.5f;
    uint32_t nan_bits, big_bits;
    memcpy(&nan_bits, &nan, 4);
    memcpy(&big_bits, &big, 4);
    uint32_t dense_l0 = 0; /* a dense pack in the first expert record's layer */
    while (dense_l0 < t->n_dense && t->packs[dense_l0].layer != er_layer)
        dense_l0++;
    const mut muts[] = {
        {0, 4, 0x4d595358, "magic"},
        {8, 4, 2, "version 2"},
        {44, 4, 1, "reserved"},
        {12, 4, t->n_packs + 1, "n_packs"},
        {20, 4, 3, "n_packs"},
        {28, 4, 0, "bad shape"},
        {28, 4, 5, "bad shape"},
        {32, 4, (uint32_t)t->n_records + 1, "truncated"},
        {32, 4, (uint32_t)t->n_records - 1, "more than"},
        {40, 4, t->n_tokens - 1, "token index is not below"},
        {40, 4, t->n_tokens + 1, "n_tokens"},
        {64, 4, 0, "no bytes"},
        {68, 4, 0x40000000, "a pack may have"}, /* 2^62 bytes: sums over uses would wrap */
        {64 + 8, 4, 7, "layer"},
        {64 + 12, 4, 0, "expert index"},
        {64 + 16 * (size_t)t->n_dense + 12, 4, 3, "expert index"},
        {dr + 4, 4, t->n_packs, "pack id out of range"},
        {dr + 4, 4, t->n_dense, "kind EXPERT"},
        {er + 4, 4, dense_l0, "kind EXPERT"},
        {dr + 12, 4, big_bits, "probability"},
        {er + 12, 4, nan_bits, "probability"},
        {er + 12, 4, big_bits, "probability"},
        {er + 8, 2, (uint32_t)(uint16_t)(1 - er_layer), "layer is not"},
        {er + 10, 1, 7, "unknown kind"},
        {er + 11, 1, 1, "flags"},
        {recs + 16 * (t->n_records - 1), 4, 0, "goes back"},
    };
    CHECK(er_layer == 0, "the first expert record is in layer %d", er_layer);
    for (size_t m = 0; m < sizeof muts / sizeof muts[0]; m++) {
        memcpy(b, orig, n);
        if (muts[m].width == 4)
            put32(b + muts[m].off, muts[m].value);
        else if (muts[m].width == 2) {
            uint16_t v = (uint16_t)muts[m].value;
            memcpy(b + muts[m].off, &v, 2);
        } else
            b[muts[m].off] = (uint8_t)muts[m].value;
        rehash(b, n);
        char what[80];
        snprintf(what, sizeof what, "field at %zu = %u", muts[m].off, muts[m].value);
        expect_format(b, n, muts[m].want, what);
    }
    free(orig);
    free(b);
    sym_trace_destroy(t);
}

int main(void) {
    snprintf(g_dir, sizeof g_dir, "%s/tests/test_trace.tmp", SYM_BUILD_DIR);
    rm_rf(g_dir);
    mkdir(g_dir, 0755);
    test_dense();
    test_moe();
    test_moe_plan();
    test_append_rules();
    test_round_trip();
    test_corrupt();
    rm_rf(g_dir);
    return test_finish("test_trace");
}
