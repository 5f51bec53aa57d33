//! Frames, the handshake, packets and compression.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::codec::{Framed, LengthDelimitedCodec};

use crate::transport::Link;

/// The version of this protocol. Peers of different versions refuse each other.
pub const PROTOCOL_VERSION: u32 = 1;

/// The default largest frame: 1 GiB.
pub const MAX_FRAME_BYTES: usize = 1 << 30;

const MAGIC: [u8; 4] = *b"RASK";

/// Data frames above this size are candidates for compression.
const COMPRESS_ABOVE: usize = 64 * 1024;

/// How long the peer has to send its hello (long enough for a worker busy spilling: see
/// `data::CONNECT_TIMEOUT`).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// What can go wrong on a connection.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// The socket failed.
    #[error("connection error: {0}")]
    Io(#[from] std::io::Error),
    /// The peer closed the connection.
    #[error("the peer closed the connection")]
    Closed,
    /// The peer is not speaking rask.
    #[error("the peer is not a rask process (its first frame is not a rask hello)")]
    NotRask,
    /// The peer speaks another version of the protocol.
    #[error(
        "protocol version mismatch: this process speaks version {ours}, the peer speaks version \
         {theirs}; run the same rask version everywhere"
    )]
    VersionMismatch {
        /// This process's version.
        ours: u32,
        /// The peer's version.
        theirs: u32,
    },
    /// The peer did not say hello in time.
    #[error("the peer did not complete the handshake within {0:?}")]
    HandshakeTimeout(Duration),
    /// A frame could not be decoded.
    #[error("malformed message: {0}")]
    Malformed(String),
}

impl ProtocolError {
    /// What to do about a failed connection to a scheduler, when the cause says (appended to
    /// the error): nothing listening is the common case — no scheduler started yet, or a wrong
    /// address or port.
    pub fn connect_hint(&self) -> &'static str {
        match self {
            ProtocolError::Io(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                "; nothing listens there: start a scheduler (`rask scheduler`) or check the address"
            }
            _ => "",
        }
    }
}

/// The first frame of every connection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    magic: [u8; 4],
    /// The sender's protocol version.
    pub version: u32,
    /// Who the sender is.
    pub role: Role,
}

impl Hello {
    /// A hello from this process in the given role.
    pub fn new(role: Role) -> Self {
        Hello { magic: MAGIC, version: PROTOCOL_VERSION, role }
    }
}

/// Who is on the other end.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    /// A client, to the scheduler.
    Client,
    /// A worker, to the scheduler.
    Worker,
    /// A worker or client fetching data from a worker.
    Peer,
    /// The scheduler, answering.
    Scheduler,
    /// A worker answering a peer.
    WorkerServer,
}

/// A batch of messages and the data frames they point at (by index).
#[derive(Debug, Default)]
pub struct Packet<M> {
    /// The messages, in order.
    pub messages: Vec<M>,
    /// Out-of-band payloads.
    pub data: Vec<Bytes>,
}

impl<M> Packet<M> {
    /// A packet of one message without data.
    pub fn one(message: M) -> Self {
        Packet { messages: vec![message], data: Vec::new() }
    }

    /// Adds a payload; returns its index.
    pub fn push_data(&mut self, data: Bytes) -> u32 {
        self.data.push(data);
        self.data.len() as u32 - 1
    }
}

/// The control frame of a packet.
#[derive(Serialize, Deserialize)]
struct Header<M> {
    messages: Vec<M>,
    /// Per data frame: whether it is lz4-compressed.
    compressed: Vec<bool>,
}

/// A framed connection after the handshake, sending `Out` and receiving `In` messages.
pub struct Connection<T, In, Out> {
    framed: Framed<T, LengthDelimitedCodec>,
    /// Whether large payloads sent are compressed when a sample shows it pays: only to a peer
    /// on another host (see [`Link`]).
    compress: bool,
    _types: std::marker::PhantomData<fn(Out) -> In>,
}

fn codec(max_frame: usize) -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder().max_frame_length(max_frame).new_codec()
}

fn io_error(error: std::io::Error) -> ProtocolError {
    if error.kind() == std::io::ErrorKind::InvalidData {
        // The length-delimited codec reports an oversized frame this way.
        ProtocolError::Malformed(error.to_string())
    } else {
        ProtocolError::Io(error)
    }
}

