"""The exceptions cairn raises: one base class, one subclass per kind of failure.

The native module raises these (they are defined here because an exception that is both
a ``cairn.Error`` and a ``ValueError`` cannot be declared from Rust). Every exception has
``retryable`` (repeating the same call may succeed) and the details of its kind as
attributes.
"""

from __future__ import annotations

from typing import Optional


class Error(Exception):
    """Anything cairn refuses or fails at. ``retryable`` tells whether the same call
    may succeed if repeated."""

    retryable: bool = False


class BusyError(Error):
    """Other writers held the database for the whole busy budget; retry later.
    ``waited`` is how long cairn's retry loop waited, in seconds."""

    retryable = True
    waited: float = 0.0


class InvalidInputError(Error, ValueError):
    """An argument was refused and nothing of the call was written. ``field`` names the
    argument (``"name"``, ``"observation"``, ``"limit"``, ...), ``reason`` says what is
    wrong; ``index`` is the batch item and ``line`` the import line, where they apply."""

    field: str = ""
    reason: str = ""
    name: Optional[str] = None
    index: Optional[int] = None
    line: Optional[int] = None


class NotFoundError(Error, LookupError):
    """A referenced entity, relation, observation or episode does not exist. ``what`` is
    its kind, ``key`` the id or name looked up."""

    what: str = ""
    key: str = ""


class AliasTakenError(Error, ValueError):
    """The name (normalized ``key``) already belongs to entity ``owner``."""

    key: str = ""
    owner: int = 0


class OutcomeUnknownError(Error):
    """``COMMIT`` itself failed: the write may or may not be stored. Read the memory to
    tell, or repeat a write that carries an idempotency key (``Memory.record``)."""


class ReadOnlyError(Error):
    """A write on a memory opened with ``read_only=True``."""


class IndexLagError(Error):
    """The search index did not catch up with the writes the call waits for in time
    (``behind`` changes, ``waited`` seconds). The writes are stored; retry."""

    retryable = True
    behind: int = 0
    waited: float = 0.0


class IndexRebuildingError(Error):
    """The search index is being rebuilt after damage (``indexed`` of ``of`` changes);
    writes are not affected. Retry the search a little later."""

    retryable = True
    indexed: int = 0
    of: int = 0


class FileError(Error):
    """The file is not a cairn memory this version can open: not a database, another
    application's, written by a newer cairn, or in need of a migration. ``path`` is the
    file (where known)."""

    path: Optional[str] = None


class InUseError(Error):
    """The tenant is open elsewhere (another process, a handle not released, an archive
    in progress), so it cannot be dropped, archived or opened now. ``path`` is its file,
    ``reason`` says who holds it. The same call succeeds once it is released."""

    path: Optional[str] = None
    reason: str = ""


class ArchivedError(Error):
    """The tenant was archived (``Tenants.archive``): ``archive`` is the file it went to.
    ``Tenants.restore_archive`` brings it back; ``Tenants.drop`` frees the id."""

    path: Optional[str] = None
    archive: Optional[str] = None


class MovedError(Error):
    """The tenant was moved to another server (``Tenants.drain`` then ``moved``): ``to``
    is where the drain said it went; route the tenant's calls there."""

    path: Optional[str] = None
    to: str = ""


class EmbedderMismatchError(Error):
    """The file's vectors were made by another embedder than the one configured."""


class ModelError(Error):
    """A model directory is incomplete or unusable, or the model failed to embed.
    ``path`` is the file at fault (where known)."""

    path: Optional[str] = None


__all__ = [
    "Error",
    "BusyError",
    "InvalidInputError",
    "NotFoundError",
    "AliasTakenError",
    "OutcomeUnknownError",
    "ReadOnlyError",
    "IndexLagError",
    "IndexRebuildingError",
    "FileError",
    "InUseError",
    "ArchivedError",
    "MovedError",
    "EmbedderMismatchError",
    "ModelError",
]
