"""TensorFlow without its start-up chatter: what the command line does before its first TF call.

Importing TensorFlow 2.21 on a CPU-only machine prints 6-7 lines to the process's stderr
(file descriptor 2, from C++), whatever `TF_CPP_MIN_LOG_LEVEL` says for most of them: absl's
"All log messages before absl::InitializeLog()", the oneDNN note and "Could not find cuda
drivers" (twice: two libraries carry their own copy of the logger), and, when the devices are
first listed, `E0000 ... failed call to cuInit`. `import_tensorflow()` sets the logging
variables, then imports TensorFlow and lists its devices with file descriptor 2 captured, and
writes back every captured line that is not one of those notes. Real warnings and errors pass.
The CUDA notes are dropped only where there is no NVIDIA driver (`/dev/nvidiactl`): on a GPU
machine a failed `cuInit` is news.
"""

import contextlib
import os
import sys
import tempfile

# Lines of TensorFlow's start-up that say nothing to a user of the zoo.
STARTUP_NOTES = (
    "All log messages before absl::InitializeLog() is called are written to STDERR",
    "oneDNN custom operations are on",
    "This TensorFlow binary is optimized to use available CPU instructions",
    "To enable the following instructions:",
)
# Notes that are only noise on a machine without an NVIDIA driver.
CUDA_NOTES = (
    "Could not find cuda drivers on your machine",
    "failed call to cuInit",
    "Unable to register cuDNN factory",
    "Unable to register cuFFT factory",
    "Unable to register cuBLAS factory",
    "computation placer already registered",
    "TF-TRT Warning: Could not find TensorRT",
)


def has_nvidia_driver():
    """Whether an NVIDIA kernel driver is present (its control device exists)."""
    return os.path.exists("/dev/nvidiactl")


def is_noise(line, cpu_only=None):
    """Whether a captured stderr line is a start-up note to drop."""
    cpu_only = (not has_nvidia_driver()) if cpu_only is None else cpu_only
    notes = STARTUP_NOTES + (CUDA_NOTES if cpu_only else ())
    return any(note in line for note in notes)


@contextlib.contextmanager
def filtered_stderr(cpu_only=None):
    """Capture file descriptor 2 inside the block; afterwards write back what is not noise.

    Lines written by C++ code (which bypasses `sys.stderr`) are captured too. If the block
    raises, the captured lines are still written back before the exception propagates.
    """
    try:
        stderr_fd = sys.__stderr__.fileno() if sys.__stderr__ else 2
    except (AttributeError, OSError, ValueError):  # no real stderr (embedded interpreters)
        yield
        return
    sys.stderr.flush()
    saved = os.dup(stderr_fd)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), stderr_fd)
        try:
            yield
        finally:
            with contextlib.suppress(Exception):
                sys.stderr.flush()
            os.dup2(saved, stderr_fd)
            os.close(saved)
            capture.seek(0)
            text = capture.read().decode("utf-8", errors="replace")
            kept = [line for line in text.splitlines(keepends=True)
                    if not is_noise(line, cpu_only)]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


def import_tensorflow():
    """Import TensorFlow quietly (see the module docstring) and return it.

    `TF_CPP_MIN_LOG_LEVEL=2` (errors only from TensorFlow's C++ logging) unless the user set
    it. Listing the physical devices initialises CUDA (where the `cuInit` line comes from) but
    not the logical devices, so `--cpu-replicas` can still split the CPU afterwards.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with filtered_stderr():
        import tensorflow as tf

        tf.config.list_physical_devices()
    return tf
