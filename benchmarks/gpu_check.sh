#!/usr/bin/env bash
# GPU check, for a machine with its own Python and torch and no package index.
# Runs from the repository root with PYTHONPATH=. and Fashion-MNIST carried in data/:
#   bash benchmarks/gpu_check.sh          (at most about 6 minutes on one H100)
# 1. the unit tests that touch devices, on CUDA; 2. the throughput table on CUDA;
# 3. one short pretraining per method on CUDA; a summary table last.
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH=.${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 SSLBOOK_DATA=${SSLBOOK_DATA:-data}
out=${OUT:-/tmp/sslbook-gpu-check}
mkdir -p "$out"
python -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.__version__, torch.cuda.get_device_name())" || exit 1

status=()
timeout 150 python -m pytest -q -x tests/test_augment.py tests/test_losses.py tests/test_methods.py \
  tests/test_models.py tests/test_train.py -p no:cacheprovider 2>&1 | tail -5
status+=("unit tests: exit ${PIPESTATUS[0]}")

timeout 90 python benchmarks/throughput.py --device cuda --steps 30 --rounds 2 --widths 32 2>&1 | tail -10 | tee "$out/throughput.txt"
status+=("throughput: $(tail -1 "$out/throughput.txt")")

for m in simclr moco byol simsiam swav; do
  timeout 60 python -m sslbook pretrain --method "$m" --dataset fashion-mnist --arch convnet \
    --epochs 2 --batch-size 512 --device cuda --out "$out/$m" --no-progress > "$out/$m.log" 2>&1
  status+=("$m: exit $? | $(tail -1 "$out/$m.log")")
done

echo
echo "== summary"
printf '%s\n' "${status[@]}"
