#!/bin/bash
# CLI: `symbiote pack` with each codec, `info` and `run` on the .sympack (the same text as from
# the GGUF), --no-compression and [memory] enable_compression / compression_algorithm, --json;
# `run` streaming from a store under --ram-gb (same text, --stats-json), --max-pack-mb and
# --no-compression against a store; a damaged pack exits 1 naming it; misuse exits 2; the source
# is never changed.
set -u
SYM=$1; SHARED=$2; TMP=$3
rm -rf "$TMP"; mkdir -p "$TMP"
fail=0
check() { if ! eval "$1"; then echo "FAIL: $2"; fail=1; fi; }
jget() { printf '%s\n' "$1" | grep -E "^ *\"$2\":" | head -1 | sed -E 's/^ *"[^"]*": *//; s/,$//'; }

M="$SHARED/models/aidreams260K.gguf"
before=$(sha256sum "$M" | cut -d' ' -f1)
want=$("$SYM" run -m "$M" -p "Once upon a time" -n 40 --temp 0 2>/dev/null)
for codec in auto none zstd blosc zfp bytesplit; do
  out=$("$SYM" pack "$M" -o "$TMP/a.sympack" --codec $codec --max-pack-mb 1 -q); rc=$?
  check '[[ $rc -eq 0 && "$out" == "wrote $TMP/a.sympack: "*" packs, "* ]]' "pack $codec: rc=$rc $out"
  got=$("$SYM" run -m "$TMP/a.sympack" -p "Once upon a time" -n 40 --temp 0 2>/dev/null)
  check '[[ -n "$got" && "$got" == "$want" ]]' "run from $codec store: '$got' vs '$want'"
done
check '[[ $(sha256sum "$M" | cut -d" " -f1) == "$before" ]]' "the source changed"
check '[[ -z "$(ls "$TMP" | grep "\.tmp\.")" ]]' "temporary files left"

out=$("$SYM" info "$TMP/a.sympack"); rc=$?
check '[[ $rc -eq 0 && "$out" == *"format:        sympack (version 1, made from gguf)"* && "$out" == *"tokenizer:     llama, 512 tokens"* ]]' "info: $out"
out=$("$SYM" info "$TMP/a.sympack" --json)
check '[[ $(jget "$out" format) == "\"sympack\"" && $(jget "$out" n_vocab) == 512 && "$out" == *"\"by_codec\""* ]]' "info --json: $out"
out=$("$SYM" info "$TMP/a.sympack" --packs)
check '[[ "$out" == *"all           10 packs"* ]]' "info --packs: $out"

out=$("$SYM" pack "$M" -o "$TMP/b.sympack" --codec zstd --level 19 --json); rc=$?
check '[[ $rc -eq 0 && $(jget "$out" n_packs) == 10 && "$out" == *"\"zstd\""* ]]' "json: $out"
out=$("$SYM" pack "$M" -o "$TMP/c.sympack" --no-compression --json)
check '[[ $(jget "$out" raw_bytes) == $(jget "$out" stored_bytes) && "$out" != *"\"zstd\""* ]]' "--no-compression: $out"
printf '[memory]\nenable_compression = false\n' > "$TMP/off.ini"
out=$("$SYM" pack "$M" -o "$TMP/c.sympack" --config "$TMP/off.ini" --json)
check '[[ $(jget "$out" raw_bytes) == $(jget "$out" stored_bytes) ]]' "enable_compression = false: $out"
printf '[memory]\ncompression_algorithm = bytesplit\n' > "$TMP/bs.ini"
out=$("$SYM" pack "$M" -o "$TMP/c.sympack" --config "$TMP/bs.ini" --json)
check '[[ "$out" == *"\"bytesplit\""* ]]' "compression_algorithm = bytesplit: $out"

# a damaged pack: exit 1, the pack named
size=$(stat -c %s "$TMP/b.sympack")
cp "$TMP/b.sympack" "$TMP/bad.sympack"
printf '\x55' | dd of="$TMP/bad.sympack" bs=1 seek=$((size - 4096 - 100)) conv=notrunc status=none
err=$("$SYM" run -m "$TMP/bad.sympack" -p "x" -n 2 2>&1 >/dev/null); rc=$?
check '[[ $rc -eq 1 && "$err" == *"SYM_ERR_CHECKSUM"*"pack 9 (output)"* ]]' "damaged pack: rc=$rc $err"
head -c 5000 "$TMP/b.sympack" > "$TMP/cut.sympack"
err=$("$SYM" info "$TMP/cut.sympack" 2>&1); rc=$?
check '[[ $rc -eq 1 && "$err" == *"SYM_ERR_FORMAT"*"truncated"* ]]' "truncated: rc=$rc $err"

