/* The pack store's codecs (src/pack/codec.c): every codec and parameter set round-trips
 * bit-exactly on f32, f16 and bf16 buffers — random normal weights, real trained weights
 * (aidreams260K in f32 and converted to f16/bf16, the bundled toy model in f16), every special
 * bit pattern (NaN payloads, infinities, signed zeros, denormals), uniformly random bits, sizes
 * that are not a multiple of the element size, empty buffers; decompression never writes past
 * its output (guard bytes) and reports damaged, truncated or mislabelled streams as
 * SYM_ERR_FORMAT; a stream that does not fit is SYM_ERR_RANGE; bad parameters SYM_ERR_ARG;
 * zfp on 16-bit elements SYM_ERR_UNSUPPORTED. */
#include "base/half.h"
#include "model/model.h"
#include "pack/codec.h"
#include "test_util.h"

#define GUARD 64

static test_rng g_rng;

static const sym_codec k_codecs[] = {
    {SYM_CODEC_NONE, 0, 0, 0},
    {SYM_CODEC_ZSTD, 1, 0, 0},
    {SYM_CODEC_ZSTD, 3, 0, 0},
    {SYM_CODEC_ZSTD, 12, 0, 0},
    {SYM_CODEC_BLOSC, 5, SYM_BLOSC_BYTE, SYM_BLOSC_LZ4},
    {SYM_CODEC_BLOSC, 5, SYM_BLOSC_BIT, SYM_BLOSC_LZ4},
    {SYM_CODEC_BLOSC, 5, SYM_BLOSC_BYTE, SYM_BLOSC_ZSTD},
    {SYM_CODEC_BLOSC, 9, SYM_BLOSC_BIT, SYM_BLOSC_ZSTD},
    {SYM_CODEC_ZFP, 0, 0, 0},
    {SYM_CODEC_BYTESPLIT, 1, 0, 0},
    {SYM_CODEC_BYTESPLIT, 3, 0, 0},
};
#define N_CODECS (sizeof k_codecs / sizeof k_codecs[0])

static int g_n_roundtrips;

/* Compresses and decompresses buf; checks equality, guard bytes and the damaged-stream paths.
 * Returns the stream size (0 if the codec does not apply). */
