//! Two summaries of the same packets compared: what differs between runs of the same bytes
//! (the source's name, the process's memory, the wall time a batch took) is left out.

/// `summary` without its run-dependent fields.
///
/// # Panics
/// When `summary` is not a JSON object.
pub fn comparable(mut summary: serde_json::Value) -> serde_json::Value {
    let map = summary.as_object_mut().expect("the summary is an object");
    map.remove("source");
    map.remove("peak_rss_bytes");
    if let Some(latency) = map.get_mut("latency").and_then(|l| l.as_object_mut()) {
        latency.remove("batch_service_ns");
    }
    summary
}