# streaming from a store: a synthetic f16 model (45 MB) under a RAM budget 16 MB below what the
# resident run peaked at streams from the .sympack (the disk tier: stored bytes read, decompressed
# by the I/O threads), same text as the resident GGUF; --stats-json counts stored bytes read and
# raw bytes decompressed. (The budget follows the process's size, which a sanitizer inflates.)
G="$TMP/s.gguf"
"$SYM" make-model -o "$G" --n-embd 384 --n-layer 12 --n-head 6 --n-head-kv 3 --n-ff 1024 \
  --n-vocab 2000 --dtype f16 >/dev/null 2>&1
"$SYM" pack "$G" -o "$TMP/s.sympack" --codec bytesplit --max-pack-mb 1 -q >/dev/null
want=$("$SYM" run -m "$G" -p "hello world" -n 12 --temp 0 --backend cpu --stats-json "$TMP/res.json" 2>/dev/null)
peak=$(jget "$(cat "$TMP/res.json")" peak_ram_bytes)
ram=$(awk "BEGIN { printf \"%.4f\", (${peak:-0} - 16000000) / 1e9 }")
got=$("$SYM" run -m "$TMP/s.sympack" -p "hello world" -n 12 --temp 0 --backend cpu --ram-gb "$ram" \
  -v --stats-json "$TMP/st.json" 2>"$TMP/st.log"); rc=$?
check '[[ $rc -eq 0 && -n "$got" && "$got" == "$want" ]]' "streamed from the store (--ram-gb $ram): rc=$rc '$got' vs '$want'"
check 'grep -q "placement: streaming.*compression ratio 1\.1" "$TMP/st.log"' "placement: $(grep placement "$TMP/st.log")"
check 'grep -q "decompressed from the .sympack" "$TMP/st.log"' "no decompression line: $(tail -2 "$TMP/st.log")"
st=$(cat "$TMP/st.json" 2>/dev/null)
check '[[ $(jget "$st" streamed) == true && $(jget "$st" bytes_read_disk) -gt 0 && $(jget "$st" bytes_decompressed) -gt $(jget "$st" bytes_read_disk) && "$st" == *"\"decompress_ms\""* ]]' "stats: $st"
err=$("$SYM" run -m "$TMP/s.sympack" -p "x" -n 2 --backend cpu --ram-gb "$ram" --max-pack-mb 2 2>&1 >/dev/null); rc=$?
check '[[ $rc -eq 1 && "$err" == *"SYM_ERR_CONFIG"*"cannot be cut again"* ]]' "--max-pack-mb on a store: rc=$rc $err"
err=$("$SYM" run -m "$TMP/s.sympack" -p "x" -n 2 --backend cpu --no-compression 2>&1 >/dev/null); rc=$?
check '[[ $rc -eq 1 && "$err" == *"SYM_ERR_CONFIG"*"compressed packs"* ]]' "--no-compression on a compressed store: rc=$rc $err"
"$SYM" pack "$M" -o "$TMP/r.sympack" --no-compression -q >/dev/null
got=$("$SYM" run -m "$TMP/r.sympack" -p "Once upon a time" -n 40 --temp 0 --no-compression 2>/dev/null); rc=$?
check '[[ $rc -eq 0 && "$got" == "$("$SYM" run -m "$M" -p "Once upon a time" -n 40 --temp 0 2>/dev/null)" ]]' "--no-compression on a raw store: rc=$rc"

# misuse
"$SYM" pack "$M" >/dev/null 2>&1; check '[[ $? -eq 2 ]]' "no output"
"$SYM" pack -o "$TMP/x.sympack" >/dev/null 2>&1; check '[[ $? -eq 2 ]]' "no model"
"$SYM" pack "$M" -o "$TMP/x.sympack" --codec lzma >/dev/null 2>&1; check '[[ $? -eq 2 ]]' "bad codec"
"$SYM" pack "$M" -o "$TMP/x.sympack" --codec zfp --level 3 >/dev/null 2>&1; check '[[ $? -eq 2 ]]' "level for zfp"
"$SYM" pack "$M" -o "$TMP/x.sympack" --shuffle bit >/dev/null 2>&1; check '[[ $? -eq 2 ]]' "shuffle without blosc"
"$SYM" pack "$M" -o "$TMP/x.sympack" --no-compression --codec zstd >/dev/null 2>&1; check '[[ $? -eq 2 ]]' "conflict"
"$SYM" pack "$M" -o "$TMP/x.sympack" --max-pack-mb 257 >/dev/null 2>&1; check '[[ $? -eq 1 ]]' "limit 257"
rm -f "$TMP/x.sympack"
err=$("$SYM" pack "$M" -o "$M" 2>&1); rc=$?
check '[[ $rc -eq 1 && "$err" == *"the model'"'"'s own file"* ]]' "output = source: $err"
check '[[ ! -e "$TMP/x.sympack" && $(sha256sum "$M" | cut -d" " -f1) == "$before" ]]' "nothing written"
exit $fail
