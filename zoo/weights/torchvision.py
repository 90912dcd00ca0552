"""torchvision state dicts -> zoo models: an explicit name map per family plus layout hooks.

Each family's map lists `(kind, torch_prefix, zoo_layer)` rows; the kinds are the layout hooks:

- "conv": kernel (out, in, height, width) -> (height, width, in, out); bias as is.
- "bn": weight, bias, running_mean, running_var -> gamma, beta, moving_mean,
  moving_variance (`num_batches_tracked` is training bookkeeping and is dropped).
- "dense": weight (out, in) -> kernel (in, out), i.e. `.T`.
- "flatten_dense": the first fully connected layer after a flatten: torch flattens a
  (channels, height, width) map, Keras a (height, width, channels) one, so the input rows are
  permuted from NCHW to NHWC order before the transpose.

Every tensor of the file must be used (aux classifiers excepted, see googlenet_bn) and every
weighted layer of the model assigned, with matching shapes; otherwise a one-line ValueError
names what did not fit and nothing is half-loaded silently.
"""


from zoo.weights import catalog, download, torch_files

DENSE_KINDS = ("dense", "flatten_dense")
VGG_CONVS = {  # convolutions per block, the VGG paper's configurations A, B, D, E
    "vgg11": (1, 1, 2, 2, 2),
    "vgg13": (2, 2, 2, 2, 2),
    "vgg16": (2, 2, 3, 3, 3),
    "vgg19": (2, 2, 4, 4, 4),
}
RESNET_BLOCKS = {  # (block, repeats per stage)
    "resnet18": ("basic", (2, 2, 2, 2)),
    "resnet34": ("basic", (3, 4, 6, 3)),
    "resnet50_v1_5": ("bottleneck", (3, 4, 6, 3)),
    "resnet101_v1_5": ("bottleneck", (3, 4, 23, 3)),
    "resnet152_v1_5": ("bottleneck", (3, 8, 36, 3)),
}
GOOGLENET_MODULES = ("3a", "3b", "4a", "4b", "4c", "4d", "4e", "5a", "5b")


def vgg_map(model_name):
    """torchvision's `features.{i}` Sequential indices -> `block{b}_conv{j}` (+ `_bn`)."""
    batch_norm = model_name.endswith("_bn")
    rows, index = [], 0
    for block, convs in enumerate(VGG_CONVS[model_name.removesuffix("_bn")], 1):
        for conv in range(1, convs + 1):
            name = f"block{block}_conv{conv}"
            rows.append(("conv", f"features.{index}", name))
            if batch_norm:
                rows.append(("bn", f"features.{index + 1}", f"{name}_bn"))
            index += 3 if batch_norm else 2  # conv, [bn,] relu
        index += 1  # max pool
    rows += [
        ("flatten_dense", "classifier.0", "fc1", (512, 7, 7)),
        ("dense", "classifier.3", "fc2"),
        ("dense", "classifier.6", "logits"),
    ]
    return rows


def resnet_map(model_name):
    """torchvision's `layer{s}.{b}.conv{i}` -> `conv{s+1}_block{b+1}_{i}_conv` (Keras' names)."""
    block, repeats = RESNET_BLOCKS[model_name]
    convs = 2 if block == "basic" else 3
    rows = [("conv", "conv1", "conv1_conv"), ("bn", "bn1", "conv1_bn")]
    for stage, count in enumerate(repeats, 1):
        for index in range(count):
            torch_block = f"layer{stage}.{index}"
            zoo_block = f"conv{stage + 1}_block{index + 1}"
            # torchvision projects where the shape changes: every first bottleneck block,
            # the first basic block of stages 2-4.
            if index == 0 and (block == "bottleneck" or stage > 1):
                rows.append(("conv", f"{torch_block}.downsample.0", f"{zoo_block}_0_conv"))
                rows.append(("bn", f"{torch_block}.downsample.1", f"{zoo_block}_0_bn"))
            for conv in range(1, convs + 1):
                rows.append(("conv", f"{torch_block}.conv{conv}", f"{zoo_block}_{conv}_conv"))
                rows.append(("bn", f"{torch_block}.bn{conv}", f"{zoo_block}_{conv}_bn"))
    rows.append(("dense", "fc", "logits"))
    return rows


def alexnet_owt_map(model_name):
    """torchvision's AlexNet: `features.{0,3,6,8,10}` and `classifier.{1,4,6}`."""
    rows = [
        ("conv", f"features.{index}", f"conv{number}")
        for number, index in enumerate((0, 3, 6, 8, 10), 1)
    ]
    return rows + [
        ("flatten_dense", "classifier.1", "fc6", (256, 6, 6)),
        ("dense", "classifier.4", "fc7"),
        ("dense", "classifier.6", "logits"),
    ]


