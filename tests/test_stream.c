/* Streaming end to end, for a dense model and a mixture of experts (8 experts, top 2, whose
 * synthetic router picks skewed, input-dependent experts): a synthetic model several times larger
 * than the budget runs through the pack manager (packs of 1 MiB, so every matrix arrives in row
 * slices) and must give the same greedy ids, and logits equal within a stated tolerance, as the
 * same model resident; the budget must hold (CPU: the RAM tier's high-water mark; Vulkan: the
 * device high-water mark, which counts every device allocation of the process); a failing disk
 * read must end the call with SYM_ERR_IO naming the pack, without a hang; a budget below the
 * minimum working set must fail at open with SYM_ERR_BUDGET.
 * Eviction policies: the dense model streams under Belady, and the oracle makes exactly its
 * moves; the mixture of experts streams under the vitality oracle, and LRU and Belady compute
 * the very same logits (the policy decides residency, never numbers). On the CPU, a skewed MoE
 * decoding 96 tokens under a tier that holds about a quarter of its experts: the oracle moves
 * fewer expert bytes than LRU (the engine's own counters; Belady and a replay of the run's trace
 * under LRU, LFU and MIN reported beside them), and its weight file is saved, loaded, and when
 * corrupt or truncated refused with a warning and fresh weights.
 * Usage: test_stream [cpu|vulkan]   (default cpu) */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "infer/engine.h"
#include "model/writer.h"
#include "pack/pack.h"
#include "test_util.h"
#include "tier/policy_sim.h"
#ifdef SYM_HAVE_VULKAN
#include "vk/buffer.h"
#endif

#define N_PROMPT 9
#define N_GEN    6
#define N_CTX    64

static const char *g_backend = "cpu";
static char g_model[1024];
static int g_n_vocab;
static int g_n_prompt = N_PROMPT;
static int g_n_ctx = N_CTX;
static int g_lookahead = 4; /* [memory] prefetch_lookahead */
static sym_evict_choice g_policy = SYM_EVICT_CHOICE_AUTO;
static const char *g_cache_dir = ""; /* the oracle's weights: not kept unless a test says so */

/* Greedy run: prompt, then N_GEN tokens one at a time; every step's logits are kept. */
typedef struct run_out {
    int32_t ids[N_GEN];
    float *logits; /* (N_GEN + 1) x n_vocab */
    sym_metrics m;
    int streamed;
} run_out;

/* The open's load progress: calls, the last (done, total), and whether done only grew. */
static struct load_seen {
    uint64_t calls, done, total;
    bool grew;
} g_load;

static void on_load(void *user, uint64_t done, uint64_t total) {
    struct load_seen *l = user;
    if (l->calls && done < l->done) l->grew = false;
    l->calls++;
    l->done = done;
    l->total = total;
}

static sym_status open_engine_on(const char *backend, double vram_gb, double ram_gb,
                                 sym_pread_fn pr, void *pu, sym_engine **e) {
    sym_engine_params p;
    sym_engine_params_init(&p);
    snprintf(p.cfg.model_path, sizeof p.cfg.model_path, "%s", g_model);
    p.backend = backend;
    p.n_ctx = g_n_ctx;
    p.fp32 = true;
    p.cfg.max_pack_mb = 1;
    p.cfg.vram_budget_gb = vram_gb;
    p.cfg.ram_budget_gb = ram_gb;
    p.cfg.n_threads = 2;
    p.cfg.eviction_policy = g_policy;
    p.cfg.prefetch_lookahead = g_lookahead;
    p.oracle_cache_dir = g_cache_dir;
    p.pread_fn = pr;
    p.pread_user = pu;
    p.load_progress = on_load;
    p.load_progress_user = &g_load;
    return sym_engine_open_params(&p, e);
}

static sym_status open_engine(double vram_gb, double ram_gb, sym_pread_fn pr, void *pu,
                              sym_engine **e) {
    return open_engine_on(g_backend, vram_gb, ram_gb, pr, pu, e);
}

/* A RAM budget of what the process holds now plus extra bytes (recomputed before each open: the
 * resident set grows as the test goes, more so under ASan). */
static double ram_now(double extra) {
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long long sz = 0, res = 0;
    int ok = f && fscanf(f, "%llu %llu", &sz, &res) == 2;
    if (f) fclose(f);
    return ok ? ((double)res * (double)sysconf(_SC_PAGESIZE) + extra) / 1e9 : 0;
}

static int argmax(const float *x, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return b;
}

