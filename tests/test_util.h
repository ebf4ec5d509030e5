/* test_util.h — the tiny harness every test uses: CHECK that counts failures and keeps going,
 * a seeded RNG (seed printed so a failure can be replayed), paths to ../shared and the build. */
#ifndef SYM_TEST_UTIL_H
#define SYM_TEST_UTIL_H

#include <inttypes.h>
#include <stdbool.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "symbiote.h"

#define TEST_SKIP 77 /* ctest SKIP_RETURN_CODE */

static int g_test_failures;

#define CHECK(cond, ...)                                                                          \
    do {                                                                                          \
        if (!(cond)) {                                                                            \
            g_test_failures++;                                                                    \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                       \
            fprintf(stderr, __VA_ARGS__);                                                         \
            fputc('\n', stderr);                                                                  \
        }                                                                                         \
    } while (0)

/* Expects status `want` from expr; on mismatch prints what came back and its detail. */
#define CHECK_STATUS(expr, want)                                                                  \
    do {                                                                                          \
        sym_status got_ = (expr);                                                                 \
        CHECK(got_ == (want), "got %s (%s), want %s", sym_status_name(got_), sym_last_error(),    \
              sym_status_name(want));                                                             \
    } while (0)
#define CHECK_OK(expr) CHECK_STATUS(expr, SYM_OK)

static inline int test_finish(const char *name) {
    if (g_test_failures) {
        fprintf(stderr, "%s: %d check(s) failed\n", name, g_test_failures);
        return 1;
    }
    fprintf(stderr, "%s: all checks passed\n", name);
    return 0;
}

/* ---- seeded RNG (splitmix64) ---- */
typedef struct test_rng { uint64_t s; } test_rng;

/* Seed from $SYM_TEST_SEED if set, else from the clock; printed either way. */
/* max |a[i] - b[i]| over max |a[i]| (over 1 if a is all zeros): how far b is from a, relative
 * to a's scale. */
static inline double test_max_rel_diff(const float *a, const float *b, size_t n) {
    double d = 0, s = 0;
    for (size_t i = 0; i < n; i++) {
        d = fmax(d, fabs((double)a[i] - b[i]));
        s = fmax(s, fabs((double)a[i]));
    }
    return d / (s > 0 ? s : 1);
}

static inline test_rng test_rng_init(const char *name) {
    uint64_t seed;
    const char *env = getenv("SYM_TEST_SEED");
    if (env) seed = strtoull(env, NULL, 0);
    else seed = (uint64_t)time(NULL) ^ ((uint64_t)clock() << 20);
    fprintf(stderr, "%s: seed %" PRIu64 " (replay with SYM_TEST_SEED=%" PRIu64 ")\n", name, seed,
            seed);
    return (test_rng){seed};
}
static inline uint64_t test_rng_u64(test_rng *r) {
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
/* uniform in [0, n) */
static inline uint64_t test_rng_below(test_rng *r, uint64_t n) { return test_rng_u64(r) % n; }
/* uniform in [-1, 1) */
static inline float test_rng_f32(test_rng *r) {
    return (float)((double)(test_rng_u64(r) >> 11) * (2.0 / 9007199254740992.0) - 1.0);
}

/* ---- paths ---- */
static inline const char *test_shared_path(const char *rel, char *buf, size_t cap) {
    snprintf(buf, cap, "%s/%s", SYM_SHARED_DIR, rel);
    return buf;
}

/* Reads a whole file, NUL-terminated (the NUL is not counted in *size); NULL on failure.
 * Caller frees. */
static inline unsigned char *test_read_file(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    if (n < 0) n = 0;
    unsigned char *p = malloc((size_t)n + 1);
    if (p && fread(p, 1, (size_t)n, f) != (size_t)n) {
        free(p);
        p = NULL;
    }
    if (p) p[n] = 0;
    fclose(f);
    if (p) *size = (size_t)n;
    return p;
}

static inline int test_write_file(const char *path, const void *data, size_t size) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = fwrite(data, 1, size, f);
    return fclose(f) == 0 && w == size ? 0 : -1;
}

#endif
