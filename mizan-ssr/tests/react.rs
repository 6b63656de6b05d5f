//! Renders real React components through the shipped worker (`worker/worker.mjs`). Needs `node`
//! and `npm`: the worker's dependencies are installed with `npm ci` from the committed lockfile
//! when `worker/node_modules` is missing.

use std::path::Path;

use mizan_ssr::{PageShell, SsrError, SsrPool};
use serde_json::json;

/// Installs the worker's dependencies once for all the tests of this file.
static NODE_MODULES: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();

async fn react_pool() -> SsrPool {
    NODE_MODULES
        .get_or_init(|| async {
            mizan_ssr::ensure_node_modules(mizan_ssr::worker_dir())
                .await
                .unwrap_or_else(|e| panic!("installing the worker's npm dependencies failed: {e}"));
        })
        .await;
    let entry = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/workers/react_app.mjs");
    SsrPool::builder(entry)
        .with_workers(1)
        .build()
        .await
        .unwrap_or_else(|e| panic!("the React worker did not start (is `node` on the PATH?): {e}"))
}

#[tokio::test]
async fn a_react_component_renders_through_the_shipped_worker() {
    let pool = react_pool().await;
    let props = json!({ "id": 1, "name": "<alice> & co", "email": "alice@company.com" });
    let html = pool.render("ProfilePage", &props).await.unwrap();
    assert_eq!(
        html.as_str(),
        "<main><h1>&lt;alice&gt; &amp; co</h1><p>alice@company.com</p>\
         <form action=\"/profile/1/update/\" method=\"post\">\
         <input name=\"name\" value=\"&lt;alice&gt; &amp; co\"/><button>Rename</button></form></main>"
    );

    // The page around it: the markup in the root, the props in the island.
    let page = PageShell::new("alice").render(Some(&html), &props).unwrap();
    assert!(page.contains(&format!(
        "<div id=\"root\" data-mizan-render=\"server\">{}</div>",
        html.as_str()
    )));
    assert!(page.contains(r#""name":"\u003calice\u003e \u0026 co""#));
    pool.shutdown().await;
}

#[tokio::test]
async fn component_errors_are_render_errors_and_the_worker_stays() {
    let pool = react_pool().await;
    match pool.render("Broken", &json!({})).await {
        Err(SsrError::Render(message)) => assert_eq!(message, "Broken always throws"),
        other => panic!("expected a render error, got {other:?}"),
    }
    match pool.render("Missing", &json!({})).await {
        Err(SsrError::Render(message)) => {
            assert_eq!(message, r#"unknown component "Missing""#);
        }
        other => panic!("expected a render error, got {other:?}"),
    }
    match pool
        .render("Greeting", &json!(["not", "an", "object"]))
        .await
    {
        Err(SsrError::Render(message)) => assert_eq!(message, "props must be a JSON object"),
        other => panic!("expected a render error, got {other:?}"),
    }
    let html = pool
        .render("Greeting", &json!({ "name": "Bob", "items": ["a"] }))
        .await
        .unwrap();
    assert_eq!(
        html.as_str(),
        "<section><h2>Hello, Bob!</h2><ul><li>a</li></ul></section>"
    );
    assert_eq!(pool.stats().spawned, 1);
    pool.shutdown().await;
}

#[tokio::test]
async fn console_output_of_components_stays_off_the_protocol() {
    let pool = react_pool().await;
    for text in ["first", "second"] {
        let html = pool
            .render("Chatty", &json!({ "text": text }))
            .await
            .unwrap();
        assert_eq!(html.as_str(), text);
    }
    assert_eq!(pool.stats().discarded, 0, "nothing but replies on stdout");
    pool.shutdown().await;
}

#[test]
fn the_shipped_worker_can_be_written_into_a_project() {
    let dir = std::env::temp_dir().join(format!("mizan-ssr-write-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = mizan_ssr::write_worker(&dir).unwrap();
    assert_eq!(path, dir.join(mizan_ssr::WORKER_FILE_NAME));
    let shipped = std::fs::read_to_string(mizan_ssr::worker_dir().join("worker.mjs")).unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), shipped);
    std::fs::remove_dir_all(&dir).unwrap();
}
