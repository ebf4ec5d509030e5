/* bench_cpu — the CPU backend against this machine's ceilings, as JSON on stdout.
 *
 * Measured in one run, best of several repetitions each (the machine may be shared):
 *   memory read bandwidth   all threads stream a buffer far larger than the LLC (the weights)
 *   f32 FMA peak            independent FMA chains in registers on all threads
 *   decode                  matmul of one token through every weight matrix of a
 *                           tinyllama-1.1b-shaped model (f16, then the same bytes read as bf16)
 *                           -> tokens/s, GB/s, ratio to the bandwidth ceiling
 *   prefill                 the same matrices with 64-token activations -> tokens/s, GFLOP/s,
 *                           ratio to the FMA peak (2 x n_params FLOP per token)
 * Usage: bench_cpu [--threads N] [--isa generic|avx2|avx512] [--reps N] [--layers N]
 *                  [--only decode|prefill]
 * Progress goes to stderr.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>


#include "base/threadpool.h"
#include "cpu/ops.h"
#include "cpu/probe.h"

/* tinyllama-1.1b */
#define N_EMBD      2048
#define N_LAYER     22
#define N_HEAD      32
#define N_HEAD_KV   4
#define HEAD_DIM    64
#define N_FF        5632
#define N_VOCAB     32000
#define PREFILL_TOK 64

typedef struct mat {
    int64_t n_out, n_in;
    size_t offset; /* elements into the arena */
} mat;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- arena fill: bit patterns that are finite normal numbers as f16 and as bf16 ------------ */

typedef struct fill_job {
    uint16_t *p;
    size_t n, per_task;
} fill_job;

static void fill_task(void *ctx, int64_t task, int thread_idx) {
    (void)thread_idx;
    const fill_job *j = ctx;
    size_t i0 = (size_t)task * j->per_task, i1 = i0 + j->per_task < j->n ? i0 + j->per_task : j->n;
    uint64_t s = 0x9e3779b97f4a7c15ull * (uint64_t)(task + 1);
    for (size_t i = i0; i < i1; i += 4) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        for (size_t k = 0; k < 4 && i + k < i1; k++) {
            uint16_t r = (uint16_t)(s >> (16 * k));
            /* sign | 0111 | 11 random bits: f16 exponent 14..15, bf16 exponent 0x70..0x7f */
            j->p[i + k] = (uint16_t)((r & 0x87ffu) | 0x3800u);
        }
    }
}

/* ---- the model ----------------------------------------------------------------------------- */

typedef struct model {
    mat m[N_LAYER * 7 + 1];
    int n_mat;
    size_t n_elems;
} model;

static void model_init(model *md, int n_layer) {
    md->n_mat = 0;
    md->n_elems = 0;
    const int64_t shapes[7][2] = {{N_EMBD, N_EMBD},
                                  {N_HEAD_KV * HEAD_DIM, N_EMBD},
                                  {N_HEAD_KV * HEAD_DIM, N_EMBD},
                                  {N_EMBD, N_EMBD},
                                  {N_FF, N_EMBD},
                                  {N_FF, N_EMBD},
                                  {N_EMBD, N_FF}};
    for (int l = 0; l < n_layer; l++)
        for (int k = 0; k < 7; k++) {
            md->m[md->n_mat++] = (mat){shapes[k][0], shapes[k][1], md->n_elems};
            md->n_elems += (size_t)(shapes[k][0] * shapes[k][1]);
        }
    md->m[md->n_mat++] = (mat){N_VOCAB, N_EMBD, md->n_elems};
    md->n_elems += (size_t)N_VOCAB * N_EMBD;
}

