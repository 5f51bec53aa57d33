//! Fetching values from and storing values on a worker's data server: what workers do for
//! their inputs and what clients do for `gather` and `scatter`.

use std::time::Duration;

use bytes::Bytes;
use rask_core::{Key, Value, WireValue};

use crate::messages::{DataRef, DataReply, DataRequest};
use crate::{connect_tcp, Packet, Role};

/// Asks the data server at `peer` for `keys`; returns the decoded values and the missing keys.
pub async fn fetch_values(
    peer: &str,
    keys: &[Key],
) -> Result<(Vec<(Key, Value)>, Vec<Key>), String> {
    let (mut connection, _) = tokio::time::timeout(
        Duration::from_secs(10),
        connect_tcp::<DataReply, DataRequest>(peer, Role::Peer),
    )
    .await
    .map_err(|_| format!("connecting to {peer} timed out"))?
    .map_err(|e| e.to_string())?;
    connection
        .send(Packet::one(DataRequest::Get { keys: keys.to_vec() }))
        .await
        .map_err(|e| e.to_string())?;
    let packet = connection
        .recv()
        .await
        .map_err(|e| e.to_string())?
        .ok_or("the peer closed the connection")?;
    match packet.messages.into_iter().next() {
        Some(DataReply::Values { values, missing }) => {
            let mut decoded = Vec::with_capacity(values.len());
            for DataRef { key, type_name, data } in values {
                let bytes =
                    packet.data.get(data as usize).ok_or("a reply names data it does not carry")?;
                let wire = WireValue { type_name, bytes: bytes.to_vec() };
                decoded.push((key, wire.decode().map_err(|e| e.to_string())?));
            }
            Ok((decoded, missing))
        }
        Some(DataReply::Failed { reason }) => Err(reason),
        other => Err(format!("unexpected reply {other:?}")),
    }
}

/// Stores values on the worker whose data server is at `peer` (scatter).
pub async fn put_values(peer: &str, values: &[(Key, Value)]) -> Result<(), String> {
    let (mut connection, _) =
        connect_tcp::<DataReply, DataRequest>(peer, Role::Peer).await.map_err(|e| e.to_string())?;
    let mut packet = Packet { messages: Vec::new(), data: Vec::new() };
    let mut refs = Vec::with_capacity(values.len());
    for (key, value) in values {
        let wire = WireValue::encode(value).map_err(|e| e.to_string())?;
        let data = packet.push_data(Bytes::from(wire.bytes));
        refs.push(DataRef { key: key.clone(), type_name: wire.type_name, data });
    }
    packet.messages.push(DataRequest::Put { values: refs });
    connection.send(packet).await.map_err(|e| e.to_string())?;
    match connection
        .recv()
        .await
        .map_err(|e| e.to_string())?
        .and_then(|p| p.messages.into_iter().next())
    {
        Some(DataReply::Stored) => Ok(()),
        Some(DataReply::Failed { reason }) => Err(reason),
        other => Err(format!("unexpected reply {other:?}")),
    }
}
