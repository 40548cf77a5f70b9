"""A LangChain retriever over a cairn memory (the ``langchain`` extra:
``pip install 'cairn-memory[langchain]'``).

>>> from cairn.langchain import CairnRetriever
>>> retriever = CairnRetriever(memory=memory, k=5, agent="mail-agent")  # doctest: +SKIP
>>> retriever.invoke("who acquired Widget Inc?")  # doctest: +SKIP
[Document(page_content='Acme Corp acquired Widget Inc', metadata={...})]
"""

from __future__ import annotations

from typing import Any, List, Literal, Optional, Sequence

try:
    from langchain_core.callbacks import CallbackManagerForRetrieverRun
    from langchain_core.documents import Document
    from langchain_core.retrievers import BaseRetriever
    from pydantic import ConfigDict
except ImportError as e:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "cairn.langchain needs langchain-core: pip install 'cairn-memory[langchain]'"
    ) from e

from ._native import Hit, Memory


class CairnRetriever(BaseRetriever):
    """Retrieves cairn search hits as LangChain ``Document``s: ``page_content`` is the
    hit's text; ``metadata`` holds its ``kind``, ``id``, ``score``, and who wrote it
    (``agent``, ``source``, ``episode``, ``written_at`` as ISO 8601).

    The search runs with the GIL released, so the default async path (a thread of the
    event loop's executor) does not block other Python threads.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    memory: Memory
    """The memory to search."""
    k: int = 4
    """How many hits to return."""
    kinds: Optional[Sequence[Literal["entity", "relation", "observation", "chunk"]]] = None
    """Only these kinds of hits (``entity``, ``relation``, ``observation``, ``chunk``)."""
    agent: Optional[str] = None
    """Only hits written by this agent."""
    read_your_writes: bool = False
    """Wait until everything written before the call is searchable."""

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> List[Document]:
        hits = self.memory.search(
            query,
            limit=self.k,
            kinds=list(self.kinds) if self.kinds is not None else None,
            agent=self.agent,
            read_your_writes=self.read_your_writes,
        )
        return [to_document(hit) for hit in hits]


def to_document(hit: Hit) -> Document:
    """One hit as a LangChain document."""
    metadata: dict[str, Any] = {"kind": hit.kind, "id": hit.id, "score": hit.score}
    if hit.agent is not None:
        metadata["agent"] = hit.agent
    if hit.source is not None:
        metadata["source"] = hit.source
    if hit.episode is not None:
        metadata["episode"] = hit.episode
    written = hit.written_at
    if written is not None:
        metadata["written_at"] = written.isoformat()
    return Document(page_content=hit.text, metadata=metadata)


__all__ = ["CairnRetriever", "to_document"]
