/* symbiote bench: prefill and decode speed of a model on the chosen backend, min/median/max over
 * repetitions, with peak memory, backend and device; --json for machines. With --roofline the
 * run also measures the ceilings in the same process: on the CPU backend this machine's
 * memory-read bandwidth and f32 FMA peak, on the Vulkan backend the device's read bandwidth and
 * f16 matrix rate with the backend's own kernels (vk/probe.h); it reports the tokens/s they
 * imply (bytes read per decoded token / bandwidth; 2 FLOP per weight per prompt token / rate)
 * and the ratios achieved. --profile adds, after the timed repetitions, one profiled prefill
 * and decode with the per-kernel GPU time table (Vulkan). */
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "cpu/probe.h"
#include "infer/engine.h"
#include "model/model.h"
#include "pack/store.h"
#ifdef SYM_HAVE_VULKAN
#include "vk/probe.h"
#endif

static void help(FILE *out) {
    fprintf(out,
            "usage: symbiote bench -m MODEL [-p N] [-n N] [-r N] [--json] [--roofline]\n"
            "  -p, --n-prompt N   prompt tokens for the prefill measurement (default 512)\n"
            "  -n, --n-gen N      tokens decoded one at a time, each reading back the\n"
            "                     greedy choice (default 128)\n"
            "  -r, --reps N       repetitions (default 3); min/median/max are reported\n"
            "  -b, --batch N      prefill chunk (default: the prompt length)\n"
            "      --json         print JSON on stdout instead of a table\n"
            "      --roofline     also measure the ceilings (CPU: RAM bandwidth and FMA peak;\n"
            "                     Vulkan: device read bandwidth and f16 matrix rate) and\n"
            "                     report the tokens/s they allow and the ratios achieved\n"
            "      --profile      after the timed runs, one profiled prefill and decode:\n"
            "                     per-kernel GPU time tables on stderr (Vulkan)\n\n");
    cli_common_help(out);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Host-side timing of the Vulkan backend's batches (zeros on other backends). */
typedef struct vk_stats {
    double record_ms, wait_ms;
    uint64_t n_dispatches;
} vk_stats;

static void get_stats(sym_engine *e, vk_stats *s) {
    memset(s, 0, sizeof *s);
#ifdef SYM_HAVE_VULKAN
    sym_backend *b = sym_engine_backend(e);
    if (!sym_vk_backend_is(b)) return;
    sym_vk_cmd_stats cs;
    sym_vk_backend_stats(b, &cs);
    s->record_ms = cs.record_ms;
    s->wait_ms = cs.wait_ms;
    s->n_dispatches = cs.n_dispatches;
#else
    (void)e;
#endif
}

static json_object *stats_json(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "min", json_object_new_double(v[0]));
    json_object_object_add(o, "median", json_object_new_double(v[n / 2]));
    json_object_object_add(o, "max", json_object_new_double(v[n - 1]));
    return o;
}

int cmd_bench(int argc, char **argv) {
    cli_common c;
    cli_common_init(&c);
    long long n_prompt = 512, n_gen = 128, reps = 3, batch = 0;
    bool json = false, roofline = false;
    for (int i = 0; i < argc;) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            help(stdout);
            return 0;
        }
        int r = cli_common_parse(&c, argc, argv, &i);
        if (r < 0) return 2;
        if (r > 0) continue;
        if (!strcmp(a, "--json")) { json = true; i++; continue; }
        if (!strcmp(a, "--roofline")) { roofline = true; i++; continue; }
        if (i + 1 >= argc) return cli_usage_error("bench: unknown option or missing value '%s'", a);
        long long *dst = NULL, lo = 1;
        if (!strcmp(a, "-p") || !strcmp(a, "--n-prompt")) dst = &n_prompt, lo = 0;
        else if (!strcmp(a, "-n") || !strcmp(a, "--n-gen")) dst = &n_gen, lo = 0;
        else if (!strcmp(a, "-r") || !strcmp(a, "--reps")) dst = &reps;
        else if (!strcmp(a, "-b") || !strcmp(a, "--batch")) dst = &batch;
        else return cli_usage_error("bench: unknown option '%s'", a);
        if (!cli_parse_int(a, argv[i + 1], lo, 1 << 20, dst)) return 2;
        i += 2;
    }
    if (cli_common_finish(&c)) return 1;
    if (!c.cfg.model_path[0]) return cli_usage_error("bench: -m MODEL is required");
    if (n_prompt + n_gen < 1) return cli_usage_error("bench: nothing to measure (-p 0 -n 0)");

    bool profile = c.cfg.enable_profiling; /* timed runs go without timestamps */
