use std::sync::Arc;

use wasmtime::{Config, Engine, Module, StackCreator, StackMemory, Store};

use super::*;

const SIZE: usize = 1 << 16;

fn creator(pool: &StackPool) -> PoolStackCreator {
    PoolStackCreator(pool.shared.clone())
}

fn bytes(stack: &dyn StackMemory) -> &[u8] {
    let range = stack.range();
    // SAFETY: a leased stack's range is readable memory that no fiber is running on.
    unsafe { core::slice::from_raw_parts(range.start as *const u8, range.len()) }
}

fn scribble(stack: &dyn StackMemory) {
    let range = stack.range();
    // SAFETY: as above, and it is writable.
    unsafe { core::ptr::write_bytes(range.start as *mut u8, 0x5a, range.len()) };
}

/// Whether the page holding `addr` is resident. Only for tests: residency says nothing
/// about contents (a swapped-out page is not resident and not zero either).
#[cfg(target_os = "linux")]
fn resident(addr: usize) -> bool {
    let page = crate::stack::page_size();
    let mut vec = 0u8;
    // SAFETY: one page, page aligned, which belongs to a mapped stack; `vec` has room
    // for the one byte mincore writes.
    let ret = unsafe { libc::mincore((addr & !(page - 1)) as *mut libc::c_void, 1, &mut vec) };
    assert_eq!(ret, 0, "mincore: {}", std::io::Error::last_os_error());
    vec & 1 == 1
}

#[test]
fn a_reused_stack_is_zeroed_when_wasmtime_asks() {
    let pool = StackPool::builder(SIZE).decommit_batch(1).build().unwrap();
    let creator = creator(&pool);
    let first = creator.new_stack(SIZE, true).unwrap();
    let top = first.top();
    scribble(&*first);
    drop(first);
    let again = creator.new_stack(SIZE, true).unwrap();
    assert_eq!(again.top(), top, "the same stack is lent again");
    assert!(bytes(&*again).iter().all(|&b| b == 0));
    assert_eq!(pool.stats().reused, 1);
}

/// The top of a zeroed stack is written, not given back, so the next call does not fault
/// it in again; the rest is given back.
#[cfg(target_os = "linux")]
#[test]
fn zeroing_keeps_the_top_resident_and_gives_the_rest_back() {
    let pool = StackPool::builder(SIZE)
        .keep_resident(4096)
        .decommit_batch(1)
        .build()
        .unwrap();
    let creator = creator(&pool);
    let first = creator.new_stack(SIZE, true).unwrap();
    scribble(&*first);
    drop(first);
    let again = creator.new_stack(SIZE, true).unwrap();
    let top = again.top() as usize;
    assert!(resident(top - 1), "the top page stays resident");
    assert!(
        !resident(top - pool.keep_resident() - 1),
        "the page below is given back"
    );
    assert!(bytes(&*again).iter().all(|&b| b == 0));
}

/// Stacks coming back zeroed wait for a batch before the system call; meanwhile zeroing
/// leases get other stacks, never one that is only partly zero.
#[test]
fn zeroing_is_batched_and_never_lends_a_partly_zeroed_stack() {
    let pool = StackPool::builder(SIZE)
        .keep_resident(4096)
        .decommit_batch(3)
        .build()
        .unwrap();
    let creator = creator(&pool);
    let mut tops = Vec::new();
    for _ in 0..3 {
        let stack = creator.new_stack(SIZE, true).unwrap();
        assert!(bytes(&*stack).iter().all(|&b| b == 0));
        assert!(
            !tops.contains(&stack.top()),
            "a stack awaiting decommit is not lent"
        );
        tops.push(stack.top());
        scribble(&*stack);
    }
    assert_eq!(pool.stats().created, 3);
    // The third return completed the batch: all three are clean again.
    let again: Vec<_> = (0..3)
        .map(|_| creator.new_stack(SIZE, true).unwrap())
        .collect();
    for stack in &again {
        assert!(tops.contains(&stack.top()));
        assert!(bytes(&**stack).iter().all(|&b| b == 0));
    }
    let stats = pool.stats();
    assert_eq!((stats.created, stats.reused), (3, 3));
}

