//! Analysis of Falco alerts: the knowledge base (`kb`), the summary and event details
//! (`describe`), and later verdicts, de-duplication, correlation and tuning.

pub mod describe;
pub mod kb;
