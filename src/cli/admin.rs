//! `tessera init`, `tessera debug ranges` and `tessera node status`: the
//! cluster-level admin requests, rendered as short lines or tables.

use tessera_common::keys;
use tessera_common::proto::{
    InitRequest, NodeStatus, NodeStatusRequest, RangeInfo, RangesRequest, ReplicaDescriptor,
    ReplicaType,
};

use super::client::{call, connect};
use super::table::Table;
use super::{out, CliError, Result};

/// Bootstraps a new cluster through the node at `host`.
pub async fn init(host: &str) -> Result<()> {
    let mut c = connect(host).await?;
    let resp = call(host, c.init(InitRequest {})).await?;
    if !resp.error.is_empty() {
        return Err(CliError::new(resp.error));
    }
    out(&format!("cluster initialized: {}\n", resp.cluster_id))
}

pub async fn ranges(host: &str) -> Result<()> {
    let mut c = connect(host).await?;
    let resp = call(host, c.ranges(RangesRequest {})).await?;
    out(&ranges_table(&resp.ranges))
}

pub async fn node_status(host: &str) -> Result<()> {
    let mut c = connect(host).await?;
    let resp = call(host, c.node_status(NodeStatusRequest {})).await?;
    out(&nodes_table(&resp.nodes))
}

/// `{1,2,3}`: the nodes holding replicas; learners (not yet voting) carry
/// an `L` suffix, as in `{1,2,3,4L}`.
pub fn format_replicas(replicas: &[ReplicaDescriptor]) -> String {
    let items: Vec<String> = replicas
        .iter()
        .map(|r| {
            if r.r#type == ReplicaType::Learner as i32 {
                format!("{}L", r.node_id)
            } else {
                r.node_id.to_string()
            }
        })
        .collect();
    format!("{{{}}}", items.join(","))
}

/// The `debug ranges` table, ordered by start key.
pub fn ranges_table(ranges: &[RangeInfo]) -> String {
    let mut sorted: Vec<&RangeInfo> = ranges.iter().collect();
    sorted.sort_by(|a, b| {
        let k = |r: &RangeInfo| r.descriptor.as_ref().map(|d| d.start_key.clone());
        k(a).cmp(&k(b))
    });
    let mut t = Table::new([
        "range_id",
        "start_key",
        "end_key",
        "replicas",
        "lease_holder",
    ]);
    for r in sorted {
        let Some(d) = &r.descriptor else { continue };
        let lh = match r.leaseholder_node {
            0 => "?".to_string(),
            n => n.to_string(),
        };
        t.row([
            d.range_id.to_string(),
            keys::pretty(&d.start_key),
            keys::pretty(&d.end_key),
            format_replicas(&d.replicas),
            lh,
        ]);
    }
    t.render()
}

/// The `node status` table, ordered by node id.
pub fn nodes_table(nodes: &[NodeStatus]) -> String {
    let mut sorted: Vec<&NodeStatus> = nodes.iter().collect();
    sorted.sort_by_key(|n| n.descriptor.as_ref().map(|d| d.node_id));
    let mut t = Table::new([
        "id",
        "address",
        "sql_address",
        "live",
        "draining",
        "replicas",
        "leases",
    ]);
    for n in sorted {
        let d = n.descriptor.clone().unwrap_or_default();
        t.row([
            d.node_id.to_string(),
            d.address,
            d.sql_address,
            n.live.to_string(),
            n.draining.to_string(),
            n.replicas.to_string(),
            n.leases.to_string(),
        ]);
    }
    t.render()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_common::proto::{NodeDescriptor, RangeDescriptor};

    fn replica(node_id: u64, learner: bool) -> ReplicaDescriptor {
        ReplicaDescriptor {
            node_id,
            replica_id: node_id,
            r#type: if learner {
                ReplicaType::Learner
            } else {
                ReplicaType::Voter
            } as i32,
        }
    }

    #[test]
    fn ranges_render_with_pretty_keys_in_key_order() {
        let range = |id, s: &[u8], e: &[u8], lh| RangeInfo {
            descriptor: Some(RangeDescriptor {
                range_id: id,
                start_key: s.to_vec(),
                end_key: e.to_vec(),
                replicas: vec![replica(1, false), replica(2, false), replica(3, id == 2)],
                ..Default::default()
            }),
            leaseholder_node: lh,
        };
        let s = ranges_table(&[range(2, b"m", keys::KEY_MAX, 0), range(1, b"", b"m", 1)]);
        assert_eq!(
            s,
            "range_id  start_key  end_key  replicas  lease_holder\n\
             1         /Min       m        {1,2,3}   1\n\
             2         m          /Max     {1,2,3L}  ?\n"
        );
    }

    #[test]
    fn nodes_render_in_id_order() {
        let node = |id, live, sql: &str| NodeStatus {
            descriptor: Some(NodeDescriptor {
                node_id: id,
                address: format!("127.0.0.1:{}", 26256 + id),
                sql_address: sql.into(),
                http_address: String::new(),
            }),
            live,
            replicas: 3,
            leases: id - 1,
            draining: false,
        };
        let s = nodes_table(&[node(2, false, ""), node(1, true, "127.0.0.1:5432")]);
        assert_eq!(
            s,
            "id  address          sql_address     live   draining  replicas  leases\n\
             1   127.0.0.1:26257  127.0.0.1:5432  true   false     3         0\n\
             2   127.0.0.1:26258  -               false  false     3         1\n"
        );
    }

    #[test]
    fn replica_sets() {
        assert_eq!(format_replicas(&[]), "{}");
        assert_eq!(
            format_replicas(&[replica(4, false), replica(7, true)]),
            "{4,7L}"
        );
    }
}
