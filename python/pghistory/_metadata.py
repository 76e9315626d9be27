"""Context metadata: checked and encoded as JSON before anything is sent.

The metadata travels to the server in the ``pghistory.context_metadata``
setting and is stored as ``jsonb`` in ``pghistory.context``. Whatever jsonb
would refuse, or JSON would silently change, is refused here with a message
that names the offending key, so a bad value can never make a user's write
fail (or lose its history) later, inside a trigger.

Accepted values: ``None``, ``bool``, ``int``, finite ``float``, ``str``,
lists and tuples, and dicts with ``str`` keys, nested freely; plus, as
django-pghistory's encoder does, `uuid.UUID` and `decimal.Decimal` (as
strings) and `datetime.datetime`, `datetime.date` and `datetime.time` (as ISO
8601 strings).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any
from uuid import UUID

#: The largest metadata accepted, in bytes of its JSON text (1 MiB). Every
#: tracked statement reads the metadata, so keep it small: store large
#: payloads elsewhere and put a reference in the metadata.
MAX_METADATA_BYTES = 1024 * 1024


def check_metadata(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """Return a JSON-ready copy of *metadata*, or raise TypeError/ValueError."""
    checked = _check_object(metadata, "metadata", set())
    dump_metadata(checked)  # the size limit applies to each part on its own too
    return checked


def dump_metadata(metadata: Mapping[str, Any]) -> str:
    """Encode checked metadata as compact JSON text, within the size limit."""
    text = json.dumps(metadata, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    size = len(text.encode("utf-8"))
    if size > MAX_METADATA_BYTES:
        biggest = max(metadata, key=lambda k: len(json.dumps(metadata[k], ensure_ascii=False)))
        raise ValueError(
            f"context metadata is {size} bytes of JSON, more than the "
            f"{MAX_METADATA_BYTES} bytes pghistory accepts (the largest value is "
            f"{biggest!r}); store large data elsewhere and put a reference to it "
            "in the metadata"
        )
    return text


def _check(value: Any, where: str, seen: set[int]) -> Any:
    if value is None or isinstance(value, bool) or isinstance(value, int):
        return value
    if isinstance(value, str):
        return _check_string(value, where)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{where} is {value!r}, which JSON cannot represent")
        return value
    if isinstance(value, Mapping):
        return _check_object(value, where, seen)
    if isinstance(value, (list, tuple)):
        return _check_array(value, where, seen)
    if isinstance(value, (UUID, Decimal)):
        return str(value)
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    raise TypeError(
        f"{where} is a {type(value).__qualname__}, which cannot be encoded as JSON; "
        "use None, bool, int, float, str, list, dict (or UUID, Decimal, date, time, "
        "datetime)"
    )


def _check_object(value: Mapping[Any, Any], where: str, seen: set[int]) -> dict[str, Any]:
    _enter(value, where, seen)
    checked: dict[str, Any] = {}
    for key, item in value.items():
        if not isinstance(key, str):
            raise TypeError(
                f"{where} has the key {key!r} ({type(key).__qualname__}): "
                "JSON object keys must be strings"
            )
        _check_string(key, f"the key {key!r} in {where}")
        checked[key] = _check(item, f"{where}[{key!r}]", seen)
    seen.discard(id(value))
    return checked


def _check_array(value: list[Any] | tuple[Any, ...], where: str, seen: set[int]) -> list[Any]:
    _enter(value, where, seen)
    checked = [_check(item, f"{where}[{i}]", seen) for i, item in enumerate(value)]
    seen.discard(id(value))
    return checked


def _enter(value: object, where: str, seen: set[int]) -> None:
    if id(value) in seen:
        raise ValueError(f"{where} contains itself: JSON cannot encode a circular reference")
    seen.add(id(value))


def _check_string(value: str, where: str) -> str:
    if "\x00" in value:
        raise ValueError(f"{where} contains a NUL character (\\x00), which jsonb cannot store")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as ex:
        raise ValueError(f"{where} is not valid Unicode text ({ex.reason})") from None
    return value
