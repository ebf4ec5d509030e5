/* bench_tier_io: DISK -> RAM throughput of the tier module, as JSON on stdout.
 *   build/bench/bench_tier_io [--mb N] [--dir DIR] [--threads T] [--chunk-kb K] [--pack-mb P]
 *                             [--lookahead L] [--budget-div D]
 * Writes (once; reused while its size matches) a synthetic f16 llama model of about N MB in DIR,
 * plans it into packs of at most P MiB, and reads every pack with T threads:
 *   direct             sym_pack_io with O_DIRECT (aligned supersets through K KiB staging)
 *   buffered_dontneed  sym_pack_io with pread + posix_fadvise(DONTNEED), page cache dropped first
 *   page_cache_cold    plain pread of the ranges, page cache dropped first (what an mmap/pread
 *                      engine gets on its first token)
 *   page_cache_warm    the same again, the file now cached (only possible while it fits in RAM;
 *                      the RAM tier's whole point is the case where it does not)
 *   manager_stream     sym_pack_manager walking the schedule twice in RAM with 1/D (default 1/4) of
 *                      the model as budget and L (default 4) packs of prefetch lookahead
 * and reports GB/s and how many of the file's pages the page cache holds afterwards. */
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "model/writer.h"
#include "pack/pack.h"
#include "tier/pack_manager.h"

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

typedef struct run {
    const sym_pack_plan *plan;
    const sym_pack_io *io; /* NULL: plain pread on fd */
    int fd;
    size_t chunk;
    atomic_uint next;
    atomic_uint_fast64_t io_bytes;
    atomic_int failed;
} run;

static void *reader(void *arg) {
    run *r = arg;
    uint64_t max_buf = 0;
    for (uint32_t i = 0; i < r->plan->n_packs; i++)
        if (r->plan->packs[i].buffer_bytes > max_buf) max_buf = r->plan->packs[i].buffer_bytes;
    void *dst = NULL, *staging = NULL;
    if (posix_memalign(&dst, 4096, max_buf) || posix_memalign(&staging, 4096, r->chunk)) {
        atomic_store(&r->failed, 1);
        return NULL;
    }
    memset(dst, 0, max_buf); /* commit the pages before timing matters */
    for (uint32_t id; (id = atomic_fetch_add(&r->next, 1)) < r->plan->n_packs;) {
        uint64_t got = 0;
        if (r->io) {
            sym_pack_io_counts c = {0, 0, 0};
            if (sym_pack_io_read(r->io, 0, id, dst, staging, r->chunk, &c) != SYM_OK) {
                fprintf(stderr, "bench_tier_io: %s\n", sym_last_error());
                atomic_store(&r->failed, 1);
            }
            got = c.io_bytes;
        } else {
            const sym_pack *k = &r->plan->packs[id];
            const sym_pack_range *rs = sym_pack_ranges(r->plan, k);
            for (uint32_t j = 0; j < k->n_ranges; j++) {
                ssize_t n = pread(r->fd, (char *)dst + rs[j].pack_offset, rs[j].n_bytes,
                                  (off_t)rs[j].file_offset);
                if (n != (ssize_t)rs[j].n_bytes) atomic_store(&r->failed, 1);
                got += n > 0 ? (uint64_t)n : 0;
            }
        }
        atomic_fetch_add(&r->io_bytes, got);
    }
    free(dst);
    free(staging);
    return NULL;
}

static void drop_cache(const char *path) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return;
    fdatasync(fd);
    posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    close(fd);
}

static long cached_pages(const char *path, long *n_pages) {
    int fd = open(path, O_RDONLY);
    struct stat st;
    long n = -1;
    if (fd < 0 || fstat(fd, &st) != 0) return -1;
    long page = sysconf(_SC_PAGESIZE);
    size_t np = ((size_t)st.st_size + (size_t)page - 1) / (size_t)page;
    unsigned char *vec = malloc(np);
    void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    if (vec && map != MAP_FAILED && mincore(map, (size_t)st.st_size, vec) == 0) {
        n = 0;
        for (size_t i = 0; i < np; i++)
            n += vec[i] & 1;
    }
    if (map != MAP_FAILED) munmap(map, (size_t)st.st_size);
    free(vec);
    close(fd);
    *n_pages = (long)np;
    return n;
}

static int g_first = 1;

