#!/usr/bin/env bash
# GPU check, for a machine with its own Python and torch and no package index.
# Runs from the repository root with PYTHONPATH=. and Fashion-MNIST carried in data/:
#   bash benchmarks/gpu_check.sh          (planned ~4.5 minutes on one H100, at most 6)
# Steps, most important first, each under `timeout` and all under one 350 s deadline (a step
# that would start after it is reported as SKIP):
#   1. benchmarks/gpu_checks.py: syncs per augmentation call and per training step, SwAV's fp32
#      scores, fp32/bf16/fp16 short runs, MoCo split BN on CUDA            (plan 40 s, max 75)
#   2. one epoch of SimCLR + ResNet-18 on 50,000 synthetic 32 x 32 images, without and with
#      torch.compile, each in its own process (cold compile)     (plan 20 + 80 s, max 45 + 120)
#   3. one short pretraining per method with the CLI (MoCo with --precision fp16)
#                                                                       (plan 5 x 12 s, max 25)
#   4. unit tests on this machine's torch (CUDA ones included)           (plan 45 s, max 60)
#   5. the throughput table on CUDA                                       (plan 20 s, max 40)
# Output: only $OUT comes back (at most 8 files, no folders): summary.txt, gpu_check.json and
# the logs checks.log, bench.log, pretrain.log, unit.log, throughput.txt. Run folders and
# checkpoints go under /tmp. The summary is one "PASS|FAIL|SKIP item: detail" line per check.
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH=.${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 SSLBOOK_DATA=${SSLBOOK_DATA:-data}
out=${OUT:-/tmp/sslbook-gpu-check}
work=/tmp/sslbook-gpu-work
rm -rf "$work" && mkdir -p "$out" "$work"
start=$SECONDS
deadline=${GPU_CHECK_DEADLINE:-350}
dev=${GPU_CHECK_DEVICE:-cuda}  # cpu: a dry run of this script's logic (steps time out)
[ "$dev" = cuda ] && { python -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.__version__, torch.cuda.get_device_name())" || exit 1; }

lines=()
# limit WANT: the step's timeout, cut to what is left of the deadline (0: no time left)
limit() { local left=$((deadline - (SECONDS - start))); ((left < 10)) && left=0; echo $(($1 < left ? $1 : left)); }
# result NAME EXIT DETAIL: one summary line
result() {
  local status=PASS detail=$3
  [ "$2" -ne 0 ] && status=FAIL
  [ "$2" -eq 124 ] && detail="timed out; $3"
  lines+=("$status $1: $detail")
}

# 1. CUDA checks (their own PASS/FAIL lines)
t=$(limit 75)
if ((t > 0)); then
  timeout "$t" python benchmarks/gpu_checks.py --device "$dev" --json "$work/checks.json" > "$out/checks.log" 2>&1
  rc=$?
  mapfile -t found < <(grep -E '^(PASS|FAIL|SKIP) ' "$out/checks.log")
  lines+=("${found[@]}")
  ((rc == 124)) && lines+=("FAIL gpu_checks: timed out after ${t} s (see checks.log)")
  ((rc != 0 && rc != 124 && ${#found[@]} == 0)) && lines+=("FAIL gpu_checks: exit $rc, $(tail -1 "$out/checks.log")")
else lines+=("SKIP gpu_checks: out of time"); fi

# 2. SimCLR ResNet-18 epoch, eager then compiled (two processes)
: > "$out/bench.log"
for mode in eager compile; do
  want=45; [ "$mode" = compile ] && want=120
  t=$(limit $want)
  if ((t > 0)); then
    timeout "$t" python benchmarks/gpu_checks.py --device "$dev" --bench "$mode" --json "$work/bench_$mode.json" >> "$out/bench.log" 2>&1
    rc=$?
    line=$(grep -E '^(PASS|FAIL) bench_' "$out/bench.log" | tail -1)
    if ((rc == 0)) && [[ $line == *"bench_$mode"* ]]; then lines+=("$line")
    else lines+=("FAIL bench_$mode: exit $rc$( ((rc == 124)) && echo " (timed out after ${t} s)"), $(tail -1 "$out/bench.log")"); fi
  else lines+=("SKIP bench_$mode: out of time"); fi
done

# 3. one short pretraining per method (CLI); MoCo in fp16 with the GradScaler
: > "$out/pretrain.log"
for m in simclr moco byol simsiam swav; do
  t=$(limit 25)
  if ((t > 0)); then
    extra=(); [ "$m" = moco ] && extra=(--precision fp16)
    echo "== $m ${extra[*]}" >> "$out/pretrain.log"
    timeout "$t" python -m sslbook pretrain --method "$m" --dataset fashion-mnist --arch convnet \
      --epochs 1 --subset 10000 --batch-size 512 --device "$dev" --out "$work/$m" --no-progress \
      "${extra[@]}" >> "$out/pretrain.log" 2>&1
    rc=$?
    result "pretrain_$m${extra[*]:+ (${extra[*]})}" $rc "$(tail -1 "$out/pretrain.log")"
  else lines+=("SKIP pretrain_$m: out of time"); fi
done

# 4. unit tests (this torch; the CUDA tests among them run here)
t=$(limit 60)
if ((t > 0)); then
  timeout "$t" python -m pytest -q tests/test_gpu_ready.py tests/test_augment_device.py \
    tests/test_augment.py tests/test_losses.py tests/test_methods.py tests/test_models.py \
    -p no:cacheprovider > "$out/unit.log" 2>&1
  rc=$?
  result "unit_tests" $rc "$(tail -1 "$out/unit.log")"
else lines+=("SKIP unit_tests: out of time"); fi

# 5. throughput table on CUDA
t=$(limit 40)
if ((t > 0)); then
  timeout "$t" python benchmarks/throughput.py --device "$dev" --steps 20 --rounds 1 --widths 32 > "$out/throughput.txt" 2>&1
  rc=$?
  result "throughput" $rc "$(tail -1 "$out/throughput.txt")"
else lines+=("SKIP throughput: out of time"); fi

lines+=("INFO total: $((SECONDS - start)) s of the ${deadline} s deadline")
printf '%s\n' "${lines[@]}" > "$out/summary.txt"
python - "$work" "$out/gpu_check.json" "$out/summary.txt" <<'EOF'
import json, sys
from pathlib import Path
work, target, summary = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
results = [r for f in sorted(work.glob("*.json")) for r in json.loads(f.read_text())]
lines = summary.read_text().splitlines()
target.write_text(json.dumps({"summary": lines, "results": results}, indent=1))
EOF
echo
echo "== summary"
cat "$out/summary.txt"
! grep -q '^FAIL' "$out/summary.txt"
