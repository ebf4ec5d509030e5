/* pipeline.c — kernels' layouts, specialized pipelines, the on-disk pipeline cache. */
#include "vk/pipeline.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/config.h"
#include "base/log.h"
#include "vk/push.h"
#include "vk/shader_dir.h"
#include "vk/shaders.h"

#define MAX_PIPELINES 256

static const struct {
    const char *name;
    uint32_t n_bindings, push_bytes;
} k_kernels[SYM_VK_K_COUNT] = {
    [SYM_VK_K_EMBED] = {"embed", 3, sizeof(sym_vk_push_embed)},
    [SYM_VK_K_RMSNORM] = {"rmsnorm", 3, sizeof(sym_vk_push_rmsnorm)},
    [SYM_VK_K_MATVEC] = {"matvec", 4, sizeof(sym_vk_push_matvec)},
    [SYM_VK_K_MATMUL] = {"matmul", 4, sizeof(sym_vk_push_matmul)},
    [SYM_VK_K_GEMM_SPLIT] = {"gemm_split", 4, sizeof(sym_vk_push_split)},
    [SYM_VK_K_MATMUL_COOP] = {"matmul_coop", 5, sizeof(sym_vk_push_coop)},
    [SYM_VK_K_ROPE] = {"rope", 2, sizeof(sym_vk_push_rope)},
    [SYM_VK_K_STORE_ROWS] = {"store_rows", 2, sizeof(sym_vk_push_store)},
    [SYM_VK_K_ATTN_DECODE] = {"attn_decode", 4, sizeof(sym_vk_push_attn_decode)},
    [SYM_VK_K_ATTN_COMBINE] = {"attn_combine", 2, sizeof(sym_vk_push_attn_combine)},
    [SYM_VK_K_ATTN_PREFILL] = {"attn_prefill", 4, sizeof(sym_vk_push_attn_prefill)},
    [SYM_VK_K_SILU_MUL] = {"silu_mul", 3, sizeof(sym_vk_push_binary)},
    [SYM_VK_K_ADD] = {"add", 3, sizeof(sym_vk_push_binary)},
    [SYM_VK_K_SOFTMAX] = {"softmax", 1, sizeof(sym_vk_push_rows)},
    [SYM_VK_K_ARGMAX] = {"argmax", 2, sizeof(sym_vk_push_rows)},
    [SYM_VK_K_MV] = {"mv", 5, sizeof(sym_vk_push_mv)},
    [SYM_VK_K_MV_GATE] = {"mv_gate", 5, sizeof(sym_vk_push_mv_gate)},
    [SYM_VK_K_MV_QKV] = {"mv_qkv", 12, sizeof(sym_vk_push_mv_qkv)},
    [SYM_VK_K_ATTN_DECODE_SG] = {"attn_decode_sg", 6, sizeof(sym_vk_push_attn_decode_sg)},
    [SYM_VK_K_PROBE_READ] = {"probe_read", 2, sizeof(sym_vk_push_probe)},
    [SYM_VK_K_SET_COLS] = {"set_cols", 2, sizeof(sym_vk_push_set_cols)},
    [SYM_VK_K_ADD_ROWS_SCALED] = {"add_rows_scaled", 4, sizeof(sym_vk_push_add_rows)},
    [SYM_VK_K_SCALE_COLS] = {"scale_cols", 3, sizeof(sym_vk_push_scale_cols)},
    [SYM_VK_K_ATTN_PREFILL_RT] = {"attn_prefill_rt", 4, sizeof(sym_vk_push_attn_prefill)},
    [SYM_VK_K_PROBE_CHAIN] = {"probe_chain", 3, sizeof(sym_vk_push_probe_chain)},
    [SYM_VK_K_ATTN_PREFILL_TC] = {"attn_prefill_tc", 4, sizeof(sym_vk_push_attn_prefill)},
    [SYM_VK_K_ROPE_STORE] = {"rope_store", 6, sizeof(sym_vk_push_rope_store)},
    [SYM_VK_K_PROBE_DCHAIN] = {"probe_dchain", 3, sizeof(sym_vk_push_probe_dchain)},
    [SYM_VK_K_TOPK] = {"topk", 4, sizeof(sym_vk_push_topk)},
};

