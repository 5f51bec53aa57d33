//! [`Location`]: a local file, or an object in a store (S3, HTTP) through `object_store`.
//!
//! A [`Location`] is a serializable address (a local path, or a URL plus the options that open
//! its store), so a task on another process can read the same bytes. Local files are read with
//! `std::fs` (positioned reads, no runtime); URLs go through `object_store`, whose async calls
//! run on one small tokio runtime shared by the whole process.

use std::collections::HashMap;
use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use futures_util::TryStreamExt;
use object_store::path::Path as StorePath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Options for opening object stores, as `object_store` names them (`aws_endpoint`,
/// `aws_access_key_id`, `aws_allow_http`, `google_service_account`, ...). Variables of the
/// environment (`AWS_ENDPOINT`, `AWS_ACCESS_KEY_ID`, ...) apply too.
pub type StorageOptions = Vec<(String, String)>;

/// Storage options from any pairs of strings (what the readers' and writers' builders take).
pub fn storage_options<K: AsRef<str>, V: AsRef<str>>(
    options: impl IntoIterator<Item = (K, V)>,
) -> StorageOptions {
    options.into_iter().map(|(k, v)| (k.as_ref().to_string(), v.as_ref().to_string())).collect()
}

/// A file: a local path or an object in a store.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Location {
    /// A local file.
    Local(PathBuf),
    /// An object, by URL (`s3://bucket/key`), with the options that open its store.
    Remote {
        /// The object's URL.
        url: String,
        /// Options for the store.
        options: StorageOptions,
    },
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Local(path) => write!(f, "{}", path.display()),
            Location::Remote { url, .. } => f.write_str(url),
        }
    }
}

/// Whether `path` is a URL (has a scheme other than `file`).
pub fn is_url(path: &str) -> bool {
    path.split_once("://").is_some_and(|(scheme, _)| scheme != "file")
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("rask-object-store")
            .enable_all()
            .build()
            .expect("cannot start the tokio runtime for object stores")
    })
}

/// Runs a future to completion from synchronous code, also when called on a thread that is
/// already inside a tokio runtime (where `block_on` would panic).
pub fn block_on<F: std::future::Future + Send>(future: F) -> F::Output
where
    F::Output: Send,
{
    if tokio::runtime::Handle::try_current().is_ok() {
        std::thread::scope(|scope| scope.spawn(|| runtime().block_on(future)).join())
            .expect("object store call panicked")
    } else {
        runtime().block_on(future)
    }
}

/// Runs a future to completion on the calling thread, inside the shared runtime's context (its
/// threads drive the sockets): for futures that are not `Send`, such as those of storage
/// adapters. Must not be called from async code.
pub fn block_on_here<F: std::future::Future>(future: F) -> F::Output {
    let _context = runtime().enter();
    futures_executor::block_on(future)
}

/// Opens (once per process) the store that holds `url`.
pub fn store_for(url: &str, options: &StorageOptions) -> Result<(Arc<dyn ObjectStore>, StorePath)> {
    type Stores = HashMap<(String, StorageOptions), Arc<dyn ObjectStore>>;
    static STORES: OnceLock<Mutex<Stores>> = OnceLock::new();
    let parsed = url::Url::parse(url).map_err(|e| Error::io("cannot parse the URL", url, e))?;
    let root = format!("{}://{}", parsed.scheme(), parsed.authority());
    let path = StorePath::from_url_path(parsed.path())
        .map_err(|e| Error::io("cannot parse the path of", url, e))?;
    let mut stores = STORES.get_or_init(Default::default).lock().unwrap_or_else(|p| p.into_inner());
    let key = (root.clone(), options.clone());
    if let Some(store) = stores.get(&key) {
        return Ok((store.clone(), path));
    }
    let root_url = url::Url::parse(&root).map_err(|e| Error::io("cannot parse the URL", url, e))?;
    let mut all_options: Vec<(String, String)> = std::env::vars()
        .filter(|(name, _)| {
            name.starts_with("AWS_") || name.starts_with("GOOGLE_") || name.starts_with("AZURE_")
        })
        .map(|(name, value)| (name.to_ascii_lowercase(), value))
        .collect();
    all_options.extend(options.iter().cloned());
    let (store, _) = object_store::parse_url_opts(&root_url, all_options).map_err(|e| {
        Error::io("cannot open the object store for", url, format!("{e} (set credentials and endpoint through storage options or AWS_*/GOOGLE_*/AZURE_* variables)"))
    })?;
    let store: Arc<dyn ObjectStore> = Arc::from(store);
    stores.insert(key, store.clone());
    Ok((store, path))
}

