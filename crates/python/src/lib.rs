//! The native half of the `unseen` Python package (`unseen._native`): python-paillier-compatible
//! Paillier on numpy arrays, with the GIL released and the work spread over threads, and the
//! encrypted-inference client. The Python half (`python/unseen`) adds phe conversions, the
//! exceptions and the documentation users read.

use pyo3::prelude::*;

mod client;
mod paillier;

/// Runs the `unseen` command line in this process (`argv` with the program name first), without
/// the GIL; returns its exit status. `python -m unseen ...` is this.
#[pyfunction]
fn cli_main(py: Python<'_>, argv: Vec<String>) -> u8 {
    py.detach(|| unseen_cli::run_args(argv))
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<paillier::PublicKey>()?;
    m.add_class::<paillier::PrivateKey>()?;
    m.add_class::<paillier::EncryptedNumber>()?;
    m.add_class::<paillier::EncryptedArray>()?;
    m.add_function(wrap_pyfunction!(paillier::generate_keypair, m)?)?;
    m.add_function(wrap_pyfunction!(paillier::load_keys, m)?)?;
    m.add_function(wrap_pyfunction!(paillier::read_keys, m)?)?;
    m.add_function(wrap_pyfunction!(paillier::read_public_jwk, m)?)?;
    m.add_function(wrap_pyfunction!(paillier::read_encrypted_number, m)?)?;
    m.add_class::<client::Client>()?;
    m.add_function(wrap_pyfunction!(cli_main, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
