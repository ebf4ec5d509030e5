/* trace.c — pack-access traces: building, the .symtrace file (writer + strict reader), and the
 * dense and synthetic mixture-of-experts generators of trace.h. */
#include "tier/trace.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "base/alloc.h"
#include "model/writer.h"

#define HEADER_BYTES 64u
#define PACK_BYTES   16u
#define RECORD_BYTES 16u
#define VERSION      1u

static const char k_magic[8] = {'S', 'Y', 'M', 'T', 'R', 'A', 'C', 'E'};
static const char *const k_kind_names[SYM_TRACE_KIND_COUNT] = {"full", "gather", "expert"};

const char *sym_trace_kind_name(sym_trace_kind k) {
    return (unsigned)k < SYM_TRACE_KIND_COUNT ? k_kind_names[k] : "?";
}

/* ---- building -------------------------------------------------------------------------------- */

static sym_status check_shape(uint64_t n_dense, int64_t n_layer, uint64_t n_expert,
                              uint64_t top_k) {
    SYM_CHECK(n_layer >= 0 && n_layer <= SYM_TRACE_MAX_LAYERS, SYM_ERR_ARG,
              "n_layer %lld is outside 0..%d", (long long)n_layer, SYM_TRACE_MAX_LAYERS);
    SYM_CHECK(n_expert <= SYM_TRACE_MAX_PACKS, SYM_ERR_ARG, "n_expert %llu is too large",
              (unsigned long long)n_expert);
    uint64_t n_packs = n_dense + (uint64_t)n_layer * n_expert;
    SYM_CHECK(n_packs >= 1 && n_packs <= SYM_TRACE_MAX_PACKS, SYM_ERR_ARG,
              "%llu packs (1..%u allowed)", (unsigned long long)n_packs, SYM_TRACE_MAX_PACKS);
    SYM_CHECK(n_expert ? top_k >= 1 && top_k <= n_expert : top_k == 0, SYM_ERR_ARG,
              "top_k %llu with %llu experts per layer", (unsigned long long)top_k,
              (unsigned long long)n_expert);
    return SYM_OK;
}

sym_status sym_trace_create(uint32_t n_dense, int n_layer, uint32_t n_expert, uint32_t top_k,
                            sym_trace **out) {
    *out = NULL;
    sym_status st = check_shape(n_dense, n_layer, n_expert, top_k);
    if (st != SYM_OK) {
        sym_error_prefix("trace");
        return st;
    }
    sym_trace *t = sym_calloc(1, sizeof *t);
    if (!t) return SYM_FAIL(SYM_ERR_OOM, "trace: out of memory");
    t->n_dense = n_dense;
    t->n_layer = n_layer;
    t->n_expert = n_expert;
    t->top_k = top_k;
    t->n_packs = n_dense + (uint32_t)n_layer * n_expert;
    t->packs = sym_calloc(t->n_packs, sizeof *t->packs);
    if (!t->packs) {
        sym_free(t);
        return SYM_FAIL(SYM_ERR_OOM, "trace: out of memory for %u packs", t->n_packs);
    }
    for (uint32_t i = 0; i < t->n_packs; i++) {
        t->packs[i].layer = i < n_dense ? -1 : (int32_t)((i - n_dense) / n_expert);
        t->packs[i].expert = i < n_dense ? SYM_TRACE_NO_EXPERT : (i - n_dense) % n_expert;
    }
    *out = t;
    return SYM_OK;
}

void sym_trace_destroy(sym_trace *t) {
    if (!t) return;
    sym_free(t->packs);
    sym_free(t->records);
    sym_free(t);
}

sym_status sym_trace_set_pack(sym_trace *t, uint32_t pack_id, uint64_t bytes, int layer) {
    SYM_CHECK(pack_id < t->n_packs, SYM_ERR_ARG, "trace: pack %u of %u", pack_id, t->n_packs);
    SYM_CHECK(bytes > 0, SYM_ERR_ARG, "trace: pack %u has no bytes", pack_id);
    SYM_CHECK(bytes <= SYM_TRACE_MAX_PACK_BYTES, SYM_ERR_ARG,
              "trace: pack %u has %llu bytes, more than the %llu a pack may have", pack_id,
              (unsigned long long)bytes, (unsigned long long)SYM_TRACE_MAX_PACK_BYTES);
    if (pack_id < t->n_dense) {
        SYM_CHECK(layer >= -1 && layer < t->n_layer, SYM_ERR_ARG,
                  "trace: pack %u: layer %d is outside -1..%d", pack_id, layer, t->n_layer - 1);
        t->packs[pack_id].layer = layer;
    }
    t->packs[pack_id].bytes = bytes;
    return SYM_OK;
}

