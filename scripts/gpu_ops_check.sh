#!/usr/bin/env bash
# GPU check of the custom ops with the product's own command (needs CUDA torch, nvcc and a GPU; no network):
#   OUT=/path/to/out bash scripts/gpu_ops_check.sh        (from the repository root on the GPU machine)
# `trtrepo ops check --device cuda --sanitize` over the bundled ops and the outside-root test op: builds the
# CPU+CUDA torch op library (generated bindings), compares every CUDA kernel with its decomposition over every
# dtype and the shape spread (odd, large, misaligned, non-contiguous), opcheck, then the same run again under
# compute-sanitizer memcheck. Then the same over a fresh plugin root holding two ops written by `trtrepo ops new`
# (one with --cpu-reference, one without), as a user's first op would be. Writes $OUT/ops_check.json,
# $OUT/ops_check.txt (the table), $OUT/ops_new_check.json/.txt and $OUT/summary.txt; prints PASS or FAIL last;
# exit status 0 only on PASS.
set -u
source "$(dirname "${BASH_SOURCE[0]}")/lanes/env.sh"
cd "$REPO"
OUT=${OUT:-$REPO/out/gpu_ops_check}
mkdir -p "$OUT"
SUMMARY=$OUT/summary.txt
: > "$SUMMARY"

$PY -m trtrepo ops check plugin_src tests/ops/cases/outside --device cuda --sanitize \
  --report "$OUT/ops_check.json" > "$OUT/ops_check.txt" 2> "$OUT/ops_check.log"
rc=$?
tail -n 3 "$OUT/ops_check.txt" | tee -a "$SUMMARY"
echo "trtrepo ops check --device cuda --sanitize: exit $rc" | tee -a "$SUMMARY"

# a user's first ops, exactly as `trtrepo ops new` writes them, through the same GPU check
SCAFFOLD=$(mktemp -d /tmp/trtrepo-ops-new.XXXXXX)
new_rc=0
$PY -m trtrepo ops new gpunew::first_op --dir "$SCAFFOLD" --cpu-reference > "$OUT/ops_new.log" 2>&1 || new_rc=$?
$PY -m trtrepo ops new gpunew::second_op --dir "$SCAFFOLD" >> "$OUT/ops_new.log" 2>&1 || new_rc=$?
if [ "$new_rc" = 0 ]; then
  $PY -m trtrepo ops check "$SCAFFOLD" --device cuda --sanitize --report "$OUT/ops_new_check.json" \
    > "$OUT/ops_new_check.txt" 2>> "$OUT/ops_new.log" || new_rc=$?
  tail -n 3 "$OUT/ops_new_check.txt" | tee -a "$SUMMARY"
fi
echo "trtrepo ops new (2 ops) + ops check --device cuda --sanitize: exit $new_rc" | tee -a "$SUMMARY"
[ "$rc" = 0 ] && rc=$new_rc

latest=$(ls -td "$TRTREPO_CACHE_DIR"/torch/*/ 2>/dev/null | head -1)
[ -n "$latest" ] && cp "$latest/build.log" "$latest/reproduce.sh" "$OUT/" 2>/dev/null
if [ "$rc" = 0 ]; then echo PASS | tee -a "$SUMMARY"; else echo FAIL | tee -a "$SUMMARY"; fi
exit "$rc"
