//! Findings and incidents in the lake: their OCSF documents (Detection
//! Finding 2004, Incident Finding 2005) as Parquet with the documents' own
//! nesting, one file per class and day, laid out like the flows.
//!
//! The documents are few (hundreds, not millions), so the schema is
//! inferred from all of an export's documents of a class at once: every
//! day's file of one export has the same columns. Nulls, empty objects and
//! empty lists are left out first (Parquet has no empty group, and a
//! column that is always null has no type to infer).

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_json::reader::{ReaderBuilder, infer_json_schema_from_iterator};
use serde_json::Value;

use crate::{ExportOptions, LakeError, LakeFile, event_day, partition_of};

/// Without nulls, empty objects and empty lists, recursively.
fn pruned(value: Value) -> Option<Value> {
    match value {
        Value::Null => None,
        Value::Object(map) => {
            let kept: serde_json::Map<String, Value> = map
                .into_iter()
                .filter_map(|(k, v)| pruned(v).map(|v| (k, v)))
                .collect();
            (!kept.is_empty()).then_some(Value::Object(kept))
        }
        Value::Array(items) => {
            let kept: Vec<Value> = items.into_iter().filter_map(pruned).collect();
            (!kept.is_empty()).then_some(Value::Array(kept))
        }
        other => Some(other),
    }
}

/// Write `documents` of `class_uid` under `source` (`cordon-detection-
/// finding`), one file per day of their `time`.
///
/// # Errors
/// A document's shape cannot be a column (a bug), or a file cannot be
/// written.
pub fn export_documents(
    options: &ExportOptions,
    class_uid: u32,
    source: &str,
    documents: Vec<Value>,
) -> Result<Vec<LakeFile>, LakeError> {
    let documents: Vec<Value> = documents.into_iter().filter_map(pruned).collect();
    if documents.is_empty() {
        return Ok(Vec::new());
    }
    let fail = |message: String| LakeError::Parquet {
        path: source.to_string(),
        message,
    };
    let schema = Arc::new(
        infer_json_schema_from_iterator(documents.iter().map(|d| Ok(d.clone())))
            .map_err(|e| fail(e.to_string()))?,
    );
    let mut by_day: BTreeMap<String, Vec<(i64, Value)>> = BTreeMap::new();
    for d in documents {
        let time = d.get("time").and_then(Value::as_i64).unwrap_or(0);
        by_day.entry(event_day(time)).or_default().push((time, d));
    }
    let mut written = Vec::new();
    for (day, mut docs) in by_day {
        docs.sort_by_key(|(t, _)| *t);
        let (first_ms, last_ms) = (
            docs.first().map_or(0, |d| d.0),
            docs.last().map_or(0, |d| d.0),
        );
        let values: Vec<Value> = docs.into_iter().map(|(_, d)| d).collect();
        let mut decoder = ReaderBuilder::new(schema.clone())
            .build_decoder()
            .map_err(|e| fail(e.to_string()))?;
        decoder
            .serialize(&values)
            .map_err(|e| fail(e.to_string()))?;
        let Some(batch) = decoder.flush().map_err(|e| fail(e.to_string()))? else {
            continue;
        };
        let folder = partition_of(options, source, &day);
        let relative = format!("{folder}/cordon-{class_uid}-{day}.zstd.parquet");
        let file = crate::write_batches(options, &relative, schema.clone(), &[batch])?;
        written.push(LakeFile {
            class_uid,
            event_day: day,
            rows: values.len() as u64,
            first_ms,
            last_ms,
            ..file
        });
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    #[test]
    fn nulls_and_empty_shapes_are_left_out() {
        let v = serde_json::json!({"a": null, "b": {}, "c": [], "d": [null, {"e": 1, "f": {}}], "g": "x"});
        assert_eq!(
            super::pruned(v),
            Some(serde_json::json!({"d": [{"e": 1}], "g": "x"}))
        );
    }
}
