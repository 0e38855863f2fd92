"""A CQL2 filter, text or JSON, parsed by the ``cql2`` library into its JSON tree, within
bounds: length, nesting, and a thread with room for the parser's recursion."""

from __future__ import annotations

import json
import re
import threading
from typing import Any

import cql2

from geo_comuna.errors import InvalidInput, Said
from geo_comuna.text import is_text

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
    if lang == "cql2-json":
        _json(text)
    _offsets(text, lang)
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


def _json(text: str) -> None:
    """A cql2-json filter that is no JSON at all (a text filter sent with the JSON's
    filter-lang) is said so: the parser said 'expected ident at line 1, column 2'."""
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}"
        donde = f"línea {exc.lineno}, columna {exc.colno}"
        raise InvalidInput(
            Said(
                f"filter is not JSON, which filter-lang=cql2-json says it is ({where}); a "
                "text filter such as tenure = 'occupied' is cql2-text (the default)",
                f"el filtro no es JSON, como dice filter-lang=cql2-json ({donde}); un filtro "
                "de texto como tenure = 'occupied' es cql2-text (el predeterminado)",
            )
        ) from None
    except RecursionError:  # deeper than Python's JSON reader goes: the parser says more
        return
    _only_known_members(json.loads(text))


#: what each kind of cql2-json node holds, by the member that names its kind
_MEMBERS = {"op": {"op", "args"}, "property": {"property"}}


def _only_known_members(tree: Any) -> None:
    """An operation or a property naming a member it has not ("extra", "arg") is refused:
    found from outside, the parser left it out and the filter ran without it."""
    words = {
        "op": Said("an operation", "una operación"),
        "property": Said("a property", "un campo"),
    }
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for kind, members in _MEMBERS.items():
                extra = sorted(set(node) - members) if kind in node else []
                if extra:
                    known = ", ".join(sorted(members))
                    raise InvalidInput(
                        Said(
                            f"filter is not valid CQL2: {extra[0]!r} is no member of "
                            f"{words[kind]} ({known})",
                            f"el filtro no es CQL2 válido: {extra[0]!r} no es un miembro de "
                            f"{words[kind].es} ({known})",
                        )
                    )
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


#: a TIMESTAMP literal of cql2-text, its text in group 1 ('' within it is one quote)
_TIMESTAMP = re.compile(r"\bTIMESTAMP\s*\(\s*'((?:[^']|'')*)'\s*\)", re.I)
#: an INTERVAL literal of cql2-text, its two bounds in groups 1 and 2
_INTERVAL = re.compile(r"\bINTERVAL\s*\(\s*'((?:[^']|'')*)'\s*,\s*'((?:[^']|'')*)'\s*\)", re.I)
#: a time of day's offset from UTC at the end of a timestamp
_OFFSET = re.compile(r"T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?([+-](\d{2}):(\d{2}))$", re.I)


def _offsets(text: str, lang: str) -> None:
    """Refuse a TIMESTAMP, or an INTERVAL's bound, whose offset from UTC no time zone has
    (-25:00), as ?datetime= does (api/temporal.py): the parser moved it to UTC as if it were
    one, and the filter was applied (found from outside)."""
    if lang == "cql2-text":
        stamps = [m[1] for m in _TIMESTAMP.finditer(text)]
        stamps += [bound for m in _INTERVAL.finditer(text) for bound in (m[1], m[2])]
    else:
        try:
            stamps = list(_json_timestamps(json.loads(text)))
        except RecursionError:  # refused for its depth after parsing
            return
    for stamp in stamps:
        found = _OFFSET.search(stamp)
        if found and (int(found[2]) > 23 or int(found[3]) > 59):
            raise InvalidInput(
                Said(
                    f"filter: {stamp!r}: no time zone is {found[1]} from UTC",
                    f"filtro: {stamp!r}: ninguna zona horaria dista {found[1]} de UTC",
                )
            )


def _json_timestamps(tree: Any) -> Any:
    """Every {"timestamp": "..."} text of a cql2-json tree, and each bound of an
    {"interval": [...]}."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if isinstance(node.get("timestamp"), str):
                yield node["timestamp"]
            if isinstance(node.get("interval"), list):
                yield from (b for b in node["interval"] if isinstance(b, str))
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def _on_big_stack(work: Any) -> Any:
    """Run the parser on a thread of its own with room for deep nesting: on a normal
    thread's stack a few thousand nested parentheses crash the process."""
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["tree"] = work()
        except Exception as exc:  # noqa: BLE001 the parser's own kinds, and a plain Exception
            # for what it reads but cannot hold (POINT EMPTY): all of them the filter's fault
            out["error"] = str(exc)

    previous = threading.stack_size(PARSER_STACK)
    try:
        thread = threading.Thread(target=run, name="cql2-parse")
        thread.start()
    finally:
        threading.stack_size(previous)
    thread.join()
    if "error" in out:
        raise InvalidInput(_refusal(out["error"]))
    return out["tree"]


