//! Talking to a node's `Admin` service: connecting with a deadline, calling
//! with a deadline, and turning gRPC statuses and `KvError`s into one-line
//! messages a person can act on.

use std::future::Future;
use std::time::Duration;

use tessera_common::proto::admin_client::AdminClient;
use tessera_common::proto::kv_error::Kind;
use tessera_common::proto::{kv_request, KvError, KvRequest, KvResponse};
use tonic::transport::Channel;

use super::server_api::connect_admin;
use super::{escape_text, CliError, Result};

/// How long to wait for a node to accept a connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one CLI request may take end to end.
pub const RPC_TIMEOUT: Duration = Duration::from_secs(30);

pub type Admin = AdminClient<Channel>;

/// Connects to the `Admin` service of the node at `host` (`HOST:PORT`).
pub async fn connect(host: &str) -> Result<Admin> {
    match tokio::time::timeout(CONNECT_TIMEOUT, connect_admin(host)).await {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) if e.contains(host) => Err(CliError::new(e)),
        Ok(Err(e)) => Err(CliError::new(format!("cannot connect to {host}: {e}"))),
        Err(_) => Err(CliError::new(format!(
            "cannot connect to {host}: no answer within {}s",
            CONNECT_TIMEOUT.as_secs()
        ))),
    }
}

/// Awaits one RPC with [`RPC_TIMEOUT`], mapping failures to a message that
/// names the host.
pub async fn call<T>(
    host: &str,
    fut: impl Future<Output = std::result::Result<tonic::Response<T>, tonic::Status>>,
) -> Result<T> {
    match tokio::time::timeout(RPC_TIMEOUT, fut).await {
        Ok(Ok(resp)) => Ok(resp.into_inner()),
        Ok(Err(status)) => Err(CliError::new(describe_status(host, &status))),
        Err(_) => Err(CliError::new(format!(
            "{host} did not answer within {}s",
            RPC_TIMEOUT.as_secs()
        ))),
    }
}

/// One line for a failed gRPC call.
pub fn describe_status(host: &str, status: &tonic::Status) -> String {
    use tonic::Code;
    let mut msg = if status.message().is_empty() {
        status.code().description().to_string()
    } else {
        status.message().to_string()
    };
    // Transport failures say little more than "transport error" at the top;
    // the cause is further down the source chain.
    let mut src = std::error::Error::source(status);
    while let Some(e) = src {
        let s = e.to_string();
        if !msg.contains(&s) {
            msg.push_str(": ");
            msg.push_str(&s);
        }
        src = e.source();
    }
    match status.code() {
        Code::Unavailable => format!("cannot reach {host}: {msg}"),
        Code::DeadlineExceeded => format!("{host} did not answer in time: {msg}"),
        Code::Unimplemented => {
            format!("{host} does not serve this request (is it a tessera node of the same version?): {msg}")
        }
        code => format!("request to {host} failed ({code:?}): {msg}"),
    }
}

/// One line for a `KvError` returned in a `KvResponse`.
pub fn describe_kv_error(err: &KvError) -> String {
    match &err.kind {
        None => "unknown error".into(),
        Some(Kind::NotLeaseholder(nl)) => match nl.leaseholder_node {
            0 => "not the leaseholder, and the leaseholder is unknown; try again".into(),
            n => format!("not the leaseholder (node {n} is); try again"),
        },
        Some(Kind::RangeNotFound(_)) => "range not found; try again".into(),
        Some(Kind::KeyMismatch(_)) => "key is outside the addressed range; try again".into(),
        Some(Kind::ConditionFailed(cf)) => match &cf.actual {
            Some(v) => format!("condition failed: current value is '{}'", escape_text(v)),
            None => "condition failed: key does not exist".into(),
        },
        Some(Kind::Internal(s)) => format!("internal error: {s}"),
        Some(Kind::BadRequest(s)) => format!("bad request: {s}"),
        Some(Kind::Unavailable(u)) => {
            let reason = if u.reason.is_empty() {
                "range unavailable"
            } else {
                &u.reason
            };
            if u.ambiguous {
                format!("unavailable: {reason} (the write may or may not have happened)")
            } else {
                format!("unavailable: {reason}")
            }
        }
        Some(Kind::TxnAborted(a)) => a.reason.clone(),
        Some(Kind::WriteIntent(w)) => format!(
            "{} key(s) locked by other transactions; try again",
            w.intents.len()
        ),
        Some(Kind::WriteTooOld(_)) => "write too old; try again".into(),
        Some(Kind::Uncertainty(_)) => "read within uncertainty interval; try again".into(),
        Some(Kind::BelowGcThreshold(b)) => format!(
            "read timestamp {} is below the GC threshold {}",
            tessera_common::Timestamp::from(b.ts.unwrap_or_default()),
            tessera_common::Timestamp::from(b.threshold.unwrap_or_default())
        ),
    }
}

/// Sends one KV operation through the gateway (`range_id: 0`: the node
/// routes it) and turns a response carrying an error into `Err`.
pub async fn kv(client: &mut Admin, host: &str, op: kv_request::Op) -> Result<KvResponse> {
    let req = KvRequest {
        range_id: 0,
        timestamp: None,
        op: Some(op),
        ..Default::default()
    };
    let resp = call(host, client.client_kv(req)).await?;
    match &resp.error {
        Some(e) => Err(CliError::new(describe_kv_error(e))),
        None => Ok(resp),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_common::proto::{ConditionFailed, NotLeaseholder, Unavailable};

    #[test]
    fn kv_errors_read_well() {
        let e = |k| KvError { kind: Some(k) };
        assert_eq!(
            describe_kv_error(&e(Kind::NotLeaseholder(NotLeaseholder {
                leaseholder_node: 2,
                descriptor: None
            }))),
            "not the leaseholder (node 2 is); try again"
        );
        assert_eq!(
            describe_kv_error(&e(Kind::Unavailable(Unavailable {
                reason: "no quorum".into(),
                ambiguous: true
            }))),
            "unavailable: no quorum (the write may or may not have happened)"
        );
        assert_eq!(
            describe_kv_error(&e(Kind::ConditionFailed(ConditionFailed {
                actual: Some(b"v\n".to_vec())
            }))),
            "condition failed: current value is 'v\\n'"
        );
        assert_eq!(
            describe_kv_error(&e(Kind::BadRequest("key too long".into()))),
            "bad request: key too long"
        );
        assert_eq!(describe_kv_error(&KvError { kind: None }), "unknown error");
    }

    #[test]
    fn statuses_name_the_host() {
        let s = tonic::Status::unavailable("tcp connect error");
        assert_eq!(
            describe_status("h:1", &s),
            "cannot reach h:1: tcp connect error"
        );
        let s = tonic::Status::internal("");
        assert!(describe_status("h:1", &s).starts_with("request to h:1 failed (Internal): "));
    }
}
