"""Pretrained weight files: downloaded once into the Keras cache, verified by hash.

Files go to `$KERAS_HOME/models/` (default `~/.keras/models/`, where keras.applications keeps
its own), through `keras.utils.get_file`, which shows a progress bar and skips the download
when the file is already there. `keras.utils.get_file` compares whole hashes only;
torchvision publishes a sha256 *prefix* (in the file name), so the hash is checked here, after
every download and for every file already in the cache (a user may have copied it in): a file
that does not match is removed and refused with one line.
"""

import hashlib
import os

CACHE_SUBDIR = "models"


def cache_path(file_name):
    """Where `file_name` is (or will be) cached: `$KERAS_HOME/models/file_name`."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return os.path.join(home, CACHE_SUBDIR, file_name)


def file_digest(path, algorithm="sha256", chunk_size=1 << 20):
    """The hex digest of a file, read in chunks."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify(path, file_hash, algorithm="sha256", is_prefix=False):
    """Raise a one-line ValueError (and remove the file) if `path` does not have `file_hash`."""
    digest = file_digest(path, algorithm)
    expected = file_hash.lower()
    ok = digest.startswith(expected) if is_prefix else digest == expected
    if not ok:
        os.remove(path)
        kind = f"{algorithm} prefix" if is_prefix else algorithm
        raise ValueError(
            f"{path} has {algorithm} {digest[:len(expected)] if is_prefix else digest}, not the "
            f"published {kind} {expected}: the file was removed (a broken or foreign "
            f"download); run again to download it anew"
        )
    return path


def fetch(url, file_name, file_hash, algorithm="sha256", is_prefix=False):
    """The local path of `url`, downloaded into the Keras cache on first use and verified.

    Args:
        url: Where the file is published.
        file_name: Its name in the cache.
        file_hash: The published hash, or a prefix of it (`is_prefix`).
        algorithm: "sha256" or "md5".
        is_prefix: Whether `file_hash` is a prefix of the hex digest.

    Raises:
        ValueError: one line: without network (naming the file, the URL and where to put
            it), or for a file whose hash does not match.
    """
    path = cache_path(file_name)
    if not os.path.exists(path):
        import keras

        # An absolute cache_subdir: get_file would otherwise fall back to /tmp/.keras when
        # the Keras home does not exist yet, and the next run would not find the file.
        os.makedirs(os.path.dirname(path), exist_ok=True)
        try:
            path = keras.utils.get_file(file_name, url, cache_subdir=os.path.dirname(path))
        except KeyboardInterrupt:
            raise
        except Exception as error:
            reason = (str(error).splitlines() or [type(error).__name__])[0][:200]
            raise ValueError(
                f"Could not download {file_name} from {url} ({reason}). Without network, "
                f"download it on another machine and copy it to {path}"
            ) from None
    return verify(path, file_hash, algorithm, is_prefix)


def fetch_entry(entry):
    """The local file of a `WeightsEntry` (its include_top file)."""
    return fetch(
        entry.url, entry.file_name, entry.file_hash, entry.hash_algorithm, entry.hash_is_prefix
    )
