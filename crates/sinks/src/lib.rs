//! fa-sinks
