#!/bin/bash
# bench/h100_stream_variants.sh BIN OUT — issue 6 (a)/(b) under --vram-gb 4 for several pack
# sizes and prefetch lookaheads: prefill of 512 tokens and decode, one JSON per variant.
set -u
BIN=${1:?bin dir}; OUT=${2:?out dir}; S=$BIN/symbiote; M=/tmp/llama2-7b-f16.gguf
[ -f $M ] || $S make-model --preset llama2-7b --dtype f16 -o $M 2>&1 | tail -1
for v in "32 4" "64 4" "128 2" "256 1" "64 8"; do
  set -- $v
  timeout 150 $S bench -m $M --vram-gb 4 --max-pack-mb $1 --prefetch-lookahead $2 -p 512 -n 16 -r 2 --json -v \
     > $OUT/v_$1_$2.json 2> $OUT/v_$1_$2.log
  python3 -c "
import json; d=json.load(open('$OUT/v_$1_$2.json')); s=d['streaming']
print('pack %3s MB lookahead %s: prefill %7.1f tok/s  decode %5.2f tok/s  ceiling %5.2f (%.3f)  up/token %.2f GB  link %.1f GB/s  prefill stall %.0f ms' % ('$1','$2',
 d['prefill_tok_s']['median'], d['decode_tok_s']['median'], s.get('upload_ceiling_tok_s',0), s.get('upload_ceiling_ratio',0),
 s['decode_bytes_uploaded_per_token']/1e9, s['link_gb_s'], s['prefill_stall_ms']))" || tail -3 $OUT/v_$1_$2.log
done
