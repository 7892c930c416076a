//! The built-in services, sans-IO: each takes the bytes a connection
//! delivered and appends what to send back.
//!
//! - `echo` (RFC 862): everything received is sent back.
//! - `discard` (RFC 863): everything received is thrown away.
//! - `http`: a small HTTP/1.1 responder for curl and wrk — every `GET` or
//!   `HEAD` is answered `200 OK` with a body of the configured size (the text
//!   `smrnet\n` repeated, cut to length) and a `Content-Length`; keep-alive
//!   by default in HTTP/1.1, `Connection: close` and HTTP/1.0 close after the
//!   response; pipelined requests are answered in order.
//!
//! Invariant: input is hostile and bounded — no byte sequence panics, the
//! http request head is limited to [`MAX_REQUEST_HEAD`] bytes and a request
//! body to [`MAX_REQUEST_BODY`], and a request that breaks a rule gets one
//! error status and the connection closes.

use super::config::Service;

/// The longest request line plus headers the http service buffers.
pub const MAX_REQUEST_HEAD: usize = 8 * 1024;
/// The longest request body the http service reads (and discards).
pub const MAX_REQUEST_BODY: usize = 1 << 20;
/// Output the http service queues before it stops answering pipelined
/// requests and keeps the rest of the input for [`Session::resume`].
pub const OUTPUT_HIGH_WATER: usize = 256 * 1024;

/// What the connection should do after a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Keep reading.
    Continue,
    /// Send what is queued, then close.
    Close,
}

/// One connection's service state.
#[derive(Debug)]
pub enum Session {
    Echo,
    Discard,
    /// Boxed: every held connection pays for a `Session`, and only http
    /// sessions need this state (72 bytes against the enum's 16).
    Http(Box<Http>),
}

impl Session {
    /// A fresh session of `service`; `body` is the http body size. `None`
    /// for `forward` and `echo-async`, which the forward thread serves
    /// through the tokio API, not a worker.
    pub fn new(service: Service, body: usize) -> Option<Session> {
        Some(match service {
            Service::Echo => Session::Echo,
            Service::Discard => Session::Discard,
            Service::Http => Session::Http(Box::new(Http::new(body))),
            Service::Forward(_) | Service::EchoAsync => return None,
        })
    }

    /// Feeds `input`; appends the reply to `out`.
    pub fn on_data(&mut self, input: &[u8], out: &mut Vec<u8>) -> Next {
        match self {
            Session::Echo => {
                out.extend_from_slice(input);
                Next::Continue
            }
            Session::Discard => Next::Continue,
            Session::Http(h) => h.on_data(input, out),
        }
    }

    /// Whether input is held back until the output drains.
    pub fn has_backlog(&self) -> bool {
        matches!(self, Session::Http(h) if !h.backlog.is_empty())
    }

    /// Continues with held-back input once the output has drained.
    pub fn resume(&mut self, out: &mut Vec<u8>) -> Next {
        match self {
            Session::Http(h) => {
                let input = core::mem::take(&mut h.backlog);
                h.on_data(&input, out)
            }
            _ => Next::Continue,
        }
    }
}

/// The http service's per-connection state.
#[derive(Debug)]
pub struct Http {
    body_len: usize,
    head: Vec<u8>,
    /// Request-body bytes still to skip.
    skip: usize,
    /// Input not yet parsed because the output passed the high-water mark
    /// (at most one read's worth).
    backlog: Vec<u8>,
    /// Requests answered on this connection.
    pub answered: u64,
}

const BODY_PATTERN: &[u8] = b"smrnet\n";

/// The http body of `len` bytes.
pub fn http_body(len: usize) -> Vec<u8> {
    BODY_PATTERN.iter().copied().cycle().take(len).collect()
}

/// A parsed request head.
#[derive(Debug, PartialEq, Eq)]
struct Request {
    head_only: bool,
    keep_alive: bool,
    content_length: usize,
}

