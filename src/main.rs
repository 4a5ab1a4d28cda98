//! The `meterwatch` binary: parse the command line, run it, map the outcome to an exit code.

use std::process::ExitCode;

/// Alerts are built from many small strings and JSON values; mimalloc serves those
/// allocations markedly faster than glibc's malloc and returns memory to the OS promptly.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    meterwatch::cli::main()
}
