#!/bin/bash
# bench/h100_sympack.sh — issue 8: decode with the disk tier feeding every token, from the GGUF
# and from .sympack stores of it (the disk tier then reads compressed packs and the I/O threads
# decompress them). On the device machine:
#   bash bench/h100_sympack.sh BIN_DIR OUT_DIR
# BIN_DIR holds a `symbiote` built for the machine (cmake -DSYM_STATIC_DEPS=ON, as for
# h100_stream.sh). Steps:
#   make    a synthetic llama2-7b f16 model (13.5 GB) in $WORK
#   disk    the O_DIRECT read rate of the disk holding $WORK: 1 reader, and 4 at once (the
#           engine's I/O threads); the better of the two is "disk GB/s"
#   pack    MODEL.auto.sympack (--codec auto, told the measured disk rate and all cores) and
#           MODEL.bytesplit.sympack (byte planes, then zstd), both with packs of $PACK_MB MiB
#   run     `bench --vram-gb 4 --ram-gb 8` decode from the GGUF (same pack size) and from each
#           store: JSON per run in OUT_DIR
# then prints, per source: disk bytes read per token, raw bytes they decompress to, achieved
# tok/s, the ceiling = disk GB/s x ratio / raw bytes per token (= disk GB/s / disk bytes per
# token), the ratio achieved (tok/s / ceiling), and writes it all to OUT_DIR/sympack.json.
#
# Environment (defaults are the H100 measurement): WORK=/tmp PRESET=llama2-7b N_LAYER= (preset's)
# DTYPE=f16 VRAM_GB=4 RAM_GB=8 PACK_MB=32 N_PROMPT=16 N_GEN=8 THREADS=$(nproc) BACKEND= (auto)
# STEPS="make disk pack run" (a subset reuses what an earlier call left in $WORK) KEEP=1 (0:
# delete the model and stores at the end) RUN_TIMEOUT=900 (seconds per bench run).
# A smoke test on a machine without a GPU:
#   N_LAYER=2 VRAM_GB=0 RAM_GB=0.5 BACKEND=cpu WORK=/tmp/x bash bench/h100_sympack.sh build /tmp/x
set -eu -o pipefail

BIN=${1:?usage: h100_sympack.sh BIN_DIR OUT_DIR}
OUT=${2:?usage: h100_sympack.sh BIN_DIR OUT_DIR}
S=$BIN/symbiote
WORK=${WORK:-/tmp}
PRESET=${PRESET:-llama2-7b}
N_LAYER=${N_LAYER:-}
DTYPE=${DTYPE:-f16}
VRAM_GB=${VRAM_GB:-4}
RAM_GB=${RAM_GB:-8}
PACK_MB=${PACK_MB:-32}
N_PROMPT=${N_PROMPT:-16}
N_GEN=${N_GEN:-8}
THREADS=${THREADS:-$(nproc)}
BACKEND=${BACKEND:-}
STEPS=${STEPS:-make disk pack run}
KEEP=${KEEP:-1}
RUN_TIMEOUT=${RUN_TIMEOUT:-900}

die() { echo "h100_sympack: error: $*" >&2; exit 1; }
step() { [[ " $STEPS " == *" $1 "* ]]; }

