/* store_format.h — the pack store's record sizes and field offsets, shared by the reader
 * (store.c, which documents the layout) and the writer (store_write.c). Internal to pack/. */
#ifndef SYM_PACK_STORE_FORMAT_H
#define SYM_PACK_STORE_FORMAT_H

#include <stdint.h>

#define ST_HEADER_BYTES  128u
#define ST_HPARAMS_BYTES 128u
#define ST_BLOB_BYTES    24u
#define ST_WEIGHT_BYTES  96u
#define ST_PACK_BYTES    96u
#define ST_PIECE_BYTES   32u
#define ST_RANGE_BYTES   32u
#define ST_USE_BYTES     8u
#define ST_NAME_BYTES    48u
#define ST_ARCH_BYTES    32u
#define ST_BLOB_ALIGN    8u

/* header fields */
enum {
    H_MAGIC = 0, H_VERSION = 8, H_HEADER_BYTES = 12, H_FILE_BYTES = 16, H_TABLES_OFFSET = 24,
    H_TABLES_BYTES = 32, H_DATA_OFFSET = 40, H_N_WEIGHTS = 48, H_N_PACKS = 52, H_N_PIECES = 56,
    H_N_RANGES = 60, H_N_USES = 64, H_N_BLOBS = 68, H_MAX_PACK_BYTES = 72, H_CUT = 80,
    H_SOURCE = 84, H_RAW_BYTES = 88, H_STORED_BYTES = 96, H_TABLES_HASH = 104, H_RESERVED = 112,
    H_HEADER_HASH = 120,
};

/* hyperparameter record fields */
enum {
    HP_ARCH = 0, HP_N_EMBD = 32, HP_N_LAYER = 36, HP_N_HEAD = 40, HP_N_HEAD_KV = 44,
    HP_HEAD_DIM = 48, HP_N_FF = 52, HP_N_VOCAB = 56, HP_N_CTX = 60, HP_ROPE_THETA = 64,
    HP_ROPE_SCALE = 68, HP_RMS_EPS = 72, HP_ROPE_NEOX = 76, HP_TIED = 77, HP_QKV_BIAS = 78,
    HP_EXPERT_SPLIT = 79, HP_BOS = 80, HP_EOS = 88, HP_N_EXPERT = 96, HP_N_EXPERT_USED = 100,
    HP_END = 104, /* bytes [HP_END, 128) are zero */
};

/* blob kinds */
enum { ST_BLOB_GGUF_META = 1, ST_BLOB_TOKENIZER_JSON = 2, ST_BLOB_TOKENIZER_CONFIG = 3 };

/* weight record fields */
enum {
    W_NAME = 0, W_ROLE = 48, W_LAYER = 52, W_DTYPE = 56, W_SRC_FILE = 60, W_N_ROWS = 64,
    W_N_COLS = 72, W_SRC_OFFSET = 80,
};

/* pack record fields */
enum {
    P_ID = 0, P_TYPE = 4, P_LAYER = 8, P_FLAGS = 12, P_PIECE0 = 16, P_N_PIECES = 20,
    P_RANGE0 = 24, P_N_RANGES = 28, P_FIRST_USE = 32, P_CODEC = 36, P_SHUFFLE = 37, P_INNER = 38,
    P_LEVEL = 39, P_ELEM_SIZE = 40, P_N_BYTES = 48, P_RAW_BYTES = 56, P_STORED_BYTES = 64,
    P_FILE_OFFSET = 72, P_RAW_HASH = 80, P_STORED_HASH = 88,
};
#define ST_PACK_OVERSIZED 1u

/* piece, range and schedule records */
enum { PC_WEIGHT = 0, PC_ROW0 = 8, PC_N_ROWS = 16, PC_PACK_OFFSET = 24 };
enum { R_SRC_FILE = 0, R_SRC_OFFSET = 8, R_N_BYTES = 16, R_PACK_OFFSET = 24 };
enum { U_PACK = 0, U_KIND = 4 };

static inline void st_put_u32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline void st_put_u64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint32_t st_u32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t st_u64(const uint8_t *p) {
    return (uint64_t)st_u32(p) | (uint64_t)st_u32(p + 4) << 32;
}

#endif
