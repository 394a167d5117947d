"""Vault: round trips across processes, crash safety under SIGKILL, versions, incremental writes."""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import tracemalloc
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxmarl_envs.algorithms.buffers import (
    make_prioritised_trajectory_buffer,
    make_trajectory_buffer,
)
from jaxmarl_envs.algorithms.buffers.vault import (
    VAULT_FORMAT_VERSION,
    Episode,
    Vault,
    VaultVersionError,
)

ROWS = 2
EXAMPLE = {
    "obs": {"view": jnp.zeros((3,), jnp.float32)},
    "t": jnp.zeros((), jnp.int32),
    "done": jnp.zeros((), bool),
}


def steps(start: int, n: int, rows: int = ROWS) -> dict:
    """Deterministic experience for logical times `[start, start + n)`: `(rows, n, ...)`."""
    t = np.arange(start, start + n)[None, :] + 1000 * np.arange(rows)[:, None]
    view = np.stack([t, -t, t * 0.5], axis=-1).astype(np.float32)
    return {"obs": {"view": view}, "t": t.astype(np.int32), "done": (t % 5 == 4)}


def assert_tree_equal(a, b) -> None:
    la, lb = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
    assert len(la) == len(lb)
    for x, y in zip(la, lb, strict=True):
        assert np.asarray(x).shape == np.asarray(y).shape
        assert bool(np.array_equal(np.asarray(x), np.asarray(y)))


@pytest.fixture(scope="module")
def buffer():
    buf = make_trajectory_buffer(ROWS, 7, 4, 2)
    return buf, jax.jit(buf.add, donate_argnums=0)


def run_python(code: str, *args: str, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        **kwargs,
    )


def test_round_trip_in_a_new_process(tmp_path, buffer):
    buf, add = buffer
    state = buf.init(EXAMPLE)
    vault = Vault.create(tmp_path / "v", state, metadata={"env": "toy", "quality": "expert"})
    for i in range(4):
        state = add(state, jax.tree_util.tree_map(jnp.asarray, steps(5 * i, 5)))
        assert vault.write(state) == 5  # 5 new steps each time, wrapping the ring of 7
    vault.close()
    out = tmp_path / "read.npz"
    proc = run_python(
        """
        import sys, numpy as np
        from jaxmarl_envs.algorithms.buffers.vault import Vault
        v = Vault(sys.argv[1])
        d = v.read()
        np.savez(sys.argv[2], view=d["obs"]["view"], t=d["t"], done=d["done"],
                 steps=v.num_steps, env=v.metadata["env"])
        """,
        str(tmp_path / "v"),
        str(out),
    )
    assert proc.returncode == 0, proc.stderr
    got = np.load(out)
    expected = steps(0, 20)
    assert int(got["steps"]) == 20 and str(got["env"]) == "toy"
    assert bool(np.array_equal(got["t"], expected["t"]))
    assert bool(np.array_equal(got["view"], expected["obs"]["view"]))
    assert bool(np.array_equal(got["done"], expected["done"]))


WRITER = """
import os, sys, time, numpy as np
from jaxmarl_envs.algorithms.buffers.vault import Vault
path, mode = sys.argv[1], sys.argv[2]
def steps(start, n, rows=2):
    t = np.arange(start, start + n)[None, :] + 1000 * np.arange(rows)[:, None]
    view = np.stack([t, -t, t * 0.5], axis=-1).astype(np.float32)
    return {"obs": {"view": view}, "t": t.astype(np.int32), "done": (t % 5 == 4)}
vault = Vault.create(path, steps(0, 1))
for i in range(3):
    vault.append(steps(4 * i, 4))
if mode == "pause":
    original = Vault._write_leaf
    calls = []
    def paused(self, leaf, offset, data):
        original(self, leaf, offset, data)
        calls.append(leaf)
        if len(calls) == 2:  # two of three leaves written, nothing committed yet
            print("MID", flush=True)
            time.sleep(120)
    Vault._write_leaf = paused
    vault.append(steps(12, 4))
else:
    print("MID", flush=True)
    i = 3
    while True:
        vault.append(steps(4 * i, 4))
        i += 1
"""


def _start_writer(path, mode):
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), mode], env=env, stdout=subprocess.PIPE, text=True
    )
    line = proc.stdout.readline()
    assert line.strip() == "MID"
    return proc


def _check_after_kill(path) -> int:
    vault = Vault(path)
    n = vault.num_steps
    assert n >= 12 and n % 4 == 0
    assert_tree_equal(vault.read(), steps(0, n))
    # A new writer (the dead one's lock is gone) drops the torn tail and appends cleanly.
    with Vault(path, mode="a") as writer:
        writer.append(steps(n, 4))
    assert_tree_equal(Vault(path).read(), steps(0, n + 4))
    return n


