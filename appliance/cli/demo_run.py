"""The end-to-end demo: the whole pipeline on the shipped BANKING77 sample, one real stage command per step.

Each step runs the same CLI command an operator would type (in-process, through the root Typer app, so
each stage writes its own audit event and prints its own summary); the demo stops at the first step that
fails and exits with that step's exit code. It adds no shortcuts: the DP soft prompt is trained with ε=4,
generation is conditioned on it only, and the export goes through the real policy gate. The sample and the
workspace's settings are in :mod:`appliance.demo.settings`.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer

from appliance.demo.settings import (
    DATASET,
    DEMO_HOLDOUT_FRACTION,
    DEMO_POLICY,
    DEMO_POLICY_REASON,
    EPSILON,
    EXPORT_NAME,
    LABEL_ARGS,
    PUBLIC_CORPUS,
    PUBLIC_DATASET,
    PUBLIC_LABEL_ARGS,
    PUBLIC_PRIOR_LR,
    QUICK_GATE,
    QUICK_REASON,
    REPORT_NAME,
    SAMPLE,
    DemoSettings,
)
from appliance.errors import ApplianceError, BadInput, GateRefused
from appliance.store import batches, prompts


@dataclass
class StepResult:
    name: str
    argv: list[str]
    exit_code: int
    seconds: float


@dataclass
class DemoResult:
    home: Path
    steps: list[StepResult] = field(default_factory=list)
    prompt_id: str | None = None
    prior_id: str | None = None  # the public prior the DP run started from
    batch_id: str | None = None
    export_path: Path | None = None
    manifest_path: Path | None = None
    report_path: Path | None = None
    refused: bool = False  # the gate refused the export (exit 3); the report and the chain check still ran

    @property
    def ok(self) -> bool:
        return bool(self.steps) and all(s.exit_code == 0 for s in self.steps)

    @property
    def exit_code(self) -> int:
        return next((s.exit_code for s in self.steps if s.exit_code != 0), 0)

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.steps)


def invoke(argv: Sequence[str]) -> int:
    """Run one `appliance` command line in-process and return its exit code (as the shell would see it).

    Click's standalone mode does what the shell entry point does: it prints usage errors and ends every command
    with ``SystemExit(code)``, which is caught here.
    """
    from appliance.cli.main import app  # main imports the demo command: import it only when running

    command = typer.main.get_command(app)
    try:
        command.main(args=list(argv), prog_name="appliance", standalone_mode=True)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0


def _read(db: Path, query: Callable[[sqlite3.Connection], str | None]) -> str | None:
    """One read from the demo workspace's database, on a read-only connection."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return query(conn)
    finally:
        conn.close()


def check_fresh(home: Path) -> None:
    """The demo writes its own workspace; it never touches an existing one (its policy, budget or audit log)."""
    if (home / "appliance.db").exists():
        raise BadInput(
            f"{home} already holds an appliance workspace — the demo needs a fresh one: "
            "pass --home NEWDIR (or delete that directory)"
        )


def demo_policy(home: Path, actor: str | None, *, quality_floor: bool = True) -> str:
    """Give the demo workspace its own policy: the shipped default with a larger holdout split and the domain's
    public description (:data:`DEMO_POLICY`), audited as ``demo.policy``.

    Why the split: the sample has 720 records; the default 0.2 holdout leaves 144 non-members, 0.25 leaves 180,
    which tightens the membership probes' bounds on TPR at 1% FPR. Why the description: it is what an operator
    declares about their data (public), and a prior the DP prompt refines instead of learning from noise.
    """
    from appliance.config import Workspace
    from appliance.context import Context
    from appliance.policy.loader import set_values

    ws = Workspace(home)
    values: dict[str, bool | float | int | str | list[str]] = {**DEMO_POLICY, **({} if quality_floor else QUICK_GATE)}
    keys = list(values)
    set_values(ws.policy_path, values, header="# appliance demo workspace: the shipped default with " + ", ".join(keys))
    ctx = Context.open(ws, actor=actor)  # validates the edited policy (ConfigError, exit 1, if it were broken)
    try:
        dumped = ctx.policy.model_dump()
        seen = {key: _dotted(dumped, key) for key in keys}
        if seen != values:
            raise BadInput(f"{ws.policy_path}: the demo's policy settings did not take effect")
        ctx.record("demo.policy", {"changed": keys, "holdout_fraction": DEMO_HOLDOUT_FRACTION})
    finally:
        ctx.close()
    return DEMO_POLICY_REASON + ("" if quality_floor else QUICK_REASON)


def _dotted(tree: dict[str, Any], key: str) -> Any:
    """The value at a dotted policy path (``curation.dp_selection.enabled``) of a dumped policy."""
    for part in key.split("."):
        tree = tree[part]
    return tree


