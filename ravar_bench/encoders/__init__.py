"""Wrappers over the field's backbones and the frozen text encoder. Never imports data or the engine."""
