/* bench_codec: the pack store's codecs on real and synthetic weights, as JSON on stdout.
 *   build/bench/bench_codec [--reps N] [--quick]
 *
 * Data sets (each a model's weights back to back, cut into pack-sized buffers of at most 8 MiB,
 * each compressed on its own, as `symbiote pack` does):
 *   aidreams260K.gguf        trained, f32 — and converted here to f16 and bf16 (round to nearest)
 *   models/toy-fortunes.gguf trained, f16
 *   synthetic                make-model's random weights (near-normal, std 1/sqrt(n_in)) in
 *                            f32, f16, bf16: a llama 512 wide, 2 layers, 1000 tokens (29 MiB
 *                            in f32; --quick: 256 wide, 1 layer, 500 tokens)
 * Random weights have no structure beyond their distribution; trained weights have a few
 * outliers and uneven per-row scales, so their exponents are spread differently. Both are shown.
 *
 * Per codec: ratio = raw / stored bytes; compression and decompression GB/s (10^9 raw bytes per
 * second, one thread), the best of --reps runs (default 3) since the machine may be shared.
 * "zfp-widened" (f16/bf16 only) is the experiment behind zfp's f32-only rule: the 16-bit values
 * widened exactly to f32 and coded by ZFP reversible, its ratio against the 16-bit bytes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/half.h"
#include "base/threadpool.h"
#include "model/arch.h"
#include "model/model.h"
#include "model/writer.h"
#include "pack/codec.h"

#define CHUNK (8u << 20)

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

typedef struct dataset {
    char name[64];
    const char *kind; /* "trained", "random" */
    sym_dtype dtype;
    uint8_t *data;
    size_t n;
} dataset;

static dataset g_sets[8];
static int g_n_sets;

static void add_set(const char *name, const char *kind, sym_dtype t, uint8_t *data, size_t n) {
    dataset *d = &g_sets[g_n_sets++];
    snprintf(d->name, sizeof d->name, "%s", name);
    d->kind = kind;
    d->dtype = t;
    d->data = data;
    d->n = n;
}

/* f32 values converted to f16 or bf16 (round to nearest even). */
static uint8_t *convert(const float *x, size_t n_el, sym_dtype t) {
    uint16_t *p = malloc(n_el * 2);
    for (size_t i = 0; i < n_el; i++)
        p[i] = t == SYM_DT_F16 ? sym_f32_to_f16(x[i]) : sym_f32_to_bf16(x[i]);
    return (uint8_t *)p;
}

/* A model's weights back to back; *dtype gets the matrices' type. */
static uint8_t *load_model(const char *path, size_t *n, sym_dtype *dtype) {
    sym_model *m = NULL;
    if (sym_model_open(path, &m) != SYM_OK) {
        fprintf(stderr, "bench_codec: %s: %s\n", path, sym_last_error());
        return NULL;
    }
    *n = (size_t)sym_model_weight_bytes(m);
    uint8_t *buf = malloc(*n);
    size_t at = 0;
    for (uint64_t i = 0; i < sym_model_n_weights(m); i++) {
        const sym_weight *w = sym_model_weight_at(m, i);
        memcpy(buf + at, w->data, (size_t)w->n_bytes);
        at += (size_t)w->n_bytes;
        if (w->n_rows > 1) *dtype = w->type;
    }
    sym_model_close(m);
    return buf;
}

/* make-model's random weights for a llama of the given width, generated in memory. */
static uint8_t *synthetic(int n_embd, int n_layer, int n_vocab, sym_dtype t, size_t *n) {
    sym_make_model_options o;
    sym_make_model_options_init(&o);
    o.n_embd = n_embd;
    o.n_head = n_embd / 64;
    o.n_head_kv = n_embd / 64;
    o.head_dim = 64;
    o.n_ff = n_embd * 8 / 3 / 64 * 64;
    o.n_layer = n_layer;
    o.n_vocab = n_vocab;
    o.dtype = t;
    sym_hparams hp;
    if (sym_make_model_hparams(&o, &hp) != SYM_OK) {
        fprintf(stderr, "bench_codec: %s\n", sym_last_error());
        exit(1);
    }
    size_t total = 0, es = sym_dtype_size(t);
    for (int pass = 0; pass < 2; pass++) {
        uint8_t *buf = pass ? malloc(total) : NULL;
        size_t at = 0;
        for (uint64_t i = 0; i < sym_arch_n_specs(&hp); i++) {
            sym_tensor_spec s;
            sym_arch_spec_at(&hp, i, &s);
            if (s.role == SYM_ROLE_OUTPUT && hp.tied_embeddings) continue;
            size_t bytes = (size_t)s.n_rows * (size_t)s.n_cols * es;
            if (pass && sym_make_model_rows(&hp, 1, s.name, 0, s.n_rows, t, buf + at) != SYM_OK) {
                fprintf(stderr, "bench_codec: %s\n", sym_last_error());
                exit(1);
            }
            at += bytes;
        }
        total = at;
        if (pass) {
            *n = total;
            return buf;
        }
    }
    return NULL;
}

