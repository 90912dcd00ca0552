"""TensorFlow's outputs for every registered model, written for the backend tests to compare with.

    KERAS_BACKEND=tensorflow python tests/backends/tf_reference.py OUT_DIR

Writes OUT_DIR/reference.npz: per model its outputs on `cases.inputs` and its weight paths; for
the generative models the ids greedy and beam search give; and OUT_DIR/NAME.keras for the models
in `SAVED` (files written by TensorFlow that the other backends load). Run by the tests'
`tf_reference` fixture in a subprocess (the backend is fixed when Keras is imported).
"""

import os
import pathlib
import sys

os.environ["KERAS_BACKEND"] = "tensorflow"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import cases  # noqa: E402
import numpy as np  # noqa: E402

# One model of each kind, saved as `.keras` by TensorFlow for the cross-backend loading test.
SAVED = ("lenet5", "resnet18", "lstm_classifier", "char_lm", "show_attend_tell")


def generation(name, model):
    """{"greedy": ids, "beam": ids} for the generative models, else {}."""
    from zoo import samplers

    if name == "char_lm":
        return {
            kind: np.array(model.generate(cases.CHAR_PROMPT, cases.GENERATION_LENGTH,
                                          sampler=sampler))
            for kind, sampler in (("greedy", "greedy"), ("beam", samplers.BeamSampler(3)))
        }
    if cases.model_info(name).task != "image-captioning":
        return {}
    images = cases.caption_images(name)
    greedy, greedy_scores = model.generate_ids(images, "greedy")
    beam, beam_scores = model.generate_ids(images, samplers.BeamSampler(3))
    return {"greedy": greedy, "greedy_scores": greedy_scores, "beam": beam,
            "beam_scores": beam_scores}


def main(out_dir):
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for name in cases.MODELS:
        model = cases.build(name)
        arrays[f"{name}/paths"] = np.array(sorted(v.path for v in model.weights))
        arrays[f"{name}/outputs"] = cases.outputs(model, cases.inputs(name, model))
        for kind, ids in generation(name, model).items():
            arrays[f"{name}/{kind}"] = np.asarray(ids)
        if name in SAVED:
            model.save(out_dir / f"{name}.keras")
    np.savez(out_dir / "reference.npz", **arrays)


if __name__ == "__main__":
    main(sys.argv[1])