static const char *const k_suffix[] = {"", "_nosg", "_fp16"};
/* the define each variant is compiled with (cmake/shaders.cmake) */
static const char *const k_define[] = {NULL, "NO_SUBGROUP_EXT", "FP16_VARIANT"};

typedef struct entry {
    sym_vk_kernel kernel;
    sym_vk_variant var;
    sym_vk_spec spec;
    sym_vk_pipeline p;
} entry;

struct sym_vk_pipelines {
    sym_vk_device *d;
    int push_descriptors;
    VkPipelineCache cache;
    char cache_path[1024];
    int dirty; /* pipelines were created: save the cache */
    VkDescriptorSetLayout dsl[SYM_VK_K_COUNT];
    VkPipelineLayout layout[SYM_VK_K_COUNT];
    VkShaderModule module[SYM_VK_K_COUNT][3];
    entry entries[MAX_PIPELINES];
    int n_entries;
    sym_vk_shader_dir *src; /* NULL: the embedded SPIR-V */
};

const char *sym_vk_kernel_name(sym_vk_kernel k) {
    return (unsigned)k < SYM_VK_K_COUNT ? k_kernels[k].name : "?";
}

const char *sym_vk_pipelines_cache_path(const sym_vk_pipelines *p) { return p->cache_path; }
int sym_vk_pipelines_count(const sym_vk_pipelines *p) { return p->n_entries; }

/* ---- SPIR-V: push-constant block size ----------------------------------------------------------
 */

int sym_vk_spirv_push_bytes(const uint32_t *code, size_t bytes) {
    enum { OP_TYPE_INT = 21, OP_TYPE_FLOAT = 22, OP_TYPE_STRUCT = 30, OP_TYPE_POINTER = 32 };
    enum { OP_VARIABLE = 59, OP_MEMBER_DECORATE = 72, DEC_OFFSET = 35, SC_PUSH = 9 };
    size_t n = bytes / 4;
    if (n < 5 || code[0] != 0x07230203u) return -1;
    uint32_t bound = code[3];
    if (bound == 0 || bound > (1u << 22)) return -1;
    /* pass 1: find the push-constant variable's pointee struct */
    uint32_t push_ptr_type = 0, struct_id = 0;
    for (size_t i = 5; i < n;) {
        uint32_t wc = code[i] >> 16, op = code[i] & 0xffffu;
        if (wc == 0 || i + wc > n) return -1;
        if (op == OP_VARIABLE && wc >= 4 && code[i + 3] == SC_PUSH) push_ptr_type = code[i + 1];
        i += wc;
    }
    if (!push_ptr_type) return 0;
    for (size_t i = 5; i < n;) {
        uint32_t wc = code[i] >> 16, op = code[i] & 0xffffu;
        if (op == OP_TYPE_POINTER && wc == 4 && code[i + 1] == push_ptr_type)
            struct_id = code[i + 3];
        i += wc;
    }
    if (!struct_id) return -1;
    /* pass 2: member types (32-bit scalars only) and offsets */
    int size = 0;
    for (size_t i = 5; i < n;) {
        uint32_t wc = code[i] >> 16, op = code[i] & 0xffffu;
        if (op == OP_TYPE_STRUCT && code[i + 1] == struct_id) {
            for (uint32_t m = 2; m < wc; m++) {
                uint32_t ty = code[i + m];
                int ok = 0;
                for (size_t j = 5; j < n;) {
                    uint32_t wj = code[j] >> 16, oj = code[j] & 0xffffu;
                    if ((oj == OP_TYPE_INT || oj == OP_TYPE_FLOAT) && code[j + 1] == ty &&
                        code[j + 2] == 32)
                        ok = 1;
                    j += wj;
                }
                if (!ok) return -1;
            }
        }
        if (op == OP_MEMBER_DECORATE && wc >= 5 && code[i + 1] == struct_id &&
            code[i + 3] == DEC_OFFSET) {
            int end = (int)code[i + 4] + 4;
            if (end > size) size = end;
        }
        i += wc;
    }
    return size;
}