static void cpu_model(char *buf, size_t cap) {
    snprintf(buf, cap, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "model name", 10) && strchr(line, ':')) {
            char *c = strchr(line, ':') + 2;
            c[strcspn(c, "\n")] = 0;
            snprintf(buf, cap, "%s", c);
            break;
        }
    fclose(f);
}

typedef struct result {
    double ratio, comp_gbs, decomp_gbs;
    bool ok;
} result;

/* Codes d chunk by chunk with c (elem_size es) reps times; the best time of each direction.
 * widen: 16-bit data widened to f32 first (zfp experiment), ratio against the 16-bit bytes. */
static result measure(sym_codec_ctx *ctx, const sym_codec *c, const dataset *d, int reps,
                      bool widen) {
    result r = {0, 0, 0, false};
    uint32_t es = widen ? 4 : (uint32_t)sym_dtype_size(d->dtype);
    const uint8_t *src = d->data;
    size_t n = d->n;
    uint8_t *wide = NULL;
    if (widen) {
        size_t n_el = d->n / 2;
        float *w = malloc(n_el * 4);
        const uint16_t *h = (const uint16_t *)d->data;
        for (size_t i = 0; i < n_el; i++) {
            uint32_t u = d->dtype == SYM_DT_BF16 ? (uint32_t)h[i] << 16
                                                  : sym_f32_to_bits(sym_f16_to_f32(h[i]));
            memcpy(&w[i], &u, 4);
        }
        wide = (uint8_t *)w;
        src = wide;
        n = n_el * 4;
    }
    size_t chunk = widen ? 2 * (size_t)CHUNK : CHUNK, n_chunks = (n + chunk - 1) / chunk;
    size_t cap = chunk + chunk / 2 + 65536;
    uint8_t *z = malloc(n_chunks * cap), *back = malloc(chunk);
    size_t *zn = calloc(n_chunks, sizeof *zn);
    double best_c = 1e30, best_d = 1e30;
    size_t stored = 0;
    for (int rep = 0; rep < reps; rep++) {
        double t0 = now_s();
        stored = 0;
        for (size_t k = 0; k < n_chunks; k++) {
            size_t len = k + 1 < n_chunks ? chunk : n - k * chunk;
            if (sym_codec_compress(ctx, c, es, src + k * chunk, len, z + k * cap, cap, &zn[k]) !=
                SYM_OK)
                goto done;
            stored += zn[k];
        }
        double t1 = now_s();
        for (size_t k = 0; k < n_chunks; k++) {
            size_t len = k + 1 < n_chunks ? chunk : n - k * chunk;
            if (sym_codec_decompress(ctx, c, es, z + k * cap, zn[k], back, len) != SYM_OK ||
                memcmp(back, src + k * chunk, len) != 0) {
                fprintf(stderr, "bench_codec: %s does not round-trip\n", d->name);
                exit(1);
            }
        }
        double t2 = now_s();
        if (t1 - t0 < best_c) best_c = t1 - t0;
        if (t2 - t1 < best_d) best_d = t2 - t1;
    }
    r.ratio = (double)d->n / (double)stored;
    r.comp_gbs = (double)d->n / best_c * 1e-9;
    r.decomp_gbs = (double)d->n / best_d * 1e-9;
    r.ok = true;
done:
    free(z);
    free(back);
    free(zn);
    free(wide);
    return r;
}

