//! `--security-opt seccomp=FILE`: docker's profile format to the OCI
//! spec's `linux.seccomp`.
//!
//! Docker's format is the OCI one plus `archMap` (architectures by host)
//! and per-rule `includes`/`excludes` (capabilities, architectures, a
//! minimum kernel). Reading such a profile as plain OCI would silently
//! drop those conditions and apply e.g. its `CAP_SYS_ADMIN`-only rules to
//! every container, so they are evaluated here exactly as docker does;
//! anything the OCI types refuse (an unknown action or operator) is an
//! error, never skipped.

use oci_spec::runtime::LinuxSeccomp;
use serde::Deserialize;
use serde_json::{Map, Value, json};

/// A profile as docker's `types.Seccomp` reads it; unknown fields are
/// ignored, as Go does.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DockerProfile {
    default_action: Value,
    #[serde(default)]
    default_errno_ret: Option<u32>,
    #[serde(default)]
    architectures: Vec<String>,
    #[serde(default)]
    arch_map: Vec<ArchMap>,
    #[serde(default)]
    flags: Vec<Value>,
    #[serde(default)]
    listener_path: Option<String>,
    #[serde(default)]
    listener_metadata: Option<String>,
    #[serde(default)]
    syscalls: Vec<Rule>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ArchMap {
    architecture: String,
    #[serde(default)]
    sub_architectures: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Rule {
    #[serde(default)]
    name: String,
    #[serde(default)]
    names: Vec<String>,
    action: Value,
    #[serde(default)]
    errno_ret: Option<u32>,
    #[serde(default)]
    args: Vec<Value>,
    #[serde(default)]
    includes: Filter,
    #[serde(default)]
    excludes: Filter,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Filter {
    #[serde(default)]
    arches: Vec<String>,
    #[serde(default)]
    caps: Vec<String>,
    #[serde(default)]
    min_kernel: Option<String>,
}

impl DockerProfile {
    /// Parses and checks what can be checked without the container: the
    /// shape, and the actions, operators and architectures by name.
    pub(crate) fn parse(json: &str) -> Result<DockerProfile, String> {
        let profile: DockerProfile = serde_json::from_str(json).map_err(|e| e.to_string())?;
        if !profile.architectures.is_empty() && !profile.arch_map.is_empty() {
            return Err("both 'architectures' and 'archMap' are specified in the seccomp profile, use either 'architectures' or 'archMap'".into());
        }
        for rule in &profile.syscalls {
            if !rule.name.is_empty() && !rule.names.is_empty() {
                return Err("use either 'name' or 'names'".into());
            }
            for filter in [&rule.includes, &rule.excludes] {
                if let Some(version) = &filter.min_kernel {
                    parse_min_kernel(version)?;
                }
            }
        }
        // Every rule once, unconditionally, through the OCI types.
        profile.convert(|_| true, &[])?;
        Ok(profile)
    }

    /// The OCI seccomp for a container holding `caps` (`CAP_*` names) on
    /// a host of Rust architecture `arch` running kernel `kernel`.
    pub(crate) fn to_oci(
        &self,
        caps: &[String],
        arch: &str,
        kernel: (u32, u32),
    ) -> Result<LinuxSeccomp, String> {
        let go_arch = go_arch(arch);
        let has_cap = |name: &String| {
            let wanted = runtime_core::capabilities::from_name(name);
            caps.iter()
                .any(|c| wanted.is_some() && runtime_core::capabilities::from_name(c) == wanted)
        };
        let at_least = |version: &String| parse_min_kernel(version).is_ok_and(|min| kernel >= min);
        let applies = |rule: &Rule| {
            let ex = &rule.excludes;
            let inc = &rule.includes;
            !(ex.arches.iter().any(|a| a == go_arch)
                || ex.caps.iter().any(has_cap)
                || ex.min_kernel.as_ref().is_some_and(at_least)
                || (!inc.arches.is_empty() && !inc.arches.iter().any(|a| a == go_arch))
                || !inc.caps.iter().all(has_cap)
                || inc.min_kernel.as_ref().is_some_and(|v| !at_least(v)))
        };
        let native = native_arch(go_arch);
        let mut architectures: Vec<String> = self.architectures.clone();
        for entry in &self.arch_map {
            if Some(entry.architecture.as_str()) == native {
                architectures.push(entry.architecture.clone());
                architectures.extend(entry.sub_architectures.iter().cloned());
            }
        }
        self.convert(applies, &architectures)
    }

    fn convert(
        &self,
        applies: impl Fn(&Rule) -> bool,
        architectures: &[String],
    ) -> Result<LinuxSeccomp, String> {
        let mut out = Map::new();
        out.insert("defaultAction".into(), self.default_action.clone());
        if let Some(errno) = self.default_errno_ret {
            out.insert("defaultErrnoRet".into(), json!(errno));
        }
        if !architectures.is_empty() {
            out.insert("architectures".into(), json!(architectures));
        }
        if !self.flags.is_empty() {
            out.insert("flags".into(), json!(self.flags));
        }
        if let Some(path) = &self.listener_path {
            out.insert("listenerPath".into(), json!(path));
        }
        if let Some(metadata) = &self.listener_metadata {
            out.insert("listenerMetadata".into(), json!(metadata));
        }
        let mut syscalls = Vec::new();
        for rule in self.syscalls.iter().filter(|r| applies(r)) {
            let names = if rule.name.is_empty() {
                rule.names.clone()
            } else {
                vec![rule.name.clone()]
            };
            let mut call = Map::new();
            call.insert("names".into(), json!(names));
            call.insert("action".into(), rule.action.clone());
            if let Some(errno) = rule.errno_ret {
                call.insert("errnoRet".into(), json!(errno));
            }
            if !rule.args.is_empty() {
                call.insert("args".into(), json!(rule.args));
            }
            syscalls.push(Value::Object(call));
        }
        if !syscalls.is_empty() {
            out.insert("syscalls".into(), Value::Array(syscalls));
        }
        serde_json::from_value(Value::Object(out)).map_err(|e| e.to_string())
    }
}

/// "4.8" → (4, 8), as docker's `minKernel`.
fn parse_min_kernel(text: &str) -> Result<(u32, u32), String> {
    let bad = || format!("invalid kernel version: {text}");
    let (major, minor) = text.split_once('.').ok_or_else(bad)?;
    Ok((
        major.parse().map_err(|_| bad())?,
        minor.parse().map_err(|_| bad())?,
    ))
}

/// Go's GOARCH for a Rust target architecture: the names profiles use in
/// `includes.arches`.
fn go_arch(rust_arch: &str) -> &str {
    match rust_arch {
        "x86_64" => "amd64",
        "x86" => "386",
        "aarch64" => "arm64",
        "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
        "powerpc64" => "ppc64",
        "mips64" if cfg!(target_endian = "little") => "mips64le",
        "loongarch64" => "loong64",
        other => other,
    }
}

/// The libseccomp name of the native architecture, as `archMap` keys it.
fn native_arch(go_arch: &str) -> Option<&'static str> {
    Some(match go_arch {
        "amd64" => "SCMP_ARCH_X86_64",
        "386" => "SCMP_ARCH_X86",
        "arm64" => "SCMP_ARCH_AARCH64",
        "arm" => "SCMP_ARCH_ARM",
        "ppc64le" => "SCMP_ARCH_PPC64LE",
        "ppc64" => "SCMP_ARCH_PPC64",
        "s390x" => "SCMP_ARCH_S390X",
        "riscv64" => "SCMP_ARCH_RISCV64",
        "mips64" => "SCMP_ARCH_MIPS64",
        "mips64le" => "SCMP_ARCH_MIPSEL64",
        "loong64" => "SCMP_ARCH_LOONGARCH64",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROFILE: &str = r#"{
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,
        "archMap": [
            {"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
            {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]}
        ],
        "syscalls": [
            {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW", "comment": "always"},
            {"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
            {"names": ["arch_prctl"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["amd64"]}},
            {"names": ["clone"], "action": "SCMP_ACT_ALLOW", "excludes": {"caps": ["CAP_SYS_ADMIN"]},
             "args": [{"index": 0, "value": 2114060288, "op": "SCMP_CMP_MASKED_EQ"}]},
            {"names": ["newer"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "99.0"}},
            {"name": "ptrace", "action": "SCMP_ACT_ERRNO", "errnoRet": 38}
        ]
    }"#;

    fn names(seccomp: &LinuxSeccomp) -> Vec<String> {
        seccomp
            .syscalls()
            .as_deref()
            .unwrap_or_default()
            .iter()
            .flat_map(|s| s.names().clone())
            .collect()
    }

    #[test]
    fn conditions_follow_the_containers_capabilities() {
        let profile = DockerProfile::parse(PROFILE).unwrap();
        let plain = profile.to_oci(&[], "x86_64", (6, 1)).unwrap();
        assert_eq!(
            names(&plain),
            ["read", "write", "arch_prctl", "clone", "ptrace"]
        );
        let admin = profile
            .to_oci(&["CAP_SYS_ADMIN".into()], "x86_64", (6, 1))
            .unwrap();
        assert_eq!(
            names(&admin),
            ["read", "write", "mount", "arch_prctl", "ptrace"]
        );
        let arm = profile.to_oci(&[], "aarch64", (6, 1)).unwrap();
        assert_eq!(names(&arm), ["read", "write", "clone", "ptrace"]);
        assert_eq!(
            serde_json::to_value(arm.architectures()).unwrap(),
            json!(["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"])
        );
        let new_kernel = profile.to_oci(&[], "x86_64", (99, 0)).unwrap();
        assert!(names(&new_kernel).contains(&"newer".to_owned()));
    }

    #[test]
    fn the_rest_passes_through() {
        let profile = DockerProfile::parse(PROFILE).unwrap();
        let oci = profile.to_oci(&[], "x86_64", (6, 1)).unwrap();
        let value = serde_json::to_value(&oci).unwrap();
        assert_eq!(value["defaultAction"], "SCMP_ACT_ERRNO");
        assert_eq!(value["defaultErrnoRet"], 1);
        assert_eq!(
            value["architectures"],
            json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"])
        );
        let ptrace = &value["syscalls"][3];
        assert_eq!(ptrace["names"], json!(["ptrace"]));
        assert_eq!(ptrace["errnoRet"], 38);
        assert_eq!(value["syscalls"][2]["args"][0]["op"], "SCMP_CMP_MASKED_EQ");
    }

    #[test]
    fn bad_profiles_are_refused() {
        for (text, why) in [
            (r#"{"syscalls": []}"#, "missing field `defaultAction`"),
            (
                r#"{"defaultAction": "SCMP_ACT_SOMETIMES"}"#,
                "unknown variant",
            ),
            (
                r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_ROUGHLY"}]}]}"#,
                "unknown variant",
            ),
            (
                r#"{"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64"], "archMap": [{"architecture": "SCMP_ARCH_X86_64"}]}"#,
                "use either 'architectures' or 'archMap'",
            ),
            (
                r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"name": "read", "names": ["write"], "action": "SCMP_ACT_ALLOW"}]}"#,
                "use either 'name' or 'names'",
            ),
            (
                r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "new"}}]}"#,
                "invalid kernel version: new",
            ),
        ] {
            let err = DockerProfile::parse(text).unwrap_err();
            assert!(err.contains(why), "{text}: {err}");
        }
    }
}
