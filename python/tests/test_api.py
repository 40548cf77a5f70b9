"""The rest of the API: documents, batches, episodes and idempotency, editing,
JSON Lines, verify, backup, tenants, embedders."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import pytest

import cairn
from conftest import require


def test_documents_and_units(memory: cairn.Memory) -> None:
    acme = memory.ensure_entity("Acme Corp")
    doc, chunks = memory.add_document(
        "Acme Corp opened a plant in Springfield.\n\nIt employs 300 people.",
        source="news/1",
        metadata={"url": "https://example.com/1"},
        about="Acme Corp",
        max_chars=50,
        overlap_chars=0,
    )
    assert doc > 0 and len(chunks) == 2
    unit_doc, unit_chunks = memory.add_units(
        "chat/7", ["Lunch with ACME  corp's CFO", ("Budget is 5k", {"turn": 2})]
    )
    assert unit_doc != doc and len(unit_chunks) == 2
    hits = memory.search("plant springfield", kinds=["chunk"], read_your_writes=True)
    assert hits and hits[0].kind == "chunk" and "plant" in hits[0].text
    assert memory.stats()["documents"] == 2 and memory.resolve("acme corp") == acme
    with pytest.raises(cairn.InvalidInputError) as raised:
        memory.add_units("chat/8", [42])  # type: ignore[list-item]
    assert raised.value.field == "units"


def test_batch_is_all_or_nothing(memory: cairn.Memory) -> None:
    batch = cairn.Batch().triple("Ann", "knows", "Bob").observe("Ann", "Likes tea")
    assert len(batch) == 2
    report = memory.apply(batch)
    assert len(report.relations) == 1 and len(report.observations) == 1
    assert not report.replayed
    before = memory.stats()
    bad = cairn.Batch().triple("Carol", "knows", "Dave").triple("Eve", "", "Frank")
    with pytest.raises(cairn.InvalidInputError) as raised:
        memory.apply(bad)
    assert raised.value.index == 1 and raised.value.field == "predicate"
    assert memory.stats() == before
    assert memory.resolve("carol") is None


def test_record_with_an_idempotency_key_writes_once(memory: cairn.Memory) -> None:
    batch = cairn.Batch().triple("Acme Corp", "acquired", "Widget Inc")
    batch.observe("Acme Corp", "Announced on Monday")
    first = memory.record(batch, agent="mail-agent", source="msg-4711", idempotency_key="msg-4711")
    again = memory.record(batch, agent="mail-agent", source="msg-4711", idempotency_key="msg-4711")
    assert not first.replayed and again.replayed
    assert first.relations == again.relations and first.episode == again.episode
    assert memory.stats()["observations"] == 1 and memory.stats()["episodes"] == 1
    info = memory.get_episode(first.episode)
    assert info is not None and info.agent == "mail-agent" and info.source == "msg-4711"
    assert info.idempotency_key == "msg-4711"


def test_episodes_carry_provenance(memory: cairn.Memory) -> None:
    at = dt.datetime(2026, 11, 30, 12, tzinfo=dt.timezone.utc)
    with memory.episode("calendar", source="cal/1", at=at, metadata={"n": 1}) as ep:
        assert ep.episode_id is not None
        ep.add_triple("Ann", "meets", "Bob")
    again = memory.episode("calendar", idempotency_key="k1")
    same = memory.episode("calendar", idempotency_key="k1")
    assert again.episode_id == same.episode_id
    infos = memory.episodes_by_agent("calendar")
    assert [i.id for i in infos] == [ep.episode_id, again.episode_id]
    assert infos[0].at == at and infos[0].metadata == {"n": 1}
    assert memory.get_episode(10_000) is None


def test_show_merge_rename_alias_delete(memory: cairn.Memory) -> None:
    memory.add_triple("Acme Corp", "acquired", "Widget Inc")
    memory.observe("Acme Corp", "Founded in 1999")
    memory.add_triple("ACME Inc", "based in", "Springfield")
    view = memory.show("acme corp")
    assert view.name == "Acme Corp" and view.aliases == ["Acme Corp"]
    assert [r.predicate for r in view.relations] == ["acquired"]
    assert [o.text for o in view.observations] == ["Founded in 1999"]
    keep = memory.merge("Acme Corp", "ACME Inc")
    assert memory.resolve("acme inc") == keep
    assert len(memory.show(keep).relations) == 2
    memory.rename(keep, "Acme Corporation")
    assert memory.show("Acme Corp").name == "Acme Corporation"
    assert memory.alias("Acme Corporation", "ACME") is True
    assert memory.alias(keep, "acme") is False
    with pytest.raises(cairn.AliasTakenError) as taken:
        memory.alias("Widget Inc", "Acme")
    assert taken.value.owner == keep
    memory.describe(keep, kind="organization", summary="Makes things")
    assert memory.show(keep).kind == "organization"
    with pytest.raises(cairn.NotFoundError) as missing:
        memory.show("Nobody")
    assert missing.value.what == "entity" and isinstance(missing.value, LookupError)
    assert memory.delete("Widget Inc") is True
    assert memory.delete("Widget Inc") is False
    assert [r.object_name for r in memory.relations(keep, "outgoing")] == ["Springfield"]


def test_invalidate_hides_a_relation_until_history_is_asked_for(memory: cairn.Memory) -> None:
    rel = memory.add_triple("Ann", "works at", "Acme")
    memory.invalidate(rel, at=dt.datetime(2026, 1, 5, tzinfo=dt.timezone.utc))
    hits = memory.search("ann works", kinds=["relation"], read_your_writes=True)
    assert all(h.id != rel for h in hits)
    history = memory.search("ann works", kinds=["relation"], include_history=True, read_your_writes=True)
    ended = next(h for h in history if h.id == rel)
    assert ended.valid_to == dt.datetime(2026, 1, 5, tzinfo=dt.timezone.utc)
    assert "until 2026-01-05" in ended.text
    assert memory.remove_relation(rel) is True and memory.remove_relation(rel) is False


def test_jsonl_round_trip_verify_backup(memory: cairn.Memory, tmp_path: Path) -> None:
    with memory.episode("mail") as mail:
        mail.add_triple("Acme Corp", "acquired", "Widget Inc")
        mail.observe("Acme Corp", "Founded in 1999")
    out = tmp_path / "export.jsonl"
    assert memory.export_jsonl(out) > 0
    copy = cairn.Memory(tmp_path / "copy.db")
    report = copy.import_jsonl(out)
    assert report.format == "cairn" and report.records > 0
    assert copy.stats() == memory.stats()
    reference = tmp_path / "memory.jsonl"
    memory.export_jsonl(reference, format="memory-jsonl")
    assert json.loads(reference.read_text().splitlines()[0])["type"] == "entity"
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"type":"entity","name":"Ann","entityType":"person","observations":[]}\nnot json\n')
    fresh = cairn.Memory(tmp_path / "fresh.db")
    with pytest.raises(cairn.InvalidInputError) as raised:
        fresh.import_jsonl(bad)
    assert raised.value.line == 2
    assert fresh.stats()["entities"] == 0
    skipped = fresh.import_jsonl(bad, skip_invalid=True)
    assert skipped.skipped == 1 and fresh.resolve("ann") is not None
    assert memory.verify().ok and memory.verify(full=True)
    backup = memory.backup(tmp_path / "backup.db")
    assert backup.bytes > 0
    restored = cairn.Memory.restore(tmp_path / "backup.db", tmp_path / "restored.db")
    assert restored.stats() == memory.stats()
    with pytest.raises(cairn.InvalidInputError):
        cairn.Memory.restore(tmp_path / "backup.db", tmp_path / "restored.db")


def test_ephemeral_memory_is_deleted_with_its_last_handle() -> None:
    memory = cairn.Memory.ephemeral()
    memory.add_triple("Ann", "knows", "Bob")
    path = memory.path
    assert path.exists()
    del memory
    import gc

    gc.collect()
    assert not path.exists()


def test_tenants(tmp_path: Path) -> None:
    tenants = cairn.Tenants(tmp_path / "tenants", capacity=2)
    tenants.get("alice").add_triple("Ann", "knows", "Bob")
    tenants.create("bob")
    with pytest.raises(cairn.InvalidInputError):
        tenants.create("bob")
    with pytest.raises(cairn.InvalidInputError):
        tenants.get("../escape")
    assert tenants.list() == ["alice", "bob"]
    assert tenants.get("alice").resolve("ann") is not None
    assert tenants.get("bob").resolve("ann") is None
    assert tenants.export("alice", tmp_path / "alice.db").bytes > 0
    assert tenants.drop("bob") is True and tenants.list() == ["alice"]


def test_tenant_archive_restore_and_migrate(tmp_path: Path) -> None:
    import gc

    tenants = cairn.Tenants(tmp_path / "tenants", capacity=4)
    tenants.get("run-1").add_triple("Ann", "knows", "Bob")
    tenants.get("run-2").add_triple("Cy", "knows", "Dee")
    held = tenants.get("run-2")
    with pytest.raises(cairn.InUseError) as in_use:
        tenants.drop("run-2")
    assert in_use.value.path.endswith("run-2.db") and in_use.value.reason
    assert held.resolve("cy") is not None
    del held
    gc.collect()

    report = tenants.archive("run-1", tmp_path / "run-1.archive.db")
    assert report.bytes > 0 and (tmp_path / "run-1.archive.db").exists()
    assert tenants.list() == ["run-2"]
    with pytest.raises(cairn.ArchivedError) as archived:
        tenants.get("run-1")
    assert archived.value.archive.endswith("run-1.archive.db")
    restored = tenants.restore_archive("run-1", tmp_path / "run-1.archive.db")
    assert restored.resolve("ann") is not None
    with pytest.raises(cairn.InvalidInputError):
        tenants.restore_archive("run-1", tmp_path / "run-1.archive.db")
    del restored

    (tmp_path / "tenants" / "broken.db").write_bytes(b"not a database at all" * 100)
    first = tenants.migrate_all()
    assert (first.total, first.failed, first.ok) == (3, 1, False)
    by_id = {t.id: t for t in first.tenants}
    assert by_id["broken"].outcome == "failed" and by_id["broken"].error
    assert by_id["run-2"].outcome in ("migrated", "verified")
    again = tenants.migrate_all()
    assert again.skipped == 2 and again.failed == 1
    assert tenants.migrate_all(redo=True).skipped == 0


def test_hashing_embedder_adds_a_vector_channel(path: Path) -> None:
    memory = cairn.Memory(path, embedder=cairn.HashingEmbedder(64))
    memory.observe("Acme Corp", "The company builds rockets in Springfield")
    memory.sync()  # the vector too, not only the words (read_your_writes)
    hits = memory.search("rockets")
    assert any(r.channel == "vector" for h in hits for r in h.reasons)
    with pytest.raises(cairn.EmbedderMismatchError):
        cairn.Memory(path, embedder=cairn.HashingEmbedder(32))


def test_sentence_embedder_from_a_model_directory(path: Path) -> None:
    model = cairn.SentenceEmbedder(require("CAIRN_TEST_MODEL"))
    assert model.dimension == 384 and len(model.embed_query("hello")) == 384
    memory = cairn.Memory(path, embedder=model)
    memory.observe("Ann", "She adores felines")
    # read_your_writes waits until the write is searchable by its words; its vector is
    # written just after, off that path, and sync() waits for it too.
    memory.sync()
    hits = memory.search("cats")
    assert any(r.channel == "vector" for h in hits for r in h.reasons)


def test_missing_model_directory_is_a_model_error(tmp_path: Path) -> None:
    with pytest.raises(cairn.ModelError) as raised:
        cairn.SentenceEmbedder(tmp_path / "no-model")
    assert raised.value.path is not None
