"""Text to tokens and back: tokenizers and their saved form (no JAX)."""
