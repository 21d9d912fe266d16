#!/usr/bin/env bash
# One prepared pass on a CUDA machine: the cuda-marked tests, then the GPU benchmarks.
# Everything lands as JSON/logs under $OUT (default: benchmarks/out/gpu).
#   device:  bash scripts/gpu_check.sh            (with .wheels carried: packages the image lacks)
#   CPU dry run:  GPU_CHECK_DEVICE=cpu bash scripts/gpu_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-benchmarks/out/gpu}
mkdir -p "$OUT"
DEVICE=${GPU_CHECK_DEVICE:-cuda}
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1 WANDB_MODE=offline

# The GPU image lacks hydra, omegaconf, torchsde, gymnasium, mlxtend, pymdptoolbox: carry them as
# wheels in .wheels/ (made on the CPU machine with `make wheels`).
if [ -d .wheels ] && ! $PY -c "import hydra, gymnasium" 2>/dev/null; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .wheels/*.whl \
    && export PYTHONPATH=/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH} || exit 1
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}

$PY - <<'PY' > "$OUT/device.json"
import json, torch
d = {"torch": torch.__version__, "cuda": torch.cuda.is_available()}
if torch.cuda.is_available():
    d["name"] = torch.cuda.get_device_name(0)
print(json.dumps(d))
PY
cat "$OUT/device.json"

status=0
# 1. cuda-marked tests (skipped, not failed, without a GPU).
timeout 240 $PY -m pytest tests -m cuda -q -p no:cacheprovider --junitxml="$OUT/cuda_tests.xml" 2>&1 | tee "$OUT/cuda_tests.log" | tail -15
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1

# 2. RL planning on the GPU (gridworlds, random sparse MDPs, batched FrozenLake).
SIZES=${GPU_CHECK_RL_ARGS:-}
timeout 300 $PY benchmarks/rl_gpu.py --device "$DEVICE" --out "$OUT/rl_gpu.json" $SIZES 2>&1 | tee "$OUT/rl_gpu.log" | tail -25
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1

# 3. VAE recipe throughput on the GPU: Lightning vs a plain loop.
timeout 150 $PY benchmarks/vae_throughput.py --experiment vae_mnist --device "$DEVICE" --rounds 2 --epochs 2 \
  --out "$OUT/vae_throughput_gpu.json" 2>&1 | tee "$OUT/vae_throughput.log" | tail -8
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1

# 4. Image diffusion U-Nets (diffusion_mnist 28x28, diffusion_cifar10 32x32): training images/s and
#    TFLOP/s as a fraction of the measured bf16 matmul peak, sampling samples/s at 10 and 50 steps.
#    On the CPU dry run: 8 base channels, batch 4, float32 (a check that the script runs).
DIFF_ARGS=$([ "$DEVICE" = cpu ] && echo "--tiny --threads 2" || echo "")
timeout 300 $PY benchmarks/diffusion_images.py gpu --device "$DEVICE" $DIFF_ARGS \
  --out "$OUT/diffusion_images_gpu.json" 2>&1 | tee "$OUT/diffusion_images_gpu.log" | tail -6
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1

echo "gpu_check status: $status"
exit $status
