"""Writes round-trip through search and context, with typed hits and provenance."""

from __future__ import annotations

import datetime as dt

import cairn


def test_add_triple_observe_resolve(memory: cairn.Memory) -> None:
    rel = memory.add_triple("Acme Corp", "acquired", "Widget Inc")
    assert rel == memory.add_triple("ACME  corp", "ACQUIRED", "widget inc")
    obs = memory.observe("ａｃｍｅ corp", "Founded in 1999")
    assert obs == memory.observe("Acme Corp", "Founded in 1999")
    acme = memory.resolve("Acme Corp")
    assert acme is not None and memory.resolve("acme corp") == acme
    assert memory.resolve("Nobody") is None
    assert memory.stats()["entities"] == 2
    assert memory.stats()["relations"] == 1
    assert memory.stats()["observations"] == 1


def test_search_returns_typed_hits_with_provenance(memory: cairn.Memory) -> None:
    before = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=5)
    with memory.episode("mail-agent", source="inbox/4711") as mail:
        rel = mail.add_triple("Acme Corp", "acquired", "Widget Inc")
    memory.add_triple("Bob", "likes", "Widgets")
    hits = memory.search("who acquired widget?", read_your_writes=True)
    assert hits, "no hits"
    hit = next(h for h in hits if h.kind == "relation" and h.id == rel)
    assert hit.text == "Acme Corp acquired Widget Inc"
    assert hit.score > 0
    assert hit.agent == "mail-agent" and hit.source == "inbox/4711"
    assert hit.episode == mail.episode_id
    assert hit.written_at is not None and hit.written_at >= before
    assert any(r.channel == "bm25" and r.rank >= 1 for r in hit.reasons)
    assert repr(hit).startswith('Hit(kind="relation"') and 'agent="mail-agent"' in repr(hit)
    plain = memory.search("likes widgets", kinds=["relation"], read_your_writes=True)[0]
    assert plain.agent is None and repr(plain).endswith("agent=None)")
    # Filters: by agent, by kind, by write time.
    by_agent = memory.search("acquired", agent="mail-agent", read_your_writes=True)
    assert by_agent and all(h.agent == "mail-agent" for h in by_agent)
    assert memory.search("acquired", agent="nobody", read_your_writes=True) == []
    kinds = memory.search("acme", kinds=["entity"], read_your_writes=True)
    assert kinds and all(h.kind == "entity" for h in kinds)
    future = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1)
    assert memory.search("acquired", since=future, read_your_writes=True) == []
    assert memory.search("acquired", until=before, read_your_writes=True) == []
    assert len(memory.search("acme", limit=1, read_your_writes=True)) == 1


def test_context_renders_within_budget(memory: cairn.Memory) -> None:
    with memory.episode("chat") as chat:
        chat.add_triple("Acme Corp", "acquired", "Widget Inc")
        chat.observe("Acme Corp", "Headquartered in Springfield")
    context = memory.context("acme", budget=200, read_your_writes=True, labels=True)
    assert "Acme Corp acquired Widget Inc" in context.text
    assert "[chat, " in context.text
    assert context.tokens <= 200
    assert context.hits and str(context) == context.text
