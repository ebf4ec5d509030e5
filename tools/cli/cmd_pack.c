/* symbiote pack: writes a model's packs into a pack store (OUT.sympack), each compressed by the
 * chosen codec (or the best one per pack with --codec auto) or stored raw. */
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "model/model.h"
#include "pack/store.h"

static void help(FILE *out) {
    fprintf(out,
            "usage: symbiote pack MODEL -o OUT.sympack [options]\n\n"
            "Cuts MODEL (GGUF, safetensors or .sympack) into packs and writes them, each\n"
            "compressed losslessly or raw, with checksums, 4 KiB aligned, into one file that\n"
            "every command opens like the model itself. MODEL is only read.\n\n"
            "  -o, --output PATH       the store to write (replaced if it exists; written under\n"
            "                          a temporary name and renamed when complete)\n"
            "      --codec NAME        auto (default: [memory] compression_algorithm): per pack,\n"
            "                          the fastest to bring in from disk among bytesplit, zstd,\n"
            "                          blosc (and zfp for f32), raw when it saves < --min-saving;\n"
            "                          none | zstd | blosc | zfp (f32 only) | bytesplit\n"
            "      --level N           zstd / bytesplit 1..19 (default 3), blosc 1..9 (default 5)\n"
            "      --shuffle byte|bit  blosc: byte (default) or bit shuffle\n"
            "      --blosc-compressor lz4|zstd   blosc's inner compressor (default lz4)\n"
            "      --max-pack-mb N     largest pack, 1..256 MiB (default: [memory] max_pack_mb; 0: 32)\n"
            "      --pack-cut C        buddy (default) or even (see `symbiote info --packs`)\n"
            "  -t, --threads N         compression threads (default: [performance] n_threads,\n"
            "                          0 = all cores)\n"
            "      --min-saving PCT    auto: store raw below this saving (default 5)\n"
            "      --disk-mb-s N       auto: the disk read rate to optimize for (default 2000)\n"
            "      --no-compression    store every pack raw ([memory] enable_compression = false;\n"
            "                          only packing reads it: a store always decodes what it says)\n"
            "      --config FILE       INI configuration (default: $VK_SYMBIOTE_CONFIG)\n"
            "      --json              print the result as one JSON object\n"
            "  -q, --quiet             no progress display\n"
            "  -h, --help              this help\n");
}


static double mib(uint64_t b) { return (double)b / 1048576.0; }

static void print_result(const char *out, const sym_store_write_stats *s, double min_saving,
                         bool json) {
    if (json) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "output", json_object_new_string(out));
        json_object_object_add(o, "n_packs", json_object_new_int64(s->n_packs));
        json_object_object_add(o, "raw_bytes", json_object_new_uint64(s->raw_bytes));
        json_object_object_add(o, "stored_bytes", json_object_new_uint64(s->stored_bytes));
        json_object_object_add(o, "file_bytes", json_object_new_uint64(s->file_bytes));
        json_object_object_add(o, "seconds", json_object_new_double(s->seconds));
        json_object *by = json_object_new_object();
        for (int c = 0; c < SYM_CODEC_COUNT; c++) {
            if (!s->n_by_codec[c]) continue;
            json_object *e = json_object_new_object();
            json_object_object_add(e, "packs", json_object_new_int64(s->n_by_codec[c]));
            json_object_object_add(e, "raw_bytes", json_object_new_uint64(s->raw_by_codec[c]));
            json_object_object_add(e, "stored_bytes",
                                   json_object_new_uint64(s->stored_by_codec[c]));
            json_object_object_add(by, sym_codec_id_name((sym_codec_id)c), e);
        }
        json_object_object_add(o, "by_codec", by);
        json_object_object_add(o, "raw_not_applicable", json_object_new_int64(s->n_not_applicable));
        json_object_object_add(o, "raw_not_smaller", json_object_new_int64(s->n_not_smaller));
        printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
                                                             JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(o);
        return;
    }
    printf("wrote %s: %u packs, %.2f MiB raw -> %.2f MiB stored (ratio %.3f), file %.2f MiB, "
           "%.1f s\n", out, s->n_packs, mib(s->raw_bytes), mib(s->stored_bytes),
           s->stored_bytes ? (double)s->raw_bytes / (double)s->stored_bytes : 0.0,
           mib(s->file_bytes), s->seconds);
    for (int c = 0; c < SYM_CODEC_COUNT; c++)
        if (s->n_by_codec[c])
            printf("  %-10s %5u packs, %10.2f MiB -> %10.2f MiB (ratio %.3f)\n",
                   sym_codec_id_name((sym_codec_id)c), s->n_by_codec[c], mib(s->raw_by_codec[c]),
                   mib(s->stored_by_codec[c]),
                   (double)s->raw_by_codec[c] / (double)s->stored_by_codec[c]);
    if (s->n_not_applicable)
        printf("  %u packs stored raw: the codec does not apply to their type (zfp: f32 only)\n",
               s->n_not_applicable);
    if (s->n_not_smaller)
        printf("  %u packs stored raw: compression saved less than %.0f%%\n", s->n_not_smaller,
               min_saving * 100.0);
}

