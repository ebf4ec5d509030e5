/* Streaming from a .sympack: the engine reads each pack's stored bytes from the store (O_DIRECT
 * where the filesystem allows), checks and decompresses them on the I/O threads into the RAM
 * tier, under budgets too small for the model (the disk tier feeds every token).
 * - aidreams260K.gguf (f32, real trained weights) packed with none, zstd, blosc and zfp, and
 *   synthetic f16 / bf16 models packed with bytesplit (and zstd, none): greedy ids and logits
 *   equal to the resident GGUF run, bit for bit where the pack cut is the same as the GGUF's
 *   streamed run (and against the resident run within test_stream's tolerance); packs 64 KiB and
 *   1 MiB; the RAM tier's high-water mark under its budget; the model not decompressed at open;
 *   the statistics (stored bytes read, raw bytes decompressed, time);
 * - the engine's plan is the store's (auto pack size), and a max_pack_mb that differs is
 *   SYM_ERR_CONFIG; --no-compression ([memory] enable_compression = false) refuses a compressed
 *   store and streams a raw one;
 * - a pack damaged after open (a flipped byte, a truncated file) fails the call that meets it
 *   with SYM_ERR_CHECKSUM / SYM_ERR_IO naming the pack, the engine closes cleanly, and a damaged
 *   pack holding a norm fails the open naming it.
 * Usage: test_stream_store [cpu|vulkan]   (default cpu; vulkan: lavapipe in CI, the device tier's
 * high-water mark under --vram-gb too) */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "infer/engine.h"
#include "model/writer.h"
#include "pack/store.h"
#include "store_util.h"
#include "test_util.h"
#ifdef SYM_HAVE_VULKAN
#include "vk/buffer.h"
#endif

#define N_PROMPT 9
#define N_GEN    6
#define N_CTX    64
#define KIB      1024u
#define MIB      (1024u * 1024u)

static const char *g_backend = "cpu";
static bool g_vk;
static char g_dir[1024];

typedef struct run_out {
    int32_t ids[N_GEN];
    float *logits; /* (N_GEN + 1) x n_vocab */
    int n_vocab;
    sym_metrics m;      /* the whole run */
    sym_metrics decode; /* the decoded tokens only */
    sym_tier_stats ram; /* the pack manager's RAM tier after the run */
    sym_tier_stats dev; /* ... and its DEVICE tier (Vulkan) */
    uint64_t model_rss; /* resident set growth over the open */
    uint32_t n_packs;   /* of the plan the engine streamed with (0: resident) */
} run_out;

static uint64_t rss_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long long sz = 0, res = 0;
    int ok = f && fscanf(f, "%llu %llu", &sz, &res) == 2;
    if (f) fclose(f);
    return ok ? (uint64_t)res * (uint64_t)sysconf(_SC_PAGESIZE) : 0;
}

typedef struct open_opts {
    double vram_gb, ram_gb;
    int max_pack_mb;
    bool no_compression;
    bool stream;       /* even when the model fits (the budgets still hold) */
    uint64_t ram_tier; /* at most this RAM tier (0: what the budget leaves) */
} open_opts;

static sym_status open_engine(const char *model, const open_opts *oo, sym_engine **e) {
    sym_engine_params p;
    sym_engine_params_init(&p);
    snprintf(p.cfg.model_path, sizeof p.cfg.model_path, "%s", model);
    p.backend = g_backend;
    p.n_ctx = N_CTX;
    p.fp32 = true;
    p.cfg.max_pack_mb = oo->max_pack_mb;
    p.cfg.vram_budget_gb = oo->vram_gb;
    p.cfg.ram_budget_gb = oo->ram_gb;
    p.cfg.n_threads = 2;
    p.cfg.enable_compression = !oo->no_compression;
    p.force_stream = oo->stream;
    p.ram_tier_cap = oo->ram_tier;
    return sym_engine_open_params(&p, e);
}

