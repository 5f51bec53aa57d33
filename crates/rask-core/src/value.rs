//! Values: the results of tasks and the literal arguments in the graph.
//!
//! A [`Value`] is a reference-counted, type-erased result. In one process values are shared,
//! never copied: handing a result to three dependents costs three reference-count increments.
//! A value made with [`Value::serde`] (or [`Value::with_encoder`]) also knows how to turn
//! itself into bytes, which is what lets it cross a process boundary; the receiver decodes it
//! with the type it expects ([`decode_serde`]). Serialization happens only there.

use std::any::{type_name, Any};
use std::fmt;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Error, Result};

/// A function that turns a `T` into bytes.
pub type Encoder<T> = fn(&T) -> std::result::Result<Vec<u8>, String>;

/// The object behind a [`Value`]: the data plus what the value knows about itself.
trait ValueObject: Any + Send + Sync {
    fn type_name(&self) -> &'static str;
    fn size_hint(&self) -> usize;
    fn encode(&self) -> Result<Vec<u8>>;
}

struct Boxed<T> {
    data: T,
    encoder: Option<Encoder<T>>,
    /// The size in bytes, when the maker knows it (for placement decisions).
    size: Option<usize>,
    /// Measures the size when asked (serde values: their encoded size, counted without
    /// allocating).
    measure: Option<fn(&T) -> usize>,
}

impl<T: Send + Sync + 'static> ValueObject for Boxed<T> {
    fn type_name(&self) -> &'static str {
        type_name::<T>()
    }

    fn size_hint(&self) -> usize {
        self.size
            .or_else(|| self.measure.map(|measure| measure(&self.data)))
            .unwrap_or(std::mem::size_of::<T>())
    }

    fn encode(&self) -> Result<Vec<u8>> {
        let encoder = self.encoder.ok_or_else(|| Error::NotSerializable {
            type_name: type_name::<T>(),
            reason: "it was made with Value::new, which keeps it in this process; make it with \
                     Value::serde (the type must implement serde::Serialize) to send it elsewhere"
                .into(),
        })?;
        encoder(&self.data)
            .map_err(|reason| Error::NotSerializable { type_name: type_name::<T>(), reason })
    }
}

/// A shared, type-erased value.
#[derive(Clone)]
pub struct Value(Arc<dyn ValueObject>);

/// The elements of a list argument, as a task function receives them.
pub type ValueList = Vec<Value>;

impl Value {
    /// A value that stays in this process (it has no encoder).
    pub fn new<T: Send + Sync + 'static>(data: T) -> Self {
        Value(Arc::new(Boxed { data, encoder: None, size: None, measure: None }))
    }

    /// A value that can be serialized with serde when it has to leave the process.
    pub fn serde<T: Serialize + Send + Sync + 'static>(data: T) -> Self {
        Value(Arc::new(Boxed {
            data,
            encoder: Some(encode_serde::<T>),
            size: None,
            measure: Some(measure_serde::<T>),
        }))
    }

    /// A value with its own encoder (for types with a better format than serde, such as data
    /// frames as Arrow IPC).
    pub fn with_encoder<T: Send + Sync + 'static>(data: T, encoder: Encoder<T>) -> Self {
        Value(Arc::new(Boxed { data, encoder: Some(encoder), size: None, measure: None }))
    }

    /// A value with its own encoder and a known size in bytes (placement uses sizes to keep
    /// large inputs where they are).
    pub fn sized<T: Send + Sync + 'static>(data: T, encoder: Encoder<T>, size: usize) -> Self {
        Value(Arc::new(Boxed { data, encoder: Some(encoder), size: Some(size), measure: None }))
    }

    /// The value's size in bytes: as given for [`Value::sized`] values, the encoded size for
    /// [`Value::serde`] values (measured by a serialization pass that writes nothing), the size
    /// of the type's inline part otherwise. Placement uses it to keep large inputs in place.
    pub fn size_hint(&self) -> usize {
        self.0.size_hint()
    }

    /// A list of values, as a list argument is passed to a task function.
    pub fn list(items: ValueList) -> Self {
        Value::new(items)
    }

    /// The name of the type inside.
    pub fn type_name(&self) -> &'static str {
        self.0.type_name()
    }

    /// Whether the value holds a `T`.
    pub fn is<T: 'static>(&self) -> bool {
        let any: &dyn Any = &*self.0;
        any.is::<Boxed<T>>()
    }

    /// The value as a `&T`, or an error naming both types. `context` says where the value came
    /// from, for the error message.
    pub fn get<T: 'static>(&self, context: &dyn fmt::Display) -> Result<&T> {
        self.downcast_ref().ok_or_else(|| self.mismatch::<T>(context))
    }

    /// The value as a `&T`, if it is one.
    pub fn downcast_ref<T: 'static>(&self) -> Option<&T> {
        let any: &dyn Any = &*self.0;
        any.downcast_ref::<Boxed<T>>().map(|boxed| &boxed.data)
    }

    /// The elements, if this value is a list.
    pub fn as_list(&self) -> Option<&[Value]> {
        self.downcast_ref::<ValueList>().map(Vec::as_slice)
    }

    /// Takes the `T` out of the value: without a copy when this is the only reference, by
    /// cloning otherwise.
    pub fn into_inner<T: Clone + Send + Sync + 'static>(
        self,
        context: &dyn fmt::Display,
    ) -> Result<T> {
        if !self.is::<T>() {
            return Err(self.mismatch::<T>(context));
        }
        let any: Arc<dyn Any + Send + Sync> = self.0;
        let boxed = any.downcast::<Boxed<T>>().expect("type checked above");
        Ok(match Arc::try_unwrap(boxed) {
            Ok(boxed) => boxed.data,
            Err(shared) => shared.data.clone(),
        })
    }

    /// The value as bytes, for sending it to another process.
    pub fn encode(&self) -> Result<Vec<u8>> {
        self.0.encode()
    }

    /// Whether two values are the same shared object.
    pub fn ptr_eq(&self, other: &Value) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    fn mismatch<T>(&self, context: &dyn fmt::Display) -> Error {
        Error::TypeMismatch {
            expected: type_name::<T>(),
            actual: self.type_name(),
            context: context.to_string(),
        }
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Value<{}>", self.type_name())
    }
}

