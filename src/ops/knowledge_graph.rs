//! The reference memory server's model — entities with a type and a list of
//! observations, relations between names — on top of a [`Memory`].
//!
//! `cairn mcp` serves these calls as the reference server's tools, and the
//! `memory.jsonl` import and export speak the same shapes. Where the reference server
//! loses or duplicates data, these calls do not: names resolve through normalized keys,
//! creating an existing entity adds its new observations, relation endpoints are created
//! when missing, and every call is one transaction.

use std::collections::{HashMap, HashSet};

use rusqlite::Connection;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::graph::batch::validate_each;
use crate::graph::input::{Triple, ValidName, ValidTriple, check_text, observation_text};
use crate::graph::relation::Direction;
use crate::graph::{WriteCtx, entity, observation, relation};
use crate::id::{EntityId, ObservationId};
use crate::memory::{MAX_KIND_BYTES, Memory};
use crate::normalize::{normalize_name, normalize_predicate};
use crate::retrieve::{HitKind, SearchOptions, Target};

/// An entity as the reference memory server shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KgEntity {
    /// The entity's name (on output: its display name, what the first writer wrote).
    pub name: String,
    /// Its type (cairn's entity *kind*); empty when it has none.
    pub entity_type: String,
    /// Observation texts.
    pub observations: Vec<String>,
}

/// A relation as the reference memory server shows it: `from –relationType→ to`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KgRelation {
    /// The subject's name.
    pub from: String,
    /// The object's name.
    pub to: String,
    /// The predicate.
    pub relation_type: String,
}

/// Observations to add to one entity ([`KnowledgeGraph::add_observations`]), or to
/// delete from it ([`KnowledgeGraph::delete_observations`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KgObservations {
    /// The entity, by any of its names.
    pub entity_name: String,
    /// The observation texts.
    #[serde(alias = "observations")]
    pub contents: Vec<String>,
}

/// What [`KnowledgeGraph::add_observations`] stored for one entity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KgAdded {
    /// The entity's display name.
    pub entity_name: String,
    /// The texts that were new (texts the entity already had are not repeated).
    pub added_observations: Vec<String>,
}

/// A part of the graph: entities with their observations, and relations among them.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KgGraph {
    /// Entities, in id order (read, open) or rank order (search).
    pub entities: Vec<KgEntity>,
    /// Relations (see each call for which).
    pub relations: Vec<KgRelation>,
    /// For [`KnowledgeGraph::open_nodes`] and [`KnowledgeGraph::search_nodes`]: more
    /// relations touch these entities than the [`KnowledgeGraph::MAX_NODE_RELATIONS`]
    /// returned (serialized as `relationsTruncated`, only when true).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub relations_truncated: bool,
    /// For a paged [`KnowledgeGraph::read_graph`]: pass it back to get the next page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// A page of [`KnowledgeGraph::read_graph`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Page {
    /// The `next_cursor` of the previous page; `None` for the first.
    pub cursor: Option<String>,
    /// At most this many entities.
    pub limit: usize,
}

/// The reference memory server's calls over a [`Memory`] (see the module docs of
/// `cairn mcp` in `docs/cli.md`). Each call is one transaction; invalid input is
/// refused before anything is written, naming the offending item.
///
/// ```
/// use cairn::{KgEntity, KgRelation, Memory};
///
/// let kg = Memory::ephemeral()?.knowledge_graph();
/// kg.create_entities(&[KgEntity {
///     name: "Acme Corp".into(),
///     entity_type: "organization".into(),
///     observations: vec!["Founded in 1999".into()],
/// }])?;
/// // Another spelling is the same entity, and its new observation is kept.
/// let stored = kg.create_entities(&[KgEntity {
///     name: "ACME corp".into(),
///     entity_type: "company".into(),
///     observations: vec!["Based in Springfield".into()],
/// }])?;
/// assert_eq!(stored[0].name, "Acme Corp");
/// assert_eq!(stored[0].entity_type, "organization"); // the first writer's type
///
/// kg.create_relations(&[KgRelation {
///     from: "acme corp".into(),
///     to: "Widget Inc".into(), // created on the way
///     relation_type: "acquired".into(),
/// }])?;
/// let graph = kg.open_nodes(&["ＡＣＭＥ Corp".to_string(), "widget inc".to_string()])?;
/// assert_eq!(graph.entities[0].observations.len(), 2);
/// assert_eq!(graph.relations[0].to, "Widget Inc");
/// # Ok::<(), cairn::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct KnowledgeGraph {
    memory: Memory,
}

