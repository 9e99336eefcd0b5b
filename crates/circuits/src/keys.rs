//! The evaluation keys a client makes for one circuit and sends once, as one object.

use std::sync::Arc;

use unseen_ckks::{Error, GaloisKeys, Parameters, RelinKey};

/// Magic bytes of a serialized key bundle.
pub const MAGIC: [u8; 4] = *b"UNEK";
/// Format version of the bundle (the keys inside carry their own).
pub const VERSION: u8 = 1;

/// A relinearisation key and the Galois keys of a circuit.
#[derive(Debug, Clone)]
pub struct EvaluationKeys {
    /// For the squares.
    pub relin: RelinKey,
    /// For the rotations, each made for the level it is first needed at.
    pub galois: GaloisKeys,
}

impl EvaluationKeys {
    /// Bytes the parsed keys occupy in memory (what a server holds per loaded key set).
    pub fn memory_bytes(&self) -> usize {
        self.relin.memory_bytes() + self.galois.memory_bytes()
    }

    /// `MAGIC`, `VERSION`, the relinearisation key's length (u64 LE), that key, the Galois keys.
    pub fn to_bytes(&self) -> Vec<u8> {
        let relin = self.relin.to_bytes();
        let galois = self.galois.to_bytes();
        let mut out = Vec::with_capacity(13 + relin.len() + galois.len());
        out.extend_from_slice(&MAGIC);
        out.push(VERSION);
        out.extend_from_slice(&(relin.len() as u64).to_le_bytes());
        out.extend_from_slice(&relin);
        out.extend_from_slice(&galois);
        out
    }

    /// Loads a bundle made for `params`; any truncated, corrupt or mismatched input is an error.
    pub fn from_bytes(data: &[u8], params: &Arc<Parameters>) -> Result<Self, Error> {
        let bad = |m: &str| Error::Deserialize(format!("evaluation keys: {m}"));
        if data.len() < 13 || data[..4] != MAGIC {
            return Err(bad("not an unseen evaluation-key bundle"));
        }
        if data[4] != VERSION {
            return Err(bad(&format!(
                "unsupported bundle version {} (expected {VERSION})",
                data[4]
            )));
        }
        let mut len = [0u8; 8];
        len.copy_from_slice(&data[5..13]);
        let relin_len = u64::from_le_bytes(len);
        let rest = &data[13..];
        if relin_len > rest.len() as u64 {
            return Err(bad("truncated relinearisation key"));
        }
        let (relin, galois) = rest.split_at(relin_len as usize);
        Ok(Self {
            relin: RelinKey::from_bytes(relin, params)?,
            galois: GaloisKeys::from_bytes(galois, params)?,
        })
    }

    /// The parameters the keys were made for.
    pub fn params(&self) -> &Arc<Parameters> {
        self.relin.params()
    }
}
