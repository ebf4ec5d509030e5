/* codec.c — the pack store's lossless codecs over zstd, Blosc 1 and ZFP 1.0 (see codec.h).
 *
 * Stream layouts (little-endian; the raw size is never in the stream: the caller knows it):
 *   none       the raw bytes
 *   zstd       one zstd frame (with its content size)
 *   blosc      one Blosc 1 buffer (its own 16-byte header); cbytes must equal the stream size
 *   zfp        the ZFP bit stream of floor(raw / 4) floats (reversible mode, no ZFP header;
 *              decoding must use exactly all of it) | raw % 4 tail bytes as they are
 *   bytesplit  u8 n_planes (= elem_size) | n_planes x { u8 mode (0 raw, 1 zstd), u64 bytes } |
 *              the planes' streams in that order | raw % elem_size tail bytes as they are.
 *              Plane 0 is the most significant byte of every element (sign and exponent), plane
 *              elem_size - 1 the least significant; each plane holds raw / elem_size bytes.
 */
#include "pack/codec.h"

#include <stdio.h>
#include <string.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "base/alloc.h"

#if SYM_HAVE_BLOSC
#include <blosc.h>
#endif
#if SYM_HAVE_ZFP
#include <zfp.h>
#endif

#define ZSTD_MAX_LEVEL 19
#define BLOSC_MAX_LEVEL 9
#define SPLIT_MAX_PLANES 4
#define SPLIT_HEADER(k) (1u + 9u * (k))
#define SPLIT_PROBE_BYTES (64u << 10)
#define ZFP_SLACK 64 /* the bit stream reads whole 64-bit words, possibly one ahead */

struct sym_codec_ctx {
    ZSTD_CCtx *cctx;
    ZSTD_DCtx *dctx;
    void *scratch[2];
    size_t scratch_cap[2];
};

static const char *const k_names[SYM_CODEC_COUNT] = {"none", "zstd", "blosc", "zfp", "bytesplit"};

sym_codec sym_codec_default(sym_codec_id id) {
    sym_codec c = {id, 0, SYM_BLOSC_BYTE, SYM_BLOSC_LZ4};
    if (id == SYM_CODEC_ZSTD || id == SYM_CODEC_BYTESPLIT) c.level = SYM_CODEC_ZSTD_DEFAULT_LEVEL;
    if (id == SYM_CODEC_BLOSC) c.level = SYM_CODEC_BLOSC_DEFAULT_LEVEL;
    return c;
}

const char *sym_codec_id_name(sym_codec_id id) {
    return (unsigned)id < SYM_CODEC_COUNT ? k_names[id] : "?";
}

const char *sym_codec_describe(const sym_codec *c, char *buf, size_t cap) {
    switch (c->id) {
    case SYM_CODEC_ZSTD:
    case SYM_CODEC_BYTESPLIT:
        snprintf(buf, cap, "%s-%d", k_names[c->id], c->level);
        break;
    case SYM_CODEC_BLOSC:
        snprintf(buf, cap, "blosc-%s-%s-%d", c->shuffle == SYM_BLOSC_BIT ? "bit" : "byte",
                 c->inner == SYM_BLOSC_ZSTD ? "zstd" : "lz4", c->level);
        break;
    default:
        snprintf(buf, cap, "%s", sym_codec_id_name(c->id));
    }
    return buf;
}

sym_status sym_codec_id_parse(const char *name, sym_codec_id *out) {
    for (int i = 0; i < SYM_CODEC_COUNT; i++)
        if (!strcmp(name, k_names[i])) {
            *out = (sym_codec_id)i;
            return SYM_OK;
        }
    return SYM_FAIL(SYM_ERR_ARG, "codec: unknown codec '%s' (none, zstd, blosc, zfp, bytesplit)",
                    name);
}

bool sym_codec_available(sym_codec_id id) {
#if !SYM_HAVE_BLOSC
    if (id == SYM_CODEC_BLOSC) return false;
#endif
#if !SYM_HAVE_ZFP
    if (id == SYM_CODEC_ZFP) return false;
#endif
    return (unsigned)id < SYM_CODEC_COUNT;
}

