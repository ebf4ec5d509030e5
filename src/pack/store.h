/* store.h — the pack store: one file (MODEL.sympack) holding a model's packs, each compressed
 * by its own codec (or raw), checksummed, and aligned to 4 KiB for O_DIRECT reads; plus what is
 * needed to open it as a model without the source: hyperparameters, the tokenizer (a GGUF
 * source's metadata copied byte for byte; a safetensors source's tokenizer.json and
 * tokenizer_config.json) and the pack plan (weights, packs, pieces, ranges, schedule).
 * The byte layout is documented at the top of store.c and in docs/PACKSTORE.md.
 *
 * A pack's raw bytes are its buffer exactly as the planner lays it out (pack.h: the pack's
 * file ranges back to back at 256-byte aligned offsets, zero padding between them), so a pack
 * read from the store can be uploaded as it is.
 *
 * Threads: an open store is immutable; sym_store_read_pack_with may run on several threads at
 * once, each with its own sym_store_reader. sym_store_read_pack (no reader) allocates per call.
 */
#ifndef SYM_PACK_STORE_H
#define SYM_PACK_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/gguf.h"
#include "model/model.h"
#include "pack/codec.h"
#include "pack/pack.h"

#define SYM_STORE_MAGIC "SYMPACK" /* 8 bytes with the NUL */
#define SYM_STORE_VERSION 1u
#define SYM_STORE_ALIGN 4096u     /* every pack starts at a multiple; the file size is one too */

/* What the store was made from (how its tokenizer is kept). */
typedef enum sym_store_source {
    SYM_STORE_FROM_GGUF = 0,        /* metadata: a GGUF v3 image of the source's key/values */
    SYM_STORE_FROM_SAFETENSORS = 1, /* tokenizer.json / tokenizer_config.json as they were */
} sym_store_source;

/* The pack table's storage fields (the plan's fields are in sym_store_plan). */
typedef struct sym_store_pack {
    sym_codec codec;
    uint32_t elem_size;    /* the codec's element size: that of the pack's dominant dtype */
    uint64_t raw_bytes;    /* = the plan's buffer_bytes */
    uint64_t stored_bytes; /* <= raw_bytes */
    uint64_t file_offset;  /* a multiple of SYM_STORE_ALIGN */
    uint64_t raw_hash;     /* XXH3-64 of the raw buffer */
    uint64_t stored_hash;  /* XXH3-64 of the stored bytes */
} sym_store_pack;

typedef struct sym_store sym_store;

/* Opens and validates path: header, tables, every pack entry (SYM_ERR_FORMAT naming the field:
 * truncation, bad magic or version, offsets or sizes past the end or overflowing, overlapping
 * packs, unknown codec ids, a plan inconsistent with its weights); SYM_ERR_CHECKSUM if the header
 * or the tables are damaged; SYM_ERR_UNSUPPORTED for a codec this build left out or an
 * architecture it does not run; SYM_ERR_IO, SYM_ERR_OOM. Pack data is read (and checked) only by
 * sym_store_read_pack. The caller owns *out (sym_store_close). */
sym_status sym_store_open(const char *path, sym_store **out);
/* The same over a buffer that the caller keeps alive and unchanged until sym_store_close. */
sym_status sym_store_open_memory(const void *data, size_t size, sym_store **out);
void sym_store_close(sym_store *s);

/* Everything below is owned by the store and valid until sym_store_close. */
const char *sym_store_path(const sym_store *s); /* "(memory)" for sym_store_open_memory */
uint64_t sym_store_file_bytes(const sym_store *s);
sym_store_source sym_store_source_format(const sym_store *s);
const sym_hparams *sym_store_hparams(const sym_store *s);
/* The plan the store was cut with. Its weights' file_offset / file_idx are their places in the
 * source model (ranges refer to those); the bytes are in the packs. */
const sym_pack_plan *sym_store_plan(const sym_store *s);
const sym_store_pack *sym_store_pack_at(const sym_store *s, uint32_t pack_id);
/* Sums over the packs: raw bytes (= the weights plus range padding) and stored bytes. */
uint64_t sym_store_raw_bytes(const sym_store *s);
uint64_t sym_store_stored_bytes(const sym_store *s);
/* GGUF source: its metadata as a parsed GGUF with no tensors; NULL for safetensors sources. */
const sym_gguf *sym_store_gguf(const sym_store *s);
/* Safetensors source: tokenizer.json and tokenizer_config.json text (ptr NULL, len 0 when the
 * source had none), BOS / EOS ids from config.json (-1 if not given). */
sym_str sym_store_tokenizer_json(const sym_store *s);
sym_str sym_store_tokenizer_config(const sym_store *s);
int64_t sym_store_bos_id(const sym_store *s);
int64_t sym_store_eos_id(const sym_store *s);

/* Per-thread scratch for reading packs (stored bytes, codec state). */
typedef struct sym_store_reader sym_store_reader;
sym_status sym_store_reader_create(sym_store_reader **out);
void sym_store_reader_destroy(sym_store_reader *r);