/* ---- on-disk cache -----------------------------------------------------------------------------
 */

static int mkdirs(char *path) {
    for (char *s = path + 1; *s; s++) {
        if (*s != '/') continue;
        *s = '\0';
        int r = mkdir(path, 0755);
        *s = '/';
        if (r != 0 && errno != EEXIST) return -1;
    }
    return mkdir(path, 0755) == 0 || errno == EEXIST ? 0 : -1;
}

static void cache_path_for(const sym_vk_caps *c, const char *dir, char *out, size_t cap) {
    out[0] = '\0';
    char base[900];
    if (dir && !*dir) return;
    if (dir)
        snprintf(base, sizeof base, "%s", dir);
    else if (!sym_cache_dir(base, sizeof base))
        return;
    snprintf(out, cap, "%s/vk-pipelines-%04x-%04x.bin", base, c->vendor_id, c->device_id);
}

/* Reads the cache file if its header matches this device; *data NULL otherwise. */
static void cache_read(const sym_vk_caps *c, const char *path, void **data, size_t *size) {
    *data = NULL;
    *size = 0;
    if (!*path) return;
    FILE *f = fopen(path, "rb");
    if (!f) return;
    unsigned char *buf = NULL;
    long n = -1;
    if (fseek(f, 0, SEEK_END) == 0) n = ftell(f);
    if (n >= 32 && n < (64l << 20) && fseek(f, 0, SEEK_SET) == 0) {
        buf = sym_malloc((size_t)n);
        if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
            sym_free(buf);
            buf = NULL;
        }
    }
    fclose(f);
    if (!buf) return;
    /* VkPipelineCacheHeaderVersionOne: length, version, vendorID, deviceID, uuid[16] */
    uint32_t h[4];
    memcpy(h, buf, sizeof h);
    if (h[0] < 32 || h[1] != VK_PIPELINE_CACHE_HEADER_VERSION_ONE || h[2] != c->vendor_id ||
        h[3] != c->device_id || memcmp(buf + 16, c->pipeline_cache_uuid, VK_UUID_SIZE) != 0) {
        SYM_INFO("vulkan: ignoring pipeline cache %s (made by another device or driver)", path);
        sym_free(buf);
        return;
    }
    *data = buf;
    *size = (size_t)n;
}

static void cache_write(sym_vk_pipelines *p) {
    if (!*p->cache_path || !p->dirty || !p->cache) return;
    size_t n = 0;
    if (vkGetPipelineCacheData(p->d->dev, p->cache, &n, NULL) != VK_SUCCESS || n == 0) return;
    void *buf = sym_malloc(n);
    if (!buf) return;
    char dir[1024], tmp[1100];
    snprintf(dir, sizeof dir, "%s", p->cache_path);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = '\0';
    snprintf(tmp, sizeof tmp, "%s.%ld.tmp", p->cache_path, (long)getpid());
    FILE *f = NULL;
    if (vkGetPipelineCacheData(p->d->dev, p->cache, &n, buf) != VK_SUCCESS) goto done;
    if (slash && mkdirs(dir) != 0) {
        SYM_WARN("vulkan: cannot create %s for the pipeline cache", dir);
        goto done;
    }
    f = fopen(tmp, "wb");
    if (!f || fwrite(buf, 1, n, f) != n) {
        SYM_WARN("vulkan: cannot write the pipeline cache %s", tmp);
        if (f) fclose(f);
        remove(tmp);
        goto done;
    }
    if (fclose(f) != 0 || rename(tmp, p->cache_path) != 0) {
        SYM_WARN("vulkan: cannot write the pipeline cache %s", p->cache_path);
        remove(tmp);
    }
done:
    sym_free(buf);
}