sym_status sym_codec_check(const sym_codec *c, uint32_t elem_size) {
    SYM_CHECK((unsigned)c->id < SYM_CODEC_COUNT, SYM_ERR_ARG, "codec: unknown codec id %d",
              (int)c->id);
    SYM_CHECK(elem_size == 2 || elem_size == 4, SYM_ERR_ARG,
              "codec: element size %u (2 or 4 expected)", elem_size);
    if (!sym_codec_available(c->id))
        return SYM_FAIL(SYM_ERR_UNSUPPORTED, "codec: %s was left out of this build (static "
                        "build without its library)", k_names[c->id]);
    switch (c->id) {
    case SYM_CODEC_ZSTD:
    case SYM_CODEC_BYTESPLIT:
        SYM_CHECK(c->level >= 1 && c->level <= ZSTD_MAX_LEVEL, SYM_ERR_ARG,
                  "codec: %s level %d is out of range (1..%d)", k_names[c->id], c->level,
                  ZSTD_MAX_LEVEL);
        break;
    case SYM_CODEC_BLOSC:
        SYM_CHECK(c->level >= 1 && c->level <= BLOSC_MAX_LEVEL, SYM_ERR_ARG,
                  "codec: blosc level %d is out of range (1..%d)", c->level, BLOSC_MAX_LEVEL);
        SYM_CHECK((unsigned)c->shuffle <= SYM_BLOSC_BIT && (unsigned)c->inner <= SYM_BLOSC_ZSTD,
                  SYM_ERR_ARG, "codec: unknown blosc shuffle %d or compressor %d",
                  (int)c->shuffle, (int)c->inner);
        break;
    case SYM_CODEC_ZFP:
        if (elem_size != 4)
            return SYM_FAIL(SYM_ERR_UNSUPPORTED, "codec: zfp codes f32 only (ZFP has no 16-bit "
                            "float type; widened to f32 the stream outgrows the input)");
        break;
    default:
        break;
    }
    return SYM_OK;
}

/* ---- context ----------------------------------------------------------------------------------- */

sym_status sym_codec_ctx_create(sym_codec_ctx **out) {
    *out = NULL;
    sym_codec_ctx *c = sym_calloc(1, sizeof *c);
    if (!c) return SYM_FAIL(SYM_ERR_OOM, "codec: out of memory");
    c->cctx = ZSTD_createCCtx();
    c->dctx = ZSTD_createDCtx();
    if (!c->cctx || !c->dctx) {
        sym_codec_ctx_destroy(c);
        return SYM_FAIL(SYM_ERR_OOM, "codec: out of memory for zstd contexts");
    }
    *out = c;
    return SYM_OK;
}

void sym_codec_ctx_destroy(sym_codec_ctx *c) {
    if (!c) return;
    ZSTD_freeCCtx(c->cctx);
    ZSTD_freeDCtx(c->dctx);
    sym_free(c->scratch[0]);
    sym_free(c->scratch[1]);
    sym_free(c);
}

/* Scratch buffer i of at least n bytes (contents not kept when it grows). */
static sym_status scratch(sym_codec_ctx *c, int i, size_t n, void **out) {
    if (c->scratch_cap[i] < n) {
        sym_free(c->scratch[i]);
        c->scratch_cap[i] = 0;
        c->scratch[i] = sym_malloc(n);
        if (!c->scratch[i])
            return SYM_FAIL(SYM_ERR_OOM, "codec: out of memory for %zu bytes of scratch", n);
        c->scratch_cap[i] = n;
    }
    *out = c->scratch[i];
    return SYM_OK;
}

/* ---- zstd -------------------------------------------------------------------------------------- */

