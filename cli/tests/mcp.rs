//! `cairn mcp` through a real MCP client (rmcp's, spawning the binary over stdio): the
//! tool schemas against the reference server's, every tool called, the reference
//! server's failures as regressions, and two server processes on one file.

use std::path::Path;

use rmcp::model::{CallToolRequestParams, Tool};
use rmcp::service::RunningService;
use rmcp::transport::{ConfigureCommandExt, TokioChildProcess};
use rmcp::{RoleClient, ServiceExt};
use serde_json::{Value, json};

/// The reference server's tool list (`@modelcontextprotocol/server-memory`, MIT), as
/// `tools/list` returned it; kept beside the tests so CI needs nothing outside the repo.
const REFERENCE: &str = include_str!("fixtures/reference-tools.json");

type Client = RunningService<RoleClient, ()>;

async fn connect(db: &Path) -> Client {
    let command = tokio::process::Command::new(env!("CARGO_BIN_EXE_cairn")).configure(|c| {
        c.arg("--db").arg(db).arg("mcp");
    });
    let transport = TokioChildProcess::new(command).expect("spawn cairn mcp");
    ().serve(transport).await.expect("MCP handshake")
}

/// Calls `tool` and returns its structured result; panics on an error result.
async fn call(client: &Client, tool: &str, args: Value) -> Value {
    let result = try_call(client, tool, args).await;
    result.unwrap_or_else(|e| panic!("{tool} failed: {e}"))
}

async fn try_call(client: &Client, tool: &str, args: Value) -> Result<Value, String> {
    let Value::Object(args) = args else {
        panic!("arguments must be an object")
    };
    let result = client
        .call_tool(CallToolRequestParams::new(tool.to_owned()).with_arguments(args))
        .await
        .map_err(|e| e.to_string())?;
    if result.is_error == Some(true) {
        return Err(format!("{:?}", result.content));
    }
    result
        .structured_content
        .ok_or_else(|| "no structured content".to_owned())
}

