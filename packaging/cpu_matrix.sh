#!/usr/bin/env bash
# `make cpu-matrix`: the installed llama.cpp build and the appliance's generation path (few-shot and soft
# prompt, native and F16 weights, a few tokens) on the host CPU and on older/newer CPU models emulated by
# Debian's qemu-user (`qemu-x86_64 -cpu MODEL`). A CPU below the build's baseline must be refused with the
# appliance's one-line error (reported FAIL: it cannot run the appliance, but it does not crash); a crash with
# extra buffer types is retried without them, as the appliance's self-test does.
#
# Ends with exactly one line: `cpu matrix: K/N CPU models ok (host FLAGS ok|FAIL; MODEL ok|FAIL; ...)`.
#   CPU_MATRIX_MODELS="Nehalem Haswell Skylake-Server" TOKENS=4 packaging/cpu_matrix.sh
set -uo pipefail
cd "$(dirname "$0")/.."

PY=${PY:-.venv/bin/python}
MODELS=${CPU_MATRIX_MODELS:-Nehalem Haswell Skylake-Server Icelake-Server}
TOKENS=${TOKENS:-4}
# emulated CPUs decode ~1 position per several seconds (qemu TCG): short inputs through the same code paths
EMU_TOKENS=${EMU_TOKENS:-2}
EMU_POSITIONS=${EMU_POSITIONS:-3}
TIMEOUT=${CPU_MATRIX_TIMEOUT:-1800}
LOG=${CPU_MATRIX_LOG:-build/cpu-matrix}
mkdir -p "$LOG"
say() { printf '[cpu-matrix] %s\n' "$*" >&2; }

# the model and its F16 derivative, prepared natively (the emulated runs only decode)
read -r NATIVE F16 < <($PY - <<'PYEOF'
import os, tempfile
from pathlib import Path
from appliance.generate.weights import batch_weights
from appliance.models.registry import verified_path
spec, path, digest = verified_path(None)
cache = Path(os.environ.get("APPLIANCE_CACHE_DIR") or Path(tempfile.gettempdir()) / "appliance-cpu-matrix")
print(path, batch_weights(path, digest, cache)[0])
PYEOF
)
[ -n "${F16:-}" ] || { say "cannot prepare the model (run make install)"; exit 1; }
PYBIN=$($PY -c 'import os, sys; print(os.path.realpath(sys.executable))')
SITE=$($PY -c 'import site; print(site.getsitepackages()[0])')
QEMU=$(command -v qemu-x86_64 || true)

# run_one NAME PROBE_ARGS [qemu args...]: prints "ok", "FAIL (...)" and logs the probe's JSON
run_one() {
  local name=$1 args=$2; shift 2
  local log="$LOG/$name.json" rc
  # the venv's site-packages explicitly: under qemu the interpreter is the real binary, not the venv's symlink
  # shellcheck disable=SC2086
  timeout "$TIMEOUT" env PYTHONPATH="$SITE:${PYTHONPATH:-}" "$@" "$PYBIN" packaging/cpu_matrix_probe.py \
    "$NATIVE" "$F16" $args >"$log" 2>"$LOG/$name.err"
  rc=$?
  if [ $rc -gt 128 ] && [ $rc -ne 132 ]; then  # a crash other than SIGILL: the self-test's fallback
    say "$name: died of signal $((rc - 128)) with extra buffer types; again without them"
    # shellcheck disable=SC2086
    timeout "$TIMEOUT" env PYTHONPATH="$SITE:${PYTHONPATH:-}" "$@" "$PYBIN" packaging/cpu_matrix_probe.py \
      "$NATIVE" "$F16" $args --no-extra-bufts >"$log" 2>>"$LOG/$name.err"
    rc=$?
    [ $rc -eq 0 ] && { echo "ok (extra buffer types off)"; return; }
  fi
  case $rc in
    0) echo ok ;;
    3) echo "FAIL (refused cleanly: $($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["refused"].split(", which")[0])' "$log"))" ;;
    124) echo "FAIL (timeout ${TIMEOUT}s)" ;;
    132) echo "FAIL (SIGILL: not refused cleanly)" ;;
    *) if [ $rc -gt 128 ]; then echo "FAIL (signal $((rc - 128)))"; else echo "FAIL (exit $rc)"; fi ;;
  esac
}

HOSTFLAGS=$($PY -c 'from appliance.generate import selftest as s; f=s.cpu_flags(); print("+".join(x for x in ("avx2","fma","f16c","avx512f","avx512_vnni","avx512_bf16","amx_int8") if x in f))')
results=()
ok=0
n=0
say "host ($HOSTFLAGS)"
r=$(run_one host "--tokens $TOKENS")
say "  host: $r"
results+=("host $HOSTFLAGS $r")
n=$((n + 1)); [[ $r == ok* ]] && ok=$((ok + 1))
if [ -z "$QEMU" ]; then
  say "qemu-x86_64 not found (apt-get install qemu-user): emulated CPU models skipped"
else
  for m in $MODELS; do
    say "$m (qemu-x86_64 -cpu $m, $($QEMU --version | head -1))"
    r=$(run_one "$m" "--tokens $EMU_TOKENS --positions $EMU_POSITIONS" "$QEMU" -cpu "$m")
    # qemu's TCG (7.2) emulates AVX2 but no AVX-512: such a model runs with those features masked
    masked=$(grep -o "feature: CPUID[^ ]*avx512[a-z0-9_-]*" "$LOG/$m.err" 2>/dev/null | sed 's/.*\.//' | sort -u | wc -l)
    [ "$masked" -gt 0 ] && r="$r (TCG masked its $masked AVX-512 features)"
    say "  $m: $r"
    results+=("$m $r")
    n=$((n + 1)); [[ $r == ok* ]] && ok=$((ok + 1))
  done
fi
summary=$(printf '%s; ' "${results[@]}")
echo "cpu matrix: $ok/$n CPU models ok (${summary%; })"
