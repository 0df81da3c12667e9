//! PostgresStore against the real server (being written).
