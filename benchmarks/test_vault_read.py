"""Reading a dataset of >= 1M transitions: our streaming Vault reader against Flashbax 0.1.3's
`Vault.read()`, speed and peak memory.

Run: `pytest benchmarks/test_vault_read.py -s -p no:randomly`.

Data: a random-policy lbf-8x8-2p-2f-coop dataset recorded with `record_dataset` (200 episodes,
10,000 steps in the dataset layout: observations, next observations, masks, global states...),
tiled to 1,050,000 steps in one vault (about 390 MB), and the same vault exported to a Flashbax
vault with `export_flashbax` (Flashbax's default gzip compression). Both are read from a warm
page cache.

- Memory: each reader runs in a fresh subprocess (same imports, both vaults opened, one chunk
  read to warm up); the peak RSS (`VmHWM`) is reset (`/proc/self/clear_refs`) just before the
  read and its growth over the RSS at that moment is reported. The streaming pass
  (`iter_dataset`, chunks of 65,536 steps, every leaf reduced) must stay within a few chunks,
  whatever the dataset's size; Flashbax's `read()` materialises the whole vault.
- Speed: one full streaming pass against one `flashbax.vault.Vault.read()` of everything,
  timed alternately in one process (A/B rounds, so load from other processes hits both);
  asserted median ratio Flashbax/ours >= 1, recorded with the load average.
"""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

fbx = pytest.importorskip("flashbax")

from common import interleaved_ratio  # noqa: E402

from jaxmarl_envs.algorithms.buffers.vault import Vault  # noqa: E402
from jaxmarl_envs.algorithms.datasets import (  # noqa: E402
    export_flashbax,
    iter_dataset,
    record_dataset,
)

BASE_EPISODES = 200  # x 50 steps
REPEATS = 105  # -> 1,050,000 steps
CHUNK = 1 << 16
ROUNDS = 3


