use super::*;

#[test]
fn lanes_match_scalar() {
    for b in 0..=255u8 {
        for lane in 0..8 {
            let mut w = [b'x'; 8];
            w[lane] = b;
            let w = u64::from_le_bytes(w);
            let bit = |m: u64| m & (0x80 << (8 * lane)) != 0;
            assert_eq!(bit(range(w, b'0', 10)), b.is_ascii_digit(), "{b}");
            assert_eq!(bit(range(w, b'A', 26)), b.is_ascii_uppercase(), "{b}");
            assert_eq!(bit(range(w, b'1', 9)), (b'1'..=b'9').contains(&b), "{b}");
            assert_eq!(bit(eq(w, b'-')), b == b'-', "{b}");
        }
    }
    let mut block = [b'.'; 64];
    block[0] = b'7';
    block[63] = b'3';
    assert_eq!(mask(&block, Class::Digit), 1 | 1 << 63);
    for i in 0..64 {
        let mut block = [b'x'; 64];
        block[i] = b'-';
        assert_eq!(mask(&block, Class::Byte(b'-')), 1 << i);
    }
    let pair = |lo| Pair { lo, hi: 0 };
    assert_eq!(run(pair(0b0111_0110), 2), pair(0b0011_0010));
    assert_eq!(run(Pair::ONES, 64), Pair { lo: !0, hi: 1 });
    assert_eq!(Pair { lo: 0, hi: 1 }.shr(1), Pair { lo: 1 << 63, hi: 0 });
    assert_eq!(Pair::ONES.shr(0), Pair::ONES);
}

fn starts(shapes: &[&str], hay: &[u8]) -> Vec<(usize, usize)> {
    let mut set = ShapeSet::default();
    for (i, s) in shapes.iter().enumerate() {
        set.add(s.as_bytes(), i);
    }
    let mut out = Vec::new();
    set.scan(hay, |rules, start, _| out.push((rules[0], start)));
    out.sort_unstable();
    out
}

#[test]
fn finds_shapes_across_blocks_and_at_the_end() {
    let mut hay = vec![b' '; 200];
    hay[60..71].copy_from_slice(b"078-05-1120");
    hay[150..154].copy_from_slice(b"GB82");
    hay.extend_from_slice(b"x+1");
    let found = starts(&["999-99-9999", "AA99", "+1", "9999999"], &hay);
    assert_eq!(found, vec![(0, 60), (1, 150), (2, 201)]);
    assert!(starts(&["999-99-9999"], b"2026-11-27 12-34-5678").is_empty());
    assert_eq!(starts(&["999"], b"1234"), vec![(0, 0), (0, 1)]);
    assert!(starts(&["+1"], b"+0000").is_empty());
}
