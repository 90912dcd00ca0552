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
import threading

# Lines of TensorFlow's start-up that say nothing to a user of the zoo.
STARTUP_NOTES = (
    "All log messages before absl::InitializeLog() is called are written to STDERR",
    "oneDNN custom operations are on",
    "This TensorFlow binary is optimized to use available CPU instructions",
    "To enable the following instructions:",
)
# Lines TensorFlow prints while a model runs that say nothing to a user (every recurrent model
# and captioner: oneDNN falls back to Eigen for boolean masks, and works on).
RUNTIME_NOTES = (
    "oneDNN supports DT_BOOL only on platforms with AVX-512",
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
    notes = STARTUP_NOTES + RUNTIME_NOTES + (CUDA_NOTES if cpu_only else ())
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


def _write_all(fd, data):
    while data:
        data = data[os.write(fd, data):]


@contextlib.contextmanager
def filtered_stderr_live(cpu_only=None):
    """For a whole command: file descriptor 2 goes through a pipe, and a thread passes every
    line on as it comes except the notes of `is_noise` (a line still being written is passed
    on at once unless it may be a TensorFlow log line, which starts with E, W or I)."""
    try:
        stderr_fd = sys.__stderr__.fileno() if sys.__stderr__ else 2
    except (AttributeError, OSError, ValueError):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(stderr_fd)
    read_end, write_end = os.pipe()
    os.dup2(write_end, stderr_fd)
    os.close(write_end)

    def copy():
        pending = b""
        while chunk := os.read(read_end, 65536):
            *lines, pending = (pending + chunk).split(b"\n")
            out = b"".join(line + b"\n" for line in lines
                           if not is_noise(line.decode("utf-8", "replace"), cpu_only))
            if pending and pending[:1] not in (b"E", b"W", b"I"):
                out, pending = out + pending, b""
            _write_all(saved, out)
        _write_all(saved, pending)

    thread = threading.Thread(target=copy, daemon=True)
    thread.start()
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        os.dup2(saved, stderr_fd)  # closes the pipe's write end: the thread reads to the end
        thread.join(timeout=5)
        os.close(read_end)
        os.close(saved)


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
