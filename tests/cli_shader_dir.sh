#!/bin/bash
# --shader-dir / [performance] shader_dir on run, chat and bench: a directory that does not exist
# (or is a file) is an error with a clear message and exit status 1 on every backend; on the CPU
# a real one is ignored with a warning. With "gpu" as fourth argument, on the Vulkan backend: a
# copy of shaders/ whose embed.comp does not compile makes run fail with the compiler's
# file:line, and a directory without .comp files is refused (exit 77 only without a device; a
# build without libshaderc must refuse the dir with SYM_ERR_UNSUPPORTED).
# Arguments: CLI, shared dir, scratch dir [, gpu].
set -u
SYM=$1; TMP=$3; MODE=${4:-}
SRC=$(cd "$(dirname "$0")/.." && pwd)
rm -rf "$TMP"; mkdir -p "$TMP"
fail=0
check() { if ! eval "$1"; then echo "FAIL: $2"; fail=1; fi; }

if [[ $MODE != gpu ]]; then
  for cmd in run chat bench; do
    extra=(-p x -n 1)
    [[ $cmd == chat ]] && extra=()
    [[ $cmd == bench ]] && extra=(-p 4 -n 1 -r 1)
    "$SYM" $cmd -m "$SRC/models/toy-fortunes.gguf" --disable-gpu --shader-dir "$TMP/none" "${extra[@]}" </dev/null >/dev/null 2>"$TMP/err"
    rc=$?
    check '[[ $rc -eq 1 ]] && grep -q "shader dir .*$TMP/none.*No such file or directory" "$TMP/err"' \
      "$cmd: missing dir: rc=$rc $(cat "$TMP/err")"
  done
  touch "$TMP/file"
  "$SYM" run --shader-dir "$TMP/file" -p x -n 1 >/dev/null 2>"$TMP/err"; rc=$?
  check '[[ $rc -eq 1 ]] && grep -q "not a directory" "$TMP/err"' "a file: rc=$rc $(cat "$TMP/err")"
  printf '[performance]\nshader_dir = %s\n' "$TMP/none" > "$TMP/c.ini"
  "$SYM" run --config "$TMP/c.ini" --disable-gpu -p x -n 1 >/dev/null 2>"$TMP/err"; rc=$?
  check '[[ $rc -eq 1 ]] && grep -q "$TMP/none" "$TMP/err"' "config key: rc=$rc $(cat "$TMP/err")"
  out=$("$SYM" run --disable-gpu --shader-dir "$SRC/shaders" --temp 0 -p "A computer" -n 4 2>"$TMP/err"); rc=$?
  check '[[ $rc -eq 0 && "$out" == "A computer is a"* ]] && grep -q "ignored" "$TMP/err"' \
    "cpu ignores a real dir: rc=$rc '$out' $(cat "$TMP/err")"
  "$SYM" run --help 2>&1 | grep -q -- "--shader-dir DIR" || { echo "FAIL: --help lacks --shader-dir"; fail=1; }
  exit $fail
fi

# gpu: the Vulkan backend compiles from the dir
mkdir -p "$TMP/sh"
cp "$SRC"/shaders/* "$TMP/sh/"
sed -i 's/^void main() {/void main() { undeclared_thing = 1;/' "$TMP/sh/embed.comp"
line=$(grep -n 'undeclared_thing' "$TMP/sh/embed.comp" | cut -d: -f1)
"$SYM" run --backend vulkan --shader-dir "$TMP/sh" -p x -n 1 >/dev/null 2>"$TMP/err"; rc=$?
if [[ $rc -ne 0 ]] && grep -q SYM_ERR_NO_DEVICE "$TMP/err"; then echo "no Vulkan device: skipped"; exit 77; fi
if [[ $rc -ne 0 ]] && grep -q "SYM_ERR_UNSUPPORTED.*no run-time shader compiler" "$TMP/err"; then
  echo "built without libshaderc: the error is the expected one"; exit 0
fi
check '[[ $rc -eq 1 ]] && grep -q "$TMP/sh/embed.comp:$line: error" "$TMP/err"' \
  "broken embed.comp: rc=$rc $(cat "$TMP/err")"
mkdir -p "$TMP/empty"
"$SYM" run --backend vulkan --shader-dir "$TMP/empty" -p x -n 1 >/dev/null 2>"$TMP/err"; rc=$?
check '[[ $rc -eq 1 ]] && grep -q "no .comp file" "$TMP/err"' "empty dir: rc=$rc $(cat "$TMP/err")"
exit $fail
