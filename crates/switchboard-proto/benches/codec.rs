//! Micro-benchmarks of the JSON codec on the per-frame hot path: decoding a client's `send`,
//! encoding the room `message` that results, and the UTF-8 check the server makes once per
//! fan-out when it turns the encoded `Bytes` into a WebSocket text frame.
//!
//! Run: `cargo bench -p switchboard-proto --bench codec`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use switchboard_proto::{decode_client, encode_server, ChatMessage, ClientMsg, ServerMsg};

/// A 100-byte message text, the size the benches assume for a chat line.
fn text_100() -> String {
    let text = "The quick brown fox jumps over the lazy dog; pack my box with five dozen liquor jugs. 0123456789abcd";
    assert_eq!(text.len(), 100);
    text.to_string()
}

fn message() -> ServerMsg {
    ServerMsg::Message(ChatMessage {
        id: "n1-123456".into(),
        stream: "#general".into(),
        from: "alice".into(),
        room: Some("general".into()),
        to: None,
        text: text_100(),
        ts: 1_767_225_600_000,
        lamport: 987_654,
        origin: "n1".into(),
        oseq: 123_456,
    })
}

fn send_frame() -> String {
    format!(
        r#"{{"type":"send","room":"general","text":"{}","ref":"42"}}"#,
        text_100()
    )
}

fn codec(c: &mut Criterion) {
    let mut g = c.benchmark_group("codec");

    let msg = message();
    let encoded = encode_server(&msg);
    g.throughput(Throughput::Bytes(encoded.len() as u64));
    g.bench_function("encode_message", |b| {
        b.iter(|| encode_server(black_box(&msg)))
    });
    // What `Utf8Bytes::try_from(Bytes)` does in the server's `Shared::execute`, once per
    // fan-out (not per recipient): a validating pass over the shared bytes.
    g.bench_function("utf8_check_message", |b| {
        b.iter(|| std::str::from_utf8(black_box(&encoded)).is_ok())
    });

    let frame = send_frame();
    g.throughput(Throughput::Bytes(frame.len() as u64));
    g.bench_function("decode_send", |b| {
        b.iter(|| decode_client(black_box(&frame)).expect("decodes"))
    });

    // One inbound `send` through the codec as the server handles it: decode the frame, build
    // the message the core would stamp (ids and clock aside), encode it once for the room and
    // validate it once for the WebSocket layer.
    g.throughput(Throughput::Elements(1));
    g.bench_function("send_to_frame", |b| {
        b.iter(|| {
            let ClientMsg::Send { room, text, .. } =
                decode_client(black_box(&frame)).expect("decodes")
            else {
                unreachable!("a send frame");
            };
            let out = encode_server(&ServerMsg::Message(ChatMessage {
                id: "n1-123456".into(),
                stream: "#general".into(),
                from: "alice".into(),
                room,
                to: None,
                text,
                ts: 1_767_225_600_000,
                lamport: 987_654,
                origin: "n1".into(),
                oseq: 123_456,
            }));
            assert!(std::str::from_utf8(&out).is_ok());
            out
        })
    });
    g.finish();
}

criterion_group!(benches, codec);
criterion_main!(benches);