impl Memory {
    /// The reference memory server's calls over this memory.
    pub fn knowledge_graph(&self) -> KnowledgeGraph {
        KnowledgeGraph {
            memory: self.clone(),
        }
    }
}

/// A [`KgEntity`] checked before the write.
struct ValidEntity {
    name: ValidName,
    kind: Option<String>,
    observations: Vec<String>,
}

impl ValidEntity {
    fn new(e: &KgEntity) -> Result<Self> {
        Ok(ValidEntity {
            name: ValidName::entity(&e.name)?,
            kind: entity_type(&e.entity_type)?,
            observations: observation_texts(&e.observations)?,
        })
    }
}

/// Checks one entity as [`KnowledgeGraph::create_entities`] would.
pub(crate) fn check_entity(e: &KgEntity) -> Result<()> {
    ValidEntity::new(e).map(drop)
}

/// Checks one relation as [`KnowledgeGraph::create_relations`] would.
pub(crate) fn check_relation(r: &KgRelation) -> Result<()> {
    valid_triple(r).map(drop)
}

fn valid_triple(r: &KgRelation) -> Result<ValidTriple> {
    Triple::new(r.from.as_str(), r.relation_type.as_str(), r.to.as_str())
        .validate()
        .map_err(|e| match &e {
            // The reference server's field names, not the triple's.
            Error::InvalidName { what, .. } => {
                let field = match what.as_ref() {
                    "subject" => "from",
                    "object" => "to",
                    _ => "relationType",
                };
                e.for_name(field)
            }
            _ => e,
        })
}

/// [`validate_each`] over the call's argument `list`, with a bad name's field given as
/// its path in the arguments (`relations[3].relationType`), as an MCP client sent it.
fn validate_list<'i, T, V>(
    list: &'static str,
    items: &'i [T],
    check: impl Fn(&'i T) -> Result<V>,
) -> Result<Vec<V>> {
    validate_each(items, check).map_err(|e| match e {
        Error::InvalidBatchItem { index, source } => {
            let source = match *source {
                Error::InvalidName { ref what, .. } => {
                    let path = format!("{list}[{index}].{what}");
                    source.for_name(path)
                }
                other => other,
            };
            Error::InvalidBatchItem {
                index,
                source: Box::new(source),
            }
        }
        other => other,
    })
}

/// The kind stored for an `entityType`: trimmed, `None` when blank.
fn entity_type(text: &str) -> Result<Option<String>> {
    check_text("entity type", text, MAX_KIND_BYTES)?;
    let trimmed = text.trim();
    Ok((!trimmed.is_empty()).then(|| trimmed.to_owned()))
}

/// Checked, trimmed observation texts, each once, in order.
fn observation_texts(texts: &[String]) -> Result<Vec<String>> {
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(texts.len());
    for text in texts {
        let text = observation_text(text)?;
        if seen.insert(text) {
            out.push(text.to_owned());
        }
    }
    Ok(out)
}

fn entity_key(name: &str) -> Result<String> {
    normalize_name(name)
}

impl KnowledgeGraph {
    /// The largest `limit` [`KnowledgeGraph::search_nodes`] accepts (it searches twice as
    /// deep as it answers, within [`SearchOptions::MAX_LIMIT`]).
    pub const MAX_SEARCH_LIMIT: usize = SearchOptions::MAX_LIMIT / 2;

    /// The most relations [`KnowledgeGraph::open_nodes`] and
    /// [`KnowledgeGraph::search_nodes`] return; past it the answer says
    /// [`KgGraph::relations_truncated`]. Each entity's relations are taken most mentioned
    /// first, in the order of the entities.
    pub const MAX_NODE_RELATIONS: usize = 1_000;

