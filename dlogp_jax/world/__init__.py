"""The demo world: a synthetic verifiable arithmetic task and a supervised trainer for its base model.

Facade: re-exports the public API; implementations live in the submodules.
"""