static sym_status zstd_compress(sym_codec_ctx *c, int level, const void *src, size_t n, void *dst,
                                size_t cap, size_t *out_n) {
    size_t r = ZSTD_compressCCtx(c->cctx, dst, cap, src, n, level);
    if (ZSTD_isError(r)) {
        if (ZSTD_getErrorCode(r) == ZSTD_error_dstSize_tooSmall)
            return SYM_FAIL(SYM_ERR_RANGE, "codec: zstd stream does not fit in %zu bytes", cap);
        return SYM_FAIL(SYM_ERR_INTERNAL, "codec: zstd: %s", ZSTD_getErrorName(r));
    }
    *out_n = r;
    return SYM_OK;
}

static sym_status zstd_decompress(sym_codec_ctx *c, const void *src, size_t n, void *dst,
                                  size_t raw_n) {
    unsigned long long want = ZSTD_getFrameContentSize(src, n);
    if (want == ZSTD_CONTENTSIZE_ERROR || want == ZSTD_CONTENTSIZE_UNKNOWN || want != raw_n)
        return SYM_FAIL(SYM_ERR_FORMAT, "codec: zstd frame header is damaged or declares %s "
                        "bytes, %zu expected", want == ZSTD_CONTENTSIZE_ERROR ? "no valid" :
                        want == ZSTD_CONTENTSIZE_UNKNOWN ? "unknown" : "other", raw_n);
    size_t r = ZSTD_decompressDCtx(c->dctx, dst, raw_n, src, n);
    if (ZSTD_isError(r))
        return SYM_FAIL(SYM_ERR_FORMAT, "codec: zstd stream is damaged: %s", ZSTD_getErrorName(r));
    if (r != raw_n)
        return SYM_FAIL(SYM_ERR_FORMAT, "codec: zstd stream holds %zu bytes, %zu expected", r,
                        raw_n);
    return SYM_OK;
}

/* ---- byte planes ------------------------------------------------------------------------------- */

/* plane[p][i] = byte (es - 1 - p) of element i: plane 0 holds the most significant bytes. */
static void split_planes(const uint8_t *src, size_t n_el, uint32_t es, uint8_t *const *plane) {
    if (es == 2) {
        uint8_t *hi = plane[0], *lo = plane[1];
        for (size_t i = 0; i < n_el; i++) {
            lo[i] = src[2 * i];
            hi[i] = src[2 * i + 1];
        }
        return;
    }
    uint8_t *p0 = plane[0], *p1 = plane[1], *p2 = plane[2], *p3 = plane[3];
    for (size_t i = 0; i < n_el; i++) {
        p3[i] = src[4 * i];
        p2[i] = src[4 * i + 1];
        p1[i] = src[4 * i + 2];
        p0[i] = src[4 * i + 3];
    }
}

static void join_planes(const uint8_t *const *plane, size_t n_el, uint32_t es, uint8_t *dst) {
    if (es == 2) {
        const uint8_t *hi = plane[0], *lo = plane[1];
        for (size_t i = 0; i < n_el; i++) {
            dst[2 * i] = lo[i];
            dst[2 * i + 1] = hi[i];
        }
        return;
    }
    const uint8_t *p0 = plane[0], *p1 = plane[1], *p2 = plane[2], *p3 = plane[3];
    for (size_t i = 0; i < n_el; i++) {
        dst[4 * i] = p3[i];
        dst[4 * i + 1] = p2[i];
        dst[4 * i + 2] = p1[i];
        dst[4 * i + 3] = p0[i];
    }
}