static size_t roundtrip(sym_codec_ctx *ctx, const sym_codec *c, uint32_t es, const uint8_t *buf,
                        size_t n, const char *what) {
    char name[64];
    sym_codec_describe(c, name, sizeof name);
    if (!sym_codec_available(c->id)) return 0;
    if (c->id == SYM_CODEC_ZFP && es != 4) {
        size_t got;
        uint8_t d[16];
        CHECK_STATUS(sym_codec_compress(ctx, c, es, buf, n, d, sizeof d, &got),
                     SYM_ERR_UNSUPPORTED);
        return 0;
    }
    size_t cap = 2 * n + 4096;
    uint8_t *z = malloc(cap), *out = malloc(n + 2 * GUARD);
    size_t zn = 0;
    sym_status st = sym_codec_compress(ctx, c, es, buf, n, z, cap, &zn);
    CHECK(st == SYM_OK, "%s/%s (%zu bytes, es %u): compress: %s (%s)", what, name, n, es,
          sym_status_name(st), sym_last_error());
    if (st != SYM_OK) goto done;
    memset(out, 0xa5, n + 2 * GUARD);
    st = sym_codec_decompress(ctx, c, es, z, zn, out + GUARD, n);
    CHECK(st == SYM_OK, "%s/%s (%zu bytes): decompress: %s (%s)", what, name, n,
          sym_status_name(st), sym_last_error());
    CHECK(n == 0 || !memcmp(out + GUARD, buf, n), "%s/%s (%zu bytes, es %u): not bit-exact", what,
          name, n, es);
    for (int g = 0; g < GUARD; g++)
        if (out[g] != 0xa5 || out[GUARD + n + g] != 0xa5) {
            CHECK(0, "%s/%s: guard byte %d written", what, name, g);
            break;
        }
    g_n_roundtrips++;
    /* less room than the stream took: SYM_ERR_RANGE, or (Blosc, which falls back to a stored
     * copy of blocks that do not shrink) another stream that fits and still round-trips */
    if (zn > 1) {
        size_t got = 0;
        st = sym_codec_compress(ctx, c, es, buf, n, z + zn, zn - 1, &got);
        CHECK(st == SYM_ERR_RANGE || (st == SYM_OK && c->id == SYM_CODEC_BLOSC && got < zn),
              "%s/%s (%zu bytes): %zu-byte stream in %zu bytes: %s (%zu)", what, name, n, zn,
              zn - 1, sym_status_name(st), got);
        if (st == SYM_OK) {
            CHECK_OK(sym_codec_decompress(ctx, c, es, z + zn, got, out + GUARD, n));
            CHECK(!memcmp(out + GUARD, buf, n), "%s/%s: smaller stream not bit-exact", what,
                  name);
        }
        st = SYM_OK;
    }
    /* the wrong raw size, truncations and flipped bytes: FORMAT (or, for a flip that decodes,
     * OK: the codecs carry no checksum, the store does), never a write past the output */
    if (n >= 2) {
        CHECK_STATUS(sym_codec_decompress(ctx, c, es, z, zn, out + GUARD, n - 1), SYM_ERR_FORMAT);
        CHECK_STATUS(sym_codec_decompress(ctx, c, es, z, zn, out + GUARD, n + 1), SYM_ERR_FORMAT);
    }
    for (int t = 0; t < 4 && zn > 0; t++) {
        size_t cut = t == 0 ? zn - 1 : (size_t)test_rng_below(&g_rng, zn);
        memset(out, 0xa5, n + 2 * GUARD);
        st = sym_codec_decompress(ctx, c, es, z, cut, out + GUARD, n);
        CHECK(st == SYM_ERR_FORMAT, "%s/%s: truncated to %zu of %zu: %s (%s)", what, name, cut,
              zn, sym_status_name(st), sym_last_error());
        CHECK(out[GUARD + n] == 0xa5 && out[GUARD - 1] == 0xa5, "%s/%s: wrote past the output",
              what, name);
    }
    for (int t = 0; t < 16 && zn > 0; t++) {
        uint8_t *bad = malloc(zn);
        memcpy(bad, z, zn);
        size_t at = (size_t)test_rng_below(&g_rng, zn);
        bad[at] ^= (uint8_t)(1u << test_rng_below(&g_rng, 8));
        memset(out, 0xa5, n + 2 * GUARD);
        st = sym_codec_decompress(ctx, c, es, bad, zn, out + GUARD, n);
        CHECK(st == SYM_OK || st == SYM_ERR_FORMAT, "%s/%s: flipped byte %zu: %s (%s)", what,
              name, at, sym_status_name(st), sym_last_error());
        CHECK(out[GUARD + n] == 0xa5 && out[GUARD - 1] == 0xa5, "%s/%s: wrote past the output",
              what, name);
        free(bad);
    }
done:
    free(z);
    free(out);
    return st == SYM_OK ? zn : 0;
}

static void all_codecs(sym_codec_ctx *ctx, uint32_t es, const uint8_t *buf, size_t n,
                       const char *what, bool report) {
    for (size_t i = 0; i < N_CODECS; i++) {
        size_t zn = roundtrip(ctx, &k_codecs[i], es, buf, n, what);
        char name[64];
        if (report && zn)
            fprintf(stderr, "  %-22s %-22s ratio %.3f\n", what,
                    sym_codec_describe(&k_codecs[i], name, sizeof name), (double)n / (double)zn);
    }
}

static float normal(void) {
    float u1 = 0.5f * (test_rng_f32(&g_rng) + 1.0f) + 1e-7f, u2 = test_rng_f32(&g_rng);
    return sqrtf(-2.0f * logf(u1)) * cosf(3.14159265f * u2);
}

/* n elements of dtype t from f32 values. */
static uint8_t *convert(const float *x, size_t n, sym_dtype t) {
    uint8_t *p = malloc(n * sym_dtype_size(t) + 1);
    for (size_t i = 0; i < n; i++) {
        if (t == SYM_DT_F32) {
            memcpy(p + 4 * i, &x[i], 4);
        } else {
            uint16_t h = t == SYM_DT_F16 ? sym_f32_to_f16(x[i]) : sym_f32_to_bf16(x[i]);
            memcpy(p + 2 * i, &h, 2);
        }
    }
    return p;
}