/* One forward pass of matmuls over all matrices with n_tok tokens; returns seconds. */
static double run_pass(sym_backend *b, const model *md, uint16_t *arena, sym_dtype wt, int n_tok,
                       float *xin, float *xff, float *out) {
    sym_tensor x = {.type = SYM_DT_F32, .n_cols = N_EMBD, .n_rows = n_tok, .data = xin};
    sym_tensor xf = {.type = SYM_DT_F32, .n_cols = N_FF, .n_rows = n_tok, .data = xff};
    double t0 = now_s();
    for (int i = 0; i < md->n_mat; i++) {
        const mat *m = &md->m[i];
        sym_tensor w = {
            .type = wt, .n_cols = m->n_in, .n_rows = m->n_out, .data = arena + m->offset};
        sym_tensor o = {.type = SYM_DT_F32, .n_cols = m->n_out, .n_rows = n_tok, .data = out};
        b->ops->matmul(b, &o, m->n_in == N_FF ? &xf : &x, &w, NULL);
    }
    double t = now_s() - t0;
    if (b->ops->sync(b) != SYM_OK) {
        fprintf(stderr, "bench_cpu: matmul failed: %s\n", sym_last_error());
        exit(1);
    }
    return t;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* median of column c of an (n, stride) table */
static double median_col(const double *t, int n, int stride, int c) {
    double v[64];
    if (n > 64) n = 64;
    for (int i = 0; i < n; i++)
        v[i] = t[i * stride + c];
    qsort(v, (size_t)n, sizeof v[0], cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static void cpu_model(char *buf, size_t cap) {
    snprintf(buf, cap, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) == 0) {
            char *c = strchr(line, ':');
            if (c) {
                c += 2;
                c[strcspn(c, "\n")] = 0;
                snprintf(buf, cap, "%s", c);
            }
            break;
        }
    }
    fclose(f);
}

int main(int argc, char **argv) {
    int n_threads = 0, reps = 5, n_layer = N_LAYER, do_decode = 1, do_prefill = 1;
    sym_cpu_isa isa = SYM_CPU_ISA_AUTO;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            n_threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--layers") && i + 1 < argc)
            n_layer = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--only") && i + 1 < argc) {
            const char *n = argv[++i];
            do_decode = !strcmp(n, "decode");
            do_prefill = !strcmp(n, "prefill");
        } else if (!strcmp(argv[i], "--isa") && i + 1 < argc) {
            const char *n = argv[++i];
            isa = !strcmp(n, "generic")  ? SYM_CPU_ISA_GENERIC
                  : !strcmp(n, "avx2")   ? SYM_CPU_ISA_AVX2
                  : !strcmp(n, "avx512") ? SYM_CPU_ISA_AVX512
                                         : SYM_CPU_ISA_COUNT;
        } else {
            fprintf(stderr, "usage: bench_cpu [--threads N] [--isa generic|avx2|avx512] "
                            "[--reps N] [--layers N] [--only decode|prefill]\n");
            return 2;
        }
    }
    if (n_layer < 1 || n_layer > N_LAYER || reps < 1 || reps > 64) return 2;
    sym_backend *b = NULL;
    if (sym_cpu_backend_create_isa(n_threads, isa, &b) != SYM_OK) {
        fprintf(stderr, "bench_cpu: %s\n", sym_last_error());
        return 1;
    }
    isa = sym_cpu_backend_isa(b);
    n_threads = sym_cpu_backend_n_threads(b);
    sym_threadpool *pool = NULL;
    if (sym_threadpool_create(n_threads, &pool) != SYM_OK) return 1;
    int wide = isa == SYM_CPU_ISA_AVX512 ? 2 : isa == SYM_CPU_ISA_AVX2 ? 1 : 0;

    model md;
    model_init(&md, n_layer);
    size_t bytes = md.n_elems * 2;
    fprintf(stderr, "bench_cpu: %d threads, %s; filling %.2f GB of weights\n", n_threads,
            sym_cpu_isa_name(isa), (double)bytes / 1e9);
    uint16_t *arena = aligned_alloc(4096, (bytes + 4095) & ~(size_t)4095);
    float *xin = aligned_alloc(64, (size_t)PREFILL_TOK * N_FF * 4);
    float *xff = aligned_alloc(64, (size_t)PREFILL_TOK * N_FF * 4);
    float *out = aligned_alloc(64, (size_t)PREFILL_TOK * N_VOCAB * 4);
    if (!arena || !xin || !xff || !out) {
        fprintf(stderr, "bench_cpu: out of memory\n");
        return 1;
    }
    fill_job fj = {arena, md.n_elems, 1 << 22};
    sym_threadpool_parallel_for(pool, (int64_t)((md.n_elems + fj.per_task - 1) / fj.per_task),
                                fill_task, &fj);
    for (size_t i = 0; i < (size_t)PREFILL_TOK * N_FF; i++) {
        xin[i] = (float)((i * 2654435761u) % 2001) / 1000.0f - 1.0f;
        xff[i] = (float)((i * 40503u) % 2001) / 1000.0f - 1.0f;
    }

    /* dispatch latency of an empty parallel_for (threads spinning) */
    double disp = 1e9;
    for (int r = 0; r < 5; r++) {
        double t0 = now_s();
        for (int i = 0; i < 10000; i++)
            sym_threadpool_parallel_for(pool, n_threads, fill_task, &(fill_job){arena, 0, 1});
        double t = (now_s() - t0) / 10000;
        disp = t < disp ? t : disp;
    }

    /* Rounds interleave every measurement, so that a burst of load from other processes (this
     * machine may be shared, and so may its memory bus) hits all of them alike. Figures are the
     * best over the rounds; each round also pairs decode with the bandwidth measured just before
     * and after it (prefill with the FMA peak), and the median of those paired ratios is
     * reported next to the ratio of the bests. */
    double bw = 0, peak = 0, n_params = (double)md.n_elems;
    double dec_s[2] = {1e9, 1e9}, pre_s[2] = {1e9, 1e9};
    double *pair =
        calloc((size_t)reps * 4, sizeof *pair); /* [round][dec f16, bf16, pre f16, bf16] */
    /* 8 MB chunks handed out dynamically (like the matmul's tasks): a thread slowed by other
     * load does not hold the others back, so this is the ceiling the machine can deliver */
    for (int r = 0; r < reps; r++) {
        double bw_r = 0, peak_r = 0, dec_r[2] = {0, 0}, pre_r[2] = {0, 0};
        for (int phase = 0; phase < 3; phase++) {
            /* (a) read bandwidth over the whole weight arena */
            double g = sym_probe_read_bandwidth_on(pool, arena, bytes) / 1e9;
            bw_r = g > bw_r ? g : bw_r;
            /* (b) FMA peak */
            for (int k = 0; k < 2 && wide; k++) {
                g = sym_probe_fma_peak_on(pool) / 1e9;
                peak_r = g > peak_r ? g : peak_r;
            }
            if (phase == 2) break;
            /* (c) decode, (d) prefill: f16 in phase 0, bf16 (the same bytes) in phase 1 */
            sym_dtype wt = phase == 0 ? SYM_DT_F16 : SYM_DT_BF16;
            if (do_decode) dec_r[phase] = run_pass(b, &md, arena, wt, 1, xin, xff, out);
            if (do_prefill) pre_r[phase] = run_pass(b, &md, arena, wt, PREFILL_TOK, xin, xff, out);
        }
        bw = bw_r > bw ? bw_r : bw;
        peak = peak_r > peak ? peak_r : peak;
        for (int d = 0; d < 2; d++) {
            if (do_decode) {
                dec_s[d] = dec_r[d] < dec_s[d] ? dec_r[d] : dec_s[d];
                pair[r * 4 + d] = (double)bytes / dec_r[d] / 1e9 / bw_r;
            }
            if (do_prefill) {
                pre_s[d] = pre_r[d] < pre_s[d] ? pre_r[d] : pre_s[d];
                pair[r * 4 + 2 + d] = 2.0 * n_params * PREFILL_TOK / pre_r[d] / 1e9 / peak_r;
            }
        }
        fprintf(stderr,
                "bench_cpu: round %d: read %.1f GB/s, FMA %.1f GFLOP/s, decode f16 %.2f bf16 "
                "%.2f tok/s (%.2f, %.2f of read), prefill f16 %.1f bf16 %.1f tok/s (%.2f, %.2f "
                "of FMA)\n",
                r + 1, bw_r, peak_r, 1 / dec_r[0], 1 / dec_r[1], pair[r * 4], pair[r * 4 + 1],
                PREFILL_TOK / pre_r[0], PREFILL_TOK / pre_r[1], pair[r * 4 + 2], pair[r * 4 + 3]);
    }
    double med[4];
    for (int c = 0; c < 4; c++)
        med[c] = median_col(pair, reps, 4, c);
    free(pair);

    char host[256] = "unknown", cpu[256];
    gethostname(host, sizeof host - 1);
    cpu_model(cpu, sizeof cpu);
    printf("{\n");
    printf("  \"machine\": {\"hostname\": \"%s\", \"cpu\": \"%s\", \"online_cpus\": %d, "
           "\"threads\": %d, \"isa\": \"%s\"},\n",
           host, cpu, sym_threadpool_cpu_count(), n_threads, sym_cpu_isa_name(isa));
    printf("  \"method\": \"best of %d interleaved rounds; paired ratios: decode over the read "
           "bandwidth, prefill over the FMA peak, measured around it in the same round\",\n",
           reps);
    printf("  \"dispatch_us\": %.3f,\n", disp * 1e6);
    printf("  \"read_bandwidth_gbs\": %.2f,\n", bw);
    printf("  \"read_buffer_bytes\": %zu,\n", bytes);
    printf("  \"fma_peak_gflops\": %.2f,\n", peak);
    printf("  \"model\": {\"shape\": \"tinyllama-1.1b\", \"n_layer\": %d, \"n_matrices\": %d, "
           "\"n_params\": %.0f, \"weight_bytes_16bit\": %zu},\n",
           n_layer, md.n_mat, n_params, bytes);
    for (int d = 0; d < 2; d++) {
        const char *dn = d == 0 ? "f16" : "bf16";
        double gbs = (double)bytes / dec_s[d] / 1e9;
        double gfl = 2.0 * n_params * PREFILL_TOK / pre_s[d] / 1e9;
        if (do_decode)
            printf("  \"decode_%s\": {\"tok_s\": %.3f, \"ms_per_tok\": %.2f, \"gbs\": %.2f, "
                   "\"ceiling_tok_s\": %.3f, \"ratio_to_bandwidth\": %.3f, "
                   "\"ratio_paired_median\": %.3f},\n",
                   dn, 1.0 / dec_s[d], dec_s[d] * 1e3, gbs, bw * 1e9 / (double)bytes, gbs / bw,
                   med[d]);
        if (do_prefill)
            printf("  \"prefill%d_%s\": {\"tok_s\": %.2f, \"gflops\": %.2f, "
                   "\"ratio_to_fma_peak\": %.3f, \"ratio_paired_median\": %.3f},\n",
                   PREFILL_TOK, dn, PREFILL_TOK / pre_s[d], gfl, peak > 0 ? gfl / peak : 0.0,
                   med[2 + d]);
    }
    printf("  \"rounds\": %d\n", reps);
    printf("}\n");
    free(arena), free(xin), free(xff), free(out);
    sym_threadpool_destroy(pool);
    b->ops->destroy(b);
    return 0;
}