    /// The memory these calls write to.
    pub fn memory(&self) -> &Memory {
        &self.memory
    }

    fn write<T>(&self, f: impl FnOnce(&Connection, &WriteCtx) -> Result<T>) -> Result<T> {
        let ctx = self.memory.ctx();
        self.memory.db().write(|c| f(c, &ctx))
    }

    /// Finds or creates each entity (by normalized name), sets its type if it had none,
    /// and adds its observations that are new. Returns each entity once, as stored: its
    /// display name, its type, and the given observations (all of them now stored).
    pub fn create_entities(&self, entities: &[KgEntity]) -> Result<Vec<KgEntity>> {
        let valid = validate_list("entities", entities, ValidEntity::new)?;
        self.write(|c, ctx| {
            let mut order: Vec<EntityId> = Vec::new();
            let mut texts: HashMap<EntityId, Vec<String>> = HashMap::new();
            for e in valid {
                let id = entity::find_or_create(c, &e.name, ctx)?;
                if let Some(kind) = &e.kind {
                    set_kind_if_unset(c, id, kind, ctx)?;
                }
                for text in &e.observations {
                    observation::add(c, id, text, ctx)?;
                }
                let list = texts.entry(id).or_insert_with(|| {
                    order.push(id);
                    Vec::new()
                });
                for text in e.observations {
                    if !list.contains(&text) {
                        list.push(text);
                    }
                }
            }
            order
                .into_iter()
                .map(|id| {
                    let stored = stored_entity(c, id)?;
                    Ok(KgEntity {
                        name: stored.name,
                        entity_type: stored.kind.unwrap_or_default(),
                        observations: texts.remove(&id).unwrap_or_default(),
                    })
                })
                .collect()
        })
    }

    /// Stores each relation, creating missing endpoints; a relation stored before counts
    /// one more mention. Returns each relation once, with the names as stored.
    pub fn create_relations(&self, relations: &[KgRelation]) -> Result<Vec<KgRelation>> {
        let valid = validate_list("relations", relations, valid_triple)?;
        self.write(|c, ctx| {
            let mut seen = HashSet::new();
            let mut out = Vec::new();
            for t in &valid {
                let id = relation::add(c, t, ctx)?;
                if seen.insert(id) {
                    let r =
                        relation::get(c, id)?.ok_or_else(|| Error::not_found("relation", id))?;
                    out.push(kg_relation(r));
                }
            }
            Ok(out)
        })
    }

    /// Adds observations to existing entities, found by any spelling of any of their
    /// names. An unknown entity is an [`Error::NotFound`] and nothing of the call is
    /// written. Returns, per item, the texts that were new.
    pub fn add_observations(&self, items: &[KgObservations]) -> Result<Vec<KgAdded>> {
        let valid = validate_list("observations", items, |o| {
            Ok((
                entity_key(&o.entity_name).map_err(|e| e.for_name("entityName"))?,
                observation_texts(&o.contents)?,
            ))
        })?;
        self.write(|c, ctx| {
            let mut out = Vec::with_capacity(valid.len());
            for ((key, texts), item) in valid.into_iter().zip(items) {
                let id = entity::lookup(c, &key)?
                    .ok_or_else(|| Error::not_found("entity", &item.entity_name))?;
                let mut added = Vec::new();
                for text in texts {
                    if observation::add_if_new(c, id, &text, ctx)?.is_some() {
                        added.push(text);
                    }
                }
                out.push(KgAdded {
                    entity_name: stored_entity(c, id)?.name,
                    added_observations: added,
                });
            }
            Ok(out)
        })
    }

    /// Deletes entities (by any of their names) with their relations and observations.
    /// Unknown names are skipped. Returns how many entities were deleted.
    pub fn delete_entities(&self, names: &[String]) -> Result<usize> {
        let keys = validate_each(names, |n| entity_key(n))?;
        self.write(|c, ctx| {
            let mut deleted = 0;
            for key in &keys {
                if let Some(id) = entity::lookup(c, key)?
                    && entity::delete(c, id, ctx)?
                {
                    deleted += 1;
                }
            }
            Ok(deleted)
        })
    }

