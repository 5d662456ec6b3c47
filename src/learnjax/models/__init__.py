"""The networks: the Transformer and its heads, LoRA, the sampler."""
