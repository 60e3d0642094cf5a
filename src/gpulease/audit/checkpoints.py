"""Signed checkpoints of the chain head, the way transparency logs publish theirs.

A checkpoint states that the chain had `size` records and that record `size` hashed to `head`, at a
given time, signed with the log's Ed25519 key. Every hash covers everything before it, so a checkpoint
pins the whole prefix: whoever keeps one notices records changed and re-hashed, deleted from the tail, or
an emptied table. The signed text is a C2SP signed note (https://c2sp.org/signed-note): what `gpulease
audit checkpoint` prints can be checked by any signed-note verifier given the key string that `gpulease
audit public-key` prints. Checkpoint files hold one checkpoint per line as JSON, or pasted notes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ORIGIN = "gpulease audit log"
KEY_NAME = "gpulease-audit"
_ED25519 = b"\x01"  # the signed-note algorithm byte for Ed25519
_DASH = "\u2014"  # signed notes start signature lines with an em dash


class CheckpointFormatError(ValueError):
    """A checkpoint file or key string that cannot be read."""


def utc_text(at: datetime) -> str:
    """A moment as checkpoints write it: UTC, whole seconds."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Checkpoint:
    size: int
    head: str  # hex sha256 of record `size`
    at: datetime
    key_id: str  # 8 hex digits: the signed-note key hash
    signature: str  # base64 Ed25519 signature of `body()`

    def body(self) -> str:
        return f"{ORIGIN}\n{self.size}\n{self.head}\n{utc_text(self.at)}\n"

    def note(self) -> str:
        """The signed note: the body, a blank line, one signature line."""
        blob = bytes.fromhex(self.key_id) + base64.b64decode(self.signature)
        return f"{self.body()}\n{_DASH} {KEY_NAME} {base64.b64encode(blob).decode()}\n"

    def to_json(self) -> str:
        return json.dumps(
            {
                "size": self.size,
                "head": self.head,
                "time": utc_text(self.at),
                "key_id": self.key_id,
                "signature": self.signature,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Checkpoint:
        try:
            return cls(
                size=int(obj["size"]),
                head=str(obj["head"]),
                at=datetime.fromisoformat(str(obj["time"])),
                key_id=str(obj["key_id"]),
                signature=str(obj["signature"]),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise CheckpointFormatError(f"not a checkpoint: {e}") from e

    @classmethod
    def from_note(cls, text: str) -> Checkpoint:
        body, sep, sigs = text.partition("\n\n")
        lines = body.split("\n")
        if not sep or len(lines) != 4 or lines[0] != ORIGIN:
            raise CheckpointFormatError("not a gpulease audit checkpoint note")
        for line in sigs.splitlines():
            parts = line.split(" ")
            if len(parts) == 3 and parts[0] == _DASH and parts[1] == KEY_NAME:
                try:
                    blob = base64.b64decode(parts[2], validate=True)
                    return cls(
                        size=int(lines[1]),
                        head=lines[2],
                        at=datetime.fromisoformat(lines[3]),
                        key_id=blob[:4].hex(),
                        signature=base64.b64encode(blob[4:]).decode(),
                    )
                except (binascii.Error, ValueError) as e:
                    raise CheckpointFormatError(f"unreadable checkpoint note: {e}") from e
        raise CheckpointFormatError(f"the checkpoint note has no {KEY_NAME} signature")


@dataclass(frozen=True)
class VerifierKey:
    """The public half: checks checkpoints; printable as a signed-note verifier key string."""

    public: Ed25519PublicKey

    @property
    def raw(self) -> bytes:
        return self.public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)

    @property
    def key_id(self) -> str:
        return hashlib.sha256(KEY_NAME.encode() + b"\n" + _ED25519 + self.raw).digest()[:4].hex()

    @property
    def vkey(self) -> str:
        return f"{KEY_NAME}+{self.key_id}+{base64.b64encode(_ED25519 + self.raw).decode()}"

    def verifies(self, cp: Checkpoint) -> bool:
        if cp.key_id != self.key_id:
            return False
        try:
            self.public.verify(base64.b64decode(cp.signature, validate=True), cp.body().encode())
        except (InvalidSignature, binascii.Error, ValueError):
            return False
        return True

    @classmethod
    def parse(cls, text: str) -> VerifierKey:
        """A key string as `gpulease audit public-key` prints it (NAME+ID+BASE64), or a PEM public key."""
        text = text.strip()
        try:
            if text.startswith("-----BEGIN"):
                public = serialization.load_pem_public_key(text.encode())
                if not isinstance(public, Ed25519PublicKey):
                    raise CheckpointFormatError("not an Ed25519 public key")
                return cls(public)
            name, key_id, b64 = text.split("+", 2)
            blob = base64.b64decode(b64, validate=True)
            if name != KEY_NAME or blob[:1] != _ED25519 or len(blob) != 33:
                raise CheckpointFormatError(f"not a {KEY_NAME} Ed25519 key string")
            key = cls(Ed25519PublicKey.from_public_bytes(blob[1:]))
        except (ValueError, binascii.Error) as e:
            raise CheckpointFormatError(f"unreadable public key: {e}") from e
        if key.key_id != key_id:
            raise CheckpointFormatError("the key string's id does not match its key")
        return key


@dataclass(frozen=True)
class SigningKey:
    private: Ed25519PrivateKey

    @property
    def verifier(self) -> VerifierKey:
        return VerifierKey(self.private.public_key())

    def sign(self, size: int, head: str, at: datetime) -> Checkpoint:
        at = at.astimezone(UTC).replace(microsecond=0)
        unsigned = Checkpoint(size=size, head=head, at=at, key_id=self.verifier.key_id, signature="")
        signature = self.private.sign(unsigned.body().encode())
        return Checkpoint(size, head, at, unsigned.key_id, base64.b64encode(signature).decode())

    @classmethod
    def load(cls, path: Path) -> SigningKey:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise CheckpointFormatError(f"{path} does not hold an Ed25519 private key")
        return cls(key)

    @classmethod
    def create(cls, path: Path) -> SigningKey:
        """A new key, written to `path` readable by its owner only (fails if the file exists)."""
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
        return cls(key)


def read_checkpoint_file(path: Path) -> list[Checkpoint]:
    """Every checkpoint in a file of JSON lines and/or pasted signed notes, in file order."""
    out: list[Checkpoint] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        if not line:
            i += 1
        elif line.startswith("{"):
            try:
                out.append(Checkpoint.from_json(json.loads(line)))
            except (json.JSONDecodeError, CheckpointFormatError) as e:
                raise CheckpointFormatError(f"{path}, line {i + 1}: {e}") from e
            i += 1
        elif line == ORIGIN:
            end = i + 5  # four body lines, the blank line, then signature lines
            while end < len(lines) and lines[end].startswith(_DASH):
                end += 1
            try:
                out.append(Checkpoint.from_note("\n".join(lines[i:end]) + "\n"))
            except CheckpointFormatError as e:
                raise CheckpointFormatError(f"{path}, line {i + 1}: {e}") from e
            i = end
        else:
            raise CheckpointFormatError(f"{path}, line {i + 1}: not a checkpoint")
    return out


def append_checkpoint_file(path: Path, cp: Checkpoint) -> None:
    """Add one line; a single short write, so processes sharing the file do not interleave."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as f:
        f.write(cp.to_json() + "\n")