static void report(const char *mode, const char *path, uint64_t bytes, uint64_t io_bytes, double s,
                   const char *note) {
    long np = 0, cached = cached_pages(path, &np);
    printf("%s    {\"mode\": \"%s\", \"seconds\": %.4f, \"pack_bytes\": %" PRIu64
           ", \"io_bytes\": %" PRIu64 ", \"gb_per_s\": %.3f, \"cached_pages_after\": %ld, "
           "\"file_pages\": %ld, \"note\": \"%s\"}",
           g_first ? "" : ",\n", mode, s, bytes, io_bytes, (double)bytes / s / 1e9, cached, np,
           note);
    g_first = 0;
    fflush(stdout);
}

static int read_all(const char *mode, const char *path, const sym_pack_plan *plan,
                    sym_io_mode io_mode, bool plain, bool drop, int n_threads, size_t chunk) {
    run r = {.plan = plan, .chunk = chunk, .fd = -1};
    sym_pack_io *io = NULL;
    const char *paths[1] = {path};
    if (plain) {
        r.fd = open(path, O_RDONLY);
        if (r.fd < 0) return -1;
    } else if (sym_pack_io_open(plan, paths, 1, io_mode, NULL, NULL, &io) != SYM_OK) {
        fprintf(stderr, "bench_tier_io: %s: %s\n", mode, sym_last_error());
        return -1;
    }
    r.io = io;
    if (drop) drop_cache(path);
    pthread_t th[64];
    double t0 = now_s();
    for (int i = 0; i < n_threads; i++)
        pthread_create(&th[i], NULL, reader, &r);
    for (int i = 0; i < n_threads; i++)
        pthread_join(th[i], NULL);
    double s = now_s() - t0;
    report(mode, path, plan->total_bytes, atomic_load(&r.io_bytes), s,
           plain ? "pread" : sym_pack_io_note(io, 0));
    sym_pack_io_close(io);
    if (r.fd >= 0) close(r.fd);
    return atomic_load(&r.failed) ? -1 : 0;
}

static int g_lookahead = 4, g_budget_div = 4;

static int stream(const char *path, const sym_pack_plan *plan, int n_threads, size_t chunk) {
    sym_pack_manager_options o;
    sym_pack_manager_options_init(&o);
    o.ram_budget_bytes = plan->pow2_bytes / (uint64_t)g_budget_div + (uint64_t)n_threads * chunk;
    o.n_io_threads = n_threads;
    o.staging_bytes = chunk;
    sym_pack_manager *pm = NULL;
    const char *paths[1] = {path};
    if (sym_pack_manager_create(plan, paths, 1, NULL, &o, &pm) != SYM_OK) {
        fprintf(stderr, "bench_tier_io: stream: %s\n", sym_last_error());
        return -1;
    }
    drop_cache(path);
    double t0 = now_s();
    int rc = 0;
    for (int tok = 0; tok < 2 && rc == 0; tok++)
        for (uint32_t u = 0; u < plan->n_uses && rc == 0; u++) {
            sym_pack_handle h;
            if (sym_pack_manager_get(pm, plan->schedule[u].pack_id, SYM_TIER_RAM, &h) != SYM_OK) {
                fprintf(stderr, "bench_tier_io: stream: %s\n", sym_last_error());
                rc = -1;
                break;
            }
            sym_pack_manager_prefetch_ahead(pm, SYM_TIER_RAM, (uint32_t)g_lookahead);
            sym_pack_manager_release(pm, &h);
        }
    double s = now_s() - t0;
    sym_tier_stats st;
    sym_pack_manager_stats(pm, SYM_TIER_RAM, &st);
    char note[200];
    snprintf(note, sizeof note, "2 tokens, budget %.0f MB, lookahead %d, stall %.3f s, %s",
             (double)o.ram_budget_bytes / 1e6, g_lookahead, (double)st.stall_ns * 1e-9,
             sym_pack_manager_io_note(pm, 0));
    report("manager_stream", path, st.bytes_in, st.io_bytes, s, note);
    sym_pack_manager_destroy(pm);
    return rc;
}

static const char *fs_name(long type) {
    switch (type) {
    case 0xEF53:
        return "ext4";
    case 0x58465342:
        return "xfs";
    case 0x01021994:
        return "tmpfs";
    case 0x9123683E:
        return "btrfs";
    case 0x794c7630:
        return "overlayfs";
    case 0x6969:
        return "nfs";
    default:
        return "other";
    }
}

static void cpu_model(char *out, size_t cap) {
    snprintf(out, cap, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[512];
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "model name", 10) == 0) {
            char *v = strchr(line, ':');
            if (v) snprintf(out, cap, "%s", v + 2);
            out[strcspn(out, "\n")] = 0;
            break;
        }
    if (f) fclose(f);
}

