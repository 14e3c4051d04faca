"""Generation stage: local LLM sampling with soft-prompt injection, batched decoding and resumable batches.

Nothing generated is stored before it has passed the same PII engine and policy as the seeds.
Only :mod:`appliance.generate.llama` touches ``llama_cpp``.
"""
