//! Stdio for `cairn mcp` with a bound on the size of one request.
//!
//! MCP over stdio sends one JSON-RPC message per line. A line of tens of megabytes is
//! either a bug or an attack; buffering it whole costs memory, and a transport that
//! silently drops it leaves the client waiting forever. Here every line is read with a
//! cap of [`MAX_REQUEST_BYTES`]: lines within it are passed to the server through an
//! in-process pipe, a longer one is discarded as it streams in (never held whole) and
//! answered with a JSON-RPC error carrying the request's id when its first bytes show it.
//! Lines within the cap are screened first ([`crate::screen`]): requests rmcp would
//! answer unhelpfully are answered here with errors naming what is wrong.
//! The server's replies and these errors reach stdout through one writer, a line at a
//! time, so they never interleave.

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader, DuplexStream};
use tokio::sync::mpsc;

/// The largest request line `cairn mcp` accepts, in bytes (8 MiB).
pub(crate) const MAX_REQUEST_BYTES: usize = 8 << 20;
/// How much of an oversized line is kept to find its id.
const ID_WINDOW: usize = 4096;
/// In-process pipe buffer.
const PIPE_BYTES: usize = 1 << 16;

/// The server's side of the bounded stdio: what it reads requests from and writes replies
/// to. The tasks that move bytes between these and the real stdin/stdout run on the
/// current tokio runtime and end when stdin closes and the server stops writing.
pub(crate) fn bounded_stdio() -> (DuplexStream, DuplexStream) {
    bounded(tokio::io::stdin(), tokio::io::stdout(), MAX_REQUEST_BYTES)
}

fn bounded<R, W>(input: R, output: W, max: usize) -> (DuplexStream, DuplexStream)
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (server_in, requests) = tokio::io::duplex(PIPE_BYTES);
    let (replies, server_out) = tokio::io::duplex(PIPE_BYTES);
    let (errors_tx, errors_rx) = mpsc::unbounded_channel::<String>();
    tokio::spawn(read_requests(input, requests, errors_tx, max));
    tokio::spawn(write_replies(replies, errors_rx, output));
    (server_in, server_out)
}

/// Copies request lines within `max` bytes that pass the screen to `requests`; answers
/// longer ones, and the screen's refusals, on `errors`.
async fn read_requests<R: AsyncRead + Unpin>(
    input: R,
    mut requests: DuplexStream,
    errors: mpsc::UnboundedSender<String>,
    max: usize,
) {
    let mut input = BufReader::new(input);
    let mut line: Vec<u8> = Vec::new();
    let mut screen = crate::screen::Screen::default();
    loop {
        line.clear();
        let Ok(outcome) = read_bounded_line(&mut input, &mut line, max).await else {
            break;
        };
        match outcome {
            Line::End => break,
            Line::Whole => {
                if let Some(reply) = screen.check(&line) {
                    // Answered here (a malformed tools/call, a request before
                    // initialize): the server never sees it.
                    if errors.send(reply.to_string()).is_err() {
                        break;
                    }
                } else if requests.write_all(&line).await.is_err() {
                    break;
                }
            }
            Line::TooLong(bytes) => {
                let id = request_id(&line);
                let reply = serde_json::json!({
                    "jsonrpc": "2.0",
                    "id": id,
                    "error": {
                        "code": -32600,
                        "message": format!(
                            "request of {bytes} bytes is over cairn's limit of {max} bytes"
                        ),
                    },
                });
                if errors.send(reply.to_string()).is_err() {
                    break;
                }
            }
        }
    }
    let _ = requests.shutdown().await;
}

enum Line {
    /// `line` holds a whole line, newline included (or the last line, without one).
    Whole,
    /// The line was longer than the cap: `line` holds its first bytes, and this many bytes
    /// were skipped in all.
    TooLong(usize),
    /// Input closed.
    End,
}