#[test]
fn a_reused_stack_is_left_alone_without_zeroing() {
    let pool = StackPool::new(SIZE);
    let creator = creator(&pool);
    let first = creator.new_stack(SIZE, false).unwrap();
    scribble(&*first);
    drop(first);
    let again = creator.new_stack(SIZE, false).unwrap();
    assert!(bytes(&*again).iter().all(|&b| b == 0x5a));
}

/// A pool shared by an engine that zeroes and one that does not: what the second leaves
/// is zeroed before the first gets it.
#[test]
fn a_dirty_stack_is_zeroed_for_a_zeroing_lease() {
    let pool = StackPool::new(SIZE);
    let creator = creator(&pool);
    let plain = creator.new_stack(SIZE, false).unwrap();
    let top = plain.top();
    scribble(&*plain);
    drop(plain);
    let zeroed = creator.new_stack(SIZE, true).unwrap();
    assert_eq!(zeroed.top(), top);
    assert!(bytes(&*zeroed).iter().all(|&b| b == 0));
}

#[test]
fn leases_are_counted_and_bounded() {
    let pool = StackPool::builder(SIZE)
        .max_stacks(2)
        .max_idle(1)
        .build()
        .unwrap();
    let creator = creator(&pool);
    let a = creator.new_stack(SIZE, false).unwrap();
    let b = creator.new_stack(SIZE, false).unwrap();
    let err = creator.new_stack(SIZE, false).err().unwrap();
    assert!(matches!(
        err.downcast_ref::<StackPoolError>(),
        Some(StackPoolError::Exhausted { max_stacks: 2 })
    ));
    assert!(err.to_string().contains("max_stacks bound of 2"), "{err}");
    assert_eq!(pool.stats().in_use, 2);
    drop((a, b));
    let stats = pool.stats();
    assert_eq!((stats.in_use, stats.idle, stats.created), (0, 1, 2));
}

#[test]
fn max_idle_bounds_stacks_awaiting_decommit_too() {
    let pool = StackPool::builder(SIZE)
        .max_idle(2)
        .decommit_batch(8)
        .build()
        .unwrap();
    let creator = creator(&pool);
    let leased: Vec<_> = (0..5)
        .map(|_| creator.new_stack(SIZE, true).unwrap())
        .collect();
    drop(leased);
    assert_eq!(pool.stats().idle, 2);
    for _ in 0..2 {
        let stack = creator.new_stack(SIZE, true).unwrap();
        assert!(bytes(&*stack).iter().all(|&b| b == 0));
    }
}

#[test]
fn ranges_are_those_of_the_stack() {
    let pool = StackPool::new(SIZE);
    let leased = creator(&pool).new_stack(SIZE, false).unwrap();
    let range = leased.range();
    assert_eq!(range.end, leased.top() as usize);
    assert_eq!(range.len(), SIZE);
    assert_eq!(leased.guard_range().end as usize, range.start);
}

#[test]
fn a_larger_request_than_the_pool_is_an_error() {
    let pool = StackPool::new(SIZE);
    let err = creator(&pool).new_stack(1 << 20, false).err().unwrap();
    assert!(matches!(
        err.downcast_ref::<StackPoolError>(),
        Some(StackPoolError::StackTooSmall {
            requested: 0x10_0000,
            stack_size: SIZE
        })
    ));
    assert!(err.to_string().contains("StackPool::configure"), "{err}");
    assert_eq!(pool.stats().in_use, 0);
}

#[test]
fn the_builder_and_new_check_the_size_alike() {
    for size in [0, Stack::MAX_SIZE + 1] {
        assert!(matches!(
            StackPool::builder(size).build(),
            Err(StackPoolError::InvalidSize { size: s }) if s == size
        ));
        let panic = std::panic::catch_unwind(|| StackPool::new(size)).unwrap_err();
        let message = panic.downcast_ref::<String>().unwrap();
        assert!(
            message.contains("StackPool::new") && message.contains("1 GiB"),
            "{message}"
        );
    }
}

