//! Every relative link in the repository's Markdown resolves: the file or folder exists, and an
//! `#anchor` names a heading (GitHub's slugs) or an `id`/`name` anchor in the target. Checked
//! offline; links with a scheme (`https:`, `mailto:`) are not probed.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use clickstream_tests::markdown::{markdown_files, repo_root, split_fences};

/// Each line outside fenced blocks, with inline code spans removed.
fn prose_lines(text: &str) -> Vec<String> {
    let (_, prose) = split_fences(text);
    prose
        .iter()
        .map(|line| {
            let mut in_code = false;
            line.chars()
                .filter(|&c| {
                    if c == '`' {
                        in_code = !in_code;
                    }
                    c != '`' && !in_code
                })
                .collect()
        })
        .collect()
}

/// GitHub's heading anchor: lowercase, punctuation other than `-` and `_` dropped, spaces to
/// `-`; a repeated heading gets `-1`, `-2`, ...
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors(text: &str) -> HashSet<String> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut anchors = HashSet::new();
    for line in split_fences(text).1 {
        if let Some(heading) = line.strip_prefix('#').map(|rest| rest.trim_start_matches('#')) {
            if heading.starts_with(' ') {
                let base = slug(&heading.replace('`', ""));
                let count = seen.entry(base.clone()).or_default();
                anchors.insert(if *count == 0 { base.clone() } else { format!("{base}-{count}") });
                *count += 1;
            }
        }
        for attribute in ["id=\"", "name=\""] {
            let mut rest = line.as_str();
            while let Some(start) = rest.find(attribute) {
                rest = &rest[start + attribute.len()..];
                if let Some(end) = rest.find('"') {
                    anchors.insert(rest[..end].to_owned());
                }
            }
        }
    }
    anchors
}

/// The targets of `[text](target)` and `[label]: target` links on a line of prose.
fn link_targets(line: &str) -> Vec<String> {
    let mut targets = Vec::new();
    let mut rest = line;
    while let Some(start) = rest.find("](") {
        rest = &rest[start + 2..];
        if let Some(end) = rest.find(')') {
            let target = rest[..end].split_whitespace().next().unwrap_or_default();
            targets.push(target.trim_matches(['<', '>']).to_owned());
        }
    }
    let trimmed = line.trim_start();
    if trimmed.starts_with('[') {
        if let Some((_, target)) = trimmed.split_once("]: ") {
            targets.push(target.split_whitespace().next().unwrap_or_default().to_owned());
        }
    }
    targets
}

fn check_link(file: &Path, target: &str, root: &Path, cache: &mut HashMap<PathBuf, HashSet<String>>) -> Option<String> {
    if target.is_empty() || target.contains("://") || target.starts_with("mailto:") {
        return None;
    }
    let (path_part, anchor) = match target.split_once('#') {
        Some((path, anchor)) => (path, Some(anchor)),
        None => (target, None),
    };
    let resolved = if path_part.is_empty() {
        file.to_path_buf()
    } else if let Some(from_root) = path_part.strip_prefix('/') {
        root.join(from_root)
    } else {
        file.parent().expect("parent").join(path_part)
    };
    if !resolved.exists() {
        return Some(format!("{target}: no such file or folder"));
    }
    let anchor = anchor?;
    if resolved.extension().is_none_or(|e| e != "md") {
        return None;
    }
    let key = resolved.canonicalize().expect("canonical");
    let known = cache.entry(key).or_insert_with(|| anchors(&std::fs::read_to_string(&resolved).expect("read")));
    (!known.contains(anchor)).then(|| format!("{target}: no heading or anchor `#{anchor}` there"))
}

#[test]
fn every_relative_markdown_link_and_anchor_resolves() {
    let root = repo_root(env!("CARGO_MANIFEST_DIR"));
    let files = markdown_files(&root);
    assert!(files.iter().any(|f| f.ends_with("README.md")), "no README.md found under {}", root.display());
    let mut cache = HashMap::new();
    let mut broken = Vec::new();
    let mut checked = 0;
    for file in &files {
        let text = std::fs::read_to_string(file).expect("read markdown");
        for (number, line) in prose_lines(&text).iter().enumerate() {
            for target in link_targets(line) {
                checked += 1;
                if let Some(problem) = check_link(file, &target, &root, &mut cache) {
                    let shown = file.strip_prefix(&root).unwrap_or(file).display().to_string();
                    broken.push(format!("{shown}:{}: {problem}", number + 1));
                }
            }
        }
    }
    assert!(checked > 0, "no links found in {} Markdown files", files.len());
    assert!(broken.is_empty(), "{} broken link(s):\n{}", broken.len(), broken.join("\n"));
    println!("{checked} links in {} Markdown files resolve", files.len());
}

#[test]
fn the_checker_catches_broken_links_and_knows_github_slugs() {
    assert_eq!(slug("Ack modes (delivery.ack)"), "ack-modes-deliveryack");
    assert_eq!(slug("Dedup, rate limits and slow clients"), "dedup-rate-limits-and-slow-clients");
    let found = anchors("# Title\n## Examples\n```\n# not a heading\n```\n## Examples\n<a id=\"custom\"></a>\n");
    let expected: HashSet<String> = ["title", "examples", "examples-1", "custom"].map(str::to_owned).into();
    assert_eq!(found, expected);
    let root = repo_root(env!("CARGO_MANIFEST_DIR"));
    let readme = root.join("README.md");
    let mut cache = HashMap::new();
    assert!(check_link(&readme, "docs/no-such-page.md", &root, &mut cache).is_some());
    assert!(check_link(&readme, "#no-such-heading", &root, &mut cache).is_some());
    assert!(check_link(&readme, "https://example.com/offline", &root, &mut cache).is_none());
    assert_eq!(link_targets("see [a](x.md#y) and [b](<z.md> \"t\")"), ["x.md#y", "z.md"]);
}
