/* bench_fractal: operations per second of the fractal allocator, as JSON on stdout.
 *   build/bench/bench_fractal [--ops N]
 * Workloads over an 8 GiB arena with 256-byte blocks: "packs" (1–32 MiB, as the pack manager
 * asks), "mixed" (256 B – 32 MiB, log-uniform), each a steady state of about 70% occupancy with
 * random frees; then defragmentation of the fragmented "mixed" state (moves and time). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mem/fractal.h"

static uint64_t g_s = 0x243f6a8885a308d3ull;
static uint64_t rnd(void) {
    uint64_t z = (g_s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static uint64_t size_packs(void) { return (1u << 20) + rnd() % (31u << 20); }
static uint64_t size_mixed(void) { return 1 + rnd() % (256ull << (rnd() % 18)); }

#define ARENA    (8ull << 30)
#define MAX_LIVE 200000

static uint64_t live[MAX_LIVE];

/* Runs n_ops alloc/free operations keeping occupancy near 70%; leaves the arena as it ends. */
static void workload(sym_fractal *f, const char *name, uint64_t (*size)(void), long n_ops,
                     size_t *n_live, int first) {
    long n_alloc = 0, n_free = 0, n_fail = 0;
    double t0 = now_s();
    for (long i = 0; i < n_ops; i++) {
        sym_fractal_stats s;
        sym_fractal_stats_get(f, &s);
        bool want_alloc =
            *n_live == 0 || (*n_live < MAX_LIVE && s.used_bytes < ARENA / 10 * 7 && rnd() % 4 != 0);
        if (want_alloc) {
            uint64_t off;
            if (sym_fractal_alloc(f, size(), 0, (uint64_t)i, &off) == SYM_OK) {
                live[(*n_live)++] = off;
                n_alloc++;
            } else {
                n_fail++;
            }
        } else {
            size_t k = (size_t)(rnd() % *n_live);
            sym_fractal_free(f, live[k]);
            live[k] = live[--*n_live];
            n_free++;
        }
    }
    double dt = now_s() - t0;
    sym_fractal_stats s;
    sym_fractal_stats_get(f, &s);
    printf("%s    {\"workload\": \"%s\", \"ops\": %ld, \"allocs\": %ld, \"frees\": %ld, "
           "\"failed\": %ld, \"seconds\": %.4f, \"ops_per_s\": %.0f, \"live\": %zu, "
           "\"fragmentation\": %.4f}",
           first ? "" : ",\n", name, n_ops, n_alloc, n_free, n_fail, dt, (double)n_ops / dt,
           *n_live, s.fragmentation);
}

int main(int argc, char **argv) {
    long n_ops = 2000000;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--ops") && i + 1 < argc)
            n_ops = atol(argv[++i]);
        else {
            fprintf(stderr, "usage: bench_fractal [--ops N]\n");
            return 2;
        }
    }
    printf("{\n  \"arena_bytes\": %llu,\n  \"min_block\": 256,\n  \"results\": [\n",
           (unsigned long long)ARENA);
    sym_fractal *f;
    size_t n_live = 0;
    if (sym_fractal_create(ARENA, 256, &f) != SYM_OK) return 1;
    workload(f, "packs", size_packs, n_ops / 10, &n_live, 1);
    sym_fractal_destroy(f);
    n_live = 0;
    if (sym_fractal_create(ARENA, 256, &f) != SYM_OK) return 1;
    workload(f, "mixed", size_mixed, n_ops, &n_live, 0);
    sym_fractal_stats before, after;
    sym_fractal_stats_get(f, &before);
    sym_fractal_plan p;
    double t0 = now_s();
    if (sym_fractal_defragment(f, &p) != SYM_OK) return 1;
    double dt = now_s() - t0;
    sym_fractal_stats_get(f, &after);
    printf(",\n    {\"workload\": \"defragment\", \"live\": %zu, \"free_blocks_before\": %" PRIu64
           ", \"free_blocks_after\": %" PRIu64 ", \"fragmentation_before\": %.4f, "
           "\"fragmentation_after\": %.4f, \"moves\": %zu, \"bytes_moved\": %" PRIu64
           ", \"requested_bytes\": %" PRIu64 ", \"seconds\": %.4f}\n  ]\n}\n",
           n_live, before.n_free_blocks, after.n_free_blocks, before.fragmentation,
           after.fragmentation, p.n_moves, p.bytes_moved, after.requested_bytes, dt);
    sym_fractal_plan_free(&p);
    sym_fractal_destroy(f);
    return 0;
}
