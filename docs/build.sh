#!/usr/bin/env bash
# Build the static site into site/ (open it with `python -m http.server -d site`).
#
#   bash docs/build.sh                 # notebooks 01 and 05 in full mode, the others quick
#   bash docs/build.sh --full none     # every notebook in quick mode (CI); --full all: full
#
# Needs the docs extra: python -m pip install -e ".[docs]". The notebooks run through
# jupyter-cache (docs/_build/jupyter_cache), so a rebuild reruns only those whose code (or
# mode) changed; Sphinx itself starts fresh (-E: its incremental state kept stale source
# links), which costs seconds. A cell error fails the build.
set -euo pipefail
cd "$(dirname "$0")/.."
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"  # TensorFlow's start-up notes
python docs/generate.py "$@"
# Built under docs/_build, then copied to site/: myst-nb writes a jupyter_execute/ folder
# beside its output folder, which would otherwise land in the repository's root.
# Without MPLBACKEND the notebook kernels use the inline backend, so figures land in the pages
# (CI and the test set-up export MPLBACKEND=Agg, under which plt.show() shows nothing).
env -u MPLBACKEND python -m sphinx -b html -q -E -d docs/_build/doctrees -c docs docs/_build/source docs/_build/html
rm -rf site && cp -a docs/_build/html site
echo "site/index.html built; open it with: python -m http.server -d site"
