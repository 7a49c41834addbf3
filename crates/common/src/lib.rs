//! Types shared by every Tessera layer: the hybrid logical clock, the
//! layout of the keyspace, and the wire messages (protobuf) that nodes and
//! clients exchange.

pub mod hlc;
pub mod keys;

/// Generated protobuf messages and gRPC services (see `proto/tessera.proto`).
#[allow(clippy::all, missing_docs)]
pub mod proto {
    tonic::include_proto!("tessera");
}

pub use hlc::{Clock, ClockOffsetError, PhysicalClock, SystemClock, Timestamp};
