"""The compiled decode step on fixed buffers decodes what mlx-lm's batch cache decodes."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest
from mlx_lm import load

from mlx_grpo.config import load_config
from mlx_grpo.errors import UserError
from mlx_grpo.train import decode_step
from mlx_grpo.train.rollout import Sampling, generate_groups, prefill


@pytest.fixture(scope="module")
def model_and_tokenizer(tiny_model_dir):
    return load(str(tiny_model_dir))


def _greedy(tok, max_tokens: int, stops: list[list[int]], setting: str) -> Sampling:
    argmax = lambda logprobs: mx.argmax(logprobs, axis=-1)  # noqa: E731
    return Sampling(max_tokens, argmax, stops, return_logprobs=True, compiled_decode=setting)


def _both(model, prompts, g: int, sampling: Sampling, monkeypatch) -> tuple:
    """The same rollout eager and compiled; also how often the compiled step ran."""
    calls: list[int] = []
    real = decode_step.CompiledStep.__call__
    monkeypatch.setattr(
        decode_step.CompiledStep, "__call__", lambda s, y: calls.append(1) or real(s, y)
    )
    sampling.compiled_decode = "never"
    eager = generate_groups(model, prompts, g, sampling)
    assert not calls
    sampling.compiled_decode = "always"
    compiled = generate_groups(model, prompts, g, sampling)
    return eager, compiled, len(calls)


def _assert_same(eager, compiled) -> None:
    assert compiled.completion_ids == eager.completion_ids
    assert compiled.truncated == eager.truncated
    np.testing.assert_allclose(sum(compiled.logprobs, []), sum(eager.logprobs, []), atol=1e-5)


def test_compiled_step_decodes_what_the_batch_cache_decodes(model_and_tokenizer, monkeypatch):
    """Prompts of different lengths (left padding) whose rows stop at different steps (the
    batch is cut down twice): the same tokens and log-probs, every step compiled."""
    model, tok = model_and_tokenizer
    prompts = [tok.encode(t) for t in ("one", "a second, longer prompt", "three three")]
    probe = generate_groups(model, prompts, 1, _greedy(tok, 12, [], "never"))
    first, second = probe.completion_ids[:2]
    stops = [first[2:4], second[:5]]  # row 1 stops after 4 tokens, row 2 after 5, row 3 runs on
    eager, compiled, calls = _both(model, prompts, 2, _greedy(tok, 12, stops, "never"), monkeypatch)
    _assert_same(eager, compiled)
    assert calls == max(len(c) for c in compiled.completion_ids)
    assert len({len(c) for c in compiled.completion_ids}) > 1  # rows stopped at different steps


def test_buffers_grow_by_chunks(model_and_tokenizer, monkeypatch):
    """Buffers three positions longer at a time: grown (and traced) again and again."""
    model, tok = model_and_tokenizer
    monkeypatch.setattr(decode_step, "CHUNK", 3)
    lengths: list[int] = []
    real = decode_step.CompiledStep._grow
    monkeypatch.setattr(
        decode_step.CompiledStep, "_grow", lambda s: real(s) or lengths.append(s.length)
    )
    prompts = [tok.encode("grow"), tok.encode("and grow more")]
    sampling = _greedy(tok, 11, [], "never")
    eager, compiled, calls = _both(model, prompts, 2, sampling, monkeypatch)
    _assert_same(eager, compiled)
    start = max(len(p) for p in prompts) - 1  # the prefilled positions
    assert lengths == [start + 3, start + 6, start + 9, start + 11]  # the last: what is left
    assert calls == 11


def test_temperature_sampling_draws_the_same(model_and_tokenizer):
    """The sampler sees the same logits (to float rounding): the same seeded draws."""
    from mlx_lm.sample_utils import make_sampler

    model, tok = model_and_tokenizer
    sampling = Sampling(10, make_sampler(1.0), [], return_logprobs=True)
    prompts = [tok.encode("sample"), tok.encode("sample this too")]
    mx.random.seed(7)
    eager = generate_groups(
        model, prompts, 3, Sampling(**{**vars(sampling), "compiled_decode": "never"})
    )
    mx.random.seed(7)
    compiled = generate_groups(
        model, prompts, 3, Sampling(**{**vars(sampling), "compiled_decode": "always"})
    )
    _assert_same(eager, compiled)


def test_where_the_compiled_step_applies(model_and_tokenizer, monkeypatch):
    model, tok = model_and_tokenizer
    assert decode_step.wanted("always") and not decode_step.wanted("never")
    assert decode_step.wanted("auto") == (mx.default_device() == mx.cpu)
    caches = [prefill(model, tok.encode("a prompt")) for _ in range(2)]
    merged = [layer[0].merge(list(layer)) for layer in zip(*caches)]
    assert isinstance(decode_step.decode_step(model, merged, 4, "always"), decode_step.CompiledStep)
    assert isinstance(decode_step.decode_step(model, merged, 4, "never"), decode_step.EagerStep)
    empty = [layer[0].merge(list(layer)) for layer in zip(prefill(model, [5]), prefill(model, [6]))]
    assert not decode_step.compilable(model, empty)  # one-token prompts: nothing prefilled
    monkeypatch.setattr(model, "model_type", "gpt_oss")
    assert not decode_step.compilable(model, merged)  # a family whose attention needs more


def test_the_setting_is_validated() -> None:
    cfg = load_config(None, ["data.train=builtin:arithmetic", "rollout.compiled_decode=never"])
    assert cfg.rollout.compiled_decode == "never"
    with pytest.raises(UserError, match="compiled_decode"):
        load_config(None, ["data.train=builtin:arithmetic", "rollout.compiled_decode=sometimes"])
