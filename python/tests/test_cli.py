"""The `cairn` command installed by the package (the venv's script), end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import cairn


def cairn_script() -> Path:
    """The console script pip installed beside this interpreter."""
    script = Path(sysconfig.get_path("scripts")) / ("cairn.exe" if os.name == "nt" else "cairn")
    assert script.exists(), f"no cairn script at {script}: is the package installed?"
    return script


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(cairn_script()), *args], capture_output=True, text=True, timeout=120
    )


def test_help() -> None:
    done = run("--help")
    assert done.returncode == 0, done.stderr
    assert "mcp" in done.stdout and "search" in done.stdout


def test_init_add_search(tmp_path: Path) -> None:
    db = str(tmp_path / "cli.db")
    assert run("--db", db, "init").returncode == 0
    added = run("--db", db, "add", "Acme Corp", "acquired", "Widget Inc")
    assert added.returncode == 0, added.stderr
    found = run("--db", db, "--json", "search", "who acquired widget")
    assert found.returncode == 0, found.stderr
    assert "Acme Corp acquired Widget Inc" in found.stdout
    # The file is an ordinary memory for the library, too.
    assert cairn.Memory(db).resolve("acme corp") is not None


def test_exit_codes() -> None:
    assert run("no-such-command").returncode == 2
    missing = run("--db", "/nonexistent/dir/x.db", "show", "Ann")
    assert missing.returncode != 0 and missing.stderr.startswith("cairn:")


def test_cli_main_in_process(tmp_path: Path) -> None:
    from cairn._cli import main

    assert main(["--db", str(tmp_path / "x.db"), "init"]) == 0


def test_mcp_server_over_stdio(tmp_path: Path) -> None:
    """`cairn mcp` from the package answers an MCP client: initialize, tools/list, a
    tool call that writes, and it ends when its input closes."""
    requests = [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "pytest", "version": "0"}}},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
        {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {
            "name": "create_relations", "arguments": {"relations": [
                {"from": "Acme Corp", "to": "Widget Inc", "relationType": "acquired"}]}}},
    ]
    db = tmp_path / "mcp.db"
    done = subprocess.run(
        [str(cairn_script()), "--db", str(db), "mcp"],
        input="".join(json.dumps(r) + "\n" for r in requests),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    replies = {r["id"]: r for r in map(json.loads, done.stdout.splitlines()) if "id" in r}
    assert replies[1]["result"]["serverInfo"]["name"]
    tools = {t["name"] for t in replies[2]["result"]["tools"]}
    assert {"create_entities", "search_nodes", "search_memory"} <= tools
    assert "error" not in replies[3], replies[3]
    assert cairn.Memory(db).resolve("widget inc") is not None
