"""Training steps and loops: pre-training, fine-tuning, instruction tuning."""
