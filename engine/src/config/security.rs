//! `--security-opt`: no-new-privileges, seccomp and docker's
//! `systempaths=unconfined`. A seccomp profile FILE is read when the flag
//! is parsed, as docker's CLI does, so the record holds the profile itself
//! and the container does not change when the file does.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::FlagError;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityOptions {
    /// `no-new-privileges[=true]`: setuid binaries and file capabilities no
    /// longer raise privileges. Off by default, as docker.
    #[serde(default)]
    pub no_new_privileges: bool,
    #[serde(default)]
    pub seccomp: SeccompProfile,
    /// `systempaths=unconfined`: no masked or read-only /proc and /sys
    /// paths.
    #[serde(default)]
    pub unmask_system_paths: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SeccompProfile {
    /// Docker's default profile for the container's capabilities.
    #[default]
    Default,
    /// `seccomp=unconfined`: no filter.
    Unconfined,
    /// `seccomp=FILE`: a profile in docker's JSON format.
    Custom {
        /// Where it was read from, for messages.
        source: PathBuf,
        /// The file's JSON, compacted.
        json: String,
    },
}

/// All `--security-opt` values of one command, in order (a later one wins).
pub fn parse_security_opts<S: AsRef<str>>(opts: &[S]) -> Result<SecurityOptions, FlagError> {
    let mut security = SecurityOptions::default();
    for opt in opts {
        apply(&mut security, opt.as_ref())?;
    }
    Ok(security)
}

fn apply(security: &mut SecurityOptions, opt: &str) -> Result<(), FlagError> {
    match opt {
        "no-new-privileges" => {
            security.no_new_privileges = true;
            return Ok(());
        }
        // Docker's shorthand for label=disable: nothing to disable here.
        "disable" => return Ok(()),
        _ => {}
    }
    // `=`, or the old `:` that docker still reads.
    let (key, value) = opt
        .split_once('=')
        .or_else(|| opt.split_once(':'))
        .ok_or_else(|| FlagError::SecurityOptFormat(opt.to_owned()))?;
    match (key, value) {
        ("no-new-privileges", value) => {
            security.no_new_privileges =
                parse_bool(value).ok_or_else(|| FlagError::SecurityOptValue(opt.to_owned()))?;
        }
        ("seccomp", "unconfined") => security.seccomp = SeccompProfile::Unconfined,
        ("seccomp", "builtin") => security.seccomp = SeccompProfile::Default,
        ("seccomp", path) => security.seccomp = read_profile(Path::new(path))?,
        ("systempaths", "unconfined") => security.unmask_system_paths = true,
        // Lifting confinement muelle never applies is a no-op, so scripts
        // written for docker hosts with AppArmor or SELinux still run.
        ("apparmor", "unconfined") | ("label", "disable") => {}
        ("apparmor" | "label", _) => return Err(FlagError::NoMacSupport(opt.to_owned())),
        _ => return Err(FlagError::SecurityOptValue(opt.to_owned())),
    }
    Ok(())
}

/// Go's strconv.ParseBool.
fn parse_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// Reads and checks a docker seccomp profile.
fn read_profile(path: &Path) -> Result<SeccompProfile, FlagError> {
    let text = std::fs::read(path).map_err(|source| FlagError::SeccompOpen {
        path: path.to_path_buf(),
        source,
    })?;
    let value: serde_json::Value =
        serde_json::from_slice(&text).map_err(|source| FlagError::SeccompJson {
            path: path.to_path_buf(),
            source,
        })?;
    let json = value.to_string();
    // Refuse now what could not become a filter later.
    crate::spec::seccomp::DockerProfile::parse(&json).map_err(FlagError::SeccompDecode)?;
    Ok(SeccompProfile::Custom {
        source: path.to_path_buf(),
        json,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(opt: &str) -> String {
        parse_security_opts(&[opt]).unwrap_err().to_string()
    }

    #[test]
    fn no_new_privileges_forms() {
        for opt in [
            "no-new-privileges",
            "no-new-privileges=true",
            "no-new-privileges:true",
            "no-new-privileges=1",
        ] {
            assert!(
                parse_security_opts(&[opt]).unwrap().no_new_privileges,
                "{opt}"
            );
        }
        let off = parse_security_opts(&["no-new-privileges", "no-new-privileges=false"]).unwrap();
        assert!(!off.no_new_privileges);
        assert_eq!(
            err("no-new-privileges=maybe"),
            r#"invalid --security-opt 2: "no-new-privileges=maybe""#
        );
    }

    #[test]
    fn seccomp_forms() {
        let none: [&str; 0] = [];
        assert_eq!(
            parse_security_opts(&none).unwrap().seccomp,
            SeccompProfile::Default
        );
        assert_eq!(
            parse_security_opts(&["seccomp=unconfined"])
                .unwrap()
                .seccomp,
            SeccompProfile::Unconfined
        );
        assert_eq!(
            parse_security_opts(&["seccomp:unconfined", "seccomp=builtin"])
                .unwrap()
                .seccomp,
            SeccompProfile::Default
        );
    }

    #[test]
    fn a_profile_file_is_read_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("profile.json");
        std::fs::write(
            &path,
            r#"{
                "defaultAction": "SCMP_ACT_ERRNO",
                "syscalls": [{"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"}]
            }"#,
        )
        .unwrap();
        let opt = format!("seccomp={}", path.display());
        let SeccompProfile::Custom { source, json } = parse_security_opts(&[opt]).unwrap().seccomp
        else {
            panic!("not a custom profile");
        };
        assert_eq!(source, path);
        assert!(!json.contains('\n'), "compacted: {json}");
    }

    #[test]
    fn bad_profiles_read_like_docker() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.json");
        assert!(
            err(&format!("seccomp={}", missing.display())).starts_with(&format!(
                "opening seccomp profile ({}) failed: ",
                missing.display()
            ))
        );
        let broken = dir.path().join("broken.json");
        std::fs::write(&broken, "{").unwrap();
        assert!(
            err(&format!("seccomp={}", broken.display())).starts_with(&format!(
                "compacting json for seccomp profile ({}) failed: ",
                broken.display()
            ))
        );
        let wrong = dir.path().join("wrong.json");
        std::fs::write(&wrong, r#"{"defaultAction": "SCMP_ACT_MAYBE"}"#).unwrap();
        assert!(
            err(&format!("seccomp={}", wrong.display()))
                .starts_with("Decoding seccomp profile failed: ")
        );
    }

    #[test]
    fn other_options() {
        assert!(
            parse_security_opts(&["systempaths=unconfined"])
                .unwrap()
                .unmask_system_paths
        );
        parse_security_opts(&["apparmor=unconfined", "label=disable", "label:disable"]).unwrap();
        assert!(err("apparmor=docker-default").contains("no AppArmor or SELinux"));
        assert_eq!(err("foo"), r#"invalid --security-opt 1: "foo""#);
        assert_eq!(err("foo=bar"), r#"invalid --security-opt 2: "foo=bar""#);
    }
}
