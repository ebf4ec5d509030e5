#!/bin/bash
# bench/h100_oracle.sh BIN OUT — issue 7's eviction policies on the model of h100_moe.sh: a
# Mixtral-shaped f16 model cut to 4 layers (8 experts of 14336 x 4096 x 3, top 2; 12 GB) under a
# VRAM budget that holds about a quarter of the experts; decode under the vitality oracle (fresh
# weights, then the weights that run saved), Belady over the schedule, and LRU.
set -u
BIN=$(realpath ${1:?bin dir}); OUT=${2:?out dir}; S=$BIN/symbiote; M=/tmp/mixtral-4l-f16.gguf
CACHE=/tmp/h100_oracle_cache; rm -rf $CACHE
t0=$(date +%s)
[ -f $M ] || $S make-model --preset mixtral-8x7b --n-layer 4 --dtype f16 -q -o $M 2>&1 | tail -1
echo "make-model: $(( $(date +%s) - t0 )) s"
for run in oracle oracle_warm belady lru; do
  pol=${run%_warm}
  XDG_CACHE_HOME=$CACHE timeout 240 $S bench -m $M --vram-gb 3.6 --eviction-policy $pol \
    -p 16 -n 64 -r 2 --json -v > $OUT/oracle_$run.json 2> /tmp/oracle_$run.log
  grep -E "placement|warning|oracle:" /tmp/oracle_$run.log | cut -c1-300
  python3 -c "
import json; d=json.load(open('$OUT/oracle_$run.json')); s=d['streaming']
print('%-11s decode %5.2f tok/s  up/token %.3f GB (experts %.3f)  expert packs %d hits %d misses  link %.1f GB/s  ceiling %.2f (%.3f)  stall %.0f ms/token  samples %s loss %s  peak VRAM %d' % ('$run',
 d['decode_tok_s']['median'], s['decode_bytes_uploaded_per_token']/1e9, s['decode_expert_bytes_moved_per_token']/1e9,
 s['decode_expert_pack_hits'], s['decode_expert_pack_misses'], s['link_gb_s'], s.get('upload_ceiling_tok_s',0),
 s.get('upload_ceiling_ratio',0), s['decode_stall_ms_per_token'], s.get('oracle_samples_learned'), s.get('oracle_log_loss'), d['peak_vram_bytes']))" \
    || tail -3 /tmp/oracle_$run.log
done