/* ---- layouts, modules, pipelines ---------------------------------------------------------------
 */

sym_status sym_vk_pipelines_create(sym_vk_device *d, int push_descriptors, const char *cache_dir,
                                   sym_vk_pipelines **out) {
    *out = NULL;
    sym_vk_pipelines *p = sym_calloc(1, sizeof *p);
    if (!p) return SYM_FAIL(SYM_ERR_OOM, "vulkan: out of memory");
    p->d = d;
    p->push_descriptors = push_descriptors;
    cache_path_for(&d->caps, cache_dir, p->cache_path, sizeof p->cache_path);
    void *data;
    size_t size;
    cache_read(&d->caps, p->cache_path, &data, &size);
    VkPipelineCacheCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO,
                                    .initialDataSize = size,
                                    .pInitialData = data};
    sym_status st = SYM_VK_CALL(vkCreatePipelineCache(d->dev, &ci, NULL, &p->cache));
    sym_free(data);
    if (st != SYM_OK) {
        sym_free(p);
        return st;
    }
    if (size) SYM_INFO("vulkan: pipeline cache %s (%zu bytes)", p->cache_path, size);
    *out = p;
    return SYM_OK;
}

static void drop_kernel(sym_vk_pipelines *p, sym_vk_kernel k) {
    VkDevice dev = p->d->dev;
    int w = 0;
    for (int i = 0; i < p->n_entries; i++) {
        if (p->entries[i].kernel == k)
            vkDestroyPipeline(dev, p->entries[i].p.pipe, NULL);
        else
            p->entries[w++] = p->entries[i];
    }
    p->n_entries = w;
    for (int v = 0; v < 3; v++) {
        if (p->module[k][v]) vkDestroyShaderModule(dev, p->module[k][v], NULL);
        p->module[k][v] = VK_NULL_HANDLE;
    }
}

void sym_vk_pipelines_drop(sym_vk_pipelines *p, sym_vk_kernel k) {
    if (p && (unsigned)k < SYM_VK_K_COUNT) drop_kernel(p, k);
}

void sym_vk_pipelines_destroy(sym_vk_pipelines *p) {
    if (!p) return;
    cache_write(p);
    VkDevice dev = p->d->dev;
    for (int k = 0; k < SYM_VK_K_COUNT; k++) {
        drop_kernel(p, (sym_vk_kernel)k);
        if (p->layout[k]) vkDestroyPipelineLayout(dev, p->layout[k], NULL);
        if (p->dsl[k]) vkDestroyDescriptorSetLayout(dev, p->dsl[k], NULL);
    }
    if (p->cache) vkDestroyPipelineCache(dev, p->cache, NULL);
    sym_vk_shader_dir_close(p->src);
    sym_free(p);
}

/* The SPIR-V of a variant: compiled from the shader dir if there is one and it holds the
 * kernel's source, else embedded. */
static sym_status shader_code(sym_vk_pipelines *p, sym_vk_kernel k, sym_vk_variant var,
                              const uint32_t **code, size_t *bytes, int *from_dir) {
    *from_dir = 0;
    if (p->src) {
        SYM_TRY(sym_vk_shader_dir_get(p->src, k_kernels[k].name, k_define[var], code, bytes));
        *from_dir = *code != NULL;
        if (*code) return SYM_OK;
    }
    char name[64];
    snprintf(name, sizeof name, "%s%s", k_kernels[k].name, k_suffix[var]);
    for (size_t i = 0; i < sym_vk_n_shader_blobs; i++)
        if (!strcmp(sym_vk_shader_blobs[i].name, name)) {
            *code = sym_vk_shader_blobs[i].code;
            *bytes = sym_vk_shader_blobs[i].bytes;
            return SYM_OK;
        }
    return SYM_FAIL(SYM_ERR_INTERNAL, "vulkan: kernel %s is not embedded", name);
}