sym_status sym_trace_create_for_plan(const sym_pack_plan *plan, uint32_t *map, sym_trace **out) {
    *out = NULL;
    bool moe = plan->n_expert > 0;
    SYM_CHECK(!moe || (plan->n_expert_used >= 1 && plan->n_expert_used <= plan->n_expert),
              SYM_ERR_ARG, "trace: the plan routes to %d of %d experts", plan->n_expert_used,
              plan->n_expert);
    uint32_t n_dense = 0;
    for (uint32_t i = 0; i < plan->n_packs; i++)
        n_dense += plan->packs[i].type != SYM_PACK_EXPERT;
    sym_trace *t = NULL;
    SYM_TRY(sym_trace_create(n_dense, plan->n_layer, moe ? (uint32_t)plan->n_expert : 0,
                             moe ? (uint32_t)plan->n_expert_used : 0, &t));
    sym_status st = SYM_OK;
    uint32_t next = 0;
    for (uint32_t i = 0; i < plan->n_packs; i++) {
        const sym_pack *p = &plan->packs[i];
        uint32_t id;
        if (p->type != SYM_PACK_EXPERT) {
            id = next++;
            SYM_TRY_GOTO(sym_trace_set_pack(t, id, p->buffer_bytes, p->layer));
        } else {
            if (!moe || p->layer < 0 || p->layer >= plan->n_layer || p->expert < 0 ||
                p->expert >= plan->n_expert)
                SYM_FAIL_GOTO(SYM_ERR_ARG, "trace: plan pack %u is expert %d of layer %d", i,
                              p->expert, p->layer);
            id = n_dense + (uint32_t)p->layer * (uint32_t)plan->n_expert + (uint32_t)p->expert;
            t->packs[id].bytes += p->buffer_bytes; /* an expert is all its packs */
        }
        if (map) map[i] = id;
    }
    for (uint32_t i = n_dense; i < t->n_packs; i++)
        if (!t->packs[i].bytes || t->packs[i].bytes > SYM_TRACE_MAX_PACK_BYTES)
            SYM_FAIL_GOTO(SYM_ERR_ARG, "trace: the plan has %llu bytes of packs for expert %u of "
                          "layer %u", (unsigned long long)t->packs[i].bytes,
                          (i - n_dense) % t->n_expert, (i - n_dense) / t->n_expert);
    *out = t;
    return SYM_OK;
fail:
    sym_trace_destroy(t);
    return st;
}

/* The record rules shared by append and the reader; NULL if r is fine, else what is wrong. */
static const char *record_error(const sym_trace *t, uint32_t prev_token, uint32_t token,
                                uint32_t pack_id, int layer, unsigned kind, float prob) {
    if (token < prev_token) return "token index goes back";
    if (pack_id >= t->n_packs) return "pack id out of range";
    if (layer != t->packs[pack_id].layer) return "layer is not its pack's";
    if (kind >= SYM_TRACE_KIND_COUNT) return "unknown kind";
    bool expert = pack_id >= t->n_dense;
    if (expert != (kind == SYM_TRACE_EXPERT)) return "kind EXPERT is for expert packs only";
    if (prob != SYM_TRACE_PROB_UNKNOWN && (!expert || !(prob >= 0.0f && prob <= 1.0f)))
        return "probability is neither -1 nor, for an expert, in [0, 1]";
    return NULL;
}

