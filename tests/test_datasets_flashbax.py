"""Flashbax 0.1.3 interoperability: our vaults export to Flashbax and read back equal through
Flashbax; Flashbax-written vaults (raw and OG-MARL layout) import equal through ours."""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest

fbx = pytest.importorskip("flashbax")
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from flashbax.vault import Vault as FlashbaxVault  # noqa: E402

from jaxmarl_envs.algorithms import cli  # noqa: E402
from jaxmarl_envs.algorithms.buffers.vault import Vault  # noqa: E402
from jaxmarl_envs.algorithms.datasets import (  # noqa: E402
    check_integrity,
    export_flashbax,
    import_flashbax,
    load_dataset,
    read_flashbax,
    record_dataset,
)
from jaxmarl_envs.algorithms.datasets.flashbax_io import _META_KEY  # noqa: E402


def tree_equal(a, b) -> bool:
    la, ta = jax.tree_util.tree_flatten(a)
    lb, tb = jax.tree_util.tree_flatten(b)
    return ta == tb and all(
        np.asarray(x).dtype == np.asarray(y).dtype and np.array_equal(np.asarray(x), y)
        for x, y in zip(la, lb, strict=True)
    )


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("fbx") / "lbf"
    record_dataset("lbf-8x8-2p-2f-coop", "random", 6, out, seed=1, num_envs=4, tier="poor")
    return out


def test_export_reads_back_equal_through_flashbax(dataset, tmp_path):
    path = export_flashbax(dataset, tmp_path / "fbx", chunk_size=64)  # several chunks
    assert path.endswith("fbx/lbf/0")
    with contextlib.redirect_stdout(io.StringIO()):
        theirs = FlashbaxVault("lbf", rel_dir=str(tmp_path / "fbx"), vault_uid="0")
        state = theirs.read()
    ours = Vault(dataset).read()
    assert tree_equal(jax.device_get(state.experience), ours)
    assert json.loads(theirs._metadata[_META_KEY]) == Vault(dataset).metadata
    # ...and back through our import: equal data, our metadata restored.
    back = tmp_path / "back"
    summary = import_flashbax(path, back)
    assert summary["layout"] == "raw" and tree_equal(Vault(back).read(), ours)
    meta = Vault(back).metadata
    meta.pop("imported_from")
    assert meta == Vault(dataset).metadata
    assert check_integrity(back).ok


def _flashbax_written(tmp_path, experience_fn, rows, max_time, steps, write_every):
    """Writes `steps` steps into a Flashbax trajectory buffer (ring of `max_time`) and its
    Vault every `write_every` steps, as Flashbax users do; returns (vault path, all data)."""
    buf = fbx.make_trajectory_buffer(
        max_length_time_axis=max_time,
        min_length_time_axis=1,
        sample_batch_size=1,
        add_batch_size=rows,
        sample_sequence_length=1,
        period=1,
    )
    state = buf.init(jax.tree_util.tree_map(lambda x: x[0, 0], experience_fn(0, 1)))
    with contextlib.redirect_stdout(io.StringIO()):
        vault = FlashbaxVault(
            "theirs",
            experience_structure=state.experience,
            rel_dir=str(tmp_path / "fbx"),
            vault_uid="run1",
            metadata={"env": "toy"},
        )
    add = jax.jit(buf.add)
    for t in range(0, steps, write_every):
        state = add(state, experience_fn(t, write_every))
        vault.write(state)
    return tmp_path / "fbx" / "theirs" / "run1"


