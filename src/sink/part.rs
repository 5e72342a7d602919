//! Rows of one append and the acknowledgements they release, index for index.

use crate::pipeline::Ack;

pub(super) struct Part<R> {
    pub rows: Vec<R>,
    pub acks: Vec<Ack>,
}

impl<R> Part<R> {
    pub fn from_pairs(pairs: Vec<(R, Ack)>) -> Self {
        let (rows, acks) = pairs.into_iter().unzip();
        Part { rows, acks }
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Halves the part (the first half is the smaller one), rows and acks together.
    pub fn split(mut self) -> (Part<R>, Part<R>) {
        let mid = self.rows.len() / 2;
        let rows = self.rows.split_off(mid);
        let acks = self.acks.split_off(mid);
        (self, Part { rows, acks })
    }

    pub fn into_pairs(self) -> impl Iterator<Item = (R, Ack)> {
        self.rows.into_iter().zip(self.acks)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_split_rows_and_acks_together() {
        let p = Part::from_pairs((0..5).map(|i| (i, Ack::detached())).collect());
        let (a, b) = p.split();
        assert_eq!(a.rows, vec![0, 1]);
        assert_eq!(b.rows, vec![2, 3, 4]);
        assert_eq!(a.acks.len(), 2);
        assert_eq!(b.acks.len(), 3);
    }
}
