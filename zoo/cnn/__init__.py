"""cnn models; each module registers its models on import.

Every model takes keras.applications' arguments (include_top, weights, input_tensor,
input_shape, pooling, classes, classifier_activation, name) plus `activation`, and marks its
stages `stage1`, `stage2`, ... for `features(model, names)`. Families with several variants
(vgg, resnet, alexnet/zfnet) hold a `VARIANTS` table, one private builder that documents the
arguments, and one short public function per variant (timm's idiom).
"""

from zoo.cnn.alexnet import alexnet, zfnet
from zoo.cnn.alexnet_owt import alexnet_owt
from zoo.cnn.features import features, stage_names
from zoo.cnn.googlenet import googlenet
from zoo.cnn.googlenet_bn import googlenet_bn
from zoo.cnn.lenet import lenet5
from zoo.cnn.resnet import (
    resnet18,
    resnet34,
    resnet50,
    resnet50_v1_5,
    resnet101,
    resnet101_v1_5,
    resnet152,
    resnet152_v1_5,
)
from zoo.cnn.vgg import (
    vgg11,
    vgg11_bn,
    vgg13,
    vgg13_bn,
    vgg16,
    vgg16_bn,
    vgg19,
    vgg19_bn,
)

__all__ = [
    "alexnet",
    "alexnet_owt",
    "features",
    "googlenet",
    "googlenet_bn",
    "lenet5",
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet50_v1_5",
    "resnet101",
    "resnet101_v1_5",
    "resnet152",
    "resnet152_v1_5",
    "stage_names",
    "vgg11",
    "vgg11_bn",
    "vgg13",
    "vgg13_bn",
    "vgg16",
    "vgg16_bn",
    "vgg19",
    "vgg19_bn",
    "zfnet",
]
