//! `cairn mcp`: the reference memory server's nine tools, and cairn's `search_memory`
//! and `add_document`, over stdio, on the official Rust SDK (`rmcp`).
//!
//! The tool definitions (names, input schemas, result schemas) are in `tools.json`
//! beside this file; the input and result shapes are the reference server's, with
//! optional extras (`limit`, `cursor`). Each call runs on a blocking thread, as one
//! cairn transaction, so concurrent calls from one client — or from several server
//! processes on one file — neither lose writes nor duplicate names.
//!
//! Like the reference server, it offers the graph as the `memory://knowledge-graph`
//! resource and tells subscribed clients when a write tool call of this server changed
//! it (the tools whose `readOnlyHint` is false in `tools.json`).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use cairn::{
    Document, Episode, HitKind, KgEntity, KgObservations, KgRelation, KnowledgeGraph, Memory, Page,
    SearchOptions, Timestamp,
};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    ListResourcesResult, ListToolsResult, PaginatedRequestParams, ReadResourceRequestParams,
    ReadResourceResponse, ReadResourceResult, Resource, ResourceContents,
    ResourceUpdatedNotificationParam, ServerCapabilities, ServerConfig, SubscribeRequestParams,
    SubscriptionFilter, Tool, UnsubscribeRequestParams,
};
use rmcp::service::{Peer, RequestContext, SubscriptionContext, SubscriptionSink};
use rmcp::{ErrorData, RoleServer, ServerHandler, ServiceExt};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::Failure;
use crate::output::{HitView, iso};

/// The tool definitions served by `tools/list`.
const TOOLS: &str = include_str!("tools.json");

/// `search_nodes` returns at most this many entities unless the call says otherwise.
const SEARCH_NODES_LIMIT: usize = 10;
/// `search_memory` defaults.
const SEARCH_MEMORY_LIMIT: usize = 20;
const SEARCH_MEMORY_DEPTH: u32 = 2;
const SEARCH_MEMORY_BUDGET: usize = 1000;

/// The reference server's one resource: the knowledge graph as JSON.
const GRAPH_URI: &str = "memory://knowledge-graph";
/// The most entities `resources/read` returns, read_graph's largest page: a larger graph's
/// JSON ends its page with `nextCursor`, which read_graph takes as `cursor`.
const GRAPH_RESOURCE_ENTITIES: usize = 10_000;

/// Serves `memory` over stdio until the client closes the connection.
pub(crate) fn serve(memory: Memory, agent: &str) -> Result<(), Failure> {
    if let Some(embedder) = crate::commands::embedder() {
        // Stdout carries the protocol; stderr tells an operator which model is in use.
        eprintln!(
            "cairn mcp: embedding with {} (dimension {})",
            embedder.id, embedder.dimension
        );
    }
    let server = Server::new(memory, agent)?;
    tracing::info!(target: "cairn::mcp", agent, tools = server.tools.len(), "serving on stdio");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let running = server
            .serve(crate::framing::bounded_stdio())
            .await
            .map_err(|e| Failure::from(std::io::Error::other(e.to_string())))?;
        running
            .waiting()
            .await
            .map_err(|e| Failure::from(std::io::Error::other(e.to_string())))?;
        Ok(())
    })
}

#[derive(Clone)]
struct Server {
    memory: Memory,
    agent: String,
    /// The handle writes go through: stamped with this session's episode, created at the
    /// first write (a session that only reads records nothing).
    writer: Arc<Mutex<Option<Memory>>>,
    tools: Arc<Vec<Tool>>,
    /// Who is told when a tool call of this server changes the graph.
    watchers: Arc<Watchers>,
}

/// The clients waiting for `notifications/resources/updated`: by `resources/subscribe`
/// (protocols up to 2025-11-25, what the reference server offers), or by an open
/// `subscriptions/listen` request (2026-07-28).
#[derive(Default)]
struct Watchers {
    subscribed: Mutex<HashSet<String>>,
    listening: Mutex<Vec<SubscriptionSink>>,
}

impl Server {
    fn new(memory: Memory, agent: &str) -> Result<Self, Failure> {
        let tools: Vec<Tool> = serde_json::from_str(TOOLS)
            .map_err(|e| Failure::from(std::io::Error::other(format!("tools.json: {e}"))))?;
        Ok(Server {
            memory,
            agent: agent.to_owned(),
            writer: Arc::new(Mutex::new(None)),
            tools: Arc::new(tools),
            watchers: Arc::default(),
        })
    }

