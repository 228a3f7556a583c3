//! The backups' S3 client against a real S3 server: moto's standalone server (from
//! the s3 venv scripts/setup.sh makes), on a free port of 127.0.0.1.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use synapse_k8s_charm::relations::s3::client::{Bucket, ClientError, PART_SIZE};
use synapse_k8s_charm::relations::s3::{S3Info, UriStyle};

struct Moto {
    child: Child,
    port: u16,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn moto() -> Moto {
    let tools = std::env::var_os("SYNAPSE_CHARM_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/synapse-charm"));
    let bin = tools.join("s3-venv/bin/moto_server");
    assert!(
        bin.exists(),
        "moto_server not found at {}: run scripts/setup.sh first",
        bin.display()
    );
    let port = free_port();
    let child = Command::new(bin)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while http1::get(&format!("http://127.0.0.1:{port}/"), Duration::from_secs(1)).is_err() {
        assert!(Instant::now() < deadline, "moto did not answer");
        std::thread::sleep(Duration::from_millis(100));
    }
    Moto { child, port }
}

fn info(port: u16, bucket: &str) -> S3Info {
    S3Info {
        access_key: "AKIDTEST".into(),
        secret_key: "test-secret".into(),
        bucket: bucket.into(),
        path: String::new(),
        endpoint: Some(format!("http://127.0.0.1:{port}")),
        region: None,
        uri_style: UriStyle::Path,
        storage_class: None,
        s3_api_version: None,
        delete_older_than_days: None,
        tls_ca_chain: vec![],
        attributes: vec![],
    }
}

fn create_bucket(port: u16, name: &str) {
    let r = http1::tcp_round_trip(
        ([127, 0, 0, 1], port).into(),
        &http1::Request::new("PUT", format!("/{name}")),
        Duration::from_secs(10),
    )
    .unwrap();
    assert_eq!(r.status, 200);
}

/// A deterministic, incompressible-looking stream of `len` bytes.
fn data(len: usize) -> Vec<u8> {
    let mut x: u32 = 12345;
    (0..len)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (x >> 16) as u8
        })
        .collect()
}

#[test]
fn small_and_multipart_objects_round_trip_and_list_and_delete() {
    let m = moto();
    create_bucket(m.port, "backups");
    let b = Bucket::new(&info(m.port, "backups")).unwrap();
    b.check().unwrap();
    // Small: one PUT.
    let mut up = b.upload("p/small");
    up.write_all(b"hello").unwrap();
    assert_eq!(up.finish().unwrap(), 5);
    // Two and a half parts: a multipart upload, written in odd-sized pieces.
    let big = data(PART_SIZE * 2 + PART_SIZE / 2);
    let mut up = b.upload("p/big");
    for piece in big.chunks(1_000_003) {
        up.write_all(piece).unwrap();
    }
    assert_eq!(up.finish().unwrap(), big.len() as u64);
    let mut listed = b.list("p/").unwrap();
    listed.sort_by(|a, b| a.key.cmp(&b.key));
    let keys: Vec<_> = listed.iter().map(|o| (o.key.as_str(), o.size)).collect();
    assert_eq!(keys, vec![("p/big", big.len() as u64), ("p/small", 5)]);
    assert!(listed[0].last_modified.contains('T'));
    // Read back in ranges.
    let obj = b.find("p/big").unwrap().unwrap();
    let mut back = Vec::new();
    b.download(&obj.key, obj.size)
        .read_to_end(&mut back)
        .unwrap();
    assert!(back == big, "the downloaded object differs");
    assert_eq!(b.find("p/bi").unwrap(), None);
    b.delete("p/big").unwrap();
    assert_eq!(b.list("").unwrap().len(), 1);
}

#[test]
fn listing_follows_pages() {
    let m = moto();
    create_bucket(m.port, "many");
    let b = Bucket::new(&info(m.port, "many")).unwrap();
    // moto pages at 1000 keys.
    for i in 0..1005 {
        b.put(&format!("k{i:04}"), vec![b'x']).unwrap();
    }
    assert_eq!(b.list("").unwrap().len(), 1005);
    assert_eq!(b.list("k100").unwrap().len(), 5);
}

#[test]
fn errors_name_the_problem_without_credentials() {
    let m = moto();
    let b = Bucket::new(&info(m.port, "missing")).unwrap();
    let e = b.check().unwrap_err();
    assert_eq!(e.code(), Some("NoSuchBucket"), "{e}");
    assert!(!e.to_string().contains("test-secret"));
    // Nothing listening.
    let dead = Bucket::new(&info(free_port(), "backups")).unwrap();
    let e = dead.check().unwrap_err();
    assert!(matches!(e, ClientError::Unreachable { .. }), "{e}");
    // An upload that fails mid-way leaves no object behind.
    create_bucket(m.port, "gone");
    let b = Bucket::new(&info(m.port, "gone")).unwrap();
    let mut up = b.upload("x");
    up.write_all(&data(PART_SIZE + 10)).unwrap();
    drop(up);
    assert_eq!(b.list("").unwrap(), vec![]);
}
