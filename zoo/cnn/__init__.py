"""cnn models; each module registers its models on import."""

from zoo.cnn.lenet import lenet5

__all__ = ["lenet5"]
