//! Keys name the results of tasks; tokens make keys deterministic.
//!
//! A [`Key`] is a readable name plus a block index, like Dask's `"inc-3f2a..."`,
//! `("add-9c1e...", 7)` and `("chunk-5d0b...", 3, 0, 2)`: none for a single task, one number
//! for a partition of a DataFrame or Bag, one per axis for a chunk of an N-d Array. A name made by [`Key::tokenized`] ends in a token that hashes the
//! function and its arguments, so a pure function called twice with equal arguments gets the
//! same key and the graph computes it once. Names are reference-counted strings: cloning a key
//! never copies its text.

use std::fmt;
use std::sync::Arc;

use smallvec::SmallVec;
use xxhash_rust::xxh3::Xxh3;

/// The name part of a key: a cheaply cloned string.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Name(Arc<str>);

impl Name {
    /// A name from any string.
    pub fn new(name: &str) -> Self {
        Name(Arc::from(name))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The readable part before the token: `"inc-3f2a9c..."` gives `"inc"` (like Dask's
    /// `key_split`). Names without a token are returned whole.
    pub fn prefix(&self) -> &str {
        match self.0.rsplit_once('-') {
            Some((head, tail))
                if tail.len() >= 8 && tail.bytes().all(|b| b.is_ascii_hexdigit()) =>
            {
                head
            }
            _ => &self.0,
        }
    }
}

impl From<&str> for Name {
    fn from(name: &str) -> Self {
        Name::new(name)
    }
}

impl From<String> for Name {
    fn from(name: String) -> Self {
        Name(Arc::from(name))
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

/// Where a chunk lies in its collection's grid of chunks: no numbers for a single task, one for
/// a partition, one per axis for a block of an N-d array. Up to four axes are stored inline.
#[derive(
    Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct BlockIndex(SmallVec<[u32; 4]>);

impl BlockIndex {
    /// No index: a key of a single task.
    pub fn none() -> Self {
        BlockIndex(SmallVec::new())
    }

    /// The index of one block of an N-d grid.
    pub fn of(index: &[u32]) -> Self {
        BlockIndex(SmallVec::from_slice(index))
    }

    /// The numbers, one per axis.
    pub fn as_slice(&self) -> &[u32] {
        &self.0
    }

    /// How many axes the index has (0 for a single task).
    pub fn ndim(&self) -> usize {
        self.0.len()
    }
}

/// The name of one task's result: a [`Name`] and, for chunks of partitioned collections, their
/// [`BlockIndex`].
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    name: Name,
    index: BlockIndex,
}

impl Key {
    /// A key without a block index.
    pub fn new(name: impl Into<Name>) -> Self {
        Key { name: name.into(), index: BlockIndex::none() }
    }

    /// The key of partition `part` of the collection or layer `name` (a 1-d block index).
    pub fn part(name: impl Into<Name>, part: u32) -> Self {
        Key { name: name.into(), index: BlockIndex(SmallVec::from_slice(&[part])) }
    }

    /// The key of the block at `index` of an N-d grid of chunks.
    pub fn block(name: impl Into<Name>, index: &[u32]) -> Self {
        Key { name: name.into(), index: BlockIndex::of(index) }
    }

    /// A key `"{prefix}-{token}"`.
    pub fn tokenized(prefix: &str, token: Token) -> Self {
        Key::new(Name::tokenized(prefix, token))
    }

    /// The name part.
    pub fn name(&self) -> &Name {
        &self.name
    }

    /// The partition index, if the key has a 1-d one.
    pub fn partition(&self) -> Option<u32> {
        match self.index.as_slice() {
            [part] => Some(*part),
            _ => None,
        }
    }

    /// The block index (empty for a key of a single task).
    pub fn block_index(&self) -> &[u32] {
        self.index.as_slice()
    }

    /// The readable prefix of the name (see [`Name::prefix`]).
    pub fn prefix(&self) -> &str {
        self.name.prefix()
    }
}

impl Name {
    /// A name `"{prefix}-{token}"`.
    pub fn tokenized(prefix: &str, token: Token) -> Self {
        Name::from(format!("{prefix}-{token}"))
    }
}

impl From<&str> for Key {
    fn from(name: &str) -> Self {
        Key::new(name)
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.index.ndim() == 0 {
            return write!(f, "'{}'", self.name);
        }
        write!(f, "('{}'", self.name)?;
        for i in self.index.as_slice() {
            write!(f, ", {i}")?;
        }
        f.write_str(")")
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl serde::Serialize for Name {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Name {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Ok(Name::new(&name))
    }
}

impl serde::Serialize for Key {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        (&self.name, &self.index).serialize(serializer)
    }
}

impl<'de> serde::Deserialize<'de> for Key {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let (name, index) = <(Name, BlockIndex)>::deserialize(deserializer)?;
        Ok(Key { name, index })
    }
}

/// A 128-bit deterministic hash of a task's function and arguments, shown as 32 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Token(pub u128);

impl Token {
    /// A token that no other call in this process gets: for impure functions and closures.
    pub fn unique() -> Self {
        use std::sync::atomic::{AtomicU64, Ordering};
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let mut tokenizer = Tokenizer::new();
        tokenizer.str("rask-unique");
        tokenizer.u64(std::process::id().into());
        tokenizer.u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        // The address of a stack slot differs between runs: unique across processes too.
        let marker = 0u8;
        tokenizer.u64(std::ptr::addr_of!(marker) as usize as u64);
        tokenizer.finish()
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Builds a [`Token`] from the parts of a call. Every part is length- or tag-prefixed, so that
/// different sequences of parts never hash the same stream of bytes.
pub struct Tokenizer(Xxh3);

impl Tokenizer {
    /// An empty tokenizer.
    pub fn new() -> Self {
        Tokenizer(Xxh3::new())
    }

    /// Adds a string.
    pub fn str(&mut self, s: &str) -> &mut Self {
        self.bytes(s.as_bytes())
    }

    /// Adds bytes.
    pub fn bytes(&mut self, bytes: &[u8]) -> &mut Self {
        self.0.update(&(bytes.len() as u64).to_le_bytes());
        self.0.update(bytes);
        self
    }

    /// Adds a number.
    pub fn u64(&mut self, n: u64) -> &mut Self {
        self.0.update(&n.to_le_bytes());
        self
    }

    /// Adds another token.
    pub fn token(&mut self, token: Token) -> &mut Self {
        self.0.update(&token.0.to_le_bytes());
        self
    }

    /// Adds a key.
    pub fn key(&mut self, key: &Key) -> &mut Self {
        self.str(key.name.as_str());
        self.u64(key.index.ndim() as u64);
        for &i in key.index.as_slice() {
            self.u64(u64::from(i));
        }
        self
    }

    /// The token of everything added.
    pub fn finish(&self) -> Token {
        Token(self.0.digest128())
    }
}

impl Default for Tokenizer {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_parts_give_equal_tokens_and_different_parts_differ() {
        let token = |a: &str, b: u64| Tokenizer::new().str(a).u64(b).finish();
        assert_eq!(token("inc", 1), token("inc", 1));
        assert_ne!(token("inc", 1), token("inc", 2));
        assert_ne!(token("inc", 1), token("dec", 1));
        // Length prefixes keep ("ab", "c") apart from ("a", "bc").
        let ab_c = Tokenizer::new().str("ab").str("c").finish();
        let a_bc = Tokenizer::new().str("a").str("bc").finish();
        assert_ne!(ab_c, a_bc);
        assert_ne!(Token::unique(), Token::unique());
    }

    #[test]
    fn prefix_strips_the_token_only() {
        let key = Key::tokenized("load-file", Tokenizer::new().str("x").finish());
        assert_eq!(key.prefix(), "load-file");
        assert_eq!(Key::new("plain-name").prefix(), "plain-name");
        assert_eq!(Key::part("sum", 3).to_string(), "('sum', 3)");
        assert_eq!(Key::block("chunk", &[3, 0, 2]).to_string(), "('chunk', 3, 0, 2)");
        assert_eq!(Key::block("chunk", &[7]), Key::part("chunk", 7));
        assert_eq!(Key::block("chunk", &[1, 2]).partition(), None);
    }

    #[test]
    fn keys_with_block_indices_round_trip_and_hash_apart() {
        for key in [
            Key::new("x"),
            Key::part("x", 0),
            Key::block("x", &[0, 0]),
            Key::block("x", &[1, 2, 3, 4, 5]),
        ] {
            let bytes = rmp_serde::to_vec(&key).unwrap();
            assert_eq!(rmp_serde::from_slice::<Key>(&bytes).unwrap(), key);
        }
        let token = |key: &Key| Tokenizer::new().key(key).finish();
        assert_ne!(token(&Key::part("x", 0)), token(&Key::block("x", &[0, 0])));
        assert_ne!(token(&Key::new("x")), token(&Key::part("x", 0)));
    }
}