static int argmax(const float *x, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return b;
}

/* A prompt, then N_GEN greedy tokens one at a time; every step's logits kept. */
static sym_status generate(sym_engine *e, run_out *r) {
    int n_vocab = sym_n_vocab(e);
    r->n_vocab = n_vocab;
    int32_t prompt[N_PROMPT];
    for (int i = 0; i < N_PROMPT; i++)
        prompt[i] = (int32_t)((i * 37 + 5) % n_vocab);
    r->logits = calloc((size_t)(N_GEN + 1) * (size_t)n_vocab, sizeof(float));
    sym_metrics_reset(e);
    sym_status st = sym_forward(e, prompt, N_PROMPT, r->logits);
    sym_metrics before;
    sym_metrics_get(e, &before);
    for (int t = 0; t < N_GEN && st == SYM_OK; t++) {
        r->ids[t] = argmax(r->logits + (size_t)t * (size_t)n_vocab, n_vocab);
        st = sym_forward(e, &r->ids[t], 1, r->logits + (size_t)(t + 1) * (size_t)n_vocab);
    }
    sym_metrics_get(e, &r->m);
    r->decode = r->m;
    r->decode.bytes_read_disk -= before.bytes_read_disk;
    r->decode.bytes_decompressed -= before.bytes_decompressed;
    sym_engine_tier_stats(e, SYM_TIER_RAM, &r->ram);
    sym_engine_tier_stats(e, SYM_TIER_DEVICE, &r->dev);
    const sym_pack_plan *plan = sym_engine_pack_plan(e);
    r->n_packs = plan ? plan->n_packs : 0;
    return st;
}

static sym_status run(const char *model, const open_opts *oo, run_out *r) {
    memset(r, 0, sizeof *r);
    sym_engine *e = NULL;
    uint64_t rss0 = rss_bytes();
    SYM_TRY(open_engine(model, oo, &e));
    uint64_t rss1 = rss_bytes(); /* it may shrink (an allocator giving memory back) */
    r->model_rss = rss1 > rss0 ? rss1 - rss0 : 0;

    sym_status st = generate(e, r);
    sym_engine_close(e);
    return st;
}

/* Same greedy ids; logits identical (tol 0) or within tol. */
static void compare(const run_out *a, const run_out *b, double tol, const char *what) {
    if (!a->logits || !b->logits) return;
    for (int t = 0; t < N_GEN; t++)
        CHECK(a->ids[t] == b->ids[t], "%s: greedy id %d: %d vs %d", what, t, a->ids[t], b->ids[t]);
    size_t n = (size_t)(N_GEN + 1) * (size_t)a->n_vocab;
    if (tol == 0) {
        CHECK(!memcmp(a->logits, b->logits, n * sizeof(float)), "%s: logits differ (max %.3g)",
              what, test_max_rel_diff(a->logits, b->logits, n));
    } else {
        double d = test_max_rel_diff(a->logits, b->logits, n);
        CHECK(d <= tol, "%s: logits differ by %.3g > %g", what, d, tol);
    }
}

static sym_status pack_model(const char *src, const char *out, sym_codec_id id, uint64_t limit,
                             double *ratio) {
    sym_model *m = NULL;
    SYM_TRY(sym_model_open(src, &m));
    sym_store_write_options o = test_store_opts(id, limit);
    sym_store_write_stats s;
    sym_status st = sym_store_write(m, out, &o, &s);
    sym_model_close(m);
    if (st == SYM_OK && ratio) *ratio = (double)s.raw_bytes / (double)s.stored_bytes;
    return st;
}

/* The resident set grows while an engine opens by an amount that varies (by a few hundred kB;
 * under AddressSanitizer, whose allocator keeps freed memory in quarantine, or ThreadSanitizer, by
 * megabytes). */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define RSS_SLACK (24u << 20)
#define RSS_NOISE (22u << 20) /* beyond what the open itself should add */
#else
#define RSS_SLACK (2u << 20)
#define RSS_NOISE 0u
#endif

