/* pack_io.c — O_DIRECT (aligned supersets through staging) or pread + DONTNEED per file; from a
 * pack store, each pack's stored bytes into staging, then checked and decompressed. */
#include "tier/pack_io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/alloc.h"

#define A ((uint64_t)SYM_PACK_IO_ALIGN)

typedef struct io_file {
    char *path;
    int fd;
    bool direct;
    uint64_t size_bytes;
    char note[160];
} io_file;

struct sym_pack_io {
    const sym_pack_plan *plan;
    io_file *files;
    int n_files;
    sym_pread_fn pread_fn;
    void *pread_user;
    /* a pack store: its one file is files[0] */
    const sym_store *store;
    sym_store_reader **readers; /* n_slots */
    int n_slots;
};

static uint64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

const char *sym_io_mode_name(sym_io_mode m) {
    switch (m) {
    case SYM_IO_AUTO:
        return "auto";
    case SYM_IO_DIRECT:
        return "direct";
    case SYM_IO_BUFFERED:
        return "buffered";
    }
    return "?";
}

static ssize_t plain_pread(void *user, int fd, void *buf, size_t n, off_t offset) {
    (void)user;
    return pread(fd, buf, n, offset);
}

/* Opens f->path with O_DIRECT and reads one aligned block; on refusal records why and leaves
 * f->fd at -1. */
static void probe_direct(io_file *f) {
    int fd = open(f->path, O_RDONLY | O_CLOEXEC | O_DIRECT);
    if (fd < 0) {
        snprintf(f->note, sizeof f->note, "O_DIRECT refused by the filesystem at open: %s",
                 strerror(errno));
        return;
    }
    void *probe = NULL;
    if (posix_memalign(&probe, A, A) != 0) {
        close(fd);
        snprintf(f->note, sizeof f->note, "no memory for the O_DIRECT probe");
        return;
    }
    ssize_t r;
    do
        r = pread(fd, probe, A, 0);
    while (r < 0 && errno == EINTR);
    int err = errno;
    free(probe);
    if (r < 0) {
        close(fd);
        snprintf(f->note, sizeof f->note, "O_DIRECT refused by the filesystem at read: %s",
                 strerror(err));
        return;
    }
    f->fd = fd;
    f->direct = true;
    snprintf(f->note, sizeof f->note, "O_DIRECT");
}

static sym_status open_file(io_file *f, sym_io_mode mode) {
    if (mode != SYM_IO_BUFFERED) probe_direct(f);
    if (!f->direct) {
        SYM_CHECK(mode != SYM_IO_DIRECT, SYM_ERR_UNSUPPORTED, "tier: '%s': %s", f->path, f->note);
        if (mode == SYM_IO_BUFFERED) snprintf(f->note, sizeof f->note, "buffered mode requested");
        f->fd = open(f->path, O_RDONLY | O_CLOEXEC);
        SYM_CHECK(f->fd >= 0, SYM_ERR_IO, "tier: cannot open '%s': %s", f->path, strerror(errno));
        /* no readahead past the ranges we ask for: it would fill the page cache behind our back */
        (void)posix_fadvise(f->fd, 0, 0, POSIX_FADV_RANDOM);
    }
    struct stat st;
    SYM_CHECK(fstat(f->fd, &st) == 0, SYM_ERR_IO, "tier: cannot stat '%s': %s", f->path,
              strerror(errno));
    f->size_bytes = (uint64_t)st.st_size;
    return SYM_OK;
}

