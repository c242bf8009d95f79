//! `cargo xtask build-r`: R source tarballs that install with R, a C compiler, cargo and rustc
//! alone (no network, no checkout of this repository, no system NNG).
//!
//! For each package of [`PACKAGES`], the package directory is staged under `target/pkg/stage/`
//! (tracked and new files only, no hidden files), the workspace crates its Rust library needs are
//! copied into `src/rust/` with a generated Cargo workspace and a Cargo.lock pruned from the
//! repository's (same versions), their crates.io dependencies are vendored and compressed into
//! `src/rust/vendor.tar.xz`, and `R CMD build` writes `target/pkg/<name>_<version>.tar.gz`.
//! The package's `configure` sees `src/rust/vendor.tar.xz` and builds offline from it; the
//! staged `inst/AUTHORS` lists the vendored crates with their authors and licenses. Packages
//! build in order (nanonext, then mirai, which imports it); each tarball is installed into
//! `target/pkg/lib` for the builds after it, removed at the end.

mod authors;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use crate::{workspace_root, Result};

/// An R package whose compiled code is a Rust static library of this workspace.
struct RPackage {
    /// The R package's directory, relative to the workspace root.
    dir: &'static str,
    /// The workspace crate that the package links (a `staticlib`).
    rust_crate: &'static str,
    /// Workspace dependencies built without their default features in the package (the
    /// transport's `nng` feature: the R package uses the native backend only, so neither NNG's
    /// C sources nor a system libnng are needed).
    no_default_features: &'static [&'static str],
}

/// The packages `build-r` builds; one line per package.
const PACKAGES: &[RPackage] = &[
    RPackage {
        dir: "nanonext-r/rpkg",
        rust_crate: "nanonext-r",
        no_default_features: &["mirai-transport"],
    },
    RPackage {
        dir: "mirai-r/rpkg",
        rust_crate: "mirai-r",
        no_default_features: &["mirai-transport"],
    },
];

/// The release profile of the package build: what a user's install compiles, once, on at most
/// two jobs. No debug info (a smaller library), no cross-crate LTO (minutes less to build).
const PACKAGE_PROFILE: &str =
    "[profile.release]\nopt-level = 3\ndebug = false\nlto = false\ncodegen-units = 16\n";

/// `cargo xtask build-r`.
pub(crate) fn command(args: &[String]) -> Result<ExitCode> {
    if let Some(a) = args.first() {
        return Err(format!("unknown option '{a}' (see `cargo xtask help`)").into());
    }
    let root = workspace_root();
    let out = root.join("target").join("pkg");
    // `R CMD build` installs a package to build its vignettes, which needs the packages it
    // imports: each tarball built is installed here for the ones after it (mirai imports
    // nanonext).
    let lib = out.join("lib");
    if lib.exists() {
        std::fs::remove_dir_all(&lib)
            .map_err(|e| format!("cannot remove {}: {e}", lib.display()))?;
    }
    std::fs::create_dir_all(&lib)?;
    for (i, p) in PACKAGES.iter().enumerate() {
        let tarball = build(&root, &out, &lib, p)?;
        println!("built {}", tarball.display());
        if i + 1 < PACKAGES.len() {
            println!(
                "installing {} into {} for the packages after it",
                tarball.display(),
                lib.display()
            );
            run(Command::new("R")
                .args(["CMD", "INSTALL", "--no-test-load", "--library"])
                .arg(&lib)
                .arg(&tarball)
                .env("R_LIBS", r_libs(&lib))
                .stdout(Stdio::null()))?;
        }
    }
    std::fs::remove_dir_all(&lib)?;
    Ok(ExitCode::SUCCESS)
}

/// `R_LIBS` with `lib` first.
fn r_libs(lib: &Path) -> std::ffi::OsString {
    let mut v = lib.as_os_str().to_os_string();
    if let Some(prev) = std::env::var_os("R_LIBS").filter(|p| !p.is_empty()) {
        v.push(":");
        v.push(prev);
    }
    v
}

