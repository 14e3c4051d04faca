"""The report's sections, each a function of :class:`ReportData` returning one ``<section>`` of HTML."""

from __future__ import annotations

from collections import Counter
from html import escape
from typing import Any

from appliance.report import plots
from appliance.report.data import ReportData
from appliance.report.widgets import badge, fmt, short, table


def chain_section(d: ReportData) -> str:
    c = d.chain
    status = badge(c["ok"], "INTACT", "BROKEN")
    brk = (
        ""
        if c["ok"]
        else f'<p class="fail">first broken event: {c["break_seq"]} — {escape(str(c["break_reason"]))}</p>'
    )
    return (
        f'<section id="chain"><h2>Audit chain</h2><p>Status {status} — the hash links of {c["count"]} events'
        " recomputed (a chain rewritten whole is caught only against a signed head kept elsewhere:"
        f" <code>audit verify --against-head</code>).</p>{brk}"
        + table(
            ["head seq", "head hash", "key that signs manifests and heads"],
            [
                [
                    str(c["head_seq"]),
                    f"<code>{escape(c['head_hash'])}</code>",
                    f"<code>{escape(str(c['key_fingerprint']))}</code>",
                ]
            ],
        )
        + trust_model(bool(c.get("key_external")), c.get("key_fingerprint") is not None)
        + "</section>"
    )


def trust_model(external: bool, usable: bool = True) -> str:
    """Where the signing key lives, and so what a workspace owner can and cannot forge (README, "Trust model").
    Read from the environment the report is generated in: the key that signed an earlier export is named by the
    fingerprint in its manifest."""
    if external:
        state = "" if usable else " — but it cannot be read now, so nothing can be signed"
        where = (
            "As configured where this report was generated, the signing key is outside the workspace"
            f" (<code>APPLIANCE_SIGNING_KEY</code>, readable only by the appliance's service user){state}. A"
            " workspace owner can delete the workspace, refuse to export, or rewrite"
            " the database and chain whole — caught only against a signed head or manifest kept elsewhere — but"
            " cannot make a manifest or head verify under the officer's copy of the public key"
            " (<code>audit verify --pubkey FILE</code>) without the service user's key file. Whoever runs as the"
            " service user can sign anything."
        )
    else:
        where = (
            "As configured where this report was generated, the signing key is the workspace's own"
            " (<code>keys/</code>, beside the database): whoever can write"
            " the workspace can edit rows <em>and</em> re-sign, so against such an owner these signatures prove"
            " nothing. Set <code>APPLIANCE_SIGNING_KEY</code> to a key outside the workspace and give its public"
            " key to the officer to make them count."
        )
    return (
        f"<p><strong>Trust model.</strong> {where} A lone edit of a row the gate reads (a prompt, charge,"
        " budget key, output, curation, evaluation or probe) is an integrity failure (exit 4); a rewrite of the"
        " chain from that row's event on is caught only by an earlier signed head or manifest.</p>"
    )


def datasets_section(d: ReportData) -> str:
    rows = [
        [
            escape(r["name"]),
            fmt(r["created_at"]),
            fmt(r["n_records"]),
            fmt(r["n_train"]),
            fmt(r["n_holdout"]),
            fmt(r["n_dropped"]),
            fmt(r["unit"]),
            f'<span class="{"fail" if r["unit_epsilon"] > r["epsilon_cap"] else "pass"}">'
            f"{fmt(r['unit_epsilon'])} / {fmt(r['epsilon_cap'])}</span>",
            f"{fmt(r['unit_delta'])} / {fmt(r['delta_cap'])}",
            fmt(r["epsilon_spent"]),
            fmt(r["delta_spent"]),
            fmt(r["n_charges"]),
        ]
        for r in d.datasets
    ]
    chart = f"<figure>{plots.budget_chart(d.datasets)}</figure>" if d.datasets else ""
    return (
        '<section id="datasets"><h2>Datasets and privacy budget</h2>'
        + table(
            [
                "dataset",
                "imported",
                "records",
                "train",
                "holdout",
                "dropped (PII)",
                "budget unit",
                "most-charged unit: ε / cap",
                "its Σδ / cap",
                "ε charged on it (runs, label selection)",
                "δ charged on it",
                "charges",
            ],
            rows,
        )
        + '<p class="note">The budget follows records, not dataset names: every DP run charges its ε and δ to'
        " each record it trained on, and a DP label selection at import (<code>seeds import --labels dp</code>)"
        " charges its own to every labelled record it counted, keyed by a hash of the record's redacted,"
        " normalised text (or, when the import declared <code>--subject-field</code>, also to each subject, a subject"
        " with k records in a run"
        " being charged as a group of k: kε, k·e<sup>(k−1)ε</sup>·δ). The most-charged unit's Σε and Σδ count runs"
        " under every dataset name that holds it; <code>privacy.dataset_epsilon_cap</code> and"
        " <code>privacy.max_total_delta</code> bound them, and a run that would pass either is refused before"
        " training.</p>" + chart + "</section>"
    )


