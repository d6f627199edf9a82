//! fa-report