/// The handle a program holds is not what keeps the pool alive: the engine's is. Dropping
/// it changes nothing for the engine and its stores, and the last store, module and engine
/// to go free the pool and its stacks.
#[test]
fn the_pool_outlives_its_handles_while_the_engine_lives() {
    let pool = StackPool::new(1 << 20);
    let engine = pool.engine(&Config::new()).unwrap();
    let weak = Arc::downgrade(&pool.shared);
    drop(pool);
    let module = Module::new(
        &engine,
        r#"(module (func (export "f") (result i32) i32.const 7))"#,
    )
    .unwrap();
    let run = |store: &mut Store<()>| {
        futures::executor::block_on(async {
            let instance = wasmtime::Instance::new_async(&mut *store, &module, &[]).await?;
            let f = instance.get_typed_func::<(), i32>(&mut *store, "f")?;
            f.call_async(&mut *store, ()).await
        })
        .unwrap()
    };
    let mut stores: Vec<Store<()>> = (0..3).map(|_| Store::new(&engine, ())).collect();
    for store in &mut stores {
        assert_eq!(run(store), 7);
    }
    let shared = weak.upgrade().expect("the engine keeps the pool");
    assert_eq!(shared.stats().in_use, 3);
    drop(shared);
    drop(stores);
    let mut store = Store::new(&engine, ());
    assert_eq!(run(&mut store), 7);
    assert_eq!(weak.upgrade().unwrap().stats().reused, 1);
    drop((store, module, engine));
    assert!(
        weak.upgrade().is_none(),
        "the pool, and with it every idle stack, is freed with the last engine and store"
    );
}

#[test]
fn engines_made_by_the_pool_check_what_the_pool_cannot_serve() {
    // Too small for the default max_wasm_stack: the pool's size is the cause.
    let err = StackPool::new(256 << 10)
        .engine(&Config::new())
        .unwrap_err();
    assert!(matches!(
        err.downcast_ref::<StackPoolError>(),
        Some(StackPoolError::MaxWasmStack {
            stack_size: 0x4_0000
        })
    ));

    // Any other failure of Engine::new is left as wasmtime reported it.
    let mut config = Config::new();
    config.max_wasm_stack(0);
    let err = StackPool::new(1 << 20).engine(&config).unwrap_err();
    assert!(err.downcast_ref::<StackPoolError>().is_none(), "{err:?}");
    let mut config = Config::new();
    config.wmemcheck(true); // not compiled into this wasmtime
    let err = StackPool::new(1 << 20).engine(&config).unwrap_err();
    assert!(err.downcast_ref::<StackPoolError>().is_none(), "{err:?}");
    assert!(!format!("{err:?}").contains("max_wasm_stack"), "{err:?}");

    // The pooling allocator would leave the pool unused.
    let mut config = Config::new();
    config.allocation_strategy(wasmtime::InstanceAllocationStrategy::pooling());
    let err = StackPool::new(1 << 20).engine(&config).unwrap_err();
    assert!(matches!(
        err.downcast_ref::<StackPoolError>(),
        Some(StackPoolError::PoolingAllocator)
    ));
    let _ = Engine::new(&config).expect("the config itself is fine");
}

/// Without zeroing, a thread gets back the stack it returned, from its own cache, and the
/// counters see it as idle meanwhile.
#[test]
fn a_thread_gets_its_own_stack_back() {
    let pool = StackPool::new(SIZE);
    let creator = creator(&pool);
    let first = creator.new_stack(SIZE, false).unwrap();
    let top = first.top();
    drop(first);
    assert_eq!((pool.stats().idle, pool.stats().in_use), (1, 0));
    let again = creator.new_stack(SIZE, false).unwrap();
    assert_eq!(again.top(), top);
    let stats = pool.stats();
    assert_eq!((stats.created, stats.reused, stats.idle), (1, 1, 0));
}

