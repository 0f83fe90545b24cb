"""Decoding request bodies into wire types, reporting every offending field at once.

msgspec stops at the first error, which makes a caller fix a request one field per round trip.
When conversion fails, the raw value is walked field by field against the same type, so the
problem lists every bad field with its public path (``conversations[0].site``, ``filters.from``:
the encoded name, never the Python attribute). Leaves are still checked by msgspec itself, so
what is reported is exactly what conversion enforces.
"""

from __future__ import annotations

import types
import typing
from datetime import datetime
from typing import Any, TypeVar, Union

import msgspec

from archive.errors import FieldError, InvalidInput, MalformedBody, field_path
from archive.limits import check_json_document, date_problem

T = TypeVar("T")

# Most errors worth reporting in one problem; a body with thousands of bad items is described by
# its first ones.
MAX_REPORTED = 50


def decode_json(body: bytes | str, what: str = "the request body") -> Any:
    """JSON to builtins; malformed, non-UTF-8 or too deeply nested input is a 400 naming the cause."""
    check_json_document(body.encode() if isinstance(body, str) else body, what)
    try:
        return msgspec.json.decode(body)
    except RecursionError:
        raise MalformedBody(f"{what} is nested too deeply", [FieldError("$", "JSON nested too deeply")]) from None
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise MalformedBody(f"{what} is not valid UTF-8 JSON: {exc}", [FieldError("$", str(exc))]) from None


def convert(raw: Any, type_: type[T], detail: str = "the request is invalid; nothing was stored", path: str = "") -> T:
    """``msgspec.convert`` that, on failure, raises InvalidInput listing every offending field,
    dates out of ``archive.limits``' range included."""
    try:
        value = msgspec.convert(raw, type_)
        if errors := date_problems(value, path):
            raise InvalidInput(detail, errors[:MAX_REPORTED])
        return value
    except msgspec.ValidationError as exc:
        errors = problems(raw, type_, path) or [_leaf_error(exc, path)]
        raise InvalidInput(detail, errors[:MAX_REPORTED]) from None
    except RecursionError:
        raise MalformedBody("the request is nested too deeply", [FieldError(path or "$", "nested too deeply")]) from None


def date_problems(value: Any, path: str = "") -> list[FieldError]:
    """Dates of a converted Struct, and of Structs inside it, outside the range every date must
    lie in (archive.limits). Lists are not walked: that is per-item work on hot paths (ingest
    checks its messages' dates itself)."""
    found: list[FieldError] = []
    if isinstance(value, msgspec.Struct):
        for info in msgspec.structs.fields(value):
            item = getattr(value, info.name)
            where = _join(path, info.encode_name)
            if isinstance(item, datetime):
                if (problem := date_problem(item)) is not None:
                    found.append(FieldError(where, problem))
            elif isinstance(item, msgspec.Struct):
                found.extend(date_problems(item, where))
    return found


def problems(raw: Any, type_: Any, path: str = "") -> list[FieldError]:
    """Every field of ``raw`` that does not convert to ``type_`` (empty when it converts)."""
    try:
        msgspec.convert(raw, type_)
        return []
    except msgspec.ValidationError as exc:
        leaf = _leaf_error(exc, path)
    base, _ = _unwrap(type_)
    found: list[FieldError] = []
    if isinstance(base, type) and issubclass(base, msgspec.Struct) and isinstance(raw, dict):
        found = _struct_problems(raw, base, path)
    elif typing.get_origin(base) in (list, tuple, set, frozenset) and isinstance(raw, list):
        (item_type, *_) = typing.get_args(base) or (Any,)
        for index, item in enumerate(raw):
            found.extend(problems(item, item_type, f"{path}[{index}]"))
            if len(found) >= MAX_REPORTED:
                break
    elif typing.get_origin(base) is dict and isinstance(raw, dict):
        _, value_type = typing.get_args(base) or (Any, Any)
        for key, value in raw.items():
            found.extend(problems(value, value_type, _join(path, str(key))))
    elif _is_optional_struct(base) and isinstance(raw, dict):
        found = problems(raw, next(t for t in typing.get_args(base) if t is not type(None)), path)
    elif typing.get_origin(base) is typing.Literal and leaf.message.startswith("Invalid enum value"):
        # msgspec names the value refused, not the values accepted: say them, so one look fixes it.
        leaf = FieldError(leaf.path, f"{leaf.message}; expected one of {', '.join(map(str, typing.get_args(base)))}")
    # Constraints on the container itself (length, say) surface as the leaf error.
    return found or [leaf]


def _struct_problems(raw: dict[str, Any], struct: type[msgspec.Struct], path: str) -> list[FieldError]:
    found: list[FieldError] = []
    fields = {f.encode_name: f for f in msgspec.structs.fields(struct)}
    if struct.__struct_config__.forbid_unknown_fields:
        for key in raw:
            if key not in fields:
                found.append(FieldError(_join(path, str(key)), f"unknown field; expected one of {', '.join(fields)}"))
    for name, info in fields.items():
        if name not in raw:
            if info.required:
                found.append(FieldError(_join(path, name), "this field is required"))
            continue
        found.extend(problems(raw[name], info.type, _join(path, name)))
    return found


def _unwrap(type_: Any) -> tuple[Any, tuple[Any, ...]]:
    if typing.get_origin(type_) is typing.Annotated:
        base, *meta = typing.get_args(type_)
        return base, tuple(meta)
    return type_, ()


def _is_optional_struct(type_: Any) -> bool:
    if typing.get_origin(type_) not in (Union, types.UnionType):
        return False
    options = [t for t in typing.get_args(type_) if t is not type(None) and t is not msgspec.UnsetType]
    return len(options) == 1 and isinstance(options[0], type) and issubclass(options[0], msgspec.Struct)


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _leaf_error(exc: msgspec.ValidationError, path: str) -> FieldError:
    message, _, where = str(exc).partition(" - at `$")
    where = where.rstrip("`")
    # msgspec names a missing or unknown field at its parent; a leaf check has no parent path.
    inner = where.lstrip(".") if where else ""
    full = _join(path, inner) if inner and not inner.startswith("[") else f"{path}{inner}"
    return FieldError(field_path(full, message) or "$", message)
