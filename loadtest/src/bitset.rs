//! A growable bit set over sequence numbers: which events were acknowledged, which were seen.

#[derive(Debug, Default, Clone)]
pub(crate) struct BitSet {
    words: Vec<u64>,
}

impl BitSet {
    /// Sets bit `index`; returns whether it was already set.
    pub fn insert(&mut self, index: u64) -> bool {
        let (word, bit) = ((index / 64) as usize, index % 64);
        if self.words.len() <= word {
            self.words.resize(word + 1, 0);
        }
        let was = self.words[word] & (1 << bit) != 0;
        self.words[word] |= 1 << bit;
        was
    }

    pub fn insert_range(&mut self, from: u64, count: u64) {
        for index in from..from + count {
            self.insert(index);
        }
    }

    pub fn len(&self) -> u64 {
        self.words.iter().map(|w| u64::from(w.count_ones())).sum()
    }

    /// How many bits are set in both.
    pub fn intersection_len(&self, other: &Self) -> u64 {
        self.words.iter().zip(&other.words).map(|(a, b)| u64::from((a & b).count_ones())).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_count_and_intersect() {
        let mut a = BitSet::default();
        assert!(!a.insert(3));
        assert!(a.insert(3));
        a.insert_range(100, 50);
        assert_eq!(a.len(), 51);
        let mut b = BitSet::default();
        b.insert_range(140, 20);
        b.insert(3);
        b.insert(10_000);
        // 140..150 and 3.
        assert_eq!(a.intersection_len(&b), 11);
        assert_eq!(b.intersection_len(&a), 11);
        assert!(a.insert(149) && !a.insert(150));
    }
}
