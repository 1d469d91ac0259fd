//! Embeds every file under templates/ and migrations/ into the binary, so `tidemark` runs
//! from anywhere and a new file cannot be forgotten in a hand-kept list.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir).expect("read dir").flatten().map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            files(&p, out);
        } else if p.extension().is_some_and(|e| e == "sql") {
            out.push(p);
        }
    }
}

fn embed(root: &Path, name: &str, code: &mut String) {
    let base = root.join(name);
    println!("cargo:rerun-if-changed={}", base.display());
    let mut list = Vec::new();
    files(&base, &mut list);
    let _ = writeln!(code, "pub static {}: &[(&str, &str)] = &[", name.to_uppercase());
    for p in list {
        let rel = p.strip_prefix(&base).expect("prefix").to_string_lossy().replace('\\', "/");
        let _ = writeln!(code, "    ({rel:?}, include_str!({:?})),", p.display().to_string());
    }
    code.push_str("];\n");
}

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("manifest dir"));
    let mut code = String::new();
    embed(&root, "templates", &mut code);
    embed(&root, "migrations", &mut code);
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("out dir")).join("embedded.rs");
    std::fs::write(out, code).expect("write embedded.rs");
}
