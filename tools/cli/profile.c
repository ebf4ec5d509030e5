/* profile.c — the per-kernel GPU time table of `symbiote run/bench --profile` (Vulkan backend:
 * timestamps around every dispatch, so dispatches run one after another while profiling). */
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "infer/engine.h"
#ifdef SYM_HAVE_VULKAN
#include "vk/ops.h"
#endif

#ifdef SYM_HAVE_VULKAN
static int cmp_ms(const void *a, const void *b) {
    const sym_vk_profile_entry *x = a, *y = b;
    return (x->gpu_ms < y->gpu_ms) - (x->gpu_ms > y->gpu_ms);
}

/* The profile sorted by time; the count (0 when not a profiling Vulkan backend). */
static int entries(sym_engine *e, sym_vk_profile_entry *out, int cap, double *total) {
    sym_backend *b = sym_engine_backend(e);
    *total = 0;
    if (!sym_vk_backend_is(b)) return 0;
    int n = sym_vk_backend_profile(b, out, cap);
    qsort(out, (size_t)n, sizeof *out, cmp_ms);
    for (int i = 0; i < n; i++)
        *total += out[i].gpu_ms;
    return n;
}
#endif

void cli_print_profile(FILE *f, sym_engine *e, const char *title, double per) {
#ifdef SYM_HAVE_VULKAN
    sym_vk_profile_entry p[64];
    double total;
    int n = entries(e, p, 64, &total);
    if (!n) {
        fprintf(f, "profile (%s): no GPU timings (Vulkan backend only)\n", title);
        return;
    }
    if (per <= 0) per = 1;
    fprintf(f, "GPU time per kernel, %s (dispatches serialized by the timestamps):\n", title);
    fprintf(f, "  %-16s %9s %11s %7s %10s %9s %9s\n", "kernel", "calls", "total ms", "%", "ms/unit",
            "GB/s", "TFLOP/s");
    for (int i = 0; i < n; i++) {
        double s = p[i].gpu_ms * 1e-3;
        fprintf(f, "  %-16s %9llu %11.3f %6.1f%% %10.4f %9.1f %9.2f\n", p[i].name,
                (unsigned long long)p[i].n_dispatch, p[i].gpu_ms, 100.0 * p[i].gpu_ms / total,
                p[i].gpu_ms / per, s > 0 ? p[i].bytes / s * 1e-9 : 0,
                s > 0 ? p[i].flops / s * 1e-12 : 0);
    }
    fprintf(f, "  %-16s %9s %11.3f %6.1f%% %10.4f\n", "total", "", total, 100.0, total / per);
#else
    (void)e;
    (void)per;
    fprintf(f, "profile (%s): no GPU timings (built without Vulkan)\n", title);
#endif
}

json_object *cli_profile_json(sym_engine *e, double per) {
    json_object *arr = json_object_new_array();
#ifdef SYM_HAVE_VULKAN
    sym_vk_profile_entry p[64];
    double total;
    int n = entries(e, p, 64, &total);
    if (per <= 0) per = 1;
    for (int i = 0; i < n; i++) {
        json_object *o = json_object_new_object();
        double s = p[i].gpu_ms * 1e-3;
        json_object_object_add(o, "kernel", json_object_new_string(p[i].name));
        json_object_object_add(o, "calls", json_object_new_int64((int64_t)p[i].n_dispatch));
        json_object_object_add(o, "total_ms", json_object_new_double(p[i].gpu_ms));
        json_object_object_add(o, "percent", json_object_new_double(100.0 * p[i].gpu_ms / total));
        json_object_object_add(o, "ms_per_unit", json_object_new_double(p[i].gpu_ms / per));
        json_object_object_add(o, "gb_s",
                               json_object_new_double(s > 0 ? p[i].bytes / s * 1e-9 : 0));
        json_object_object_add(o, "tflop_s",
                               json_object_new_double(s > 0 ? p[i].flops / s * 1e-12 : 0));
        json_object_array_add(arr, o);
    }
#else
    (void)e;
    (void)per;
#endif
    return arr;
}
