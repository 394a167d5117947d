"""Maps the root folders adapters/ and algorithms/ under the one import root jaxmarl_envs.

The project's layout keeps `jaxmarl_envs/`, `adapters/` and `algorithms/` side by side at the
repository root, but installs them as `jaxmarl_envs`, `jaxmarl_envs.adapters` and
`jaxmarl_envs.algorithms` (see ARCHITECTURE.md, "Packaging"). Everything else lives in
pyproject.toml; this file only computes the package list so new subpackages need no edits.
"""

from setuptools import find_packages, setup

ROOTS = {
    "jaxmarl_envs": "jaxmarl_envs",
    "jaxmarl_envs.adapters": "adapters",
    "jaxmarl_envs.algorithms": "algorithms",
}


def _packages() -> list[str]:
    packages = []
    for name, folder in ROOTS.items():
        packages.append(name)
        packages += [f"{name}.{sub}" for sub in find_packages(folder)]
    return packages


setup(packages=_packages(), package_dir=ROOTS)