static void put_u64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static uint64_t get_u64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static sym_status split_compress(sym_codec_ctx *c, int level, uint32_t es, const uint8_t *src,
                                 size_t n, uint8_t *dst, size_t cap, size_t *out_n) {
    size_t n_el = n / es, tail = n % es, pos = SPLIT_HEADER(es);
    if (cap < pos + tail) return SYM_FAIL(SYM_ERR_RANGE, "codec: bytesplit does not fit");
    void *planes = NULL;
    SYM_TRY(scratch(c, 0, n_el * es, &planes));
    uint8_t *plane_at[SPLIT_MAX_PLANES] = {NULL};
    for (uint32_t p = 0; p < es; p++) plane_at[p] = (uint8_t *)planes + p * n_el;
    split_planes(src, n_el, es, plane_at);
    dst[0] = (uint8_t)es;
    for (uint32_t p = 0; p < es; p++) {
        const uint8_t *plane = plane_at[p];
        size_t room = cap - tail - pos, got = 0;
        sym_status st = n_el ? SYM_OK : SYM_ERR_RANGE;
        /* a plane whose first bytes do not shrink is mantissa noise: not worth a zstd pass */
        if (st == SYM_OK && n_el > 2 * SPLIT_PROBE_BYTES && room >= SPLIT_PROBE_BYTES) {
            st = zstd_compress(c, level, plane, SPLIT_PROBE_BYTES, dst + pos, room, &got);
            if (st == SYM_OK && got >= SPLIT_PROBE_BYTES / 100 * 99) st = SYM_ERR_RANGE;
        }
        if (st == SYM_OK) st = zstd_compress(c, level, plane, n_el, dst + pos, room, &got);
        if (st != SYM_OK && st != SYM_ERR_RANGE) return st;
        uint8_t mode = 1;
        if (st == SYM_ERR_RANGE || got >= n_el) {
            /* zstd does not shrink this plane (mantissa noise): keep it raw */
            if (n_el > room) return SYM_FAIL(SYM_ERR_RANGE, "codec: bytesplit does not fit");
            if (n_el) memcpy(dst + pos, plane, n_el); /* plane is NULL when empty */
            got = n_el;
            mode = 0;
        }
        dst[1 + 9 * p] = mode;
        put_u64(dst + 2 + 9 * p, got);
        pos += got;
    }
    if (tail) memcpy(dst + pos, src + n_el * es, tail);
    *out_n = pos + tail;
    return SYM_OK;
}

static sym_status split_decompress(sym_codec_ctx *c, uint32_t es, const uint8_t *src, size_t n,
                                   uint8_t *dst, size_t raw_n) {
    size_t n_el = raw_n / es, tail = raw_n % es, pos = SPLIT_HEADER(es);
    if (n < pos + tail || src[0] != es)
        return SYM_FAIL(SYM_ERR_FORMAT, "codec: bytesplit header is damaged (%zu bytes, %u "
                        "planes)", n, n ? src[0] : 0);
    void *planes = NULL;
    SYM_TRY(scratch(c, 0, n_el * es, &planes));
    const uint8_t *plane_at[SPLIT_MAX_PLANES] = {NULL};
    for (uint32_t p = 0; p < es; p++) {
        uint8_t mode = src[1 + 9 * p];
        uint64_t len = get_u64(src + 2 + 9 * p);
        if (mode > 1 || len > n - tail - pos || (mode == 0 && len != n_el))
            return SYM_FAIL(SYM_ERR_FORMAT, "codec: bytesplit plane %u is damaged (mode %u, %llu "
                            "bytes)", p, mode, (unsigned long long)len);
        if (mode == 0) { /* a raw plane is joined straight from the stream */
            plane_at[p] = src + pos;
        } else {
            uint8_t *plane = (uint8_t *)planes + p * n_el;
            SYM_TRY(zstd_decompress(c, src + pos, (size_t)len, plane, n_el));
            plane_at[p] = plane;
        }
        pos += (size_t)len;
    }
    if (pos + tail != n)
        return SYM_FAIL(SYM_ERR_FORMAT, "codec: bytesplit stream has %zu bytes, its planes %zu",
                        n, pos + tail);
    join_planes(plane_at, n_el, es, dst);
    if (tail) memcpy(dst + n_el * es, src + pos, tail);
    return SYM_OK;
}

/* ---- Blosc ------------------------------------------------------------------------------------- */