/* Budgets that hold the KV cache and activations but only a few packs, so the disk tier feeds
 * every token: RAM = what the process holds now + the engine's 8 MiB margin + `tier` bytes +
 * RSS_SLACK, and the RAM tier capped at `tier` (so that it does not depend on the growth); on
 * Vulkan also a tiny VRAM budget. Streamed even when the model would fit the RAM budget (these
 * models are smaller than the engine's margin). */
static open_opts stream_budget_vk(uint64_t tier, double vram_gb) {
    open_opts o = {0};
    o.ram_gb = (double)(rss_bytes() + (8u << 20) + tier + RSS_SLACK) / 1e9;
    o.ram_tier = tier;
    o.stream = true;
    if (g_vk) o.vram_gb = vram_gb;
    return o;
}

/* The VRAM budget of the aidreams260K runs: the KV cache, activations and kernel scratch (about
 * 1.1 MB on lavapipe) and a device tier of about half a megabyte, less than the model. */
#define AID_VRAM_GB 0.0016

static open_opts stream_budget(uint64_t tier) { return stream_budget_vk(tier, AID_VRAM_GB); }

/* One model: its resident GGUF run, then each codec's store streamed under the budgets. */
typedef struct model_case {
    const char *name;
    const char *gguf;
    uint64_t limit; /* pack limit of the stores */
    uint64_t tier;  /* RAM budget beyond the process (stream_budget) */
    double vram_gb; /* Vulkan */
    const sym_codec_id *codecs;
    int n_codecs;
    double tol; /* streamed vs resident (0: bit for bit) */
} model_case;

