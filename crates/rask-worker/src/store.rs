//! The worker's data: results in memory up to a byte target, the least recently used beyond it
//! written to disk ("spilled") and read back when a task or a peer needs them.
//!
//! Like Dask's `zict` buffer, but the disk sits behind [`SpillDisk`] so the worker's state
//! machine is tested with an in-memory disk ([`MemoryDisk`]) and runs with [`DirectoryDisk`].
//! Values are written in their wire encoding (the one they cross processes in: Arrow IPC for
//! data frames). A value without an encoder cannot leave memory and simply stays. A failed
//! write keeps the value in memory; a failed read loses it, and the worker then reports the
//! key missing so the scheduler recomputes it — nothing disappears silently.
//!
//! Every batch of writes or reads is recorded ([`SpillRecord`]) so the dashboard's task stream
//! can draw it (in orange, as Dask does).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use rask_core::{Key, Value, WireValue};
use rask_protocol::messages::{SpillDirection, TaskTiming};
use rustc_hash::{FxHashMap, FxHashSet};
use tracing::warn;

/// Where spilled values go. Files are numbered by the store.
pub trait SpillDisk: Send {
    /// Writes a value.
    fn write(&mut self, file: u64, value: &WireValue) -> std::io::Result<()>;
    /// Reads a value back.
    fn read(&mut self, file: u64) -> std::io::Result<WireValue>;
    /// Deletes a value (it was read back or freed).
    fn remove(&mut self, file: u64);
}

/// A directory of spill files, deleted with everything in it when dropped.
pub struct DirectoryDisk {
    dir: PathBuf,
}

