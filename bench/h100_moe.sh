#!/bin/bash
# bench/h100_moe.sh BIN OUT — issue 7's MoE benchmark: a Mixtral-shaped f16 model cut to 4 layers
# (8 experts of 14336 x 4096 x 3, top 2; 12 GB) under a VRAM budget that holds about a quarter of
# the experts, decode with expert prediction on (--predict-experts) and off.
set -u
BIN=$(realpath ${1:?bin dir}); OUT=${2:?out dir}; S=$BIN/symbiote; M=/tmp/mixtral-4l-f16.gguf
t0=$(date +%s)
[ -f $M ] || $S make-model --preset mixtral-8x7b --n-layer 4 --dtype f16 -o $M 2>&1 | tail -1
echo "make-model: $(( $(date +%s) - t0 )) s"
for v in predict nopredict; do
  extra=""; [ $v = predict ] && extra="--predict-experts"
  timeout 200 $S bench -m $M --vram-gb 3.6 $extra -p 16 -n 32 -r 2 --json -v > $OUT/moe_$v.json 2> $OUT/moe_$v.log
  grep -E "placement" $OUT/moe_$v.log | cut -c1-300
  python3 -c "
import json; d=json.load(open('$OUT/moe_$v.json')); s=d['streaming']; p=s.get('expert_prediction',{})
print('%-9s decode %5.2f tok/s  up/token %.2f GB  link %.1f GB/s  upload ceiling %.2f (%.3f)  stall %.0f ms/token  precision %s recall %s  peak VRAM %d' % ('$v',
 d['decode_tok_s']['median'], s['decode_bytes_uploaded_per_token']/1e9, s['link_gb_s'], s.get('upload_ceiling_tok_s',0), s.get('upload_ceiling_ratio',0),
 s['decode_stall_ms_per_token'], p.get('precision'), p.get('recall'), d['peak_vram_bytes']))" || tail -3 $OUT/moe_$v.log
done
