"""Context parallelism in one process: the simulated ring (every rank's blocks computed with the
same block code as the distributed ring, no communication) against the float64 attention over
the whole sequence, for 1 to 4 ranks, both layouts, causal and not, GQA, odd chunk lengths,
fixed-length and varlen; on CUDA too where a GPU is usable (`pytest -k cuda`). Also the sharding
helpers and the argument checks."""

from __future__ import annotations

import math

import pytest
import torch

from flash_attention_swift import flash_attn_func
from flash_attention_swift.context_parallel import (
    ring_flash_attn_func,
    ring_flash_attn_varlen_func,
    shard,
    shard_varlen,
    simulated_ring_flash_attn_func,
    simulated_ring_flash_attn_varlen_func,
    unshard,
    unshard_varlen,
)

import context_parallel_cases as cp
from conftest import SEED, needs_cuda


def _run_simulated(case: cp.Case, world: int, device: str, seed: int):
    q, k, v, dout, cu = cp.whole_inputs(case, world, seed, device)
    exact, same = cp.expected(case, q, k, v, dout, cu)
    pieces = [[cp.shards(case, t, r, world, cu).requires_grad_(t is not dout) for r in range(world)] for t in (q, k, v, dout)]
    qs, ks, vs, douts = pieces
    if cu is None:
        results = simulated_ring_flash_attn_func(qs, ks, vs, causal=case.causal, layout=case.layout)
    else:
        local_cu = shard_varlen(q, cu, 0, world, case.layout)[1]
        local_max = max(b - a for a, b in zip(cu[:-1], cu[1:])) // world
        results = simulated_ring_flash_attn_varlen_func(qs, ks, vs, local_cu, local_max, causal=case.causal, layout=case.layout)
    outs = [out for out, _ in results]
    gradients = torch.autograd.grad(outs, qs + ks + vs, douts)
    whole = lambda ps, lse=False: cp.whole(case, [p.cpu() for p in ps], cu, lse)  # noqa: E731
    cp.check(
        case, world, whole(outs), whole([lse for _, lse in results], lse=True),
        whole(gradients[:world]), whole(gradients[world : 2 * world]), whole(gradients[2 * world :]),
        [t.cpu() for t in exact], [t if t is None else t.cpu() for t in same],
    )


@pytest.mark.parametrize("world", [1, 2, 3, 4])
@pytest.mark.parametrize("case", cp.cases(), ids=cp.Case.id)
def test_simulated_ring_matches_whole_sequence_attention(case, world):
    _run_simulated(case, world, "cpu", SEED + world)


@needs_cuda
@pytest.mark.parametrize("world", [2, 4])
@pytest.mark.parametrize("case", [c for c in cp.cases(dtypes=(torch.bfloat16,)) if not c.varlen_chunks], ids=cp.Case.id)
def test_simulated_ring_cuda(case, world):
    _run_simulated(case, world, "cuda", SEED + world)


