"""Model registry: pinned GGUF files, fetched by `make models`, verified before every load."""

from appliance.models.registry import ModelSpec, get_spec, load_registry, sha256_file, verified_path

__all__ = ["ModelSpec", "get_spec", "load_registry", "sha256_file", "verified_path"]
