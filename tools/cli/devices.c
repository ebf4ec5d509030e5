/* symbiote devices [--json]: what every Vulkan device offers (also used by `info --devices`). */
#include <inttypes.h>
#include <string.h>

#include <json-c/json.h>

#include "cli.h"

#ifdef SYM_HAVE_VULKAN
#include "base/alloc.h"
#include "vk/device.h"

static const char *yes(int v) { return v ? "yes" : "no"; }

static void mem_flags(VkMemoryPropertyFlags f, char *buf, size_t cap) {
    snprintf(buf, cap, "%s%s%s%s", f & VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT ? "device-local " : "",
             f & VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT ? "host-visible " : "",
             f & VK_MEMORY_PROPERTY_HOST_COHERENT_BIT ? "host-coherent " : "",
             f & VK_MEMORY_PROPERTY_HOST_CACHED_BIT ? "host-cached " : "");
    size_t n = strlen(buf);
    if (n) buf[n - 1] = '\0';
}

static void print_text(const sym_vk_caps *c, int idx, int chosen) {
    char ops[160], fl[96];
    sym_vk_subgroup_ops_string(c->subgroup_ops, ops, sizeof ops);
    printf("%c %d: %s (%s)\n", idx == chosen ? '*' : ' ', idx, c->name, c->type_name);
    printf("    driver              %s %s, Vulkan %u.%u.%u, vendor 0x%04x device 0x%04x\n",
           c->driver_name, c->driver_info, VK_API_VERSION_MAJOR(c->api_version),
           VK_API_VERSION_MINOR(c->api_version), VK_API_VERSION_PATCH(c->api_version), c->vendor_id,
           c->device_id);
    printf("    fp16 arithmetic     %s\n    16-bit storage      %s\n", yes(c->shader_float16),
           yes(c->storage_16bit));
    printf("    subgroups           size %u: %s\n", c->subgroup_size, ops[0] ? ops : "none");
    printf("    cooperative matrix  KHR %s, NV %s%s\n", yes(c->coopmat_khr), yes(c->coopmat_nv),
           c->coopmat_nv_f16 ? " (16x16x16 f16 -> f32: used for prefill)" : "");
    printf("    push descriptors    %s\n    memory budget       %s\n", yes(c->push_descriptor),
           yes(c->memory_budget));
    if (c->dedicated_transfer)
        printf("    transfer queue      dedicated (family %u)\n", c->transfer_family);
    else
        printf("    transfer queue      none dedicated\n");
    printf("    maxStorageBufferRange       %" PRIu64 "\n", c->max_storage_buffer_range);
    printf("    maxMemoryAllocationSize     %" PRIu64 "\n", c->max_memory_allocation_size);
    printf("    maxBufferSize               %" PRIu64 "\n", c->max_buffer_size);
    printf("    maxComputeSharedMemorySize  %u\n", c->max_shared_bytes);
    printf("    maxComputeWorkGroupInvocations %u\n", c->max_workgroup_invocations);
    if (c->sm_count) printf("    multiprocessors     %u\n", c->sm_count);
    for (uint32_t h = 0; h < c->n_heaps; h++) {
        printf("    heap %u: %8.2f GiB%s", h, (double)c->heaps[h].size_bytes / (1 << 30),
               c->heaps[h].device_local ? " device-local" : "");
        if (c->heaps[h].budget_bytes)
            printf(", budget %.2f GiB, in use %.2f GiB",
                   (double)c->heaps[h].budget_bytes / (1 << 30),
                   (double)c->heaps[h].usage_bytes / (1 << 30));
        putchar('\n');
        for (uint32_t t = 0; t < c->n_types; t++)
            if (c->types[t].heap == h) {
                mem_flags(c->types[t].flags, fl, sizeof fl);
                printf("      type %u: %s\n", t, fl[0] ? fl : "(none)");
            }
    }
}

