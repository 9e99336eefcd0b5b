//! Splits a byte stream into complete top-level JSON objects, as the original protocol sends them
//! back to back with no delimiter.
//!
//! An incremental scanner (string, escape and nesting state kept across reads) finds where each
//! object ends, so every byte is scanned once however the peer splits its writes; each complete
//! object is then checked once by the JSON parser.

use serde::de::IgnoredAny;

use crate::WireError;

/// Accumulates bytes and yields complete JSON objects; never holds more than `max_frame` bytes
/// of an unfinished object.
#[derive(Debug)]
pub struct Framer {
    buf: Vec<u8>,
    max_frame: usize,
    /// Bytes of `buf` already scanned.
    scanned: usize,
    depth: usize,
    in_string: bool,
    escaped: bool,
    /// End of the first complete object in `buf`, once found.
    complete: Option<usize>,
    /// An error in the bytes after a returned frame, reported on the next call.
    failed: Option<WireError>,
}

impl Framer {
    /// A framer whose frames may not exceed `max_frame` bytes.
    pub fn new(max_frame: usize) -> Self {
        Self {
            buf: Vec::new(),
            max_frame,
            scanned: 0,
            depth: 0,
            in_string: false,
            escaped: false,
            complete: None,
            failed: None,
        }
    }

    /// Bytes buffered and not yet returned as a frame.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Appends received bytes; fails on bytes that cannot start an object, or once the pending
    /// object exceeds the cap.
    pub fn push(&mut self, bytes: &[u8]) -> Result<(), WireError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        self.buf.extend_from_slice(bytes);
        self.scan()
    }

    fn too_large(&self) -> WireError {
        WireError::new(
            "too_large",
            format!("request larger than {} bytes", self.max_frame),
        )
    }

    /// Advances the scanner over unscanned bytes until the first object is complete.
    fn scan(&mut self) -> Result<(), WireError> {
        if self.scanned == 0 {
            let ws = self
                .buf
                .iter()
                .take_while(|b| b.is_ascii_whitespace())
                .count();
            self.buf.drain(..ws);
            match self.buf.first() {
                None => return Ok(()),
                Some(b'{') => {}
                Some(_) => return Err(WireError::new("bad_json", "expected a JSON object")),
            }
        }
        while self.complete.is_none() && self.scanned < self.buf.len() {
            let b = self.buf[self.scanned];
            self.scanned += 1;
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                } else if b == b'\\' {
                    self.escaped = true;
                } else if b == b'"' {
                    self.in_string = false;
                }
                continue;
            }
            match b {
                b'"' => self.in_string = true,
                b'{' | b'[' => self.depth += 1,
                b'}' | b']' => {
                    self.depth = self.depth.saturating_sub(1);
                    if self.depth == 0 {
                        self.complete = Some(self.scanned);
                    }
                }
                _ => {}
            }
        }
        let pending = self.complete.unwrap_or(self.buf.len());
        if pending > self.max_frame {
            return Err(self.too_large());
        }
        Ok(())
    }

    /// The next complete object, if one is buffered; a malformed one is an error.
    pub fn next_frame(&mut self) -> Result<Option<Vec<u8>>, WireError> {
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        let Some(end) = self.complete else {
            return Ok(None);
        };
        let rest = self.buf.split_off(end);
        let frame = std::mem::replace(&mut self.buf, rest);
        self.scanned = 0;
        self.depth = 0;
        self.in_string = false;
        self.escaped = false;
        self.complete = None;
        serde_json::from_slice::<IgnoredAny>(&frame)
            .map_err(|e| WireError::new("bad_json", format!("malformed JSON: {e}")))?;
        // Errors in what follows belong to the next frame.
        self.failed = self.scan().err();
        Ok(Some(frame))
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
        f.push(b": \"}{\\\"\"}  \n").expect("push");
        assert_eq!(
            f.next_frame().expect("ok").as_deref(),
            Some(&b"{\"b\": \"}{\\\"\"}"[..])
        );
        assert_eq!(f.next_frame().expect("ok"), None);
        assert_eq!(f.buffered(), 0);
    }

    #[test]
    fn byte_by_byte_equals_all_at_once() {
        let stream = b" {\"x\": {\"y\": [\"]\", 3]}} \n{\"z\": \"\\\\\"}";
        let mut whole = Framer::new(1000);
        whole.push(stream).expect("push");
        let mut a = Vec::new();
        while let Some(f) = whole.next_frame().expect("ok") {
            a.push(f);
        }
        let mut drip = Framer::new(1000);
        let mut b = Vec::new();
        for byte in stream {
            drip.push(&[*byte]).expect("push");
            while let Some(f) = drip.next_frame().expect("ok") {
                b.push(f);
            }
        }
        assert_eq!(a.len(), 2);
        assert_eq!(a, b);
    }

    #[test]
    fn rejects_garbage_and_oversize() {
        let mut f = Framer::new(1000);
        assert_eq!(f.push(b"[1]").map_err(|e| e.code), Err("bad_json"));
        let mut f = Framer::new(1000);
        f.push(b"{\"a\": tru }").expect("push");
        assert_eq!(f.next_frame().map_err(|e| e.code), Err("bad_json"));
        let mut f = Framer::new(10);
        assert_eq!(
            f.push(b"{\"aaaaaaaaaaaaaaaaaaa\"").map_err(|e| e.code),
            Err("too_large")
        );
        // A complete small frame followed by more bytes is fine.
        let mut f = Framer::new(10);
        f.push(b"{}{}{}{}{}{}").expect("push");
        assert_eq!(f.next_frame().expect("ok").as_deref(), Some(&b"{}"[..]));
        // Junk after a good frame: the frame first, then the error.
        let mut f = Framer::new(100);
        f.push(b"{} x").expect("push");
        assert_eq!(f.next_frame().expect("ok").as_deref(), Some(&b"{}"[..]));
        assert_eq!(f.next_frame().map_err(|e| e.code), Err("bad_json"));
    }
}
