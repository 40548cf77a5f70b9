//! A minimal synchronous MCP client over a `cairn mcp` child's stdio: one JSON-RPC
//! message per line, one call in flight.
//!
//! The load bench needs what rmcp's client hides: the server's pid (to read its peak RSS
//! from `/proc`) and the moment its stdin closes (to time its exit). A blocking client
//! per driver thread also keeps an async runtime out of a bench whose point is the
//! server processes' load.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The protocol version sent in `initialize`.
const PROTOCOL_VERSION: &str = "2025-06-18";

/// A running `cairn mcp` and the pipes to it.
pub struct StdioMcp {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    next_id: u64,
}

impl StdioMcp {
    /// Starts `cairn --db <db> mcp` (the `cairn` binary at `bin`, no model, no
    /// `CAIRN_DB` from the environment) and completes the MCP handshake.
    pub fn start(bin: &Path, db: &Path) -> StdioMcp {
        let mut child = Command::new(bin)
            .arg("--db")
            .arg(db)
            .arg("mcp")
            .env_remove("CAIRN_DB")
            .env_remove("CAIRN_MODEL")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn cairn mcp");
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut server = StdioMcp {
            child,
            stdin: Some(stdin),
            stdout,
            next_id: 0,
        };
        let init = server.request(
            "initialize",
            json!({
                "protocolVersion": PROTOCOL_VERSION,
                "capabilities": {},
                "clientInfo": {"name": "cairn-bench", "version": "0"},
            }),
        );
        assert!(init.get("result").is_some(), "initialize failed: {init}");
        server.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        server
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Calls `tool`; `Err` carries a JSON-RPC error or a tool result marked `isError`.
    pub fn call(&mut self, tool: &str, arguments: Value) -> Result<Value, String> {
        let reply = self.request("tools/call", json!({"name": tool, "arguments": arguments}));
        if let Some(error) = reply.get("error") {
            return Err(error.to_string());
        }
        let result = reply.get("result").cloned().unwrap_or(Value::Null);
        if result["isError"] == Value::Bool(true) {
            return Err(result["content"].to_string());
        }
        Ok(result)
    }

    /// Closes the server's stdin and waits for it to exit: how long that took.
    pub fn close(mut self) -> Duration {
        let start = Instant::now();
        drop(self.stdin.take());
        let status = self.child.wait().expect("wait for cairn mcp");
        let elapsed = start.elapsed();
        assert!(status.success(), "cairn mcp exited with {status}");
        elapsed
    }

    /// Sends a request and reads lines until the reply with its id.
    fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        let mut line = String::new();
        loop {
            line.clear();
            let n = self
                .stdout
                .read_line(&mut line)
                .expect("read from cairn mcp");
            assert!(
                n > 0,
                "cairn mcp closed stdout while {method} {id} was pending"
            );
            // Skip notifications and anything else that is not this reply.
            if let Ok(reply) = serde_json::from_str::<Value>(&line)
                && reply.get("id") == Some(&json!(id))
            {
                return reply;
            }
        }
    }

    fn send(&mut self, message: &Value) {
        let stdin = self.stdin.as_mut().expect("stdin open until close");
        writeln!(stdin, "{message}").expect("write to cairn mcp");
        stdin.flush().expect("flush to cairn mcp");
    }
}
