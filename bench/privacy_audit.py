"""Privacy audit: is the DP real? A one-run audit (Steinke, Nasr & Jagielski 2023, "Privacy auditing with one
training run", Algorithm 1 and Theorem 3.2) beside the accountant's ε.

1. ``--canaries`` m random secrets ``my account number is NNNNNNNN`` (``--kind words``: ``my secret word is W``,
   W a one-token word of the model's vocabulary); each is put in the seed file with
   probability ½, independently (the coin flips are this script's, never the appliance's). The file is
   imported with the appliance's own ``seeds import`` (PII scanning and redaction allowed for digits only
   through the audit policy below), into a fresh workspace per run.
2. One soft prompt is trained per setting with the appliance's own ``train``: ``--eps`` (default 1 and 4)
   with DP-SGD, and one ``--no-dp`` run with ``--nodp-epochs`` epochs (the control).
3. Every canary (in or out) is scored with the trained prompt and without it (llama.cpp, the probes' scorer):
   score = log-likelihood gain the prompt gives the canary, higher = "was trained on".
4. The audit guesses IN for the k₊ highest scores and OUT for the k₋ lowest, abstaining on the rest, and
   turns the number of correct guesses r out of k = k₊ + k₋ into a lower bound on ε at 95% confidence:
   the largest ε with P[Binomial(k, e^ε/(1+e^ε)) ≥ r] ≤ 0.05 (pure-DP form of Theorem 3.2; δ is ignored,
   which makes the bound slightly larger than the paper's (ε, δ) version — conservative for the claim
   "the lower bound is below the accountant's ε"). k₊ = k₋ runs over a small grid; the best bound is
   reported with the confidence split over the grid (Bonferroni).

Canaries that the import's holdout split moved out of training count as OUT (they were never trained on);
the holdout fraction is set to its minimum useful value so that few do.

Prints a table and ends with the line
``privacy audit: eps_lower X at eps 4 (eps_lower Y no-DP)``.
Example: ``.venv/bin/python bench/privacy_audit.py`` (120 canaries, 64 virtual tokens in every setting, a
100-epoch non-DP control). The control must memorise the canaries for the audit to be able to fail: the shipped
16-token prompt memorises only a dozen or two secrets (40 canaries: bound 1.48; 80 digit or 200 word canaries:
smaller), while a 64-token prompt separates all of them (score AUC 1.000), so the control's bound is capped by
the canary count alone. The DP runs use the same prompt size but their own schedule (3 epochs at the default
learning rate, against the control's 100 epochs at lr 1.5), so the control shows that the audit can catch a
prompt that memorises, not that the DP runs' schedule alone would memorise (bench/RESULTS.md). Each
setting's scores are written to ``OUT/<setting>-scores.json``; ``--skip-dp`` runs the control alone, to size it.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

TEMPLATES = {"digits": "my account number is {secret}", "words": "my secret word is {secret}"}
CONFIDENCE = 0.05


def word_pool(min_len: int = 6, max_len: int = 10) -> list[str]:
    """Lower-case words that are one token each in the default model's vocabulary (read from its GGUF file).

    The alternative to digit secrets (eight tokens drawn from ten shared digits): one rare token per secret. Measured
    weaker than digits with the 16-token prompt (bench/RESULTS.md): each word's likelihood moves for reasons of
    its own, which hides membership.
    """
    from gguf import GGUFReader

    from appliance.models.registry import verified_path

    _, path, _ = verified_path(None)
    field = GGUFReader(str(path)).fields["tokenizer.ggml.tokens"]
    tokens = [bytes(field.parts[i]).decode("utf-8", "replace") for i in field.data]
    # GPT-2 style byte-level BPE marks a leading space with "Ġ"
    return sorted({t[1:] for t in tokens if re.fullmatch(rf"Ġ[a-z]{{{min_len},{max_len}}}", t)})


def make_canaries(kind: str, m: int, rng: random.Random) -> list[str]:
    """m distinct canaries of the given kind, in a random order."""
    if kind == "digits":
        secrets = sorted({str(rng.randrange(10**8)).zfill(8) for _ in range(m * 2)})[:m]
    else:
        pool = word_pool()
        if m > len(pool):
            sys.exit(f"--canaries {m} is more than the {len(pool)} one-token words the vocabulary has")
        secrets = rng.sample(pool, m)
    rng.shuffle(secrets)
    return [TEMPLATES[kind].format(secret=s) for s in secrets]


def cli(home: Path, *args: str) -> str:
    """Run one appliance command; stop with its output tail when it fails."""
    env = {**os.environ, "APPLIANCE_ACTOR": "bench"}
    proc = subprocess.run(
        [sys.executable, "-m", "appliance.cli.main", "--home", str(home), *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if proc.returncode != 0:
        sys.exit(f"appliance {' '.join(args[:2])} failed ({proc.returncode}): {(proc.stdout + proc.stderr)[-800:]}")
    return proc.stdout


def binom_tail(k: int, r: int, p: float) -> float:
    """P[Binomial(k, p) >= r]."""
    return sum(math.comb(k, i) * p**i * (1 - p) ** (k - i) for i in range(r, k + 1))


def eps_lower_bound(k: int, r: int, beta: float) -> float:
    """The largest ε with P[Bin(k, e^ε/(1+e^ε)) >= r] <= beta (0 when even ε = 0 cannot be rejected)."""
    if k == 0 or binom_tail(k, r, 0.5) > beta:
        return 0.0
    lo, hi = 0.0, 20.0
    for _ in range(60):
        mid = (lo + hi) / 2
        p = math.exp(mid) / (1 + math.exp(mid))
        if binom_tail(k, r, p) <= beta:
            lo = mid
        else:
            hi = mid
    return lo


def audit(scores: list[float], member: list[bool], grid: list[int]) -> dict[str, float]:
    """Best lower bound over k₊ = k₋ in ``grid`` (confidence split over the grid), with its k and r."""
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    best = {"eps_lower": 0.0, "k": 0, "correct": 0}
    for half in grid:
        if 2 * half > len(scores):
            continue
        outs, ins = order[:half], order[-half:]
        r = sum(member[i] for i in ins) + sum(not member[i] for i in outs)
        eps = eps_lower_bound(2 * half, r, CONFIDENCE / len(grid))
        if eps > best["eps_lower"]:
            best = {"eps_lower": eps, "k": 2 * half, "correct": r}
    return best


def score_auc(scores: list[float], member: list[bool]) -> float:
    """How well the scores rank members above non-members (0.5: not at all), over every canary."""
    from sklearn.metrics import roc_auc_score

    if len(set(member)) < 2:
        return 0.5  # one class only: nothing to rank
    return float(roc_auc_score(member, scores))


def write_policy(home: Path, args: argparse.Namespace) -> None:
    from appliance.policy.loader import default_policy_path

    doc = yaml.safe_load(default_policy_path().read_text(encoding="utf-8"))
    doc["privacy"].update(
        {"holdout_fraction": 0.02, "allow_non_dp": True, "canaries": {**doc["privacy"]["canaries"], "count": 0}}
    )
    # the canaries are synthetic secrets, not PII: the audit workspace lets every entity type through unchanged
    doc["pii"]["default_action"] = "allow"
    for rule in (doc["pii"].get("entities") or {}).values():
        rule["action"] = "allow"
    if "packs" in doc["pii"]:
        doc["pii"]["packs"] = []
    doc["training"].update({"batch_size": args.batch_size, "virtual_tokens": args.virtual_tokens})
    doc["generation"].update({"threads": args.threads})
    (home / "policy.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")


def score(home: Path, prompt_id: str, texts: list[str]) -> list[float]:
    """Log-likelihood gain (nats) the trained prompt gives each text over the bare model."""
    from appliance.config import Workspace
    from appliance.context import Context
    from appliance.generate import providers
    from appliance.generate.prompts import load_soft_prompt
    from appliance.models.registry import verified_path
    from appliance.probes.scoring import LikelihoodScorer

    ctx = Context.open(Workspace(home), actor="bench")
    try:
        cur = ctx.db.conn.execute("SELECT * FROM prompts WHERE id = ?", (prompt_id,))
        row = dict(zip([c[0] for c in cur.description], cur.fetchone(), strict=True))
        _, path, sha = verified_path(row["model_name"], ctx.ws)
        g = ctx.policy.generation
        backend = providers.build(g.backend, path, sha, n_ctx=512, n_threads=g.threads, n_seq_max=1)
        try:
            sp = load_soft_prompt(ctx.ws, row, model_name=row["model_name"], model_sha256=sha, n_embd=backend.n_embd)
            sc = LikelihoodScorer.from_prompt(backend, sp.embeddings, row)
            labels = [None] * len(texts)
            with_p = sc.logprobs_many(texts, labels)
            without = sc.logprobs_many(texts, labels, with_prompt=False)
        finally:
            backend.close()
    finally:
        ctx.close()
    gains = []
    for lp, ref in zip(with_p, without, strict=True):
        n = min(lp.size, ref.size)
        gains.append(float(lp[-n:].sum() - ref[-n:].sum()))
    return gains


def run_setting(root: Path, name: str, train_args: list[str], canaries: list[str], args) -> dict:
    rng = random.Random(f"{args.seed}-{name}")
    included = [rng.random() < 0.5 for _ in canaries]
    home = root / name
    shutil.rmtree(home, ignore_errors=True)
    home.parent.mkdir(parents=True, exist_ok=True)
    cli(home, "init")
    write_policy(home, args)
    seeds = root / f"{name}.txt"
    seeds.write_text("".join(t + "\n" for t, inc in zip(canaries, included, strict=True) if inc), encoding="utf-8")
    cli(home, "seeds", "import", str(seeds), "--dataset", "audit")
    con = __import__("sqlite3").connect(home / "appliance.db")
    trained = {t for (t,) in con.execute("SELECT text FROM records WHERE dataset = 'audit' AND split = 'train'")}
    con.close()
    member = [t in trained for t in canaries]
    t0 = time.perf_counter()
    out = cli(home, "train", "audit", *train_args)
    seconds = time.perf_counter() - t0
    pid = re.search(r"prompt (\S+)", out).group(1)
    con = __import__("sqlite3").connect(home / "appliance.db")
    eps = con.execute("SELECT epsilon FROM prompts WHERE id = ?", (pid,)).fetchone()[0]
    con.close()
    gains = score(home, pid, canaries)
    grid = [g for g in (5, 10, 20, 40, 80, 160, 320, 500) if 2 * g <= len(canaries)]
    res = audit(gains, member, grid)
    (root / f"{name}-scores.json").write_text(json.dumps({"canaries": canaries, "member": member, "gain": gains}))
    return {
        "setting": name,
        "epsilon": eps,
        "members": sum(member),
        "train_s": round(seconds, 1),
        "score_auc": round(score_auc(gains, member), 3),
        **res,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--canaries", type=int, default=120)
    ap.add_argument("--kind", choices=sorted(TEMPLATES), default="digits", help="what each canary's secret is")
    ap.add_argument("--eps", type=float, nargs="+", default=[1.0, 4.0])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--nodp-epochs", type=int, default=100)
    ap.add_argument("--nodp-lr", type=float, default=1.5)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--virtual-tokens", type=int, default=64)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "privacy-audit")
    ap.add_argument("--skip-dp", action="store_true", help="only the non-DP control (to size it)")
    ap.add_argument("--dp-lr", type=float, default=None, help="the DP runs' --lr (default: the policy's)")
    ap.add_argument(
        "--skip-control", action="store_true", help="only the DP runs (the control measured before, same canaries)"
    )
    args = ap.parse_args()
    rng = random.Random(args.seed)
    canaries = make_canaries(args.kind, args.canaries, rng)
    rows = []
    dp_lr = [] if args.dp_lr is None else ["--lr", f"{args.dp_lr:g}"]
    for e in [] if args.skip_dp else args.eps:
        train_args = ["--epsilon", f"{e:g}", "--epochs", str(args.epochs), *dp_lr]
        rows.append(run_setting(args.out, f"eps{e:g}", train_args, canaries, args))
        print(json.dumps(rows[-1]), flush=True)
    if not args.skip_control:
        nodp = ["--no-dp", "--epochs", str(args.nodp_epochs), "--lr", str(args.nodp_lr)]
        rows.append(run_setting(args.out, "nodp", nodp, canaries, args))
        print(json.dumps(rows[-1]), flush=True)
    print(
        f"\n{'setting':<8} {'ε (accountant)':>15} {'members':>8} {'score AUC':>9} {'k':>4} {'correct':>8}"
        f" {'ε lower':>8} {'train s':>8}"
    )
    for r in rows:
        acc = "-" if r["epsilon"] is None else f"{r['epsilon']:.3f}"
        print(
            f"{r['setting']:<8} {acc:>15} {r['members']:>8} {r['score_auc']:>9.3f} {r['k']:>4} {r['correct']:>8}"
            f" {r['eps_lower']:>8.3f} {r['train_s']:>8}"
        )
    at4 = next((r for r in rows if r["setting"] == "eps4"), rows[0])
    if at4["epsilon"] is None or args.skip_control:
        return  # --skip-dp: no DP run to put beside the control; --skip-control: no control in this run
    print(
        f"privacy audit: eps_lower {at4['eps_lower']:.2f} at eps {at4['epsilon']:.2g}"
        f" (eps_lower {rows[-1]['eps_lower']:.2f} no-DP)"
    )


if __name__ == "__main__":
    main()
