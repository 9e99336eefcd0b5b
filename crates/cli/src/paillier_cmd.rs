//! pheutil-compatible file tools: public JWK extraction, encryption and decryption of
//! `{"v": ..., "e": ...}` files.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use rand_core::OsRng;
use unseen_client::keyfile;
use unseen_client::salary::parse_features;
use unseen_paillier::formats::{
    public_jwk, read_encrypted_number, read_public_jwk, write_encrypted_number,
};
use unseen_paillier::{EncryptedNumber, PublicKey, Randomness};

#[derive(Debug, Subcommand)]
pub enum PaillierCommand {
    /// Write the public half of a key file as a pheutil public JWK.
    Extract(ExtractArgs),
    /// Encrypt one number with a public key (pheutil `encrypt` output).
    Encrypt(EncryptArgs),
    /// Decrypt a pheutil encrypted-number file.
    Decrypt(DecryptArgs),
}

#[derive(Debug, Args)]
pub struct ExtractArgs {
    /// Key file (keys.json or pheutil private JWK).
    #[arg(long)]
    keys: PathBuf,
}

#[derive(Debug, Args)]
pub struct EncryptArgs {
    /// Public key: pheutil public JWK, or any key file.
    #[arg(long)]
    public_key: PathBuf,
    /// The number (an integer stays an integer, as in phe).
    #[arg(long, allow_hyphen_values = true)]
    value: String,
    /// Random factor: fixed-base (Damgard-Jurik-Nielsen) or standard.
    #[arg(long, default_value = "fixed-base")]
    randomness: Randomness,
}

#[derive(Debug, Args)]
pub struct DecryptArgs {
    /// Key file with the private key.
    #[arg(long)]
    keys: PathBuf,
    /// Encrypted-number JSON file.
    #[arg(long)]
    ciphertext: PathBuf,
}

fn read_small(path: &Path) -> Result<String> {
    let meta = std::fs::metadata(path).with_context(|| path.display().to_string())?;
    if meta.len() > 1 << 20 {
        bail!("{}: larger than 1 MiB", path.display());
    }
    std::fs::read_to_string(path).with_context(|| path.display().to_string())
}

fn load_public(path: &Path) -> Result<Arc<PublicKey>> {
    let text = read_small(path)?;
    #[derive(serde::Deserialize)]
    struct Probe {
        kty: Option<String>,
        p: Option<String>,
    }
    let probe: Probe = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a JSON key file", path.display()))?;
    if probe.kty.is_some() && probe.p.is_none() {
        return read_public_jwk(&text).with_context(|| path.display().to_string());
    }
    Ok(keyfile::load(path)?.public_key().clone())
}

/// Runs a `paillier` subcommand.
pub fn run(cmd: PaillierCommand) -> Result<()> {
    match cmd {
        PaillierCommand::Extract(a) => {
            let pk = keyfile::load(&a.keys)?.public_key().clone();
            println!(
                "{}",
                public_jwk(&pk, "Paillier public key extracted by unseen")
            );
        }
        PaillierCommand::Encrypt(a) => {
            let pk = load_public(&a.public_key)?;
            let values = parse_features(&a.value)?;
            let [value] = values.as_slice() else {
                bail!("give exactly one --value")
            };
            let x = EncryptedNumber::encrypt(&pk, value, a.randomness, &mut OsRng)?;
            println!("{}", write_encrypted_number(&x));
        }
        PaillierCommand::Decrypt(a) => {
            let sk = keyfile::load_private(&a.keys)?;
            let text = read_small(&a.ciphertext)?;
            let x = read_encrypted_number(&text, sk.public_key())
                .with_context(|| a.ciphertext.display().to_string())?;
            println!("{}", sk.decrypt(&x)?);
        }
    }
    Ok(())
}
