"""The captioning loss: token-level cross-entropy from logits over the real tokens."""

from keras import ops

from zoo.layers import log_softmax


def masked_caption_loss(caption_out, logits, mask):
    """Token-level sparse categorical cross-entropy from logits, averaged over real tokens.

    loss = sum_{b,t} mask_bt * (-log softmax(logits_bt)[caption_out_bt]) / sum_{b,t} mask_bt,
    computed in float32 (Keras' `SparseCategoricalCrossentropy(from_logits=True,
    reduction="mean_with_sample_weight")` with `sample_weight=mask` gives the same number).

    Args:
        caption_out: Integer targets `[B, T]`.
        logits: `[B, T, V]`.
        mask: `[B, T]`, 1 on real tokens, 0 on padding.

    Returns:
        A scalar (0 when the mask is all zeros).
    """
    log_probs = log_softmax(ops.cast(logits, "float32"), axis=-1)
    targets = ops.cast(caption_out, "int32")
    picked = ops.take_along_axis(log_probs, targets[..., None], axis=-1)[..., 0]
    mask = ops.cast(mask, "float32")
    return -ops.sum(picked * mask) / ops.maximum(ops.sum(mask), 1.0)
