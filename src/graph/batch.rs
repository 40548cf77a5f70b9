//! Batch ingest: many triples and observations, validated before the lock, written in
//! one transaction, all or nothing.

use std::borrow::Cow;
use std::collections::HashMap;

use rusqlite::Connection;

use crate::error::{Error, Result};
use crate::graph::input::{EntityRef, Triple, ValidRef, ValidTriple, observation_text};
use crate::graph::{WriteCtx, entity, observation, relation};
use crate::id::{EntityId, ObservationId, RelationId};

/// Triples and observations to write in one transaction with [`crate::Memory::apply`].
///
/// ```
/// let memory = cairn::Memory::ephemeral()?;
/// let mut batch = cairn::Batch::new();
/// batch
///     .triple(("Acme Corp", "acquired", "Widget Inc"))
///     .triple(("Widget Inc", "based in", "Berlin"))
///     .observe("Acme Corp", "Founded in 1999");
/// let report = memory.apply(&batch)?;
/// assert_eq!(report.relations.len(), 2);
/// # Ok::<(), cairn::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct Batch<'a> {
    items: Vec<Item<'a>>,
}

#[derive(Debug, Clone)]
enum Item<'a> {
    Triple(Triple<'a>),
    Observation(EntityRef<'a>, Cow<'a, str>),
}

/// What a batch wrote, in the order the items were added.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BatchReport {
    /// One id per triple item (repeats of an existing triple return its id).
    pub relations: Vec<RelationId>,
    /// One id per observation item (duplicates return the existing id).
    pub observations: Vec<ObservationId>,
}

impl<'a> Batch<'a> {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a triple.
    pub fn triple(&mut self, triple: impl Into<Triple<'a>>) -> &mut Self {
        self.items.push(Item::Triple(triple.into()));
        self
    }

    /// Adds an observation about an entity (found or created by name).
    pub fn observe(
        &mut self,
        entity: impl Into<EntityRef<'a>>,
        text: impl Into<Cow<'a, str>>,
    ) -> &mut Self {
        self.items
            .push(Item::Observation(entity.into(), text.into()));
        self
    }

    /// Number of items.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True when nothing was added.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Checks every item; the first bad one fails the whole batch with its index.
    pub(crate) fn validate(&self) -> Result<Vec<ValidItem<'_>>> {
        validate_each(&self.items, validate_item)
    }
}

/// Checks every item with `check`; the first failure fails the whole call as an
/// [`Error::InvalidBatchItem`] naming its position.
pub(crate) fn validate_each<'i, T, V>(
    items: &'i [T],
    check: impl Fn(&'i T) -> Result<V>,
) -> Result<Vec<V>> {
    items
        .iter()
        .enumerate()
        .map(|(index, item)| {
            check(item).map_err(|e| Error::InvalidBatchItem {
                index,
                source: Box::new(e),
            })
        })
        .collect()
}

fn validate_item<'b>(item: &'b Item<'_>) -> Result<ValidItem<'b>> {
    Ok(match item {
        Item::Triple(t) => ValidItem::Triple(t.validate()?),
        Item::Observation(e, text) => {
            ValidItem::Observation(ValidRef::new(e)?, observation_text(text)?)
        }
    })
}

pub(crate) enum ValidItem<'b> {
    Triple(ValidTriple),
    Observation(ValidRef, &'b str),
}

/// Writes checked items. The caller holds the transaction.
pub(crate) fn apply(
    conn: &Connection,
    items: &[ValidItem<'_>],
    ctx: &WriteCtx,
) -> Result<BatchReport> {
    let mut report = BatchReport::default();
    let mut resolver = Resolver::default();
    for item in items {
        match item {
            ValidItem::Triple(t) => {
                let subject = resolver.resolve(conn, &t.subject, ctx)?;
                let object = resolver.resolve(conn, &t.object, ctx)?;
                report
                    .relations
                    .push(relation::upsert(conn, subject, t, object, ctx)?);
            }
            ValidItem::Observation(e, text) => {
                let id = resolver.resolve(conn, e, ctx)?;
                report
                    .observations
                    .push(observation::add(conn, id, text, ctx)?);
            }
        }
    }
    Ok(report)
}

/// Remembers the names a batch already resolved: batches repeat names a lot.
#[derive(Default)]
struct Resolver {
    by_key: HashMap<String, EntityId>,
}

impl Resolver {
    fn resolve(&mut self, conn: &Connection, r: &ValidRef, ctx: &WriteCtx) -> Result<EntityId> {
        match r {
            ValidRef::Name(name) => {
                if let Some(id) = self.by_key.get(&name.key) {
                    return Ok(*id);
                }
                let id = entity::find_or_create(conn, name, ctx)?;
                self.by_key.insert(name.key.clone(), id);
                Ok(id)
            }
            ValidRef::Id(_) => entity::resolve_ref(conn, r, ctx),
        }
    }
}
