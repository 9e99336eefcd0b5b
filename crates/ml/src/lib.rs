//! Plaintext machine learning for unseen: data loading, training and metrics.
//!
//! * [`table`]: numeric CSV tables with a header.
//! * [`linear`]: ordinary least squares with intercept, train/test split, RMSE and R^2,
//!   and the model file that the server loads.

mod error;
pub mod linear;
pub mod table;

pub use error::Error;

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Writes `bytes` to `path` atomically: a temporary file in the same folder, fsync, rename.
pub fn write_atomic(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
