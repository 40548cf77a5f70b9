//! The fast-field columns a hit is read from, per segment.
//!
//! Opening a column parses its block index (a measurable share of a search when done per
//! hit); segments never change, so a segment's columns are opened once and kept while it
//! exists.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use parking_lot::Mutex;
use tantivy::Searcher;
use tantivy::columnar::Column;
use tantivy::index::SegmentId;

use crate::error::Result;
use crate::index::schema::Fields;

/// The columns of every segment read so far.
#[derive(Default)]
pub(crate) struct ColumnCache {
    segments: Mutex<HashMap<SegmentId, Arc<SegmentColumns>>>,
}

/// One segment's columns.
pub(crate) struct SegmentColumns {
    pub(crate) kind: Column<u64>,
    pub(crate) id: Column<i64>,
    pub(crate) document: Column<i64>,
}

impl ColumnCache {
    /// The columns of `searcher`'s segment `ord`.
    pub(crate) fn of(
        &self,
        searcher: &Searcher,
        ord: u32,
        f: &Fields,
    ) -> Result<Arc<SegmentColumns>> {
        let reader = searcher.segment_reader(ord);
        let segment = reader.segment_id();
        if let Some(columns) = self.segments.lock().get(&segment) {
            return Ok(Arc::clone(columns));
        }
        let schema = searcher.schema();
        let fast = reader.fast_fields();
        let columns = Arc::new(SegmentColumns {
            kind: fast.u64(schema.get_field_name(f.kind_code))?,
            id: fast.i64(schema.get_field_name(f.id))?,
            document: fast.i64(schema.get_field_name(f.document))?,
        });
        let mut segments = self.segments.lock();
        if segments.len() >= 4 * searcher.segment_readers().len() + 16 {
            // Merged-away segments: keep only the ones this searcher still reads.
            let live: HashSet<_> = searcher
                .segment_readers()
                .iter()
                .map(|r| r.segment_id())
                .collect();
            segments.retain(|id, _| live.contains(id));
        }
        segments.insert(segment, Arc::clone(&columns));
        Ok(columns)
    }
}
