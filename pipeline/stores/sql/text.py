"""SQL text: named ``:parameters`` and statement boundaries, found by one scanner that knows PostgreSQL's
lexical rules for what is *not* code: ``'strings'`` (with ``''``), ``E'escapes'``, ``"identifiers"``,
``$tag$dollar quotes$tag$``, ``-- comments``, ``/* nested comments */``, and ``::`` casts.

The interface's statements use the RDS Data API's placeholder syntax, ``:name``; the direct backend
rewrites them to psycopg's ``%(name)s`` with :func:`to_pyformat`. Migration files are split into
single statements with :func:`split_statements` (one statement per Data API call).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Final

__all__ = ["parameter_names", "split_statements", "to_pyformat"]

_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DOLLAR: Final = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")


def _string_end(sql: str, i: int) -> int:
    """End of a ``'...'`` or ``E'...'`` literal starting at ``i``, or -1 if none starts there."""
    c = sql[i]
    escapes = c in "eE" and sql[i + 1 : i + 2] == "'" and (i == 0 or not sql[i - 1].isalnum())
    if c != "'" and not escapes:
        return -1
    j, n = i + (2 if escapes else 1), len(sql)
    while j < n:
        if (escapes and sql[j] == "\\") or (sql[j] == "'" and sql[j + 1 : j + 2] == "'"):
            j += 2
        elif sql[j] == "'":
            return j + 1
        else:
            j += 1
    return n


def _identifier_end(sql: str, i: int) -> int:
    if sql[i] != '"':
        return -1
    j = sql.find('"', i + 1)
    while j != -1 and sql[j + 1 : j + 2] == '"':
        j = sql.find('"', j + 2)
    return len(sql) if j == -1 else j + 1


def _comment_end(sql: str, i: int) -> int:
    if sql.startswith("--", i):
        j = sql.find("\n", i)
        return len(sql) if j == -1 else j
    if not sql.startswith("/*", i):
        return -1
    depth, j, n = 1, i + 2, len(sql)
    while j < n and depth:
        if sql.startswith("/*", j):
            depth, j = depth + 1, j + 2
        elif sql.startswith("*/", j):
            depth, j = depth - 1, j + 2
        else:
            j += 1
    return j


def _dollar_end(sql: str, i: int) -> int:
    match = _DOLLAR.match(sql, i)
    if match is None or (i > 0 and (sql[i - 1].isalnum() or sql[i - 1] == "_")):
        return -1
    j = sql.find(match.group(0), match.end())
    return len(sql) if j == -1 else j + len(match.group(0))


_QUOTED: Final = {
    "'": _string_end,
    "e": _string_end,
    "E": _string_end,
    '"': _identifier_end,
    "-": _comment_end,
    "/": _comment_end,
    "$": _dollar_end,
}


def _tokens(sql: str) -> Iterator[tuple[str, str]]:
    """``(kind, text)`` pieces covering ``sql`` exactly: kinds ``code``, ``quoted`` (literals, quoted
    identifiers, comments), ``param`` (the name, without its colon), ``semicolon``."""
    i, n, start = 0, len(sql), 0
    while i < n:
        c = sql[i]
        scan = _QUOTED.get(c)
        end = scan(sql, i) if scan else -1
        if end != -1:
            if i > start:
                yield "code", sql[start:i]
            yield "quoted", sql[i:end]
            i = start = end
        elif c == ":" and sql[i + 1 : i + 2] == ":":  # a cast
            i += 2
        elif c == ":" and (match := _NAME.match(sql, i + 1)):
            if i > start:
                yield "code", sql[start:i]
            yield "param", match.group(0)
            i = start = match.end()
        elif c == ";":
            if i > start:
                yield "code", sql[start:i]
            yield "semicolon", ";"
            i = start = i + 1
        else:
            i += 1
    if n > start:
        yield "code", sql[start:n]


def parameter_names(sql: str) -> list[str]:
    """The ``:name`` placeholders of ``sql``, in order of first appearance."""
    seen: dict[str, None] = {}
    for kind, text in _tokens(sql):
        if kind == "param":
            seen.setdefault(text, None)
    return list(seen)


def to_pyformat(sql: str) -> str:
    """``:name`` -> ``%(name)s``, and every other ``%`` doubled (psycopg's placeholder syntax)."""
    out = []
    for kind, text in _tokens(sql):
        if kind == "param":
            out.append(f"%({text})s")
        else:
            out.append(text.replace("%", "%%"))
    return "".join(out)


def split_statements(sql: str) -> list[str]:
    """The statements of a script (split at top-level ``;``), stripped; empty and comment-only ones dropped."""
    statements: list[str] = []
    current: list[str] = []
    code = False
    for kind, text in [*_tokens(sql), ("semicolon", ";")]:
        if kind == "semicolon":
            statement = "".join(current).strip()
            if code and statement:
                statements.append(statement)
            current, code = [], False
            continue
        current.append(f":{text}" if kind == "param" else text)
        if (
            kind == "param"
            or (kind == "code" and text.strip())
            or (kind == "quoted" and not text.startswith(("--", "/*")))
        ):
            code = True
    return statements
