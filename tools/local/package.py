"""Package the Lambda code and point the template at it, as ``sam package`` does, without PyYAML.

CloudFormation (AWS's and the emulator's) refuses a local ``CodeUri``: the code must be a zip in S3.
:func:`package_code` builds that zip; :func:`rewrite_template` returns a copy of the template whose
``AWS::Serverless::Function`` ``CodeUri`` values name it, with the ``sam build`` hints
(``Metadata.BuildMethod`` / ``BuildProperties``) dropped.

Guarantees:

- The zip holds the ``pipeline/`` and ``consumers/`` packages and nothing else: no ``__pycache__``,
  ``*.pyc`` or hidden files. It is byte-for-byte deterministic for the same files (sorted entries,
  fixed timestamps and permissions, fixed compression level; the same zlib), so its SHA-256 names it
  and an unchanged tree redeploys as "no updates".
- Third-party dependencies are *not* packaged: the local runtime runs the handler in-process, and the
  emulator's own Lambda then fails at import (``No module named 'aws_lambda_powertools'``), which keeps
  its event source mapping from writing anything in the moment before deploy removes it.
- The template rewrite is text-level (PyYAML is not a dependency, and a YAML round trip would lose
  the ``!Ref``/``!Sub`` tags and the comments). It understands block-style YAML: keys found by
  indentation, block scalars (``>``/``|``) skipped, flow collections left alone. Every other byte of
  the template is kept. It raises :class:`TemplateRewriteError` rather than guess: a function whose
  ``CodeUri`` is a mapping or a flow collection, or none at all (``InlineCode`` aside).
"""

from __future__ import annotations

import hashlib
import io
import re
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.exceptions import ConfigurationError

__all__ = ["CODE_PACKAGES", "CodePackage", "TemplateRewriteError", "package_code", "rewrite_template"]

CODE_PACKAGES = ("pipeline", "consumers")
_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest timestamp a zip can hold
_FILE_MODE = 0o100644 << 16  # regular file, rw-r--r--
_SKIPPED_SUFFIXES = (".pyc", ".pyo")
_FUNCTION_TYPE = "AWS::Serverless::Function"
_BUILD_HINTS = ("BuildMethod", "BuildProperties")
_KEY_LINE = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z0-9_.\-]+|\"[^\"]*\"|'[^']*'):(?: +(?P<value>.*))?$")
_BLOCK_SCALAR = re.compile(r"^[|>][+-]?[1-9]?[+-]?$")


class TemplateRewriteError(ConfigurationError):
    """The template's layout is not one the text-level rewrite understands; the message says where."""


@dataclass(frozen=True, slots=True)
class CodePackage:
    """A deterministic zip of the Lambda code and its content address."""

    data: bytes
    sha256: str
    files: int

    @property
    def key(self) -> str:
        """The S3 key: content-addressed, so equal code gets an equal key."""
        return f"code/{self.sha256[:24]}.zip"


def package_code(root: Path, packages: Iterable[str] = CODE_PACKAGES) -> CodePackage:
    """Zip ``root/<package>/`` for each package (paths inside the zip relative to ``root``).

    Raises :class:`ConfigurationError` if a package directory is missing.
    """
    files: list[tuple[str, Path]] = []
    for package in packages:
        base = root / package
        if not base.is_dir():
            raise ConfigurationError(f"cannot package the Lambda code: {base} is not a directory")
        files.extend((path.relative_to(root).as_posix(), path) for path in base.rglob("*") if _packaged(path, root))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, path in sorted(files):
            info = zipfile.ZipInfo(name, date_time=_EPOCH)
            info.create_system = 3  # unix, whatever the host: the external attributes below are unix modes
            info.external_attr = _FILE_MODE
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes(), compresslevel=6)
    data = buffer.getvalue()
    return CodePackage(data=data, sha256=hashlib.sha256(data).hexdigest(), files=len(files))


def _packaged(path: Path, root: Path) -> bool:
    if not path.is_file() or path.suffix in _SKIPPED_SUFFIXES:
        return False
    parts = path.relative_to(root).parts
    return not any(part == "__pycache__" or part.startswith(".") for part in parts)


@dataclass(slots=True)
class _Resource:
    type: str = ""
    code_uri: list[int] = field(default_factory=list)  # line numbers of its Properties.CodeUri
    code_uri_nested: bool = False
    inline_code: bool = False
    metadata: int | None = None  # line number of its Metadata key
    metadata_children: list[tuple[int, int, str]] = field(default_factory=list)  # (first, end, key)


