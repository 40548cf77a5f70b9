//! Operations on a whole memory: import and export as JSON Lines, and the reference
//! memory server's knowledge-graph calls that `cairn mcp` serves.

pub(crate) mod jsonl;
pub(crate) mod knowledge_graph;
