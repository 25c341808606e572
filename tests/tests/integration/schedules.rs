//! Property tests: random schedules of up to 64 guests, each making a random sequence of
//! host calls that are ready at once, pending k times, fail, trap or panic, with the call
//! future dropped after a random number of polls. Every outcome is checked against a model,
//! and so are the destructors of host futures and the pool's counters. A failure shrinks to
//! a short, readable schedule.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use async_wasm::prelude::*;
use futures::stream::{FuturesUnordered, StreamExt};
use proptest::prelude::*;
use tests::{DropCounter, pending, pooled_engine};
use wasmtime::{Caller, Engine, Linker, Module, Store, Trap};

/// `run(n)` calls `host(i)` for i in 0..n and sums what it returns; the sentinel
/// `i64::MIN` makes it trap instead.
const GUEST: &str = r#"(module
    (import "env" "host" (func $host (param i32) (result i64)))
    (func (export "run") (param i32) (result i64)
        (local $i i32) (local $acc i64) (local $r i64)
        (block $done
            (loop $next
                (br_if $done (i32.ge_u (local.get $i) (local.get 0)))
                (local.set $r (call $host (local.get $i)))
                (if (i64.eq (local.get $r) (i64.const 0x8000000000000000)) (then unreachable))
                (local.set $acc (i64.add (local.get $acc) (local.get $r)))
                (local.set $i (i32.add (local.get $i) (i32.const 1)))
                (br $next)))
        (local.get $acc)))"#;

const PANIC_MESSAGE: &str = "a host future panics, as planned";

/// One host call's behaviour.
#[derive(Debug, Clone)]
enum Action {
    Ready(i64),
    Pending(usize, i64),
    Fail,
    Trap,
    Panic,
}

/// One guest: its host calls, and after how many polls its call future is dropped (if it
/// has not finished by then).
#[derive(Debug, Clone)]
struct Plan {
    actions: Vec<Action>,
    cancel_after: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Value(i64),
    Failed,
    Trapped,
    Panicked,
    Cancelled,
}

/// What the plan must produce, and how many host futures it creates on the way.
fn model(plan: &Plan) -> (Outcome, usize) {
    let mut polls_before = 1; // the poll on which the current host call starts
    let mut acc = 0;
    if plan.cancel_after == Some(0) {
        return (Outcome::Cancelled, 0);
    }
    for (i, action) in plan.actions.iter().enumerate() {
        match action {
            Action::Ready(v) => acc += v,
            Action::Pending(k, v) => {
                if plan.cancel_after.is_some_and(|c| c < polls_before + k) {
                    return (Outcome::Cancelled, i + 1);
                }
                polls_before += k;
                acc += v;
            }
            Action::Fail => return (Outcome::Failed, i + 1),
            Action::Trap => return (Outcome::Trapped, i + 1),
            Action::Panic => return (Outcome::Panicked, i + 1),
        }
    }
    (Outcome::Value(acc), plan.actions.len())
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        4 => (-1000_i64..1000).prop_map(Action::Ready),
        4 => (1_usize..5, -1000_i64..1000).prop_map(|(k, v)| Action::Pending(k, v)),
        1 => Just(Action::Fail),
        1 => Just(Action::Trap),
        1 => Just(Action::Panic),
    ]
}

fn plan() -> impl Strategy<Value = Plan> {
    (
        prop::collection::vec(action(), 0..6),
        prop::option::weighted(0.3, 0_usize..12),
    )
        .prop_map(|(actions, cancel_after)| Plan {
            actions,
            cancel_after,
        })
}

/// The store's data: the actions of the current call, and counters of host futures.
struct Host {
    actions: Vec<Action>,
    created: Arc<AtomicUsize>,
    drops: DropCounter,
}

fn linker(engine: &Engine) -> Linker<Host> {
    let mut linker = Linker::new(engine);
    linker
        .func_wrap_async1("env", "host", |caller: Caller<'_, Host>, i: i32| {
            let host = caller.data();
            let action = host.actions[i as usize].clone();
            host.created.fetch_add(1, Ordering::SeqCst);
            let guard = host.drops.guard();
            Box::new(async move {
                let _guard = guard;
                match action {
                    Action::Ready(v) => Ok(v),
                    Action::Pending(k, v) => {
                        pending(k).await;
                        Ok(v)
                    }
                    Action::Fail => Err(wasmtime::format_err!("planned failure")),
                    Action::Trap => Ok(i64::MIN),
                    Action::Panic => panic!("{PANIC_MESSAGE}"),
                }
            })
        })
        .unwrap();
    linker
}

/// Polls a future at most `limit` times, dropping it unfinished after that, and turns a
/// panic out of a poll into a value.
struct Bounded<F> {
    inner: Option<Pin<Box<F>>>,
    limit: Option<usize>,
}

enum Ended<T> {
    Done(T),
    Panicked,
    Cancelled,
}

impl<F: Future> Future for Bounded<F> {
    type Output = Ended<F::Output>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if self.limit == Some(0) {
            self.inner = None; // dropped here, mid-call
            return Poll::Ready(Ended::Cancelled);
        }
        if let Some(limit) = &mut self.limit {
            *limit -= 1;
        }
        let inner = self.inner.as_mut().expect("not polled after the end");
        match std::panic::catch_unwind(AssertUnwindSafe(|| inner.as_mut().poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(out)) => Poll::Ready(Ended::Done(out)),
            Err(_) => Poll::Ready(Ended::Panicked),
        }
    }
}

