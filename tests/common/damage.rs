//! A memory's derived index on disk: where its files are, and a filled memory to damage.
//! Shared by `tests/index_damage.rs` and the CLI's `cli/tests/check.rs`.

use std::path::{Path, PathBuf};

use cairn::Unit;

/// `<file>.index`: the folder holding the file's index.
pub fn index_folder(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(".index");
    PathBuf::from(name)
}

/// The damaged folders kept beside `db`.
pub fn damaged_folders(db: &Path) -> Vec<PathBuf> {
    let prefix = format!("{}.damaged-", index_folder(db).display());
    std::fs::read_dir(db.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().starts_with(&prefix))
        .collect()
}

/// Every file of the index (the schema folders inside `<file>.index`).
pub fn index_files(db: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for schema in std::fs::read_dir(index_folder(db)).unwrap() {
        let schema = schema.unwrap().path();
        if schema.is_dir() {
            files.extend(
                std::fs::read_dir(schema)
                    .unwrap()
                    .map(|e| e.unwrap().path()),
            );
        }
    }
    assert!(!files.is_empty(), "no index files beside {}", db.display());
    files
}

pub fn index_file_named(db: &Path, name: &str) -> PathBuf {
    index_files(db)
        .into_iter()
        .find(|p| p.file_name().is_some_and(|n| n == name))
        .unwrap_or_else(|| panic!("no {name} in the index of {}", db.display()))
}

pub fn index_files_ending(db: &Path, ext: &str) -> Vec<PathBuf> {
    let files: Vec<PathBuf> = index_files(db)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    assert!(!files.is_empty(), "no .{ext} file in the index");
    files
}

/// A memory with facts, a document and several index commits (several segments), closed.
pub fn filled(dir: &Path) -> PathBuf {
    let path = dir.join("m.db");
    let memory = super::options().open(&path).unwrap();
    memory
        .add_triple(("Lighthouse Keeper", "lives in", "Vardo"))
        .unwrap();
    memory.sync().unwrap();
    memory
        .add_units(
            "logbook",
            &[Unit::new("the keeper lit the lamp during the storm")],
        )
        .unwrap();
    memory.sync().unwrap();
    for i in 0..5 {
        memory
            .add_triple((format!("Sailor {i}").as_str(), "visited", "Vardo"))
            .unwrap();
        memory.sync().unwrap();
    }
    drop(memory);
    path
}
