//! Fetching values from and storing values on a worker's data server: what workers do for
//! their inputs and what clients do for `gather` and `scatter`.
//!
//! A [`DataPool`] keeps the connections it opened and reuses them, so a stream of small
//! fetches from the same peer pays the connection and handshake once.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use rask_core::{Key, Value, WireValue};

use crate::messages::{DataRef, DataReply, DataRequest};
use crate::transport::Stream;
use crate::{connect, Connection, Packet, Role};

type DataConnection = Connection<Stream, DataReply, DataRequest>;

/// What a fetch brought.
#[derive(Debug)]
pub struct Fetched {
    /// The values found.
    pub values: Vec<(Key, Value)>,
    /// The keys the peer does not hold.
    pub missing: Vec<Key>,
    /// Bytes received (as sent, compressed or not).
    pub bytes: usize,
    /// How long the exchange took.
    pub seconds: f64,
}

/// Idle connections kept per peer.
const IDLE_PER_PEER: usize = 4;

/// How long connecting to a peer (and its handshake) may take. Generous: a worker's one async
/// thread also writes and reads its spilled results, and on a loaded machine a worker deep in
/// spilling has taken more than 10 s to accept (the dashboard's spill test, 2026-12-02); a peer
/// that is gone refuses at once instead.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Connections to workers' data servers, reused between requests. Use one pool per tokio
/// runtime (its connections belong to that runtime).
#[derive(Default)]
pub struct DataPool {
    idle: Mutex<HashMap<String, Vec<DataConnection>>>,
}

impl DataPool {
    /// An empty pool.
    pub fn new() -> Self {
        DataPool::default()
    }

    async fn exchange(
        &self,
        peer: &str,
        packet: Packet<DataRequest>,
    ) -> Result<Packet<DataReply>, String> {
        let pooled = self.idle.lock().expect("not poisoned").get_mut(peer).and_then(Vec::pop);
        let mut packet = Some(packet);
        if let Some(mut connection) = pooled {
            // A pooled connection may have been closed by the peer meanwhile: then try afresh.
            let request = packet.take().expect("not sent yet");
            let retry = request.messages.clone();
            let data = request.data.clone();
            match round_trip(&mut connection, request).await {
                Ok(reply) => {
                    self.give_back(peer, connection);
                    return Ok(reply);
                }
                Err(_) => packet = Some(Packet { messages: retry, data }),
            }
        }
        let (mut connection, _) = tokio::time::timeout(
            CONNECT_TIMEOUT,
            connect::<DataReply, DataRequest>(peer, Role::Peer),
        )
        .await
        .map_err(|_| format!("connecting to {peer} timed out"))?
        .map_err(|e| format!("{peer}: {e}"))?;
        let reply = round_trip(&mut connection, packet.take().expect("not sent yet")).await?;
        self.give_back(peer, connection);
        Ok(reply)
    }

    fn give_back(&self, peer: &str, connection: DataConnection) {
        let mut idle = self.idle.lock().expect("not poisoned");
        let connections = idle.entry(peer.to_string()).or_default();
        if connections.len() < IDLE_PER_PEER {
            connections.push(connection);
        }
    }

    /// Asks the data server at `peer` for `keys`; returns the decoded values, the keys it does
    /// not hold, and how fast the bytes came.
    pub async fn fetch(&self, peer: &str, keys: &[Key]) -> Result<Fetched, String> {
        let started = std::time::Instant::now();
        let packet =
            self.exchange(peer, Packet::one(DataRequest::Get { keys: keys.to_vec() })).await?;
        let seconds = started.elapsed().as_secs_f64();
        let received: usize = packet.data.iter().map(Bytes::len).sum();
        match packet.messages.into_iter().next() {
            Some(DataReply::Values { values, missing }) => {
                let mut decoded = Vec::with_capacity(values.len());
                for DataRef { key, type_name, data } in values {
                    let bytes = packet
                        .data
                        .get(data as usize)
                        .ok_or("a reply names data it does not carry")?;
                    let value = WireValue::decode_bytes(&type_name, bytes);
                    decoded.push((key, value.map_err(|e| e.to_string())?));
                }
                Ok(Fetched { values: decoded, missing, bytes: received, seconds })
            }
            Some(DataReply::Failed { reason }) => Err(reason),
            other => Err(format!("unexpected reply {other:?}")),
        }
    }

    /// Stores values on the worker whose data server is at `peer` (scatter).
    pub async fn put(&self, peer: &str, values: &[(Key, Value)]) -> Result<(), String> {
        let mut packet = Packet { messages: Vec::new(), data: Vec::new() };
        let mut refs = Vec::with_capacity(values.len());
        for (key, value) in values {
            let wire = WireValue::encode(value).map_err(|e| e.to_string())?;
            let data = packet.push_data(Bytes::from(wire.bytes));
            refs.push(DataRef { key: key.clone(), type_name: wire.type_name, data });
        }
        packet.messages.push(DataRequest::Put { values: refs });
        match self.exchange(peer, packet).await?.messages.into_iter().next() {
            Some(DataReply::Stored) => Ok(()),
            Some(DataReply::Failed { reason }) => Err(reason),
            other => Err(format!("unexpected reply {other:?}")),
        }
    }
}

async fn round_trip(
    connection: &mut DataConnection,
    packet: Packet<DataRequest>,
) -> Result<Packet<DataReply>, String> {
    connection.send(packet).await.map_err(|e| e.to_string())?;
    connection
        .recv()
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| "the peer closed the connection".to_string())
}
