#!/usr/bin/env bash
# GPU check of irfa-nwb: the GPU-marked tests and the published-configuration benchmark.
# On a machine without a CUDA GPU it says so and exits 0. Designed to finish in well under
# 8 minutes on one H100-class GPU. Run from the repository root:  bash benchmarks/gpu_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}

if ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
    echo "gpu_check: no CUDA GPU on this machine (torch.cuda.is_available() is False); nothing to do"
    exit 0
fi
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
"$PY" -c "import torch, irfa_nwb; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'irfa-nwb', irfa_nwb.__version__)"

status=0
echo "== GPU-marked tests =="
timeout 240 "$PY" -m pytest -m gpu -q -p no:randomly || status=1
echo "== attention: factorised vs dense on the GPU =="
timeout 120 "$PY" benchmarks/bench_attention.py --device cuda --repeats 5 || status=1
echo "== training step at the published configuration =="
timeout 300 "$PY" benchmarks/bench_gpu.py --steps 20 --compile || status=1
exit $status
