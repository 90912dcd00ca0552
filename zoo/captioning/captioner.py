"""The `Captioner`: an image encoder, a caption decoder and a tokenizer in one Keras model.

Training: `model([images, caption_in])` gives logits `[B, T, V]` (teacher forcing), the loss is
`masked_caption_loss`. Generation: the decoder's `step` is the `next(tokens, state)` function
of `zoo.samplers`, so greedy search, beam search and sampling are the shared samplers run
in-graph over a batch of images (`generate`, `greedy`, `beam_search`, `caption`).
"""

import keras
import numpy as np
from keras import ops

from zoo import samplers
from zoo.text import END_ID, PAD_ID, SHAPES_VOCABULARY, START_ID, CaptionTokenizer
from zoo.validation import check_int, check_number

# Never generated: padding, and `<start>` (only ever an input).
MASKED_IDS = (PAD_ID, START_ID)


@keras.saving.register_keras_serializable(package="zoo")
class Captioner(keras.Model):
    """Image encoder + caption decoder + tokenizer, saved together in one `.keras` file.

    Inputs `[images [B, H, W, C] float, caption_in [B, T] int]`, output logits `[B, T, V]`.
    Images are floats in [0, 1] (the zoo's loaders give that); uint8 images passed to the
    generation methods are scaled by 1/255. Build one with `zoo.show_and_tell` or
    `zoo.show_attend_tell`, or from your own parts.

    Penalties the decoder adds with `add_loss` (the attention penalty) are SUMS over the
    batch (`add_loss_reduction = "sum"`): the zoo's trainer divides them by the global number
    of real tokens, like the loss; under `model.fit`, `compute_loss` divides them by the
    batch's number of real tokens (the `sample_weight` mask).

    Args:
        encoder: A `keras.Model` from images `(H, W, C)` to what the decoder reads: an image
            vector `[B, D]` or annotations `[B, L, D]` (`zoo.captioning.encoder`).
        decoder: A caption decoder (`InjectedRNNDecoder` or `SoftAttentionDecoder`) whose
            vocabulary size is the tokenizer's.
        vocabulary: Caption words (no special tokens); default: the synthetic coloured-shapes
            vocabulary (`zoo.text.SHAPES_VOCABULARY`).
        max_length: Most words per caption (tokenizer truncation and default generation
            length, which adds one token for `<end>`).
        name: Model name.

    Raises:
        TypeError: if `encoder` or `decoder` is not the right kind of object.
        ValueError: if the encoder's output does not fit the decoder, or the vocabulary sizes
            differ.
    """

    add_loss_reduction = "sum"

    def __init__(self, encoder, decoder, vocabulary=None, max_length=16, name="captioner",
                 **kwargs):
        if not isinstance(encoder, keras.Model):
            raise TypeError(
                "Argument `encoder` must be a keras.Model from images to features. "
                f"Received: encoder of type {type(encoder).__name__}"
            )
        if not all(hasattr(decoder, a) for a in ("step", "initial_state", "features_rank")):
            raise TypeError(
                "Argument `decoder` must be a caption decoder (InjectedRNNDecoder or "
                f"SoftAttentionDecoder). Received: decoder of type {type(decoder).__name__}"
            )
        vocabulary = list(SHAPES_VOCABULARY if vocabulary is None else vocabulary)
        tokenizer = CaptionTokenizer(vocabulary, max_length=max_length, name="tokenizer")
        if decoder.vocabulary_size != tokenizer.vocabulary_size:
            raise ValueError(
                f"The decoder predicts {decoder.vocabulary_size} tokens but the vocabulary has "
                f"{tokenizer.vocabulary_size} (its {len(vocabulary)} words and 4 special tokens)."
                " Build the decoder with vocabulary_size=len(vocabulary) + 4."
            )
        features_shape = encoder.output.shape
        if len(features_shape) != decoder.features_rank:
            wanted = {2: "an image vector [B, D]", 3: "annotations [B, L, D]"}
            raise ValueError(
                f"The decoder {type(decoder).__name__} reads {wanted[decoder.features_rank]}; "
                f"the encoder gives shape {features_shape}."
            )
        images = keras.Input(shape=encoder.input_shape[1:], name="images")
        caption_in = keras.Input(shape=(None,), dtype="int32", name="caption_in")
        logits = decoder(encoder(images), caption_in)
        super().__init__(inputs=[images, caption_in], outputs=logits, name=name, **kwargs)
        self.encoder = encoder
        self.decoder = decoder
        self.tokenizer = tokenizer
        self.image_shape = tuple(encoder.input_shape[1:])
        self.max_length = tokenizer.max_length

    @property
    def vocabulary(self):
        """All tokens, id order: pad, unknown, start, end, then the words."""
        return list(self.tokenizer.tokens)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "encoder": keras.saving.serialize_keras_object(self.encoder),
                "decoder": keras.saving.serialize_keras_object(self.decoder),
                "vocabulary": list(self.tokenizer.words),
                "max_length": self.max_length,
            }
        )
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        for part in ("encoder", "decoder"):
            config[part] = keras.saving.deserialize_keras_object(
                config[part], custom_objects=custom_objects
            )
        return cls(**config)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """Keras' loss (for `fit`), with the summed penalties divided by the batch's tokens."""
        total = super().compute_loss(x, y, y_pred, sample_weight, training=training)
        if not self.losses:
            return total
        penalty = ops.sum([ops.cast(ops.sum(loss), "float32") for loss in self.losses])
        if sample_weight is not None:
            tokens = ops.maximum(ops.sum(ops.cast(sample_weight, "float32")), 1.0)
        else:
            tokens = ops.cast(ops.size(y), "float32")
        return total - penalty + penalty / tokens

    # ------------------------------------------------------------------ generation
    def check_images(self, images):
        """Images as a float32 tensor `[B, H, W, C]`; ValueError if the shape does not fit."""
        images = ops.convert_to_tensor(images)
        shape = tuple(images.shape)
        if len(shape) == 3:
            images, shape = images[None], (1, *shape)
        if len(shape) != 4 or tuple(shape[1:]) != tuple(self.image_shape):
            raise ValueError(
                f"Argument `images` must have shape (batch, {', '.join(map(str, self.image_shape))})"
                f" (height, width, channels of this model). Received: images.shape={shape}"
            )
        if "float" not in keras.backend.standardize_dtype(images.dtype):
            images = ops.cast(images, "float32") / 255.0
        return ops.cast(images, "float32")

    def _generation_length(self, max_length):
        if max_length is None:
            return self.max_length + 1
        return check_int("max_length", max_length)

    def generate_ids(self, images, sampler="greedy", max_length=None):
        """Token ids of generated captions, in-graph and batched.

        Args:
            images: `[B, H, W, C]` (floats in [0, 1], or uint8 which is scaled by 1/255).
            sampler: A `zoo.samplers.Sampler` or a name ("greedy", "beam", "random").
            max_length: Most tokens generated, `<end>` included; default `max_length + 1`.

        Returns:
            `(ids [B, max_length] int32, scores [B] float32)` as NumPy arrays: words, `<end>`,
            then padding; scores as the sampler defines them (log-probability, or its
            length-normalised form for beam search).

        Raises:
            ValueError: if `images` do not fit the model or `max_length` is not an int >= 1.
        """
        sampler = samplers.get(sampler)
        images = self.check_images(images)
        max_length = self._generation_length(max_length)
        key = (sampler.cache_key(), max_length)
        fn = samplers.sampler.compiled(self, key, self._generation_fn(sampler, max_length),
                                       self._images_signature, sampler.variables)
        ids, scores = fn(images)
        return np.asarray(ops.convert_to_numpy(ids)), np.asarray(ops.convert_to_numpy(scores))

    def _generation_fn(self, sampler, max_length):
        """`images [B, H, W, C] float32 -> (ids, scores)`: the sampler run from `<start>`."""

        def generate(images):
            features = self.encoder(images, training=False)
            batch = ops.shape(images)[0]
            return sampler(
                self.decoder.step,
                ops.full((batch,), START_ID, dtype="int32"),
                self.decoder.initial_state(features),
                max_length,
                end_id=END_ID,
                pad_id=PAD_ID,
                masked_ids=MASKED_IDS,
            )

        return generate

    def _images_signature(self):
        import tensorflow as tf

        return [tf.TensorSpec((None, *self.image_shape), tf.float32)]

    def export_endpoints(self):
        """Extra SavedModel endpoints for `zoo export`: `caption(images)`, greedy search
        (`(ids [B, max_length + 1] int32, log-probabilities [B])`, ids index `vocabulary`)."""
        greedy = self._generation_fn(samplers.GreedySampler(), self._generation_length(None))
        return {"caption": (greedy, self._images_signature())}

    def generate(self, images, sampler="greedy", max_length=None):
        """Captions (strings) for images `[B, H, W, C]`; see `generate_ids`."""
        ids, _ = self.generate_ids(images, sampler, max_length)
        return self.tokenizer.decode(ids)

    def greedy(self, images, max_length=None):
        """Greedy-search captions (strings)."""
        return self.generate(images, samplers.GreedySampler(), max_length)

    def beam_search(self, images, beam_width=3, length_penalty=0.0, max_length=None):
        """Beam-search captions (strings); see `zoo.samplers.BeamSampler`."""
        sampler = samplers.BeamSampler(beam_width, length_penalty)
        return self.generate(images, sampler, max_length)

    def caption(self, images, beam_width=3, length_penalty=0.0, max_length=None):
        """Captions for images: greedy search if `beam_width == 1`, else beam search."""
        beam_width = check_int("beam_width", beam_width)
        check_number("length_penalty", length_penalty, low=0)
        if beam_width == 1 and length_penalty == 0:
            return self.greedy(images, max_length=max_length)
        return self.beam_search(images, beam_width, length_penalty, max_length)
