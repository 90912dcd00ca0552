"""Caption metrics on the validation split during training: `CaptionMetrics`, a Keras callback.

At the end of an epoch it captions up to `max_examples` validation images with greedy search
(one in-graph batched pass, cheap next to an epoch of training) and adds `val_bleu4` and
`val_cider` (CIDEr-D) to the epoch's `logs`, so they land in the run's history next to the
validation loss. BLEU-4 comes from `pycocoevalcap` when installed and from the zoo's own
implementation otherwise; CIDEr-D needs `pycocoevalcap` (`pip install "zoo[captions]"`)
and is left out, with a warning, without it. The figures use the zoo's caption
standardisation, not COCO's PTB tokenizer (see `zoo.captioning.metrics`).
"""

import keras

from zoo.captioning import metrics as caption_metrics
from zoo.validation import check_int


class CaptionMetrics(keras.callbacks.Callback):
    """Adds `val_bleu4` and `val_cider` to the epoch logs of a captioner's training.

    Args:
        validation_dataset: Unbatched validation elements: a loader's
            `((image, caption_in), caption_out, mask)` (the reference is `caption_out`
            decoded) or `(image, references)`.
        references: One list of references per validation element, when the elements do not
            carry them all (e.g. several references per image).
        max_examples: Caption at most this many validation elements (the first ones).
        every: Compute the metrics every `every` epochs (and after the last one the trainer
            reports, if it is a multiple).
        batch_size: Images per generation call.
        prefix: Prepended to the log names.

    Example:
        >>> train(config, callbacks=[CaptionMetrics(splits.validation, max_examples=200)])
    """

    def __init__(self, validation_dataset, references=None, max_examples=500, every=1,
                 batch_size=128, prefix="val_"):
        super().__init__()
        self.validation_dataset = validation_dataset
        self.references = references
        self.max_examples = check_int("max_examples", max_examples, allow_none=True)
        self.every = check_int("every", every)
        self.batch_size = check_int("batch_size", batch_size)
        self.prefix = prefix
        self._examples = None

    def _images_and_references(self):
        if self._examples is None:  # read the validation images once per run
            self._examples = caption_metrics.images_and_references(
                self.validation_dataset,
                self.model.tokenizer,
                self.references,
                self.max_examples,
            )
        return self._examples

    def on_epoch_end(self, epoch, logs=None):
        if logs is None or (epoch + 1) % self.every:
            return
        images, references = self._images_and_references()
        captions = caption_metrics.generate_captions(
            self.model, images, beam_width=1, batch_size=self.batch_size
        )
        scores = caption_metrics.caption_scores(captions, references, ("bleu", "cider"))
        logs[f"{self.prefix}bleu4"] = scores["bleu_4"]
        if "cider" in scores:
            logs[f"{self.prefix}cider"] = scores["cider"]
