#!/bin/sh
# symbiote devices: text and JSON listings of the Vulkan devices. Exit 77 (skip) only when there
# is no Vulkan device at all. Arguments: CLI, shared dir, scratch dir.
set -u
cli=$1
out=$("$cli" devices 2>&1)
rc=$?
if [ $rc -ne 0 ]; then
  if echo "$out" | grep -q SYM_ERR_NO_DEVICE; then echo "no Vulkan device: skipped"; exit 77; fi
  echo "devices failed ($rc): $out"; exit 1
fi
for want in "maxStorageBufferRange" "subgroups" "cooperative matrix" "fp16 arithmetic" "heap 0"; do
  echo "$out" | grep -q "$want" || { echo "text listing lacks '$want'"; exit 1; }
done
json=$("$cli" devices --json) || { echo "devices --json failed"; exit 1; }
if command -v python3 >/dev/null; then
  echo "$json" | python3 -c '
import json, sys
d = json.load(sys.stdin)["devices"]
assert len(d) >= 1 and sum(x["chosen"] for x in d) == 1, d
for x in d:
    assert x["max_storage_buffer_range"] > 0 and x["subgroup_size"] > 0 and x["heaps"], x
' || { echo "bad JSON: $json"; exit 1; }
fi
"$cli" devices --bogus >/dev/null 2>&1
[ $? -eq 2 ] || { echo "unknown option should exit 2"; exit 1; }
echo "cli_devices: ok"
