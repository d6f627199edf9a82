//! fa-ingest
