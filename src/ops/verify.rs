//! `Memory::verify`: is the file good, and does the index agree with it?
//!
//! SQLite's own checks (`quick_check` or `integrity_check`, `foreign_key_check`), cairn's
//! invariants, and the derived index against the file. Tables cairn does not own (a
//! replication tool's `_litestream_seq`, say) are listed, not counted as problems.

use rusqlite::Connection;
use serde::Serialize;

use crate::db::Db;
use crate::db::migrate::{APPLICATION_ID, SCHEMA_VERSION};
use crate::error::{Error, Result};
use crate::index::repair::DamageKind;
use crate::index::schema::DocKind;
use crate::memory::Memory;
use crate::normalize::normalize_name;

/// How thorough [`Memory::verify`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub enum VerifyMode {
    /// For open time: `PRAGMA quick_check`, the file's identity and schema version, and
    /// the index position. Reads each page once, skips index-content checks.
    Quick,
    /// Everything: `integrity_check`, `foreign_key_check`, cairn's invariants, and the
    /// index's documents per kind against the file's rows.
    Full,
}

/// One thing [`Memory::verify`] found wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// Which check found it (`integrity_check`, `alias_entity`, `index_counts`...).
    pub check: &'static str,
    /// What is wrong.
    pub detail: String,
}

/// What [`Memory::verify`] checked and found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// The mode it ran in.
    pub mode: VerifyMode,
    /// `PRAGMA user_version` of the file.
    pub schema_version: i64,
    /// The newest change-log `seq`.
    pub last_seq: i64,
    /// The last `seq` the search index reflects (never more than `last_seq`).
    pub index_seq: i64,
    /// Whether the index's documents per kind were compared with the file's rows (only
    /// when the index had caught up; writers running during `verify` can prevent it).
    pub index_compared: bool,
    /// Tables in the file that are not cairn's (tolerated).
    pub foreign_tables: Vec<String>,
    /// Everything found wrong; empty when the memory is good.
    pub problems: Vec<Problem>,
}

impl VerifyReport {
    /// True when nothing was found wrong.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }

    /// The report for a file that could not be opened because it is damaged (SQLite
    /// cannot read it: garbage bytes, a malformed image), as a `check` of that file
    /// reports it; `None` when `error` says nothing about the file's state (busy, a
    /// missing folder, an invalid option...).
    pub fn unreadable(mode: VerifyMode, error: &Error) -> Option<VerifyReport> {
        let damaged = match error {
            Error::NotADatabase { .. } => true,
            Error::Sqlite { source: e, .. } => matches!(
                e.sqlite_error_code(),
                Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase)
            ),
            _ => false,
        };
        damaged.then(|| VerifyReport {
            mode,
            schema_version: 0,
            last_seq: 0,
            index_seq: 0,
            index_compared: false,
            foreign_tables: Vec::new(),
            problems: vec![Problem {
                check: "sqlite_file",
                detail: error.to_string(),
            }],
        })
    }
}

/// cairn's tables (and SQLite's own); anything else in `sqlite_schema` is foreign.
const OWN_TABLES: &[&str] = &[
    "meta",
    "episode",
    "entity",
    "alias",
    "relation",
    "observation",
    "change",
    "document",
    "chunk",
    "mention",
    "vector",
    "sqlite_sequence",
    "sqlite_stat1",
];

/// Invariants as queries that count violations.
const INVARIANTS: &[(&str, &str)] = &[
    (
        "alias_entity",
        "SELECT count(*) FROM alias a LEFT JOIN entity e ON e.id = a.entity_id WHERE e.id IS NULL",
    ),
    (
        "entity_alias",
        "SELECT count(*) FROM entity e WHERE NOT EXISTS (SELECT 1 FROM alias a WHERE a.entity_id = e.id)",
    ),
    (
        "relation_ends",
        "SELECT count(*) FROM relation r WHERE NOT EXISTS (SELECT 1 FROM entity WHERE id = r.subject_id)
                                          OR NOT EXISTS (SELECT 1 FROM entity WHERE id = r.object_id)",
    ),
    (
        "observation_entity",
        "SELECT count(*) FROM observation o LEFT JOIN entity e ON e.id = o.entity_id WHERE e.id IS NULL",
    ),
    ("change_seq", "SELECT count(*) FROM change WHERE seq <= 0"),
    (
        "relation_mentions",
        "SELECT count(*) FROM relation WHERE mentions < 1",
    ),
];