static void test_model_case(const model_case *mc) {
    fprintf(stderr, "== %s (%s, packs of %llu KiB)\n", mc->name, g_backend,
            (unsigned long long)(mc->limit / KIB));
    open_opts resident = {0};
    run_out r;
    CHECK_OK(run(mc->gguf, &resident, &r));
    CHECK(r.n_packs == 0, "%s: the resident run streamed", mc->name);
    /* the GGUF streamed with the same cut as the stores (1 MiB packs): the stores must give the
     * very same numbers. Its RAM budget is roomier: streamed from a GGUF, the forward pass reads
     * the vectors from the file mapping, whose pages (with the kernel's fault-around) count in
     * the resident set measured at open */
    run_out g = {0};
    bool same_cut = mc->limit == MIB;
    if (same_cut) {
        open_opts go = stream_budget_vk(mc->tier + 4 * MIB, mc->vram_gb);
        go.max_pack_mb = 1;
        CHECK_OK(run(mc->gguf, &go, &g));
        CHECK(g.n_packs > 0, "%s: the GGUF run did not stream", mc->name);
    }
    for (int i = 0; i < mc->n_codecs; i++) {
        sym_codec_id id = mc->codecs[i];
        char path[1200], what[160];
        snprintf(path, sizeof path, "%s/%s-%s.sympack", g_dir, mc->name, sym_codec_id_name(id));
        snprintf(what, sizeof what, "%s/%s/%s", mc->name, sym_codec_id_name(id), g_backend);
        double ratio = 0;
        CHECK_OK(pack_model(mc->gguf, path, id, mc->limit, &ratio));
        sym_store *s = NULL;
        CHECK_OK(sym_store_open(path, &s));
        if (!s) continue;
        uint64_t raw = sym_store_raw_bytes(s);
        uint32_t n_packs = sym_store_plan(s)->n_packs, n_comp = sym_store_n_compressed(s);
#ifdef SYM_HAVE_VULKAN
        if (g_vk) sym_vk_buffer_device_peak_reset();
#endif
        open_opts so = stream_budget_vk(mc->tier, mc->vram_gb);
        run_out t;
        sym_status st = run(path, &so, &t);
        CHECK_OK(st);
        if (st == SYM_OK) {
            fprintf(stderr,
                    "%s: ratio %.3f, %u packs (%u compressed); decode: %llu bytes read, %llu "
                    "decompressed; RAM tier %llu of %llu bytes at most, VRAM tier %llu; open grew "
                    "the RSS by %llu bytes of %llu weight bytes\n",
                    what, ratio, n_packs, n_comp, (unsigned long long)t.decode.bytes_read_disk,
                    (unsigned long long)t.decode.bytes_decompressed,
                    (unsigned long long)t.ram.high_water_bytes,
                    (unsigned long long)t.ram.budget_bytes,
                    (unsigned long long)t.dev.capacity_bytes, (unsigned long long)t.model_rss,
                    (unsigned long long)raw);
            CHECK(t.n_packs == n_packs, "%s: the engine streamed %u packs, the store has %u", what,
                  t.n_packs, n_packs);
            /* the disk tier fed the decoded tokens: the RAM tier cannot hold every pack's block
             * at once */
            uint64_t pow2 = sym_store_plan(s)->pow2_bytes;
            CHECK(t.ram.capacity_bytes < pow2 && t.decode.bytes_read_disk > 0,
                  "%s: did not stream from disk while decoding (RAM tier %llu bytes for blocks "
                  "of %llu, %llu bytes read)",
                  what, (unsigned long long)t.ram.capacity_bytes, (unsigned long long)pow2,
                  (unsigned long long)t.decode.bytes_read_disk);
            CHECK(t.ram.high_water_bytes <= t.ram.budget_bytes && t.ram.budget_bytes > 0,
                  "%s: RAM tier high water %llu > budget %llu", what,
                  (unsigned long long)t.ram.high_water_bytes,
                  (unsigned long long)t.ram.budget_bytes);
            /* not decompressed at open: the open grew the process by the RAM tier (committed
             * at create) and the vectors, not by the weights */
            CHECK(t.model_rss < t.ram.capacity_bytes + raw + RSS_NOISE,
                  "%s: the open grew the process by %llu bytes (RAM tier %llu, weights %llu)", what,
                  (unsigned long long)t.model_rss, (unsigned long long)t.ram.capacity_bytes,
                  (unsigned long long)raw);
#ifdef SYM_HAVE_VULKAN
            if (g_vk)
                CHECK(sym_vk_buffer_device_peak() <= (uint64_t)(so.vram_gb * 1e9),
                      "%s: device high-water %llu > %.0f", what,
                      (unsigned long long)sym_vk_buffer_device_peak(), so.vram_gb * 1e9);
#endif
            /* statistics: stored bytes read, raw bytes decompressed */
            if (n_comp == 0) { /* checked (decompress_ms), not decompressed */
                CHECK(t.m.bytes_decompressed == 0, "%s: %llu bytes decompressed from a raw store",
                      what, (unsigned long long)t.m.bytes_decompressed);
            } else {
                CHECK(t.decode.bytes_decompressed > 0 && t.m.decompress_ms > 0,
                      "%s: nothing decompressed (%llu bytes, %.3f ms)", what,
                      (unsigned long long)t.decode.bytes_decompressed, t.m.decompress_ms);
            }
            if (n_comp == n_packs && ratio > 1.1)
                CHECK(t.m.bytes_read_disk < t.m.bytes_decompressed,
                      "%s: %llu bytes read for %llu decompressed: the disk tier reads raw bytes",
                      what, (unsigned long long)t.m.bytes_read_disk,
                      (unsigned long long)t.m.bytes_decompressed);
            compare(&r, &t, mc->tol, what);
            if (same_cut) {
                char w2[200];
                snprintf(w2, sizeof w2, "%s vs the GGUF streamed", what);
                compare(&g, &t, 0, w2);
            }
        }
        free(t.logits);
        sym_store_close(s);
    }
    free(r.logits);
    free(g.logits);
}

/* ---- the plan and the configuration ------------------------------------------------------------
 */

