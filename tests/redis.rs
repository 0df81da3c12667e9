//! RedisStore against the real server (being written).
