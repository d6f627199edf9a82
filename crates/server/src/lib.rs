//! fa-server
