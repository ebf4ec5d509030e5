#!/bin/bash
# bench/h100_split_order.sh BIN OUT — the CPU/GPU split's stage order (SYM_SPLIT_ORDER), the rates
# it plans with (SYM_SPLIT_RATES: measured together, or alone), forced CPU shares
# (SYM_SPLIT_FRACTION, of the MLP bytes), fence polling (SYM_VK_SPIN_US) and thread counts;
# llama2-7b f16, --vram-gb 4, then --no-split for the upload-only ceiling. One line per variant.
set -u
BIN=$(realpath ${1:?bin dir}); OUT=${2:?out dir}; S=$BIN/symbiote; M=/tmp/llama2-7b-f16.gguf
lscpu | grep -E "Model name|^CPU\(s\)" | head -2
[ -f $M ] || $S make-model --preset llama2-7b --dtype f16 -o $M 2>&1 | tail -1
row() { # name, then env assignments / flags
  local name=$1; shift
  local envs=() flags=()
  for a in "$@"; do case $a in *=*) envs+=("$a");; *) flags+=("$a");; esac; done
  env "${envs[@]}" timeout 120 $S bench -m $M --vram-gb 4 "${flags[@]}" -p 16 -n 32 -r 2 --json -v \
    > $OUT/$name.json 2> $OUT/$name.log
  python3 - $OUT/$name.json $name <<'PY' || tail -3 $OUT/$name.log
import json, sys
d = json.load(open(sys.argv[1])); s = d['streaming']
print('%-16s %6.2f tok/s (pred %5.2f)  up %.2f GB cpu %.2f GB  cpu %5.1f ms readback %4.1f ms x%3.0f stall %5.1f ms  cpu %3.0f/%3.0f link %4.1f/%4.1f GB/s' % (
  sys.argv[2], d['decode_tok_s']['median'], s['predicted_decode_tok_s'],
  s['decode_bytes_uploaded_per_token'] / 1e9, s.get('decode_bytes_cpu_per_token', 0) / 1e9,
  s.get('decode_cpu_ms_per_token', 0), s.get('decode_readback_ms_per_token', 0), s.get('decode_readbacks_per_token', 0),
  s['decode_stall_ms_per_token'], s.get('cpu_gb_s', 0), s.get('cpu_gb_s_loaded', 0),
  s['link_gb_s'], s.get('link_gb_s_loaded', 0)))
PY
}
if [ -n "${VARIANTS:-}" ]; then eval "$VARIANTS"; exit 0; fi
row packs_t14 SYM_SPLIT_LAYERS=0
row layers_t14
row layers_t16 -t 16
row layers_nothp_t16 SYM_NO_THP=1 -t 16
row packs_t16 SYM_SPLIT_LAYERS=0 -t 16
row layers_0.70_t16 SYM_SPLIT_FRACTION=0.70 -t 16
row layers_0.80_t16 SYM_SPLIT_FRACTION=0.80 -t 16
row layers_gpu_t16 SYM_SPLIT_ORDER=gpu -t 16
row nosplit --no-split
row nosplit_nothp SYM_NO_THP=1 --no-split