/// Reads one line into `line`, never buffering more than `max` bytes of it.
async fn read_bounded_line<R: AsyncRead + Unpin>(
    input: &mut BufReader<R>,
    line: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<Line> {
    let mut total = 0usize;
    let mut too_long = false;
    loop {
        let available = input.fill_buf().await?;
        if available.is_empty() {
            return Ok(match (total, too_long) {
                (0, _) => Line::End,
                (_, true) => Line::TooLong(total),
                (_, false) => Line::Whole,
            });
        }
        let (chunk, done) = match available.iter().position(|&b| b == b'\n') {
            Some(at) => (&available[..=at], true),
            None => (available, false),
        };
        let n = chunk.len();
        total += n;
        if !too_long && total > max {
            too_long = true;
            line.truncate(ID_WINDOW);
        }
        if too_long {
            let room = ID_WINDOW.saturating_sub(line.len());
            line.extend_from_slice(&chunk[..room.min(n)]);
        } else {
            line.extend_from_slice(chunk);
        }
        input.consume(n);
        if done {
            return Ok(if too_long {
                Line::TooLong(total)
            } else {
                Line::Whole
            });
        }
    }
}

/// The `"id"` of a JSON-RPC request from its first bytes: a number or a string that
/// follows `"id":` (JSON-RPC clients put it near the start). `null` when it is not found.
fn request_id(head: &[u8]) -> serde_json::Value {
    let text = String::from_utf8_lossy(head);
    let Some(at) = text.find("\"id\"") else {
        return serde_json::Value::Null;
    };
    let rest = text[at + 4..].trim_start();
    let Some(rest) = rest.strip_prefix(':') else {
        return serde_json::Value::Null;
    };
    let rest = rest.trim_start();
    if let Some(quoted) = rest.strip_prefix('"') {
        return quoted
            .find('"')
            .map_or(serde_json::Value::Null, |end| quoted[..end].into());
    }
    let digits: String = rest
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '-')
        .collect();
    digits
        .parse::<i64>()
        .map_or(serde_json::Value::Null, serde_json::Value::from)
}

/// Forwards the server's reply lines and the framing errors to `output`, a line at a time.
async fn write_replies<W: AsyncWrite + Unpin>(
    replies: DuplexStream,
    mut errors: mpsc::UnboundedReceiver<String>,
    mut output: W,
) {
    let mut replies = BufReader::new(replies).lines();
    let mut errors_open = true;
    loop {
        let line = tokio::select! {
            // Errors first: they answer requests that got no other reply.
            biased;
            error = errors.recv(), if errors_open => match error {
                Some(line) => line,
                None => {
                    errors_open = false;
                    continue;
                }
            },
            reply = replies.next_line() => match reply {
                Ok(Some(line)) => line,
                _ => break,
            },
        };
        let written = async {
            output.write_all(line.as_bytes()).await?;
            output.write_all(b"\n").await?;
            output.flush().await
        };
        if written.await.is_err() {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_found_at_the_start_of_a_request() {
        assert_eq!(request_id(br#"{"jsonrpc":"2.0","id":42,"method":"x"#), 42);
        assert_eq!(request_id(br#"{"id": "abc", "method""#), "abc");
        assert_eq!(
            request_id(br#"{"method":"x","params":"#),
            serde_json::Value::Null
        );
    }

    #[tokio::test]
    async fn an_oversized_line_is_answered_and_the_next_one_passes() {
        let big = format!(
            "{{\"jsonrpc\":\"2.0\",\"id\":7,\"params\":\"{}\"}}\n",
            "x".repeat(5_000)
        );
        let input = format!("{big}{{\"id\":8}}\n");
        let (stdout, mut client_reads) = tokio::io::duplex(1 << 20);
        let (mut server_in, server_out) =
            bounded(std::io::Cursor::new(input.into_bytes()), stdout, 1_000);
        // What the server reads: only the small request.
        let mut request = String::new();
        BufReader::new(&mut server_in)
            .read_line(&mut request)
            .await
            .unwrap();
        assert_eq!(request, "{\"id\":8}\n");
        drop(server_out);
        let mut replies = String::new();
        use tokio::io::AsyncReadExt;
        client_reads.read_to_string(&mut replies).await.unwrap();
        let reply: serde_json::Value = serde_json::from_str(replies.trim()).unwrap();
        assert_eq!(reply["id"], 7);
        assert_eq!(reply["error"]["code"], -32600);
    }
}
