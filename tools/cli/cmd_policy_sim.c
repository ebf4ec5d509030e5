/* symbiote policy-sim: replays a pack-access trace (a file, or generated from a preset: dense or
 * a synthetic mixture of experts) under several replacement policies at several cache sizes,
 * and prints hit rates, bytes moved, the oracle's gap to MIN and its expert predictions. */
#include <json-c/json.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/alloc.h"
#include "cli.h"
#include "cpu/probe.h"
#include "model/writer.h"
#include "tier/policy_sim.h"

#define MAX_SIZES 32

static void help(FILE *out) {
    fprintf(
        out,
        "usage: symbiote policy-sim (--trace FILE | --dense PRESET | --moe PRESET) [options]\n\n"
        "Replays a pack-access trace through one cache (a tier, e.g. VRAM) under several\n"
        "replacement policies and reports, per cache size, each policy's hit rate and bytes\n"
        "moved and the vitality oracle's gap to MIN, the offline optimum over the trace's\n"
        "actual future. For a mixture of experts it also scores the oracle's per-layer\n"
        "expert predictions (precision / recall against the router's choices).\n"
        "Policies: lru, lfu, static (pin the most used packs, stream the rest), oracle,\n"
        "oracle-freq (the oracle without its MLP), min. See docs/TIERS.md.\n\n"
        "Trace:\n"
        "      --trace FILE          a .symtrace file\n"
        "      --dense PRESET        a dense preset's pack schedule, --tokens times\n"
        "      --moe PRESET          synthetic routing on PRESET's layers: each layer's MLP\n"
        "                            becomes --experts experts, --top-k per token (a preset\n"
        "                            with experts, e.g. mixtral-8x7b, keeps its own)\n"
        "                            Presets:");
    for (int i = 0; sym_make_model_preset_name(i); i++)
        fprintf(out, " %s", sym_make_model_preset_name(i));
    fprintf(out,
            "\n"
            "      --tokens N            tokens to generate (default: dense 4, moe 512)\n"
            "      --dtype TYPE          f32, f16 (default) or bf16\n"
            "      --max-pack-mb N       largest pack, 1..256 MiB (default: [memory] max_pack_mb;\n"
            "                            0, automatic, is 32 here)\n"
            "      --experts N           experts per layer (default 32)\n"
            "      --top-k K             experts per token and layer (default 4)\n"
            "      --expert-mb X         MiB of one expert (default: the layer's MLP / top-k)\n"
            "      --topics N            hidden topics of the simulated router (default 8)\n"
            "      --topic-stay P        probability a token keeps the previous topic (0.9)\n"
            "      --zipf S              skew of each topic's expert preference (1.2)\n"
            "      --global-zipf S       skew of a preference every topic shares (0.6)\n"
            "      --layer-drift P       how much consecutive layers' preferences differ (0.2)\n"
            "      --noise X             per-token routing noise (1.0)\n"
            "      --layer-corr R        correlation of that noise between layers (0.5)\n"
            "      --seed N              trace seed (default 1)\n"
            "      --write-trace FILE    also write the trace as a .symtrace file\n\n"
            "Simulation:\n"
            "      --cache-pct LIST      cache sizes in %% of the working set, comma-separated\n"
            "                            (default 10,20,30,40,50,60,70,80,90)\n"
            "      --policies LIST       comma-separated (default: all six)\n"
            "      --eviction-aggression A   the oracle's, 0..1 (default: [memory]\n"
            "                            eviction_aggression, 0.5)\n"
            "      --predict-count N     experts the oracle predicts per slot (default: top-k)\n"
            "      --oracle-cache DIR    load the oracle's MLP weights for this trace from DIR\n"
            "                            if saved there, and save them after training\n"
            "      --config FILE         INI configuration (default: $VK_SYMBIOTE_CONFIG)\n"
            "      --json                print one JSON object (with the machine's description)\n"
            "  -h, --help                this help\n");
}

static double gb(uint64_t b) { return (double)b / 1e9; }

static bool parse_list(const char *flag, const char *v, double lo, double hi, double *out, int *n) {
    char buf[512];
    snprintf(buf, sizeof buf, "%s", v);
    *n = 0;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        if (*n == MAX_SIZES) {
            cli_usage_error("%s: at most %d values", flag, MAX_SIZES);
            return false;
        }
        if (!cli_parse_double(flag, tok, lo, hi, &out[*n])) return false;
        (*n)++;
    }
    if (*n == 0) cli_usage_error("%s: no values", flag);
    return *n > 0;
}

