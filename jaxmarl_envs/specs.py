"""Specs: shapes, dtypes and bounds of observations and actions, with validation and the one
conversion to Gymnasium spaces and dm-env specs used by every adapter."""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import numpy as np


def _is_traced(value: Any) -> bool:
    return isinstance(value, jax.core.Tracer)


class Spec(abc.ABC):
    """Describes a value an environment produces or accepts."""

    name: str

    @abc.abstractmethod
    def generate_value(self) -> Any:
        """A valid example value (zeros or the minimum)."""

    @abc.abstractmethod
    def validate(self, value: Any) -> Any:
        """Returns `value` if it conforms, else raises `ValueError` naming the problem."""

    @abc.abstractmethod
    def to_gymnasium(self) -> Any:
        """The equivalent `gymnasium.spaces.Space`."""

    @abc.abstractmethod
    def to_dm_env(self) -> Any:
        """The equivalent `dm_env.specs` object (nested dict for structured specs)."""


class Array(Spec):
    """An array of fixed shape and dtype."""

    def __init__(self, shape: tuple[int, ...], dtype: Any, name: str = ""):
        self.shape = tuple(int(d) for d in shape)
        self.dtype = np.dtype(dtype)
        self.name = name

    def __repr__(self) -> str:
        return f"{type(self).__name__}(shape={self.shape}, dtype={self.dtype}, name={self.name!r})"

    def __eq__(self, other: object) -> bool:
        return (
            type(self) is type(other)
            and self.__dict__.keys() == other.__dict__.keys()
            and all(
                np.array_equal(v, other.__dict__[k])
                if isinstance(v, np.ndarray)
                else v == other.__dict__[k]
                for k, v in self.__dict__.items()
            )
        )

    __hash__ = None  # type: ignore[assignment]

    def generate_value(self) -> np.ndarray:
        return np.zeros(self.shape, self.dtype)

    def _label(self) -> str:
        return f"'{self.name}'" if self.name else "value"

    def _check_shape_dtype(self, value: Any) -> None:
        shape = tuple(np.shape(value))
        if shape != self.shape:
            raise ValueError(f"{self._label()} has shape {shape}, expected {self.shape}.")
        dtype = np.dtype(getattr(value, "dtype", np.asarray(value).dtype))
        if not np.can_cast(dtype, self.dtype, casting="same_kind"):
            raise ValueError(
                f"{self._label()} has dtype {dtype}, expected {self.dtype} "
                f"(or one that casts to it safely)."
            )
        if np.issubdtype(self.dtype, np.integer) and not np.issubdtype(dtype, np.integer):
            raise ValueError(
                f"{self._label()} has dtype {dtype}, expected integers ({self.dtype})."
            )

    def validate(self, value: Any) -> Any:
        self._check_shape_dtype(value)
        return value

    def to_gymnasium(self) -> Any:
        from gymnasium import spaces

        if self.dtype == np.bool_:
            return spaces.MultiBinary(list(self.shape) if self.shape else 1)
        if np.issubdtype(self.dtype, np.integer):
            info = np.iinfo(self.dtype)
            return spaces.Box(info.min, info.max, self.shape, self.dtype)
        return spaces.Box(-np.inf, np.inf, self.shape, self.dtype)

    def to_dm_env(self) -> Any:
        from dm_env import specs

        return specs.Array(self.shape, self.dtype, self.name)


class BoundedArray(Array):
    """An array with inclusive elementwise bounds (broadcast to `shape`)."""

    def __init__(self, shape, dtype, minimum, maximum, name: str = ""):
        super().__init__(shape, dtype, name)
        self.minimum = np.broadcast_to(np.asarray(minimum, self.dtype), self.shape).copy()
        self.maximum = np.broadcast_to(np.asarray(maximum, self.dtype), self.shape).copy()
        if np.any(self.minimum > self.maximum):
            raise ValueError(f"BoundedArray {name!r}: minimum exceeds maximum somewhere.")

    def generate_value(self) -> np.ndarray:
        return self.minimum.copy()

    def validate(self, value: Any) -> Any:
        self._check_shape_dtype(value)
        if not _is_traced(value):
            arr = np.asarray(value)
            if np.issubdtype(arr.dtype, np.floating) and np.isnan(arr).any():
                idx = tuple(int(i) for i in np.argwhere(np.isnan(arr))[0])
                raise ValueError(f"{self._label()} is non-finite (NaN) at index {idx}.")
            bad = (arr < self.minimum) | (arr > self.maximum)
            if np.any(bad):
                idx = tuple(int(i) for i in np.argwhere(bad)[0])
                raise ValueError(
                    f"{self._label()} out of bounds at index {idx}: {arr[idx]} not in "
                    f"[{self.minimum[idx]}, {self.maximum[idx]}]."
                )
        return value

    def to_gymnasium(self) -> Any:
        from gymnasium import spaces

        if self.dtype == np.bool_:
            return spaces.MultiBinary(list(self.shape) if self.shape else 1)
        return spaces.Box(self.minimum, self.maximum, self.shape, self.dtype)

    def to_dm_env(self) -> Any:
        from dm_env import specs

        return specs.BoundedArray(self.shape, self.dtype, self.minimum, self.maximum, self.name)


