"""Rollouts: sampled ids and log-probs agree with a teacher-forced pass; groups share a prompt."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest
from mlx_lm import load

from mlx_grpo.config import RolloutConfig
from mlx_grpo.train.batch import pack
from mlx_grpo.train.logprobs import completion_logprobs, full_logits_logprobs
from mlx_grpo.train.rollout import generate_groups, sampling_from_config


@pytest.fixture(scope="module")
def model_and_tokenizer(tiny_model_dir):
    return load(str(tiny_model_dir))


@pytest.fixture
def fresh_model(tiny_model_dir):
    return load(str(tiny_model_dir))[0]


def _rollout(model, tok, prompts, g=3, max_tokens=12, **kw):
    sampling = sampling_from_config(RolloutConfig(max_completion_length=max_tokens, **kw), tok)
    sampling.return_logprobs = True
    mx.random.seed(1)
    return generate_groups(model, prompts, g, sampling)


def test_logprobs_equal_teacher_forcing_with_prompts_of_different_lengths(model_and_tokenizer):
    model, tok = model_and_tokenizer
    prompts = [tok.encode("hi"), tok.encode("a much longer prompt, with more tokens in it")]
    out = _rollout(model, tok, prompts)
    assert len(out.completion_ids) == 6
    prompt_per_completion = [out.prompt_of(n) for n in range(6)]
    packed = pack(prompt_per_completion, out.completion_ids)
    logp, _ = completion_logprobs(model, packed, temperature=1.0, chunk=5)
    for n, ids in enumerate(out.completion_ids):
        # same ids: the scorer reads exactly the tokens the sampler produced
        assert np.array(packed.targets[n, : len(ids)]).tolist() == ids
        np.testing.assert_allclose(np.array(logp[n, : len(ids)]), out.logprobs[n], atol=2e-4)


def test_chunked_logprobs_match_full_logits(model_and_tokenizer):
    model, tok = model_and_tokenizer
    prompts = [tok.encode("x"), tok.encode("yyyyyyyyy")]
    comps = [tok.encode("hello world"), tok.encode("ok")]
    packed = pack(prompts, comps)
    for temp in (1.0, 0.7):
        chunked, _ = completion_logprobs(model, packed, temperature=temp, chunk=3)
        full = full_logits_logprobs(model, packed, temperature=temp)
        m = np.array(packed.mask) > 0
        np.testing.assert_allclose(np.array(chunked)[m], np.array(full)[m], atol=1e-5)


def test_entropy_is_that_of_the_full_softmax_and_optional(model_and_tokenizer):
    """The head reuses its exponentials for the entropy: H = -sum p log p of the full
    softmax at every completion position; asked for no entropy, the log-probs are the same."""
    from mlx_grpo.train.logprobs import token_logprobs

    model, tok = model_and_tokenizer
    packed = pack([tok.encode("x"), tok.encode("yyyy")], [tok.encode("hello"), tok.encode("ok")])
    for temp in (1.0, 0.7):
        logp, entropy = token_logprobs(model, packed.tokens, temp, 3)
        only, none = token_logprobs(model, packed.tokens, temp, 3, entropy=False)
        logits = model(packed.inputs).astype(mx.float32) / temp
        logits = mx.take_along_axis(logits, packed.positions[..., None], axis=1)
        p = mx.softmax(logits, axis=-1)
        want = -(p * mx.log(mx.maximum(p, 1e-30))).sum(-1)
        m = np.array(packed.mask) > 0
        np.testing.assert_allclose(np.array(entropy)[m], np.array(want)[m], atol=1e-4)
        assert none is None and mx.array_equal(only, logp)


def test_chunked_gradients_match_full_logits(model_and_tokenizer):
    import mlx.nn as nn
    from mlx.utils import tree_flatten

    model, tok = model_and_tokenizer
    packed = pack([tok.encode("abc"), tok.encode("de")], [tok.encode("xyz!"), tok.encode("q")])

    def grads(fn):
        g = nn.value_and_grad(model, lambda m: (fn(m) * packed.mask).sum())(model)[1]
        return dict(tree_flatten(g))

    a = grads(lambda m: completion_logprobs(m, packed, 1.0, chunk=2)[0])
    b = grads(lambda m: full_logits_logprobs(m, packed, 1.0))
    for k in b:
        np.testing.assert_allclose(np.array(a[k]), np.array(b[k]), atol=1e-4, rtol=1e-3)


def test_truncation_marks_and_stop_tokens(model_and_tokenizer):
    model, tok = model_and_tokenizer
    out = _rollout(model, tok, [tok.encode("count")], g=4, max_tokens=6)
    for ids, truncated in zip(out.completion_ids, out.truncated):
        assert 1 <= len(ids) <= 6
        stopped = ids[-1] in tok.eos_token_ids
        assert truncated == (not stopped and len(ids) == 6)


def test_greedy_siblings_are_identical_and_equal_single_decoding(model_and_tokenizer):
    """With temperature ~0 all G siblings of a prompt follow the shared prefilled cache."""
    from mlx_lm.generate import generate_step

    model, tok = model_and_tokenizer
    prompt = tok.encode("the same prompt")
    sampling = sampling_from_config(RolloutConfig(max_completion_length=8, temperature=1.0), tok)
    sampling.sampler = lambda logprobs: mx.argmax(logprobs, axis=-1)
    out = generate_groups(model, [prompt], 3, sampling)
    assert out.completion_ids[0] == out.completion_ids[1] == out.completion_ids[2]
    single = [int(t) for t, _ in generate_step(mx.array(prompt), model, max_tokens=8)]
    assert out.completion_ids[0] == single[: len(out.completion_ids[0])]


def test_stop_strings_end_a_completion(model_and_tokenizer):
    model, tok = model_and_tokenizer
    out = _rollout(model, tok, [tok.encode("go")], g=8, max_tokens=40, stop=["a", "e", "o"])
    stops = {tuple(tok.encode(s)) for s in "aeo"}
    for ids, truncated in zip(out.completion_ids, out.truncated):
        if not truncated and ids[-1] not in tok.eos_token_ids:
            assert (ids[-1],) in stops


def _greedy(tok, max_tokens: int, stops: list[list[int]]):
    from mlx_grpo.train.rollout import Sampling

    argmax = lambda logprobs: mx.argmax(logprobs, axis=-1)  # noqa: E731
    return Sampling(max_tokens, argmax, stops, return_logprobs=True)


def test_rows_that_stop_leave_the_batch_and_the_rest_decode_on(model_and_tokenizer, monkeypatch):
    """Four prompts greedy: two stop early (a stop made of their own 2nd / 3rd token), so the
    batch is cut down to the two live rows; every row still equals its single-prompt decode,
    tokens and log-probs, and stops exactly where its stop sequence first appears."""
    from mlx_lm.generate import generate_step

    from mlx_grpo.train import rollout

    model, tok = model_and_tokenizer
    prompts = [tok.encode(t) for t in ("one", "a second prompt", "three three", "and a fourth")]
    alone = [[int(t) for t, _ in generate_step(mx.array(p), model, max_tokens=10)] for p in prompts]
    stops = [[alone[0][1]], [alone[1][2]]]
    compactions: list[list[int]] = []
    real = rollout._compact
    monkeypatch.setattr(
        rollout,
        "_compact",
        lambda c, r, keep, cur: compactions.append(keep) or real(c, r, keep, cur),
    )
    out = generate_groups(model, prompts, 1, _greedy(tok, 10, stops))
    assert compactions, "the finished rows never left the batch"
    for ids, single, truncated, logps in zip(
        out.completion_ids, alone, out.truncated, out.logprobs
    ):
        ends = [i + 1 for i, t in enumerate(single) if [t] in stops]
        want = single[: ends[0]] if ends else single
        assert ids == want and truncated == (not ends) and len(logps) == len(ids)
    packed = pack(prompts, out.completion_ids)
    logp, _ = completion_logprobs(model, packed, temperature=1.0, chunk=5)
    for n, ids in enumerate(out.completion_ids):
        np.testing.assert_allclose(np.array(logp[n, : len(ids)]), out.logprobs[n], atol=2e-4)


def test_pipelined_decoding_samples_the_same_tokens(model_and_tokenizer, monkeypatch):
    """The GPU path (step t + 1 queued before step t is read) draws exactly what the
    step-by-step CPU path draws, compactions and log-probs included."""
    from mlx_grpo.train import rollout

    model, tok = model_and_tokenizer
    prompts = [tok.encode("go"), tok.encode("a longer prompt here")]
    plain = _rollout(model, tok, prompts, g=4, max_tokens=20, stop=["a", "e"])
    monkeypatch.setattr(rollout, "pipelined", lambda: True)
    queued = _rollout(model, tok, prompts, g=4, max_tokens=20, stop=["a", "e"])
    assert queued.completion_ids == plain.completion_ids
    assert queued.truncated == plain.truncated
    np.testing.assert_allclose(sum(queued.logprobs, []), sum(plain.logprobs, []), atol=1e-6)


def test_unnormalized_logits_draw_the_same_for_shift_invariant_samplers(model_and_tokenizer):
    """Temperature / top-k sampling skips the log-sum-exp; top-p and min-p keep it."""
    from mlx_grpo.train.rollout import shift_invariant

    model, tok = model_and_tokenizer
    assert shift_invariant(RolloutConfig(top_k=5))
    assert not shift_invariant(RolloutConfig(top_p=0.9))
    assert not shift_invariant(RolloutConfig(min_p=0.1))
    sampling = _greedy(tok, 12, [[t] for t in tok.eos_token_ids])
    sampling.return_logprobs = False
    normalized = generate_groups(model, [tok.encode("hello")], 2, sampling)
    sampling.shift_invariant = True
    raw = generate_groups(model, [tok.encode("hello")], 2, sampling)
    assert raw.completion_ids == normalized.completion_ids


def add_lora(model, layers: int) -> None:
    """LoRA rank 4 on the last `layers` layers, with non-zero B matrices (so every adapter
    gets a gradient)."""
    from mlx.utils import tree_flatten, tree_unflatten
    from mlx_lm.tuner.utils import linear_to_lora_layers

    model.freeze()
    linear_to_lora_layers(model, layers, {"rank": 4, "scale": 20.0, "dropout": 0.0})
    mx.random.seed(3)
    for name, p in tree_flatten(model.trainable_parameters()):
        if name.endswith("lora_b"):
            model.update(tree_unflatten([(name, 0.05 * mx.random.normal(p.shape))]))


def two_groups(tok) -> tuple[list[list[int]], list[int], list[list[int]]]:
    """Two prompts of different lengths, two completions each: (prompts, owner, completions)."""
    prompts = [tok.encode("hi"), tok.encode("a much longer prompt, padded on the left")]
    comps = [tok.encode(t) for t in ("abc", "xyzzy!", "q", "hello there")]
    return prompts, [0, 0, 1, 1], comps


def test_shared_prompt_scoring_equals_per_row_scoring(model_and_tokenizer, fresh_model):
    """Each prompt run once for its G completions gives the same log-probs and gradients."""
    import mlx.nn as nn
    from mlx.utils import tree_flatten

    from mlx_grpo.train.batch import pack_groups

    _, tok = model_and_tokenizer
    model = fresh_model
    add_lora(model, 2)
    prompts, owner, comps = two_groups(tok)
    rows = pack([prompts[o] for o in owner], comps)
    groups = pack_groups(prompts, owner, comps)
    m = np.array(rows.mask) > 0
    a, _ = completion_logprobs(model, rows, 0.9, 5)
    b, _ = completion_logprobs(model, groups, 0.9, 5)
    np.testing.assert_allclose(np.array(a)[m], np.array(b)[:, : m.shape[1]][m], atol=1e-5)
    wrong, _ = completion_logprobs(model, pack_groups(prompts, [1, 1, 0, 0], comps), 0.9, 5)
    assert (
        np.abs(np.array(a)[m] - np.array(wrong)[:, : m.shape[1]][m]).max() > 0.1
    )  # the prompt really matters

    def grads(fn, packed):
        loss = lambda mm: (fn(mm, packed, 0.9, 5)[0] * packed.mask).sum()  # noqa: E731
        return dict(tree_flatten(nn.value_and_grad(model, loss)(model)[1]))

    ga, gb = grads(completion_logprobs, rows), grads(completion_logprobs, groups)
    for k in ga:
        np.testing.assert_allclose(np.array(ga[k]), np.array(gb[k]), atol=2e-4, rtol=1e-3)


@pytest.mark.parametrize("trainable", ["lora-all-layers", "full"])
def test_checkpointed_shared_scoring_equals_per_row(model_and_tokenizer, fresh_model, trainable):
    """Gradient checkpointing with prompts shared by their completions (one layer at a time,
    recomputed in the backward pass) gives per-row scoring's log-probs and gradients; the
    gradient through the prompts' keys and values reaches every layer."""
    import mlx.nn as nn
    from mlx.utils import tree_flatten

    from mlx_grpo.train.batch import pack_groups
    from mlx_grpo.train.logprobs import layerwise_supported, token_logprobs

    _, tok = model_and_tokenizer
    model = fresh_model
    assert layerwise_supported(model)
    if trainable != "full":
        add_lora(model, len(model.layers))
    prompts, owner, comps = two_groups(tok)
    rows = pack([prompts[o] for o in owner], comps)
    groups = pack_groups(prompts, owner, comps)

    def scored(packed, checkpoint):
        def loss(mm):
            logp = token_logprobs(mm, packed.tokens, 0.9, 5, checkpoint)[0]
            return (logp * packed.mask).sum(), logp

        (_, logp), g = nn.value_and_grad(model, loss)(model)
        return np.array(logp), dict(tree_flatten(g))

    logp_a, ga = scored(rows, False)
    logp_b, gb = scored(groups, True)
    m = np.array(rows.mask) > 0
    np.testing.assert_allclose(logp_a[m], logp_b[:, : m.shape[1]][m], atol=1e-5)
    assert ga.keys() == gb.keys()
    first = [k for k in ga if k.startswith("model.layers.0.")]
    assert first and all(np.abs(np.array(ga[k])).max() > 0 for k in first)
    for k in ga:
        np.testing.assert_allclose(np.array(ga[k]), np.array(gb[k]), atol=2e-4, rtol=1e-3)


