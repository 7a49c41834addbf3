//! The part of `tessera_server` the CLI uses, in one place: the node
//! lifecycle for `start` and `demo`, and the admin connection for the client
//! commands.

pub use tessera_server::{connect_admin, Node, NodeConfig};