/// Why a request head was refused: the status to answer with.
#[derive(Debug, PartialEq, Eq)]
struct Refuse(u16, &'static str);

impl Http {
    fn new(body_len: usize) -> Http {
        Http {
            body_len,
            head: Vec::new(),
            skip: 0,
            backlog: Vec::new(),
            answered: 0,
        }
    }

    fn on_data(&mut self, mut input: &[u8], out: &mut Vec<u8>) -> Next {
        loop {
            if self.skip > 0 {
                let n = self.skip.min(input.len());
                self.skip -= n;
                input = &input[n..];
            }
            if input.is_empty() {
                return Next::Continue;
            }
            if out.len() >= OUTPUT_HIGH_WATER {
                self.backlog.extend_from_slice(input);
                return Next::Continue;
            }
            // Look for the end of the head in what is buffered plus the new
            // bytes, without buffering more than the limit.
            let old = self.head.len();
            let room = MAX_REQUEST_HEAD + 4 - old.min(MAX_REQUEST_HEAD + 4);
            let take = input.len().min(room);
            self.head.extend_from_slice(&input[..take]);
            let search_from = old.saturating_sub(3);
            let end = find(&self.head[search_from..], b"\r\n\r\n").map(|i| search_from + i + 4);
            let Some(end) = end else {
                if self.head.len() > MAX_REQUEST_HEAD {
                    respond_error(out, Refuse(431, "Request Header Fields Too Large"));
                    return Next::Close;
                }
                return Next::Continue;
            };
            if end > MAX_REQUEST_HEAD {
                respond_error(out, Refuse(431, "Request Header Fields Too Large"));
                return Next::Close;
            }
            // Bytes of `input` past the head stay in `input` for the next round.
            let used_of_input = end - old;
            input = &input[used_of_input..];
            let parsed = parse_request(&self.head[..end]);
            self.head.clear();
            match parsed {
                Err(refuse) => {
                    respond_error(out, refuse);
                    return Next::Close;
                }
                Ok(req) => {
                    self.skip = req.content_length;
                    self.respond(out, &req);
                    self.answered += 1;
                    if !req.keep_alive {
                        return Next::Close;
                    }
                }
            }
        }
    }

    fn respond(&self, out: &mut Vec<u8>, req: &Request) {
        let conn = if req.keep_alive {
            "keep-alive"
        } else {
            "close"
        };
        out.extend_from_slice(
            format!(
                "HTTP/1.1 200 OK\r\nServer: smrnetd\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: {conn}\r\n\r\n",
                self.body_len
            )
            .as_bytes(),
        );
        if !req.head_only {
            out.extend(BODY_PATTERN.iter().copied().cycle().take(self.body_len));
        }
    }
}

fn respond_error(out: &mut Vec<u8>, Refuse(code, reason): Refuse) {
    out.extend_from_slice(
        format!(
            "HTTP/1.1 {code} {reason}\r\nServer: smrnetd\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .as_bytes(),
    );
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Parses a request head ending in CRLF CRLF.
fn parse_request(head: &[u8]) -> Result<Request, Refuse> {
    const BAD: Refuse = Refuse(400, "Bad Request");
    let text = core::str::from_utf8(head).map_err(|_| BAD)?;
    let mut lines = text.split("\r\n");
    let request_line = lines.next().ok_or(BAD)?;
    let mut parts = request_line.split(' ');
    let (method, target, version) = (
        parts.next().ok_or(BAD)?,
        parts.next().ok_or(BAD)?,
        parts.next().ok_or(BAD)?,
    );
    if parts.next().is_some() || target.is_empty() || method.is_empty() {
        return Err(BAD);
    }
    let http10 = match version {
        "HTTP/1.1" => false,
        "HTTP/1.0" => true,
        _ => return Err(Refuse(505, "HTTP Version Not Supported")),
    };
    let head_only = match method {
        "GET" => false,
        "HEAD" => true,
        m if m.bytes().all(|b| b.is_ascii_uppercase()) => {
            return Err(Refuse(501, "Not Implemented"));
        }
        _ => return Err(BAD),
    };
    let mut keep_alive = !http10;
    let mut content_length: Option<usize> = None;
    for line in lines {
        if line.is_empty() {
            continue;
        }
        let (name, value) = line.split_once(':').ok_or(BAD)?;
        if name.is_empty() || name.bytes().any(|b| b == b' ' || b == b'\t') {
            return Err(BAD);
        }
        let value = value.trim();
        if name.eq_ignore_ascii_case("connection") {
            for token in value.split(',').map(str::trim) {
                if token.eq_ignore_ascii_case("close") {
                    keep_alive = false;
                } else if token.eq_ignore_ascii_case("keep-alive") {
                    keep_alive = true;
                }
            }
        } else if name.eq_ignore_ascii_case("content-length") {
            let n = value
                .parse::<usize>()
                .ok()
                .filter(|_| value.bytes().all(|b| b.is_ascii_digit()))
                .ok_or(BAD)?;
            if content_length.is_some_and(|c| c != n) {
                return Err(BAD);
            }
            if n > MAX_REQUEST_BODY {
                return Err(Refuse(413, "Content Too Large"));
            }
            content_length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(Refuse(501, "Not Implemented"));
        }
    }
    Ok(Request {
        head_only,
        keep_alive,
        content_length: content_length.unwrap_or(0),
    })
}

#[cfg(test)]
mod tests;
