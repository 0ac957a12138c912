"""The GRPO objective (DeepSeekMath, arXiv 2402.03300) with the later fixes.

The formulas, each implemented below:
  advantage     A_i = (r_i - mean(r_group)) / (std(r_group) + 1e-4)   (std with Bessel)
                scale_rewards: group | batch (std over the batch) | none (Dr. GRPO, 2503.20783)
  ratio         r_t = exp(logp_t - logp_old_t)             (token level)
                r   = exp(mean_t(logp_t - logp_old_t))     (sequence level, GSPO 2507.18071)
  surrogate     -min(r A, clip(r, 1 - eps, 1 + eps_high) A), r capped above by delta if set
  KL (k3)       exp(ref - logp) - (ref - logp) - 1, added as + beta * KL per token
  clip ratios   tokens (sequence level: sequences) whose delta-capped ratio is outside
                [1 - eps, 1 + eps_high] on the side that clips (A < 0 below, A > 0 above)
  aggregation   grpo: mean over sequences of token means; bnpo: token sum / micro-batch tokens;
                dr_grpo: token sum / (sequences * max_completion_length);
                dapo: token sum / active tokens in the whole generation batch (2503.14476)
Masks are applied before exp() so padding can never produce inf * 0 = NaN.

The loss of one micro-batch is scaled so that summing over micro-batches gives the loss of the
whole generation batch: gradient accumulation is a sum of micro-batch gradients.
"""

from __future__ import annotations

from dataclasses import dataclass

import mlx.core as mx
import numpy as np

from mlx_grpo.config import ObjectiveConfig

ADV_EPS = 1e-4


# ----------------------------------------------------------------------------- advantages


def group_advantages(rewards: np.ndarray, group_size: int, scale: str) -> np.ndarray:
    """A_i per completion; rewards are group-major ([B * G])."""
    grouped = rewards.reshape(-1, group_size).astype(np.float64)
    centered = grouped - grouped.mean(axis=1, keepdims=True)
    if scale == "group":
        std = grouped.std(axis=1, ddof=1, keepdims=True)
    elif scale == "batch":
        std = np.full_like(grouped[:, :1], rewards.std(ddof=1) if rewards.size > 1 else 0.0)
    else:
        return centered.reshape(-1)
    return (centered / (std + ADV_EPS)).reshape(-1)


def informative_groups(rewards: np.ndarray, group_size: int, tol: float = 1e-9) -> np.ndarray:
    """[B] True where a group's rewards are not all equal (zero-variance groups carry no signal)."""
    grouped = rewards.reshape(-1, group_size)
    return (grouped.max(axis=1) - grouped.min(axis=1)) > tol


# ----------------------------------------------------------------------------- the loss


@dataclass(frozen=True)
class LossSettings:
    """The parts of the objective config the per-token loss needs."""

    loss_type: str
    level: str
    epsilon_low: float
    epsilon_high: float
    delta: float | None
    beta: float

    @classmethod
    def from_config(cls, cfg: ObjectiveConfig) -> LossSettings:
        high = cfg.epsilon_high if cfg.epsilon_high is not None else cfg.epsilon
        return cls(
            cfg.loss_type, cfg.importance_sampling_level, cfg.epsilon, high, cfg.delta, cfg.beta
        )


def normalizer(
    loss_type: str,
    mask_mb: np.ndarray,
    total_sequences: int,
    total_tokens: float,
    num_micro_batches: int,
    max_completion_length: int,
) -> float:
    """The constant a micro-batch's summed loss is divided by (see module docstring)."""
    if loss_type == "grpo":
        return float(total_sequences)
    if loss_type == "bnpo":
        return max(float(mask_mb.sum()), 1.0) * num_micro_batches
    if loss_type == "dr_grpo":
        return float(total_sequences * max_completion_length)
    return max(float(total_tokens), 1.0)


def log_ratio(logp: mx.array, old_logp: mx.array, mask: mx.array, level: str) -> mx.array:
    """log r per token ([N, T]); at sequence level the masked mean, broadcast over tokens."""
    diff = mx.where(mask > 0, logp - old_logp, 0.0)
    if level == "token":
        return diff
    seq = diff.sum(axis=1, keepdims=True) / mx.maximum(mask.sum(axis=1, keepdims=True), 1.0)
    return mx.broadcast_to(seq, diff.shape)


def k3_kl(logp: mx.array, ref_logp: mx.array, mask: mx.array) -> mx.array:
    """Schulman's k3 estimator of KL(pi || ref), per token, zero on padding."""
    d = mx.where(mask > 0, ref_logp - logp, 0.0)
    return mx.exp(d) - d - 1.0


def aggregate(per_token: mx.array, mask: mx.array, loss_type: str, norm: mx.array) -> mx.array:
    """Masked reduction of per-token losses for one micro-batch (divided by `norm`)."""
    masked = per_token * mask
    if loss_type == "grpo":
        seq_mean = masked.sum(axis=1) / mx.maximum(mask.sum(axis=1), 1.0)
        return seq_mean.sum() / norm
    return masked.sum() / norm


def grpo_loss(
    logp: mx.array,
    old_logp: mx.array | None,
    ref_logp: mx.array | None,
    advantages: mx.array,
    mask: mx.array,
    norm: mx.array,
    s: LossSettings,
) -> tuple[mx.array, dict[str, mx.array]]:
    """Clipped surrogate + beta * k3 KL for one micro-batch; returns (loss, token-sum stats)."""
    old = mx.stop_gradient(logp) if old_logp is None else old_logp
    ratio = mx.exp(log_ratio(logp, old, mask, s.level))
    adv = advantages[:, None]
    capped = ratio if s.delta is None else mx.minimum(ratio, s.delta)
    clipped = mx.clip(ratio, 1.0 - s.epsilon_low, 1.0 + s.epsilon_high)
    per_token = -mx.minimum(capped * adv, clipped * adv)
    stats: dict[str, mx.array] = {}
    if s.beta > 0 and ref_logp is not None:
        # the loss without its KL term (with beta = 0 the loss itself is the policy loss)
        stats["policy_loss"] = mx.stop_gradient(aggregate(per_token, mask, s.loss_type, norm))
        kl = k3_kl(logp, ref_logp, mask)
        per_token = per_token + s.beta * kl
        stats["kl_sum"] = mx.stop_gradient((kl * mask).sum())
    stats |= clip_counts(capped, adv, mask, s)
    return aggregate(per_token, mask, s.loss_type, norm), stats


def clip_counts(
    capped: mx.array, adv: mx.array, mask: mx.array, s: LossSettings
) -> dict[str, mx.array]:
    """How many tokens (token level) or sequences (sequence level) fall outside the clip
    range on the side where clipping acts, measured on the delta-capped ratio, as TRL does."""
    low = (capped < 1.0 - s.epsilon_low) & (adv < 0)
    high = (capped > 1.0 + s.epsilon_high) & (adv > 0)
    live = mask.sum(axis=1) > 0  # [N] real sequences (padding rows have no tokens)
    if s.level == "sequence":  # the ratio is one per sequence, broadcast over its tokens
        low, high = low[:, 0] & live, high[:, 0] & live
        return {
            "clip_low_sum": low.sum(),
            "clip_high_sum": high.sum(),
            "clip_region_sum": (low | high).sum(),
            "sequences": live.sum(),
        }
    return {
        "clip_low_sum": (low * mask).sum(),
        "clip_high_sum": (high * mask).sum(),
        "clip_region_sum": ((low | high) * mask).sum(),
        "sequences": live.sum(),
    }
