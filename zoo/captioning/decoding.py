"""Caption generation inside the graph: batched greedy search and beam search.

Both run one `keras.ops.while_loop` over time steps (stopping when every caption has emitted
`<end>` or after `max_length` tokens), batched over images (and beams), with the decoder's
`step(tokens, states)`. With the TensorFlow backend the whole search is wrapped in a
`tf.function` (traced once per model, search kind, beam width, length and penalty; the batch
size may vary); with other backends the same ops run without that wrapper. Token ids come out of
the graph; turning them into strings (`CaptionTokenizer.decode`) is a short Python pass.

Beam search (e.g. Sutskever et al. 2014; Wu et al. 2016 for the length penalty) keeps, per
image, the `beam_width` highest log-probability prefixes. A beam that has emitted `<end>` is
finished: it is extended with padding at zero cost, so it keeps its score and competes with the
live beams. At the end the best beam maximises log P / lp(length) with the GNMT penalty
lp = ((5 + length) / 6) ** length_penalty (length_penalty = 0: plain log-probability). With
`beam_width=1` it is greedy search.
"""

import keras
from keras import ops

from layers import log_softmax
from zoo.captioning import text

_NEG_INF = -1e9


def _check_beam_width(beam_width, vocabulary_size):
    if not isinstance(beam_width, int) or isinstance(beam_width, bool) or beam_width < 1:
        raise ValueError(
            f"Argument `beam_width` must be an int >= 1. Received: beam_width={beam_width!r}"
        )
    if beam_width > vocabulary_size:
        raise ValueError(
            f"Argument `beam_width` must be at most the vocabulary size ({vocabulary_size}). "
            f"Received: beam_width={beam_width}"
        )


def _check_max_length(model, max_length):
    max_length = model.max_length + 1 if max_length is None else max_length
    if not isinstance(max_length, int) or isinstance(max_length, bool) or max_length < 1:
        raise ValueError(
            "Argument `max_length` must be a positive int (tokens generated, `<end>` included). "
            f"Received: max_length={max_length!r}"
        )
    return max_length


def _position(step, max_length):
    """One-hot int32 row `[1, max_length]` marking `step`."""
    return ops.cast(ops.equal(ops.arange(max_length), step), "int32")[None]


def _greedy_ids(model, images, max_length):
    decoder = model.caption_decoder
    features = model.image_model(images, training=False)
    states = decoder.initial_state(features)
    batch = ops.shape(images)[0]
    tokens = ops.full((batch,), text.START_ID, dtype="int32")
    output = ops.zeros((batch, max_length), dtype="int32")
    finished = ops.zeros((batch,), dtype="bool")

    def cond(step, tokens, states, output, finished):
        return ops.logical_and(step < max_length, ops.logical_not(ops.all(finished)))

    def body(step, tokens, states, output, finished):
        logits, new_states = decoder.step(tokens, states)
        log_probs = log_softmax(ops.cast(logits, "float32"), axis=-1)
        next_tokens = ops.cast(ops.argmax(log_probs, axis=-1), "int32")
        next_tokens = ops.where(finished, text.PAD_ID, next_tokens)
        output = output + next_tokens[:, None] * _position(step, max_length)
        finished = ops.logical_or(finished, ops.equal(next_tokens, text.END_ID))
        return step + 1, next_tokens, list(new_states), output, finished

    loop = (ops.convert_to_tensor(0, "int32"), tokens, list(states), output, finished)
    return ops.while_loop(cond, body, loop)[3]


def _gather_beams(x, beam_indices):
    """x `[B, K, ...]` reordered along K by `beam_indices` `[B, K]`."""
    index = ops.cast(beam_indices, "int32")
    for _ in range(len(x.shape) - 2):
        index = index[..., None]
    return ops.take_along_axis(x, index, axis=1)


