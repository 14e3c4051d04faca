#!/usr/bin/env bash
# Install the appliance from this bundle with no network: ./install.sh [PREFIX]   (default /opt/appliance)
#
# 1. checks every file against SHA256SUMS; 2. creates a Python 3.11 venv at PREFIX; 3. installs pip and the
# appliance from ./wheelhouse only (`pip install --no-index --find-links`); 4. puts the pinned model files in
# PREFIX/share/appliance/models (where the appliance looks for them) and the policies beside them;
# 5. smoke-tests the install: `appliance --version`, llama.cpp loads, `appliance models verify`.
# PYTHON=/path/to/python3.11 picks the interpreter.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
PREFIX=${1:-/opt/appliance}
say() { printf '[install] %s\n' "$*"; }
die() { printf 'install: %s\n' "$*" >&2; exit 1; }

cd "$HERE"
say "checking the bundle against SHA256SUMS"
if command -v sha256sum >/dev/null 2>&1; then
  sha256sum --quiet --strict -c SHA256SUMS || die "the bundle is corrupt or was modified (SHA256SUMS mismatch)"
else
  die "sha256sum not found (coreutils): cannot check the bundle"
fi

PYTHON=${PYTHON:-$(command -v python3.11 || command -v python3 || true)}
[ -n "$PYTHON" ] || die "no python3 found — install Python 3.11 or set PYTHON=/path/to/python3.11"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' ||
  die "$PYTHON is not Python 3.11 (the wheelhouse is built for CPython 3.11) — set PYTHON=/path/to/python3.11"

say "creating the venv at $PREFIX"
[ -x "$PREFIX/bin/python" ] || "$PYTHON" -m venv "$PREFIX"
PIP=("$PREFIX/bin/python" -m pip --disable-pip-version-check --no-cache-dir --isolated)
"${PIP[@]}" install --quiet --no-index --find-links "$HERE/wheelhouse" --upgrade pip
say "installing the appliance and its dependencies from the wheelhouse (no index)"
"${PIP[@]}" install --quiet --no-index --find-links "$HERE/wheelhouse" \
  -r "$HERE/requirements.txt" -c "$HERE/constraints.txt"

say "models and policies → $PREFIX/share/appliance"
install -d "$PREFIX/share/appliance/models" "$PREFIX/share/appliance/policies"
for f in "$HERE"/models/*; do install -m 0644 "$f" "$PREFIX/share/appliance/models/"; done
install -m 0644 "$HERE"/policies/*.yaml "$PREFIX/share/appliance/policies/"
install -m 0644 "$HERE/models.lock.yaml" "$PREFIX/share/appliance/models.lock.yaml"

say "smoke test"
"$PREFIX/bin/appliance" --version
if ! "$PREFIX/bin/python" -c 'import llama_cpp' 2>/dev/null; then
  ls "$HERE"/debs/libgomp1_*.deb >/dev/null 2>&1 &&
    die "llama.cpp cannot load (libgomp.so.1 missing?) — as root: dpkg -i $HERE/debs/libgomp1_*.deb"
  die "llama.cpp cannot load (libgomp.so.1 missing?) — install the gcc runtime (libgomp1)"
fi
SCRATCH=$(mktemp -d)
"$PREFIX/bin/appliance" --home "$SCRATCH" models verify
rm -rf "$SCRATCH"

say "done: $PREFIX/bin/appliance (try: $PREFIX/bin/appliance demo --home /tmp/appliance-demo)"
