//! Parquet through Polars: metadata (row counts per row group, schema) without reading data,
//! reading a piece as a Polars scan with the query on top (only the projected columns are read;
//! with a filter, Polars' lazy scan prunes row groups by their statistics), and writing a
//! partition straight into its file.

use std::io::Cursor;

use polars::prelude::{
    AnonymousScan, AnonymousScanArgs, ChunkAgg, DataFrame, LazyFrame, ParquetCompression,
    ParquetReader, ParquetWriter, PlRefPath, PlSmallStr, PolarsError, ScanArgsAnonymous,
    ScanArgsParquet, ScanSource, Schema, SchemaExt, SchemaRef, SerReader,
};

use super::{polars_error, PlFrame};
use crate::error::{Error, Result};
use crate::io::store::Location;
use crate::plan::ParquetPiece;

/// What a Parquet file's footer says.
pub struct ParquetMeta {
    /// The schema.
    pub schema: Schema,
    /// Rows in each row group.
    pub row_groups: Vec<u64>,
    /// The minimum and maximum of the index column in each row group, from its statistics
    /// (numbers, and dates and times by their physical value), when asked for and present.
    pub index_ranges: Vec<Option<(f64, f64)>>,
}

/// The range a column chunk's statistics give, as `f64`.
fn statistics_range(
    chunk: &polars_parquet::parquet::metadata::ColumnChunkMetadata,
    footer: &[u8],
) -> Option<(f64, f64)> {
    use polars_parquet::parquet::statistics::Statistics;
    match chunk.statistics(footer)?.ok()? {
        Statistics::Int32(s) => Some((f64::from(s.min_value?), f64::from(s.max_value?))),
        Statistics::Int64(s) => Some((s.min_value? as f64, s.max_value? as f64)),
        Statistics::Float(s) => Some((f64::from(s.min_value?), f64::from(s.max_value?))),
        Statistics::Double(s) => Some((s.min_value?, s.max_value?)),
        _ => None,
    }
}

/// Reads a file's footer (with the statistics of `index`, when given). Local files are opened
/// in place; remote ones are fetched.
pub fn metadata(location: &Location, index: Option<&str>) -> Result<ParquetMeta> {
    let corrupt = |e: PolarsError| Error::CorruptParquet {
        path: location.to_string(),
        reason: e.to_string(),
    };
    let mut reader = match location {
        Location::Local(path) => {
            let file =
                std::fs::File::open(path).map_err(|e| Error::io("cannot read", location, e))?;
            ParquetReader::new(Box::new(file) as Box<dyn polars::io::mmap::MmapBytesReader>)
        }
        Location::Remote { .. } => ParquetReader::new(Box::new(Cursor::new(location.read_all()?))
            as Box<dyn polars::io::mmap::MmapBytesReader>),
    };
    let arrow_schema = reader.schema().map_err(corrupt)?;
    let schema = Schema::from_arrow_schema(&arrow_schema);
    let meta = reader.get_metadata().map_err(corrupt)?;
    let row_groups = meta.row_groups.iter().map(|rg| rg.num_rows() as u64).collect();
    let index_ranges = meta
        .row_groups
        .iter()
        .map(|rg| {
            let index = index?;
            let chunk = rg.parquet_columns().iter().find(|c| {
                let path = &c.descriptor().path_in_schema;
                path.len() == 1 && path[0].as_str() == index
            })?;
            statistics_range(chunk, meta.footer_buf.as_slice())
        })
        .collect();
    Ok(ParquetMeta { schema, row_groups, index_ranges })
}

/// Reads a piece with the query `steps` on top. The piece is a Polars scan that takes the
/// query's projection and row limit ([`PieceScan`]); filters are applied by Polars' own Parquet
/// scan inside it, which prunes row groups by their statistics.
pub fn read_piece(
    piece: &ParquetPiece,
    schema: &Schema,
    steps: impl FnOnce(LazyFrame) -> Result<LazyFrame, PolarsError>,
) -> Result<PlFrame> {
    let scan = PieceScan { piece: piece.clone(), schema: std::sync::Arc::new(schema.clone()) };
    let args = ScanArgsAnonymous {
        schema: Some(scan.schema.clone()),
        name: "rask parquet piece",
        ..Default::default()
    };
    LazyFrame::anonymous_scan(std::sync::Arc::new(scan), args)
        .and_then(steps)
        .and_then(LazyFrame::collect)
        .map_err(|e| match e {
            PolarsError::ColumnNotFound(_) => polars_error(e, schema, "reading Parquet"),
            other => Error::CorruptParquet {
                path: piece.location.to_string(),
                reason: other.to_string(),
            },
        })
}

/// One piece of a Parquet file as a Polars scan. Without a filter it reads the projected
/// columns of its rows with Polars' eager Parquet reader (a Polars lazy scan per small piece
/// costs more in planning than in reading); with one, through Polars' lazy Parquet scan, which
/// skips row groups whose statistics rule the filter out.
struct PieceScan {
    piece: ParquetPiece,
    schema: SchemaRef,
}

