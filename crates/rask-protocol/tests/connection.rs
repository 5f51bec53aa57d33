//! The protocol over in-memory pipes: handshakes, packets with data, and bad peers.

use std::time::Duration;

use bytes::Bytes;
use rask_protocol::{handshake, Connection, Packet, ProtocolError, Role};
use tokio::io::{duplex, AsyncReadExt, AsyncWriteExt, DuplexStream};

type Conn = Connection<DuplexStream, String, String>;

async fn pair() -> (Conn, Conn) {
    let (a, b) = duplex(1 << 16);
    let (left, right) = tokio::join!(
        handshake::<_, String, String>(a, Role::Client, 1 << 24),
        handshake::<_, String, String>(b, Role::Scheduler, 1 << 24)
    );
    let ((left, hello_from_right), (right, hello_from_left)) = (left.unwrap(), right.unwrap());
    assert_eq!(hello_from_right.role, Role::Scheduler);
    assert_eq!(hello_from_left.role, Role::Client);
    (left, right)
}

fn within<F: std::future::Future>(f: F) -> tokio::time::Timeout<F> {
    tokio::time::timeout(Duration::from_secs(10), f)
}

#[tokio::test]
async fn packets_carry_batches_and_out_of_band_data_compressed_or_not() {
    // Compressed as to another host, and as they are (the default to an in-process peer).
    for compress in [true, false] {
        let (left, mut right) = pair().await;
        let mut left = left.with_compression(compress);
        let big = Bytes::from(vec![42u8; 1 << 20]);
        let small = Bytes::from_static(b"tiny");
        let packet = Packet {
            messages: vec!["one".to_string(), "two".to_string()],
            data: vec![big.clone(), small.clone()],
        };
        let (sent, got) = tokio::join!(within(left.send(packet)), within(right.recv()));
        sent.unwrap().unwrap();
        let got = got.unwrap().unwrap().expect("a packet");
        assert_eq!(got.messages, ["one", "two"]);
        assert_eq!(got.data, vec![big, small]);
        drop(left);
        assert!(within(right.recv()).await.unwrap().unwrap().is_none(), "a clean close is None");
    }
}

#[tokio::test]
async fn a_peer_of_another_version_is_refused_with_both_versions() {
    let (a, mut b) = duplex(1 << 16);
    let ours = tokio::spawn(handshake::<_, String, String>(a, Role::Scheduler, 1 << 20));
    // A hand-made hello: magic "RASK", version 999, role Client (postcard: varints).
    let mut hello = b"RASK".to_vec();
    hello.extend_from_slice(&[0xe7, 0x07, 0x00]);
    b.write_all(&(hello.len() as u32).to_be_bytes()).await.unwrap();
    b.write_all(&hello).await.unwrap();
    let err = within(ours).await.unwrap().unwrap().err().expect("refused");
    assert!(matches!(err, ProtocolError::VersionMismatch { ours: 1, theirs: 999 }), "{err}");
    let message = err.to_string();
    assert!(message.contains("version 1") && message.contains("version 999"), "{message}");
}

#[tokio::test]
async fn garbage_bytes_are_not_rask() {
    let (a, mut b) = duplex(1 << 16);
    let ours = tokio::spawn(handshake::<_, String, String>(a, Role::Scheduler, 1 << 20));
    b.write_all(b"\x00\x00\x00\x05GET /").await.unwrap();
    let err = within(ours).await.unwrap().unwrap().err().expect("refused");
    assert!(matches!(err, ProtocolError::NotRask), "{err}");
    // The scheduler's hello went out first; whoever connected can see it.
    let mut buf = [0u8; 8];
    b.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf[4..8], b"RASK");
}

#[tokio::test]
async fn an_oversized_frame_is_an_error_not_an_allocation() {
    let (a, b) = duplex(1 << 16);
    let (left, right) = tokio::join!(
        handshake::<_, String, String>(a, Role::Client, 1 << 24),
        handshake::<_, String, String>(b, Role::Scheduler, 1024)
    );
    let (mut left, mut right) = (left.unwrap().0, right.unwrap().0);
    let packet = Packet { messages: vec!["x".repeat(4096)], data: vec![] };
    let (sent, got) = tokio::join!(within(left.send(packet)), within(right.recv()));
    sent.unwrap().unwrap();
    let err = got.unwrap().expect_err("refused");
    assert!(err.to_string().contains("frame"), "{err}");
}

#[tokio::test]
async fn in_memory_listeners_carry_the_same_protocol_and_refuse_unknown_names() {
    use rask_protocol::transport::memory_address;
    use rask_protocol::{connect, Listener};
    let address = memory_address("test");
    let mut listener = Listener::bind(&address).await.unwrap();
    assert_eq!(listener.address().unwrap(), address);
    assert!(Listener::bind(&address).await.is_err(), "a name is taken once");
    let server = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let (mut connection, _) =
            handshake::<_, String, String>(stream, Role::Scheduler, 1 << 20).await.unwrap();
        let packet = connection.recv().await.unwrap().unwrap();
        connection.send(Packet::one(format!("echo {}", packet.messages[0]))).await.unwrap();
    });
    let (mut client, hello) =
        within(connect::<String, String>(&address, Role::Client)).await.unwrap().unwrap();
    assert_eq!(hello.role, Role::Scheduler);
    client.send(Packet::one("ping".to_string())).await.unwrap();
    let reply = within(client.recv()).await.unwrap().unwrap().unwrap();
    assert_eq!(reply.messages, ["echo ping"]);
    within(server).await.unwrap().unwrap();
    let err = connect::<String, String>("memory://nobody-here", Role::Client)
        .await
        .err()
        .expect("refused");
    assert!(err.to_string().contains("nothing listens at memory://nobody-here"), "{err}");
}