#if SYM_HAVE_BLOSC
static sym_status blosc_pack(const sym_codec *k, uint32_t es, const void *src, size_t n,
                                 void *dst, size_t cap, size_t *out_n) {
    if (n > BLOSC_MAX_BUFFERSIZE)
        return SYM_FAIL(SYM_ERR_UNSUPPORTED, "codec: blosc buffers hold at most %d bytes (%zu "
                        "given)", BLOSC_MAX_BUFFERSIZE, n);
    int r = blosc_compress_ctx(k->level, k->shuffle == SYM_BLOSC_BIT ? BLOSC_BITSHUFFLE
                                                                     : BLOSC_SHUFFLE,
                               es, n, src, dst, cap, k->inner == SYM_BLOSC_ZSTD ? "zstd" : "lz4",
                               0, 1);
    if (r < 0) return SYM_FAIL(SYM_ERR_INTERNAL, "codec: blosc_compress_ctx failed (%d)", r);
    if (r == 0) return SYM_FAIL(SYM_ERR_RANGE, "codec: blosc stream does not fit in %zu", cap);
    *out_n = (size_t)r;
    return SYM_OK;
}

static sym_status blosc_unpack(const void *src, size_t n, void *dst, size_t raw_n) {
    size_t nbytes = 0, cbytes = 0, block = 0;
    if (n < BLOSC_MIN_HEADER_LENGTH || blosc_cbuffer_validate(src, n, &nbytes) != 0)
        return SYM_FAIL(SYM_ERR_FORMAT, "codec: blosc header is damaged");
    blosc_cbuffer_sizes(src, &nbytes, &cbytes, &block);
    if (nbytes != raw_n || cbytes != n)
        return SYM_FAIL(SYM_ERR_FORMAT, "codec: blosc stream declares %zu bytes in %zu, %zu in "
                        "%zu expected", nbytes, cbytes, raw_n, n);
    int r = blosc_decompress_ctx(src, dst, raw_n, 1);
    if (r < 0 || (size_t)r != raw_n)
        return SYM_FAIL(SYM_ERR_FORMAT, "codec: blosc stream is damaged (%d)", r);
    return SYM_OK;
}
#endif

/* ---- ZFP --------------------------------------------------------------------------------------- */

#if SYM_HAVE_ZFP
/* A reversible-mode stream over n_f floats at data; *max_bytes gets its worst-case size. */
static sym_status zfp_open(void *data, size_t n_f, zfp_field **f, zfp_stream **z,
                           size_t *max_bytes) {
    *f = zfp_field_1d(data, zfp_type_float, n_f);
    *z = zfp_stream_open(NULL);
    if (!*f || !*z) {
        zfp_field_free(*f);
        zfp_stream_close(*z);
        return SYM_FAIL(SYM_ERR_OOM, "codec: out of memory for zfp");
    }
    zfp_stream_set_reversible(*z);
    *max_bytes = zfp_stream_maximum_size(*z, *f);
    return SYM_OK;
}

static void zfp_done(zfp_field *f, zfp_stream *z) {
    stream_close(zfp_stream_bit_stream(z));
    zfp_stream_close(z);
    zfp_field_free(f);
}

/* A zfp stream: the raw size (u64, little-endian: the decoder cannot tell a size that is off by a
 * few bytes from the bits alone), the reversible zfp bits of the whole f32s, the 0-3 tail bytes. */
#define ZFP_HEADER 8

