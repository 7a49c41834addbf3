//! Resolving finished transactions' intents off their path, batched per
//! range: while one resolution command of a range is in flight, the
//! resolutions queued behind it gather into the next one (as group commit
//! does for log writes), so a busy range resolves many transactions'
//! intents in one raft command instead of one command each.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use tessera_common::proto::{self, kv_request, ResolveIntentsRequest};
use tessera_common::Timestamp;

use crate::db::{Result, Route, DB};
use crate::replica::contains;
use crate::txn::MAX_BATCH_KEYS;

/// Resolutions waiting to be sent, by range id.
#[derive(Default)]
pub(crate) struct Resolver {
    queues: Mutex<HashMap<u64, Vec<ResolveIntentsRequest>>>,
}

impl Resolver {
    /// Queues `req` for `range_id`, in pieces of at most
    /// [`MAX_BATCH_KEYS`] keys (a command stays small however large the
    /// transaction). Returns whether the caller must start the range's
    /// sender (no sender runs while the range has a queue).
    fn enqueue(&self, range_id: u64, req: ResolveIntentsRequest) -> bool {
        let pieces = req
            .keys
            .chunks(MAX_BATCH_KEYS)
            .map(|keys| ResolveIntentsRequest {
                keys: keys.to_vec(),
                ..req.clone()
            });
        let mut queues = self.queues.lock();
        match queues.get_mut(&range_id) {
            Some(queue) => {
                queue.extend(pieces);
                false
            }
            None => {
                queues.insert(range_id, pieces.collect());
                true
            }
        }
    }

    /// The next batch of `range_id` (at most about [`MAX_BATCH_KEYS`]
    /// keys), or `None` once its queue is empty: the queue is then removed
    /// and its sender ends.
    fn next_batch(&self, range_id: u64) -> Option<Vec<ResolveIntentsRequest>> {
        let mut queues = self.queues.lock();
        let queue = queues.get_mut(&range_id)?;
        if queue.is_empty() {
            queues.remove(&range_id);
            return None;
        }
        let (mut keys, mut take) = (0, 0);
        for r in queue.iter() {
            if take > 0 && keys + r.keys.len() > MAX_BATCH_KEYS {
                break;
            }
            keys += r.keys.len();
            take += 1;
        }
        Some(queue.drain(..take).collect())
    }
}

/// One request resolving every request of `batch` in `desc` (keys outside
/// it are left out): the first request carries the others in `more`.
fn combined(
    batch: &[ResolveIntentsRequest],
    desc: &proto::RangeDescriptor,
) -> ResolveIntentsRequest {
    let mut inside = batch.iter().map(|r| ResolveIntentsRequest {
        keys: r
            .keys
            .iter()
            .filter(|k| contains(desc, k))
            .cloned()
            .collect(),
        more: Vec::new(),
        ..r.clone()
    });
    let mut head = inside.next().unwrap_or_default();
    head.more = inside.filter(|r| !r.keys.is_empty()).collect();
    head
}

impl DB {
    /// Resolves intents of a finished transaction, range by range, off the
    /// caller's path, in the range's next resolution batch.
    pub(crate) fn resolve_in_background(
        self: Arc<Self>,
        id: [u8; 16],
        keys: Vec<Vec<u8>>,
        commit_ts: Option<Timestamp>,
    ) {
        self.resolve_in_background_with(id, keys, commit_ts, false);
    }

    /// [`DB::resolve_in_background`]; `record_staging`: the transaction
    /// committed but its record may still be STAGING, so each resolution
    /// leaves a marker for a recovery (see
    /// `ResolveIntentsRequest.record_staging`).
    pub(crate) fn resolve_in_background_with(
        self: Arc<Self>,
        id: [u8; 16],
        mut keys: Vec<Vec<u8>>,
        commit_ts: Option<Timestamp>,
        record_staging: bool,
    ) {
        tokio::spawn(async move {
            keys.sort();
            keys.dedup();
            let Ok(groups) = self.group_by_range(keys.iter()).await else {
                return;
            };
            for group in groups {
                let Ok(desc) = self.range_for(&group[0]).await else {
                    continue;
                };
                let req = ResolveIntentsRequest {
                    txn_id: id.to_vec(),
                    keys: group,
                    commit: commit_ts.is_some(),
                    commit_ts: commit_ts.map(Into::into),
                    more: Vec::new(),
                    commit_record_anchor: Vec::new(),
                    background: true,
                    record_staging: record_staging && commit_ts.is_some(),
                };
                if self.resolver.enqueue(desc.range_id, req) {
                    tokio::spawn(self.clone().send_resolutions(desc.range_id));
                }
            }
        });
    }