    /// Deletes observations (exact texts, trimmed) from entities. Unknown entities and
    /// texts are skipped. Returns how many observations were deleted.
    pub fn delete_observations(&self, items: &[KgObservations]) -> Result<usize> {
        let valid = validate_list("observations", items, |o| {
            Ok((
                entity_key(&o.entity_name).map_err(|e| e.for_name("entityName"))?,
                observation_texts(&o.contents)?,
            ))
        })?;
        self.write(|c, ctx| {
            let mut deleted = 0;
            for (key, texts) in &valid {
                let Some(id) = entity::lookup(c, key)? else {
                    continue;
                };
                for text in texts {
                    if let Some(obs) = observation::find(c, id, text)?
                        && observation::remove(c, obs, ctx)?
                    {
                        deleted += 1;
                    }
                }
            }
            Ok(deleted)
        })
    }

    /// Deletes relations, their ends and predicate matched by normalized keys. Unknown
    /// relations are skipped. Returns how many relations were deleted.
    pub fn delete_relations(&self, relations: &[KgRelation]) -> Result<usize> {
        let keys = validate_each(relations, |r| {
            Ok((
                entity_key(&r.from)?,
                normalize_predicate(&r.relation_type)?,
                entity_key(&r.to)?,
            ))
        })?;
        self.write(|c, ctx| {
            let mut deleted = 0;
            for (from, predicate, to) in &keys {
                let (Some(s), Some(o)) = (entity::lookup(c, from)?, entity::lookup(c, to)?) else {
                    continue;
                };
                if let Some(id) = relation::find(c, s, predicate, o)?
                    && relation::remove(c, id, ctx)?
                {
                    deleted += 1;
                }
            }
            Ok(deleted)
        })
    }

    /// The whole graph (`page` = `None`, as the reference server does), or one page of
    /// entities in id order with the relations whose subject is on the page — so every
    /// relation appears on exactly one page. `next_cursor` is set while more entities
    /// follow.
    pub fn read_graph(&self, page: Option<&Page>) -> Result<KgGraph> {
        let (after, limit) = match page {
            None => (None, usize::MAX),
            Some(p) => (parse_cursor(p.cursor.as_deref())?, p.limit.max(1)),
        };
        self.memory.db().snapshot(|c| {
            let mut entities = entity::list(c, after, limit.saturating_add(1))?;
            let next_cursor = (entities.len() > limit).then(|| {
                entities.truncate(limit);
                entities.last().map(|e| e.id.to_string())
            });
            let mut graph = KgGraph {
                next_cursor: next_cursor.flatten(),
                ..KgGraph::default()
            };
            for e in entities {
                for r in relation::of_entity(c, e.id, Direction::Outgoing)? {
                    graph.relations.push(kg_relation(r));
                }
                graph.entities.push(kg_entity(c, e)?);
            }
            Ok(graph)
        })
    }

    /// The entities reached by `names` (any spelling; unknown names are skipped), with
    /// every relation that has at least one end among them, as the reference server
    /// answers (so `open_nodes(["Alice"])` shows "Bob knows Alice"), at most
    /// [`KnowledgeGraph::MAX_NODE_RELATIONS`].
    pub fn open_nodes(&self, names: &[String]) -> Result<KgGraph> {
        let keys = validate_each(names, |n| entity_key(n))?;
        self.memory.db().snapshot(|c| {
            let mut ids = Vec::new();
            for key in &keys {
                if let Some(id) = entity::lookup(c, key)?
                    && !ids.contains(&id)
                {
                    ids.push(id);
                }
            }
            subgraph(c, &ids)
        })
    }