    fn reader(&self) -> KnowledgeGraph {
        self.memory.knowledge_graph()
    }

    /// The memory stamped with this session's episode (recorded at the first write).
    fn writer(&self) -> Result<Memory, ToolError> {
        let mut writer = self
            .writer
            .lock()
            .map_err(|_| ToolError::internal("poisoned"))?;
        if let Some(memory) = writer.as_ref() {
            return Ok(memory.clone());
        }
        let episode = Episode::new(self.agent.as_str()).source("mcp");
        let memory = self.memory.episode(&episode)?;
        *writer = Some(memory.clone());
        Ok(memory)
    }

    fn graph_writer(&self) -> Result<KnowledgeGraph, ToolError> {
        Ok(self.writer()?.knowledge_graph())
    }

    /// Runs one tool call (blocking: cairn calls are synchronous).
    fn call(&self, tool: &str, args: Value) -> Result<Value, ToolError> {
        match Call::decode(tool, args)? {
            Call::CreateEntities(a) => {
                let entities = self.graph_writer()?.create_entities(&a.entities)?;
                Ok(json!({ "entities": entities }))
            }
            Call::CreateRelations(a) => {
                let relations = self.graph_writer()?.create_relations(&a.relations)?;
                Ok(json!({ "relations": relations }))
            }
            Call::AddObservations(a) => {
                let results = self.graph_writer()?.add_observations(&a.observations)?;
                Ok(json!({ "results": results }))
            }
            Call::DeleteEntities(a) => {
                let n = self.graph_writer()?.delete_entities(&a.entity_names)?;
                Ok(done(n, a.entity_names.len(), "entities"))
            }
            Call::DeleteObservations(a) => {
                let asked = a.deletions.iter().map(|d| d.contents.len()).sum();
                let n = self.graph_writer()?.delete_observations(&a.deletions)?;
                Ok(done(n, asked, "observations"))
            }
            Call::DeleteRelations(a) => {
                let n = self.graph_writer()?.delete_relations(&a.relations)?;
                Ok(done(n, a.relations.len(), "relations"))
            }
            Call::ReadGraph(a) => {
                let page = a.limit.map(|limit| Page {
                    cursor: a.cursor.clone(),
                    limit,
                });
                Ok(serde_json::to_value(
                    self.reader().read_graph(page.as_ref())?,
                )?)
            }
            Call::SearchNodes(a) => {
                let limit = a.limit.unwrap_or(SEARCH_NODES_LIMIT);
                Ok(serde_json::to_value(
                    self.reader().search_nodes(&a.query, limit)?,
                )?)
            }
            Call::OpenNodes(a) => Ok(serde_json::to_value(self.reader().open_nodes(&a.names)?)?),
            Call::SearchMemory(a) => self.search_memory(a),
            Call::AddDocument(a) => self.add_document(a),
        }
    }

    fn search_memory(&self, a: SearchMemory) -> Result<Value, ToolError> {
        let options = SearchOptions::new()
            .limit(a.limit.unwrap_or(SEARCH_MEMORY_LIMIT))
            .depth(a.depth.unwrap_or(SEARCH_MEMORY_DEPTH))
            .provenance(a.provenance.unwrap_or(false))
            .read_your_writes(true);
        let options = a.filters(options)?;
        let budget = a.token_budget.unwrap_or(SEARCH_MEMORY_BUDGET);
        let context = self.memory.context(&a.query, &options, budget)?;
        let hits = HitView::with_provenance(&self.memory, &context.hits)?;
        Ok(json!({ "context": context.text, "tokens": context.tokens, "hits": hits }))
    }

    /// Stores a document under this session's episode; returns its id and its chunks'
    /// ids and character spans. The indexer links each chunk to the entities it names.
    fn add_document(&self, a: AddDocument) -> Result<Value, ToolError> {
        let mut doc = Document::new(a.text.as_str());
        if let Some(source) = &a.source {
            doc = doc.source(source.as_str());
        }
        if let Some(title) = &a.title {
            doc = doc.metadata(json!({ "title": title }));
        }
        if let Some(about) = &a.about {
            doc = doc.about(about.as_str());
        }
        let writer = self.writer()?;
        let (id, _) = writer.add_document(&doc)?;
        let chunks: Vec<Value> = writer
            .chunks(id)?
            .iter()
            .map(|c| json!({ "id": c.id.get(), "start": c.start, "end": c.end }))
            .collect();
        Ok(json!({ "document_id": id.get(), "chunks": chunks }))
    }

