//! `unseen`: private machine-learning inference on encrypted data.

fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(unseen_cli::run_args(std::env::args_os()))
}