def _start(run: dict[str, Any]) -> str:
    """Where a run started: the init text, or a public prompt (with the extrapolation from it, when applied)."""
    if not run.get("init_prompt"):
        return "init text"
    s = run.get("prior_extrapolation")
    scaled = f", stored prior + {s:g} × movement" if s is not None else ""
    return f"<code>{escape(run['init_prompt'])}</code>{escape(scaled)}"


def runs_section(d: ReportData) -> str:
    rows = [
        [
            f"<code>{escape(r['id'])}</code>",
            escape(r["dataset"]),
            escape(r["model_name"]),
            badge(True, "PUBLIC DATA")
            if r.get("public_data") and not r["dp"]
            else badge(bool(r["dp"]), "DP", "NON-DP"),
            _start(r),
            fmt(r["epsilon"]),
            fmt(r["delta"]),
            fmt(r["accountant"]),
            fmt(r["noise_multiplier"]),
            fmt(r["steps"]),
            fmt(r["dp_selection_noise"]),
            fmt(r["label_keywords_noise"]),
            fmt(r["noise_mode"]),
            fmt(bool(r["exportable"])),
            fmt(r["actor"]),
            fmt(r["created_at"]),
        ]
        for r in d.runs
    ]
    return (
        '<section id="training"><h2>Training runs</h2>'
        + table(
            [
                "prompt",
                "dataset",
                "model",
                "mode",
                "started from",
                "ε",
                "δ",
                "accountant",
                "noise σ",
                "steps",
                "selection σ",
                "keywords σ",
                "noise mode",
                "exportable",
                "by",
                "when",
            ],
            rows,
        )
        + _runs_notes(d)
        + "</section>"
    )


def _keywords_listed(d: ReportData) -> str:
    """Each keyword run's released words, per label, or "none released" (escaped)."""
    shown = [
        f"<code>{escape(r['id'])}</code>: "
        + "; ".join(f"{escape(lab)}: {escape(', '.join(ws)) or '—'}" for lab, ws in sorted(r["label_keywords"].items()))
        for r in d.runs
        if r.get("label_keywords_noise") is not None
    ]
    return " · ".join(shown) or "no run released any"


def _runs_notes(d: ReportData) -> str:
    notes = [
        "Guarantee: each DP run is (ε, δ)-differentially private for the <b>add/remove-one-record</b> neighbouring"
        " relation: adding or removing any one training record changes the distribution of the trained soft prompt"
        " by at most e<sup>ε</sup> plus δ. With <code>--subject-field</code> the unit is <b>one subject</b> (add or"
        " remove all of one person's records), charged by group privacy: a person with k records in a run, kε and"
        " k·e<sup>(k−1)ε</sup>·δ. Without it a person with several records is protected by group privacy only,"
        " and the budget does not know it. Default δ = min(1/(10·N), 10<sup>−6</sup>), with N the next power of"
        " ten at or above the number of training records plus planted canaries (a public upper bound: δ reveals"
        " only its order of magnitude; the sample rate 1/⌈n/B⌉ and the step count in the manifest pin n to within the"
        " batch size B);"
        " a δ at or above 1/n is refused.",
        "Budget composition: <b>basic composition</b> — the ε and the δ of every DP run on a record add up "
        "(sound for any sequence of runs; conservative, since the runs' RDP curves are not composed).",
        "<b>selection σ</b>: a run trained with <code>curation.dp_selection</code> enabled reserves, inside its ε,"
        " one Gaussian histogram over its training records (each record adds 1 to the count of the nearest output"
        " cluster of its own label, noise σ per count),"
        " composed with DP-SGD by the same accountant; curation of one of its batches releases it once. A run"
        " without it (—) reserves nothing.",
        "<b>keywords σ</b>: a run trained with <code>training.label_keywords</code> enabled releases, inside its"
        " ε, the words each label uses most, more than the other labels do: one Gaussian histogram over (label,"
        " word) pairs, the words a public"
        " vocabulary (the model tokenizer's whole words), each training record adding a vector of"
        " L2 norm 1, noise σ per count, a word released only at a noisy count of at least"
        " <code>threshold_sigmas</code>·σ; composed with DP-SGD by the same accountant. The released words"
        " (" + _keywords_listed(d) + ") are part of the label prefix the prompt trains and generates under, and"
        " are in the <code>train.run</code> event with their noisy counts.",
        "<b>started from</b>: a run starts from the policy's public text prior (<code>training.init_text</code>, the"
        " label template: <i>init text</i>) or from a prompt trained without DP on a dataset imported as public data"
        " (<code>seeds import --public</code>, mode <i>PUBLIC DATA</i>: a published corpus, no budget, no"
        " canaries) and on nothing else — the appliance refuses any other prompt as a start. Such a start is a public"
        " constant, like the model's weights, so the run's (ε, δ) covers its own records as from the text prior."
        " That the corpus is public is the importing actor's declaration (in its <code>seeds.import</code> event):"
        " the guarantee rests on it.",
        "The label selection at import, the keyword histogram and the DP selection draw their Gaussian noise from"
        " numpy's PCG64 seeded with 128 bits from the OS CSPRNG, whatever a run's noise mode: no fixed or guessable"
        " seed, but not a cryptographic generator.",
    ]
    if any(r["noise_mode"] == "os-seeded" for r in d.runs):
        notes.append(
            "Noise mode <b>os-seeded</b>: Opacus's secure mode needs torchcsprng, which has no build for this "
            "torch (or <code>privacy.secure_noise</code> is off), so DP-SGD's noise and Poisson sampling use torch's"
            " generators seeded with 64 bits from the OS "
            "CSPRNG. As in every floating-point DP-SGD implementation, the Gaussian noise is a floating-point "
            "approximation (Mironov 2012); the (ε, δ) guarantee assumes ideal real-valued noise."
        )
    return "".join(f'<p class="note">{n}</p>' for n in notes)