typedef struct args {
    const char *trace_path, *dense, *moe, *write_trace, *oracle_cache;
    long long n_tokens;
    sym_dtype dtype;
    sym_trace_moe_options mo;
    double expert_mb;
    double pct[MAX_SIZES];
    int n_pct;
    bool use[SYM_POLICY_SIM_COUNT];
    long long predict_count;
    bool json;
} args;

static sym_status make_trace(const args *a, uint64_t max_pack_bytes, sym_trace **out) {
    if (a->trace_path) return sym_trace_read(a->trace_path, out);
    sym_pack_plan *plan = NULL;
    SYM_TRY(sym_trace_plan_preset(a->dense ? a->dense : a->moe, a->dtype, max_pack_bytes, &plan));
    sym_status st;
    if (a->dense) {
        st = sym_trace_dense(plan, (uint32_t)(a->n_tokens ? a->n_tokens : 4), out);
    } else {
        sym_trace_moe_options mo = a->mo;
        if (a->n_tokens) mo.n_tokens = (uint32_t)a->n_tokens;
        mo.expert_bytes = (uint64_t)(a->expert_mb * 1048576.0);
        st = sym_trace_moe(plan, &mo, out);
    }
    sym_pack_plan_destroy(plan);
    return st;
}

static json_object *trace_json(const args *a, const sym_trace *t, uint64_t ws,
                               uint64_t max_pack_bytes, const sym_policy_sim_result *r) {
    json_object *o = json_object_new_object();
    const char *dt = a->dtype == SYM_DT_F32 ? "f32" : a->dtype == SYM_DT_BF16 ? "bf16" : "f16";
    json_object_object_add(o, "source",
                           json_object_new_string(a->trace_path ? "file"
                                                  : a->dense    ? "dense"
                                                                : "moe"));
    if (a->trace_path)
        json_object_object_add(o, "file", json_object_new_string(a->trace_path));
    else {
        json_object_object_add(o, "preset", json_object_new_string(a->dense ? a->dense : a->moe));
        json_object_object_add(o, "dtype", json_object_new_string(dt));
        json_object_object_add(o, "max_pack_bytes", json_object_new_uint64(max_pack_bytes));
    }
    json_object_object_add(o, "n_tokens", json_object_new_int64(t->n_tokens));
    json_object_object_add(o, "n_records", json_object_new_uint64(t->n_records));
    json_object_object_add(o, "n_uses", json_object_new_uint64(r->n_uses));
    json_object_object_add(o, "n_gather", json_object_new_uint64(r->n_gather));
    json_object_object_add(o, "n_packs", json_object_new_int64(t->n_packs));
    json_object_object_add(o, "n_dense", json_object_new_int64(t->n_dense));
    json_object_object_add(o, "n_layer", json_object_new_int(t->n_layer));
    json_object_object_add(o, "n_expert", json_object_new_int64(t->n_expert));
    json_object_object_add(o, "top_k", json_object_new_int64(t->top_k));
    json_object_object_add(o, "working_set_bytes", json_object_new_uint64(ws));
    json_object_object_add(o, "bytes_used", json_object_new_uint64(r->bytes_used));
    if (a->moe) {
        json_object *m = json_object_new_object();
        json_object_object_add(m, "n_topics", json_object_new_int64(a->mo.n_topics));
        json_object_object_add(m, "topic_stay", json_object_new_double(a->mo.topic_stay));
        json_object_object_add(m, "zipf_s", json_object_new_double(a->mo.zipf_s));
        json_object_object_add(m, "global_zipf", json_object_new_double(a->mo.global_zipf));
        json_object_object_add(m, "layer_drift", json_object_new_double(a->mo.layer_drift));
        json_object_object_add(m, "noise", json_object_new_double(a->mo.noise));
        json_object_object_add(m, "layer_corr", json_object_new_double(a->mo.layer_corr));
        json_object_object_add(m, "seed", json_object_new_uint64(a->mo.seed));
        json_object_object_add(o, "router", m);
    }
    return o;
}

