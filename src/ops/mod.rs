//! Operations on a whole memory: import and export as JSON Lines, the reference memory
//! server's knowledge-graph calls that `cairn mcp` serves, verification, backup and restore, per-tenant stores.

pub(crate) mod backup;
pub(crate) mod history;
pub(crate) mod jsonl;
pub(crate) mod knowledge_graph;
pub(crate) mod tenants;
pub(crate) mod verify;
