"""`show_and_tell`: a CNN image vector injected into an RNN (Vinyals et al. 2015).

The image goes through the CNN to a vector v. `injection="every_step"` (default) feeds
[x_t, v] to the cell at every step: for the Elman cell h_t = tanh(W_xh x_t + W_hh h_{t-1} +
W_ih v), y_t = W_hy h_t. `injection="first_step"` is the paper's LSTM, which reads the image
embedding W_e v once, as its input at t = -1, then only the words.
"""

from zoo.captioning.captioner import Captioner
from zoo.captioning.decoders import InjectedRNNDecoder
from zoo.captioning.encoder import BUILT_IN_CNN, build_cnn, check_input_shape, vector_encoder
from zoo.registry import Paper, Recipe, register_model
from zoo.text import SHAPES_VOCABULARY, SPECIAL_TOKENS
from zoo.validation import check_int

PAPER = Paper(
    "Vinyals, Toshev, Bengio, Erhan",
    2015,
    "Show and Tell: A Neural Image Caption Generator",
    "https://arxiv.org/abs/1411.4555",
)

RECIPE = Recipe(
    optimizer="adam",
    lr=2e-3,
    reference_batch=64,
    batch_size=64,
    schedule="constant",
    augment=False,
    epochs=8,
    clip_norm=1.0,
    paper_setting="SGD without momentum at a fixed learning rate; dropout and ensembles; early "
    "stopping on BLEU (COCO, Flickr, 512-unit LSTM on a GoogLeNet)",
    adaptation="Adam at a fixed 2e-3 and gradients clipped to norm 1: the paper's plain SGD at a "
    "fixed rate (lr 1.0, clipped) reaches test BLEU-4 0.69 in the 8 CPU epochs of the offline "
    "shapes set, 0.75 in 12, where Adam reaches 0.99",
)

SMALL_CONFIG = {
    "vocabulary": list(SHAPES_VOCABULARY),
    "input_shape": (16, 16, 3),
    "conv_filters": (8, 16),
    "image_units": 32,
    "embedding_dim": 16,
    "units": 32,
    "max_length": 10,
}


def injection_captioner(
    vocabulary=None,
    input_shape=(32, 32, 3),
    cell="lstm",
    injection="every_step",
    encoder=None,
    encoder_weights=None,
    train_encoder=True,
    conv_filters=(32, 64, 64),
    pooling=None,
    image_units=256,
    embedding_dim=128,
    units=256,
    dropout=0.0,
    max_length=16,
    rescale=None,
    name="show_and_tell",
):
    """An image-injected RNN captioner: CNN -> v = ReLU(FC(features)) -> RNN decoder.

    Args:
        vocabulary: Caption words (no special tokens); default `zoo.text.SHAPES_VOCABULARY`.
        input_shape: Image shape `(H, W, C)`.
        cell: "rnn", "lstm" or "gru".
        injection: "every_step" (v at every step) or "first_step" (W_e v at t = -1).
        encoder: The CNN: None (the built-in [CONV-POOL]*n), a zoo or keras.applications
            name, or a `keras.Model` (see `zoo.captioning.encoder.build_cnn`).
        encoder_weights: `weights` of a keras.applications encoder (e.g. "imagenet").
        train_encoder: If False, the CNN is frozen (and runs in inference mode).
        conv_filters: Filters per [CONV-POOL] block of the built-in CNN.
        pooling: Grid -> vector before the FC layer: "flatten", "avg" or "max"; None:
            "flatten" for the built-in CNN, "avg" otherwise.
        image_units: Size of v.
        embedding_dim: Word embedding size.
        units: RNN hidden size.
        dropout: Dropout before the output layer.
        max_length: Most words per caption.
        rescale: Optional `(scale, offset)`: the CNN sees `images * scale + offset`, e.g.
            (2.0, -1.0) for MobileNetV2's [-1, 1] or (255.0, 0.0) for EfficientNet.
        name: Model name.

    Returns:
        A `Captioner`.

    Raises:
        ValueError: on an unknown cell, injection, pooling or encoder, a bad size or shape.
    """
    input_shape = check_input_shape(input_shape)
    vocabulary = list(SHAPES_VOCABULARY if vocabulary is None else vocabulary)
    built_in = encoder is None or encoder == BUILT_IN_CNN
    cnn = build_cnn(encoder, input_shape, conv_filters, encoder_weights)
    image_model = vector_encoder(
        cnn,
        input_shape,
        check_int("image_units", image_units),
        pooling=pooling or ("flatten" if built_in else "avg"),
        train_encoder=train_encoder,
        rescale=rescale,
    )
    decoder = InjectedRNNDecoder(
        len(vocabulary) + len(SPECIAL_TOKENS),
        image_units,
        cell=cell,
        embedding_dim=embedding_dim,
        units=units,
        dropout=dropout,
        injection=injection,
        name="decoder",
    )
    return Captioner(image_model, decoder, vocabulary, max_length, name=name)


@register_model(
    task="image-captioning",
    paper=PAPER,
    summary="CNN -> FC image vector injected into an RNN (rnn/LSTM/GRU) at every step",
    default_input_shape=(32, 32, 3),
    min_input_shape=(8, 8, 3),
    params=982_419,
    small_config=SMALL_CONFIG,
    default_dataset="shapes_captions",
    recipe=RECIPE,
)
def show_and_tell(vocabulary=None, input_shape=(32, 32, 3), **kwargs):
    """Show and Tell captioner of Vinyals et al. 2015; arguments: see `injection_captioner`."""
    return injection_captioner(vocabulary, input_shape, **kwargs)
