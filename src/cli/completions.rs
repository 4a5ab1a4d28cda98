//! `meterwatch completions SHELL`: tab completion for the shell, generated from the command
//! line's definition (clap_complete), so it cannot fall behind the flags.

use clap::CommandFactory as _;
use std::process::ExitCode;

/// Prints a completion script for SHELL. Bash: `meterwatch completions bash >
/// ~/.local/share/bash-completion/completions/meterwatch`; zsh: into a directory on `$fpath`
/// as `_meterwatch`; fish: `~/.config/fish/completions/meterwatch.fish`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The shell.
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let mut command = super::Cli::command();
    clap_complete::generate(
        args.shell,
        &mut command,
        "meterwatch",
        &mut std::io::stdout(),
    );
    Ok(ExitCode::SUCCESS)
}
