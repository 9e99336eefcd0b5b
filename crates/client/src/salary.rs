//! One encrypted prediction: encrypt the features, send them, decrypt the answer.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use rand_core::OsRng;
use unseen_paillier::formats::read_encrypted_number;
use unseen_paillier::{Decoded, EncryptedNumber, Integer, PrivateKey, Randomness, Scalar};
use unseen_wire::framing::Framer;
use unseen_wire::salary::{parse_legacy_reply, PredictRequest};

use crate::Error;

/// Largest reply accepted.
const MAX_REPLY: usize = 1 << 20;
/// Network timeout for connecting, sending and receiving.
const TIMEOUT: Duration = Duration::from_secs(60);

/// Where the server is and which protocol it speaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Server {
    /// The HTTP API at this base URL (`http://host:port` or `https://host:port`).
    Http(String),
    /// The legacy TCP protocol at `host:port`.
    Legacy(String),
}

impl std::str::FromStr for Server {
    type Err = String;
    /// `http://host:port` or `https://host:port` for HTTP; `tcp://host:port` or a bare
    /// `host:port` for legacy TCP.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(scheme) = ["http://", "https://"]
            .into_iter()
            .find(|p| s.starts_with(p))
        {
            let rest = s[scheme.len()..].trim_end_matches('/');
            if rest.is_empty() {
                return Err(format!("'{s}' has no host"));
            }
            Ok(Server::Http(format!("{scheme}{rest}")))
        } else {
            let addr = s.strip_prefix("tcp://").unwrap_or(s);
            if addr
                .rsplit_once(':')
                .is_none_or(|(h, p)| h.is_empty() || p.parse::<u16>().is_err())
            {
                return Err(format!(
                    "'{s}' is not http(s)://HOST:PORT, tcp://HOST:PORT or HOST:PORT"
                ));
            }
            Ok(Server::Legacy(addr.to_string()))
        }
    }
}

impl std::fmt::Display for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Server::Http(u) => write!(f, "{u}"),
            Server::Legacy(a) => write!(f, "tcp://{a}"),
        }
    }
}

/// Parses `24,4,6,1` into scalars: integers stay integers (exponent 0, as phe encodes Python
/// ints), anything else is a float.
pub fn parse_features(text: &str) -> Result<Vec<Scalar>, Error> {
    text.split(',')
        .map(|s| {
            let s = s.trim();
            if let Ok(i) = s.parse::<i64>() {
                return Ok(Scalar::Int(Integer::from(i)));
            }
            match s.parse::<f64>() {
                Ok(f) if f.is_finite() => Ok(Scalar::Float(f)),
                _ => Err(Error::Input(format!(
                    "feature '{s}' is not a finite number"
                ))),
            }
        })
        .collect()
}

/// The outcome of one prediction with its costs.
#[derive(Debug, Clone)]
pub struct Prediction {
    /// The decrypted prediction.
    pub value: Decoded,
    /// Time to encrypt the features.
    pub encrypt: Duration,
    /// Time from sending the request to receiving the full reply.
    pub round_trip: Duration,
    /// Time to decrypt the reply.
    pub decrypt: Duration,
    /// Request bytes sent.
    pub bytes_sent: usize,
    /// Reply bytes received.
    pub bytes_received: usize,
}

/// Encrypts `features`, asks `server` to evaluate model `model`, and decrypts the reply.
pub fn predict(
    server: &Server,
    model: &str,
    sk: &PrivateKey,
    features: &[Scalar],
) -> Result<Prediction, Error> {
    let t0 = Instant::now();
    let encrypted = features
        .iter()
        .map(|x| {
            EncryptedNumber::encrypt_with_private_key(sk, x, Randomness::FixedBase, &mut OsRng)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let body = PredictRequest::to_json(&encrypted);
    let encrypt = t0.elapsed();
    let t1 = Instant::now();
    let (reply_len, result) = match server {
        Server::Http(base) => send_http(base, model, &body, sk)?,
        Server::Legacy(addr) => send_legacy(addr, &body, sk)?,
    };
    let round_trip = t1.elapsed();
    let t2 = Instant::now();
    let value = sk.decrypt(&result)?;
    Ok(Prediction {
        value,
        encrypt,
        round_trip,
        decrypt: t2.elapsed(),
        bytes_sent: body.len(),
        bytes_received: reply_len,
    })
}

fn send_http(
    base: &str,
    model: &str,
    body: &str,
    sk: &PrivateKey,
) -> Result<(usize, EncryptedNumber), Error> {
    let url = format!("{base}/v1/models/{model}/predict");
    let conn = |message: String| Error::Connection {
        server: base.to_string(),
        message,
    };
    let agent = crate::agent(TIMEOUT)?;
    let mut response = crate::authorized(agent.post(&url))
        .header("content-type", "application/json")
        .send(body)
        .map_err(|e| conn(e.to_string()))?;
    let status = response.status();
    let text = response
        .body_mut()
        .with_config()
        .limit(MAX_REPLY as u64)
        .read_to_string()
        .map_err(|e| conn(format!("reading the reply: {e}")))?;
    let json: serde_json::Value = serde_json::from_str(&text)
        .map_err(|_| conn(format!("HTTP {status}: reply is not JSON")))?;
    if !status.is_success() {
        let code = json["error"]["code"]
            .as_str()
            .unwrap_or("unknown")
            .to_string();
        let message = json["error"]["message"]
            .as_str()
            .unwrap_or(&text)
            .to_string();
        return Err(Error::Server { code, message });
    }
    let value = json
        .get("value")
        .ok_or_else(|| conn("reply has no 'value'".into()))?;
    let result = read_encrypted_number(&value.to_string(), sk.public_key())?;
    Ok((text.len(), result))
}

fn send_legacy(addr: &str, body: &str, sk: &PrivateKey) -> Result<(usize, EncryptedNumber), Error> {
    let conn = |message: String| Error::Connection {
        server: format!("tcp://{addr}"),
        message,
    };
    let target = addr
        .to_socket_addrs()
        .map_err(|e| conn(e.to_string()))?
        .next()
        .ok_or_else(|| conn("address did not resolve".into()))?;
    let mut stream =
        TcpStream::connect_timeout(&target, TIMEOUT).map_err(|e| conn(e.to_string()))?;
    stream
        .set_read_timeout(Some(TIMEOUT))
        .map_err(|e| conn(e.to_string()))?;
    stream
        .set_write_timeout(Some(TIMEOUT))
        .map_err(|e| conn(e.to_string()))?;
    stream
        .write_all(body.as_bytes())
        .map_err(|e| conn(e.to_string()))?;
    let mut framer = Framer::new(MAX_REPLY);
    let mut buf = vec![0u8; 64 * 1024];
    let frame = loop {
        if let Some(frame) = framer
            .next_frame()
            .map_err(|e| conn(format!("bad reply: {e}")))?
        {
            break frame;
        }
        let n = stream.read(&mut buf).map_err(|e| conn(e.to_string()))?;
        if n == 0 {
            return Err(conn("connection closed before a complete reply".into()));
        }
        framer
            .push(&buf[..n])
            .map_err(|e| conn(format!("bad reply: {e}")))?;
    };
    let (n, c, e) = parse_legacy_reply(&frame).map_err(|e| match e.code {
        "server_error" => Error::Server {
            code: "legacy".into(),
            message: e.message,
        },
        _ => conn(e.message),
    })?;
    if n != *sk.public_key().n() {
        return Err(conn("the reply is for another public key".into()));
    }
    Ok((
        frame.len(),
        EncryptedNumber::new(sk.public_key().clone(), c, e)?,
    ))
}
