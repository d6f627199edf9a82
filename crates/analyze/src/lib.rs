//! Analysis of Falco alerts: the knowledge base (`kb`), the summary and event details
//! (`describe`), verdicts (`verdict`, weights in `scoring`), de-duplication (`fingerprint`,
//! `cluster`) and incident correlation (`incident`).

pub mod cluster;
pub mod describe;
pub mod engine;
pub mod fingerprint;
pub mod gate;
pub mod incident;
pub mod kb;
pub mod lint;
pub mod memory;
pub mod parallel;
pub mod rulecheck;
pub mod rules;
pub mod scoring;
pub mod staging;
pub mod tune;
pub mod verdict;
