"""Repository-wide pytest set-up, shared by tests/ and the tutorials run through nbmake.

Notebook kernels are child processes: they inherit these variables, which put the tutorials
in quick mode and keep TensorFlow's start-up logging quiet.
"""

import os

os.environ.setdefault("ZOO_TUTORIAL_QUICK", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")
