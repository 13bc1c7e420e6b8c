//! Helpers for multi-instance tests.
//!
//! - [`process`]: real `dan` processes in temporary data directories,
//!   driven through the CLI exactly as an admin or a script would.
//! - [`nodes`]: instances in this process (the same `dan-node` API the CLI
//!   and the desktop app use) on real sockets on 127.0.0.1.

pub mod netns;
pub mod nodes;
pub mod process;

/// About 300 bytes of text, distinct for each `n`, for benchmarks' items:
/// `label` and `n` repeated.
pub fn bench_text(label: &str, n: usize) -> String {
    let text = format!("{label} number {n} of the benchmark. ");
    text.repeat(300 / text.len() + 1)[..300].to_owned()
}

pub use process::{
    Instance, PASSWORD, cli_converged, cli_network, cli_network_with, dan_bin, modified_copy,
    modified_copy_with, modified_dan_bin, wait_until,
};
