#!/bin/bash
# bench/h100_split_variants.sh BIN OUT — the CPU/GPU split's operating point: forced CPU shares
# (SYM_SPLIT_FRACTION, of the layers' bytes) and CPU thread counts, llama2-7b f16, --vram-gb 4.
set -u
BIN=$(realpath ${1:?bin dir}); OUT=${2:?out dir}; S=$BIN/symbiote; M=/tmp/llama2-7b-f16.gguf
[ -f $M ] || $S make-model --preset llama2-7b --dtype f16 -o $M 2>&1 | tail -1
grep -o -m1 -E "avx512[a-z_0-9]*" /proc/cpuinfo | sort -u | tr '\n' ' '; echo
for v in "auto 14" "0.50 14" "0.65 14" "auto 13"; do
  set -- $v
  if [ $1 = auto ]; then unset SYM_SPLIT_FRACTION; else export SYM_SPLIT_FRACTION=$1; fi
  timeout 150 $S bench -m $M --vram-gb 4 -t $2 -p 0 -n 24 -r 2 --json -v > $OUT/sv_$1_$2.json 2> $OUT/sv_$1_$2.log
  python3 -c "
import json; d=json.load(open('$OUT/sv_$1_$2.json')); s=d['streaming']
print('share %-5s threads %-3s decode %5.2f tok/s (predicted %.2f)  up/token %.2f GB  cpu/token %.2f GB  stall %.0f ms/token' % ('$1','$2',
 d['decode_tok_s']['median'], s['predicted_decode_tok_s'], s['decode_bytes_uploaded_per_token']/1e9,
 s.get('decode_bytes_cpu_per_token',0)/1e9, s['decode_stall_ms_per_token']))" || tail -3 $OUT/sv_$1_$2.log
  grep -o "product measured at [0-9]* GB/s" $OUT/sv_$1_$2.log
done