int main(int argc, char **argv) {
    int reps = 3;
    bool quick = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--quick")) quick = true;
        else {
            fprintf(stderr, "usage: bench_codec [--reps N] [--quick]\n");
            return 2;
        }
    }
    if (reps < 1) reps = 1;
    size_t n;
    sym_dtype t = SYM_DT_F32;
    uint8_t *a = load_model(SYM_SHARED_DIR "/models/aidreams260K.gguf", &n, &t);
    if (!a || t != SYM_DT_F32) return 1;
    add_set("aidreams260K", "trained", SYM_DT_F32, a, n);
    add_set("aidreams260K", "trained", SYM_DT_F16, convert((const float *)a, n / 4, SYM_DT_F16),
            n / 2);
    add_set("aidreams260K", "trained", SYM_DT_BF16, convert((const float *)a, n / 4, SYM_DT_BF16),
            n / 2);
    uint8_t *toy = load_model(SYM_SOURCE_DIR "/models/toy-fortunes.gguf", &n, &t);
    if (!toy) return 1;
    add_set("toy-fortunes", "trained", t, toy, n);
    for (int k = 0; k < SYM_DT_COUNT; k++) {
        uint8_t *s = quick ? synthetic(256, 1, 500, (sym_dtype)k, &n)
                           : synthetic(512, 2, 1000, (sym_dtype)k, &n);
        add_set("synthetic", "random", (sym_dtype)k, s, n);
    }

    static const sym_codec codecs[] = {
        {SYM_CODEC_NONE, 0, 0, 0},
        {SYM_CODEC_ZSTD, 1, 0, 0},
        {SYM_CODEC_ZSTD, 3, 0, 0},
        {SYM_CODEC_ZSTD, 9, 0, 0},
        {SYM_CODEC_BLOSC, 5, SYM_BLOSC_BYTE, SYM_BLOSC_LZ4},
        {SYM_CODEC_BLOSC, 5, SYM_BLOSC_BIT, SYM_BLOSC_LZ4},
        {SYM_CODEC_BLOSC, 5, SYM_BLOSC_BYTE, SYM_BLOSC_ZSTD},
        {SYM_CODEC_BLOSC, 5, SYM_BLOSC_BIT, SYM_BLOSC_ZSTD},
        {SYM_CODEC_ZFP, 0, 0, 0},
        {SYM_CODEC_BYTESPLIT, 1, 0, 0},
        {SYM_CODEC_BYTESPLIT, 3, 0, 0},
        {SYM_CODEC_BYTESPLIT, 9, 0, 0},
    };
    sym_codec_ctx *ctx = NULL;
    if (sym_codec_ctx_create(&ctx) != SYM_OK) return 1;
    char host[256] = "unknown", cpu[256];
    gethostname(host, sizeof host - 1);
    cpu_model(cpu, sizeof cpu);
    printf("{\n  \"bench\": \"codec\",\n");
    printf("  \"machine\": {\"hostname\": \"%s\", \"cpu\": \"%s\", \"online_cpus\": %d},\n", host,
           cpu, sym_threadpool_cpu_count());
    printf("  \"method\": \"each data set cut into buffers of at most %u MiB coded one by one on "
           "one thread; GB/s = 1e9 raw bytes per second, best of %d runs\",\n",
           CHUNK >> 20, reps);
    printf("  \"data\": [");
    for (int i = 0; i < g_n_sets; i++)
        printf("%s\n    {\"name\": \"%s\", \"kind\": \"%s\", \"dtype\": \"%s\", \"bytes\": %zu}",
               i ? "," : "", g_sets[i].name, g_sets[i].kind, sym_dtype_name(g_sets[i].dtype),
               g_sets[i].n);
    printf("\n  ],\n  \"results\": [");
    int first = 1;
    for (int i = 0; i < g_n_sets; i++) {
        const dataset *d = &g_sets[i];
        for (size_t c = 0; c < sizeof codecs / sizeof *codecs; c++) {
            bool half = d->dtype != SYM_DT_F32;
            if (!sym_codec_available(codecs[c].id)) continue;
            bool widen = half && codecs[c].id == SYM_CODEC_ZFP;
            result r = measure(ctx, &codecs[c], d, reps, widen);
            if (!r.ok) continue;
            char name[64];
            sym_codec_describe(&codecs[c], name, sizeof name);
            printf("%s\n    {\"data\": \"%s\", \"kind\": \"%s\", \"dtype\": \"%s\", \"codec\": "
                   "\"%s%s\", \"ratio\": %.4f, \"compress_gb_s\": %.3f, \"decompress_gb_s\": "
                   "%.3f}",
                   first ? "" : ",", d->name, d->kind, sym_dtype_name(d->dtype), name,
                   widen ? "-widened" : "", r.ratio, r.comp_gbs, r.decomp_gbs);
            fflush(stdout);
            first = 0;
        }
    }
    printf("\n  ]\n}\n");
    sym_codec_ctx_destroy(ctx);
    for (int i = 0; i < g_n_sets; i++) free(g_sets[i].data);
    return 0;
}
