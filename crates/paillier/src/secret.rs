//! Wiping of secret big integers.
//!
//! GMP keeps limbs on the heap; `Integer`'s destructor frees them without clearing. Secret values
//! are overwritten here before they are dropped. GMP's own scratch space during an operation is
//! not under our control and is not wiped.

use rug::Integer;

/// Overwrites every allocated limb of `x` with zeros and sets it to 0.
#[allow(unsafe_code)]
pub(crate) fn wipe(x: &mut Integer) {
    // SAFETY: `as_raw_mut` points to a valid, initialised mpz_t owned by `x`. `d` points to
    // `alloc` limbs allocated by GMP (alloc >= 1 for every allocated Integer; a fresh Integer
    // may have alloc == 0 with a dangling `d`, which the check skips). Setting `size` to 0
    // keeps the value valid (it becomes zero).
    unsafe {
        let raw = x.as_raw_mut();
        let alloc = usize::try_from((*raw).alloc).unwrap_or(0);
        if alloc > 0 {
            let limbs = std::slice::from_raw_parts_mut((*raw).d.as_ptr(), alloc);
            zeroize::Zeroize::zeroize(limbs);
        }
        (*raw).size = 0;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn wipe_zeroes_value() {
        let mut x = rug::Integer::from(123456789u64) << 1000;
        super::wipe(&mut x);
        assert_eq!(x, 0);
        x += 5;
        assert_eq!(x, 5);
    }
}