static void test_plan_and_config(const char *gguf) {
    fprintf(stderr, "== the store's plan, max_pack_mb, --no-compression\n");
    char small[1200], one[1200], raw[1200];
    snprintf(small, sizeof small, "%s/plan-64k.sympack", g_dir);
    snprintf(one, sizeof one, "%s/plan-1m.sympack", g_dir);
    snprintf(raw, sizeof raw, "%s/plan-raw.sympack", g_dir);
    CHECK_OK(pack_model(gguf, small, SYM_CODEC_ZSTD, 64 * KIB, NULL));
    CHECK_OK(pack_model(gguf, one, SYM_CODEC_ZSTD, MIB, NULL));
    CHECK_OK(pack_model(gguf, raw, SYM_CODEC_NONE, 64 * KIB, NULL));
    sym_store *s = NULL;
    CHECK_OK(sym_store_open(small, &s));
    if (!s) return;
    const sym_pack_plan *sp = sym_store_plan(s);

    /* automatic pack size: the engine streams with the store's own table */
    open_opts o = stream_budget(600 * KIB);
    sym_engine *e = NULL;
    CHECK_OK(open_engine(small, &o, &e));
    const sym_pack_plan *ep = e ? sym_engine_pack_plan(e) : NULL;
    CHECK(ep != NULL, "not streamed");
    if (ep) {
        bool same = ep->n_packs == sp->n_packs && ep->max_pack_bytes == sp->max_pack_bytes &&
                    ep->n_uses == sp->n_uses && ep->n_pieces == sp->n_pieces;
        for (uint32_t i = 0; same && i < sp->n_packs; i++)
            same = ep->packs[i].buffer_bytes == sp->packs[i].buffer_bytes &&
                   ep->packs[i].n_pieces == sp->packs[i].n_pieces &&
                   ep->packs[i].type == sp->packs[i].type;
        CHECK(same, "the engine's plan (%u packs of at most %llu) is not the store's (%u, %llu)",
              ep->n_packs, (unsigned long long)ep->max_pack_bytes, sp->n_packs,
              (unsigned long long)sp->max_pack_bytes);
        char line[512];
        sym_engine_placement(e, line, sizeof line);
        CHECK(strstr(line, "compression ratio") != NULL, "placement line: %s", line);
    }
    sym_engine_close(e);

    /* a pack size that would re-cut the store */
    o = stream_budget(600 * KIB);
    o.max_pack_mb = 1;
    e = NULL;
    sym_status st = open_engine(small, &o, &e);
    CHECK(st == SYM_ERR_CONFIG && strstr(sym_last_error(), "cannot be cut again") &&
              strstr(sym_last_error(), "0.0625 MiB"),
          "max_pack_mb 1 on a store of 64 KiB packs: %s (%s)", sym_status_name(st),
          sym_last_error());
    sym_engine_close(e);
    /* ... and one that is the store's */
    o = stream_budget(2 * MIB);
    o.max_pack_mb = 1;
    e = NULL;
    CHECK_OK(open_engine(one, &o, &e));
    CHECK(e && sym_engine_pack_plan(e), "a 1 MiB store with max_pack_mb 1 did not stream");
    sym_engine_close(e);

    /* compression off: a compressed store is refused, a raw one streams */
    o = stream_budget(600 * KIB);
    o.no_compression = true;
    e = NULL;
    st = open_engine(small, &o, &e);
    CHECK(st == SYM_ERR_CONFIG && strstr(sym_last_error(), "compressed packs"),
          "--no-compression on a zstd store: %s (%s)", sym_status_name(st), sym_last_error());
    sym_engine_close(e);
    e = NULL;
    o = stream_budget(600 * KIB);
    o.no_compression = true;
    CHECK_OK(open_engine(raw, &o, &e));
    if (e) {
        run_out t;
        CHECK_OK(generate(e, &t));
        CHECK(t.n_packs > 0 && t.m.bytes_decompressed == 0,
              "raw store: %u packs, %llu decompressed", t.n_packs,
              (unsigned long long)t.m.bytes_decompressed);
        free(t.logits);
    }
    sym_engine_close(e);
    sym_store_close(s);
}

