"""`DecodeSpec`: the settings of one decoding run, and every check of them against the models.

The spec is hashable and frozen; `generate` passes all but threshold and gamma to jit as static
arguments, those two traced. Mode, criterion and vocabulary checks live here and nowhere else:
`__post_init__` checks the settings themselves, `check_models` checks them against the models (an
RL model where the mode needs one, vocabularies that line up), and both `generate` and the step
functions call it.
"""

from __future__ import annotations

import dataclasses

from dlogp_jax.extrapolation import canonical_criterion
from dlogp_jax.sampling.strategies import SamplingParams

MODES = ("single", "replace", "extrapolate", "extrapolate_all")


@dataclasses.dataclass(frozen=True)
class DecodeSpec:
    """What to decode and how. Validated on construction.

    Attributes:
      mode: (docs/method.md §2-§3) "single" (sample from the base model; an RL model, if given,
        only scores), "replace" (base proposes, RL re-draws where the criterion fires),
        "extrapolate" (as replace, re-drawn from π_R^(1+γ)/π_B^γ), "extrapolate_all" (every
        token from π_R^(1+γ)/π_B^γ).
      criterion: one of `extrapolation.CRITERIA` or an official alias (`CRITERION_ALIASES`, stored
        as our name) (replace / extrapolate only).
      threshold: τ of the criterion (e.g. −0.3 for dlogp, a probability for random).
      gamma: γ of the extrapolated distribution (0 is the RL model).
      temperature, top_p, top_k: the sampling filters, applied to every draw (proposal and re-draw);
        temperature 0 is greedy. Criteria always use raw temperature-1 log-probs.
      max_new_tokens: M, generated tokens per sequence at most.
      stop_ids: token ids that end a sequence (included in it), e.g. (<|im_end|>, <|endoftext|>).
      pad_id: token id written after a sequence ends.
      faithful: reproduce the official top-K approximation (extrapolation.TopKView) for criteria and
        re-draws; False (default) is exact over the full vocabulary.
      faithful_top_k: K of faithful mode (50 in the official runs).
      vocab_limit: the tokenizer's length; logits rows at or beyond it are dropped. None: both models'
        full vocabulary, which must then be the same size.
      n: samples per prompt.
    """

    mode: str = "single"
    criterion: str = "dlogp"
    threshold: float = 0.0
    gamma: float = 0.0
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    max_new_tokens: int = 256
    stop_ids: tuple[int, ...] = ()
    pad_id: int = 0
    faithful: bool = False
    faithful_top_k: int = 50
    vocab_limit: int | None = None
    n: int = 1

    def __post_init__(self):
        object.__setattr__(self, "stop_ids", tuple(int(i) for i in self.stop_ids))
        if self.mode not in MODES:
            raise ValueError(f"mode {self.mode!r}: use one of {', '.join(MODES)}.")
        # The official names (neg_logp, entropy, kl_r, ...) become ours: one spec, one compile.
        object.__setattr__(self, "criterion", canonical_criterion(self.criterion))
        self.sampling  # noqa: B018  (validates temperature / top_p / top_k)
        for name in ("max_new_tokens", "n", "faithful_top_k"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)}: must be >= 1.")
        if self.vocab_limit is not None and self.vocab_limit < 1:
            raise ValueError(f"vocab_limit={self.vocab_limit}: must be >= 1 (or None).")

    def check_models(self, base_rows: int, rl_rows: int | None = None) -> None:
        """Checks the models against the spec: an RL model where the mode needs one, and logits rows
        that line up after the `vocab_limit` cut.

        Args:
          base_rows: V_base, the base model's logits (embedding) rows.
          rl_rows: V_rl of the RL model; None when there is no RL model.
        Raises:
          ValueError: the mode needs an RL model and there is none; the two models have different
            row counts and no vocab_limit; vocab_limit exceeds a model's rows.
        """
        if rl_rows is None and self.needs_rl:
            raise ValueError(
                f"mode {self.mode!r} needs params_rl and config_rl (it needs the RL model's "
                "logits at every step)."
            )
        limit = self.vocab_limit
        if limit is None:
            if rl_rows is not None and rl_rows != base_rows:
                raise ValueError(
                    f"base and RL vocabularies differ ({base_rows} vs {rl_rows} rows): set "
                    "vocab_limit to the tokenizer's length."
                )
            return
        for rows in (base_rows, rl_rows):
            if rows is not None and limit > rows:
                raise ValueError(f"vocab_limit={limit} exceeds a model's {rows} rows.")

    @property
    def sampling(self) -> SamplingParams:
        return SamplingParams(self.temperature, self.top_p, self.top_k)

    @property
    def needs_rl(self) -> bool:
        """True for the modes that need an RL model."""
        return self.mode != "single"

    def replace(self, **kw) -> DecodeSpec:
        return dataclasses.replace(self, **kw)
