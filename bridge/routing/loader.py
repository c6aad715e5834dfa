"""Loading a routing file: TOML in, a checked `RoutingTable` out, or errors that name
the file, the rule and the field."""

from __future__ import annotations

import tomllib
import types
import typing
from collections.abc import Sequence
from difflib import get_close_matches
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from bridge.routing.rules import ACTION_NAMES, RoutesDocument, RuleLookup, When
from bridge.routing.table import RoutingTable

# pydantic's names for the branches of a rule's `lookup` (a table, or false).
_LOOKUP_OFF_BRANCH = "literal[False]"
_LOOKUP_TABLE_BRANCH = RuleLookup.__name__


class RoutesError(ValueError):
    """The routing file cannot be used. `problems` holds one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


def load_routes(path: Path) -> RoutingTable:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RoutesError([f"{path}: cannot read routing file: {exc.strerror}"]) from None
    except UnicodeDecodeError:
        raise RoutesError([f"{path}: routing file is not UTF-8 text"]) from None
    return parse_routes(text, source=str(path))


def parse_routes(text: str, *, source: str = "<routes>") -> RoutingTable:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RoutesError([f"{source}: invalid TOML: {exc}"]) from None
    try:
        document = RoutesDocument.model_validate(raw)
    except ValidationError as exc:
        raise RoutesError(
            [
                f"{source}: {_describe(error, raw)}"
                for error in exc.errors()
                # `lookup` is a table or false: a bad table is not a reason to say "false".
                if _LOOKUP_OFF_BRANCH not in error["loc"]
            ]
        ) from None
    problems = [f"{source}: {problem}" for problem in _cross_check(document)]
    if problems:
        raise RoutesError(problems)
    return RoutingTable(
        rules=tuple(document.rules),
        schedules=document.schedules,
        fallback=document.fallback,
        source=source,
    )


def _cross_check(document: RoutesDocument) -> list[str]:
    problems = []
    seen: set[str] = set()
    for index, rule in enumerate(document.rules):
        where = f"rule {rule.name!r} (#{index + 1})"
        if rule.name in seen:
            problems.append(f"{where}: field 'name': duplicate rule name")
        seen.add(rule.name)
        for key in ("during", "outside"):
            schedule = getattr(rule.when, key)
            if schedule is not None and schedule not in document.schedules:
                known = ", ".join(sorted(document.schedules)) or "none defined"
                problems.append(
                    f"{where}: field 'when.{key}': unknown schedule {schedule!r} (known: {known})"
                )
        if rule.when.during is not None and rule.when.during == rule.when.outside:
            problems.append(f"{where}: field 'when': during and outside the same schedule")
    return problems


def _describe(error: Any, raw: dict[str, Any]) -> str:
    loc: Sequence[int | str] = error["loc"]
    where = "top level"
    fields = list(loc)
    if len(fields) >= 2 and fields[0] == "rules" and isinstance(fields[1], int):
        index = fields[1]
        where = f"rule {_rule_name(raw, index)} (#{index + 1})"
        fields = fields[2:]
        # pydantic puts the chosen action (the union tag) in the path; users never wrote it.
        if fields and fields[0] in ACTION_NAMES:
            fields = fields[1:]
    elif fields and fields[0] == "fallback":
        where = "fallback"
        fields = fields[1:]
        if fields and fields[0] in ACTION_NAMES:
            fields = fields[1:]
    elif len(fields) >= 2 and fields[0] == "schedules":
        where = f"schedule {fields[1]!r}"
        fields = fields[2:]
    fields = _drop_union_tags(fields)
    if error["type"] in ("union_tag_not_found", "union_tag_invalid"):
        fields.append("action")
    text = _rule_text(error)
    if error["type"] == "extra_forbidden":
        text += _did_you_mean(loc)
    return f"{where}: field '{_path(fields) or '(table)'}': {text}"


def _did_you_mean(loc: Sequence[int | str]) -> str:
    """A "; did you mean 'x'?" for the unknown key at `loc`, or "" when no key is near."""
    model = _model_at(loc[:-1])
    key = loc[-1]
    if model is None or not isinstance(key, str):
        return ""
    known = {name: name for name in model.model_fields}
    if "when" in known:
        # A condition written beside the action instead of under `when`.
        known |= {name: f"when.{name}" for name in When.model_fields}
    nearest = get_close_matches(key, known, n=1)
    return f"; did you mean {known[nearest[0]]!r}?" if nearest else ""


def _model_at(loc: Sequence[int | str]) -> type[BaseModel] | None:
    """The model whose keys pydantic checked at `loc`, found by walking the type hints."""
    hint: Any = RoutesDocument
    for part in loc:
        hint = _unwrap(hint)
        if _is_union(hint):
            # pydantic puts a tagged union's chosen member (the action) in the path.
            hint = next(
                (m for m in typing.get_args(hint) if part in (_tag(m), getattr(m, "__name__", ""))),
                None,
            )
        elif isinstance(hint, type) and issubclass(hint, BaseModel):
            field = hint.model_fields.get(str(part))
            hint = field.annotation if field is not None else None
        elif typing.get_origin(hint) is list and isinstance(part, int):
            hint = typing.get_args(hint)[0]
        elif typing.get_origin(hint) is dict and isinstance(part, str):
            hint = typing.get_args(hint)[1]
        else:
            return None
    hint = _unwrap(hint)
    return hint if isinstance(hint, type) and issubclass(hint, BaseModel) else None


def _unwrap(hint: Any) -> Any:
    """`hint` without Annotated, and `X | None` as X (a tagged union keeps its None)."""
    while True:
        if typing.get_origin(hint) is typing.Annotated:
            hint = typing.get_args(hint)[0]
        elif _is_union(hint) and len(members := _not_none(hint)) == 1:
            hint = members[0]
        else:
            return hint


def _not_none(union: Any) -> list[Any]:
    return [arg for arg in typing.get_args(union) if arg is not type(None)]


def _is_union(hint: Any) -> bool:
    return typing.get_origin(hint) in (typing.Union, types.UnionType)


def _tag(hint: Any) -> object:
    """The action name a model stands for in a tagged union (its `action` literal)."""
    if isinstance(hint, type) and issubclass(hint, BaseModel) and "action" in hint.model_fields:
        args = typing.get_args(hint.model_fields["action"].annotation)
        return args[0] if len(args) == 1 else None
    return None


def _drop_union_tags(fields: list[int | str]) -> list[int | str]:
    # Nested actions (fallback, on_no_answer) also carry the tag after their own name.
    kept: list[int | str] = []
    for index, part in enumerate(fields):
        if part in ACTION_NAMES and index > 0 and fields[index - 1] in ("fallback", "on_no_answer"):
            continue
        kept.append(part)
    return kept


def _path(fields: Sequence[int | str]) -> str:
    text = ""
    for part in fields:
        if part in ("[key]", _LOOKUP_TABLE_BRANCH):
            continue  # pydantic marks errors in a table's keys (or a union's branch) so
        if isinstance(part, int):
            text += f"[{part}]"
        elif part.startswith(("function-", "list[", "dict[", "str", "int", "float", "bool")):
            continue  # pydantic's names for the branches of a union, not user fields
        else:
            text += f".{part}" if text else part
    return text


def _rule_name(raw: dict[str, Any], index: int) -> str:
    rules = raw.get("rules")
    if isinstance(rules, list) and index < len(rules) and isinstance(rules[index], dict):
        name = rules[index].get("name")
        if isinstance(name, str) and name:
            return repr(name)
    return "(unnamed)"


def _rule_text(error: Any) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required"
    if kind == "union_tag_invalid":
        ctx = error.get("ctx", {})
        expected = ctx.get("expected_tags", "").replace("'", "") or ", ".join(ACTION_NAMES)
        return f"unknown action {ctx.get('tag', '')!r} (expected one of: {expected})"
    if kind == "union_tag_not_found":
        return f"required (one of: {', '.join(ACTION_NAMES)})"
    message = str(error["msg"])
    return message.removeprefix("Value error, ")
