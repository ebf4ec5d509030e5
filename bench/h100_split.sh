#!/bin/bash
# bench/h100_split.sh BIN OUT — issue 6 (a)/(b) with the defaults of the code at hand (automatic
# pack size), the CPU/GPU split on (the default) and off (--no-split), llama2-7b f16 under
# --vram-gb 4; then test_stream vulkan on this GPU.
set -u
BIN=$(realpath ${1:?bin dir}); OUT=${2:?out dir}; S=$BIN/symbiote; M=/tmp/llama2-7b-f16.gguf
lscpu | grep -E "Model name|^CPU\(s\)|Flags" | cut -c1-200 | head -3
(cd /tmp && timeout 200 $BIN/test_stream vulkan 2>&1 | grep -v "info: vulkan: [^u]" | tail -9)
[ -f $M ] || $S make-model --preset llama2-7b --dtype f16 -o $M 2>&1 | tail -1
for v in split nosplit; do
  extra=""; [ $v = nosplit ] && extra="--no-split"
  timeout 200 $S bench -m $M --vram-gb 4 $extra -p 512 -n 24 -r 2 --json -v > $OUT/$v.json 2> $OUT/$v.log
  grep -E "placement" $OUT/$v.log | cut -c1-400
  python3 -c "
import json; d=json.load(open('$OUT/$v.json')); s=d['streaming']
print('%-8s prefill %7.1f tok/s  decode %5.2f tok/s (predicted %.2f)  up/token %.2f GB  cpu/token %.2f GB  link %.1f GB/s  upload ceiling %.2f  stall %.0f ms/token  peak VRAM %d' % ('$v',
 d['prefill_tok_s']['median'], d['decode_tok_s']['median'], s['predicted_decode_tok_s'], s['decode_bytes_uploaded_per_token']/1e9,
 s.get('decode_bytes_cpu_per_token',0)/1e9, s['link_gb_s'], s.get('upload_ceiling_tok_s',0), s['decode_stall_ms_per_token'], d['peak_vram_bytes']))" || tail -3 $OUT/$v.log
done
