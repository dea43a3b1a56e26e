"""Large CPU tensors come from malloc's heap once the factory (or a predictor) ran, not from fresh mmaps.

Each case runs in its own interpreter: the setting is the C library's, for the whole process."""
import json
import os
import subprocess
import sys
import textwrap

import pytest

from nmod.backends.pytorch import host_memory

pytestmark = pytest.mark.skipif(host_memory.mmapped_blocks() is None, reason="needs glibc's mallopt and mallinfo2")

PROBE = textwrap.dedent("""
    import json, torch
    from nmod.backends.pytorch import host_memory
    before = host_memory.mmapped_blocks()
    setup = {setup!r}
    if setup == "factory":
        import nmod
        nmod.NeuralModuleFactory(placement="cpu", **{kwargs})
    elif setup == "keep":
        assert host_memory.keep_large_blocks() == {allowed}
    big = torch.ones(64 << 20, dtype=torch.uint8)  # 64 MiB, above glibc's 32 MiB mmap ceiling
    print(json.dumps({{"new_mmaps": host_memory.mmapped_blocks() - before, "sum": int(big.sum())}}))
""")


def probe(setup: str, kwargs: str = "{}", env: dict | None = None) -> dict:
    code = PROBE.format(setup=setup, kwargs=kwargs, allowed=(env or {}).get(host_memory.ENV) != "0")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, **(env or {})})
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_glibc_default_maps_a_64_mib_tensor_and_keep_large_blocks_serves_it_from_the_heap():
    assert probe("none") == {"new_mmaps": 1, "sum": 64 << 20}
    assert probe("keep") == {"new_mmaps": 0, "sum": 64 << 20}
    assert probe("keep", env={host_memory.ENV: "0"})["new_mmaps"] == 1


def test_a_mistyped_environment_value_is_an_error_naming_it(monkeypatch):
    from nmod.core.errors import ConfigError

    monkeypatch.setenv(host_memory.ENV, "flase")
    with pytest.raises(ConfigError, match="NMOD_KEEP_CPU_MEMORY='flase': expected 0/false/no/off or 1/true/yes/on"):
        host_memory.keep_large_blocks()
    monkeypatch.setenv(host_memory.ENV, " OFF ")
    assert host_memory.allowed_by_env() is False and host_memory.keep_large_blocks() is False


def test_the_cpu_factory_keeps_large_blocks_unless_told_not_to():
    assert probe("factory")["new_mmaps"] == 0
    assert probe("factory", "{'keep_cpu_memory': False}")["new_mmaps"] == 1
