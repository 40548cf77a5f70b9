//! The commands that change what is stored: `delete`, `merge`, `rename`, `alias` and
//! `invalidate`. Each runs as one transaction that records its episode, resolves the names
//! it was given (through the library's normalization) and makes the change: a name that
//! does not exist is not found (exit 3) and nothing, not even the episode, is written.

use cairn::{Direction, DocumentId, Entity, EntityId, Error, Memory, Relation, Timestamp};
use serde::Serialize;

use crate::output::{count, emit, iso};
use crate::store::Store;
use crate::{Author, DeleteWhat, Failure};

/// Runs `f` in one transaction on a handle whose writes point to `author`'s episode.
fn edit<T>(
    store: &Store,
    author: &Author,
    f: impl FnOnce(&Memory) -> cairn::Result<T>,
) -> Result<T, Failure> {
    let memory = store.open_existing()?;
    let episode = author.episode();
    Ok(memory.transaction(|| f(&memory.episode(&episode)?))?)
}

/// The entity `name` reaches; not found names it.
fn entity(memory: &Memory, name: &str) -> cairn::Result<Entity> {
    let missing = || Error::NotFound {
        what: "entity",
        key: format!("{name:?}"),
    };
    let id = memory.resolve(name)?.ok_or_else(missing)?;
    memory.entity(id)?.ok_or_else(missing)
}

/// The relation `subject –predicate→ object`; not found names whichever part is missing.
fn relation(memory: &Memory, (subject, predicate, object): Names<'_>) -> cairn::Result<Relation> {
    entity(memory, subject)?;
    entity(memory, object)?;
    let missing = || Error::NotFound {
        what: "relation",
        key: format!("{subject:?} –{predicate}→ {object:?}"),
    };
    let id = memory
        .find_relation(subject, predicate, object)?
        .ok_or_else(missing)?;
    memory.relation(id)?.ok_or_else(missing)
}

/// A triple given by names, as on the command line.
pub(crate) type Names<'a> = (&'a str, &'a str, &'a str);

fn triple_text(r: &Relation) -> String {
    format!(
        "{} –{}→ {} (relation {})",
        r.subject_name, r.predicate, r.object_name, r.id
    )
}

pub(crate) fn delete(store: &Store, json: bool, what: &DeleteWhat) -> Result<(), Failure> {
    match what {
        DeleteWhat::Entity { name, author } => delete_entity(store, json, name, author),
        DeleteWhat::Relation {
            subject,
            predicate,
            object,
            author,
        } => {
            let names = (subject.as_str(), predicate.as_str(), object.as_str());
            let deleted = edit(store, author, |m| {
                let r = relation(m, names)?;
                m.remove_relation(r.id)?;
                Ok(r)
            })?;
            #[derive(Serialize)]
            struct Out {
                deleted: &'static str,
                relation: Relation,
            }
            let out = Out {
                deleted: "relation",
                relation: deleted,
            };
            emit(json, &out, |o| {
                format!("deleted {}", triple_text(&o.relation))
            })
        }
        DeleteWhat::Observation {
            entity: name,
            text,
            author,
        } => {
            let (owner, id) = edit(store, author, |m| {
                let owner = entity(m, name)?;
                let id = m
                    .find_observation(owner.id, text)?
                    .ok_or_else(|| Error::NotFound {
                        what: "observation",
                        key: format!("{:?} on {:?}", text.trim(), owner.name),
                    })?;
                m.remove_observation(id)?;
                Ok((owner, id))
            })?;
            #[derive(Serialize)]
            struct Out<'a> {
                deleted: &'static str,
                id: i64,
                entity: Entity,
                text: &'a str,
            }
            let out = Out {
                deleted: "observation",
                id: id.get(),
                entity: owner,
                text: text.trim(),
            };
            emit(json, &out, |o| {
                format!(
                    "deleted observation {} of {}: {}",
                    o.id, o.entity.name, o.text
                )
            })
        }
        DeleteWhat::Document { id, author } => {
            let document = DocumentId::from_raw(*id);
            let chunks = edit(store, author, |m| {
                let chunks = m.chunks(document)?.len();
                if !m.delete_document(document)? {
                    return Err(Error::NotFound {
                        what: "document",
                        key: id.to_string(),
                    });
                }
                Ok(chunks)
            })?;
            #[derive(Serialize)]
            struct Out {
                deleted: &'static str,
                id: i64,
                chunks: usize,
            }
            let out = Out {
                deleted: "document",
                id: *id,
                chunks,
            };
            emit(json, &out, |o| {
                format!("deleted document {} ({})", o.id, count(o.chunks, "chunk"))
            })
        }
    }
}