def pii_section(d: ReportData) -> str:
    imp = sum(d.pii_import.values(), Counter())
    out = sum(d.pii_output.values(), Counter())
    types = sorted(set(imp) | set(out))
    rows = [[escape(t), fmt(imp.get(t, 0)), fmt(out.get(t, 0))] for t in types]
    per_batch = [
        [
            f"<code>{escape(b)}</code>",
            fmt(sum(c.values())),
            escape(", ".join(f"{k} {n}" for k, n in sorted(c.items())) or "—"),
        ]
        for b, c in d.pii_output.items()
    ]
    chart = f"<figure>{plots.pii_chart(imp, out)}</figure>" if types else ""
    return (
        '<section id="pii"><h2>PII findings per type</h2><p class="muted">Types and counts only; a matched value is'
        " never stored (a finding keeps its type, offsets and score). Types the policy allows (shipped: DATE_TIME,"
        " NRP) stay in the text as written and are not counted; import counts cover the records stored.</p>"
        + table(["entity type", "at import (seeds)", "at output (generated)"], rows)
        + chart
        + "<h3>Per batch (output scan)</h3>"
        + table(["batch", "findings", "by type"], per_batch)
        + "</section>"
    )


def _probe(p: dict[str, Any], th: dict[str, Any]) -> str:
    s = p["summary"]
    checks = [  # the gate compares the interval bound; the point estimate is shown beside it
        ("MIA AUC, highest 95% upper bound of the attacks", s.get("mia_auc_upper"), s.get("mia_auc"), "≤",
         th["max_mia_auc"]),
        ("TPR at 1% FPR, 95% upper bound", s.get("tpr_at_1pct_fpr_upper"), s.get("tpr_at_1pct_fpr"), "≤",
         th["max_tpr_at_1pct_fpr"]),
        ("canary exposure (bits, max)", s.get("canary_exposure_bits"), None, "≤", th["max_canary_exposure_bits"]),
        ("outputs containing a canary secret (every raw output)", s.get("canary_output_hits"), None, "≤",
         th["max_canary_output_hits"]),
        ("DCR ratio (members / holdout), 95% lower bound", s.get("dcr_ratio_lower"), s.get("dcr_ratio"), "≥",
         th["min_dcr_ratio"]),
    ]  # fmt: skip
    rows = []
    for name, val, point, op, t in checks:
        ok = val is not None and (val <= t if op == "≤" else val >= t)
        shown = fmt(val) + ("" if point is None else f" (estimate {fmt(point)})")
        rows.append([escape(name), f'<span class="{"pass" if ok else "fail"}">{shown}</span>', f"{op} {fmt(t)}"])
    few = s.get("too_few_records") or []
    if few:
        rows.append([escape(", ".join(few)), '<span class="fail">too few records to test</span>', "refused"])
    attacks = p["metrics"].get("mia", {}).get("attacks", {})
    arows = [
        [
            escape(k),
            f"{fmt(a['auc'])} [{fmt(a['auc_ci'][0])}, {fmt(a['auc_ci'][1])}]",
            f"{fmt(a['tpr_at_1pct_fpr'])} [{fmt(a['tpr_at_1pct_fpr_ci'][0])}, {fmt(a['tpr_at_1pct_fpr_ci'][1])}]",
            fmt(a["n_members"]),
            fmt(a["n_holdout"]),
        ]
        for k, a in attacks.items()
    ]
    curves = p.get("curves") or {}
    fig = f"<figure>{plots.roc_chart(curves, {k: a['auc'] for k, a in attacks.items()})}</figure>" if curves else ""
    head = (
        f"<h3>Batch <code>{escape(p['batch_id'])}</code> — prompt <code>{escape(str(p['prompt_id']))}</code>,"
        f" {escape(p['created_at'])} by {escape(p['actor'])}</h3>"
    )
    return (
        head
        + '<div class="probe"><div>'
        + table(["metric", "value", "threshold"], rows)
        + table(["attack", "AUC [95% CI]", "TPR@1%FPR [95% CI]", "members", "holdout"], arows, "not applicable")
        + f"</div><div>{fig}</div></div>"
    )


