"""The demo's sample and settings: the shipped BANKING77 sample and what the demo workspace changes.

The sample (``data/banking77_sample.csv``, CC BY 4.0, see ``data/PROVENANCE.md``) holds 720 queries in 6
intents with fake PII planted in every 6th record, so the import's PII scan has something to do. The runner
that drives the CLI through these steps is :mod:`appliance.cli.demo_run`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent / "data"
SAMPLE = DATA_DIR / "banking77_sample.csv"
# The public prior's corpus (``data/banking77_public.csv``, CC BY 4.0): 2,360 BANKING77 queries of 59 intents that
# are neither the sample's 6 nor the 12 the quality bench measures on, imported as public data (`seeds import
# --public`) and trained on without DP; the DP run on the sample starts from that prompt (`train --init-prompt`)
PUBLIC_CORPUS = DATA_DIR / "banking77_public.csv"
PUBLIC_DATASET = "banking77-public"
PUBLIC_LABEL_ARGS = ["--label-field", "category", "--public"]
# the sample's labels are BANKING77's published intents: public schema, declared as such at import
DEMO_LABELS = "card_arrival,cash_withdrawal_charge,exchange_rate,lost_or_stolen_card,pin_blocked,top_up_failed"
LABEL_ARGS = ["--label-field", "category", "--labels", DEMO_LABELS]
DATASET = "banking77-demo"
EPSILON = 4.0
EXPORT_NAME = "banking77-demo-synthetic.jsonl"
REPORT_NAME = "compliance-report.html"
# The demo workspace's departures from the shipped policy (see demo_policy): a data split, and the public
# description of the domain the operator writes for any data set. No gate threshold changes.
DEMO_HOLDOUT_FRACTION = 0.25
DEMO_DOMAIN: dict[str, str | list[str]] = {
    # what the data are: a public fact about the sample (BANKING77's own description), not read from its records
    "training.init_text": "Customers wrote these short messages to the support chat of their bank.",
    # a label verbaliser: the intent's words, so the untrained prompt already writes about the intent, then the
    # words its seeds use most where the DP keyword histogram released any (" (link, app)", else nothing)
    "training.label_template": "A customer message about {label_words}{label_keywords}:\n",
    # one message per line, as in the sample
    "generation.stop": ["\n"],
    # a message ends with the end token (the shipped generic frame ends a record with '"}')
    "training.end_text": "",
}
# curation for many labels: keep an output only when the DP generator reads it as its own label by more than 2
# nats — chosen on six public BANKING77 intents that are not the demo's (bench/RESULTS.md, session 10)
DEMO_LABEL_MARGIN_NATS = 2.0
# curation's DP selection (the seeds' noisy histogram over clusters of outputs, inside the prompt's ε = 4): on six
# public BANKING77 intents that are not the demo's, the default 12 clusters per label kept 30% of the outputs at
# detection AUC 0.86 against 0.91 for random 30% (bench/RESULTS.md, session 12); the demo generates 1/0.3 times as
# many outputs as it means to keep
DEMO_SELECTION: dict[str, bool] = {"curation.dp_selection.enabled": True}
# paraphrases out before the DP selection: an output whose MiniLM embedding has cosine > 0.9 with an earlier kept
# output is dropped (curation.semantic_dup_cosine; post-processing, no seed read). On 13 public BANKING77 pools (six
# intents that are not the demo's, DP prompts at ε = 4 from public priors, 124 DP-selected outputs drawn eight times
# from each): detection AUC lower on 10, by 0.012 ± 0.005 on average (0.92: 0.005, 0.88: 0.006; bench/RESULTS.md,
# session 33). How many outputs the demo generates for it: FULL below.
DEMO_DEDUP: dict[str, float] = {"curation.semantic_dup_cosine": 0.9}
# No guidance (generation.guidance stays at the shipped 0). Sessions 5-34 set 1: from the domain's description it
# took label fidelity 0.70 → 0.79 and detection AUC 0.94 → 0.91 (session 5). From the public prior it only
# caricatures: on ten public DP prompts at ε = 4 (six BANKING77 intents that are not the demo's, 534 train, the
# demo's prior and schedule; 720 outputs per prompt and value, 124 DP-selected four times), MiniLM detection AUC
# 0.012 ± 0.009 lower without it (0.791 against 0.803; five lower, five higher: no more than chance), the lexical
# detector's 0.025 ± 0.008 lower (0.876 against 0.902; nine of ten), label fidelity 0.97 against 0.98, and the
# outputs read more like customers' (12.7 words against 10.7, real 12.0-12.7; fewer "I ..." openings, more
# questions) at half the decoding (bench/RESULTS.md, session 35).
# the DP label keywords (appliance.train.keywords: a noisy histogram of the words each intent uses most, more than
# the other intents do, σ 2.5, inside the prompt's ε = 4; DP-SGD's σ 5% higher for it): on six public BANKING77
# intents that are not the demo's, detection AUC 0.839 on two seeds against 0.865 for four runs of the same seeds
# without, and 0.02-0.035 lower on the same DP prompt's outputs with and without them (bench/RESULTS.md, session 18)
DEMO_KEYWORDS: dict[str, bool] = {"training.label_keywords.enabled": True}
# DP-SGD's schedule: Poisson batches of 64 over 6 epochs at lr 0.1 instead of the shipped 16 over 3 at 0.05. At the
# same ε the larger batch averages the noise down faster than the longer schedule raises it: on the demo's 544
# training rows σ goes from 0.95 over 102 steps to 1.64 over 54, and the noise on the summed gradients falls 1.6-fold
# against the records they sum. Chosen on six public BANKING77 intents that are not the demo's, three DP prompts
# each way: holdout loss 2.87 against 2.92 (every prompt of the new schedule below every one of the old), detection
# AUC after the DP selection 0.833 against 0.859 (bench/RESULTS.md, session 19)
# Session 25 tried 128 × 6 at lr 0.2 (the same compute): four public prompts 0.825 against 0.840 for six of batch
# 64, and two prompts of one seed 0.066 apart — no gain shown, so 64 stays (bench/RESULTS.md, session 25).
DEMO_SCHEDULE: dict[str, float | int] = {"training.batch_size": 64, "training.lr": 0.1}
DEMO_EPOCHS = 6
# The DP prompt's movement from the public prior is stored as trained (training.prior_extrapolation stays at the
# shipped 1). Session 31 measured 1.25 at the bench's scale (374 train records, four priors of 40-80 records per
# intent): detection AUC 0.755 against 0.811 as trained, and the demo set it; its four demos averaged 0.766 against
# 0.768 without. Session 32 measured it at the demo's scale on public data (the bench's six intents, 720 seeds, 540
# train, the demo's own prior and schedule, two DP prompts, 720 outputs per value rescored at n = 124 with fresh DP
# selections): 0.778 at 0.9, 0.781 as trained, 0.788 at 1.1, 0.808 at 1.25, 0.910 at 1.5 (one prompt) — worse at
# every s above 1 on both prompts, so the demo no longer sets it (bench/RESULTS.md, session 32)
# every departure from the shipped policy, by its full dotted path (how set_values finds it and the audit names it)
DEMO_POLICY: dict[str, bool | float | int | str | list[str]] = {
    "privacy.holdout_fraction": DEMO_HOLDOUT_FRACTION,
    **DEMO_DOMAIN,
    "curation.label_margin_nats": DEMO_LABEL_MARGIN_NATS,
    **DEMO_SELECTION,
    **DEMO_DEDUP,
    **DEMO_KEYWORDS,
    **DEMO_SCHEDULE,
}
DEMO_POLICY_KEYS = list(DEMO_POLICY)
DEMO_POLICY_REASON = (
    "privacy.holdout_fraction 0.25 instead of 0.2: the probes then compare 540 members with 180 held-out records "
    "instead of 576 with 144 — more non-members tighten the bounds on the probes' 1% false-positive-rate figure. "
    "training.init_text, training.label_template, generation.stop and training.end_text describe the domain as "
    "an operator would (short customer messages to a bank, one per line, each ending with the end token; the "
    "label's words as its verbaliser): public facts, so "
    "the untrained prompt already writes on topic and DP training only refines it. "
    "curation.label_margin_nats 2.0 instead of 0: with six labels, an output is kept only when the DP generator "
    "itself reads it as its own label by more than 2 nats (chosen on other, public BANKING77 intents: label "
    "fidelity up at the same detection AUC; post-processing of the DP prompt, no seed read). "
    "curation.dp_selection.enabled true: the training seeds vote once each for the nearest of 12 clusters of outputs"
    " per label, the counts get Gaussian noise (σ 4), and 30% of the filtered outputs are drawn by the noisy counts;"
    " its cost is composed into the prompt's ε = 4 at training (chosen on other, public BANKING77 intents: detection"
    " AUC 0.86 against 0.91 for a random 30%). "
    "curation.semantic_dup_cosine 0.9 instead of off: before that selection, an output whose sentence embedding has"
    " cosine above 0.9 with an earlier kept output (a paraphrase) is dropped, so the export is not a few sentences in"
    " many wordings (chosen on other, public BANKING77 intents: detection AUC 0.012 lower on average). "
    "training.label_keywords.enabled true, read by {label_keywords} in the template: training releases the words"
    " each intent uses most, more than the other intents do (a Gaussian histogram over the model's whole-word"
    " vocabulary, σ 2.5, a word only at 5σ or more), composed into the same ε = 4 (chosen on other, public BANKING77"
    " intents: detection AUC 0.84 against 0.87 without). "
    "training.batch_size 64 and training.lr 0.1 instead of 16 and 0.05, trained over 6 epochs instead of 3: at the"
    " same ε a larger Poisson batch averages DP-SGD's noise down faster than the longer schedule raises it (chosen on"
    " other, public BANKING77 intents: holdout loss 2.87 against 2.92, detection AUC 0.83 against 0.86 after the"
    " selection). "
    "The full demo keeps every gate threshold at the shipped default."
)
# The public prior (appliance.train.public_prior): the DP run starts from a prompt trained without DP on the public
# corpus above, not from the description's token embeddings. On six public BANKING77 intents that are neither these
# nor the corpus's, three DP prompts at ε = 4 on the demo's schedule (seeds 3-5): holdout loss 2.63-2.66 against
# 2.81-2.85 from the description, detection AUC of 124 DP-selected outputs 0.742-0.818 (mean 0.770) against
# 0.842-0.854 (bench/RESULTS.md, session 28)
PUBLIC_PRIOR_LR = 0.05  # with batch 16: the bench's non-DP reference schedule


@dataclass(frozen=True)
class DemoSettings:
    """How much work the demo does: the full run (``make demo``) or ``--quick`` (the air-gap test)."""

    epochs: int
    n_outputs: int
    max_tokens: int
    prior_epochs: int  # passes of the public prior's non-DP training over the public corpus
    prior_batch: int  # its (Poisson) batch size
    seed: int = 7
    quality_floor: bool = True  # False: the workspace lifts gate.max_detection_auc / min_label_fidelity (audited)


# The DP selection keeps about 30% of the outputs the filters pass. With guidance (until session 35) the filters and
# the paraphrase filter kept about 65% of them and the demo generated 576; unguided outputs repeat themselves less and
# about 81% pass, so 480 give an export of about 110, the size the demo's detection AUC was measured at in sessions
# 33-34 (the AUC rises with the export's n: two unguided demos at 672 exported 156 and 162).
FULL = DemoSettings(epochs=DEMO_EPOCHS, n_outputs=480, max_tokens=48, prior_epochs=2, prior_batch=16)
# --quick exists for the air-gap test (offline install, no network): one epoch is not meant to meet the quality
# floor, so its workspace lifts it, says so in step 2 and in the demo.policy event; every privacy check stays.
QUICK = DemoSettings(epochs=1, n_outputs=120, max_tokens=40, prior_epochs=1, prior_batch=64, quality_floor=False)
QUICK_GATE: dict[str, float] = {"gate.max_detection_auc": 1.0, "gate.min_label_fidelity": 0.0}
QUICK_REASON = (
    " --quick (the air-gap test's run: one epoch) also lifts the quality floor (gate.max_detection_auc 1.0,"
    " gate.min_label_fidelity 0.0): it shows the pipeline offline, not the quality of one epoch; the full demo"
    " keeps the shipped floor."
)
