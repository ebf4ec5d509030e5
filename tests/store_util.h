/* store_util.h — what the pack-store tests share. */
#ifndef SYM_TESTS_STORE_UTIL_H
#define SYM_TESTS_STORE_UTIL_H

#include "pack/store.h"

/* Write options of the tests' stores: codec id for every pack (SYM_CODEC_COUNT: chosen per pack,
 * auto_codec), packs of at most limit bytes, two threads. */
static inline sym_store_write_options test_store_opts(sym_codec_id id, uint64_t limit) {
    sym_store_write_options o;
    sym_store_write_options_init(&o);
    o.auto_codec = id == SYM_CODEC_COUNT;
    if (!o.auto_codec) o.codec = sym_codec_default(id);
    o.max_pack_bytes = limit;
    o.n_threads = 2;
    return o;
}

#endif
