/* Writes the pack store fuzzer's seeds (tests/fuzz/seeds/fuzz_store/, about 20 KiB each): the two
 * tiny GGUF models of fuzz_model packed with every codec that applies. Run it after changing the
 * store format: build-fuzz/tests/fuzz/make_store_seeds tests/fuzz/seeds */
#include <stdio.h>
#include <sys/stat.h>

#include "model/model.h"
#include "pack/store.h"

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s SEED_DIR\n", argv[0]);
        return 2;
    }
    static const char *const models[] = {"llama_f32", "qwen2_f16"};
    static const sym_codec_id codecs[] = {SYM_CODEC_NONE, SYM_CODEC_ZSTD, SYM_CODEC_BLOSC,
                                          SYM_CODEC_ZFP, SYM_CODEC_BYTESPLIT};
    char path[1200], out[1200];
    snprintf(out, sizeof out, "%s/fuzz_store", argv[1]);
    mkdir(out, 0755);
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/fuzz_model/%s.gguf", argv[1], models[i]);
        sym_model *m = NULL;
        if (sym_model_open(path, &m) != SYM_OK) {
            fprintf(stderr, "%s: %s\n", path, sym_last_error());
            return 1;
        }
        for (size_t c = 0; c < sizeof codecs / sizeof *codecs; c++) {
            if (codecs[c] == SYM_CODEC_ZFP && i == 1) continue;
            sym_store_write_options o;
            sym_store_write_options_init(&o);
            o.auto_codec = false;
            o.codec = sym_codec_default(codecs[c]);
            o.min_saving = 0;
            o.n_threads = 1;
            snprintf(out, sizeof out, "%s/fuzz_store/%s_%s.sympack", argv[1], models[i],
                     sym_codec_id_name(codecs[c]));
            if (sym_store_write(m, out, &o, NULL) != SYM_OK) {
                fprintf(stderr, "%s: %s\n", out, sym_last_error());
                return 1;
            }
        }
        sym_model_close(m);
    }
    return 0;
}