impl DirectoryDisk {
    /// Creates a fresh directory for this worker's spill files under `parent`.
    pub fn create(parent: &Path, worker_name: &str) -> std::io::Result<Self> {
        let safe: String = worker_name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' })
            .collect();
        let stamp = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let dir = parent.join(format!("rask-spill-{safe}-{}-{stamp:x}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        Ok(DirectoryDisk { dir })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    fn file(&self, file: u64) -> PathBuf {
        self.dir.join(format!("{file}.value"))
    }
}

impl Drop for DirectoryDisk {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl SpillDisk for DirectoryDisk {
    fn write(&mut self, file: u64, value: &WireValue) -> std::io::Result<()> {
        // Type name length, type name, bytes: all a reader needs to decode it again.
        let mut out = std::io::BufWriter::new(std::fs::File::create(self.file(file))?);
        out.write_all(&(value.type_name.len() as u32).to_le_bytes())?;
        out.write_all(value.type_name.as_bytes())?;
        out.write_all(&value.bytes)?;
        out.flush()
    }

    fn read(&mut self, file: u64) -> std::io::Result<WireValue> {
        let mut bytes = Vec::new();
        std::fs::File::open(self.file(file))?.read_to_end(&mut bytes)?;
        let corrupt = || std::io::Error::new(std::io::ErrorKind::InvalidData, "truncated file");
        let len = u32::from_le_bytes(bytes.get(..4).ok_or_else(corrupt)?.try_into().expect("4"));
        let end = 4 + len as usize;
        let type_name = String::from_utf8(bytes.get(4..end).ok_or_else(corrupt)?.to_vec())
            .map_err(|_| corrupt())?;
        bytes.drain(..end);
        Ok(WireValue { type_name, bytes })
    }

    fn remove(&mut self, file: u64) {
        let _ = std::fs::remove_file(self.file(file));
    }
}

/// A disk in memory, for tests; `fail_writes` makes every write fail.
#[derive(Default)]
pub struct MemoryDisk {
    files: FxHashMap<u64, WireValue>,
    /// Makes writes fail, as a full disk would.
    pub fail_writes: bool,
}

impl SpillDisk for MemoryDisk {
    fn write(&mut self, file: u64, value: &WireValue) -> std::io::Result<()> {
        if self.fail_writes {
            return Err(std::io::Error::other("no space left on device"));
        }
        self.files.insert(file, value.clone());
        Ok(())
    }

    fn read(&mut self, file: u64) -> std::io::Result<WireValue> {
        self.files.get(&file).cloned().ok_or_else(|| std::io::ErrorKind::NotFound.into())
    }

    fn remove(&mut self, file: u64) {
        self.files.remove(&file);
    }
}

/// A batch of values written to or read from disk, for the task stream.
#[derive(Clone, Debug, PartialEq)]
pub struct SpillRecord {
    /// Written or read.
    pub direction: SpillDirection,
    /// How many values.
    pub values: u32,
    /// Their size in memory.
    pub bytes: u64,
    /// When and how long.
    pub timing: TaskTiming,
}

struct InMemory {
    value: Value,
    nbytes: u64,
    /// Its place in `by_use` (`None`: it cannot be spilled).
    last_use: Option<u64>,
}

struct OnDisk {
    file: u64,
    nbytes: u64,
}

/// The results a worker holds, in memory or on disk.
pub struct DataStore {
    memory: FxHashMap<Key, InMemory>,
    /// Spillable values in memory, least recently used first.
    by_use: BTreeMap<u64, Key>,
    clock: u64,
    memory_bytes: u64,
    spilled: FxHashMap<Key, OnDisk>,
    spilled_bytes: u64,
    /// Bytes of results kept in memory before the least recently used go to disk.
    target: Option<u64>,
    disk: Box<dyn SpillDisk>,
    next_file: u64,
    records: Vec<SpillRecord>,
    /// Keys whose values failed to encode or write: they stay in memory.
    unspillable: FxHashSet<Key>,
}

impl Default for DataStore {
    fn default() -> Self {
        DataStore::new(None, Box::new(MemoryDisk::default()))
    }
}

impl DataStore {
    /// A store that keeps up to `target` bytes of results in memory (`None`: all of them) and
    /// spills the rest to `disk`.
    pub fn new(target: Option<u64>, disk: Box<dyn SpillDisk>) -> Self {
        DataStore {
            memory: FxHashMap::default(),
            by_use: BTreeMap::new(),
            clock: 0,
            memory_bytes: 0,
            spilled: FxHashMap::default(),
            spilled_bytes: 0,
            target,
            disk,
            next_file: 0,
            records: Vec::new(),
            unspillable: FxHashSet::default(),
        }
    }

    /// Whether a value is held, in memory or on disk.
    pub fn contains(&self, key: &Key) -> bool {
        self.memory.contains_key(key) || self.spilled.contains_key(key)
    }

    /// How many values are held.
    pub fn len(&self) -> usize {
        self.memory.len() + self.spilled.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of results in memory.
    pub fn memory_bytes(&self) -> u64 {
        self.memory_bytes
    }

    /// Bytes (in memory terms) of results on disk.
    pub fn spilled_bytes(&self) -> u64 {
        self.spilled_bytes
    }

    /// How many results are on disk.
    pub fn spilled_values(&self) -> usize {
        self.spilled.len()
    }

    /// Whether this value is on disk now.
    pub fn is_spilled(&self, key: &Key) -> bool {
        self.spilled.contains_key(key)
    }

    /// The spill records since the last call.
    pub fn take_records(&mut self) -> Vec<SpillRecord> {
        std::mem::take(&mut self.records)
    }

    /// Stores a value; values beyond the target go to disk, least recently used first (the new
    /// value too, if it alone is over the target). Returns its size in bytes (measured once:
    /// for serde values that is a serialization pass).
    pub fn insert(&mut self, key: Key, value: Value) -> u64 {
        self.remove(&key);
        let nbytes = self.put_in_memory(key, value);
        self.keep_under_target(None);
        nbytes
    }

    /// The value, read back into memory if it was spilled (`None`: not here, or lost by a
    /// failed read). Marks it recently used.
    pub fn get(&mut self, key: &Key) -> Option<Value> {
        if let Some(entry) = self.memory.get_mut(key) {
            if let Some(last_use) = entry.last_use {
                self.clock += 1;
                self.by_use.remove(&last_use);
                self.by_use.insert(self.clock, key.clone());
                entry.last_use = Some(self.clock);
            }
            return Some(entry.value.clone());
        }
        let value = self.read_back(key, true)?;
        self.put_in_memory(key.clone(), value.clone());
        // The value just read is the most recently used: others make room for it.
        self.keep_under_target(Some(key));
        Some(value)
    }

    /// The value for a peer: read from disk without taking memory for it if it was spilled.
    pub fn peek(&mut self, key: &Key) -> Option<Value> {
        match self.memory.get(key) {
            Some(entry) => Some(entry.value.clone()),
            None => self.read_back(key, false),
        }
    }

    /// Changes how many bytes of results stay in memory (`None`: all). Takes effect as values
    /// arrive or come back; [`DataStore::spill`] frees memory at once.
    pub fn set_target(&mut self, target: Option<u64>) {
        self.target = target;
    }

    /// Forgets a value, wherever it is.
    pub fn remove(&mut self, key: &Key) -> bool {
        if let Some(entry) = self.memory.remove(key) {
            self.memory_bytes -= entry.nbytes;
            if let Some(last_use) = entry.last_use {
                self.by_use.remove(&last_use);
            }
            self.unspillable.remove(key);
            return true;
        }
        match self.spilled.remove(key) {
            Some(on_disk) => {
                self.spilled_bytes -= on_disk.nbytes;
                self.disk.remove(on_disk.file);
                true
            }
            None => false,
        }
    }

    /// Forgets everything.
    pub fn clear(&mut self) {
        for (_, on_disk) in self.spilled.drain() {
            self.disk.remove(on_disk.file);
        }
        self.memory.clear();
        self.by_use.clear();
        self.unspillable.clear();
        self.memory_bytes = 0;
        self.spilled_bytes = 0;
    }

    /// Spills least recently used values until `bytes` have left memory or nothing spillable
    /// is left (the process is using too much memory); returns the bytes spilled.
    pub fn spill(&mut self, bytes: u64) -> u64 {
        let before = self.memory_bytes;
        self.spill_while(|store| before - store.memory_bytes < bytes, None);
        before - self.memory_bytes
    }

    fn put_in_memory(&mut self, key: Key, value: Value) -> u64 {
        let nbytes = value.size_hint() as u64;
        self.clock += 1;
        let last_use = (!self.unspillable.contains(&key)).then_some(self.clock);
        if let Some(last_use) = last_use {
            self.by_use.insert(last_use, key.clone());
        }
        self.memory_bytes += nbytes;
        self.memory.insert(key, InMemory { value, nbytes, last_use });
        nbytes
    }

    fn keep_under_target(&mut self, keep: Option<&Key>) {
        if let Some(target) = self.target {
            self.spill_while(|store| store.memory_bytes > target, keep);
        }
    }

    /// Writes least recently used values to disk while `more` says so.
    fn spill_while(&mut self, more: impl Fn(&Self) -> bool, keep: Option<&Key>) {
        let started = Instant::now();
        let started_at_us = now_us();
        let (mut values, mut bytes) = (0, 0);
        while more(self) {
            let Some((&last_use, key)) = self.by_use.iter().find(|(_, k)| Some(*k) != keep) else {
                break;
            };
            let key = key.clone();
            self.by_use.remove(&last_use);
            let entry = self.memory.get_mut(&key).expect("by_use names values in memory");
            entry.last_use = None;
            let written = WireValue::encode(&entry.value)
                .map_err(|e| e.to_string())
                .and_then(|wire| self.disk.write(self.next_file, &wire).map_err(|e| e.to_string()));
            if let Err(error) = written {
                // It stays in memory, out of the spill order so it is not tried again.
                warn!(%key, %error, "could not spill a value to disk; it stays in memory");
                self.unspillable.insert(key);
                continue;
            }
            let entry = self.memory.remove(&key).expect("in memory");
            self.memory_bytes -= entry.nbytes;
            self.spilled_bytes += entry.nbytes;
            self.spilled.insert(key, OnDisk { file: self.next_file, nbytes: entry.nbytes });
            self.next_file += 1;
            values += 1;
            bytes += entry.nbytes;
        }
        if values > 0 {
            self.record(SpillDirection::ToDisk, values, bytes, started_at_us, started);
        }
    }

    /// Reads a spilled value; `take` removes it from disk (it goes back to memory).
    fn read_back(&mut self, key: &Key, take: bool) -> Option<Value> {
        let on_disk = self.spilled.get(key)?;
        let (file, nbytes) = (on_disk.file, on_disk.nbytes);
        let started = Instant::now();
        let started_at_us = now_us();
        let read = self.disk.read(file).map_err(|e| e.to_string());
        let value = read.and_then(|wire| wire.decode().map_err(|e| e.to_string()));
        self.record(SpillDirection::FromDisk, 1, nbytes, started_at_us, started);
        if take || value.is_err() {
            self.spilled.remove(key);
            self.spilled_bytes -= nbytes;
            self.disk.remove(file);
        }
        match value {
            Ok(value) => Some(value),
            Err(error) => {
                warn!(%key, %error, "a spilled value could not be read back; it is lost");
                None
            }
        }
    }

    fn record(
        &mut self,
        direction: SpillDirection,
        values: u32,
        bytes: u64,
        started_at_us: u64,
        started: Instant,
    ) {
        let duration_us = started.elapsed().as_micros() as u64;
        let timing = TaskTiming { started_at_us, duration_us, thread: 0 };
        self.records.push(SpillRecord { direction, values, bytes, timing });
    }
}

fn now_us() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numbers(n: usize) -> Value {
        Value::serde(vec![7.5_f64; n])
    }

    fn store(target: u64) -> DataStore {
        DataStore::new(Some(target), Box::new(MemoryDisk::default()))
    }

    fn len_of(value: &Value) -> usize {
        value.downcast_ref::<Vec<f64>>().expect("a Vec<f64>").len()
    }

    #[test]
    fn values_beyond_the_target_go_to_disk_least_recently_used_first() {
        let one = numbers(100).size_hint() as u64;
        let mut store = store(2 * one + 1);
        for name in ["a", "b"] {
            store.insert(Key::new(name), numbers(100));
        }
        assert_eq!(store.spilled_values(), 0);
        store.get(&Key::new("a")); // b is now the least recently used
        store.insert(Key::new("c"), numbers(100));
        assert!(store.is_spilled(&Key::new("b")));
        assert!(!store.is_spilled(&Key::new("a")) && !store.is_spilled(&Key::new("c")));
        assert_eq!((store.memory_bytes(), store.spilled_bytes()), (2 * one, one));
        let records = store.take_records();
        assert_eq!(records.len(), 1);
        assert_eq!((records[0].direction, records[0].values), (SpillDirection::ToDisk, 1));
    }

    #[test]
    fn a_spilled_value_reads_back_whole_and_another_makes_room() {
        let one = numbers(50).size_hint() as u64;
        let mut store = store(one);
        store.insert(Key::new("a"), numbers(50));
        store.insert(Key::new("b"), numbers(50));
        assert!(store.is_spilled(&Key::new("a")));
        let a = store.get(&Key::new("a")).expect("read back");
        assert_eq!(len_of(&a), 50);
        assert!(!store.is_spilled(&Key::new("a")), "back in memory");
        assert!(store.is_spilled(&Key::new("b")), "made room for a");
        assert_eq!(store.len(), 2);
        let directions: Vec<_> = store.take_records().iter().map(|r| r.direction).collect();
        assert!(directions.contains(&SpillDirection::FromDisk));
    }

    #[test]
    fn a_peer_reads_a_spilled_value_without_it_coming_back_to_memory() {
        let mut store = store(1);
        store.insert(Key::new("a"), numbers(10));
        assert!(store.is_spilled(&Key::new("a")), "alone over the target: straight to disk");
        assert_eq!(len_of(&store.peek(&Key::new("a")).expect("there")), 10);
        assert!(store.is_spilled(&Key::new("a")));
        assert_eq!(store.memory_bytes(), 0);
    }

    #[test]
    fn values_without_an_encoder_or_a_disk_stay_in_memory() {
        let mut store = store(1);
        store.insert(Key::new("local"), Value::new(vec![1_u64; 100]));
        assert!(!store.is_spilled(&Key::new("local")));
        assert!(store.get(&Key::new("local")).is_some());

        let full = MemoryDisk { fail_writes: true, ..Default::default() };
        let mut store = DataStore::new(Some(1), Box::new(full));
        store.insert(Key::new("a"), numbers(10));
        assert!(!store.is_spilled(&Key::new("a")), "a failed write keeps the value");
        assert_eq!(len_of(&store.get(&Key::new("a")).expect("kept")), 10);
    }

    #[test]
    fn spilling_on_demand_frees_at_least_what_was_asked_and_removing_deletes_files() {
        let one = numbers(100).size_hint() as u64;
        let mut store = DataStore::new(None, Box::new(MemoryDisk::default()));
        for name in ["a", "b", "c"] {
            store.insert(Key::new(name), numbers(100));
        }
        assert_eq!(store.spilled_values(), 0, "no target: everything stays");
        assert_eq!(store.spill(one + 1), 2 * one);
        assert!(store.is_spilled(&Key::new("a")) && store.is_spilled(&Key::new("b")));
        assert!(store.remove(&Key::new("a")));
        assert_eq!(store.spilled_bytes(), one);
        store.clear();
        assert!(store.is_empty() && store.spilled_bytes() == 0 && store.memory_bytes() == 0);
    }

    #[test]
    fn spill_files_round_trip_and_their_directory_goes_with_the_store() {
        let parent = std::env::temp_dir();
        let mut disk = DirectoryDisk::create(&parent, "test worker/1").expect("created");
        let dir = disk.path().to_path_buf();
        let wire = WireValue::encode(&numbers(3)).expect("encodes");
        disk.write(7, &wire).expect("written");
        assert_eq!(disk.read(7).expect("read"), wire);
        disk.remove(7);
        assert!(disk.read(7).is_err());
        drop(disk);
        assert!(!dir.exists());
    }
}
