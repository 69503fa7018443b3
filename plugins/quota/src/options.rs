//! The options `volume create -o` passes to the quota driver: only `size`.
//! Ownership (`--uid`/`--gid`) is the host's business: it mounts the new
//! volume and chowns the data folder the same way for every driver.

use muelle_plugin_sdk::DriverError;

use crate::size::parse_size;

/// The keys this driver takes, as error messages list them.
const ACCEPTED: &str = "size";

pub const MISSING_SIZE: &str = "the quota driver needs -o size=SIZE (for example size=1g)";

#[derive(Debug, PartialEq, Eq)]
pub struct CreateOptions {
    /// The image's size in bytes, within `size::MIN_SIZE..=size::MAX_SIZE`.
    pub size: u64,
}

pub fn parse(options: &[(&str, &str)]) -> Result<CreateOptions, DriverError> {
    let mut size = None;
    for &(key, value) in options {
        match key {
            "size" => {
                if size.is_some() {
                    return Err(DriverError::invalid("option size is given twice"));
                }
                size = Some(parse_size(value).map_err(DriverError::invalid)?);
            }
            other => {
                return Err(DriverError::invalid(format!(
                    "unknown option {other:?} for the quota driver (it accepts: {ACCEPTED})"
                )));
            }
        }
    }
    let size = size.ok_or_else(|| DriverError::invalid(MISSING_SIZE))?;
    Ok(CreateOptions { size })
}

#[cfg(test)]
mod tests {
    use super::*;
    use muelle_plugin_sdk::ErrorKind;

    #[test]
    fn size_is_required() {
        let err = parse(&[]).expect_err("no size");
        assert_eq!(err.kind, ErrorKind::Invalid);
        assert_eq!(
            err.message,
            "the quota driver needs -o size=SIZE (for example size=1g)"
        );
    }

    #[test]
    fn size_is_parsed() {
        assert_eq!(
            parse(&[("size", "64m")]),
            Ok(CreateOptions { size: 64 << 20 })
        );
        let err = parse(&[("size", "1m")]).expect_err("too small");
        assert_eq!(err.kind, ErrorKind::Invalid);
        assert!(err.message.contains("minimum"), "{}", err.message);
        let err = parse(&[("size", "lots")]).expect_err("garbage");
        assert!(err.message.contains("\"lots\""), "{}", err.message);
    }

    #[test]
    fn unknown_options_are_named() {
        let err = parse(&[("size", "64m"), ("uid", "1000")]).expect_err("uid");
        assert_eq!(err.kind, ErrorKind::Invalid);
        assert_eq!(
            err.message,
            "unknown option \"uid\" for the quota driver (it accepts: size)"
        );
        let err = parse(&[("SIZE", "64m")]).expect_err("keys are exact");
        assert!(err.message.contains("\"SIZE\""));
    }

    #[test]
    fn size_twice_is_refused() {
        let err = parse(&[("size", "64m"), ("size", "1g")]).expect_err("twice");
        assert_eq!(err.kind, ErrorKind::Invalid);
    }
}
