//! `meterwatch man`: man pages generated from the command line's definition (clap_mangen),
//! so they say what `--help` says.

use anyhow::Context as _;
use clap::CommandFactory as _;
use std::path::PathBuf;
use std::process::ExitCode;

/// Prints the meterwatch(1) man page (`meterwatch man | man -l -`), or with `--out-dir`
/// writes it and one page per subcommand (`meterwatch-run.1`...) there.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Write meterwatch.1 and a page per subcommand into this directory (created if missing).
    #[arg(long)]
    out_dir: Option<PathBuf>,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let command = super::Cli::command();
    match &args.out_dir {
        None => clap_mangen::Man::new(command)
            .render(&mut std::io::stdout())
            .context("writing the man page")?,
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            clap_mangen::generate_to(command, dir)
                .with_context(|| format!("writing man pages into {}", dir.display()))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