def _beam_ids(model, images, beam_width, length_penalty, max_length, while_loop=ops.while_loop):
    decoder = model.caption_decoder
    vocabulary_size = decoder.vocabulary_size
    batch = ops.shape(images)[0]
    k = beam_width
    features = model.image_model(images, training=False)
    features = ops.repeat(features, k, axis=0)  # row b * k + j: beam j of image b
    states = list(decoder.initial_state(features))
    num_recurrent = decoder.num_recurrent_states

    tokens = ops.full((batch * k,), text.START_ID, dtype="int32")
    first = ops.concatenate([ops.zeros((1,)), ops.full((k - 1,), _NEG_INF)])
    scores = ops.tile(first[None], (batch, 1))  # only beam 0 is live at the start
    finished = ops.zeros((batch, k), dtype="bool")
    lengths = ops.zeros((batch, k), dtype="int32")
    output = ops.zeros((batch, k, max_length), dtype="int32")
    # A finished beam may only add padding, at log-probability 0.
    pad_only = ops.where(ops.equal(ops.arange(vocabulary_size), text.PAD_ID), 0.0, _NEG_INF)

    def cond(step, tokens, states, scores, finished, lengths, output):
        return ops.logical_and(step < max_length, ops.logical_not(ops.all(finished)))

    def body(step, tokens, states, scores, finished, lengths, output):
        logits, new_states = decoder.step(tokens, states)
        log_probs = log_softmax(ops.cast(logits, "float32"), axis=-1)
        log_probs = ops.reshape(log_probs, (batch, k, vocabulary_size))
        log_probs = ops.where(finished[:, :, None], pad_only[None, None], log_probs)
        candidates = ops.reshape(scores[:, :, None] + log_probs, (batch, k * vocabulary_size))
        scores, flat_indices = ops.top_k(candidates, k=k)
        flat_indices = ops.cast(flat_indices, "int32")
        beam_indices = flat_indices // vocabulary_size
        next_tokens = flat_indices % vocabulary_size

        finished = _gather_beams(finished, beam_indices)
        lengths = _gather_beams(lengths, beam_indices) + ops.cast(
            ops.logical_not(finished), "int32"
        )
        output = _gather_beams(output, beam_indices)
        output = output + next_tokens[:, :, None] * _position(step, max_length)[None]
        finished = ops.logical_or(finished, ops.equal(next_tokens, text.END_ID))

        reordered = []
        for i, state in enumerate(new_states):
            if i < num_recurrent:  # the others are per-image constants, equal across beams
                size = state.shape[-1]
                state = ops.reshape(state, (batch, k, size))
                state = ops.reshape(_gather_beams(state, beam_indices), (batch * k, size))
            reordered.append(state)
        return (
            step + 1,
            ops.reshape(next_tokens, (batch * k,)),
            reordered,
            scores,
            finished,
            lengths,
            output,
        )

    loop = (ops.convert_to_tensor(0, "int32"), tokens, states, scores, finished, lengths, output)
    _, _, _, scores, finished, lengths, output = while_loop(cond, body, loop)
    penalty = ops.power((5.0 + ops.cast(lengths, "float32")) / 6.0, length_penalty)
    normalised = scores / penalty
    best = ops.cast(ops.argmax(normalised, axis=1), "int32")[:, None]
    best_ids = ops.take_along_axis(output, best[:, :, None], axis=1)[:, 0]
    best_scores = ops.take_along_axis(normalised, best, axis=1)[:, 0]
    return best_ids, best_scores


def _compiled(model, key, fn):
    """`fn` wrapped in a `tf.function` (TensorFlow backend), cached per model and key."""
    cache = model.__dict__.get("_zoo_search_functions")
    if cache is None:  # set past Keras' attribute tracking: not state, not saved
        cache = {}
        object.__setattr__(model, "_zoo_search_functions", cache)
    if key not in cache:
        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            signature = [tf.TensorSpec((None, *model.image_shape), tf.float32)]
            cache[key] = tf.function(fn, input_signature=signature, autograph=False)
        else:
            cache[key] = fn
    return cache[key]


def greedy_search(model, images, max_length=None):
    """Greedy decoding: at each step the most probable token, batched and in-graph.

    Args:
        model: A `Captioner`.
        images: `[B, H, W, C]` (floats in [0, 1], or uint8 which is scaled by 1/255).
        max_length: Most tokens generated, `<end>` included; default `model.max_length + 1`.

    Returns:
        Token ids `[B, max_length]` (int32): words, then `<end>`, then padding.

    Raises:
        ValueError: if `images` do not fit the model or `max_length` is not a positive int.
    """
    images = model.check_images(images)
    max_length = _check_max_length(model, max_length)
    fn = _compiled(model, ("greedy", max_length), lambda x: _greedy_ids(model, x, max_length))
    return ops.convert_to_numpy(fn(images))


def beam_search(model, images, beam_width=3, length_penalty=0.0, max_length=None):
    """Batched in-graph beam search.

    Args:
        model: A `Captioner`.
        images: `[B, H, W, C]` (floats in [0, 1], or uint8 which is scaled by 1/255).
        beam_width: Beams kept per image (>= 1; 1 gives greedy search).
        length_penalty: alpha of the GNMT length penalty ((5 + |Y|) / 6) ** alpha used to pick
            the final beam; 0 ranks by log-probability, larger values favour longer captions.
        max_length: Most tokens generated, `<end>` included; default `model.max_length + 1`.

    Returns:
        `(ids [B, max_length] int32, scores [B] float32)` as NumPy arrays: the best beam's
        tokens (words, `<end>`, padding) and its length-normalised log-probability.

    Raises:
        ValueError: on a bad `beam_width`, `length_penalty`, `max_length` or image shape.
    """
    _check_beam_width(beam_width, model.caption_decoder.vocabulary_size)
    if isinstance(length_penalty, bool) or not isinstance(length_penalty, (int, float)):
        raise ValueError(
            f"Argument `length_penalty` must be a number. Received: {length_penalty!r}"
        )
    images = model.check_images(images)
    max_length = _check_max_length(model, max_length)
    key = ("beam", beam_width, float(length_penalty), max_length)
    fn = _compiled(
        model, key, lambda x: _beam_ids(model, x, beam_width, float(length_penalty), max_length)
    )
    ids, scores = fn(images)
    return ops.convert_to_numpy(ids), ops.convert_to_numpy(scores)


