/* Configuration: defaults, INI parsing with errors naming file:line:key, environment
 * precedence, and a write/read round trip. */
#include <unistd.h>

#include "base/config.h"
#include "test_util.h"

static const char *write_tmp(const char *name, const char *text, char *path, size_t cap) {
    snprintf(path, cap, "%s/%s.%d.ini", SYM_BUILD_DIR, name, (int)getpid());
    test_write_file(path, text, strlen(text));
    return path;
}

static void expect_error(const char *text, const char *needle, int line) {
    char path[1024], want[64];
    sym_config c;
    sym_config_defaults(&c);
    sym_config before = c;
    CHECK_STATUS(sym_config_load_ini(&c, write_tmp("bad", text, path, sizeof path)),
                 SYM_ERR_CONFIG);
    CHECK(strstr(sym_last_error(), needle) != NULL, "'%s' lacks '%s'", sym_last_error(), needle);
    snprintf(want, sizeof want, ".ini:%d:", line);
    CHECK(strstr(sym_last_error(), want) != NULL, "'%s' lacks line '%s'", sym_last_error(), want);
    CHECK(memcmp(&c, &before, sizeof c) == 0, "config changed by a failed load");
    unlink(path);
}

int main(void) {
    sym_config c;
    sym_config_defaults(&c);
    CHECK(c.enable_gpu && c.prefetch_lookahead == 4 && c.max_pack_mb == 0, "defaults");
    CHECK(c.eviction_policy == SYM_EVICT_CHOICE_AUTO && c.eviction_aggression == 0.5,
          "eviction defaults");
    CHECK(!strcmp(sym_evict_choice_name(SYM_EVICT_CHOICE_ORACLE), "oracle"), "policy names");

    char path[1024];
    const char *good = "; comment\n[memory]\nvram_budget_gb = 4.5\nram_budget_gb=12\n"
                       "prefetch_lookahead = 7\neviction_aggression = 0.25\n"
                       "eviction_policy = LRU\n"
                       "enable_compression = no\ncompression_algorithm = zstd\n"
                       "max_packs_in_memory = 100\n\n[performance]\nenable_gpu = false\n"
                       "workgroup_size_x = 128\nworkgroup_size_y = 2\nuse_subgroup_ops = off\n"
                       "use_fp16_math = true\nscale_factor = 2\nenable_profiling = 1\n"
                       "[logging]\nlog_level = debug\nlog_to_file = true\n"
                       "log_file_path = /tmp/x.log\nlog_performance = yes\n"
                       "log_memory_usage = true\nmax_log_file_size_mb = 5\n"
                       "[model]\nmodel_path = /models/a b.gguf\n";
    CHECK_OK(sym_config_load_ini(&c, write_tmp("good", good, path, sizeof path)));
    unlink(path);
    CHECK(c.vram_budget_gb == 4.5 && c.ram_budget_gb == 12 && c.prefetch_lookahead == 7, "memory");
    CHECK(c.eviction_aggression == 0.25 && !c.enable_compression, "memory 2");
    CHECK(c.eviction_policy == SYM_EVICT_CHOICE_LRU, "eviction_policy %d", (int)c.eviction_policy);
    CHECK(c.compression_algorithm == SYM_CODEC_CHOICE_ZSTD && c.max_packs_in_memory == 100, "memory 3");
    CHECK(!c.enable_gpu && c.workgroup_size_x == 128 && c.workgroup_size_y == 2, "performance");
    CHECK(!c.use_subgroup_ops && c.use_fp16_math && c.scale_factor == 2 && c.enable_profiling,
          "performance 2");
    CHECK(c.log_level == SYM_LOG_DEBUG && c.log_to_file && !strcmp(c.log_file_path, "/tmp/x.log"),
          "logging");
    CHECK(c.log_performance && c.log_memory_usage && c.max_log_file_size_mb == 5, "logging 2");
    CHECK(!strcmp(c.model_path, "/models/a b.gguf"), "model_path '%s'", c.model_path);

    /* round trip through the writer */
    snprintf(path, sizeof path, "%s/rt.%d.ini", SYM_BUILD_DIR, (int)getpid());
    FILE *f = fopen(path, "w");
    sym_config_write_ini(&c, f);
    fclose(f);
    sym_config d;
    sym_config_defaults(&d);
    CHECK_OK(sym_config_load_ini(&d, path));
    CHECK(memcmp(&c, &d, sizeof c) == 0, "write/read round trip differs");
    unlink(path);

    expect_error("[memory]\nvram_budget_gb = 1\nvram_budget = 2\n", "unknown key 'vram_budget'", 3);
    expect_error("[memry]\nvram_budget_gb = 1\n", "unknown section [memry]", 2);
    expect_error("[memory]\nprefetch_lookahead = lots\n", "not an integer", 2);
    expect_error("[memory]\n\neviction_aggression = 1.5\n", "outside", 3);
    expect_error("[performance]\nenable_gpu = maybe\n", "not a boolean", 2);
    expect_error("[logging]\nlog_level = LOUD\n", "not a log level", 2);
    expect_error("[memory]\ncompression_algorithm = lzma\n", "unknown codec", 2);
    expect_error("[memory]\neviction_policy = lfu\n", "unknown eviction policy 'lfu'", 2);
    expect_error("[memory]\neviction_aggression = -0.01\n", "outside [0, 1]", 2);
    expect_error("[memory]\nthis line has no equals sign\n", "syntax error", 2);
    expect_error("vram_budget_gb = 1\n", "unknown section []", 1);
    CHECK_STATUS(sym_config_load_ini(&c, "/nonexistent/dir/x.ini"), SYM_ERR_IO);

    /* environment overrides the file's values */
    sym_config_defaults(&c);
    setenv("VK_SYMBIOTE_VRAM_GB", "3", 1);
    setenv("VK_SYMBIOTE_PREFETCH", "9", 1);
    CHECK_OK(sym_config_apply_env(&c));
    CHECK(c.vram_budget_gb == 3 && c.prefetch_lookahead == 9, "env");
    setenv("VK_SYMBIOTE_RAM_GB", "-1", 1);
    CHECK_STATUS(sym_config_apply_env(&c), SYM_ERR_CONFIG);
    CHECK(strstr(sym_last_error(), "VK_SYMBIOTE_RAM_GB") != NULL, "%s", sym_last_error());

    /* the cache directory: $XDG_CACHE_HOME/symbiote when absolute, else ~/.cache/symbiote */
    char dir[64];
    setenv("XDG_CACHE_HOME", "/x/cache", 1);
    CHECK(sym_cache_dir(dir, sizeof dir) && !strcmp(dir, "/x/cache/symbiote"), "xdg: %s", dir);
    setenv("XDG_CACHE_HOME", "relative", 1);
    setenv("HOME", "/home/u", 1);
    CHECK(sym_cache_dir(dir, sizeof dir) && !strcmp(dir, "/home/u/.cache/symbiote"), "home: %s",
          dir);
    CHECK(!sym_cache_dir(dir, 8) && dir[0] == '\0', "a path that does not fit");
    unsetenv("XDG_CACHE_HOME");
    unsetenv("HOME");
    CHECK(!sym_cache_dir(dir, sizeof dir) && dir[0] == '\0', "no HOME, no XDG_CACHE_HOME");
    return test_finish("test_config");
}
