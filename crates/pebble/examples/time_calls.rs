//! Times the read calls a steady-state reconcile makes against a running Pebble:
//! `cargo run --release -p pebble --example time_calls -- SOCKET`.
use std::time::Instant;

fn main() {
    let Some(socket) = std::env::args().nth(1) else {
        eprintln!("usage: time_calls SOCKET");
        std::process::exit(2);
    };
    let c = pebble::Client::new(socket);
    for (name, f) in [
        (
            "plan",
            Box::new(|| c.plan().map(drop)) as Box<dyn Fn() -> pebble::Result<()>>,
        ),
        ("services", Box::new(|| c.services(&[]).map(drop))),
        ("checks", Box::new(|| c.checks(None, &[]).map(drop))),
    ] {
        let n = 100;
        let start = Instant::now();
        for _ in 0..n {
            if let Err(e) = f() {
                eprintln!("{name}: {e}");
                std::process::exit(1);
            }
        }
        println!(
            "{name}: {:.3} ms per call",
            start.elapsed().as_secs_f64() * 1000.0 / n as f64
        );
    }
}
