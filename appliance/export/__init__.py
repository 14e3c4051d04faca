"""Export stage: atomic files, signed manifests anchoring the audit head, and their verification."""
