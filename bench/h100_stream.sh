#!/bin/bash
# bench/h100_stream.sh — issue 6's streaming benchmarks in one run on the device machine.
#   bash bench/h100_stream.sh BIN_DIR OUT_DIR
# BIN_DIR holds a static `symbiote` and `test_stream` (cmake -DSYM_STATIC_DEPS=ON). Writes a
# synthetic llama2-7b f16 model (13.5 GB) to /tmp, then:
#   check   test_stream vulkan (streamed == resident on this GPU, high-water <= budget)
#   disk    O_DIRECT read rate of the model file: 1 reader, and 4 readers at once
#   (a)+(b) bench --vram-gb 4: 512-token prefill and decode, weights in the RAM tier
#   (c)     bench --vram-gb 4 --ram-gb 8: the disk tier (O_DIRECT) feeds every token
# Each bench prints JSON with the placement, the link rate measured at open, the bytes moved
# per token and the upload-only ceiling from that rate.
set -u
BIN=${1:?bin dir}
OUT=${2:?out dir}
S=$BIN/symbiote
M=/tmp/llama2-7b-f16.gguf
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
nproc; free -g | head -2; df -h /tmp | tail -1
echo "== check: test_stream vulkan"
(cd /tmp && timeout 300 $BIN/test_stream vulkan 2>&1 | grep -v "info: vulkan: [^u]" | tail -6)
t0=$(date +%s)
$S make-model --preset llama2-7b --dtype f16 -o $M 2>&1 | tail -1
echo "make-model: $(( $(date +%s) - t0 )) s"
sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
echo "== disk: O_DIRECT reads of the model file"
dd if=$M of=/dev/null bs=16M count=128 iflag=direct 2>&1 | tail -1
t0=$(date +%s%N)
for k in 0 1 2 3; do dd if=$M of=/dev/null bs=16M count=64 skip=$((200 + 64 * k)) iflag=direct 2>/dev/null & done; wait
python3 -c "print('4 readers x 1 GiB: %.2f GB/s' % (4.294967296 / (($(date +%s%N) - $t0) / 1e9)))"
echo "== (a)+(b): --vram-gb 4, weights in RAM"
timeout 420 $S bench -m $M --vram-gb 4 -p 512 -n 24 -r 2 --json -v > $OUT/a_vram4.json 2> $OUT/a_vram4.log
echo "rc=$?"; grep -E "placement|uploads on|rep " $OUT/a_vram4.log; python3 -c "
import json; d=json.load(open('$OUT/a_vram4.json')); print(json.dumps({k: d[k] for k in ('prefill_tok_s','decode_tok_s','streaming','peak_vram_bytes','peak_ram_bytes') if k in d}, indent=1))"
echo "== (c): --vram-gb 4 --ram-gb 8, the disk tier"
timeout 300 $S bench -m $M --vram-gb 4 --ram-gb 8 -p 16 -n 4 -r 1 --json -v > $OUT/c_ram8.json 2> $OUT/c_ram8.log
echo "rc=$?"; grep -E "placement|rep " $OUT/c_ram8.log; python3 -c "
import json; d=json.load(open('$OUT/c_ram8.json')); print(json.dumps({k: d[k] for k in ('prefill_tok_s','decode_tok_s','streaming','peak_vram_bytes','peak_ram_bytes') if k in d}, indent=1))"