fn build(root: &Path, out: &Path, lib: &Path, p: &RPackage) -> Result<PathBuf> {
    let src = root.join(p.dir);
    let desc = read(&src.join("DESCRIPTION"))?;
    let name = description_field(&desc, "Package").ok_or("DESCRIPTION has no Package field")?;
    let version = description_field(&desc, "Version").ok_or("DESCRIPTION has no Version field")?;
    let stage = out.join("stage").join(&name);
    if stage.exists() {
        std::fs::remove_dir_all(&stage)
            .map_err(|e| format!("cannot remove {}: {e}", stage.display()))?;
    }
    println!("staging {} in {}", p.dir, stage.display());
    for rel in package_files(root, p.dir)? {
        copy_file(&src.join(&rel), &stage.join(&rel))?;
    }
    let rust = stage.join("src").join("rust");
    let crates = path_crates(root, p.rust_crate)?;
    for dir in &crates {
        copy_crate(root, dir, &rust)?;
    }
    let members: Vec<String> = crates.iter().map(|d| package_dir_name(d)).collect();
    let root_manifest = read(&root.join("Cargo.toml"))?;
    std::fs::write(
        rust.join("Cargo.toml"),
        workspace_manifest(&root_manifest, &members, p.no_default_features),
    )?;
    std::fs::copy(root.join("Cargo.lock"), rust.join("Cargo.lock"))?;
    let manifest = rust.join("Cargo.toml");
    // Prunes the copied lock to this workspace, keeping every version as locked.
    run(cargo()
        .args(["metadata", "--format-version", "1", "--manifest-path"])
        .arg(&manifest)
        .stdout(Stdio::null()))?;
    println!("vendoring the crates.io dependencies");
    run(cargo()
        .args(["vendor", "--locked", "--quiet", "--manifest-path"])
        .arg(&manifest)
        .arg(rust.join("vendor"))
        .stdout(Stdio::null()))?;
    prune_vendor(&rust.join("vendor"))?;
    let authors = authors::authors_file(&name, &rust.join("vendor"))?;
    std::fs::create_dir_all(stage.join("inst"))?;
    std::fs::write(stage.join("inst").join("AUTHORS"), authors)?;
    // Reproducible archive: sorted names, fixed times and owners.
    run(Command::new("tar")
        .current_dir(&rust)
        .args([
            "--sort=name",
            "--mtime=2000-01-01 00:00Z",
            "--owner=0",
            "--group=0",
            "--numeric-owner",
            "-cJf",
            "vendor.tar.xz",
            "vendor",
        ])
        .env("XZ_OPT", "-9"))?;
    std::fs::remove_dir_all(rust.join("vendor"))?;
    println!("R CMD build {}", stage.display());
    run(Command::new("R")
        .current_dir(out)
        .args(["CMD", "build", "--no-manual"])
        .arg(&stage)
        .env("R_LIBS", r_libs(lib)))?;
    Ok(out.join(format!("{name}_{version}.tar.gz")))
}

/// Empties the vendored crates that a Linux build never compiles and whose size dominates the
/// tarball: the Windows API bindings (`windows-sys*`: an empty `src/lib.rs`), the Windows import
/// libraries (`windows_*`: no `lib/`), and NNG's C sources in `nng-sys` (the package builds
/// without the transport's `nng` feature). Cargo still resolves them from their manifests; their
/// per-file checksums are dropped (the package checksum, which Cargo.lock pins, stays).
fn prune_vendor(vendor: &Path) -> Result<()> {
    for entry in std::fs::read_dir(vendor)? {
        let dir = entry?.path();
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let emptied: &[&str] = if name.starts_with("windows-sys") {
            &["src"]
        } else if name.starts_with("windows_") {
            &["lib"]
        } else if name.starts_with("nng-sys") {
            &["nng"]
        } else {
            continue;
        };
        for sub in emptied {
            let path = dir.join(sub);
            if path.exists() {
                std::fs::remove_dir_all(&path)?;
            }
        }
        if name.starts_with("windows-sys") {
            std::fs::create_dir_all(dir.join("src"))?;
            std::fs::write(
                dir.join("src").join("lib.rs"),
                "// Emptied by `cargo xtask build-r`: Windows-only, never compiled by this package.\n",
            )?;
        }
        let sums = dir.join(".cargo-checksum.json");
        let text = read(&sums)?;
        std::fs::write(&sums, emptied_checksums(&text)?)?;
    }
    Ok(())
}