static sym_status run_on(const char *backend, double vram_gb, double ram_gb, run_out *r) {
    sym_engine *e;
    g_load = (struct load_seen){.grew = true};
    SYM_TRY(open_engine_on(backend, vram_gb, ram_gb, NULL, NULL, &e));
    sym_metrics_reset(e);
    int32_t prompt[N_PROMPT];
    for (int i = 0; i < g_n_prompt; i++) prompt[i] = (int32_t)((i * 37 + 5) % g_n_vocab);
    r->logits = calloc((size_t)(N_GEN + 1) * (size_t)g_n_vocab, sizeof(float));
    sym_status st = sym_forward(e, prompt, (size_t)g_n_prompt, r->logits);
    for (int t = 0; t < N_GEN && st == SYM_OK; t++) {
        r->ids[t] = argmax(r->logits + (size_t)t * (size_t)g_n_vocab, g_n_vocab);
        st = sym_forward(e, &r->ids[t], 1, r->logits + (size_t)(t + 1) * (size_t)g_n_vocab);
    }
    sym_metrics_get(e, &r->m);
    r->streamed = r->m.streamed;
    sym_engine_close(e);
    return st;
}

static sym_status run(double vram_gb, double ram_gb, run_out *r) {
    return run_on(g_backend, vram_gb, ram_gb, r);
}

/* ---- fault injection: reads fail after a number of calls -------------------------------------- */
typedef struct fail_reads {
    int after;
    int calls;
    pthread_mutex_t mu;
} fail_reads;

static ssize_t failing_pread(void *user, int fd, void *buf, size_t n, off_t off) {
    fail_reads *f = user;
    pthread_mutex_lock(&f->mu);
    int k = f->calls++;
    pthread_mutex_unlock(&f->mu);
    if (k >= f->after) {
        errno = EIO;
        return -1;
    }
    return pread(fd, buf, n, off);
}

/* The same ids and bit-identical logits. */
static bool same_run(const run_out *a, const run_out *b) {
    size_t nl = (size_t)(N_GEN + 1) * (size_t)g_n_vocab;
    return a->logits && b->logits && !memcmp(a->ids, b->ids, sizeof a->ids) &&
           !memcmp(a->logits, b->logits, nl * sizeof *a->logits);
}

/* ---- the oracle's weight file ------------------------------------------------------------- */

/* The oracle weight files in dir: how many, and the path of one. */
static int weight_files(const char *dir, char *path, size_t cap) {
    DIR *d = opendir(dir);
    int n = 0;
    if (!d) return 0;
    for (struct dirent *de; (de = readdir(d));) {
        size_t len = strlen(de->d_name);
        if (strncmp(de->d_name, "oracle-", 7) || len < 8 ||
            strcmp(de->d_name + len - 8, ".weights"))
            continue;
        n++;
        snprintf(path, cap, "%s/%s", dir, de->d_name);
    }
    closedir(d);
    return n;
}

static bool file_has(const char *path, const char *what) {
    size_t n;
    unsigned char *b = test_read_file(path, &n);
    bool has = b && memmem(b, n, what, strlen(what)) != NULL;
    free(b);
    return has;
}

/* A streamed MoE run whose warnings go to log (NULL: stderr); the oracle's lifetime samples. */
static uint64_t logged_run(double ram_extra, const char *log) {
    if (log) CHECK_OK(sym_log_open_file(log, 0));
    run_out r = {0};
    CHECK_OK(run(0, ram_now(ram_extra), &r));
    if (log) sym_log_close_file();
    CHECK(r.streamed && r.m.eviction_policy && !strcmp(r.m.eviction_policy, "oracle"),
          "the run did not stream under the oracle");
    free(r.logits);
    return r.m.oracle_samples;
}

/* Saved at close, loaded at open (the samples add up); a corrupt or a truncated file: a warning
 * naming the problem, fresh weights, a valid file again at close. */