def test_cuda_padding_gives_query_lengths_cudnn_can_differentiate(model_and_tokenizer):
    """On CUDA every attention query length is a multiple of 128 (cuDNN's fused backward);
    the extra padding changes no log-prob."""
    from mlx_grpo.train.batch import pack_groups, pad_multiple

    model, tok = model_and_tokenizer
    assert pad_multiple(on_cuda=True) == 128 and pad_multiple(on_cuda=False) == 32
    assert pad_multiple() == 32  # this machine: MLX's CPU backend
    prompts = [tok.encode("hi"), tok.encode("a longer prompt")]
    comps = [tok.encode(t) for t in ("abc", "xyzzy!", "q")]
    owner = [0, 1, 1]
    groups = pack_groups(prompts, owner, comps, multiple=128)
    assert groups.prompts.shape[1] % 128 == 0 and (groups.inputs.shape[1] - 1) % 128 == 0
    rows = pack([prompts[o] for o in owner], comps, multiple=128)
    assert rows.inputs.shape[1] % 128 == 0
    m = np.array(pack_groups(prompts, owner, comps).mask) > 0
    narrow, _ = completion_logprobs(model, pack_groups(prompts, owner, comps), 1.0, 16)
    wide, _ = completion_logprobs(model, groups, 1.0, 16)
    np.testing.assert_allclose(np.array(narrow)[m], np.array(wide)[:, : m.shape[1]][m], atol=1e-5)
    per_row, _ = completion_logprobs(model, rows, 1.0, 16)
    np.testing.assert_allclose(
        np.array(per_row)[:, : m.shape[1]][m], np.array(narrow)[m], atol=1e-5
    )


