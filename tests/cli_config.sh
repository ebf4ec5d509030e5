#!/bin/bash
# CLI configuration precedence: defaults < INI < environment < command line; bad input exits 1/2.
set -u
SYM=$1; SHARED=$2; TMP=$3
mkdir -p "$TMP"
fail=0
check() { if ! eval "$1"; then echo "FAIL: $2"; fail=1; fi; }

printf '[memory]\nvram_budget_gb = 2\nram_budget_gb = 6\nprefetch_lookahead = 3\n' > "$TMP/a.ini"
out=$("$SYM" config --config "$TMP/a.ini")
check '[[ "$out" == *"vram_budget_gb = 2"* && "$out" == *"prefetch_lookahead = 3"* ]]' "ini applied"
out=$(VK_SYMBIOTE_VRAM_GB=5 "$SYM" config --config "$TMP/a.ini")
check '[[ "$out" == *"vram_budget_gb = 5"* && "$out" == *"ram_budget_gb = 6"* ]]' "env over ini"
out=$(VK_SYMBIOTE_VRAM_GB=5 VK_SYMBIOTE_CONFIG="$TMP/a.ini" "$SYM" config --vram-gb 7 --disable-gpu)
check '[[ "$out" == *"vram_budget_gb = 7"* && "$out" == *"enable_gpu = false"* ]]' "flag over env"
check '[[ "$out" == *"prefetch_lookahead = 3"* ]]' "VK_SYMBIOTE_CONFIG read"

printf '[memory]\nvram_budget_gb = 2\nbogus_key = 1\n' > "$TMP/b.ini"
err=$("$SYM" config --config "$TMP/b.ini" 2>&1 >/dev/null); rc=$?
check '[[ $rc -eq 1 && "$err" == *"b.ini:3"* && "$err" == *"bogus_key"* ]]' "unknown key: rc=$rc err=$err"
err=$("$SYM" config --vram-gb lots 2>&1 >/dev/null); rc=$?
check '[[ $rc -eq 1 && "$err" == *"--vram-gb"* ]]' "bad flag value: rc=$rc err=$err"
"$SYM" config --vram-gb >/dev/null 2>&1; rc=$?
check '[[ $rc -eq 2 ]]' "missing value rc=$rc"
"$SYM" nonsense >/dev/null 2>&1; rc=$?
check '[[ $rc -eq 2 ]]' "unknown command rc=$rc"
help=$("$SYM" --help)
for flag in --model --config --vram-gb --ram-gb --prefetch-lookahead --eviction-aggression \
            --workgroup-size --disable-gpu --fp32 --no-compression --no-subgroups \
            --force-integrated-gpu --verbose --log-file --log-level; do
  check '[[ "$help" == *"$flag"* ]]' "--help lists $flag"
done
exit $fail