static sym_status zfp_compress_f32(sym_codec_ctx *c, const uint8_t *src, size_t n, uint8_t *dst,
                                   size_t cap, size_t *out_n) {
    if (cap < ZFP_HEADER) return SYM_FAIL(SYM_ERR_RANGE, "codec: zfp stream does not fit in %zu", cap);
    for (int i = 0; i < ZFP_HEADER; i++) dst[i] = (uint8_t)((uint64_t)n >> (8 * i));
    dst += ZFP_HEADER;
    cap -= ZFP_HEADER;
    size_t n_f = n / 4, tail = n % 4, max = 0, got = 0;
    if (n_f) {
        zfp_field *f;
        zfp_stream *z;
        void *buf = NULL;
        SYM_TRY(zfp_open((void *)src, n_f, &f, &z, &max));
        sym_status st = scratch(c, 0, max, &buf);
        bitstream *bs = st == SYM_OK ? stream_open(buf, max) : NULL;
        if (st == SYM_OK && !bs) st = SYM_FAIL(SYM_ERR_OOM, "codec: out of memory for zfp");
        if (st == SYM_OK) {
            zfp_stream_set_bit_stream(z, bs);
            zfp_stream_rewind(z);
            got = zfp_compress(z, f);
            if (!got) st = SYM_FAIL(SYM_ERR_INTERNAL, "codec: zfp_compress failed");
        }
        zfp_done(f, z);
        SYM_TRY(st);
        if (got + tail > cap)
            return SYM_FAIL(SYM_ERR_RANGE, "codec: zfp stream does not fit in %zu", cap);
        memcpy(dst, buf, got);
    } else if (tail > cap) {
        return SYM_FAIL(SYM_ERR_RANGE, "codec: zfp stream does not fit in %zu", cap);
    }
    if (tail) memcpy(dst + got, src + n_f * 4, tail);
    *out_n = ZFP_HEADER + got + tail;
    return SYM_OK;
}

static sym_status zfp_decompress_f32(sym_codec_ctx *c, const uint8_t *src, size_t n, uint8_t *dst,
                                     size_t raw_n) {
    if (n < ZFP_HEADER) return SYM_FAIL(SYM_ERR_FORMAT, "codec: zfp stream is truncated");
    uint64_t stored = 0;
    for (int i = 0; i < ZFP_HEADER; i++) stored |= (uint64_t)src[i] << (8 * i);
    if (stored != raw_n)
        return SYM_FAIL(SYM_ERR_FORMAT, "codec: zfp stream holds %llu bytes, not %zu",
                        (unsigned long long)stored, raw_n);
    src += ZFP_HEADER;
    n -= ZFP_HEADER;
    size_t n_f = raw_n / 4, tail = raw_n % 4;
    if (n < tail) return SYM_FAIL(SYM_ERR_FORMAT, "codec: zfp stream is truncated");
    size_t zn = n - tail;
    if (n_f == 0) {
        if (zn) return SYM_FAIL(SYM_ERR_FORMAT, "codec: zfp stream too long");
        if (tail) memcpy(dst, src, tail);
        return SYM_OK;
    }
    /* decode from a zero-padded copy as large as the worst-case stream: the decoder trusts its
     * input and would read past a damaged stream's end otherwise */
    bool aligned = ((uintptr_t)dst & 3u) == 0;
    void *in = NULL, *out = dst;
    zfp_field *f;
    zfp_stream *z;
    size_t max = 0;
    if (!aligned) SYM_TRY(scratch(c, 1, n_f * 4, &out));
    SYM_TRY(zfp_open(out, n_f, &f, &z, &max));
    sym_status st = SYM_OK;
    if (zn > max)
        st = SYM_FAIL(SYM_ERR_FORMAT, "codec: zfp stream of %zu bytes for %zu floats (at most "
                      "%zu)", zn, n_f, max);
    if (st == SYM_OK) st = scratch(c, 0, max + ZFP_SLACK, &in);
    bitstream *bs = NULL;
    if (st == SYM_OK) {
        memcpy(in, src, zn);
        memset((uint8_t *)in + zn, 0, max + ZFP_SLACK - zn);
        bs = stream_open(in, max + ZFP_SLACK);
        if (!bs) st = SYM_FAIL(SYM_ERR_OOM, "codec: out of memory for zfp");
    }
    if (st == SYM_OK) {
        zfp_stream_set_bit_stream(z, bs);
        zfp_stream_rewind(z);
        size_t used = zfp_decompress(z, f);
        if (used != zn)
            st = SYM_FAIL(SYM_ERR_FORMAT, "codec: zfp stream is damaged (decoding used %zu of "
                          "%zu bytes)", used, zn);
    }
    zfp_done(f, z);
    SYM_TRY(st);
    if (!aligned) memcpy(dst, out, n_f * 4);
    if (tail) memcpy(dst + n_f * 4, src + zn, tail);
    return SYM_OK;
}
#endif

