"""Is canary exposure calibrated? Score secrets never trained on and count how many the probe calls exposed.

    python bench/canary_null.py HOME [--secrets 1000] [--labels 2] [--candidates 200]
    python bench/canary_null.py --simulate [--trials 3000]

HOME is a workspace with a trained prompt and a batch (after `appliance demo`, say). Under the prompt
of its newest batch, the bench scores ``--secrets`` random secrets per label in the canary template,
exactly as the canary probe scores candidates (llama.cpp, the trainer's layout). None of them was
trained on, so each one's exposure against ``--candidates`` others drawn from the rest should be
distributed as for a secret whose rank is uniform: mean 1/ln 2 = 1.44 bits, P(exposure > b) = 2^-b.
The table puts the probe's estimator (`appliance.probes.exposure`) beside the two it replaced — the heavier of
a skew-normal's and a normal's tails (2026-12-02 to 12-05) and the skew-normal fit alone (Secret Sharer §4.3,
before 2026-12-02) — and prints the workspace's real canaries.

``--simulate`` needs no model: losses drawn from a normal, a normal with 3% far-right outliers (digit
strings the model finds odd), a right-skewed gamma, and three with a heavier lower tail than a normal's (3%
far-left outliers, Student t with 3 d.f., a left-skewed gamma), the secret drawn from the same distribution as
its candidates, so every exposure above chance is the estimator's error.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from appliance.config import Workspace
from appliance.context import Context
from appliance.probes.exposure import estimated_exposure, exposure_from_rank, skewnorm_fraction
from appliance.probes.inputs import load_inputs
from appliance.probes.probes import CanaryProbe
from appliance.store import batches

THRESHOLD = 10.0  # the shipped gate.max_canary_exposure_bits
PROBE = "probe (max of skew-normal, normal, exp. tails)"


def _bits(p: float, space: float) -> float:
    return exposure_from_rank(1.0 + (space - 1.0) * min(max(p, 0.0), 1.0), space)


def skewnorm_only(true_loss: float, cands: np.ndarray, space: float) -> float:
    """The estimator before 2026-12-02: the skew-normal's lower tail alone."""
    return _bits(skewnorm_fraction(true_loss, cands), space)


def two_tails(true_loss: float, cands: np.ndarray, space: float) -> float:
    """The estimator of 2026-12-02 to 2026-12-05: the heavier of the skew-normal's and a normal's lower tails."""
    from scipy import stats

    p_normal = float(stats.norm.cdf(true_loss, loc=cands.mean(), scale=cands.std()))
    p_skew = skewnorm_fraction(true_loss, cands)
    return _bits(max(p_skew, p_normal) if np.isfinite(p_skew) else p_normal, space)


ESTIMATORS = {
    PROBE: lambda t, c, space: estimated_exposure(t, c, space)["exposure_bits"],
    "skew-normal and normal tails (to 12-05)": two_tails,
    "skew-normal alone (to 12-02)": skewnorm_only,
}


