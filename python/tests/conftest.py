"""Shared fixtures: a fresh memory file per test, and spelling variants of names."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import cairn


@pytest.fixture
def path(tmp_path: Path) -> Path:
    """A path for a new memory file."""
    return tmp_path / "memory.db"


@pytest.fixture
def memory(path: Path) -> cairn.Memory:
    """A new memory file."""
    return cairn.Memory(path)


def fullwidth(text: str) -> str:
    """ASCII letters and digits as their fullwidth forms (NFKC maps them back)."""
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


def variants(name: str) -> list[str]:
    """Spellings of `name` that cairn's normalization maps to one key: case, width,
    runs of (no-break, ideographic) white space, surrounding blanks."""
    words = name.split(" ")
    return [
        name,
        name.upper(),
        name.lower(),
        "  ".join(w.upper() if i == 0 else w.lower() for i, w in enumerate(words)),
        fullwidth(name.lower()),
        "\u00a0".join(words),
        "\u3000".join(w.upper() for w in words),
        f"  {name}\t",
    ]


def require(variable: str) -> str:
    """An environment variable a test needs. When the CI script sets
    CAIRN_PYTEST_STRICT=1, a missing one fails the test instead of skipping it."""
    value = os.environ.get(variable)
    if not value:
        if os.environ.get("CAIRN_PYTEST_STRICT") == "1":
            pytest.fail(f"{variable} is not set")
        pytest.skip(f"{variable} is not set")
    return value