def test_shared_scoring_of_other_bodies_calls_them_whole(model_and_tokenizer, monkeypatch):
    """Bodies not known to take input embeddings get their token ids: same log-probs."""
    import mlx_grpo.train.logprobs as lp
    from mlx_grpo.train.batch import pack_groups

    model, tok = model_and_tokenizer
    prompts = [tok.encode("hi"), tok.encode("a longer prompt")]
    comps = [tok.encode(t) for t in ("abc", "xyzzy!", "q")]
    groups = pack_groups(prompts, [0, 1, 1], comps)
    m = np.array(groups.mask) > 0
    known, _ = completion_logprobs(model, groups, 1.0, 16)
    monkeypatch.setattr(lp, "layerwise_supported", lambda model: False)
    other, _ = completion_logprobs(model, groups, 1.0, 16)
    np.testing.assert_allclose(np.array(known)[m], np.array(other)[m], atol=1e-5)


def test_merged_adapters_compute_the_same_function_and_are_put_back(
    model_and_tokenizer, fresh_model
):
    """Decoding with LoRA merged into its base: same logits, same sampled tokens and
    sampler log-probs as the adapter layers; afterwards the adapter layers are back, unchanged."""
    from mlx.utils import tree_flatten
    from mlx_lm.tuner.lora import LoRALinear

    from mlx_grpo.train.rollout import merged_adapters

    _, tok = model_and_tokenizer
    add_lora(fresh_model, 2)
    before = {k: np.array(v) for k, v in tree_flatten(fresh_model.parameters())}
    x = mx.array([tok.encode("a prompt of a few tokens")])
    plain = fresh_model(x)
    with merged_adapters(fresh_model):
        assert not any(isinstance(m, LoRALinear) for m in fresh_model.modules())
        merged = fresh_model(x)
    np.testing.assert_allclose(np.array(merged), np.array(plain), atol=1e-4, rtol=1e-4)
    assert any(isinstance(m, LoRALinear) for m in fresh_model.modules())
    after = dict(tree_flatten(fresh_model.parameters()))
    assert before.keys() == after.keys()
    for k, v in before.items():
        np.testing.assert_array_equal(np.array(after[k]), v)  # bit for bit, not re-derived
    prompts = [tok.encode("hi"), tok.encode("two")]
    on = _rollout(fresh_model, tok, prompts, max_tokens=10, merge_adapters=True)
    off = _rollout(fresh_model, tok, prompts, max_tokens=10, merge_adapters=False)
    assert on.completion_ids == off.completion_ids  # the same draws from the same RNG
    for a, b in zip(on.logprobs, off.logprobs):
        np.testing.assert_allclose(a, b, atol=1e-4)


