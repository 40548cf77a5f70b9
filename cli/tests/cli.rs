//! The `cairn` binary: every subcommand against a temporary file, exit codes, and the
//! memory.jsonl migration round trip.

#[path = "../../tests/common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn cairn(db: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cairn"))
        .arg("--db")
        .arg(db)
        .args(args)
        .env_remove("CAIRN_DB")
        .env_remove("CAIRN_MODEL")
        .env_remove("CAIRN_LOG")
        .output()
        .expect("run cairn")
}

/// Runs a command that must succeed and returns its `--json` output.
fn json(db: &Path, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let out = cairn(db, &all);
    assert!(
        out.status.success(),
        "cairn {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "cairn {args:?} printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn temp() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("memory.db");
    (dir, db)
}

#[test]
fn every_subcommand_runs() {
    let (dir, db) = temp();
    let init = json(&db, &["init"]);
    assert_eq!(init["entities"], 0);

    let added = json(
        &db,
        &[
            "add",
            "Acme Corp",
            "acquired",
            "Widget Inc",
            "--agent",
            "mail",
        ],
    );
    assert_eq!(added["subject_name"], "Acme Corp");
    assert_eq!(added["mentions"], 1);
    let again = json(&db, &["add", "ＡＣＭＥ  corp", "ACQUIRED", "widget inc"]);
    assert_eq!(again["mentions"], 2, "one triple, two mentions");

    let observed = json(
        &db,
        &[
            "observe",
            "widget inc",
            "Makes blue widgets",
            "--source",
            "m-1",
        ],
    );
    assert_eq!(observed["entity"]["name"], "Widget Inc");

    let stats = json(&db, &["stats"]);
    for (key, n) in [
        ("entities", 2),
        ("relations", 1),
        ("observations", 1),
        ("chunks", 0),
    ] {
        assert_eq!(stats[key], n, "{key} in {stats}");
    }
    // The high-water mark a moved copy is checked against: the log's last position,
    // one per change in a memory nothing was pruned from.
    assert!(stats["last_seq"].as_i64().unwrap() > 0, "{stats}");
    assert_eq!(stats["last_seq"], stats["changes"], "{stats}");

    let hits = json(&db, &["search", "blue widgets"]);
    let hits = hits.as_array().unwrap();
    assert!(!hits.is_empty());
    assert_eq!(hits[0]["kind"], "observation");
    assert!(hits[0]["why"][0]["channel"].is_string());

    let context = json(&db, &["context", "who acquired widget", "--budget", "50"]);
    assert!(context["tokens"].as_u64().unwrap() <= 50);
    assert!(
        context["context"]
            .as_str()
            .unwrap()
            .contains("Acme Corp acquired Widget Inc")
    );

    let shown = json(&db, &["show", "acme corp"]);
    assert_eq!(shown["entity"]["name"], "Acme Corp");
    assert_eq!(shown["created_by"]["agent"], "mail");
    assert_eq!(shown["relations"].as_array().unwrap().len(), 1);
    let human = cairn(&db, &["show", "ACME CORP"]);
    assert!(human.status.success());
    assert!(text(&human).contains("Acme Corp –acquired→ Widget Inc"));

    // Export both ways, to stdout and to a file, and import into a new memory.
    let stdout = cairn(&db, &["export", "--format", "memory-jsonl"]);
    assert!(stdout.status.success());
    assert_eq!(text(&stdout).lines().count(), 3, "{}", text(&stdout));
    let file = dir.path().join("export.jsonl");
    let exported = json(&db, &["export", file.to_str().unwrap()]);
    assert!(exported["lines"].as_u64().unwrap() > 3);
    let copy = dir.path().join("copy.db");
    let imported = json(&copy, &["import", file.to_str().unwrap()]);
    assert_eq!(imported["format"], "cairn");
    let rows = |mut v: Value| {
        v.as_object_mut().unwrap().remove("wal"); // the WAL is each file's own
        v
    };
    assert_eq!(rows(json(&copy, &["stats"])), rows(stats));
    let search_copy = json(&copy, &["search", "blue widgets"]);
    assert_eq!(search_copy.as_array().unwrap()[0]["kind"], "observation");
}

#[test]
fn exit_codes_tell_bad_input_from_missing_things() {
    let (dir, db) = temp();
    json(&db, &["init"]);
    let empty_name = cairn(&db, &["add", "  ", "knows", "Bob"]);
    assert_eq!(empty_name.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&empty_name.stderr).contains("invalid subject"));
    assert_eq!(json(&db, &["stats"])["entities"], 0, "nothing written");

    let unknown = cairn(&db, &["show", "Nobody"]);
    assert_eq!(unknown.status.code(), Some(3));
    let missing = cairn(&dir.path().join("typo.db"), &["stats"]);
    assert_eq!(missing.status.code(), Some(3));
    assert!(
        !dir.path().join("typo.db").exists(),
        "reading did not create it"
    );

    let usage = cairn(&db, &["add", "only one"]);
    assert_eq!(usage.status.code(), Some(2));
    let no_db = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .arg("stats")
        .env_remove("CAIRN_DB")
        .output()
        .unwrap();
    assert_eq!(no_db.status.code(), Some(2));

    // CAIRN_DB stands in for --db.
    let via_env = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(["stats", "--json"])
        .env("CAIRN_DB", &db)
        .output()
        .unwrap();
    assert!(via_env.status.success());
}

