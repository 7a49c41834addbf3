//! `tessera start`: runs one node until SIGTERM/SIGINT (graceful shutdown:
//! leases are moved away and in-flight requests finish) or until the node
//! reports a fatal condition (exit 1). Also the logging setup and signal
//! handling that `demo` shares.

use std::path::PathBuf;
use std::time::Duration;

use std::io::IsTerminal;

use tokio::signal::unix::{signal, Signal, SignalKind};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, EnvFilter, Registry};

use super::duration::format_duration;
use super::server_api::{Node, NodeConfig};
use super::{out, CliError, Result};

/// The installed log filter, which `demo` turns down while it shuts its
/// nodes down (their complaints about each other going away are expected).
pub struct Logging {
    handle: Option<reload::Handle<EnvFilter, Registry>>,
    from_env: bool,
}

impl Logging {
    /// Shows only errors from now on, unless RUST_LOG chose the filter.
    pub fn quiet(&self) {
        if let (Some(h), false) = (&self.handle, self.from_env) {
            let _ = h.reload(EnvFilter::new("error"));
        }
    }
}

/// Installs the tracing subscriber: plain text on stderr (colored only on a
/// terminal), filtered by `RUST_LOG` (env-filter syntax) or else by
/// `default` (e.g. `info`).
pub fn init_logging(default: &str) -> Logging {
    let (filter, from_env) = match std::env::var("RUST_LOG") {
        Ok(v) if !v.trim().is_empty() => match EnvFilter::try_new(&v) {
            Ok(f) => (f, true),
            Err(e) => {
                eprintln!(
                    "warning: ignoring RUST_LOG={v:?}: {}",
                    super::one_line(&e.to_string())
                );
                (EnvFilter::new(default), false)
            }
        },
        _ => (EnvFilter::new(default), false),
    };
    let (filter, handle) = reload::Layer::new(filter);
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    // Fails only if a subscriber is already set (tests); that one stays.
    let installed = tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .try_init()
        .is_ok();
    Logging {
        handle: installed.then_some(handle),
        from_env,
    }
}

/// SIGTERM and SIGINT, whichever comes first.
pub struct Signals {
    term: Signal,
    int: Signal,
}

impl Signals {
    /// Takes over both signals (from here on they no longer kill the
    /// process). Must be called inside the runtime.
    pub fn new() -> Result<Signals> {
        let install = |kind, name| {
            signal(kind).map_err(|e| CliError::new(format!("cannot install {name} handler: {e}")))
        };
        Ok(Signals {
            term: install(SignalKind::terminate(), "SIGTERM")?,
            int: install(SignalKind::interrupt(), "SIGINT")?,
        })
    }

    /// Waits for the next signal and returns its name.
    pub async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }
}

/// Everything `tessera start` was told.
#[derive(Debug, Clone)]
pub struct StartOpts {
    pub store: PathBuf,
    pub listen_addr: String,
    pub http_addr: String,
    pub join: Vec<String>,
    pub sql_addr: Option<String>,
    pub max_connections: Option<usize>,
    pub dial_overrides: std::collections::HashMap<String, String>,
    pub max_offset: Option<Duration>,
    pub join_timeout: Option<Duration>,
    pub inject_bug: Option<String>,
    pub gc_ttl: Option<Duration>,
    pub linearizable: bool,
}

impl StartOpts {
    pub fn node_config(&self) -> NodeConfig {
        let mut cfg = NodeConfig::new(
            self.store.clone(),
            self.listen_addr.clone(),
            self.http_addr.clone(),
        );
        cfg.join = self.join.clone();
        cfg.sql_addr = self.sql_addr.clone();
        if let Some(n) = self.max_connections {
            cfg.sql_max_connections = n;
        }
        cfg.dial_overrides = self.dial_overrides.clone();
        if let Some(d) = self.max_offset {
            cfg.max_offset = d;
        }
        cfg.inject_bug = self.inject_bug.clone();
        if let Some(d) = self.gc_ttl {
            cfg.gc_ttl = d;
        }
        cfg.linearizable = self.linearizable;
        if let Some(d) = self.join_timeout {
            cfg.join_timeout = d;
        }
        cfg
    }
}

pub async fn run(opts: StartOpts) -> Result<()> {
    let mut signals = Signals::new()?;
    let cfg = opts.node_config();
    let max_offset = cfg.max_offset;
    let node = tokio::select! {
        r = Node::start(cfg) => r.map_err(|e| CliError::new(e.to_string()))?,
        sig = signals.recv() => return Err(CliError::new(format!("received {sig} while starting"))),
    };
    out(&banner(&opts, &node, max_offset))?;

    let fatal = tokio::select! {
        sig = signals.recv() => {
            tracing::info!("received {sig}; shutting down gracefully (send it again to exit at once)");
            None
        }
        msg = node.wait_fatal() => Some(msg),
    };
    if let Some(msg) = fatal {
        return Err(CliError::new(msg));
    }
    tokio::select! {
        _ = node.shutdown() => {
            tracing::info!("shutdown complete");
            Ok(())
        }
        sig = signals.recv() => Err(CliError::new(format!("received {sig} again; exiting without finishing the shutdown"))),
    }
}

fn banner(opts: &StartOpts, node: &Node, max_offset: Duration) -> String {
    let listen = node.listen_addr();
    let mut s = String::from("tessera node started\n");
    s.push_str(&format!("  rpc:         {listen}\n"));
    s.push_str(&format!("  http:        http://{}\n", node.http_addr()));
    s.push_str(&format!("  store:       {}\n", opts.store.display()));
    s.push_str(&format!("  max offset:  {}\n", format_duration(max_offset)));
    if opts.linearizable {
        s.push_str("  commits:     linearizable (each commit waits out the max offset)\n");
    }
    match node.node_id() {
        Some(id) => s.push_str(&format!("  node id:     {id}\n")),
        None if opts.join.is_empty() => s.push_str(&format!(
            "  cluster:     none yet; to bootstrap a new cluster, run once: tessera init --host={listen}\n"
        )),
        None => s.push_str(&format!(
            "  joining:     {} (a new cluster also needs one `tessera init --host=...`)\n",
            opts.join.join(",")
        )),
    }
    if let Some(sql) = &opts.sql_addr {
        s.push_str(&format!(
            "  sql:         postgres://root@{sql}/defaultdb (no TLS or passwords yet: only loopback connections are accepted, without a password)\n"
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_map_onto_the_node_config() {
        let opts = StartOpts {
            store: "/tmp/s1".into(),
            listen_addr: "127.0.0.1:26257".into(),
            http_addr: "127.0.0.1:8080".into(),
            join: vec!["127.0.0.1:26258".into()],
            sql_addr: Some("127.0.0.1:5432".into()),
            max_connections: None,
            dial_overrides: Default::default(),
            max_offset: Some(Duration::from_millis(500)),
            join_timeout: None,
            inject_bug: None,
            gc_ttl: None,
            linearizable: false,
        };
        let cfg = opts.node_config();
        let default = NodeConfig::new(PathBuf::from("/x"), String::new(), String::new());
        assert_eq!(cfg.store_dir, PathBuf::from("/tmp/s1"));
        assert_eq!(cfg.listen_addr, "127.0.0.1:26257");
        assert_eq!(cfg.http_addr, "127.0.0.1:8080");
        assert_eq!(cfg.join, vec!["127.0.0.1:26258".to_string()]);
        assert_eq!(cfg.sql_addr.as_deref(), Some("127.0.0.1:5432"));
        assert_eq!(cfg.max_offset, Duration::from_millis(500));
        assert_eq!(cfg.join_timeout, default.join_timeout);
    }
}
