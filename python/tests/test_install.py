"""The package under test is the installed wheel, with its stubs and the native module."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import cairn


def test_imported_from_site_packages_not_the_source_tree() -> None:
    package = Path(cairn.__file__).resolve().parent
    if os.environ.get("CAIRN_PYTEST_STRICT") == "1":
        # python/ci.sh installs the wheel into a fresh venv: it must be the one found.
        assert Path(sys.prefix).resolve() in package.parents, package
        assert "site-packages" in package.parts
    native = [p.name for p in package.iterdir() if p.name.startswith("_native")]
    assert any(n.endswith((".so", ".pyd")) for n in native), native
    assert (package / "py.typed").exists() and (package / "_native.pyi").exists()
    assert cairn.__version__