    /// Whether `tool` may change the memory (its `readOnlyHint` in `tools.json` is false).
    fn writes(&self, tool: &str) -> bool {
        self.tools.iter().any(|t| {
            t.name == tool
                && t.annotations
                    .as_ref()
                    .is_some_and(|a| a.read_only_hint == Some(false))
        })
    }

    /// Tells the subscribers that the graph resource changed. A client that went away is
    /// not this call's failure: the write succeeded, and its result is still sent.
    async fn graph_changed(&self, peer: &Peer<RoleServer>) {
        let subscribed = self
            .watchers
            .subscribed
            .lock()
            .is_ok_and(|uris| uris.contains(GRAPH_URI));
        if subscribed
            && let Err(e) = peer
                .notify_resource_updated(ResourceUpdatedNotificationParam::new(GRAPH_URI))
                .await
        {
            tracing::warn!(target: "cairn::mcp", error = %e, "resource update not sent");
        }
        let listening: Vec<SubscriptionSink> = self
            .watchers
            .listening
            .lock()
            .map(|sinks| sinks.clone())
            .unwrap_or_default();
        for sink in listening {
            if let Err(e) = sink.notify_resource_updated(GRAPH_URI).await {
                tracing::debug!(target: "cairn::mcp", error = %e, "resource update not sent");
            }
        }
    }

    /// The graph resource's JSON: read_graph's first page of the largest size.
    fn graph_json(&self) -> Result<String, ToolError> {
        let page = Page {
            cursor: None,
            limit: GRAPH_RESOURCE_ENTITIES,
        };
        Ok(serde_json::to_string_pretty(
            &self.reader().read_graph(Some(&page))?,
        )?)
    }
}

fn graph_resource() -> Resource {
    Resource::new(GRAPH_URI, "knowledge-graph")
        .with_title("Knowledge Graph")
        .with_description(format!(
            "The knowledge graph with its entities and relations, as read_graph returns it: \
             at most {GRAPH_RESOURCE_ENTITIES} entities, with `nextCursor` for read_graph when \
             more follow. Subscribers are told when a tool call of this server changes it."
        ))
        .with_mime_type("application/json")
}

/// Refuses a resource URI other than the graph's.
fn graph_uri(uri: &str) -> Result<(), ErrorData> {
    if uri == GRAPH_URI {
        Ok(())
    } else {
        Err(ErrorData::resource_not_found(
            format!("no resource {uri:?}; cairn offers {GRAPH_URI}"),
            None,
        ))
    }
}

/// The reference server's `{success, message}` for deletions.
fn done(deleted: usize, asked: usize, what: &str) -> Value {
    let skipped = asked.saturating_sub(deleted);
    let message = if skipped == 0 {
        format!("Deleted {deleted} {what}")
    } else {
        format!("Deleted {deleted} {what}; {skipped} did not exist")
    };
    json!({ "success": true, "message": message })
}

/// The tool's arguments decoded; a value of the wrong type or a missing field anywhere
/// inside is invalid params naming its path (`at entities[0].name: invalid type: ...`),
/// as the reference server's schema validation names it.
fn parse<T: DeserializeOwned>(args: Value) -> Result<T, ToolError> {
    serde_path_to_error::deserialize(args).map_err(|e| {
        let path = e.path().to_string();
        let why = e.into_inner();
        ToolError::InvalidParams(if path == "." {
            format!("invalid arguments: {why}")
        } else {
            format!("invalid arguments at {path}: {why}")
        })
    })
}