int main(int argc, char **argv) {
    int mb = 384, n_threads = 2, chunk_kb = 4096, pack_mb = 16;
    const char *dir = "/tmp";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--mb"))
            mb = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--dir"))
            dir = argv[i + 1];
        else if (!strcmp(argv[i], "--threads"))
            n_threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--chunk-kb"))
            chunk_kb = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--pack-mb"))
            pack_mb = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--lookahead"))
            g_lookahead = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--budget-div"))
            g_budget_div = atoi(argv[i + 1]);
        else {
            fprintf(stderr, "usage: bench_tier_io [--mb N] [--dir DIR] [--threads T] "
                            "[--chunk-kb K] [--pack-mb P] [--lookahead L] [--budget-div D]\n");
            return 2;
        }
    }
    if (n_threads < 1 || n_threads > 64 || chunk_kb < 4 || chunk_kb % 4 || pack_mb < 1 ||
        g_lookahead < 0 || g_budget_div < 1)
        return 2;
    /* n_embd 1024, n_ff 4096, vocab 32000, f16: 32 MiB per layer, 2 x 62.5 MiB tables */
    sym_make_model_options mo;
    sym_make_model_options_init(&mo);
    mo.n_embd = 1024, mo.n_head = 16, mo.n_head_kv = 16, mo.n_ff = 4096, mo.n_vocab = 32000;
    mo.n_ctx = 2048;
    mo.n_layer = mb > 160 ? (mb - 125) / 32 : 1;
    snprintf(mo.preset, sizeof mo.preset, "bench-tier-io");
    char path[1024];
    snprintf(path, sizeof path, "%s/bench_tier_io_%dl.gguf", dir, mo.n_layer);
    sym_model *m = NULL;
    if (sym_model_open(path, &m) != SYM_OK) {
        fprintf(stderr, "bench_tier_io: writing %s (%d layers)\n", path, mo.n_layer);
        if (sym_make_model(&mo, path) != SYM_OK || sym_model_open(path, &m) != SYM_OK) {
            fprintf(stderr, "bench_tier_io: %s\n", sym_last_error());
            return 1;
        }
    }
    sym_pack_options po;
    sym_pack_options_init(&po);
    po.max_pack_bytes = (uint64_t)pack_mb << 20;
    sym_pack_plan *plan = NULL;
    if (sym_pack_plan_create(m, &po, &plan) != SYM_OK) {
        fprintf(stderr, "bench_tier_io: %s\n", sym_last_error());
        return 1;
    }
    sym_model_close(m);

    char host[256] = "unknown", cpu[256];
    gethostname(host, sizeof host);
    cpu_model(cpu, sizeof cpu);
    struct utsname un;
    uname(&un);
    struct statfs sf;
    const char *fs = statfs(path, &sf) == 0 ? fs_name((long)sf.f_type) : "unknown";
    printf("{\n  \"bench\": \"tier_io\",\n  \"machine\": {\"hostname\": \"%s\", \"cpu\": \"%s\", "
           "\"online_cpus\": %ld, \"mem_gb\": %.1f, \"kernel\": \"%s\", \"filesystem\": \"%s\"},\n"
           "  \"file\": {\"path\": \"%s\", \"weight_bytes\": %" PRIu64 ", \"packs\": %u, "
           "\"max_pack_mb\": %d},\n  \"threads\": %d,\n  \"chunk_bytes\": %d,\n  \"results\": [\n",
           host, cpu, sysconf(_SC_NPROCESSORS_ONLN),
           (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGESIZE) / 1e9, un.release, fs,
           path, plan->total_bytes, plan->n_packs, pack_mb, n_threads, chunk_kb * 1024);
    size_t chunk = (size_t)chunk_kb * 1024;
    int rc = 0;
    rc |= read_all("direct", path, plan, SYM_IO_DIRECT, false, true, n_threads, chunk);
    rc |= read_all("buffered_dontneed", path, plan, SYM_IO_BUFFERED, false, true, n_threads, chunk);
    rc |= read_all("page_cache_cold", path, plan, SYM_IO_BUFFERED, true, true, n_threads, chunk);
    rc |= read_all("page_cache_warm", path, plan, SYM_IO_BUFFERED, true, false, n_threads, chunk);
    rc |= stream(path, plan, n_threads, chunk);
    printf("\n  ]\n}\n");
    drop_cache(path);
    sym_pack_plan_destroy(plan);
    return rc ? 1 : 0;
}
