//! fa-validate
