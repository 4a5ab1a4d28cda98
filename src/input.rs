//! Reading what users hand the command line: JSON given inline or as `file://PATH`, and
//! event files holding one JSON document or JSON lines.

use std::fs;
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

/// Reads a whole file, naming `name` in the error.
pub fn read(name: &str, path: &Path) -> Result<String, InputError> {
    fs::read_to_string(path).map_err(|source| read_error(name, path, source))
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

/// Whether `text` is one JSON document.
pub fn is_json(text: &str) -> bool {
    serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok()
}

/// The message bodies in one input's text, whatever its name: the whole text when it is one
/// JSON document (or does not start as JSON lines would, for the decoder to reject whole),
/// else each non-blank line (JSON lines) with its 1-based number. `eval` and the daemon's
/// file source read event files alike through this.
pub fn bodies(text: &str) -> Vec<(Option<usize>, &str)> {
    if is_json(text) || !text.trim_start().starts_with('{') {
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