/* Reads pack pack_id into dst (raw_bytes of it): reads the stored bytes, checks their XXH3,
 * decompresses, checks the raw XXH3. SYM_ERR_CHECKSUM naming the pack if either check fails,
 * SYM_ERR_FORMAT if a stream whose checksum matched does not decode, SYM_ERR_IO, SYM_ERR_OOM,
 * SYM_ERR_ARG for an id out of range. dst holds garbage after a failure. */
sym_status sym_store_read_pack_with(const sym_store *s, sym_store_reader *r, uint32_t pack_id,
                                    void *dst);
sym_status sym_store_read_pack(const sym_store *s, uint32_t pack_id, void *dst);

/* The second half of a read, for callers that read the stored bytes themselves (the streaming
 * engine's I/O threads, with O_DIRECT): stored holds pack_id's stored_bytes; checks their XXH3,
 * decompresses into dst (raw_bytes), checks the raw XXH3. Errors as sym_store_read_pack_with,
 * each naming the store and the pack ("pack 7 (mlp, layer 2), 1234 bytes at offset 81920, is
 * damaged"). stored and dst must not overlap. */
sym_status sym_store_decode_pack(const sym_store *s, sym_store_reader *r, uint32_t pack_id,
                                 const void *stored, void *dst);
/* "pack 7 (mlp, layer 2)" into buf; returns buf. */
const char *sym_store_pack_label(const sym_store *s, uint32_t pack_id, char *buf, size_t cap);

/* The largest stored_bytes of any pack. */
uint64_t sym_store_max_stored_bytes(const sym_store *s);
/* The decoder scratch a reader needs for the store's packs (the largest
 * sym_codec_decompress_scratch over them), and sizing r's scratch to it now so that decoding
 * allocates nothing later (SYM_ERR_OOM). */
uint64_t sym_store_decode_scratch_bytes(const sym_store *s);
sym_status sym_store_reader_reserve(const sym_store *s, sym_store_reader *r);
/* Host memory one streaming reader of the store holds: a buffer for the largest pack's stored
 * bytes rounded up to SYM_STORE_ALIGN (the read's O_DIRECT superset) plus the decoder scratch. */
uint64_t sym_store_reader_bytes(const sym_store *s);
/* Packs whose codec is not none. */
uint32_t sym_store_n_compressed(const sym_store *s);

/* ---- writing ----------------------------------------------------------------------------------- */

typedef struct sym_store_write_options {
    /* The codec for every pack; auto_codec picks per pack instead. A pack the codec does not
     * apply to (zfp on f16/bf16) or does not shrink is stored raw (counted in the stats). */
    bool auto_codec;
    sym_codec codec;
    uint64_t max_pack_bytes;  /* the planner's limit */
    sym_pack_cut cut;
    int n_threads;            /* compression threads, caller included (0: all cores) */
    /* auto: a pack costs max(stored / disk rate, raw / (decompression rate x n_threads)) to
     * bring in (reading and decoding overlap), raw bytes raw / disk rate. The candidate with the
     * least cost wins if it saves at least min_saving of the raw bytes, else the pack is raw.
     * Rates are measured on a sample of each pack (up to 1 MiB). */
    double min_saving;        /* default 0.05 */
    double disk_bytes_per_s;  /* default 2e9 (an NVMe SSD) */
    /* Called on the calling thread after each pack is written; a non-zero return stops the
     * write (SYM_ERR_IO "interrupted"; nothing is left behind). May be NULL. */
    int (*progress)(void *user, uint64_t done_raw_bytes, uint64_t total_raw_bytes);
    void *progress_user;
} sym_store_write_options;

/* auto codec (zstd / bytesplit level 3), 32 MiB packs, buddy cut, all cores, 5%, 2 GB/s. */
void sym_store_write_options_init(sym_store_write_options *o);

typedef struct sym_store_write_stats {
    uint32_t n_packs;
    uint32_t n_by_codec[SYM_CODEC_COUNT];
    uint64_t raw_by_codec[SYM_CODEC_COUNT], stored_by_codec[SYM_CODEC_COUNT];
    uint32_t n_not_applicable; /* the chosen codec does not code the pack's element type */
    uint32_t n_not_smaller;    /* the codec did not save min_saving (auto) or anything */
    uint64_t raw_bytes, stored_bytes, file_bytes;
    double seconds;
} sym_store_write_stats;

/* Writes m's packs to out_path: through "out_path.tmp.<pid>" beside it, fsynced and renamed
 * into place only when complete, so an interrupted or failed write leaves no out_path (an
 * existing one stays as it was) and no temporary file. The source files are only read;
 * out_path must not be one of them (SYM_ERR_ARG). Every compressed pack is decompressed again
 * and compared before it is written (SYM_ERR_INTERNAL naming the pack and codec if it differs).
 * SYM_ERR_ARG for bad options, SYM_ERR_IO naming the file and system error, SYM_ERR_OOM.
 * stats may be NULL. */
sym_status sym_store_write(const sym_model *m, const char *out_path,
                           const sym_store_write_options *o, sym_store_write_stats *stats);

#endif
