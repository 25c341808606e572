use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;

#[test]
fn handles_are_never_null_and_lengths_are_what_was_asked() {
    let mut m = ExtismMemory::new(1 << 20);
    assert_eq!(m.alloc(0), Ok(0));
    let a = m.alloc(3).unwrap();
    let b = m.alloc(17).unwrap();
    assert!(a >= BASE && b >= a + 3);
    assert_eq!((m.length(a), m.length(b)), (3, 17));
    assert_eq!(m.length(0), 0);
    assert_eq!(m.length(a + 1), 0, "not a block's start");
}

#[test]
fn loads_and_stores_stay_inside_one_block() {
    let mut m = ExtismMemory::new(1 << 20);
    let a = m.alloc(8).unwrap();
    let b = m.alloc(8).unwrap();
    m.store_u64(a, 0x0102_0304_0506_0708).unwrap();
    assert_eq!(m.load_u64(a), Ok(0x0102_0304_0506_0708));
    assert_eq!(m.load_u8(a), Ok(8));
    // One byte into the next block.
    assert_eq!(
        m.load_u64(a + 1),
        Err(Violation::OutsideBlock {
            addr: a + 1,
            len: 8
        })
    );
    assert!(m.store_u8(b + 8, 1).is_err(), "past the last block");
    assert!(m.load_u8(0).is_err());
    assert!(m.load_u64(u64::MAX - 3).is_err(), "no overflow");
    m.free(a);
    assert!(m.load_u8(a).is_err(), "a freed block");
}

#[test]
fn freed_blocks_are_reused_and_the_tail_given_back() {
    let mut m = ExtismMemory::new(1 << 20);
    let a = m.alloc(1000).unwrap();
    let b = m.alloc(10).unwrap();
    m.free(a);
    m.free(a); // a second free is ignored, as Extism's kernel does
    let c = m.alloc(500).unwrap();
    assert_eq!(c, a, "best fit reuses the freed block, split");
    let d = m.alloc(300).unwrap();
    assert_eq!(d, a + 500, "the split's rest");
    assert_eq!(m.len(), 1010);
    m.free(b);
    m.free(c);
    m.free(d);
    assert_eq!(m.len(), 0, "free blocks at the end are given back");
}

#[test]
fn alloc_is_bounded() {
    let mut m = ExtismMemory::new(1000);
    assert_eq!(
        m.alloc(1 << 63),
        Err(AllocError {
            requested: 1 << 63,
            in_use: BLOCK_COST,
            max: 1000
        })
    );
    m.alloc(600).unwrap();
    // Each block's bookkeeping is charged with its bytes.
    let room = 1000 - 600 - 2 * BLOCK_COST;
    assert!(m.alloc(room + 1).is_err());
    assert!(m.alloc(room).is_ok());
    assert_eq!(m.charged(), 1000);
    assert_eq!(m.max_bytes(), 1000);
}

/// A block within the bound that the host cannot allocate is refused, not an abort. Fails
/// when the arena grows with `resize` alone (the test process aborts).
#[test]
fn a_block_the_host_cannot_allocate_is_refused() {
    let mut m = ExtismMemory::new(1 << 62);
    assert_eq!(
        m.alloc(1 << 61),
        Err(AllocError {
            requested: 1 << 61,
            in_use: BLOCK_COST,
            max: 1 << 62
        })
    );
    assert!(m.alloc(8).is_ok(), "the arena goes on");
}

/// A plugin allocating one-byte blocks until refused: the host's entries for them stay
/// within the bound too. Fails without the blocks' bookkeeping charged (a million blocks,
/// 32 MiB of entries at the least, for a 1 MiB bound).
#[test]
fn tiny_blocks_keep_the_hosts_bookkeeping_within_the_bound() {
    const MAX: u64 = 1 << 20;
    let mut m = ExtismMemory::new(MAX);
    let mut blocks = 0u64;
    while m.alloc(1).is_ok() {
        blocks += 1;
    }
    let entry = std::mem::size_of::<(u64, Block)>() as u64;
    assert!(blocks * entry + m.len() <= MAX, "{blocks} blocks");
    // Freed and reused without a split past the bound.
    let handles: Vec<u64> = m.blocks.keys().copied().step_by(2).collect();
    for h in handles {
        m.free(h);
    }
    while m.alloc(1).is_ok() {}
    assert!(m.charged() <= MAX);
}