def rewrite_template(text: str, code_uri: str) -> str:
    """``text`` with every ``AWS::Serverless::Function`` ``CodeUri`` (and ``Globals.Function.CodeUri``)
    set to ``code_uri`` and its ``Metadata.BuildMethod``/``BuildProperties`` removed.

    A ``Metadata`` left empty is removed too (an empty key would be ``null``, which CloudFormation
    refuses). Raises :class:`TemplateRewriteError` if a function's ``CodeUri`` is not a plain scalar, or
    if a function has neither ``CodeUri`` nor ``InlineCode`` and no global ``CodeUri`` applies.
    """
    lines = text.splitlines(keepends=True)
    resources, global_code_uri = _scan(lines)
    replace: dict[int, str] = {}
    drop: set[int] = set()
    functions = {name: r for name, r in resources.items() if r.type == _FUNCTION_TYPE}
    for name, resource in functions.items():
        if resource.code_uri_nested:
            raise TemplateRewriteError(f"{name}: CodeUri is a mapping; give it as a local path, deploy packages it")
        if not resource.code_uri and not resource.inline_code and global_code_uri is None:
            raise TemplateRewriteError(f"{name}: no CodeUri found (block-style 'CodeUri: path' expected)")
        for number in resource.code_uri:
            replace[number] = _with_value(lines[number], code_uri)
        hints = [(first, end) for first, end, key in resource.metadata_children if key in _BUILD_HINTS]
        for first, end in hints:
            drop.update(range(first, end))
        if resource.metadata is not None and hints and len(hints) == len(resource.metadata_children):
            drop.add(resource.metadata)
    if global_code_uri is not None:
        replace[global_code_uri] = _with_value(lines[global_code_uri], code_uri)
    out = [replace.get(i, line) for i, line in enumerate(lines) if i not in drop]
    return "".join(out)


def _with_value(line: str, value: str) -> str:
    match = _KEY_LINE.match(line.rstrip("\r\n"))
    if match is None or not match.group("value") or match.group("value").lstrip()[:1] in "{[|>&*!":
        raise TemplateRewriteError(f"CodeUri is not a plain scalar: {line.strip()!r}")
    ending = line[len(line.rstrip("\r\n")) :]
    return f"{match.group('indent')}{match.group('key')}: {value}{ending}"


def _scan(lines: list[str]) -> tuple[dict[str, _Resource], int | None]:
    """Walk block-style YAML: the resources with what the rewrite needs, and ``Globals.Function.CodeUri``."""
    scanner = _Scanner(lines)
    for number, raw in enumerate(lines):
        scanner.line(number, raw.rstrip("\r\n"))
    scanner.close_child(len(lines))
    return scanner.resources, scanner.global_code_uri


class _Scanner:
    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.resources: dict[str, _Resource] = {}
        self.global_code_uri: int | None = None
        self.path: list[tuple[int, str]] = []  # (indent, key) of the enclosing keys
        self.scalar_indent: int | None = None  # inside a block scalar whose key is at this indent
        self.open_child: tuple[_Resource, int, str, int] | None = None  # Metadata child: indent, key, line

    def line(self, number: int, line: str) -> None:
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            return
        indent = len(line) - len(line.lstrip(" "))
        if self.scalar_indent is not None:
            if indent > self.scalar_indent:
                return
            self.scalar_indent = None
        match = _KEY_LINE.match(line)
        if stripped.startswith("-") or match is None:
            return  # sequence items and continuation lines never hold the keys we rewrite
        while self.path and self.path[-1][0] >= indent:
            self.path.pop()
        if self.open_child is not None and indent <= self.open_child[1]:
            self.close_child(number)
        key = match.group("key").strip("\"'")
        value = (match.group("value") or "").split(" #", 1)[0].strip()
        self._record([k for _, k in self.path], number, indent, key, value)
        if _BLOCK_SCALAR.match(value):
            self.scalar_indent = indent
        self.path.append((indent, key))

    def close_child(self, before: int) -> None:
        if self.open_child is not None:
            resource, _, key, first = self.open_child
            resource.metadata_children.append((first, _content_end(self.lines, before), key))
            self.open_child = None

    def _record(self, keys: list[str], number: int, indent: int, key: str, value: str) -> None:
        if keys == ["Globals", "Function"] and key == "CodeUri":
            self.global_code_uri = number
        if len(keys) < 2 or keys[0] != "Resources":
            return
        resource = self.resources.setdefault(keys[1], _Resource())
        where = keys[2:]
        if not where and key == "Type":
            resource.type = value.strip("\"'")
        elif not where and key == "Metadata":
            resource.metadata = number
        elif where == ["Properties"] and key == "CodeUri":
            resource.code_uri.append(number)
            resource.code_uri_nested = resource.code_uri_nested or not value or value[0] in "{["
        elif where == ["Properties"] and key == "InlineCode":
            resource.inline_code = True
        elif where == ["Metadata"]:
            self.open_child = (resource, indent, key, number)


def _content_end(lines: list[str], before: int) -> int:
    """One past the last line before ``before`` that is neither blank nor a comment (those stay)."""
    end = before
    while end > 0 and (not lines[end - 1].strip() or lines[end - 1].lstrip().startswith("#")):
        end -= 1
    return end
