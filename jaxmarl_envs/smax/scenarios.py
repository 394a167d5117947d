"""SMAX scenarios as data: unit lists per team, and `register_scenario` for new ones."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from jaxmarl_envs.smax import constants as C


@dataclasses.dataclass(frozen=True)
class Scenario:
    """Which units fight: one unit-type name per ally and per enemy.

    Attributes:
        allies: unit-type names of team 0 (the controlled team), e.g. `("marine",) * 3`.
        enemies: unit-type names of team 1.
        random_positions: SMACv2-style start positions (a random choice between
            "surround", one team in the centre and the other in four groups around it, and
            "reflect", mirrored uniform positions); otherwise each team starts in a 4x4
            square around a quarter of the map's width.
        random_unit_types: SMACv2-style unit types, uniformly random per ally, enemies
            mirroring the allies (the types listed are then only placeholders).
    """

    allies: tuple[str, ...]
    enemies: tuple[str, ...]
    random_positions: bool = False
    random_unit_types: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "allies", tuple(self.allies))
        object.__setattr__(self, "enemies", tuple(self.enemies))
        if not self.allies or not self.enemies:
            raise ValueError("a Scenario needs at least one ally and one enemy.")

    @property
    def num_allies(self) -> int:
        return len(self.allies)

    @property
    def num_enemies(self) -> int:
        return len(self.enemies)

    def type_ids(self, type_names: Sequence[str] = C.UNIT_TYPE_NAMES) -> tuple[int, ...]:
        """Type indices of all units (allies then enemies) in the table `type_names`;
        `ValueError` naming an unknown type."""
        ids = []
        for name in self.allies + self.enemies:
            if name not in type_names:
                raise ValueError(f"unknown unit type {name!r}; known types: {tuple(type_names)}.")
            ids.append(type_names.index(name))
        return tuple(ids)


def _units(**counts: int) -> tuple[str, ...]:
    return tuple(name for name, n in counts.items() for _ in range(n))


def _smacv2(n: int) -> Scenario:
    return Scenario(_units(marine=n), _units(marine=n), True, True)


#: The scenarios registered as `smax-<name>`, in registration order (smallest first). Add
#: your own with `register_scenario`.
SCENARIOS: dict[str, Scenario] = {
    "3m": Scenario(_units(marine=3), _units(marine=3)),
    "2s3z": Scenario(_units(stalker=2, zealot=3), _units(stalker=2, zealot=3)),
    "3s5z": Scenario(_units(stalker=3, zealot=5), _units(stalker=3, zealot=5)),
    "8m": Scenario(_units(marine=8), _units(marine=8)),
    "25m": Scenario(_units(marine=25), _units(marine=25)),
    "5m_vs_6m": Scenario(_units(marine=5), _units(marine=6)),
    "10m_vs_11m": Scenario(_units(marine=10), _units(marine=11)),
    "27m_vs_30m": Scenario(_units(marine=27), _units(marine=30)),
    "3s5z_vs_3s6z": Scenario(_units(stalker=3, zealot=5), _units(stalker=3, zealot=6)),
    "3s_vs_5z": Scenario(_units(stalker=3), _units(zealot=5)),
    "6h_vs_8z": Scenario(_units(hydralisk=6), _units(zealot=8)),
    "smacv2-5-units": _smacv2(5),
    "smacv2-10-units": _smacv2(10),
    "smacv2-20-units": _smacv2(20),
}


def get_scenario(name: str) -> Scenario:
    """The scenario registered as `name`; `ValueError` listing the known names."""
    try:
        return SCENARIOS[name]
    except KeyError:
        raise ValueError(
            f"unknown SMAX scenario {name!r}; known scenarios: {', '.join(SCENARIOS)}. "
            "Add one with jaxmarl_envs.smax.register_scenario."
        ) from None


def register_scenario(
    name: str, scenario: Scenario, *, register_id: bool = True, **env_kwargs
) -> str:
    """Adds a scenario, and (by default) registers the environment id `smax-<name>`.

    Args:
        name: scenario name, e.g. "2m_vs_1z".
        scenario: the units of each team.
        register_id: also register `smax-<name>` so `jaxmarl_envs.make` builds it.
        **env_kwargs: further `SMAX` arguments stored with the id (e.g. `time_limit`).

    Returns:
        The environment id (`smax-<name>`).

    Example:
        >>> from jaxmarl_envs.smax import Scenario, register_scenario
        >>> register_scenario("2m_vs_1z", Scenario(("marine",) * 2, ("zealot",)))
        'smax-2m_vs_1z'
    """
    if not isinstance(scenario, Scenario):
        raise ValueError(f"scenario must be a jaxmarl_envs.smax.Scenario, got {type(scenario)}.")
    if not isinstance(name, str) or not name:
        raise ValueError(f"scenario name must be a non-empty string, got {name!r}.")
    if name in SCENARIOS and SCENARIOS[name] != scenario:
        raise ValueError(f"SMAX scenario {name!r} is already registered with other units.")
    scenario.type_ids()  # unknown unit types fail here, not at make()
    env_id = f"smax-{name}"
    if register_id:
        from jaxmarl_envs import registry
        from jaxmarl_envs.smax.env import SMAX

        if env_id in registry._REGISTRY:
            raise ValueError(f"environment id '{env_id}' is already registered.")
        SCENARIOS[name] = scenario
        desc = f"SMAX {name}: {scenario.num_allies} allies vs {scenario.num_enemies} enemies" + (
            " (SMACv2-style random units and positions)" if scenario.random_unit_types else ""
        )
        registry.register(
            env_id, SMAX, family="smax", description=desc, scenario=name, **env_kwargs
        )
    else:
        SCENARIOS[name] = scenario
    return env_id