impl PieceScan {
    fn reader(&self) -> Result<Box<dyn polars::io::mmap::MmapBytesReader>, PolarsError> {
        let read_error = |e: Error| PolarsError::ComputeError(e.to_string().into());
        Ok(match &self.piece.location {
            Location::Local(path) => Box::new(std::fs::File::open(path)?),
            Location::Remote { .. } => Box::new(Cursor::new(
                self.piece.location.read_all().map_err(|e| read_error(e.into()))?,
            )),
        })
    }

    fn lazy(&self) -> Result<LazyFrame, PolarsError> {
        let mut args = ScanArgsParquet::default();
        // Pieces are single files: no hive partitioning (which in-memory buffers do not
        // support); rask reads partitions in parallel, so Polars' fan-out per file is off.
        args.hive_options.enabled = Some(false);
        args.parallel = polars::prelude::ParallelStrategy::None;
        args.cache = false;
        let lazy = match &self.piece.location {
            Location::Local(path) => {
                LazyFrame::scan_parquet(PlRefPath::from(path.to_string_lossy().as_ref()), args)?
            }
            Location::Remote { .. } => {
                let bytes = self
                    .piece
                    .location
                    .read_all()
                    .map_err(|e| PolarsError::ComputeError(e.to_string().into()))?;
                LazyFrame::scan_parquet_sources(
                    ScanSource::Buffer(bytes.into()).into_sources(),
                    args,
                )?
            }
        };
        Ok(if self.piece.whole_file {
            lazy
        } else {
            lazy.slice(self.piece.row_offset as i64, self.piece.rows as _)
        })
    }
}

impl AnonymousScan for PieceScan {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn scan(&self, args: AnonymousScanArgs) -> Result<PlFrame, PolarsError> {
        let wanted: Vec<PlSmallStr> = match (&args.output_schema, &args.with_columns) {
            (Some(output), _) => output.iter_names().cloned().collect(),
            (None, Some(columns)) => columns.to_vec(),
            (None, None) => self.schema.iter_names().cloned().collect(),
        };
        let rows = (self.piece.rows as usize).min(args.n_rows.unwrap_or(usize::MAX));
        if let Some(predicate) = args.predicate {
            let mut lazy = self.lazy()?.filter(predicate);
            if !wanted.is_empty() {
                lazy = lazy.select(
                    wanted.iter().map(|c| polars::prelude::col(c.clone())).collect::<Vec<_>>(),
                );
            }
            if let Some(n) = args.n_rows {
                lazy = lazy.limit(n as _);
            }
            return lazy.collect();
        }
        if wanted.is_empty() {
            return DataFrame::new(rows, Vec::new()); // only the row count matters
        }
        ParquetReader::new(self.reader()?)
            .with_columns(Some(wanted.iter().map(ToString::to_string).collect()))
            .with_slice(Some((self.piece.row_offset as usize, rows)))
            .read_parallel(polars::prelude::ParallelStrategy::None)
            .finish()
    }

    fn schema(&self, _infer_schema_length: Option<usize>) -> Result<SchemaRef, PolarsError> {
        Ok(self.schema.clone())
    }

    fn allows_projection_pushdown(&self) -> bool {
        true
    }

    fn allows_predicate_pushdown(&self) -> bool {
        true
    }
}

/// Compression codecs for writing Parquet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Compression {
    /// No compression.
    Uncompressed,
    /// Snappy (fast, the common default of other tools).
    #[default]
    Snappy,
    /// Zstandard (smaller files).
    Zstd,
    /// LZ4.
    Lz4,
}

/// Writes a frame as Parquet into `out`.
pub fn write(
    frame: &PlFrame,
    compression: Compression,
    out: &mut dyn std::io::Write,
) -> Result<()> {
    let compression = match compression {
        Compression::Uncompressed => ParquetCompression::Uncompressed,
        Compression::Snappy => ParquetCompression::Snappy,
        Compression::Zstd => ParquetCompression::Zstd(None),
        Compression::Lz4 => ParquetCompression::Lz4Raw,
    };
    let mut frame = frame.clone();
    ParquetWriter::new(out)
        .with_compression(compression)
        .finish(&mut frame)
        .map_err(|e| Error::polars("writing Parquet", e))?;
    Ok(())
}

/// The minimum and maximum of a column (numbers, dates and times by their physical value),
/// for the overlap check of `append`; `None` when the column has no values.
pub fn min_max(frame: &PlFrame, column: &str) -> Result<Option<(f64, f64)>> {
    let context = || format!("reading `{column}`");
    let values = frame
        .column(column)
        .and_then(|c| {
            c.as_materialized_series().to_physical_repr().cast(&polars::prelude::DataType::Float64)
        })
        .map_err(|e| Error::polars(context(), e))?;
    let values = values.f64().map_err(|e| Error::polars(context(), e))?;
    Ok(values.min().zip(values.max()))
}