/// The first top-level argument that breaks the tool's declared type or bounds
/// (`minimum`, `maximum` of integers, `maxLength` of strings, counted in bytes), named;
/// `None` when every argument is within them. Required fields and nested values are left
/// to `parse` and the memory.
fn out_of_schema(schema: &serde_json::Map<String, Value>, args: &Value) -> Option<String> {
    let properties = schema.get("properties")?.as_object()?;
    for (field, rules) in properties {
        // An optional argument given as null is left out.
        let Some(value) = args.get(field).filter(|v| !v.is_null()) else {
            continue;
        };
        if let Some(expected) = rules.get("type").and_then(Value::as_str)
            && let Some(found) = json_type_mismatch(expected, value)
        {
            return Some(format!("{field}: expected {expected}, found {found}"));
        }
        if let Some(max) = rules.get("maxLength").and_then(Value::as_u64)
            && let Some(text) = value.as_str()
            && text.len() as u64 > max
        {
            return Some(format!(
                "{field}: {} bytes is over the maximum length of {max}",
                text.len()
            ));
        }
        if rules.get("type").and_then(Value::as_str) == Some("integer") {
            // A number too large for u64 (1e20) or not an integer at all is out of range.
            let Some(n) = value.as_u64() else {
                return Some(format!("{field}: {value} is not an integer in range"));
            };
            if let Some(max) = rules.get("maximum").and_then(Value::as_u64)
                && n > max
            {
                return Some(format!("{field}: {n} is over the maximum of {max}"));
            }
            if let Some(min) = rules.get("minimum").and_then(Value::as_u64)
                && n < min
            {
                return Some(format!("{field}: {n} is under the minimum of {min}"));
            }
        }
    }
    None
}

/// The JSON type of `value` when it is not the schema type `expected` (integers are
/// checked with their bounds); `None` when it matches or the type is not checked here.
fn json_type_mismatch(expected: &str, value: &Value) -> Option<&'static str> {
    let matches = match expected {
        "string" => value.is_string(),
        "array" => value.is_array(),
        "boolean" => value.is_boolean(),
        "object" => value.is_object(),
        _ => true,
    };
    if matches {
        return None;
    }
    Some(match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    })
}

/// A failed call: arguments the tool refuses (a JSON-RPC invalid-params error), or a
/// failure the model reads as the tool's result.
#[derive(Debug)]
enum ToolError {
    InvalidParams(String),
    Failed(String),
}

impl ToolError {
    fn internal(what: &str) -> Self {
        ToolError::Failed(format!("internal error: {what}"))
    }
}

impl From<cairn::Error> for ToolError {
    fn from(e: cairn::Error) -> Self {
        // Input the memory refuses (a blank name...) is the tool's answer, as in the
        // reference server; only arguments outside the schema are protocol errors.
        ToolError::Failed(e.to_string())
    }
}

impl From<serde_json::Error> for ToolError {
    fn from(e: serde_json::Error) -> Self {
        ToolError::internal(&e.to_string())
    }
}

/// A tool call with its arguments decoded, before anything runs.
enum Call {
    CreateEntities(CreateEntities),
    CreateRelations(Relations),
    AddObservations(AddObservations),
    DeleteEntities(DeleteEntities),
    DeleteObservations(DeleteObservations),
    DeleteRelations(Relations),
    ReadGraph(ReadGraph),
    SearchNodes(SearchNodes),
    OpenNodes(OpenNodes),
    SearchMemory(SearchMemory),
    AddDocument(AddDocument),
}

impl Call {
    /// `args` decoded as `tool`'s arguments: invalid params naming the path of a bad
    /// field, or the unknown tool's failure.
    fn decode(tool: &str, args: Value) -> Result<Call, ToolError> {
        Ok(match tool {
            "create_entities" => Call::CreateEntities(parse(args)?),
            "create_relations" => Call::CreateRelations(parse(args)?),
            "add_observations" => Call::AddObservations(parse(args)?),
            "delete_entities" => Call::DeleteEntities(parse(args)?),
            "delete_observations" => Call::DeleteObservations(parse(args)?),
            "delete_relations" => Call::DeleteRelations(parse(args)?),
            "read_graph" => Call::ReadGraph(parse(args)?),
            "search_nodes" => Call::SearchNodes(parse(args)?),
            "open_nodes" => Call::OpenNodes(parse(args)?),
            "search_memory" => Call::SearchMemory(parse(args)?),
            "add_document" => Call::AddDocument(parse(args)?),
            other => return Err(ToolError::Failed(format!("Tool {other} not found"))),
        })
    }
}

#[derive(Deserialize)]
struct CreateEntities {
    entities: Vec<KgEntity>,
}

#[derive(Deserialize)]
struct Relations {
    relations: Vec<KgRelation>,
}

