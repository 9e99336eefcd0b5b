//! A bounds-checked wrapper around `matrixmultiply::sgemm`.

/// A row-major or strided matrix view: `rows x cols` with row and column strides.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Layout {
    pub rows: usize,
    pub cols: usize,
    pub row_stride: usize,
    pub col_stride: usize,
}

impl Layout {
    /// A dense row-major `rows x cols` matrix.
    pub fn row_major(rows: usize, cols: usize) -> Self {
        Self {
            rows,
            cols,
            row_stride: cols,
            col_stride: 1,
        }
    }

    /// The transpose of a dense row-major `cols x rows` matrix, seen as `rows x cols`.
    pub fn transposed(rows: usize, cols: usize) -> Self {
        Self {
            rows,
            cols,
            row_stride: 1,
            col_stride: rows,
        }
    }

    fn span(&self) -> usize {
        if self.rows == 0 || self.cols == 0 {
            0
        } else {
            (self.rows - 1) * self.row_stride + (self.cols - 1) * self.col_stride + 1
        }
    }
}

/// `c = alpha * a * b + beta * c`.
///
/// Panics if a view does not fit its slice or the shapes do not chain (a programming error).
#[allow(clippy::too_many_arguments)] // the shape of BLAS gemm: operands with their layouts
pub(crate) fn gemm(
    alpha: f32,
    a: &[f32],
    la: Layout,
    b: &[f32],
    lb: Layout,
    beta: f32,
    c: &mut [f32],
    lc: Layout,
) {
    assert!(
        la.cols == lb.rows && la.rows == lc.rows && lb.cols == lc.cols,
        "gemm shapes do not chain"
    );
    assert!(
        la.span() <= a.len() && lb.span() <= b.len() && lc.span() <= c.len(),
        "gemm view out of bounds"
    );
    if lc.rows == 0 || lc.cols == 0 {
        return;
    }
    #[allow(unsafe_code)]
    // SAFETY: every index the kernel touches is (i * row_stride + j * col_stride) for i < rows,
    // j < cols, which is below `span()`, checked above against each slice's length; `c` is a
    // unique borrow, so it does not alias `a` or `b`.
    unsafe {
        matrixmultiply::sgemm(
            la.rows,
            la.cols,
            lb.cols,
            alpha,
            a.as_ptr(),
            la.row_stride as isize,
            la.col_stride as isize,
            b.as_ptr(),
            lb.row_stride as isize,
            lb.col_stride as isize,
            beta,
            c.as_mut_ptr(),
            lc.row_stride as isize,
            lc.col_stride as isize,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_naive_product() {
        let a: Vec<f32> = (0..6).map(|x| x as f32).collect(); // 2x3
        let b: Vec<f32> = (0..12).map(|x| (x as f32) * 0.5).collect(); // 3x4
        let mut c = vec![1.0f32; 8];
        gemm(
            1.0,
            &a,
            Layout::row_major(2, 3),
            &b,
            Layout::row_major(3, 4),
            1.0,
            &mut c,
            Layout::row_major(2, 4),
        );
        for i in 0..2 {
            for j in 0..4 {
                let want: f32 = 1.0 + (0..3).map(|k| a[i * 3 + k] * b[k * 4 + j]).sum::<f32>();
                assert_eq!(c[i * 4 + j], want);
            }
        }
        // a^T (3x2) times c (2x4), via the transposed view.
        let mut d = vec![0.0f32; 12];
        gemm(
            1.0,
            &a,
            Layout::transposed(3, 2),
            &c,
            Layout::row_major(2, 4),
            0.0,
            &mut d,
            Layout::row_major(3, 4),
        );
        assert_eq!(d[0], a[0] * c[0] + a[3] * c[4]);
    }
}
