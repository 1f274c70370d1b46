"""GRPO advantages, DAPO's overlong shaping and dynamic-sampling group filter (NumPy, host side).

Legend: G prompts (groups), R responses per prompt.
"""

from __future__ import annotations

import numpy as np


def grpo_advantages(rewards: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """(r − mean_group) / (std_group + eps) for rewards [G, R]; unbiased std as torch.std (verl).

    A group of one response (R = 1) has no baseline: verl's `compute_grpo_outcome_advantage` then
    uses mean 0 and std 1, so the advantage is the raw score r / (1 + eps).
    """
    r = np.asarray(rewards, np.float64)
    if r.shape[1] == 1:
        return (r / (1.0 + eps)).astype(np.float32)
    std = r.std(axis=1, ddof=1, keepdims=True)
    return ((r - r.mean(axis=1, keepdims=True)) / (std + eps)).astype(np.float32)


def overlong_penalty(lengths: np.ndarray, max_len: int, buffer: int, factor: float = 1.0):
    """DAPO's soft overlong punishment in tokens: 0 up to max_len − buffer, then linear to −factor.

    Args:
      lengths: response lengths in tokens (any shape).
      max_len: L_max, the response budget. buffer: L_buffer (0 disables the shaping).
    """
    lengths = np.asarray(lengths, np.float64)
    if buffer <= 0:
        return np.zeros_like(lengths)
    expected = max_len - buffer
    return np.minimum(-(lengths - expected) / buffer * factor, 0.0)


def keep_groups(accuracy: np.ndarray) -> np.ndarray:
    """[G] bool: groups whose accuracies [G, R] vary (all-correct / all-wrong carry no signal)."""
    a = np.asarray(accuracy, np.float64)
    return a.std(axis=1) > 0
