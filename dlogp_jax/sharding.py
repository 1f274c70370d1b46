"""Device meshes and the one logical-axis rules table.

Every parameter and activation is annotated with logical axis names; `LOGICAL_RULES` maps them to the
mesh axes `data`, `fsdp` and `tensor`. Meshes are built here and nowhere else, always with Auto axis
types (JAX 0.10's `jax.make_mesh` defaults to Explicit, under which GSPMD-style code that shards a
contracting dimension fails).

A logical axis whose size is not divisible by its mesh axes is left replicated instead of raising, so
the same rules serve a 2-kv-head tiny model and a 64-layer 32B model.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

MESH_AXES = ("data", "fsdp", "tensor")

# Parameters use bare names, activations `act_`. FSDP shards the model width of weights; tensor
# parallelism shards heads, MLP width and vocabulary. Batches are split over data and fsdp.
LOGICAL_RULES: dict[str, tuple[str, ...] | None] = {
    "vocab": ("tensor",),
    "embed": ("fsdp",),
    "mlp": ("tensor",),
    "q_heads": ("tensor",),
    "kv_heads": ("tensor",),
    "head_dim": None,
    "layers": None,
    "norm": None,
    "act_batch": ("data", "fsdp"),
    "act_len": None,
    "act_embed": None,
    "act_heads": ("tensor",),
    "act_kv_heads": ("tensor",),
    "act_mlp": ("tensor",),
    "act_vocab": ("tensor",),
    "act_cache_len": None,
}


def parse_mesh_spec(spec: str, num_devices: int) -> dict[str, int]:
    """Parses `"data:2,fsdp:-1,tensor:2"` into axis sizes; `-1` takes the remaining devices.

    Axes not named get size 1. Raises ValueError naming the spec when it does not fit the devices.
    """
    sizes = dict.fromkeys(MESH_AXES, 1)
    named: set[str] = set()
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, _, value = part.partition(":")
        if name not in MESH_AXES or not value.lstrip("-").isdigit():
            raise ValueError(
                f"mesh spec {spec!r}: bad entry {part!r}; write e.g. 'data:2,fsdp:-1,tensor:2' "
                f"with axes from {MESH_AXES}."
            )
        if name in named:
            raise ValueError(f"mesh spec {spec!r}: axis {name!r} given twice.")
        named.add(name)
        sizes[name] = int(value)
    rest = [a for a, s in sizes.items() if s == -1]
    if len(rest) > 1:
        raise ValueError(f"mesh spec {spec!r}: only one axis may be -1.")
    fixed = math.prod(s for s in sizes.values() if s != -1)
    if rest:
        if num_devices % fixed:
            raise ValueError(f"mesh spec {spec!r}: {num_devices} devices not divisible by {fixed}.")
        sizes[rest[0]] = num_devices // fixed
    if math.prod(sizes.values()) > num_devices:
        raise ValueError(
            f"mesh spec {spec!r} needs {math.prod(sizes.values())} devices but {num_devices} are "
            "available; use -1 for one axis to take the rest."
        )
    return sizes


def make_mesh(spec: str = "fsdp:-1", devices: Sequence[jax.Device] | None = None) -> Mesh:
    """Builds the (data, fsdp, tensor) mesh with Auto axis types.

    Args:
      spec: axis sizes, e.g. "data:2,fsdp:2,tensor:2"; "fsdp:-1" puts all devices on fsdp; a spec
        naming fewer devices than available (no -1) uses the first ones.
      devices: defaults to all devices of all processes (multi-host meshes span every host).
    """
    devices = list(jax.devices() if devices is None else devices)
    sizes = parse_mesh_spec(spec, len(devices))
    shape = tuple(sizes[a] for a in MESH_AXES)
    devices = devices[: math.prod(shape)]  # e.g. "fsdp:1" on an 8-device host uses one device
    if len(devices) == len(jax.devices()):
        # make_mesh orders devices for the physical topology (ICI rings on TPU).
        return jax.make_mesh(shape, MESH_AXES, axis_types=(AxisType.Auto,) * 3, devices=devices)
    return Mesh(np.asarray(devices).reshape(shape), MESH_AXES, axis_types=(AxisType.Auto,) * 3)


def logical_to_spec(
    logical_axes: Sequence[str | None], shape: Sequence[int] | None = None, mesh=None
) -> P:
    """Maps logical axis names to a PartitionSpec through LOGICAL_RULES.

    With `shape` and `mesh`, a dimension that is not divisible by its mesh axes stays replicated,
    and a mesh axis is used at most once.
    """
    used: set[str] = set()
    out = []
    for i, name in enumerate(logical_axes):
        if name is not None and name not in LOGICAL_RULES:
            raise KeyError(f"logical axis {name!r} is not in LOGICAL_RULES")
        axes = LOGICAL_RULES[name] if name else None
        if axes is None:
            out.append(None)
            continue
        keep = []
        for a in axes:
            if a in used or (mesh is not None and a not in mesh.shape):
                continue
            if shape is not None and mesh is not None:
                size = math.prod(mesh.shape[x] for x in (*keep, a))
                if shape[i] % size:
                    continue
            keep.append(a)
        used.update(keep)
        out.append(tuple(keep) if len(keep) > 1 else (keep[0] if keep else None))
    return P(*out)


def named_sharding(mesh: Mesh, logical_axes: Sequence[str | None], shape=None) -> NamedSharding:
    """NamedSharding for an array with the given logical axes (and shape, for divisibility)."""
    return NamedSharding(mesh, logical_to_spec(logical_axes, shape, mesh))


def constrain(x: jax.Array, logical_axes: Sequence[str | None]) -> jax.Array:
    """Sharding constraint on an activation, under the mesh set with `jax.set_mesh`; no-op without."""
    mesh = jax.sharding.get_abstract_mesh()
    if mesh.empty:
        return x
    return jax.lax.with_sharding_constraint(x, logical_to_spec(logical_axes, x.shape, mesh))


def replicated(tree):
    """Every leaf constrained to be whole on every device, under the mesh set with `jax.set_mesh`
    (no-op without): what a multi-process host loop reads back with `jax.device_get`, since a
    fully replicated array is readable on each process while a batch-sharded one is not."""
    mesh = jax.sharding.get_abstract_mesh()
    if mesh.empty:
        return tree
    return jax.tree.map(lambda x: jax.lax.with_sharding_constraint(x, P()), tree)


def tree_shardings(mesh: Mesh, axes_tree, shapes_tree):
    """Maps a tree of logical-axes tuples and a matching tree of shapes to NamedShardings."""
    return jax.tree.map(
        lambda axes, s: named_sharding(mesh, axes, getattr(s, "shape", s)),
        axes_tree,
        shapes_tree,
        is_leaf=lambda x: isinstance(x, tuple) and all(isinstance(a, (str, type(None))) for a in x),
    )


def place(x: np.ndarray, mesh: Mesh | None, logical_axes: Sequence[str | None] | None = None):
    """A host array as a global jax.Array sharded by its logical axes (batch-first by default).

    Every process passes the same full array; `make_array_from_callback` hands each device only its
    own slice, which is valid whatever devices a shard spans (`host_local_array_to_global_array` is
    not, when a row's devices cross hosts). Without a mesh the array is put on the default device.

    Args:
      x: [D0, ...] host array. logical_axes: one name per dimension; default ("act_batch", None...).
    """
    if mesh is None:
        return jax.device_put(x)
    axes = (
        tuple(logical_axes) if logical_axes is not None else ("act_batch",) + (None,) * (x.ndim - 1)
    )
    sharding = named_sharding(mesh, axes, x.shape)
    return jax.make_array_from_callback(x.shape, sharding, lambda idx: x[idx])


def gather_to_host(tree):
    """Every leaf as a full NumPy array.

    Arrays spanning devices of other processes are all-gathered (a collective: every process must
    call this with the same global arrays); process-local arrays are simply copied, so a single
    process may call this alone (e.g. process 0 exporting a model it built itself).
    """

    def get(x):
        if isinstance(x, jax.Array) and not x.is_fully_addressable:
            from jax.experimental import multihost_utils

            return np.asarray(multihost_utils.process_allgather(x, tiled=True))
        return np.asarray(x)

    return jax.tree.map(get, tree)
