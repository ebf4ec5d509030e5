/* shaders.h — the SPIR-V of every kernel variant, embedded at build time (cmake/shaders.cmake
 * generates the table from the shaders/ folder). A variant is "<kernel>", "<kernel>_nosg" (no
 * subgroup capability) or "<kernel>_fp16" (f16 arithmetic). */
#ifndef SYM_VK_SHADERS_H
#define SYM_VK_SHADERS_H

#include <stddef.h>
#include <stdint.h>

typedef struct sym_vk_shader_blob {
    const char *name;
    const uint32_t *code;
    size_t bytes;
} sym_vk_shader_blob;

extern const sym_vk_shader_blob sym_vk_shader_blobs[];
extern const size_t sym_vk_n_shader_blobs;

#endif
