//! The `tessera` binary: command-line definitions (clap derive) and
//! dispatch. The commands themselves live in [`cli`]; this file is wiring.
//!
//! Errors: a bad or unknown flag prints clap's message folded into one line
//! and exits 2; any other failure prints `error: <one line>` on stderr and
//! exits 1.

mod cli;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::error::ErrorKind;
use clap::{Args, Parser, Subcommand};

use cli::duration::{parse_duration, parse_seconds_or_duration};
use cli::parse_host_port;

/// Tessera: a distributed SQL database (ranges replicated by raft,
/// serializable transactions, PostgreSQL wire protocol).
#[derive(Parser, Debug)]
#[command(name = "tessera", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a node.
    Start(StartArgs),
    /// Bootstrap a new cluster, once, through any one of its nodes.
    Init(HostArg),
    /// Read and write single keys.
    Kv {
        #[command(subcommand)]
        cmd: KvCmd,
    },
    /// Low-level cluster inspection and surgery.
    Debug {
        #[command(subcommand)]
        cmd: DebugCmd,
    },
    /// Nodes of the cluster.
    Node {
        #[command(subcommand)]
        cmd: NodeCmd,
    },
    /// Load generators.
    Workload {
        #[command(subcommand)]
        cmd: WorkloadCmd,
    },
    /// Run a throwaway local cluster in this process.
    Demo(DemoArgs),
    /// An interactive SQL shell (or run statements with -e).
    Sql(SqlArgs),
}

#[derive(Args, Debug)]
pub struct SqlArgs {
    /// Connection URL.
    #[arg(
        long,
        value_name = "URL",
        default_value = "postgres://root@127.0.0.1:26257/defaultdb"
    )]
    pub url: String,
    /// Run this statement and exit (repeatable).
    #[arg(short = 'e', long = "execute", value_name = "SQL")]
    pub execute: Vec<String>,
}

#[derive(Args, Debug)]
pub struct HostArg {
    /// Address (HOST:PORT) of any node of the cluster.
    #[arg(long, value_name = "HOST:PORT", value_parser = parse_host_port)]
    pub host: String,
}

