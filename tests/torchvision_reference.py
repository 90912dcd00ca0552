"""Reference outputs of torchvision's own models, for tests/test_weights_torchvision.py.

Run as a separate process (`python tests/torchvision_reference.py OUT_DIR`): importing
torchvision after TensorFlow crashes the interpreter (a native library clash), and the test
process has TensorFlow. For each case it builds torchvision's model with seeded random
weights (batch norm's affine parameters and running statistics randomised too), switches it
to eval mode, saves its state dict with the real `torch.save` to OUT_DIR/NAME.pth, and saves
random [0, 1] RGB images (NHWC) and the model's outputs on them, normalised as torchvision's
transforms do, to OUT_DIR/NAME.npz.

Cases: (zoo name, torchvision constructor, its kwargs, input sizes, what is compared):
"logits" runs the whole model; "features" runs `model.features` (VGG), whose classifier
is first replaced by one of the same layer indices but 4 units wide, so that the file stays
small (the zoo model is then built with include_top=False and does not read it).
"""

import json
import os
import sys

import numpy as np
import torch
import torchvision

MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)
IMAGES = 2

CASES = [
    ("vgg11", "vgg11", {}, [224], "logits"),
    ("vgg13", "vgg13", {}, [32], "features"),
    ("vgg11_bn", "vgg11_bn", {}, [32], "features"),
    ("vgg13_bn", "vgg13_bn", {}, [32], "features"),
    ("vgg16_bn", "vgg16_bn", {}, [32], "features"),
    ("vgg19_bn", "vgg19_bn", {}, [32], "features"),
    ("resnet18", "resnet18", {}, [32], "logits"),
    ("resnet34", "resnet34", {}, [45], "logits"),
    ("resnet50_v1_5", "resnet50", {}, [32], "logits"),
    ("resnet101_v1_5", "resnet101", {}, [32], "logits"),
    ("resnet152_v1_5", "resnet152", {}, [32], "logits"),
    ("alexnet_owt", "alexnet", {}, [224, 100], "logits"),
    # As torchvision builds it for its weights: aux heads in the file, transform_input on.
    ("googlenet_bn", "googlenet", {"aux_logits": True, "transform_input": True,
                                   "init_weights": False}, [75], "logits"),
]


def randomise(model, generator):
    """Random weights everywhere, incl. batch norm's running statistics (torchvision's init
    leaves gamma 1, beta 0, mean 0, variance 1, which would hide a swapped mapping)."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5, generator=generator)
                module.bias.normal_(0.0, 0.2, generator=generator)
                module.running_mean.normal_(0.0, 0.2, generator=generator)
                module.running_var.uniform_(0.5, 2.0, generator=generator)
            elif isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):
                fan_in = module.weight[0].numel()
                module.weight.normal_(0.0, (2.0 / fan_in) ** 0.5, generator=generator)
                if module.bias is not None:
                    module.bias.normal_(0.0, 0.1, generator=generator)


def shrink_classifier(model):
    """VGG's classifier with the same Sequential indices (0, 3, 6) but 4 units wide."""
    nn = torch.nn
    model.classifier = nn.Sequential(
        nn.Linear(512 * 7 * 7, 4), nn.ReLU(), nn.Dropout(), nn.Linear(4, 4), nn.ReLU(),
        nn.Dropout(), nn.Linear(4, 1000),
    )


def main(out_dir, names=None):
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    done = {}
    for index, (name, constructor, kwargs, sizes, compare) in enumerate(CASES):
        if names and name not in names:
            continue
        torch.manual_seed(index)
        model = getattr(torchvision.models, constructor)(weights=None, **kwargs)
        if compare == "features":
            shrink_classifier(model)
        randomise(model, torch.Generator().manual_seed(index))
        model.eval()
        torch.save(model.state_dict(), os.path.join(out_dir, f"{name}.pth"))
        arrays = {}
        rng = np.random.default_rng(index)
        for size in sizes:
            images = rng.uniform(0.0, 1.0, (IMAGES, size, size, 3)).astype(np.float32)
            normalised = torch.from_numpy(((images - MEAN) / STD).transpose(0, 3, 1, 2).copy())
            with torch.no_grad():
                output = model.features(normalised) if compare == "features" else model(normalised)
            output = output.numpy()
            if output.ndim == 4:
                output = output.transpose(0, 2, 3, 1)  # NCHW -> NHWC
            arrays[f"images_{size}"] = images
            arrays[f"outputs_{size}"] = output
        np.savez(os.path.join(out_dir, f"{name}.npz"), **arrays)
        done[name] = {"sizes": sizes, "compare": compare}
        del model
    # torchvision's published parameter counts of the models that serve the weights.
    counts = {
        name: torchvision.models.get_model_weights(constructor).IMAGENET1K_V1.meta["num_params"]
        for name, constructor, *_ in CASES
    }
    with open(os.path.join(out_dir, "cases.json"), "w") as file:
        json.dump({"cases": done, "parameters": counts}, file)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
