//! `tessera sql`: a SQL shell over the PostgreSQL wire protocol.
//!
//! Statements may span lines and end with `;`. Meta-commands: `\q` quits,
//! `\d` lists tables, `\d NAME` describes one, `\?` helps. Interactive use
//! has line editing and history (rustyline); with a pipe on stdin the shell
//! runs what it reads and stops at the first error with exit status 1.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

use super::table::Table;
use super::CliError;

/// What to run: `execute` statements, or an interactive session.
pub struct ShellOpts {
    pub url: String,
    pub execute: Vec<String>,
}

/// A statement collector: feed it lines, it hands back complete inputs.
#[derive(Default)]
pub struct StatementBuffer {
    buf: String,
}

/// One complete input of the shell.
#[derive(Debug, PartialEq, Eq)]
pub enum Input {
    Sql(String),
    Meta(String),
}

impl StatementBuffer {
    /// Adds a line; returns the inputs it completes.
    pub fn push_line(&mut self, line: &str) -> Vec<Input> {
        let trimmed = line.trim();
        if self.buf.trim().is_empty() && trimmed.starts_with('\\') {
            self.buf.clear();
            return vec![Input::Meta(trimmed.to_string())];
        }
        if !self.buf.is_empty() {
            self.buf.push('\n');
        }
        self.buf.push_str(line);
        let mut out = Vec::new();
        while let Some(end) = statement_end(&self.buf) {
            let stmt: String = self.buf.drain(..=end).collect();
            let stmt = stmt.trim().trim_end_matches(';').trim().to_string();
            if !stmt.is_empty() {
                out.push(Input::Sql(stmt));
            }
        }
        if self.buf.trim().is_empty() {
            self.buf.clear();
        }
        out
    }

    /// Whether a statement is started but not finished.
    pub fn is_pending(&self) -> bool {
        !self.buf.trim().is_empty()
    }

    /// What is left at end of input, as a last statement.
    pub fn finish(&mut self) -> Option<Input> {
        let rest = std::mem::take(&mut self.buf);
        let rest = rest.trim().trim_end_matches(';').trim();
        (!rest.is_empty()).then(|| Input::Sql(rest.to_string()))
    }
}

/// Byte offset of the first `;` outside quotes and comments.
fn statement_end(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let (mut i, mut quote) = (0, None::<u8>);
    while i < b.len() {
        let c = b[i];
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None => match c {
                b'\'' | b'"' => quote = Some(c),
                b'-' if b.get(i + 1) == Some(&b'-') => {
                    while i < b.len() && b[i] != b'\n' {
                        i += 1;
                    }
                }
                b';' => return Some(i),
                _ => {}
            },
        }
        i += 1;
    }
    None
}

async fn connect(url: &str) -> Result<Client, CliError> {
    let (client, conn) = tokio_postgres::connect(url, NoTls)
        .await
        .map_err(|e| CliError::new(format!("cannot connect to {url}: {e}")))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(client)
}

fn describe_error(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("ERROR: {} (SQLSTATE {})", db.message(), db.code().code()),
        None => format!("ERROR: {e}"),
    }
}

/// Runs one statement and renders its result as text.
pub async fn run_statement(client: &Client, sql: &str) -> Result<String, String> {
    let msgs = client
        .simple_query(sql)
        .await
        .map_err(|e| describe_error(&e))?;
    let mut out = String::new();
    let mut header: Vec<String> = Vec::new();
    let mut rows: Vec<Vec<String>> = Vec::new();
    let flush = |out: &mut String, header: &mut Vec<String>, rows: &mut Vec<Vec<String>>| {
        if !header.is_empty() {
            let mut t = Table::new(header.iter().cloned());
            for r in rows.iter() {
                t.row(r.iter().cloned());
            }
            out.push_str(&t.render());
            out.push_str(&format!(
                "({} row{})\n",
                rows.len(),
                if rows.len() == 1 { "" } else { "s" }
            ));
        }
        header.clear();
        rows.clear();
    };
    for m in msgs {
        match m {
            SimpleQueryMessage::RowDescription(cols) => {
                flush(&mut out, &mut header, &mut rows);
                header = cols.iter().map(|c| c.name().to_string()).collect();
            }
            SimpleQueryMessage::Row(r) => {
                if header.is_empty() {
                    header = r.columns().iter().map(|c| c.name().to_string()).collect();
                }
                rows.push(
                    (0..r.len())
                        .map(|i| r.get(i).unwrap_or("NULL").to_string())
                        .collect(),
                );
            }
            SimpleQueryMessage::CommandComplete(n) => {
                if header.is_empty() {
                    out.push_str(&format!("OK {n}\n"));
                } else {
                    flush(&mut out, &mut header, &mut rows);
                }
            }
            _ => {}
        }
    }
    flush(&mut out, &mut header, &mut rows);
    Ok(out)
}

