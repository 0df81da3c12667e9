//! RFC 9745 `Deprecation` (and RFC 8288 `Link`) response headers for requests that sent their key in the
//! deprecated `X-API-Key` header, so clients learn to move on.

use std::time::{SystemTime, UNIX_EPOCH};

use http::{HeaderMap, HeaderName, HeaderValue};

use crate::error::ConfigError;

static DEPRECATION: HeaderName = HeaderName::from_static("deprecation");
static LINK: HeaderName = HeaderName::from_static("link");

/// The precomputed header values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Deprecation {
    deprecation: HeaderValue,
    link: Option<HeaderValue>,
}

impl Deprecation {
    /// `Deprecation: @<seconds since the epoch>` and, with `link`, `Link: <link>; rel="deprecation"`.
    pub(crate) fn new(since: SystemTime, link: Option<&str>) -> Result<Self, ConfigError> {
        let secs =
            since.duration_since(UNIX_EPOCH).map_err(|_| ConfigError::OutOfRange("deprecation date before 1970"))?;
        let deprecation = HeaderValue::try_from(format!("@{}", secs.as_secs()))
            .map_err(|_| ConfigError::OutOfRange("deprecation date"))?;
        let link = match link {
            None => None,
            Some(url) => {
                let ok =
                    !url.is_empty() && url.bytes().all(|b| b.is_ascii_graphic() && !matches!(b, b'<' | b'>' | b'"'));
                if !ok {
                    return Err(ConfigError::InvalidLink(url.to_owned()));
                }
                Some(
                    HeaderValue::try_from(format!("<{url}>; rel=\"deprecation\""))
                        .map_err(|_| ConfigError::InvalidLink(url.to_owned()))?,
                )
            }
        };
        Ok(Self { deprecation, link })
    }

    /// Adds the headers to a response.
    pub(crate) fn apply(&self, headers: &mut HeaderMap) {
        headers.insert(&DEPRECATION, self.deprecation.clone());
        if let Some(link) = &self.link {
            headers.append(&LINK, link.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn header_values() {
        let since = UNIX_EPOCH + Duration::from_secs(1_735_689_600);
        let d = Deprecation::new(since, Some("https://example.com/docs")).unwrap();
        let mut h = HeaderMap::new();
        d.apply(&mut h);
        assert_eq!(h["deprecation"], "@1735689600");
        assert_eq!(h["link"], "<https://example.com/docs>; rel=\"deprecation\"");
        for bad in ["", "has space", "a>b", "quote\"", "line\nbreak"] {
            assert!(matches!(Deprecation::new(since, Some(bad)), Err(ConfigError::InvalidLink(_))), "{bad:?}");
        }
        assert!(Deprecation::new(UNIX_EPOCH - Duration::from_secs(1), None).is_err());
    }
}
