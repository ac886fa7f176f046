use criterion::{Criterion, criterion_group, criterion_main};
use reef_core::units::parse_size;
use std::hint::black_box;

fn units(c: &mut Criterion) {
    c.bench_function("parse_size", |b| b.iter(|| parse_size(black_box("10GiB"))));
}

criterion_group!(benches, units);
criterion_main!(benches);
