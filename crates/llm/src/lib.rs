//! fa-llm