def googlenet_bn_map(model_name):
    """torchvision's GoogLeNet: every BasicConv2d `X.conv`/`X.bn` -> `name`/`name_bn`."""
    pairs = [("conv1", "conv1"), ("conv2", "conv2_reduce"), ("conv3", "conv2")]
    branches = [
        ("branch1", "branch1"),
        ("branch2.0", "branch2_reduce"),
        ("branch2.1", "branch2"),
        ("branch3.0", "branch3_reduce"),
        ("branch3.1", "branch3"),
        ("branch4.1", "pool_proj"),
    ]
    for module in GOOGLENET_MODULES:
        pairs += [(f"inception{module}.{t}", f"inception_{module}_{z}") for t, z in branches]
    rows = []
    for torch_name, zoo_name in pairs:
        rows.append(("conv", f"{torch_name}.conv", zoo_name))
        rows.append(("bn", f"{torch_name}.bn", f"{zoo_name}_bn"))
    return rows + [("dense", "fc", "logits")]


def name_map(model_name):
    """The `(kind, torch_prefix, zoo_layer[, (c, h, w)])` rows of a model with torchvision
    weights."""
    if model_name.startswith("vgg"):
        return vgg_map(model_name)
    if model_name.startswith("resnet"):
        return resnet_map(model_name)
    if model_name == "alexnet_owt":
        return alexnet_owt_map(model_name)
    if model_name == "googlenet_bn":
        return googlenet_bn_map(model_name)
    raise ValueError(f"No torchvision converter for {model_name!r}")


# Tensors of the file the zoo model does not hold: GoogLeNet's training-time side classifiers
# (torchvision's inference graph ignores them) and batch norm's update counters.
def _ignored(key):
    return key.startswith(("aux1.", "aux2.")) or key.endswith("num_batches_tracked")


def _layout(kind, name, state, shape_chw=None):
    """The Keras arrays of one layer, in `layer.weights` order."""
    if kind == "bn":
        return [state[f"{name}.{k}"] for k in ("weight", "bias", "running_mean", "running_var")]
    weight = state[f"{name}.weight"]
    if kind == "conv":
        kernel = weight.transpose(2, 3, 1, 0)
    elif kind == "dense":
        kernel = weight.T
    else:  # flatten_dense: rows in (c, h, w) order -> (h, w, c) order
        channels, height, width = shape_chw
        kernel = (
            weight.reshape(weight.shape[0], channels, height, width)
            .transpose(2, 3, 1, 0)
            .reshape(height * width * channels, weight.shape[0])
        )
    bias = state.get(f"{name}.bias")
    return [kernel] if bias is None else [kernel, bias]


def convert(model, model_name, state, include_top=True):
    """Assign a torchvision state dict to a built zoo model.

    Args:
        model: The zoo model (`zoo.create_model(model_name, ...)`).
        model_name: Its registry name, which selects the name map.
        state: name -> NumPy array (`zoo.weights.torch_files.load_state_dict`).
        include_top: False: the classifier's tensors are not assigned (the model has none).

    Returns:
        The model.

    Raises:
        ValueError: one line, if a tensor or layer is missing or a shape does not fit.
    """
    used, assigned = set(), set()
    for kind, prefix, layer_name, *extra in name_map(model_name):
        keys = {k for k in state if k.startswith(prefix + ".")} - {
            k for k in state if _ignored(k)
        }
        if not keys:
            raise ValueError(f"The {model_name} weights file has no tensors {prefix}.*")
        used |= keys
        if kind in DENSE_KINDS and not include_top:
            continue
        try:
            layer = model.get_layer(layer_name)
        except ValueError:
            raise ValueError(
                f"{model.name} has no layer {layer_name!r} for torchvision's {prefix}"
            ) from None
        arrays = _layout(kind, prefix, state, *extra)
        targets = layer.weights
        shapes = [tuple(v.shape) for v in targets]
        if shapes != [a.shape for a in arrays]:
            raise ValueError(
                f"torchvision's {prefix} ({[a.shape for a in arrays]}) does not fit layer "
                f"{layer_name!r} of {model.name} ({shapes})"
            )
        for variable, array in zip(targets, arrays):
            variable.assign(array.astype(variable.dtype))
        assigned.add(layer_name)
    unused = sorted(k for k in state if k not in used and not _ignored(k))
    if unused:
        raise ValueError(f"The {model_name} weights file has tensors no layer takes: {unused[:5]}")
    missed = [layer.name for layer in model.layers if layer.weights and layer.name not in assigned]
    if missed:
        raise ValueError(f"torchvision's {model_name} weights leave layers unset: {missed[:5]}")
    return model


def load(model, model_name, include_top=True, path=None):
    """Load torchvision's ImageNet weights into a zoo model: file (downloaded into the Keras
    cache and verified unless `path` is given) -> `torch_files` reader -> `convert`."""
    if path is None:
        path = download.fetch_entry(catalog.IMAGENET[model_name])
    return convert(model, model_name, torch_files.load_state_dict(path), include_top)
