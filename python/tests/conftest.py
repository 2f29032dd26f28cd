"""Shared set-up: the random seed (fresh every run, printed, FLASH_ATTENTION_TEST_SEED repeats
one), NaN-poisoned outputs, and the devices: every test that takes `device` runs on the CPU and,
where a usable GPU is found, on CUDA tensors (ids contain "cuda": `pytest -k cuda`)."""

from __future__ import annotations

import os
import random
import zlib

import pytest
import torch

import flash_attention_swift as fas
from flash_attention_swift import _calls

SEED = int(os.environ.get("FLASH_ATTENTION_TEST_SEED", random.SystemRandom().randrange(2**31)))


def cuda_usable() -> tuple[bool, str]:
    if not torch.cuda.is_available():
        return False, "no CUDA device visible to torch"
    usable, reason = fas.backend_status("cuda:0")
    return usable, reason


CUDA_USABLE, CUDA_REASON = cuda_usable()
needs_cuda = pytest.mark.skipif(not CUDA_USABLE, reason=f"CUDA backend unavailable: {CUDA_REASON}")


def device_params():
    return [pytest.param("cpu", id="cpu"), pytest.param("cuda", id="cuda", marks=needs_cuda)]


def pytest_report_header(config):
    return [
        f"flash_attention_swift: library {fas.library_path()} (version {fas.library_version()}), "
        f"torch {torch.__version__}, seed {SEED} (FLASH_ATTENTION_TEST_SEED={SEED} repeats it)",
        f"cuda: {'usable' if CUDA_USABLE else 'skipped: ' + CUDA_REASON}",
    ]


@pytest.fixture(autouse=True)
def _seed_and_poison(request):
    """A seed per test derived from the run's seed and the test id, so each test gets fresh
    inputs every run and a failure repeats with the printed seed; outputs poisoned with NaN."""
    # 32 bits, mixing both: torch's CPU generator (mt19937) keeps only a seed's low 32 bits, so
    # SEED * 2**32 + crc32(id) gave every run the same inputs.
    torch.manual_seed(zlib.crc32(f"{SEED}:{request.node.nodeid}".encode()))
    _calls.poison_outputs = True
    yield
    _calls.poison_outputs = False


@pytest.fixture(params=device_params())
def device(request):
    return request.param
