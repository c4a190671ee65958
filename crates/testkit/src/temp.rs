//! Paths in the temp directory that a test owns: removed when the test ends, passed or failed (a panicking test
//! still drops its guards), so that no run of the suite leaves `wxpm-*` files behind.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// A file or directory path under the temp directory, unique to this process and call; removed on drop.
pub struct TempPath(PathBuf);

impl TempPath {
    /// A fresh name (`wxpm-test-<what>-<pid>-<n>`); nothing is created.
    pub fn new(what: &str) -> TempPath {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        TempPath(std::env::temp_dir().join(format!("wxpm-test-{what}-{}-{n}", std::process::id())))
    }

    /// A fresh, empty directory.
    pub fn dir(what: &str) -> TempPath {
        let dir = TempPath::new(what);
        std::fs::create_dir(&dir.0).unwrap();
        dir
    }

    /// A file holding `contents`.
    pub fn file(what: &str, contents: &str) -> TempPath {
        let file = TempPath::new(what);
        std::fs::write(&file.0, contents).unwrap();
        file
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        if self.0.is_dir() {
            let _ = std::fs::remove_dir_all(&self.0);
        } else {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}