def probes_section(d: ReportData) -> str:
    body = "".join(_probe(p, d.thresholds) for p in d.probes) or '<p class="muted">no probe runs recorded</p>'
    return (
        '<section id="probes"><h2>Privacy probes</h2><p class="muted">Membership inference (loss, Min-K%,'
        " reference-calibrated loss) members vs holdout and canary exposure (Secret Sharer), both on the trained"
        " prompt; distance to closest record (Canary's Echo) from a seeded sample of up to"
        " <code>gate.probe_max_records</code> stored outputs, before curation; every output's raw text (counted at"
        " generation, before the PII scan) searched for every canary. Intervals: 95% bootstrap. The gate compares"
        " the bound of each interval that is least favourable (upper for MIA, lower for DCR), not the estimate,"
        " and a probe with fewer than"
        " <code>gate.probe_min_records</code> records on a side is refused as too few records to test. These"
        " are empirical checks of the trained prompt and the batch's outputs, not part of the DP guarantee. Pass and"
        " fail below use the current policy's thresholds; the gate decisions record those in force then.</p>"
        + body
        + "</section>"
    )


def gate_section(d: ReportData) -> str:
    rows = []
    for g in d.gate:
        state = (
            badge(bool(g["passed"]), "PASSED", "REFUSED")
            if g["enabled"]
            else '<span class="badge warn">DISABLED</span>'
        )
        reasons = (
            "<br>".join(
                f"{escape(f['check'])}: {fmt(f['value'])} (threshold {escape(f['op'])} {fmt(f['threshold'])})"
                for f in g["failures"]
            )
            or "all checks passed"
        )
        rows.append(
            [
                fmt(g["created_at"]),
                f"<code>{escape(g['batch_id'])}</code>",
                state,
                reasons,
                escape(g["actor"]),
                fmt(g["event_seq"]),
            ]
        )
    return (
        '<section id="gate"><h2>Gate decisions</h2>'
        + table(["when", "batch", "decision", "reasons", "by", "audit seq"], rows)
        + _gate_notes()
        + "</section>"
    )


