"""Semantic directions of a model (SeFa, gan_core.directions): listing, preview strips, and
the directions a walk animates."""