#ifndef SYM_HAVE_VULKAN
    (void)profile;
#endif
    c.cfg.enable_profiling = false;
    sym_engine_params ep;
    sym_engine_params_init(&ep);
    cli_engine_params(&c, &ep);
    ep.n_ctx = (int)(n_prompt + n_gen + 1);
    ep.n_batch = batch > 0 ? (int)batch : (n_prompt > 0 ? (int)n_prompt : 1);
    sym_engine *e = NULL;
    sym_status st = sym_engine_open_params(&ep, &e);
    if (st != SYM_OK) return cli_fail(st);

    int n_vocab = sym_n_vocab(e);
    int32_t *ids = malloc((size_t)(n_prompt + n_gen + 1) * sizeof *ids);
    double *pp = calloc((size_t)reps, sizeof *pp), *tg = calloc((size_t)reps, sizeof *tg);
    double *rec = calloc((size_t)reps, sizeof *rec), *wait = calloc((size_t)reps, sizeof *wait);
    double *disp = calloc((size_t)reps, sizeof *disp);
    if (!ids || !pp || !tg || !rec || !wait || !disp) {
        free(ids), free(pp), free(tg), free(rec), free(wait), free(disp);
        sym_engine_close(e);
        fprintf(stderr, "symbiote: error: out of memory\n");
        return 1;
    }
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (long long i = 0; i < n_prompt + n_gen + 1; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        ids[i] = (int32_t)(x % (uint64_t)n_vocab);
    }
    /* Every evaluation reads back the greedy choice, as `run --temp 0` does (on a GPU the
     * argmax runs there: 4 bytes come back, not the logits); the ids fed are fixed random ones,
     * so every repetition does the same work. */
    int32_t greedy = 0;
    /* one untimed warm-up pass, prefill and a few decoded tokens (first-touch page faults, GPU
     * clocks, pipeline creation) */
    sym_reset(e);
    st = sym_forward_argmax(e, ids, (size_t)(n_prompt > 0 ? n_prompt : 1), &greedy);
    for (long long i = 0; st == SYM_OK && i < (n_gen < 16 ? n_gen : 16); i++)
        st = sym_forward_argmax(e, &ids[n_prompt + 1 + i], 1, &greedy);
    sym_metrics sm[3]; /* streaming counters before the prefill, before and after the decode */
    for (long long r = 0; st == SYM_OK && r < reps; r++) {
        sym_reset(e);
        sym_metrics_get(e, &sm[0]);
        double t0 = cli_now_s();
        if (n_prompt > 0) st = sym_forward_argmax(e, ids, (size_t)n_prompt, &greedy);
        double t1 = cli_now_s();
        if (n_prompt == 0 && st == SYM_OK)
            st = sym_forward_argmax(e, ids, 1, &greedy), t1 = cli_now_s();
        vk_stats s0, s1;
        get_stats(e, &s0);
        sym_metrics_get(e, &sm[1]);
        for (long long i = 0; st == SYM_OK && i < n_gen; i++)
            st = sym_forward_argmax(e, &ids[n_prompt + 1 + i], 1, &greedy);
        double t2 = cli_now_s();
        sym_metrics_get(e, &sm[2]);
        get_stats(e, &s1);
        if (n_gen > 0) {
            rec[r] = (s1.record_ms - s0.record_ms) / (double)n_gen;
            wait[r] = (s1.wait_ms - s0.wait_ms) / (double)n_gen;
            disp[r] = (double)(s1.n_dispatches - s0.n_dispatches) / (double)n_gen;
        }
        pp[r] = n_prompt > 0 ? (double)n_prompt / (t1 - t0) : 0;
        tg[r] = n_gen > 0 ? (double)n_gen / (t2 - t1) : 0;
        if (!json)
            fprintf(stderr, "rep %lld: prefill %.1f tok/s, decode %.2f tok/s\n", r + 1, pp[r],
                    tg[r]);
    }
    if (st != SYM_OK) {
        int rc = cli_fail(st);
        free(ids), free(pp), free(tg), free(rec), free(wait), free(disp);
        sym_engine_close(e);
        return rc;
    }
    sym_metrics m;
    sym_metrics_get(e, &m);

    sym_model *model = NULL;
    uint64_t weight_bytes = 0, n_params = 0, token_bytes = 0, flop_params = 0;
    json_object *store_j = NULL;
    int n_layer = 0;
    /* lazily: only the tables are needed (a .sympack's packs stay on disk) */
    if (sym_model_open_lazy(c.cfg.model_path, &model) == SYM_OK) {
        n_layer = sym_model_hparams(model)->n_layer;
        weight_bytes = sym_model_weight_bytes(model);
        n_params = sym_model_n_params(model);
        /* a decoded token reads every weight once except the embedding table (one row) unless
         * the output projection shares it; prefill multiplies by every weight but that table */
        const sym_weight *te = &sym_model_weights_of(model)->token_embd;
        uint64_t te_params = (uint64_t)te->n_rows * (uint64_t)te->n_cols;
        bool tied = sym_model_hparams(model)->tied_embeddings;
        token_bytes = weight_bytes - (tied ? 0 : te->n_bytes - te->n_bytes / (uint64_t)te->n_rows);
        /* a prompt computes logits once, for its last position: the output projection counts
         * 1 / n_prompt per prompt token */
        const sym_weight *ow = &sym_model_weights_of(model)->output;
        uint64_t out_params = (uint64_t)ow->n_rows * (uint64_t)ow->n_cols;
        flop_params = n_params - (tied ? 0 : te_params) - out_params +
                      (n_prompt > 0 ? out_params / (uint64_t)n_prompt : out_params);
        const sym_store *store = sym_model_store(model);
        if (store) { /* what the disk tier reads: the packs as stored */
            store_j = json_object_new_object();
            uint64_t raw = sym_store_raw_bytes(store), stored = sym_store_stored_bytes(store);
            json_object_object_add(store_j, "n_packs",
                                   json_object_new_int64(sym_store_plan(store)->n_packs));
            json_object_object_add(store_j, "n_compressed",
                                   json_object_new_int64(sym_store_n_compressed(store)));
            uint64_t limit = sym_store_plan(store)->max_pack_bytes;
            json_object_object_add(store_j, "max_pack_bytes",
                                   json_object_new_int64((int64_t)limit));
            json_object_object_add(store_j, "raw_bytes", json_object_new_int64((int64_t)raw));
            json_object_object_add(store_j, "stored_bytes", json_object_new_int64((int64_t)stored));
            double ratio = stored ? (double)raw / (double)stored : 0;
            json_object_object_add(store_j, "ratio", json_object_new_double(ratio));
        }
        sym_model_close(model);
    }

    json_object *o = json_object_new_object();
    json_object_object_add(o, "model", json_object_new_string(c.cfg.model_path));
    json_object_object_add(o, "backend", json_object_new_string(sym_engine_backend_name(e)));
    json_object_object_add(o, "device", json_object_new_string(sym_engine_device_name(e)));
    json_object_object_add(o, "machine", sym_probe_machine_json());
    if (store_j) json_object_object_add(o, "sympack", store_j);
    json_object_object_add(o, "n_params", json_object_new_int64((int64_t)n_params));
    json_object_object_add(o, "weight_bytes", json_object_new_int64((int64_t)weight_bytes));
    json_object_object_add(o, "bytes_read_per_token", json_object_new_int64((int64_t)token_bytes));
    json_object_object_add(o, "prefill_flop_per_token",
                           json_object_new_double(2.0 * (double)flop_params));
    json_object_object_add(o, "n_prompt", json_object_new_int64(n_prompt));
    json_object_object_add(o, "n_gen", json_object_new_int64(n_gen));
    json_object_object_add(o, "reps", json_object_new_int64(reps));
    /* what each evaluation reads back: the greedy choice (on the GPU where it has the op) */
    json_object_object_add(o, "readback", json_object_new_string("argmax"));
    double pp_best = 0, tg_best = 0;
    for (long long r = 0; r < reps; r++) {
        if (pp[r] > pp_best) pp_best = pp[r];
        if (tg[r] > tg_best) tg_best = tg[r];
    }
    if (n_prompt > 0) json_object_object_add(o, "prefill_tok_s", stats_json(pp, (int)reps));
    if (n_gen > 0) json_object_object_add(o, "decode_tok_s", stats_json(tg, (int)reps));
    if (n_gen > 0 && disp[0] > 0) { /* Vulkan: where a decoded token's wall time goes */
        json_object *dt = json_object_new_object();
        json_object_object_add(dt, "dispatches", json_object_new_double(disp[0]));
        json_object_object_add(dt, "host_record_ms", stats_json(rec, (int)reps));
        json_object_object_add(dt, "host_wait_ms", stats_json(wait, (int)reps));
        json_object_object_add(o, "decode_per_token", dt);
    }
    json_object_object_add(o, "decode_bytes_per_token", json_object_new_int64((int64_t)token_bytes));
    if (m.streamed) { /* the last repetition's traffic: the steady state */
        json_object *sj = json_object_new_object();
        double g = n_gen > 0 ? (double)n_gen : 1;
        double up_tok = (double)(sm[2].bytes_uploaded - sm[1].bytes_uploaded) / g;
        double disk_tok = (double)(sm[2].bytes_read_disk - sm[1].bytes_read_disk) / g;
        json_object_object_add(sj, "link_gb_s", json_object_new_double(m.link_gb_s));
        json_object_object_add(sj, "vram_tier_bytes", json_object_new_int64((int64_t)m.vram_tier_bytes));
        json_object_object_add(sj, "ram_tier_bytes", json_object_new_int64((int64_t)m.ram_tier_bytes));
        json_object_object_add(sj, "predicted_decode_tok_s", json_object_new_double(m.predicted_tok_s));
        json_object_object_add(sj, "decode_bytes_uploaded_per_token", json_object_new_double(up_tok));
        json_object_object_add(sj, "decode_bytes_read_disk_per_token", json_object_new_double(disk_tok));
        json_object_object_add(sj, "split", json_object_new_boolean(m.split));
        json_object_object_add(sj, "eviction_policy",
                               json_object_new_string(m.eviction_policy ? m.eviction_policy : "?"));
        json_object_object_add(sj, "decode_expert_bytes_moved_per_token",
                               json_object_new_double((double)(sm[2].expert_bytes_moved -
                                                               sm[1].expert_bytes_moved) / g));
        int64_t eh = (int64_t)(sm[2].expert_hits - sm[1].expert_hits);
        int64_t em = (int64_t)(sm[2].expert_misses - sm[1].expert_misses);
        json_object_object_add(sj, "decode_expert_pack_hits", json_object_new_int64(eh));
        json_object_object_add(sj, "decode_expert_pack_misses", json_object_new_int64(em));
        if (m.oracle_samples) {
            json_object_object_add(sj, "oracle_samples_learned",
                                   json_object_new_int64((int64_t)m.oracle_samples));
            json_object_object_add(sj, "oracle_log_loss",
                                   json_object_new_double(m.oracle_log_loss));
        }
        json_object_object_add(sj, "decode_bytes_cpu_per_token",
                               json_object_new_double((double)(sm[2].bytes_cpu - sm[1].bytes_cpu) / g));
        if (m.split) {
            json_object_object_add(sj, "decode_cpu_ms_per_token",
                                   json_object_new_double((sm[2].cpu_ms - sm[1].cpu_ms) / g));
            json_object_object_add(sj, "decode_readback_ms_per_token",
                                   json_object_new_double((sm[2].readback_ms - sm[1].readback_ms) / g));
            json_object_object_add(sj, "decode_readbacks_per_token",
                                   json_object_new_double((double)(sm[2].readbacks - sm[1].readbacks) / g));
            json_object_object_add(sj, "cpu_gb_s", json_object_new_double(m.cpu_gb_s));
            json_object_object_add(sj, "cpu_gb_s_loaded", json_object_new_double(m.cpu_gb_s_loaded));
            json_object_object_add(sj, "link_gb_s_loaded", json_object_new_double(m.link_gb_s_loaded));
        }
        json_object_object_add(sj, "decode_stall_ms_per_token",
                               json_object_new_double((sm[2].stall_ms - sm[1].stall_ms) / g));
        json_object_object_add(sj, "decode_stall_disk_ms_per_token",
                               json_object_new_double((sm[2].stall_disk_ms - sm[1].stall_disk_ms) / g));
        json_object_object_add(sj, "decode_upload_ms_per_token",
                               json_object_new_double((sm[2].upload_ms - sm[1].upload_ms) / g));
        json_object_object_add(sj, "decode_disk_ms_per_token",
                               json_object_new_double((sm[2].disk_ms - sm[1].disk_ms) / g));
        json_object_object_add(sj, "decode_bytes_decompressed_per_token",
                               json_object_new_double((double)(sm[2].bytes_decompressed -
                                                               sm[1].bytes_decompressed) / g));
        json_object_object_add(
            sj, "decode_decompress_ms_per_token",
            json_object_new_double((sm[2].decompress_ms - sm[1].decompress_ms) / g));
        json_object_object_add(sj, "prefill_bytes_decompressed",
                               json_object_new_int64((int64_t)(sm[1].bytes_decompressed -
                                                               sm[0].bytes_decompressed)));
        json_object_object_add(sj, "prefill_bytes_uploaded",
                               json_object_new_int64((int64_t)(sm[1].bytes_uploaded - sm[0].bytes_uploaded)));
        json_object_object_add(sj, "prefill_bytes_read_disk",
                               json_object_new_int64((int64_t)(sm[1].bytes_read_disk - sm[0].bytes_read_disk)));
        json_object_object_add(sj, "prefill_stall_ms", json_object_new_double(sm[1].stall_ms - sm[0].stall_ms));
        if (m.link_gb_s > 0 && up_tok > 0) {
            /* the upload-only ceiling from the link rate measured in this run */
            double ceil = m.link_gb_s * 1e9 / up_tok;
            json_object_object_add(sj, "upload_ceiling_tok_s", json_object_new_double(ceil));
            json_object_object_add(sj, "upload_ceiling_ratio",
                                   json_object_new_double(tg[reps - 1] / ceil));
        }
        if (disk_tok > 0 && n_gen > 0)
            json_object_object_add(sj, "decode_disk_gb_s",
                                   json_object_new_double(disk_tok * tg[reps - 1] / 1e9));
        uint64_t p_right = 0, p_guess = 0, p_used = 0;
        json_object *pl = json_object_new_array();
        for (int l = 0; l < n_layer; l++) { /* expert prediction, per layer (mixtures of experts) */
            uint64_t r = 0, gu = 0, u = 0;
            sym_engine_prediction_stats(e, l, &r, &gu, &u);
            if (!gu && !u) continue;
            json_object *lj = json_object_new_object();
            json_object_object_add(lj, "layer", json_object_new_int(l));
            json_object_object_add(lj, "precision", json_object_new_double(gu ? (double)r / (double)gu : 0));
            json_object_object_add(lj, "recall", json_object_new_double(u ? (double)r / (double)u : 0));
            json_object_array_add(pl, lj);
            p_right += r, p_guess += gu, p_used += u;
        }
        if (p_guess || p_used) {
            json_object *pj = json_object_new_object();
            json_object_object_add(pj, "precision", json_object_new_double(
                                                        p_guess ? (double)p_right / (double)p_guess : 0));
            json_object_object_add(pj, "recall", json_object_new_double(
                                                     p_used ? (double)p_right / (double)p_used : 0));
            json_object_object_add(pj, "per_layer", pl);
            json_object_object_add(sj, "expert_prediction", pj);
        } else {
            json_object_put(pl);
        }
        json_object_object_add(o, "streaming", sj);
    }
    json_object_object_add(o, "peak_ram_bytes", json_object_new_int64((int64_t)m.peak_ram_bytes));
    json_object_object_add(o, "peak_vram_bytes",
                           json_object_new_int64((int64_t)m.peak_vram_bytes));
    bool on_vk = !strcmp(sym_engine_backend_name(e), "vulkan");
    if (roofline && on_vk) {
#ifdef SYM_HAVE_VULKAN
        sym_vk_probe pr;
        st = sym_vk_probe_device(sym_engine_backend(e), &pr);
        if (st != SYM_OK) {
            cli_fail(st);
        } else {
            json_object *rl = json_object_new_object();
            json_object_object_add(rl, "measured_on", json_object_new_string(sym_engine_device_name(e)));
            json_object_object_add(rl, "read_bandwidth_gb_s", json_object_new_double(pr.read_gb_s));
            json_object_object_add(rl, "read_bandwidth_min_gb_s", json_object_new_double(pr.read_min_gb_s));
            json_object_object_add(rl, "read_bandwidth_max_gb_s", json_object_new_double(pr.read_max_gb_s));
            json_object_object_add(rl, "read_bytes", json_object_new_int64((int64_t)pr.read_bytes));
            json_object_object_add(rl, "f16_matrix_tflop_s", json_object_new_double(pr.f16_tflop_s));
            json_object_object_add(rl, "f16_matrix_max_tflop_s", json_object_new_double(pr.f16_max_tflop_s));
            char shape[128];
            snprintf(shape, sizeof shape, "%d x %d -> %d (f32 activations%s x f16, %s)",
                     pr.gemm_m, pr.gemm_k, pr.gemm_n,
                     !pr.coopmat ? ""
                     : sym_vk_backend_f32_gemm_act(sym_engine_backend(e)) ? " as f16 hi + lo"
                                                                          : " rounded to f16",
                     pr.coopmat ? "cooperative matrix" : "shared memory");
            json_object_object_add(rl, "f16_matrix_shape", json_object_new_string(shape));
            if (token_bytes && flop_params) {
                double ceil_tg = pr.read_gb_s * 1e9 / (double)token_bytes;
                double ceil_pp = pr.f16_tflop_s * 1e12 / (2.0 * (double)flop_params);
                json_object_object_add(rl, "decode_ceiling_tok_s", json_object_new_double(ceil_tg));
                json_object_object_add(rl, "decode_ratio", json_object_new_double(tg_best / ceil_tg));
                json_object_object_add(rl, "prefill_ceiling_tok_s", json_object_new_double(ceil_pp));
                json_object_object_add(rl, "prefill_ratio", json_object_new_double(pp_best / ceil_pp));
            }
            json_object_object_add(o, "roofline", rl);
        }
        st = SYM_OK;
#endif
    } else if (roofline) {
        int threads = c.cfg.n_threads > 0 ? c.cfg.n_threads : 0;
        double bw = sym_probe_read_bandwidth(threads), peak = sym_probe_fma_peak(threads);
        json_object *rl = json_object_new_object();
        json_object_object_add(rl, "read_bandwidth_gb_s", json_object_new_double(bw / 1e9));
        json_object_object_add(rl, "f32_fma_peak_gflop_s", json_object_new_double(peak / 1e9));
        if (token_bytes && flop_params) {
            double ceil_tg = bw / (double)token_bytes, ceil_pp = peak / (2.0 * (double)flop_params);
            json_object_object_add(rl, "decode_ceiling_tok_s", json_object_new_double(ceil_tg));
            json_object_object_add(rl, "decode_ratio", json_object_new_double(tg_best / ceil_tg));
            json_object_object_add(rl, "prefill_ceiling_tok_s", json_object_new_double(ceil_pp));
            json_object_object_add(rl, "prefill_ratio", json_object_new_double(pp_best / ceil_pp));
        }
        json_object_object_add(o, "roofline", rl);
    }