/* ---- scratch ----------------------------------------------------------------------------------- */

size_t sym_codec_decompress_scratch(const sym_codec *c, uint32_t elem_size, size_t raw_n) {
    sym_status st = sym_codec_check(c, elem_size);
    if (st != SYM_OK) {
        sym_clear_error();
        return 0;
    }
    if (c->id == SYM_CODEC_BYTESPLIT) return raw_n / elem_size * elem_size;
#if SYM_HAVE_ZFP
    if (c->id == SYM_CODEC_ZFP && raw_n >= 4) {
        zfp_field *f;
        zfp_stream *z;
        size_t max = 0;
        if (zfp_open(NULL, raw_n / 4, &f, &z, &max) != SYM_OK) {
            sym_clear_error();
            return 0;
        }
        zfp_stream_close(z);
        zfp_field_free(f);
        return max + ZFP_SLACK;
    }
#endif
    return 0;
}

sym_status sym_codec_ctx_reserve(sym_codec_ctx *ctx, const sym_codec *c, uint32_t elem_size,
                                 size_t raw_n) {
    size_t n = sym_codec_decompress_scratch(c, elem_size, raw_n);
    void *p;
    return n ? scratch(ctx, 0, n, &p) : SYM_OK;
}

/* ---- dispatch ---------------------------------------------------------------------------------- */

sym_status sym_codec_compress(sym_codec_ctx *ctx, const sym_codec *c, uint32_t elem_size,
                              const void *src, size_t n, void *dst, size_t cap, size_t *out_n) {
    SYM_TRY(sym_codec_check(c, elem_size));
    switch (c->id) {
    case SYM_CODEC_NONE:
        if (n > cap) return SYM_FAIL(SYM_ERR_RANGE, "codec: %zu bytes do not fit in %zu", n, cap);
        if (n) memcpy(dst, src, n);
        *out_n = n;
        return SYM_OK;
    case SYM_CODEC_ZSTD:
        return zstd_compress(ctx, c->level, src, n, dst, cap, out_n);
    case SYM_CODEC_BYTESPLIT:
        return split_compress(ctx, c->level, elem_size, src, n, dst, cap, out_n);
#if SYM_HAVE_BLOSC
    case SYM_CODEC_BLOSC:
        return blosc_pack(c, elem_size, src, n, dst, cap, out_n);
#endif
#if SYM_HAVE_ZFP
    case SYM_CODEC_ZFP:
        return zfp_compress_f32(ctx, src, n, dst, cap, out_n);
#endif
    default:
        return SYM_FAIL(SYM_ERR_INTERNAL, "codec: id %d not dispatched", (int)c->id);
    }
}

sym_status sym_codec_decompress(sym_codec_ctx *ctx, const sym_codec *c, uint32_t elem_size,
                                const void *src, size_t n, void *dst, size_t raw_n) {
    SYM_TRY(sym_codec_check(c, elem_size));
    switch (c->id) {
    case SYM_CODEC_NONE:
        if (n != raw_n)
            return SYM_FAIL(SYM_ERR_FORMAT, "codec: raw stream of %zu bytes, %zu expected", n,
                            raw_n);
        if (n) memcpy(dst, src, n);
        return SYM_OK;
    case SYM_CODEC_ZSTD:
        return zstd_decompress(ctx, src, n, dst, raw_n);
    case SYM_CODEC_BYTESPLIT:
        return split_decompress(ctx, elem_size, src, n, dst, raw_n);
#if SYM_HAVE_BLOSC
    case SYM_CODEC_BLOSC:
        return blosc_unpack(src, n, dst, raw_n);
#endif
#if SYM_HAVE_ZFP
    case SYM_CODEC_ZFP:
        return zfp_decompress_f32(ctx, src, n, dst, raw_n);
#endif
    default:
        return SYM_FAIL(SYM_ERR_INTERNAL, "codec: id %d not dispatched", (int)c->id);
    }
}
