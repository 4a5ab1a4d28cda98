//! Event files and standard input: the pipeline without AWS (samples, replays, the README's
//! first command).
//!
//! A file holding one JSON document is one message (id `PATH`); JSON lines are one message per
//! non-blank line (id `PATH:LINE`), whatever the file's name, as `eval` reads them. Directories are read recursively: their `*.json` and `*.jsonl`
//! files (also gzipped: `*.json.gz`), in path order; gzip is read by its magic bytes. Standard input is JSON lines. Nothing is deleted: a file source
//! simply ends ([`Received::Exhausted`]) when everything was handed out.

use super::{Message, Receipt, Received, SourceError};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use tokio::io::{AsyncBufReadExt, BufReader, Lines, Stdin};

/// Messages handed out per receive. One: a batch's messages are processed concurrently, and
/// people reading alerts from files expect them in the files' order.
pub(super) const BATCH_SIZE: usize = 1;

/// Files or standard input, read in order.
#[derive(Debug)]
pub struct FileSource {
    inputs: Inputs,
    /// How many files were listed (stdin counts as one), for a replay's closing line.
    n_files: usize,
}

#[derive(Debug)]
enum Inputs {
    /// Files not yet read, and messages of the current file not yet handed out. The std
    /// mutex is never held across an `.await`.
    Files(std::sync::Mutex<FilesState>),
    /// Held across the read of a line, hence tokio's mutex.
    Stdin(tokio::sync::Mutex<StdinState>),
}

#[derive(Debug, Default)]
struct FilesState {
    files: VecDeque<PathBuf>,
    messages: VecDeque<Message>,
}

#[derive(Debug)]
struct StdinState {
    lines: Lines<BufReader<Stdin>>,
    line_number: usize,
}

impl FileSource {
    /// The event files at `paths` (files, or directories searched recursively).
    pub fn files(paths: &[PathBuf]) -> Result<Self, SourceError> {
        let mut files = Vec::new();
        for path in paths {
            collect(path, true, &mut files)?;
        }
        Ok(FileSource {
            n_files: files.len(),
            inputs: Inputs::Files(std::sync::Mutex::new(FilesState {
                files: files.into(),
                messages: VecDeque::new(),
            })),
        })
    }

    /// JSON lines on standard input.
    pub fn stdin() -> Self {
        FileSource {
            n_files: 1,
            inputs: Inputs::Stdin(tokio::sync::Mutex::new(StdinState {
                lines: BufReader::new(tokio::io::stdin()).lines(),
                line_number: 0,
            })),
        }
    }

    pub(super) fn n_files(&self) -> usize {
        self.n_files
    }

    pub(super) fn describe(&self) -> String {
        match &self.inputs {
            Inputs::Files(_) => "files".to_owned(),
            Inputs::Stdin(_) => "stdin".to_owned(),
        }
    }

    pub(super) async fn receive(&self) -> Result<Received, SourceError> {
        match &self.inputs {
            Inputs::Files(state) => receive_files(state).await,
            Inputs::Stdin(state) => receive_stdin(&mut *state.lock().await).await,
        }
    }
}

async fn receive_files(state: &std::sync::Mutex<FilesState>) -> Result<Received, SourceError> {
    loop {
        let next_file = {
            let mut state = state
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if !state.messages.is_empty() {
                let n = BATCH_SIZE.min(state.messages.len());
                return Ok(Received::Messages(state.messages.drain(..n).collect()));
            }
            match state.files.pop_front() {
                Some(path) => path,
                None => return Ok(Received::Exhausted),
            }
        };
        // The file is already taken off the list: an unreadable file is reported once.
        let text = match tokio::fs::read(&next_file).await {
            Ok(bytes) => crate::input::text(bytes),
            Err(error) => Err(error),
        }
        .map_err(|source| SourceError::Read {
            path: next_file.display().to_string(),
            source,
        })?;
        let messages = messages_of(&next_file, &text);
        state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .messages
            .extend(messages);
    }
}

async fn receive_stdin(state: &mut StdinState) -> Result<Received, SourceError> {
    let mut batch = Vec::with_capacity(BATCH_SIZE);
    while batch.is_empty() {
        let line = state
            .lines
            .next_line()
            .await
            .map_err(|source| SourceError::Read {
                path: "stdin".to_owned(),
                source,
            })?;
        let Some(line) = line else {
            return Ok(Received::Exhausted);
        };
        state.line_number += 1;
        if !line.trim().is_empty() {
            batch.push(message(format!("stdin:{}", state.line_number), line));
        }
    }
    Ok(Received::Messages(batch))
}