def test_simulated_ring_equals_single_call_flash_attention():
    """Against flash_attn_func on the whole sequence itself (fp32: within rounding)."""
    world = 3
    q, k, v = (torch.randn(1, 6 * world * 2, heads, 64) for heads in (8, 2, 2))
    expected, expected_lse = flash_attn_func(q, k, v, causal=True, return_attn_probs=True)
    results = simulated_ring_flash_attn_func(*([shard(t, r, world) for r in range(world)] for t in (q, k, v)), causal=True)
    torch.testing.assert_close(unshard([o for o, _ in results]), expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(unshard([l for _, l in results], dim=2), expected_lse, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("layout", ["zigzag", "contiguous"])
def test_shard_unshard_round_trip_and_chunk_placement(layout):
    world = 3
    x = torch.arange(2 * 2 * world * 5).view(2, 2 * world * 5)
    pieces = [shard(x, r, world, layout) for r in range(world)]
    assert torch.equal(unshard(pieces, layout), x)
    if layout == "zigzag":  # rank 0 holds chunk 0 and chunk 2W-1
        assert torch.equal(pieces[0][0], torch.cat((x[0, :5], x[0, -5:])))
    else:
        assert torch.equal(pieces[1][0], x[0, 10:20])
    cu = [0, 2 * world, 2 * world, 2 * world * 4]
    packed = torch.arange(cu[-1] * 3).view(cu[-1], 3)
    local = [shard_varlen(packed, cu, r, world, layout) for r in range(world)]
    assert torch.equal(unshard_varlen([p for p, _, _ in local], cu, layout), packed)
    assert local[0][1].tolist() == [c // world for c in cu] and local[0][2] == 2 * 3


def test_bad_arguments_raise():
    q = torch.randn(1, 6, 2, 16)
    with pytest.raises(ValueError, match="layout"):
        ring_flash_attn_func(q, q, q, layout="striped")
    with pytest.raises(ValueError, match="even"):
        ring_flash_attn_func(q[:, :5], q[:, :5], q[:, :5], causal=True)
    with pytest.raises(ValueError, match="same batch"):
        ring_flash_attn_func(q, q[:, :4], q)
    with pytest.raises(ValueError, match="4 dimensions"):
        ring_flash_attn_func(q[0], q[0], q[0])
    with pytest.raises(ValueError, match="multiple of 6"):
        shard(torch.randn(1, 8, 2, 16), 0, 3)
    with pytest.raises(ValueError, match="multiple of 4"):
        shard_varlen(torch.randn(10, 2, 16), [0, 4, 10], 0, 2)
    with pytest.raises(RuntimeError, match="torch.distributed"):
        ring_flash_attn_func(q, q, q, layout="contiguous")
    packed = torch.randn(6, 2, 16)
    with pytest.raises(TypeError, match="int32"):
        ring_flash_attn_varlen_func(packed, packed, packed, torch.tensor([0, 6]), 6)
    with pytest.raises(ValueError, match="rise from 0"):
        ring_flash_attn_varlen_func(packed, packed, packed, torch.tensor([0, 5], dtype=torch.int32), 5)
    with pytest.raises(ValueError, match="even"):
        ring_flash_attn_varlen_func(packed, packed, packed, torch.tensor([0, 3, 6], dtype=torch.int32), 3, causal=True)


def test_backward_with_lse_beyond_the_cpu_recompute_threshold():
    """Scores so large that |LSE| > 64, where the CPU backward recomputes row statistics for
    precision: for one ring block it must still use the whole sequence's LSE it is given
    (FlashBackward.keepGivenStatistics), so the blocks' gradients add up to the whole problem's.

    The large scores come from one head dim shared by every query and key (each score gains 72,
    the softmax is unchanged), so the rows are not near-one-hot: there a float32 LSE of 72
    resolves only about 2^-19 of a row's mass, the dS of such rows is made of that much, and the
    ring's gradients can be off by order 1 relative to their tiny size whatever a block does
    (measured over 2000 draws of scores scaled to 72: a same-precision emulation of FlashAttention's
    contract, the given float32 LSE and O in float64 arithmetic, reached 1.09). Here 2000 draws
    measured at most 2.7e-5; a block that took its own statistics would be off by order 1."""
    world = 2
    torch.manual_seed(SEED)
    q, k, v = (torch.randn(1, 4 * world, 1, 16, dtype=torch.float32) for _ in range(3))
    q[..., -1] = math.sqrt(288)  # scale 1/4 at d = 16: every score gains 288 / 4 = 72
    k[..., -1] = math.sqrt(288)
    q.requires_grad_()
    k.requires_grad_()
    v.requires_grad_()
    qs = [shard(q, r, world) for r in range(world)]
    results = simulated_ring_flash_attn_func(qs, [shard(k, r, world) for r in range(world)], [shard(v, r, world) for r in range(world)])
    assert min(l.abs().min().item() for _, l in results) > 64
    sum(o.sum() for o, _ in results).backward()
    ring_grads = [t.grad.clone() for t in (q, k, v)]
    for t in (q, k, v):
        t.grad = None
    flash_attn_func(q, k, v).sum().backward()
    for name, ring, whole in zip("qkv", ring_grads, (q.grad, k.grad, v.grad)):
        error = ((ring - whole).norm() / whole.norm()).item()
        assert math.isfinite(error) and error < 1e-3, f"d{name}: relative L2 {error:.3g}"


@needs_cuda
def test_backward_with_lse_beyond_the_threshold_cuda():
    """The CUDA preprocess forms D from the scores for rows with |LSE| > 64 (issue #16), but only
    where the given LSE is the row's own softmax: a ring block, given the whole sequence's LSE,
    must keep D = rowsum(dO * O), so that the blocks' gradients add up to the whole problem's.
    fp16 on the GPU on both sides; a block that normalised by its own softmax instead would be
    off by the other block's share of each row, of order 1 (the 2e-2 bound is fp16 rounding of
    two different summation orders). As in the CPU test above, one head dim shared by every query
    and key adds 72 to every score, so no row is near-one-hot (where a float32 LSE of 72 cannot
    resolve the other block's share and no block can be exact)."""
    world = 2
    q, k, v = (torch.randn(2, 24 * world, 2, 32, dtype=torch.float32) for _ in range(3))
    scale = 32 ** -0.5
    q[..., -1] = math.sqrt(72 / scale)
    k[..., -1] = math.sqrt(72 / scale)
    q = q.half().cuda().requires_grad_()
    k, v = (t.half().cuda().requires_grad_() for t in (k, v))
    qs = [shard(q, r, world) for r in range(world)]
    results = simulated_ring_flash_attn_func(qs, [shard(k, r, world) for r in range(world)], [shard(v, r, world) for r in range(world)])
    assert min(l.abs().min().item() for _, l in results) > 64
    sum(o.float().sum() for o, _ in results).backward()
    ring_grads = [t.grad.float().clone() for t in (q, k, v)]
    for t in (q, k, v):
        t.grad = None
    flash_attn_func(q, k, v).float().sum().backward()
    for name, ring, whole in zip("qkv", ring_grads, (q.grad.float(), k.grad.float(), v.grad.float())):
        error = ((ring - whole).norm() / whole.norm()).item()
        assert math.isfinite(error) and error < 2e-2, f"d{name}: relative L2 {error:.3g}"


def test_merge_carries_no_rounding_of_the_merged_lse():
    """The accumulator's weight for a block, e^(lse_block - merged), as sigmoid(lse_block -
    lse_current): e^ of the difference with the rounded merged LSE would scale the output by half
    its last place (4e-6 relative at |LSE| near 72; measured 1.2e-5 absolute in a ring's output,
    200 times float32's rounding of it). Bound: 16 units of 2^-24 of the larger |out|."""
    from flash_attention_swift.context_parallel import _blocks

    geometry = _blocks.FixedRows(64)
    outs = [torch.randn(1, 64, 2, 16) for _ in range(3)]
    lses = [72 + 3 * torch.randn(1, 2, 64) for _ in range(3)]
    accumulator = _blocks.Accumulator()
    for out, lse in zip(outs, lses):
        accumulator.merge(geometry, "all", out.clone(), lse)
    merged, _ = accumulator.result(geometry, torch.float32)
    lse64 = torch.stack(lses).double().transpose(2, 3)  # (blocks, batch, seqlen, heads)
    weights = (lse64 - lse64.logsumexp(0)).exp().unsqueeze(-1)
    stacked = torch.stack(outs).double()
    exact = (weights * stacked).sum(0)
    error = ((merged.double() - exact).abs() / stacked.abs().amax(0)).max().item()
    assert error <= 16 * 2**-24, f"{error / 2**-24:.1f} units of 2^-24 of max |out|"


@pytest.mark.parametrize("part", ["all", "back"])
def test_merge_equals_combine_with_rows_that_saw_no_key(part):
    """The accumulator's in-place merge against flash_attn_combine, with rows where the running
    result, the block, or both saw no key (out 0, LSE -inf: what the library returns there)."""
    from flash_attention_swift import flash_attn_combine
    from flash_attention_swift.context_parallel import _blocks

    geometry = _blocks.FixedRows(8)
    rows = slice(None) if part == "all" else slice(4, 8)
    first_out, second_out = torch.randn(1, 8, 2, 16), torch.randn(1, 4 if part == "back" else 8, 2, 16).bfloat16()
    first_lse, second_lse = torch.randn(1, 2, 8), torch.randn(1, 2, second_out.shape[1])
    first_lse[..., [0, 4, 5]] = -math.inf  # rows the first block did not see
    second_lse[..., [0, 1]] = -math.inf  # rows the second block did not see (rows 4, 5 for "back")
    for out, lse in ((first_out, first_lse), (second_out, second_lse)):
        out.transpose(1, 2)[torch.isneginf(lse)] = 0
    accumulator = _blocks.Accumulator()
    # (An fp32 block output becomes the accumulator itself, as the library's fresh output may.)
    accumulator.merge(geometry, "all", first_out.clone(), first_lse)
    accumulator.merge(geometry, part, second_out, second_lse)
    out, lse = accumulator.result(geometry, torch.float32)
    full_second_out = torch.zeros_like(first_out)
    full_second_lse = torch.full_like(first_lse, -math.inf)
    full_second_out[:, rows] = second_out.float()
    full_second_lse[..., rows] = second_lse
    expected, expected_lse = flash_attn_combine(
        torch.stack((first_out, full_second_out)), torch.stack((first_lse, full_second_lse)).transpose(2, 3)
    )
    torch.testing.assert_close(out, expected, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(lse, expected_lse.transpose(1, 2), rtol=1e-6, atol=1e-6)
    neither = 0 if part == "all" else 4
    assert torch.isneginf(lse[..., neither]).all() and (out[:, neither] == 0).all()
