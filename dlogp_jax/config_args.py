"""Helpers for `configs/*.py`: `parse_arg` and the multi-host block (config files import this)."""

import ml_collections


def parse_arg(arg, **defaults):
    """Parses `"demo,model=qwen"`-style config args: bare words become True, `k=v` are typed like
    their default. Unknown keys raise, naming the known ones."""
    out = ml_collections.ConfigDict(defaults)
    for part in filter(None, (arg or "").split(",")):
        key, eq, value = part.partition("=")
        if key not in defaults:
            raise ValueError(f"unknown config arg {key!r}; known: {sorted(defaults)}")
        if not eq:
            out[key] = True
        elif isinstance(defaults[key], bool):
            out[key] = value.lower() in ("1", "true", "yes")
        else:
            out[key] = type(defaults[key])(value)
    return out


def distributed():
    """`jax.distributed` settings; empty coordinator = auto-detect (TPU pods, SLURM)."""
    d = ml_collections.ConfigDict()
    d.enabled = False  # call jax.distributed.initialize() (or set DLOGP_DISTRIBUTED=1)
    d.coordinator_address = ""  # "host:port" of process 0; "" = auto-detect (TPU pods, SLURM)
    d.num_processes = 1  # processes in the job (read only with coordinator_address)
    d.process_id = 0  # this process's index, 0-based (read only with coordinator_address)
    return d
