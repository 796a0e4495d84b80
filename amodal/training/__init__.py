"""Training: named recipes and the learning-rate schedule (the trainer itself is still to come)."""
