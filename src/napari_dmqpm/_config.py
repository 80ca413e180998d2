"""The one JSON round-trip of the frozen config dataclasses.

Every config (``InferenceConfig``, ``PostprocessConfig``, ``ModelConfig``, ``TrainConfig``,
``AugmentConfig``, ``SimulationConfig`` ...) is written with :func:`config_to_dict` and read
back with :func:`config_from_dict`, which follows the fields' type annotations: nested configs
are built from JSON objects, tuples from JSON lists, and a key that is not a field or a value
of the wrong JSON type is one ``ValueError`` naming the key (``'augment.p_blur' must be a JSON
number; got "high"``). Ranges and choices are checked by each config's ``__post_init__``.
Nothing here imports more than the standard library.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import numbers
import types
import typing
from typing import Any, TypeVar

__all__ = ["config_from_dict", "config_to_dict"]

T = TypeVar("T")


def config_to_dict(config: Any) -> dict[str, Any]:
    """A JSON-native dict of a config dataclass: nested configs as dicts, tuples as lists.

    Parameters
    ----------
    config : dataclass instance
        A config, possibly holding other configs.

    Returns
    -------
    dict
        Field name -> value, ready for :func:`json.dumps`; :func:`config_from_dict` inverts it.

    Examples
    --------
    >>> from napari_dmqpm.simulation import SimulationConfig
    >>> config_to_dict(SimulationConfig(shape=(64, 48)))["shape"]
    [64, 48]
    """
    if not dataclasses.is_dataclass(config) or isinstance(config, type):
        raise TypeError(f"config must be a dataclass instance; got {type(config).__name__}")
    return _jsonable(config)


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    return value


def config_from_dict(cls: type[T], data: Any) -> T:
    """Build a config dataclass from a dict such as :func:`config_to_dict` writes.

    Missing keys take their defaults. Nested configs, tuples and optional values follow the
    fields' annotations.

    Parameters
    ----------
    cls : type
        The config class (a dataclass whose annotations the ``typing`` module can resolve).
    data : dict
        Field name -> JSON value.

    Returns
    -------
    cls
        The config; its ``__post_init__`` checks ranges and choices.

    Raises
    ------
    ValueError
        ``data`` is not a dict, a key is not a field of ``cls`` (``unknown ModelConfig keys:
        ['depth']``), or a value is of the wrong JSON type (``'learning_rate' must be a JSON
        number; got "fast"``); keys of nested configs are named by their path
        (``'model.heads[0].channels'``).

    Examples
    --------
    >>> from napari_dmqpm.inference import PostprocessConfig
    >>> config_from_dict(PostprocessConfig, {"seed_h": 0.2}).seed_h
    0.2
    >>> config_from_dict(PostprocessConfig, {"seed_treshold": 0.4})
    Traceback (most recent call last):
    ...
    ValueError: unknown PostprocessConfig keys: ['seed_treshold']
    """
    return _build(cls, data, "")


def _build(cls: type[T], data: Any, path: str) -> T:
    name = cls.__name__
    if not isinstance(data, dict):
        where = f"{path!r} " if path else ""
        raise ValueError(
            f"{where}{name} data must be a dict (a JSON object); got {type(data).__name__}"
        )
    hints = _field_types(typing.cast(Any, cls))
    unknown = sorted(set(data) - set(hints), key=str)
    if unknown:
        where = f" in {path!r}" if path else ""
        raise ValueError(f"unknown {name} keys{where}: {unknown}")
    values = {
        key: _convert(hints[key], value, f"{path}.{key}" if path else key)
        for key, value in data.items()
    }
    return cls(**values)


@functools.cache
def _field_types(cls: Any) -> dict[str, Any]:
    """Field name -> resolved annotation, for the fields ``cls(...)`` takes."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"cls must be a dataclass; got {cls!r}")
    hints = typing.get_type_hints(cls)
    return {f.name: hints.get(f.name, Any) for f in dataclasses.fields(cls) if f.init}


def _convert(hint: Any, value: Any, path: str) -> Any:
    """``value`` checked against ``hint``, JSON lists made tuples and dicts made configs."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        arms = typing.get_args(hint)
        if value is None and type(None) in arms:
            return None
        for arm in arms:
            if arm is not type(None) and _accepts(arm, value):
                return _convert(arm, value, path)
        _wrong(" or ".join(_words(arm) for arm in arms), value, path)
    if hint is Any or not _accepts(hint, value):
        if hint is Any:
            return value
        _wrong(_words(hint), value, path)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _build(hint, value, path)
    if origin is tuple:
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            args = (args[0],) * len(value)
        elif len(args) != len(value):
            raise ValueError(
                f"{path!r} must be a JSON list of {len(args)} items; got {_shown(value)}"
            )
        return tuple(_convert(arm, item, f"{path}[{i}]") for i, (arm, item) in
                     enumerate(zip(args, value, strict=True)))  # fmt: skip
    return value


def _accepts(hint: Any, value: Any) -> bool:
    """Whether ``value`` has the JSON type of ``hint`` (numbers: any, bool excluded)."""
    origin = typing.get_origin(hint) or hint
    if origin is bool:
        return isinstance(value, bool)
    if origin in (int, float):
        return isinstance(value, numbers.Real) and not isinstance(value, bool)
    if origin is str:
        return isinstance(value, str)
    if origin in (tuple, list):
        return isinstance(value, (list, tuple))
    if origin is dict or dataclasses.is_dataclass(origin):
        return isinstance(value, dict)
    if origin is type(None):
        return value is None
    return True  # Literal, Any and the like: the config's __post_init__ checks


def _words(hint: Any) -> str:
    origin = typing.get_origin(hint) or hint
    if origin is bool:
        return "true or false"
    if origin in (int, float):
        return "number"
    if origin is str:
        return "string"
    if origin in (tuple, list):
        return "list"
    if origin is type(None):
        return "null"
    return "object"


def _shown(value: Any) -> str:
    try:
        return json.dumps(value)[:60]
    except (TypeError, ValueError):
        return repr(value)[:60]


def _wrong(words: str, value: Any, path: str) -> typing.NoReturn:
    raise ValueError(f"{path!r} must be a JSON {words}; got {_shown(value)}")
