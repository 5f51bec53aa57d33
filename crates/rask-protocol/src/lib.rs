//! # rask-protocol: how rask processes talk
//!
//! Every connection between a client, the scheduler and the workers speaks the same protocol:
//!
//! * **Frames** are length-prefixed (`u32`, big-endian) with a maximum size; a larger frame is
//!   an error that closes the connection, never an allocation of whatever the peer claims.
//! * **Handshake**: each side's first frame is a [`Hello`] that names the protocol version and
//!   the role. A wrong magic (not a rask peer) or a different version is refused with both
//!   versions in the message.
//! * **Packets**: after the handshake, a [`Packet`] is one control frame (a batch of messages,
//!   serialized with `postcard`) followed by its data frames. Messages point at data by index,
//!   so a large value is never copied into a control message. A data frame over 64 KiB to a
//!   peer on another host is compressed with lz4 when compressing a sample of it pays off; to a
//!   peer on this host (loopback, in-process) never: copying is faster than compressing there.
//! * **Transports** ([`transport`]): TCP between processes (`host:port`), in-memory pipes inside
//!   one process (`memory://NAME`), with the same code on top.
//!
//! [`messages`] holds what the scheduler, workers and clients say to each other.

pub mod connection;
pub mod data;
pub mod messages;
pub mod transport;

pub use connection::{
    connect, handshake, Connection, Hello, Packet, PacketReceiver, PacketSender, ProtocolError,
    Role, MAX_FRAME_BYTES, PROTOCOL_VERSION,
};
pub use transport::{Link, Listener, Stream};
