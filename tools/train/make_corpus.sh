#!/bin/sh
# Joins the quotes of Debian's `fortunes` package (apt-get install fortunes) into one file for
# tools/train/train_toy.py: quotes separated by lines holding '%'. Skips the ASCII-art files.
set -eu
out=${1:?usage: make_corpus.sh OUT}
dir=/usr/share/games/fortunes
: > "$out"
for f in "$dir"/*; do
  case "$f" in *.dat|*.u8|*/art|*/ascii-art|*/translate-me) continue;; esac
  [ -f "$f" ] || continue
  cat "$f" >> "$out"
  printf '\n%%\n' >> "$out"
done