sym_status sym_trace_append(sym_trace *t, uint32_t token, uint32_t pack_id, sym_trace_kind kind,
                            float prob) {
    uint32_t prev = t->n_records ? t->records[t->n_records - 1].token : 0;
    int layer = pack_id < t->n_packs ? t->packs[pack_id].layer : -1;
    const char *err = record_error(t, prev, token, pack_id, layer, (unsigned)kind, prob);
    SYM_CHECK(!err, SYM_ERR_ARG, "trace: record %llu (token %u, pack %u): %s",
              (unsigned long long)t->n_records, token, pack_id, err);
    SYM_CHECK(token < UINT32_MAX, SYM_ERR_ARG, "trace: token index %u is too large", token);
    if (t->n_records == t->cap_records) {
        uint64_t cap = t->cap_records ? t->cap_records * 2 : 1024;
        size_t bytes;
        SYM_CHECK(sym_mul_ok((size_t)cap, sizeof *t->records, &bytes), SYM_ERR_OOM,
                  "trace: too many records");
        sym_trace_record *r = sym_realloc(t->records, bytes);
        if (!r)
            return SYM_FAIL(SYM_ERR_OOM, "trace: out of memory for %llu records",
                            (unsigned long long)cap);
        t->records = r;
        t->cap_records = cap;
    }
    t->records[t->n_records++] = (sym_trace_record){.token = token,
                                                    .pack_id = pack_id,
                                                    .layer = (int16_t)layer,
                                                    .kind = (uint8_t)kind,
                                                    .prob = prob};
    t->n_tokens = token + 1;
    return SYM_OK;
}

uint64_t sym_trace_working_set(const sym_trace *t) {
    uint64_t total = 0;
    uint8_t *seen = sym_calloc(t->n_packs, 1);
    if (!seen) return 0;
    for (uint64_t i = 0; i < t->n_records; i++) {
        uint32_t p = t->records[i].pack_id;
        if (!seen[p]) total += t->packs[p].bytes;
        seen[p] = 1;
    }
    sym_free(seen);
    return total;
}

/* ---- the file -------------------------------------------------------------------------------- */

static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }
static uint32_t get32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}
static uint64_t get64(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

sym_status sym_trace_write(const sym_trace *t, const char *path) {
    for (uint32_t i = 0; i < t->n_packs; i++)
        SYM_CHECK(t->packs[i].bytes > 0, SYM_ERR_ARG, "trace: pack %u has no bytes", i);
    size_t body_bytes = (size_t)PACK_BYTES * t->n_packs;
    size_t rec_bytes;
    SYM_CHECK(sym_mul_ok((size_t)t->n_records, RECORD_BYTES, &rec_bytes) &&
                  sym_add_ok(body_bytes, rec_bytes, &body_bytes),
              SYM_ERR_ARG, "trace: too many records");
    uint8_t *buf = sym_malloc(HEADER_BYTES + body_bytes);
    if (!buf) return SYM_FAIL(SYM_ERR_OOM, "trace: out of memory writing %s", path);
    uint8_t *h = buf, *b = buf + HEADER_BYTES;
    memset(h, 0, HEADER_BYTES);
    for (uint32_t i = 0; i < t->n_packs; i++) {
        uint8_t *p = b + (size_t)i * PACK_BYTES;
        put64(p, t->packs[i].bytes);
        put32(p + 8, (uint32_t)t->packs[i].layer);
        put32(p + 12, t->packs[i].expert);
    }
    uint8_t *rb = b + (size_t)PACK_BYTES * t->n_packs;
    for (uint64_t i = 0; i < t->n_records; i++) {
        const sym_trace_record *r = &t->records[i];
        uint8_t *p = rb + (size_t)i * RECORD_BYTES;
        uint16_t layer = (uint16_t)r->layer;
        put32(p, r->token);
        put32(p + 4, r->pack_id);
        memcpy(p + 8, &layer, 2);
        p[10] = r->kind;
        p[11] = 0;
        memcpy(p + 12, &r->prob, 4);
    }
    memcpy(h, k_magic, 8);
    put32(h + 8, VERSION);
    put32(h + 12, t->n_packs);
    put32(h + 16, t->n_dense);
    put32(h + 20, (uint32_t)t->n_layer);
    put32(h + 24, t->n_expert);
    put32(h + 28, t->top_k);
    put64(h + 32, t->n_records);
    put32(h + 40, t->n_tokens);
    put64(h + 48, XXH3_64bits(b, body_bytes));
    put64(h + 56, XXH3_64bits(h, 56));

    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid());
    sym_status st = SYM_OK;
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        st = SYM_FAIL(SYM_ERR_IO, "trace: cannot create %s: %s", tmp, strerror(errno));
    } else {
        bool ok = fwrite(buf, 1, HEADER_BYTES + body_bytes, f) == HEADER_BYTES + body_bytes;
        int err = errno;
        if (fclose(f) != 0 && ok) {
            ok = false;
            err = errno;
        }
        if (!ok)
            st = SYM_FAIL(SYM_ERR_IO, "trace: cannot write %s: %s", tmp, strerror(err));
        else if (rename(tmp, path) != 0)
            st = SYM_FAIL(SYM_ERR_IO, "trace: cannot rename %s to %s: %s", tmp, path,
                          strerror(errno));
        if (st != SYM_OK) remove(tmp);
    }
    sym_free(buf);
    return st;
}

