"""Adapters: the representative ids every adapter test iterates over, and the shared checks
(id resolution, unknown ids, Gymnasium registration and its entry point)."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys

import gymnasium
import jax
import pytest
from toy_env import ToyEnv

import jaxmarl_envs
from jaxmarl_envs import registry
from jaxmarl_envs.adapters import gymnasium as gym_adapter
from jaxmarl_envs.adapters._common import resolve_env

TOY_ID = "adapters-toy"
CLASS_IDS = ("RobotWarehouse-v0", "LevelBasedForaging-v0")


def ensure_toy_registered() -> str:
    """Registers the toy environment once per session (family "adapters-test")."""
    if TOY_ID not in registry.list_envs():
        registry.register(TOY_ID, ToyEnv, family="adapters-test", time_limit=5)
    gym_adapter.register_gymnasium_envs()
    return TOY_ID


def representative_ids() -> list[str]:
    """The toy id, the first registered id of every family (the registry keeps registration
    order; families put their smallest scenario first) and the class-level ids present.

    Every family registered later is picked up automatically.
    """
    ensure_toy_registered()
    firsts: dict[str, str] = {}
    for env_id, entry in registry._REGISTRY.items():  # insertion order
        if env_id in CLASS_IDS or entry.family in firsts:
            continue
        firsts[entry.family] = env_id
    ids = list(firsts.values())
    ids += [i for i in CLASS_IDS if i in registry.list_envs()]
    return ids


def is_deterministic(env_id: str) -> bool:
    """Whether the environment declares that its episodes do not depend on the key
    (`deterministic = True`, e.g. repeated matrix games): seeding tests then assert that
    different seeds give identical episodes instead of different ones."""
    return bool(getattr(jaxmarl_envs.make(env_id), "deterministic", False))


REPRESENTATIVE_IDS = representative_ids()
REAL_IDS = [i for i in REPRESENTATIVE_IDS if i != TOY_ID]


def test_representative_ids_cover_every_family():
    families = {registry.spec(i).family for i in REPRESENTATIVE_IDS}
    all_families = {registry.spec(i).family for i in registry.list_envs()}
    assert families == all_families
    assert TOY_ID in REPRESENTATIVE_IDS


def test_resolve_env_errors():
    with pytest.raises(ValueError, match="unknown environment id"):
        resolve_env("no-such-env", {})
    with pytest.raises(ValueError, match="overrides"):
        resolve_env(ToyEnv(), {"time_limit": 3})
    with pytest.raises(ValueError, match="expected an environment id"):
        resolve_env(42, {})
    env = ToyEnv()
    assert resolve_env(env, {}) is env
    assert resolve_env(TOY_ID, {"time_limit": 3}).time_limit == 3


def test_every_id_is_registered_with_gymnasium():
    ids = jaxmarl_envs.list_envs()
    gym_ids = {k for k in gymnasium.registry if k.startswith(f"{gym_adapter.NAMESPACE}/")}
    assert {gym_adapter.gymnasium_id(i) for i in ids} <= gym_ids
    for i in REPRESENTATIVE_IDS:
        spec = gymnasium.spec(gym_adapter.gymnasium_id(i))
        assert spec.entry_point == "jaxmarl_envs.adapters.gymnasium:JaxMarlGymEnv"
        assert spec.vector_entry_point == "jaxmarl_envs.adapters.gymnasium:JaxMarlVectorEnv"
        assert spec.kwargs == {"env_id": i}


def test_gymnasium_ids():
    assert gym_adapter.gymnasium_id("rware-tiny-4ag") == "jaxmarl_envs/rware-tiny-4ag-v0"
    assert gym_adapter.gymnasium_id("RobotWarehouse-v0") == "jaxmarl_envs/RobotWarehouse-v0"


def test_registration_is_idempotent_and_adds_new_ids():
    assert gym_adapter.register_gymnasium_envs() == []
    new_id = "adapters-toy-late"
    if new_id not in registry.list_envs():
        registry.register(new_id, ToyEnv, family="adapters-test", time_limit=2)
    gym_id = gym_adapter.gymnasium_id(new_id)
    if gym_id not in gymnasium.registry:
        assert gym_adapter.register_gymnasium_envs() == [gym_id]
    env = gymnasium.make(gym_id)
    assert env.unwrapped.environment.time_limit == 2
    env.close()


def test_entry_point_is_declared():
    eps = importlib.metadata.entry_points(group="gymnasium.envs")
    ours = [ep for ep in eps if ep.name == gym_adapter.NAMESPACE]
    assert len(ours) == 1
    assert ours[0].value == "jaxmarl_envs.adapters.gymnasium:register_gymnasium_envs"
    assert ours[0].load() is gym_adapter.register_gymnasium_envs


def _run_fresh(code: str) -> subprocess.CompletedProcess:
    """Runs `code` in a new interpreter (sharing the tests' compilation cache, if any)."""
    env = dict(os.environ)
    cache = jax.config.jax_compilation_cache_dir
    if cache:
        env["JAX_COMPILATION_CACHE_DIR"] = cache
        env["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0.5"
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env
    )


def test_gymnasium_make_module_prefixed_in_a_fresh_interpreter():
    """Nothing of ours imported: the plain id is unknown to Gymnasium 1.x (no plugin loading),
    the module-prefixed id imports the adapter and works (`make` and `make_vec`), and then the
    plain id works too."""
    assert REAL_IDS, "no environment family is registered"
    env_id = REAL_IDS[0]
    gym_id = gym_adapter.gymnasium_id(env_id)
    code = (
        "import sys, gymnasium\n"
        "assert 'jaxmarl_envs' not in sys.modules\n"
        "major = int(gymnasium.__version__.split('.')[0])\n"
        "if major >= 1:\n"
        "    try:\n"
        f"        gymnasium.make('{gym_id}')\n"
        "        raise SystemExit('plain id worked without importing the adapters')\n"
        "    except gymnasium.error.NamespaceNotFound:\n"
        "        pass\n"
        "assert 'jaxmarl_envs' not in sys.modules\n"
        f"env = gymnasium.make('jaxmarl_envs.adapters.gymnasium:{gym_id}', time_limit=3)\n"
        "assert 'jaxmarl_envs.adapters.gymnasium' in sys.modules\n"
        "obs, info = env.reset(seed=0)\n"
        "assert obs in env.observation_space\n"
        f"venv = gymnasium.make_vec('jaxmarl_envs.adapters.gymnasium:{gym_id}', num_envs=2, "
        "vectorization_mode='vector_entry_point', time_limit=3)\n"
        "assert type(venv).__name__ == 'JaxMarlVectorEnv'\n"
        f"env2 = gymnasium.make('{gym_id}', time_limit=3)\n"
        "assert type(env2.unwrapped).__name__ == 'JaxMarlGymEnv'\n"
        "print('ok')\n"
    )
    out = _run_fresh(code)
    assert out.returncode == 0, out.stderr + out.stdout
    assert out.stdout.strip().endswith("ok")


@pytest.mark.parametrize("module", ["jaxmarl_envs.adapters", "jaxmarl_envs.adapters.gymnasium"])
def test_gymnasium_make_plain_id_after_importing_the_adapters(module):
    """The plain `jaxmarl_envs/<id>-v0` id in a fresh interpreter once the adapters are
    imported (`import jaxmarl_envs` alone does not register anything with Gymnasium)."""
    assert REAL_IDS, "no environment family is registered"
    env_id = REAL_IDS[0]
    gym_id = gym_adapter.gymnasium_id(env_id)
    code = (
        "import sys, gymnasium\n"
        "import jaxmarl_envs\n"
        f"assert '{gym_id}' not in gymnasium.registry\n"
        f"import {module}\n"
        f"env = gymnasium.make('{gym_id}', time_limit=3)\n"
        "obs, info = env.reset(seed=0)\n"
        "assert obs in env.observation_space\n"
        f"venv = gymnasium.make_vec('{gym_id}', num_envs=2, "
        "vectorization_mode='vector_entry_point', time_limit=3)\n"
        "obs, info = venv.reset(seed=0)\n"
        "assert obs.shape[0] == 2\n"
        "print('ok')\n"
    )
    out = _run_fresh(code)
    assert out.returncode == 0, out.stderr + out.stdout
    assert out.stdout.strip().endswith("ok")


def test_unknown_ids_raise_clear_errors():
    from jaxmarl_envs.adapters import DmEnv, JaxMarlGymEnv, JaxMarlVectorEnv, parallel_env

    for factory in (DmEnv, JaxMarlGymEnv, parallel_env, JaxMarlVectorEnv):
        with pytest.raises(ValueError, match="unknown environment id 'rware-tiny-4agg'"):
            factory("rware-tiny-4agg")
    with pytest.raises(gymnasium.error.Error):
        gymnasium.make("jaxmarl_envs/no-such-env-v0")


def test_host_function_round_trips_every_dtype_in_one_buffer():
    import jax.numpy as jnp
    import numpy as np

    from jaxmarl_envs.adapters._common import HostFunction

    def fn(x):
        host = {
            "f": x * 1.5,
            "b": x > 1,
            "i8": x.astype(jnp.int8) - 3,
            "u8": x.astype(jnp.uint8),
            "i32": (x * 7).astype(jnp.int32),
            "scalar": jnp.sum(x),
            "nested": (jnp.arange(3, dtype=jnp.int16) - 1, None),
            "f16": (x / 3).astype(jnp.float16),
            "bf16": (x / 3).astype(jnp.bfloat16),
            "u32": jnp.full(x.shape, 2**32 - 1, jnp.uint32),
            "u16": jnp.full(x.shape, 65535, jnp.uint16),
            "i8min": jnp.full((2,), -128, jnp.int8),
            "empty": jnp.zeros((0, 3), jnp.float32),
        }
        return x + 1, host

    hf = HostFunction(fn)
    for n in (1, 4):  # two batch sizes: one layout each
        x = jnp.arange(n, dtype=jnp.float32)
        keep, host = hf(x)
        assert isinstance(keep, jax.Array) and np.array_equal(np.asarray(keep), np.asarray(x) + 1)
        expect = jax.tree_util.tree_map(np.asarray, fn(x)[1])
        assert jax.tree_util.tree_structure(host) == jax.tree_util.tree_structure(expect)
        for got, want in zip(
            jax.tree_util.tree_leaves(host), jax.tree_util.tree_leaves(expect), strict=True
        ):
            assert isinstance(got, np.ndarray) and got.dtype == want.dtype
            assert got.shape == want.shape and np.array_equal(got, want)
            assert got.flags.writeable
        host["f"][...] = -1  # a fresh buffer per call: no later call sees the write
        assert np.array_equal(hf(x)[1]["f"], np.asarray(x) * 1.5)
    assert hf.cache_size() == 2


def test_action_check_accepts_integer_dtypes_and_names_problems():
    import numpy as np

    from jaxmarl_envs.adapters._common import ActionCheck

    check = ActionCheck(jaxmarl_envs.make("lbf-8x8-2p-2f-coop"))
    for dtype in (np.int8, np.uint8, np.int16, np.int32, np.int64, np.uint64):
        out = check(np.array([5, 0], dtype))
        assert out.dtype == check.dtype and out.tolist() == [5, 0]
    assert check([1, 2]).tolist() == [1, 2]
    with pytest.raises(ValueError, match="shape"):
        check(np.array([1, 2, 3]))
    with pytest.raises(ValueError, match="dtype"):
        check(np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match="dtype"):
        check(np.array([True, False]))
    with pytest.raises(ValueError, match="out of bounds"):
        check(np.array([6, 0], np.int64))
    with pytest.raises(ValueError, match="out of bounds"):
        check(np.array([-1, 0], np.int8))