static void test_synthetic(sym_codec_ctx *ctx) {
    static const size_t sizes[] = {0, 1, 2, 3, 5, 7, 64, 1000, 4099, 65537, 300001};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        size_t n_el = sizes[s];
        float *x = malloc((n_el + 1) * sizeof *x);
        for (size_t i = 0; i < n_el; i++) x[i] = 0.02f * normal();
        for (int t = 0; t < SYM_DT_COUNT; t++) {
            uint8_t *p = convert(x, n_el, (sym_dtype)t);
            size_t es = sym_dtype_size((sym_dtype)t);
            char what[64];
            snprintf(what, sizeof what, "normal-%s-%zu", sym_dtype_name((sym_dtype)t), n_el);
            all_codecs(ctx, (uint32_t)es, p, n_el * es, what, n_el == 300001);
            /* a byte count that is not a multiple of the element size: the tail */
            if (n_el > 1) all_codecs(ctx, (uint32_t)es, p, n_el * es - 1, what, false);
            free(p);
        }
        free(x);
    }
}

/* Every special value, dense: NaNs with payloads, infinities, zeros, denormals, then uniformly
 * random bits (incompressible). */
static void test_special(sym_codec_ctx *ctx) {
    size_t n = 40000;
    uint32_t *a = malloc(n * 4);
    uint16_t *h = malloc(n * 2);
    for (size_t i = 0; i < n; i++) {
        uint32_t r = (uint32_t)test_rng_u64(&g_rng), sign = (r & 1u) << 31;
        switch (i % 8) {
        case 0: a[i] = sign | 0x7f800000u | (r >> 9 | 1u); break; /* NaN, payload */
        case 1: a[i] = sign | 0x7f800000u; break;                  /* inf */
        case 2: a[i] = sign; break;                                /* +-0 */
        case 3: a[i] = sign | (r >> 9); break;                     /* denormal */
        case 4: a[i] = sign | 0x00800000u; break;                  /* smallest normal */
        case 5: a[i] = sign | 0x7f7fffffu; break;                  /* largest finite */
        default: a[i] = r; break;                                  /* anything */
        }
        switch (i % 8) {
        case 0: h[i] = (uint16_t)((r & 0x8000u) | 0x7c00u | ((r >> 3) & 0x3ffu) | 1u); break;
        case 1: h[i] = (uint16_t)((r & 0x8000u) | 0x7c00u); break;
        case 2: h[i] = (uint16_t)(r & 0x8000u); break;
        case 3: h[i] = (uint16_t)((r & 0x8000u) | ((r >> 5) & 0x3ffu)); break;
        default: h[i] = (uint16_t)r; break;
        }
    }
    all_codecs(ctx, 4, (uint8_t *)a, n * 4, "special-f32", false);
    all_codecs(ctx, 2, (uint8_t *)h, n * 2, "special-f16/bf16", false);
    for (size_t i = 0; i < n; i++) a[i] = (uint32_t)test_rng_u64(&g_rng);
    all_codecs(ctx, 4, (uint8_t *)a, n * 4, "random-bits-4", false);
    all_codecs(ctx, 2, (uint8_t *)a, n * 4, "random-bits-2", false);
    /* constant data compresses enormously: the output bound is the caller's raw size */
    memset(a, 0, n * 4);
    all_codecs(ctx, 4, (uint8_t *)a, n * 4, "zeros", false);
    free(a);
    free(h);
}

/* The weights of a real trained model, concatenated; f32 models also converted. */
static void test_real(sym_codec_ctx *ctx, const char *path, const char *label) {
    sym_model *m = NULL;
    CHECK_OK(sym_model_open(path, &m));
    if (!m) return;
    uint64_t n = sym_model_weight_bytes(m), at = 0;
    uint8_t *buf = malloc(n);
    sym_dtype t = sym_model_weight_at(m, 0)->type;
    for (uint64_t i = 0; i < sym_model_n_weights(m); i++) {
        const sym_weight *w = sym_model_weight_at(m, i);
        memcpy(buf + at, w->data, w->n_bytes);
        at += w->n_bytes;
        if (w->n_rows > 1) t = w->type; /* the matrices' type */
    }
    char what[64];
    snprintf(what, sizeof what, "%s-%s", label, sym_dtype_name(t));
    all_codecs(ctx, (uint32_t)sym_dtype_size(t), buf, (size_t)n, what, true);
    if (t == SYM_DT_F32) {
        size_t n_el = (size_t)n / 4;
        for (int k = SYM_DT_F16; k <= SYM_DT_BF16; k++) {
            uint8_t *p = convert((const float *)buf, n_el, (sym_dtype)k);
            snprintf(what, sizeof what, "%s-%s", label, sym_dtype_name((sym_dtype)k));
            all_codecs(ctx, 2, p, n_el * 2, what, true);
            free(p);
        }
    }
    free(buf);
    sym_model_close(m);
}

