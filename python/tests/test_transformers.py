"""Hugging Face transformers: small randomly initialised models (from configs, nothing
downloaded) run with attn_implementation set to ours, against "sdpa" (Llama) and "eager"
(Gemma 2: softcap and sliding windows, which sdpa refuses), fp32 on the CPU: full batches,
padded batches (the variable-length path), packed sequences, generation."""

from __future__ import annotations

import copy

import pytest
import torch

transformers = pytest.importorskip("transformers")

from flash_attention_swift import transformers_integration  # noqa: E402

NAME = transformers_integration.register()
TOLERANCE = dict(rtol=1e-4, atol=1e-5)


def llama(attn_implementation: str, **overrides):
    config = transformers.LlamaConfig(
        vocab_size=128, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=256, **overrides,
    )
    config._attn_implementation = attn_implementation
    return transformers.LlamaForCausalLM(config)


def twin_models(factory, ours: str, theirs: str):
    torch.manual_seed(0)
    model = factory(theirs)
    twin = factory(ours)
    twin.load_state_dict(model.state_dict())
    return twin, model


def logits_and_gradients(model, input_ids):
    model.zero_grad()
    output = model(input_ids=input_ids, labels=input_ids)
    output.loss.backward()
    return output.logits.detach(), {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


def assert_same_training_step(ours, theirs, input_ids):
    logits, gradients = logits_and_gradients(ours, input_ids)
    expected_logits, expected_gradients = logits_and_gradients(theirs, input_ids)
    torch.testing.assert_close(logits, expected_logits, **TOLERANCE)
    assert gradients.keys() == expected_gradients.keys() and len(gradients) > 0
    for name, gradient in gradients.items():
        torch.testing.assert_close(gradient, expected_gradients[name], **TOLERANCE, msg=lambda m: f"{name}: {m}")


def test_registered_name_is_valid():
    assert NAME in transformers.AttentionInterface()
    assert "flash" not in NAME
    with pytest.raises(ValueError, match="flash"):
        transformers_integration.register("flash_attention_swift")


@pytest.mark.parametrize("seqlen", [1, 17, 64])
def test_llama_logits_and_gradients_match_sdpa(seqlen):
    ours, theirs = twin_models(llama, NAME, "sdpa")
    assert ours.config._attn_implementation == NAME
    input_ids = torch.randint(0, 128, (2, seqlen))
    assert_same_training_step(ours, theirs, input_ids)


def test_llama_from_config_with_attn_implementation_argument():
    config = transformers.LlamaConfig(
        vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
        num_key_value_heads=1,
    )
    model = transformers.AutoModelForCausalLM.from_config(config, attn_implementation=NAME)
    assert model.config._attn_implementation == NAME
    logits = model(input_ids=torch.randint(0, 64, (1, 9))).logits
    assert torch.isfinite(logits).all()


def test_llama_generation_matches_sdpa():
    """Greedy decoding with a KV cache: one query against all cached keys, where FlashAttention's
    bottom-right causal alignment is what makes causal=True correct."""
    ours, theirs = twin_models(llama, NAME, "sdpa")
    prompt = torch.randint(0, 128, (2, 11))
    settings = dict(max_new_tokens=8, do_sample=False, pad_token_id=0)
    with torch.no_grad():
        tokens = ours.generate(prompt, attention_mask=torch.ones_like(prompt), **settings)
        expected = theirs.generate(prompt, attention_mask=torch.ones_like(prompt), **settings)
    assert torch.equal(tokens, expected)


def gemma2(attn_implementation: str):
    config = transformers.Gemma2Config(
        vocab_size=128, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, head_dim=16, max_position_embeddings=256, sliding_window=16,
        attn_logit_softcapping=20.0, final_logit_softcapping=None, query_pre_attn_scalar=16,
    )
    config._attn_implementation = attn_implementation
    return transformers.Gemma2ForCausalLM(config)


def test_gemma2_softcap_and_sliding_window_match_eager():
    if not hasattr(transformers, "Gemma2Config"):
        pytest.skip("this transformers has no Gemma 2")
    ours, theirs = twin_models(gemma2, NAME, "eager")
    assert_same_training_step(ours, theirs, torch.randint(0, 128, (2, 40)))


def padded_batch(side: str, lengths=(9, 4, 1, 7)):
    """Token ids padded to the longest length on `side`, and the (batch, seqlen) mask."""
    longest = max(lengths)
    input_ids = torch.randint(1, 128, (len(lengths), longest))
    mask = torch.zeros(len(lengths), longest, dtype=torch.long)
    for row, length in enumerate(lengths):
        if side == "left":
            mask[row, longest - length :] = 1
        else:
            mask[row, :length] = 1
    return input_ids.masked_fill(mask == 0, 0), mask


@pytest.mark.parametrize("side", ["left", "right"])
def test_llama_padded_batch_matches_sdpa(side):
    """Padding goes through the variable-length path (unpad, varlen, pad back): logits and one
    training step's gradients at the real tokens equal sdpa's with the same mask."""
    ours, theirs = twin_models(llama, NAME, "sdpa")
    input_ids, mask = padded_batch(side)
    weights = torch.randn(*input_ids.shape, 128) * mask[..., None]  # a loss that reads real tokens only

    def step(model):
        model.zero_grad()
        logits = model(input_ids=input_ids, attention_mask=mask).logits
        (logits * weights).sum().backward()
        return logits.detach(), {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}

    logits, gradients = step(ours)
    expected_logits, expected_gradients = step(theirs)
    real = mask.bool()
    torch.testing.assert_close(logits[real], expected_logits[real], **TOLERANCE)
    assert gradients.keys() == expected_gradients.keys() and len(gradients) > 0
    for name, gradient in gradients.items():
        torch.testing.assert_close(gradient, expected_gradients[name], **TOLERANCE, msg=lambda m: f"{name}: {m}")


def test_llama_generation_with_left_padding_matches_sdpa():
    """Batched generation of prompts of different lengths (left padding): prefill and every
    decode step take the variable-length path with the growing mask."""
    ours, theirs = twin_models(llama, NAME, "sdpa")
    input_ids, mask = padded_batch("left", lengths=(11, 3, 7))
    settings = dict(max_new_tokens=8, do_sample=False, pad_token_id=0)
    with torch.no_grad():
        tokens = ours.generate(input_ids, attention_mask=mask, **settings)
        expected = theirs.generate(input_ids, attention_mask=mask, **settings)
    assert torch.equal(tokens, expected)


def test_gemma2_padded_batch_matches_eager():
    """Sliding window and softcap per sequence of a right-padded batch (right padding keeps
    positions equal, so the window covers the same tokens as eager's mask)."""
    if not hasattr(transformers, "Gemma2Config"):
        pytest.skip("this transformers has no Gemma 2")
    ours, theirs = twin_models(gemma2, NAME, "eager")
    input_ids, mask = padded_batch("right", lengths=(40, 23, 1))
    with torch.no_grad():
        logits = ours(input_ids=input_ids, attention_mask=mask).logits
        expected = theirs(input_ids=input_ids, attention_mask=mask).logits
    real = mask.bool()
    torch.testing.assert_close(logits[real], expected[real], **TOLERANCE)


def packed_row(lengths=(5, 1, 9, 3)):
    sequences = [torch.randint(0, 128, (1, length)) for length in lengths]
    input_ids = torch.cat(sequences, dim=1)
    position_ids = torch.cat([torch.arange(length) for length in lengths]).unsqueeze(0)
    cu_seqlens = torch.tensor([0, *torch.tensor(lengths).cumsum(0).tolist()], dtype=torch.int32)
    return sequences, input_ids, position_ids, cu_seqlens


def test_packed_sequences_by_position_ids_match_separate_runs():
    """Several sequences in one row, positions restarting (padding-free training): each
    sequence's logits equal sdpa's on that sequence alone."""
    ours, theirs = twin_models(llama, NAME, "sdpa")
    sequences, input_ids, position_ids, cu_seqlens = packed_row()
    with torch.no_grad():
        logits = ours(input_ids=input_ids, position_ids=position_ids).logits[0]
        for sequence, start, end in zip(sequences, cu_seqlens[:-1].tolist(), cu_seqlens[1:].tolist()):
            torch.testing.assert_close(logits[start:end], theirs(input_ids=sequence).logits[0], **TOLERANCE)


def test_packed_sequences_by_cu_seq_lens_keywords_match_separate_runs():
    """transformers' flash-attention keyword arguments (DataCollatorWithFlattening with
    return_flash_attn_kwargs=True) reach the attention and select the sequences."""
    ours, theirs = twin_models(llama, NAME, "sdpa")
    sequences, input_ids, position_ids, cu_seqlens = packed_row((4, 8, 2))
    with torch.no_grad():
        logits = ours(
            input_ids=input_ids, position_ids=position_ids, cu_seq_lens_q=cu_seqlens, cu_seq_lens_k=cu_seqlens,
            max_length_q=8, max_length_k=8,
        ).logits[0]
        for sequence, start, end in zip(sequences, cu_seqlens[:-1].tolist(), cu_seqlens[1:].tolist()):
            torch.testing.assert_close(logits[start:end], theirs(input_ids=sequence).logits[0], **TOLERANCE)


def test_packed_sequences_by_position_ids_under_compile_are_refused():
    model = torch.compile(llama(NAME), fullgraph=True, backend="aot_eager")
    _, input_ids, position_ids, _ = packed_row()
    with pytest.raises(RuntimeError, match="packed sequences"):
        model(input_ids=input_ids, position_ids=position_ids)


def test_dropout_is_refused_not_ignored():
    model = llama(NAME, attention_dropout=0.1)
    model.train()
    with pytest.raises(NotImplementedError, match="dropout"):
        model(input_ids=torch.randint(0, 128, (1, 5)))


def test_compiled_llama_fullgraph():
    ours, theirs = twin_models(llama, NAME, "sdpa")
    compiled = torch.compile(copy.deepcopy(ours), fullgraph=True, backend="aot_eager")
    input_ids = torch.randint(0, 128, (2, 24))
    logits = compiled(input_ids=input_ids).logits
    torch.testing.assert_close(logits, theirs(input_ids=input_ids).logits, **TOLERANCE)


def test_compiled_llama_padded_batch_with_graph_breaks():
    """Unpadding reads the mask (as transformers' mask function does), so fullgraph is out; a
    plain torch.compile breaks the graph there and still gives sdpa's logits."""
    ours, theirs = twin_models(llama, NAME, "sdpa")
    input_ids, mask = padded_batch("left")
    compiled = torch.compile(copy.deepcopy(ours), backend="aot_eager")
    with torch.no_grad():
        logits = compiled(input_ids=input_ids, attention_mask=mask).logits
        expected = theirs(input_ids=input_ids, attention_mask=mask).logits
    real = mask.bool()
    torch.testing.assert_close(logits[real], expected[real], **TOLERANCE)