impl Memory {
    /// Checks the file and the index (see [`VerifyMode`]). Problems are reported, not
    /// returned as errors; an `Err` means the check itself could not run.
    ///
    /// ```
    /// let memory = cairn::Memory::ephemeral()?;
    /// memory.add_triple(("Acme Corp", "acquired", "Widget Inc"))?;
    /// let report = memory.verify(cairn::VerifyMode::Full)?;
    /// assert!(report.is_ok(), "{:?}", report.problems);
    /// assert!(report.index_compared);
    /// # Ok::<(), cairn::Error>(())
    /// ```
    pub fn verify(&self, mode: VerifyMode) -> Result<VerifyReport> {
        let mut synced = Ok(());
        if mode == VerifyMode::Full && !self.options().read_only {
            // Counts can only be compared once the index reflects the whole log.
            synced = self.sync();
        }
        let mut report = self.db().snapshot(|c| check_file(c, mode))?;
        match synced {
            // Writers kept the index behind: try again later.
            Err(e) if e.is_retryable() => return Err(e),
            // The index could not be built from the file (a malformed page, say): that is
            // the file's damage, reported with the checks that name it.
            Err(e) => report.problems.push(Problem {
                check: "index_build",
                detail: e.to_string(),
            }),
            Ok(()) => {}
        }
        self.check_index(mode, &mut report)?;
        Ok(report)
    }

    fn check_index(&self, mode: VerifyMode, report: &mut VerifyReport) -> Result<()> {
        // Damage is repaired as soon as it is found, often by this very open: the report
        // still names it, since something damaged the folder (or replaced the file).
        for damage in self.search_index().damage_found() {
            report.problems.push(Problem {
                check: match damage.kind {
                    DamageKind::Broken => "index_damage",
                    DamageKind::OtherHistory => "index_history",
                },
                detail: damage.detail,
            });
        }
        let census = match self.search_index().census() {
            // Still rebuilding (a quick check does not wait): reported above.
            Err(e) if e.is_index_rebuilding() => return Ok(()),
            other => other?,
        };
        let crate::index::Census {
            counts,
            before,
            after,
        } = census;
        report.index_seq = after;
        if after > report.last_seq {
            report.problems.push(Problem {
                check: "index_seq",
                detail: format!(
                    "the index reflects change {after}, but the file's log ends at {}",
                    report.last_seq
                ),
            });
        }
        if mode == VerifyMode::Quick || before != after {
            return Ok(());
        }
        // Row counts at the index's position: re-read in a snapshot, which may be newer
        // than `after` if a write landed since; then the comparison is skipped.
        let rows = self.db().snapshot(|c| {
            let last: i64 =
                c.query_row("SELECT coalesce(max(seq), 0) FROM change", [], |r| r.get(0))?;
            let mut rows = Vec::new();
            for kind in DocKind::all() {
                let n: i64 = c.query_row(
                    &format!("SELECT count(*) FROM {}", kind.as_str()),
                    [],
                    |r| r.get(0),
                )?;
                rows.push((kind, n.max(0) as u64));
            }
            Ok((last, rows))
        })?;
        if rows.0 != after {
            return Ok(());
        }
        report.index_compared = true;
        for ((kind, indexed), (_, stored)) in counts.iter().zip(&rows.1) {
            if indexed != stored {
                report.problems.push(Problem {
                    check: "index_counts",
                    detail: format!(
                        "{} {}s in the file, {indexed} in the index",
                        stored,
                        kind.as_str()
                    ),
                });
            }
        }
        Ok(())
    }
}

/// The file's part of [`Memory::verify`] (SQLite's checks, identity, schema version and,
/// in [`VerifyMode::Full`], cairn's invariants) on a database opened without its index:
/// for a fleet migration, where building every tenant's index would cost more than the
/// migration (the index is derived and built at the tenant's next open).
pub(crate) fn verify_file(db: &Db, mode: VerifyMode) -> Result<VerifyReport> {
    db.snapshot(|c| check_file(c, mode))
}