Echo = Callable[[str], None]


GATE_REFUSED = GateRefused.exit_code


def run_demo(home: Path, settings: DemoSettings, *, actor: str | None = None, echo: Echo = typer.echo) -> DemoResult:
    """Run the pipeline in ``home``; stop at the first failing step (its exit code is ``result.exit_code``).

    One exception: when the gate refuses the export (exit 3), the audit report and the chain check still run,
    so the compliance report shows the refusal and its reasons; the export's own verification is skipped (there
    is no export) and the result keeps exit 3 (``result.refused``)."""
    home = home.expanduser().resolve()
    check_fresh(home)
    result = DemoResult(home)
    root = ["--home", str(home), *(["--actor", actor] if actor else [])]
    db = home / "appliance.db"
    export_path = home / "exports" / EXPORT_NAME
    report_path = home / REPORT_NAME

    def prompt_id() -> str:
        row = _read(db, lambda c: (prompts.newest_dp(c, DATASET, exportable=False) or {}).get("id"))
        result.prompt_id = row
        return result.prompt_id or "none"

    def prior_id() -> str:
        result.prior_id = _read(db, lambda c: next((r["id"] for r in prompts.listing(c, PUBLIC_DATASET)), None))
        return result.prior_id or "none"

    def batch_id() -> str:
        result.batch_id = _read(db, lambda c: batches.newest_id(c, DATASET))
        return result.batch_id or "none"

    s = settings
    sampling = ["--n", str(s.n_outputs), "--max-tokens", str(s.max_tokens), "--seed", str(s.seed)]
    policy_file = str(home / "policy.yaml")
    steps: list[tuple[str, Callable[[], list[str]], Callable[[], str] | None]] = [
        ("init", lambda: ["init"], None),
        (
            "demo policy",
            lambda: ["policy", "validate", policy_file],
            lambda: demo_policy(home, actor, quality_floor=s.quality_floor),
        ),
        (
            "public corpus import",
            lambda: ["seeds", "import", str(PUBLIC_CORPUS), "--dataset", PUBLIC_DATASET, *PUBLIC_LABEL_ARGS],
            None,
        ),
        (
            "public prior",
            lambda: [
                "train",
                PUBLIC_DATASET,
                "--no-dp",
                "--epochs",
                str(s.prior_epochs),
                "--batch-size",
                str(s.prior_batch),
                "--lr",
                f"{PUBLIC_PRIOR_LR:g}",
            ],
            None,
        ),
        (
            "seeds import",
            lambda: ["seeds", "import", str(SAMPLE), "--dataset", DATASET, *LABEL_ARGS],
            None,
        ),
        (
            "train",
            lambda: [
                "train",
                DATASET,
                "--epsilon",
                f"{EPSILON:g}",
                "--epochs",
                str(s.epochs),
                "--init-prompt",
                prior_id(),
            ],
            None,
        ),
        ("generate", lambda: ["generate", DATASET, "--prompt", prompt_id(), *sampling], None),
        ("curate", lambda: ["curate", batch_id()], None),
        ("evaluate", lambda: ["evaluate", result.batch_id or "none"], None),
        ("probe", lambda: ["probe", result.batch_id or "none"], None),
        ("export", lambda: ["export", result.batch_id or "none", "--out", str(export_path)], None),
        ("audit report", lambda: ["audit", "report", "--out", str(report_path)], None),
        ("audit verify", lambda: ["audit", "verify"], None),
        ("audit verify --export", lambda: ["audit", "verify", "--export", f"{export_path}.manifest.json"], None),
    ]
    for i, (name, build, before) in enumerate(steps, start=1):
        if result.refused and name == "audit verify --export":
            break  # nothing was exported, so there is no manifest to verify
        argv = build()
        echo(f"\n── step {i}/{len(steps)}: {name} — appliance {' '.join(argv)}")
        t0 = time.monotonic()
        code = 0
        if before is not None:
            try:
                echo(before())
            except ApplianceError as exc:
                echo(f"error: {exc}")
                code = exc.exit_code
        if code == 0:
            code = invoke(root + argv)
        step = StepResult(name, argv, code, time.monotonic() - t0)
        result.steps.append(step)
        echo(f"── {name}: {'ok' if code == 0 else f'FAILED (exit {code})'} in {step.seconds:.1f} s")
        if name == "export" and code == GATE_REFUSED:
            result.refused = True
            echo("── the gate refused the export: the demo still writes the audit report and verifies the chain")
            continue
        if code != 0:
            return result
    if result.refused:
        result.report_path = report_path
        return result
    result.export_path = export_path
    result.manifest_path = Path(f"{export_path}.manifest.json")
    result.report_path = report_path
    return result
