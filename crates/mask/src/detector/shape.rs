//! Shapes: fixed-length strings over character classes, found with bitmasks 64 bytes at a time.

/// What one shape byte stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Digit,
    NonZero,
    Upper,
    Lower,
    Byte(u8),
}

impl Class {
    fn of(b: u8) -> Self {
        match b {
            b'9' => Self::Digit,
            b'1' => Self::NonZero,
            b'A' => Self::Upper,
            b'a' => Self::Lower,
            other => Self::Byte(other),
        }
    }
}

/// A shape as terms `(run index, offset)`: the run of one class it needs at that offset.
#[derive(Debug)]
struct Shape {
    terms: Vec<(usize, usize)>,
    len: usize,
    rules: Vec<usize>,
}

/// At most this many distinct classes over all shapes (more are refused when building).
pub(super) const MAX_CLASSES: usize = 16;

/// Every rule's shapes, deduplicated; `classes` are the distinct classes they use and `runs` the
/// distinct `(class, length)` runs, each computed once per block.
#[derive(Debug, Default)]
pub(super) struct ShapeSet {
    classes: Vec<Class>,
    runs: Vec<(usize, usize)>,
    shapes: Vec<(Vec<u8>, Shape)>,
}

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// 0x80 in each byte of `w` equal to `c`.
fn eq(w: u64, c: u8) -> u64 {
    let x = w ^ (LO * u64::from(c));
    !(((x & !HI) + !HI) | x) & HI
}

/// 0x80 in each byte of `w` in `lo..lo + n` (ASCII ranges: `lo + n <= 128`).
fn range(w: u64, lo: u8, n: u8) -> u64 {
    let y = (w | HI) - LO * u64::from(lo);
    let t = (y & !HI) + LO * u64::from(128 - n);
    y & !t & !w & HI
}

/// One bit per byte of `block` (bit i for byte i) where `lane` sets 0x80. Word j's flags go to
/// bit j of each byte (two operations a word), then one 8x8 bit transpose puts them in order.
#[inline(always)]
fn bits(block: &[u8; 64], lane: impl Fn(u64) -> u64) -> u64 {
    let mut t = 0;
    for j in 0..8 {
        let w = u64::from_le_bytes([
            block[8 * j],
            block[8 * j + 1],
            block[8 * j + 2],
            block[8 * j + 3],
            block[8 * j + 4],
            block[8 * j + 5],
            block[8 * j + 6],
            block[8 * j + 7],
        ]);
        t |= lane(w) >> (7 - j);
    }
    transpose8(t)
}

/// Transposes the 8x8 bit matrix in `x` (row r = byte r): bit 8r + c moves to 8c + r.
fn transpose8(mut x: u64) -> u64 {
    let t = (x ^ (x >> 7)) & 0x00AA_00AA_00AA_00AA;
    x ^= t ^ (t << 7);
    let t = (x ^ (x >> 14)) & 0x0000_CCCC_0000_CCCC;
    x ^= t ^ (t << 14);
    let t = (x ^ (x >> 28)) & 0x0000_0000_F0F0_F0F0;
    x ^ t ^ (t << 28)
}

fn mask(block: &[u8; 64], class: Class) -> u64 {
    match class {
        Class::Digit => bits(block, |w| range(w, b'0', 10)),
        Class::NonZero => bits(block, |w| range(w, b'1', 9)),
        Class::Upper => bits(block, |w| range(w, b'A', 26)),
        Class::Lower => bits(block, |w| range(w, b'a', 26)),
        Class::Byte(c) => bits(block, |w| eq(w, c)),
    }
}

/// Two blocks' worth of bits (`lo` the block a shape starts in, `hi` the next), shifted only by
/// less than 64: plain 64-bit shifts, no branches.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Pair {
    lo: u64,
    hi: u64,
}

impl Pair {
    const ONES: Self = Self { lo: !0, hi: !0 };

    /// `self >> k` for `k < 64`.
    fn shr(self, k: usize) -> Self {
        let k = k & 63;
        Self {
            lo: (self.lo >> k) | ((self.hi << 1) << (63 - k)),
            hi: self.hi >> k,
        }
    }

    fn and(self, o: Self) -> Self {
        Self {
            lo: self.lo & o.lo,
            hi: self.hi & o.hi,
        }
    }
}

/// Bits where `len` (1 to 64) consecutive bits of `m` start.
fn run(m: Pair, len: usize) -> Pair {
    let (mut acc, mut pow, mut shift, mut left) = (Pair::ONES, m, 0, len);
    let mut width = 1;
    while left > 0 {
        if left & 1 == 1 {
            acc = acc.and(pow.shr(shift));
            shift += width;
        }
        left >>= 1;
        if left > 0 {
            pow = pow.and(pow.shr(width));
            width *= 2;
        }
    }
    acc
}