#ifdef SYM_HAVE_VULKAN
    if (profile && on_vk) { /* one profiled prefill, then the decode, each its own table */
        sym_backend *b = sym_engine_backend(e);
        json_object *pj = json_object_new_object();
        st = sym_vk_backend_set_profiling(b, 1);
        if (st == SYM_OK && n_prompt > 0) {
            sym_reset(e);
            sym_vk_backend_profile_reset(b);
            st = sym_forward_argmax(e, ids, (size_t)n_prompt, &greedy);
            if (st == SYM_OK) {
                cli_print_profile(stderr, e, "prefill, ms per prompt token", (double)n_prompt);
                json_object_object_add(pj, "prefill", cli_profile_json(e, (double)n_prompt));
            }
        }
        if (st == SYM_OK && n_gen > 0) {
            if (n_prompt == 0) {
                sym_reset(e);
                st = sym_forward_argmax(e, ids, 1, &greedy);
            }
            sym_vk_backend_profile_reset(b);
            for (long long i = 0; st == SYM_OK && i < n_gen; i++)
                st = sym_forward_argmax(e, &ids[n_prompt + 1 + i], 1, &greedy);
            if (st == SYM_OK) {
                cli_print_profile(stderr, e, "decode, ms per token", (double)n_gen);
                json_object_object_add(pj, "decode", cli_profile_json(e, (double)n_gen));
            }
        }
        if (st == SYM_OK) st = sym_vk_backend_set_profiling(b, 0);
        json_object_object_add(o, "profile", pj);
        if (st != SYM_OK) cli_fail(st);
        st = SYM_OK;
    }
