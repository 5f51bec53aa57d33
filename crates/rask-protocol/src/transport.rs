//! Transports: TCP between processes, in-memory pipes inside one process — the same
//! connections on top of either.
//!
//! An address `host:port` is TCP. An address `memory://NAME` is an in-process listener
//! registered under that name: connecting makes a `tokio::io::duplex` pipe and hands one end to
//! the listener, so an in-process cluster (`LocalCluster::new`) runs the very same scheduler,
//! worker and client code without sockets.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, DuplexStream, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// Where a byte stream's peer is, which decides whether large payloads are compressed.
pub trait Link {
    /// Whether the peer is on this host: an in-process pipe or a loopback socket (a socket to
    /// this host's own external address counts as remote). There, copying a payload (several
    /// GB/s) is cheaper than compressing it with lz4 (well under 1 GB/s on one core, taken
    /// from the worker's event loop), so nothing is compressed.
    fn peer_is_local(&self) -> bool;
}

impl Link for TcpStream {
    fn peer_is_local(&self) -> bool {
        self.peer_addr().is_ok_and(|peer| peer.ip().is_loopback())
    }
}

impl Link for DuplexStream {
    fn peer_is_local(&self) -> bool {
        true
    }
}

impl Link for Stream {
    fn peer_is_local(&self) -> bool {
        match self {
            Stream::Tcp(stream) => stream.peer_is_local(),
            Stream::Memory(pipe) => pipe.peer_is_local(),
        }
    }
}

/// The prefix of in-process addresses.
pub const MEMORY_PREFIX: &str = "memory://";

/// Buffer size of an in-memory pipe, each way.
const PIPE_BYTES: usize = 1 << 20;

fn listeners() -> &'static Mutex<HashMap<String, mpsc::UnboundedSender<DuplexStream>>> {
    static LISTENERS: std::sync::OnceLock<
        Mutex<HashMap<String, mpsc::UnboundedSender<DuplexStream>>>,
    > = std::sync::OnceLock::new();
    LISTENERS.get_or_init(Default::default)
}

/// A connected byte stream: a TCP socket or an in-memory pipe.
#[derive(Debug)]
pub enum Stream {
    /// Between processes.
    Tcp(TcpStream),
    /// Inside this process.
    Memory(DuplexStream),
}

impl Stream {
    /// Connects to `address` (`host:port` or `memory://NAME`).
    pub async fn connect(address: &str) -> std::io::Result<Stream> {
        match address.strip_prefix(MEMORY_PREFIX) {
            Some(_) => {
                let listener = listeners().lock().expect("not poisoned").get(address).cloned();
                let listener = listener.ok_or_else(|| {
                    std::io::Error::new(
                        std::io::ErrorKind::ConnectionRefused,
                        format!("nothing listens at {address}"),
                    )
                })?;
                let (ours, theirs) = tokio::io::duplex(PIPE_BYTES);
                listener.send(theirs).map_err(|_| {
                    std::io::Error::new(
                        std::io::ErrorKind::ConnectionRefused,
                        format!("{address} stopped listening"),
                    )
                })?;
                Ok(Stream::Memory(ours))
            }
            None => {
                let stream = TcpStream::connect(address).await?;
                stream.set_nodelay(true)?;
                Ok(Stream::Tcp(stream))
            }
        }
    }
}

/// Accepts connections at an address (TCP, or an in-process name).
pub enum Listener {
    /// A TCP listener.
    Tcp(TcpListener),
    /// An in-process listener.
    Memory {
        /// Its address, `memory://NAME`.
        address: String,
        /// Pipes from connecting peers.
        incoming: mpsc::UnboundedReceiver<DuplexStream>,
    },
}

impl Listener {
    /// Listens at `address`: `host:port` (port 0: any free port) or `memory://NAME` (a name
    /// already taken is an error).
    pub async fn bind(address: &str) -> std::io::Result<Listener> {
        if address.starts_with(MEMORY_PREFIX) {
            let (sender, incoming) = mpsc::unbounded_channel();
            let mut registry = listeners().lock().expect("not poisoned");
            if registry.get(address).is_some_and(|s| !s.is_closed()) {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::AddrInUse,
                    format!("{address} is taken"),
                ));
            }
            registry.insert(address.to_string(), sender);
            return Ok(Listener::Memory { address: address.to_string(), incoming });
        }
        Ok(Listener::Tcp(TcpListener::bind(address).await?))
    }

    /// The address peers connect to.
    pub fn address(&self) -> std::io::Result<String> {
        match self {
            Listener::Tcp(listener) => Ok(listener.local_addr()?.to_string()),
            Listener::Memory { address, .. } => Ok(address.clone()),
        }
    }

    /// The next connection and a description of the peer, for logs.
    pub async fn accept(&mut self) -> std::io::Result<(Stream, String)> {
        match self {
            Listener::Tcp(listener) => {
                let (stream, peer) = listener.accept().await?;
                stream.set_nodelay(true)?;
                Ok((Stream::Tcp(stream), peer.to_string()))
            }
            Listener::Memory { address, incoming } => match incoming.recv().await {
                Some(pipe) => Ok((Stream::Memory(pipe), format!("{address} (in-process peer)"))),
                None => {
                    Err(std::io::Error::new(std::io::ErrorKind::NotConnected, "listener closed"))
                }
            },
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Listener::Memory { address, .. } = self {
            listeners().lock().expect("not poisoned").remove(address.as_str());
        }
    }
}

/// A unique in-process address with the given prefix.
pub fn memory_address(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "{MEMORY_PREFIX}{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Memory(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Memory(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_flush(cx),
            Stream::Memory(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Memory(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}