impl ShapeSet {
    /// Adds `shape` (1 to 64 bytes, checked by the rule) for rule `rule`; false if it would need
    /// more than [`MAX_CLASSES`] classes.
    pub(super) fn add(&mut self, shape: &[u8], rule: usize) -> bool {
        if let Some((_, s)) = self.shapes.iter_mut().find(|(t, _)| t == shape) {
            s.rules.push(rule);
            return true;
        }
        let mut runs: Vec<(usize, usize, usize)> = Vec::new();
        for (off, &b) in shape.iter().enumerate() {
            let class = Class::of(b);
            let ci = match self.classes.iter().position(|&c| c == class) {
                Some(i) => i,
                None if self.classes.len() < MAX_CLASSES => {
                    self.classes.push(class);
                    self.classes.len() - 1
                }
                None => return false,
            };
            match runs.last_mut() {
                Some(last) if last.0 == ci => last.1 += 1,
                _ => runs.push((ci, 1, off)),
            }
        }
        let terms = runs
            .into_iter()
            .map(|(ci, n, off)| {
                let ri = match self.runs.iter().position(|&r| r == (ci, n)) {
                    Some(i) => i,
                    None => {
                        self.runs.push((ci, n));
                        self.runs.len() - 1
                    }
                };
                (ri, off)
            })
            .collect::<Vec<_>>();
        // Rarest first, so most blocks are ruled out by one term and the classes that term does
        // not need are never computed: runs of three digits or more (a date's are too short),
        // punctuation, capitals, short digit runs, spaces, lowercase.
        let rank = |&(ri, _): &(usize, usize)| {
            let (ci, n) = self.runs[ri];
            let class_rank = match self.classes[ci] {
                Class::Digit | Class::NonZero if n >= 3 => 0,
                Class::Byte(b' ') => 4,
                Class::Byte(_) => 1,
                Class::Upper => 2,
                Class::Digit | Class::NonZero => 3,
                Class::Lower => 5,
            };
            (class_rank, usize::MAX - n)
        };
        let mut terms = terms;
        terms.sort_by_key(rank);
        let (len, rules) = (shape.len(), vec![rule]);
        self.shapes
            .push((shape.to_vec(), Shape { terms, len, rules }));
        true
    }

    /// Calls `found(rules, start, end)` for every place a shape occurs in `hay`. Work is lazy:
    /// a shape's terms run rarest class first and stop at the first that rules it out, and a
    /// block's class masks and runs are computed only when a term asks for them.
    pub(super) fn scan(&self, hay: &[u8], mut found: impl FnMut(&[usize], usize, usize)) {
        if self.shapes.is_empty() {
            return;
        }
        let blocks = hay.len().div_ceil(64);
        let mut tail = [0u8; 64];
        let full = hay.len() / 64 * 64;
        tail[..hay.len() - full].copy_from_slice(&hay[full..]);
        let mut w = Window {
            hay,
            tail,
            block: 0,
            masks: [[0; MAX_CLASSES]; 2],
            have: [0; 2],
            runs: vec![Pair::default(); self.runs.len()],
            run_stamp: vec![usize::MAX; self.runs.len()],
        };
        for b in 0..blocks {
            w.block = b;
            for (_, s) in &self.shapes {
                let mut starts = !0u64;
                for &(ri, off) in &s.terms {
                    starts &= w.run(self, ri).shr(off).lo;
                    if starts == 0 {
                        break;
                    }
                }
                while starts != 0 {
                    let at = b * 64 + starts.trailing_zeros() as usize;
                    starts &= starts - 1;
                    if at + s.len <= hay.len() {
                        found(&s.rules, at, at + s.len);
                    }
                }
            }
            // The next block's masks become this block's.
            w.masks[0] = w.masks[1];
            w.have = [w.have[1], 0];
        }
    }
}

/// The block shapes start in (`block`) and the next one, with the class masks and runs computed
/// so far (`have` bit i: class i's mask is in `masks`).
struct Window<'h> {
    hay: &'h [u8],
    /// The last, partial block padded with NUL (no class matches NUL).
    tail: [u8; 64],
    block: usize,
    masks: [[u64; MAX_CLASSES]; 2],
    have: [u32; 2],
    runs: Vec<Pair>,
    run_stamp: Vec<usize>,
}

impl Window<'_> {
    fn bytes(&self, b: usize) -> Option<&[u8; 64]> {
        match self.hay.get(b * 64..b * 64 + 64) {
            Some(full) => full.try_into().ok(),
            None if b * 64 < self.hay.len() => Some(&self.tail),
            None => None,
        }
    }

    fn mask(&mut self, set: &ShapeSet, which: usize, ci: usize) -> u64 {
        if self.have[which] & (1 << ci) == 0 {
            let m = self
                .bytes(self.block + which)
                .map_or(0, |bytes| mask(bytes, set.classes[ci]));
            self.masks[which][ci] = m;
            self.have[which] |= 1 << ci;
        }
        self.masks[which][ci]
    }

    fn run(&mut self, set: &ShapeSet, ri: usize) -> Pair {
        if self.run_stamp[ri] != self.block {
            let (ci, n) = set.runs[ri];
            let m = Pair {
                lo: self.mask(set, 0, ci),
                hi: self.mask(set, 1, ci),
            };
            self.runs[ri] = run(m, n);
            self.run_stamp[ri] = self.block;
        }
        self.runs[ri]
    }
}

#[cfg(test)]
mod tests;
