/* bench_vk_sync — what a persistent kernel saves over one dispatch per dependent product, as JSON
 * on stdout (vk/probe.h sym_vk_probe_chain): chains of dependent f16 matrix-vector products run
 * as one dispatch with grid barriers between them, and as one dispatch per product with
 * pipeline barriers between them, on the first Vulkan device (the bench's default pick).
 * Usage: bench_vk_sync [--dchain] [--backoff N] [--groups N] [--wg N] [--rb N] [--mode M]
 *                      [SIZE:COUNT ...]
 *   SIZE:COUNT  a chain of COUNT products of SIZE x SIZE (default 4096:32 2048:64 512:256)
 *   --dchain    one dispatch per product instead (sym_vk_probe_dchain), timed with pipeline
 *               barriers, with none (the lower bound), with in-shader waits, and with the
 *               weights loaded before the wait, each with one arrivals counter and with a tree
 *               of them; --wg invocations per workgroup, --rb rows each, --backoff shared
 *               atomics between polls
 *   --groups    workgroups (default: one per multiprocessor; at most four per)
 *   --mode      0 acquire polls, 1 relaxed polls, 2 relaxed polls with backoff; + 4: rows
 *               claimed --rb at a time from a counter instead of a fixed block per workgroup
 * Progress goes to stderr; the exit status is 1 if a chain's result is off by more than 1e-3.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vk/ops.h"
#include "vk/ops_impl.h"
#include "vk/probe.h"

int main(int argc, char **argv) {
    int groups = 0, wg = 256, rb = 8, mode = 0, n_chain = 0, dchain = 0, backoff = 4;
    int sizes[16], counts[16];
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--dchain")) {
            dchain = 1;
        } else if (!strcmp(argv[i], "--backoff") && i + 1 < argc) {
            backoff = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--groups") && i + 1 < argc) {
            groups = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--wg") && i + 1 < argc) {
            wg = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--mode") && i + 1 < argc) {
            mode = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--rb") && i + 1 < argc) {
            rb = atoi(argv[++i]);
        } else if (n_chain < 16 &&
                   sscanf(argv[i], "%d:%d", &sizes[n_chain], &counts[n_chain]) == 2) {
            n_chain++;
        } else {
            fprintf(stderr, "usage: bench_vk_sync [--dchain] [--backoff N] [--groups N] [--wg N] "
                            "[--rb N] [--mode M] "
                            "[SIZE:COUNT ...]\n");
            return 2;
        }
    }
    if (n_chain == 0) {
        int ds[3] = {4096, 2048, 512}, dc[3] = {32, 64, 256};
        for (; n_chain < 3; n_chain++)
            sizes[n_chain] = ds[n_chain], counts[n_chain] = dc[n_chain];
    }
    sym_vk_options o;
    sym_vk_options_init(&o);
    sym_backend *b = NULL;
    sym_status st = sym_vk_backend_create(&o, &b);
    if (st != SYM_OK) {
        fprintf(stderr, "bench_vk_sync: %s\n", sym_last_error());
        return 1;
    }
    const sym_vk_device *d = sym_vkb_of(b)->dev;
    printf("{\n  \"device\": \"%s\",\n  \"multiprocessors\": %u,\n  \"chains\": [", d->caps.name,
           d->caps.sm_count);
    int bad = 0;
    for (int i = 0; i < n_chain && dchain; i++) {
        sym_vk_dchain_probe r;
        fprintf(stderr, "dispatch chain %d x %d^2, wg %d, rb %d ...\n", counts[i], sizes[i], wg,
                rb);
        st = sym_vk_probe_dchain(b, sizes[i], counts[i], wg, rb, backoff, &r);
        if (st != SYM_OK) {
            fprintf(stderr, "bench_vk_sync: %s\n", sym_last_error());
            bad = 1;
            break;
        }
        static const char *const names[6] = {"barrier",      "none",      "wait",
                                             "preload_wait", "tree_wait", "tree_preload_wait"};
        printf("%s\n    {\"n\": %d, \"products\": %d, \"wg\": %d, \"rb\": %d, \"backoff\": %d",
               i ? "," : "", r.n, r.n_mat, r.wg, r.rb, r.backoff);
        for (int m = 0; m < 6; m++) {
            if (m != 1 && !(r.err[m] <= 1e-3)) bad = 1;
            printf(", \"%s_us\": %.2f, \"%s_gb_s\": %.1f", names[m], r.us[m], names[m], r.gb_s[m]);
            /* (NaN, which JSON has no word for, as 1e30) */
            if (m != 1)
                printf(", \"%s_err\": %.2e", names[m], r.err[m] == r.err[m] ? r.err[m] : 1e30);
        }
        printf("}");
    }
    for (int i = 0; i < n_chain && !dchain; i++) {
        sym_vk_chain_probe r;
        fprintf(stderr, "chain %d x %d^2 ...\n", counts[i], sizes[i]);
        st = sym_vk_probe_chain(b, sizes[i], counts[i], groups, wg, rb, mode, &r);
        if (st != SYM_OK) {
            fprintf(stderr, "bench_vk_sync: %s\n", sym_last_error());
            bad = 1;
            break;
        }
        if (!(r.persist_err <= 1e-3) || !(r.split_err <= 1e-3)) bad = 1;
        printf("%s\n    {\"n\": %d, \"products\": %d, \"groups\": %d, \"wg\": %d, \"rb\": %d, "
               "\"mode\": %d,"
               " \"persist_us\": %.2f, \"split_us\": %.2f, \"persist_gb_s\": %.1f,"
               " \"split_gb_s\": %.1f, \"persist_err\": %.2e, \"split_err\": %.2e}",
               i ? "," : "", r.n, r.n_mat, r.n_groups, r.wg, r.rb, r.mode, r.persist_us, r.split_us,
               r.persist_gb_s, r.split_gb_s, r.persist_err, r.split_err);
    }
    printf("\n  ]\n}\n");
    b->ops->destroy(b);
    return bad;
}
