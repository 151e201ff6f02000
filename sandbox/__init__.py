"""The bundled reference pipeline: a Segment-compatible ingest API with dedupe, delivery and fault injection."""