static int parse_args(args *a, cli_common *common, int argc, char **argv) {
    for (int i = 0; i < argc; i++) {
        const char *s = argv[i];
        if (!strcmp(s, "-h") || !strcmp(s, "--help")) {
            help(stdout);
            return 0;
        }
        if (!strcmp(s, "--json")) {
            a->json = true;
            continue;
        }
        static const char *const common_flags[] = {
            "--config",  "--max-pack-mb", "--eviction-aggression", "--log-level", "-v",
            "--verbose", "--log-file"};
        bool is_common = false;
        for (size_t k = 0; k < sizeof common_flags / sizeof *common_flags; k++)
            is_common |= !strcmp(s, common_flags[k]);
        if (is_common) {
            if (cli_common_parse(common, argc, argv, &i) < 0) return 2;
            i--; /* cli_common_parse moved past the flag */
            continue;
        }
        if (s[0] != '-') return cli_usage_error("policy-sim: unexpected argument '%s'", s);
        if (i + 1 >= argc) return cli_usage_error("%s needs a value", s);
        const char *v = argv[++i];
        long long x = 0;
        bool ok = true;
        sym_trace_moe_options *mo = &a->mo;
        if (!strcmp(s, "--trace"))
            a->trace_path = v;
        else if (!strcmp(s, "--dense"))
            a->dense = v;
        else if (!strcmp(s, "--moe"))
            a->moe = v;
        else if (!strcmp(s, "--write-trace"))
            a->write_trace = v;
        else if (!strcmp(s, "--oracle-cache"))
            a->oracle_cache = v;
        else if (!strcmp(s, "--tokens"))
            ok = cli_parse_int(s, v, 1, 1 << 24, &a->n_tokens);
        else if (!strcmp(s, "--experts"))
            ok = cli_parse_int(s, v, 1, 4096, &x), mo->n_expert = (uint32_t)x;
        else if (!strcmp(s, "--top-k"))
            ok = cli_parse_int(s, v, 1, 4096, &x), mo->top_k = (uint32_t)x;
        else if (!strcmp(s, "--topics"))
            ok = cli_parse_int(s, v, 1, 4096, &x), mo->n_topics = (uint32_t)x;
        else if (!strcmp(s, "--seed"))
            ok = cli_parse_int(s, v, 0, 1LL << 62, &x), mo->seed = (uint64_t)x;
        else if (!strcmp(s, "--expert-mb"))
            ok = cli_parse_double(s, v, 0.001, 1e6, &a->expert_mb);
        else if (!strcmp(s, "--topic-stay"))
            ok = cli_parse_double(s, v, 0, 1, &mo->topic_stay);
        else if (!strcmp(s, "--zipf"))
            ok = cli_parse_double(s, v, 0, 10, &mo->zipf_s);
        else if (!strcmp(s, "--global-zipf"))
            ok = cli_parse_double(s, v, 0, 10, &mo->global_zipf);
        else if (!strcmp(s, "--layer-drift"))
            ok = cli_parse_double(s, v, 0, 1, &mo->layer_drift);
        else if (!strcmp(s, "--noise"))
            ok = cli_parse_double(s, v, 0, 100, &mo->noise);
        else if (!strcmp(s, "--layer-corr"))
            ok = cli_parse_double(s, v, 0, 1, &mo->layer_corr);
        else if (!strcmp(s, "--predict-count"))
            ok = cli_parse_int(s, v, 1, 4096, &a->predict_count);
        else if (!strcmp(s, "--cache-pct"))
            ok = parse_list(s, v, 0.1, 100, a->pct, &a->n_pct);
        else if (!strcmp(s, "--dtype")) {
            if (!strcmp(v, "f32"))
                a->dtype = SYM_DT_F32;
            else if (!strcmp(v, "f16"))
                a->dtype = SYM_DT_F16;
            else if (!strcmp(v, "bf16"))
                a->dtype = SYM_DT_BF16;
            else
                return cli_usage_error("--dtype: '%s' is not f32, f16 or bf16", v);
        } else if (!strcmp(s, "--policies")) {
            char buf[256];
            snprintf(buf, sizeof buf, "%s", v);
            memset(a->use, 0, sizeof a->use);
            for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
                 tok = strtok_r(NULL, ",", &save)) {
                sym_policy_sim_kind k;
                if (sym_policy_sim_parse(tok, &k) != SYM_OK)
                    return cli_usage_error("%s", sym_last_error());
                a->use[k] = true;
            }
        } else
            return cli_usage_error("policy-sim: unknown option '%s'", s);
        if (!ok) return 2;
    }
    int n_src = !!a->trace_path + !!a->dense + !!a->moe;
    if (n_src != 1)
        return cli_usage_error("policy-sim: give exactly one of --trace, --dense, --moe");
    return -1;
}

