//! The data model shared by every stage of falco-analyst: the Falco alert as it is read
//! (`Alert` and its small typed parts) and the Alert Analysis Report as it is written (`report`).
//!
//! Nothing here does I/O; parsing of whole inputs lives in `fa-ingest`, analysis in `fa-analyze`,
//! rendering in `fa-report`.

pub mod alert;
pub mod fields;
pub mod priority;
pub mod report;
pub mod source;
pub mod verdict;

pub use alert::{Alert, AlertError, InputFormat, RuleName};
pub use fields::{FieldKey, FieldMap, FieldValueExt};
pub use priority::Priority;
pub use report::*;
pub use source::Source;
pub use verdict::{Confidence, Reason, Verdict, VerdictKind};