static void test_weight_file(double ram_extra) {
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    char dir[1024], path[1400] = "", log1[1100], log2[1100];
    snprintf(dir, sizeof dir, "%s/sym_test_stream_oracle_%d", tmp, (int)getpid());
    snprintf(log1, sizeof log1, "%s.corrupt.log", dir);
    snprintf(log2, sizeof log2, "%s.truncated.log", dir);
    unlink(log1);
    unlink(log2);
    CHECK(mkdir(dir, 0755) == 0 || errno == EEXIST, "mkdir %s", dir);
    g_cache_dir = dir;
    g_policy = SYM_EVICT_CHOICE_ORACLE;
    uint64_t n = logged_run(ram_extra, NULL);
    CHECK(n > 0, "the oracle learned nothing");
    CHECK(weight_files(dir, path, sizeof path) == 1, "no weight file (or several) in %s", dir);
    uint64_t n2 = logged_run(ram_extra, NULL);
    CHECK(n2 == 2 * n, "the second run's oracle has %llu samples, not the saved %llu plus its own",
          (unsigned long long)n2, (unsigned long long)n);
    size_t sz = 0;
    unsigned char *b = test_read_file(path, &sz);
    CHECK(b && sz > 700, "the weight file %s (%zu bytes)", path, sz);
    if (b && sz > 700) {
        b[700] ^= 0x40; /* a weight's bit: the checksum no longer matches */
        CHECK(test_write_file(path, b, sz) == 0, "rewriting %s", path);
        uint64_t n3 = logged_run(ram_extra, log1);
        CHECK(n3 == n, "a corrupt file gave %llu samples, not fresh weights' %llu",
              (unsigned long long)n3, (unsigned long long)n);
        CHECK(file_has(log1, "WARNING") && file_has(log1, "checksum") &&
                  file_has(log1, "fresh weights"),
              "no warning about the corrupt weight file in %s", log1);
        CHECK(truncate(path, 600) == 0, "truncate %s", path);
        uint64_t n4 = logged_run(ram_extra, log2);
        CHECK(n4 == n, "a truncated file gave %llu samples", (unsigned long long)n4);
        CHECK(file_has(log2, "WARNING") && file_has(log2, "truncated") &&
                  file_has(log2, "fresh weights"),
              "no warning about the truncated weight file in %s", log2);
        CHECK(logged_run(ram_extra, NULL) == 2 * n, "the file saved after a bad one is not valid");
    }
    free(b);
    fprintf(stderr,
            "oracle weights: saved, loaded (%llu + %llu samples), corrupt and truncated "
            "files refused with a warning\n",
            (unsigned long long)n, (unsigned long long)n);
    unlink(path);
    unlink(log1);
    unlink(log2);
    rmdir(dir);
    g_cache_dir = "";
    g_policy = SYM_EVICT_CHOICE_AUTO;
}

/* ---- eviction on a skewed mixture of experts ----------------------------------------------- */

#define POLICY_TOKENS 96

/* A 1-token prompt, then POLICY_TOKENS tokens decoded one by one with pseudo-random ids (teacher
 * forcing: the routing follows varied input rather than a greedy loop), under policy pol with a
 * RAM budget of what the process holds plus extra. The engine's counters into *m; trace: the
 * run's accesses written there. */
static sym_status decode_run(sym_evict_choice pol, double extra, const char *trace,
                             sym_metrics *m) {
    g_policy = pol;
    g_n_ctx = POLICY_TOKENS + 2;
    g_lookahead = 0;
    sym_engine *e;
    sym_status st = open_engine(0, ram_now(extra), NULL, NULL, &e);
    g_policy = SYM_EVICT_CHOICE_AUTO;
    g_n_ctx = N_CTX;
    g_lookahead = 4;
    SYM_TRY(st);
    if (trace) st = sym_engine_trace_start(e);
    sym_metrics_reset(e);
    uint32_t x = 12345;
    for (int t = 0; t <= POLICY_TOKENS && st == SYM_OK; t++) {
        x = x * 1664525u + 1013904223u;
        int32_t id = (int32_t)((x >> 8) % (uint32_t)g_n_vocab);
        st = sym_forward(e, &id, 1, NULL);
    }
    sym_metrics_get(e, m);
    if (st == SYM_OK && trace) st = sym_engine_trace_write(e, trace);
    sym_engine_close(e);
    return st;
}

static uint64_t pow2ceil(uint64_t v) {
    uint64_t p = 1;
    while (p < v)
        p <<= 1;
    return p;
}

/* The RAM tier holds the dense packs, one I/O staging buffer and about a quarter of the experts;
 * the oracle must move fewer expert bytes than LRU. */
