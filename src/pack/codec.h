/* codec.h — lossless codecs for pack buffers: none, zstd, Blosc (byte or bit shuffle + lz4 or
 * zstd), ZFP in reversible mode (f32 only), and a byte-plane split before zstd ("bytesplit").
 *
 * A pack buffer holds weights of one element size (2 for f16/bf16, 4 for f32; a mixed pack uses
 * its dominant type, which only costs ratio). Every codec is lossless on every bit pattern
 * (NaN payloads, infinities, denormals, padding bytes) — the tests check each codec and dtype.
 *
 *   none       the bytes as they are
 *   zstd       one zstd frame of the buffer at `level` (1..19)
 *   blosc      Blosc 1 with typesize = element size, BLOSC_SHUFFLE (bytes) or BLOSC_BITSHUFFLE
 *              (bits), inner compressor lz4 or zstd at `level` (1..9)
 *   zfp        ZFP 1.0 reversible (lossless) mode over the buffer as a 1-D f32 array (a 0–3 byte
 *              tail is appended raw). ZFP has no 16-bit float types, and widening f16/bf16 to f32
 *              makes the stream larger than the 16-bit input (bench_codec measures it), so zfp is
 *              SYM_ERR_UNSUPPORTED for element size 2.
 *   bytesplit  the buffer's byte planes (for f16/bf16: all high bytes — sign and exponent — then
 *              all low bytes; for f32 four planes), each compressed by zstd at `level` or kept raw
 *              when zstd does not shrink it (mantissa planes are noise: storing them raw keeps
 *              decompression at memcpy speed)
 *
 * Streams carry no sizes of their own that are trusted: the caller knows the raw size (the pack
 * table stores it) and decompression must produce exactly that many bytes, else
 * SYM_ERR_FORMAT. A damaged stream never writes outside dst nor reads outside src (ZFP, which
 * does not bound its reads, decodes from a zero-padded copy sized for its worst case).
 *
 * Threads: a sym_codec_ctx holds the codec libraries' state and scratch; use one per thread.
 */
#ifndef SYM_PACK_CODEC_H
#define SYM_PACK_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/status.h"

typedef enum sym_codec_id {
    SYM_CODEC_NONE = 0,
    SYM_CODEC_ZSTD = 1,
    SYM_CODEC_BLOSC = 2,
    SYM_CODEC_ZFP = 3,
    SYM_CODEC_BYTESPLIT = 4,
    SYM_CODEC_COUNT
} sym_codec_id;

typedef enum sym_blosc_shuffle {
    SYM_BLOSC_BYTE = 0, /* byte shuffle */
    SYM_BLOSC_BIT = 1,  /* bit shuffle */
} sym_blosc_shuffle;

typedef enum sym_blosc_inner {
    SYM_BLOSC_LZ4 = 0,
    SYM_BLOSC_ZSTD = 1,
} sym_blosc_inner;

/* One codec with its parameters: what a pack table entry records. */
typedef struct sym_codec {
    sym_codec_id id;
    int level;                 /* zstd, bytesplit: 1..19; blosc: 1..9; ignored otherwise */
    sym_blosc_shuffle shuffle; /* blosc only */
    sym_blosc_inner inner;     /* blosc only */
} sym_codec;

#define SYM_CODEC_ZSTD_DEFAULT_LEVEL  3
#define SYM_CODEC_BLOSC_DEFAULT_LEVEL 5

/* Default parameters for id (zstd level 3; blosc byte shuffle + lz4 level 5). */
sym_codec sym_codec_default(sym_codec_id id);

/* "none", "zstd", "blosc", "zfp", "bytesplit"; "?" for an unknown id. */
const char *sym_codec_id_name(sym_codec_id id);
/* A short description with parameters: "zstd-3", "blosc-bit-lz4-5", "bytesplit-3", "zfp". */
const char *sym_codec_describe(const sym_codec *c, char *buf, size_t cap);
/* Parses an id name (as above). SYM_ERR_ARG for anything else. */
sym_status sym_codec_id_parse(const char *name, sym_codec_id *out);

/* Whether this build has the codec (Blosc and ZFP may be left out of static builds). */
bool sym_codec_available(sym_codec_id id);
/* SYM_OK if c can code buffers of elements of elem_size bytes (2 or 4) in this build:
 * SYM_ERR_ARG for an unknown id, a level out of range or a bad elem_size;
 * SYM_ERR_UNSUPPORTED for a codec left out of the build or zfp on 16-bit elements. */
sym_status sym_codec_check(const sym_codec *c, uint32_t elem_size);

typedef struct sym_codec_ctx sym_codec_ctx;

/* SYM_ERR_OOM. Caller owns *out (sym_codec_ctx_destroy; NULL is fine). */
sym_status sym_codec_ctx_create(sym_codec_ctx **out);
void sym_codec_ctx_destroy(sym_codec_ctx *ctx);

/* Compresses src (n bytes, a multiple of elem_size) into dst (cap bytes). *out_n gets the stream
 * size. Returns SYM_ERR_RANGE (nothing usable in dst) when the stream would not fit in cap —
 * callers pass cap = n to keep only streams that are smaller than the input. SYM_ERR_ARG /
 * SYM_ERR_UNSUPPORTED as sym_codec_check, SYM_ERR_OOM, SYM_ERR_INTERNAL if a library fails. */
sym_status sym_codec_compress(sym_codec_ctx *ctx, const sym_codec *c, uint32_t elem_size,
                              const void *src, size_t n, void *dst, size_t cap, size_t *out_n);

/* Decompresses src (n bytes) into exactly raw_n bytes at dst. SYM_ERR_FORMAT if the stream is
 * damaged or does not decode to exactly raw_n bytes (dst may then hold anything, but nothing
 * outside [dst, dst + raw_n) is written); other errors as above. */
sym_status sym_codec_decompress(sym_codec_ctx *ctx, const sym_codec *c, uint32_t elem_size,
                                const void *src, size_t n, void *dst, size_t raw_n);

/* Bytes of scratch a ctx holds after decompressing raw_n bytes with c into a 4-byte aligned dst:
 * raw_n for bytesplit (the decoded planes), zfp's worst-case stream plus slack for zfp (its
 * zero-padded input copy), 0 for none, zstd and blosc (their libraries' own few kB aside).
 * 0 as well when c does not apply (sym_codec_check fails). */
size_t sym_codec_decompress_scratch(const sym_codec *c, uint32_t elem_size, size_t raw_n);
/* Grows ctx's scratch to sym_codec_decompress_scratch(c, elem_size, raw_n) now, so that such a
 * decompression allocates nothing of ours later (a streaming reader sizes it once, for its
 * largest pack, and counts it in its memory budget). SYM_ERR_OOM. */
sym_status sym_codec_ctx_reserve(sym_codec_ctx *ctx, const sym_codec *c, uint32_t elem_size,
                                 size_t raw_n);

#endif