class DiscreteArray(BoundedArray):
    """A scalar integer in `[0, num_values)`."""

    def __init__(self, num_values: int, dtype: Any = np.int32, name: str = ""):
        if int(num_values) < 1:
            raise ValueError(f"DiscreteArray {name!r}: num_values must be >= 1, got {num_values}.")
        self.num_values = int(num_values)
        super().__init__((), dtype, 0, self.num_values - 1, name)

    def to_gymnasium(self) -> Any:
        from gymnasium import spaces

        return spaces.Discrete(self.num_values)

    def to_dm_env(self) -> Any:
        from dm_env import specs

        return specs.DiscreteArray(self.num_values, self.dtype, self.name)


class MultiDiscreteArray(BoundedArray):
    """Integers with per-element counts: element `i` lies in `[0, num_values[i])`."""

    def __init__(self, num_values: Any, dtype: Any = np.int32, name: str = ""):
        self.num_values = np.asarray(num_values, dtype)
        if np.any(self.num_values < 1):
            raise ValueError(f"MultiDiscreteArray {name!r}: every num_values entry must be >= 1.")
        super().__init__(self.num_values.shape, dtype, 0, self.num_values - 1, name)

    def to_gymnasium(self) -> Any:
        from gymnasium import spaces

        # int64, numpy's default integer: `contains` then accepts what numpy, `sample()` and
        # clients such as Stable-Baselines3 produce (it refuses dtypes that don't cast safely).
        return spaces.MultiDiscrete(self.num_values.astype(np.int64), dtype=np.int64)


#: Integer dtypes a replay buffer may store whole-number values in, narrowest first.
_STORAGE_INTEGERS = (np.uint8, np.int8, np.uint16, np.int16)


def exact_storage_dtype(spec: Array, integer_valued: bool) -> np.dtype:
    """The narrowest dtype that holds every value `spec` allows exactly, for storage.

    `integer_valued` says the values are always whole numbers (the environment's
    `integer_valued`); then a `BoundedArray` whose bounds fit `uint8`, `int8`, `uint16` or
    `int16` is stored in the first that fits, and cast back to the spec's dtype exactly.
    Anything else keeps the spec's dtype.
    """
    if integer_valued and isinstance(spec, BoundedArray) and spec.shape:
        low, high = np.min(spec.minimum), np.max(spec.maximum)
        if np.isfinite(low) and np.isfinite(high):
            for dtype in _STORAGE_INTEGERS:
                info = np.iinfo(dtype)
                if info.min <= low and high <= info.max:
                    return np.dtype(dtype)
    return spec.dtype


class Structured(Spec):
    """A pytree of specs: `constructor(**{field: spec_value})` builds the value.

    Args:
        constructor: the value's type (a dataclass such as `Observation`) or `dict`.
        name: spec name.
        **fields: one spec per field.
    """

    def __init__(self, constructor: Callable[..., Any], name: str = "", **fields: Spec):
        self.constructor = constructor
        self.name = name
        self.fields: dict[str, Spec] = dict(fields)

    def __repr__(self) -> str:
        return (
            f"Structured({getattr(self.constructor, '__name__', self.constructor)}, {self.fields})"
        )

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Structured)
            and self.constructor is other.constructor
            and self.fields == other.fields
        )

    __hash__ = None  # type: ignore[assignment]

    def __getattr__(self, item: str) -> Spec:  # field access, e.g. spec.agents_view
        fields = self.__dict__.get("fields", {})
        if item in fields:
            return fields[item]
        raise AttributeError(item)

    def replace(self, **fields: Spec) -> Structured:
        """A copy with some field specs replaced (or added)."""
        return Structured(self.constructor, self.name, **{**self.fields, **fields})

    def generate_value(self) -> Any:
        return self.constructor(**{k: s.generate_value() for k, s in self.fields.items()})

    def _get(self, value: Any, key: str) -> Any:
        if isinstance(value, dict):
            return value[key]
        return getattr(value, key)

    def validate(self, value: Any) -> Any:
        for key, spec in self.fields.items():
            try:
                field = self._get(value, key)
            except (KeyError, AttributeError) as err:
                raise ValueError(f"{self.name or 'value'} is missing field '{key}'.") from err
            try:
                spec.validate(field)
            except ValueError as err:
                raise ValueError(f"field '{key}': {err}") from err
        return value

    def to_gymnasium(self) -> Any:
        from gymnasium import spaces

        return spaces.Dict({k: s.to_gymnasium() for k, s in self.fields.items()})

    def to_dm_env(self) -> Any:
        return {k: s.to_dm_env() for k, s in self.fields.items()}


def as_dict(value: Any) -> dict:
    """A structured value (dataclass or dict) as a plain dict of its fields."""
    if isinstance(value, dict):
        return dict(value)
    if dataclasses.is_dataclass(value):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    raise TypeError(f"cannot convert {type(value).__name__} to a dict of fields")