def test_writer_killed_mid_write_leaves_committed_data(tmp_path):
    path = tmp_path / "v"
    proc = _start_writer(path, "pause")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    meta = json.loads((path / "metadata.json").read_text())
    leaf0 = path / meta["structure"][0]["file"]
    step_bytes = ROWS * 1  # "done" is a bool scalar per row
    assert meta["structure"][0]["path"] == ["done"]
    assert leaf0.stat().st_size == 16 * step_bytes  # the killed write reached the disk...
    assert Vault(path).num_steps == 12  # ...but was never committed
    assert _check_after_kill(path) == 12
    assert leaf0.stat().st_size == 16 * step_bytes


@pytest.mark.parametrize("delay", [0.05, 0.3])
def test_writer_killed_at_a_random_time(tmp_path, delay):
    path = tmp_path / "v"
    proc = _start_writer(path, "loop")
    time.sleep(delay)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    _check_after_kill(path)


def test_version_mismatch_and_not_a_vault(tmp_path, buffer):
    buf, _ = buffer
    Vault.create(tmp_path / "v", buf.init(EXAMPLE)).close()
    meta_file = tmp_path / "v" / "metadata.json"
    meta = json.loads(meta_file.read_text())
    assert meta["format_version"] == VAULT_FORMAT_VERSION
    meta["format_version"] = VAULT_FORMAT_VERSION + 1
    meta_file.write_text(json.dumps(meta))
    with pytest.raises(VaultVersionError, match=f"format version {VAULT_FORMAT_VERSION + 1}"):
        Vault(tmp_path / "v")
    with pytest.raises(ValueError, match="not a vault"):
        Vault(tmp_path)


def test_structure_and_user_metadata_in_metadata_file(tmp_path, buffer):
    buf, _ = buffer
    stats = {"mean": np.float32(2.5), "max": 7}
    with Vault.create(tmp_path / "v", buf.init(EXAMPLE), metadata={"returns": stats}) as v:
        v.update_metadata(policy="random", scenario="tiny")
    meta = json.loads((tmp_path / "v" / "metadata.json").read_text())
    assert [x["path"] for x in meta["structure"]] == [["done"], ["obs", "view"], ["t"]]
    assert [x["shape"] for x in meta["structure"]] == [[], [3], []]
    assert [np.dtype(x["dtype"]) for x in meta["structure"]] == [
        np.dtype(bool),
        np.dtype(np.float32),
        np.dtype(np.int32),
    ]
    assert meta["num_rows"] == ROWS
    assert Vault(tmp_path / "v").metadata == {
        "returns": {"mean": 2.5, "max": 7},
        "policy": "random",
        "scenario": "tiny",
    }
    with pytest.raises(ValueError, match="JSON-like"):
        Vault.create(tmp_path / "w", buf.init(EXAMPLE), metadata={"f": object()})
    assert not (tmp_path / "w").exists()


@functools.cache
def _small_buffer(max_time):
    buf = make_trajectory_buffer(ROWS, max_time, 1, 1)
    return buf, jax.jit(buf.add)


@settings(max_examples=10, deadline=None)
@given(
    max_time=st.integers(2, 6),
    adds=st.lists(st.integers(1, 6), min_size=1, max_size=8),
    write_every=st.integers(1, 3),
)
def test_incremental_writes_after_wrap_write_exactly_the_new_data(
    tmp_path_factory, max_time, adds, write_every
):
    buf, add = _small_buffer(max_time)
    state = buf.init(EXAMPLE)
    vault = Vault.create(tmp_path_factory.mktemp("inc") / "v", state)
    total, unwritten = 0, 0
    for i, n in enumerate(adds):
        n = min(n, max_time)
        state = add(state, jax.tree_util.tree_map(jnp.asarray, steps(total, n)))
        total += n
        unwritten += n
        if (i + 1) % write_every == 0 or i == len(adds) - 1:
            if unwritten > max_time:
                with pytest.raises(ValueError, match="overwritten"):
                    vault.write(state)
                vault.close()
                return
            assert vault.write(state) == unwritten
            assert vault.write(state) == 0  # nothing new
            unwritten = 0
            assert vault.num_steps == total
            assert_tree_equal(vault.read(), steps(0, total))
    vault.close()


def test_gap_is_an_error_unless_allowed(tmp_path, buffer):
    buf, add = buffer
    state = buf.init(EXAMPLE)
    vault = Vault.create(tmp_path / "v", state)
    for i in range(3):
        state = add(state, jax.tree_util.tree_map(jnp.asarray, steps(4 * i, 4)))
    with pytest.raises(ValueError, match="overwritten"):
        vault.write(state)
    assert vault.write(state, allow_gap=True) == 7
    assert_tree_equal(vault.read(), steps(5, 7))
    with pytest.raises(ValueError, match="behind"):
        vault.write(buf.init(EXAMPLE).replace(total_added=jnp.asarray(3, jnp.int32)))