fn meta_to_sql(meta: &str) -> Result<Option<String>, String> {
    let mut parts = meta.split_whitespace();
    let cmd = parts.next().unwrap_or("");
    let arg = parts.next();
    match (cmd, arg) {
        ("\\q", _) => Ok(None),
        ("\\d" | "\\dt", None) => Ok(Some("SHOW TABLES".into())),
        ("\\d", Some(t)) => Ok(Some(format!("SHOW CREATE TABLE {t}"))),
        ("\\?", _) => Err("\\q quit  \\d list tables  \\d NAME describe a table  \\? help".into()),
        _ => Err(format!("unknown command {cmd}; try \\?")),
    }
}

/// Runs the shell.
pub async fn run(opts: ShellOpts) -> Result<(), CliError> {
    let client = connect(&opts.url).await?;
    if !opts.execute.is_empty() {
        for sql in &opts.execute {
            match run_statement(&client, sql).await {
                Ok(out) => print!("{out}"),
                Err(e) => return Err(CliError::new(e)),
            }
        }
        return Ok(());
    }
    let interactive = std::io::stdin().is_terminal();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Option<String>>(1);
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let pending_flag = Arc::new(AtomicBool::new(false));
    let pending_seen = pending_flag.clone();
    // rustyline blocks: it reads lines on its own thread, one at a time,
    // waiting for each to be handled before prompting again.
    std::thread::spawn(move || {
        let mut editor = match rustyline::DefaultEditor::new() {
            Ok(e) => e,
            Err(_) => {
                let _ = tx.blocking_send(None);
                return;
            }
        };
        let mut pending = false;
        loop {
            let prompt = if !interactive {
                ""
            } else if pending {
                "      -> "
            } else {
                "tessera> "
            };
            match editor.readline(prompt) {
                Ok(line) => {
                    if interactive && !line.trim().is_empty() {
                        let _ = editor.add_history_entry(line.as_str());
                    }
                    if tx.blocking_send(Some(line)).is_err() {
                        return;
                    }
                    match done_rx.recv() {
                        Ok(()) => {}
                        Err(_) => return,
                    }
                    pending = pending_seen.load(Ordering::SeqCst);
                }
                Err(_) => {
                    let _ = tx.blocking_send(None);
                    return;
                }
            }
        }
    });
    let mut buffer = StatementBuffer::default();
    let mut failed = false;
    while let Some(line) = rx.recv().await {
        let Some(line) = line else { break };
        let mut quit = false;
        for input in buffer.push_line(&line) {
            let sql = match input {
                Input::Meta(m) => match meta_to_sql(&m) {
                    Ok(None) => {
                        quit = true;
                        break;
                    }
                    Ok(Some(sql)) => sql,
                    Err(msg) => {
                        println!("{msg}");
                        continue;
                    }
                },
                Input::Sql(s) => s,
            };
            match run_statement(&client, &sql).await {
                Ok(out) => print!("{out}"),
                Err(e) => {
                    eprintln!("{e}");
                    if !interactive {
                        failed = true;
                        quit = true;
                        break;
                    }
                }
            }
        }
        if quit {
            break;
        }
        pending_flag.store(buffer.is_pending(), Ordering::SeqCst);
        let _ = done_tx.send(());
    }
    if !failed {
        if let Some(Input::Sql(sql)) = buffer.finish() {
            match run_statement(&client, &sql).await {
                Ok(out) => print!("{out}"),
                Err(e) => return Err(CliError::new(e)),
            }
        }
    }
    if failed {
        return Err(CliError::new("a statement failed"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_end_at_semicolons_outside_quotes() {
        let mut b = StatementBuffer::default();
        assert!(b.push_line("SELECT 'a;b',").is_empty());
        assert!(b.is_pending());
        assert_eq!(
            b.push_line("  2; SELECT 3;"),
            vec![
                Input::Sql("SELECT 'a;b',\n  2".into()),
                Input::Sql("SELECT 3".into())
            ]
        );
        assert!(!b.is_pending());
    }

    #[test]
    fn meta_commands_only_at_the_start_of_a_statement() {
        let mut b = StatementBuffer::default();
        assert_eq!(b.push_line("\\d"), vec![Input::Meta("\\d".into())]);
        assert_eq!(
            meta_to_sql("\\d t").unwrap(),
            Some("SHOW CREATE TABLE t".into())
        );
        assert_eq!(meta_to_sql("\\q").unwrap(), None);
        assert!(meta_to_sql("\\x").is_err());
    }

    #[test]
    fn comments_do_not_end_statements() {
        let mut b = StatementBuffer::default();
        assert!(b.push_line("SELECT 1 -- no; end here").is_empty());
        assert_eq!(
            b.push_line(";"),
            vec![Input::Sql("SELECT 1 -- no; end here".into())]
        );
    }
}