/// Says hello, waits for the peer's hello and checks it. Returns the connection and the peer's
/// hello. A mismatch is reported to the peer too (in our hello) and then as an error here.
/// Payloads to a peer on another host are compressed when it pays; to one on this host never.
pub async fn handshake<T, In, Out>(
    transport: T,
    role: Role,
    max_frame: usize,
) -> Result<(Connection<T, In, Out>, Hello), ProtocolError>
where
    T: AsyncRead + AsyncWrite + Link + Unpin,
{
    let compress = !transport.peer_is_local();
    let mut framed = Framed::new(transport, codec(max_frame));
    let hello = Hello::new(role);
    let bytes = postcard::to_stdvec(&hello).map_err(|e| ProtocolError::Malformed(e.to_string()))?;
    framed.send(Bytes::from(bytes)).await.map_err(io_error)?;
    let frame = tokio::time::timeout(HANDSHAKE_TIMEOUT, framed.next())
        .await
        .map_err(|_| ProtocolError::HandshakeTimeout(HANDSHAKE_TIMEOUT))?
        .ok_or(ProtocolError::Closed)?
        .map_err(|_| ProtocolError::NotRask)?;
    let theirs: Hello = postcard::from_bytes(&frame).map_err(|_| ProtocolError::NotRask)?;
    if theirs.magic != MAGIC {
        return Err(ProtocolError::NotRask);
    }
    if theirs.version != PROTOCOL_VERSION {
        return Err(ProtocolError::VersionMismatch {
            ours: PROTOCOL_VERSION,
            theirs: theirs.version,
        });
    }
    Ok((Connection { framed, compress, _types: std::marker::PhantomData }, theirs))
}

/// Connects to `address` (`host:port` over TCP without Nagle delay, or `memory://NAME` in
/// this process) and shakes hands.
pub async fn connect<In, Out>(
    address: &str,
    role: Role,
) -> Result<(Connection<crate::transport::Stream, In, Out>, Hello), ProtocolError> {
    let stream = crate::transport::Stream::connect(address).await?;
    handshake(stream, role, MAX_FRAME_BYTES).await
}

impl<T, In, Out> Connection<T, In, Out>
where
    T: AsyncRead + AsyncWrite + Unpin,
    In: DeserializeOwned,
    Out: Serialize,
{
    /// Sends a packet: the control frame, then the data frames.
    pub async fn send(&mut self, packet: Packet<Out>) -> Result<(), ProtocolError> {
        send_packet(&mut self.framed, packet, self.compress).await
    }

    /// The same connection, compressing large payloads when a sample shows it pays (`true`)
    /// or never (`false`), wherever the peer is.
    pub fn with_compression(self, compress: bool) -> Self {
        Connection { compress, ..self }
    }

    /// Receives the next packet; `None` when the peer closed the connection cleanly.
    pub async fn recv(&mut self) -> Result<Option<Packet<In>>, ProtocolError> {
        recv_packet(&mut self.framed).await
    }

    /// The same connection with other message types (after the handshake revealed the role).
    pub fn retype<In2, Out2>(self) -> Connection<T, In2, Out2> {
        Connection {
            framed: self.framed,
            compress: self.compress,
            _types: std::marker::PhantomData,
        }
    }

    /// Splits the connection into a sending and a receiving half, for separate tasks.
    pub fn split(self) -> (PacketSender<T, Out>, PacketReceiver<T, In>) {
        let (sink, stream) = self.framed.split();
        (
            PacketSender { sink, compress: self.compress, _types: std::marker::PhantomData },
            PacketReceiver { stream, _types: std::marker::PhantomData },
        )
    }
}

/// The sending half of a [`Connection`].
pub struct PacketSender<T, Out> {
    sink: SplitSink<Framed<T, LengthDelimitedCodec>, Bytes>,
    compress: bool,
    _types: std::marker::PhantomData<fn(Out)>,
}

/// The receiving half of a [`Connection`].
pub struct PacketReceiver<T, In> {
    stream: SplitStream<Framed<T, LengthDelimitedCodec>>,
    _types: std::marker::PhantomData<fn() -> In>,
}

