//! Splits a byte stream into complete top-level JSON objects, as the original protocol sends them
//! back to back with no delimiter.

use serde::de::IgnoredAny;

use crate::WireError;

/// Accumulates bytes and yields complete JSON objects; never holds more than `max_frame` bytes.
#[derive(Debug)]
pub struct Framer {
    buf: Vec<u8>,
    max_frame: usize,
}

impl Framer {
    /// A framer whose frames may not exceed `max_frame` bytes.
    pub fn new(max_frame: usize) -> Self {
        Self {
            buf: Vec::new(),
            max_frame,
        }
    }

    /// Bytes buffered and not yet returned as a frame.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Appends received bytes; fails once the pending frame exceeds the cap.
    pub fn push(&mut self, bytes: &[u8]) -> Result<(), WireError> {
        self.buf.extend_from_slice(bytes);
        self.trim_leading_whitespace();
        if self.buf.len() > self.max_frame {
            // The bytes may hold a complete frame followed by more; only refuse if the first
            // frame alone is too long.
            if self
                .first_frame_len()?
                .is_none_or(|len| len > self.max_frame)
            {
                return Err(WireError::new(
                    "too_large",
                    format!("request larger than {} bytes", self.max_frame),
                ));
            }
        }
        Ok(())
    }

    fn trim_leading_whitespace(&mut self) {
        let ws = self
            .buf
            .iter()
            .take_while(|b| b.is_ascii_whitespace())
            .count();
        if ws > 0 {
            self.buf.drain(..ws);
        }
    }

    /// Length of the first complete object, `None` if incomplete, an error if malformed.
    fn first_frame_len(&self) -> Result<Option<usize>, WireError> {
        match self.buf.first() {
            None => return Ok(None),
            Some(b'{') => {}
            Some(_) => return Err(WireError::new("bad_json", "expected a JSON object")),
        }
        let mut stream = serde_json::Deserializer::from_slice(&self.buf).into_iter::<IgnoredAny>();
        match stream.next() {
            Some(Ok(_)) => Ok(Some(stream.byte_offset())),
            Some(Err(e)) if e.is_eof() => Ok(None),
            Some(Err(e)) => Err(WireError::new("bad_json", format!("malformed JSON: {e}"))),
            None => Ok(None),
        }
    }

    /// The next complete object, if one is buffered.
    pub fn next_frame(&mut self) -> Result<Option<Vec<u8>>, WireError> {
        self.trim_leading_whitespace();
        match self.first_frame_len()? {
            Some(len) => {
                let rest = self.buf.split_off(len);
                let frame = std::mem::replace(&mut self.buf, rest);
                self.trim_leading_whitespace();
                Ok(Some(frame))
            }
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_back_to_back_objects_across_reads() {
        let mut f = Framer::new(1000);
        f.push(b"{\"a\": [1, 2]}{\"b\"").expect("push");
        assert_eq!(
            f.next_frame().expect("ok").as_deref(),
            Some(&b"{\"a\": [1, 2]}"[..])
        );
        assert_eq!(f.next_frame().expect("ok"), None);
        f.push(b": \"}{\"}  \n").expect("push");
        assert_eq!(
            f.next_frame().expect("ok").as_deref(),
            Some(&b"{\"b\": \"}{\"}"[..])
        );
        assert_eq!(f.next_frame().expect("ok"), None);
        assert_eq!(f.buffered(), 0);
    }

    #[test]
    fn rejects_garbage_and_oversize() {
        let mut f = Framer::new(1000);
        f.push(b"[1]").expect("push");
        assert_eq!(f.next_frame().map_err(|e| e.code), Err("bad_json"));
        let mut f = Framer::new(1000);
        f.push(b"{\"a\": tru }").expect("push");
        assert_eq!(f.next_frame().map_err(|e| e.code), Err("bad_json"));
        let mut f = Framer::new(10);
        assert_eq!(
            f.push(b"{\"aaaaaaaaaaaaaaaaaaa\"").map_err(|e| e.code),
            Err("too_large")
        );
    }
}