#[derive(Deserialize)]
struct AddObservations {
    observations: Vec<KgObservations>,
}

#[derive(Deserialize)]
struct DeleteEntities {
    #[serde(rename = "entityNames")]
    entity_names: Vec<String>,
}

#[derive(Deserialize)]
struct DeleteObservations {
    deletions: Vec<KgObservations>,
}

#[derive(Deserialize)]
struct ReadGraph {
    cursor: Option<String>,
    limit: Option<usize>,
}

#[derive(Deserialize)]
struct SearchNodes {
    query: String,
    limit: Option<usize>,
}

#[derive(Deserialize)]
struct OpenNodes {
    names: Vec<String>,
}

#[derive(Deserialize)]
struct SearchMemory {
    query: String,
    limit: Option<usize>,
    depth: Option<u32>,
    token_budget: Option<usize>,
    provenance: Option<bool>,
    agent: Option<String>,
    since: Option<String>,
    until: Option<String>,
    valid_at: Option<String>,
    kinds: Option<Vec<String>>,
}

/// The names `search_memory`'s `kinds` takes, as hits name their kind.
const KINDS: [(&str, HitKind); 4] = [
    ("entity", HitKind::Entity),
    ("relation", HitKind::Relation),
    ("observation", HitKind::Observation),
    ("chunk", HitKind::Chunk),
];

impl SearchMemory {
    /// `options` with this call's filters; a bad value is an invalid-params error naming
    /// its field, before anything is searched.
    fn filters(&self, mut options: SearchOptions) -> Result<SearchOptions, ToolError> {
        let refuse = |field: &str, why: String| ToolError::InvalidParams(format!("{field}: {why}"));
        if let Some(agent) = &self.agent {
            if agent.trim().is_empty() {
                return Err(refuse("agent", "is empty".into()));
            }
            options = options.agent(agent);
        }
        let instant = |field: &str, value: &Option<String>| {
            value
                .as_deref()
                .map(|text| crate::dates::parse(text).map_err(|why| refuse(field, why)))
                .transpose()
        };
        let since = instant("since", &self.since)?;
        let until = instant("until", &self.until)?;
        if since.is_some() || until.is_some() {
            // An open end is the end of time.
            let since = since.unwrap_or(Timestamp::from_millis(i64::MIN));
            let until = until.unwrap_or(Timestamp::from_millis(i64::MAX));
            if until <= since {
                return Err(refuse(
                    "until",
                    format!("{} is not after since, {}", iso(until), iso(since)),
                ));
            }
            options = options.written_between(since, until);
        }
        if let Some(at) = instant("valid_at", &self.valid_at)? {
            options = options.valid_at(at);
        }
        if let Some(names) = &self.kinds {
            if names.is_empty() {
                return Err(refuse(
                    "kinds",
                    "is empty (leave it out for every kind)".into(),
                ));
            }
            let mut kinds = Vec::with_capacity(names.len());
            for name in names {
                let Some((_, kind)) = KINDS.iter().find(|(n, _)| n == name) else {
                    let known: Vec<&str> = KINDS.iter().map(|(n, _)| *n).collect();
                    return Err(refuse(
                        "kinds",
                        format!("{name:?} is not one of {}", known.join(", ")),
                    ));
                };
                kinds.push(*kind);
            }
            options = options.kinds(&kinds);
        }
        Ok(options)
    }
}

#[derive(Deserialize)]
struct AddDocument {
    text: String,
    title: Option<String>,
    source: Option<String>,
    about: Option<String>,
}

/// What the server tells its clients, including whether searches match by meaning.
fn instructions() -> String {
    let mut text = "A knowledge-graph memory shared by every client of this file, written by \
                    many processes at once without losing a write: entities with types and \
                    observations, relations between them, and documents. Names match across \
                    case, width and spacing, so each thing is one entity whatever its \
                    spelling. Use search_memory for ranked, token-budgeted context over \
                    everything, filtered by who wrote it, when, validity and kind, \
                    search_nodes and open_nodes for entities, add_document for long text."
        .to_owned();
    if let Some(embedder) = crate::commands::embedder() {
        text.push_str(&format!(
            " Searches also match by meaning (embedding model {}).",
            embedder.id
        ));
    }
    text
}

