//! What callers hand to write calls, and its validated form.
//!
//! Validation (normalizing names, checking texts and time ranges) happens here, before
//! any lock is taken; the write path only ever sees [`ValidTriple`] and friends.

use std::borrow::Cow;

use crate::error::{Error, Result};
use crate::id::EntityId;
use crate::normalize::{display_name, is_refused, normalize_name, normalize_predicate};
use crate::time::Timestamp;

/// The longest observation text accepted, in bytes.
pub const MAX_OBSERVATION_BYTES: usize = 64 * 1024;

/// An entity named by id, or by any of its names (found or created on write).
///
/// ```
/// use cairn::{EntityId, EntityRef};
/// let by_name: EntityRef = "Acme Corp".into();
/// let by_id: EntityRef = EntityId::from_raw(1).into();
/// # let _ = (by_name, by_id);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntityRef<'a> {
    /// An existing entity.
    Id(EntityId),
    /// A name; normalized before lookup.
    Name(Cow<'a, str>),
}

impl From<EntityId> for EntityRef<'_> {
    fn from(id: EntityId) -> Self {
        EntityRef::Id(id)
    }
}

impl<'a> From<&'a str> for EntityRef<'a> {
    fn from(name: &'a str) -> Self {
        EntityRef::Name(Cow::Borrowed(name))
    }
}

impl<'a> From<&'a String> for EntityRef<'a> {
    fn from(name: &'a String) -> Self {
        EntityRef::Name(Cow::Borrowed(name))
    }
}

impl From<String> for EntityRef<'_> {
    fn from(name: String) -> Self {
        EntityRef::Name(Cow::Owned(name))
    }
}

/// A knowledge triple, subject –predicate→ object, with optional validity.
///
/// ```
/// use cairn::{Timestamp, Triple};
/// let t = Triple::new("Acme Corp", "acquired", "Widget Inc")
///     .valid_from(Timestamp::from_millis(1_700_000_000_000));
/// let same: Triple = ("Acme Corp", "acquired", "Widget Inc").into();
/// # let _ = (t, same);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Triple<'a> {
    subject: EntityRef<'a>,
    predicate: Cow<'a, str>,
    object: EntityRef<'a>,
    valid_from: Option<Timestamp>,
    valid_to: Option<Timestamp>,
}

impl<'a> Triple<'a> {
    /// A triple between two entities given by name or id.
    pub fn new(
        subject: impl Into<EntityRef<'a>>,
        predicate: impl Into<Cow<'a, str>>,
        object: impl Into<EntityRef<'a>>,
    ) -> Self {
        Triple {
            subject: subject.into(),
            predicate: predicate.into(),
            object: object.into(),
            valid_from: None,
            valid_to: None,
        }
    }

    /// The fact holds from this time on.
    pub fn valid_from(mut self, at: Timestamp) -> Self {
        self.valid_from = Some(at);
        self
    }

    /// The fact holds until this time.
    pub fn valid_to(mut self, at: Timestamp) -> Self {
        self.valid_to = Some(at);
        self
    }

    pub(crate) fn validate(&self) -> Result<ValidTriple> {
        if let (Some(from), Some(to)) = (self.valid_from, self.valid_to)
            && from > to
        {
            return Err(Error::invalid_input(
                "validity",
                format!(
                    "valid_from {} is after valid_to {}",
                    from.as_millis(),
                    to.as_millis()
                ),
            ));
        }
        Ok(ValidTriple {
            subject: ValidRef::new(&self.subject).map_err(|e| e.for_name("subject"))?,
            predicate: ValidName::predicate(&self.predicate)?,
            object: ValidRef::new(&self.object).map_err(|e| e.for_name("object"))?,
            valid_from: self.valid_from,
            valid_to: self.valid_to,
        })
    }
}