static json_object *to_json(const sym_vk_caps *c, int idx, int chosen) {
    char ops[160], fl[96];
    json_object *o = json_object_new_object();
    json_object_object_add(o, "index", json_object_new_int(idx));
    json_object_object_add(o, "chosen", json_object_new_boolean(idx == chosen));
    json_object_object_add(o, "name", json_object_new_string(c->name));
    json_object_object_add(o, "type", json_object_new_string(c->type_name));
    json_object_object_add(o, "driver", json_object_new_string(c->driver_name));
    json_object_object_add(o, "driver_info", json_object_new_string(c->driver_info));
    char api[32];
    snprintf(api, sizeof api, "%u.%u.%u", VK_API_VERSION_MAJOR(c->api_version),
             VK_API_VERSION_MINOR(c->api_version), VK_API_VERSION_PATCH(c->api_version));
    json_object_object_add(o, "vulkan", json_object_new_string(api));
    json_object_object_add(o, "vendor_id", json_object_new_int((int)c->vendor_id));
    json_object_object_add(o, "device_id", json_object_new_int((int)c->device_id));
    json_object_object_add(o, "fp16_arithmetic", json_object_new_boolean(c->shader_float16));
    json_object_object_add(o, "storage_16bit", json_object_new_boolean(c->storage_16bit));
    json_object_object_add(o, "subgroup_size", json_object_new_int((int)c->subgroup_size));
    sym_vk_subgroup_ops_string(c->subgroup_ops, ops, sizeof ops);
    json_object_object_add(o, "subgroup_ops", json_object_new_string(ops));
    json_object_object_add(o, "coopmat_khr", json_object_new_boolean(c->coopmat_khr));
    json_object_object_add(o, "coopmat_nv", json_object_new_boolean(c->coopmat_nv));
    json_object_object_add(o, "coopmat_nv_f16_16x16x16",
                           json_object_new_boolean(c->coopmat_nv_f16));
    json_object_object_add(o, "push_descriptor", json_object_new_boolean(c->push_descriptor));
    json_object_object_add(o, "memory_budget", json_object_new_boolean(c->memory_budget));
    json_object_object_add(o, "dedicated_transfer_queue",
                           json_object_new_boolean(c->dedicated_transfer));
    json_object_object_add(o, "max_storage_buffer_range",
                           json_object_new_int64((int64_t)c->max_storage_buffer_range));
    json_object_object_add(o, "max_memory_allocation_size",
                           json_object_new_int64((int64_t)c->max_memory_allocation_size));
    json_object_object_add(o, "max_buffer_size",
                           json_object_new_int64((int64_t)c->max_buffer_size));
    json_object_object_add(o, "max_compute_shared_memory_size",
                           json_object_new_int((int)c->max_shared_bytes));
    json_object_object_add(o, "max_workgroup_invocations",
                           json_object_new_int((int)c->max_workgroup_invocations));
    if (c->sm_count) json_object_object_add(o, "multiprocessors", json_object_new_int((int)c->sm_count));
    json_object *heaps = json_object_new_array();
    for (uint32_t h = 0; h < c->n_heaps; h++) {
        json_object *jh = json_object_new_object();
        json_object_object_add(jh, "size_bytes",
                               json_object_new_int64((int64_t)c->heaps[h].size_bytes));
        json_object_object_add(jh, "device_local",
                               json_object_new_boolean(c->heaps[h].device_local));
        if (c->heaps[h].budget_bytes) {
            json_object_object_add(jh, "budget_bytes",
                                   json_object_new_int64((int64_t)c->heaps[h].budget_bytes));
            json_object_object_add(jh, "usage_bytes",
                                   json_object_new_int64((int64_t)c->heaps[h].usage_bytes));
        }
        json_object *types = json_object_new_array();
        for (uint32_t t = 0; t < c->n_types; t++)
            if (c->types[t].heap == h) {
                mem_flags(c->types[t].flags, fl, sizeof fl);
                json_object_array_add(types, json_object_new_string(fl));
            }
        json_object_object_add(jh, "types", types);
        json_object_array_add(heaps, jh);
    }
    json_object_object_add(o, "heaps", heaps);
    return o;
}

int cli_print_devices(int json) {
    sym_vk_caps *caps = NULL;
    int n = 0, chosen = -1;
    sym_status st = sym_vk_device_list(&caps, &n, &chosen);
    if (json) {
        json_object *root = json_object_new_object();
        json_object *arr = json_object_new_array();
        for (int i = 0; i < n; i++)
            json_object_array_add(arr, to_json(&caps[i], i, chosen));
        json_object_object_add(root, "devices", arr);
        if (st != SYM_OK) {
            json_object_object_add(root, "error", json_object_new_string(sym_status_name(st)));
            json_object_object_add(root, "detail", json_object_new_string(sym_last_error()));
        }
        puts(json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY));
        json_object_put(root);
    } else if (st == SYM_OK) {
        printf("Vulkan devices (* = the Vulkan backend's default; a cpu-type device such as llvmpipe is\n"
               "used only with --backend vulkan or --device):\n");
        for (int i = 0; i < n; i++)
            print_text(&caps[i], i, chosen);
    }
    sym_free(caps);
    sym_vk_shutdown();
    if (st != SYM_OK && !json) return cli_fail(st);
    return st == SYM_OK ? 0 : 1;
}
#else
int cli_print_devices(int json) {
    if (json)
        puts("{\"devices\": [], \"error\": \"built without Vulkan\"}");
    else
        fputs("symbiote: built without Vulkan (SYM_VULKAN=OFF)\n", stderr);
    return 1;
}
#endif

int cmd_devices(int argc, char **argv) {
    int json = 0;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            json = 1;
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf("usage: symbiote devices [--json]\n"
                   "Lists the Vulkan devices and what each offers: fp16 arithmetic, 16-bit "
                   "storage,\nsubgroups, cooperative matrices, memory heaps and budget, queues, "
                   "limits.\nThe device marked * is the one chosen when none is named.\n");
            return 0;
        } else
            return cli_usage_error("devices: unknown option '%s'", argv[i]);
    }
    return cli_print_devices(json);
}
