"""The built-in world, its texts and questions, and the user's files (no JAX)."""