static void test_policies(void) {
    sym_model *model = NULL;
    sym_pack_plan *plan = NULL;
    CHECK_OK(sym_model_open(g_model, &model));
    sym_pack_options po;
    sym_pack_options_init(&po);
    po.max_pack_bytes = 1u << 20;
    if (model) CHECK_OK(sym_pack_plan_create(model, &po, &plan));
    if (!plan) {
        sym_model_close(model);
        return;
    }
    uint64_t dense = 0, expert = 0, largest = 0; /* buddy blocks, as the RAM tier holds them */
    for (uint32_t i = 0; i < plan->n_packs; i++) {
        const sym_pack *pk = &plan->packs[i];
        uint64_t blk = pow2ceil(pk->buffer_bytes);
        if (pk->type != SYM_PACK_EXPERT)
            dense += blk;
        else if (pk->layer == 0 && pk->expert == 0)
            expert += blk;
        if (pk->buffer_bytes > largest) largest = pk->buffer_bytes;
    }
    int n_experts = plan->n_layer * plan->n_expert;
    uint64_t staging = (largest + 4095) / 4096 * 4096;
    uint64_t want = dense + staging + (uint64_t)n_experts / 4 * expert;
    /* calibrate the budget: what an open with a first guess leaves for the tier */
    sym_metrics m[3];
    double extra = (double)want + 9e6;
    CHECK_OK(decode_run(SYM_EVICT_CHOICE_LRU, extra, NULL, &m[0]));
    extra += (double)want - (double)m[0].ram_tier_bytes;
    char trace[1100];
    snprintf(trace, sizeof trace, "%s.symtrace", g_model);
    static const sym_evict_choice pols[3] = {SYM_EVICT_CHOICE_ORACLE, SYM_EVICT_CHOICE_LRU,
                                             SYM_EVICT_CHOICE_BELADY};
    for (int k = 0; k < 3; k++)
        CHECK_OK(decode_run(pols[k], extra, k == 0 ? trace : NULL, &m[k]));
    double room = ((double)m[0].ram_tier_bytes - (double)(dense + staging)) / (double)expert;
    fprintf(stderr,
            "policies: RAM tier %llu bytes = dense packs %llu + staging %llu + room for "
            "%.1f of %d experts (%llu bytes each); %d tokens decoded\n",
            (unsigned long long)m[0].ram_tier_bytes, (unsigned long long)dense,
            (unsigned long long)staging, room, n_experts, (unsigned long long)expert,
            POLICY_TOKENS);
    CHECK(room >= n_experts / 4 - 2 && room <= n_experts / 4 + 2,
          "the tier holds %.1f experts, not about a quarter of %d", room, n_experts);
    for (int k = 1; k < 3; k++)
        CHECK(fabs((double)m[k].ram_tier_bytes - (double)m[0].ram_tier_bytes) < 0.25 * expert,
              "the %s run's tier (%llu bytes) is not the oracle run's (%llu)",
              sym_evict_choice_name(pols[k]), (unsigned long long)m[k].ram_tier_bytes,
              (unsigned long long)m[0].ram_tier_bytes);
    for (int k = 0; k < 3; k++) {
        fprintf(stderr,
                "  %-6s expert bytes moved %10llu (%.0f per token), all bytes read %10llu, "
                "expert packs %llu hits %llu misses\n",
                sym_evict_choice_name(pols[k]), (unsigned long long)m[k].expert_bytes_moved,
                (double)m[k].expert_bytes_moved / POLICY_TOKENS,
                (unsigned long long)m[k].bytes_read_disk, (unsigned long long)m[k].expert_hits,
                (unsigned long long)m[k].expert_misses);
        CHECK(!strcmp(m[k].eviction_policy, sym_evict_choice_name(pols[k])), "policy %s ran as %s",
              sym_evict_choice_name(pols[k]), m[k].eviction_policy);
        CHECK(m[k].expert_bytes_moved > 0 && m[k].expert_bytes_moved <= m[k].bytes_read_disk,
              "%s: expert bytes %llu of %llu read", sym_evict_choice_name(pols[k]),
              (unsigned long long)m[k].expert_bytes_moved,
              (unsigned long long)m[k].bytes_read_disk);
        CHECK(m[k].ram_tier_high_water_bytes <= m[k].ram_tier_bytes, "%s: high-water %llu > %llu",
              sym_evict_choice_name(pols[k]), (unsigned long long)m[k].ram_tier_high_water_bytes,
              (unsigned long long)m[k].ram_tier_bytes);
    }
    CHECK(m[0].expert_bytes_moved < m[1].expert_bytes_moved,
          "the oracle moved %llu expert bytes, LRU %llu",
          (unsigned long long)m[0].expert_bytes_moved, (unsigned long long)m[1].expert_bytes_moved);
    /* every layer of every token is a slot the MLP learned from, n_expert samples each */
    uint64_t slots = (uint64_t)(POLICY_TOKENS + 1) * (uint64_t)plan->n_layer;
    CHECK(m[0].oracle_samples == slots * (uint64_t)plan->n_expert,
          "the oracle learned from %llu samples, not %llu", (unsigned long long)m[0].oracle_samples,
          (unsigned long long)(slots * (uint64_t)plan->n_expert));
    /* the same accesses replayed by the simulator in a cache of the tier's room (no prefetch
     * window, whole experts): what LFU and MIN (the future known) would have moved */
    sym_trace *t = NULL;
    CHECK_OK(sym_trace_read(trace, &t));
    if (t) {
        static const sym_policy_sim_kind sk[4] = {SYM_POLICY_SIM_LRU, SYM_POLICY_SIM_LFU,
                                                  SYM_POLICY_SIM_ORACLE, SYM_POLICY_SIM_MIN};
        sym_policy_sim_options so;
        sym_policy_sim_options_init(&so);
        fprintf(stderr, "  replayed (cache %llu bytes), expert bytes per token:",
                (unsigned long long)(m[0].ram_tier_bytes - staging));
        for (int k = 0; k < 4; k++) {
            sym_policy_sim_result r;
            CHECK_OK(sym_policy_sim_run(t, sk[k], m[0].ram_tier_bytes - staging, &so, &r));
            fprintf(stderr, " %s %.0f", sym_policy_sim_name(sk[k]),
                    (double)r.bytes_moved_experts / (double)t->n_tokens);
        }
        fputc('\n', stderr);
    }
    sym_trace_destroy(t);
    unlink(trace);
    sym_pack_plan_destroy(plan);
    sym_model_close(model);
}

