//! Per-thread cache of sqlparser verdicts, keyed by statement *shape*.
//!
//! Why: a parse costs 1–77 µs, but applications send the same few shapes
//! with different literals. The shape hash drops literals, comments and
//! case, so `WITH x AS (SELECT 1) …` and `with x as (select 2) …` share an
//! entry. The cache is thread-local (no locks on the hot path) and
//! direct-mapped: a fixed number of slots, a newcomer overwrites its slot.
//! The hash is seeded per thread so crafted collisions cannot be planned.

use super::classify::StatementKind;
#[cfg(test)]
use super::lexer::Lexer;
use super::lexer::{Token, T};
use std::cell::{Cell, RefCell};
use std::hash::BuildHasher;

/// sqlparser's answer for a shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// A query that only reads (SELECT bodies, CTEs included).
    Read,
    /// Parsed; not a read.
    Kind(StatementKind),
    /// sqlparser rejected it: the primary decides.
    Unparsable,
}

/// Hash of a statement's shape plus a cheap independent check value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Shape {
    hash: u64,
    check: u32,
}

#[derive(Clone, Copy)]
struct Slot {
    shape: Shape,
    verdict: Verdict,
}

/// Slots per thread (power of two); ~100 KiB per thread when full.
const SLOTS: usize = 4096;

thread_local! {
    static SEED: u64 = std::collections::hash_map::RandomState::new().hash_one(0x6761_6e74_7279u64);
    static CACHE: RefCell<Vec<Option<Slot>>> = const { RefCell::new(Vec::new()) };
    static STATS: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
}

/// Fx-style multiply-rotate mixing: fast on short tokens.
struct Mix(u64);

impl Mix {
    #[inline]
    fn add(&mut self, x: u64) {
        self.0 = (self.0.rotate_left(5) ^ x).wrapping_mul(0x517c_c1b7_2722_0a95);
    }

    /// Bytes eight at a time, case folded by setting bit 5 (it also merges
    /// a few non-letters; harmless, the verdict never depends on names).
    fn bytes(&mut self, b: &[u8]) {
        let mut chunks = b.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w) | 0x2020_2020_2020_2020);
        }
        let mut w = [0u8; 8];
        w[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
        self.add(u64::from_le_bytes(w) | 0x2020_2020_2020_2020);
        self.add(b.len() as u64);
    }

    fn finish(self) -> u64 {
        // murmur3 fmix64, so the low bits that pick a slot are well mixed.
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
}

/// Accumulates a statement's shape token by token, so the classifier can
/// hash during its own lexer pass: its tokens with literals replaced by a
/// placeholder, comments and whitespace gone, words case-folded.
pub(crate) struct ShapeHasher {
    mix: Mix,
    tokens: u32,
    text: u32,
}

impl ShapeHasher {
    pub fn new() -> Self {
        ShapeHasher {
            mix: Mix(SEED.with(|s| *s)),
            tokens: 0,
            text: 0,
        }
    }

    pub fn token(&mut self, src: &[u8], tok: &Token) {
        if let T::Punct(b) = tok.t {
            return self.punct(b);
        }
        let m = &mut self.mix;
        self.tokens = self.tokens.wrapping_add(1);
        match tok.t {
            T::Word | T::Quoted => {
                let w = tok.inner(src);
                m.add(1);
                m.bytes(w);
                self.text = self.text.wrapping_add(w.len() as u32);
            }
            T::Num => m.add(2),
            T::Str => m.add(3),
            T::UserVar => {
                m.add(4);
                m.bytes(tok.inner(src));
            }
            T::SysVar => {
                m.add(5);
                m.bytes(tok.scope(src));
                m.bytes(tok.inner(src));
            }
            T::Assign => m.add(6),
            T::Punct(_) => {}
        }
    }

    pub fn punct(&mut self, b: u8) {
        self.tokens = self.tokens.wrapping_add(1);
        self.mix.add(0x100 | b as u64);
    }

    /// `broken`: the text ended inside a string or comment.
    pub fn finish(mut self, broken: bool) -> Shape {
        self.mix.add(broken as u64);
        Shape {
            hash: self.mix.finish(),
            check: self.tokens.rotate_left(16) ^ self.text,
        }
    }
}

/// The shape of a whole statement (same result as hashing during a scan).
#[cfg(test)]
pub(crate) fn shape(sql: &[u8]) -> Shape {
    let mut h = ShapeHasher::new();
    let mut lx = Lexer::new(sql);
    while let Some(t) = lx.next_token() {
        h.token(sql, &t);
    }
    h.finish(lx.broken)
}

pub(crate) fn get(shape: Shape) -> Option<Verdict> {
    let hit = CACHE.with(|c| {
        let c = c.borrow();
        let slot = c
            .get(shape.hash as usize & (SLOTS - 1))
            .copied()
            .flatten()?;
        (slot.shape == shape).then_some(slot.verdict)
    });
    STATS.with(|s| {
        let (h, m) = s.get();
        s.set(if hit.is_some() {
            (h + 1, m)
        } else {
            (h, m + 1)
        });
    });
    hit
}

pub(crate) fn put(shape: Shape, verdict: Verdict) {
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if c.is_empty() {
            c.resize(SLOTS, None);
        }
        c[shape.hash as usize & (SLOTS - 1)] = Some(Slot { shape, verdict });
    });
}

/// Empties this thread's shape cache (benchmarks, tests).
pub fn clear_shape_cache() {
    CACHE.with(|c| c.borrow_mut().clear());
    STATS.with(|s| s.set((0, 0)));
}

/// This thread's (hits, misses) since start or the last clear.
pub fn shape_cache_stats() -> (u64, u64) {
    STATS.with(|s| s.get())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_comments_case_do_not_change_shape() {
        let a = shape(b"WITH x AS (SELECT 1) SELECT * FROM x WHERE c = 'a'");
        let b = shape(b"with x as (select 42) /* c */ select * from X where C = \"bb\"");
        assert_eq!(a, b);
        let c = shape(b"WITH x AS (SELECT 1) SELECT * FROM y WHERE c = 'a'");
        assert_ne!(a, c);
        let d = shape(b"WITH x AS (SELECT a) SELECT * FROM x WHERE c = 'a'");
        assert_ne!(a, d);
    }

    #[test]
    fn put_then_get() {
        clear_shape_cache();
        let s = shape(b"WITH q AS (SELECT 1) SELECT 2");
        assert_eq!(get(s), None);
        put(s, Verdict::Read);
        assert_eq!(get(s), Some(Verdict::Read));
        assert_eq!(shape_cache_stats(), (1, 1));
    }
}
