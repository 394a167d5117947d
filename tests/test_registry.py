"""Registry: unknown keyword overrides get a ValueError listing the environment's parameters."""

from __future__ import annotations

import pytest

import jaxmarl_envs
from jaxmarl_envs.registry import families, parameters


def test_unknown_keyword_names_it_and_lists_the_parameters():
    with pytest.raises(ValueError) as err:
        jaxmarl_envs.make("rware-tiny-4ag", tme_limit=50, bogus=1)
    message = str(err.value)
    assert "unknown keyword argument(s) 'tme_limit', 'bogus'" in message
    assert "Did you mean 'time_limit' for 'tme_limit'?" in message
    assert "RobotWarehouse accepts: " in message
    assert all(name in message for name in parameters("rware-tiny-4ag"))
    assert jaxmarl_envs.make("rware-tiny-4ag", time_limit=50).time_limit == 50


def test_parameters_of_each_family():
    assert {"time_limit", "num_agents", "shelf_rows"} <= set(parameters("rware-tiny-4ag"))
    assert {"grid_size", "num_food", "time_limit"} <= set(parameters("lbf-8x8-2p-2f-coop"))
    # MPE forwards **scenario_kwargs and checks them itself (with its own ValueError).
    assert parameters("mpe-simple_spread") is None
    with pytest.raises(ValueError, match="unexpected keyword argument 'bogus'"):
        jaxmarl_envs.make("mpe-simple_spread", bogus=1)
    for env_id in ("matrix-climbing", "lbf-8x8-2p-2f-coop"):
        with pytest.raises(ValueError, match="unknown keyword argument"):
            jaxmarl_envs.make(env_id, no_such_parameter=1)


def test_families():
    assert families() == sorted({jaxmarl_envs.spec(i).family for i in jaxmarl_envs.list_envs()})
    assert {"lbf", "rware", "mpe", "matrix"} <= set(families())


def test_lazy_package_exports_every_public_name():
    import subprocess
    import sys

    import jaxmarl_envs

    assert sorted(jaxmarl_envs.__all__) == sorted(jaxmarl_envs._EXPORTS)
    for name in jaxmarl_envs.__all__:
        assert getattr(jaxmarl_envs, name) is not None
    assert jaxmarl_envs.make is jaxmarl_envs.registry.make
    # A bare import is light: JAX loads only when a name or the registry is first used.
    code = (
        "import sys, jaxmarl_envs; assert 'jax' not in sys.modules; "
        "jaxmarl_envs.list_envs(); assert 'jax' in sys.modules"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