    /// Up to `limit` entities, ranked by cairn's hybrid search over their names, types
    /// and observations (and the relations that connect them), with every relation that
    /// has at least one end among them (at most [`KnowledgeGraph::MAX_NODE_RELATIONS`]);
    /// an entity the query names exactly (its name or an alias) comes first. Sees every write committed before the call. A limit over
    /// [`KnowledgeGraph::MAX_SEARCH_LIMIT`] is refused.
    pub fn search_nodes(&self, query: &str, limit: usize) -> Result<KgGraph> {
        if limit > Self::MAX_SEARCH_LIMIT {
            return Err(Error::invalid_input(
                "limit",
                format!("{limit} is over the maximum of {}", Self::MAX_SEARCH_LIMIT),
            ));
        }
        let limit = limit.max(1);
        let options = SearchOptions::new()
            .limit(limit.saturating_mul(2))
            .kinds(&[HitKind::Entity, HitKind::Observation, HitKind::Relation])
            .read_your_writes(true);
        let hits = self.memory.search(query, &options)?;
        self.memory.db().snapshot(|c| {
            let mut ids: Vec<EntityId> = Vec::new();
            let mut push = |id: EntityId| {
                if ids.len() < limit && !ids.contains(&id) {
                    ids.push(id);
                }
            };
            // The search ranks it first among its own hits, but a relation that names
            // it twice with a neighbour may fuse above it, and would push the neighbour.
            if let Ok(key) = normalize_name(query)
                && let Some(id) = entity::lookup(c, &key)?
            {
                push(id);
            }
            for hit in &hits {
                match hit.target {
                    Target::Entity(id) => push(id),
                    Target::Observation(id) => {
                        if let Some(owner) = observation_owner(c, id)? {
                            push(owner);
                        }
                    }
                    Target::Relation(id) => {
                        if let Some(r) = relation::get(c, id)? {
                            push(r.subject);
                            push(r.object);
                        }
                    }
                    _ => {}
                }
            }
            subgraph(c, &ids)
        })
    }
}

fn parse_cursor(cursor: Option<&str>) -> Result<Option<EntityId>> {
    cursor
        .map(|s| {
            s.parse::<i64>().map(EntityId::from_raw).map_err(|_| {
                Error::invalid_input(
                    "cursor",
                    format!("{s:?} is not a cursor read_graph returned"),
                )
            })
        })
        .transpose()
}

fn stored_entity(c: &Connection, id: EntityId) -> Result<crate::Entity> {
    entity::get(c, id)?.ok_or_else(|| Error::not_found("entity", id))
}

fn set_kind_if_unset(c: &Connection, id: EntityId, kind: &str, ctx: &WriteCtx) -> Result<()> {
    if stored_entity(c, id)?.kind.is_none() {
        entity::update(c, id, Some(kind), None, ctx)?;
    }
    Ok(())
}

fn observation_owner(c: &Connection, id: ObservationId) -> Result<Option<EntityId>> {
    use rusqlite::OptionalExtension;
    Ok(
        c.prepare_cached("SELECT entity_id FROM observation WHERE id = ?1")?
            .query_row([id], |r| r.get(0))
            .optional()?,
    )
}

fn kg_entity(c: &Connection, e: crate::Entity) -> Result<KgEntity> {
    let observations = observation::of_entity(c, e.id)?
        .into_iter()
        .map(|o| o.text)
        .collect();
    Ok(KgEntity {
        name: e.name,
        entity_type: e.kind.unwrap_or_default(),
        observations,
    })
}

fn kg_relation(r: crate::Relation) -> KgRelation {
    KgRelation {
        from: r.subject_name,
        to: r.object_name,
        relation_type: r.predicate,
    }
}

/// `ids` as entities, in order, with the relations that have at least one end among
/// them (bounded by [`KnowledgeGraph::MAX_NODE_RELATIONS`]).
fn subgraph(c: &Connection, ids: &[EntityId]) -> Result<KgGraph> {
    let mut graph = KgGraph::default();
    for &id in ids {
        if let Some(e) = entity::get(c, id)? {
            graph.entities.push(kg_entity(c, e)?);
        }
    }
    let (relations, truncated) = relation::touching(c, ids, KnowledgeGraph::MAX_NODE_RELATIONS)?;
    graph.relations = relations.into_iter().map(kg_relation).collect();
    graph.relations_truncated = truncated;
    Ok(graph)
}
