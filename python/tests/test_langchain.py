"""cairn.langchain.CairnRetriever against the real langchain-core."""

from __future__ import annotations

import asyncio

from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever

import cairn
from cairn.langchain import CairnRetriever


def test_retriever_returns_documents_with_provenance(memory: cairn.Memory) -> None:
    with memory.episode("mail-agent", source="inbox/4711") as mail:
        mail.add_triple("Acme Corp", "acquired", "Widget Inc")
    memory.add_triple("Bob", "likes", "tea")
    retriever = CairnRetriever(memory=memory, k=3, read_your_writes=True)
    assert isinstance(retriever, BaseRetriever)
    docs = retriever.invoke("who acquired widget?")
    assert docs and all(isinstance(d, Document) for d in docs) and len(docs) <= 3
    top = next(d for d in docs if d.page_content == "Acme Corp acquired Widget Inc")
    assert top.metadata["kind"] == "relation" and top.metadata["agent"] == "mail-agent"
    assert top.metadata["source"] == "inbox/4711" and "written_at" in top.metadata
    only = CairnRetriever(memory=memory, agent="mail-agent", kinds=["relation"])
    assert all(d.metadata["agent"] == "mail-agent" for d in only.invoke("acquired"))
    async_docs = asyncio.run(retriever.ainvoke("who acquired widget?"))
    assert [d.page_content for d in async_docs] == [d.page_content for d in docs]
