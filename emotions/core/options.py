"""Checked option sets (pydantic): unknown keys and wrong types become one clear message each."""

from __future__ import annotations

import difflib
import typing
from typing import Any, Iterable

from pydantic import BaseModel, ConfigDict, ValidationError


class Options(BaseModel):
    """Base of every option set: unknown keys are errors, values are checked when set."""

    model_config = ConfigDict(extra="forbid", validate_default=False, protected_namespaces=())

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """The defaults as a plain dict (what the older `DEFAULTS` dicts held)."""
        return cls().model_dump(mode="python")


class OptionsError(ValueError):
    """Options that do not fit their schema; `problems` holds one line per key."""

    def __init__(self, problems: list[str], where: str = ""):
        self.problems = problems
        head = f"{where}: " if where else ""
        super().__init__(head + ("\n  ".join(problems) if len(problems) == 1 else
                                 f"{len(problems)} problems:\n  " + "\n  ".join(problems)))


def closest(name: str, known: Iterable[str], n: int = 3) -> list[str]:
    """Known names that look like `name` (case-insensitive first, then difflib)."""
    known = list(known)
    same_case = [k for k in known if k.lower() == name.lower()]
    near = difflib.get_close_matches(name, known, n=n, cutoff=0.5)
    return list(dict.fromkeys(same_case + near))[:n]


def type_name(annotation: Any) -> str:
    """A short, readable name for a field's type: `int`, `float`, `'auto' | int | null`, ..."""
    if annotation is type(None):
        return "null"
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return " | ".join(repr(a) if isinstance(a, str) else str(a) for a in typing.get_args(annotation))
    if origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
        return " | ".join(type_name(a) for a in typing.get_args(annotation))
    if origin is typing.Annotated:
        return type_name(typing.get_args(annotation)[0])
    if origin in (list, tuple):
        args = typing.get_args(annotation)
        return f"list of {type_name(args[0])}" if args else "list"
    if origin is dict:
        return "mapping"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "mapping"
    return getattr(annotation, "__name__", str(annotation))


def _field_info(model: type[BaseModel], loc: tuple) -> tuple[str, Any, type[BaseModel] | None, list[str]]:
    """Walk `loc` through nested models: (dotted key, field annotation, parent model, known keys there)."""
    parts: list[str] = []
    annotation: Any = model
    parent: type[BaseModel] | None = model
    for item in loc:
        cls = _model_of(annotation)
        if cls is None or not isinstance(item, str):
            if isinstance(item, int):
                parts.append(str(item))
                continue
            break
        parent = cls
        parts.append(item)
        if item not in cls.model_fields:
            return ".".join(parts), None, cls, list(cls.model_fields)
        annotation = cls.model_fields[item].annotation
    known = list(parent.model_fields) if parent is not None else []
    return ".".join(parts), annotation, parent, known


def _model_of(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation) or ():
        found = _model_of(arg)
        if found is not None:
            return found
    return None


def describe_errors(err: ValidationError, model: type[BaseModel], prefix: str = "") -> list[str]:
    """One line per bad key: the key, what is wrong, the expected type and the closest known keys."""
    lines: dict[str, str] = {}
    reasons: dict[str, list[str]] = {}
    pre = f"{prefix}." if prefix else ""
    for e in err.errors():
        key, annotation, _parent, known = _field_info(model, tuple(e["loc"]))
        full = pre + key
        if e["type"] == "extra_forbidden":
            name = key.rsplit(".", 1)[-1]
            near = closest(name, known)
            hint = (f"; did you mean {' or '.join(repr(k) for k in near)}?" if near
                    else f"; known here: {', '.join(sorted(known))}")
            lines[full] = f"unknown key {full!r}{hint}"
            continue
        msg = e["msg"][0].lower() + e["msg"][1:]
        reasons.setdefault(full, [])
        if msg not in reasons[full]:
            reasons[full].append(msg)
        expected = type_name(annotation) if annotation is not None else "?"
        lines[full] = f"{full} = {e.get('input')!r}: expected {expected} ({'; or '.join(reasons[full])})"
    return list(lines.values())


def check(model: type[BaseModel], data: dict | None, where: str = "", prefix: str = "") -> BaseModel:
    """Validate `data` against `model`; raise OptionsError with one line per bad key."""
    try:
        return model.model_validate(dict(data or {}))
    except ValidationError as e:
        raise OptionsError(describe_errors(e, model, prefix), where) from None


def merged(model: type[Options], params: dict | None, runtime_keys: Iterable[str] = (),
           where: str = "") -> dict[str, Any]:
    """Defaults of `model` updated by `params` (checked); keys in `runtime_keys` are passed over."""
    skip = set(runtime_keys)
    known = {k: v for k, v in (params or {}).items() if k not in skip}
    return check(model, known, where).model_dump(mode="python")
