//! A keep-alive HTTP(S) session with one server, for many requests in a row (load tests,
//! long runs): connections are reused, the API token and CA roots apply as everywhere.

use crate::Error;

/// Largest reply read.
const MAX_REPLY: u64 = 256 << 20;

/// Requests to one server over reused connections.
pub struct Session {
    base: String,
    agent: ureq::Agent,
}

impl Session {
    /// A session with the server at `base` (`http(s)://host:port`).
    pub fn new(base: &str) -> Result<Self, Error> {
        Ok(Self {
            base: base.trim_end_matches('/').to_string(),
            agent: crate::agent(std::time::Duration::from_secs(120))?,
        })
    }

    /// POSTs `body` to `path` with extra `headers`; the status and the reply's bytes.
    pub fn post(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        content_type: &str,
        body: &[u8],
    ) -> Result<(u16, Vec<u8>), Error> {
        let mut request = crate::authorized(self.agent.post(&format!("{}{path}", self.base)))
            .header("content-type", content_type);
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let mut response = request.send(body).map_err(|e| self.conn(e.to_string()))?;
        let status = response.status().as_u16();
        let bytes = response
            .body_mut()
            .with_config()
            .limit(MAX_REPLY)
            .read_to_vec()
            .map_err(|e| self.conn(format!("reading the reply: {e}")))?;
        Ok((status, bytes))
    }

    fn conn(&self, message: String) -> Error {
        Error::Connection {
            server: self.base.clone(),
            message,
        }
    }
}