int cmd_pack(int argc, char **argv) {
    const char *path = NULL, *out = NULL, *codec = NULL, *cut = NULL, *shuffle = NULL,
               *inner = NULL;
    long long level = 0;
    double min_saving = 5, disk = 2000;
    bool json = false, quiet = false;
    cli_common common;
    cli_common_init(&common);
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            help(stdout);
            return 0;
        }
        if (!strcmp(a, "--json")) { json = true; continue; }
        if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) { quiet = true; continue; }
        static const char *const common_flags[] = {"--config", "--max-pack-mb", "--threads", "-t",
                                                   "--no-compression", "--log-level", "-v",
                                                   "--verbose", "--log-file"};
        bool is_common = false;
        for (size_t k = 0; k < sizeof common_flags / sizeof *common_flags; k++)
            is_common |= !strcmp(a, common_flags[k]);
        if (is_common) {
            if (cli_common_parse(&common, argc, argv, &i) < 0) return 2;
            i--; /* cli_common_parse moved past the flag */
            continue;
        }
        static const char *const valued[] = {"-o", "--output", "--codec", "--level", "--shuffle",
                                             "--blosc-compressor", "--pack-cut", "--min-saving",
                                             "--disk-mb-s", "-m", "--model"};
        bool known = false;
        for (size_t k = 0; k < sizeof valued / sizeof *valued; k++) known |= !strcmp(a, valued[k]);
        if (!known) {
            if (a[0] == '-' && a[1]) return cli_usage_error("pack: unknown option '%s'", a);
            if (path) return cli_usage_error("pack: more than one model given ('%s', '%s')", path, a);
            path = a;
            continue;
        }
        if (i + 1 >= argc) return cli_usage_error("%s needs a value", a);
        const char *v = argv[++i];
        bool ok = true;
        if (!strcmp(a, "-o") || !strcmp(a, "--output")) out = v;
        else if (!strcmp(a, "-m") || !strcmp(a, "--model")) path = v;
        else if (!strcmp(a, "--codec")) codec = v;
        else if (!strcmp(a, "--shuffle")) shuffle = v;
        else if (!strcmp(a, "--blosc-compressor")) inner = v;
        else if (!strcmp(a, "--pack-cut")) cut = v;
        else if (!strcmp(a, "--level")) ok = cli_parse_int(a, v, 1, 19, &level);
        else if (!strcmp(a, "--min-saving")) ok = cli_parse_double(a, v, 0, 99, &min_saving);
        else if (!strcmp(a, "--disk-mb-s")) ok = cli_parse_double(a, v, 1, 1e7, &disk);
        if (!ok) return 2;
    }
    if (!path) return cli_usage_error("pack: no model given");
    if (!out) return cli_usage_error("pack: no output given (-o OUT.sympack)");
    if (cli_common_finish(&common) != 0) return 1;
    const sym_config *cfg = &common.cfg;

    sym_store_write_options o;
    sym_store_write_options_init(&o);
    sym_status st = sym_pack_limit_from_mb(cfg->max_pack_mb, &o.max_pack_bytes);
    if (st != SYM_OK) return cli_fail(st);
    if (cut && sym_pack_cut_parse(cut, &o.cut) != SYM_OK)
        return cli_usage_error("--pack-cut: '%s' is not buddy or even", cut);
    o.n_threads = cfg->n_threads;
    o.min_saving = min_saving / 100.0;
    o.disk_bytes_per_s = disk * 1e6;
    static const char *const choice_names[] = {"auto", "none", "zstd", "blosc", "zfp", "bytesplit"};
    const char *name = codec ? codec : choice_names[cfg->compression_algorithm];
    if (!cfg->enable_compression) {
        if (codec && strcmp(codec, "none") != 0)
            return cli_usage_error("pack: --no-compression conflicts with --codec %s", codec);
        name = "none";
    }
    o.auto_codec = !strcmp(name, "auto");
    if (!o.auto_codec) {
        sym_codec_id id;
        if (sym_codec_id_parse(name, &id) != SYM_OK)
            return cli_usage_error("--codec: '%s' is not auto, none, zstd, blosc, zfp or "
                                   "bytesplit", name);
        o.codec = sym_codec_default(id);
    }
    if ((shuffle || inner) && (o.auto_codec || o.codec.id != SYM_CODEC_BLOSC))
        return cli_usage_error("pack: --shuffle and --blosc-compressor go with --codec blosc");
    if (shuffle && strcmp(shuffle, "byte") != 0 && strcmp(shuffle, "bit") != 0)
        return cli_usage_error("--shuffle: '%s' is not byte or bit", shuffle);
    if (inner && strcmp(inner, "lz4") != 0 && strcmp(inner, "zstd") != 0)
        return cli_usage_error("--blosc-compressor: '%s' is not lz4 or zstd", inner);
    if (shuffle) o.codec.shuffle = !strcmp(shuffle, "bit") ? SYM_BLOSC_BIT : SYM_BLOSC_BYTE;
    if (inner) o.codec.inner = !strcmp(inner, "zstd") ? SYM_BLOSC_ZSTD : SYM_BLOSC_LZ4;
    if (level) {
        bool takes = o.auto_codec || o.codec.id == SYM_CODEC_ZSTD ||
                     o.codec.id == SYM_CODEC_BYTESPLIT || o.codec.id == SYM_CODEC_BLOSC;
        if (!takes) return cli_usage_error("pack: --level does not apply to codec %s", name);
        if (o.codec.id == SYM_CODEC_BLOSC && level > 9)
            return cli_usage_error("--level: blosc levels are 1..9");
        o.codec.level = (int)level;
    }
    if (!o.auto_codec && (st = sym_codec_check(&o.codec, o.codec.id == SYM_CODEC_ZFP ? 4 : 2)))
        return cli_fail(st);

    sym_model *m = NULL;
    if ((st = sym_model_open(path, &m)) != SYM_OK) return cli_fail(st);
    cli_progress ps;
    cli_progress_start(&ps, "pack");
    if (!quiet && !json && isatty(STDERR_FILENO)) {
        o.progress = cli_progress_update_fn;
        o.progress_user = &ps;
    }
    sym_store_write_stats stats;
    st = sym_store_write(m, out, &o, &stats);
    cli_progress_end(&ps);
    sym_model_close(m);
    if (st != SYM_OK) return cli_fail(st);
    print_result(out, &stats, o.min_saving, json);
    return 0;
}
