"""Bad input raises a typed exception naming what is wrong, and writes nothing."""

from __future__ import annotations

import pytest

import cairn


def test_exception_hierarchy() -> None:
    assert issubclass(cairn.InvalidInputError, cairn.Error)
    assert issubclass(cairn.InvalidInputError, ValueError)
    assert issubclass(cairn.NotFoundError, LookupError)
    assert issubclass(cairn.BusyError, cairn.Error) and cairn.BusyError.retryable
    assert issubclass(cairn.OutcomeUnknownError, cairn.Error)


@pytest.mark.parametrize(
    "call, field",
    [
        (lambda m: m.add_triple("", "knows", "Bob"), "subject"),
        (lambda m: m.add_triple("Ann", "   ", "Bob"), "predicate"),
        (lambda m: m.add_triple("Ann\x07", "knows", "Bob"), "subject"),
        (lambda m: m.add_triple("A" * 2000, "knows", "Bob"), "subject"),
        (lambda m: m.observe("Ann", ""), "observation"),
        (lambda m: m.observe("Ann", "x" * (64 * 1024 + 1)), "observation"),
        (lambda m: m.add_triple("Ann", "knows", "Bob", valid_from=20, valid_to=10), "validity"),
        (lambda m: m.search("acme", limit=5000), "limit"),
        (lambda m: m.search("acme", kinds=["person"]), "kinds"),
        (lambda m: m.ensure_entity(" \u200b "), "name"),
        (lambda m: m.episode(""), "agent id"),
        (lambda m: m.add_triple(3.5, "knows", "Bob"), "subject"),
    ],
)
def test_bad_input_is_typed_and_writes_nothing(memory: cairn.Memory, call, field: str) -> None:  # type: ignore[no-untyped-def]
    before = memory.stats()
    with pytest.raises(cairn.InvalidInputError) as raised:
        call(memory)
    assert raised.value.field == field, raised.value
    assert raised.value.reason
    assert not raised.value.retryable
    assert isinstance(raised.value, ValueError)
    assert memory.stats() == before


def test_bad_open_options_are_typed(path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(cairn.InvalidInputError) as raised:
        cairn.Memory(path, durability="sometimes")
    assert raised.value.field == "durability"
    assert not path.exists()


def test_not_a_database(tmp_path) -> None:  # type: ignore[no-untyped-def]
    bogus = tmp_path / "notes.txt"
    bogus.write_text("hello, this is not SQLite" * 100)
    with pytest.raises(cairn.FileError) as raised:
        cairn.Memory(bogus)
    assert raised.value.path == str(bogus)


def test_read_only(path) -> None:  # type: ignore[no-untyped-def]
    cairn.Memory(path).add_triple("Ann", "knows", "Bob")
    reader = cairn.Memory(path, read_only=True)
    with pytest.raises(cairn.ReadOnlyError):
        reader.add_triple("Ann", "knows", "Carol")
    assert reader.resolve("carol") is None
