//! Timestamps as docker prints them: RFC 3339 in UTC, whole seconds.

pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}
