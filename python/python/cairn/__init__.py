"""cairn: an embedded, multi-threaded memory graph for AI agents on one SQLite file.

>>> import cairn
>>> memory = cairn.Memory.ephemeral()
>>> memory.add_triple("Acme Corp", "acquired", "Widget Inc") > 0
True
>>> memory.resolve("ＡＣＭＥ  corp") == memory.resolve("Acme Corp")
True

Every call releases the GIL: share one ``Memory`` across threads. See ``docs/python.md``.
"""

from ._errors import (
    AliasTakenError,
    ArchivedError,
    BusyError,
    EmbedderMismatchError,
    Error,
    FileError,
    IndexLagError,
    IndexRebuildingError,
    InUseError,
    InvalidInputError,
    ModelError,
    MovedError,
    NotFoundError,
    OutcomeUnknownError,
    ReadOnlyError,
)
from ._native import (
    BackupReport,
    Batch,
    BatchReport,
    Context,
    EntityView,
    EpisodeInfo,
    HashingEmbedder,
    Hit,
    ImportReport,
    Memory,
    MigrateReport,
    Observation,
    Reason,
    Relation,
    SentenceEmbedder,
    TenantMigration,
    Tenants,
    VerifyReport,
    __version__,
)

__all__ = [
    "AliasTakenError",
    "ArchivedError",
    "BackupReport",
    "Batch",
    "BatchReport",
    "BusyError",
    "Context",
    "EmbedderMismatchError",
    "EntityView",
    "EpisodeInfo",
    "Error",
    "FileError",
    "HashingEmbedder",
    "Hit",
    "ImportReport",
    "IndexLagError",
    "IndexRebuildingError",
    "InUseError",
    "InvalidInputError",
    "Memory",
    "MigrateReport",
    "ModelError",
    "MovedError",
    "NotFoundError",
    "Observation",
    "OutcomeUnknownError",
    "ReadOnlyError",
    "Reason",
    "Relation",
    "SentenceEmbedder",
    "TenantMigration",
    "Tenants",
    "VerifyReport",
    "__version__",
]