def _gate_notes() -> str:
    notes = [
        "What is released is post-processing of DP outputs: generation samples from the DP soft prompt, under a"
        " label prefix that holds the run's DP-released label keywords where it released any (with"
        " guidance, from it contrasted with the public prior it was initialised from, or with the same prompt"
        " followed by another of the public labels — no seed is read) over the"
        " dataset's public label set (never the labels its training records hold), and curation"
        " keeps or drops outputs on the outputs alone (PII re-scan, unfinished, quality, label echo, prompt echo —"
        " the label prefix's public template or DP keywords repeated —, duplicates, and off-label by the DP"
        " generator's own reading), never by comparing them with the seeds — except through the"
        " DP selection of a run whose table row shows a selection σ: the training records vote once each for the"
        " nearest cluster of outputs of their own label, Gaussian noise of that σ is added to every count, and"
        " outputs are drawn in proportion to the noisy count per output, a count under"
        " <code>threshold_sigmas</code>·σ weighing nothing (event <code>curate.dp_selection</code>, once per"
        " prompt); its cost is inside the run's ε."
        " Verbatim overlap with a"
        " training seed (a shared span of"
        " <code>curation.leak_ngram_tokens</code> words) is counted; overlap in more kept outputs than chance explains"
        " (held-out real records' overlap rate, <code>gate.leak_chance_baseline</code>) <b>refuses the whole"
        " export</b> (<code>verbatim_leaks</code>); the counts stay in the database"
        " and the audit log. The probe checks (membership inference, canaries, DCR) and the quality floor (detection"
        " AUC and MAUVE against the holdout, label fidelity by a classifier trained on the training split) refuse"
        " whole exports the same way. Each export decision, retries included, is therefore one seed-dependent bit"
        " outside the DP guarantee.",
        "A <code>--no-dp</code> or few-shot batch is never exported, and labels leave only when they were declared"
        " public schema at import (<code>seeds import --labels</code>) or chosen there by DP partition selection"
        " (<code>--labels dp</code>, its ε and δ charged to every labelled record like a training run), whatever"
        " <code>gate.enabled</code> says."
        " Every prompt, batch, curation, evaluation and probe row and every privacy charge the gate reads is checked"
        " against the audit event that recorded it (the columns the gate reads), and the curation, evaluation and"
        " probe rows must be the newest of their events: an edited or deleted row is an integrity failure (exit 4),"
        " not a fact. A chain rewritten from the edit on is caught only against a signed head kept elsewhere.",
        "The signed export manifest carries: DP parameters (ε, δ, noise multiplier, sample rate, steps, clip norm,"
        " accountant, neighbouring relation, the selection and keywords σ), the dataset's name, ε spent and budget"
        " caps and the label set's source, hashes, model and policy identity, the actor and approver names, the"
        " file's name, size"
        " and record count, the audit head, and each gate check's name and pass/fail. The sample rate and steps pin"
        " the number of training records to within one batch size. The measured values in this report (losses, MIA"
        " AUCs, utility, DCR, member counts) stay inside the appliance.",
    ]
    return "".join(f'<p class="note">{n}</p>' for n in notes)


def exports_section(d: ReportData) -> str:
    rows = [
        [
            fmt(e["created_at"]),
            f"<code>{escape(e['id'])}</code>",
            f"<code>{escape(e['batch_id'])}</code>",
            escape(e["path"].rsplit("/", 1)[-1]),
            escape(e["format"]),
            fmt(e["n_records"]),
            f"<code>{escape(e['file_sha256'])}</code>",
            escape(e["actor"]),
            escape(f"{e['requested_by']} → {e['approved_by']}") if e.get("request_id") else "not required",
            fmt(e["event_seq"]),
        ]
        for e in d.exports
    ]
    reqs = [
        [
            f"<code>{escape(r['id'])}</code>",
            f"<code>{escape(r['batch_id'])}</code>",
            escape(r["status"]),
            escape(r["requested_by"]),
            fmt(r["requested_at"]),
            fmt(r["approved_by"]),
            fmt(r["approved_at"]),
        ]
        for r in d.requests
    ]
    return (
        '<section id="exports"><h2>Exports</h2>'
        + table(
            ["when", "export", "batch", "file", "format", "records", "sha256", "by", "four-eyes", "audit seq"], rows
        )
        + "<h3>Export requests (four-eyes)</h3>"
        + table(["request", "batch", "status", "requested by", "at", "approved by", "at"], reqs)
        + "</section>"
    )


def activity_section(d: ReportData) -> str:
    who = [[escape(a), fmt(n)] for a, n in d.actors.most_common()]
    rows = [
        [
            fmt(e["seq"]),
            fmt(e["ts"]),
            escape(e["actor"]),
            escape(e["kind"]),
            fmt(e["dataset"]),
            fmt(e["batch_id"]),
            short(e["hash"]),
        ]
        for e in reversed(d.activity)
    ]
    return (
        '<section id="activity"><h2>Who did what, and when</h2>'
        + table(["actor", "events"], who)
        + f'<p class="muted">Newest {len(d.activity)} events first.</p>'
        + table(["seq", "time (UTC)", "actor", "event", "dataset", "batch", "hash"], rows)
        + "</section>"
    )


def summary_section(d: ReportData) -> str:
    refused = sum(1 for g in d.gate if not g["passed"])
    cards = [
        ("audit chain", "intact" if d.chain["ok"] else "BROKEN"),
        ("datasets", len(d.datasets)),
        ("training runs", len(d.runs)),
        ("exports", len(d.exports)),
        ("gate refusals", refused),
        ("probe runs", len(d.probes)),
        ("gate", "on" if d.thresholds["gate_enabled"] else "OFF"),
        ("four-eyes", "required (two distinct actor names)" if d.thresholds["approval_required"] else "not required"),
    ]
    return (
        '<div class="summary">'
        + "".join(f'<div class="card">{escape(k)}<b>{fmt(val)}</b></div>' for k, val in cards)
        + "</div>"
    )