static int test_model(bool moe, bool vk);

int main(int argc, char **argv) {
    if (argc > 1) g_backend = argv[1];
    bool vk = !strcmp(g_backend, "vulkan");
    int rc = test_model(false, vk);
    if (rc == TEST_SKIP) return rc;
    rc = test_model(true, vk);
    if (rc == TEST_SKIP) return rc;
    return test_finish("test_stream");
}

static int test_model(bool moe, bool vk) {
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(g_model, sizeof g_model, "%s/sym_test_stream_%d.gguf", tmp, (int)getpid());
    fprintf(stderr, "== %s model\n", moe ? "mixture-of-experts" : "dense");
    sym_make_model_options mo;
    sym_make_model_options_init(&mo);
    mo.n_embd = 256, mo.n_layer = 12, mo.n_head = 4, mo.n_head_kv = 2, mo.n_ff = 688;
    if (moe) mo.n_layer = 4, mo.n_ff = 512, mo.n_expert = 8, mo.n_expert_used = 2;
    mo.n_vocab = 2048;
    mo.tied_embeddings = false;
    mo.dtype = SYM_DT_F16;
    mo.seed = 7;
    CHECK_OK(sym_make_model(&mo, g_model));
    g_n_vocab = mo.n_vocab;
    size_t nl = (size_t)(N_GEN + 1) * (size_t)g_n_vocab;

    /* streamed first (the device high-water mark is process-wide; the dense model runs first and
     * the MoE one's budget is the same), then resident */
    double vram = vk ? 0.007 : 0, ram = vk ? 0 : 0;
    run_out s = {0}, r = {0};
#ifdef SYM_HAVE_VULKAN
    sym_vk_buffer_device_peak_reset(); /* every engine so far is closed: 0 bytes held */
#endif
    if (!vk) {
        /* the RAM budget: what the process holds now, plus 4 MB for the packs */
        sym_engine *e;
        sym_status st = open_engine(0, 0, NULL, NULL, &e);
        if (st == SYM_ERR_NO_DEVICE) return TEST_SKIP;
        CHECK_OK(st);
        sym_engine_close(e);
        ram = ram_now(14e6);
    }
    g_policy = moe ? SYM_EVICT_CHOICE_ORACLE : SYM_EVICT_CHOICE_AUTO;
    sym_status st = run(vram, ram, &s);
    g_policy = SYM_EVICT_CHOICE_AUTO;
    if (st == SYM_ERR_NO_DEVICE) return TEST_SKIP;
    CHECK_OK(st);
    CHECK(s.streamed, "the %s run with a %.4f GB budget was not streamed", g_backend,
          vk ? vram : ram);
    const char *want_policy = moe ? "oracle" : "belady"; /* auto for dense: belady */
    CHECK(s.m.eviction_policy && !strcmp(s.m.eviction_policy, want_policy),
          "the streamed run's policy is %s, not %s", s.m.eviction_policy, want_policy);
    if (!vk)
        CHECK(s.m.ram_tier_high_water_bytes > 0 &&
                  s.m.ram_tier_high_water_bytes <= s.m.ram_tier_bytes &&
                  s.m.ram_tier_bytes <= (uint64_t)(ram * 1e9),
              "RAM tier high-water %llu bytes, tier %llu, budget %.0f",
              (unsigned long long)s.m.ram_tier_high_water_bytes,
              (unsigned long long)s.m.ram_tier_bytes, ram * 1e9);
    uint64_t moved = vk ? s.m.bytes_uploaded : s.m.bytes_read_disk;
    if (moe)
        CHECK(s.m.expert_misses > 0 && s.m.expert_bytes_moved > 0 &&
                  s.m.expert_bytes_moved <= moved &&
                  s.m.expert_hits + s.m.expert_misses <= s.m.pack_hits + s.m.pack_misses,
              "expert counters: %llu hits, %llu misses, %llu of %llu bytes",
              (unsigned long long)s.m.expert_hits, (unsigned long long)s.m.expert_misses,
              (unsigned long long)s.m.expert_bytes_moved, (unsigned long long)moved);
    else
        CHECK(s.m.expert_hits + s.m.expert_misses + s.m.expert_bytes_moved == 0,
              "a dense model counted expert packs");
    if (moe)
        fprintf(stderr,
                "oracle: %llu expert pack hits, %llu misses, %llu expert bytes moved, "
                "log loss %.3f over %llu samples\n",
                (unsigned long long)s.m.expert_hits, (unsigned long long)s.m.expert_misses,
                (unsigned long long)s.m.expert_bytes_moved, s.m.oracle_log_loss,
                (unsigned long long)s.m.oracle_samples);
#ifdef SYM_HAVE_VULKAN
    uint64_t peak = vk ? sym_vk_buffer_device_peak() : 0;
    if (vk)
        CHECK(peak <= (uint64_t)(vram * 1e9), "device high-water %llu bytes > budget %.0f",
              (unsigned long long)peak, vram * 1e9);
#endif
    CHECK(s.m.pack_misses > 0 && (vk ? s.m.bytes_uploaded : s.m.bytes_read_disk) > 0,
          "streaming moved nothing (misses %llu)", (unsigned long long)s.m.pack_misses);
    fprintf(stderr, "streamed: %llu bytes uploaded, %llu read from disk, %llu hits, %llu misses; "
            "waited %.2f ms, %.2f of it for the disk\n",
            (unsigned long long)s.m.bytes_uploaded, (unsigned long long)s.m.bytes_read_disk,
            (unsigned long long)s.m.pack_hits, (unsigned long long)s.m.pack_misses, s.m.stall_ms,
            s.m.stall_disk_ms);
    /* the wait for packs not yet in RAM is part of the wait, and on the CPU (whose ops read the
     * RAM tier, which cannot hold the model) there is such a wait */
    CHECK(s.m.stall_disk_ms >= 0 && s.m.stall_disk_ms <= s.m.stall_ms + 1e-9 &&
              (vk || s.m.stall_disk_ms > 0),
          "waits: %.3f ms for the disk of %.3f ms", s.m.stall_disk_ms, s.m.stall_ms);

    CHECK_OK(run(0, 0, &r));
    CHECK(!r.streamed, "the unlimited run streamed");
    /* the resident open reported its load: bytes that only grew, to the model's weight bytes */
    CHECK(g_load.calls > 0 && g_load.grew && g_load.total > 0 && g_load.done == g_load.total,
          "load progress: %llu calls, %llu of %llu bytes, %s", (unsigned long long)g_load.calls,
          (unsigned long long)g_load.done, (unsigned long long)g_load.total,
          g_load.grew ? "growing" : "going back");
    if (s.logits && r.logits) {
        for (int t = 0; t < N_GEN; t++)
            CHECK(s.ids[t] == r.ids[t], "greedy id %d: streamed %d, resident %d", t, s.ids[t],
                  r.ids[t]);
        double d = test_max_rel_diff(r.logits, s.logits, nl);
        /* the same kernels on the same rows; on Vulkan the resident run uses fused kernels
         * (norm folded into the product) where the streamed one runs the plain ops */
        double tol = vk || moe ? 1e-4 : 1e-5;
        fprintf(stderr, "logits: streamed vs resident, max relative difference %.3g (tol %g)\n",
                d, tol);
        CHECK(d <= tol, "logits differ by %g (relative) > %g", d, tol);
    }
    if (!moe && !vk) {
        /* the oracle on a dense model makes Belady's moves, to the byte. Without prefetches
         * (lookahead 0) nothing moves in the background, so the tier's state at each eviction,
         * and the bytes, do not depend on timing; on Vulkan the deferred releases would */
        run_out o[2];
        memset(o, 0, sizeof o);
        static const sym_evict_choice pols[2] = {SYM_EVICT_CHOICE_BELADY, SYM_EVICT_CHOICE_ORACLE};
        g_lookahead = 0;
        for (int k = 0; k < 2; k++) {
            g_policy = pols[k];
            CHECK_OK(run(0, ram_now(14e6), &o[k]));
            CHECK(o[k].m.eviction_policy &&
                      !strcmp(o[k].m.eviction_policy, sym_evict_choice_name(pols[k])),
                  "dense: policy %s ran as %s", sym_evict_choice_name(pols[k]),
                  o[k].m.eviction_policy);
        }
        g_policy = SYM_EVICT_CHOICE_AUTO;
        g_lookahead = 4;
        CHECK(
            o[1].m.bytes_read_disk == o[0].m.bytes_read_disk &&
                o[1].m.pack_misses == o[0].m.pack_misses && o[1].m.pack_hits == o[0].m.pack_hits,
            "dense: the oracle read %llu bytes (%llu hits, %llu misses), Belady %llu (%llu, %llu)",
            (unsigned long long)o[1].m.bytes_read_disk, (unsigned long long)o[1].m.pack_hits,
            (unsigned long long)o[1].m.pack_misses, (unsigned long long)o[0].m.bytes_read_disk,
            (unsigned long long)o[0].m.pack_hits, (unsigned long long)o[0].m.pack_misses);
        CHECK(same_run(&o[1], &o[0]) && same_run(&o[0], &s),
              "dense: the policies computed other logits");
        fprintf(stderr,
                "dense, no prefetch: the oracle read Belady's bytes (%llu), %llu hits, "
                "%llu misses\n",
                (unsigned long long)o[1].m.bytes_read_disk, (unsigned long long)o[1].m.pack_hits,
                (unsigned long long)o[1].m.pack_misses);
        free(o[0].logits);
        free(o[1].logits);
    }
    if (moe && !vk) { /* other policies: other residency, the same numbers */
        static const sym_evict_choice others[2] = {SYM_EVICT_CHOICE_LRU, SYM_EVICT_CHOICE_BELADY};
        for (int k = 0; k < 2; k++) {
            run_out o = {0};
            g_policy = others[k];
            CHECK_OK(run(0, ram_now(14e6), &o));
            g_policy = SYM_EVICT_CHOICE_AUTO;
            CHECK(same_run(&o, &s), "moe: %s computed other ids or logits than the oracle",
                  sym_evict_choice_name(others[k]));
            free(o.logits);
        }
        /* one-token chunks, streamed under the oracle and resident: bit for bit. (A prompt chunk
         * of several tokens differs in the last bits: with a matrix cut across packs, the CPU's
         * multi-token products group its rows otherwise, and sum in another order.) */
        run_out d1 = {0}, r1 = {0};
        g_n_prompt = 1;
        g_policy = SYM_EVICT_CHOICE_ORACLE;
        CHECK_OK(run(0, ram_now(14e6), &d1));
        g_policy = SYM_EVICT_CHOICE_AUTO;
        CHECK_OK(run(0, 0, &r1));
        g_n_prompt = N_PROMPT;
        CHECK(d1.streamed && !r1.streamed && same_run(&d1, &r1),
              "moe: decoding streamed under the oracle is not bit-identical to resident");
        fprintf(stderr, "moe: LRU and Belady compute the oracle's logits bit for bit; decoded "
                        "one token at a time, streamed equals resident bit for bit\n");
        free(d1.logits);
        free(r1.logits);
    }
    /* the CPU/GPU split: half of the layers' packs decoded on the CPU, in each order a stage
     * can run its pieces (SYM_SPLIT_ORDER) */
    static const char *const orders[] = {"ready", "cpu", "gpu", "ready"};
    uint64_t readbacks[4] = {0};
    for (int o = 0; vk && !moe && o < 4; o++) {
        run_out sp = {0};
        setenv("SYM_SPLIT_FRACTION", "0.5", 1);
        setenv("SYM_SPLIT_ORDER", orders[o], 1);
        if (o == 3) setenv("SYM_SPLIT_LAYERS", "0", 1); /* packs, not whole layers' MLPs */
#ifdef SYM_HAVE_VULKAN
        sym_vk_buffer_device_peak_reset();
#endif
        CHECK_OK(run(vram, ram, &sp));
        unsetenv("SYM_SPLIT_FRACTION");
        unsetenv("SYM_SPLIT_ORDER");
        unsetenv("SYM_SPLIT_LAYERS");
        readbacks[o] = sp.m.readbacks;
        CHECK(sp.m.split && sp.m.bytes_cpu > 0,
              "split (%s first): did not run (split %d, %llu CPU bytes)", orders[o], sp.m.split,
              (unsigned long long)sp.m.bytes_cpu);
#ifdef SYM_HAVE_VULKAN
        CHECK(sym_vk_buffer_device_peak() <= (uint64_t)(vram * 1e9),
              "split (%s first): high-water %llu", orders[o],
              (unsigned long long)sym_vk_buffer_device_peak());
#endif
        if (sp.logits && r.logits) {
            for (int t = 0; t < N_GEN; t++)
                CHECK(sp.ids[t] == r.ids[t], "split (%s first): greedy id %d: %d, resident %d",
                      orders[o], t, sp.ids[t], r.ids[t]);
            double d = test_max_rel_diff(r.logits, sp.logits, nl);
            fprintf(stderr,
                    "split (%s first%s): %llu bytes on the CPU, %llu read-backs, logits vs "
                    "resident %.3g\n",
                    orders[o], o == 3 ? ", packs" : "", (unsigned long long)sp.m.bytes_cpu,
                    (unsigned long long)sp.m.readbacks, d);
            CHECK(d <= 1e-4, "split (%s first): logits differ by %g", orders[o], d);
        }
        free(sp.logits);
    }
    /* whole layers' MLPs on the CPU read back once per CPU layer, packs twice */
    if (vk && !moe)
        CHECK(readbacks[0] > 0 && readbacks[0] < readbacks[3],
              "split: %llu read-backs with whole layers, %llu with packs",
              (unsigned long long)readbacks[0], (unsigned long long)readbacks[3]);
    if (moe) { /* the resident run against the reference backend */
        run_out f = {0};
        CHECK_OK(run_on("reference", 0, 0, &f));
        if (f.logits && r.logits) {
            int same = 0;
            for (int t = 0; t < N_GEN; t++)
                same += f.ids[t] == r.ids[t];
            double d = test_max_rel_diff(f.logits, r.logits, nl);
            fprintf(stderr, "moe: %s vs reference: %d/%d greedy ids equal, logits %.3g\n",
                    g_backend, same, N_GEN, d);
            CHECK(same == N_GEN && d <= 1e-3, "moe %s vs reference: %d/%d ids, logits %g",
                  g_backend, same, N_GEN, d);
        }
        free(f.logits);
    }
    free(s.logits);
    free(r.logits);

    /* a failing read: SYM_ERR_IO from the call, then a clean close */
    fail_reads fr = {.after = 5};
    pthread_mutex_init(&fr.mu, NULL);
    sym_engine *e = NULL;
    st = open_engine(vk ? 0.007 : 0, vk ? 0 : ram_now(14e6), failing_pread, &fr, &e);
    CHECK_OK(st);
    if (st == SYM_OK) {
        int32_t ids[4] = {1, 2, 3, 4};
        float *lg = calloc((size_t)g_n_vocab, sizeof(float));
        sym_status fs = sym_forward(e, ids, 4, lg);
        CHECK(fs == SYM_ERR_IO, "failing reads gave %s (%s)", sym_status_name(fs),
              sym_last_error());
        CHECK(strstr(sym_last_error(), "pack") != NULL, "the error does not name the pack: %s",
              sym_last_error());
        free(lg);
        sym_engine_close(e);
    }

    /* a budget below the minimum working set */
    e = NULL;
    st = open_engine(vk ? 0.0005 : 0, vk ? 0 : 0.001, NULL, NULL, &e);
    CHECK(st == SYM_ERR_BUDGET, "a tiny budget gave %s (%s)", sym_status_name(st),
          sym_last_error());
    CHECK(strstr(sym_last_error(), "GB") != NULL, "the budget error gives no GB: %s",
          sym_last_error());
    sym_engine_close(e);

    if (moe && !vk) {
        test_weight_file(14e6);
        test_policies();
    }
    unlink(g_model);
    return 0;
}
