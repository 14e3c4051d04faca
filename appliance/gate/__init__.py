"""Gate stage: decides whether a batch may leave the appliance (DP, budget, probes, PII, leaks, quality)."""
