/* shader_dir.h — kernels compiled from GLSL at run time (libshaderc): `--shader-dir DIR` /
 * [performance] shader_dir. DIR/<kernel>.comp is compiled with the options of the build
 * (cmake/shaders.cmake: Vulkan 1.2, -O, warnings as errors, the variant's define, #include
 * resolved next to the including file, then in DIR), so an unchanged copy of shaders/ gives
 * the embedded SPIR-V. The SPIR-V of each (kernel, variant) is cached; poll() recompiles the
 * kernels whose source or included files changed. Knows nothing of Vulkan. Not thread-safe: one
 * owner (the Vulkan backend's pipelines, engine thread).
 */
#ifndef SYM_VK_SHADER_DIR_H
#define SYM_VK_SHADER_DIR_H

#include <stddef.h>
#include <stdint.h>

#include "base/status.h"

typedef struct sym_vk_shader_dir sym_vk_shader_dir;

/* 1 if this build can compile GLSL at run time (it was linked with libshaderc). */
int sym_vk_shader_dir_available(void);

/* Opens DIR (copied). SYM_ERR_UNSUPPORTED in a build without libshaderc; SYM_ERR_IO if DIR is
 * not a readable directory or holds no .comp file; SYM_ERR_OOM. */
sym_status sym_vk_shader_dir_open(const char *dir, sym_vk_shader_dir **out);
void sym_vk_shader_dir_close(sym_vk_shader_dir *sd);
const char *sym_vk_shader_dir_path(const sym_vk_shader_dir *sd);

/* The SPIR-V of DIR/<kernel>.comp compiled with `define` defined (NULL: none), compiled on the
 * first request and cached; *code stays valid until the next poll or close. *code is NULL (and
 * SYM_OK) when DIR has no <kernel>.comp: the caller uses its embedded SPIR-V (logged once per
 * kernel; poll notices the file if it appears later). SYM_ERR_FORMAT with the compiler's
 * messages (file:line: error: ...) when it does not compile; SYM_ERR_IO, SYM_ERR_OOM. */
sym_status sym_vk_shader_dir_get(sym_vk_shader_dir *sd, const char *kernel, const char *define,
                                 const uint32_t **code, size_t *bytes);

/* Vets freshly compiled SPIR-V before it replaces a kernel's code (e.g. its push-constant block
 * against the host's); a failure (with its detail recorded) keeps the old code. */
typedef sym_status (*sym_vk_shader_check_fn)(void *user, const char *kernel, const char *define,
                                             const uint32_t *code, size_t bytes);

/* Recompiles every requested variant of each kernel whose .comp or included files changed (or
 * appeared, or vanished) since they were compiled. When all compile and pass check (NULL: no
 * check), the new SPIR-V replaces the old and the kernel's name (owned by sd) goes to
 * changed[]; otherwise the old SPIR-V stays and the error is logged (SYM_ERROR, the compiler's
 * messages included) once per change. Returns the number of names written (at most cap; kernels
 * beyond cap wait for the next poll). */
int sym_vk_shader_dir_poll(sym_vk_shader_dir *sd, sym_vk_shader_check_fn check, void *user,
                           const char **changed, int cap);

#endif
