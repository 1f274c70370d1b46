"""DemoSettings against configs/demo.py: same fields, same identities, every bad field named."""

import json

import pytest

from dlogp_jax.demo import context
from dlogp_jax.demo.settings import DemoSettings, WorldSettings
from tests.cli.configs import get_config


@pytest.mark.parametrize("arg", [None, "smoke"])
def test_round_trip_gives_the_config_dict(arg):
    config = get_config("demo", arg)
    settings = DemoSettings.from_dict(config.to_dict())
    # Byte for byte: results.json records this dict, stages/*.json its sections.
    assert json.dumps(settings.to_dict()) == json.dumps(config.to_dict())
    assert json.dumps(settings.section_dict("world")) == json.dumps(config.world.to_dict())


def test_defaults_are_the_configs():
    assert DemoSettings.from_dict(get_config("demo").to_dict()) == DemoSettings()


def test_rl_run_key_names_only_what_changes_a_run():
    config = get_config("demo", "smoke")
    settings = DemoSettings.from_dict(config.to_dict())
    key = context.rl_run_key(settings, "reshape", 1)
    shared = {k: v for k, v in config.rl.to_dict().items()}
    for k in ("methods", "seeds", "workers", "weight_c", "reshape_c"):
        del shared[k]
    want = {"world": config.world.to_dict(), "rl": shared}
    assert key == {**want, "method": "reshape", "weight_c": config.rl.reshape_c, "seed": 1}
    assert context.rl_run_key(settings, "none", 0)["weight_c"] is None
    # the runs' evaluation samples at exp.top_p: another top_p is another run
    config.exp.top_p = 0.7
    other = context.rl_run_key(DemoSettings.from_dict(config.to_dict()), "reshape", 1)
    assert other == {**key, "eval_top_p": 0.7}
    assert settings.rl.runs[:3] == [("none", 0), ("none", 1), ("reshape_reversed", 0)]


def test_world_identity_names_operators_only_when_not_default():
    world = WorldSettings.smoke()
    assert "operators" not in world.flat_dict()
    assert WorldSettings.from_flat_dict(world.flat_dict()) == world


def test_every_bad_field_is_named_at_once():
    config = get_config("demo", "smoke").to_dict()
    config["rl"]["seeds"] = "0,x"
    config["exp"]["rates"] = "0.1,1.5"
    config["exp"]["extrap_rate"] = 0.0
    config["stages"] = "world,plots"
    with pytest.raises(ValueError) as e:
        DemoSettings.from_dict(config)
    assert str(e.value).splitlines() == [
        "rl.seeds='0,x': write comma-separated int values.",
        "exp.rates: [1.5] out of range in '0.1,1.5'; use values in [1e-06, 1.0].",
        "exp.extrap_rate=0.0: use a rate in (0, 1].",
        "stages: unknown ['plots'] in 'world,plots'; use some of world, rl, direction, "
        "replacement, extrapolation, reweighting, report.",
    ]