/// A `.cargo-checksum.json` without its per-file checksums.
fn emptied_checksums(text: &str) -> Result<String> {
    let start = text
        .find("\"package\":")
        .ok_or("a vendored crate's .cargo-checksum.json has no package checksum")?;
    Ok(format!("{{\"files\":{{}},{}", &text[start..]))
}

fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

fn run(cmd: &mut Command) -> Result<()> {
    let status = cmd
        .status()
        .map_err(|e| format!("cannot run {:?}: {e}", cmd.get_program()))?;
    if !status.success() {
        return Err(format!("{cmd:?} failed ({status})").into());
    }
    Ok(())
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()).into())
}

fn copy_file(from: &Path, to: &Path) -> Result<()> {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::copy(from, to)
        .map_err(|e| format!("cannot copy {} to {}: {e}", from.display(), to.display()))?;
    Ok(())
}

/// The value of a DESCRIPTION field (single-line fields only).
fn description_field(desc: &str, field: &str) -> Option<String> {
    desc.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .map(|v| v.trim().to_string())
}

/// The package's files to ship, relative to its directory: tracked and new (not ignored) files
/// that exist, without hidden files (R CMD check flags them) and without build products.
fn package_files(root: &Path, dir: &str) -> Result<Vec<PathBuf>> {
    let out = Command::new("git")
        .current_dir(root.join(dir))
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
            ".",
        ])
        .output()
        .map_err(|e| format!("cannot run git (build-r lists the package's files with it): {e}"))?;
    if !out.status.success() {
        return Err(format!("git ls-files failed in {dir}").into());
    }
    let base = root.join(dir);
    let mut files: Vec<PathBuf> = out
        .stdout
        .split(|&b| b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| PathBuf::from(String::from_utf8_lossy(s).into_owned()))
        .filter(|p| shipped(p) && base.join(p).is_file())
        .collect();
    files.sort();
    files.dedup();
    Ok(files)
}

fn shipped(rel: &Path) -> bool {
    let hidden = rel.components().any(|c| {
        let s = c.as_os_str().to_string_lossy();
        s.starts_with('.') && s != ".Rbuildignore"
    });
    let s = rel.to_string_lossy();
    let product = s == "src/Makevars"
        || s.starts_with("src/rust/")
        || [".o", ".so", ".a", ".dll"].iter().any(|x| s.ends_with(x));
    !hidden && !product
}

/// The workspace crates (directories relative to the root; "" for the root crate) that `krate`
/// needs to build, itself included, from `cargo tree`.
fn path_crates(root: &Path, krate: &str) -> Result<Vec<String>> {
    let out = cargo()
        .current_dir(root)
        .args([
            "tree",
            "-p",
            krate,
            "-e",
            "normal,build",
            "--prefix",
            "none",
            "-f",
            "{p}",
        ])
        .output()
        .map_err(|e| format!("cannot run cargo tree: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cargo tree -p {krate} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let crates = workspace_dirs(&text, &root.to_string_lossy());
    if crates.is_empty() {
        return Err(format!("cargo tree found no workspace crate for {krate}").into());
    }
    Ok(crates)
}

/// The directories of `cargo tree` lines that are path crates under `root`.
fn workspace_dirs(tree: &str, root: &str) -> Vec<String> {
    let mut dirs = BTreeSet::new();
    for line in tree.lines() {
        let Some(start) = line.find(" (") else {
            continue;
        };
        let rest = &line[start + 2..];
        let Some(end) = rest.find(')') else { continue };
        let path = &rest[..end];
        if let Some(rel) = path.strip_prefix(root) {
            if rel.is_empty() || rel.starts_with('/') {
                dirs.insert(rel.trim_start_matches('/').to_string());
            }
        }
    }
    dirs.into_iter().collect()
}

/// Where a workspace crate lives in the package's `src/rust`: its own directory name, and
/// `mirai` for the root crate.
fn package_dir_name(dir: &str) -> String {
    if dir.is_empty() {
        "mirai".into()
    } else {
        dir.to_string()
    }
}

/// Copies a crate's manifest (without what only tests, benchmarks and examples use), `src/` and
/// `build.rs`.
fn copy_crate(root: &Path, dir: &str, rust: &Path) -> Result<()> {
    let from = root.join(dir);
    let to = rust.join(package_dir_name(dir));
    std::fs::create_dir_all(&to)?;
    let manifest = read(&from.join("Cargo.toml"))?;
    std::fs::write(to.join("Cargo.toml"), crate_manifest(&manifest))?;
    copy_tree(&from.join("src"), &to.join("src"))?;
    if from.join("build.rs").is_file() {
        copy_file(&from.join("build.rs"), &to.join("build.rs"))?;
    }
    Ok(())
}

fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    for entry in
        std::fs::read_dir(from).map_err(|e| format!("cannot read {}: {e}", from.display()))?
    {
        let entry = entry?;
        let path = entry.path();
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_tree(&path, &target)?;
        } else {
            copy_file(&path, &target)?;
        }
    }
    Ok(())
}

