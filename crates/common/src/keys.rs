//! The layout of the replicated keyspace.
//!
//! One ordered keyspace of byte strings, `[KEY_MIN, KEY_MAX)`, split into
//! ranges. The first bytes say what a key is:
//!
//! ```text
//! \x01 <end key>         /meta: range descriptors, keyed by their end key
//! \x02 ...               /system: node id allocation, node records, ...
//! \x03 ...               /table: SQL rows and index entries (later)
//! >= \x20 ...            user keys written through the KV API and CLI
//! ```
//!
//! Node-local data (raft logs, hard state, the store's identity) lives in
//! the storage engine under its own prefix and is never part of a range.
//!
//! Range 1 always starts at `KEY_MIN` and holds all of /meta: splits below
//! [`SYSTEM_PREFIX`] are refused, so finding any range's descriptor needs
//! one lookup in range 1.

/// The smallest key.
pub const KEY_MIN: &[u8] = b"";
/// Greater than every key a client can write; the end of the last range.
pub const KEY_MAX: &[u8] = b"\xff\xff";

pub const META_PREFIX: &[u8] = b"\x01";
pub const META_END: &[u8] = b"\x02";
pub const SYSTEM_PREFIX: &[u8] = b"\x02";
pub const SYSTEM_END: &[u8] = b"\x03";
pub const TABLE_PREFIX: &[u8] = b"\x03";
/// User keys (the KV API) must start at or above this byte.
pub const USER_MIN: u8 = 0x20;

/// Allocator of node ids.
pub const NODE_ID_GENERATOR: &[u8] = b"\x02node-id-gen";
/// Allocator of range ids.
pub const RANGE_ID_GENERATOR: &[u8] = b"\x02range-id-gen";
/// Prefix of node records: `\x02nodes/<id>`.
pub const NODE_PREFIX: &[u8] = b"\x02nodes/";

/// The /meta key that holds the descriptor of the range ending at `end_key`.
pub fn meta_key(end_key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(META_PREFIX.len() + end_key.len());
    k.extend_from_slice(META_PREFIX);
    k.extend_from_slice(end_key);
    k
}

/// The key the descriptor of the range containing `key` sorts after: the
/// first /meta entry strictly above `meta_key(key)` is that range's.
pub fn meta_lookup_start(key: &[u8]) -> Vec<u8> {
    let mut k = meta_key(key);
    k.push(0);
    k
}

/// The smallest key greater than `key`.
pub fn next_key(key: &[u8]) -> Vec<u8> {
    let mut k = key.to_vec();
    k.push(0);
    k
}

pub fn node_key(node_id: u64) -> Vec<u8> {
    let mut k = NODE_PREFIX.to_vec();
    k.extend_from_slice(&node_id.to_be_bytes());
    k
}

/// Whether a client may read or write `key` through the user KV API.
pub fn is_user_key(key: &[u8]) -> bool {
    key.first().is_some_and(|b| *b >= USER_MIN) && key < KEY_MAX
}

/// Renders a key for humans: printable ASCII as is, other bytes as `\xNN`,
/// with well-known prefixes named.
pub fn pretty(key: &[u8]) -> String {
    if key.is_empty() {
        return "/Min".into();
    }
    if key == KEY_MAX {
        return "/Max".into();
    }
    let (name, rest) = if let Some(r) = key.strip_prefix(META_PREFIX) {
        ("/Meta/", r)
    } else if let Some(r) = key.strip_prefix(SYSTEM_PREFIX) {
        ("/System/", r)
    } else if let Some(r) = key.strip_prefix(TABLE_PREFIX) {
        ("/Table/", r)
    } else {
        ("", key)
    };
    let mut s = name.to_string();
    for &b in rest {
        if (0x20..0x7f).contains(&b) && b != b'\\' {
            s.push(b as char);
        } else {
            s.push_str(&format!("\\x{b:02x}"));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_lookup_finds_the_range_whose_end_is_above_the_key() {
        // A range [a, m) has its descriptor at meta_key("m"). A lookup for
        // "a" .. "l\xff" must land on it, a lookup for "m" must not.
        let desc = meta_key(b"m");
        assert!(meta_lookup_start(b"a") <= desc);
        assert!(meta_lookup_start(b"lzzz") <= desc);
        assert!(meta_lookup_start(b"m") > desc);
    }

    #[test]
    fn prefixes_are_ordered_below_user_keys() {
        assert!(META_PREFIX < SYSTEM_PREFIX && SYSTEM_PREFIX < TABLE_PREFIX);
        assert!(TABLE_PREFIX < &[USER_MIN][..]);
        assert!(is_user_key(b"key00001"));
        assert!(!is_user_key(b"\x01meta"));
        assert!(!is_user_key(b""));
    }

    #[test]
    fn pretty_names_prefixes_and_escapes_bytes() {
        assert_eq!(pretty(b"\x01abc"), "/Meta/abc");
        assert_eq!(pretty(b"k\x00"), "k\\x00");
        assert_eq!(pretty(KEY_MAX), "/Max");
    }
}
