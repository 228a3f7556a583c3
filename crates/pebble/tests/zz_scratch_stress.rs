mod common;
use common::{eventually, Pebble};
use pebble::*;
use std::time::Duration;

#[test]
fn stress_checks_stop() {
    for round in 0..15 {
        let pebble = Pebble::start();
        let client = pebble.client();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut down = Check::tcp(port);
        down.level = Some(CheckLevel::Alive);
        down.period = Some(GoDuration::from_millis(100));
        down.threshold = Some(1);
        down.tcp.as_mut().unwrap().host = Some("127.0.0.1".into());
        let mut up = Check::exec("/bin/true");
        up.level = Some(CheckLevel::Ready);
        up.period = Some(GoDuration::from_millis(100));
        up.threshold = Some(1);
        let mut layer = Layer::default();
        layer.checks.insert("down".into(), down);
        layer.checks.insert("up".into(), up);
        client.add_layer("checks", &layer, true).unwrap();
        assert!(eventually(Duration::from_secs(10), || client
            .checks(None, &["down"])
            .map(|c| c[0].status == CheckStatus::Down)
            .unwrap_or(false)));
        for i in 0..20 {
            let r = client.stop_checks(&["down", "up"]);
            if r.is_err() {
                panic!("round {round} iter {i}: {r:?}\n{}", pebble.log());
            }
            std::thread::sleep(Duration::from_millis(30));
            let r = client.start_checks(&["down", "up"]);
            if r.is_err() {
                panic!("round {round} iter {i} start: {r:?}\n{}", pebble.log());
            }
            std::thread::sleep(Duration::from_millis(120));
        }
    }
}