@pytest.fixture(scope="module")
def vaults(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("vault_read")
    base = root / "base"
    record_dataset("lbf-8x8-2p-2f-coop", "random", BASE_EPISODES, base, num_envs=64)
    data = Vault(base).read()
    big = root / "big"
    vault = Vault.create(big, Vault(base).read(0, 0), metadata=Vault(base).metadata)
    episodes = int(data["episode_id"].max()) + 1
    for k in range(REPEATS):  # episode ids continue, as in one long recording
        vault.append({**data, "episode_id": data["episode_id"] + k * episodes})
    vault.close()
    steps = Vault(big).num_steps
    fbx_path = export_flashbax(big, root / "fbx", chunk_size=CHUNK)
    nbytes = sum((big / leaf.file).stat().st_size for leaf in Vault(big).leaves)
    return {"ours": big, "flashbax": Path(fbx_path), "steps": steps, "bytes": nbytes}


def _stream_pass(path: Path) -> float:
    """One full streaming pass; every leaf of every chunk reduced (nothing skipped)."""
    total = 0.0
    for chunk in iter_dataset(path, CHUNK):
        for leaf in _leaves(chunk):
            total += float(np.sum(leaf, dtype=np.float64))
    return total


def _leaves(tree):
    if isinstance(tree, dict):
        for v in tree.values():
            yield from _leaves(v)
    else:
        yield tree


def _open_flashbax(path: Path):
    from flashbax.vault import vault as fbx_vault

    with contextlib.redirect_stdout(io.StringIO()):
        return fbx_vault.Vault(
            path.parent.name, rel_dir=str(path.parent.parent), vault_uid=path.name
        )


def _flashbax_read(fv) -> float:
    import jax

    exp = jax.block_until_ready(fv.read().experience)
    return float(
        sum(np.sum(np.asarray(x), dtype=np.float64) for x in jax.tree_util.tree_leaves(exp))
    )


_CHILD = """
import json, resource, sys, time, contextlib, io
sys.path.insert(0, {bench!r})
from pathlib import Path
from jaxmarl_envs.algorithms.buffers.vault import Vault
import test_vault_read as b
mode, ours, theirs = {mode!r}, Path({ours!r}), Path({theirs!r})
Vault(ours)
fv = b._open_flashbax(theirs)
b._read_one_chunk(ours)  # first-use costs (imports, allocator pools) before the reset
def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) / 1024
before = status("VmRSS")
open("/proc/self/clear_refs", "w").write("5")  # resets the peak (VmHWM) to the current RSS
t = time.perf_counter()
if mode == "stream":
    b._stream_pass(ours)
elif mode == "flashbax":
    b._flashbax_read(fv)
print(json.dumps({{"rss_before_mb": before, "rss_mb": status("VmHWM"),
                  "seconds": time.perf_counter() - t}}))
"""


def _read_one_chunk(path: Path) -> None:
    next(iter_dataset(path, CHUNK))


def _child(mode: str, vaults: dict) -> dict:
    code = _CHILD.format(
        bench=str(Path(__file__).parent),
        mode=mode,
        ours=str(vaults["ours"]),
        theirs=str(vaults["flashbax"]),
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_streaming_read_keeps_memory_bounded(vaults, benchmark):
    import os

    assert vaults["steps"] >= 1_000_000
    load_before = os.getloadavg()
    base = _child("baseline", vaults)
    stream = _child("stream", vaults)
    theirs = _child("flashbax", vaults)
    chunk_mb = vaults["bytes"] / vaults["steps"] * CHUNK / 2**20
    data_mb = vaults["bytes"] / 2**20
    extra = stream["rss_mb"] - stream["rss_before_mb"]
    theirs_extra = theirs["rss_mb"] - theirs["rss_before_mb"]
    info = {
        "steps": vaults["steps"],
        "dataset_mb": round(data_mb, 1),
        "chunk_mb": round(chunk_mb, 1),
        "baseline_rss_mb": round(base["rss_mb"], 1),
        "stream_peak_rss_mb": round(stream["rss_mb"], 1),
        "stream_extra_rss_mb": round(extra, 1),
        "flashbax_read_peak_rss_mb": round(theirs["rss_mb"], 1),
        "flashbax_read_extra_rss_mb": round(theirs_extra, 1),
        "stream_s": round(stream["seconds"], 2),
        "flashbax_read_s": round(theirs["seconds"], 2),
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in os.getloadavg()],
    }
    benchmark.extra_info.update(info)
    benchmark.pedantic(lambda: None, rounds=1)
    print("\n" + json.dumps(info, indent=1))
    # Bounded: a few chunks (the chunk, its copy, the reduction), never the dataset.
    assert base["rss_mb"] - base["rss_before_mb"] < 16  # the measurement itself is quiet
    assert extra < 4 * chunk_mb + 64
    assert extra < data_mb / 4
    assert theirs_extra > data_mb  # Flashbax's read() holds the whole dataset (sanity check)


def test_streaming_read_at_least_as_fast_as_flashbax_read(vaults, benchmark):
    fv = _open_flashbax(vaults["flashbax"])
    assert _stream_pass(vaults["ours"]) == pytest.approx(_flashbax_read(fv), rel=1e-9)
    res = benchmark.pedantic(
        interleaved_ratio,
        args=(lambda _k: _stream_pass(vaults["ours"]), lambda _k: _flashbax_read(fv)),
        kwargs={"rounds": ROUNDS, "warmup": 1},
        rounds=1,
    )
    steps = vaults["steps"]
    info = {
        "steps": steps,
        "ours_steps_per_s": round(steps / res["median_a_s"]),
        "flashbax_steps_per_s": round(steps / res["median_b_s"]),
        "ratio_median": round(res["median"], 2),
        "ratio_min": round(res["min"], 2),
        "ratio_max": round(res["max"], 2),
        "load_before": res["load_before"],
        "load_after": res["load_after"],
    }
    benchmark.extra_info.update(info)
    print("\n" + json.dumps(info, indent=1))
    assert res["median"] >= 1.0
