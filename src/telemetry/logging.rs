//! Logs on standard error (standard output carries alerts): human-readable on a terminal,
//! one JSON object per line otherwise, filtered by `RUST_LOG` (default `info`), with the AWS
//! SDK's runtime kept at `warn` unless `RUST_LOG` names it ([`filter`]).

use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Pretty when standard error is a terminal, JSON otherwise.
    #[default]
    Auto,
    /// One JSON object per line (what log shippers want).
    Json,
    /// Human-readable lines.
    Pretty,
}

/// The AWS SDK's runtime logs every dropped connection at `info`, hundreds a minute while a
/// service answers 503, which the daemon's own failure events already report once per
/// attempt: these targets log from `warn` unless `RUST_LOG` says otherwise about them.
const QUIET_TARGETS: [&str; 2] = ["aws_smithy_runtime", "aws_smithy_runtime_api"];

/// The filter for `rust_log` (the variable's value): its directives (`info` when unset or
/// empty), plus `warn` for each of [`QUIET_TARGETS`] that no directive names, so that
/// `RUST_LOG=info` or `debug`, as deployments set it, keeps the SDK quiet, and
/// `RUST_LOG=info,aws_smithy_runtime=debug` still shows it. An invalid value is ignored.
pub fn filter(rust_log: Option<&str>) -> EnvFilter {
    let given = rust_log.map(str::trim).filter(|value| !value.is_empty());
    let mut directives = vec![given.unwrap_or("info").to_owned()];
    for quiet in QUIET_TARGETS {
        if !given.is_some_and(|given| names_target(given, quiet)) {
            directives.push(format!("{quiet}=warn"));
        }
    }
    EnvFilter::try_new(directives.join(",")).unwrap_or_else(|_| filter(None))
}

/// Whether some directive of `directives` applies to `target` specifically. A directive's
/// target matches events whose target starts with it (`aws=debug` covers the SDK), so one
/// that is a prefix of `target`, or has it as a prefix, names it.
fn names_target(directives: &str, target: &str) -> bool {
    directives.split(',').any(|directive| {
        let directive = directive.trim();
        let named = directive
            .split(['[', '='])
            .next()
            .unwrap_or_default()
            .trim();
        // A bare level (`info`, `off`) names no target.
        let bare_level = !directive.contains('=')
            && named
                .parse::<tracing_subscriber::filter::LevelFilter>()
                .is_ok();
        !named.is_empty() && !bare_level && (target.starts_with(named) || named.starts_with(target))
    })
}

/// Installs the global subscriber. Call once, before anything logs; a second call is ignored
/// (tests may race to install one).
pub fn init(format: LogFormat) {
    let rust_log = std::env::var(EnvFilter::DEFAULT_ENV).ok();
    let filter = filter(rust_log.as_deref());
    let json = match format {
        LogFormat::Auto => !std::io::stderr().is_terminal(),
        LogFormat::Json => true,
        LogFormat::Pretty => false,
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // An already installed subscriber is kept; that is the only possible error.
    let _ = if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init()
    } else {
        builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init()
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// What a subscriber filtered by `filter(rust_log)` writes of one `info` line from the
    /// SDK's runtime and one from the daemon.
    fn written(rust_log: Option<&str>) -> String {
        let buffer = Arc::new(Mutex::new(Vec::<u8>::new()));
        let writer = {
            let buffer = Arc::clone(&buffer);
            move || Writer(Arc::clone(&buffer))
        };
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(filter(rust_log))
            .with_writer(writer)
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(target: "aws_smithy_runtime::client::http", "sdk chatter");
            tracing::info!(target: "meterwatch::daemon", "daemon lifecycle");
        });
        let bytes = buffer.lock().expect("not poisoned").clone();
        String::from_utf8(bytes).expect("utf-8")
    }

    struct Writer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Writer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .expect("not poisoned")
                .extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn rust_log_info_keeps_the_sdk_runtime_quiet() {
        for rust_log in [
            None,
            Some(""),
            Some("info"),
            Some("debug"),
            Some("info,hyper=warn"),
        ] {
            let text = written(rust_log);
            assert!(text.contains("daemon lifecycle"), "{rust_log:?}: {text}");
            assert!(!text.contains("sdk chatter"), "{rust_log:?}: {text}");
        }
    }

    #[test]
    fn rust_log_naming_the_sdk_runtime_is_obeyed() {
        for rust_log in [
            "info,aws_smithy_runtime=info",
            "info,aws_smithy_runtime::client=debug",
            "aws=info",
        ] {
            let text = written(Some(rust_log));
            assert!(text.contains("sdk chatter"), "{rust_log}: {text}");
        }
        assert!(!written(Some("warn")).contains("daemon lifecycle"));
    }

    #[test]
    fn an_invalid_rust_log_falls_back_to_the_default() {
        let text = written(Some("info,meterwatch=loud"));
        assert!(text.contains("daemon lifecycle"), "{text}");
        assert!(!text.contains("sdk chatter"), "{text}");
    }
}