/* err: SYM_ERR_INTERNAL for embedded code (ours), SYM_ERR_FORMAT for a shader dir's. */
static sym_status check_push_bytes(sym_vk_kernel k, sym_vk_variant var, const uint32_t *code,
                                   size_t bytes, sym_status err) {
    int pb = sym_vk_spirv_push_bytes(code, bytes);
    SYM_CHECK(pb == (int)k_kernels[k].push_bytes, err,
              "vulkan: kernel %s%s declares %d push-constant bytes, src/vk/push.h %u",
              k_kernels[k].name, k_suffix[var], pb, k_kernels[k].push_bytes);
    return SYM_OK;
}

static sym_status ensure_layout(sym_vk_pipelines *p, sym_vk_kernel k) {
    if (p->layout[k]) return SYM_OK;
    VkDevice dev = p->d->dev;
    VkDescriptorSetLayoutBinding b[SYM_VK_MAX_BINDINGS];
    uint32_t nb = k_kernels[k].n_bindings;
    SYM_ASSERT(nb <= SYM_VK_MAX_BINDINGS);
    for (uint32_t i = 0; i < nb; i++)
        b[i] = (VkDescriptorSetLayoutBinding){.binding = i,
                                              .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
                                              .descriptorCount = 1,
                                              .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT};
    VkDescriptorSetLayoutCreateInfo dci = {
        .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO,
        .flags = p->push_descriptors ? VK_DESCRIPTOR_SET_LAYOUT_CREATE_PUSH_DESCRIPTOR_BIT_KHR : 0,
        .bindingCount = nb,
        .pBindings = b};
    SYM_VK_TRY(vkCreateDescriptorSetLayout(dev, &dci, NULL, &p->dsl[k]));
    VkPushConstantRange pr = {
        .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT, .offset = 0, .size = k_kernels[k].push_bytes};
    VkPipelineLayoutCreateInfo lci = {.sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO,
                                      .setLayoutCount = 1,
                                      .pSetLayouts = &p->dsl[k],
                                      .pushConstantRangeCount = 1,
                                      .pPushConstantRanges = &pr};
    sym_status st = SYM_VK_CALL(vkCreatePipelineLayout(dev, &lci, NULL, &p->layout[k]));
    if (st != SYM_OK) {
        vkDestroyDescriptorSetLayout(dev, p->dsl[k], NULL);
        p->dsl[k] = VK_NULL_HANDLE;
        p->layout[k] = VK_NULL_HANDLE;
    }
    return st;
}

static sym_status ensure_module(sym_vk_pipelines *p, sym_vk_kernel k, sym_vk_variant var) {
    if (p->module[k][var]) return SYM_OK;
    const uint32_t *code;
    size_t bytes;
    int from_dir;
    SYM_TRY(shader_code(p, k, var, &code, &bytes, &from_dir));
    SYM_TRY(check_push_bytes(k, var, code, bytes, from_dir ? SYM_ERR_FORMAT : SYM_ERR_INTERNAL));
    VkShaderModuleCreateInfo ci = {
        .sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO, .codeSize = bytes, .pCode = code};
    SYM_VK_TRY(vkCreateShaderModule(p->d->dev, &ci, NULL, &p->module[k][var]));
    return SYM_OK;
}

