"""Loading a routing file: TOML in, a checked `RoutingTable` out, or errors that name
the file, the rule and the field."""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from bridge.routing.rules import ACTION_NAMES, RoutesDocument
from bridge.routing.table import RoutingTable


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
            [f"{source}: {_describe(error, raw)}" for error in exc.errors()]
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
    return f"{where}: field '{_path(fields) or '(table)'}': {_rule_text(error)}"


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
        if part == "[key]":
            continue  # pydantic marks errors in a table's keys this way
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
