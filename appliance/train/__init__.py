"""Train stage: differentially private soft prompts (SoftSRV-style) on the generator's own model.

Only a soft prompt of k virtual-token embeddings is trained, with DP-SGD (Opacus: Poisson sampling,
per-sample clipping, Gaussian noise), on the redacted *train* split; the GGUF model llama.cpp runs is loaded
into torch frozen. Generation conditioned only on the prompt inherits its (ε, δ) guarantee by
post-processing, so seed text never enters a generation prompt. Every DP run is charged to the dataset's
privacy budget (:mod:`appliance.budget`) before it starts.
"""