def test_flashbax_written_vault_imports_equal(tmp_path):
    def experience(t0, n):
        t = jnp.arange(t0, t0 + n, dtype=jnp.float32)
        obs = jnp.stack([t, -t], -1)[None].repeat(2, 0) + jnp.arange(2.0)[:, None, None]
        return {
            "obs": {"view": obs[..., None, :].repeat(3, -2)},  # (rows, n, 3, 2)
            "action": (jnp.arange(t0, t0 + n, dtype=jnp.int32) % 5)[None].repeat(2, 0),
            "done": (jnp.arange(t0, t0 + n) % 7 == 6)[None].repeat(2, 0),
        }

    path = _flashbax_written(tmp_path, experience, rows=2, max_time=16, steps=60, write_every=5)
    theirs = read_flashbax(path)
    assert theirs["obs"]["view"].shape == (2, 60, 3, 2)  # wrap-around handled by Flashbax
    out = tmp_path / "ours"
    assert cli.main(["dataset", "import", str(path), "--out", str(out)]) == 0
    ours = Vault(out)
    assert ours.num_rows == 2 and ours.num_steps == 60
    assert tree_equal(ours.read(), theirs)
    assert ours.metadata["flashbax_metadata"] == {"env": "toy"}
    # Streaming import in small chunks gives the same vault.
    import_flashbax(path, tmp_path / "chunked", chunk_size=7)
    assert tree_equal(Vault(tmp_path / "chunked").read(), theirs)


def test_og_marl_layout_converts_to_the_recorder_layout(tmp_path):
    # Row 0: episodes of lengths 4, 3, then 2 unfinished steps; row 1: lengths 5, 4.
    ends = {0: {3, 6}, 1: {4, 8}}

    def experience(t0, n):
        t = np.arange(t0, t0 + n)
        term = np.stack([[s in ends[r] and s != 6 for s in t] for r in (0, 1)])
        trunc = np.stack([[s == 6 and r == 0 for s in t] for r in (0, 1)])
        return {
            "observations": jnp.asarray(
                np.broadcast_to(t[None, :, None, None], (2, n, 2, 3)), jnp.float32
            ),
            "actions": jnp.asarray(np.broadcast_to((t % 3)[None, :, None], (2, n, 2)), jnp.int32),
            "rewards": jnp.ones((2, n, 2), jnp.float32),
            "terminals": jnp.asarray(np.repeat(term[..., None], 2, -1)),
            "truncations": jnp.asarray(np.repeat(trunc[..., None], 2, -1)),
            "infos": {
                "legals": jnp.ones((2, n, 2, 3), bool),
                "state": jnp.asarray(np.broadcast_to(t[None, :, None], (2, n, 4)), jnp.float32),
            },
        }

    path = _flashbax_written(tmp_path, experience, rows=2, max_time=32, steps=9, write_every=9)
    out = tmp_path / "og"
    summary = import_flashbax(path, out, metadata={"env_id": "toy"})
    assert summary["layout"] == "recorder" and summary["episodes"] == 4
    assert summary["dropped_unfinished_episodes"] == 1
    data = load_dataset(out)
    lengths = np.diff(np.flatnonzero(np.r_[True, data["last"]]))
    assert lengths.tolist() == [4, 3, 5, 4]
    assert bool(np.array_equal(data["episode_id"], np.repeat(np.arange(4), lengths)))
    assert bool(np.array_equal(data["first"], np.r_[True, data["last"][:-1]]))
    assert data["action_mask"].shape == (16, 2, 3) and data["global_state"].shape == (16, 4)
    assert bool(np.array_equal(data["discount"], 1.0 - data["terminated"]))
    assert int(data["truncated"].all(-1).sum()) == 1  # row 0's second episode
    assert check_integrity(out).ok and Vault(out).metadata["env_id"] == "toy"


def test_export_cli_and_bad_paths(dataset, tmp_path, capsys):
    argv = ["dataset", "export", str(dataset), "--format", "flashbax", "--out", str(tmp_path)]
    assert cli.main([*argv, "--name", "mine", "--uid", "v1"]) == 0
    assert (tmp_path / "mine" / "v1" / "metadata.json").is_file()
    assert cli.main([*argv, "--name", "mine", "--uid", "v1"]) == 2  # exists
    assert cli.main(["dataset", "import", str(tmp_path), "--out", str(tmp_path / "x")]) == 2
    assert "not a Flashbax vault" in capsys.readouterr().err