#define BAD(...) SYM_FAIL(SYM_ERR_FORMAT, "trace: " __VA_ARGS__)

static sym_status parse(const uint8_t *d, size_t size, sym_trace **out) {
    if (size < HEADER_BYTES)
        return BAD("%zu bytes, shorter than the %u-byte header (truncated)", size, HEADER_BYTES);
    if (memcmp(d, k_magic, 8) != 0) return BAD("not a trace file (bad magic)");
    if (get32(d + 8) != VERSION)
        return BAD("version %u; this build reads version %u", get32(d + 8), VERSION);
    if (XXH3_64bits(d, 56) != get64(d + 56)) return BAD("header checksum mismatch (corrupt)");
    uint32_t n_packs = get32(d + 12), n_dense = get32(d + 16), n_layer = get32(d + 20);
    uint32_t n_expert = get32(d + 24), top_k = get32(d + 28), n_tokens = get32(d + 40);
    uint64_t n_records = get64(d + 32);
    if (get32(d + 44) != 0) return BAD("reserved header field is not 0");
    if (n_layer > SYM_TRACE_MAX_LAYERS) return BAD("n_layer %u is too large", n_layer);
    if (check_shape(n_dense, n_layer, n_expert, top_k) != SYM_OK)
        return BAD("bad shape: %u dense packs, %u layers, %u experts, top-%u", n_dense, n_layer,
                   n_expert, top_k);
    if ((uint64_t)n_dense + (uint64_t)n_layer * n_expert != n_packs)
        return BAD("n_packs %u is not n_dense %u + n_layer %u x n_expert %u", n_packs, n_dense,
                   n_layer, n_expert);
    uint64_t body = size - HEADER_BYTES, want_packs = (uint64_t)n_packs * PACK_BYTES;
    if (body < want_packs || (body - want_packs) / RECORD_BYTES < n_records)
        return BAD("%zu bytes, too short for %u packs and %llu records (truncated)", size, n_packs,
                   (unsigned long long)n_records);
    if (body != want_packs + n_records * RECORD_BYTES)
        return BAD("%zu bytes, more than %u packs and %llu records take", size, n_packs,
                   (unsigned long long)n_records);
    if (XXH3_64bits(d + HEADER_BYTES, (size_t)body) != get64(d + 48))
        return BAD("body checksum mismatch (corrupt)");

    sym_trace *t = NULL;
    SYM_TRY(sym_trace_create(n_dense, (int)n_layer, n_expert, top_k, &t));
    sym_status st = SYM_OK;
    const uint8_t *pt = d + HEADER_BYTES, *rt = pt + want_packs;
    for (uint32_t i = 0; i < n_packs; i++) {
        const uint8_t *p = pt + (size_t)i * PACK_BYTES;
        uint64_t bytes = get64(p);
        int32_t layer = (int32_t)get32(p + 8);
        uint32_t expert = get32(p + 12);
        if (bytes == 0) SYM_FAIL_GOTO(SYM_ERR_FORMAT, "trace: pack %u has no bytes", i);
        if (bytes > SYM_TRACE_MAX_PACK_BYTES) /* the replays' byte sums must not wrap */
            SYM_FAIL_GOTO(SYM_ERR_FORMAT, "trace: pack %u has %llu bytes, more than the %llu a pack "
                          "may have", i, (unsigned long long)bytes,
                          (unsigned long long)SYM_TRACE_MAX_PACK_BYTES);
        if (i < n_dense ? layer < -1 || layer >= (int32_t)n_layer : layer != t->packs[i].layer)
            SYM_FAIL_GOTO(SYM_ERR_FORMAT, "trace: pack %u: layer %d is wrong", i, (int)layer);
        if (expert != t->packs[i].expert)
            SYM_FAIL_GOTO(SYM_ERR_FORMAT, "trace: pack %u: expert index %u, expected %u", i, expert,
                          t->packs[i].expert);
        t->packs[i].bytes = bytes;
        t->packs[i].layer = layer;
    }
    t->records = sym_malloc((size_t)(n_records ? n_records : 1) * sizeof *t->records);
    if (!t->records)
        SYM_FAIL_GOTO(SYM_ERR_OOM, "trace: out of memory for %llu records",
                      (unsigned long long)n_records);
    t->cap_records = n_records;
    uint32_t prev = 0;
    for (uint64_t i = 0; i < n_records; i++) {
        const uint8_t *p = rt + (size_t)i * RECORD_BYTES;
        int16_t layer;
        float prob;
        memcpy(&layer, p + 8, 2);
        memcpy(&prob, p + 12, 4);
        uint32_t token = get32(p), pack = get32(p + 4);
        const char *err = p[11] ? "flags are not 0"
                          : token >= n_tokens
                              ? "token index is not below n_tokens"
                              : record_error(t, prev, token, pack, layer, p[10], prob);
        if (err)
            SYM_FAIL_GOTO(SYM_ERR_FORMAT, "trace: record %llu (token %u, pack %u): %s",
                          (unsigned long long)i, token, pack, err);
        t->records[i] = (sym_trace_record){
            .token = token, .pack_id = pack, .layer = layer, .kind = p[10], .prob = prob};
        prev = token;
    }
    t->n_records = n_records;
    if (n_records && prev + 1 != n_tokens)
        SYM_FAIL_GOTO(SYM_ERR_FORMAT, "trace: n_tokens is %u but the last record is token %u",
                      n_tokens, prev);
    t->n_tokens = n_tokens;
    *out = t;
    return SYM_OK;
fail:
    sym_trace_destroy(t);
    return st;
}

