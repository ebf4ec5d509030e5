#!/bin/sh
# Installs every Debian 12 package Symbiote needs to build, test and benchmark.
# Run as root (or with sudo available) on a fresh Debian 12 machine.
set -eu
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
  build-essential cmake pkg-config ca-certificates git \
  libvulkan-dev glslc libshaderc-dev mesa-vulkan-drivers vulkan-tools vulkan-validationlayers \
  libinih-dev libjson-c-dev libpcre2-dev \
  libzstd-dev libblosc-dev libzfp-dev liburing-dev libxxhash-dev \
  clang libclang-rt-14-dev
