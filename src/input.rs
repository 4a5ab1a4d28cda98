//! Reading what users hand the command line: JSON given inline or as `file://PATH`, and
//! event files holding one JSON document or JSON lines.

use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

/// Errors reading user input, naming the input.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    // The cause is the error's source, which `{:#}` prints once after this.
    #[error("cannot read {name} from {}", path.display())]
    Read {
        name: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The text of an argument that is either JSON itself or `file://PATH`, as the AWS CLI
/// accepts.
pub fn inline_or_file(name: &str, argument: &str) -> Result<String, InputError> {
    match argument.strip_prefix("file://") {
        Some(path) => read(name, Path::new(path)),
        None => Ok(argument.to_owned()),
    }
}

/// Reads a whole file, decompressed if it is gzip ([`decompressed`]), naming `name` in the
/// error.
pub fn read(name: &str, path: &Path) -> Result<String, InputError> {
    fs::read(path)
        .and_then(text)
        .map_err(|source| read_error(name, path, source))
}

/// A file's bytes as text, decompressed if they are gzip ([`decompressed`]).
pub fn text(bytes: Vec<u8>) -> std::io::Result<String> {
    if !is_gzip(&bytes) {
        return String::from_utf8(bytes)
            .map_err(|error| std::io::Error::new(std::io::ErrorKind::InvalidData, error));
    }
    let mut text = String::new();
    decompressed(bytes.as_slice())?.read_to_string(&mut text)?;
    Ok(text)
}

/// `reader`, decompressed as it is read when its bytes are gzip, as CloudTrail writes its
/// log files (`.json.gz`, possibly of several gzip members). Told by the gzip magic bytes,
/// not the file's name.
pub fn decompressed<'r>(mut reader: impl BufRead + 'r) -> std::io::Result<Box<dyn BufRead + 'r>> {
    Ok(if is_gzip(reader.fill_buf()?) {
        Box::new(BufReader::new(flate2::bufread::MultiGzDecoder::new(reader)))
    } else {
        Box::new(reader)
    })
}

fn is_gzip(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0x1f, 0x8b])
}

/// Opens a file to be read as it is used (a large JSON-lines file), naming `name` in the
/// error.
pub fn open(name: &str, path: &Path) -> Result<fs::File, InputError> {
    fs::File::open(path).map_err(|source| read_error(name, path, source))
}

fn read_error(name: &str, path: &Path, source: std::io::Error) -> InputError {
    InputError::Read {
        name: name.to_owned(),
        path: path.to_owned(),
        source,
    }
}

/// What a replay (`eval`, `run --events`) read, for its closing line on stderr.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    pub events: usize,
    pub alerts: usize,
    pub undecodable: usize,
    pub skipped: usize,
}

impl Summary {
    /// `N events from M files: K alerts, U undecodable (named above)`, and the records
    /// skipped when there are some.
    pub fn line(&self, n_files: usize) -> String {
        let plural =
            |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        let mut line = format!(
            "{} from {}: {}, {} undecodable",
            plural(self.events, "event", "events"),
            plural(n_files, "file", "files"),
            plural(self.alerts, "alert", "alerts"),
            self.undecodable,
        );
        if self.undecodable > 0 {
            line.push_str(" (named above)");
        }
        if self.skipped > 0 {
            line.push_str(&format!(
                ", {} skipped (named above)",
                plural(self.skipped, "record", "records")
            ));
        }
        line
    }
}

/// Whether `text` is one JSON document.
pub fn is_json(text: &str) -> bool {
    serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok()
}

/// The message bodies in one input's text, whatever its name: the whole text when it is one
/// JSON document; else, when some line is a whole JSON object, each non-blank line (JSON
/// lines) with its 1-based number; else the whole text again, for the decoder to reject once
/// with the line and column of the fault (a broken pretty-printed document is one error, not
/// one a line). `eval` and the daemon's file source read event files alike through this.
pub fn bodies(text: &str) -> Vec<(Option<usize>, &str)> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let is_object = |line: &str| line.starts_with('{') && is_json(line);
    if is_json(text) || !json_lines(text).any(|(_, line)| is_object(line)) {
        return vec![(None, text)];
    }
    json_lines(text)
        .map(|(line, body)| (Some(line), body))
        .collect()
}

/// The non-blank lines of JSON-lines text, with their 1-based line numbers.
pub fn json_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(idx, line)| (idx + 1, line.trim()))
        .filter(|(_, line)| !line.is_empty())
}
