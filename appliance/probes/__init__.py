"""Probes stage: can an attacker tell who was in the training data? Membership inference on the trained
prompt, canary exposure, and distance to closest record from the synthetic outputs — each reported with
confidence intervals, stored per batch, and read by the export gate."""
