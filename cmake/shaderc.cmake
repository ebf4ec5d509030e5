# Run-time GLSL compilation for `--shader-dir` (src/vk/shader_dir.c): libshaderc, from Debian's
# libshaderc-dev (scripts/setup-deps.sh), when it can be linked; otherwise the feature is off
# (SYM_HAVE_SHADERC undefined) and asking for a shader dir fails with SYM_ERR_UNSUPPORTED.
#
# Debian 12's libshaderc.so.1 cannot be linked on its own: it leaves glslang's symbols undefined
# (glslc, its one user, exports them), and linked against glslang-dev's static glslang 12 (it was
# built with 11.13) it crashes in its first compilation. So every build, SYM_STATIC_DEPS or not,
# links the static libshaderc_combined.a with glslang's and SPIRV-Tools' static libraries (in
# dependency order; glslang's CMake package cannot be used: it fails without glslang-tools) and
# the C++ runtime; a configure-time program compiles a shader with them to prove they work.
option(SYM_SHADERC "Compile GLSL at run time for --shader-dir (libshaderc) when it can be linked" ON)

if(SYM_SHADERC)
  find_path(SHADERC_INCLUDE_DIR shaderc/shaderc.h)
  set(SYM_SHADERC_LIBS "")
  set(SYM_SHADERC_MISSING "")
  foreach(lib shaderc_combined SPIRV glslang MachineIndependent GenericCodeGen OGLCompiler
              OSDependent SPIRV-Tools-opt SPIRV-Tools)
    find_library(SYM_${lib}_A NAMES lib${lib}.a)
    if(SYM_${lib}_A)
      list(APPEND SYM_SHADERC_LIBS ${SYM_${lib}_A})
    else()
      list(APPEND SYM_SHADERC_MISSING lib${lib}.a)
    endif()
  endforeach()
  set(SYM_SHADERC_OK FALSE)
  if(SHADERC_INCLUDE_DIR AND NOT SYM_SHADERC_MISSING)
    include(CheckCSourceRuns)
    list(APPEND SYM_SHADERC_LIBS stdc++ m Threads::Threads)
    set(CMAKE_REQUIRED_INCLUDES ${SHADERC_INCLUDE_DIR})
    set(CMAKE_REQUIRED_LIBRARIES ${SYM_SHADERC_LIBS})
    check_c_source_runs([=[
#include <shaderc/shaderc.h>
#include <stdio.h>
#include <string.h>
int main(void) {
    char src[128]; /* (no backslash escapes: this text passes through CMake) */
    snprintf(src, sizeof src, "#version 450%clayout(local_size_x = 1) in; void main() {}", 10);
    shaderc_compiler_t c = shaderc_compiler_initialize();
    shaderc_compile_options_t o = shaderc_compile_options_initialize();
    shaderc_compile_options_set_target_env(o, shaderc_target_env_vulkan, shaderc_env_version_vulkan_1_2);
    shaderc_compile_options_set_optimization_level(o, shaderc_optimization_level_performance);
    shaderc_compilation_result_t r = shaderc_compile_into_spv(c, src, strlen(src),
        shaderc_glsl_compute_shader, "probe.comp", "main", o);
    int ok = shaderc_result_get_compilation_status(r) == shaderc_compilation_status_success &&
             shaderc_result_get_length(r) > 20;
    shaderc_result_release(r);
    shaderc_compile_options_release(o);
    shaderc_compiler_release(c);
    return ok ? 0 : 1;
}
]=] SYM_SHADERC_RUNS)
    unset(CMAKE_REQUIRED_INCLUDES)
    unset(CMAKE_REQUIRED_LIBRARIES)
    if(SYM_SHADERC_RUNS)
      set(SYM_SHADERC_OK TRUE)
    endif()
  endif()
  if(SYM_SHADERC_OK)
    target_include_directories(symbiote_core PRIVATE ${SHADERC_INCLUDE_DIR})
    target_link_libraries(symbiote_core PRIVATE ${SYM_SHADERC_LIBS})
    target_compile_definitions(symbiote_core PUBLIC SYM_HAVE_SHADERC=1)
    message(STATUS "libshaderc: run-time shader compilation (--shader-dir) on")
  else()
    message(STATUS "libshaderc (static libshaderc_combined.a with glslang and SPIRV-Tools) not "
                   "found or not usable (missing: ${SYM_SHADERC_MISSING}): --shader-dir is off "
                   "in this build")
  endif()
else()
  message(STATUS "SYM_SHADERC=OFF: --shader-dir is off in this build")
endif()
