"""cnn models; each module registers its models on import."""

from zoo.cnn.lenet import lenet5
from zoo.cnn.resnet import resnet18, resnet34, resnet50, resnet101, resnet152
from zoo.cnn.vgg import vgg11, vgg13, vgg16, vgg19

__all__ = [
    "lenet5",
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "vgg11",
    "vgg13",
    "vgg16",
    "vgg19",
]