#endif
    if (json) {
        puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY));
    } else {
        printf("%s on %s (%s)\n", c.cfg.model_path, sym_engine_device_name(e),
               sym_engine_backend_name(e));
        json_object *v;
        if (json_object_object_get_ex(o, "prefill_tok_s", &v))
            printf("prefill %lld tokens: %s tok/s\n", n_prompt, json_object_to_json_string(v));
        if (json_object_object_get_ex(o, "decode_tok_s", &v))
            printf("decode  %lld tokens: %s tok/s\n", n_gen, json_object_to_json_string(v));
        if (json_object_object_get_ex(o, "decode_per_token", &v))
            printf("decode per token: %s\n", json_object_to_json_string(v));
        if (json_object_object_get_ex(o, "roofline", &v))
            printf("roofline: %s\n", json_object_to_json_string(v));
        if (json_object_object_get_ex(o, "streaming", &v))
            printf("streaming: %s\n", json_object_to_json_string(v));
        printf("peak RAM %.1f MiB, peak VRAM %.1f MiB\n", m.peak_ram_bytes / 1048576.0,
               m.peak_vram_bytes / 1048576.0);
    }
    json_object_put(o);
    free(ids), free(pp), free(tg), free(rec), free(wait), free(disp);
    sym_engine_close(e);
    return 0;
}
