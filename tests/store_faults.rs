//! Store faults through a TCP proxy (being written).