/// A manifest split into sections: the header line (`""` before the first) and its lines.
fn sections(manifest: &str) -> Vec<(String, Vec<&str>)> {
    let mut out: Vec<(String, Vec<&str>)> = vec![(String::new(), Vec::new())];
    for line in manifest.lines() {
        let t = line.trim();
        if t.starts_with('[') {
            out.push((t.to_string(), Vec::new()));
        } else if let Some(last) = out.last_mut() {
            last.1.push(line);
        }
    }
    out
}

fn header_name(header: &str) -> &str {
    header.trim_matches(|c| c == '[' || c == ']').trim()
}

/// A crate's manifest for the package: without dev-dependencies, benchmarks, tests, examples,
/// and (for the root crate) without the workspace and profile sections.
fn crate_manifest(manifest: &str) -> String {
    let mut out = String::new();
    for (header, lines) in sections(manifest) {
        let name = header_name(&header);
        let dropped = name.ends_with("dev-dependencies")
            || ["bench", "test", "example"].contains(&name)
            || name == "workspace"
            || name.starts_with("workspace.")
            || name.starts_with("profile");
        if dropped {
            continue;
        }
        if !header.is_empty() {
            out.push_str(&header);
            out.push('\n');
        }
        for l in lines {
            out.push_str(l);
            out.push('\n');
        }
    }
    out
}

/// The package's workspace manifest, from the repository's: its `[workspace.*]` sections, path
/// dependencies limited to the copied crates (the root crate's path renamed), the named ones
/// without default features, and the package's release profile.
fn workspace_manifest(root: &str, members: &[String], no_default: &[&str]) -> String {
    let mut out = String::from(
        "# Generated by `cargo xtask build-r`: the workspace crates this R package links, copied\n\
         # from the mirai repository, with their crates.io dependencies in vendor.tar.xz.\n\
         [workspace]\nresolver = \"2\"\nmembers = [",
    );
    let quoted: Vec<String> = members.iter().map(|m| format!("\"{m}\"")).collect();
    out.push_str(&quoted.join(", "));
    out.push_str("]\n");
    for (header, lines) in sections(root) {
        let name = header_name(&header);
        if !name.starts_with("workspace.") {
            continue;
        }
        out.push('\n');
        out.push_str(&header);
        out.push('\n');
        for l in lines {
            if name == "workspace.dependencies" {
                if let Some(l) = workspace_dependency(l, members, no_default) {
                    out.push_str(&l);
                    out.push('\n');
                }
            } else {
                out.push_str(l);
                out.push('\n');
            }
        }
    }
    out.push('\n');
    out.push_str(PACKAGE_PROFILE);
    out
}

