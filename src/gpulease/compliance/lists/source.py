"""Reading a list file once: decode, hash its bytes for the dataset version, report progress."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from gpulease.compliance.model import ListFormatError
from gpulease.compliance.web import identity

Progress = Callable[[int, int | None], None]
PathLike = str | os.PathLike[str] | Path

_WEB = re.compile(r"\bWebsite:?\s+((?:https?://)?[\w.-]+\.[a-z]{2,}(?:/[^\s;,]*)?)", re.IGNORECASE)
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+", re.IGNORECASE)


def table_rows(reader: Iterator[list[str]], width: int, path: str, what: str) -> Iterator[tuple[int, list[str]]]:
    """The non-blank rows of a delimited file after its header, each with its line; a row of the wrong width
    is refused with its line number (`what` names the columns: "columns as in the header row", …)."""
    line = 1
    for row in reader:
        line = int(getattr(reader, "line_num", line + 1))
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) != width:
            raise ListFormatError(path, line, f"expected {width} {what}, found {len(row)}.")
        yield line, row


class SourceFile:
    """One list file read line by line: keeps a SHA-256 of the bytes and reports bytes read."""

    def __init__(self, path: PathLike, progress: Progress | None = None) -> None:
        self.path = str(path)
        self.progress = progress
        self.sha256 = hashlib.sha256()
        try:
            self.size: int | None = os.path.getsize(self.path)
        except OSError as exc:
            raise ListFormatError(self.path, None, f"the file cannot be opened ({exc.strerror}).") from exc
        self._done = 0

    def lines(self) -> Iterator[str]:
        """Decoded lines, newline kept, for csv.reader or an XML pull parser."""
        with open(self.path, "rb") as raw:
            yield from self._decode(raw)
        if self.progress is not None:
            self.progress(self._done, self.size)

    def _decode(self, raw: BinaryIO) -> Iterator[str]:
        for number, line in enumerate(raw, start=1):
            self.sha256.update(line)
            self._done += len(line)
            if self.progress is not None and number % 2000 == 0:
                self.progress(self._done, self.size)
            try:
                text = line.decode("utf-8")
            except UnicodeDecodeError:
                # OFAC and BIS have published Windows-1252 files in the past; accept them.
                text = line.decode("cp1252", errors="replace")
            if number == 1:
                text = text.lstrip("\ufeff")
            if "\x1a" in text:  # OFAC ends its files with a DOS end-of-file byte
                text = text.replace("\x1a", "")
            yield text

    def read_bytes(self) -> bytes:
        with open(self.path, "rb") as raw:
            data = raw.read()
        self.sha256.update(data)
        if self.progress is not None:
            self.progress(len(data), self.size)
        return data


def clean(value: str | None) -> str | None:
    """Strip a published cell; OFAC's `-0-` and blank cells become None."""
    if value is None:
        return None
    text = value.strip()
    if not text or text == "-0-":
        return None
    return text


def domains_in(text: str | None) -> tuple[str, ...]:
    """The web identities in a remarks field (`web.identity`): a firm's own domains, and on a free mail
    provider or a public platform the whole mailbox or page, which alone names the party."""
    if not text:
        return ()
    found: list[str] = []
    for match in (*_WEB.finditer(text), *_EMAIL.finditer(text)):
        ident = identity(match.group(1) if match.re is _WEB else match.group(0))
        if ident is not None:
            found.append(ident)
    return tuple(dict.fromkeys(found))