#[test]
fn input_output_and_error_registers() {
    let mut m = ExtismMemory::new(1 << 20);
    let input = m.alloc_bytes(b"hello world").unwrap();
    m.input_set(input, 11).unwrap();
    assert_eq!(m.input_load_u64(0), Ok(u64::from_le_bytes(*b"hello wo")));
    assert_eq!(m.input_load_u8(10), Ok(b'd'));
    assert!(m.input_load_u64(4).is_err(), "past the input");
    assert!(m.input_load_u8(11).is_err());
    assert_eq!(m.output_set(input + 6, 5), Ok(()));
    assert_eq!(m.range(m.output().0, m.output().1), Ok(&b"world"[..]));
    assert_eq!(
        m.output_set(input + 6, 6),
        Err(Violation::RangeNotInBlock {
            addr: input + 6,
            len: 6
        })
    );
    assert_eq!(
        m.error_set(input + 1),
        Err(Violation::NotABlock { handle: input + 1 })
    );
    m.error_set(input).unwrap();
    assert_eq!(m.error(), input);
    m.reset();
    assert_eq!(
        (m.error(), m.output(), m.input(), m.len()),
        (0, (0, 0), (0, 0), 0)
    );
}

/// What a plugin may call, with handles picked from live blocks or made up.
#[derive(Debug, Clone)]
enum Op {
    Alloc(u64),
    Free(Pick),
    Length(Pick),
    LoadU8(Pick, u64),
    LoadU64(Pick, u64),
    StoreU8(Pick, u64, u8),
    StoreU64(Pick, u64, u64),
    OutputSet(Pick, u64, u64),
    Reset,
}

/// A handle: the `n`th live block's (modulo their number), or any number at all.
#[derive(Debug, Clone, Copy)]
enum Pick {
    Live(usize),
    Any(u64),
}

fn pick() -> impl Strategy<Value = Pick> {
    prop_oneof![
        3 => any::<usize>().prop_map(Pick::Live),
        1 => prop_oneof![any::<u64>(), BASE..BASE + 4096].prop_map(Pick::Any),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => prop_oneof![0..300u64, Just(1 << 63), Just(u64::MAX)].prop_map(Op::Alloc),
        2 => pick().prop_map(Op::Free),
        1 => pick().prop_map(Op::Length),
        2 => (pick(), 0..320u64).prop_map(|(p, o)| Op::LoadU8(p, o)),
        2 => (pick(), 0..320u64).prop_map(|(p, o)| Op::LoadU64(p, o)),
        2 => (pick(), 0..320u64, any::<u8>()).prop_map(|(p, o, v)| Op::StoreU8(p, o, v)),
        2 => (pick(), 0..320u64, any::<u64>()).prop_map(|(p, o, v)| Op::StoreU64(p, o, v)),
        1 => (pick(), 0..320u64, 0..320u64).prop_map(|(p, o, l)| Op::OutputSet(p, o, l)),
        1 => Just(Op::Reset),
    ]
}

/// The model: live blocks by handle, with their bytes.
type Model = BTreeMap<u64, Vec<u8>>;

fn resolve(model: &Model, pick: Pick) -> u64 {
    match pick {
        Pick::Live(n) if !model.is_empty() => *model.keys().nth(n % model.len()).unwrap(),
        Pick::Live(_) => BASE,
        Pick::Any(h) => h,
    }
}

/// The live block holding `len` bytes at `addr`, and the offset into it.
fn holding(model: &Model, addr: u64, len: u64) -> Option<(u64, usize)> {
    let (&start, bytes) = model.range(..=addr).next_back()?;
    let end = addr.checked_add(len)?;
    (end <= start + bytes.len() as u64).then_some((start, (addr - start) as usize))
}

