#!/usr/bin/env bash
# `make airgap-test`: install the bundle into a fresh venv and run `appliance demo --quick`, both inside a
# network namespace that has no network at all (`unshare -n`: only a loopback device, and it is down).
# Nothing here sets HF_HUB_OFFLINE or similar: the appliance must be offline by itself. When strace is
# installed, every connect() of the demo is also traced and any AF_INET/AF_INET6 attempt fails the test.
#
# usage: packaging/airgap_test.sh dist/appliance-bundle-VERSION.tar.gz
set -euo pipefail
BUNDLE=$(realpath "$1")
say() { printf '[airgap] %s\n' "$*"; }
die() { printf 'airgap-test FAILED: %s\n' "$*" >&2; exit 1; }

if [ "$(id -u)" = 0 ]; then NETNS=(unshare -n); else NETNS=(unshare -r -n); fi
PYTHON=${PYTHON:-$(command -v python3.11 || command -v python3)}
PYTHON=$("$PYTHON" -c 'import sys; print(sys.executable)')
T=$(mktemp -d "${TMPDIR:-/tmp}/appliance-airgap.XXXXXX")
[ -n "${KEEP:-}" ] || trap 'rm -rf "$T"' EXIT
mkdir -p "$T/home" "$T/run"
# A clean environment: none of the caller's pip, proxy, model-hub or appliance settings leak in.
CLEAN=(env -i "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" "HOME=$T/home" "LANG=C.UTF-8"
  "TMPDIR=$T/run")
START=$(date +%s)

say "the namespace has no network"
"${CLEAN[@]}" "${NETNS[@]}" "$PYTHON" - <<'EOF' || die "the network namespace can reach the network"
import socket
for host, port in (("1.1.1.1", 443), ("8.8.8.8", 53), ("151.101.0.223", 443)):  # 151.101.0.223: pypi.org
    try:
        socket.create_connection((host, port), timeout=3).close()
    except OSError:
        continue
    raise SystemExit(f"connected to {host}:{port}")
try:
    socket.getaddrinfo("pypi.org", 443)
    raise SystemExit("DNS resolved pypi.org")
except OSError:
    pass
print("[airgap]   no route, no DNS")
EOF

say "unpacking $(basename "$BUNDLE") ($(du -h "$BUNDLE" | cut -f1))"
tar -xzf "$BUNDLE" -C "$T"
DIR=$(find "$T" -maxdepth 1 -type d -name 'appliance-bundle-*' | head -1)
[ -n "$DIR" ] || die "no appliance-bundle-* directory in the archive"

say "install.sh inside the namespace (pip --no-index from the wheelhouse)"
T0=$(date +%s)
"${CLEAN[@]}" "PYTHON=$PYTHON" "${NETNS[@]}" bash "$DIR/install.sh" "$T/venv" || die "install.sh failed offline"
say "  installed in $(( $(date +%s) - T0 )) s"
# from the scratch directory with the clean environment, as the demo runs: from the checkout, `python -` would
# put the working directory first on sys.path and import the checkout's appliance/ instead
(cd "$T/run" && "${CLEAN[@]}" "${NETNS[@]}" "$T/venv/bin/python" - <<'EOF') || die "the installed appliance is not the bundle's copy"
import appliance, sys
assert appliance.__file__.startswith(sys.prefix), appliance.__file__
EOF

TRACE=()
if command -v strace >/dev/null 2>&1; then
  # connect(), and sendto()/sendmsg() for datagrams sent without connect() (a UDP telemetry ping, say)
  TRACE=(strace -f -qq -e trace=connect,sendto,sendmsg -e signal=none -o "$T/connect.trace")
  # with seccomp-bpf only the traced calls stop the process: without it every syscall of every thread does
  # (the torch threads of training and the probes make many syscalls)
  strace --seccomp-bpf -f -qq -e trace=connect -o /dev/null true 2>/dev/null && TRACE=(strace --seccomp-bpf "${TRACE[@]:1}")
  say "tracing connect(), sendto() and sendmsg() with ${TRACE[*]:0:2}"
fi
say "appliance demo --quick inside the namespace"
T0=$(date +%s)
(cd "$T/run" && "${CLEAN[@]}" "${NETNS[@]}" "${TRACE[@]}" "$T/venv/bin/appliance" demo --quick --home "$T/demo") ||
  die "the demo failed without network (exit $?)"
say "  demo finished in $(( $(date +%s) - T0 )) s"

if [ -f "$T/connect.trace" ]; then
  { grep -E 'AF_INET6?' "$T/connect.trace" || true; } | { grep -v -E '"(127\.0\.0\.1|::1)"' || true; } >"$T/inet.trace"
  if [ -s "$T/inet.trace" ]; then
    head -5 "$T/inet.trace" >&2
    die "the demo tried to open $(wc -l <"$T/inet.trace") network connection(s)"
  fi
  say "  network connections or datagrams: 0 ($(wc -l <"$T/connect.trace") connect/sendto/sendmsg calls traced, none to AF_INET/AF_INET6)"
fi

say "checking the results offline"
A=("${CLEAN[@]}" "${NETNS[@]}" "$T/venv/bin/appliance" --home "$T/demo")
"${A[@]}" audit verify || die "audit verify failed"
MANIFEST=$(find "$T/demo/exports" -name '*.manifest.json' | head -1)
[ -n "$MANIFEST" ] || die "no export manifest under $T/demo/exports"
"${A[@]}" audit verify --export "$MANIFEST" || die "audit verify --export failed"
REPORT=$(find "$T/demo" -maxdepth 2 -name '*.html' | head -1)
[ -n "$REPORT" ] || die "no compliance report in $T/demo"
grep -q -i -E '(src|href)="https?://' "$REPORT" && die "the report references the network"
say "PASSED in $(( $(date +%s) - START )) s: bundle installed and demo ran with no network"