def test_reads_slices_last_rows_chunks_and_episodes(tmp_path):
    vault = Vault.create(tmp_path / "v", steps(0, 1, rows=3))
    vault.append(steps(0, 23, rows=3))
    full = steps(0, 23, rows=3)
    sl = lambda tree, idx: jax.tree_util.tree_map(lambda x: x[idx], tree)
    assert_tree_equal(vault.read(5, 9), sl(full, (slice(None), slice(5, 9))))
    assert_tree_equal(vault.read(-3), sl(full, (slice(None), slice(20, 23))))
    assert_tree_equal(vault.read_last(4), sl(full, (slice(None), slice(19, 23))))
    assert_tree_equal(vault.read_last(100), full)
    assert_tree_equal(vault.read(rows=[2, 0]), sl(full, [2, 0]))
    assert vault.read(30, 40)["t"].shape == (3, 0)
    chunks = list(vault.iter_chunks(5, rows=[1]))
    assert [c["t"].shape[1] for c in chunks] == [5, 5, 5, 5, 3]
    assert_tree_equal(
        jax.tree_util.tree_map(lambda *x: np.concatenate(x, axis=1), *chunks), sl(full, [1])
    )
    eps = vault.episodes("done")
    # done at t % 5 == 4 (t includes 1000 * row, so every row ends at times 4, 9, 14, 19).
    assert [(e.start, e.stop) for e in eps if e.row == 0] == [(0, 5), (5, 10), (10, 15), (15, 20)]
    assert len(eps) == 12 and all(e.complete for e in eps)
    tail = vault.episodes("done", include_incomplete=True)
    assert Episode(2, 20, 23, False) in tail and len(tail) == 15
    (ep,) = vault.read_episodes([Episode(1, 5, 10, True)])
    assert ep["t"].tolist() == [1005, 1006, 1007, 1008, 1009] and ep["obs"]["view"].shape == (5, 3)
    with pytest.raises(ValueError, match="no leaf"):
        vault.episodes("last")
    with pytest.raises(ValueError, match="shape"):
        vault.episodes("obs/view")
    with pytest.raises(ValueError, match="rows"):
        vault.read(rows=[3])
    with pytest.raises(ValueError, match="outside"):
        vault.read_episodes([Episode(0, 20, 24, False)])
    with pytest.raises(ValueError, match="chunk_size"):
        next(vault.iter_chunks(0))


class Step(NamedTuple):
    done: np.ndarray
    obs: dict
    t: np.ndarray


def test_structure_argument_restores_the_pytree(tmp_path):
    vault = Vault.create(tmp_path / "v", steps(0, 1))
    vault.append(steps(0, 6))
    got = vault.read(structure=Step(done=0, obs={"view": 0}, t=0))
    assert isinstance(got, Step) and got.t.shape == (ROWS, 6)
    with pytest.raises(ValueError, match="leaves"):
        vault.read(structure=(0, 0))


def test_streaming_does_not_load_everything(tmp_path):
    rows, n = 4, 4096
    big = {"x": np.ones((rows, n, 64), np.float32)}  # 4 MiB
    vault = Vault.create(tmp_path / "v", {"x": big["x"][:, :1]})
    vault.append(big)
    tracemalloc.start()
    total = 0.0
    for chunk in Vault(tmp_path / "v").iter_chunks(256):
        total += float(chunk["x"].sum())
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert total == rows * n * 64
    assert peak < big["x"].nbytes / 4, peak  # a chunk is 1/16 of the data


def test_writer_rules(tmp_path, buffer):
    buf, add = buffer
    state = buf.init(EXAMPLE)
    writer = Vault.create(tmp_path / "v", state)
    with pytest.raises(ValueError, match="already exists"):
        Vault.create(tmp_path / "v", state)
    with pytest.raises(ValueError, match="already open for writing"):
        Vault(tmp_path / "v", mode="a")
    with pytest.raises(ValueError, match="read-only"):
        Vault(tmp_path / "v").append(steps(0, 2))
    with pytest.raises(ValueError, match="shape"):
        writer.append(steps(0, 2, rows=3))
    bad = steps(0, 2)
    bad["t"] = bad["t"].astype(np.int64)
    with pytest.raises(ValueError, match="dtype"):
        writer.append(bad)
    with pytest.raises(ValueError, match="differ"):
        writer.append({"t": bad["t"]})
    with pytest.raises(ValueError, match="mode"):
        Vault(tmp_path / "v", mode="w")
    writer.close()
    with Vault(tmp_path / "v", mode="a") as again:
        assert again.append(steps(0, 2)) == 2


def test_write_from_a_prioritised_buffer(tmp_path):
    buf = make_prioritised_trajectory_buffer(ROWS, 5, 4, 2)
    state = buf.init(EXAMPLE)
    vault = Vault.create(tmp_path / "v", state)
    for i in range(3):
        state = jax.jit(buf.add)(state, jax.tree_util.tree_map(jnp.asarray, steps(3 * i, 3)))
        vault.write(state)
    assert_tree_equal(vault.read(), steps(0, 9))