sym_status sym_trace_read_memory(const void *data, size_t size, sym_trace **out) {
    *out = NULL;
    return parse(data, size, out);
}

sym_status sym_trace_read(const char *path, sym_trace **out) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return SYM_FAIL(SYM_ERR_IO, "trace: cannot open %s: %s", path, strerror(errno));
    sym_status st = SYM_OK;
    uint8_t *buf = NULL;
    long n = -1;
    if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0)
        SYM_FAIL_GOTO(SYM_ERR_IO, "trace: cannot read %s: %s", path, strerror(errno));
    buf = sym_malloc(n ? (size_t)n : 1);
    if (!buf) SYM_FAIL_GOTO(SYM_ERR_OOM, "trace: out of memory reading %s", path);
    if (fread(buf, 1, (size_t)n, f) != (size_t)n)
        SYM_FAIL_GOTO(SYM_ERR_IO, "trace: cannot read %s: %s", path,
                      ferror(f) ? strerror(errno) : "short read");
    st = parse(buf, (size_t)n, out);
    if (st != SYM_OK) sym_error_prefix("%s", path);
fail:
    sym_free(buf);
    fclose(f);
    return st;
}

/* ---- generators ------------------------------------------------------------------------------ */

sym_status sym_trace_plan_preset(const char *preset, sym_dtype dt, uint64_t max_pack_bytes,
                                 sym_pack_plan **out) {
    *out = NULL;
    sym_make_model_options mo;
    sym_make_model_options_init(&mo);
    SYM_TRY(sym_make_model_preset(&mo, preset));
    mo.dtype = dt;
    sym_hparams hp;
    SYM_TRY(sym_make_model_hparams(&mo, &hp));
    sym_pack_table tab;
    SYM_TRY(sym_pack_table_from_hparams(&hp, dt, 32, &tab));
    sym_pack_options po;
    sym_pack_options_init(&po);
    po.max_pack_bytes = max_pack_bytes;
    sym_status st = sym_pack_plan_from_table(&hp, tab.weights, tab.n_weights, &po, out);
    sym_pack_table_free(&tab);
    return st;
}