#[derive(Args, Debug)]
pub struct StartArgs {
    /// Directory of this node's store (created if missing).
    #[arg(long, value_name = "DIR")]
    pub store: PathBuf,
    /// Address to listen on for inter-node and client RPC.
    #[arg(long, value_name = "HOST:PORT", value_parser = parse_host_port)]
    pub listen_addr: String,
    /// Address of the HTTP endpoint (/health, /metrics).
    #[arg(long, value_name = "HOST:PORT", value_parser = parse_host_port)]
    pub http_addr: String,
    /// Nodes of the cluster to join (comma-separated or repeated).
    #[arg(long, value_name = "HOST:PORT", value_delimiter = ',', value_parser = parse_host_port)]
    pub join: Vec<String>,
    /// Address to serve SQL on (PostgreSQL wire protocol).
    #[arg(long, value_name = "HOST:PORT", value_parser = parse_host_port)]
    pub sql_addr: Option<String>,
    /// SQL sessions served at once; more are refused with SQLSTATE 53300
    /// ("sorry, too many clients already") [default: 200].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: Option<u32>,
    /// Reach the node at PEER through VIA instead (a proxy, tunnel or port
    /// forward): PEER is the address that node advertises (or a --join
    /// address). Comma-separated or repeated.
    #[arg(long, value_name = "PEER=VIA", value_delimiter = ',', value_parser = cli::parse_dial_override)]
    pub dial_override: Vec<(String, String)>,
    /// Maximum clock offset between nodes, e.g. 250ms [default: 250ms].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub max_offset: Option<Duration>,
    /// How long to keep trying to join before giving up, e.g. 10s [default: 10s].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub join_timeout: Option<Duration>,
    /// Keep MVCC versions this long before garbage-collecting shadowed
    /// ones, e.g. 4h [default: 4h].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub gc_ttl: Option<Duration>,
    /// Make every commit wait out the clock uncertainty (--max-offset)
    /// before it is acknowledged: external consistency (a transaction that
    /// starts after another one's commit returned is ordered after it, even
    /// on unrelated keys), at the cost of that wait on every write.
    #[arg(long)]
    pub linearizable: bool,
    /// Test only: run with a known bug so fault-testing checkers can be
    /// shown to catch it.
    #[arg(long, value_name = "BUG", hide = true)]
    pub inject_bug: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum KvCmd {
    /// Write KEY = VALUE.
    Put {
        key: String,
        value: String,
        #[command(flatten)]
        host: HostArg,
    },
    /// Print the value of KEY (exit 1 if it does not exist).
    Get {
        key: String,
        #[command(flatten)]
        host: HostArg,
    },
    /// Delete KEY.
    Del {
        key: String,
        #[command(flatten)]
        host: HostArg,
    },
    /// Print `key<TAB>value` for the keys in [START, END) ("" = unbounded).
    Scan {
        start: String,
        end: String,
        /// Stop after this many keys.
        #[arg(long, value_name = "N")]
        limit: Option<u32>,
        #[command(flatten)]
        host: HostArg,
    },
}

#[derive(Subcommand, Debug)]
pub enum DebugCmd {
    /// Split the range containing KEY so that a range starts at KEY.
    Split {
        key: String,
        #[command(flatten)]
        host: HostArg,
    },
    /// List all ranges with their replicas and leaseholders.
    Ranges(HostArg),
}

#[derive(Subcommand, Debug)]
pub enum NodeCmd {
    /// List the nodes with liveness, replica and lease counts.
    Status(HostArg),
}

#[derive(Subcommand, Debug)]
pub enum WorkloadCmd {
    /// Closed-loop puts and gets of random keys `wl/<n>`.
    Kv(WorkloadKvArgs),
}

#[derive(Args, Debug)]
pub struct WorkloadKvArgs {
    /// Nodes to send requests to, round-robin over the clients.
    #[arg(long, value_name = "HOST:PORT,...", value_delimiter = ',', required = true, value_parser = parse_host_port)]
    pub host: Vec<String>,
    /// Number of concurrent clients, each with its own connection.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub concurrency: u32,
    /// How long to measure, after a 1s warm-up (10s, 2m, or seconds).
    #[arg(long, value_name = "DURATION", value_parser = parse_seconds_or_duration)]
    pub duration: Duration,
    /// Size of each written value in bytes.
    #[arg(long, value_name = "BYTES")]
    pub value_size: u32,
    /// Percentage of operations that are reads.
    #[arg(long, value_name = "P", default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=100))]
    pub read_percent: u32,
    /// Number of distinct keys.
    #[arg(long, value_name = "K", default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub keys: u64,
}

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Number of nodes.
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=16))]
    pub nodes: u32,
    /// Serve until interrupted instead of opening a SQL shell.
    #[arg(long)]
    pub no_shell: bool,
    /// SQL port of the first node (the others get the next ports).
    #[arg(long, value_name = "PORT")]
    pub sql_port: Option<u16>,
    /// Every commit waits out the max offset before it is acknowledged (as
    /// `tessera start --linearizable`).
    #[arg(long)]
    pub linearizable: bool,
}

/// clap's error message folded into one line: the message lines before the
/// usage block, joined (`tip:` lines included).
pub fn clap_error_line(err: &clap::Error) -> String {
    let text = err.render().to_string();
    let mut line = String::new();
    // Inside an indented list that follows a line ending in ':'.
    let mut in_list = false;
    for raw in text.lines() {
        let l = raw.trim();
        if l.starts_with("Usage:") || l.starts_with("For more information") {
            break;
        }
        if l.is_empty() {
            in_list = false;
            continue;
        }
        let indented = raw.starts_with(' ');
        if !line.is_empty() {
            line.push_str(if line.ends_with(':') {
                in_list = indented;
                " "
            } else if in_list && indented {
                ", "
            } else {
                in_list = false;
                "; "
            });
        }
        line.push_str(l);
    }
    if !line.starts_with("error:") {
        line = format!("error: {line}");
    }
    line
}

/// A panic is a bug, but it still ends with one line, not a backtrace
/// (unless RUST_BACKTRACE asks for one).
fn install_panic_hook() {
    if std::env::var_os("RUST_BACKTRACE").is_some_and(|v| v != "0") {
        return;
    }
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic".into());
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let thread = std::thread::current()
            .name()
            .unwrap_or("unnamed")
            .to_string();
        eprintln!(
            "error: internal error (bug) in thread '{thread}'{at}: {}",
            cli::one_line(&msg)
        );
    }));
}

