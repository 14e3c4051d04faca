"""Where the appliance keeps its state, and who is acting.

All state lives under one root: ``--home DIR`` > ``APPLIANCE_HOME`` > ``./.appliance``. Inside it:
``appliance.db`` (SQLite, WAL), ``artifacts/``, ``exports/``, ``keys/`` (0700, files 0600) and an
optional workspace ``policy.yaml``. Model files are looked up in ``APPLIANCE_MODELS_DIR``, then
``HOME/models``, then ``./models``, then the source checkout's ``models/``, then the install prefix's
``share/appliance/models`` (where the air-gapped bundle's ``install.sh`` puts them).
"""

from __future__ import annotations

import getpass
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from appliance.errors import WorkspaceMissing

HOME_ENV = "APPLIANCE_HOME"
MODELS_ENV = "APPLIANCE_MODELS_DIR"
ACTOR_ENV = "APPLIANCE_ACTOR"
DEFAULT_HOME = ".appliance"

PACKAGE_DIR = Path(__file__).resolve().parent
SOURCE_ROOT = PACKAGE_DIR.parent


def shipped_file(relative: str) -> Path:
    """Path of a file shipped with the package (wheel: ``appliance/_shipped``; checkout: repo root)."""
    for candidate in (PACKAGE_DIR / "_shipped" / relative, SOURCE_ROOT / relative):
        if candidate.exists():
            return candidate
    return SOURCE_ROOT / relative


def default_actor() -> str:
    """The acting user: ``APPLIANCE_ACTOR`` if set, else the OS user."""
    actor = os.environ.get(ACTOR_ENV)
    if actor:
        return actor
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry (containers)
        return f"uid{os.getuid()}"


@dataclass(frozen=True)
class Workspace:
    """The appliance's state directory and the paths inside it."""

    home: Path

    @classmethod
    def resolve(cls, home: str | os.PathLike[str] | None = None) -> Workspace:
        """Pick the home from the argument, ``APPLIANCE_HOME``, or ``./.appliance``."""
        chosen = home or os.environ.get(HOME_ENV) or DEFAULT_HOME
        return cls(Path(chosen).expanduser().resolve())

    @property
    def db_path(self) -> Path:
        return self.home / "appliance.db"

    @property
    def artifacts(self) -> Path:
        return self.home / "artifacts"

    @property
    def exports(self) -> Path:
        return self.home / "exports"

    @property
    def keys(self) -> Path:
        return self.home / "keys"

    @property
    def policy_path(self) -> Path:
        return self.home / "policy.yaml"

    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    def exists(self) -> bool:
        return self.db_path.exists()

    def require(self) -> Workspace:
        """Return self, or raise :class:`WorkspaceMissing` with the fix."""
        if not self.exists():
            raise WorkspaceMissing(
                f"no appliance workspace at {self.home} — run `appliance init` (or pass --home DIR / set {HOME_ENV})"
            )
        return self

    def ensure_dirs(self) -> None:
        """Create the directory layout with private permissions on keys/."""
        self.home.mkdir(parents=True, exist_ok=True)
        for sub in (self.artifacts, self.exports):
            sub.mkdir(exist_ok=True)
        self.keys.mkdir(mode=0o700, exist_ok=True)
        os.chmod(self.keys, 0o700)


def model_search_dirs(ws: Workspace | None = None) -> list[Path]:
    """Directories searched for model files, in order."""
    dirs: list[Path] = []
    env = os.environ.get(MODELS_ENV)
    if env:
        dirs.append(Path(env).expanduser())
    if ws is not None:
        dirs.append(ws.models_dir)
    dirs.append(Path.cwd() / "models")
    dirs.append(SOURCE_ROOT / "models")
    dirs.append(Path(sys.prefix) / "share" / "appliance" / "models")
    seen: set[Path] = set()
    out = []
    for d in dirs:
        r = d.resolve()
        if r not in seen:
            seen.add(r)
            out.append(r)
    return out
