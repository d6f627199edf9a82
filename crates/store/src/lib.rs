//! fa-store
