"""Evaluation stage: how close, how diverse and how useful a curated batch is.

MAUVE against the holdout split (or a reference file) on local MiniLM features, distinct-n, self-BLEU,
mean pairwise embedding distance, length statistics, and train-on-synthetic/test-on-real for labeled
datasets. The metric functions in :mod:`appliance.evaluate.metrics` and :mod:`appliance.evaluate.tstr`
are pure; :func:`evaluate_batch` reads the database, stores one ``evaluations`` row and audits it.

    from appliance.evaluate import evaluate_batch
    report = evaluate_batch(ctx, "b-…", reference="holdout")
"""

from appliance.evaluate.embed import Embedder, MiniLmEmbedder, default_embedder
from appliance.evaluate.run import EvaluationReport, evaluate_batch, latest_evaluation

__all__ = ["Embedder", "EvaluationReport", "MiniLmEmbedder", "default_embedder", "evaluate_batch", "latest_evaluation"]