/// The messages of one file's text, told apart as `eval` tells them ([`crate::input::bodies`]).
fn messages_of(path: &Path, text: &str) -> Vec<Message> {
    let name = path.display();
    crate::input::bodies(text)
        .into_iter()
        .map(|(line_number, body)| match line_number {
            Some(line_number) => message(format!("{name}:{line_number}"), body.to_owned()),
            None => message(name.to_string(), body.to_owned()),
        })
        .collect()
}

fn message(id: String, body: String) -> Message {
    Message {
        receipt: Receipt(id.clone()),
        id,
        body,
        receive_count: 1,
        sent_at: None,
    }
}

/// Adds `path` (a file, or a directory's event files recursively) to `files`. A file named
/// explicitly is taken whatever its extension; inside directories only `*.json`/`*.jsonl`,
/// gzipped or not (`*.json.gz`, as CloudTrail writes its log files).
fn collect(path: &Path, explicit: bool, files: &mut Vec<PathBuf>) -> Result<(), SourceError> {
    let read_error = |source| SourceError::Read {
        path: path.display().to_string(),
        source,
    };
    let metadata = std::fs::metadata(path).map_err(read_error)?;
    if !metadata.is_dir() {
        let is_event_file = path.file_name().is_some_and(|name| {
            let name = name.to_string_lossy();
            let name = name.strip_suffix(".gz").unwrap_or(&name);
            name.ends_with(".json") || name.ends_with(".jsonl")
        });
        if explicit || is_event_file {
            files.push(path.to_owned());
        }
        return Ok(());
    }
    let mut entries = std::fs::read_dir(path)
        .map_err(read_error)?
        .map(|entry| entry.map(|entry| entry.path()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(read_error)?;
    entries.sort();
    for entry in entries {
        let hidden = entry
            .file_name()
            .is_some_and(|name| name.to_string_lossy().starts_with('.'));
        if !hidden {
            collect(&entry, false, files)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn drain(source: &FileSource) -> Vec<Message> {
        let mut all = Vec::new();
        loop {
            match source.receive().await.expect("readable") {
                Received::Messages(batch) => all.extend(batch),
                Received::Exhausted => return all,
            }
        }
    }

    #[tokio::test]
    async fn directories_yield_json_files_and_json_lines() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("b.json"), "{\"one\": 1}").expect("write");
        std::fs::write(dir.path().join("a.jsonl"), "{}\n\n{}\n{}\n").expect("write");
        std::fs::write(dir.path().join("notes.md"), "not events").expect("write");
        std::fs::create_dir(dir.path().join("sub")).expect("mkdir");
        std::fs::write(dir.path().join("sub/c.json"), "[]").expect("write");

        let source = FileSource::files(&[dir.path().to_owned()]).expect("listable");
        let ids: Vec<String> = drain(&source)
            .await
            .into_iter()
            .map(|m| {
                m.id.strip_prefix(&format!("{}/", dir.path().display()))
                    .expect("under dir")
                    .to_owned()
            })
            .collect();
        assert_eq!(
            ids,
            [
                "a.jsonl:1",
                "a.jsonl:3",
                "a.jsonl:4",
                "b.json",
                "sub/c.json"
            ]
        );
    }

    /// What a file holds decides, not its name: as `eval` reads it.
    #[tokio::test]
    async fn json_lines_and_documents_are_told_apart_by_content() {
        let dir = tempfile::tempdir().expect("tempdir");
        let lines = dir.path().join("lines.json");
        std::fs::write(&lines, "{\"a\": 1}\n{\"b\": 2}\n").expect("write");
        let pretty = dir.path().join("pretty.jsonl");
        std::fs::write(&pretty, "{\n  \"a\": 1\n}\n").expect("write");
        let source = FileSource::files(&[lines.clone(), pretty.clone()]).expect("listable");
        let read: Vec<(String, String)> = drain(&source)
            .await
            .into_iter()
            .map(|m| (m.id, m.body.trim().to_owned()))
            .collect();
        assert_eq!(
            read,
            [
                (format!("{}:1", lines.display()), "{\"a\": 1}".to_owned()),
                (format!("{}:2", lines.display()), "{\"b\": 2}".to_owned()),
                (pretty.display().to_string(), "{\n  \"a\": 1\n}".to_owned()),
            ]
        );
    }

    #[tokio::test]
    async fn missing_path_is_an_error() {
        let error =
            FileSource::files(&[PathBuf::from("/nonexistent/meterwatch")]).expect_err("missing");
        assert!(error.to_string().contains("/nonexistent/meterwatch"));
    }
}
