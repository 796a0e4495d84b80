"""Per-notebook settings of the quick and full profiles (JSON, one file a notebook)."""