def test_merging_leaves_quantized_bases_alone(fresh_model):
    """A LoRA layer over a 4-bit base is not merged (that would re-quantize the sum)."""
    import mlx.nn as nn
    from mlx_lm.tuner.lora import LoRALinear

    from mlx_grpo.train.rollout import merged_adapters

    nn.quantize(fresh_model, group_size=32, bits=4)
    add_lora(fresh_model, 1)
    n_lora = sum(isinstance(m, LoRALinear) for m in fresh_model.modules())
    with merged_adapters(fresh_model):
        assert sum(isinstance(m, LoRALinear) for m in fresh_model.modules()) == n_lora


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_sampler_logprobs_equal_the_scoring_pass_at_the_training_temperature(
    model_and_tokenizer, fresh_model, temperature
):
    """The claim that lets the sampler's log-probs stand in for logp_old (num_iterations > 1):
    decoding with LoRA merged, each sampled token's log softmax(logits / T) equals the
    teacher-forced scoring pass's (float32), prompts of different lengths, within 1e-4."""
    _, tok = model_and_tokenizer
    add_lora(fresh_model, 2)
    prompts = [tok.encode("hi"), tok.encode("a much longer prompt, with more tokens in it")]
    sampling = sampling_from_config(
        RolloutConfig(max_completion_length=12, temperature=temperature), tok
    )
    sampling.return_logprobs, sampling.logprob_temperature = True, temperature
    mx.random.seed(2)
    out = generate_groups(fresh_model, prompts, 3, sampling)
    packed = pack([out.prompt_of(n) for n in range(6)], out.completion_ids)
    logp, _ = completion_logprobs(fresh_model, packed, temperature=temperature, chunk=5)
    for n, ids in enumerate(out.completion_ids):
        assert len(out.logprobs[n]) == len(ids)
        np.testing.assert_allclose(np.array(logp[n, : len(ids)]), out.logprobs[n], atol=1e-4)