/// A stack cached by one thread serves a lease on any other, while that thread lives and
/// after it exits.
#[test]
fn a_threads_cached_stack_serves_every_thread() {
    let pool = StackPool::new(SIZE);
    let (returned, wait) = (std::sync::mpsc::channel(), std::sync::mpsc::channel::<()>());
    let other = {
        let creator = creator(&pool);
        let (returned, wait) = (returned.0, wait.1);
        std::thread::spawn(move || {
            let stack = creator.new_stack(SIZE, false).unwrap();
            let top = stack.top() as usize;
            drop(stack);
            returned.send(top).unwrap();
            wait.recv().unwrap(); // alive until the lease below is made
        })
    };
    let top = returned.1.recv().unwrap();
    assert_eq!(pool.stats().idle, 1);
    let here = creator(&pool).new_stack(SIZE, false).unwrap();
    assert_eq!(here.top() as usize, top, "the other thread's stack");
    assert_eq!((pool.stats().created, pool.stats().reused), (1, 1));
    drop(here);
    wait.0.send(()).unwrap();
    other.join().unwrap();
    let again = creator(&pool).new_stack(SIZE, false).unwrap();
    assert_eq!(again.top() as usize, top, "and after it exited");
}

/// A bounded pool keeps no stack in a thread's cache: the one idle stack `max_idle(1)`
/// allows, returned by a thread that lives on, serves the next lease on any thread (a
/// cached one would count against the bound while every other thread mapped and unmapped
/// a stack per store).
#[test]
fn a_bounded_pool_lends_every_idle_stack_to_every_thread() {
    let pool = StackPool::builder(SIZE).max_idle(1).build().unwrap();
    let (returned, wait) = (std::sync::mpsc::channel(), std::sync::mpsc::channel::<()>());
    let other = {
        let creator = creator(&pool);
        let (returned, wait) = (returned.0, wait.1);
        std::thread::spawn(move || {
            drop(creator.new_stack(SIZE, false).unwrap());
            returned.send(()).unwrap();
            wait.recv().unwrap(); // alive until the lease below is made
        })
    };
    returned.1.recv().unwrap();
    let here = creator(&pool);
    for _ in 0..3 {
        drop(here.new_stack(SIZE, false).unwrap());
    }
    let stats = pool.stats();
    assert_eq!((stats.created, stats.reused, stats.idle), (1, 3, 1));
    wait.0.send(()).unwrap();
    other.join().unwrap();

    // With 0, every returned stack is freed.
    let pool = StackPool::builder(SIZE).max_idle(0).build().unwrap();
    let creator = creator(&pool);
    drop(creator.new_stack(SIZE, false).unwrap());
    drop(creator.new_stack(SIZE, false).unwrap());
    let stats = pool.stats();
    assert_eq!((stats.created, stats.reused, stats.idle), (2, 0, 0));
}

/// Dropping a pool unmaps the stacks cached for other threads, while those threads live
/// on and never touch a pool again.
#[test]
fn a_dropped_pool_unmaps_the_stacks_other_threads_cached() {
    let pool = StackPool::new(SIZE);
    let (returned, wait) = (std::sync::mpsc::channel(), std::sync::mpsc::channel::<()>());
    let other = {
        let creator = creator(&pool);
        let (returned, wait) = (returned.0, wait.1);
        std::thread::spawn(move || {
            drop(creator.new_stack(SIZE, false).unwrap());
            drop(creator);
            returned.send(()).unwrap();
            wait.recv().unwrap(); // alive, and idle, until the pool is gone
        })
    };
    returned.1.recv().unwrap();
    assert_eq!(pool.stats().idle, 1);
    let unmapped = crate::stack::UNMAPS.with(|n| n.get());
    let weak = Arc::downgrade(&pool.shared);
    drop(pool);
    assert!(weak.upgrade().is_none());
    assert_eq!(
        crate::stack::UNMAPS.with(|n| n.get()),
        unmapped + 1,
        "the other thread's stack is unmapped with the pool, here"
    );
    wait.0.send(()).unwrap();
    other.join().unwrap();
}

