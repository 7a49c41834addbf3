//! `tessera kv put|get|del|scan` and `tessera debug split`: single KV
//! operations sent to one node, which routes them to the right range.
//!
//! Keys and values are UTF-8 text on the command line. Only user keys
//! (first byte >= 0x20) may be used: /meta and /system belong to the
//! cluster. `get` prints the stored value as is; `scan` prints
//! `key<TAB>value` lines with tabs, newlines, backslashes and control bytes
//! escaped, so every pair stays on one line.

use tessera_common::keys;
use tessera_common::proto::kv_request::Op;
use tessera_common::proto::{DeleteRequest, GetRequest, PutRequest, ScanRequest, SplitRequest};

use super::client::{connect, kv};
use super::{escape_text, out, out_bytes_line, CliError, Result};

/// Refuses keys the KV API does not serve, with the reason.
pub fn check_user_key(what: &str, key: &[u8]) -> Result<()> {
    if keys::is_user_key(key) {
        return Ok(());
    }
    let why = if key.is_empty() {
        "it is empty".to_string()
    } else if key[0] < keys::USER_MIN {
        format!(
            "it starts with byte 0x{:02x}; user keys start with a printable character (byte >= 0x20), lower bytes are reserved for the system",
            key[0]
        )
    } else {
        "it sorts at or above the end of the keyspace (\\xff\\xff)".to_string()
    };
    Err(CliError::new(format!(
        "invalid {what} '{}': {why}",
        escape_text(key)
    )))
}

pub async fn put(host: &str, key: &str, value: &str) -> Result<()> {
    check_user_key("key", key.as_bytes())?;
    let mut c = connect(host).await?;
    let op = Op::Put(PutRequest {
        key: key.as_bytes().to_vec(),
        value: value.as_bytes().to_vec(),
    });
    kv(&mut c, host, op).await?;
    Ok(())
}

pub async fn get(host: &str, key: &str) -> Result<()> {
    check_user_key("key", key.as_bytes())?;
    let mut c = connect(host).await?;
    let resp = kv(
        &mut c,
        host,
        Op::Get(GetRequest {
            key: key.as_bytes().to_vec(),
            ..Default::default()
        }),
    )
    .await?;
    match resp.value {
        Some(v) => out_bytes_line(&v),
        None => Err(CliError::new(format!(
            "key not found: '{}'",
            escape_text(key.as_bytes())
        ))),
    }
}

pub async fn del(host: &str, key: &str) -> Result<()> {
    check_user_key("key", key.as_bytes())?;
    let mut c = connect(host).await?;
    kv(
        &mut c,
        host,
        Op::Delete(DeleteRequest {
            key: key.as_bytes().to_vec(),
        }),
    )
    .await?;
    Ok(())
}

/// The key span a `scan START END` covers. An empty START means the first
/// user key, an empty END the end of the keyspace.
pub fn scan_span(start: &str, end: &str) -> Result<(Vec<u8>, Vec<u8>)> {
    let start = if start.is_empty() {
        vec![keys::USER_MIN]
    } else {
        start.as_bytes().to_vec()
    };
    let end = if end.is_empty() {
        keys::KEY_MAX.to_vec()
    } else {
        end.as_bytes().to_vec()
    };
    check_user_key("start key", &start)?;
    if end.as_slice() != keys::KEY_MAX {
        check_user_key("end key", &end)?;
    }
    if start >= end {
        return Err(CliError::new(format!(
            "empty span: start key '{}' is not below end key '{}'",
            escape_text(&start),
            escape_text(&end)
        )));
    }
    Ok((start, end))
}

/// Prints the keys in `[start, end)`, at most `limit` of them (0: all),
/// following the node's resume keys across range boundaries.
pub async fn scan(host: &str, start: &str, end: &str, limit: u32) -> Result<()> {
    let (mut from, end) = scan_span(start, end)?;
    let mut c = connect(host).await?;
    let mut left = limit;
    loop {
        let req = ScanRequest {
            start: from.clone(),
            end: end.clone(),
            limit: left,
            reverse: false,
            ..Default::default()
        };
        let resp = kv(&mut c, host, Op::Scan(req)).await?;
        let mut text = String::new();
        for row in &resp.rows {
            text.push_str(&escape_text(&row.key));
            text.push('\t');
            text.push_str(&escape_text(&row.value));
            text.push('\n');
        }
        out(&text)?;
        if limit > 0 {
            left = left.saturating_sub(resp.rows.len() as u32);
            if left == 0 {
                return Ok(());
            }
        }
        match resp.resume_key {
            Some(k) if k < end => {
                if k <= from && resp.rows.is_empty() {
                    return Err(CliError::new(format!(
                        "scan made no progress at '{}' (the node returned the same resume key)",
                        escape_text(&k)
                    )));
                }
                from = k;
            }
            _ => return Ok(()),
        }
    }
}

/// Splits the range containing `key` so that a new range starts at `key`.
pub async fn split(host: &str, key: &str) -> Result<()> {
    check_user_key("split key", key.as_bytes())?;
    let mut c = connect(host).await?;
    let resp = kv(
        &mut c,
        host,
        Op::Split(SplitRequest {
            split_key: key.as_bytes().to_vec(),
        }),
    )
    .await?;
    let mut line = format!("split at {}", keys::pretty(key.as_bytes()));
    if let Some(d) = resp.descriptor {
        line.push_str(&format!(
            ": range {} is [{}, {})",
            d.range_id,
            keys::pretty(&d.start_key),
            keys::pretty(&d.end_key)
        ));
    }
    line.push('\n');
    out(&line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_user_keys_are_accepted() {
        assert!(check_user_key("key", b"hello").is_ok());
        assert!(check_user_key("key", b" leading-space").is_ok());
        let e = check_user_key("key", b"").unwrap_err().to_string();
        assert!(e.contains("empty"), "{e}");
        let e = check_user_key("key", b"\x02nodes/")
            .unwrap_err()
            .to_string();
        assert!(e.contains("0x02") && e.contains("reserved"), "{e}");
        let e = check_user_key("key", b"\xff\xff").unwrap_err().to_string();
        assert!(e.contains("end of the keyspace"), "{e}");
    }

    #[test]
    fn scan_spans() {
        assert_eq!(scan_span("a", "b").unwrap(), (b"a".to_vec(), b"b".to_vec()));
        assert_eq!(
            scan_span("", "").unwrap(),
            (vec![keys::USER_MIN], keys::KEY_MAX.to_vec())
        );
        assert!(scan_span("b", "a")
            .unwrap_err()
            .to_string()
            .contains("not below"));
        assert!(scan_span("a", "a").is_err());
        assert!(scan_span("\x01", "b").is_err());
    }
}
