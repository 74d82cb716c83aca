//! The repository's Markdown files and their fenced code blocks, for the tests that check the
//! docs (links resolve, runnable examples run).

use std::path::{Path, PathBuf};

/// Folders that hold no docs of ours.
const SKIPPED: [&str; 4] = ["target", "node_modules", ".git", "fuzz"];

/// The repository's root, from a crate's manifest dir one level below it.
pub fn repo_root(manifest_dir: &str) -> PathBuf {
    Path::new(manifest_dir).join("..").canonicalize().expect("repo root")
}

/// Every `.md` file under `root`, sorted, outside build output and installed packages.
pub fn markdown_files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    collect(root, &mut out);
    out.sort();
    out
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read dir").map_while(Result::ok) {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if path.is_dir() {
            if !SKIPPED.contains(&name.as_str()) && !name.starts_with("target") {
                collect(&path, out);
            }
        } else if name.ends_with(".md") {
            out.push(path);
        }
    }
}

/// A fenced code block: its info string (`sh runnable`), its text, and the line it opens on.
#[derive(Debug, Clone)]
pub struct FencedBlock {
    pub info: String,
    pub body: String,
    pub line: usize,
}

/// The fenced blocks of a Markdown text, and its lines outside them (blank where a block was,
/// so line numbers hold).
pub fn split_fences(text: &str) -> (Vec<FencedBlock>, Vec<String>) {
    let mut blocks = Vec::new();
    let mut prose = Vec::new();
    let mut open: Option<FencedBlock> = None;
    for (index, line) in text.lines().enumerate() {
        let fence = line.trim_start().strip_prefix("```");
        match (&mut open, fence) {
            (None, Some(info)) => {
                open = Some(FencedBlock { info: info.trim().to_owned(), body: String::new(), line: index + 1 })
            }
            (Some(_), Some(_)) => blocks.extend(open.take()),
            (Some(block), None) => {
                block.body.push_str(line);
                block.body.push('\n');
            }
            (None, None) => {
                prose.push(line.to_owned());
                continue;
            }
        }
        prose.push(String::new());
    }
    (blocks, prose)
}
