//! How a sparse chunk travels: raw bytes, like a dense chunk, never element by element.
//!
//! The layout: the element type's tag, the number of rows, columns and stored values (u64
//! each, little-endian), the `rows + 1` row pointers (u64), the column index of every stored
//! value (u32: a chunk is never 4 billion columns wide) and the values' bytes. A decoder checks
//! the lengths before it allocates and hands the arrays to `sprs`, which checks the structure
//! (sorted, in-bounds indices): a damaged message is an error, never a wrong matrix.

use rask_core::Value;
use sprs::CsMat;

use crate::element::Element;

/// The bytes of a CSR chunk.
pub fn encode_sparse<T: Element>(chunk: &CsMat<T>) -> Result<Vec<u8>, String> {
    let chunk = &*crate::sparse::kernels::as_csr(chunk);
    let (rows, cols, nnz) = (chunk.rows(), chunk.cols(), chunk.nnz());
    if cols > u32::MAX as usize {
        return Err(format!("a sparse chunk of {cols} columns (at most {} travel)", u32::MAX));
    }
    let mut out = Vec::with_capacity(25 + 8 * (rows + 1) + nnz * (4 + size_of::<T>()));
    out.push(T::TAG);
    for n in [rows, cols, nnz] {
        out.extend_from_slice(&(n as u64).to_le_bytes());
    }
    // An owned matrix's row pointers start at 0 (`to_proper` copies only a view's that do not).
    for &p in chunk.indptr().to_proper().iter() {
        out.extend_from_slice(&(p as u64).to_le_bytes());
    }
    for &c in chunk.indices() {
        out.extend_from_slice(&(c as u32).to_le_bytes());
    }
    T::write_bytes(chunk.data(), &mut out);
    Ok(out)
}

/// A CSR chunk from the bytes [`encode_sparse`] wrote; errors name what does not fit.
pub fn decode_sparse<T: Element>(bytes: &[u8]) -> Result<CsMat<T>, String> {
    let (&tag, rest) = bytes.split_first().ok_or("an empty sparse chunk message")?;
    if tag != T::TAG {
        return Err(format!(
            "a sparse chunk of tag {tag} where {} (tag {}) was expected",
            T::DTYPE,
            T::TAG
        ));
    }
    if rest.len() < 24 {
        return Err(format!("a sparse chunk header cut short ({} bytes)", rest.len()));
    }
    let (header, mut rest) = rest.split_at(24);
    let field = |i: usize| {
        u64::from_le_bytes(header[8 * i..8 * i + 8].try_into().expect("8 bytes")) as usize
    };
    let (rows, cols, nnz) = (field(0), field(1), field(2));
    // Lengths first: a length field must not make the decoder allocate what the message lacks.
    let needed = rows
        .checked_add(1)
        .and_then(|n| n.checked_mul(8))
        .and_then(|n| n.checked_add(nnz.checked_mul(4 + size_of::<T>())?));
    if needed != Some(rest.len()) {
        return Err(format!(
            "a sparse chunk of {rows} rows and {nnz} values needs {needed:?} more bytes, the message has {}",
            rest.len()
        ));
    }
    let mut take = |n: usize| {
        let (head, tail) = rest.split_at(n);
        rest = tail;
        head
    };
    let indptr: Vec<usize> = take(8 * (rows + 1))
        .chunks_exact(8)
        .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")) as usize)
        .collect();
    let indices: Vec<usize> = take(4 * nnz)
        .chunks_exact(4)
        .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")) as usize)
        .collect();
    let data = T::read_bytes(take(nnz * size_of::<T>()))?;
    CsMat::try_new((rows, cols), indptr, indices, data)
        .map_err(|(_, _, _, e)| format!("a sparse chunk whose structure is broken: {e}"))
}

/// A sparse chunk as a task result: shared in process, raw bytes when it travels, sized by
/// what it stores.
pub fn sparse_value<T: Element>(chunk: CsMat<T>) -> Value {
    let size = chunk.nnz() * (size_of::<T>() + 8) + (chunk.rows() + 1) * 8 + 64;
    Value::sized(chunk, encode_sparse::<T>, size)
}

/// The decoder registered for sparse chunks of `T`.
pub fn decode_sparse_value<T: Element>(bytes: &[u8]) -> rask_core::Result<Value> {
    decode_sparse::<T>(bytes).map(sparse_value).map_err(|reason| rask_core::Error::Decode {
        type_name: std::any::type_name::<CsMat<T>>(),
        reason,
    })
}

macro_rules! register_sparse_codec {
    ($t:ty, $dtype:literal) => {
        inventory::submit! {
            rask_core::codec::TypeCodec {
                type_name: std::any::type_name::<CsMat<$t>>,
                decode: decode_sparse_value::<$t>,
            }
        }
    };
}
crate::for_each_number!(register_sparse_codec);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::element::c32;

    fn matrix<T>(values: &[(usize, usize, T)], shape: (usize, usize)) -> CsMat<T>
    where
        T: Element + num_traits::Zero + std::ops::Add<Output = T>,
    {
        let mut triplets = sprs::TriMat::new(shape);
        values.iter().for_each(|&(r, c, v)| triplets.add_triplet(r, c, v));
        triplets.to_csr()
    }

    #[test]
    fn sparse_chunks_round_trip_as_raw_bytes() {
        let m = matrix(&[(0, 1, 2.5_f64), (2, 0, -1.0), (2, 3, 4.0)], (3, 4));
        let bytes = encode_sparse(&m).unwrap();
        assert_eq!(bytes.len(), 25 + 8 * 4 + 3 * (4 + 8));
        assert_eq!(decode_sparse::<f64>(&bytes).unwrap(), m);
        let c = matrix(&[(1, 1, c32::new(1.0, -2.0))], (2, 2));
        assert_eq!(decode_sparse::<c32>(&encode_sparse(&c).unwrap()).unwrap(), c);
        let empty = CsMat::<i32>::zero((0, 5));
        assert_eq!(decode_sparse::<i32>(&encode_sparse(&empty).unwrap()).unwrap(), empty);
        // A CSC matrix travels as its CSR form.
        let csc = m.to_csc();
        assert_eq!(decode_sparse::<f64>(&encode_sparse(&csc).unwrap()).unwrap(), m);
    }

    #[test]
    fn damaged_sparse_messages_are_refused_without_large_allocations() {
        let m = matrix(&[(0, 1, 2.5_f64), (1, 0, 1.0)], (2, 2));
        let bytes = encode_sparse(&m).unwrap();
        assert!(decode_sparse::<f32>(&bytes).unwrap_err().contains("float32"));
        assert!(decode_sparse::<f64>(&bytes[..bytes.len() - 1]).is_err());
        let mut huge = bytes.clone();
        huge[1..9].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(decode_sparse::<f64>(&huge).is_err());
        // A column index past the width: sprs refuses the structure.
        let mut wide = bytes.clone();
        let first_index = 25 + 8 * 3;
        wide[first_index..first_index + 4].copy_from_slice(&7u32.to_le_bytes());
        assert!(decode_sparse::<f64>(&wide).unwrap_err().contains("structure"));
    }
}