/// Serializes with MessagePack, which keeps every serde feature (unlike formats that are not
/// self-describing).
pub fn encode_serde<T: Serialize>(data: &T) -> std::result::Result<Vec<u8>, String> {
    rmp_serde::to_vec(data).map_err(|e| e.to_string())
}

/// The encoded size of a serde value, counted without allocating.
fn measure_serde<T: Serialize>(data: &T) -> usize {
    struct Counter(usize);
    impl std::io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    match rmp_serde::encode::write(&mut counter, data) {
        Ok(()) => counter.0,
        Err(_) => std::mem::size_of::<T>(),
    }
}

/// Turns bytes made by [`Value::serde`] back into a value of type `T`.
pub fn decode_serde<T: Serialize + DeserializeOwned + Send + Sync + 'static>(
    bytes: &[u8],
) -> Result<Value> {
    let data: T = rmp_serde::from_slice(bytes)
        .map_err(|e| Error::Decode { type_name: type_name::<T>(), reason: e.to_string() })?;
    Ok(Value::serde(data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downcasts_to_the_right_type_and_names_both_types_otherwise() {
        let value = Value::new(41_i64);
        assert_eq!(value.downcast_ref::<i64>(), Some(&41));
        let err = value.get::<String>(&"argument 0").unwrap_err().to_string();
        assert!(err.contains("alloc::string::String"), "{err}");
        assert!(err.contains("i64"), "{err}");
        assert!(err.contains("argument 0"), "{err}");
    }

    #[test]
    fn into_inner_moves_when_unique_and_clones_when_shared() {
        let value = Value::new(vec![1, 2, 3]);
        let shared = value.clone();
        let taken: Vec<i32> = value.into_inner(&"x").unwrap();
        assert_eq!(taken, vec![1, 2, 3]);
        assert_eq!(shared.downcast_ref::<Vec<i32>>(), Some(&vec![1, 2, 3]));
    }

    #[test]
    fn sizes_are_measured_for_serde_values_and_given_for_sized_ones() {
        let big = Value::serde(vec![1.5_f64; 10_000]);
        assert_eq!(big.size_hint(), big.encode().unwrap().len());
        assert!(big.size_hint() > 80_000);
        assert_eq!(Value::new(vec![0u8; 100]).size_hint(), std::mem::size_of::<Vec<u8>>());
        assert_eq!(Value::sized(1_u8, |_| Ok(vec![]), 12_345).size_hint(), 12_345);
    }

    #[test]
    fn serde_values_round_trip_and_plain_values_refuse_to_encode() {
        let value = Value::serde(("a".to_string(), 2.5_f64));
        let bytes = value.encode().unwrap();
        let back = decode_serde::<(String, f64)>(&bytes).unwrap();
        assert_eq!(back.downcast_ref::<(String, f64)>(), Some(&("a".to_string(), 2.5)));
        let err = Value::new(1_u8).encode().unwrap_err().to_string();
        assert!(err.contains("Value::serde"), "{err}");
        let err = decode_serde::<String>(&[0xc1]).unwrap_err().to_string();
        assert!(err.contains("could not decode"), "{err}");
    }
}