static void test_args(sym_codec_ctx *ctx) {
    uint8_t a[64] = {0}, b[256];
    size_t got;
    sym_codec c = sym_codec_default(SYM_CODEC_ZSTD);
    c.level = 0;
    CHECK_STATUS(sym_codec_compress(ctx, &c, 4, a, sizeof a, b, sizeof b, &got), SYM_ERR_ARG);
    c.level = 20;
    CHECK_STATUS(sym_codec_check(&c, 4), SYM_ERR_ARG);
    c = sym_codec_default(SYM_CODEC_BLOSC);
    c.level = 10;
    CHECK_STATUS(sym_codec_check(&c, 2), sym_codec_available(SYM_CODEC_BLOSC)
                                             ? SYM_ERR_ARG : SYM_ERR_UNSUPPORTED);
    c = sym_codec_default(SYM_CODEC_ZSTD);
    CHECK_STATUS(sym_codec_check(&c, 3), SYM_ERR_ARG);
    c.id = SYM_CODEC_COUNT;
    CHECK_STATUS(sym_codec_check(&c, 4), SYM_ERR_ARG);
    c = sym_codec_default(SYM_CODEC_ZFP);
    CHECK_STATUS(sym_codec_check(&c, 2), SYM_ERR_UNSUPPORTED); /* no 16-bit floats in ZFP */
    sym_codec_id id;
    CHECK_OK(sym_codec_id_parse("bytesplit", &id));
    CHECK(id == SYM_CODEC_BYTESPLIT, "parse");
    CHECK_STATUS(sym_codec_id_parse("lzma", &id), SYM_ERR_ARG);
    char name[64];
    c = sym_codec_default(SYM_CODEC_BLOSC);
    c.shuffle = SYM_BLOSC_BIT;
    c.inner = SYM_BLOSC_ZSTD;
    CHECK(!strcmp(sym_codec_describe(&c, name, sizeof name), "blosc-bit-zstd-5"), "%s", name);
    /* garbage that is not a stream of the codec */
    for (size_t i = 0; i < N_CODECS; i++) {
        if (!sym_codec_available(k_codecs[i].id) || k_codecs[i].id == SYM_CODEC_NONE) continue;
        for (int t = 0; t < 32; t++) {
            uint8_t junk[200], out[1000 + GUARD];
            size_t jn = (size_t)test_rng_below(&g_rng, sizeof junk + 1);
            for (size_t k = 0; k < jn; k++) junk[k] = (uint8_t)test_rng_u64(&g_rng);
            memset(out, 0xa5, sizeof out);
            sym_status st = sym_codec_decompress(ctx, &k_codecs[i], 4, junk, jn, out, 1000);
            /* a ZFP stream has no structure to check beyond its length in words: junk of the
             * right length may decode (to junk) */
            CHECK(st == SYM_ERR_FORMAT || (st == SYM_OK && k_codecs[i].id == SYM_CODEC_ZFP),
                  "junk for %s: %s", sym_codec_id_name(k_codecs[i].id), sym_status_name(st));
            CHECK(out[1000] == 0xa5, "junk for %s: wrote past the output",
                  sym_codec_id_name(k_codecs[i].id));
        }
    }
}

int main(void) {
    g_rng = test_rng_init("test_codec");
    sym_codec_ctx *ctx = NULL;
    CHECK_OK(sym_codec_ctx_create(&ctx));
    if (!ctx) return test_finish("test_codec");
    for (int id = 0; id < SYM_CODEC_COUNT; id++)
        fprintf(stderr, "codec %s: %s\n", sym_codec_id_name((sym_codec_id)id),
                sym_codec_available((sym_codec_id)id) ? "built in" : "left out of this build");
    test_args(ctx);
    test_synthetic(ctx);
    test_special(ctx);
    char path[1024];
    test_real(ctx, test_shared_path("models/aidreams260K.gguf", path, sizeof path), "aidreams");
    test_real(ctx, SYM_SOURCE_DIR "/models/toy-fortunes.gguf", "toy-fortunes");
    fprintf(stderr, "%d round trips\n", g_n_roundtrips);
    sym_codec_ctx_destroy(ctx);
    return test_finish("test_codec");
}
