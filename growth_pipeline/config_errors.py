"""customers.yaml's problems in words: one line per problem, naming the file, the customer and the field, never
repeating a value from the file (a secret pasted into the wrong field must not reach a terminal or a log). Used by
:func:`growth_pipeline.config.parse_customers`.
"""

from __future__ import annotations

import re

import yaml
from pydantic import ValidationError

_SOURCE_KINDS = {"local_folder", "object_storage", "mixpanel_api"}
# pydantic's names for the members of a union type ("str | int | ..."), which it puts in an error's location
_UNION_MEMBERS = {"str", "int", "float", "bool", "none", "list[str]", "dict[str,union[str,int,float,bool]]"}
_MAX_PROBLEMS = 10
_SETTING_NAME = re.compile(r"[a-z][a-z_]{0,47}")  # every setting's name (no digits: a pasted secret has some)
_HIDDEN = "<value not shown>"


def _customer_label(raw: dict, idx: int) -> str:
    """How a problem names its customer: by id when the id is a valid slug, else by position (an invalid id is
    never repeated: it may be anything pasted there, a secret included)."""
    from growth_pipeline.config import CUSTOMER_ID_PATTERN

    entries = raw.get("customers")
    entry = entries[idx] if isinstance(entries, list) and idx < len(entries) else None
    cid = entry.get("id") if isinstance(entry, dict) else None
    if isinstance(cid, str) and CUSTOMER_ID_PATTERN.fullmatch(cid):
        return f"customer {cid!r}"
    return f"customer #{idx + 1}"


def _problem_text(e: dict) -> str:
    """pydantic's message, reworded where it would repeat the value, on one line and without the input."""
    kind, ctx = e["type"], e.get("ctx") or {}
    if kind in ("value_error", "assertion_error") and "error" in ctx:
        msg = str(ctx["error"])
    elif kind == "union_tag_invalid":
        msg = f"unknown source kind; expected one of: {', '.join(sorted(_SOURCE_KINDS))}"
    elif kind == "union_tag_not_found":
        msg = f"missing 'kind' (one of: {', '.join(sorted(_SOURCE_KINDS))})"
    elif kind == "extra_forbidden":
        msg = "unknown field (not a setting of this section: a typo?)"
    elif kind in ("model_type", "model_attributes_type", "dict_type"):
        msg = "should be a mapping of settings (name: value)"
    else:
        msg = e["msg"]
    value = e.get("input")
    if isinstance(value, str) and len(value.strip()) >= 3 and value.strip() in msg:
        msg = msg.replace(value.strip(), _HIDDEN)
    return " ".join(msg.split())


def _segment(p: str | int) -> str:
    """One step of a field path: a setting name or a list index as is; any other key (a name typed in the file,
    which may be anything pasted there) is not repeated."""
    if isinstance(p, int) or _SETTING_NAME.fullmatch(p):
        return str(p)
    return "<name not shown>"


def _merge(messages: list[str]) -> str:
    """pydantic reports a value that fits no member of a union once per member: say it once."""
    kinds = [m.removeprefix("Input should be a valid ") for m in messages]
    if len(messages) > 1 and all(m.startswith("Input should be a valid ") for m in messages):
        return f"Input should be a valid {', '.join(kinds[:-1])} or {kinds[-1]}"
    return "; ".join(dict.fromkeys(messages))


def describe_validation_error(err: ValidationError, raw: dict, source: str) -> str:
    """One line per problem, each naming the file, the customer and the field; no value from the file is
    repeated (a secret pasted into the wrong field must not reach a terminal or a log)."""
    by_place: dict[str, list[str]] = {}
    for e in err.errors(include_input=True, include_url=False):
        loc = list(e["loc"])
        where = ""
        if len(loc) >= 2 and loc[0] == "customers" and isinstance(loc[1], int):
            where = _customer_label(raw, loc[1])
            loc = loc[2:]
        # drop pydantic's union segments ("local_folder", "str", ...) so the field path reads like the YAML
        field = ".".join(_segment(p) for p in loc if p not in _SOURCE_KINDS and str(p).lower() not in _UNION_MEMBERS)
        head = ", ".join(p for p in (where, f"field '{field}'" if field else "") if p)
        by_place.setdefault(head, []).append(_problem_text(e))
    lines = [
        f"{source}: {head}: {_merge(msgs)}" if head else f"{source}: {_merge(msgs)}" for head, msgs in by_place.items()
    ]
    if len(lines) > _MAX_PROBLEMS:
        lines = lines[:_MAX_PROBLEMS] + [f"{source}: ... and {len(lines) - _MAX_PROBLEMS} more problems"]
    return "\n".join(lines)


def yaml_problem(exc: yaml.YAMLError) -> str:
    """PyYAML's error on one line, without the snippet of the file it quotes (that line may hold a secret)."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    problem = getattr(exc, "problem", None) or type(exc).__name__
    return " ".join(f"not valid YAML{at}: {problem}".split())