int cmd_policy_sim(int argc, char **argv) {
    args a = {.dtype = SYM_DT_F16, .n_pct = 9};
    sym_trace_moe_options_init(&a.mo);
    for (int i = 0; i < 9; i++)
        a.pct[i] = 10.0 * (i + 1);
    for (int k = 0; k < SYM_POLICY_SIM_COUNT; k++)
        a.use[k] = true;
    cli_common common;
    cli_common_init(&common);
    int rc = parse_args(&a, &common, argc, argv);
    if (rc >= 0) return rc;
    if (cli_common_finish(&common) != 0) return 1;
    const sym_config *cfg = &common.cfg;
    uint64_t max_pack_bytes;
    sym_status st = sym_pack_limit_from_mb(cfg->max_pack_mb, &max_pack_bytes);
    if (st != SYM_OK) return cli_fail(st);

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    sym_trace *t = NULL;
    st = make_trace(&a, max_pack_bytes, &t);
    if (st != SYM_OK) return cli_fail(st);
    if (a.write_trace && (st = sym_trace_write(t, a.write_trace)) != SYM_OK) {
        sym_trace_destroy(t);
        return cli_fail(st);
    }
    sym_policy_sim_options so;
    sym_policy_sim_options_init(&so);
    so.eviction_aggression = cfg->eviction_aggression;

    /* --oracle-cache: the weights for this trace's key, if saved */
    char key[256];
    snprintf(key, sizeof key, "%s:%s:E%uk%u",
             a.trace_path ? "file"
             : a.dense    ? "dense"
                          : "moe",
             a.trace_path ? a.trace_path
             : a.dense    ? a.dense
                          : a.moe,
             t->n_expert, t->top_k);
    sym_oracle *keeper = NULL;
    if (a.oracle_cache && t->n_expert) {
        sym_oracle_layout l;
        uint32_t *skel;
        uint64_t *bytes;
        sym_oracle_options oo;
        sym_oracle_options_init(&oo);
        st = sym_policy_sim_layout(t, &l, &skel, &bytes);
        if (st == SYM_OK) {
            st = sym_oracle_create(&l, &oo, &keeper);
            sym_free(skel);
            sym_free(bytes);
        }
        if (st != SYM_OK) {
            sym_trace_destroy(t);
            return cli_fail(st);
        }
        sym_status ls = sym_oracle_load(keeper, a.oracle_cache, key);
        if (ls == SYM_OK)
            so.weights = sym_oracle_weights(keeper);
        else if (ls != SYM_ERR_IO)
            fprintf(stderr, "symbiote: warning: starting the oracle afresh: %s\n",
                    sym_last_error());
    }

    uint64_t ws = sym_trace_working_set(t);
    json_object *root = json_object_new_object(), *sizes = json_object_new_array();
    sym_policy_sim_result first = {0};
    bool have_first = false;
    if (!a.json) printf("%-6s %-14s", "cache", "");
    for (int k = 0; k < SYM_POLICY_SIM_COUNT && !a.json; k++)
        if (a.use[k]) printf(" %-19s", sym_policy_sim_name((sym_policy_sim_kind)k));
    if (!a.json) printf("\n%-6s %-14s", "% ws", "GB");
    for (int k = 0; k < SYM_POLICY_SIM_COUNT && !a.json; k++)
        if (a.use[k]) printf(" %-19s", "hit%   GB moved");
    if (!a.json) printf("   oracle vs min\n");
    for (int i = 0; i < a.n_pct; i++) {
        uint64_t cache = (uint64_t)((double)ws * a.pct[i] / 100.0);
        sym_policy_sim_result r[SYM_POLICY_SIM_COUNT];
        bool ran[SYM_POLICY_SIM_COUNT] = {0};
        json_object *js = json_object_new_object(), *jp = json_object_new_object();
        json_object_object_add(js, "cache_pct", json_object_new_double(a.pct[i]));
        json_object_object_add(js, "cache_bytes", json_object_new_uint64(cache));
        if (!a.json) printf("%5.1f%% %-14.3f", a.pct[i], gb(cache));
        bool skipped = false;
        for (int k = 0; k < SYM_POLICY_SIM_COUNT && !skipped; k++) {
            if (!a.use[k]) continue;
            st = sym_policy_sim_run(t, (sym_policy_sim_kind)k, cache, &so, &r[k]);
            if (st == SYM_ERR_BUDGET) {
                skipped = true;
                break;
            }
            if (st != SYM_OK) {
                json_object_put(js);
                json_object_put(jp);
                goto fail;
            }
            ran[k] = true;
            if (!have_first) first = r[k], have_first = true;
            double hit = r[k].n_uses ? (double)r[k].n_hits / (double)r[k].n_uses : 0;
            json_object *e = json_object_new_object();
            json_object_object_add(e, "hit_rate", json_object_new_double(hit));
            json_object_object_add(e, "bytes_moved", json_object_new_uint64(r[k].bytes_moved));
            json_object_object_add(
                e, "bytes_moved_per_token",
                json_object_new_double((double)r[k].bytes_moved / (t->n_tokens ? t->n_tokens : 1)));
            json_object_object_add(e, "evictions", json_object_new_uint64(r[k].n_evictions));
            json_object_object_add(jp, sym_policy_sim_name((sym_policy_sim_kind)k), e);
            if (!a.json) printf(" %5.1f%% %-12.3f", 100.0 * hit, gb(r[k].bytes_moved));
        }
        if (skipped) {
            if (!a.json) printf(" (smaller than the largest pack: skipped)\n");
            json_object_put(js);
            json_object_put(jp);
            continue;
        }
        json_object_object_add(js, "policies", jp);
        if (ran[SYM_POLICY_SIM_MIN] && r[SYM_POLICY_SIM_MIN].bytes_moved) {
            double m = (double)r[SYM_POLICY_SIM_MIN].bytes_moved;
            for (int k = 0; k < SYM_POLICY_SIM_MIN; k++) {
                if (!ran[k]) continue;
                char name[64];
                snprintf(name, sizeof name, "%s_gap_to_min",
                         sym_policy_sim_name((sym_policy_sim_kind)k));
                for (char *c = name; *c; c++)
                    if (*c == '-') *c = '_';
                json_object_object_add(js, name,
                                       json_object_new_double((double)r[k].bytes_moved / m - 1.0));
            }
            if (!a.json && ran[SYM_POLICY_SIM_ORACLE])
                printf("   %+.2f%%",
                       100.0 * ((double)r[SYM_POLICY_SIM_ORACLE].bytes_moved / m - 1.0));
        }
        if (!a.json) printf("\n");
        json_object_array_add(sizes, js);
    }

    json_object *jpred = NULL;
    if (t->n_expert) {
        sym_policy_sim_pred pr;
        st = sym_policy_sim_predict(t, &so, (uint32_t)a.predict_count, &pr);
        if (st != SYM_OK) goto fail;
        if (keeper) {
            sym_oracle_set_weights(keeper, &pr.weights);
            if (sym_oracle_save(keeper, a.oracle_cache, key) != SYM_OK)
                fprintf(stderr, "symbiote: warning: %s\n", sym_last_error());
        }
        jpred = json_object_new_object();
        json_object *jl = json_object_new_array();
        uint64_t slots = 0, hit = 0, hit_f = 0, hit_l = 0;
        if (!a.json)
            printf("\nexpert prediction, %u per slot, one layer ahead (router picks %u):\n"
                   "layer  precision  recall   freq-baseline  last-token\n",
                   pr.count, pr.top_k);
        for (int l = 0; l < pr.n_layer; l++) {
            const sym_policy_sim_layer_pred *lp = &pr.layers[l];
            double ns = lp->n_slots ? (double)lp->n_slots : 1;
            double prec = lp->n_hit / (ns * pr.count), rec = lp->n_hit / (ns * pr.top_k);
            double pf = lp->n_hit_freq / (ns * pr.count), pl = lp->n_hit_last / (ns * pr.top_k);
            slots += lp->n_slots, hit += lp->n_hit, hit_f += lp->n_hit_freq,
                hit_l += lp->n_hit_last;
            json_object *e = json_object_new_object();
            json_object_object_add(e, "layer", json_object_new_int(l));
            json_object_object_add(e, "precision", json_object_new_double(prec));
            json_object_object_add(e, "recall", json_object_new_double(rec));
            json_object_object_add(e, "precision_freq", json_object_new_double(pf));
            json_object_object_add(e, "precision_last_token", json_object_new_double(pl));
            json_object_array_add(jl, e);
            if (!a.json) printf("%5d  %8.3f  %7.3f   %12.3f  %10.3f\n", l, prec, rec, pf, pl);
        }
        double ns = slots ? (double)slots : 1;
        /* the log loss of always predicting top_k / n_expert */
        double q = (double)pr.top_k / (double)t->n_expert;
        double prior_loss = q < 1 ? -(q * log(q) + (1 - q) * log(1 - q)) : 0;
        json_object_object_add(jpred, "count", json_object_new_int64(pr.count));
        json_object_object_add(jpred, "top_k", json_object_new_int64(pr.top_k));
        json_object_object_add(jpred, "precision", json_object_new_double(hit / (ns * pr.count)));
        json_object_object_add(jpred, "recall", json_object_new_double(hit / (ns * pr.top_k)));
        json_object_object_add(jpred, "precision_freq",
                               json_object_new_double(hit_f / (ns * pr.count)));
        json_object_object_add(jpred, "precision_last_token",
                               json_object_new_double(hit_l / (ns * pr.top_k)));
        json_object_object_add(jpred, "log_loss_first_tenth",
                               json_object_new_double(pr.log_loss_first));
        json_object_object_add(jpred, "log_loss_last_tenth",
                               json_object_new_double(pr.log_loss_last));
        json_object_object_add(jpred, "log_loss_constant_prior",
                               json_object_new_double(prior_loss));
        json_object_object_add(jpred, "samples_trained", json_object_new_uint64(pr.n_trained));
        json_object_object_add(jpred, "layers", jl);
        if (!a.json)
            printf("  all  %8.3f  %7.3f   %12.3f  %10.3f\n"
                   "MLP log loss %.3f over the first tenth of the tokens, %.3f over the last "
                   "(always predicting top-k / experts: %.3f)\n",
                   hit / (ns * pr.count), hit / (ns * pr.top_k), hit_f / (ns * pr.count),
                   hit_l / (ns * pr.top_k), pr.log_loss_first, pr.log_loss_last, prior_loss);
        sym_policy_sim_pred_free(&pr);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
    if (a.json) {
        json_object_object_add(root, "command", json_object_new_string("policy-sim"));
        json_object_object_add(root, "machine", sym_probe_machine_json());
        json_object_object_add(root, "trace", trace_json(&a, t, ws, max_pack_bytes, &first));
        json_object_object_add(root, "eviction_aggression",
                               json_object_new_double(so.eviction_aggression));
        json_object_object_add(root, "oracle_weights",
                               json_object_new_string(so.weights ? "loaded" : "fresh"));
        json_object_object_add(root, "sizes", sizes);
        sizes = NULL;
        if (jpred) json_object_object_add(root, "prediction", jpred);
        jpred = NULL;
        json_object_object_add(root, "seconds", json_object_new_double(secs));
        printf("%s\n", json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY |
                                                                JSON_C_TO_STRING_NOSLASHESCAPE));
    } else {
        printf("\n%u tokens, %llu uses (+%llu gather, not replayed), %u packs, working set %.3f GB;"
               " %.1f s\n",
               t->n_tokens, (unsigned long long)first.n_uses, (unsigned long long)first.n_gather,
               t->n_packs, gb(ws), secs);
    }
    json_object_put(jpred);
    json_object_put(sizes);
    json_object_put(root);
    sym_oracle_destroy(keeper);
    sym_trace_destroy(t);
    return 0;
fail:
    json_object_put(sizes);
    json_object_put(root);
    sym_oracle_destroy(keeper);
    sym_trace_destroy(t);
    return cli_fail(st);
}
