//! Requests `cairn mcp` answers itself, before the SDK (`rmcp`) reads them.
//!
//! rmcp decodes a request by its method and params together: a `tools/call` whose params
//! are missing, whose `name` is a number or whose `arguments` is a string fails to decode
//! as a `tools/call` and is answered -32601 "tools/call" (method not found), which tells
//! the client nothing. And a request sent before `initialize` (with no 2026-07-28
//! `_meta` instead) gets an error about `_meta` fields an older client never heard of.
//! [`Screen`] looks at each request line first and answers these with errors that say
//! what is wrong and where: -32602 with the JSON path of the bad field (`params.name`,
//! `params.arguments`) in the message and in `data.path`, and -32600 "not initialized".
//! Everything else passes on untouched.
//!
//! Only the JSON types of a few fields are read (serde's `IgnoredAny` skips the rest
//! without building it), so screening a request line costs one scan of its bytes, which
//! the framing already caps.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Value, json};

/// JSON-RPC's invalid-request code.
const INVALID_REQUEST: i64 = -32600;
/// JSON-RPC's invalid-params code.
const INVALID_PARAMS: i64 = -32602;

/// The methods rmcp answers before the lifecycle starts, `_meta` or not.
const BEFORE_INITIALIZE: [&str; 3] = ["initialize", "ping", "server/discover"];

/// The meta key by which a 2026-07-28 request carries its protocol version (such a request
/// needs no `initialize`).
const PROTOCOL_VERSION_META: &str = "io.modelcontextprotocol/protocolVersion";

/// The state of one connection as far as screening needs it.
#[derive(Default)]
pub(crate) struct Screen {
    /// An `initialize`, or a request carrying its protocol version, has been seen: the
    /// lifecycle has begun and rmcp takes every request from here.
    started: bool,
}

impl Screen {
    /// The error reply to `line` when cairn refuses it before rmcp; `None` passes it on
    /// (including lines that are not JSON or not a request: rmcp answers those).
    pub(crate) fn check(&mut self, line: &[u8]) -> Option<Value> {
        let request: Envelope = serde_json::from_slice(line).ok()?;
        let method = request.method?;
        // Notifications get no reply, whatever is wrong with them.
        let id = request.id?;
        let params = request.params.as_ref();
        // An initialize without params rmcp cannot read begins nothing.
        let initializes = method == "initialize" && params.is_some_and(|p| p.kind == Kind::Object);
        if initializes || params.is_some_and(|p| p.versioned) {
            self.started = true;
        }
        if !self.started && !BEFORE_INITIALIZE.contains(&method.as_ref()) {
            return Some(error(
                id,
                INVALID_REQUEST,
                format!(
                    "not initialized: send initialize before {method:?} (or, on protocol \
                     2026-07-28, carry _meta {PROTOCOL_VERSION_META:?} and the client's \
                     capabilities on every request)"
                ),
                None,
            ));
        }
        if method == "tools/call" {
            let refused = tool_call_params(request.params.as_ref())?;
            return Some(error(
                id,
                INVALID_PARAMS,
                refused.message,
                Some(refused.path),
            ));
        }
        None
    }
}

/// What is wrong with a `tools/call`'s params, and where.
struct Refused {
    path: &'static str,
    message: String,
}

/// `None` when `params` has a string `name` and an object (or no) `arguments`.
fn tool_call_params(params: Option<&Params>) -> Option<Refused> {
    let refuse = |path: &'static str, why: String| {
        Some(Refused {
            path,
            message: format!("invalid params at {path}: {why}"),
        })
    };
    let Some(params) = params.filter(|p| p.kind == Kind::Object) else {
        let found = params.map_or(Kind::Missing, |p| p.kind);
        return refuse(
            "params",
            format!("expected an object with the tool's name and arguments, found {found}"),
        );
    };
    match params.name {
        Some(Kind::String) => {}
        None => return refuse("params.name", "missing (the tool's name, a string)".into()),
        Some(found) => return refuse("params.name", format!("expected a string, found {found}")),
    }
    match params.arguments {
        None | Some(Kind::Null | Kind::Object) => None,
        Some(found) => refuse(
            "params.arguments",
            format!("expected an object, found {found}"),
        ),
    }
}