sym_status sym_pack_io_open(const sym_pack_plan *plan, const char *const *paths, int n_files,
                            sym_io_mode mode, sym_pread_fn pread_fn, void *pread_user,
                            sym_pack_io **out) {
    sym_status st = SYM_OK;
    *out = NULL;
    SYM_CHECK(plan && paths && n_files > 0, SYM_ERR_ARG, "tier: no model files");
    SYM_CHECK(mode >= SYM_IO_AUTO && mode <= SYM_IO_BUFFERED, SYM_ERR_ARG,
              "tier: unknown I/O mode %d", (int)mode);
    for (uint32_t i = 0; i < plan->n_ranges; i++)
        SYM_CHECK(plan->ranges[i].file_idx >= 0 && plan->ranges[i].file_idx < n_files, SYM_ERR_ARG,
                  "tier: range %u names file %d of %d", i, plan->ranges[i].file_idx, n_files);
    sym_pack_io *io = sym_calloc(1, sizeof *io);
    if (!io) return SYM_FAIL(SYM_ERR_OOM, "tier: out of memory");
    io->plan = plan;
    io->pread_fn = pread_fn ? pread_fn : plain_pread;
    io->pread_user = pread_user;
    io->files = sym_calloc((size_t)n_files, sizeof *io->files);
    if (!io->files) SYM_FAIL_GOTO(SYM_ERR_OOM, "tier: out of memory");
    io->n_files = n_files;
    for (int i = 0; i < n_files; i++)
        io->files[i].fd = -1;
    for (int i = 0; i < n_files; i++) {
        io->files[i].path = sym_strdup(paths[i]);
        if (!io->files[i].path) SYM_FAIL_GOTO(SYM_ERR_OOM, "tier: out of memory");
        SYM_TRY_GOTO(open_file(&io->files[i], mode));
    }
    /* hostile input: a range past the end of its file would read garbage or fail late */
    for (uint32_t i = 0; i < plan->n_ranges; i++) {
        const sym_pack_range *r = &plan->ranges[i];
        const io_file *f = &io->files[r->file_idx];
        if (r->file_offset > f->size_bytes || r->n_bytes > f->size_bytes - r->file_offset)
            SYM_FAIL_GOTO(SYM_ERR_FORMAT,
                          "tier: '%s' is %llu bytes, but a pack's range reaches byte %llu", f->path,
                          (unsigned long long)f->size_bytes,
                          (unsigned long long)(r->file_offset + r->n_bytes));
    }
    *out = io;
    return SYM_OK;
fail:
    sym_pack_io_close(io);
    return st;
}

sym_status sym_pack_io_open_store(const sym_store *store, int n_slots, sym_io_mode mode,
                                  sym_pread_fn pread_fn, void *pread_user, sym_pack_io **out) {
    sym_status st = SYM_OK;
    *out = NULL;
    SYM_CHECK(store && n_slots > 0 && n_slots <= 64, SYM_ERR_ARG,
              "tier: a store and 1..64 slots are needed");
    SYM_CHECK(mode >= SYM_IO_AUTO && mode <= SYM_IO_BUFFERED, SYM_ERR_ARG,
              "tier: unknown I/O mode %d", (int)mode);
    sym_pack_io *io = sym_calloc(1, sizeof *io);
    if (!io) return SYM_FAIL(SYM_ERR_OOM, "tier: out of memory");
    io->plan = sym_store_plan(store);
    io->store = store;
    io->pread_fn = pread_fn ? pread_fn : plain_pread;
    io->pread_user = pread_user;
    io->files = sym_calloc(1, sizeof *io->files);
    io->readers = sym_calloc((size_t)n_slots, sizeof *io->readers);
    if (!io->files || !io->readers) SYM_FAIL_GOTO(SYM_ERR_OOM, "tier: out of memory");
    io->files[0].fd = -1;
    io->n_files = 1;
    io->files[0].path = sym_strdup(sym_store_path(store));
    if (!io->files[0].path) SYM_FAIL_GOTO(SYM_ERR_OOM, "tier: out of memory");
    SYM_TRY_GOTO(open_file(&io->files[0], mode));
    /* the store checked its packs against its size at open: a file that changed since is the
     * size the header gave no more */
    if (io->files[0].size_bytes != sym_store_file_bytes(store))
        SYM_FAIL_GOTO(SYM_ERR_FORMAT, "tier: '%s' is %llu bytes now, %llu when it was opened",
                      io->files[0].path, (unsigned long long)io->files[0].size_bytes,
                      (unsigned long long)sym_store_file_bytes(store));
    for (int i = 0; i < n_slots; i++) {
        SYM_TRY_GOTO(sym_store_reader_create(&io->readers[i]));
        io->n_slots = i + 1;
        SYM_TRY_GOTO(sym_store_reader_reserve(store, io->readers[i]));
    }
    *out = io;
    return SYM_OK;
fail:
    sym_pack_io_close(io);
    return st;
}