fn delete_entity(store: &Store, json: bool, name: &str, author: &Author) -> Result<(), Failure> {
    #[derive(Serialize)]
    struct Out {
        deleted: &'static str,
        entity: Entity,
        relations: usize,
        observations: usize,
    }
    let out = edit(store, author, |m| {
        let e = entity(m, name)?;
        let out = Out {
            deleted: "entity",
            relations: m.relations(e.id, Direction::Both)?.len(),
            observations: m.observations(e.id)?.len(),
            entity: e,
        };
        m.delete_entity(out.entity.id)?;
        Ok(out)
    })?;
    emit(json, &out, |o| {
        format!(
            "deleted {} (entity {}) with {} and {}",
            o.entity.name,
            o.entity.id,
            count(o.relations, "relation"),
            count(o.observations, "observation")
        )
    })
}

/// An entity after an edit, with every name that reaches it.
#[derive(Serialize)]
struct Edited {
    entity: Entity,
    aliases: Vec<String>,
}

impl Edited {
    fn read(memory: &Memory, id: EntityId) -> cairn::Result<Edited> {
        let entity = memory.entity(id)?.ok_or(Error::NotFound {
            what: "entity",
            key: id.to_string(),
        })?;
        let aliases = memory.aliases(id)?.into_iter().map(|a| a.name).collect();
        Ok(Edited { entity, aliases })
    }

    fn text(&self) -> String {
        format!(
            "{} (entity {}); names: {}",
            self.entity.name,
            self.entity.id,
            self.aliases.join(", ")
        )
    }
}

pub(crate) fn merge(
    store: &Store,
    json: bool,
    keep: &str,
    absorb: &str,
    author: &Author,
) -> Result<(), Failure> {
    #[derive(Serialize)]
    struct Out {
        absorbed: Entity,
        #[serde(flatten)]
        kept: Edited,
    }
    let out = edit(store, author, |m| {
        let (kept, absorbed) = (entity(m, keep)?, entity(m, absorb)?);
        m.merge(kept.id, absorbed.id)?;
        Ok(Out {
            absorbed,
            kept: Edited::read(m, kept.id)?,
        })
    })?;
    emit(json, &out, |o| {
        format!(
            "merged {} (entity {}) into {}",
            o.absorbed.name,
            o.absorbed.id,
            o.kept.text()
        )
    })
}

pub(crate) fn rename(
    store: &Store,
    json: bool,
    name: &str,
    new_name: &str,
    author: &Author,
) -> Result<(), Failure> {
    #[derive(Serialize)]
    struct Out {
        old_name: String,
        #[serde(flatten)]
        renamed: Edited,
    }
    let out = edit(store, author, |m| {
        let e = entity(m, name)?;
        m.rename(e.id, new_name)?;
        Ok(Out {
            old_name: e.name,
            renamed: Edited::read(m, e.id)?,
        })
    })?;
    emit(json, &out, |o| {
        format!("renamed {} to {}", o.old_name, o.renamed.text())
    })
}

pub(crate) fn alias(
    store: &Store,
    json: bool,
    name: &str,
    alias: &str,
    author: &Author,
) -> Result<(), Failure> {
    #[derive(Serialize)]
    struct Out {
        added: bool,
        #[serde(flatten)]
        entity: Edited,
    }
    let out = edit(store, author, |m| {
        let e = entity(m, name)?;
        let added = m.add_alias(e.id, alias)?;
        Ok(Out {
            added,
            entity: Edited::read(m, e.id)?,
        })
    })?;
    emit(json, &out, |o| {
        let verb = if o.added { "added" } else { "already had" };
        format!("{verb} the name {alias:?}: {}", o.entity.text())
    })
}

pub(crate) fn invalidate(
    store: &Store,
    json: bool,
    names: Names<'_>,
    at: Timestamp,
    author: &Author,
) -> Result<(), Failure> {
    let relation: Relation = edit(store, author, |m| {
        let r = relation(m, names)?;
        m.invalidate(r.id, at)?;
        m.relation(r.id)?.ok_or(Error::NotFound {
            what: "relation",
            key: r.id.to_string(),
        })
    })?;
    emit(json, &relation, |r| {
        let until = r.valid_to.map_or_else(String::new, iso);
        format!("{} no longer holds from {until}", triple_text(r))
    })
}
