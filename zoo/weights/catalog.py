"""Every set of pretrained weights the zoo knows: model name -> {"imagenet": WeightsEntry}.

One table, so that the URLs, hashes, licences and published accuracies can be reviewed in one
place; the registry reads it (`zoo.model_info(name).weights`). Sources:

- torchvision 0.29 (`torchvision/models/{vgg,resnet,alexnet,googlenet}.py`, the `*_Weights`
  enums: `url`, `transforms`, `_metrics["ImageNet-1K"]["acc@1"]`). The 8 hex digits after the
  last "-" of each file name are the first digits of the file's sha256 (torch.hub's
  `check_hash` compares exactly that prefix), so `hash_is_prefix=True`.
- keras.applications 3 (`keras/src/applications/{vgg16,vgg19,resnet}.py`: URLs and md5
  hashes) with the top-1 of keras.io's "Available models" table.
"""

import dataclasses

from zoo.weights.entries import (
    CAFFE_PREPROCESSING,
    TORCHVISION_PREPROCESSING,
    Preprocessing,
    WeightsEntry,
)

TORCHVISION_BASE = "https://download.pytorch.org/models/"
TORCHVISION_LICENSE = (
    "torchvision code BSD-3-Clause; torchvision's README: \"The pre-trained models provided "
    "in this library may have their own licenses or terms and conditions derived from the "
    "dataset used for training\" (ImageNet: non-commercial research and education)"
)
KERAS_BASE = "https://storage.googleapis.com/tensorflow/keras-applications/"
KERAS_TOP1 = "keras.io/api/applications, Available models table (single 224 centre crop)"
KERAS_LICENSE = {
    "vgg": (
        "keras.applications code Apache-2.0; weights ported from the VGG authors' Caffe "
        "models (Creative Commons Attribution 4.0), trained on ImageNet (non-commercial "
        "research and education)"
    ),
    "resnet": (
        "keras.applications code Apache-2.0; weights ported from Kaiming He's Caffe models "
        "(deep-residual-networks, MIT), trained on ImageNet (non-commercial research and "
        "education)"
    ),
}


def _torchvision(file_name, enum, top1):
    return WeightsEntry(
        source="torchvision",
        url=TORCHVISION_BASE + file_name,
        file_name=file_name,
        file_hash=file_name.rsplit("-", 1)[1].split(".")[0],
        hash_is_prefix=True,
        license=TORCHVISION_LICENSE,
        preprocessing=TORCHVISION_PREPROCESSING,
        top1=top1,
        top1_reference=f"torchvision {enum}.IMAGENET1K_V1 meta acc@1",
        source_name=f"{enum}.IMAGENET1K_V1",
    )


def _keras(folder, stem, hashes, top1, family, constructor):
    file_name = f"{stem}_weights_tf_dim_ordering_tf_kernels.h5"
    return WeightsEntry(
        source="keras.applications",
        url=f"{KERAS_BASE}{folder}/{file_name}",
        file_name=file_name,
        file_hash=hashes[0],
        hash_algorithm="md5",
        license=KERAS_LICENSE[family],
        preprocessing=CAFFE_PREPROCESSING,
        top1=top1,
        top1_reference=KERAS_TOP1,
        source_name=f"{constructor}(weights='imagenet')",
        url_without_top=f"{KERAS_BASE}{folder}/{file_name[:-3]}_notop.h5",
        file_hash_without_top=hashes[1],
    )


IMAGENET = {
    "vgg11": _torchvision("vgg11-8a719046.pth", "VGG11_Weights", 69.020),
    "vgg13": _torchvision("vgg13-19584684.pth", "VGG13_Weights", 69.928),
    "vgg16": _keras(
        "vgg16", "vgg16", ("64373286793e3c8b2b4e3219cbf3544b", "6d6bbae143d832006294945121d1f1fc"),
        71.3, "vgg", "VGG16",
    ),
    "vgg19": _keras(
        "vgg19", "vgg19", ("cbe5617147190e668d6c5d5026f83318", "253f8cb515780f3b799900260a226db6"),
        71.3, "vgg", "VGG19",
    ),
    "vgg11_bn": _torchvision("vgg11_bn-6002323d.pth", "VGG11_BN_Weights", 70.370),
    "vgg13_bn": _torchvision("vgg13_bn-abd245e5.pth", "VGG13_BN_Weights", 71.586),
    "vgg16_bn": _torchvision("vgg16_bn-6c64b313.pth", "VGG16_BN_Weights", 73.360),
    "vgg19_bn": _torchvision("vgg19_bn-c79401a0.pth", "VGG19_BN_Weights", 74.218),
    "resnet18": _torchvision("resnet18-f37072fd.pth", "ResNet18_Weights", 69.758),
    "resnet34": _torchvision("resnet34-b627a593.pth", "ResNet34_Weights", 73.314),
    "resnet50": _keras(
        "resnet", "resnet50",
        ("2cb95161c43110f7111970584f804107", "4d473c1dd8becc155b73f8504c6f6626"),
        74.9, "resnet", "ResNet50",
    ),
    "resnet101": _keras(
        "resnet", "resnet101",
        ("f1aeb4b969a6efcfb50fad2f0c20cfc5", "88cf7a10940856eca736dc7b7e228a21"),
        76.4, "resnet", "ResNet101",
    ),
    "resnet152": _keras(
        "resnet", "resnet152",
        ("100835be76be38e30d865e96f2aaae62", "ee4c566cf9a93f14d82f913c2dc6dd0c"),
        76.6, "resnet", "ResNet152",
    ),
    # torchvision's IMAGENET1K_V1 (its IMAGENET1K_V2, 80.9-82.3% top-1, needs resize 232).
    "resnet50_v1_5": _torchvision("resnet50-0676ba61.pth", "ResNet50_Weights", 76.130),
    "resnet101_v1_5": _torchvision("resnet101-63fe2227.pth", "ResNet101_Weights", 77.374),
    "resnet152_v1_5": _torchvision("resnet152-394f9c45.pth", "ResNet152_Weights", 78.312),
    "alexnet_owt": _torchvision("alexnet-owt-7be5be79.pth", "AlexNet_Weights", 56.522),
    "googlenet_bn": _torchvision("googlenet-1378be20.pth", "GoogLeNet_Weights", 69.778),
}

# torchvision's GoogLeNet weights were ported from a model that took [-1, 1] inputs: with
# `transform_input=True` (set whenever they are loaded) torchvision maps ImageNet-normalised
# images x to x * std / 0.5 + (mean - 0.5) / 0.5, which is (pixel - 0.5) / 0.5. The zoo model
# has no such layer; its preprocessing is that normalisation directly.
IMAGENET["googlenet_bn"] = dataclasses.replace(
    IMAGENET["googlenet_bn"],
    preprocessing=Preprocessing(resize=256, crop=224, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)),
)

# The models whose weights come from keras.applications' constructor of the same architecture.
KERAS_APPLICATIONS = {
    name: entry.source_name.split("(")[0]
    for name, entry in IMAGENET.items()
    if entry.source == "keras.applications"
}


def weights_of(model_name):
    """{"imagenet": WeightsEntry} for a model with ImageNet weights, else {}."""
    entry = IMAGENET.get(model_name)
    return {"imagenet": entry} if entry is not None else {}
