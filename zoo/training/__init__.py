"""Distribution strategy, batch and learning-rate scaling, the training loop."""
