#!/bin/bash
# bench/h100_decode.sh BIN OUT — resident f16 decode and prefill on the device (issue 5), one line
# per variant: `row NAME MODEL [ENV=value ...] [flags ...]` runs `symbiote bench -p 512 -n 128`
# with them and prints decode / prefill tok/s (median), dispatches and host ms per token, and the
# SM clock nvidia-smi saw while it ran. MODEL: 1b (tinyllama-1.1b) or 7b (llama2-7b) in f16, or
# 1b-bf16 / 7b-bf16 in bf16, written on the machine by make-model. VARIANTS (a shell snippet of row calls) replaces the default list.
set -u
BIN=$(realpath ${1:?bin dir}); OUT=${2:?out dir}; S=$BIN/symbiote
mkdir -p $OUT
declare -A MP=([1b]=/tmp/tinyllama-f16.gguf [7b]=/tmp/llama2-7b-f16.gguf
               [1b-bf16]=/tmp/tinyllama-bf16.gguf [7b-bf16]=/tmp/llama2-7b-bf16.gguf)
declare -A PRESET=([1b]=tinyllama-1.1b [7b]=llama2-7b [1b-bf16]=tinyllama-1.1b [7b-bf16]=llama2-7b)
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem --format=csv,noheader 2>/dev/null
row() { # name, model, then env assignments / flags
  local name=$1 m=$2; shift 2
  local M=${MP[$m]} envs=() flags=()
  local dt=f16; case $m in *-bf16) dt=bf16;; esac
  [ -f $M ] || $S make-model --preset ${PRESET[$m]} --dtype $dt -o $M 2>&1 | tail -1
  for a in "$@"; do case $a in *=*) envs+=("$a");; *) flags+=("$a");; esac; done
  local smi=
  if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=clocks.sm,clocks.mem,utilization.gpu --format=csv,noheader,nounits -lms 100 \
      > $OUT/$name.clk 2>/dev/null & smi=$!
  fi
  env "${envs[@]}" timeout 300 $S bench -m $M "${flags[@]}" -p ${NP:-512} -n ${NG:-128} -r ${REPS:-3} --json \
    > $OUT/$name.json 2> $OUT/$name.log
  [ -n "$smi" ] && kill $smi 2>/dev/null && wait $smi 2>/dev/null
  python3 - $OUT/$name.json $name $OUT/$name.clk <<'PY' || tail -3 $OUT/$name.log
import json, sys
d = json.load(open(sys.argv[1])); dp = d.get('decode_per_token', {})
clk = ''
try:
    v = [l.split(',') for l in open(sys.argv[3]) if l.strip()]
    sm = [float(x[0]) for x in v]; ut = [float(x[2]) for x in v]
    hot = [s for s, u in zip(sm, ut) if u > 50]
    clk = 'sm %4.0f MHz (busy samples %d, max %4.0f)' % (sum(hot) / max(len(hot), 1), len(hot), max(sm or [0]))
except Exception as e:
    clk = 'no clock: %s' % e
print('%-22s decode %7.1f tok/s  prefill %7.0f tok/s  disp %5.0f  rec %.2f wait %.2f ms  %s' % (
  sys.argv[2], d['decode_tok_s']['median'], d['prefill_tok_s']['median'], dp.get('dispatches', 0),
  dp.get('host_record_ms', {}).get('median', 0), dp.get('host_wait_ms', {}).get('median', 0), clk))
PY
}
if [ -n "${VARIANTS:-}" ]; then eval "$VARIANTS"; exit 0; fi
row 1b_base 1b
row 1b_nobarrier 1b SYM_VK_DEBUG_NO_BARRIERS=1
row 7b_base 7b
row 7b_nobarrier 7b SYM_VK_DEBUG_NO_BARRIERS=1