/// Every file that `pattern` names, sorted, with its size: a file, a directory (every file in
/// it, hidden ones and `_`-prefixed ones such as `_SUCCESS` left out), or a glob (`*`, `?`,
/// `[...]`, `**`). URLs are listed in their store.
pub fn expand(pattern: &str, options: &StorageOptions) -> Result<Vec<(Location, u64)>> {
    let files = if is_url(pattern) {
        expand_remote(pattern, options)?
    } else {
        expand_local(pattern.strip_prefix("file://").unwrap_or(pattern))?
    };
    if files.is_empty() {
        return Err(Error::NoFiles { pattern: pattern.to_string() });
    }
    Ok(files)
}

fn is_data_file(name: &str) -> bool {
    !name.starts_with('.') && !name.starts_with('_')
}

fn expand_local(pattern: &str) -> Result<Vec<(Location, u64)>> {
    let path = Path::new(pattern);
    let mut files: Vec<PathBuf> = if path.is_dir() {
        fs::read_dir(path)
            .map_err(|e| Error::io("cannot list", pattern, e))?
            .filter_map(|entry| entry.ok().map(|entry| entry.path()))
            .filter(|p| {
                p.is_file() && p.file_name().and_then(|n| n.to_str()).is_some_and(is_data_file)
            })
            .collect()
    } else if pattern.contains(['*', '?', '[']) {
        glob::glob(pattern)
            .map_err(|e| Error::Invalid(format!("`{pattern}` is not a valid glob: {e}")))?
            .filter_map(|entry| entry.ok())
            .filter(|p| p.is_file())
            .collect()
    } else if path.is_file() {
        vec![path.to_path_buf()]
    } else {
        Vec::new()
    };
    files.sort();
    files
        .into_iter()
        .map(|file| {
            let size =
                fs::metadata(&file).map_err(|e| Error::io("cannot read", file.display(), e))?.len();
            Ok((Location::Local(file), size))
        })
        .collect()
}

fn expand_remote(pattern: &str, options: &StorageOptions) -> Result<Vec<(Location, u64)>> {
    let (store, path) = store_for(pattern, options)?;
    let location = |p: &StorePath| {
        let base = pattern.split_once("://").map(|(scheme, rest)| {
            (scheme, rest.split_once('/').map_or(rest, |(authority, _)| authority))
        });
        let (scheme, authority) = base.expect("a URL has a scheme");
        Location::Remote { url: format!("{scheme}://{authority}/{p}"), options: options.clone() }
    };
    let path_str = path.as_ref().to_string();
    let has_glob = path_str.contains(['*', '?', '[']);
    // List from the longest prefix without glob characters.
    let prefix_str = if has_glob {
        let cut = path_str.find(['*', '?', '[']).unwrap_or(path_str.len());
        path_str[..cut].rsplit_once('/').map_or("", |(dir, _)| dir).to_string()
    } else {
        path_str.clone()
    };
    let prefix = StorePath::from(prefix_str.as_str());
    let listed: Vec<object_store::ObjectMeta> =
        block_on(async { store.list(Some(&prefix)).try_collect().await })
            .map_err(|e| Error::io("cannot list", pattern, e))?;
    let matcher = if has_glob {
        Some(
            glob::Pattern::new(&path_str)
                .map_err(|e| Error::Invalid(format!("`{pattern}` is not a valid glob: {e}")))?,
        )
    } else {
        None
    };
    let mut files: Vec<(Location, u64)> = listed
        .into_iter()
        .filter(|meta| {
            let name = meta.location.filename().unwrap_or("");
            let full = meta.location.as_ref();
            is_data_file(name)
                && match &matcher {
                    Some(m) => m.matches(full),
                    None => full == path_str || full.starts_with(&format!("{path_str}/")),
                }
        })
        .map(|meta| (location(&meta.location), meta.size))
        .collect();
    files.sort_by_key(|file| file.0.to_string());
    Ok(files)
}

impl Location {
    /// A location from a path or URL.
    pub fn parse(path: &str, options: &StorageOptions) -> Self {
        if is_url(path) {
            Location::Remote { url: path.to_string(), options: options.clone() }
        } else {
            Location::Local(PathBuf::from(path.strip_prefix("file://").unwrap_or(path)))
        }
    }

    /// A location inside this one (a file in a directory).
    pub fn join(&self, name: &str) -> Self {
        match self {
            Location::Local(path) => Location::Local(path.join(name)),
            Location::Remote { url, options } => Location::Remote {
                url: format!("{}/{name}", url.trim_end_matches('/')),
                options: options.clone(),
            },
        }
    }