/// `ours` accepts what `reference` describes: the same type, the same required fields,
/// and every property of the reference with a matching schema (extra optional
/// properties allowed).
fn assert_compatible(path: &str, reference: &Value, ours: &Value) {
    assert_eq!(reference["type"], ours["type"], "{path}: type");
    let required = |v: &Value| {
        let mut r: Vec<String> = v["required"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|s| s.as_str().unwrap_or("").to_owned())
                    .collect()
            })
            .unwrap_or_default();
        r.sort();
        r
    };
    assert_eq!(required(reference), required(ours), "{path}: required");
    if let Some(props) = reference["properties"].as_object() {
        for (name, schema) in props {
            let mine = &ours["properties"][name];
            assert!(!mine.is_null(), "{path}: property {name} missing");
            assert_compatible(&format!("{path}.{name}"), schema, mine);
        }
    }
    if !reference["items"].is_null() {
        assert_compatible(&format!("{path}[]"), &reference["items"], &ours["items"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tools_match_the_reference_and_every_tool_works() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("memory.db");
    let client = connect(&db).await;

    // Schemas.
    let tools: Vec<Tool> = client.list_all_tools().await.unwrap();
    let reference: Vec<Value> = serde_json::from_str(REFERENCE).unwrap();
    assert_eq!(reference.len(), 9);
    for r in &reference {
        let name = r["name"].as_str().unwrap();
        let ours = tools
            .iter()
            .find(|t| t.name == name)
            .unwrap_or_else(|| panic!("tool {name} missing"));
        let ours = serde_json::to_value(ours).unwrap();
        assert_compatible(
            &format!("{name} input"),
            &r["inputSchema"],
            &ours["inputSchema"],
        );
        assert_compatible(
            &format!("{name} output"),
            &r["outputSchema"],
            &ours["outputSchema"],
        );
    }
    assert!(tools.iter().any(|t| t.name == "search_memory"));

    // create_entities: variant names are one entity; a repeat adds observations.
    let created = call(
        &client,
        "create_entities",
        json!({"entities": [
            {"name": "Acme Corp", "entityType": "organization", "observations": ["Founded in 1999"]},
            {"name": "acme corp", "entityType": "company", "observations": []},
            {"name": "ＡＣＭＥ Corp", "entityType": "organization", "observations": ["Based in Springfield"]}
        ]}),
    )
    .await;
    assert_eq!(
        created,
        json!({"entities": [{"name": "Acme Corp", "entityType": "organization",
                             "observations": ["Founded in 1999", "Based in Springfield"]}]})
    );
    let repeated = call(
        &client,
        "create_entities",
        json!({"entities": [{"name": "ACME CORP", "entityType": "organization", "observations": ["Makes widgets"]}]}),
    )
    .await;
    assert_eq!(repeated["entities"][0]["name"], "Acme Corp");

    // add_observations finds "Acme Corp" by "ACME CORP"; an unknown entity is an error.
    let added = call(
        &client,
        "add_observations",
        json!({"observations": [{"entityName": "ACME CORP", "contents": ["Makes widgets", "Has 50 staff"]}]}),
    )
    .await;
    assert_eq!(
        added,
        json!({"results": [{"entityName": "Acme Corp", "addedObservations": ["Has 50 staff"]}]})
    );
    let unknown = try_call(
        &client,
        "add_observations",
        json!({"observations": [{"entityName": "Nobody", "contents": ["x"]}]}),
    )
    .await;
    assert!(unknown.unwrap_err().contains("not found"));

    // create_relations creates missing endpoints.
    let relations = call(
        &client,
        "create_relations",
        json!({"relations": [{"from": "acme corp", "to": "Widget Inc", "relationType": "acquired"},
                             {"from": "Widget Inc", "to": "Zürich", "relationType": "based in"}]}),
    )
    .await;
    assert_eq!(relations["relations"][0]["from"], "Acme Corp");

    let opened = call(
        &client,
        "open_nodes",
        json!({"names": ["ａｃｍｅ corp", "widget inc", "Nobody"]}),
    )
    .await;
    assert_eq!(opened["entities"].as_array().unwrap().len(), 2);
    // Every relation with at least one end among the opened entities, as the reference
    // server answers: Widget Inc's relation to Zürich (not opened) comes too.
    assert_eq!(
        opened["relations"],
        json!([{"from": "Acme Corp", "to": "Widget Inc", "relationType": "acquired"},
               {"from": "Widget Inc", "to": "Zürich", "relationType": "based in"}])
    );
    assert!(opened.get("relationsTruncated").is_none());
    let object_only = call(&client, "open_nodes", json!({"names": ["ZÜRICH"]})).await;
    assert_eq!(
        object_only["relations"],
        json!([{"from": "Widget Inc", "to": "Zürich", "relationType": "based in"}]),
        "a relation is found from its object too"
    );
    assert_eq!(
        opened["entities"][0]["observations"],
        json!([
            "Founded in 1999",
            "Based in Springfield",
            "Makes widgets",
            "Has 50 staff"
        ])
    );

    let found = call(
        &client,
        "search_nodes",
        json!({"query": "staff", "limit": 3}),
    )
    .await;
    assert_eq!(found["entities"][0]["name"], "Acme Corp");
    assert!(
        found["relations"].as_array().unwrap().contains(
            &json!({"from": "Acme Corp", "to": "Widget Inc", "relationType": "acquired"})
        ),
        "search_nodes brings the relations of what it found: {found}"
    );

    let graph = call(&client, "read_graph", json!({})).await;
    assert_eq!(graph["entities"].as_array().unwrap().len(), 3);
    assert_eq!(graph["relations"].as_array().unwrap().len(), 2);
    let page = call(&client, "read_graph", json!({"limit": 2})).await;
    assert_eq!(page["entities"].as_array().unwrap().len(), 2);
    let rest = call(
        &client,
        "read_graph",
        json!({"limit": 2, "cursor": page["nextCursor"]}),
    )
    .await;
    assert_eq!(rest["entities"].as_array().unwrap().len(), 1);
    assert!(rest.get("nextCursor").is_none());

    let memory = call(
        &client,
        "search_memory",
        json!({"query": "who acquired widget", "token_budget": 60}),
    )
    .await;
    assert!(memory["tokens"].as_u64().unwrap() <= 60);
    assert!(
        memory["context"]
            .as_str()
            .unwrap()
            .contains("Acme Corp acquired Widget Inc")
    );
    assert!(memory["hits"][0]["why"].is_array());

    // Deletions.
    let deleted = call(
        &client,
        "delete_observations",
        json!({"deletions": [{"entityName": "acme corp", "observations": ["Has 50 staff"]}]}),
    )
    .await;
    assert_eq!(deleted["success"], true);
    let deleted = call(
        &client,
        "delete_relations",
        json!({"relations": [{"from": "WIDGET INC", "to": "zürich", "relationType": "based_in"}]}),
    )
    .await;
    assert_eq!(deleted["success"], true);
    let deleted = call(
        &client,
        "delete_entities",
        json!({"entityNames": ["zürich"]}),
    )
    .await;
    assert_eq!(deleted["success"], true);
    let graph = call(&client, "read_graph", json!({})).await;
    assert_eq!(graph["entities"].as_array().unwrap().len(), 2);
    assert_eq!(graph["relations"].as_array().unwrap().len(), 1);

    // Bad input is an error result naming the problem, and writes nothing.
    let bad = try_call(
        &client,
        "create_entities",
        json!({"entities": [{"name": "Fine", "entityType": "", "observations": []},
                            {"name": "   ", "entityType": "", "observations": []}]}),
    )
    .await;
    assert!(bad.unwrap_err().contains("item 1"));
    client.cancel().await.unwrap();

    let memory = cairn::Memory::open(&db).unwrap();
    assert_eq!(memory.resolve("Fine").unwrap(), None);
    // Writes are recorded under the server's agent.
    assert!(!memory.written_by("mcp", 10).unwrap().is_empty());
}

/// The reference server loses a third of the writes here; cairn loses none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_500_concurrent_creates_each() {
    const CALLS: usize = 500;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("memory.db");
    cairn::Memory::open(&db).unwrap(); // created once, so the servers race on writes only
    let (a, b) = tokio::join!(connect(&db), connect(&db));
    let mut calls = tokio::task::JoinSet::new();
    for (server, client) in [("a", &a), ("b", &b)] {
        for i in 0..CALLS {
            let peer = client.peer().clone();
            let name = format!("Entity {server}{i}");
            calls.spawn(async move {
                let args = json!({"entities": [{"name": name, "entityType": "test",
                                                "observations": [format!("made by server {server}")]}]});
                let Value::Object(args) = args else {
                    unreachable!()
                };
                let result = peer
                    .call_tool(CallToolRequestParams::new("create_entities").with_arguments(args))
                    .await
                    .expect("call");
                assert_ne!(result.is_error, Some(true), "{:?}", result.content);
                (name, result.structured_content.expect("structured"))
            });
        }
    }
    let mut replies = Vec::new();
    while let Some(reply) = calls.join_next().await {
        replies.push(reply.unwrap());
    }
    a.cancel().await.unwrap();
    b.cancel().await.unwrap();

    let memory = cairn::Memory::open(&db).unwrap();
    assert_eq!(memory.stats().unwrap().entities, 2 * CALLS as u64);
    assert_eq!(replies.len(), 2 * CALLS);
    for (name, reply) in replies {
        let entity = &reply["entities"][0];
        assert_eq!(entity["name"], name.as_str());
        let id = memory.resolve(&name).unwrap().expect("stored");
        let stored = memory.observations(id).unwrap();
        let said: Vec<&str> = entity["observations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let kept: Vec<&str> = stored.iter().map(|o| o.text.as_str()).collect();
        assert_eq!(said, kept, "the reply says what was stored for {name}");
        assert_eq!(
            memory.entity(id).unwrap().unwrap().kind.as_deref(),
            Some("test")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_arguments_get_invalid_params_and_the_server_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("memory.db");
    let client = connect(&db).await;
    call(
        &client,
        "create_entities",
        json!({ "entities": [{ "name": "Ann", "entityType": "person", "observations": ["likes tea"] }] }),
    )
    .await;
    let megabyte = "tea ".repeat(256 * 1024);
    for (tool, args, field) in [
        (
            "search_nodes",
            json!({ "query": "Ann", "limit": 1_000_000_000_000u64 }),
            "limit",
        ),
        (
            "search_nodes",
            json!({ "query": "Ann", "limit": u64::MAX }),
            "limit",
        ),
        (
            "search_memory",
            json!({ "query": "Ann", "limit": 1_000_000_000u64 }),
            "limit",
        ),
        (
            "search_memory",
            json!({ "query": "Ann", "depth": 4_294_967_295u64 }),
            "depth",
        ),
        (
            "search_memory",
            json!({ "query": megabyte, "limit": 5 }),
            "query",
        ),
        (
            "search_nodes",
            json!({ "query": "Ann", "limit": 1e20 }),
            "limit",
        ),
        ("read_graph", json!({ "limit": 1_000_000_000u64 }), "limit"),
        (
            "search_memory",
            json!({ "query": "Ann", "kinds": "chunk" }),
            "kinds",
        ),
        ("add_document", json!({ "text": 42 }), "text"),
        ("open_nodes", json!({ "names": "Ann" }), "names"),
    ] {
        let start = std::time::Instant::now();
        let err = try_call(&client, tool, args).await.unwrap_err();
        assert!(
            err.contains("-32602") || err.to_lowercase().contains("invalid param"),
            "{tool}: {err}"
        );
        assert!(err.contains(field), "{tool}: {err} should name {field}");
        assert!(
            start.elapsed() < std::time::Duration::from_secs(5),
            "{tool} took {:?}",
            start.elapsed()
        );
    }
    // Still serving.
    let found = call(&client, "search_nodes", json!({ "query": "Ann" })).await;
    assert_eq!(found["entities"][0]["name"], "Ann", "{found}");
    client.cancel().await.unwrap();
}

#[test]
fn an_oversized_request_line_gets_an_error_reply() {
    let dir = tempfile::tempdir().unwrap();
    let mut raw = Raw::spawn(&dir.path().join("memory.db"));
    raw.initialize(1);
    // 20 MiB in one line. The server reads it as it streams in, so writing it whole
    // before reading any reply cannot block.
    let huge = format!(
        "{{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/call\",\"params\":{{\"name\":\"search_nodes\",\"arguments\":{{\"query\":\"{}\"}}}}}}",
        "x".repeat(20 << 20)
    );
    raw.send_line(&huge);
    // The error answers the oversized line before the next request is read.
    let lines = raw.exchange(3, "tools/list", None);
    let oversized = lines.iter().find(|m| m["id"] == 2).expect("a reply to 2");
    assert_eq!(oversized["error"]["code"], -32600, "{oversized}");
    let listed = lines.last().unwrap();
    assert!(listed["result"]["tools"].is_array(), "{listed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_document_stores_chunks_that_search_memory_finds() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("memory.db");
    let client = connect(&db).await;
    call(
        &client,
        "create_entities",
        json!({"entities": [{"name": "Acme Corp", "entityType": "organization", "observations": []}]}),
    )
    .await;
    let text = format!(
        "{}ACME corp signed the lease for the lighthouse in Brest. {}",
        "A sentence about nothing in particular. ".repeat(30),
        "Then a remark on the weather. ".repeat(30)
    );
    let added = call(
        &client,
        "add_document",
        json!({"text": text, "title": "Lease notes", "source": "notes/lease.md"}),
    )
    .await;
    let chunks = added["chunks"].as_array().unwrap();
    assert!(chunks.len() > 1, "a long text is split: {added}");
    assert_eq!(chunks[0]["start"], 0);
    assert_eq!(
        chunks.last().unwrap()["end"].as_u64().unwrap() as usize,
        text.trim_end().chars().count(),
        "the chunks cover the text (but its trailing space)"
    );
    let chunk_ids: Vec<i64> = chunks.iter().map(|c| c["id"].as_i64().unwrap()).collect();
    let document = added["document_id"].as_i64().unwrap();

    let found = call(
        &client,
        "search_memory",
        json!({"query": "lighthouse lease in Brest"}),
    )
    .await;
    let hit = found["hits"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["kind"] == "chunk")
        .unwrap_or_else(|| panic!("no chunk hit: {found}"));
    assert!(
        hit["text"].as_str().unwrap().contains("lighthouse"),
        "{hit}"
    );
    assert!(chunk_ids.contains(&hit["id"].as_i64().unwrap()));

    // Limits: refused before any work, naming the field and the limit.
    let over = "x".repeat(4 * 1024 * 1024 + 1);
    let err = try_call(&client, "add_document", json!({ "text": over }))
        .await
        .unwrap_err();
    assert!(err.contains("text") && err.contains("4194304"), "{err}");
    let err = try_call(
        &client,
        "add_document",
        json!({ "text": "short", "title": "t".repeat(1025) }),
    )
    .await
    .unwrap_err();
    assert!(err.contains("title") && err.contains("1024"), "{err}");
    let err = try_call(&client, "add_document", json!({ "text": "   " }))
        .await
        .unwrap_err();
    assert!(err.contains("empty"), "{err}");
    client.cancel().await.unwrap();

    // Stored with its source and title under the server's episode, and linked by the
    // mention linker to the entity it names (another spelling).
    let memory = cairn::Memory::open(&db).unwrap();
    memory.sync().unwrap();
    let acme = memory.resolve("Acme Corp").unwrap().unwrap();
    let mentioning = memory.mentioned_by(acme, 10).unwrap();
    assert_eq!(mentioning.len(), 1, "{mentioning:?}");
    assert!(chunk_ids.contains(&mentioning[0].get()));
    let sqlite = rusqlite::Connection::open(&db).unwrap();
    let (source, metadata, agent): (String, String, String) = sqlite
        .query_row(
            "SELECT d.source, d.metadata, e.agent FROM document d JOIN episode e ON e.id = d.episode_id WHERE d.id = ?1",
            [document],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(source, "notes/lease.md");
    assert_eq!(
        serde_json::from_str::<Value>(&metadata).unwrap(),
        json!({ "title": "Lease notes" })
    );
    assert_eq!(agent, "mcp");
}

/// The limits the tools state, in their descriptions and schemas, are the library's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tool_descriptions_state_the_library_s_limits() {
    use cairn::{
        KnowledgeGraph, MAX_DOCUMENT_BYTES, MAX_NAME_BYTES, MAX_OBSERVATION_BYTES, SearchOptions,
    };
    let dir = tempfile::tempdir().unwrap();
    let client = connect(&dir.path().join("memory.db")).await;
    let tools: Vec<Value> = client
        .list_all_tools()
        .await
        .unwrap()
        .iter()
        .map(|t| serde_json::to_value(t).unwrap())
        .collect();
    client.cancel().await.unwrap();
    let tool = |name: &str| -> &Value {
        tools
            .iter()
            .find(|t| t["name"] == name)
            .unwrap_or_else(|| panic!("tool {name} missing"))
    };
    let says = |name: &str, what: &[usize]| {
        let description = tool(name)["description"].as_str().unwrap();
        for n in what {
            assert!(
                description.contains(&n.to_string()),
                "{name}'s description should state {n}: {description}"
            );
        }
    };
    says("create_entities", &[MAX_NAME_BYTES, MAX_OBSERVATION_BYTES]);
    says("create_relations", &[MAX_NAME_BYTES]);
    says("add_observations", &[MAX_OBSERVATION_BYTES]);
    says(
        "search_nodes",
        &[
            KnowledgeGraph::MAX_SEARCH_LIMIT,
            KnowledgeGraph::MAX_NODE_RELATIONS,
            SearchOptions::MAX_QUERY_BYTES,
        ],
    );
    says("open_nodes", &[KnowledgeGraph::MAX_NODE_RELATIONS]);
    says(
        "search_memory",
        &[SearchOptions::MAX_LIMIT, SearchOptions::MAX_QUERY_BYTES],
    );
    says("add_document", &[MAX_DOCUMENT_BYTES]);
    for (name, what) in [
        ("create_entities", "spelling"),
        ("search_nodes", "hybrid"),
        ("search_memory", "embedding"),
        ("create_entities", "processes"),
        ("create_entities", "provenance"),
        ("add_document", "reference server"),
    ] {
        let description = tool(name)["description"].as_str().unwrap();
        assert!(description.contains(what), "{name}: {description}");
    }
    // The schemas' bounds are the library's, so the server refuses what the memory would.
    let input = |name: &str, field: &str| tool(name)["inputSchema"]["properties"][field].clone();
    assert_eq!(
        input("search_nodes", "limit")["maximum"],
        KnowledgeGraph::MAX_SEARCH_LIMIT
    );
    assert_eq!(
        input("search_memory", "limit")["maximum"],
        SearchOptions::MAX_LIMIT
    );
    for name in ["search_nodes", "search_memory"] {
        assert_eq!(
            input(name, "query")["maxLength"],
            SearchOptions::MAX_QUERY_BYTES
        );
    }
    let text = input("add_document", "text")["maxLength"].as_u64().unwrap() as usize;
    assert!(text <= MAX_DOCUMENT_BYTES);
    let entity = &input("create_entities", "entities")["items"]["properties"];
    assert_eq!(entity["name"]["maxLength"], MAX_NAME_BYTES);
    assert_eq!(
        entity["observations"]["items"]["maxLength"],
        MAX_OBSERVATION_BYTES
    );
}

async fn connect_as(db: &Path, agent: &str) -> Client {
    let command = tokio::process::Command::new(env!("CARGO_BIN_EXE_cairn")).configure(|c| {
        c.arg("--db").arg(db).arg("mcp").arg("--agent").arg(agent);
    });
    let transport = TokioChildProcess::new(command).expect("spawn cairn mcp");
    ().serve(transport).await.expect("MCP handshake")
}

fn hits(found: &Value) -> &Vec<Value> {
    found["hits"].as_array().unwrap()
}

/// Whether a hit's text contains `needle`.
fn has(found: &Value, needle: &str) -> bool {
    hits(found)
        .iter()
        .any(|h| h["text"].as_str().unwrap().contains(needle))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_memory_filters_by_agent_time_validity_and_kind() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("memory.db");
    {
        // Another agent wrote before this server started; one of its facts has ended.
        let memory = cairn::Memory::open(&db).unwrap();
        let mail = memory.episode(&cairn::Episode::new("mail")).unwrap();
        mail.add_triple(("Ann", "works at", "Globex")).unwrap();
        let ended = mail.add_triple(("Ann", "works at", "Initech")).unwrap();
        mail.invalidate(ended, cairn::Timestamp::from_millis(1_767_571_200_000)) // 2026-01-05
            .unwrap();
        mail.observe("Ann", "Ann reads the mail at night").unwrap();
    }
    let client = connect_as(&db, "chat").await;
    call(
        &client,
        "create_entities",
        json!({"entities": [{"name": "Ann", "entityType": "person",
                             "observations": ["Ann chats about work all day"]}]}),
    )
    .await;
    let search = |args: Value| {
        let client = &client;
        async move {
            let mut query = json!({"query": "Ann work"});
            query
                .as_object_mut()
                .unwrap()
                .extend(args.as_object().unwrap().clone());
            call(client, "search_memory", query).await
        }
    };

    let all = search(json!({})).await;
    assert!(has(&all, "Ann works at Globex"), "{all}");
    assert!(has(&all, "Ann chats about work all day"), "{all}");
    assert!(
        !has(&all, "Initech"),
        "an ended fact is hidden by default: {all}"
    );

    let by_mail = search(json!({"agent": "mail"})).await;
    assert!(!hits(&by_mail).is_empty());
    assert!(!has(&by_mail, "Ann chats about work all day"), "{by_mail}");
    let by_chat = search(json!({"agent": "chat"})).await;
    assert!(has(&by_chat, "Ann chats about work all day"), "{by_chat}");
    assert!(!has(&by_chat, "Ann works at Globex"), "{by_chat}");
    // Each hit says who wrote it and when.
    for hit in hits(&by_mail) {
        assert_eq!(hit["provenance"]["agent"], "mail", "{hit}");
        assert!(
            hit["provenance"]["written"]
                .as_str()
                .unwrap()
                .ends_with('Z'),
            "{hit}"
        );
    }
    for hit in hits(&by_chat) {
        assert_eq!(hit["provenance"]["agent"], "chat", "{hit}");
        assert_eq!(hit["provenance"]["source"], "mcp", "{hit}");
    }
    let labelled = search(json!({"agent": "chat", "provenance": true})).await;
    assert!(
        labelled["context"].as_str().unwrap().contains("[chat, "),
        "{labelled}"
    );
    let nobody = search(json!({"agent": "nobody"})).await;
    assert!(hits(&nobody).is_empty(), "{nobody}");

    let relations = search(json!({"kinds": ["relation"]})).await;
    assert!(!hits(&relations).is_empty());
    assert!(hits(&relations).iter().all(|h| h["kind"] == "relation"));
    let mixed = search(json!({"kinds": ["observation", "entity"]})).await;
    assert!(
        hits(&mixed)
            .iter()
            .all(|h| h["kind"] == "observation" || h["kind"] == "entity"),
        "{mixed}"
    );

    // Everything was written on this machine's today: a window in the past or the future
    // is empty, one around today is not.
    let future = search(json!({"since": "2999-01-01"})).await;
    assert!(hits(&future).is_empty(), "{future}");
    let past = search(json!({"until": "2000-01-01T00:00:00Z"})).await;
    assert!(hits(&past).is_empty(), "{past}");
    let around = search(json!({"since": "2000-01-01", "until": "2999-01-01T00:00:00+02:00"})).await;
    assert_eq!(hits(&around).len(), hits(&all).len());

    let back_then = search(json!({"valid_at": "2025-06-01", "kinds": ["relation"]})).await;
    assert!(
        has(&back_then, "Ann works at Initech"),
        "valid_at shows what held then: {back_then}"
    );
    let initech = hits(&back_then)
        .iter()
        .find(|h| h["text"].as_str().unwrap().contains("Initech"))
        .unwrap();
    assert_eq!(
        initech["provenance"]["valid_to"], "2026-01-05T00:00:00Z",
        "{initech}"
    );
    let later = search(json!({"valid_at": "2026-06-01T12:00:00Z", "kinds": ["relation"]})).await;
    assert!(!has(&later, "Initech"), "{later}");
    assert!(has(&later, "Ann works at Globex"), "{later}");

    // Bad filter values are invalid params naming the field.
    for (args, field) in [
        (json!({"since": "yesterday"}), "since"),
        (json!({"until": "2026-02-30"}), "until"),
        (json!({"valid_at": "noon"}), "valid_at"),
        (
            json!({"since": "2026-06-01", "until": "2026-01-01"}),
            "until",
        ),
        (json!({"kinds": ["person"]}), "kinds"),
        (json!({"kinds": []}), "kinds"),
        (json!({"agent": " "}), "agent"),
    ] {
        let mut query = json!({"query": "Ann"});
        query
            .as_object_mut()
            .unwrap()
            .extend(args.as_object().unwrap().clone());
        let err = try_call(&client, "search_memory", query).await.unwrap_err();
        assert!(
            err.contains("-32602") || err.to_lowercase().contains("invalid param"),
            "{args}: {err}"
        );
        assert!(err.contains(field), "{args}: {err} should name {field}");
    }
    client.cancel().await.unwrap();
}

const GRAPH_URI: &str = "memory://knowledge-graph";

/// The graph resource through rmcp's client on protocol 2026-07-28: listed, read as JSON,
/// and a `subscriptions/listen` subscriber told about a write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_graph_resource_is_read_and_its_listeners_hear_of_writes() {
    use rmcp::model::{
        ProtocolVersion, ReadResourceRequestParams, ServerNotification, SubscriptionFilter,
    };
    use rmcp::{ClientLifecycleMode, ClientServiceExt};

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("memory.db");
    let command = tokio::process::Command::new(env!("CARGO_BIN_EXE_cairn")).configure(|c| {
        c.arg("--db").arg(&db).arg("mcp");
    });
    let transport = TokioChildProcess::new(command).expect("spawn cairn mcp");
    let client = ()
        .serve_with_lifecycle(
            transport,
            ClientLifecycleMode::Discover {
                preferred_versions: vec![ProtocolVersion::V_2026_07_28],
            },
        )
        .await
        .expect("MCP discover");

    let resources = client.list_all_resources().await.unwrap();
    assert_eq!(resources.len(), 1);
    assert_eq!(resources[0].uri, GRAPH_URI);
    assert_eq!(resources[0].name, "knowledge-graph");
    assert_eq!(resources[0].mime_type.as_deref(), Some("application/json"));
    let read = |client: &RunningService<RoleClient, ()>| {
        let peer = client.peer().clone();
        async move {
            let result = peer
                .read_resource(ReadResourceRequestParams::new(GRAPH_URI))
                .await
                .unwrap();
            let text = match &result.contents[0] {
                rmcp::model::ResourceContents::TextResourceContents {
                    text, mime_type, ..
                } => {
                    assert_eq!(mime_type.as_deref(), Some("application/json"));
                    text.clone()
                }
                other => panic!("not text: {other:?}"),
            };
            serde_json::from_str::<Value>(&text).unwrap()
        }
    };
    assert_eq!(
        read(&client).await,
        json!({"entities": [], "relations": []})
    );
    let unknown = client
        .read_resource(ReadResourceRequestParams::new("memory://nothing"))
        .await
        .unwrap_err();
    assert!(
        unknown.to_string().contains("memory://nothing"),
        "{unknown}"
    );

    let mut subscription = client
        .listen(
            SubscriptionFilter::builder()
                .resource_subscription(GRAPH_URI)
                .build(),
        )
        .await
        .unwrap();
    assert_eq!(
        subscription.acknowledged().resource_subscriptions,
        Some(vec![GRAPH_URI.to_owned()])
    );
    // A read, then a write: the subscription hears of the write (that reads announce
    // nothing is checked below, where the order of the lines shows it).
    call(&client, "search_nodes", json!({"query": "Ann"})).await;
    call(
        &client,
        "create_relations",
        json!({"relations": [{"from": "Ann", "to": "Bob", "relationType": "knows"}]}),
    )
    .await;
    // Bounded wait: a missing notification fails the test instead of hanging it.
    let next = tokio::time::timeout(std::time::Duration::from_secs(30), subscription.next())
        .await
        .expect("a notification")
        .unwrap();
    match next {
        Some(ServerNotification::ResourceUpdatedNotification(n)) => {
            assert_eq!(n.params.uri, GRAPH_URI)
        }
        other => panic!("not a resource update: {other:?}"),
    }
    let graph = read(&client).await;
    assert_eq!(graph["entities"].as_array().unwrap().len(), 2, "{graph}");
    assert_eq!(
        graph["relations"],
        json!([{"from": "Ann", "to": "Bob", "relationType": "knows"}])
    );
    drop(subscription);
    client.cancel().await.unwrap();
}

/// The reference server's way, on protocol 2025-06-18 over raw JSON-RPC lines (whose
/// order on stdout is the server's): `resources/subscribe`, then each write's
/// `notifications/resources/updated` before its result, none for a read or after
/// `resources/unsubscribe`.
#[test]
fn resources_subscribe_notifies_of_writes_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut raw = Raw::spawn(&dir.path().join("memory.db"));
    let updates = |lines: &[Value]| {
        lines
            .iter()
            .filter(|m| m["method"] == "notifications/resources/updated")
            .inspect(|m| assert_eq!(m["params"]["uri"], GRAPH_URI))
            .count()
    };
    let tool = |name: &str, arguments: Value| Some(json!({"name": name, "arguments": arguments}));
    let entity = json!({"entities": [{"name": "Ann", "entityType": "person", "observations": []}]});

    let init = raw.initialize(1);
    assert_eq!(
        init["result"]["capabilities"]["resources"]["subscribe"], true,
        "{init}"
    );
    let subscribed = raw.request(2, "resources/subscribe", Some(json!({"uri": GRAPH_URI})));
    assert!(subscribed["error"].is_null(), "{subscribed}");

    let write = raw.exchange(3, "tools/call", tool("create_entities", entity.clone()));
    assert_eq!(updates(&write), 1, "{write:?}");
    let read = raw.exchange(
        4,
        "tools/call",
        tool("open_nodes", json!({"names": ["Ann"]})),
    );
    assert_eq!(updates(&read), 0, "{read:?}");
    let delete = raw.exchange(
        5,
        "tools/call",
        tool("delete_entities", json!({"entityNames": ["Ann"]})),
    );
    assert_eq!(updates(&delete), 1, "{delete:?}");
    raw.request(6, "resources/unsubscribe", Some(json!({"uri": GRAPH_URI})));
    let unsubscribed = raw.exchange(7, "tools/call", tool("create_entities", entity));
    assert_eq!(updates(&unsubscribed), 0, "{unsubscribed:?}");
    let read = raw.request(8, "resources/read", Some(json!({"uri": GRAPH_URI})));
    let text = read["result"]["contents"][0]["text"].as_str().unwrap();
    let graph: Value = serde_json::from_str(text).unwrap();
    assert_eq!(graph["entities"][0]["name"], "Ann");
}

/// Spawns `cairn [global] mcp` with `env`, calls a tool that works and one that fails,
/// and returns what the server wrote on stderr.
async fn stderr_of_two_calls(global: &[&str], env: &[(&str, &str)]) -> String {
    use tokio::io::AsyncReadExt;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("memory.db");
    let command = tokio::process::Command::new(env!("CARGO_BIN_EXE_cairn")).configure(|c| {
        c.arg("--db").arg(&db).args(global).arg("mcp");
        c.env_remove("CAIRN_LOG");
        for (k, v) in env {
            c.env(k, v);
        }
    });
    let (transport, stderr) = TokioChildProcess::builder(command)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn cairn mcp");
    // Read while the server runs, so a full pipe never blocks it.
    let mut stderr = stderr.expect("piped stderr");
    let reader = tokio::spawn(async move {
        let mut text = String::new();
        stderr.read_to_string(&mut text).await.map(|_| text)
    });
    let client = ().serve(transport).await.expect("MCP handshake");
    call(&client, "read_graph", json!({})).await;
    let failed = try_call(
        &client,
        "add_observations",
        json!({"observations": [{"entityName": "Nobody", "contents": ["x"]}]}),
    )
    .await;
    assert!(failed.is_err());
    client.cancel().await.unwrap();
    // Bounded wait: the server exits when its stdin closes.
    tokio::time::timeout(std::time::Duration::from_secs(30), reader)
        .await
        .expect("the server exits")
        .unwrap()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_level_shows_calls_at_debug_and_failures_at_warn() {
    let line = |log: &str, level: &str, tool: &str| {
        log.lines().any(|l| {
            l.contains(level) && l.contains("cairn::mcp") && l.contains(&format!("tool=\"{tool}\""))
        })
    };
    let debug = stderr_of_two_calls(&["--log", "debug"], &[]).await;
    assert!(line(&debug, "DEBUG", "read_graph"), "{debug}");
    assert!(line(&debug, "WARN", "add_observations"), "{debug}");
    assert!(debug.contains("not found"), "the failure says why: {debug}");

    // The environment variable does the same; at warn only the failure shows.
    let warn = stderr_of_two_calls(&[], &[("CAIRN_LOG", "warn")]).await;
    assert!(line(&warn, "WARN", "add_observations"), "{warn}");
    assert!(!line(&warn, "DEBUG", "read_graph"), "{warn}");
    let quiet = stderr_of_two_calls(&[], &[("CAIRN_LOG", "off")]).await;
    assert!(!quiet.contains("cairn::mcp"), "{quiet}");
}

/// `cairn mcp` spoken to in raw JSON-RPC lines, for what an SDK client never sends.
struct Raw {
    server: std::process::Child,
    stdin: std::process::ChildStdin,
    stdout: std::io::Lines<std::io::BufReader<std::process::ChildStdout>>,
}

impl Raw {
    fn spawn(db: &Path) -> Raw {
        use std::io::BufRead;
        let mut server = std::process::Command::new(env!("CARGO_BIN_EXE_cairn"))
            .arg("--db")
            .arg(db)
            .arg("mcp")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let stdin = server.stdin.take().unwrap();
        let stdout = std::io::BufReader::new(server.stdout.take().unwrap()).lines();
        Raw {
            server,
            stdin,
            stdout,
        }
    }

    fn send(&mut self, message: Value) {
        self.send_line(&message.to_string());
    }

    fn send_line(&mut self, line: &str) {
        use std::io::Write;
        writeln!(self.stdin, "{line}").unwrap();
    }

    /// Sends request `id` and returns the lines the server writes up to and including
    /// its reply (notifications, replies to earlier requests), in the server's order.
    fn exchange(&mut self, id: i64, method: &str, params: Option<Value>) -> Vec<Value> {
        let mut message = json!({"jsonrpc": "2.0", "id": id, "method": method});
        if let Some(params) = params {
            message["params"] = params;
        }
        self.send(message);
        let mut lines = Vec::new();
        for line in self.stdout.by_ref() {
            let message: Value = serde_json::from_str(&line.unwrap()).unwrap();
            let done = message["id"] == id;
            lines.push(message);
            if done {
                return lines;
            }
        }
        panic!("no reply to {id}: {lines:?}");
    }

    /// Sends request `id` and returns the server's reply to it.
    fn request(&mut self, id: i64, method: &str, params: Option<Value>) -> Value {
        let mut lines = self.exchange(id, method, params);
        lines.pop().unwrap_or_default()
    }

    /// The handshake on protocol 2025-06-18 (the reference server's); returns the reply.
    fn initialize(&mut self, id: i64) -> Value {
        let init = self.request(
            id,
            "initialize",
            Some(json!({"protocolVersion": "2025-06-18", "capabilities": {},
                        "clientInfo": {"name": "test", "version": "0"}})),
        );
        assert!(init["result"].is_object(), "{init}");
        self.send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        init
    }
}

impl Drop for Raw {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

/// The JSON-RPC error of `reply`: its code and message.
fn rpc_error(reply: &Value) -> (i64, String) {
    let code = reply["error"]["code"]
        .as_i64()
        .unwrap_or_else(|| panic!("not an error: {reply}"));
    let message = reply["error"]["message"].as_str().unwrap_or("").to_owned();
    (code, message)
}

#[test]
fn protocol_errors_name_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let mut raw = Raw::spawn(&dir.path().join("memory.db"));

    // Before initialize: a clear refusal, and the session can still begin.
    let (code, message) = rpc_error(&raw.request(1, "tools/list", None));
    assert_eq!(code, -32600, "{message}");
    assert!(message.contains("not initialized"), "{message}");
    raw.initialize(2);

    // tools/call params of the wrong shape: -32602 naming the path.
    for (id, params, path) in [
        (3, None, "params"),
        (4, Some(json!("read_graph")), "params"),
        (5, Some(json!({"name": 42})), "params.name"),
        (6, Some(json!({"arguments": {}})), "params.name"),
        (
            7,
            Some(json!({"name": "read_graph", "arguments": "x"})),
            "params.arguments",
        ),
        (
            8,
            Some(json!({"name": "read_graph", "arguments": [1]})),
            "params.arguments",
        ),
    ] {
        let reply = raw.request(id, "tools/call", params);
        let (code, message) = rpc_error(&reply);
        assert_eq!(code, -32602, "{id}: {message}");
        assert!(message.contains(&format!("at {path}:")), "{id}: {message}");
        assert_eq!(reply["error"]["data"]["path"], path, "{reply}");
    }

    // Wrong types and missing fields inside the arguments: named by their path.
    let entity = |name: Value, observations: Value| {
        json!({"name": "create_entities", "arguments": {"entities": [
            {"name": "Ann", "entityType": "person", "observations": []},
            {"name": name, "entityType": "person", "observations": observations}]}})
    };
    for (id, params, path) in [
        (9, entity(json!(5), json!([])), "at entities[1].name:"),
        (
            10,
            entity(json!("Bob"), json!(["x", 1])),
            "at entities[1].observations[1]:",
        ),
        (
            11,
            json!({"name": "add_observations", "arguments": {"observations": [{"entityName": "Ann"}]}}),
            "at observations[0]: missing field `contents`",
        ),
        (
            12,
            json!({"name": "search_memory", "arguments": {"query": "x", "kinds": "chunk"}}),
            "at kinds:",
        ),
    ] {
        let (code, message) = rpc_error(&raw.request(id, "tools/call", Some(params)));
        assert_eq!(code, -32602, "{id}: {message}");
        assert!(message.contains(path), "{id}: {message} should say {path}");
    }

    // An unknown tool is the tool's failed result, as in the reference server.
    let reply = raw.request(
        13,
        "tools/call",
        Some(json!({"name": "nope", "arguments": {}})),
    );
    assert_eq!(reply["result"]["isError"], true, "{reply}");
    let text = reply["result"]["content"][0]["text"].as_str().unwrap();
    assert!(
        text.contains("nope") && text.contains("not found"),
        "{text}"
    );

    // Nothing of the refused calls was written, and the server still serves.
    let graph = raw.request(
        14,
        "tools/call",
        Some(json!({"name": "read_graph", "arguments": {}})),
    );
    assert_eq!(
        graph["result"]["structuredContent"],
        json!({"entities": [], "relations": []}),
        "{graph}"
    );
}