/* ---- damage met while streaming ----------------------------------------------------------------
 */

static bool copy_file(const char *from, const char *to) {
    char cmd[2600];
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", from, to);
    return system(cmd) == 0;
}

/* Whether pack id holds a piece of a norm, bias or router (read at open, not streamed). */
static bool holds_vector(const sym_pack_plan *p, uint32_t id) {
    const sym_pack_piece *pc = sym_pack_pieces(p, &p->packs[id]);
    for (uint32_t j = 0; j < p->packs[id].n_pieces; j++)
        if (p->weights[pc[j].weight_idx].n_rows == 1 ||
            p->weights[pc[j].weight_idx].role == SYM_ROLE_FFN_GATE_INP)
            return true;
    return false;
}

static void test_damage(const char *src_store, uint64_t tier) {
    fprintf(stderr, "== damage met while streaming (%s)\n", g_backend);
    sym_store *s = NULL;
    CHECK_OK(sym_store_open(src_store, &s));
    if (!s) return;
    const sym_pack_plan *p = sym_store_plan(s);
    /* a matrix-only pack in the middle of the schedule, and the first pack with a norm after it */
    uint32_t victim = UINT32_MAX, norm_pack = UINT32_MAX;
    for (uint32_t u = p->n_uses / 2; u < p->n_uses && victim == UINT32_MAX; u++)
        if (!holds_vector(p, p->schedule[u].pack_id)) victim = p->schedule[u].pack_id;
    for (uint32_t i = p->n_packs / 2; i < p->n_packs && norm_pack == UINT32_MAX; i++)
        if (holds_vector(p, i)) norm_pack = i;
    CHECK(victim != UINT32_MAX && norm_pack != UINT32_MAX, "no packs to damage");
    if (victim == UINT32_MAX || norm_pack == UINT32_MAX) {
        sym_store_close(s);
        return;
    }
    const sym_store_pack *vk = sym_store_pack_at(s, victim);
    char path[1200], want[64];
    snprintf(path, sizeof path, "%s/damaged.sympack", g_dir);

    /* a byte flipped after the engine opened the store */
    CHECK(copy_file(src_store, path), "cp");
    sym_engine *e = NULL;
    open_opts o = stream_budget(tier);
    CHECK_OK(open_engine(path, &o, &e));
    if (e) {
        int fd = open(path, O_RDWR);
        uint8_t b = 0;
        off_t at = (off_t)(vk->file_offset + vk->stored_bytes / 2);
        CHECK(fd >= 0 && pread(fd, &b, 1, at) == 1, "read %s", path);
        b ^= 0x10;
        CHECK(fd >= 0 && pwrite(fd, &b, 1, at) == 1, "write %s", path);
        if (fd >= 0) close(fd);
        run_out t;
        sym_status st = generate(e, &t);
        snprintf(want, sizeof want, "pack %u (", victim);
        CHECK(st == SYM_ERR_CHECKSUM && strstr(sym_last_error(), want) &&
                  strstr(sym_last_error(), "damaged"),
              "a flipped byte in pack %u: %s (%s)", victim, sym_status_name(st), sym_last_error());
        fprintf(stderr, "flipped byte: %s: %s\n", sym_status_name(st), sym_last_error());
        /* the next call meets it again: an error, not a hang or a stale pack */
        int32_t id = 1;
        float *lg = calloc((size_t)t.n_vocab, sizeof(float));
        sym_reset(e);
        st = sym_forward(e, &id, 1, lg);
        CHECK(st == SYM_ERR_CHECKSUM, "the second call: %s (%s)", sym_status_name(st),
              sym_last_error());
        free(lg);
        free(t.logits);
        sym_engine_close(e);
    }

    /* the file truncated after open, at the start of the victim's stored bytes: the first pack
     * the schedule needs at or past that point fails, named */
    CHECK(copy_file(src_store, path), "cp");
    e = NULL;
    o = stream_budget(tier);
    CHECK_OK(open_engine(path, &o, &e));
    if (e) {
        CHECK(truncate(path, (off_t)vk->file_offset) == 0, "truncate: %s", strerror(errno));
        run_out t;
        sym_status st = generate(e, &t);
        uint32_t first = UINT32_MAX; /* the first use of a pack at or past the cut */
        for (uint32_t u = 0; u < p->n_uses && first == UINT32_MAX; u++)
            if (sym_store_pack_at(s, p->schedule[u].pack_id)->file_offset >= vk->file_offset &&
                p->schedule[u].kind == SYM_PACK_USE_FULL)
                first = p->schedule[u].pack_id;
        snprintf(want, sizeof want, "pack %u:", first);
        CHECK(st == SYM_ERR_IO && strstr(sym_last_error(), want) &&
                  strstr(sym_last_error(), "short read"),
              "truncated at pack %u: %s (%s), expected pack %u named", victim, sym_status_name(st),
              sym_last_error(), first);
        fprintf(stderr, "truncated: %s: %s\n", sym_status_name(st), sym_last_error());
        free(t.logits);
        sym_engine_close(e);
    }

    /* a damaged pack holding a norm: read at open, which fails naming it */
    CHECK(copy_file(src_store, path), "cp");
    {
        const sym_store_pack *nk = sym_store_pack_at(s, norm_pack);
        int fd = open(path, O_RDWR);
        uint8_t b = 0;
        off_t at = (off_t)(nk->file_offset + nk->stored_bytes - 1);
        CHECK(fd >= 0 && pread(fd, &b, 1, at) == 1, "read");
        b ^= 0x01;
        CHECK(fd >= 0 && pwrite(fd, &b, 1, at) == 1, "write");
        if (fd >= 0) close(fd);
        e = NULL;
        o = stream_budget(tier);
        sym_status st = open_engine(path, &o, &e);
        snprintf(want, sizeof want, "pack %u (", norm_pack);
        CHECK(st == SYM_ERR_CHECKSUM && strstr(sym_last_error(), want),
              "a damaged norm pack %u at open: %s (%s)", norm_pack, sym_status_name(st),
              sym_last_error());
        sym_engine_close(e);
    }
    unlink(path);
    sym_store_close(s);
}

