#!/usr/bin/env bash
# Served exported program vs served AOTInductor package vs eager, side by side (issue 12's served path):
#   bash scripts/aoti_bench.sh OUT_DIR [extra build arguments]
# For gelu_block and mlp_block: builds the torch target twice (--torch-program exported / aoti) into
# /tmp/aoti_bench_<example>_<program>, benches each with trtrepo bench (same inputs, eager timed in the same run),
# and prints the comparison table (python -m trtrepo.bench.compare). Fails (non-zero, the failing step named) on the
# first build, bench or compare that fails. Knobs: PY (default .venv/bin/python), GELU_ARGS / MLP_ARGS (bench
# arguments), EXPECT_KIND (KIND_GPU or KIND_CPU: every build's instance group must be that kind).
set -euo pipefail
OUT_DIR=${1:?usage: aoti_bench.sh OUT_DIR [build args]}; shift
PY=${PY:-.venv/bin/python}
GELU_ARGS=${GELU_ARGS:---batch-sizes 1,8 --concurrency 1,16 --requests 400}
MLP_ARGS=${MLP_ARGS:---batch-sizes 1,8 --concurrency 1,16 --requests 100}
mkdir -p "$OUT_DIR"
fail() { echo "FAIL: $*" >&2; exit 1; }
for example in gelu_block mlp_block; do
  for program in exported aoti; do
    repo=/tmp/aoti_bench_${example}_$program
    start=$SECONDS
    "$PY" -m trtrepo build "examples/$example/model.yaml" --target torch --torch-program "$program" --out "$repo" \
      "$@" > "$OUT_DIR/build_${example}_$program.log" 2>&1 || { tail -20 "$OUT_DIR/build_${example}_$program.log"; \
      fail "build $example ($program), log $OUT_DIR/build_${example}_$program.log"; }
    echo "build $example $program: $((SECONDS - start)) s"
    if [ -n "${EXPECT_KIND:-}" ]; then
      grep -q "$EXPECT_KIND" "$repo/$example/config.pbtxt" || fail "$example ($program): no $EXPECT_KIND instance group"
    fi
    if [ "$program" = aoti ]; then
      ls "$repo/$example/1/"model.aoti-*.pt2 > /dev/null || fail "$example: no AOTInductor package in the version folder"
    fi
  done
done
for example in gelu_block mlp_block; do
  args=$GELU_ARGS; [ "$example" = mlp_block ] && args=$MLP_ARGS
  for program in exported aoti; do
    # shellcheck disable=SC2086  # args is a list of words
    "$PY" -m trtrepo bench "examples/$example/model.yaml" --repository "/tmp/aoti_bench_${example}_$program" $args \
      --report "$OUT_DIR/bench_${example}_$program.json" > "$OUT_DIR/bench_${example}_$program.txt" 2>&1 \
      || { tail -20 "$OUT_DIR/bench_${example}_$program.txt"; fail "bench $example ($program)"; }
  done
  echo "=== $example: eager vs served exported program vs served AOTInductor package"
  "$PY" -m trtrepo.bench.compare "exported=$OUT_DIR/bench_${example}_exported.json" \
    "aoti=$OUT_DIR/bench_${example}_aoti.json" --out "$OUT_DIR/compare_$example.txt" || fail "compare $example"
done