impl ServerHandler for Server {
    fn get_info(&self) -> ServerConfig {
        let capabilities = ServerCapabilities::builder()
            .enable_tools()
            .enable_resources()
            .enable_resources_subscribe()
            .build();
        let mut config = ServerConfig::new(capabilities).with_instructions(instructions());
        config.server_info = Implementation::new("cairn", env!("CARGO_PKG_VERSION"));
        config
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(self.tools.as_ref().clone()))
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        Ok(ListResourcesResult::with_all_items(vec![graph_resource()]))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        graph_uri(&request.uri)?;
        tracing::debug!(target: "cairn::mcp", uri = %request.uri, "resource read");
        let server = self.clone();
        let text = tokio::task::spawn_blocking(move || server.graph_json())
            .await
            .map_err(|e| ErrorData::internal_error(e.to_string(), None))?
            .map_err(|e| match e {
                ToolError::InvalidParams(why) => ErrorData::invalid_params(why, None),
                ToolError::Failed(why) => ErrorData::internal_error(why, None),
            })?;
        let contents = ResourceContents::text(text, GRAPH_URI).with_mime_type("application/json");
        Ok(ReadResourceResult::new(vec![contents]).into())
    }

    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        graph_uri(&request.uri)?;
        tracing::debug!(target: "cairn::mcp", uri = %request.uri, "resource subscribed");
        self.watchers
            .subscribed
            .lock()
            .map_err(|_| ErrorData::internal_error("poisoned", None))?
            .insert(request.uri);
        Ok(())
    }

    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.watchers
            .subscribed
            .lock()
            .map_err(|_| ErrorData::internal_error("poisoned", None))?
            .remove(&request.uri);
        Ok(())
    }

    fn accepted_subscription_filter(
        &self,
        _requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        Some(
            SubscriptionFilter::builder()
                .resource_subscription(GRAPH_URI)
                .build(),
        )
    }

    async fn listen(&self, context: SubscriptionContext) -> Result<(), ErrorData> {
        let sink = context.sink().clone();
        let id = sink.id().clone();
        if let Ok(mut sinks) = self.watchers.listening.lock() {
            sinks.push(sink);
        }
        context.cancelled().await;
        if let Ok(mut sinks) = self.watchers.listening.lock() {
            sinks.retain(|s| *s.id() != id);
        }
        Ok(())
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let name = request.name.to_string();
        let Some(tool) = self.tools.iter().find(|t| t.name == name) else {
            // The reference server answers an unknown tool as the tool's failed result,
            // which the model reads, not as a protocol error.
            let why = format!("Tool {name} not found");
            trace_refusal(&name, &why);
            return Ok(CallToolResult::error(vec![ContentBlock::text(why)]).into());
        };
        let args = Value::Object(request.arguments.unwrap_or_default());
        if let Some(problem) = out_of_schema(&tool.input_schema, &args) {
            // Refused before any work: a limit of 10^12 or a megabyte query never reaches
            // the memory, and the client learns which field is wrong.
            let problem = format!("invalid arguments at {problem}");
            trace_refusal(&name, &problem);
            return Err(ErrorData::invalid_params(problem, None));
        }
        let server = self.clone();
        let started = std::time::Instant::now();
        let tool = name.clone();
        let outcome = tokio::task::spawn_blocking(move || server.call(&name, args))
            .await
            .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
        trace_call(&tool, started.elapsed(), &outcome);
        if outcome.is_ok() && self.writes(&tool) {
            self.graph_changed(&context.peer).await;
        }
        Ok(match outcome {
            Ok(value) => CallToolResult::structured(value),
            Err(ToolError::InvalidParams(message)) => {
                return Err(ErrorData::invalid_params(message, None));
            }
            Err(ToolError::Failed(message)) => {
                CallToolResult::error(vec![ContentBlock::text(message)])
            }
        }
        .into())
    }
}

/// One event per tool call: `debug` when it succeeded, `warn` when it was refused or
/// failed (with why), so the default log level shows what clients get wrong.
fn trace_call(tool: &str, took: std::time::Duration, outcome: &Result<Value, ToolError>) {
    let took_ms = took.as_secs_f64() * 1e3;
    match outcome {
        Ok(_) => tracing::debug!(target: "cairn::mcp", tool, took_ms, "tool call"),
        Err(ToolError::InvalidParams(why) | ToolError::Failed(why)) => {
            tracing::warn!(target: "cairn::mcp", tool, took_ms, error = %why, "tool call failed")
        }
    }
}