def simulate(trials: int, n_cands: int, seed: int) -> None:
    rng = np.random.default_rng(seed)

    def draw(kind: str, n: int) -> np.ndarray:
        if kind == "normal":
            return rng.normal(30.0, 2.0, n)
        if kind.startswith("normal + 3%"):
            x = rng.normal(30.0, 2.0, n)
            far = rng.random(n) < 0.03
            sign = 1.0 if "right" in kind else -1.0
            x[far] += sign * rng.exponential(8.0 if sign > 0 else 4.0, int(far.sum()))
            return x
        if kind == "student t, 3 d.f.":
            return 30.0 + 2.0 * rng.standard_t(3, n)
        if kind == "gamma, left-skewed":
            return 35.0 - rng.gamma(4.0, 1.2, n)
        return 25.0 + rng.gamma(4.0, 1.2, n)

    space = 1e8
    print(f"simulated secrets never trained on: {trials} per distribution, {n_cands} candidates each;")
    print(f"by chance {trials / 2**THRESHOLD:.1f} above {THRESHOLD:.0f} bits")
    print(f"{'losses':<26} {'estimator':<44} {'mean':>6} {'>10 bits':>9} {'max':>6}")
    kinds = (
        "normal",
        "normal + 3% far right",
        "gamma, right-skewed",
        "normal + 3% far left",
        "student t, 3 d.f.",
        "gamma, left-skewed",
    )
    for kind in kinds:
        got: dict[str, list[float]] = {name: [] for name in ESTIMATORS}
        for _ in range(trials):
            x = draw(kind, n_cands + 1)
            for name, fn in ESTIMATORS.items():
                got[name].append(fn(float(x[0]), x[1:], space))
        for name, v in got.items():
            a = np.asarray(v)
            print(f"{kind:<26} {name:<44} {a.mean():>6.2f} {(a > THRESHOLD).sum():>9d} {a.max():>6.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("home", nargs="?")
    ap.add_argument("--simulate", action="store_true", help="no model: simulated loss distributions")
    ap.add_argument("--trials", type=int, default=3000, help="simulated secrets per distribution")
    ap.add_argument("--secrets", type=int, default=1000, help="random secrets scored per label")
    ap.add_argument("--labels", type=int, default=2, help="how many of the dataset's labels")
    ap.add_argument("--candidates", type=int, default=200, help="candidates per exposure (the policy's default)")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    if args.simulate:
        simulate(args.trials, args.candidates, args.seed)
        return
    if args.home is None:
        ap.error("give a workspace HOME, or --simulate")

    ctx = Context.open(Workspace.resolve(args.home))
    every = batches.listing(ctx.db)  # oldest first
    if not every:
        raise SystemExit(f"{args.home}: no batch — run `appliance demo --home {args.home}` first")
    inp = load_inputs(ctx, batches.require(ctx.db, every[-1]["id"]))
    if not inp.canaries:
        raise SystemExit(f"{args.home}: the newest batch's prompt planted no canaries")
    sc = inp.scorer()
    tmpl, digits = inp.canaries[0].template, inp.canaries[0].digits
    space = float(10**digits)
    rng = np.random.default_rng(args.seed)
    labels = sorted({r.label for r in inp.members if r.label is not None})[: args.labels] or [None]
    real = {c.secret for c in inp.canaries}
    t0 = time.perf_counter()
    est: dict[str, list[float]] = {name: [] for name in ESTIMATORS}
    for lab in labels:
        secrets = sorted({str(int(x)).zfill(digits) for x in rng.integers(0, int(space), args.secrets)} - real)
        texts = [tmpl.format(secret=s) for s in secrets]
        losses = np.array([-float(lp.sum()) for lp in sc.logprobs_many(texts, [lab] * len(texts))])
        for i in range(losses.size):
            others = rng.choice(np.delete(losses, i), args.candidates, replace=False)
            for name, fn in ESTIMATORS.items():
                est[name].append(fn(float(losses[i]), others, space))
    seconds = time.perf_counter() - t0
    n = len(next(iter(est.values())))
    print(
        f"canary exposure of {n} secrets never trained on ({len(labels)} label(s), {args.candidates} candidates each,"
    )
    print(f"prompt {inp.prompt['id'] if inp.prompt else '-'}, scored in {seconds:.0f} s); by chance: mean 1.44 bits,")
    print(f"{n / 2**THRESHOLD:.1f} above {THRESHOLD:.0f} bits, {n / 2**14:.2f} above 14 bits")
    print(f"{'estimator':<44} {'mean':>6} {'>10 bits':>9} {'>14 bits':>9} {'max':>6}")
    for name, v in est.items():
        a = np.asarray(v)
        print(f"{name:<44} {a.mean():>6.2f} {(a > THRESHOLD).sum():>9d} {(a > 14).sum():>9d} {a.max():>6.2f}")
    r = CanaryProbe().run(inp)  # the probe itself, on the secrets the trainer planted
    inp.close()
    bits = ", ".join(f"{c['exposure_bits']:.2f}" for c in r["canaries"])
    print(f"the workspace's {len(r['canaries'])} planted canaries ({inp.n_candidates} candidates): {bits} bits")
    probe = np.asarray(est[PROBE])
    old = np.asarray(est["skew-normal and normal tails (to 12-05)"])
    print(
        f"canary null: probe {(probe > THRESHOLD).sum()} of {n} above {THRESHOLD:.0f} bits, the estimator to 12-05 "
        f"{(old > THRESHOLD).sum()} (chance {n / 2**THRESHOLD:.1f})"
    )


if __name__ == "__main__":
    main()
