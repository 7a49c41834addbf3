//! The commands of the `tessera` binary. `main.rs` holds the clap
//! definitions and dispatches here; each submodule implements one family of
//! commands. Everything that does not need a running node (parsing,
//! formatting, percentiles) is plain functions with unit tests.

pub mod admin;
pub mod client;
pub mod demo;
pub mod duration;
pub mod kv;
pub mod server_api;
pub mod sql;
pub mod start;
pub mod table;
pub mod workload;

use std::fmt;
use std::io::Write;

/// An error that ends a command: printed as `error: <message>` on one line,
/// exit status 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError(String);

impl CliError {
    pub fn new(msg: impl Into<String>) -> Self {
        CliError(one_line(&msg.into()))
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<String> for CliError {
    fn from(s: String) -> Self {
        CliError::new(s)
    }
}

impl From<&str> for CliError {
    fn from(s: &str) -> Self {
        CliError::new(s)
    }
}

pub type Result<T> = std::result::Result<T, CliError>;

/// Folds a possibly multi-line message into one line.
pub fn one_line(s: &str) -> String {
    s.split(['\n', '\r'])
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

/// Writes `s` to stdout. A closed pipe (`tessera kv scan ... | head`) is not
/// an error worth reporting: the reader has what it wanted.
pub fn out(s: &str) -> Result<()> {
    let mut o = std::io::stdout().lock();
    match o.write_all(s.as_bytes()).and_then(|_| o.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(CliError::new(format!("writing to stdout: {e}"))),
    }
}

/// Writes raw bytes (a value as stored) followed by a newline to stdout.
pub fn out_bytes_line(b: &[u8]) -> Result<()> {
    let mut o = std::io::stdout().lock();
    match o
        .write_all(b)
        .and_then(|_| o.write_all(b"\n"))
        .and_then(|_| o.flush())
    {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(CliError::new(format!("writing to stdout: {e}"))),
    }
}

/// clap value parser for `HOST:PORT` addresses (`127.0.0.1:26257`,
/// `localhost:26257`, `[::1]:26257`). Only the shape is checked here;
/// resolving the host is left to whoever connects or binds.
pub fn parse_host_port(s: &str) -> std::result::Result<String, String> {
    let bad = |why: &str| {
        format!("invalid address '{s}': {why} (expected HOST:PORT, e.g. 127.0.0.1:26257)")
    };
    let (host, port) = s.rsplit_once(':').ok_or_else(|| bad("missing ':PORT'"))?;
    if host.is_empty() {
        return Err(bad("missing host"));
    }
    if host.contains(':') && !(host.starts_with('[') && host.ends_with(']')) {
        return Err(bad("IPv6 hosts must be written in brackets"));
    }
    if host.chars().any(|c| c.is_whitespace() || c == '/') {
        return Err(bad("invalid host"));
    }
    port.parse::<u16>()
        .map_err(|_| bad("port must be a number from 0 to 65535"))?;
    Ok(s.to_string())
}

/// Parses `PEER=VIA`, two HOST:PORT addresses (`--dial-override`).
pub fn parse_dial_override(s: &str) -> std::result::Result<(String, String), String> {
    let (peer, via) = s
        .split_once('=')
        .ok_or_else(|| format!("invalid dial override '{s}': expected PEER=VIA"))?;
    Ok((parse_host_port(peer)?, parse_host_port(via)?))
}

/// Renders bytes as text for line-oriented output: valid UTF-8 as is, except
/// that backslash, tab, newline, carriage return and other control
/// characters are escaped (`\\`, `\t`, `\n`, `\r`, `\xNN`), as are bytes
/// that are not UTF-8. One key or value thus always stays on one line and
/// inside its tab-separated column.
pub fn escape_text(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len());
    for chunk in b.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => s.push_str("\\\\"),
                '\t' => s.push_str("\\t"),
                '\n' => s.push_str("\\n"),
                '\r' => s.push_str("\\r"),
                c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                    s.push_str(&format!("\\x{:02x}", c as u32))
                }
                c => s.push(c),
            }
        }
        for byte in chunk.invalid() {
            s.push_str(&format!("\\x{byte:02x}"));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_one_line() {
        assert_eq!(CliError::new("a\nb\r\n\n  c ").to_string(), "a; b; c");
        assert_eq!(one_line("plain"), "plain");
    }

    #[test]
    fn dial_overrides_parse_as_two_addresses() {
        assert_eq!(
            parse_dial_override("10.0.0.2:26257=127.0.0.1:40001"),
            Ok(("10.0.0.2:26257".into(), "127.0.0.1:40001".into()))
        );
        assert!(parse_dial_override("10.0.0.2:26257").is_err());
        assert!(parse_dial_override("10.0.0.2:26257=nope").is_err());
        assert!(parse_dial_override("=127.0.0.1:1").is_err());
    }

    #[test]
    fn host_port_shapes() {
        for ok in [
            "127.0.0.1:26257",
            "localhost:1",
            "[::1]:8080",
            "node-1.example:0",
        ] {
            assert_eq!(parse_host_port(ok).as_deref(), Ok(ok));
        }
        for bad in [
            "127.0.0.1",
            ":26257",
            "host:",
            "host:99999",
            "host:x",
            "::1:80",
            "a b:1",
        ] {
            let e = parse_host_port(bad).expect_err(bad);
            assert!(e.contains(&format!("'{bad}'")), "{e}");
        }
    }

    #[test]
    fn escapes_what_would_break_a_line() {
        assert_eq!(escape_text(b"hello world"), "hello world");
        assert_eq!(escape_text("caf\u{e9}".as_bytes()), "caf\u{e9}");
        assert_eq!(
            escape_text(b"a\tb\nc\\d\x01\x7f"),
            "a\\tb\\nc\\\\d\\x01\\x7f"
        );
        assert_eq!(escape_text(b"ok\xff\xfe"), "ok\\xff\\xfe");
    }
}
