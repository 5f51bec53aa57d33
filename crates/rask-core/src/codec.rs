//! Values on the wire: bytes plus the name of their type, and the registry of decoders.
//!
//! A value leaves its process as a [`WireValue`]: the type's name and the bytes its encoder made
//! ([`Value::encode`]). The receiving process looks the type name up among the decoders
//! registered in its binary — `#[rask::delayed]` registers every argument and result type of
//! the functions it marks, [`register_type!`](crate::register_type) registers any other — and
//! gets the value back, ready for whichever task reads it. Type names are only compared within
//! one binary (all processes of a cluster run the same one), where they are stable.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::value::Value;

/// A decoder for one type, registered at link time.
pub struct TypeCodec {
    /// `std::any::type_name::<T>` of the type.
    pub type_name: fn() -> &'static str,
    /// Turns bytes made by the type's encoder back into a value.
    pub decode: Decoder,
}

inventory::collect!(TypeCodec);

/// Decodes bytes into a value of one type.
type Decoder = fn(&[u8]) -> Result<Value>;

fn decoders() -> &'static HashMap<&'static str, Decoder> {
    static DECODERS: OnceLock<HashMap<&'static str, Decoder>> = OnceLock::new();
    DECODERS.get_or_init(|| {
        inventory::iter::<TypeCodec>
            .into_iter()
            .map(|codec| ((codec.type_name)(), codec.decode))
            .collect()
    })
}

/// A value in transit: its type's name and its encoded bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireValue {
    /// The type's name, as `std::any::type_name` gives it.
    pub type_name: String,
    /// The encoded value.
    #[serde(with = "serde_bytes_compat")]
    pub bytes: Vec<u8>,
}

impl WireValue {
    /// Encodes a value for sending.
    pub fn encode(value: &Value) -> Result<Self> {
        Ok(WireValue { type_name: value.type_name().to_string(), bytes: value.encode()? })
    }

    /// Decodes with the decoder registered for the value's type.
    pub fn decode(&self) -> Result<Value> {
        WireValue::decode_bytes(&self.type_name, &self.bytes)
    }

    /// Decodes `bytes` that encode a value of the type named `type_name` — bytes received in
    /// a frame of their own, without copying them into a `WireValue` first.
    pub fn decode_bytes(type_name: &str, bytes: &[u8]) -> Result<Value> {
        let decode = decoders().get(type_name).ok_or_else(|| Error::Decode {
            type_name: "a value from another process",
            reason: format!(
                "no decoder for type `{type_name}` is registered in this binary: use the type in \
                 a #[rask::delayed] function or register it with rask::register_type!"
            ),
        })?;
        decode(bytes)
    }
}

/// Serializes `Vec<u8>` as bytes rather than as a sequence of numbers.
mod serde_bytes_compat {
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(bytes)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
                Ok(v)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Vec<u8>, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0));
                while let Some(b) = seq.next_element()? {
                    out.push(b);
                }
                Ok(out)
            }
        }
        deserializer.deserialize_byte_buf(Visitor)
    }
}

/// Registers a serde type so values of it can arrive from other processes:
/// `rask::register_type!(MyRow);`. Types used by `#[rask::delayed]` functions are registered
/// already.
#[macro_export]
macro_rules! register_type {
    ($t:ty) => {
        $crate::__private::inventory::submit! {
            $crate::codec::TypeCodec {
                type_name: ::std::any::type_name::<$t>,
                decode: $crate::value::decode_serde::<$t>,
            }
        }
    };
}

// The types rask's own built-in functions and benchmarks pass around.
register_type!(i64);
register_type!(u64);
register_type!(i32);
register_type!(u32);
register_type!(f64);
register_type!(bool);
register_type!(String);
register_type!(Vec<i64>);
register_type!(Vec<f64>);
register_type!(Vec<String>);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_types_round_trip_and_unknown_types_say_how_to_register() {
        let wire = WireValue::encode(&Value::serde(vec![1.5_f64, 2.5])).unwrap();
        assert_eq!(wire.type_name, "alloc::vec::Vec<f64>");
        let back = wire.decode().unwrap();
        assert_eq!(back.downcast_ref::<Vec<f64>>(), Some(&vec![1.5, 2.5]));
        let unknown = WireValue { type_name: "my::Secret".into(), bytes: vec![] };
        let err = unknown.decode().unwrap_err().to_string();
        assert!(err.contains("my::Secret") && err.contains("register_type"), "{err}");
    }
}