[[ -x "$S" ]] || die "no executable symbiote in '$BIN'"
command -v python3 >/dev/null || die "python3 is needed for the JSON"
command -v dd >/dev/null || die "dd is needed for the disk rate"
mkdir -p "$OUT" "$WORK" || die "cannot create '$OUT' or '$WORK'"
[[ -w "$OUT" && -w "$WORK" ]] || die "'$OUT' and '$WORK' must be writable"
for v in VRAM_GB RAM_GB; do
  [[ "${!v}" =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "$v='${!v}' is not a number of GB"
done
for v in PACK_MB N_PROMPT N_GEN THREADS RUN_TIMEOUT; do
  [[ "${!v}" =~ ^[0-9]+$ && "${!v}" -gt 0 ]] || die "$v='${!v}' is not a positive integer"
done

NAME=$PRESET${N_LAYER:+-${N_LAYER}l}-$DTYPE
M=$WORK/$NAME.gguf
A=$WORK/$NAME.auto.sympack
B=$WORK/$NAME.bytesplit.sympack
cleanup() { [[ "$KEEP" == 1 ]] || rm -f "$M" "$A" "$B"; }
trap cleanup EXIT

echo "== machine"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"
echo "cores: $(nproc)"; free -g | head -2; df -h "$WORK" | tail -1
"$S" --version 2>/dev/null || true

if step make; then
  echo "== make: $NAME"
  args=(--preset "$PRESET" --dtype "$DTYPE" -o "$M")
  [[ -n "$N_LAYER" ]] && args+=(--n-layer "$N_LAYER")
  t0=$(date +%s)
  "$S" make-model "${args[@]}" 2>&1 | tail -1
  echo "make-model: $(( $(date +%s) - t0 )) s"
fi
[[ -s "$M" ]] || die "no model at '$M' (run the make step)"
MODEL_BYTES=$(stat -c %s "$M")
# the stores take at most the model's size each, written through a temporary file
need=$(( MODEL_BYTES * 2 + (1 << 30) ))
avail=$(( $(df --output=avail -B1 "$WORK" | tail -1) ))
if step pack && (( avail < need )); then
  die "$WORK has $(( avail >> 30 )) GiB free, the two stores need about $(( need >> 30 )) GiB"
fi

# O_DIRECT read rate of FILE in GB/s: 1 reader over 2 GiB, then 4 readers of 1 GiB each at
# once; prints both, returns the better in DISK_GBPS. Regions inside the file (small files: less).
disk_rate() {
  local f=$1 size mib one four t0 t1 k
  size=$(stat -c %s "$f")
  mib=$(( size >> 20 ))
  (( mib >= 64 )) || die "'$f' is too small to measure the disk with"
  local n1=$(( mib < 2048 ? mib / 16 : 128 ))        # 16 MiB blocks
  local n4=$(( mib < 4096 ? mib / 64 : 64 ))         # per reader
  sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
  t0=$(date +%s%N)
  dd if="$f" of=/dev/null bs=16M count=$n1 iflag=direct status=none || die "O_DIRECT read of '$f' failed"
  t1=$(date +%s%N)
  one=$(python3 -c "print('%.3f' % ($n1 * 16 * 1048576 / (($t1 - $t0) / 1e9) / 1e9))")
  t0=$(date +%s%N)
  for k in 0 1 2 3; do
    dd if="$f" of=/dev/null bs=16M count=$n4 skip=$(( k * n4 )) iflag=direct status=none &
  done
  wait || die "O_DIRECT read of '$f' failed"
  t1=$(date +%s%N)
  four=$(python3 -c "print('%.3f' % (4 * $n4 * 16 * 1048576 / (($t1 - $t0) / 1e9) / 1e9))")
  DISK_GBPS=$(python3 -c "print(max($one, $four))")
  echo "disk (O_DIRECT) $(basename "$f"): 1 reader $one GB/s, 4 readers $four GB/s"
}

if step disk; then
  echo "== disk"
  disk_rate "$M"
  echo "$DISK_GBPS" > "$OUT/disk_gbps.txt"
fi
[[ -s "$OUT/disk_gbps.txt" ]] || die "no disk rate in $OUT/disk_gbps.txt (run the disk step)"
DISK_GBPS=$(cat "$OUT/disk_gbps.txt")

if step pack; then
  echo "== pack (packs of $PACK_MB MiB, $THREADS threads)"
  disk_mb_s=$(python3 -c "print(max(1, int($DISK_GBPS * 1000)))")
  "$S" pack "$M" -o "$A" --codec auto --max-pack-mb "$PACK_MB" --threads "$THREADS" \
    --disk-mb-s "$disk_mb_s" --json > "$OUT/pack_auto.json" || die "pack --codec auto failed"
  "$S" pack "$M" -o "$B" --codec bytesplit --max-pack-mb "$PACK_MB" --threads "$THREADS" \
    --json > "$OUT/pack_bytesplit.json" || die "pack --codec bytesplit failed"
  python3 - "$OUT/pack_auto.json" "$OUT/pack_bytesplit.json" <<'EOF'
import json, sys
for f in sys.argv[1:]:
    d = json.load(open(f))
    print("%s: ratio %.4f (%d of %d bytes), %.1f s" % (f.rsplit("/", 1)[-1], d["raw_bytes"] / d["stored_bytes"],
          d["stored_bytes"], d["raw_bytes"], d.get("seconds", 0)))
EOF
fi

if step run; then
  for f in "$M" "$A" "$B"; do [[ -s "$f" ]] || die "missing '$f' (run the make and pack steps)"; done
  bargs=(--vram-gb "$VRAM_GB" --ram-gb "$RAM_GB" --max-pack-mb "$PACK_MB" -p "$N_PROMPT"
         -n "$N_GEN" -r 1 --json -v)
  [[ -n "$BACKEND" ]] && bargs+=(--backend "$BACKEND")
  [[ "$VRAM_GB" == 0 ]] && bargs=("${bargs[@]:2}")   # a CPU smoke test: no VRAM budget
  for src in gguf auto bytesplit; do
    case $src in gguf) f=$M;; auto) f=$A;; bytesplit) f=$B;; esac
    echo "== run: $src ($(basename "$f"))"
    sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
    rc=0
    timeout "$RUN_TIMEOUT" "$S" bench -m "$f" "${bargs[@]}" > "$OUT/run_$src.json" \
      2> "$OUT/run_$src.log" || rc=$?
    grep -E "placement|warning|error" "$OUT/run_$src.log" | grep -v "info: vulkan" | head -5 || true
    (( rc == 0 )) || die "bench from $src failed (rc $rc): $(tail -2 "$OUT/run_$src.log")"
  done
  python3 - "$OUT" "$DISK_GBPS" "$MODEL_BYTES" <<'EOF'
