//! The IR: derived from the Rust types, canonical, parseable by an independent KDL parser, and
//! served at `GET schema/`.

use std::collections::BTreeMap;

use mizan_core::ir::{FunctionKind, TypeDef, TypeExpr};
use mizan_core::testing::{block_on, TestClient};
use mizan_core::{client, ApiError, Mizan, MizanBuilder, Request};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, JsonSchema)]
struct Note {
    id: u64,
    title: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    color: Option<Color>,
    tags: Vec<String>,
    scores: BTreeMap<String, f64>,
    shape: Shape,
}

#[derive(Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
enum Color {
    Red,
    Green,
}

#[derive(Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "lowercase")]
enum Shape {
    Dot,
    Circle { radius: f64 },
}

#[client(context = "notes")]
async fn notes(folder: String, page: Option<u32>) -> Result<Vec<Note>, ApiError> {
    let _ = (folder, page);
    Ok(Vec::new())
}

#[client(affects = ["notes", "note_count"], auth = "staff")]
async fn add_note(folder: String, note: Note) -> Result<(u64, bool), ApiError> {
    let _ = (folder, note);
    Ok((1, true))
}

#[client(context = "notes")]
async fn note_count(folder: String) -> Result<i32, ApiError> {
    let _ = folder;
    Ok(0)
}

#[client(affects = "notes", private, route = "/hooks/notes/", methods = ["POST"])]
async fn notes_hook(_req: &Request) -> Result<http::Response<String>, ApiError> {
    Ok(http::Response::new(String::new()))
}

#[client(context = "notes", route = "/notes/{folder}/")]
async fn notes_page(folder: String) -> Result<http::Response<String>, ApiError> {
    Ok(http::Response::new(folder))
}

#[client(websocket)]
async fn ping() -> Result<(), ApiError> {
    Ok(())
}

fn app(reversed: bool) -> Mizan {
    let registrations: [fn(MizanBuilder) -> MizanBuilder; 6] = [
        |b| b.register::<notes>(),
        |b| b.register::<add_note>(),
        |b| b.register::<note_count>(),
        |b| b.register::<notes_hook>(),
        |b| b.register::<notes_page>(),
        |b| b.register::<ping>(),
    ];
    let mut builder = Mizan::builder();
    let order: Vec<_> = if reversed {
        registrations.iter().rev().collect()
    } else {
        registrations.iter().collect()
    };
    for register in order {
        builder = register(builder);
    }
    builder.build().unwrap()
}

const GOLDEN: &str = r#"mizan-ir version="1"
context "notes" {
    param "folder" type="string"
    param "page" type="option<u32>" optional=#true
}
function "add_note" kind="mutation" {
    arg "folder" type="string"
    arg "note" type="Note"
    returns type="tuple<u64,bool>"
    affects "notes"
    affects "notes" function="note_count"
    auth "staff"
    transport "http"
}
function "note_count" kind="query" context="notes" {
    arg "folder" type="string"
    returns type="i32"
    transport "http"
}
function "notes" kind="query" context="notes" {
    arg "folder" type="string"
    arg "page" type="option<u32>" optional=#true
    returns type="list<Note>"
    transport "http"
}
function "ping" kind="standalone" {
    returns type="null"
    transport "http"
    transport "websocket"
}
type "Color" kind="enum" {
    value "red"
    value "green"
}
type "Note" kind="struct" {
    field "color" type="option<Color>" optional=#true
    field "id" type="u64"
    field "scores" type="map<f64>"
    field "shape" type="Shape"
    field "tags" type="list<string>"
    field "title" type="string"
}
type "Shape" kind="union" {
    variant type="object" {
        field "kind" literal="dot"
    }
    variant type="object" {
        field "kind" literal="circle"
        field "radius" type="f64"
    }
}
"#;

#[test]
fn the_ir_describes_the_wire_canonically() {
    let text = String::from_utf8(app(false).schema().to_vec()).unwrap();
    assert_eq!(text, GOLDEN);
}

#[test]
fn the_same_registry_gives_the_same_bytes_in_any_registration_order() {
    assert_eq!(app(false).schema(), app(true).schema());
    assert_eq!(app(false).schema(), app(false).schema());
}

#[test]
fn private_and_view_path_functions_are_absent() {
    let app = app(false);
    let names: Vec<&str> = app.ir().functions.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["add_note", "note_count", "notes", "ping"]);
    assert_eq!(app.ir().functions[0].kind, FunctionKind::Mutation);
    assert!(matches!(app.ir().types["Color"], TypeDef::Enum(ref v) if v.len() == 2));
    assert_eq!(
        app.ir().functions[1].returns,
        TypeExpr::Int {
            bits: 32,
            signed: true
        }
    );
}

#[test]
fn an_independent_kdl_parser_reads_it() {
    let text = String::from_utf8(app(false).schema().to_vec()).unwrap();
    let document: kdl::KdlDocument = text.parse().expect("valid KDL v2");
    let kinds: Vec<String> = document
        .nodes()
        .iter()
        .map(|n| n.name().value().to_owned())
        .collect();
    assert_eq!(
        kinds,
        [
            "mizan-ir", "context", "function", "function", "function", "function", "type", "type",
            "type"
        ]
    );
    let add_note = &document.nodes()[2];
    assert_eq!(
        add_note.get("kind").and_then(|v| v.as_string()),
        Some("mutation")
    );
    let children = add_note.children().expect("children");
    let auth = children
        .nodes()
        .iter()
        .find(|n| n.name().value() == "auth")
        .unwrap();
    assert_eq!(auth.entries()[0].value().as_string(), Some("staff"));
}

#[test]
fn schema_is_served_as_text() {
    let app = app(false);
    let reply = block_on(TestClient::new(&app).get("/api/mizan/schema/"));
    assert_eq!(reply.status(), 200);
    assert_eq!(
        reply.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(reply.body(), &app.schema());
}

#[test]
fn the_typescript_client_has_calls_fetches_and_types() {
    let files = app(false).typescript_client();
    let file = |name: &str| &files.iter().find(|f| f.name == name).unwrap().contents;
    let client = file("client.ts");
    assert!(client.contains("export function callAddNote(args: {\n  folder: string;\n  note: T.Note;\n}, options?: CallOptions): Promise<[Int64, boolean]>"), "{client}");
    assert!(
        client.contains(
            "export function callPing(args: {} = {}, options?: CallOptions): Promise<null>"
        ),
        "{client}"
    );
    // Only functions declared `websocket` may go over the socket transport.
    assert!(
        client.contains(r#"return call("ping", args, options, { websocket: true });"#),
        "{client}"
    );
    assert!(
        client.contains(r#"return call("add_note", args, options);"#),
        "{client}"
    );
    assert!(
        client.contains("export function fetchNotes(params: NotesParams, options?: CallOptions): Promise<NotesBundle>"),
        "{client}"
    );
    assert!(client.contains("  page?: number | null;"), "{client}");
    assert!(
        !client.contains("callNotes("),
        "queries are fetched, not called"
    );
    let types = file("types.ts");
    assert!(
        types.contains("export type Color = \"red\" | \"green\";"),
        "{types}"
    );
    assert!(types.contains("  id: Int64;"), "{types}");
    assert!(file("index.ts").contains("export * from \"./client.js\";"));
}
