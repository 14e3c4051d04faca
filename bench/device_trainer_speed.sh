#!/bin/bash
# The trainer's DP step, fp32 against bf16, on a lent device machine's CPU (issue 16 asks for the speedup on a CPU
# with AMX tiles; no session's own machine has had one). The GGUF (98 MB) cannot travel (the device tool carries at
# most 64 MiB), so bench/trainer_speed.py runs there with --random-weights: the model's shapes and tokenizer from the
# machine-level cache, the same floating-point work per step (23.2 s against 22.8 s with the real weights here).
#
#   bench/device_trainer_speed.sh prepare   # here: .devmodel/ (config, tokenizer, public BANKING77 rows of the demo's
#                                           # intents) and .devwheels/ (what the device image lacks, for Python 3.12)
#   then the device tool: run, carry [".devwheels", ".devmodel"], command "bash bench/device_trainer_speed.sh run"
#
# Both folders are build outputs: list them in .git/info/exclude, never commit them (the tokenizer is the model's).
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
prepare)
    cache=$(ls -d "${APPLIANCE_CACHE:-$HOME/.cache/synth-appliance}"/models/*/torch | head -1)
    mkdir -p .devmodel/smollm2 .devwheels
    cp "$cache"/{config.json,tokenizer.json,tokenizer_config.json,generation_config.json} .devmodel/smollm2/
    .venv/bin/python - <<'PY'
import csv
from appliance.demo.settings import DEMO_LABELS
labels = set(DEMO_LABELS.split(","))
with open("../shared/data/banking77/train.csv", newline="", encoding="utf-8") as fh:
    rows = [r for r in csv.DictReader(fh) if r["category"] in labels]
with open(".devmodel/bank.csv", "w", newline="", encoding="utf-8") as fh:
    w = csv.DictWriter(fh, fieldnames=["text", "category"])
    w.writeheader()
    w.writerows({"text": r["text"], "category": r["category"]} for r in rows)
print(f"{len(rows)} public BANKING77 rows")
PY
    # the device image has torch, transformers, numpy, scipy, yaml, click; not these (pure Python but two)
    .venv/bin/pip download --quiet --dest .devwheels --only-binary=:all: --python-version 3.12 \
        --platform manylinux2014_x86_64 --implementation cp --no-deps opacus==1.6.0 pydantic==2.14.4 \
        pydantic_core==2.50.5 annotated-types typing-inspection sqlite-utils sqlite-fts4 click-default-group \
        cryptography cffi pycparser datasketch
    du -sh .devmodel .devwheels
    ;;
run)
    exec > >(tee "${OUT:-.}/device.txt") 2>&1
    date -u
    lscpu | grep -E "Model name|Socket|Thread|Core" || true
    echo "flags: $(grep -o -E 'amx[a-z0-9_]*|avx512[a-z0-9_]*' /proc/cpuinfo | sort -u | tr '\n' ' ')"
    python3 -m pip install -q --no-index --no-deps .devwheels/*.whl
    export CUDA_VISIBLE_DEVICES="" HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
    python3 -c "import torch; print('torch', torch.__version__, torch.backends.cpu.get_cpu_capability())"
    timeout 330 python3 bench/trainer_speed.py --model-dir .devmodel/smollm2 --random-weights \
        --csv .devmodel/bank.csv --threads 16,2 --steps 3 2>&1 | grep -v -i warn
    date -u
    ;;
*)
    echo "usage: $0 prepare|run" >&2
    exit 1
    ;;
esac