void sym_pack_io_close(sym_pack_io *io) {
    if (!io) return;
    for (int i = 0; io->readers && i < io->n_slots; i++)
        sym_store_reader_destroy(io->readers[i]);
    sym_free(io->readers);
    for (int i = 0; io->files && i < io->n_files; i++) {
        if (io->files[i].fd >= 0) close(io->files[i].fd);
        sym_free(io->files[i].path);
    }
    sym_free(io->files);
    sym_free(io);
}

bool sym_pack_io_is_direct(const sym_pack_io *io, int file_idx) {
    return file_idx >= 0 && file_idx < io->n_files && io->files[file_idx].direct;
}

const char *sym_pack_io_note(const sym_pack_io *io, int file_idx) {
    return file_idx >= 0 && file_idx < io->n_files ? io->files[file_idx].note : "";
}

bool sym_pack_io_any_direct(const sym_pack_io *io) {
    for (int i = 0; i < io->n_files; i++)
        if (io->files[i].direct) return true;
    return false;
}

int sym_pack_io_n_files(const sym_pack_io *io) { return io->n_files; }

const sym_store *sym_pack_io_store(const sym_pack_io *io) { return io->store; }

uint64_t sym_pack_io_staging_need(const sym_pack_io *io) {
    if (!io->store) return 0;
    return (sym_store_max_stored_bytes(io->store) + A - 1) & ~(A - 1);
}

uint64_t sym_pack_io_slot_bytes(const sym_pack_io *io) {
    return io->store ? sym_store_decode_scratch_bytes(io->store) : 0;
}

const char *sym_pack_io_path(const sym_pack_io *io, int file_idx) {
    return file_idx >= 0 && file_idx < io->n_files ? io->files[file_idx].path : "";
}

/* Reads until at least `need` of `want` bytes at `off` are in buf. A read returning 0 is the end
 * of the file. With O_DIRECT a partial block is dropped and re-read from its aligned start; a
 * short read that makes no whole-block progress three times running is the end of the file too
 * (only a file's last block legitimately comes back short). */
static sym_status read_at_least(const sym_pack_io *io, const io_file *f, uint32_t pack_id,
                                char *buf, size_t want, size_t need, uint64_t off,
                                uint64_t *io_bytes) {
    size_t got = 0;
    int stalled = 0;
    while (got < need) {
        size_t len = want - got;
        ssize_t r = io->pread_fn(io->pread_user, f->fd, buf + got, len, (off_t)(off + got));
        if (r < 0 && errno == EINTR) continue;
        if (r < 0 || (size_t)r > len) {
            int err = r < 0 ? errno : EIO;
            return SYM_FAIL(SYM_ERR_IO, "tier: pack %u: reading '%s' at byte %llu (%zu bytes): %s",
                            pack_id, f->path, (unsigned long long)(off + got), len, strerror(err));
        }
        *io_bytes += (uint64_t)r;
        size_t g = got + (size_t)r;
        if (r > 0 && g >= need) break;
        if (f->direct) g &= ~(size_t)(A - 1);
        stalled = g > got ? 0 : stalled + 1;
        if (r == 0 || stalled == 3)
            return SYM_FAIL(SYM_ERR_IO,
                            "tier: pack %u: '%s' ends at byte %llu, before byte %llu that the pack "
                            "needs (short read)",
                            pack_id, f->path, (unsigned long long)(off + got + (size_t)r),
                            (unsigned long long)(off + need));
        got = g;
    }
    return SYM_OK;
}

/* One range through the staging buffer: aligned chunks [pos, pos + want) of the superset
 * [align_down(fo), align_up(fo + n)); the overlap with the range is copied out. */
static sym_status read_direct(const sym_pack_io *io, const io_file *f, uint32_t pack_id,
                              uint64_t fo, uint64_t n, char *dst, char *staging, size_t cap,
                              uint64_t *io_bytes) {
    uint64_t end = fo + n;
    uint64_t a_end = (end + A - 1) & ~(A - 1);
    for (uint64_t pos = fo & ~(A - 1); pos < end;) {
        size_t want = (size_t)(a_end - pos < cap ? a_end - pos : cap);
        size_t need = (size_t)(end - pos < want ? end - pos : want);
        SYM_TRY(read_at_least(io, f, pack_id, staging, want, need, pos, io_bytes));
        uint64_t from = pos > fo ? pos : fo;
        memcpy(dst + (from - fo), staging + (from - pos), (size_t)(pos + need - from));
        pos += want;
    }
    return SYM_OK;
}

