//! The quota volume driver (being written).