fn error(id: Value, code: i64, message: String, path: Option<&str>) -> Value {
    let mut error = json!({ "code": code, "message": message });
    if let Some(path) = path {
        error["data"] = json!({ "path": path });
    }
    json!({ "jsonrpc": "2.0", "id": id, "error": error })
}

/// The parts of a JSON-RPC message screening reads.
#[derive(Deserialize)]
struct Envelope<'a> {
    /// Requests have one (a number or a string); notifications do not.
    #[serde(default)]
    id: Option<Value>,
    #[serde(borrow, default)]
    method: Option<Cow<'a, str>>,
    #[serde(default)]
    params: Option<Params>,
}

/// A request's params: their JSON type and, for an object, the types of `name` and
/// `arguments` and whether `_meta` names a protocol version.
struct Params {
    kind: Kind,
    name: Option<Kind>,
    arguments: Option<Kind>,
    versioned: bool,
}

impl<'de> Deserialize<'de> for Params {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ParamsVisitor;
        impl<'de> Visitor<'de> for ParamsVisitor {
            type Value = Params;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Params, A::Error> {
                let mut params = Params {
                    kind: Kind::Object,
                    name: None,
                    arguments: None,
                    versioned: false,
                };
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                    match key.as_ref() {
                        "name" => params.name = Some(map.next_value::<KindOf>()?.0),
                        "arguments" => params.arguments = Some(map.next_value::<KindOf>()?.0),
                        "_meta" => params.versioned = map.next_value::<Meta>()?.versioned,
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(params)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Params, A::Error> {
                Ok(Params::other(KindVisitor.visit_seq(seq)?))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Params, E> {
                Ok(Params::other(Kind::Boolean))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Params, E> {
                Ok(Params::other(Kind::Number))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Params, E> {
                Ok(Params::other(Kind::Number))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Params, E> {
                Ok(Params::other(Kind::Number))
            }
            fn visit_str<E>(self, _: &str) -> Result<Params, E> {
                Ok(Params::other(Kind::String))
            }
            fn visit_unit<E>(self) -> Result<Params, E> {
                Ok(Params::other(Kind::Null))
            }
        }
        d.deserialize_any(ParamsVisitor)
    }
}

impl Params {
    fn other(kind: Kind) -> Self {
        Params {
            kind,
            name: None,
            arguments: None,
            versioned: false,
        }
    }
}

/// Whether a `_meta` object names a protocol version. A `_meta` that is not an object
/// fails the whole envelope, which then passes on for rmcp to judge.
struct Meta {
    versioned: bool,
}

impl<'de> Deserialize<'de> for Meta {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct MetaVisitor;
        impl<'de> Visitor<'de> for MetaVisitor {
            type Value = Meta;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Meta, A::Error> {
                let mut versioned = false;
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                    versioned |= key == PROTOCOL_VERSION_META;
                    map.next_value::<IgnoredAny>()?;
                }
                Ok(Meta { versioned })
            }
        }
        d.deserialize_map(MetaVisitor)
    }
}

/// The JSON type of a value (or of its absence).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Missing,
    Null,
    Boolean,
    Number,
    String,
    Array,
    Object,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(match self {
            Kind::Missing => "nothing",
            Kind::Null => "null",
            Kind::Boolean => "a boolean",
            Kind::Number => "a number",
            Kind::String => "a string",
            Kind::Array => "an array",
            Kind::Object => "an object",
        })
    }
}

/// A value read for its [`Kind`] only.
struct KindOf(Kind);

impl<'de> Deserialize<'de> for KindOf {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(KindVisitor).map(KindOf)
    }
}

struct KindVisitor;

