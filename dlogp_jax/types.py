"""Axis-letter legend and array aliases shared by every module.

Letters used in einsum strings, shape comments and sharding-spec suffixes:

  B batch            T query positions      S key/cache positions
  D model width      F MLP width            V vocabulary
  N query heads      K kv heads             G query heads per kv head
  H head dim         L layers               R responses per prompt (DAPO group)
  C positions in one scoring chunk
"""

from typing import Any

import jax
from jaxtyping import Array, Bool, Float, Int

Params = dict[str, Any]  # nested dict of jax.Array leaves, see model/transformer.py
PyTree = Any

__all__ = [
    "Array",
    "Bool",
    "Float",
    "Int",
    "Params",
    "PyTree",
    "jax",
]
