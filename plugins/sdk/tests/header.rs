//! Keeps `include/muelle_volume_plugin.h` and `abi.rs` in step: a C
//! program built against the header prints the size of every struct, the
//! offset of every field and the value of every `#define`, and each must
//! equal what Rust says of the mirror. Needs a C compiler (`cc`); without
//! one the test prints why and passes.

use std::collections::BTreeMap;
use std::mem::{offset_of, size_of};
use std::path::{Path, PathBuf};
use std::process::Command;

use muelle_plugin_sdk::abi;

/// One fact both sides state: the C expression that prints it, and the
/// value Rust holds.
struct Fact {
    key: String,
    /// A `printf` statement of the C program.
    c_print: String,
    rust: String,
}

fn layout_fact(key: String, c_expr: String, rust: usize) -> Fact {
    Fact {
        c_print: format!("printf(\"{key} %zu\\n\", (size_t)({c_expr}));"),
        key,
        rust: rust.to_string(),
    }
}

/// The size of a struct and the offset of each of its fields, by the
/// same field names in C and Rust.
macro_rules! layout {
    ($facts:ident, $rust:ty, $c:literal, [$($field:ident),+ $(,)?]) => {
        $facts.push(layout_fact(
            format!("sizeof({})", $c),
            format!("sizeof({})", $c),
            size_of::<$rust>(),
        ));
        $(
            $facts.push(layout_fact(
                format!("offsetof({}, {})", $c, stringify!($field)),
                format!("offsetof({}, {})", $c, stringify!($field)),
                offset_of!($rust, $field),
            ));
        )+
    };
}

fn int_fact(define: &str, rust: i64) -> Fact {
    Fact {
        key: define.to_owned(),
        c_print: format!("printf(\"{define} %lld\\n\", (long long)({define}));"),
        rust: rust.to_string(),
    }
}

fn facts() -> Vec<Fact> {
    let mut facts = Vec::new();
    layout!(facts, abi::Str, "muelle_str", [ptr, len]);
    layout!(facts, abi::KeyValue, "muelle_option", [key, value]);
    layout!(facts, abi::Buf, "muelle_buf", [ptr, len]);
    layout!(
        facts,
        abi::Host,
        "muelle_host",
        [abi_version, struct_size, state_dir, log, log_ctx]
    );
    layout!(
        facts,
        abi::Plugin,
        "muelle_volume_plugin",
        [
            abi_version,
            struct_size,
            name,
            version,
            scope,
            init,
            free_buf,
            create,
            remove,
            mount,
            unmount,
            path,
            get,
            list,
        ]
    );
    let ints: &[(&str, i64)] = &[
        ("MUELLE_VOLUME_ABI_VERSION", abi::ABI_VERSION.into()),
        ("MUELLE_OK", abi::OK.into()),
        ("MUELLE_ERROR", abi::ERROR.into()),
        ("MUELLE_NOT_FOUND", abi::NOT_FOUND.into()),
        ("MUELLE_INVALID", abi::INVALID.into()),
        ("MUELLE_BUSY", abi::BUSY.into()),
        ("MUELLE_PANIC", abi::PANIC.into()),
        ("MUELLE_SCOPE_LOCAL", abi::SCOPE_LOCAL.into()),
        ("MUELLE_SCOPE_GLOBAL", abi::SCOPE_GLOBAL.into()),
        ("MUELLE_LOG_ERROR", abi::LOG_ERROR.into()),
        ("MUELLE_LOG_WARN", abi::LOG_WARN.into()),
        ("MUELLE_LOG_INFO", abi::LOG_INFO.into()),
        ("MUELLE_LOG_DEBUG", abi::LOG_DEBUG.into()),
    ];
    facts.extend(ints.iter().map(|(define, value)| int_fact(define, *value)));
    facts.push(Fact {
        key: "MUELLE_VOLUME_PLUGIN_SYMBOL".to_owned(),
        c_print: "printf(\"MUELLE_VOLUME_PLUGIN_SYMBOL %s\\n\", MUELLE_VOLUME_PLUGIN_SYMBOL);"
            .to_owned(),
        rust: abi::ENTRY_SYMBOL.to_owned(),
    });
    facts
}

fn c_program(facts: &[Fact]) -> String {
    let mut source = String::from(
        "#include <stddef.h>\n#include <stdio.h>\n#include \"muelle_volume_plugin.h\"\n\nint main(void)\n{\n",
    );
    for fact in facts {
        source.push_str("    ");
        source.push_str(&fact.c_print);
        source.push('\n');
    }
    source.push_str("    return 0;\n}\n");
    source
}

fn include_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("include")
}

/// `cc` on PATH, or None.
fn find_cc() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("cc"))
        .find(|candidate| candidate.is_file())
}

#[test]
fn header_and_rust_mirror_agree() {
    let Some(cc) = find_cc() else {
        eprintln!("skipped: no `cc` on PATH to compile the C side of the ABI check");
        return;
    };
    let facts = facts();
    let dir = tempfile::tempdir().expect("tempdir");
    let source = dir.path().join("layout.c");
    let binary = dir.path().join("layout");
    std::fs::write(&source, c_program(&facts)).expect("write layout.c");

    // The header must compile clean as strict C99.
    let built = Command::new(&cc)
        .args(["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"])
        .arg("-I")
        .arg(include_dir())
        .arg("-o")
        .arg(&binary)
        .arg(&source)
        .output()
        .expect("run cc");
    assert!(
        built.status.success(),
        "cc failed ({}):\n{}",
        built.status,
        String::from_utf8_lossy(&built.stderr)
    );

    let run = Command::new(&binary)
        .output()
        .expect("run the layout program");
    assert!(
        run.status.success(),
        "layout program failed: {}",
        run.status
    );
    let stdout = String::from_utf8(run.stdout).expect("utf-8 output");
    let c: BTreeMap<&str, &str> = stdout
        .lines()
        .filter_map(|line| line.rsplit_once(' '))
        .collect();

    let mismatches: Vec<String> = facts
        .iter()
        .filter_map(|fact| match c.get(fact.key.as_str()) {
            Some(value) if *value == fact.rust => None,
            Some(value) => Some(format!(
                "{}: C says {value}, Rust says {}",
                fact.key, fact.rust
            )),
            None => Some(format!("{}: the C program printed nothing", fact.key)),
        })
        .collect();
    assert!(
        mismatches.is_empty(),
        "the header and abi.rs disagree:\n{}",
        mismatches.join("\n")
    );
    assert_eq!(c.len(), facts.len(), "one line per fact:\n{stdout}");
}

/// The struct_size a plugin declares is the size of the whole table, so
/// the host can tell which appended fields a plugin has: the last field
/// must end where the struct does (no field is missing from the check
/// above without the sizes disagreeing).
#[test]
fn tables_end_with_their_last_field() {
    assert_eq!(
        offset_of!(abi::Plugin, list) + size_of::<abi::ListFn>(),
        size_of::<abi::Plugin>()
    );
    assert_eq!(
        offset_of!(abi::Host, log_ctx) + size_of::<*mut std::ffi::c_void>(),
        size_of::<abi::Host>()
    );
}
