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
print('%-14s %6.2f tok/s (pred %5.2f)  up %.2f GB cpu %.2f GB  cpu %5.1f ms readback %4.1f ms stall %5.1f ms  cpu %3.0f/%3.0f link %4.1f/%4.1f GB/s' % (
  sys.argv[2], d['decode_tok_s']['median'], s['predicted_decode_tok_s'],
  s['decode_bytes_uploaded_per_token'] / 1e9, s.get('decode_bytes_cpu_per_token', 0) / 1e9,
  s.get('decode_cpu_ms_per_token', 0), s.get('decode_readback_ms_per_token', 0),
  s['decode_stall_ms_per_token'], s.get('cpu_gb_s', 0), s.get('cpu_gb_s_loaded', 0),
  s['link_gb_s'], s.get('link_gb_s_loaded', 0)))
PY
}
row old_gpu_alone SYM_SPLIT_ORDER=gpu SYM_SPLIT_RATES=alone
row ready
row ready_alone SYM_SPLIT_RATES=alone
row cpu_first SYM_SPLIT_ORDER=cpu
row gpu_first SYM_SPLIT_ORDER=gpu
row ready_spin SYM_VK_SPIN_US=300
row ready_t16 -t 16
row ready_t12 -t 12
row share_0.60 SYM_SPLIT_FRACTION=0.60
row share_0.70 SYM_SPLIT_FRACTION=0.70
row share_0.80 SYM_SPLIT_FRACTION=0.80
row nosplit --no-split
