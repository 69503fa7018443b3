//! Links `muelle-monitor` as a position-dependent executable.
//!
//! One monitor runs per container, so its private memory is multiplied by
//! the number of containers. Loaded at a random address (PIE), the binary's
//! relocated read-only data (about 180 kB of vtables and tables) is written
//! at every start and becomes private to each monitor; linked without PIE it
//! stays a clean, shared page-cache mapping that the monitor can drop. The
//! cost is that the monitor's own code sits at a fixed address (its
//! libraries, heap and stack are still randomized); the monitor parses no
//! untrusted input (container output is copied as bytes).
fn main() {
    println!("cargo:rustc-link-arg-bin=muelle-monitor=-no-pie");
    println!("cargo:rerun-if-changed=build.rs");
}