    /// The bytes in `start..end`. Callers keep `end` within the file (they know its size from
    /// listing it), which spares object stores a round trip per read.
    pub fn read_range(&self, start: u64, end: u64) -> Result<Vec<u8>> {
        match self {
            Location::Local(path) => {
                let mut file =
                    fs::File::open(path).map_err(|e| Error::io("cannot read", self, e))?;
                file.seek(SeekFrom::Start(start)).map_err(|e| Error::io("cannot read", self, e))?;
                let mut bytes = Vec::with_capacity(end.saturating_sub(start) as usize);
                file.take(end.saturating_sub(start))
                    .read_to_end(&mut bytes)
                    .map_err(|e| Error::io("cannot read", self, e))?;
                Ok(bytes)
            }
            Location::Remote { url, options } => {
                let (store, path) = store_for(url, options)?;
                if start >= end {
                    return Ok(Vec::new());
                }
                let bytes = block_on(async { store.get_range(&path, start..end).await })
                    .map_err(|e| Error::io("cannot read", self, e))?;
                Ok(bytes.to_vec())
            }
        }
    }

    /// The whole file.
    pub fn read_all(&self) -> Result<Vec<u8>> {
        match self {
            Location::Local(path) => fs::read(path).map_err(|e| Error::io("cannot read", self, e)),
            Location::Remote { url, options } => {
                let (store, path) = store_for(url, options)?;
                let bytes = block_on(async { store.get(&path).await?.bytes().await })
                    .map_err(|e| Error::io("cannot read", self, e))?;
                Ok(bytes.to_vec())
            }
        }
    }

    /// Writes a whole file (creating local parent directories).
    pub fn write_all(&self, bytes: Vec<u8>) -> Result<()> {
        match self {
            Location::Local(path) => {
                if let Some(parent) = path.parent() {
                    fs::create_dir_all(parent).map_err(|e| Error::io("cannot write", self, e))?;
                }
                fs::write(path, bytes).map_err(|e| Error::io("cannot write", self, e))
            }
            Location::Remote { url, options } => {
                let (store, path) = store_for(url, options)?;
                block_on(async { store.put(&path, PutPayload::from(bytes)).await })
                    .map_err(|e| Error::io("cannot write", self, e))?;
                Ok(())
            }
        }
    }

    /// Writes a whole file from what `write` puts into a writer: streamed into a local file
    /// (creating its parent directories), or gathered and put as one object.
    pub fn write_with<E: From<Error>>(
        &self,
        write: impl FnOnce(&mut dyn std::io::Write) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        match self {
            Location::Local(path) => {
                if let Some(parent) = path.parent() {
                    fs::create_dir_all(parent).map_err(|e| Error::io("cannot write", self, e))?;
                }
                let file: fs::File =
                    fs::File::create(path).map_err(|e| Error::io("cannot write", self, e))?;
                let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
                write(&mut out)?;
                Ok(std::io::Write::flush(&mut out)
                    .map_err(|e| Error::io("cannot write", self, e))?)
            }
            Location::Remote { .. } => {
                let mut bytes = Vec::new();
                write(&mut bytes)?;
                Ok(self.write_all(bytes)?)
            }
        }
    }

