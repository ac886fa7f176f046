//! The simulator's event engine alone: the "hold" model (pop the earliest event, schedule one
//! in its place at a pseudo-random delay) at several queue sizes, and with cancellable timers.
//! Target: at least 10 million events per second.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use reef_core::{Duration, Time};
use reef_sim::engine::Engine;
use std::hint::black_box;

/// Small and fast: xorshift64, enough to spread delays.
fn next(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

/// An event as large as the simulator's own (a tag and a 16-byte payload).
#[derive(Clone, Copy, Debug)]
enum Ev {
    A(u32),
    B { flow: u32, epoch: u64 },
}

const EVENTS: u64 = 1_000_000;

fn hold(c: &mut Criterion) {
    let mut g = c.benchmark_group("engine_hold");
    g.throughput(Throughput::Elements(EVENTS));
    for pending in [1_000u64, 100_000] {
        g.bench_with_input(BenchmarkId::from_parameter(pending), &pending, |b, &pending| {
            b.iter(|| {
                let mut e = Engine::new();
                let mut x = 0x9e37_79b9_7f4a_7c15u64;
                for i in 0..pending {
                    e.schedule(Time(next(&mut x) % 1_000_000), Ev::A(i as u32));
                }
                for _ in 0..EVENTS {
                    let (_, ev) = e.pop().expect("the queue never empties");
                    let ev = match ev {
                        Ev::A(n) => Ev::B { flow: n, epoch: u64::from(n) + 1 },
                        Ev::B { flow, epoch } => Ev::A(flow ^ epoch as u32),
                    };
                    e.schedule_in(Duration(next(&mut x) % 1_000_000), ev);
                }
                black_box(e.now())
            })
        });
    }
    g.finish();
}

fn timers(c: &mut Criterion) {
    // Each step pops one timer and sets two, one of which is cancelled: the queue keeps its
    // size, and pops skip as many dead entries as they return live ones.
    let mut g = c.benchmark_group("engine_timers");
    g.throughput(Throughput::Elements(EVENTS));
    g.bench_function("cancel_half", |b| {
        b.iter(|| {
            let mut e = Engine::new();
            let mut x = 0x2545_f491_4f6c_dd1du64;
            for i in 0..1_000u32 {
                e.schedule_timer(Time(next(&mut x) % 1_000_000), i);
            }
            for _ in 0..EVENTS {
                let (now, ev) = e.pop().expect("never empty");
                e.schedule_timer(now + Duration(next(&mut x) % 1_000_000), ev);
                let dead = e.schedule_timer(now + Duration(next(&mut x) % 1_000_000), ev);
                e.cancel(dead);
            }
            black_box(e.now())
        })
    });
    g.finish();
}

criterion_group!(benches, hold, timers);
criterion_main!(benches);
