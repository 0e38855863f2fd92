"""A CQL2 filter, text or JSON, parsed by the ``cql2`` library into its JSON tree, within
bounds: length, nesting, and a thread with room for the parser's recursion."""

from __future__ import annotations

import json
import threading
from typing import Any

import cql2

from geo_comuna.errors import InvalidInput, Said
from geo_comuna.features.attributes import is_text

LANGS = ("cql2-text", "cql2-json")
#: longer filters are refused; it also bounds the nesting the parser walks
MAX_CHARS = 20_000
#: deeper trees are refused before anything walks them
MAX_DEPTH = 64
#: the parser recurses once per nesting level on its thread's stack: 20,000 characters
#: nest at most 10,000 levels, well within this (reserved, not committed, memory)
PARSER_STACK = 256 * 1024 * 1024


def parse(text: str, lang: str | None) -> str:
    """A filter as canonical CQL2 JSON text (what ``Filters`` keeps), or a 400 saying
    where it is malformed."""
    lang = lang or "cql2-text"
    if lang not in LANGS:
        raise InvalidInput(
            Said(
                f"filter-lang {lang!r} is not supported; use {' or '.join(LANGS)}",
                f"filter-lang {lang!r} no se admite; use {' o '.join(LANGS)}",
            )
        )
    if len(text) > MAX_CHARS:
        raise InvalidInput(
            Said(
                f"filter is longer than {MAX_CHARS:,} characters",
                f"el filtro tiene más de {MAX_CHARS:,} caracteres".replace(",", "."),
            )
        )
    if not is_text(text):
        raise InvalidInput(
            Said(
                "filter holds a character text cannot (NUL or a lone surrogate)",
                "el filtro tiene un carácter que un texto no admite (NUL o un sustituto suelto)",
            )
        )
    reader = cql2.parse_text if lang == "cql2-text" else cql2.parse_json
    tree = _on_big_stack(lambda: reader(text).to_json())
    if _depth(tree) > MAX_DEPTH:
        raise InvalidInput(
            Said(
                f"filter nests deeper than {MAX_DEPTH} levels",
                f"el filtro anida más de {MAX_DEPTH} niveles",
            )
        )
    return json.dumps(tree, sort_keys=True, separators=(",", ":"))


def _on_big_stack(work: Any) -> Any:
    """Run the parser on a thread of its own with room for deep nesting: on a normal
    thread's stack a few thousand nested parentheses crash the process."""
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["tree"] = work()
        except (cql2.ParseError, cql2.ValidationError, ValueError) as exc:
            out["error"] = str(exc)

    previous = threading.stack_size(PARSER_STACK)
    try:
        thread = threading.Thread(target=run, name="cql2-parse")
        thread.start()
    finally:
        threading.stack_size(previous)
    thread.join()
    if "error" in out:
        why = _one_line(out["error"])
        raise InvalidInput(
            Said(f"filter is not valid CQL2: {why}", f"el filtro no es CQL2 válido: {why}")
        )
    return out["tree"]


def _one_line(message: str) -> str:
    """The parser's message, its caret drawing folded onto one line."""
    lines = [line.strip() for line in message.strip().splitlines()]
    where = next((line[4:] for line in lines if line.startswith("--> ")), None)
    expected = next((line[2:] for line in lines if line.startswith("= ")), None)
    if where and expected:
        line, _, column = where.partition(":")
        return f"at line {line}, column {column}: {expected}"
    return " ".join(line for line in lines if line and not set(line) <= {"|", "^", "-"})


def _depth(tree: Any) -> int:
    """Nesting depth of a JSON tree, counted without recursion."""
    deepest, stack = 0, [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if depth > MAX_DEPTH:
            break
        children = node.values() if isinstance(node, dict) else node
        if isinstance(node, dict | list):
            stack.extend((child, depth + 1) for child in children)
    return deepest


def written(node: Any) -> str:
    """A node written back as CQL2 text, to say where in the filter something is wrong."""
    try:
        return cql2.parse_json(json.dumps(node)).to_text()
    except (cql2.ParseError, ValueError, TypeError):
        return json.dumps(node)
