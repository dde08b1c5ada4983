//! Reading inputs (`-` is standard input) and writing outputs: regular files atomically, `-`
//! to standard output, and into an existing pipe or device (`/dev/stdout`, a FIFO) as it is.

use anyhow::{Context, Result};
use std::io::{Read, Write};
use std::path::Path;

/// Whether `path` is `-`, standard input or output.
pub fn is_std(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// Where an output `path` goes, for a status line: `standard output` for `-`, else the path.
pub fn output_name(path: &Path) -> String {
    if is_std(path) {
        "standard output".to_string()
    } else {
        path.display().to_string()
    }
}

/// The bytes of `path`, or of standard input for `-`; an error names the file.
pub fn read_input(path: &Path) -> Result<Vec<u8>> {
    if is_std(path) {
        let mut v = Vec::new();
        std::io::stdin()
            .lock()
            .read_to_end(&mut v)
            .context("reading standard input")?;
        return Ok(v);
    }
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

/// [`read_input`], a large regular file read in `threads` parts at once (each part's pages
/// first touched by the thread that reads it); the same bytes. A file that changes size while
/// it is read, or a part that fails, is read again whole by `read_input`.
pub fn read_input_on(path: &Path, threads: usize) -> Result<Vec<u8>> {
    #[cfg(unix)]
    if threads > 1 && !is_std(path) {
        if let Some(v) = read_parts(path, threads) {
            return Ok(v);
        }
    }
    #[cfg(not(unix))]
    let _ = threads; // one read elsewhere
    read_input(path)
}

/// The file at `path` in `threads` parts at once; `None` if it is not a regular file of at
/// least 4 MiB, or any read falls short.
#[cfg(unix)]
fn read_parts(path: &Path, threads: usize) -> Option<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    let file = std::fs::File::open(path).ok()?;
    let meta = file.metadata().ok()?;
    let n = usize::try_from(meta.len()).ok()?;
    if !meta.is_file() || n < 4 << 20 {
        return None;
    }
    let mut buf = vec![0u8; n];
    let part = n.div_ceil(threads);
    let ok = std::thread::scope(|s| {
        let handles: Vec<_> = buf
            .chunks_mut(part)
            .enumerate()
            .map(|(i, chunk)| {
                let file = &file;
                s.spawn(move || file.read_exact_at(chunk, (i * part) as u64).is_ok())
            })
            .collect();
        handles.into_iter().all(|h| h.join().unwrap_or(false))
    });
    // Nothing past the length read: the file did not grow meanwhile.
    let at_end = file.read_at(&mut [0u8], n as u64).ok()? == 0;
    (ok && at_end).then_some(buf)
}

/// Whether `path` is the file standard output goes to (`/dev/stdout` when it is redirected to
/// a file): writing to it through a descriptor of its own would overwrite what standard
/// output writes, so it is written through standard output.
#[cfg(unix)]
fn is_stdout(path: &Path) -> bool {
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;
    let Ok(target) = std::fs::metadata(path) else {
        return false;
    };
    let stdout = std::io::stdout();
    let Ok(fd) = stdout.as_fd().try_clone_to_owned() else {
        return false;
    };
    std::fs::File::from(fd)
        .metadata()
        .is_ok_and(|m| m.dev() == target.dev() && m.ino() == target.ino())
}

#[cfg(not(unix))]
fn is_stdout(_: &Path) -> bool {
    false
}

/// Writes `bytes` to `path`: `-` is standard output, and so is the file standard output goes
/// to. An existing path that is not a regular
/// file (a pipe, a terminal, `/dev/null`), or is a symbolic link (`/dev/stdout` links to the
/// process's descriptor, whatever that is), is opened and written into, never replaced.
/// Otherwise the write is atomic: into a temporary file in the same directory, flushed to
/// disk, then renamed over `path`; a failure at any point leaves an existing `path` untouched
/// and removes the temporary file. Creates the parent directory if needed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    if is_std(path) || is_stdout(path) {
        let mut out = std::io::stdout().lock();
        return out
            .write_all(bytes)
            .and_then(|()| out.flush())
            .context("writing to standard output");
    }
    let link = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
    let special = std::fs::metadata(path).is_ok_and(|m| !m.is_file() && !m.is_dir());
    if link || special {
        return std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .and_then(|mut f| f.write_all(bytes).and_then(|()| f.flush()))
            .with_context(|| format!("writing {}", path.display()));
    }
    let name = path
        .file_name()
        .with_context(|| format!("{}: not a file name", path.display()))?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => Path::new(".").to_path_buf(),
    };
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("creating directory {}", dir.display()))?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("writing {}", path.display()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_atomically_and_cleans_up() {
        let dir = std::env::temp_dir().join(format!("flow-train-atomic-{}", std::process::id()));
        let p = dir.join("sub").join("a.bin");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        let left: Vec<_> = std::fs::read_dir(p.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, vec![std::ffi::OsString::from("a.bin")]);
        // A target that cannot be replaced (a directory) fails and leaves no temp file.
        assert!(write_atomic(&dir.join("sub"), b"x").is_err());
        let n = std::fs::read_dir(&dir).unwrap().count();
        assert_eq!(n, 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A symbolic link is written through, not replaced by a regular file.
    #[cfg(unix)]
    #[test]
    fn writes_through_links() {
        let dir = std::env::temp_dir().join(format!("flow-train-link-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (target, link) = (dir.join("target.csv"), dir.join("link.csv"));
        std::fs::write(&target, b"old, longer than the new text").unwrap();
        std::os::unix::fs::symlink(&target, &link).unwrap();
        write_atomic(&link, b"new").unwrap();
        assert!(std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read(&target).unwrap(), b"new");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
