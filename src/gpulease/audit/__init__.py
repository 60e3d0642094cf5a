"""Tamper-evident audit log, built the way transparency logs are (Trillian, Certificate Transparency).

1. Sequence: `append` inserts a record in the caller's transaction, numbered by the database, with no
   lock and no read, so audited actions never wait on each other (chain.py).
2. Integrate: the sealer chains committed records in the order it finds them, each hash covering the
   one before (chain.py), in the background of each server process (sealer.py).
3. Publish: the sealer signs checkpoints of the head with an Ed25519 key; they are kept in the database
   and in a file an operator can ship elsewhere (checkpoints.py).
4. Verify: the chain record by record and every checkpoint against it (verify.py).
"""

from gpulease.audit.chain import (
    GENESIS,
    ChainMoved,
    SealPlan,
    SealResult,
    append,
    append_staged,
    chain_hash,
    plan_seal,
    seal,
)
from gpulease.audit.checkpoints import (
    Checkpoint,
    CheckpointFormatError,
    SigningKey,
    VerifierKey,
    read_checkpoint_file,
)
from gpulease.audit.sealer import AuditKeyError, AuditLog, ChainMismatch
from gpulease.audit.verify import VerifyResult, verify

__all__ = [
    "GENESIS",
    "AuditKeyError",
    "AuditLog",
    "ChainMismatch",
    "ChainMoved",
    "Checkpoint",
    "CheckpointFormatError",
    "SealPlan",
    "SealResult",
    "SigningKey",
    "VerifierKey",
    "VerifyResult",
    "append",
    "append_staged",
    "chain_hash",
    "plan_seal",
    "read_checkpoint_file",
    "seal",
    "verify",
]