/* ---- models ------------------------------------------------------------------------------------
 */

static sym_status make_synthetic(const char *path, sym_dtype dt, int n_embd, int n_ff,
                                 int n_vocab) {
    sym_make_model_options mo;
    sym_make_model_options_init(&mo);
    mo.n_embd = n_embd, mo.n_layer = 4, mo.n_head = 4, mo.n_head_kv = 2, mo.n_ff = n_ff;
    mo.n_vocab = n_vocab;
    mo.tied_embeddings = false;
    mo.dtype = dt;
    mo.seed = 11;
    return sym_make_model(&mo, path);
}

static sym_status make_preset(const char *path, const char *preset, int n_layer) {
    sym_make_model_options mo;
    sym_make_model_options_init(&mo);
    SYM_TRY(sym_make_model_preset(&mo, preset));
    mo.n_layer = n_layer;
    mo.dtype = SYM_DT_F16;
    mo.seed = 5;
    return sym_make_model(&mo, path);
}

int main(int argc, char **argv) {
    if (argc > 1) g_backend = argv[1];
    g_vk = !strcmp(g_backend, "vulkan");
    snprintf(g_dir, sizeof g_dir, "%s/tests/test_stream_store_%s.tmp", SYM_BUILD_DIR, g_backend);
    char cmd[2200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", g_dir, g_dir);
    if (system(cmd) != 0) return 1;
    if (g_vk) { /* skip only when there is no Vulkan device at all */
        sym_engine *e = NULL;
        open_opts o = {0};
        sym_status st = open_engine(SYM_SOURCE_DIR "/models/toy-fortunes.gguf", &o, &e);
        sym_engine_close(e);
        if (st == SYM_ERR_NO_DEVICE) return TEST_SKIP;
    }

    char aid[1024], f16[1200], bf16[1200], moe[1200], qwen[1200];
    test_shared_path("models/aidreams260K.gguf", aid, sizeof aid);
    snprintf(f16, sizeof f16, "%s/synthetic-f16.gguf", g_dir);
    snprintf(bf16, sizeof bf16, "%s/synthetic-bf16.gguf", g_dir);
    CHECK_OK(make_synthetic(f16, SYM_DT_F16, 256, 688, 2048));
    CHECK_OK(make_synthetic(bf16, SYM_DT_BF16, 256, 688, 2048));
    snprintf(moe, sizeof moe, "%s/tiny-moe.gguf", g_dir);
    snprintf(qwen, sizeof qwen, "%s/tiny-qwen2.gguf", g_dir);
    CHECK_OK(make_preset(moe, "tiny-moe", 2));    /* routers ride with the norms; expert packs */
    CHECK_OK(make_preset(qwen, "tiny-qwen2", 8)); /* Q/K/V biases, tied embeddings */

    /* the streamed CPU pass computes exactly what the resident one does; on Vulkan the resident
     * run uses fused kernels (test_stream's tolerance) */
    double tol = g_vk ? 1e-4 : 0;
    static const sym_codec_id aid_codecs[] = {SYM_CODEC_NONE, SYM_CODEC_ZSTD, SYM_CODEC_BLOSC,
                                              SYM_CODEC_ZFP};
    static const sym_codec_id aid_codecs_vk[] = {SYM_CODEC_ZSTD};
    static const sym_codec_id half_codecs[] = {SYM_CODEC_BYTESPLIT, SYM_CODEC_ZSTD, SYM_CODEC_NONE};
    static const sym_codec_id half_codecs_vk[] = {SYM_CODEC_BYTESPLIT};
    static const sym_codec_id moe_codecs[] = {SYM_CODEC_ZSTD, SYM_CODEC_BYTESPLIT};
    model_case cases[] = {
        {"aidreams-64k", aid, 64 * KIB, 600 * KIB, AID_VRAM_GB, g_vk ? aid_codecs_vk : aid_codecs,
         g_vk ? 1 : 4, tol},
        {"aidreams-1m", aid, MIB, MIB, AID_VRAM_GB, aid_codecs_vk, 1, tol},
        {"f16-1m", f16, MIB, 6 * MIB, 0.006, g_vk ? half_codecs_vk : half_codecs, g_vk ? 1 : 3,
         tol},
        {"bf16-256k", bf16, 256 * KIB, 1 * MIB, 0.006, half_codecs_vk, 1, tol},
        /* CPU only (lavapipe is slow): a mixture of experts (streamed vs resident within
         * test_stream's MoE tolerance; bit for bit against the GGUF streamed) and qwen2 */
        {"moe-1m", moe, MIB, 800 * KIB, 0, moe_codecs, 2, 1e-4},
        {"qwen2-1m", qwen, MIB, 800 * KIB, 0, half_codecs_vk, 1, tol},
    };
    size_t n_cases = sizeof cases / sizeof cases[0] - (g_vk ? 2 : 0);
    for (size_t i = 0; i < n_cases; i++)
        test_model_case(&cases[i]);
    if (!g_vk) test_plan_and_config(aid);
    char z[1200];
    snprintf(z, sizeof z, "%s/f16-1m-zstd.sympack", g_dir);
    if (g_vk) snprintf(z, sizeof z, "%s/aidreams-64k-zstd.sympack", g_dir);
    test_damage(z, g_vk ? 600 * KIB : 6 * MIB);
    return test_finish("test_stream_store");
}
