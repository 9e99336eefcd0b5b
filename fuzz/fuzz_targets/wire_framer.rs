#![no_main]
//! The legacy TCP framer: feeding the bytes in any split gives the same frames as all at once.
use libfuzzer_sys::fuzz_target;
use unseen_wire::framing::Framer;

fn frames(chunks: &[&[u8]]) -> (Vec<Vec<u8>>, bool) {
    let mut f = Framer::new(4096);
    let mut out = Vec::new();
    for c in chunks {
        if f.push(c).is_err() {
            return (out, false);
        }
        loop {
            match f.next_frame() {
                Ok(Some(frame)) => out.push(frame),
                Ok(None) => break,
                Err(_) => return (out, false),
            }
        }
    }
    (out, true)
}

fuzz_target!(|data: &[u8]| {
    let split = data.first().map(|b| usize::from(*b) % 16 + 1).unwrap_or(1);
    let whole = frames(&[data]);
    let pieces: Vec<&[u8]> = data.chunks(split).collect();
    let dripped = frames(&pieces);
    if whole.1 && dripped.1 {
        assert_eq!(whole.0, dripped.0);
    }
});
