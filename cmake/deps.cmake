# Third-party libraries, all from Debian packages (scripts/setup-deps.sh installs them).
# SYM_STATIC_DEPS links the .a files, so a binary built here runs on a machine without them
# (the GPU machine reached through the device tool has no Vulkan headers or these libraries).
set(SYM_DEP_LIBS "")
if(SYM_STATIC_DEPS)
  find_library(INIH_A NAMES libinih.a REQUIRED)
  find_library(JSONC_A NAMES libjson-c.a REQUIRED)
  find_library(PCRE2_A NAMES libpcre2-8.a REQUIRED)
  include_directories(${INIH_INCLUDE_DIRS} ${JSONC_INCLUDE_DIRS} ${PCRE2_INCLUDE_DIRS})
  list(APPEND SYM_DEP_LIBS ${INIH_A} ${JSONC_A} ${PCRE2_A})
else()
  list(APPEND SYM_DEP_LIBS PkgConfig::INIH PkgConfig::JSONC PkgConfig::PCRE2)
endif()