fn check_file(c: &Connection, mode: VerifyMode) -> Result<VerifyReport> {
    let schema_version: i64 = c.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let application_id: i64 = c.query_row("PRAGMA application_id", [], |r| r.get(0))?;
    let last_seq: i64 =
        c.query_row("SELECT coalesce(max(seq), 0) FROM change", [], |r| r.get(0))?;
    let mut report = VerifyReport {
        mode,
        schema_version,
        last_seq,
        index_seq: 0,
        index_compared: false,
        foreign_tables: foreign_tables(c)?,
        problems: Vec::new(),
    };
    let mut problem = |check: &'static str, detail: String| {
        report.problems.push(Problem { check, detail });
    };
    if schema_version != SCHEMA_VERSION {
        problem(
            "schema_version",
            format!("version {schema_version}; this cairn writes {SCHEMA_VERSION}"),
        );
    }
    if application_id != APPLICATION_ID {
        problem(
            "application_id",
            format!("{application_id:#x}, not cairn's {APPLICATION_ID:#x}"),
        );
    }
    let pragma = match mode {
        VerifyMode::Quick => "quick_check",
        VerifyMode::Full => "integrity_check",
    };
    for line in pragma_lines(c, &format!("PRAGMA {pragma}"))? {
        if line != "ok" {
            problem("integrity_check", line);
        }
    }
    if mode == VerifyMode::Full {
        check_full(c, &mut problem)?;
    }
    Ok(report)
}

fn check_full(c: &Connection, problem: &mut impl FnMut(&'static str, String)) -> Result<()> {
    let mut stmt = c.prepare("PRAGMA foreign_key_check")?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let table: String = row.get(0)?;
        let rowid: Option<i64> = row.get(1)?;
        let parent: String = row.get(2)?;
        problem(
            "foreign_key_check",
            format!("{table} row {rowid:?} points to a missing {parent} row"),
        );
    }
    for (check, sql) in INVARIANTS {
        let n: i64 = c.query_row(sql, [], |r| r.get(0))?;
        if n > 0 {
            problem(check, format!("{n} rows break it"));
        }
    }
    // Every entity is reached by its own display name.
    let mut stmt = c.prepare(
        "SELECT e.id, e.name, a.entity_id FROM entity e LEFT JOIN alias a ON a.key = ?1 WHERE e.id = ?2",
    )?;
    let mut names = c.prepare("SELECT id, name FROM entity ORDER BY id")?;
    let entities = names
        .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    for (id, name) in entities {
        let owner: Option<i64> = match normalize_name(&name) {
            Ok(key) => stmt.query_row(rusqlite::params![key, id], |r| r.get(2))?,
            Err(e) => {
                problem("entity_name", format!("entity {id}: {e}"));
                continue;
            }
        };
        if owner != Some(id) {
            problem(
                "entity_name",
                format!("entity {id} ({name:?}) is not reached by its own name"),
            );
        }
    }
    Ok(())
}

fn pragma_lines(c: &Connection, sql: &str) -> Result<Vec<String>> {
    let mut stmt = c.prepare(sql)?;
    let lines = stmt
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(lines)
}

fn foreign_tables(c: &Connection) -> Result<Vec<String>> {
    let mut stmt =
        c.prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")?;
    let tables = stmt
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(tables
        .into_iter()
        .filter(|t| !OWN_TABLES.contains(&t.as_str()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::Memory;

    #[test]
    fn a_good_memory_verifies_in_both_modes() {
        let memory = Memory::ephemeral().unwrap();
        memory.add_triple(("A", "r", "B")).unwrap();
        memory.observe("A", "fact").unwrap();
        for mode in [VerifyMode::Quick, VerifyMode::Full] {
            let report = memory.verify(mode).unwrap();
            assert!(report.is_ok(), "{mode:?}: {:?}", report.problems);
            assert_eq!(report.last_seq, 4);
        }
    }

    #[test]
    fn broken_invariants_and_foreign_tables_are_reported() {
        let memory = Memory::ephemeral().unwrap();
        memory.add_triple(("A", "r", "B")).unwrap();
        memory.sync().unwrap();
        // Another program, without cairn's rules and with foreign keys off.
        let other = rusqlite::Connection::open(memory.path()).unwrap();
        other
            .execute_batch(
                "PRAGMA foreign_keys = OFF;
                 CREATE TABLE _litestream_seq (id INTEGER PRIMARY KEY, seq INTEGER);
                 UPDATE alias SET key = 'somebody else' WHERE name = 'A';
                 INSERT INTO relation(subject_id, predicate, predicate_key, object_id, first_seen, last_seen)
                 VALUES (1, 'x', 'x', 999, 0, 0);",
            )
            .unwrap();
        drop(other);
        let report = memory.verify(VerifyMode::Full).unwrap();
        assert_eq!(report.foreign_tables, ["_litestream_seq"]);
        let checks: Vec<&str> = report.problems.iter().map(|p| p.check).collect();
        for expected in ["foreign_key_check", "relation_ends", "entity_name"] {
            assert!(checks.contains(&expected), "{expected} in {checks:?}");
        }
        assert!(!report.is_ok());
    }
}