    /// Sends `range_id`'s queued resolutions, a batch at a time, until its
    /// queue is empty.
    async fn send_resolutions(self: Arc<Self>, range_id: u64) {
        while let Some(batch) = self.resolver.next_batch(range_id) {
            // Best effort, as every background resolution: an intent left
            // behind is resolved by whoever meets it.
            let _ = self.resolve_batch(&batch).await;
        }
    }

    async fn resolve_batch(&self, batch: &[ResolveIntentsRequest]) -> Result<()> {
        let Some(first) = batch.iter().flat_map(|r| &r.keys).min().cloned() else {
            return Ok(());
        };
        let build = |desc: &proto::RangeDescriptor| {
            Ok(kv_request::Op::ResolveIntents(combined(batch, desc)))
        };
        let (desc, _) = self.send_raw(&first, Route::Key, &build).await?;
        // The range split or merged since the keys were grouped: the rest
        // go one transaction at a time.
        for r in batch {
            let rest: Vec<Vec<u8>> = r
                .keys
                .iter()
                .filter(|k| !contains(&desc, k))
                .cloned()
                .collect();
            if rest.is_empty() {
                continue;
            }
            if let Some(id) = crate::txn::txn_id(&r.txn_id) {
                let commit_ts = r.commit.then(|| r.commit_ts.unwrap_or_default().into());
                self.resolve_intents_with(id, rest, commit_ts, r.record_staging)
                    .await?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(id: u8, keys: &[&str]) -> ResolveIntentsRequest {
        ResolveIntentsRequest {
            txn_id: vec![id; 16],
            keys: keys.iter().map(|k| k.as_bytes().to_vec()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn queued_resolutions_go_out_together_and_the_queue_ends() {
        let r = Resolver::default();
        assert!(r.enqueue(7, req(1, &["a"])), "the first starts a sender");
        assert!(!r.enqueue(7, req(2, &["b"])), "later ones join its queue");
        assert!(r.enqueue(8, req(3, &["x"])), "other ranges have their own");
        let batch = r.next_batch(7).unwrap();
        assert_eq!(batch.len(), 2);
        assert!(!r.enqueue(7, req(4, &["c"])), "the sender still runs");
        assert_eq!(r.next_batch(7).unwrap().len(), 1);
        assert!(r.next_batch(7).is_none());
        assert!(r.enqueue(7, req(5, &["d"])), "a new sender after it ended");
    }

    #[test]
    fn a_batch_stays_under_the_key_limit() {
        let r = Resolver::default();
        let many: Vec<String> = (0..MAX_BATCH_KEYS - 1).map(|i| format!("k{i}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        r.enqueue(1, req(1, &many));
        r.enqueue(1, req(2, &["y", "z"]));
        assert_eq!(r.next_batch(1).unwrap().len(), 1);
        assert_eq!(r.next_batch(1).unwrap().len(), 1);
        // A transaction larger than a batch is resolved in pieces.
        let huge: Vec<String> = (0..MAX_BATCH_KEYS * 5 / 2)
            .map(|i| format!("k{i}"))
            .collect();
        let huge: Vec<&str> = huge.iter().map(String::as_str).collect();
        r.enqueue(2, req(3, &huge));
        let mut sizes = Vec::new();
        while let Some(batch) = r.next_batch(2) {
            assert!(batch.iter().all(|b| b.txn_id == vec![3; 16]));
            sizes.push(batch.iter().map(|b| b.keys.len()).sum::<usize>());
        }
        assert_eq!(
            sizes,
            vec![MAX_BATCH_KEYS, MAX_BATCH_KEYS, MAX_BATCH_KEYS / 2]
        );
    }

    #[test]
    fn a_combined_request_keeps_only_the_range_keys() {
        let desc = proto::RangeDescriptor {
            start_key: b"b".to_vec(),
            end_key: b"m".to_vec(),
            ..Default::default()
        };
        let c = combined(
            &[req(1, &["a", "c"]), req(2, &["x"]), req(3, &["d", "e"])],
            &desc,
        );
        assert_eq!(c.txn_id, vec![1; 16]);
        assert_eq!(c.keys, vec![b"c".to_vec()]);
        assert_eq!(
            c.more.len(),
            1,
            "a request with nothing in the range is left out"
        );
        assert_eq!(c.more[0].txn_id, vec![3; 16]);
        assert_eq!(c.more[0].keys.len(), 2);
    }
}
