//! Checks docs/protocol.md against the code: every ```json example decodes as a message of
//! its section's direction, and every message type of both enums has an example there.

use super::samples::{client_index, server_index, CLIENT_VARIANTS, SERVER_VARIANTS};
use crate::{decode_client, decode_server};

const PROTOCOL_MD: &str = include_str!("../../../../docs/protocol.md");

/// Which way the messages of a part of the document go.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Direction {
    ClientToNode,
    NodeToClient,
}

/// One JSON value of an example block, with the line its block starts on.
struct Example {
    line: usize,
    direction: Option<Direction>,
    json: String,
}

/// Every JSON value of every ```json block, with the direction of the `##` section it is in.
fn examples(doc: &str) -> Vec<Example> {
    let mut out = Vec::new();
    let mut direction = None;
    let mut block: Option<(usize, String)> = None;
    for (i, line) in doc.lines().enumerate() {
        if let Some((start, text)) = &mut block {
            if line.trim_start().starts_with("```") {
                out.extend(values(*start, direction, text));
                block = None;
            } else {
                text.push_str(line);
                text.push('\n');
            }
        } else if line.trim_start().starts_with("```json") {
            block = Some((i + 1, String::new()));
        } else if let Some(title) = line.strip_prefix("## ") {
            direction = match title.trim() {
                "Client to node" => Some(Direction::ClientToNode),
                "Node to client" => Some(Direction::NodeToClient),
                _ => None,
            };
        }
    }
    assert!(block.is_none(), "a ```json block is never closed");
    out
}

/// The JSON values in one block (several on their own lines, or one over several lines).
fn values(line: usize, direction: Option<Direction>, text: &str) -> Vec<Example> {
    let mut out = Vec::new();
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<serde_json::Value>();
    loop {
        let start = stream.byte_offset();
        match stream.next() {
            None => return out,
            Some(Ok(_)) => out.push(Example {
                line,
                direction,
                json: text[start..stream.byte_offset()].trim().to_string(),
            }),
            Some(Err(e)) => panic!("docs/protocol.md line {line}: not JSON: {e}"),
        }
    }
}

#[test]
fn every_documented_example_decodes_and_every_type_is_documented() {
    let all = examples(PROTOCOL_MD);
    assert!(
        all.len() > CLIENT_VARIANTS + SERVER_VARIANTS,
        "examples not found"
    );
    let mut client_seen = [false; CLIENT_VARIANTS];
    let mut server_seen = [false; SERVER_VARIANTS];
    let mut failures = Vec::new();
    for ex in &all {
        match ex.direction {
            Some(Direction::ClientToNode) => match decode_client(&ex.json) {
                Ok(m) => client_seen[client_index(&m)] = true,
                Err(e) => failures.push(format!("line {}: {}: {e}", ex.line, ex.json)),
            },
            Some(Direction::NodeToClient) => match decode_server(&ex.json) {
                Ok(m) => server_seen[server_index(&m)] = true,
                Err(e) => failures.push(format!("line {}: {}: {e}", ex.line, ex.json)),
            },
            None => failures.push(format!(
                "line {}: an example outside the two message sections",
                ex.line
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "docs/protocol.md examples that do not decode:\n{}",
        failures.join("\n")
    );
    let client_types = super::samples::client_types();
    let server_types = super::samples::server_types();
    let undocumented: Vec<String> = (0..CLIENT_VARIANTS)
        .filter(|i| !client_seen[*i])
        .map(|i| format!("client {}", client_types[i]))
        .chain(
            (0..SERVER_VARIANTS)
                .filter(|i| !server_seen[*i])
                .map(|i| format!("server {}", server_types[i])),
        )
        .collect();
    assert!(
        undocumented.is_empty(),
        "message types without an example in docs/protocol.md: {undocumented:?}"
    );
}

#[test]
fn a_bad_example_would_be_caught() {
    let doc = "## Client to node\n```json\n{\"type\":\"join\"}\n```\n## Node to client\n\
               ```json\n{\"type\":\"pong\"}\n{\"type\":\"welcome\",\n \"v\":1}\n```\n";
    let all = examples(doc);
    assert_eq!(all.len(), 3);
    assert_eq!(all[0].direction, Some(Direction::ClientToNode));
    assert!(decode_client(&all[0].json).is_err(), "join needs a room");
    assert!(decode_server(&all[1].json).is_ok());
    assert!(decode_server(&all[2].json).is_err(), "welcome lacks fields");
}

#[test]
fn every_error_code_is_documented_and_every_documented_code_exists() {
    let list = PROTOCOL_MD
        .split_once("Codes: ")
        .expect("docs/protocol.md lists the error codes after \"Codes: \"")
        .1;
    let list = &list[..list.find('.').expect("the list ends with a full stop")];
    let documented: Vec<&str> = list
        .split(',')
        .map(|c| c.trim().trim_matches('`'))
        .collect();
    let codes: Vec<&str> = crate::ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(documented, codes, "docs/protocol.md's codes, in order");
    for c in crate::ErrorCode::ALL {
        let wire = serde_json::to_string(&c).unwrap();
        assert_eq!(
            wire,
            format!("\"{}\"", c.as_str()),
            "serde and as_str agree"
        );
    }
}
