"""tensorflow-datasets sets: downloaded on first use, or read from a prepared data directory.

Every tfds loader of the zoo goes through `load_tfds`, so they share one policy:

* `download=True` (the default): tfds downloads and prepares the data once into `data_dir`
  (default `$TFDS_DATA_DIR`, else `~/tensorflow_datasets`) and reads it from there afterwards.
* `download=False` (`zoo train --no-download`, for machines without network): the data must
  already be prepared in `data_dir`. Prepare it on a machine with network
  (`tfds build NAME --data_dir DIR`, or any `zoo train --dataset NAME --data-dir DIR`) and copy
  `DIR/NAME` over.

Failures become one `ValueError` that says which directory was searched and how to prepare it.
Without network (tfds' mirror unreachable within 3 s, no proxy set) a download fails at once
instead of after minutes of retries.
"""

import os
import socket
import sys

from zoo.validation import first_line


def default_data_dir():
    """Where tfds keeps its data when no `data_dir` is given."""
    return os.environ.get("TFDS_DATA_DIR") or os.path.join(
        os.path.expanduser("~"), "tensorflow_datasets"
    )


def how_to_prepare(name, data_dir=None):
    """The instructions an offline machine needs, as one sentence."""
    directory = data_dir or default_data_dir()
    return (
        f"Prepare it once on a machine with network (`tfds build {name} --data_dir DIR`, or "
        f"`zoo train --dataset {name} --data-dir DIR --epochs 1`), then copy DIR/{name} into "
        f"{directory} here (or pass --data-dir DIR)."
    )


def _is_prepared(name, data_dir):
    import tensorflow_datasets as tfds

    try:
        return tfds.builder(name, data_dir=data_dir).is_prepared()
    except Exception:  # an unreadable directory: let tfds.load report it
        return False


# Reached before a download: the host of tfds' own mirror (a closed port or a failed name
# lookup answers within NETWORK_TIMEOUT seconds, where tfds' retries take minutes).
PROBE_HOST = ("storage.googleapis.com", 443)
NETWORK_TIMEOUT = 3.0
PROXY_VARIABLES = ("https_proxy", "http_proxy", "all_proxy")


def _no_network():
    """Why the network is unreachable, or "" when it is (or a proxy is set: then only the
    download itself can tell)."""
    if any(os.environ.get(v) or os.environ.get(v.upper()) for v in PROXY_VARIABLES):
        return ""
    import tensorflow_datasets as tfds

    prepare = tfds.core.DatasetBuilder.download_and_prepare
    if getattr(prepare, "__module__", "").startswith("tensorflow_datasets.testing"):
        return ""  # under tfds.testing.mock_data nothing is downloaded
    try:
        socket.create_connection(PROBE_HOST, timeout=NETWORK_TIMEOUT).close()
    except OSError as error:
        return f"could not reach {PROBE_HOST[0]}: {error}"
    return ""


def load_tfds(name, *, split, data_dir=None, download=True, **kwargs):
    """`tfds.load(name, split=..., with_info=True, ...)` with the zoo's download policy.

    Args:
        name: The tfds name (e.g. "mnist", "coco_captions").
        split: What `tfds.load` takes (a name or a list of names).
        data_dir: tfds data directory; None for tfds' default.
        download: Download and prepare the data if it is not in `data_dir`.
        **kwargs: Other `tfds.load` arguments (`as_supervised`, `decoders`, ...).

    Returns:
        `(datasets, info)` as `tfds.load(..., with_info=True)` returns them.

    Raises:
        ValueError: when the data is not prepared and `download` is False, or the download or
            preparation fails (e.g. no network), with the instructions to prepare it.
    """
    import tensorflow_datasets as tfds

    directory = data_dir or default_data_dir()
    if download and not _is_prepared(name, data_dir):
        offline = _no_network()
        if offline:
            # tfds would retry each URL for minutes before failing (215 s for cifar10).
            raise ValueError(
                f"Dataset {name!r} is not prepared in {directory} and there is no network "
                f"({offline}). {how_to_prepare(name, data_dir)} Or pick an offline dataset "
                "(`zoo list` marks them)."
            )
        print(f"zoo: downloading and preparing {name!r} into {directory} (once; "
              "--no-download to use prepared data only)", file=sys.stderr, flush=True)
    try:
        return tfds.load(name, split=split, data_dir=data_dir, download=download, with_info=True,
                         **kwargs)
    except (TypeError, KeyboardInterrupt):  # a programming error or the user: not the data
        raise
    except Exception as error:
        reason = first_line(error)
        if not download:
            raise ValueError(
                f"Dataset {name!r} is not prepared in {directory}, and downloading is off "
                f"(--no-download / download=False). {how_to_prepare(name, data_dir)}"
            ) from error
        raise ValueError(
            f"Could not download or prepare dataset {name!r} into {directory} "
            f"({type(error).__name__}: {reason}). Check the network connection, or: "
            f"{how_to_prepare(name, data_dir)} Then train with --no-download."
        ) from error