/// Past the default bound, derived from the mappings the process may hold, a lease is a
/// typed error, not a mapping the process cannot afford.
#[test]
fn leasing_past_the_default_bound_is_a_typed_error() {
    let pool = StackPool::builder(4096).max_idle(0).build().unwrap();
    let bound = pool.max_stacks();
    assert_eq!(bound, bound::default_max_stacks());
    // A machine whose vm.max_map_count is in the millions would take this test minutes.
    if bound > 1 << 20 {
        eprintln!("skipped: a default bound of {bound} stacks is too many to lease here");
        return;
    }
    let creator = creator(&pool);
    let leased: Vec<_> = (0..bound)
        .map(|_| creator.new_stack(4096, false).unwrap())
        .collect();
    let err = creator.new_stack(4096, false).err().unwrap();
    assert!(
        matches!(
            err.downcast_ref::<StackPoolError>(),
            Some(StackPoolError::Exhausted { max_stacks }) if *max_stacks == bound
        ),
        "{err:?}"
    );
    drop(leased);
    assert_eq!(pool.stats().in_use, 0);
    drop(creator.new_stack(4096, false).unwrap());
}

/// After a spike of stores, the pool keeps the default `max_idle` and unmaps the rest as
/// they come back; `trim` gives back more, and what it keeps is no longer resident below
/// `keep_resident`.
#[test]
fn the_pool_shrinks_after_a_spike() {
    let spike = StackPoolBuilder::DEFAULT_MAX_IDLE + 50;
    let pool = StackPool::new(SIZE);
    let creator = creator(&pool);
    let leased: Vec<_> = (0..spike)
        .map(|_| {
            let stack = creator.new_stack(SIZE, false).unwrap();
            scribble(&*stack); // a deep call touched every page
            stack
        })
        .collect();
    let unmapped = crate::stack::UNMAPS.with(|n| n.get());
    drop(leased);
    let stats = pool.stats();
    assert_eq!(
        (stats.in_use, stats.idle),
        (0, StackPoolBuilder::DEFAULT_MAX_IDLE)
    );
    assert_eq!(crate::stack::UNMAPS.with(|n| n.get()), unmapped + 50);

    assert_eq!(pool.trim(2), StackPoolBuilder::DEFAULT_MAX_IDLE - 2);
    assert_eq!(pool.stats().idle, 2);
    let kept: Vec<_> = (0..2)
        .map(|_| creator.new_stack(SIZE, false).unwrap())
        .collect();
    assert_eq!(
        pool.stats().created,
        spike as u64,
        "the kept stacks are lent"
    );
    for stack in &kept {
        // Before reading: a read maps the zero page in.
        #[cfg(target_os = "linux")]
        assert!(!resident(stack.top() as usize - pool.keep_resident() - 1));
        assert!(
            bytes(&**stack).iter().all(|&b| b == 0),
            "trimmed stacks are zero"
        );
    }
    drop(kept);
    assert_eq!(pool.trim(0), 2);
    assert_eq!(pool.stats().idle, 0);
}

/// A zeroing engine's stack that the pool will not keep is unmapped as it is: zeroing it
/// first would be work for nothing.
#[test]
fn a_stack_the_pool_does_not_keep_is_not_zeroed() {
    let pool = StackPool::builder(SIZE).max_idle(1).build().unwrap();
    let creator = creator(&pool);
    let (a, b) = (
        creator.new_stack(SIZE, true).unwrap(),
        creator.new_stack(SIZE, true).unwrap(),
    );
    let zeroed = crate::stack::ZERO_TOPS.with(|n| n.get());
    drop(a);
    assert_eq!(
        crate::stack::ZERO_TOPS.with(|n| n.get()),
        zeroed + 1,
        "kept: zeroed"
    );
    drop(b);
    assert_eq!(
        crate::stack::ZERO_TOPS.with(|n| n.get()),
        zeroed + 1,
        "freed as it is"
    );
    assert_eq!(pool.stats().idle, 1);
}