async fn run(cli: Cli, logging: &cli::start::Logging) -> cli::Result<()> {
    match cli.command {
        Command::Start(a) => {
            cli::start::run(cli::start::StartOpts {
                store: a.store,
                listen_addr: a.listen_addr,
                http_addr: a.http_addr,
                join: a.join,
                sql_addr: a.sql_addr,
                max_connections: a.max_connections.map(|n| n as usize),
                dial_overrides: a.dial_override.into_iter().collect(),
                max_offset: a.max_offset,
                join_timeout: a.join_timeout,
                inject_bug: a.inject_bug,
                gc_ttl: a.gc_ttl,
                linearizable: a.linearizable,
            })
            .await
        }
        Command::Init(h) => cli::admin::init(&h.host).await,
        Command::Kv { cmd } => match cmd {
            KvCmd::Put { key, value, host } => cli::kv::put(&host.host, &key, &value).await,
            KvCmd::Get { key, host } => cli::kv::get(&host.host, &key).await,
            KvCmd::Del { key, host } => cli::kv::del(&host.host, &key).await,
            KvCmd::Scan {
                start,
                end,
                limit,
                host,
            } => cli::kv::scan(&host.host, &start, &end, limit.unwrap_or(0)).await,
        },
        Command::Debug { cmd } => match cmd {
            DebugCmd::Split { key, host } => cli::kv::split(&host.host, &key).await,
            DebugCmd::Ranges(h) => cli::admin::ranges(&h.host).await,
        },
        Command::Node { cmd } => match cmd {
            NodeCmd::Status(h) => cli::admin::node_status(&h.host).await,
        },
        Command::Workload { cmd } => match cmd {
            WorkloadCmd::Kv(a) => {
                if a.duration.is_zero() {
                    return Err("--duration must be more than 0".into());
                }
                cli::workload::run_kv(cli::workload::KvWorkload {
                    hosts: a.host,
                    concurrency: a.concurrency as usize,
                    duration: a.duration,
                    value_size: a.value_size as usize,
                    read_percent: a.read_percent,
                    keys: a.keys,
                })
                .await
            }
        },
        Command::Sql(a) => {
            cli::sql::run(cli::sql::ShellOpts {
                url: a.url,
                execute: a.execute,
            })
            .await
        }
        Command::Demo(a) => {
            cli::demo::run(
                cli::demo::DemoOpts {
                    nodes: a.nodes as usize,
                    no_shell: a.no_shell,
                    sql_port: a.sql_port,
                    linearizable: a.linearizable,
                },
                logging,
            )
            .await
        }
    }
}