#[test]
fn a_bad_import_line_is_named_and_changes_nothing() {
    let (dir, db) = temp();
    json(&db, &["add", "A", "r", "B"]);
    let file = dir.path().join("memory.jsonl");
    std::fs::write(
        &file,
        "{\"type\":\"entity\",\"name\":\"C\",\"entityType\":\"x\",\"observations\":[]}\n\
         {\"type\":\"entity\",\"name\":\"D\",\n",
    )
    .unwrap();
    let out = cairn(&db, &["import", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("line 2"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(json(&db, &["stats"])["entities"], 2, "database unchanged");

    let skipped = json(&db, &["import", file.to_str().unwrap(), "--skip-invalid"]);
    assert_eq!(skipped["skipped"], 1);
    assert_eq!(json(&db, &["stats"])["entities"], 3);
}

#[test]
fn memory_jsonl_migrates_in_one_command() {
    let (dir, db) = temp();
    let file = dir.path().join("memory.jsonl");
    std::fs::write(
        &file,
        concat!(
            "{\"type\":\"entity\",\"name\":\"Acme Corp\",\"entityType\":\"organization\",\"observations\":[\"Founded in 1999\"]}\n",
            "{\"type\":\"entity\",\"name\":\"ａｃｍｅ corp\",\"entityType\":\"organization\",\"observations\":[\"Founded in 1999\",\"Based in Springfield\"]}\n",
            "{\"type\":\"entity\",\"name\":\"Acme Corp\",\"entityType\":\"organization\",\"observations\":[\"Founded in 1999\"]}\n",
            "{\"type\":\"relation\",\"from\":\"Acme Corp\",\"to\":\"Widget Inc\",\"relationType\":\"acquired\"}\n",
        ),
    )
    .unwrap();
    let imported = json(
        &db,
        &["import", file.to_str().unwrap(), "--format", "memory-jsonl"],
    );
    assert_eq!(imported["records"], 4);
    let out = cairn(&db, &["export", "--format", "memory-jsonl"]);
    let lines: Vec<Value> = text(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        lines,
        [
            serde_json::json!({"type":"entity","name":"Acme Corp","entityType":"organization",
                "observations":["Founded in 1999","Based in Springfield"]}),
            serde_json::json!({"type":"entity","name":"Widget Inc","entityType":"","observations":[]}),
            serde_json::json!({"type":"relation","from":"Acme Corp","to":"Widget Inc","relationType":"acquired"}),
        ]
    );
}

#[test]
fn check_backup_and_restore() {
    let (dir, db) = temp();
    json(&db, &["add", "Acme Corp", "acquired", "Widget Inc"]);
    let quick = json(&db, &["check"]);
    assert_eq!(quick["problems"], serde_json::json!([]));
    let full = json(&db, &["check", "--full"]);
    assert_eq!(full["problems"], serde_json::json!([]));
    assert_eq!(full["index_compared"], true);

    let backup = dir.path().join("backup.db");
    let report = json(&db, &["backup", backup.to_str().unwrap()]);
    assert!(report["bytes"].as_u64().unwrap() > 0);
    let restored = dir.path().join("restored.db");
    let stats = json(&restored, &["restore", backup.to_str().unwrap()]);
    assert_eq!(stats["entities"], 2);
    let hits = json(&restored, &["search", "widget"]);
    assert!(
        !hits.as_array().unwrap().is_empty(),
        "the index was rebuilt"
    );
    let over = cairn(&restored, &["restore", backup.to_str().unwrap()]);
    assert_eq!(over.status.code(), Some(2), "never restores over a file");

    // Damage the live file behind cairn's back: check --full exits 4 and says why.
    let raw = rusqlite::Connection::open(&db).unwrap();
    raw.execute_batch("PRAGMA foreign_keys = OFF; DELETE FROM entity WHERE name = 'Widget Inc';")
        .unwrap();
    drop(raw);
    let damaged = cairn(&db, &["check", "--full"]);
    assert_eq!(damaged.status.code(), Some(4));
    assert!(
        text(&damaged).contains("relation_ends"),
        "{}",
        text(&damaged)
    );
}

#[test]
fn tenants_create_list_export_drop() {
    let dir = tempfile::tempdir().unwrap();
    let tenants = dir.path().join("tenants");
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_cairn"))
            .arg("tenants")
            .arg("--dir")
            .arg(&tenants)
            .args(args)
            .arg("--json")
            .env_remove("CAIRN_DB")
            .output()
            .unwrap()
    };
    for id in ["acme", "globex"] {
        assert!(run(&["create", id]).status.success());
    }
    assert_eq!(run(&["create", "acme"]).status.code(), Some(2), "exists");
    assert_eq!(
        run(&["create", "../escape"]).status.code(),
        Some(2),
        "bad id"
    );
    let list: Value = serde_json::from_slice(&run(&["list"]).stdout).unwrap();
    assert_eq!(list, serde_json::json!(["acme", "globex"]));
    let backup = dir.path().join("acme-backup.db");
    assert!(
        run(&["export", "acme", backup.to_str().unwrap()])
            .status
            .success()
    );
    assert!(backup.exists());
    assert!(run(&["drop", "globex"]).status.success());
    assert_eq!(run(&["drop", "globex"]).status.code(), Some(3));
    let list: Value = serde_json::from_slice(&run(&["list"]).stdout).unwrap();
    assert_eq!(list, serde_json::json!(["acme"]));
}

#[test]
fn the_checkpoint_policy_is_set_once_and_shown_by_stats() {
    let (_dir, db) = temp();
    assert!(
        cairn(&db, &["--checkpoint", "replicated", "init"])
            .status
            .success()
    );
    assert!(cairn(&db, &["add", "Ann", "knows", "Bob"]).status.success());
    let stats = json(&db, &["stats"]);
    assert_eq!(stats["relations"], 1);
    assert_eq!(stats["wal"]["policy"], "replicated", "the file remembers");
    assert!(
        stats["wal"]["wal_bytes"].as_u64().unwrap() > 0,
        "the WAL is kept"
    );
    assert!(stats["wal"]["last_checkpoint_at"].is_number());
    let out = cairn(&db, &["--checkpoint", "sometimes", "stats"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

#[test]
fn a_keyed_write_repeated_is_written_once() {
    let (_dir, db) = temp();
    for _ in 0..3 {
        let added = json(&db, &["add", "Ann", "knows", "Bob", "--key", "msg-1"]);
        assert_eq!(added["mentions"], 1, "repeats with the key write nothing");
    }
    let again = json(&db, &["add", "Ann", "knows", "Bob", "--key", "msg-2"]);
    assert_eq!(again["mentions"], 2, "a new key is a new write");
    assert_eq!(json(&db, &["stats"])["episodes"], 2);
    let out = cairn(&db, &["add", "Ann", "knows", "Bob", "--key", ""]);
    assert_eq!(out.status.code(), Some(2), "an empty key is bad input");
}

#[test]
fn thirty_two_commands_start_on_a_brand_new_file() {
    // Several rounds, each on a new file: the start-up race is rare.
    for round in 0..5 {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("new.db");
        let children: Vec<_> = (0..32)
            .map(|i| {
                let subject = format!("Starter {i}");
                let mut command = Command::new(env!("CARGO_BIN_EXE_cairn"));
                command.arg("--db").arg(&db);
                // Reads of a file that does not exist yet exit 3 by design; every
                // writer creates it.
                match i % 3 {
                    0 => command.args(["add", &subject, "opened", "the file"]),
                    1 => command.args(["observe", &subject, "started early"]),
                    _ => command.args(["init"]),
                };
                command
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let mut failures = Vec::new();
        for child in children {
            let out = child.wait_with_output().unwrap();
            if !out.status.success() {
                failures.push(format!(
                    "exit {:?}: {}",
                    out.status.code(),
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
        }
        assert!(failures.is_empty(), "round {round}: {failures:#?}");
    }
}

#[test]
fn a_model_directory_embeds_and_stats_says_which() {
    let (_dir, db) = temp();
    let model = common::test_model_dir();
    let model = model.to_str().unwrap();
    let stats = json(&db, &["init"]);
    assert_eq!(stats["entities"], 0);
    let stats = json(&db, &["stats"]);
    assert!(stats["embedder"].is_null(), "{stats}");
    assert!(text(&cairn(&db, &["stats"])).contains("embedder      none"));
    // An empty file takes the model; from then on it is required.
    for fact in ["I love sushi", "Drives a blue car to the office"] {
        assert!(
            cairn(&db, &["--model", model, "observe", "Caroline", fact])
                .status
                .success()
        );
    }
    let stats = json(&db, &["--model", model, "stats"]);
    let id = stats["embedder"]["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("st-MiniLM-L6-H384-uncased-384d-"), "{stats}");
    assert_eq!(stats["embedder"]["dimension"], 384);
    // The environment variable does the same.
    let out = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(["--db", db.to_str().unwrap(), "stats"])
        .env("CAIRN_MODEL", model)
        .output()
        .unwrap();
    assert!(
        text(&out).contains(&format!("embedder      {id} (dimension 384)")),
        "{}",
        text(&out)
    );
    let hits = json(
        &db,
        &["--model", model, "search", "what food does she like"],
    );
    let first = hits
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["kind"] == "observation")
        .unwrap_or_else(|| panic!("no observation found: {hits}"));
    assert!(first["text"].as_str().unwrap().contains("sushi"), "{hits}");
    // Without the model the file reads (search by words, saying so) but refuses writes,
    // naming both sides.
    let out = cairn(&db, &["stats"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = cairn(&db, &["search", "sushi"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out).contains("sushi"), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("words and graph only") && stderr.contains(&id),
        "{stderr}"
    );
    let out = cairn(&db, &["add", "Ann", "likes", "tea"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("embedder mismatch") && stderr.contains(&id),
        "{stderr}"
    );
    // A directory that is not a model is bad input, named.
    let out = cairn(&db, &["--model", "/nonexistent/model", "stats"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("/nonexistent/model/config.json"),
        "{stderr}"
    );
}

#[test]
fn log_level_sends_the_library_events_to_stderr_only() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    let quiet = cairn(&db, &["add", "Acme Corp", "acquired", "Widget Inc"]);
    assert!(quiet.status.success());
    assert!(
        quiet.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&quiet.stderr)
    );

    let loud = cairn(
        &db,
        &["--log", "debug", "add", "Acme Corp", "owns", "Gadget Co"],
    );
    assert!(loud.status.success());
    let stderr = String::from_utf8_lossy(&loud.stderr);
    assert!(
        stderr.contains("cairn::write") && stderr.contains("commit_us="),
        "{stderr}"
    );
    let stdout = String::from_utf8_lossy(&loud.stdout);
    assert!(
        stdout.contains("Gadget Co") && !stdout.contains("cairn::write"),
        "{stdout}"
    );

    let refused = cairn(&db, &["--log", "loud", "stats"]);
    assert!(!refused.status.success());
}

/// Runs `cairn` with exactly these arguments (no `--db`) and environment changes.
fn cairn_env(args: &[&str], env: &[(&str, Option<&Path>)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cairn"));
    command.args(args);
    for name in [
        "CAIRN_DB",
        "CAIRN_MODEL",
        "CAIRN_LOG",
        "CAIRN_TENANTS",
        "CAIRN_TENANT",
    ] {
        command.env_remove(name);
    }
    for (name, value) in env {
        match value {
            Some(v) => command.env(name, v),
            None => command.env_remove(name),
        };
    }
    command.output().expect("run cairn")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn home_is_expanded_in_db_paths() {
    let home = tempfile::tempdir().unwrap();
    let h = Some(home.path());
    let out = cairn_env(
        &["--db", "~/tilde.db", "add", "Ann", "knows", "Bob"],
        &[("HOME", h)],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(home.path().join("tilde.db").exists(), "created under HOME");
    assert!(!Path::new("~").exists(), "no literal ~ directory");
    for (i, form) in ["$HOME/env.db", "${HOME}/env.db"].into_iter().enumerate() {
        let out = cairn_env(
            &["add", "Ann", "knows", &format!("Carol {i}"), "--json"],
            &[("HOME", h), ("CAIRN_DB", Some(Path::new(form)))],
        );
        assert!(out.status.success(), "{form}: {}", stderr(&out));
    }
    let stats: Value = serde_json::from_slice(
        &cairn_env(&["--db", "$HOME/env.db", "stats", "--json"], &[("HOME", h)]).stdout,
    )
    .unwrap();
    assert_eq!(stats["relations"], 2, "both forms named one file: {stats}");
    let tilde = json(&home.path().join("tilde.db"), &["stats"]);
    assert_eq!(tilde["relations"], 1);

    let unset = cairn_env(&["--db", "~/x.db", "init"], &[("HOME", None)]);
    assert_eq!(unset.status.code(), Some(2));
    assert!(
        stderr(&unset).contains("HOME is not set"),
        "{}",
        stderr(&unset)
    );
}

#[test]
fn tenant_flags_work_on_one_tenant_of_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    let tenants = dir.path().join("tenants");
    let t = tenants.to_str().unwrap();
    let on = |tenant: &str, args: &[&str]| {
        let mut all = vec!["--tenants", t, "--tenant", tenant];
        all.extend_from_slice(args);
        cairn_env(&all, &[])
    };
    assert!(
        on("acme", &["add", "Ann", "works at", "Acme"])
            .status
            .success()
    );
    assert!(
        on("globex", &["observe", "Bob", "Works at Globex"])
            .status
            .success()
    );
    let stats: Value = serde_json::from_slice(&on("acme", &["stats", "--json"]).stdout).unwrap();
    assert_eq!(
        (stats["entities"].as_u64(), stats["observations"].as_u64()),
        (Some(2), Some(0))
    );
    assert_eq!(
        json(&tenants.join("acme.db"), &["stats"])["relations"],
        1,
        "acme's own file"
    );
    let list: Value = serde_json::from_slice(
        &cairn_env(&["--tenants", t, "tenants", "list", "--json"], &[]).stdout,
    )
    .unwrap();
    assert_eq!(
        list,
        serde_json::json!(["acme", "globex"]),
        "the global dir serves `tenants`"
    );
    // The environment variables stand in for the flags.
    let out = cairn_env(
        &["search", "globex", "--json"],
        &[
            ("CAIRN_TENANTS", Some(&tenants)),
            ("CAIRN_TENANT", Some(Path::new("globex"))),
        ],
    );
    assert!(text(&out).contains("Works at Globex"), "{}", stderr(&out));

    // Reading a tenant that does not exist is not found, and does not create it.
    let missing = on("initech", &["show", "Ann"]);
    assert_eq!(missing.status.code(), Some(3));
    assert!(
        stderr(&missing).contains("tenant \"initech\" does not exist"),
        "{}",
        stderr(&missing)
    );
    assert!(!tenants.join("initech.db").exists());
    // Ids are checked as `Tenants` checks them.
    let bad = on("../escape", &["add", "A", "r", "B"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("tenant id"), "{}", stderr(&bad));
    assert!(!dir.path().join("escape.db").exists());
    // Half of the pair, or both --db and --tenants, is bad input naming the flags.
    let half = cairn_env(&["--tenants", t, "stats"], &[]);
    assert_eq!(half.status.code(), Some(2));
    assert!(stderr(&half).contains("--tenant ID"), "{}", stderr(&half));
    let half = cairn_env(&["--tenant", "acme", "stats"], &[]);
    assert_eq!(half.status.code(), Some(2));
    assert!(stderr(&half).contains("--tenants DIR"), "{}", stderr(&half));
    let both = cairn_env(
        &[
            "--db",
            dir.path().join("x.db").to_str().unwrap(),
            "--tenants",
            t,
            "--tenant",
            "acme",
            "stats",
        ],
        &[],
    );
    assert_eq!(both.status.code(), Some(2));
    assert!(stderr(&both).contains("--db"), "{}", stderr(&both));
}

#[test]
fn mcp_serves_a_tenant_memory() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let tenants = dir.path().join("tenants");
    let mut child = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args([
            "--tenants",
            tenants.to_str().unwrap(),
            "--tenant",
            "acme",
            "mcp",
        ])
        .env_remove("CAIRN_DB")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let requests = [
        serde_json::json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{
            "protocolVersion":"2025-06-18","capabilities":{},
            "clientInfo":{"name":"cli-test","version":"0"}}}),
        serde_json::json!({"jsonrpc":"2.0","method":"notifications/initialized"}),
        serde_json::json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{
            "name":"create_entities","arguments":{"entities":[
                {"name":"Ann","entityType":"person","observations":["Works at Acme"]}]}}}),
    ];
    let mut stdin = child.stdin.take().unwrap();
    for request in requests {
        writeln!(stdin, "{request}").unwrap();
    }
    // Wait for the call's answer before closing stdin, which ends the server.
    let out = {
        use std::io::BufRead;
        let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut answered = false;
        let mut line = String::new();
        while stdout.read_line(&mut line).unwrap() > 0 {
            if line.contains("\"id\":2") {
                answered = true;
                break;
            }
            line.clear();
        }
        drop(stdin);
        answered
    };
    assert!(out, "the tool call was answered");
    child.wait().unwrap();
    let shown = json(&tenants.join("acme.db"), &["show", "ann"]);
    assert_eq!(shown["observations"][0]["text"], "Works at Acme");
}

#[test]
fn edits_resolve_names_and_write_nothing_on_error() {
    let (_dir, db) = temp();
    json(&db, &["add", "Acme Corp", "acquired", "Widget Inc"]);
    json(&db, &["add", "ACME Inc", "based in", "Springfield"]);
    json(&db, &["observe", "Widget Inc", "Makes blue widgets"]);
    json(&db, &["observe", "Widget Inc", "Founded in 1999"]);
    let before = json(&db, &["stats"]);
    assert_eq!(before["entities"], 4);

    // A name that does not exist: not found, naming it, and nothing written (not even
    // the episode).
    let missing: [&[&str]; 8] = [
        &["delete", "entity", "Nobody"],
        &["merge", "Acme Corp", "Nobody"],
        &["rename", "Nobody", "Somebody"],
        &["alias", "Nobody", "Somebody"],
        &["invalidate", "Acme Corp", "sold", "Widget Inc"],
        &["delete", "relation", "Nobody", "acquired", "Widget Inc"],
        &["delete", "observation", "Widget Inc", "Makes red widgets"],
        &["delete", "document", "99"],
    ];
    let named = [
        "Nobody",
        "Nobody",
        "Nobody",
        "Nobody",
        "sold",
        "Nobody",
        "Makes red widgets",
        "99",
    ];
    for (args, name) in missing.iter().zip(named) {
        let out = cairn(&db, args);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("not found") && stderr(&out).contains(name),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    // A name of another entity cannot become an alias; an invalid name is bad input.
    let taken = cairn(&db, &["alias", "Acme Corp", "widget inc"]);
    assert_eq!(taken.status.code(), Some(2), "{}", stderr(&taken));
    assert!(stderr(&taken).contains("widget inc"), "{}", stderr(&taken));
    assert_eq!(
        cairn(&db, &["rename", "Acme Corp", " "]).status.code(),
        Some(2)
    );
    assert_eq!(
        cairn(&db, &["merge", "acme corp", "ACME CORP"])
            .status
            .code(),
        Some(2)
    );
    let bad_time = cairn(
        &db,
        &[
            "invalidate",
            "Acme Corp",
            "acquired",
            "Widget Inc",
            "--at",
            "soon",
        ],
    );
    assert_eq!(bad_time.status.code(), Some(2));
    assert!(
        stderr(&bad_time).contains("RFC 3339"),
        "{}",
        stderr(&bad_time)
    );
    assert_eq!(
        json(&db, &["stats"]),
        before,
        "nothing of a failed edit is written"
    );

    let alias = json(&db, &["alias", "acme corp", "Acme", "--agent", "curator"]);
    assert_eq!(
        (alias["added"].as_bool(), alias["entity"]["name"].as_str()),
        (Some(true), Some("Acme Corp"))
    );
    assert!(
        alias["aliases"]
            .as_array()
            .unwrap()
            .contains(&Value::from("Acme")),
        "{alias}"
    );
    assert_eq!(json(&db, &["show", "ACME"])["entity"]["name"], "Acme Corp");
    let again = cairn(&db, &["alias", "acme corp", "acme"]);
    assert!(text(&again).contains("already had"), "{}", text(&again));

    let renamed = json(&db, &["rename", "ＡＣＭＥ corp", "Acme Corporation"]);
    assert_eq!(renamed["old_name"], "Acme Corp");
    assert_eq!(renamed["entity"]["name"], "Acme Corporation");
    assert_eq!(
        json(&db, &["show", "acme corp"])["entity"]["name"],
        "Acme Corporation",
        "old names still reach it"
    );

    let merged = cairn(&db, &["merge", "Acme Corporation", "acme inc"]);
    assert!(merged.status.success(), "{}", stderr(&merged));
    assert!(
        text(&merged).starts_with("merged ACME Inc (entity"),
        "{}",
        text(&merged)
    );
    let shown = json(&db, &["show", "ACME Inc"]);
    assert_eq!(
        shown["entity"]["name"], "Acme Corporation",
        "the absorbed name reaches the kept entity"
    );
    assert_eq!(shown["relations"].as_array().unwrap().len(), 2);
    assert_eq!(json(&db, &["stats"])["entities"], 3);

    let ended = json(
        &db,
        &[
            "invalidate",
            "acme",
            "ACQUIRED",
            "widget inc",
            "--at",
            "2026-01-05",
        ],
    );
    assert_eq!(ended["valid_to"], 1_767_571_200_000_i64);
    let shown = json(&db, &["show", "widget inc"]);
    assert_eq!(
        shown["relations"][0]["valid_to"], 1_767_571_200_000_i64,
        "stored"
    );
    let now = cairn(&db, &["invalidate", "acme", "based in", "Springfield"]);
    assert!(
        text(&now).contains("no longer holds from 20"),
        "{}",
        text(&now)
    );

    let gone = json(
        &db,
        &[
            "delete",
            "observation",
            "widget inc",
            " Makes blue widgets ",
        ],
    );
    assert_eq!(gone["text"], "Makes blue widgets");
    let left = json(&db, &["show", "Widget Inc"]);
    assert_eq!(left["observations"].as_array().unwrap().len(), 1);
    let gone = json(
        &db,
        &["delete", "relation", "Acme", "based-in", "springfield"],
    );
    assert_eq!(gone["relation"]["object_name"], "Springfield");
    assert_eq!(json(&db, &["stats"])["relations"], 1);
    let gone = cairn(&db, &["delete", "entity", "widget inc"]);
    assert_eq!(
        text(&gone).trim_end(),
        format!(
            "deleted Widget Inc (entity {}) with 1 relation and 1 observation",
            left["entity"]["id"]
        )
    );
    let stats = json(&db, &["stats"]);
    assert_eq!(
        (
            stats["entities"].as_u64(),
            stats["relations"].as_u64(),
            stats["observations"].as_u64()
        ),
        (Some(2), Some(0), Some(0))
    );
    assert_eq!(cairn(&db, &["show", "widget inc"]).status.code(), Some(3));
    // Reading commands' rule holds for edits too: a missing file is not created.
    let typo = db.with_file_name("typo.db");
    assert_eq!(
        cairn(&typo, &["delete", "entity", "A"]).status.code(),
        Some(3)
    );
    assert!(!typo.exists());
}

/// Runs `cairn --db DB ARGS` with `input` on standard input.
fn cairn_stdin(db: &Path, args: &[&str], input: &[u8]) -> Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .arg("--db")
        .arg(db)
        .args(args)
        .env_remove("CAIRN_DB")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run cairn");
    let mut stdin = child.stdin.take().unwrap();
    // A refused input may close the pipe early; the exit code tells.
    let _ = stdin.write_all(input);
    drop(stdin);
    child.wait_with_output().unwrap()
}

#[test]
fn add_document_splits_markdown_at_headings() {
    let (dir, db) = temp();
    let file = dir.path().join("guide.md");
    std::fs::write(
        &file,
        "# Guide\n\nCairn keeps agent memory in one file.\n\n## Install\n\n\
         Run cargo install to get the binary.\n\n## Backups\n\nUse the backup command while writers continue.\n",
    )
    .unwrap();
    let path = file.to_str().unwrap();
    let added = json(
        &db,
        &[
            "add-document",
            path,
            "--title",
            "The guide",
            "--agent",
            "docs",
        ],
    );
    assert_eq!(added["chunks"], 3, "{added}");
    assert_eq!(added["markdown"], true);
    assert_eq!(added["source"], path);
    let stats = json(&db, &["stats"]);
    assert_eq!(
        (stats["documents"].as_u64(), stats["chunks"].as_u64()),
        (Some(1), Some(3))
    );
    // The file holds each chunk's heading path and the title.
    let export = text(&cairn(&db, &["export"]));
    assert!(
        export.contains(r#"{\"headings\":[\"Guide\",\"Backups\"]}"#),
        "{export}"
    );
    assert!(export.contains(r#"{\"title\":\"The guide\"}"#), "{export}");
    let hits = json(&db, &["search", "backup while writers continue"]);
    assert!(
        hits[0]["text"].as_str().unwrap().starts_with("## Backups"),
        "{hits}"
    );

    // Standard input: plain text unless told otherwise, source `stdin`.
    let out = cairn_stdin(
        &db,
        &["add-document", "-"],
        b"# Not split\n\nOne.\n\n# Really\n\nTwo.",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        text(&out).starts_with("added document 2 (1 chunk, "),
        "{}",
        text(&out)
    );
    assert!(
        text(&out).trim_end().ends_with("from stdin"),
        "{}",
        text(&out)
    );
    let out = cairn_stdin(
        &db,
        &["add-document", "-", "--format", "markdown", "--json"],
        b"# A\n\nOne.\n\n# B\n\nTwo.",
    );
    let added: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(added["chunks"], 2, "{added}");

    // Refusals write nothing: too large (naming the limit), empty, not UTF-8, missing.
    let before = json(&db, &["stats"]);
    let big = dir.path().join("big.txt");
    std::fs::write(&big, "a ".repeat(8 * 1024 * 1024 + 1)).unwrap();
    let out = cairn(&db, &["add-document", big.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("16777216") && stderr(&out).contains("MAX_DOCUMENT_BYTES"),
        "{}",
        stderr(&out)
    );
    let out = cairn_stdin(&db, &["add-document", "-"], " \n\n ".as_bytes());
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("empty"), "{}", stderr(&out));
    let out = cairn_stdin(&db, &["add-document", "-"], b"caf\xe9");
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("UTF-8"), "{}", stderr(&out));
    let out = cairn(
        &db,
        &["add-document", dir.path().join("nope.md").to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(
        json(&db, &["stats"]),
        before,
        "nothing written, not even an episode"
    );

    let deleted = json(&db, &["delete", "document", &added["document"].to_string()]);
    assert_eq!(deleted["chunks"], 2);
    assert_eq!(json(&db, &["stats"])["documents"], 2);
}

#[test]
fn log_shows_who_wrote_what_and_when() {
    let (_dir, db) = temp();
    json(
        &db,
        &[
            "add", "Ann", "knows", "Bob", "--agent", "mail", "--source", "msg-1",
        ],
    );
    json(&db, &["observe", "Ann", "Likes tea", "--agent", "chat"]);
    json(&db, &["rename", "Ann", "Ann Smith", "--agent", "curator"]);

    let all = json(&db, &["log"]);
    let all = all.as_array().unwrap();
    assert_eq!(
        all.len(),
        6,
        "3 for the triple, 1 observation, alias and rename: {all:#?}"
    );
    assert_eq!(
        (all[0]["op"].as_str(), all[0]["agent"].as_str()),
        (Some("entity.rename"), Some("curator"))
    );
    assert!(
        all.windows(2)
            .all(|w| w[0]["seq"].as_i64() > w[1]["seq"].as_i64()),
        "newest first"
    );
    assert!(all[0]["time"].as_str().unwrap().ends_with('Z'));

    let mail = json(&db, &["log", "--agent", "mail"]);
    let mail = mail.as_array().unwrap();
    assert_eq!(mail.len(), 3);
    assert!(
        mail.iter()
            .all(|l| l["agent"] == "mail" && l["source"] == "msg-1"),
        "{mail:#?}"
    );
    assert_eq!(mail[0]["op"], "relation.create");
    assert_eq!(mail[0]["what"], "Ann Smith –knows→ Bob", "what it is now");
    let chat = cairn(&db, &["log", "--agent", "chat"]);
    assert!(
        text(&chat).contains("  observation.add  Ann Smith: Likes tea  (chat)"),
        "{}",
        text(&chat)
    );
    assert_eq!(text(&chat).lines().count(), 1);

    // Pages, and time windows (dates or RFC 3339).
    let page = json(&db, &["log", "--limit", "2"]);
    let page = page.as_array().unwrap();
    let last = page[1]["seq"].to_string();
    let rest = json(&db, &["log", "--before", &last]);
    assert_eq!(page.len() + rest.as_array().unwrap().len(), 6);
    assert_eq!(
        json(&db, &["log", "--since", "2000-01-01"])
            .as_array()
            .unwrap()
            .len(),
        6
    );
    assert!(
        json(&db, &["log", "--until", "2000-01-01T00:00:00Z"])
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert!(
        json(&db, &["log", "--since", "2999-01-01"])
            .as_array()
            .unwrap()
            .is_empty()
    );
    let over = cairn(&db, &["log", "--limit", "10001"]);
    assert_eq!(over.status.code(), Some(2));
    assert!(stderr(&over).contains("history limit"), "{}", stderr(&over));
    assert_eq!(
        cairn(&db, &["log", "--since", "last week"]).status.code(),
        Some(2)
    );

    // What no longer exists is still in the log, marked gone.
    json(&db, &["delete", "entity", "bob"]);
    let after = cairn(&db, &["log", "--limit", "3"]);
    assert!(
        text(&after).contains("relation.remove  relation "),
        "{}",
        text(&after)
    );
    assert!(text(&after).contains("(gone)  (cli)"), "{}", text(&after));
}

#[test]
fn search_and_context_filter_and_say_who_wrote_each_hit() {
    let (_dir, db) = temp();
    json(
        &db,
        &[
            "add", "Ann", "works at", "Acme", "--agent", "mail", "--source", "msg-1",
        ],
    );
    json(
        &db,
        &[
            "observe",
            "Ann",
            "Ann drinks tea at Acme",
            "--agent",
            "chat",
        ],
    );
    let out = cairn_stdin(
        &db,
        &["add-document", "-", "--agent", "docs"],
        b"Acme report: Ann presented the numbers.",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    json(
        &db,
        &[
            "invalidate",
            "Ann",
            "works at",
            "Acme",
            "--at",
            "2026-01-05",
        ],
    );
    let kinds = |hits: &Value| -> Vec<String> {
        hits.as_array()
            .unwrap()
            .iter()
            .map(|h| h["kind"].as_str().unwrap().to_owned())
            .collect()
    };

    let all = json(&db, &["search", "Ann Acme", "--history"]);
    for kind in ["entity", "relation", "observation", "chunk"] {
        assert!(kinds(&all).contains(&kind.to_owned()), "{kind} in {all:#}");
    }
    let hits = all.as_array().unwrap();
    assert!(
        hits.iter().all(|h| h["provenance"]["written"]
            .as_str()
            .is_some_and(|w| w.ends_with('Z'))),
        "{all:#}"
    );
    let relation = hits.iter().find(|h| h["kind"] == "relation").unwrap();
    assert_eq!(relation["provenance"]["agent"], "mail");
    assert_eq!(relation["provenance"]["source"], "msg-1");
    assert_eq!(relation["provenance"]["valid_to"], "2026-01-05T00:00:00Z");
    let text_out = cairn(
        &db,
        &["search", "Ann Acme", "--history", "--kinds", "relation"],
    );
    assert!(
        text(&text_out).contains("(mail, from msg-1, 20")
            && text(&text_out).contains("valid until 2026-01-05T00:00:00Z"),
        "{}",
        text(&text_out)
    );

    // The ended relation is left out by default, and back when asked for a time it held.
    assert!(!kinds(&json(&db, &["search", "Ann Acme"])).contains(&"relation".to_owned()));
    let then = json(
        &db,
        &[
            "search",
            "Ann Acme",
            "--valid-at",
            "2025-12-01",
            "--kinds",
            "relation",
        ],
    );
    assert_eq!(kinds(&then), ["relation"]);
    let by_chat = json(&db, &["search", "Ann Acme", "--agent", "chat"]);
    assert_eq!(kinds(&by_chat), ["observation"], "{by_chat:#}");
    assert_eq!(by_chat[0]["provenance"]["agent"], "chat");
    let some = json(&db, &["search", "Ann Acme", "--kinds", "entity,chunk"]);
    assert!(
        kinds(&some).iter().all(|k| k == "entity" || k == "chunk") && kinds(&some).len() >= 2,
        "{some:#}"
    );
    assert!(
        json(&db, &["search", "Ann Acme", "--since", "2999-01-01"])
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert!(
        json(
            &db,
            &["search", "Ann Acme", "--until", "2000-01-01T00:00:00Z"]
        )
        .as_array()
        .unwrap()
        .is_empty()
    );
    assert_eq!(
        json(
            &db,
            &["search", "Ann Acme", "--since", "2000-01-01", "--history"]
        ),
        all
    );
    let backwards = cairn(
        &db,
        &[
            "search",
            "Ann",
            "--since",
            "2026-01-02",
            "--until",
            "2026-01-01",
        ],
    );
    assert_eq!(backwards.status.code(), Some(2));
    assert!(
        stderr(&backwards).contains("--until"),
        "{}",
        stderr(&backwards)
    );
    assert_eq!(
        cairn(&db, &["search", "Ann", "--kinds", "planet"])
            .status
            .code(),
        Some(2)
    );

    // Context: the same filters, hits with provenance, and labelled lines on request.
    let context = json(&db, &["context", "Ann Acme", "--agent", "docs"]);
    assert!(
        context["context"]
            .as_str()
            .unwrap()
            .contains("Ann presented the numbers"),
        "{context:#}"
    );
    assert!(!context["context"].as_str().unwrap().contains("drinks tea"));
    assert!(
        context["hits"]
            .as_array()
            .unwrap()
            .iter()
            .all(|h| h["provenance"]["agent"] == "docs")
    );
    let labelled = cairn(
        &db,
        &["context", "Ann Acme", "--agent", "chat", "--provenance"],
    );
    assert!(text(&labelled).contains("[chat, 20"), "{}", text(&labelled));
}

#[test]
fn importing_the_same_memory_jsonl_twice_changes_nothing() {
    let (dir, db) = temp();
    let file = dir.path().join("memory.jsonl");
    let lines = concat!(
        "{\"type\":\"entity\",\"name\":\"Acme Corp\",\"entityType\":\"organization\",\"observations\":[\"Founded in 1999\"]}\n",
        "{\"type\":\"relation\",\"from\":\"Acme Corp\",\"to\":\"Widget Inc\",\"relationType\":\"acquired\"}\n",
        "{\"type\":\"relation\",\"from\":\"Widget Inc\",\"to\":\"Zürich\",\"relationType\":\"based in\"}\n",
    );
    std::fs::write(&file, lines).unwrap();
    let path = file.to_str().unwrap();
    let first = json(&db, &["import", path]);
    assert_eq!(
        (first["records"].as_u64(), first["replayed"].as_bool()),
        (Some(3), Some(false))
    );
    let (stats, export) = (json(&db, &["stats"]), text(&cairn(&db, &["export"])));
    let mentions = |db: &Path| {
        let shown = json(db, &["show", "widget inc"]);
        shown["relations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["mentions"].as_i64().unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(mentions(&db), [1, 1]);

    let again = cairn(&db, &["import", path]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(
        text(&again).contains("was imported before"),
        "{}",
        text(&again)
    );
    assert_eq!(json(&db, &["stats"]), stats, "stats unchanged");
    let body = |export: &str| {
        export
            .lines()
            .skip(1)
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        body(&text(&cairn(&db, &["export"]))),
        body(&export),
        "the file unchanged"
    );
    assert_eq!(mentions(&db), [1, 1], "mention counts unchanged");

    // Who imported what: an episode of cairn-import from the file.
    let log = json(&db, &["log", "--agent", "cairn-import"]);
    assert_eq!(log.as_array().unwrap().len(), 7, "{log:#}");
    assert!(log.as_array().unwrap().iter().all(|l| l["source"] == path));

    // A grown file: only its new line is written, under a new episode of the given agent.
    std::fs::write(&file, format!("{lines}{}\n", "{\"type\":\"relation\",\"from\":\"Ann\",\"to\":\"ACME corp\",\"relationType\":\"works at\"}")).unwrap();
    let grown = json(&db, &["import", path, "--agent", "migration"]);
    assert_eq!(grown["replayed"], false);
    let after = json(&db, &["stats"]);
    assert_eq!(
        after["relations"].as_u64(),
        stats["relations"].as_u64().map(|n| n + 1)
    );
    assert_eq!(
        after["episodes"].as_u64(),
        stats["episodes"].as_u64().map(|n| n + 1)
    );
    assert_eq!(mentions(&db), [1, 1]);
    let by_migration = json(&db, &["log", "--agent", "migration"]);
    let ops: Vec<&str> = by_migration
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["op"].as_str().unwrap())
        .collect();
    assert_eq!(
        ops,
        ["relation.create", "entity.create"],
        "Ann and her relation only"
    );

    // Standard input is recorded as such.
    let copy = dir.path().join("copy.db");
    let out = cairn_stdin(&copy, &["import", "-", "--json"], lines.as_bytes());
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        json(&copy, &["log"])
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["source"] == "stdin")
    );
}

#[test]
fn a_closed_stdout_ends_export_quietly_with_success() {
    let (_dir, db) = temp();
    // Far more than a pipe holds, so the export is still writing when the reader leaves.
    let lines: String = (0..3000)
        .map(|i| {
            format!(
                "{{\"type\":\"relation\",\"from\":\"Person {i}\",\"to\":\"Acme Corp\",\"relationType\":\"works at\"}}\n"
            )
        })
        .collect();
    let out = cairn_stdin(&db, &["import", "-"], lines.as_bytes());
    assert!(out.status.success(), "{}", stderr(&out));
    let pipeline = "set -o pipefail; \"$0\" --db \"$1\" export | head -c 100 > /dev/null";
    let out = Command::new("bash")
        .args(["-c", pipeline, env!("CARGO_BIN_EXE_cairn")])
        .arg(&db)
        .env_remove("CAIRN_DB")
        .env_remove("CAIRN_LOG")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stderr(&out), "", "nothing said about the closed pipe");
}

#[test]
fn importing_a_missing_file_names_it() {
    let (dir, db) = temp();
    let missing = dir.path().join("no-such-memory.jsonl");
    let out = cairn(&db, &["import", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no-such-memory.jsonl"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_bad_add_names_the_name_not_a_batch_item() {
    let (_dir, db) = temp();
    let out = cairn(&db, &["add", "Ann", "works at", "\u{202e}Acme"]);
    assert_eq!(out.status.code(), Some(2));
    let message = stderr(&out);
    assert!(!message.contains("batch item"), "{message}");
    assert!(message.contains("bidirectional control"), "{message}");
}

#[test]
fn tenants_archive_restore_and_migrate() {
    use std::io::{BufRead, Write};
    let dir = tempfile::tempdir().unwrap();
    let tenants = dir.path().join("tenants");
    let t = tenants.to_str().unwrap();
    let run = |args: &[&str]| cairn_env(&[&["tenants", "--dir", t], args].concat(), &[]);
    let archive = dir.path().join("acme.cairn");
    let a = archive.to_str().unwrap();

    // A writer in another process (an MCP server) has the tenant open: the archive is
    // refused, exit 75, nothing written, and the server's acknowledged write stays.
    let mut server = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(["--tenants", t, "--tenant", "acme", "mcp"])
        .env_remove("CAIRN_DB")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = server.stdin.take().unwrap();
    for request in [
        serde_json::json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{
            "protocolVersion":"2025-06-18","capabilities":{},
            "clientInfo":{"name":"cli-test","version":"0"}}}),
        serde_json::json!({"jsonrpc":"2.0","method":"notifications/initialized"}),
        serde_json::json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{
            "name":"create_entities","arguments":{"entities":[
                {"name":"Ann","entityType":"person","observations":["Works at Acme"]}]}}}),
    ] {
        writeln!(stdin, "{request}").unwrap();
    }
    let mut stdout = std::io::BufReader::new(server.stdout.take().unwrap());
    let mut line = String::new();
    while stdout.read_line(&mut line).unwrap() > 0 && !line.contains("\"id\":2") {
        line.clear();
    }
    assert!(line.contains("\"id\":2"), "the write was answered");
    let refused = run(&["archive", "acme", a]);
    assert_eq!(refused.status.code(), Some(75), "{}", stderr(&refused));
    assert!(stderr(&refused).contains("in use"), "{}", stderr(&refused));
    assert!(!archive.exists());
    drop(stdin);
    server.wait().unwrap();

    // Archived once the server is gone: one file, the tenant dropped, its id refused.
    let out = run(&["archive", "acme", a, "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["path"], a);
    let list: Value = serde_json::from_slice(&run(&["list", "--json"]).stdout).unwrap();
    assert_eq!(list, serde_json::json!([]));
    let again = run(&["archive", "acme", dir.path().join("x").to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(3), "{}", stderr(&again));
    let write = cairn_env(
        &["--tenants", t, "--tenant", "acme", "add", "A", "r", "B"],
        &[],
    );
    assert_eq!(write.status.code(), Some(3), "{}", stderr(&write));
    assert!(stderr(&write).contains("archived"), "{}", stderr(&write));

    // Restored with its write; a second restore over it is bad input.
    assert!(run(&["restore", "acme", a]).status.success());
    let shown = json(&tenants.join("acme.db"), &["show", "ann"]);
    assert_eq!(shown["observations"][0]["text"], "Works at Acme");
    assert_eq!(run(&["restore", "acme", a]).status.code(), Some(2));

    // Migrate: two schema-v1 tenants and a corrupt one, positional DIR.
    let fleet = dir.path().join("fleet");
    std::fs::create_dir(&fleet).unwrap();
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/schema-v1.db"
    );
    for id in ["a", "b"] {
        std::fs::copy(fixture, fleet.join(format!("{id}.db"))).unwrap();
    }
    std::fs::write(fleet.join("bad.db"), vec![0x5a; 8192]).unwrap();
    let f = fleet.to_str().unwrap();
    let first = cairn_env(&["tenants", "migrate", f], &[]);
    assert_eq!(first.status.code(), Some(4), "{}", stderr(&first));
    let report = text(&first);
    assert!(report.contains("a\tmigrated from v1"), "{report}");
    assert!(report.contains("bad\tFAILED"), "{report}");
    assert!(
        report.contains("3 tenants: 2 migrated, 0 verified, 0 skipped, 1 failed"),
        "{report}"
    );
    let second = cairn_env(&["tenants", "migrate", f, "--json"], &[]);
    assert_eq!(second.status.code(), Some(4));
    let report: Value = serde_json::from_slice(&second.stdout).unwrap();
    assert_eq!(
        (report["skipped"].as_u64(), report["failed"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(report["tenants"][0]["id"], "a");
    assert_eq!(report["tenants"][0]["outcome"], "skipped");
    std::fs::remove_file(fleet.join("bad.db")).unwrap();
    let clean = cairn_env(&["tenants", "migrate", f, "--redo"], &[]);
    assert!(clean.status.success(), "{}", stderr(&clean));
    let typo = cairn_env(
        &[
            "tenants",
            "migrate",
            dir.path().join("typo").to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(typo.status.code(), Some(3), "{}", stderr(&typo));
    assert!(
        !dir.path().join("typo").exists(),
        "a missing folder is not created"
    );
    assert!(
        text(&clean).contains("2 tenants: 0 migrated, 2 verified"),
        "{}",
        text(&clean)
    );
}

#[test]
fn writers_in_other_processes_during_an_archive_are_refused_never_lost() {
    let dir = tempfile::tempdir().unwrap();
    let tenants = dir.path().join("tenants");
    let t = tenants.to_str().unwrap().to_owned();
    let add = move |i: usize| {
        cairn_env(
            &[
                "--tenants",
                &t,
                "--tenant",
                "run",
                "add",
                &format!("P{i}"),
                "knows",
                "Q",
            ],
            &[],
        )
    };
    assert!(add(0).status.success());
    let archive = dir.path().join("run.cairn");
    let (tell, told) = std::sync::mpsc::channel();
    let writer = std::thread::spawn(move || {
        let mut acknowledged = vec![0];
        for i in 1.. {
            let out = add(i);
            if !out.status.success() {
                return (acknowledged, out);
            }
            acknowledged.push(i);
            let _ = tell.send(i);
        }
        unreachable!()
    });
    // The archive starts once the writer processes are under way.
    for _ in 0..5 {
        told.recv().unwrap();
    }
    // An archive is refused while a writer process has the tenant open: try until one
    // lands between two writers (bounded).
    let mut archived = false;
    for _ in 0..500 {
        let out = cairn_env(
            &[
                "tenants",
                "--dir",
                tenants.to_str().unwrap(),
                "archive",
                "run",
                archive.to_str().unwrap(),
            ],
            &[],
        );
        if out.status.success() {
            archived = true;
            break;
        }
        assert_eq!(out.status.code(), Some(75), "{}", stderr(&out));
    }
    assert!(archived, "no archive between 500 writer processes");
    let (acknowledged, refused) = writer.join().unwrap();
    // In use while the archive runs (75), or archived once it is done (3, the tenant is
    // gone from the store: the exit code of an archived tenant).
    assert!(
        matches!(refused.status.code(), Some(75) | Some(3) | Some(1)),
        "{}",
        stderr(&refused)
    );
    let why = stderr(&refused);
    assert!(why.contains("archived") || why.contains("in use"), "{why}");
    // Every write a process was told succeeded is in the archive; no other.
    let restored = dir.path().join("restored.db");
    let restore = cairn(&restored, &["restore", archive.to_str().unwrap()]);
    assert!(restore.status.success(), "{}", stderr(&restore));
    let highest = *acknowledged.last().unwrap();
    let present: Vec<usize> = (0..highest + 5)
        .filter(|i| {
            cairn(&restored, &["show", &format!("P{i}")])
                .status
                .success()
        })
        .collect();
    assert_eq!(present, acknowledged);
}