    /// Writes `head` followed by the files or objects of `parts`, in order, as one file:
    /// streamed into a local file, or into an object by a multipart upload (5 MiB parts, at most
    /// four in flight). One part is in memory at a time, so the file may be larger than memory.
    /// A failed upload is aborted, leaving no partial object. Returns the bytes of `parts`.
    pub fn write_concatenation(&self, head: &[u8], parts: &[Location]) -> Result<u64> {
        match self {
            Location::Local(path) => {
                if let Some(parent) = path.parent() {
                    fs::create_dir_all(parent).map_err(|e| Error::io("cannot write", self, e))?;
                }
                let mut out = std::io::BufWriter::with_capacity(
                    1 << 20,
                    fs::File::create(path).map_err(|e| Error::io("cannot write", self, e))?,
                );
                std::io::Write::write_all(&mut out, head)
                    .map_err(|e| Error::io("cannot write", self, e))?;
                let mut total = 0;
                for part in parts {
                    let bytes = part.read_all()?;
                    std::io::Write::write_all(&mut out, &bytes)
                        .map_err(|e| Error::io("cannot write", self, e))?;
                    total += bytes.len() as u64;
                }
                std::io::Write::flush(&mut out).map_err(|e| Error::io("cannot write", self, e))?;
                Ok(total)
            }
            Location::Remote { url, options } => {
                let (store, path) = store_for(url, options)?;
                let sources = parts
                    .iter()
                    .map(|part| match part {
                        Location::Remote { url, options } => {
                            store_for(url, options).map(|(store, path)| (Some(store), path, part))
                        }
                        Location::Local(_) => Ok((None, StorePath::default(), part)),
                    })
                    .collect::<Result<Vec<_>>>()?;
                block_on(async {
                    let upload = store
                        .put_multipart(&path)
                        .await
                        .map_err(|e| Error::io("cannot start writing", self, e))?;
                    let mut writer = object_store::WriteMultipart::new(upload);
                    writer.write(head);
                    let mut total = 0u64;
                    for (source, source_path, part) in &sources {
                        let bytes = match source {
                            Some(store) => match store.get(source_path).await {
                                Ok(got) => got.bytes().await.map(|b| b.to_vec()),
                                Err(e) => Err(e),
                            }
                            .map_err(|e| Error::io("cannot read", part, e)),
                            None => part.read_all(),
                        };
                        let step = match bytes {
                            Ok(bytes) => {
                                total += bytes.len() as u64;
                                writer.wait_for_capacity(4).await.map(|()| writer.write(&bytes))
                            }
                            Err(e) => {
                                writer.abort().await.ok();
                                return Err(e);
                            }
                        };
                        if let Err(e) = step {
                            writer.abort().await.ok();
                            return Err(Error::io("cannot write", self, e));
                        }
                    }
                    writer.finish().await.map_err(|e| Error::io("cannot write", self, e))?;
                    Ok(total)
                })
            }
        }
    }

    /// The size in bytes of the file or object here (one `HEAD` request for an object).
    pub fn size(&self) -> Result<u64> {
        match self {
            Location::Local(path) => {
                Ok(fs::metadata(path).map_err(|e| Error::io("cannot read", self, e))?.len())
            }
            Location::Remote { url, options } => {
                let (store, path) = store_for(url, options)?;
                let meta = block_on(async { store.head(&path).await })
                    .map_err(|e| Error::io("cannot read", self, e))?;
                Ok(meta.size)
            }
        }
    }

    /// Whether anything exists here (a file, a directory, or objects under this prefix).
    pub fn exists(&self) -> Result<bool> {
        match self {
            Location::Local(path) => Ok(path.exists()),
            Location::Remote { url, options } => {
                let (store, path) = store_for(url, options)?;
                let first = block_on(async {
                    let mut listing = store.list(Some(&path));
                    listing.try_next().await
                })
                .map_err(|e| Error::io("cannot list", self, e))?;
                Ok(first.is_some())
            }
        }
    }

    /// Deletes every object under this prefix (remote locations only; local directories are
    /// replaced by renaming, see `to_parquet`).
    pub fn delete_prefix(&self) -> Result<()> {
        match self {
            Location::Local(path) => {
                if path.is_dir() {
                    fs::remove_dir_all(path).map_err(|e| Error::io("cannot delete", self, e))?;
                } else if path.exists() {
                    fs::remove_file(path).map_err(|e| Error::io("cannot delete", self, e))?;
                }
                Ok(())
            }
            Location::Remote { url, options } => {
                let (store, path) = store_for(url, options)?;
                block_on(async {
                    let objects: Vec<object_store::ObjectMeta> =
                        store.list(Some(&path)).try_collect().await?;
                    for meta in objects {
                        store.delete(&meta.location).await?;
                    }
                    Ok::<_, object_store::Error>(())
                })
                .map_err(|e| Error::io("cannot delete", self, e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_concatenation_is_the_head_then_the_parts_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let part = |name: &str, bytes: &[u8]| {
            let location = Location::Local(dir.path().join(name));
            location.write_all(bytes.to_vec()).unwrap();
            location
        };
        let parts = [part("b", b"second"), part("a", b"first-"), part("c", b"")];
        let target = Location::Local(dir.path().join("out/whole"));
        let written = target.write_concatenation(b"HEAD:", &parts).unwrap();
        assert_eq!(written, 12, "the parts' bytes, not the head's");
        assert_eq!(target.read_all().unwrap(), b"HEAD:secondfirst-");
        // A part that does not exist: an error naming it.
        let missing = Location::Local(dir.path().join("missing"));
        let err = target.write_concatenation(b"", &[missing]).unwrap_err().to_string();
        assert!(err.contains("missing"), "{err}");
    }
}
