"""rnn models; each module registers its models on import."""

__all__ = []