fn main() -> ExitCode {
    install_panic_hook();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => match e.kind() {
            ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => e.exit(),
            _ => {
                eprintln!("{}", clap_error_line(&e));
                return ExitCode::from(2);
            }
        },
    };
    let logging = cli::start::init_logging(match cli.command {
        Command::Start(_) => "info",
        _ => "warn",
    });
    // Statements nest (a view in a subquery in a CREATE TABLE AS ...):
    // 8 MiB stacks instead of tokio's 2 MiB keep deep ones from
    // overflowing a worker, which would abort the whole process.
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(8 << 20)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = rt.block_on(run(cli, &logging));
    let code = match &result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    };
    // Background tasks of a node that is gone get a moment, not forever.
    rt.shutdown_timeout(Duration::from_secs(1));
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("tessera").chain(args.iter().copied()))
    }

    #[test]
    fn start_flags() {
        let cli = parse(&[
            "start",
            "--store=/data/n1",
            "--listen-addr=127.0.0.1:26257",
            "--http-addr=127.0.0.1:8080",
            "--join=127.0.0.1:26258,127.0.0.1:26259",
            "--join",
            "10.0.0.4:26257",
            "--sql-addr=127.0.0.1:5432",
            "--max-offset=500ms",
            "--join-timeout=2m",
            "--dial-override=127.0.0.1:26258=127.0.0.1:36258,127.0.0.1:26259=127.0.0.1:36259",
        ])
        .unwrap();
        let Command::Start(a) = cli.command else {
            panic!("not start: {:?}", cli.command)
        };
        assert_eq!(a.store, PathBuf::from("/data/n1"));
        assert_eq!(a.listen_addr, "127.0.0.1:26257");
        assert_eq!(a.http_addr, "127.0.0.1:8080");
        assert_eq!(
            a.join,
            ["127.0.0.1:26258", "127.0.0.1:26259", "10.0.0.4:26257"]
        );
        assert_eq!(a.sql_addr.as_deref(), Some("127.0.0.1:5432"));
        assert_eq!(a.max_offset, Some(Duration::from_millis(500)));
        assert_eq!(a.join_timeout, Some(Duration::from_secs(120)));
        assert_eq!(
            a.dial_override,
            [
                ("127.0.0.1:26258".to_string(), "127.0.0.1:36258".to_string()),
                ("127.0.0.1:26259".to_string(), "127.0.0.1:36259".to_string())
            ]
        );
    }

    #[test]
    fn start_defaults() {
        let cli = parse(&[
            "start",
            "--store",
            "s",
            "--listen-addr",
            "h:1",
            "--http-addr",
            "h:2",
        ])
        .unwrap();
        let Command::Start(a) = cli.command else {
            panic!()
        };
        assert!(a.join.is_empty());
        assert_eq!(a.sql_addr, None);
        assert_eq!(a.max_offset, None);
        assert_eq!(a.join_timeout, None);
    }

    #[test]
    fn start_rejects_unknown_missing_and_bad_flags() {
        let base = ["start", "--store=s", "--listen-addr=h:1", "--http-addr=h:2"];
        let with = |extra: &str| {
            let mut v = base.to_vec();
            v.push(extra);
            parse(&v).unwrap_err()
        };
        let e = with("--bogus");
        assert_eq!(e.kind(), ErrorKind::UnknownArgument);
        let line = clap_error_line(&e);
        assert!(line.contains("--bogus") && !line.contains('\n'), "{line}");

        let e = parse(&["start", "--listen-addr=h:1", "--http-addr=h:2"]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::MissingRequiredArgument);
        let line = clap_error_line(&e);
        assert!(
            line.starts_with("error: ") && line.contains("--store"),
            "{line}"
        );
        let e = parse(&["start"]).unwrap_err();
        assert_eq!(
            clap_error_line(&e),
            "error: the following required arguments were not provided: \
             --store <DIR>, --listen-addr <HOST:PORT>, --http-addr <HOST:PORT>"
        );

        let e = with("--max-offset=250");
        assert_eq!(e.kind(), ErrorKind::ValueValidation);
        let line = clap_error_line(&e);
        assert!(
            line.contains("--max-offset") && line.contains("missing unit"),
            "{line}"
        );

        let e = with("--join=nohostport");
        assert!(clap_error_line(&e).contains("--join"));
    }

    #[test]
    fn client_commands_parse() {
        let cli = parse(&["kv", "put", "hello", "world", "--host=127.0.0.1:26257"]).unwrap();
        assert!(
            matches!(cli.command, Command::Kv { cmd: KvCmd::Put { ref key, ref value, .. } } if key == "hello" && value == "world")
        );
        let cli = parse(&["kv", "scan", "a", "z", "--host=h:1", "--limit", "5"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Kv {
                cmd: KvCmd::Scan { limit: Some(5), .. }
            }
        ));
        assert!(parse(&["kv", "get", "k"]).is_err(), "--host is required");
        let cli = parse(&[
            "workload",
            "kv",
            "--host=a:1,b:2",
            "--concurrency=4",
            "--duration=10",
            "--value-size=64",
        ])
        .unwrap();
        let Command::Workload {
            cmd: WorkloadCmd::Kv(w),
        } = cli.command
        else {
            panic!()
        };
        assert_eq!(w.host, ["a:1", "b:2"]);
        assert_eq!(w.duration, Duration::from_secs(10));
        assert_eq!((w.read_percent, w.keys), (0, 100_000));
        assert!(parse(&[
            "workload",
            "kv",
            "--host=a:1",
            "--concurrency=4",
            "--duration=10s",
            "--value-size=1",
            "--read-percent=101"
        ])
        .is_err());
        let cli = parse(&["demo", "--no-shell", "--sql-port", "5432"]).unwrap();
        let Command::Demo(d) = cli.command else {
            panic!()
        };
        assert_eq!((d.nodes, d.no_shell, d.sql_port), (3, true, Some(5432)));
    }

    #[test]
    fn clap_definitions_are_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