/* A store's pack: its stored bytes into staging (O_DIRECT: the aligned superset, which ends
 * inside the file because the file's size is a multiple of 4 KiB), then checked and decoded. */
static sym_status read_store_pack(const sym_pack_io *io, int slot, uint32_t pack_id, void *dst,
                                  char *staging, size_t staging_bytes, sym_pack_io_counts *c) {
    const sym_store_pack *k = sym_store_pack_at(io->store, pack_id);
    const io_file *f = &io->files[0];
    uint64_t want = f->direct ? (k->stored_bytes + A - 1) & ~(A - 1) : k->stored_bytes;
    SYM_CHECK(slot >= 0 && slot < io->n_slots, SYM_ERR_ARG, "tier: slot %d of %d", slot,
              io->n_slots);
    SYM_CHECK(staging && (uintptr_t)staging % A == 0 && staging_bytes >= want, SYM_ERR_ARG,
              "tier: pack %u: %llu stored bytes need an aligned staging buffer that holds them "
              "(%zu bytes given)",
              pack_id, (unsigned long long)want, staging_bytes);
    SYM_TRY(read_at_least(io, f, pack_id, staging, (size_t)want, (size_t)k->stored_bytes,
                          k->file_offset, &c->io_bytes));
    if (!f->direct) {
        uint64_t p1 = (k->file_offset + k->stored_bytes + A - 1) & ~(A - 1);
        (void)posix_fadvise(f->fd, (off_t)k->file_offset, (off_t)(p1 - k->file_offset),
                            POSIX_FADV_DONTNEED);
    }
    uint64_t t0 = now_ns();
    sym_status st = sym_store_decode_pack(io->store, io->readers[slot], pack_id, staging, dst);
    c->decode_ns += now_ns() - t0;
    SYM_TRY(st); /* the detail names the store and the pack */
    if (k->codec.id != SYM_CODEC_NONE) c->decoded_bytes += k->raw_bytes;
    return SYM_OK;
}

sym_status sym_pack_io_read(const sym_pack_io *io, int slot, uint32_t pack_id, void *dst,
                            void *staging, size_t staging_bytes, sym_pack_io_counts *counts) {
    const sym_pack_plan *p = io->plan;
    SYM_CHECK(pack_id < p->n_packs, SYM_ERR_ARG, "tier: pack %u of %u", pack_id, p->n_packs);
    if (io->store) return read_store_pack(io, slot, pack_id, dst, staging, staging_bytes, counts);
    uint64_t *io_bytes = &counts->io_bytes;
    const sym_pack *k = &p->packs[pack_id];
    const sym_pack_range *rs = sym_pack_ranges(p, k);
    char *d = dst;
    uint64_t filled = 0; /* bytes of dst set so far */
    for (uint32_t i = 0; i < k->n_ranges; i++) {
        const sym_pack_range *r = &rs[i];
        const io_file *f = &io->files[r->file_idx];
        memset(d + filled, 0, (size_t)(r->pack_offset - filled));
        if (f->direct) {
            SYM_CHECK(staging && staging_bytes >= A && staging_bytes % A == 0 &&
                          (uintptr_t)staging % A == 0,
                      SYM_ERR_ARG, "tier: O_DIRECT reads need an aligned staging buffer");
            SYM_TRY(read_direct(io, f, pack_id, r->file_offset, r->n_bytes, d + r->pack_offset,
                                staging, staging_bytes, io_bytes));
        } else {
            SYM_TRY(read_at_least(io, f, pack_id, d + r->pack_offset, (size_t)r->n_bytes,
                                  (size_t)r->n_bytes, r->file_offset, io_bytes));
            /* the bytes are ours now: do not let the page cache hold a second copy. The whole
             * pages around the range (Linux keeps partly covered pages otherwise); a neighbour
             * range sharing an edge page is read from disk again, as with O_DIRECT. */
            uint64_t p0 = r->file_offset & ~(A - 1);
            uint64_t p1 = (r->file_offset + r->n_bytes + A - 1) & ~(A - 1);
            (void)posix_fadvise(f->fd, (off_t)p0, (off_t)(p1 - p0), POSIX_FADV_DONTNEED);
        }
        filled = r->pack_offset + r->n_bytes;
    }
    memset(d + filled, 0, (size_t)(k->buffer_bytes - filled));
    return SYM_OK;
}
