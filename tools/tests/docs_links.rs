//! The user-facing documentation (README.md and docs/*.md) links only inside
//! the repository, every relative link reaches a file that exists (and, for
//! `#anchor`, a heading of that file, slugged as GitHub does), and no page
//! speaks the tracker's language (issue numbers, "the issue's" goals).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .to_path_buf()
}

/// README.md and every docs/*.md.
fn pages() -> Vec<PathBuf> {
    let mut pages = vec![root().join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .expect("docs/")
        .map(|e| e.expect("a docs entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    pages.extend(docs);
    pages
}

/// Lines outside fenced code blocks, with their numbers.
fn prose(text: &str) -> Vec<(usize, &str)> {
    let mut in_fence = false;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
            continue;
        }
        if !in_fence {
            out.push((i + 1, line));
        }
    }
    out
}

/// GitHub's anchor for a heading: lower case, punctuation other than `-`
/// and `_` removed, spaces to hyphens.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// Every anchor of a page, duplicates numbered as GitHub numbers them.
fn anchors(text: &str) -> Vec<String> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut out = Vec::new();
    for (_, line) in prose(text) {
        let Some(rest) = line.strip_prefix('#') else {
            continue;
        };
        let heading = rest.trim_start_matches('#');
        if !heading.starts_with(' ') {
            continue;
        }
        let s = slug(heading);
        let n = seen.entry(s.clone()).or_insert(0);
        out.push(if *n == 0 {
            s.clone()
        } else {
            format!("{s}-{n}")
        });
        *n += 1;
    }
    out
}

/// The targets of `[text](target)` links on a line (inline code skipped).
fn links(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_code = false;
    let bytes = line.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'`' => in_code = !in_code,
            b']' if !in_code && bytes.get(i + 1) == Some(&b'(') => {
                if let Some(end) = line[i + 2..].find(')') {
                    out.push(line[i + 2..i + 2 + end].to_string());
                    i += 2 + end;
                }
            }
            _ => {}
        }
        i += 1;
    }
    out
}

/// Every broken or outward link on `page`, as messages.
fn check_page(page: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(page).expect("read a page");
    let name = page
        .strip_prefix(root())
        .unwrap_or(page)
        .display()
        .to_string();
    let mut bad = Vec::new();
    for (n, line) in prose(&text) {
        for target in links(line) {
            let target = target.split_whitespace().next().unwrap_or("").to_string();
            if target.contains("://") || target.starts_with("mailto:") {
                bad.push(format!("{name}:{n}: leaves the repository: {target}"));
                continue;
            }
            let (path, anchor) = match target.split_once('#') {
                Some((p, a)) => (p, Some(a)),
                None => (target.as_str(), None),
            };
            let file = if path.is_empty() {
                page.to_path_buf()
            } else {
                page.parent().expect("a page's folder").join(path)
            };
            if !file.exists() {
                bad.push(format!("{name}:{n}: no such file: {target}"));
                continue;
            }
            if let Some(a) = anchor {
                let there = std::fs::read_to_string(&file).unwrap_or_default();
                if !anchors(&there).iter().any(|h| h == a) {
                    bad.push(format!("{name}:{n}: no heading for #{a} in {target}"));
                }
            }
        }
    }
    bad
}

#[test]
fn every_documentation_link_stays_inside_and_resolves() {
    let bad: Vec<String> = pages().iter().flat_map(|p| check_page(p)).collect();
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn documentation_speaks_no_tracker_language() {
    let forbidden = ["issue #", "issue's", "issues show", "target 20x", "(target"];
    let mut bad = Vec::new();
    for page in pages() {
        let text = std::fs::read_to_string(&page).expect("read a page");
        for (n, line) in text.lines().enumerate() {
            let lower = line.to_lowercase();
            for f in forbidden {
                if lower.contains(f) {
                    bad.push(format!("{}:{}: `{f}`: {line}", page.display(), n + 1));
                }
            }
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn the_checker_catches_a_broken_link_an_anchor_and_an_outward_link() {
    let dir = std::env::temp_dir().join(format!("smrnet-docs-links-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let page = dir.join("page.md");
    std::fs::write(
        &page,
        "# A title\n\n## Two words: `code`\n\n[ok](#two-words-code) [self](page.md#a-title)\n\
         [gone](missing.md) [no anchor](#nothing) [out](https://example.org/)\n\
         ```\n[in a fence](missing-too.md)\n```\n",
    )
    .unwrap();
    let bad = check_page(&page);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(bad.len(), 3, "{bad:#?}");
    assert!(bad[0].contains("missing.md"));
    assert!(bad[1].contains("#nothing"));
    assert!(bad[2].contains("leaves the repository"));
}
