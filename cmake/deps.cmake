# Third-party libraries, all from Debian packages (scripts/setup-deps.sh installs them).
# SYM_STATIC_DEPS links the .a files, so a binary built here runs on a machine without them
# (the GPU machine reached through the device tool has no Vulkan headers or these libraries).
#
# Compression (the pack store, src/pack/codec.c): zstd and xxHash are required; Blosc and ZFP
# are required in a normal build. Debian ships no static ZFP, and its static Blosc needs static
# lz4 and snappy, which it does not ship either: a SYM_STATIC_DEPS build therefore leaves a codec
# out when its .a files are missing (SYM_HAVE_BLOSC / SYM_HAVE_ZFP undefined; the codec then
# reports SYM_ERR_UNSUPPORTED, and a store using it cannot be read by that binary).
set(SYM_DEP_LIBS "")
if(SYM_STATIC_DEPS)
  find_library(INIH_A NAMES libinih.a REQUIRED)
  find_library(JSONC_A NAMES libjson-c.a REQUIRED)
  find_library(PCRE2_A NAMES libpcre2-8.a REQUIRED)
  find_library(ZSTD_A NAMES libzstd.a REQUIRED)
  find_library(XXHASH_A NAMES libxxhash.a REQUIRED)
  include_directories(${INIH_INCLUDE_DIRS} ${JSONC_INCLUDE_DIRS} ${PCRE2_INCLUDE_DIRS})
  list(APPEND SYM_DEP_LIBS ${INIH_A} ${JSONC_A} ${PCRE2_A})
  find_library(BLOSC_A NAMES libblosc.a)
  find_library(LZ4_A NAMES liblz4.a)
  find_library(SNAPPY_A NAMES libsnappy.a)
  find_library(Z_A NAMES libz.a)
  if(BLOSC_A AND LZ4_A AND SNAPPY_A AND Z_A)
    list(APPEND SYM_DEP_LIBS ${BLOSC_A} ${LZ4_A} ${SNAPPY_A} ${Z_A} stdc++)
    add_compile_definitions(SYM_HAVE_BLOSC=1)
  else()
    message(STATUS "SYM_STATIC_DEPS: static Blosc (with lz4, snappy, zlib) not found: the blosc codec is left out")
  endif()
  find_library(ZFP_A NAMES libzfp.a)
  if(ZFP_A)
    list(APPEND SYM_DEP_LIBS ${ZFP_A})
    add_compile_definitions(SYM_HAVE_ZFP=1)
  else()
    message(STATUS "SYM_STATIC_DEPS: no static ZFP (libzfp.a): the zfp codec is left out")
  endif()
  # zstd after Blosc, which uses it
  list(APPEND SYM_DEP_LIBS ${ZSTD_A} ${XXHASH_A})
else()
  pkg_check_modules(ZSTD REQUIRED IMPORTED_TARGET libzstd)
  pkg_check_modules(XXHASH REQUIRED IMPORTED_TARGET libxxhash)
  pkg_check_modules(BLOSC REQUIRED IMPORTED_TARGET blosc)
  # libzfp-dev ships no pkg-config file
  find_path(ZFP_INCLUDE_DIR zfp.h REQUIRED)
  find_library(ZFP_LIB NAMES zfp REQUIRED)
  include_directories(${ZFP_INCLUDE_DIR})
  add_compile_definitions(SYM_HAVE_BLOSC=1 SYM_HAVE_ZFP=1)
  list(APPEND SYM_DEP_LIBS PkgConfig::INIH PkgConfig::JSONC PkgConfig::PCRE2 PkgConfig::BLOSC
       PkgConfig::ZSTD PkgConfig::XXHASH ${ZFP_LIB})
endif()