impl<'de> Visitor<'de> for KindVisitor {
    type Value = Kind;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Kind, E> {
        Ok(Kind::Boolean)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Kind, E> {
        Ok(Kind::Number)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Kind, E> {
        Ok(Kind::Number)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Kind, E> {
        Ok(Kind::Number)
    }
    fn visit_str<E>(self, _: &str) -> Result<Kind, E> {
        Ok(Kind::String)
    }
    fn visit_unit<E>(self) -> Result<Kind, E> {
        Ok(Kind::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Kind, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Kind::Array)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Kind, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Kind::Object)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn started() -> Screen {
        Screen { started: true }
    }

    #[test]
    fn bad_tool_call_params_are_named_by_path() {
        for (line, path) in [
            (
                r#"{"jsonrpc":"2.0","id":2,"method":"tools/call"}"#,
                "params",
            ),
            (
                r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":[1]}"#,
                "params",
            ),
            (
                r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":42}}"#,
                "params.name",
            ),
            (
                r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"arguments":{}}}"#,
                "params.name",
            ),
            (
                r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"read_graph","arguments":"x"}}"#,
                "params.arguments",
            ),
        ] {
            let reply = started().check(line.as_bytes()).expect(line);
            assert_eq!(reply["id"], 2, "{reply}");
            assert_eq!(reply["error"]["code"], INVALID_PARAMS, "{reply}");
            assert_eq!(reply["error"]["data"]["path"], path, "{reply}");
            let message = reply["error"]["message"].as_str().unwrap();
            assert!(message.contains(&format!("at {path}:")), "{message}");
        }
    }

    #[test]
    fn good_requests_and_notifications_pass() {
        for line in [
            r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"read_graph"}}"#,
            r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"read_graph","arguments":null}}"#,
            r#"{"jsonrpc":"2.0","id":"a","method":"tools/call","params":{"name":"x","arguments":{"a":[1,{"b":2}]}}}"#,
            r#"{"jsonrpc":"2.0","method":"tools/call"}"#,
            r#"{"jsonrpc":"2.0","id":3,"method":"tools/list"}"#,
            r#"{"jsonrpc":"2.0","id":3,"result":{}}"#,
            "not json",
            "[1,2]",
        ] {
            assert!(started().check(line.as_bytes()).is_none(), "{line}");
        }
    }

    #[test]
    fn a_request_before_initialize_is_refused_until_initialize() {
        let mut screen = Screen::default();
        let list = br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;
        let reply = screen.check(list).unwrap();
        assert_eq!(reply["error"]["code"], INVALID_REQUEST);
        assert!(
            reply["error"]["message"]
                .as_str()
                .unwrap()
                .contains("not initialized")
        );
        assert!(
            screen
                .check(br#"{"jsonrpc":"2.0","id":0,"method":"ping"}"#)
                .is_none()
        );
        // An initialize rmcp cannot read begins nothing.
        let broken = br#"{"jsonrpc":"2.0","id":2,"method":"initialize","params":7}"#;
        assert!(screen.check(broken).is_none());
        assert!(screen.check(list).is_some());
        assert!(
            screen
                .check(br#"{"jsonrpc":"2.0","id":2,"method":"initialize","params":{}}"#)
                .is_none()
        );
        assert!(screen.check(list).is_none());
        // A 2026-07-28 request carries its version instead of initializing.
        let mut stateless = Screen::default();
        let versioned = br#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}"#;
        assert!(stateless.check(versioned).is_none());
        assert!(stateless.check(list).is_none());
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn values() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::from),
                any::<i64>().prop_map(Value::from),
                any::<f64>().prop_map(Value::from),
                any::<String>().prop_map(Value::from),
            ];
            let keys = prop_oneof![
                3 => prop::sample::select(vec![
                    "jsonrpc", "id", "method", "params", "name", "arguments", "_meta",
                    PROTOCOL_VERSION_META,
                ])
                .prop_map(String::from),
                1 => any::<String>(),
            ];
            leaf.prop_recursive(4, 32, 5, move |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                    prop::collection::vec((keys.clone(), inner), 0..6)
                        .prop_map(|pairs| Value::Object(pairs.into_iter().collect())),
                ]
            })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            /// Any line, JSON or not, is passed on or answered with an error reply to its
            /// request, never a panic.
            #[test]
            fn any_line_is_screened_without_panicking(
                method in prop::sample::select(vec!["tools/call", "initialize", "tools/list", "ping"]),
                id in prop_oneof![Just(Value::Null), any::<i64>().prop_map(Value::from)],
                params in values(),
                bytes in prop::collection::vec(any::<u8>(), 0..64),
                started in any::<bool>(),
            ) {
                let mut screen = Screen { started };
                let request = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
                if let Some(reply) = screen.check(request.to_string().as_bytes()) {
                    prop_assert_eq!(&reply["id"], &request["id"]);
                    prop_assert!(reply["error"]["code"].is_i64());
                }
                let _ = screen.check(&bytes);
            }
        }
    }
}