def _python_loop(cond, body, loop_vars):
    """`while_loop` as a plain Python loop: one eager call per token."""
    while bool(ops.convert_to_numpy(cond(*loop_vars))):
        loop_vars = body(*loop_vars)
    return loop_vars


def eager_beam_search(model, images, beam_width=3, length_penalty=0.0, max_length=None):
    """Reference beam search driven by a plain eager Python loop over tokens.

    The same step as `beam_search`, run op by op without a graph: the peer of the benchmark
    (`benchmarks/beam_search.py`) and a cross-check in the tests.
    """
    _check_beam_width(beam_width, model.caption_decoder.vocabulary_size)
    images = model.check_images(images)
    max_length = _check_max_length(model, max_length)
    ids, scores = _beam_ids(
        model, images, beam_width, float(length_penalty), max_length, while_loop=_python_loop
    )
    return ops.convert_to_numpy(ids), ops.convert_to_numpy(scores)


def load_images(image_paths, image_shape):
    """Image files as a float32 batch `[N, H, W, C]` in [0, 1], resized to `image_shape`."""
    import numpy as np

    height, width, channels = image_shape
    if channels not in (1, 3, 4):
        raise ValueError(f"Images must have 1, 3 or 4 channels. Received: channels={channels}")
    color_mode = {1: "grayscale", 3: "rgb", 4: "rgba"}[channels]
    batch = []
    for path in image_paths:
        image = keras.utils.load_img(path, color_mode=color_mode, target_size=(height, width))
        batch.append(keras.utils.img_to_array(image, dtype="float32") / 255.0)
    return np.stack(batch)


def caption_files(
    model, image_paths, beam_width=3, length_penalty=0.0, max_length=None, batch_size=32
):
    """Captions for image files: what `zoo caption IMAGE...` prints.

    Args:
        model: A `Captioner` or the path of a `.keras` file holding one.
        image_paths: Image file paths (any format Pillow reads); each is resized to the
            model's input size and scaled to [0, 1].
        beam_width: 1 for greedy search, more for beam search.
        length_penalty: See `beam_search`.
        max_length: Most tokens generated; default the model's.
        batch_size: Images per decoding call.

    Returns:
        One caption (string) per path, in order.

    Raises:
        ValueError: if `image_paths` is empty, a file is missing, or the model file does not
            hold a captioner.
    """
    import os

    from zoo.captioning.model import Captioner

    if isinstance(image_paths, (str, os.PathLike)):
        image_paths = [image_paths]
    image_paths = [os.fspath(p) for p in image_paths]
    if not image_paths:
        raise ValueError("Argument `image_paths` must name at least one image. Received: []")
    missing = [p for p in image_paths if not os.path.isfile(p)]
    if missing:
        raise ValueError(f"Argument `image_paths` names missing files: {missing[:5]}")
    if isinstance(model, (str, os.PathLike)):
        model = keras.models.load_model(model)
    if not isinstance(model, Captioner):
        raise ValueError(
            "Argument `model` must be a zoo Captioner or the path of a .keras file holding one. "
            f"Received: {type(model).__name__}"
        )
    captions = []
    for start in range(0, len(image_paths), batch_size):
        images = load_images(image_paths[start : start + batch_size], model.image_shape)
        captions += model.caption(images, beam_width, length_penalty, max_length)
    return captions


def caption_images(image_paths, model, beam_size=3, length_penalty=0.0, max_length=None):
    """`zoo caption IMAGE... --model PATH`: `caption_files` for a model file or a run directory.

    Args:
        image_paths: Image files.
        model: A `Captioner`, a `.keras` file, or a training run directory holding
            `model.keras` (or `best.keras`).
        beam_size: Beam width (1: greedy search).
        length_penalty, max_length: See `beam_search`.

    Returns:
        One caption per image path.

    Raises:
        ValueError: if no model is given or the directory holds no saved model.
    """
    import os

    if model is None:
        raise ValueError(
            "Argument `model` is required: a trained captioner (.keras file or run directory, "
            "e.g. from `zoo train --model show_and_tell`). Received: model=None"
        )
    if isinstance(model, (str, os.PathLike)) and os.path.isdir(model):
        for name in ("model.keras", "best.keras"):
            if os.path.isfile(os.path.join(model, name)):
                model = os.path.join(model, name)
                break
        else:
            raise ValueError(
                f"Argument `model` is a directory without model.keras or best.keras: {model!r}"
            )
    return caption_files(
        model,
        image_paths,
        beam_width=beam_size,
        length_penalty=length_penalty,
        max_length=max_length,
    )
