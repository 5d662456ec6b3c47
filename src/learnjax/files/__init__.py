"""Writing files whole: no JAX, nothing else of learnjax."""