sym_status sym_vk_pipeline_get(sym_vk_pipelines *p, sym_vk_kernel k, sym_vk_variant var,
                               const sym_vk_spec *spec, const sym_vk_pipeline **out) {
    SYM_ASSERT((unsigned)k < SYM_VK_K_COUNT && (unsigned)var < 3);
    for (int i = 0; i < p->n_entries; i++) {
        entry *e = &p->entries[i];
        if (e->kernel == k && e->var == var && !memcmp(&e->spec, spec, sizeof *spec)) {
            *out = &e->p;
            return SYM_OK;
        }
    }
    SYM_CHECK(p->n_entries < MAX_PIPELINES, SYM_ERR_INTERNAL,
              "vulkan: more than %d pipeline variants", MAX_PIPELINES);
    SYM_TRY(ensure_layout(p, k));
    SYM_TRY(ensure_module(p, k, var));
    VkSpecializationMapEntry me[SYM_VK_N_SPEC];
    for (uint32_t i = 0; i < SYM_VK_N_SPEC; i++)
        me[i] = (VkSpecializationMapEntry){.constantID = i, .offset = 4 * i, .size = 4};
    VkSpecializationInfo si = {.mapEntryCount = SYM_VK_N_SPEC,
                               .pMapEntries = me,
                               .dataSize = sizeof spec->v,
                               .pData = spec->v};
    VkComputePipelineCreateInfo ci = {
        .sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
        .stage = {.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO,
                  .stage = VK_SHADER_STAGE_COMPUTE_BIT,
                  .module = p->module[k][var],
                  .pName = "main",
                  .pSpecializationInfo = &si},
        .layout = p->layout[k]};
    entry *e = &p->entries[p->n_entries];
    SYM_VK_TRY(vkCreateComputePipelines(p->d->dev, p->cache, 1, &ci, NULL, &e->p.pipe));
    e->kernel = k;
    e->var = var;
    e->spec = *spec;
    e->p.layout = p->layout[k];
    e->p.dsl = p->dsl[k];
    e->p.kernel = k;
    e->p.n_bindings = k_kernels[k].n_bindings;
    e->p.push_bytes = k_kernels[k].push_bytes;
    p->n_entries++;
    p->dirty = 1;
    SYM_DEBUG("vulkan: pipeline %s%s [%u %u %u %u %u %u %u %u]", k_kernels[k].name, k_suffix[var],
              spec->v[0], spec->v[1], spec->v[2], spec->v[3], spec->v[4], spec->v[5], spec->v[6],
              spec->v[7]);
    *out = &e->p;
    return SYM_OK;
}

/* ---- run-time compilation, hot reload ----------------------------------------------------- */

sym_status sym_vk_pipelines_use_shader_dir(sym_vk_pipelines *p, const char *dir) {
    SYM_CHECK(!p->src, SYM_ERR_ARG, "vulkan: a shader dir is already in use");
    SYM_TRY(sym_vk_shader_dir_open(dir, &p->src));
    /* kernels made so far came from the embedded SPIR-V */
    for (int k = 0; k < SYM_VK_K_COUNT; k++)
        drop_kernel(p, (sym_vk_kernel)k);
    return SYM_OK;
}

static sym_status vet(void *user, const char *kernel, const char *define, const uint32_t *code,
                      size_t bytes) {
    (void)user;
    for (int k = 0; k < SYM_VK_K_COUNT; k++) {
        if (strcmp(k_kernels[k].name, kernel) != 0) continue;
        int var = 0;
        for (int v = 1; v < 3; v++)
            if (define && !strcmp(define, k_define[v])) var = v;
        return check_push_bytes((sym_vk_kernel)k, (sym_vk_variant)var, code, bytes, SYM_ERR_FORMAT);
    }
    return SYM_FAIL(SYM_ERR_INTERNAL, "vulkan: no kernel named %s", kernel);
}

int sym_vk_pipelines_reload(sym_vk_pipelines *p) {
    if (!p->src) return 0;
    const char *changed[SYM_VK_K_COUNT];
    int n = sym_vk_shader_dir_poll(p->src, vet, NULL, changed, SYM_VK_K_COUNT);
    for (int i = 0; i < n; i++)
        for (int k = 0; k < SYM_VK_K_COUNT; k++)
            if (!strcmp(k_kernels[k].name, changed[i])) drop_kernel(p, (sym_vk_kernel)k);
    return n;
}

const char *sym_vk_pipelines_shader_dir(const sym_vk_pipelines *p) {
    return p->src ? sym_vk_shader_dir_path(p->src) : NULL;
}
