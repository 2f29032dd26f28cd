#!/usr/bin/env bash
# Tests the Python package (python/) on this machine: a virtual environment under .build-python/
# with PyTorch, transformers and pytest from PyPI, the package installed with `pip install ./python`
# (which builds libflashattention.so with swift build and puts it in the package), then pytest on
# python/tests against the installed package. CUDA cases skip where no GPU is usable.
#
#   scripts/test-python.sh                    # everything
#   scripts/test-python.sh -k "not compile"   # extra arguments go to pytest
#
# Environment: FLASH_ATTENTION_PYTHON (the interpreter, default python3), TORCH_SPEC (default
# torch==2.15.0; PyPI's Linux wheel brings CUDA libraries, about 5.6 GB installed and 4 minutes
# the first time, seconds from pip's cache afterwards), TRANSFORMERS_SPEC, PYTEST_SPEC.
set -euo pipefail
cd "$(dirname "$0")/.."

python="${FLASH_ATTENTION_PYTHON:-python3}"
torch_spec="${TORCH_SPEC:-torch==2.15.0}"
transformers_spec="${TRANSFORMERS_SPEC:-transformers==5.25.0}"
pytest_spec="${PYTEST_SPEC:-pytest>=8}"
root=.build-python
venv="$root/venv"

started=$SECONDS
step_started=$SECONDS
step() {
  echo "== [$((SECONDS - started)) s] $*"
  step_started=$SECONDS
}
done_step() {
  echo "   ($((SECONDS - step_started)) s)"
}

step "virtual environment $venv ($("$python" --version 2>&1))"
if [[ ! -x "$venv/bin/python" ]]; then
  mkdir -p "$root"
  "$python" -m venv "$venv" || {
    echo "error: '$python -m venv' failed; install the venv module (Debian: apt-get install python3-venv)" >&2
    exit 1
  }
fi
pip=("$venv/bin/python" -m pip --disable-pip-version-check --quiet)
done_step

step "installing $torch_spec, $transformers_spec, $pytest_spec, setuptools, wheel (from PyPI; cached after the first run)"
"${pip[@]}" install "$torch_spec" "$transformers_spec" "$pytest_spec" "setuptools>=64" wheel
done_step

step "pip install ./python (swift build of libflashattention.so, release, Swift runtime linked in)"
# No build isolation: setuptools and wheel come from the environment above, so a rerun needs no
# network; swift build is incremental in .build-cabi (shared with scripts/check-c-abi.sh).
"${pip[@]}" install --no-deps --no-build-isolation --force-reinstall ./python
rm -rf python/build python/*.egg-info
done_step

step "pytest python/tests ${*:-}"
# The installed package must be what is tested: no override of the library's path.
unset FLASH_ATTENTION_LIBRARY
status=0
"$venv/bin/python" -m pytest python/tests -q -p no:cacheprovider -rs "$@" || status=$?
done_step
echo "== python tests finished in $((SECONDS - started)) s (exit $status)"
exit "$status"
