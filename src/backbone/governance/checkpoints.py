"""Signed checkpoints of the audit chain: what a partner keeps to prove later that
the history it was shown was not cut short or rewritten.

The chain (:mod:`backbone.governance.audit`) shows any edit of an entry, but not a
consistent rewrite of everything after some point, nor the loss of its newest
entries: only something kept outside the warehouse can. At every digest and
disclosure report the warehouse signs its chain head (entry number and hash) with
its Ed25519 key, derived from the warehouse key; the partner keeps the file.
``backbone audit verify --checkpoints FILE`` then checks that each checkpoint is
the warehouse's own signature, and that the chain still holds that very entry: a
chain that ends before it was truncated, one with another hash there was rewritten.
The partner also keeps the public key of its first checkpoint: a later one signed
by another key is not this warehouse's.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import asdict, dataclass
from datetime import datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from backbone.errors import UserError
from backbone.governance.audit import AuditHead

__all__ = ["Checkpoint", "CheckpointSigner", "read_checkpoint"]

KIND = "backbone audit checkpoint"


@dataclass(frozen=True)
class Checkpoint:
    warehouse: str
    """the warehouse's name, as `backbone info` shows it"""
    partner: str
    """whom it was handed to"""
    seq: int
    hash: str
    at: str
    """when it was signed (UTC, ISO 8601)"""
    public_key: str
    """the warehouse's Ed25519 public key (base64, raw 32 bytes)"""
    signature: str = ""

    @property
    def head(self) -> AuditHead:
        return AuditHead(self.seq, self.hash)

    def signed_text(self) -> bytes:
        """What the signature covers: every field but the signature, canonically."""
        fields = asdict(self)
        fields.pop("signature")
        return json.dumps(
            {"kind": KIND, **fields}, sort_keys=True, separators=(",", ":")
        ).encode()

    def to_json(self) -> str:
        return json.dumps({"kind": KIND, **asdict(self)}, indent=1) + "\n"


class CheckpointSigner:
    """The warehouse's signing key, derived from its secret for this one use."""

    def __init__(self, warehouse_secret: bytes) -> None:
        seed = hashlib.sha256(b"backbone audit checkpoint key:" + warehouse_secret)
        self._key = Ed25519PrivateKey.from_private_bytes(seed.digest())

    @property
    def public_key(self) -> str:
        raw = self._key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        return base64.b64encode(raw).decode()

    def sign(
        self, head: AuditHead, *, warehouse: str, partner: str, at: datetime
    ) -> Checkpoint:
        unsigned = Checkpoint(
            warehouse=warehouse,
            partner=partner,
            seq=head.seq,
            hash=head.hash,
            at=at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            public_key=self.public_key,
        )
        signature = self._key.sign(unsigned.signed_text())
        return Checkpoint(
            **{**asdict(unsigned), "signature": base64.b64encode(signature).decode()}
        )

    def problem(self, checkpoint: Checkpoint) -> str | None:
        """Why ``checkpoint`` is not this warehouse's signature, or None."""
        if checkpoint.public_key != self.public_key:
            return (
                "it was signed by another key than this warehouse's (compare the "
                "public key with the one in the first checkpoint you were given)"
            )
        try:
            key = Ed25519PublicKey.from_public_bytes(
                base64.b64decode(checkpoint.public_key)
            )
            key.verify(base64.b64decode(checkpoint.signature), checkpoint.signed_text())
        except (InvalidSignature, ValueError, TypeError):
            return "its signature does not match its contents: it was altered"
        return None


def read_checkpoint(text: str, source: str) -> Checkpoint:
    """A checkpoint file's contents, or a UserError naming ``source``."""
    try:
        data = json.loads(text)
        if data.pop("kind", None) != KIND:
            raise ValueError("not a checkpoint")
        checkpoint = Checkpoint(**data)
        seq = checkpoint.seq
        if isinstance(seq, bool) or not isinstance(seq, int) or seq < 1:
            raise ValueError("no entry number")
        texts = (
            checkpoint.warehouse,
            checkpoint.partner,
            checkpoint.hash,
            checkpoint.at,
            checkpoint.public_key,
            checkpoint.signature,
        )
        if not all(isinstance(t, str) for t in texts):
            raise ValueError("a field is not text")
    except (ValueError, TypeError, AttributeError):
        raise UserError(
            f"{source} is not a Backbone audit checkpoint (a JSON file from a "
            "digest or a disclosure report)."
        ) from None
    return checkpoint
