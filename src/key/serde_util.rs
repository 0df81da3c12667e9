//! Serde helpers: digests as hex, times as RFC 3339, durations as seconds.

pub(crate) fn yes() -> bool {
    true
}

pub(crate) mod digest {
    use super::super::secret::KeyDigest;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(d: &KeyDigest, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&d.to_hex())
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<KeyDigest, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        KeyDigest::from_hex(&text).map_err(serde::de::Error::custom)
    }
}

/// RFC 3339 text for `t`, clamped to what RFC 3339 can write (1970 to 9999), so that writing a record never fails.
pub(crate) fn rfc3339(t: std::time::SystemTime) -> humantime::Rfc3339Timestamp {
    humantime::format_rfc3339_nanos(t.clamp(std::time::UNIX_EPOCH, super::new_key::max_expiry()))
}

pub(crate) mod time {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::SystemTime;

    pub(crate) fn serialize<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&super::rfc3339(*t))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        humantime::parse_rfc3339_weak(&text).map_err(serde::de::Error::custom)
    }
}

pub(crate) mod opt_time {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::SystemTime;

    #[allow(clippy::ref_option)]
    pub(crate) fn serialize<S: Serializer>(t: &Option<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.collect_str(&super::rfc3339(*t)),
            None => s.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SystemTime>, D::Error> {
        let text = <Option<std::borrow::Cow<'de, str>>>::deserialize(d)?;
        text.map(|t| humantime::parse_rfc3339_weak(&t).map_err(serde::de::Error::custom)).transpose()
    }
}

pub(crate) mod secs {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub(crate) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let secs = f64::deserialize(d)?;
        Duration::try_from_secs_f64(secs).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn times_past_9999_or_before_1970_are_written_clamped() {
        let far = UNIX_EPOCH + Duration::from_secs(400_000_000_000);
        assert_eq!(super::rfc3339(far).to_string(), "9999-12-31T23:59:59.000000000Z");
        let early = UNIX_EPOCH - Duration::from_secs(5);
        assert_eq!(super::rfc3339(early).to_string(), "1970-01-01T00:00:00.000000000Z");
    }
}