import json, sys
out, disk_gbps, model_bytes = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
rows = []
for src in ("gguf", "auto", "bytesplit"):
    d = json.load(open("%s/run_%s.json" % (out, src)))
    s = d.get("streaming")
    if not s:
        sys.exit("h100_sympack: %s did not stream (the budgets hold the model?)" % src)
    tok_s = d["decode_tok_s"]["median"]
    disk_tok = s["decode_bytes_read_disk_per_token"]
    raw_tok = s.get("decode_bytes_decompressed_per_token", 0.0) if src != "gguf" else disk_tok
    sp = d.get("sympack", {})
    file_ratio = sp.get("ratio", 1.0)
    if raw_tok == 0:  # a store whose packs were all stored raw
        raw_tok = disk_tok
    ceiling = disk_gbps * 1e9 / disk_tok if disk_tok > 0 else None
    rows.append({
        "source": src, "model": d["model"], "file_ratio": file_ratio,
        "n_packs": sp.get("n_packs"), "n_compressed": sp.get("n_compressed"),
        "disk_gb_s_measured": disk_gbps,
        "decode_tok_s": tok_s,
        "disk_bytes_per_token": disk_tok,
        "raw_bytes_per_token": raw_tok,
        "streamed_ratio": raw_tok / disk_tok if disk_tok > 0 else None,
        "ceiling_tok_s": ceiling,
        "ratio_achieved": tok_s / ceiling if ceiling else None,
        "decode_disk_gb_s": s.get("decode_disk_gb_s"),
        "decompress_ms_per_token": s.get("decode_decompress_ms_per_token"),
        "decompress_gb_s_per_thread": (raw_tok / 1e6 / s["decode_decompress_ms_per_token"]
                                           if s.get("decode_decompress_ms_per_token") else None),
        "stall_ms_per_token": s.get("decode_stall_ms_per_token"),
        "disk_ms_per_token": s.get("decode_disk_ms_per_token"),
        "upload_bytes_per_token": s.get("decode_bytes_uploaded_per_token"),
        "ram_tier_bytes": s.get("ram_tier_bytes"), "vram_tier_bytes": s.get("vram_tier_bytes"),
        "peak_ram_bytes": d.get("peak_ram_bytes"), "peak_vram_bytes": d.get("peak_vram_bytes"),
    })
base = rows[0]["decode_tok_s"]
for r in rows:
    r["speedup_vs_gguf"] = r["decode_tok_s"] / base if base > 0 else None
fmt = "%-10s %7s %12s %12s %8s %9s %9s %9s"
print(fmt % ("source", "ratio", "disk GB/tok", "raw GB/tok", "tok/s", "ceiling", "achieved", "vs gguf"))
for r in rows:
    print(fmt % (r["source"], "%.3f" % r["file_ratio"], "%.3f" % (r["disk_bytes_per_token"] / 1e9),
                 "%.3f" % (r["raw_bytes_per_token"] / 1e9), "%.3f" % r["decode_tok_s"],
                 "%.3f" % r["ceiling_tok_s"] if r["ceiling_tok_s"] else "-",
                 "%.3f" % r["ratio_achieved"] if r["ratio_achieved"] else "-",
                 "%.3f" % r["speedup_vs_gguf"] if r["speedup_vs_gguf"] else "-"))
print("ceiling = disk GB/s measured (%.3f) / disk bytes per token = disk GB/s x ratio / raw bytes "
      "per token" % disk_gbps)
json.dump({"bench": "h100_sympack", "model_bytes": model_bytes, "disk_gb_s": disk_gbps,
           "runs": rows}, open("%s/sympack.json" % out, "w"), indent=1)
print(json.dumps({"disk_gb_s": disk_gbps, "runs": rows}, indent=1))
EOF
fi