impl<'a, S, O> From<(S, &'a str, O)> for Triple<'a>
where
    S: Into<EntityRef<'a>>,
    O: Into<EntityRef<'a>>,
{
    fn from((subject, predicate, object): (S, &'a str, O)) -> Self {
        Triple::new(subject, predicate, object)
    }
}

/// A name with its key, checked.
#[derive(Debug, Clone)]
pub(crate) struct ValidName {
    pub(crate) display: String,
    pub(crate) key: String,
}

impl ValidName {
    pub(crate) fn entity(name: &str) -> Result<Self> {
        let key = normalize_name(name)?;
        Ok(ValidName {
            display: display_name(name).to_owned(),
            key,
        })
    }

    pub(crate) fn predicate(name: &str) -> Result<Self> {
        let key = normalize_predicate(name)?;
        Ok(ValidName {
            display: display_name(name).to_owned(),
            key,
        })
    }
}

/// An entity reference, checked.
#[derive(Debug, Clone)]
pub(crate) enum ValidRef {
    Id(EntityId),
    Name(ValidName),
}

impl ValidRef {
    pub(crate) fn new(r: &EntityRef<'_>) -> Result<Self> {
        Ok(match r {
            EntityRef::Id(id) => ValidRef::Id(*id),
            EntityRef::Name(name) => ValidRef::Name(ValidName::entity(name)?),
        })
    }
}

#[derive(Debug, Clone)]
pub(crate) struct ValidTriple {
    pub(crate) subject: ValidRef,
    pub(crate) predicate: ValidName,
    pub(crate) object: ValidRef,
    pub(crate) valid_from: Option<Timestamp>,
    pub(crate) valid_to: Option<Timestamp>,
}

/// Checks an observation text and returns what is stored: the text, trimmed.
pub(crate) fn observation_text(text: &str) -> Result<&str> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(Error::invalid_input("observation", "the text is empty"));
    }
    check_text("observation", trimmed, MAX_OBSERVATION_BYTES)?;
    Ok(trimmed)
}

/// Checks a free-text field (entity kind or summary, episode agent or source): bounded,
/// and free of NUL, which SQLite text and C callers would truncate at.
/// [`check_text`] for a one-line label (an agent id, a source, a key): no control
/// characters and no bidirectional reordering either, as for names.
pub(crate) fn check_label(what: &'static str, text: &str, max: usize) -> Result<()> {
    check_text(what, text, max)?;
    match text
        .chars()
        .find(|&c| is_refused(c) || c == '\n' || c == '\r')
    {
        Some(c) => Err(Error::invalid_input(
            what,
            format!("it contains the control character {c:?}"),
        )),
        None => Ok(()),
    }
}

pub(crate) fn check_text(what: &'static str, text: &str, max: usize) -> Result<()> {
    if text.len() > max {
        return Err(Error::invalid_input(
            what,
            format!("{} bytes; the limit is {max}", text.len()),
        ));
    }
    if text.contains('\0') {
        return Err(Error::invalid_input(what, "it contains a NUL character"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triples_validate_every_part() {
        assert!(Triple::new("a", "b", "c").validate().is_ok());
        assert!(Triple::new("", "b", "c").validate().is_err());
        assert!(Triple::new("a", " - ", "c").validate().is_err());
        assert!(Triple::new("a", "b", "\u{1}").validate().is_err());
        let backwards = Triple::new("a", "b", "c")
            .valid_from(Timestamp::from_millis(10))
            .valid_to(Timestamp::from_millis(5));
        assert!(matches!(
            backwards.validate(),
            Err(Error::InvalidInput {
                what: "validity",
                ..
            })
        ));
    }

    #[test]
    fn observation_texts_are_trimmed_and_bounded() {
        assert_eq!(observation_text("  likes tea \n").unwrap(), "likes tea");
        assert!(observation_text(" \n ").is_err());
        assert!(observation_text("a\0b").is_err());
        assert!(observation_text(&"x".repeat(MAX_OBSERVATION_BYTES + 1)).is_err());
    }
}
