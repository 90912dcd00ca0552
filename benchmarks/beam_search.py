"""Generation speed: the shared samplers compiled in-graph vs the same samplers run eagerly.

1. Beam search: `show_and_tell` at its default size (32x32 images, LSTM 256), beam width 5,
   32 images, 20 tokens. Ours: `Captioner.generate_ids` (the `BeamSampler` inside one
   `tf.function` with a `while_loop`). Peer: the same sampler and decoder step driven
   eagerly, one Python-level iteration per token. Target: >= 5x faster.
2. Sampling: `char_lm` at its default size (2 LSTM layers of 256), 200 characters at
   temperature 0.8. Ours: `CharLanguageModel.generate` (the `RandomSampler` in-graph). Peer:
   the same sampler run eagerly. Target: >= 5x faster.

Captioning quality (BLEU, CIDEr-D) is `benchmarks/captioning.py`.

    python -m benchmarks beam_search [--quick]
"""

import keras
import numpy as np
from keras import ops

from benchmarks.harness import Result, rotating_medians


def beam_speed(quick=False, beam_width=5, batch_size=32, max_length=20):
    """Median seconds per batch: compiled and eager beam search, and whether they agree."""
    import zoo
    from zoo import samplers, text

    keras.utils.set_random_seed(0)
    model = zoo.show_and_tell()
    images = np.random.default_rng(0).uniform(size=(batch_size, *model.image_shape))
    images = images.astype("float32")
    sampler = samplers.BeamSampler(beam_width)

    def ours():
        return model.generate_ids(images, sampler, max_length=max_length)

    def peer():
        state = model.decoder.initial_state(model.encoder(images, training=False))
        ids, scores = sampler(
            model.decoder.step, ops.full((batch_size,), text.START_ID, "int32"), state,
            max_length, end_id=text.END_ID, masked_ids=(text.PAD_ID, text.START_ID),
        )
        return ops.convert_to_numpy(ids), ops.convert_to_numpy(scores)

    if not np.array_equal(ours()[0], peer()[0]):
        raise AssertionError("compiled and eager beam search disagree")
    times = rotating_medians({"ours": ours, "peer": peer}, rounds=3 if quick else 7)
    return times["ours"], times["peer"]


def sampling_speed(quick=False, length=200, temperature=0.8):
    """Median seconds per text: compiled and eager character sampling."""
    import zoo
    from zoo import samplers
    from zoo.rnn.char_lm import MASKED_IDS

    keras.utils.set_random_seed(0)
    model = zoo.char_lm()
    sampler = samplers.RandomSampler(temperature=temperature, seed=0)
    prompt = model.encode("To be")

    def ours():
        return model.generate("To be", length=length, sampler=sampler)

    def peer():
        _, states = model._features(prompt[None, :-1])
        ids, _ = sampler(model.next_token_logits, ops.convert_to_tensor(prompt[-1:]),
                         [list(s) for s in states], length, masked_ids=MASKED_IDS)
        return model.decode(ops.convert_to_numpy(ids)[0])

    sampler.reseed(3)
    compiled = ours()
    sampler.reseed(3)
    if compiled != peer():
        raise AssertionError("compiled and eager sampling disagree")
    times = rotating_medians({"ours": ours, "peer": peer}, rounds=3 if quick else 7)
    return times["ours"], times["peer"]


def run(quick=False):
    beam_ours, beam_peer = beam_speed(quick)
    sample_ours, sample_peer = sampling_speed(quick)
    return [
        Result("beam_search", "show_and_tell beam 5, batch 32, 20 tokens", beam_ours,
               beam_peer, "s", "same sampler, eager", target=5.0),
        Result("beam_search", "char_lm sampling, 200 characters", sample_ours, sample_peer,
               "s", "same sampler, eager", target=5.0),
    ]


if __name__ == "__main__":
    from benchmarks.harness import format_table

    print(format_table(run()))