/// Runs one guest's plan; returns its outcome, after checking its store still works.
async fn run_guest(
    engine: Engine,
    linker: Linker<Host>,
    module: Module,
    plan: Plan,
    counters: (Arc<AtomicUsize>, DropCounter),
) -> Outcome {
    let host = Host {
        actions: plan.actions.clone(),
        created: counters.0,
        drops: counters.1,
    };
    let mut store = Store::new(&engine, host);
    let instance = linker.instantiate_async(&mut store, &module).await.unwrap();
    let run = instance.get_func(&mut store, "run").unwrap();
    let run = run.get_async().get1::<i32, i64>(&store).unwrap();
    let calls = plan.actions.len() as i32;
    let ended = Bounded {
        inner: Some(Box::pin(run.call(&mut store, calls))),
        limit: plan.cancel_after,
    }
    .await;
    let outcome = match ended {
        Ended::Cancelled => Outcome::Cancelled,
        Ended::Panicked => Outcome::Panicked,
        Ended::Done(Ok(v)) => Outcome::Value(v),
        Ended::Done(Err(err))
            if err.downcast_ref::<Trap>() == Some(&Trap::UnreachableCodeReached) =>
        {
            Outcome::Trapped
        }
        Ended::Done(Err(err)) => {
            assert!(format!("{err:?}").contains("planned failure"), "{err:?}");
            Outcome::Failed
        }
    };
    // Whatever happened, the store takes another call.
    store.data_mut().actions = vec![Action::Pending(1, 5), Action::Ready(6)];
    assert_eq!(
        run.call(&mut store, 2).await.unwrap(),
        11,
        "after {outcome:?}"
    );
    outcome
}

/// Runs a schedule on one thread (`spawn == false`) or as tasks on a multi-thread runtime,
/// and checks every outcome, the host futures' destructors and the pool against the model.
fn check_schedule(plans: Vec<Plan>, multi_thread: bool) -> Result<(), TestCaseError> {
    let pool = StackPool::builder(1 << 20).max_idle(16).build().unwrap();
    let engine = pooled_engine(&pool);
    let linker = linker(&engine);
    let module = Module::new(&engine, GUEST).unwrap();
    let created = Arc::new(AtomicUsize::new(0));
    let drops = DropCounter::default();
    let guests = plans.iter().map(|plan| {
        run_guest(
            engine.clone(),
            linker.clone(),
            module.clone(),
            plan.clone(),
            (created.clone(), drops.clone()),
        )
    });
    let outcomes: Vec<Outcome> = if multi_thread {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        rt.block_on(async {
            let tasks: Vec<_> = guests.map(tokio::spawn).collect();
            let mut outcomes = Vec::new();
            for task in tasks {
                outcomes.push(task.await.unwrap());
            }
            outcomes
        })
    } else {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut ordered: FuturesUnordered<_> = guests
                .enumerate()
                .map(|(i, guest)| async move { (i, guest.await) })
                .collect();
            let mut outcomes = vec![Outcome::Cancelled; plans.len()];
            while let Some((i, outcome)) = ordered.next().await {
                outcomes[i] = outcome;
            }
            outcomes
        })
    };

    let mut expected_created = 0;
    for (i, (plan, outcome)) in plans.iter().zip(&outcomes).enumerate() {
        let (expected, host_futures) = model(plan);
        prop_assert_eq!(*outcome, expected, "guest {} of the schedule", i);
        expected_created += host_futures + 2; // and the two calls after
    }
    prop_assert_eq!(created.load(Ordering::SeqCst), expected_created);
    prop_assert_eq!(
        drops.dropped(),
        expected_created,
        "each host future dropped once"
    );
    let stats = pool.stats();
    prop_assert_eq!(stats.in_use, 0);
    prop_assert!(stats.idle <= 16);
    Ok(())
}

/// Keeps the planned panics out of the test output; any other panic is reported as usual.
fn quiet_planned_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let planned = info
                .payload()
                .downcast_ref::<String>()
                .is_some_and(|m| m == PANIC_MESSAGE);
            if !planned {
                default(info);
            }
        }));
    });
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(24)
}

proptest! {
    // 24 schedules per run keeps CI fast; PROPTEST_CASES=2000 (say) runs a longer search.
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn schedules_on_one_thread(plans in prop::collection::vec(plan(), 1..=64)) {
        quiet_planned_panics();
        check_schedule(plans, false)?;
    }

    #[test]
    fn schedules_on_a_multi_thread_runtime(plans in prop::collection::vec(plan(), 1..=64)) {
        quiet_planned_panics();
        check_schedule(plans, true)?;
    }
}

#[test]
fn the_model_counts_polls_like_the_executor() {
    let plan = Plan {
        actions: vec![
            Action::Pending(2, 1),
            Action::Ready(2),
            Action::Pending(3, 4),
        ],
        cancel_after: Some(3),
    };
    // Polls 1..=3 cover the first call (done on poll 3) and start the third.
    assert_eq!(model(&plan), (Outcome::Cancelled, 3));
    let plan = Plan {
        cancel_after: Some(6),
        ..plan
    };
    assert_eq!(model(&plan), (Outcome::Value(7), 3));
}