@pytest.mark.parametrize("lora", ["full", "lora"])
def test_sampler_old_logp_replaces_the_old_policy_pass(tmp_path, tiny_model_dir, lora):
    """objective.sampler_old_logp: the micro-batches carry the rollout's log-probs as logp_old,
    equal to what the old-policy pass computes, and the step trains with them."""
    from test_train_e2e import make_config

    from mlx_grpo.config import load_config
    from mlx_grpo.train.batch import micro_batches
    from mlx_grpo.train.trainer import Trainer

    path = make_config(tmp_path, str(tiny_model_dir), rollout={"temperature": 0.8})
    sets = ["objective.num_iterations=2", "objective.sampler_old_logp=true"]
    trainer = Trainer(load_config(path, [*sets, f"lora.fine_tune_type={lora}"]), tmp_path / "r")
    examples = trainer.stream.next_batch(2)
    rollout = trainer.rollout(examples)
    n = len(rollout.completion_ids)
    batches = micro_batches(rollout, np.ones(n), np.ones(2, dtype=bool), trainer.batch_spec)
    for b in batches:
        scored = np.array(trainer._logprobs(trainer.policy.model, b))
        m = np.array(b.mask) > 0
        np.testing.assert_allclose(np.array(b.old_logp)[m], scored[m], atol=1e-4)
    assert np.isfinite(trainer.train_step().metrics["loss"])
    plain = Trainer(load_config(path, ["objective.num_iterations=2"]), tmp_path / "p")
    assert plain.sampling.return_logprobs is False  # off by default: the pass runs


def test_broken_speed_settings_are_one_clear_error():
    from mlx_grpo.config import load_config
    from mlx_grpo.errors import UserError

    base = ["data.train=builtin:arithmetic"]
    with pytest.raises(UserError, match="needs num_iterations > 1"):
        load_config(None, [*base, "objective.sampler_old_logp=true"])
    with pytest.raises(UserError) as err:
        load_config(None, [*base, "rollout.merge_adapters=sometimes"])
    assert "rollout.merge_adapters" in f"{err.value} {err.value.where}"
