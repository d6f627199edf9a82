//! Summary paragraph and event details for a report (being written).
