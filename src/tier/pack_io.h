/* pack_io.h — reading a pack's bytes from the model files into host memory, without leaving a
 * second copy in the page cache.
 *
 * Each file is read in one of two modes, chosen at open:
 *   DIRECT    O_DIRECT: blocks move from the device into our buffers and nothing stays in the
 *             page cache, so a RAM budget of 8 GB really costs about 8 GB. Offsets, lengths and
 *             buffer addresses must be multiples of SYM_PACK_IO_ALIGN (4 KiB, a multiple of every
 *             logical block size in use): a range is read as its aligned superset, one staging
 *             chunk at a time, and only its own bytes are copied to their place in the pack.
 *   BUFFERED  pread straight into the destination, then posix_fadvise(DONTNEED) over the range
 *             so that the page cache drops what we just copied out. Used where the filesystem
 *             refuses O_DIRECT (tmpfs, some FUSE and network filesystems); the reason is kept
 *             per file (sym_pack_io_note) so the engine can say so.
 * AUTO probes O_DIRECT per file (open, then one aligned read) and falls back to BUFFERED.
 *
 * Why blocking pread on a few worker threads rather than io_uring: a pack is one to a few large
 * contiguous ranges (1-50 MB), read in MiB-sized chunks, so there are few system calls and a
 * queue depth of one per I/O thread already keeps an NVMe drive near its sequential rate;
 * io_uring pays off for many small requests, which this workload does not make. It would also
 * complicate cancellation and error paths for no measured gain (see docs/TIERS.md).
 *
 * A pack store (.sympack, pack/store.h) is read the same way, pack by pack: its stored bytes (one
 * run at a 4 KiB aligned offset; the file's size is a multiple of 4 KiB, so the aligned superset
 * never passes its end) go into the staging buffer, which must hold the largest (O_DIRECT reads
 * the superset straight into it, buffered mode preads the bytes), then the I/O thread checks
 * their XXH3 and decompresses them into the pack's buffer (sym_store_decode_pack) with the
 * decoder state of its slot. The plan is then the store's: the pack table fixed when the store
 * was written.
 *
 * Errors: SYM_ERR_IO naming the pack, the file, the offset and the system error, or a short read
 * ("ends at byte X"); SYM_ERR_FORMAT at open when a range lies past the end of its file. From a
 * store also SYM_ERR_CHECKSUM naming the pack ("pack 7 (mlp, layer 2), 1234 bytes at offset
 * 81920, is damaged") and SYM_ERR_FORMAT for a stream whose checksum matched but that does not
 * decode.
 * Threads: after open, sym_pack_io_read may run concurrently on any threads (pread on shared
 * descriptors) as long as each call has its own dst, staging and slot.
 */
#ifndef SYM_TIER_PACK_IO_H
#define SYM_TIER_PACK_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "pack/pack.h"
#include "pack/store.h"

#define SYM_PACK_IO_ALIGN 4096u

typedef enum sym_io_mode {
    SYM_IO_AUTO = 0, /* O_DIRECT where the filesystem allows, else buffered + DONTNEED */
    SYM_IO_DIRECT,   /* O_DIRECT or fail (SYM_ERR_UNSUPPORTED naming the file) */
    SYM_IO_BUFFERED, /* pread + posix_fadvise(DONTNEED) */
} sym_io_mode;

const char *sym_io_mode_name(sym_io_mode m); /* "auto", "direct", "buffered" */

/* The system call, injectable for fault tests: same contract as pread(2) (errno on -1). */
typedef ssize_t (*sym_pread_fn)(void *user, int fd, void *buf, size_t n, off_t offset);

typedef struct sym_pack_io sym_pack_io;

/* Opens the plan's files (paths[file_idx], n_files of them) for reading. pread_fn NULL: pread.
 * The plan and paths are copied what is needed of (the plan must outlive the reader). Fails with
 * SYM_ERR_ARG (a range names a file index >= n_files), SYM_ERR_IO (open/fstat), SYM_ERR_FORMAT
 * (a range ends past its file), SYM_ERR_UNSUPPORTED (DIRECT refused), SYM_ERR_OOM. */
sym_status sym_pack_io_open(const sym_pack_plan *plan, const char *const *paths, int n_files,
                            sym_io_mode mode, sym_pread_fn pread_fn, void *pread_user,
                            sym_pack_io **out);
/* Opens a pack store's file for streaming its packs (the plan is sym_store_plan(store)), with
 * n_slots decoder states (one per I/O thread), each already sized for the store's packs
 * (sym_store_reader_reserve). The store is borrowed and must outlive the reader. Errors as
 * sym_pack_io_open. */
sym_status sym_pack_io_open_store(const sym_store *store, int n_slots, sym_io_mode mode,
                                  sym_pread_fn pread_fn, void *pread_user, sym_pack_io **out);
void sym_pack_io_close(sym_pack_io *io);

/* The store being read, or NULL (model files). */
const sym_store *sym_pack_io_store(const sym_pack_io *io);
/* Staging each read needs (bytes, a multiple of SYM_PACK_IO_ALIGN) whatever the mode: from a
 * store the largest pack's stored bytes rounded up; 0 for model files (any staging will do, and
 * only O_DIRECT files need one). */
uint64_t sym_pack_io_staging_need(const sym_pack_io *io);
/* Host memory each slot holds besides its staging: a store's decoder scratch; 0 for files. */
uint64_t sym_pack_io_slot_bytes(const sym_pack_io *io);

/* Whether file_idx is read with O_DIRECT; when not, why ("O_DIRECT refused by the filesystem:
 * Invalid argument", "buffered mode requested"). */
bool sym_pack_io_is_direct(const sym_pack_io *io, int file_idx);
const char *sym_pack_io_note(const sym_pack_io *io, int file_idx);
bool sym_pack_io_any_direct(const sym_pack_io *io);
int sym_pack_io_n_files(const sym_pack_io *io);
const char *sym_pack_io_path(const sym_pack_io *io, int file_idx);

/* What reads did, added to by each sym_pack_io_read. */
typedef struct sym_pack_io_counts {
    uint64_t io_bytes;      /* bytes the reads returned (O_DIRECT: the aligned supersets; from a
                               store: the stored, compressed bytes) */
    uint64_t decoded_bytes; /* raw bytes decompressed (store packs with a codec other than none) */
    uint64_t decode_ns;     /* time spent checking and decompressing store packs */
} sym_pack_io_counts;

/* Reads pack pack_id into dst (its buffer_bytes: each range at its pack_offset; the padding
 * between and after ranges is zeroed). staging: SYM_PACK_IO_ALIGN-aligned host memory of
 * staging_bytes (a multiple of SYM_PACK_IO_ALIGN), needed when any of the pack's files is
 * DIRECT (else it may be NULL) and always from a store (at least sym_pack_io_staging_need).
 * slot: which decoder state (0 .. n_slots - 1; ignored for model files). */
sym_status sym_pack_io_read(const sym_pack_io *io, int slot, uint32_t pack_id, void *dst,
                            void *staging, size_t staging_bytes, sym_pack_io_counts *counts);

#endif