/// One `[workspace.dependencies]` line for the package, `None` to drop it (a path crate that
/// is not copied).
fn workspace_dependency(line: &str, members: &[String], no_default: &[&str]) -> Option<String> {
    let Some(start) = line.find("path = \"") else {
        return Some(line.to_string());
    };
    let rest = &line[start + 8..];
    let end = rest.find('"')?;
    let path = &rest[..end];
    let dir = package_dir_name(if path == "." { "" } else { path });
    if !members.contains(&dir) {
        return None;
    }
    let mut l = format!("{}path = \"{dir}\"{}", &line[..start], &rest[end + 1..]);
    let dep = line.split('=').next().unwrap_or("").trim();
    if no_default.contains(&dep) {
        l = l.replacen("{ ", "{ default-features = false, ", 1);
    }
    Some(l)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workspace_dirs_keep_path_crates_under_the_root_once() {
        let tree = "mirai-r v0.1.0 (/ws/mirai-r)\nmirai v0.1.0 (/ws)\nlog v0.4.1\n\
                    mirai-proto v0.1.0 (/ws/mirai-proto)\nmirai-proto v0.1.0 (/ws/mirai-proto) (*)\n\
                    other v1.0.0 (/wsx/other)\n";
        assert_eq!(workspace_dirs(tree, "/ws"), ["", "mirai-proto", "mirai-r"]);
    }

    #[test]
    fn crate_manifest_drops_test_only_and_workspace_sections() {
        let m = "[workspace]\nmembers = [\".\"]\n\n[workspace.package]\nversion = \"0.1.0\"\n\
                 [package]\nname = \"x\"\n[dependencies]\na = \"1\"\n[dev-dependencies]\nb = \"1\"\n\
                 [[bench]]\nname = \"l\"\n[target.'cfg(unix)'.dev-dependencies]\nc = \"1\"\n\
                 [[bin]]\nname = \"d\"\n[profile.release]\nlto = true\n";
        let out = crate_manifest(m);
        assert_eq!(
            out,
            "[package]\nname = \"x\"\n[dependencies]\na = \"1\"\n[[bin]]\nname = \"d\"\n"
        );
    }

    #[test]
    fn workspace_manifest_rewrites_paths_and_features() {
        let root = "[workspace]\nmembers = [\"a\"]\n[workspace.package]\nrust-version = \"1.80\"\n\
                    [workspace.dependencies]\nmirai-t = { path = \"mirai-t\", version = \"0.1\" }\n\
                    mirai = { path = \".\", version = \"0.1\" }\ngone = { path = \"gone\" }\nlog = \"0.4\"\n\
                    [package]\nname = \"mirai\"\n[profile.release]\nlto = \"thin\"\n";
        let members = vec!["mirai".to_string(), "mirai-t".to_string()];
        let out = workspace_manifest(root, &members, &["mirai-t"]);
        assert!(out.contains("members = [\"mirai\", \"mirai-t\"]\n"));
        assert!(out.contains("[workspace.package]\nrust-version = \"1.80\"\n"));
        assert!(out.contains(
            "mirai-t = { default-features = false, path = \"mirai-t\", version = \"0.1\" }\n"
        ));
        assert!(out.contains("mirai = { path = \"mirai\", version = \"0.1\" }\n"));
        assert!(!out.contains("gone"));
        assert!(out.contains("log = \"0.4\"\n"));
        assert!(!out.contains("[package]") && !out.contains("thin"));
        assert!(out.ends_with(PACKAGE_PROFILE));
    }

    #[test]
    fn checksums_keep_only_the_package_sum() {
        let t = r#"{"files":{"a.rs":"00","b":"11"},"package":"ae13"}"#;
        assert_eq!(
            emptied_checksums(t).unwrap(),
            r#"{"files":{},"package":"ae13"}"#
        );
        assert!(emptied_checksums("{}").is_err());
    }

    #[test]
    fn shipped_files_exclude_hidden_files_and_build_products() {
        assert!(shipped(Path::new("R/mirai.R")));
        assert!(shipped(Path::new(".Rbuildignore")));
        assert!(!shipped(Path::new(".gitignore")));
        assert!(!shipped(Path::new("src/init.o")));
        assert!(!shipped(Path::new("src/Makevars")));
        assert!(!shipped(Path::new("src/rust/target/x")));
    }

    #[test]
    fn description_fields_and_the_rust_version_agree() {
        let root = workspace_root();
        let manifest = read(&root.join("Cargo.toml")).unwrap();
        let rust_version = manifest
            .lines()
            .find_map(|l| l.strip_prefix("rust-version = \""))
            .and_then(|v| v.strip_suffix('"'))
            .unwrap();
        for (p, name) in PACKAGES.iter().zip(["nanonext", "mirai"]) {
            let desc = read(&root.join(p.dir).join("DESCRIPTION")).unwrap();
            assert_eq!(description_field(&desc, "Package").as_deref(), Some(name));
            // The configure script finds the crate by the package's name.
            assert_eq!(p.rust_crate, format!("{name}-r"));
            let sysreq = description_field(&desc, "SystemRequirements").unwrap();
            assert!(
                sysreq.contains(&format!("rustc >= {rust_version}")),
                "SystemRequirements '{sysreq}' must name rustc >= {rust_version} (rust-version)"
            );
        }
    }
}