#: what the text parser's grammar rules expect, in words: (English, Spanish); rules not
#: named here are said by their grammar name
_EXPECTED: dict[str, tuple[str, str]] = {
    "Identifier": ("a property name", "un nombre de campo"),
    "SingleQuotedString": ("a 'quoted text'", "un 'texto entre comillas'"),
    "DECIMAL": ("a number", "un número"),
    "Double": ("a number", "un número"),
    "Negative": ("a number", "un número"),
    "True": ("TRUE", "TRUE"),
    "False": ("FALSE", "FALSE"),
    "Null": ("NULL", "NULL"),
    "GEOMETRY": ("a geometry such as POINT(x y)", "una geometría como POINT(x y)"),
    "Array": ("a list (a, b)", "una lista (a, b)"),
    "ExpressionInParentheses": ("an expression in parentheses", "una expresión entre paréntesis"),
    "Expr": ("an expression", "una expresión"),
    "UnaryNot": ("NOT", "NOT"),
    "NotFlag": ("NOT", "NOT"),
    "And": ("AND", "AND"),
    "Or": ("OR", "OR"),
    "Eq": ("a comparison (=, <>, <, <=, >, >=)", "una comparación (=, <>, <, <=, >, >=)"),
    "NotEq": ("a comparison (=, <>, <, <=, >, >=)", "una comparación (=, <>, <, <=, >, >=)"),
    "Lt": ("a comparison (=, <>, <, <=, >, >=)", "una comparación (=, <>, <, <=, >, >=)"),
    "LtEq": ("a comparison (=, <>, <, <=, >, >=)", "una comparación (=, <>, <, <=, >, >=)"),
    "Gt": ("a comparison (=, <>, <, <=, >, >=)", "una comparación (=, <>, <, <=, >, >=)"),
    "GtEq": ("a comparison (=, <>, <, <=, >, >=)", "una comparación (=, <>, <, <=, >, >=)"),
    "Add": ("arithmetic (+ - * / % ^)", "aritmética (+ - * / % ^)"),
    "Subtract": ("arithmetic (+ - * / % ^)", "aritmética (+ - * / % ^)"),
    "Multiply": ("arithmetic (+ - * / % ^)", "aritmética (+ - * / % ^)"),
    "Divide": ("arithmetic (+ - * / % ^)", "aritmética (+ - * / % ^)"),
    "Modulo": ("arithmetic (+ - * / % ^)", "aritmética (+ - * / % ^)"),
    "Power": ("arithmetic (+ - * / % ^)", "aritmética (+ - * / % ^)"),
    "IsNullPostfix": ("IS NULL", "IS NULL"),
    "EOI": ("the end of the filter", "el final del filtro"),
}

#: serde_json's messages for malformed JSON (cql2-json): a part of its message, and what
#: that says in English and Spanish
_JSON: list[tuple[str, str, str]] = [
    ("EOF while parsing", "the JSON ends too early", "el JSON termina antes de tiempo"),
    (
        "key must be a string",
        "a key must be a string in double quotes",
        "una clave debe ser un texto entre comillas dobles",
    ),
    ("expected value", "a value is missing", "falta un valor"),
    ("trailing characters", "characters follow the JSON", "sobran caracteres tras el JSON"),
    ("trailing comma", "a comma too many", "sobra una coma"),
    ("expected `,` or `}`", "a comma or } is missing", "falta una coma o }"),
    ("expected `,` or `]`", "a comma or ] is missing", "falta una coma o ]"),
    ("expected `:`", "a : is missing", "falta :"),
    ("invalid escape", "an escape that is not valid", "un escape no válido"),
    (
        "control character",
        "a control character inside a string",
        "un carácter de control dentro de un texto",
    ),
    ("number out of range", "a number out of range", "un número fuera de rango"),
    # the text parser's reading of POINT EMPTY (an empty point inside a collection too)
    (
        "A position must contain two or more elements",
        "the geometry is empty (an empty point)",
        "la geometría está vacía (un punto vacío)",
    ),
    ("invalid number", "a number that is not valid", "un número no válido"),
    (
        "did not match any variant",
        "not a CQL2 expression (op and args)",
        "no es una expresión CQL2 (op y args)",
    ),
]
_JSON_AT = re.compile(r"^(.*) at line (\d+) column (\d+)$")


def _refusal(message: str) -> Said:
    """Why a filter is not CQL2, in words of both languages: the text parser's caret drawing
    becomes where and what was expected; the JSON parser's message is looked up."""
    lines = [line.strip() for line in message.strip().splitlines()]
    where = next((line[4:] for line in lines if line.startswith("--> ")), None)
    expected = next((line[2:] for line in lines if line.startswith("= expected ")), None)
    if where and expected:
        line, _, column = where.partition(":")
        en, es = _expected_words(expected.removeprefix("expected "))
        return Said(
            f"filter is not valid CQL2: at line {line}, column {column}: expected {en}",
            f"el filtro no es CQL2 válido: en la línea {line}, columna {column}: se esperaba {es}",
        )
    text = " ".join(line for line in lines if line and not set(line) <= {"|", "^", "-"})
    found = _JSON_AT.match(text)
    said, at_en, at_es = text, "", ""
    if found:
        said = found[1]
        at_en = f" at line {found[2]}, column {found[3]}"
        at_es = f" en la línea {found[2]}, columna {found[3]}"
    english, spanish = next(((en, es) for part, en, es in _JSON if part in said), (said, said))
    return Said(
        f"filter is not valid CQL2: {english}{at_en}",
        f"el filtro no es CQL2 válido: {spanish}{at_es}",
    )


def _expected_words(rules: str) -> tuple[str, str]:
    """The parser's list of rules ("A, B, or C") in words, each said once."""
    names = [r.strip() for r in re.split(r",\s*(?:or\s+)?|\s+or\s+", rules) if r.strip()]
    words = list(dict.fromkeys(_EXPECTED.get(n, (n, n)) for n in names))
    if len(words) == 1:
        return words[0]
    en = ", ".join(w[0] for w in words[:-1]) + " or " + words[-1][0]
    es = ", ".join(w[1] for w in words[:-1]) + " o " + words[-1][1]
    return en, es


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