sym_status sym_trace_dense(const sym_pack_plan *plan, uint32_t n_tokens, sym_trace **out) {
    *out = NULL;
    SYM_CHECK(plan->n_expert == 0, SYM_ERR_ARG,
              "trace: the plan has %d experts per layer, of which a token uses %d: its schedule "
              "lists them all; make a mixture-of-experts trace (sym_trace_moe)",
              plan->n_expert, plan->n_expert_used);
    sym_trace *t = NULL;
    SYM_TRY(sym_trace_create_for_plan(plan, NULL, &t)); /* dense: the plan's ids */
    sym_status st = SYM_OK;
    for (uint32_t tok = 0; tok < n_tokens; tok++)
        for (uint32_t u = 0; u < plan->n_uses; u++) {
            const sym_pack_use *use = &plan->schedule[u];
            sym_trace_kind k = use->kind == SYM_PACK_USE_GATHER ? SYM_TRACE_GATHER : SYM_TRACE_FULL;
            SYM_TRY_GOTO(sym_trace_append(t, tok, use->pack_id, k, SYM_TRACE_PROB_UNKNOWN));
        }
    *out = t;
    return SYM_OK;
fail:
    sym_trace_destroy(t);
    return st;
}

void sym_trace_moe_options_init(sym_trace_moe_options *o) {
    *o = (sym_trace_moe_options){.n_tokens = 512,
                                 .n_expert = 32,
                                 .top_k = 4,
                                 .n_topics = 8,
                                 .topic_stay = 0.9,
                                 .zipf_s = 1.2,
                                 .global_zipf = 0.6,
                                 .layer_drift = 0.2,
                                 .noise = 1.0,
                                 .layer_corr = 0.5,
                                 .seed = 1};
}

