"""Curation, QLoRA training, the evaluation gate and promotion (to come)."""
