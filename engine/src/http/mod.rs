//! HTTP service (being written).
