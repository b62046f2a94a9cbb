//! TFTP service (being written).
