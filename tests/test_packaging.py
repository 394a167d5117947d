"""Packaging: the wheel installs one import root, `jaxmarl_envs`, with the sibling folders
mapped under it; the console script and lint configuration are in place."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _can_build_in_place() -> bool:
    """Whether this environment can build the wheel without an isolated build env."""
    if importlib.util.find_spec("setuptools") is None:
        return False
    if importlib.util.find_spec("wheel") is not None:
        return True
    import setuptools

    major, minor = (int(x) for x in setuptools.__version__.split(".")[:2])
    return (major, minor) >= (70, 1)  # bdist_wheel ships with setuptools from 70.1


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(ROOT)]
    if _can_build_in_place():
        cmd.insert(4, "--no-build-isolation")
    subprocess.run(cmd, check=True, capture_output=True, timeout=300)
    (path,) = out.glob("jaxmarl_envs-*.whl")
    return path


def test_wheel_has_one_top_level_package(wheel):
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"jaxmarl_envs"}
    assert "jaxmarl_envs/adapters/__init__.py" in names
    assert "jaxmarl_envs/algorithms/cli.py" in names
    assert "jaxmarl_envs/rware/env.py" in names
    assert "jaxmarl_envs/lbf/env.py" in names
    # Every source folder with an __init__.py ships.
    for folder, prefix in (
        ("adapters", "jaxmarl_envs/adapters"),
        ("algorithms", "jaxmarl_envs/algorithms"),
        ("jaxmarl_envs", "jaxmarl_envs"),
    ):
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.relative_to(ROOT / folder).as_posix()
            assert f"{prefix}/{rel}" in names, rel


def test_wheel_declares_console_script(wheel):
    with zipfile.ZipFile(wheel) as zf:
        entry = next(n for n in zf.namelist() if n.endswith("entry_points.txt"))
        text = zf.read(entry).decode()
    assert "jaxmarl = jaxmarl_envs.algorithms.cli:main" in text


def test_cli_list_runs():
    out = subprocess.run(
        [sys.executable, "-m", "jaxmarl_envs.algorithms.cli", "list", "--family", "rware"],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    assert "rware-tiny-4ag " in out


def test_cli_unknown_id_error():
    proc = subprocess.run(
        [sys.executable, "-m", "jaxmarl_envs.algorithms.cli", "render", "rware-tiny-4g"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0
    assert "unknown environment id 'rware-tiny-4g'" in proc.stderr
    assert "rware-tiny-4ag" in proc.stderr
