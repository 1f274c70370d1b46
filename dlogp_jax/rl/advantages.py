"""GRPO advantages, DAPO's overlong shaping and dynamic-sampling group filter (NumPy, host side).

Legend: G prompts (groups), R responses per prompt.
"""

from __future__ import annotations

import numpy as np


def grpo_advantages(rewards: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """(r − mean_group) / (std_group + eps) for rewards [G, R]; unbiased std as torch.std (verl)."""
    r = np.asarray(rewards, np.float64)
    std = r.std(axis=1, ddof=1, keepdims=True) if r.shape[1] > 1 else np.zeros((r.shape[0], 1))
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