/// A call refused before it ran (an unknown tool, an argument outside the schema).
fn trace_refusal(tool: &str, why: &str) {
    tracing::warn!(target: "cairn::mcp", tool, error = %why, "tool call refused");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_at_the_tool_s_limit_fits_in_one_request() {
        let tools: Vec<Value> = serde_json::from_str(TOOLS).unwrap();
        let add_document = tools.iter().find(|t| t["name"] == "add_document").unwrap();
        let max = add_document["inputSchema"]["properties"]["text"]["maxLength"]
            .as_u64()
            .unwrap() as usize;
        // Escaping makes a newline or a quote two bytes in JSON: a text at the limit with
        // every other character escaped must still fit in one request line, or its client
        // would meet the framing's limit instead of the schema's, which names the field.
        assert!(max + max / 2 < crate::framing::MAX_REQUEST_BYTES, "{max}");
        assert!(max <= cairn::MAX_DOCUMENT_BYTES);
    }

    #[test]
    fn decoding_names_the_path_of_a_bad_field() {
        let Err(ToolError::InvalidParams(why)) = Call::decode(
            "create_entities",
            json!({"entities": [{"name": "A", "entityType": "t", "observations": ["x", 5]}]}),
        ) else {
            panic!("decoded")
        };
        assert!(why.contains("at entities[0].observations[1]:"), "{why}");
        assert!(matches!(
            Call::decode("nope", json!({})),
            Err(ToolError::Failed(_))
        ));
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// Every property name of every tool's schema, so random arguments reach deep.
        fn fields() -> Vec<String> {
            fn collect(schema: &Value, out: &mut Vec<String>) {
                if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
                    for (name, inner) in properties {
                        out.push(name.clone());
                        collect(inner, out);
                    }
                }
                if let Some(items) = schema.get("items") {
                    collect(items, out);
                }
            }
            let tools: Vec<Value> = serde_json::from_str(TOOLS).unwrap();
            let mut out = Vec::new();
            for tool in &tools {
                collect(&tool["inputSchema"], &mut out);
            }
            out.sort();
            out.dedup();
            out
        }

        fn tool_names() -> Vec<String> {
            let tools: Vec<Value> = serde_json::from_str(TOOLS).unwrap();
            let mut names: Vec<String> = tools
                .iter()
                .map(|t| t["name"].as_str().unwrap().to_owned())
                .collect();
            names.push("no_such_tool".into());
            names
        }

        /// Any JSON value, its object keys mostly the schemas' field names, its strings
        /// sometimes dates, kinds or huge.
        fn values() -> impl Strategy<Value = Value> {
            let text = prop_oneof![
                3 => any::<String>(),
                1 => prop::sample::select(vec![
                    "2026-11-30", "2026-11-30T14:05:00Z", "2026-02-30", "entity", "chunk", "",
                    " ", "Ann",
                ])
                .prop_map(String::from),
                1 => Just("x".repeat(70_000)),
            ];
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::from),
                any::<i64>().prop_map(Value::from),
                any::<u64>().prop_map(Value::from),
                any::<f64>().prop_map(Value::from),
                text.prop_map(Value::from),
            ];
            let keys = prop_oneof![4 => prop::sample::select(fields()), 1 => any::<String>()];
            leaf.prop_recursive(4, 48, 5, move |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..5).prop_map(Value::from),
                    prop::collection::vec((keys.clone(), inner), 0..6)
                        .prop_map(|pairs| Value::Object(pairs.into_iter().collect())),
                ]
            })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            /// Whatever the arguments, the schema check and the decoding (and
            /// search_memory's filters) answer without panicking, as call_tool runs them.
            #[test]
            fn any_arguments_decode_or_are_refused(
                tool in prop::sample::select(tool_names()),
                args in values(),
            ) {
                let tools: Vec<Tool> = serde_json::from_str(TOOLS).unwrap();
                if let Some(schema) = tools.iter().find(|t| t.name == tool) {
                    let _ = out_of_schema(&schema.input_schema, &args);
                }
                if let Ok(Call::SearchMemory(a)) = Call::decode(&tool, args) {
                    let _ = a.filters(SearchOptions::new());
                }
            }
        }
    }
}