/* splitmix64 and a Box-Muller normal: the generator must not depend on the C library's rand */
typedef struct rng {
    uint64_t s;
} rng;
static uint64_t rng_u64(rng *r) {
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static double rng_unit(rng *r) { return (double)(rng_u64(r) >> 11) * (1.0 / 9007199254740992.0); }
static uint32_t rng_below(rng *r, uint32_t n) { return (uint32_t)(rng_unit(r) * n); }
static double rng_normal(rng *r) {
    double u = rng_unit(r), v = rng_unit(r);
    return sqrt(-2.0 * log(u > 0 ? u : 1e-300)) * cos(6.283185307179586 * v);
}

static sym_status check_moe(const sym_pack_plan *plan, const sym_trace_moe_options *o,
                            uint32_t n_exp, uint32_t k) {
    SYM_CHECK(plan->n_layer >= 1, SYM_ERR_ARG, "moe trace: the plan has no layers");
    SYM_CHECK(o->n_tokens >= 1 && o->n_tokens <= (1u << 24), SYM_ERR_ARG,
              "moe trace: n_tokens %u is outside 1..%u", o->n_tokens, 1u << 24);
    SYM_CHECK(n_exp >= 1 && n_exp <= 4096, SYM_ERR_ARG, "moe trace: n_expert %u is outside 1..4096",
              n_exp);
    SYM_CHECK(k >= 1 && k <= n_exp, SYM_ERR_ARG, "moe trace: top_k %u is outside 1..n_expert (%u)",
              k, n_exp);
    SYM_CHECK(o->n_topics >= 1 && o->n_topics <= 4096, SYM_ERR_ARG,
              "moe trace: n_topics %u is outside 1..4096", o->n_topics);
    SYM_CHECK(o->topic_stay >= 0 && o->topic_stay <= 1, SYM_ERR_ARG,
              "moe trace: topic_stay %g is outside 0..1", o->topic_stay);
    SYM_CHECK(o->zipf_s >= 0 && o->zipf_s <= 10, SYM_ERR_ARG,
              "moe trace: zipf_s %g is outside 0..10", o->zipf_s);
    SYM_CHECK(o->global_zipf >= 0 && o->global_zipf <= 10, SYM_ERR_ARG,
              "moe trace: global_zipf %g is outside 0..10", o->global_zipf);
    SYM_CHECK(o->layer_drift >= 0 && o->layer_drift <= 1, SYM_ERR_ARG,
              "moe trace: layer_drift %g is outside 0..1", o->layer_drift);
    SYM_CHECK(o->noise >= 0 && o->noise <= 100, SYM_ERR_ARG,
              "moe trace: noise %g is outside 0..100", o->noise);
    SYM_CHECK(o->layer_corr >= 0 && o->layer_corr <= 1, SYM_ERR_ARG,
              "moe trace: layer_corr %g is outside 0..1", o->layer_corr);
    return SYM_OK;
}

/* One layer's routing for one token: logits from the topic's ranking plus the token's noise,
 * the top_k of them into chosen[] (descending), their softmax probabilities into prob[]. */
static void route(const sym_trace_moe_options *o, uint32_t n, uint32_t k, const uint32_t *rank,
                  const uint32_t *grank, const double *noise, double *logit, uint32_t *chosen,
                  float *prob) {
    double mx = -INFINITY, sum = 0;
    for (uint32_t e = 0; e < n; e++) {
        logit[e] = -o->zipf_s * log((double)rank[e] + 1.0) -
                   o->global_zipf * log((double)grank[e] + 1.0) + o->noise * noise[e];
        if (logit[e] > mx) mx = logit[e];
    }
    for (uint32_t e = 0; e < n; e++)
        sum += exp(logit[e] - mx);
    for (uint32_t j = 0; j < k; j++) {
        uint32_t best = UINT32_MAX;
        for (uint32_t e = 0; e < n; e++) {
            bool taken = false;
            for (uint32_t i = 0; i < j; i++)
                taken |= chosen[i] == e;
            if (!taken && (best == UINT32_MAX || logit[e] > logit[best])) best = e;
        }
        chosen[j] = best;
        prob[j] = (float)(exp(logit[best] - mx) / sum);
    }
}

sym_status sym_trace_moe(const sym_pack_plan *plan, const sym_trace_moe_options *o,
                         sym_trace **out) {
    *out = NULL;
    /* a plan with EXPERT packs keeps its experts; a dense one has its MLP packs replaced */
    bool planned = plan->n_expert > 0;
    sym_pack_type slot_type = planned ? SYM_PACK_EXPERT : SYM_PACK_MLP;
    uint32_t n_exp = planned ? (uint32_t)plan->n_expert : o->n_expert;
    uint32_t k = planned ? (uint32_t)plan->n_expert_used : o->top_k;
    SYM_TRY(check_moe(plan, o, n_exp, k));
    uint32_t n_layer = (uint32_t)plan->n_layer;
    sym_status st = SYM_OK;
    sym_trace *t = NULL;
    uint32_t *new_id = sym_malloc((size_t)plan->n_packs * sizeof *new_id);
    uint32_t *rank = sym_malloc(((size_t)o->n_topics + 1) * n_layer * n_exp * sizeof *rank);
    double *noise = sym_malloc((size_t)n_exp * 2 * sizeof *noise);
    uint32_t *who = sym_malloc((size_t)n_exp * sizeof *who);
    uint32_t *chosen = sym_malloc((size_t)k * sizeof *chosen);
    float *prob = sym_malloc((size_t)k * sizeof *prob);
    if (!new_id || !rank || !noise || !who || !chosen || !prob)
        SYM_FAIL_GOTO(SYM_ERR_OOM, "moe trace: out of memory");
    uint32_t n_dense = 0;
    uint64_t expert_bytes = o->expert_bytes;
    if (planned) { /* the plan's numbering: an expert is all its packs (they move together) */
        SYM_TRY_GOTO(sym_trace_create_for_plan(plan, new_id, &t));
        n_dense = t->n_dense;
    } else { /* the dense packs in order of first use, renumbered, the MLP packs left out */
        uint64_t mlp0 = 0;
        for (uint32_t i = 0; i < plan->n_packs; i++)
            new_id[i] = UINT32_MAX;
        for (uint32_t u = 0; u < plan->n_uses; u++) {
            const sym_pack *p = &plan->packs[plan->schedule[u].pack_id];
            if (p->type != slot_type && new_id[p->id] == UINT32_MAX) new_id[p->id] = n_dense++;
        }
        for (uint32_t i = 0; i < plan->n_packs; i++)
            if (plan->packs[i].type == SYM_PACK_MLP && plan->packs[i].layer == 0)
                mlp0 += plan->packs[i].n_bytes;
        if (!expert_bytes)
            expert_bytes =
                (mlp0 / k + SYM_PACK_RANGE_ALIGN - 1) / SYM_PACK_RANGE_ALIGN * SYM_PACK_RANGE_ALIGN;
        if (!expert_bytes)
            SYM_FAIL_GOTO(SYM_ERR_ARG, "moe trace: the plan has no MLP packs in layer 0");
        SYM_TRY_GOTO(sym_trace_create(n_dense, plan->n_layer, n_exp, k, &t));
        for (uint32_t i = 0; i < plan->n_packs; i++)
            if (new_id[i] != UINT32_MAX)
                SYM_TRY_GOTO(sym_trace_set_pack(t, new_id[i], plan->packs[i].buffer_bytes,
                                                plan->packs[i].layer));
    }
    if (expert_bytes)
        for (uint32_t i = n_dense; i < t->n_packs; i++)
            SYM_TRY_GOTO(sym_trace_set_pack(t, i, expert_bytes, 0));

    /* rank[(z * n_layer + l) * n_exp + e]: expert e's rank under topic z in layer l; the
     * topic-independent ranks after them (z = n_topics) */
    rng r = {o->seed};
    for (uint32_t z = 0; z < o->n_topics; z++) {
        uint32_t *r0 = rank + (size_t)z * n_layer * n_exp;
        for (uint32_t e = 0; e < n_exp; e++)
            r0[e] = e;
        for (uint32_t e = n_exp; e > 1; e--) { /* Fisher-Yates: a uniform ranking */
            uint32_t j = rng_below(&r, e), tmp = r0[e - 1];
            r0[e - 1] = r0[j];
            r0[j] = tmp;
        }
        for (uint32_t l = 1; l < n_layer; l++) {
            uint32_t *rl = r0 + (size_t)l * n_exp;
            memcpy(rl, rl - n_exp, n_exp * sizeof *rl);
            /* rl[e] is e's rank, who[r] the expert at rank r; swapping two rank positions
             * swaps the experts holding them */
            for (uint32_t e = 0; e < n_exp; e++)
                who[rl[e]] = e;
            for (uint32_t pos = 0; pos < n_exp; pos++) {
                if (rng_unit(&r) >= o->layer_drift) continue;
                uint32_t other = rng_below(&r, n_exp), a = who[pos], b = who[other];
                rl[a] = other;
                rl[b] = pos;
                who[pos] = b;
                who[other] = a;
            }
        }
    }

    uint32_t *grank = rank + (size_t)o->n_topics * n_layer * n_exp;
    for (uint32_t l = 0; l < n_layer; l++) {
        uint32_t *g = grank + (size_t)l * n_exp;
        for (uint32_t e = 0; e < n_exp; e++)
            g[e] = e;
        for (uint32_t e = n_exp; e > 1; e--) {
            uint32_t j = rng_below(&r, e), tmp = g[e - 1];
            g[e - 1] = g[j];
            g[j] = tmp;
        }
    }
    double *logit = noise + n_exp;
    double keep = sqrt(1.0 - o->layer_corr * o->layer_corr);
    uint32_t topic = rng_below(&r, o->n_topics);
    for (uint32_t tok = 0; tok < o->n_tokens; tok++) {
        if (tok > 0 && rng_unit(&r) >= o->topic_stay) topic = rng_below(&r, o->n_topics);
        int32_t slot_layer = -1; /* the layer whose packs were last replaced by a slot */
        for (uint32_t u = 0; u < plan->n_uses; u++) {
            const sym_pack_use *use = &plan->schedule[u];
            const sym_pack *p = &plan->packs[use->pack_id];
            if (p->type != slot_type) {
                sym_trace_kind kind =
                    use->kind == SYM_PACK_USE_GATHER ? SYM_TRACE_GATHER : SYM_TRACE_FULL;
                SYM_TRY_GOTO(sym_trace_append(t, tok, new_id[p->id], kind, SYM_TRACE_PROB_UNKNOWN));
                continue;
            }
            if (p->layer == slot_layer) continue;
            uint32_t l = (uint32_t)(slot_layer = p->layer);
            for (uint32_t e = 0; e < n_exp; e++)
                noise[e] =
                    l == 0 ? rng_normal(&r) : o->layer_corr * noise[e] + keep * rng_normal(&r);
            route(o, n_exp, k, rank + ((size_t)topic * n_layer + l) * n_exp,
                  grank + (size_t)l * n_exp, noise, logit, chosen, prob);
            for (uint32_t j = 0; j < k; j++)
                SYM_TRY_GOTO(sym_trace_append(t, tok, n_dense + l * n_exp + chosen[j],
                                              SYM_TRACE_EXPERT, prob[j]));
        }
    }
    *out = t;
    t = NULL;
fail:
    sym_trace_destroy(t);
    sym_free(new_id);
    sym_free(rank);
    sym_free(noise);
    sym_free(who);
    sym_free(chosen);
    sym_free(prob);
    return st;
}