const MAX: u64 = 16 << 10;

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Random kernel calls with live and made-up handles: the arena answers as the model
    /// (a map of live blocks) does, never overlaps two live blocks, never passes its bound
    /// and never panics.
    #[test]
    fn the_kernel_matches_its_model(ops in prop::collection::vec(op(), 1..200)) {
        let mut m = ExtismMemory::new(MAX);
        let mut model = Model::new();
        for op in ops {
            match op {
                Op::Alloc(n) => match m.alloc(n) {
                    Ok(0) => prop_assert_eq!(n, 0),
                    Ok(h) => {
                        prop_assert!(n > 0);
                        // No overlap with a live block, before or after.
                        prop_assert!(holding(&model, h, 1).is_none());
                        if let Some((&next, _)) = model.range(h..).next() {
                            prop_assert!(h + n <= next);
                        }
                        // The model keeps the arena's bytes (a reused block's old ones).
                        let at = (h - BASE) as usize;
                        model.insert(h, m.bytes[at..at + n as usize].to_vec());
                    }
                    Err(err) => prop_assert!(err.requested > MAX - m.charged() - BLOCK_COST),
                },
                Op::Free(p) => {
                    let h = resolve(&model, p);
                    m.free(h);
                    model.remove(&h);
                }
                Op::Length(p) => {
                    let h = resolve(&model, p);
                    prop_assert_eq!(m.length(h), model.get(&h).map_or(0, |b| b.len() as u64));
                }
                Op::LoadU8(p, off) => {
                    let addr = resolve(&model, p).saturating_add(off);
                    match holding(&model, addr, 1) {
                        Some((start, i)) => prop_assert_eq!(m.load_u8(addr), Ok(model[&start][i])),
                        None => prop_assert!(m.load_u8(addr).is_err()),
                    }
                }
                Op::LoadU64(p, off) => {
                    let addr = resolve(&model, p).saturating_add(off);
                    match holding(&model, addr, 8) {
                        Some((start, i)) => {
                            let word = u64::from_le_bytes(model[&start][i..i + 8].try_into().unwrap());
                            prop_assert_eq!(m.load_u64(addr), Ok(word));
                        }
                        None => prop_assert!(m.load_u64(addr).is_err()),
                    }
                }
                Op::StoreU8(p, off, v) => {
                    let addr = resolve(&model, p).saturating_add(off);
                    match holding(&model, addr, 1) {
                        Some((start, i)) => {
                            prop_assert_eq!(m.store_u8(addr, v), Ok(()));
                            model.get_mut(&start).unwrap()[i] = v;
                        }
                        None => prop_assert!(m.store_u8(addr, v).is_err()),
                    }
                }
                Op::StoreU64(p, off, v) => {
                    let addr = resolve(&model, p).saturating_add(off);
                    match holding(&model, addr, 8) {
                        Some((start, i)) => {
                            prop_assert_eq!(m.store_u64(addr, v), Ok(()));
                            model.get_mut(&start).unwrap()[i..i + 8].copy_from_slice(&v.to_le_bytes());
                        }
                        None => prop_assert!(m.store_u64(addr, v).is_err()),
                    }
                }
                Op::OutputSet(p, off, len) => {
                    let addr = resolve(&model, p).saturating_add(off);
                    let ok = len == 0 || holding(&model, addr, len).is_some();
                    prop_assert_eq!(m.output_set(addr, len).is_ok(), ok);
                    if ok && len > 0 {
                        let (start, i) = holding(&model, addr, len).unwrap();
                        let (o, l) = m.output();
                        let expected = model[&start][i..i + len as usize].to_vec();
                        prop_assert_eq!(m.range(o, l).unwrap(), &expected[..]);
                    }
                }
                Op::Reset => {
                    m.reset();
                    model.clear();
                }
            }
            prop_assert!(m.charged() <= MAX);
            // Every live block of the model is readable whole, with the model's bytes.
            for (&h, bytes) in &model {
                prop_assert_eq!(m.block(h).unwrap(), &bytes[..]);
            }
        }
    }
}