impl<T: AsyncRead + AsyncWrite + Unpin, Out: Serialize> PacketSender<T, Out> {
    /// Sends a packet.
    pub async fn send(&mut self, packet: Packet<Out>) -> Result<(), ProtocolError> {
        send_packet(&mut self.sink, packet, self.compress).await
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin, In: DeserializeOwned> PacketReceiver<T, In> {
    /// Receives the next packet; `None` when the peer closed the connection cleanly.
    pub async fn recv(&mut self) -> Result<Option<Packet<In>>, ProtocolError> {
        recv_packet(&mut self.stream).await
    }
}

async fn send_packet<S, Out>(
    sink: &mut S,
    packet: Packet<Out>,
    compress_payloads: bool,
) -> Result<(), ProtocolError>
where
    S: futures_util::Sink<Bytes, Error = std::io::Error> + Unpin,
    Out: Serialize,
{
    let mut compressed = Vec::with_capacity(packet.data.len());
    let mut data = Vec::with_capacity(packet.data.len());
    for payload in packet.data {
        match compress_payloads.then(|| compress(&payload)).flatten() {
            Some(smaller) => {
                compressed.push(true);
                data.push(smaller);
            }
            None => {
                compressed.push(false);
                data.push(payload);
            }
        }
    }
    let header = Header { messages: packet.messages, compressed };
    let bytes =
        postcard::to_stdvec(&header).map_err(|e| ProtocolError::Malformed(e.to_string()))?;
    sink.feed(Bytes::from(bytes)).await.map_err(io_error)?;
    for payload in data {
        sink.feed(payload).await.map_err(io_error)?;
    }
    sink.flush().await.map_err(io_error)
}

async fn recv_packet<S, In>(stream: &mut S) -> Result<Option<Packet<In>>, ProtocolError>
where
    S: futures_util::Stream<Item = Result<BytesMut, std::io::Error>> + Unpin,
    In: DeserializeOwned,
{
    let Some(frame) = stream.next().await else { return Ok(None) };
    let frame = frame.map_err(io_error)?;
    let header: Header<In> =
        postcard::from_bytes(&frame).map_err(|e| ProtocolError::Malformed(e.to_string()))?;
    let mut data = Vec::with_capacity(header.compressed.len());
    for compressed in header.compressed {
        let frame: BytesMut =
            stream.next().await.ok_or(ProtocolError::Closed)?.map_err(io_error)?;
        data.push(if compressed { decompress(&frame)? } else { frame.freeze() });
    }
    Ok(Some(Packet { messages: header.messages, data }))
}

/// Compresses a payload when a sample shows it pays: lz4 on the first 64 KiB, and only if that
/// shrinks by a tenth or more.
fn compress(payload: &Bytes) -> Option<Bytes> {
    if payload.len() <= COMPRESS_ABOVE {
        return None;
    }
    let sample = &payload[..COMPRESS_ABOVE];
    if lz4_flex::compress(sample).len() * 10 > sample.len() * 9 {
        return None;
    }
    let whole = lz4_flex::compress_prepend_size(payload);
    (whole.len() < payload.len()).then(|| Bytes::from(whole))
}

fn decompress(frame: &[u8]) -> Result<Bytes, ProtocolError> {
    lz4_flex::decompress_size_prepended(frame)
        .map(Bytes::from)
        .map_err(|e| ProtocolError::Malformed(format!("a compressed data frame is corrupt: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compression_only_when_it_pays() {
        let repetitive = Bytes::from(vec![7u8; 1 << 20]);
        let small = compress(&repetitive).expect("repetitive data compresses");
        assert!(small.len() < repetitive.len() / 10);
        assert_eq!(decompress(&small).unwrap(), repetitive);
        let mut noise = vec![0u8; 1 << 18];
        let mut x = 0x2545_f491_4f6c_dd1d_u64;
        for b in &mut noise {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
        assert!(compress(&Bytes::from(noise)).is_none(), "random bytes are sent as they are");
        assert!(
            compress(&Bytes::from(vec![0u8; 1000])).is_none(),
            "small frames are not compressed"
        );
    }

    /// The compression flags of a packet with one large repetitive payload, read raw from
    /// the wire, with the connection's default (`None`) or a forced choice.
    async fn wire_flags(compress: Option<bool>) -> Vec<bool> {
        let (a, b) = tokio::io::duplex(1 << 16);
        let ((left, _), (mut right, _)) = tokio::try_join!(
            handshake::<_, String, String>(a, Role::Client, 1 << 24),
            handshake::<_, String, String>(b, Role::Scheduler, 1 << 24),
        )
        .unwrap();
        let mut left = match compress {
            Some(on) => left.with_compression(on),
            None => left,
        };
        let packet =
            Packet { messages: vec!["x".to_string()], data: vec![Bytes::from(vec![1u8; 1 << 20])] };
        let read_header = async {
            let frame = right.framed.next().await.expect("a frame").unwrap();
            let flags = postcard::from_bytes::<Header<String>>(&frame).unwrap().compressed;
            // Read the payload too: the pipe holds less than it, so the send waits for that.
            right.framed.next().await.expect("the payload's frame").unwrap();
            flags
        };
        let (sent, flags) = tokio::time::timeout(Duration::from_secs(10), async {
            tokio::join!(left.send(packet), read_header)
        })
        .await
        .expect("sent within 10 s");
        sent.unwrap();
        flags
    }

    #[tokio::test]
    async fn a_peer_on_this_host_gets_payloads_as_they_are() {
        assert_eq!(wire_flags(None).await, [false], "an in-process pipe is local");
        assert_eq!(wire_flags(Some(true)).await, [true], "as to another host");
        assert_eq!(wire_flags(Some(false)).await, [false]);
    }

    #[tokio::test]
    async fn a_loopback_socket_is_local() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (client, accepted) = tokio::time::timeout(Duration::from_secs(10), async {
            tokio::join!(tokio::net::TcpStream::connect(address), listener.accept())
        })
        .await
        .expect("connected within 10 s");
        assert!(client.unwrap().peer_is_local());
        assert!(accepted.unwrap().0.peer_is_local());
    }
}
