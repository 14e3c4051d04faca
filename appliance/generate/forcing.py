"""Teacher forcing many continuations of one shared prefix on a multi-sequence llama.cpp context.

The prefix (BOS, soft prompt, context tokens) is decoded once and copied into ``n_par`` sequences of
the KV cache; the continuations then advance in lockstep, one token per live sequence per decode call.
Scoring 200 canary candidates or a few hundred records this way costs a few hundred small decode calls
instead of one full forward pass per text (the way the generator's scheduler shares prefixes).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from appliance.generate.engine import prefix_length
from appliance.generate.jobs import Prefix

if TYPE_CHECKING:
    from appliance.generate.llama import LlamaCppBackend


def _log_softmax_at(logits: np.ndarray, target: int) -> float:
    row = np.asarray(logits, dtype=np.float64)
    m = row.max()
    return float(row[target] - m - np.log(np.exp(row - m).sum()))


def shared_prefix_logprobs(
    backend: LlamaCppBackend, prefix: Prefix, seqs: Sequence[Sequence[int]], *, n_par: int = 16
) -> list[np.ndarray]:
    """For each token list, the log-probability of every token given the prefix and the tokens before it.

    The body of :meth:`LlamaCppBackend.continuation_logprobs`.
    """
    out: list[np.ndarray] = [np.zeros(0) for _ in seqs]
    todo = [i for i, s in enumerate(seqs) if len(s) > 0]
    if not todo:
        return out
    plen = prefix_length(prefix, backend.bos_token_id)
    longest = max(len(seqs[i]) for i in todo)
    n = max(1, min(n_par, len(todo)))
    with backend.session(n_seq=n, n_ctx_seq=plen + longest + 1) as sess:
        first = np.array(sess.prefill(0, prefix), dtype=np.float64)
        for s in range(1, n):
            sess.copy(0, s, plen)
        for c0 in range(0, len(todo), n):
            chunk = [seqs[i] for i in todo[c0 : c0 + n]]
            for s in range(len(chunk)):
                sess.truncate(s, plen)
            lps = [[_log_softmax_at(first, int(c[0]))] for c in chunk]
            for t in range(max(len(c) for c in chunk) - 1):
                live = [s for s, c in enumerate(chunk) if t + 1 < len(c)]
                logits = sess.step(live, [int(chunk[s][t]) for s in live], [plen + t] * len(live))
                for row, s in enumerate(live):
                    lps[s].append(_log_softmax_at(logits[row], int(chunk[s][t + 1])))
            for k, lp in enumerate(lps):
                out[todo[c0 + k]] = np.asarray(lp, dtype=np.float64)
    return out
